"""Postbus files and postbox status: the few queries ``adapter.postbox`` and the delivery need.

A row of ``postbox_files`` is written when a remote name is first judged (``refused``) or its bytes are
in the file store (``stored``); it moves to ``processed`` once the remote file went to the processed
directory, or to ``expired`` when an orphan waited too long. The delivery of an aanvraag records which
row it used for each bijlage as its checkpoint ``postbus:<bijlageId>``, so ``files_delivered`` can tell
when a file's document is on the zaak.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, and_, exists, insert, select, update
from sqlalchemy import exc as sa_exc

from adapter.store.db import aware, reading, transaction
from adapter.store.outbox import MESSAGE_STATE, DState, now
from adapter.store.tables import deliveries, delivery_steps, messages, postbox_files, postbox_status

STORED, PROCESSED, REFUSED, EXPIRED = "stored", "processed", "refused", "expired"
#: The prefix of a delivery error that waits for (or misses) postbus files: a new file wakes such deliveries.
WAITING_PREFIX = "postbus:"
STEP_PREFIX = "postbus:"


@dataclass(frozen=True)
class PostbusFile:
    id: int
    postbox: str
    remote_name: str
    aanvraagnummer: str | None
    bestandsnaam: str | None
    state: str
    sha256: str | None
    size: int | None
    detail: str | None
    first_seen_at: datetime
    stored_at: datetime | None
    matched_at: datetime | None
    processed_at: datetime | None


def _row(r: Any) -> PostbusFile:
    return PostbusFile(
        r.id,
        r.postbox,
        r.remote_name,
        r.aanvraagnummer,
        r.bestandsnaam,
        r.state,
        r.sha256,
        r.size,
        r.detail,
        aware(r.first_seen_at) or now(),
        aware(r.stored_at),
        aware(r.matched_at),
        aware(r.processed_at),
    )


def get_file(engine: Engine, postbox: str, remote_name: str) -> PostbusFile | None:
    with reading(engine) as conn:
        r = conn.execute(
            select(postbox_files).where(postbox_files.c.postbox == postbox, postbox_files.c.remote_name == remote_name)
        ).first()
    return _row(r) if r else None


def list_files(engine: Engine, state: str | None, limit: int) -> list[PostbusFile]:
    q = select(postbox_files).order_by(postbox_files.c.id.desc()).limit(limit)
    if state:
        q = q.where(postbox_files.c.state == state)
    with reading(engine) as conn:
        return [_row(r) for r in conn.execute(q)]


def record_refused(engine: Engine, postbox: str, remote_name: str, reason: str) -> bool:
    """Record a refused name once; True when it is new (so it is logged once, not every run)."""
    try:
        with transaction(engine) as conn:
            conn.execute(
                insert(postbox_files).values(
                    postbox=postbox, remote_name=remote_name, state=REFUSED, detail=reason, first_seen_at=now()
                )
            )
    except sa_exc.IntegrityError:
        return False
    return True


def record_failure(engine: Engine, postbox: str, remote_name: str, reason: str) -> None:
    """A file that could not be picked up this run (e.g. permission denied): visible, tried again next run."""
    t = now()
    with transaction(engine) as conn:
        done = conn.execute(
            update(postbox_files)
            .where(postbox_files.c.postbox == postbox, postbox_files.c.remote_name == remote_name)
            .values(detail=reason)
        ).rowcount
    if not done:
        try:
            with transaction(engine) as conn:
                conn.execute(
                    insert(postbox_files).values(
                        postbox=postbox, remote_name=remote_name, state="failed", detail=reason, first_seen_at=t
                    )
                )
        except sa_exc.IntegrityError:
            pass


def record_stored(
    engine: Engine, postbox: str, remote_name: str, aanvraagnummer: str, bestandsnaam: str, sha256: str, size: int
) -> None:
    t = now()
    values = {
        "aanvraagnummer": aanvraagnummer,
        "bestandsnaam": bestandsnaam,
        "state": STORED,
        "sha256": sha256,
        "size": size,
        "detail": None,
        "stored_at": t,
    }
    with transaction(engine) as conn:
        done = conn.execute(
            update(postbox_files)
            .where(postbox_files.c.postbox == postbox, postbox_files.c.remote_name == remote_name)
            .values(**values)
        ).rowcount
        if not done:
            conn.execute(
                insert(postbox_files).values(postbox=postbox, remote_name=remote_name, first_seen_at=t, **values)
            )


def find_stored(engine: Engine, aanvraagnummer: str, names: tuple[str, ...]) -> PostbusFile | None:
    """The picked-up file (stored or already processed) of a bijlage, by its candidate remote names."""
    with reading(engine) as conn:
        r = conn.execute(
            select(postbox_files)
            .where(
                postbox_files.c.aanvraagnummer == aanvraagnummer,
                postbox_files.c.remote_name.in_(names),
                postbox_files.c.state.in_((STORED, PROCESSED)),
            )
            .order_by(postbox_files.c.id)
        ).first()
    return _row(r) if r else None


def files_delivered(engine: Engine, files: list[PostbusFile]) -> set[int]:
    """Ids of these files whose aanvraag's delivery is done and used them (checkpoint ``postbus:…``)."""
    nummers = {f.aanvraagnummer for f in files if f.aanvraagnummer}
    if not nummers:
        return set()
    q = (
        select(delivery_steps.c.result)
        .select_from(delivery_steps.join(deliveries, deliveries.c.id == delivery_steps.c.delivery_id))
        .where(
            deliveries.c.nummer.in_(nummers),
            deliveries.c.state == DState.DONE.value,
            delivery_steps.c.key.like(f"{STEP_PREFIX}%"),
            delivery_steps.c.state == "done",
        )
    )
    used: set[int] = set()
    with reading(engine) as conn:
        for (result,) in conn.execute(q):
            try:
                used.add(int(json.loads(result)["file_id"]))
            except (TypeError, ValueError, KeyError):
                continue
    return used


def mark_processed(engine: Engine, file_id: int) -> None:
    t = now()
    with transaction(engine) as conn:
        conn.execute(
            update(postbox_files)
            .where(postbox_files.c.id == file_id)
            .values(state=PROCESSED, processed_at=t, matched_at=t, detail=None)
        )


def orphans(engine: Engine) -> list[PostbusFile]:
    """Stored files whose aanvraagnummer no accepted message carries (yet)."""
    has = exists().where(messages.c.nummer == postbox_files.c.aanvraagnummer, messages.c.dedup_key.is_not(None))
    with reading(engine) as conn:
        rows = conn.execute(
            select(postbox_files).where(postbox_files.c.state == STORED, ~has).order_by(postbox_files.c.id)
        )
        return [_row(r) for r in rows]


def expire(engine: Engine, file_id: int, detail: str) -> bool:
    """An orphan that waited too long: state expired, unless a message claimed it meanwhile."""
    has = exists().where(messages.c.nummer == postbox_files.c.aanvraagnummer, messages.c.dedup_key.is_not(None))
    with transaction(engine) as conn:
        return (
            conn.execute(
                update(postbox_files)
                .where(postbox_files.c.id == file_id, postbox_files.c.state == STORED, ~has)
                .values(state=EXPIRED, detail=detail)
            ).rowcount
            == 1
        )


def sha_in_use(engine: Engine, sha256: str, but: int) -> bool:
    """Another postbus row or any delivery checkpoint still names this content."""
    with reading(engine) as conn:
        other = conn.execute(
            select(postbox_files.c.id).where(
                postbox_files.c.sha256 == sha256,
                postbox_files.c.id != but,
                postbox_files.c.state.in_((STORED, PROCESSED)),
            )
        ).first()
        step = conn.execute(select(delivery_steps.c.key).where(delivery_steps.c.result.like(f"%{sha256}%"))).first()
    return other is not None or step is not None


def wake_waiting(engine: Engine, aanvraagnummer: str) -> int:
    """Deliveries of this aanvraag that wait for (or gave up on) postbus files: run again now, attempts
    reset (a file that comes late is not the delivery's fault). Returns how many."""
    t = now()
    ids = select(messages.c.id).where(messages.c.nummer == aanvraagnummer).scalar_subquery()
    cond = and_(
        deliveries.c.message_id.in_(ids),
        deliveries.c.state.in_((DState.RETRY.value, DState.DEAD.value, DState.NEEDS_ATTENTION.value)),
        deliveries.c.last_error.like(f"{WAITING_PREFIX}%"),
    )
    with transaction(engine) as conn:
        woken = [r.message_id for r in conn.execute(select(deliveries.c.message_id).where(cond))]
        if not woken:
            return 0
        conn.execute(
            update(deliveries).where(cond).values(state=DState.RETRY.value, attempts=0, next_attempt_at=t, updated_at=t)
        )
        conn.execute(
            update(messages).where(messages.c.id.in_(woken)).values(state=MESSAGE_STATE[DState.RETRY], updated_at=t)
        )
    return len(woken)


# -- status ------------------------------------------------------------------------------------------------


def set_status(engine: Engine, postbox: str, error: str | None) -> None:
    t = now()
    values: dict[str, Any] = (
        {"last_success_at": t, "failures": 0}
        if error is None
        else {"last_error_at": t, "last_error": error, "failures": postbox_status.c.failures + 1}
    )
    with transaction(engine) as conn:
        done = conn.execute(update(postbox_status).where(postbox_status.c.postbox == postbox).values(**values)).rowcount
        if not done:
            first = {**values, "failures": 0 if error is None else 1}
            conn.execute(insert(postbox_status).values(postbox=postbox, **first))


@dataclass(frozen=True)
class PostboxStatus:
    postbox: str
    last_success_at: datetime | None
    last_error_at: datetime | None
    last_error: str | None
    failures: int


def statuses(engine: Engine) -> dict[str, PostboxStatus]:
    with reading(engine) as conn:
        rows = conn.execute(select(postbox_status))
        return {
            r.postbox: PostboxStatus(
                r.postbox, aware(r.last_success_at), aware(r.last_error_at), r.last_error, int(r.failures)
            )
            for r in rows
        }


def deadline(t: datetime | None, hours: float) -> datetime | None:
    """``hours`` after ``t`` (aware), or None when ``t`` is unknown."""
    t = aware(t)
    return None if t is None else t + timedelta(hours=hours)


def older_than(t: datetime | None, hours: float) -> bool:
    t = aware(t)
    return t is not None and t < now() - timedelta(hours=hours)


def in_state(engine: Engine, postbox: str, state: str) -> list[PostbusFile]:
    with reading(engine) as conn:
        rows = conn.execute(
            select(postbox_files)
            .where(postbox_files.c.postbox == postbox, postbox_files.c.state == state)
            .order_by(postbox_files.c.id)
        )
        return [_row(r) for r in rows]


def waiting(engine: Engine) -> list[tuple[int, str | None, str, str]]:
    """Deliveries not done whose last error is about postbus files: (message id, nummer, state, error)."""
    with reading(engine) as conn:
        rows = conn.execute(
            select(deliveries.c.message_id, deliveries.c.nummer, deliveries.c.state, deliveries.c.last_error)
            .where(deliveries.c.state != DState.DONE.value, deliveries.c.last_error.like(f"{WAITING_PREFIX}%"))
            .order_by(deliveries.c.message_id)
        )
        return [(int(r[0]), r[1], str(r[2]), str(r[3])) for r in rows]
