"""The message log as operators read it: each message with its delivery (attempts, next attempt, last error).

Read-only queries for the CLI (``messages list``) and the console; the writes that the delivery guarantees
rest on stay in ``messages.py`` and ``outbox.py``. Pages go newest first by id (keyset: ``before`` is the last
id of the previous page), so a page costs the same on row 200,000 as on row 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, Select, select

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
    nummer: str | None = None

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
    if flt.nummer:
        q = q.where(messages.c.nummer == flt.nummer)
    return q


def page(engine: Engine, flt: LogFilter = LogFilter(), *, limit: int = 100, before: int | None = None) -> list[LogRow]:
    """Up to ``limit`` messages matching ``flt``, newest first, older than id ``before`` when given."""
    joined = messages.outerjoin(deliveries, deliveries.c.message_id == messages.c.id)
    q = _where(select(*_COLUMNS).select_from(joined), flt).order_by(messages.c.id.desc()).limit(limit)
    if before is not None:
        q = q.where(messages.c.id < before)
    with reading(engine) as conn:
        return [LogRow(**row._asdict()) for row in conn.execute(q)]
