"""The few queries that touch the ``messages`` table.

Accepting a message is one transaction that stores the raw body *and* the answer that will be sent.
Only after its commit does the channel answer, so an acknowledged message is always on disk; a crash
before the commit leaves nothing, and the sender's resend is then a first delivery.

A STAM verzoeknotificatie is only a hint: its duplicate key (verzoeknummer + volgnummer) stays with it
while the werkmap has not said otherwise. Once the werkmap refused the verzoek it named (403/404, state
``hint-refused``), the next notification or werkmap-poll hit of that verzoek takes the key over
(``accept``), and the refused hint can no longer deliver (``confirm_hint``): so a forged notification for a
future verzoeknummer never shadows the real verzoek, and a verzoek is still delivered once.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, case, delete, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from adapter.errors import StoreUnavailable
from adapter.store import outbox
from adapter.store.db import reading, transaction
from adapter.store.tables import deliveries, delivery_attempts, delivery_steps, messages
from adapter.store.writer import GroupCommitWriter


class State(StrEnum):
    RECEIVED = "received"  # accepted and acknowledged; waiting for delivery
    REJECTED = "rejected"  # answered with a fault; kept for the operator only
    #: A verzoeknotificatie whose verzoek the werkmap refused (403/404): kept with the reason until it expires;
    #: its duplicate key goes to the next notification of that verzoek.
    HINT_REFUSED = "hint-refused"


@dataclass(frozen=True)
class InboundRecord:
    """Everything we know about one received message before it is stored."""

    correlation_id: str
    channel: str
    message_type: str
    body: bytes
    sha256: str
    berichtcode: str | None = None
    zender: str | None = None
    ontvanger: str | None = None
    referentienummer: str | None = None
    cross_refnummer: str | None = None
    tijdstip_bericht: str | None = None
    nummer: str | None = None
    volgnummer: int | None = None
    dedup_key: str | None = None
    #: For the outbox: does this message create a zaak (aanvraag) or follow one up (aanvulling, …)?
    creates_zaak: bool = False
    #: What a lenient schema check let through (one line each, element names and lines, never content).
    warnings: tuple[str, ...] = ()

    def values(self) -> dict[str, Any]:
        now = datetime.now(UTC)
        return {
            "correlation_id": self.correlation_id,
            "channel": self.channel,
            "message_type": self.message_type[:64],
            "berichtcode": (self.berichtcode or None) and self.berichtcode[:8],
            "zender": self.zender and self.zender[:320],
            "ontvanger": self.ontvanger and self.ontvanger[:320],
            "referentienummer": self.referentienummer and self.referentienummer[:255],
            "cross_refnummer": self.cross_refnummer and self.cross_refnummer[:255],
            "tijdstip_bericht": self.tijdstip_bericht and self.tijdstip_bericht[:32],
            "nummer": self.nummer and self.nummer[:64],
            "volgnummer": self.volgnummer,
            "dedup_key": self.dedup_key,
            "body": self.body,
            "warnings": _warnings_json(self.warnings),
            "size": len(self.body),
            "sha256": self.sha256,
            "received_at": now,
            "updated_at": now,
        }


def _warnings_json(warnings: tuple[str, ...] | list[str]) -> str | None:
    return json.dumps(list(warnings), ensure_ascii=False) if warnings else None


#: One statement object, so SQLAlchemy's compiled cache serves every insert (parameters at execute).
_INSERT = messages.insert().returning(messages.c.id)


class Outcome(StrEnum):
    STORED = "stored"  # new message, committed
    DUPLICATE = "duplicate"  # identical resend: answer again what was answered before
    CONFLICT = "conflict"  # same key, different content (StUF016)


@dataclass(frozen=True)
class Accepted:
    outcome: Outcome
    message_id: int
    answer: str | None
    #: The refused hint (message id) whose duplicate key this message took over.
    replaced: int | None = None


@functools.cache
def _insert_unless_duplicate(dialect: str) -> Any:
    """INSERT … ON CONFLICT (dedup_key) DO NOTHING RETURNING id: a resend yields no row, no error,
    so it can share a group-commit transaction with other messages."""
    insert = sqlite_insert if dialect == "sqlite" else pg_insert
    return insert(messages).on_conflict_do_nothing(index_elements=[messages.c.dedup_key]).returning(messages.c.id)


def accept(writer: GroupCommitWriter, record: InboundRecord, answer: str, *, enqueue: bool = True) -> Accepted:
    """Store an accepted message with the answer to send, or report it as duplicate/conflict.

    With ``enqueue`` its outbox row is inserted in the same transaction (the outbox pattern): a
    message is never acknowledged without its delivery being scheduled.

    Returns only after the commit. The unique ``dedup_key`` decides under concurrency: of two
    identical resends racing, one inserts and the other finds that row and repeats its answer.

    A key held by a refused hint (``hint-refused``) is taken over: the hint gives it up (its ``dedup_key``
    becomes NULL, conditional on its state, so a hint being confirmed by a resend at this moment keeps it)
    and this message is stored as new. Only this conflict path pays for that.
    """
    assert record.dedup_key, "accepted messages need a dedup key"
    stmt = _insert_unless_duplicate(writer.engine.dialect.name)
    params = {**record.values(), "state": State.RECEIVED.value, "answer": answer}
    key = record.dedup_key

    def write(conn: Connection) -> Accepted:
        replaced = None
        for _ in range(3):  # a holder that goes between two statements (taken over, expired): insert again
            new_id = conn.execute(stmt, params).scalar_one_or_none()
            if new_id is not None:
                if enqueue:
                    outbox.enqueue(conn, new_id, record.nummer, record.creates_zaak)
                return Accepted(Outcome.STORED, new_id, answer, replaced)
            row = conn.execute(_HOLDER, {"key": key}).one_or_none()
            if row is None:
                continue
            if (
                row.state == State.HINT_REFUSED
                and conn.execute(_GIVE_UP_KEY, {"hint_id": row.id, "hint_key": key}).rowcount
            ):
                replaced = row.id
                continue
            if row.sha256 == record.sha256:
                return Accepted(Outcome.DUPLICATE, row.id, row.answer)
            return Accepted(Outcome.CONFLICT, row.id, None)
        raise StoreUnavailable(f"duplicate key {key} changed hands three times during one insert; send again")

    return writer.run(write)


_HOLDER = select(messages.c.id, messages.c.sha256, messages.c.answer, messages.c.state).where(
    messages.c.dedup_key == bindparam("key")
)
#: A refused hint gives its key up, unless a resend confirmed it (state no longer hint-refused) meanwhile.
_GIVE_UP_KEY = (
    update(messages)
    .where(
        messages.c.id == bindparam("hint_id"),
        messages.c.dedup_key == bindparam("hint_key"),
        messages.c.state == State.HINT_REFUSED.value,
    )
    .values(dedup_key=None)
)


def confirm_hint(engine: Engine, message_id: int) -> bool:
    """The werkmap confirmed the verzoek of this STAM message: may it deliver? Only while it still holds its
    duplicate key; a refused hint being resent becomes ``received`` again, so no notification takes its key
    from now on. False: a later notification of the verzoek took the key over and delivers it instead.

    One conditional UPDATE against ``accept``'s conditional take-over of the same row: whichever commits
    first wins, on SQLite (one writer) and PostgreSQL (row lock, WHERE re-checked) alike."""
    stmt = (
        update(messages)
        .where(messages.c.id == message_id, messages.c.dedup_key.is_not(None))
        .values(
            state=case((messages.c.state == State.HINT_REFUSED.value, State.RECEIVED.value), else_=messages.c.state)
        )
    )
    with transaction(engine) as conn:
        return bool(conn.execute(stmt).rowcount)


def expire_refused_hints(engine: Engine, before: datetime) -> list[int]:
    """Delete refused hints that reached that state before ``before``, with their delivery, attempts and
    checkpoints (a refused hint fetched nothing); returns their message ids. One being resent right now
    (delivery running) is left alone: its delivery rows are locked first and re-checked (PostgreSQL)."""
    q = (
        select(deliveries.c.id, deliveries.c.message_id)
        .join(messages, messages.c.id == deliveries.c.message_id)
        .where(
            messages.c.state == State.HINT_REFUSED.value,
            deliveries.c.state == State.HINT_REFUSED.value,
            messages.c.updated_at < before,
        )
        .with_for_update(of=[deliveries, messages])
    )
    with transaction(engine) as conn:
        rows = conn.execute(q).all()
        if not rows:
            return []
        dids = [r.id for r in rows]
        mids = [r.message_id for r in rows]
        conn.execute(delete(delivery_steps).where(delivery_steps.c.delivery_id.in_(dids)))
        conn.execute(delete(delivery_attempts).where(delivery_attempts.c.delivery_id.in_(dids)))
        conn.execute(delete(deliveries).where(deliveries.c.id.in_(dids)))
        conn.execute(delete(messages).where(messages.c.id.in_(mids)))
    return sorted(mids)


def reject(
    writer: GroupCommitWriter,
    record: InboundRecord,
    answer: str,
    error_code: str,
    error_text: str,
    *,
    max_body_bytes: int | None = None,
) -> int:
    """Log a rejected message (no dedup key: it never blocks a corrected resend).

    A rejected body is only there for the operator to look at, and may be anything a caller sent, so it is
    stored cut to ``max_body_bytes`` (``[retention] rejected_body_max_bytes``); ``size`` stays the size
    received and ``body_truncated`` says it was cut."""
    values = {
        **record.values(),
        "dedup_key": None,
        "state": State.REJECTED.value,
        "answer": answer,
        "error_code": error_code,
        "error_text": error_text[:4000],
    }
    if max_body_bytes is not None and len(record.body) > max_body_bytes:
        values["body"] = record.body[:max_body_bytes]
        values["body_truncated"] = True
    return writer.run(lambda conn: conn.execute(_INSERT, values).scalar_one())


@dataclass(frozen=True)
class StoredMessage:
    """One stored message as the delivery and the operator read it back (``get_message``)."""

    id: int
    correlation_id: str
    channel: str  # stuf-lvo | stam
    message_type: str
    berichtcode: str | None
    zender: str | None
    ontvanger: str | None
    referentienummer: str | None
    cross_refnummer: str | None
    tijdstip_bericht: str | None
    nummer: str | None
    volgnummer: int | None
    state: str
    error_code: str | None
    error_text: str | None
    size: int
    sha256: str
    received_at: datetime
    updated_at: datetime
    body: bytes = field(repr=False)  # exactly as received
    answer: str | None = field(repr=False)  # what was sent back, byte for byte
    #: What a lenient schema check let through (``InboundRecord.warnings``, or set by the delivery).
    warnings: tuple[str, ...] = ()
    #: Retention: when the body was purged (``body`` is then empty), and whether a rejected body was cut.
    body_purged_at: datetime | None = None
    body_truncated: bool | None = None


_STORED_COLUMNS = tuple(messages.c[f.name] for f in fields(StoredMessage))


def get_message(engine: Engine, message_id: int) -> StoredMessage | None:
    with reading(engine) as conn:
        row = conn.execute(select(*_STORED_COLUMNS).where(messages.c.id == message_id)).one_or_none()
    if row is None:
        return None
    values = row._asdict()
    warnings = tuple(json.loads(values["warnings"])) if values["warnings"] else ()
    # a driver may hand out a memoryview
    return StoredMessage(**{**values, "body": bytes(values["body"]), "warnings": warnings})


def set_warnings(engine: Engine, message_id: int, warnings: tuple[str, ...]) -> None:
    """Replace the warnings of a message (the delivery, after reading its verzoek again)."""
    values = {"warnings": _warnings_json(warnings), "updated_at": datetime.now(UTC)}
    stmt = update(messages).where(messages.c.id == message_id).values(**values)
    with transaction(engine) as conn:
        conn.execute(stmt)


def count_by_state(engine: Engine) -> dict[str, int]:
    with reading(engine) as conn:
        rows = conn.execute(select(messages.c.state, func.count()).group_by(messages.c.state))
        return {state: n for state, n in rows}
