"""Retention (AVG): purge message bodies and the werkmap documents fetched for them once past retention.

A message's body is personal data the adapter only carries; once the zaaksysteem holds the verzoek (or an
operator had time to look at a rejected or failed one) it goes. What stays is metadata: ids, times,
states, codes, references, the answer sent and the delivery's checkpoints and calls (URLs and
identificaties). Age counts from ``messages.updated_at``: the moment the message reached its state.

A body is never purged while its delivery is pending, retrying or running: each batch is one UPDATE whose
conditions re-check that, so a resend that claims a delivery first wins, and one that comes after finds
the body purged and is refused.

Documents are content-addressed (sha256), so one file may serve several messages (a STAM aanvulling lists
every document of the verzoek so far). The files a delivery took are named by its checkpoints: werkmap
documents and the verzoek PDF (STAM), postbus files (StUF-LVO bijlagen without inhoud, picked up from the
postbus) and advice documents fetched from samenwerken: every checkpoint that names a file carries its
``sha256``. A file goes only when every message whose delivery step named it has had its body purged,
and no postbus file waiting for its aanvraag and no upload to a postbox not done yet has the same content.
A file that no step names yet (a download whose checkpoint is being written) is left alone, and files are
not touched while a STAM delivery runs, since it may be about to reuse one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, and_, exists, func, select, update

from adapter.config import RetentionDays, RetentionSettings
from adapter.errors import InputError
from adapter.store.db import reading, transaction
from adapter.store.files import FileStore
from adapter.store.messages import StoredMessage
from adapter.store.outbox import DState
from adapter.store.postbox import STORED as POSTBUS_STORED
from adapter.store.tables import deliveries, delivery_steps, messages, postbox_files, postbox_uploads
from adapter.store.uploads import DONE as UPLOAD_DONE

#: Message-log states with a retention, and the setting that holds it.
STATE_SETTINGS = {
    "delivered": "delivered_days",
    "rejected": "rejected_days",
    "dead": "dead_days",
    "needs-attention": "needs_attention_days",
    "handled": "handled_days",
}
_ACTIVE = (DState.PENDING.value, DState.RETRY.value, DState.RUNNING.value)
#: Bodies purged per transaction.
BATCH = 500


@dataclass(frozen=True)
class PurgedMessage:
    id: int
    state: str
    since: datetime  # in this state since (updated_at)
    bytes: int  # body bytes stored


@dataclass(frozen=True)
class PurgedFile:
    sha256: str
    bytes: int


@dataclass
class Purge:
    """What a purge removed (or, dry, would remove): no personal data, only ids, states, times and sizes."""

    messages: list[PurgedMessage] = field(default_factory=list)
    files: list[PurgedFile] = field(default_factory=list)
    #: Why files were left for the next run (a STAM delivery running), or None.
    files_postponed: str | None = None
    errors: list[str] = field(default_factory=list)

    def summary(self, dry_run: bool = False) -> str:
        verb = "would purge" if dry_run else "purged"
        body_bytes = sum(m.bytes for m in self.messages)
        file_bytes = sum(f.bytes for f in self.files)
        text = f"{verb} {len(self.messages)} message bodies ({body_bytes} bytes)"
        text += f", {len(self.files)} files ({file_bytes} bytes)"
        if self.files_postponed:
            text += f"; files postponed: {self.files_postponed}"
        if self.errors:
            text += f"; {len(self.errors)} errors: {'; '.join(self.errors[:3])}"
        return text


def cutoffs(settings: RetentionSettings, at: datetime | None = None) -> dict[str, datetime]:
    """Per message state: bodies of messages in that state since before this moment are past retention."""
    t = at or datetime.now(UTC)
    out = {}
    for state, key in STATE_SETTINGS.items():
        days: RetentionDays = getattr(settings, key)
        if days != "forever":
            out[state] = t - timedelta(days=days)
    return out


def _due(state: str, cutoff: datetime) -> Any:
    no_active_delivery = ~exists().where(
        and_(deliveries.c.message_id == messages.c.id, deliveries.c.state.in_(_ACTIVE))
    )
    return and_(
        messages.c.state == state,
        messages.c.updated_at < cutoff,
        messages.c.body_purged_at.is_(None),
        no_active_delivery,
    )


def _document_steps(engine: Engine, counted_as_purged: set[int]) -> list[tuple[str, bool]]:
    """(sha256, body purged?) for every file a delivery took: a checkpoint that names a file in the file store
    carries its ``sha256`` (werkmap documents and PDF, postbus files, samenwerken advice documents);
    ``counted_as_purged``: ids a dry run counts as purged."""
    q = (
        select(delivery_steps.c.result, messages.c.id, messages.c.body_purged_at)
        .join(deliveries, deliveries.c.id == delivery_steps.c.delivery_id)
        .join(messages, messages.c.id == deliveries.c.message_id)
        .where(
            delivery_steps.c.state == "done",
            delivery_steps.c.result.like('%"sha256"%'),
        )
    )
    out = []
    with reading(engine) as conn:
        for row in conn.execute(q):
            sha = (json.loads(row.result) if row.result else {}).get("sha256")
            if isinstance(sha, str):
                out.append((sha.lower(), row.body_purged_at is not None or row.id in counted_as_purged))
    return out


def _stam_delivery_running(engine: Engine) -> bool:
    q = (
        select(func.count())
        .select_from(deliveries.join(messages, messages.c.id == deliveries.c.message_id))
        .where(deliveries.c.state == DState.RUNNING.value, messages.c.channel == "stam")
    )
    with reading(engine) as conn:
        return bool(conn.execute(q).scalar_one())


def _waiting_content(engine: Engine) -> set[str]:
    """Content still to be used outside a delivery's checkpoints: postbus files picked up and waiting for
    their aanvraag (or orphans), and uploads to postboxes not done yet."""
    with reading(engine) as conn:
        postbus = conn.execute(select(postbox_files.c.sha256).where(postbox_files.c.state == POSTBUS_STORED)).all()
        uploads = conn.execute(select(postbox_uploads.c.sha256).where(postbox_uploads.c.state != UPLOAD_DONE)).all()
    return {str(sha).lower() for (sha,) in [*postbus, *uploads] if sha}


def _files_to_remove(engine: Engine, store: FileStore, counted_as_purged: set[int]) -> list[PurgedFile]:
    """Files that only purged messages name."""
    steps = _document_steps(engine, counted_as_purged)
    needed = {sha for sha, purged in steps if not purged} | _waiting_content(engine)
    out = []
    for sha in sorted({sha for sha, purged in steps if purged} - needed):
        try:
            out.append(PurgedFile(sha, store.path_for(sha).stat().st_size))
        except FileNotFoundError:
            continue  # gone already (an earlier purge)
    return out


def plan(engine: Engine, settings: RetentionSettings, files_root: Path | None, at: datetime | None = None) -> Purge:
    """What ``purge`` would remove now; changes nothing."""
    result = Purge()
    size = func.length(messages.c.body)
    with reading(engine) as conn:
        for state, cutoff in cutoffs(settings, at).items():
            q = (
                select(messages.c.id, messages.c.updated_at, size.label("bytes"))
                .where(_due(state, cutoff))
                .order_by(messages.c.id)
            )
            result.messages += [PurgedMessage(r.id, state, _utc(r.updated_at), r.bytes or 0) for r in conn.execute(q)]
    result.messages.sort(key=lambda m: m.id)
    if files_root is not None and files_root.is_dir():
        ids = {m.id for m in result.messages}
        result.files = _files_to_remove(engine, FileStore(files_root), ids)
    return result


def purge(engine: Engine, settings: RetentionSettings, files_root: Path | None, at: datetime | None = None) -> Purge:
    """Empty the bodies past retention (metadata stays), then remove the files only purged messages name."""
    result = Purge()
    t = datetime.now(UTC)
    size = func.length(messages.c.body)
    for state, cutoff in cutoffs(settings, at).items():
        while True:  # in batches: short transactions, and SQLite's limit on bound parameters
            with transaction(engine) as conn:
                rows = conn.execute(
                    select(messages.c.id, messages.c.updated_at, size.label("bytes"))
                    .where(_due(state, cutoff))
                    .order_by(messages.c.id)
                    .limit(BATCH)
                ).all()
                if not rows:
                    break
                # the same conditions again in the UPDATE: a delivery claimed meanwhile keeps its body
                purged = conn.execute(
                    update(messages)
                    .where(messages.c.id.in_([r.id for r in rows]), _due(state, cutoff))
                    .values(body=b"", body_purged_at=t)
                    .returning(messages.c.id)
                ).all()
            done = {r.id for r in purged}
            result.messages += [
                PurgedMessage(r.id, state, _utc(r.updated_at), r.bytes or 0) for r in rows if r.id in done
            ]
            if len(rows) < BATCH or not done:
                break
    result.messages.sort(key=lambda m: m.id)
    if files_root is None or not files_root.is_dir():
        return result
    store = FileStore(files_root)
    for f in _files_to_remove(engine, store, set()):
        if _stam_delivery_running(engine):  # checked per file: it may be about to reuse this one
            result.files_postponed = "a STAM delivery is running; the next purge removes them"
            break
        try:
            store.path_for(f.sha256).unlink()
            store.discard_partial(f.sha256)
        except FileNotFoundError:
            continue
        except OSError as exc:
            result.errors.append(f"file {f.sha256}: {exc.strerror or exc}")
            continue
        result.files.append(f)
    return result


def _utc(value: datetime) -> datetime:
    """A stored timestamp in UTC (SQLite gives naive UTC, PostgreSQL the session's time zone)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def purged_text(at: datetime) -> str:
    """How the operator is told (``messages show``, resend): when, and why."""
    return f"body purged on {_utc(at):%Y-%m-%d %H:%M} UTC (retention)"


class BodyPurged(InputError):
    """The message's body is gone (retention): it cannot be read as a verzoek, delivered or resent."""


def check_not_purged(message: StoredMessage) -> None:
    """Refuse a message whose body was purged (permanent: it will not come back)."""
    if message.body_purged_at is not None:
        raise BodyPurged(f"message {message.id}: {purged_text(message.body_purged_at)}; it cannot be delivered again")


def purged_at(engine: Engine, message_ids: list[int]) -> dict[int, datetime]:
    """The purge time of those of ``message_ids`` whose body was purged."""
    q = select(messages.c.id, messages.c.body_purged_at).where(
        messages.c.id.in_(message_ids), messages.c.body_purged_at.is_not(None)
    )
    with reading(engine) as conn:
        return {r.id: r.body_purged_at for r in conn.execute(q)}
