"""The message log as operators read it: each message with its delivery (attempts, next attempt, last error).

Read-only queries for the CLI (``messages list``) and the console; the writes that the delivery guarantees
rest on stay in ``messages.py`` and ``outbox.py``. Pages go newest first by id (keyset: ``before`` is the last
id of the previous page), so a page costs the same on row 200,000 as on row 1.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, Select, func, select, tuple_

from adapter.store.db import reading
from adapter.store.messages import State
from adapter.store.outbox import MESSAGE_STATE
from adapter.store.states import MESSAGE_STATES
from adapter.store.tables import deliveries, messages

#: Every state a message can be in: the three the intake sets, and the ones its delivery moves it to.
_KNOWN = tuple(dict.fromkeys([*(s.value for s in State), *MESSAGE_STATE.values()]))
if MESSAGE_STATES != _KNOWN:  # the command line's copy (adapter/store/states.py) must not drift
    raise RuntimeError(f"adapter/store/states.py lists {MESSAGE_STATES}, the store knows {_KNOWN}")


@dataclass(frozen=True)
class LogFilter:
    """What ``messages list`` (and the console) narrow the log to; None is no condition."""

    state: str | None = None
    message_type: str | None = None
    since: datetime | None = None
    #: received before this moment
    until: datetime | None = None
    #: aanvraagnummer (StUF-LVO) or verzoeknummer (STAM)
    nummer: str | None = None
    channel: str | None = None
    zender: str | None = None
    #: the sender's referentienummer of the message
    referentie: str | None = None

    def __post_init__(self) -> None:
        if self.state is not None and self.state not in MESSAGE_STATES:
            raise ValueError(f"unknown message state {self.state!r}; one of: {', '.join(MESSAGE_STATES)}")


@dataclass(frozen=True)
class LogRow:
    id: int
    received_at: datetime
    channel: str
    message_type: str
    nummer: str | None
    zender: str | None
    referentienummer: str | None
    state: str
    error_code: str | None
    size: int
    #: the delivery's: None for a message that has none (rejected, or not yet enqueued)
    delivery_state: str | None
    attempts: int | None
    next_attempt_at: datetime | None
    last_error: str | None


_COLUMNS = (
    messages.c.id,
    messages.c.received_at,
    messages.c.channel,
    messages.c.message_type,
    messages.c.nummer,
    messages.c.zender,
    messages.c.referentienummer,
    messages.c.state,
    messages.c.error_code,
    messages.c.size,
    deliveries.c.state.label("delivery_state"),
    deliveries.c.attempts,
    deliveries.c.next_attempt_at,
    deliveries.c.last_error,
)


def _where(q: Select[Any], flt: LogFilter) -> Select[Any]:
    if flt.state:
        q = q.where(messages.c.state == flt.state)
    if flt.message_type:
        q = q.where(messages.c.message_type == flt.message_type)
    if flt.since:
        q = q.where(messages.c.received_at >= flt.since)
    if flt.until:
        q = q.where(messages.c.received_at < flt.until)
    if flt.nummer:
        q = q.where(messages.c.nummer == flt.nummer)
    if flt.channel:
        q = q.where(messages.c.channel == flt.channel)
    if flt.zender:
        q = q.where(messages.c.zender == flt.zender)
    if flt.referentie:
        q = q.where(messages.c.referentienummer == flt.referentie)
    return q


def page(engine: Engine, flt: LogFilter = LogFilter(), *, limit: int = 100, before: int | None = None) -> list[LogRow]:
    """Up to ``limit`` messages matching ``flt``, newest first, after message ``before`` (the last of the previous
    page) when given. Newest is the highest id; with ``until`` (a window that ends in the past) the latest
    ``received_at``, so the page is read from that end of its index instead of passing over every newer id."""
    joined = messages.outerjoin(deliveries, deliveries.c.message_id == messages.c.id)
    q = _where(select(*_COLUMNS).select_from(joined), flt).limit(limit)
    with reading(engine) as conn:
        if flt.until is None:
            q = q.order_by(messages.c.id.desc())
            if before is not None:
                q = q.where(messages.c.id < before)
        else:
            q = q.order_by(messages.c.received_at.desc(), messages.c.id.desc())
            if before is not None:
                at = conn.execute(select(messages.c.received_at).where(messages.c.id == before)).scalar()
                key = tuple_(messages.c.received_at, messages.c.id)
                q = q.where(key < tuple_(at, before) if at is not None else messages.c.id < before)
        return [LogRow(**row._asdict()) for row in conn.execute(q)]


class StateCounts:
    """Messages per state for the top of the console's list. Exact for every state but ``delivered`` (each a
    short range of its index); ``delivered``, nearly every row and a scan of most of the index, is counted again
    at most every ``refresh`` seconds (``as_of`` says when), so the page stays fast as the store grows."""

    def __init__(self, refresh: float = 30.0) -> None:
        self.refresh = refresh
        self._delivered: tuple[float, int, datetime] | None = None
        self._lock = threading.Lock()

    def get(self, engine: Engine) -> tuple[dict[str, int], datetime]:
        """(count per state, when ``delivered`` was counted)."""
        others = [s for s in MESSAGE_STATES if s != _DELIVERED]
        q = select(messages.c.state, func.count()).where(messages.c.state.in_(others)).group_by(messages.c.state)
        with reading(engine) as conn:
            counts = {state: int(n) for state, n in conn.execute(q)}
            with self._lock:
                cached = self._delivered
                if cached is None or time.monotonic() - cached[0] > self.refresh:
                    n = conn.execute(select(func.count()).where(messages.c.state == _DELIVERED)).scalar_one()
                    cached = self._delivered = (time.monotonic(), int(n), datetime.now(UTC))
        counts[_DELIVERED] = cached[1]
        return counts, cached[2]


_DELIVERED = "delivered"


def matching_ids(engine: Engine, flt: LogFilter, *, limit: int) -> list[int]:
    """Ids of up to ``limit`` messages matching ``flt``, oldest first (the order a bulk resend runs in)."""
    q = _where(select(messages.c.id), flt).order_by(messages.c.id).limit(limit)
    with reading(engine) as conn:
        return [r.id for r in conn.execute(q)]


def delivery_view(info: dict[str, Any] | None) -> dict[str, Any] | None:
    """A message's delivery (``adapter.store.outbox.delivery_of_message``) as operators read it: state, next
    attempt (only while one is due), last error, outcome, every attempt with its calls, the checkpoints done."""
    if info is None:
        return None
    d = info["delivery"]
    return {
        "state": d.state,
        "target": d.target,
        "attempts": d.attempts,
        "next_attempt_at": d.next_attempt_at if d.state in ("retry", "pending") else None,
        "last_error": d.last_error,
        "outcome": d.outcome,
        "attempt_log": [
            {
                "started_at": a.started_at,
                "status": a.status,
                "duration_ms": a.duration_ms,
                "error": a.error,
                "calls": json.loads(a.calls or "[]"),
            }
            for a in info["attempts"]
        ],
        "checkpoints": [s.key for s in info["steps"] if s.state == "done"],
    }
