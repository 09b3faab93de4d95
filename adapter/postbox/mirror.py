"""Mirroring documents to SFTP postboxes: mapping rules pick them, the ``postbox-mirror`` job uploads them.

**Where it runs.** Two halves, so data keeps flowing one way and the postbox has one client module:

1. *Planning*, in the delivery (``MirrorPlanner.plan``, called by the worker once the target delivered the
   verzoek, as the checkpointed step ``mirror:plan``). The routed mapping's ``[[mirror]]`` rules select
   bijlagen by zaaktype (of the zaken the delivery made or found), documenttype and adviseur (the OIN of an
   advies's adviseur); each selected document's bytes are put in the content-addressed file store (inline
   ``inhoud`` is written there; werkmap and postbus files are there already) and a ``pending`` row is
   written in ``postbox_uploads``. Nothing is sent from the delivery: a postbox that is down never holds up
   a zaak, and a delivery never waits on an SFTP server.
2. *Uploading*, in the scheduled job ``postbox-mirror`` (``run``, every ``[postbus] mirror_minutes``, once
   per interval across processes), through ``adapter.postbox.client`` like the pickup.

**Nothing twice.** A row's ``ident`` is the document's identity and content, ``doc:<nummer>:<bijlageId>@
<sha256>``, unique per postbox: a retried delivery, a STAM aanvulling listing the same documents again,
or two rules selecting one document plan one upload. A changed document (new sha256) is a new upload; if
its name is taken it gets ``-<sha256[:8]>`` before the extension.

**One upload** (``upload``): streamed from the file store into ``.part-<id>-<sha256[:12]>`` in the
postbox's ``outbox`` (a leading dot: receivers that skip dot files, as our pickup does, never take a
half file), pipelined (``client.write_pipelined``) and fsynced by the server; then the size is checked
(stat) and the **sha256 of the bytes read back** from the server (OpenSSH's sftp-server has no hash
extension, and a shell ``sha256sum`` is not available on an ``internal-sftp`` account, so a re-read is
the only check that covers what the server stored); then renamed (posix-rename, atomic) to its name.
The final name therefore only ever holds a complete, verified file.

**Resume.** A temporary file left by an interrupted run (crash, ``kill -9``, dropped connection) is
*appended to* from its remote size; its prefix is not read back first, because the check after the
upload reads the whole file back anyway and covers the prefix too: resuming costs ``size - done`` bytes
written plus ``size`` read, where checking the prefix first would add ``done`` bytes read and restarting
``done`` bytes written. If that final check fails after a resume, the temporary file is removed and the
upload restarts from byte 0 once, in the same run. A temporary file longer than the document is
discarded. A crash after the rename but before it was recorded finds the final file on the next run,
reads it back, and records it done when it is ours (same size and sha256); a different file under that
name is never overwritten (``failed``, saying so).

**Failures.** Permission denied, a name held by another file, or a document gone from the file store are
``failed`` with the reason (``postbox uploads``, ``postbox status``) and tried again every run, so a fix on
the server is picked up without a restart; a dropped connection stops that postbox's run (reconnect with
backoff next run). Once every file of a batch is done, its manifest is built and uploaded the same way.

**Manifest.** A batch is the documents one delivery selected for one postbox (``<nummer>-<message id>``),
or a caller's ``drop_batch``. With ``manifest = true`` on a matching rule, ``<batch>.manifest.json`` is
uploaded **last**, after every file of the batch: ``{"batch", "postbox", "created", "files": [{"name",
"size", "sha256"}, …]}`` (names sorted). A receiver that waits for the manifest sees a complete batch.

**For other code** (the adviesverzoek's postbox channel)::

    drop_batch(engine, files, postbox, batch, documents, *, manifest=True, message_id=None, meta=None) -> list[Upload]

queues ``documents`` (``DropFile(name, data=bytes | path=Path, ident=None)``; ``name`` is the remote name,
made safe; ``ident`` defaults to ``<batch>:<name>``, the sha256 is appended) for ``postbox`` under
``batch`` (+ manifest), durably and idempotently (calling it again with the same batch adds nothing), and
returns the batch's rows; ``meta`` adds fields to the manifest, which is then built at once. Once a
batch's manifest is uploaded, a delivery waiting for it (a ``postbus:`` wait of a message whose ``nummer``
is the batch: the adviesverzoek relay) is woken. ``batch_state(engine, postbox, batch)`` says ``pending`` / ``done`` /
``failed: <reason>``. The ``postbox-mirror`` job uploads them; ``upload_now(services, postbox)`` does it
at once (what the job does for one postbox), e.g. from a CLI command.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine

from adapter.errors import AdapterError, MappingError
from adapter.logs import get_logger
from adapter.mapping.engine import route
from adapter.mapping.loader import LoadedMapping
from adapter.mapping.opdracht import Opdracht
from adapter.model import Bijlage, Soort, Verzoek
from adapter.postbox.client import Postbox, PostboxError, PostboxRefused
from adapter.postbox.names import safe_for_log
from adapter.store import postbox as status_store
from adapter.store import uploads as store
from adapter.store.files import FileStore
from adapter.store.uploads import Upload
from adapter.targets.base import Steps, run_step

if TYPE_CHECKING:
    from adapter.services import Services

log = get_logger("adapter.postbox")
STEP = "mirror:plan"
_UNSAFE = re.compile(r"[^0-9A-Za-z._()+,=@ -]")


# -- names ---------------------------------------------------------------------------------------------------


def safe_name(name: str) -> str:
    """A remote file name we may create: no path separator, no leading dot, no control or invisible
    characters, at most 200 characters; anything else becomes ``_``."""
    name = unicodedata.normalize("NFC", name)
    name = "".join("_" if unicodedata.category(ch)[0] == "C" else ch for ch in name)
    name = _UNSAFE.sub("_", name).strip(" ._") or "document"
    if len(name) > 200:
        stem, dot, ext = name.rpartition(".")
        name = (stem[: 199 - len(ext)] + "." + ext) if dot and len(ext) <= 16 else name[:200]
    return name


def _with_suffix(name: str, suffix: str) -> str:
    stem, dot, ext = name.rpartition(".")
    return f"{stem}-{suffix}.{ext}" if dot and stem else f"{name}-{suffix}"


def temp_name(u: Upload) -> str:
    return f".part-{u.id}-{(u.sha256 or 'x')[:12]}"


# -- planning ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DropFile:
    """One file of a batch: its remote ``name`` and its bytes (``data``) or a local file (``path``)."""

    name: str
    data: bytes | None = None
    path: Path | None = None
    ident: str | None = None


def _into_store(files: FileStore, data: bytes | None, path: Path | None, sha256: str | None) -> tuple[str, int]:
    """The content in the file store (written there when needed): (sha256, size)."""
    if data is not None:
        sha = hashlib.sha256(data).hexdigest()
        if not files.has(sha, len(data)):
            with files.writer(sha, len(data), resume=False) as w:
                w.write(data)
                w.commit()
        return sha, len(data)
    assert path is not None
    if sha256 and files.has(sha256) and files.path_for(sha256) == Path(path):
        return sha256, files.path_for(sha256).stat().st_size
    size = Path(path).stat().st_size
    with files.writer(None, size) as w, open(path, "rb") as f:
        while chunk := f.read(1024 * 1024):
            w.write(chunk)
        final = w.commit()
    return final.name, size


def _enqueue(
    engine: Engine,
    files: FileStore | None,
    postbox: str,
    batch: str,
    message_id: int | None,
    items: list[tuple[str, str, str, int]],  # (ident without sha, remote name, sha256, size)
    manifest: bool,
    meta: dict[str, Any] | None = None,
) -> tuple[int, list[Upload]]:
    """Rows for these files (and the manifest) unless planned before; returns (new files, the batch's rows)."""
    new = 0
    for ident, name, sha, size in items:
        full = f"{ident}@{sha}"
        if store.by_ident(engine, postbox, full) is not None:
            continue  # this document with this content was planned (and maybe uploaded) before
        remote = name
        for candidate in (name, _with_suffix(name, sha[:8]), _with_suffix(name, f"{sha[:8]}-{len(full)}")):
            remote = candidate
            if not store.name_taken(engine, postbox, candidate):
                break
        if store.add(
            engine,
            postbox=postbox,
            ident=full,
            kind=store.FILE,
            batch=batch,
            message_id=message_id,
            remote_name=remote,
            sha256=sha,
            size=size,
        ):
            new += 1
    rows = store.batch_rows(engine, postbox, batch)
    if manifest and (meta is not None or any(r.kind == store.FILE for r in rows)):
        if store.by_ident(engine, postbox, f"manifest:{batch}") is None:
            content: tuple[str, int] | tuple[None, None] = (None, None)  # built when its batch is uploaded
            if meta is not None and files is not None:  # a caller's batch: complete now, with its fields
                content = _into_store(files, _manifest_content(postbox, batch, rows, meta), None, None)
            store.add(
                engine,
                postbox=postbox,
                ident=f"manifest:{batch}",
                kind=store.MANIFEST,
                batch=batch,
                message_id=message_id,
                remote_name=safe_name(f"{batch}.manifest.json"),
                sha256=content[0],
                size=content[1],
            )
        rows = store.batch_rows(engine, postbox, batch)
    return new, rows


def drop_batch(
    engine: Engine,
    files: FileStore,
    postbox: str,
    batch: str,
    documents: list[DropFile],
    *,
    manifest: bool = True,
    message_id: int | None = None,
    meta: dict[str, Any] | None = None,
) -> list[Upload]:
    """Queue ``documents`` for ``postbox``'s outbox as ``batch`` (+ a manifest, uploaded last); durable and
    idempotent. The ``postbox-mirror`` job (or ``upload_now``) uploads them. Returns the batch's rows.
    ``meta``: more fields for the manifest (its own keys win), which is then built now."""
    batch = safe_name(batch)
    items = []
    for d in documents:
        if (d.data is None) == (d.path is None):
            raise ValueError(f"{d.name}: give data or path")
        sha, size = _into_store(files, d.data, d.path, None)
        name = safe_name(d.name)
        items.append((d.ident or f"{batch}:{name}", name, sha, size))
    return _enqueue(engine, files, postbox, batch, message_id, items, manifest, meta)[1]


def batch_state(engine: Engine, postbox: str, batch: str) -> str:
    """``done`` when every file and the manifest are in place, ``failed: <reason>`` when one failed (it is
    tried again), else ``pending``."""
    rows = store.batch_rows(engine, postbox, safe_name(batch))
    failed = [r for r in rows if r.state == store.FAILED]
    if failed:
        return f"failed: {failed[0].remote_name}: {failed[0].detail}"
    return "done" if rows and all(r.state == store.DONE for r in rows) else "pending"


class MirrorPlanner:
    """The delivery's half: which documents of a delivered verzoek go to which postbox (``[[mirror]]``)."""

    def __init__(self, engine: Engine, files: FileStore, postboxes: set[str]) -> None:
        self.engine = engine
        self.files = files
        self.postboxes = postboxes

    def selected(
        self, mapping: LoadedMapping, verzoek: Verzoek, zaaktypen: set[str]
    ) -> dict[str, tuple[bool, list[Bijlage]]]:
        """Per postbox: (manifest?, the bijlagen its rules select), in bijlage order."""
        out: dict[str, tuple[bool, list[Bijlage]]] = {}
        advies = verzoek.advies if verzoek.soort is Soort.ADVIES else None  # an adviesaanvraag's adviseur is us
        adviseur = advies.adviseur.oin if advies else None
        for i, rule in enumerate(mapping.mapping.mirror):
            if rule.postbox not in self.postboxes:
                raise MappingError(
                    f"{mapping.path.name}: mirror[{i}].postbox: postbox {rule.postbox!r} is not configured "
                    f"([postboxes.{rule.postbox}])"
                )
            if rule.zaaktypen is not None and not zaaktypen & set(rule.zaaktypen):
                continue
            if rule.adviseurs is not None and adviseur not in rule.adviseurs:
                continue
            chosen = [b for b in verzoek.bijlagen if rule.documenttypen is None or b.documenttype in rule.documenttypen]
            manifest, before = out.get(rule.postbox, (False, []))
            ids = {b.id for b in before}
            out[rule.postbox] = (manifest or rule.manifest, before + [b for b in chosen if b.id not in ids])
        return out

    def plan(self, mappings: list[LoadedMapping], opdracht: Opdracht, steps: Steps, message_id: int | None) -> str:
        """Checkpointed step ``mirror:plan``: queue the selected documents; a summary for the outcome."""
        mapping = route(mappings, opdracht.verzoek).mapping
        if not mapping.mapping.mirror:
            return ""
        verzoek = opdracht.verzoek
        target = getattr(steps, "target", "") or opdracht.target

        def plan() -> dict[str, Any]:
            zaaktypen = {z.zaaktype for z in opdracht.zaken} | store.zaaktypen(self.engine, target, verzoek.nummer)
            planned: dict[str, int] = {}
            skipped = 0
            for postbox, (manifest, bijlagen) in self.selected(mapping, verzoek, zaaktypen).items():
                items = []
                for b in bijlagen:
                    if not b.heeft_inhoud:
                        skipped += 1  # a document without bytes (no postbus configured): nothing to copy
                        continue
                    path = Path(b.bestand) if b.bestand else None
                    sha, size = _into_store(self.files, b.inhoud, path, b.sha256)
                    given = b.bestandsnaam  # the loket's convention, as in the postbus: <nummer>_<bestandsnaam>
                    name = safe_name(given if given.startswith(f"{verzoek.nummer}_") else f"{verzoek.nummer}_{given}")
                    items.append((f"doc:{verzoek.nummer}:{b.id}", name, sha, size))
                if items:
                    batch = safe_name(f"{verzoek.nummer}-{message_id}")
                    planned[postbox] = _enqueue(self.engine, None, postbox, batch, message_id, items, manifest)[0]
            return {"planned": planned, "without_bytes": skipped}

        result = run_step(steps, STEP, plan)
        planned = result.get("planned") or {}
        if not planned:
            return ""
        return "; mirrored to " + ", ".join(f"{p} ({n} new)" for p, n in sorted(planned.items()))


# -- uploading -----------------------------------------------------------------------------------------------


class _Failed(AdapterError):
    """This upload cannot succeed as things are (name taken, content gone): failed, tried again next run."""


def _manifest_content(postbox: str, batch: str, rows: list[Upload], meta: dict[str, Any] | None = None) -> bytes:
    files_ = sorted(
        ({"name": r.remote_name, "size": r.size, "sha256": r.sha256} for r in rows if r.kind == store.FILE),
        key=lambda f: str(f["name"]),
    )
    first = min((r.created_at for r in rows), default=None) or store.now()
    created = first.strftime("%Y-%m-%dT%H:%M:%SZ")
    doc = {**(meta or {}), "batch": batch, "postbox": postbox, "created": created, "files": files_}
    return (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode()


def upload(pb: Postbox, u: Upload, files: FileStore, engine: Engine) -> str:
    """Upload one row's file to the outbox (temp name, verify, rename); returns how it went."""
    assert u.sha256 is not None and u.size is not None
    if not files.has(u.sha256, u.size):
        raise _Failed(f"the file store no longer holds {u.sha256} ({u.size} bytes); plan it again")
    temp = temp_name(u)
    there = pb.stat_outbox(u.remote_name)
    if there is not None:
        if there.regular and there.size == u.size and pb.sha256_outbox(u.remote_name, u.size) == u.sha256:
            pb.remove_outbox(temp)
            return "already in place (recorded now)"
        raise _Failed(f"{u.remote_name} is in the outbox with other content; not overwritten")
    store.mark(engine, u.id, store.UPLOADING, u.detail, attempt=True)
    part = pb.stat_outbox(temp)
    offset = part.size if part is not None and part.regular and part.size <= u.size else 0
    how = f"resumed at {offset}" if offset else "uploaded"
    with open(files.path_for(u.sha256), "rb") as source:
        for attempt in (1, 2):
            if offset:
                log.info("resuming a postbox upload", postbox=pb.name, file=safe_for_log(u.remote_name), offset=offset)
            pb.write_outbox(temp, source, offset, u.size)
            st = pb.stat_outbox(temp)
            size = st.size if st else None
            digest = pb.sha256_outbox(temp, u.size) if size == u.size else None
            if digest == u.sha256:
                break
            pb.remove_outbox(temp)
            problem = f"after upload: size {size}, sha256 {digest}; expected {u.size}, {u.sha256}"
            if attempt == 2 or not offset:
                raise PostboxError(f"postbox {pb.name}: {u.remote_name}: {problem}")
            log.warning("resumed upload did not verify; starting over", postbox=pb.name, problem=problem)
            offset, how = 0, "restarted after a resume that did not verify"
    pb.rename_outbox(temp, u.remote_name)
    return how


def _release(engine: Engine, files: FileStore, u: Upload) -> None:
    """A copy only the mirror needed (inline inhoud, a manifest) leaves the file store once uploaded."""
    if u.sha256 and not store.sha_needed(engine, u.sha256, u.id):
        files.path_for(u.sha256).unlink(missing_ok=True)


@dataclass
class MirrorResult:
    found: int = 0  # uploads to do at the start
    new: int = 0  # uploaded this run
    errors: int = 0
    detail: str = ""


def _mirror_one(engine: Engine, pb: Postbox, files: FileStore, result: MirrorResult) -> list[str]:
    problems: list[str] = []
    rows = store.to_do(engine, pb.name)
    result.found += len(rows)
    for u in sorted(rows, key=lambda r: (r.kind == store.MANIFEST, r.id)):  # manifests last
        if u.kind == store.MANIFEST:
            batch = store.batch_rows(engine, pb.name, u.batch or "")
            if any(r.kind == store.FILE and r.state != store.DONE for r in batch):
                continue  # uploaded after every file of its batch
            if u.sha256 is None:
                content = _manifest_content(pb.name, u.batch or "", batch)
                sha, size = _into_store(files, content, None, None)
                store.set_content(engine, u.id, sha, size)
                u = store.get(engine, u.id) or u
        shown = safe_for_log(u.remote_name)
        try:
            how = upload(pb, u, files, engine)
        except (PostboxRefused, _Failed) as exc:
            result.errors += 1
            problems.append(f"{u.remote_name}: {exc}")
            store.mark(engine, u.id, store.FAILED, str(exc))
            log.error("postbox upload failed", postbox=pb.name, file=shown, reason=str(exc))
            continue
        except PostboxError as exc:  # the connection: this postbox waits for the next run
            result.errors += 1
            store.mark(engine, u.id, store.FAILED, str(exc))
            raise
        except OSError as exc:  # our file store
            result.errors += 1
            problems.append(f"{u.remote_name}: file store: {exc}")
            store.mark(engine, u.id, store.FAILED, f"file store: {exc}")
            continue
        store.mark(engine, u.id, store.DONE)
        result.new += 1
        _release(engine, files, u)
        if u.kind == store.MANIFEST and u.batch:  # a relay waiting for its batch (adviesverzoek: nummer = batch)
            status_store.wake_waiting(engine, u.batch)
        log.info("postbox upload done", postbox=pb.name, file=shown, size=u.size, sha256=u.sha256, how=how)
    return problems


def upload_now(services: Services, postbox: str | None = None) -> MirrorResult:
    """Upload what is queued, for one postbox or all (the ``postbox-mirror`` job)."""
    from adapter.postbox.pickup import postboxes
    from adapter.services import resolve_path

    settings = services.settings
    files = FileStore(resolve_path(settings, settings.store.files_dir))
    result = MirrorResult()
    lines: list[str] = []
    for name, pb in postboxes(settings).items():
        if postbox is not None and name != postbox:
            continue
        if not store.to_do(services.engine, name):
            continue
        try:
            problems = _mirror_one(services.engine, pb, files, result)
        except AdapterError as exc:
            status_store.set_status(services.engine, name, f"mirror: {exc}")
            lines.append(str(exc))
            level = log.warning if isinstance(exc, PostboxError) else log.error
            level("postbox mirror failed", postbox=name, reason=str(exc))
            continue
        status_store.set_status(services.engine, name, "; ".join(f"mirror: {p}" for p in problems) or None)
        lines.extend(problems)
    result.detail = f"{result.found} to upload, {result.new} uploaded, {result.errors} failed"
    if lines:
        result.detail += "; " + "; ".join(lines[:3])
    return result


def run(services: Services) -> MirrorResult:
    """The ``postbox-mirror`` job."""
    return upload_now(services)
