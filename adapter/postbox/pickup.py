"""``postbox-pickup``: the scheduled job that takes files out of every postbox inbox.

Per postbox, one reused session: list the inbox; refuse odd names and anything but regular files
(recorded once, left where they are); stream each new file into the content-addressed file store (size
checked against the listing, and the remote file must not have changed while it was read; a broken
download resumes from its part file); wake the
deliveries of its aanvraag that wait for it. A file whose aanvraag's delivery is done (it used the file:
checkpoint ``postbus:<bijlageId>``) is moved to ``processed``. Files no message claims are orphans: kept
until ``[postbus] orphan_hours``, then expired (removed from the file store; the remote file stays).
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from adapter.config import PostboxSettings, Settings
from adapter.errors import AdapterError
from adapter.logs import get_logger
from adapter.postbox.client import Postbox, PostboxError, PostboxRefused, RemoteFile
from adapter.postbox.names import parse_name, safe_for_log
from adapter.store import postbox as store
from adapter.store.files import ContentMismatch, FileBusy, FileStore, StoreError

if TYPE_CHECKING:  # the services import everything (targets, lxml, …): not needed to move a file
    from adapter.services import Services

log = get_logger("adapter.postbox")

_cache: dict[str, Postbox] = {}
_cache_lock = threading.Lock()


def postboxes(settings: Settings) -> dict[str, Postbox]:
    """One ``Postbox`` per configured postbox, reused across runs in this process (its session too)."""
    with _cache_lock:
        out = {}
        for name, s in settings.postboxes.items():
            pb = _cache.get(name)
            key = _key_path(settings, s)
            if pb is None or pb.settings != s or pb.key_path != key:
                if pb is not None:
                    pb.close()
                pb = _cache[name] = Postbox(name, s, key)
            out[name] = pb
        return out


def _key_path(settings: Settings, s: PostboxSettings) -> Path | None:
    from adapter.services import resolve_path

    return resolve_path(settings, s.key_file) if s.key_file else None


@dataclass(frozen=True)
class PickupResult:
    found: int  # files in the inboxes
    new: int  # files stored this run
    errors: int
    detail: str


class _Changed(StoreError):
    """The remote file changed while it was read (still being written): tried again next run."""


def _download(pb: Postbox, rf: RemoteFile, files: FileStore) -> tuple[str, int]:
    def write(chunk: bytes) -> None:
        try:
            writer.write(chunk)
        except OSError as exc:  # our disk, not the postbox: said so, not blamed on the server
            raise StoreError(f"file store {files.root}: {exc}") from None

    # a broken download resumes where it stopped, as long as the remote file is the same (name, size, mtime)
    key = hashlib.sha256(f"{pb.name}\0{rf.name}\0{rf.size}\0{rf.mtime}".encode()).hexdigest()[:32]
    with files.writer(None, rf.size, resume_key=key) as writer:
        if writer.offset:
            log.info("resuming a postbus download", postbox=pb.name, file=safe_for_log(rf.name), offset=writer.offset)
        try:
            pb.read_inbox(rf.name, write, writer.offset)
        except BaseException:
            if writer.written == 0:
                writer.discard()  # nothing to resume (e.g. the open was refused): leave no empty part
            raise
        after = pb.stat_inbox(rf.name)
        if (after.size, after.mtime) != (rf.size, rf.mtime):
            writer.discard()
            raise _Changed("changed while it was read (still being written?)")
        path = writer.commit()
    return path.name, rf.size


@dataclass
class _Counts:
    found: int = 0
    new: int = 0
    moved: int = 0
    refused: int = 0
    errors: int = 0


def _pickup_one(services: Services, pb: Postbox, files: FileStore, counts: _Counts) -> list[str]:
    engine = services.engine
    problems: list[str] = []
    listing = pb.list_inbox()
    counts.found += len(listing)
    for rf in listing:
        row = store.get_file(engine, pb.name, rf.name)
        if row is not None and row.state != "failed":
            continue  # stored (waits for its delivery), refused or expired: judged before
        shown = safe_for_log(rf.name)
        try:
            name = parse_name(rf.name)
            if not rf.regular:
                raise ValueError("not a regular file")
        except ValueError as exc:
            counts.refused += 1
            if store.record_refused(engine, pb.name, rf.name, f"refused: {exc}"):
                log.warning("postbus file refused", postbox=pb.name, file=shown, reason=str(exc))
            continue
        try:
            sha256, size = _download(pb, rf, files)
        except PostboxRefused as exc:  # e.g. permission denied: an operator must act; tried again next run
            counts.errors += 1
            problems.append(str(exc))
            store.record_failure(engine, pb.name, rf.name, f"failed: {exc}")
            log.error("postbus file cannot be picked up", postbox=pb.name, file=shown, reason=str(exc))
            continue
        except (FileBusy, _Changed, ContentMismatch) as exc:  # being written, or by another process now
            log.info("postbus file not picked up this run", postbox=pb.name, file=shown, reason=str(exc))
            continue
        except StoreError as exc:  # our file store (disk full, permissions): an operator must look
            counts.errors += 1
            problems.append(str(exc))
            log.error("postbus file cannot be stored", postbox=pb.name, file=shown, reason=str(exc))
            continue
        store.record_stored(engine, pb.name, rf.name, name.aanvraagnummer, name.bestandsnaam, sha256, size)
        counts.new += 1
        woken = store.wake_waiting(engine, name.aanvraagnummer)
        log.info("postbus file stored", postbox=pb.name, file=shown, size=size, sha256=sha256, woke=woken)
    # files whose document is on the zaak: out of the inbox
    stored = store.in_state(engine, pb.name, store.STORED)
    for f in stored:
        if f.id not in store.files_delivered(engine, [f]):
            continue
        try:
            pb.move_to_processed(f.remote_name)
        except PostboxRefused as exc:
            counts.errors += 1
            problems.append(str(exc))
            log.error("postbus file cannot be moved to processed", postbox=pb.name, file=safe_for_log(f.remote_name))
            continue
        store.mark_processed(engine, f.id)
        counts.moved += 1
        log.info("postbus file processed", postbox=pb.name, file=safe_for_log(f.remote_name))
    return problems


def _expire_orphans(services: Services, files: FileStore) -> int:
    hours = services.settings.postbus.orphan_hours
    expired = 0
    for f in store.orphans(services.engine):
        if not store.older_than(f.stored_at, hours):
            continue
        if not store.expire(services.engine, f.id, f"orphan: no aanvraag {f.aanvraagnummer} within {hours:g} h"):
            continue
        expired += 1
        if f.sha256 and not store.sha_in_use(services.engine, f.sha256, f.id):
            files.path_for(f.sha256).unlink(missing_ok=True)
        log.warning("postbus orphan expired", postbox=f.postbox, file=safe_for_log(f.remote_name), hours=hours)
    return expired


def run(services: Services) -> PickupResult:
    from adapter.services import resolve_path

    settings = services.settings
    files = FileStore(resolve_path(settings, settings.store.files_dir))
    counts = _Counts()
    lines: list[str] = []
    for name, pb in postboxes(settings).items():
        try:
            problems = _pickup_one(services, pb, files, counts)
        except AdapterError as exc:  # the postbox as a whole: unreachable, refused, dropped
            counts.errors += 1
            store.set_status(services.engine, name, str(exc))
            level = log.warning if isinstance(exc, PostboxError) else log.error
            level("postbox pickup failed", postbox=name, reason=str(exc))
            lines.append(str(exc))
            continue
        store.set_status(services.engine, name, "; ".join(problems) if problems else None)
        lines.extend(problems)
    expired = _expire_orphans(services, files)
    detail = (
        f"{counts.found} in inboxes, {counts.new} stored, {counts.moved} moved to processed, "
        f"{counts.refused} refused, {expired} orphans expired"
    )
    if lines:
        detail += "; " + "; ".join(lines[:3])
    return PickupResult(counts.found, counts.new, counts.errors, detail)
