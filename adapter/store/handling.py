"""An operator's verdict on a failed message: handled (outside the adapter), with a reason.

A dead, needs-attention or hint-refused delivery that a beheerder dealt with by hand (the zaak was made in the
zaaksysteem directly, the aanvraag was withdrawn) leaves the "waiting for an operator" counts and is not run
again, unless someone resends it. The state change, the message log's state and the audit line (who, which
message, why) commit together; a delivery in any other state is left alone and reported.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine, select, update

from adapter.store.db import transaction
from adapter.store.outbox import MESSAGE_STATE, DState
from adapter.store.tables import deliveries, messages
from adapter.store.users import audit

#: Delivery states an operator may mark handled: those that wait for one.
MARKABLE = (DState.DEAD.value, DState.NEEDS_ATTENTION.value, DState.HINT_REFUSED.value)


def mark_handled(engine: Engine, message_ids: list[int], *, actor: str, reason: str) -> list[str]:
    """One line per message: marked, or why not. ``reason`` is required (it is what the audit log is for)."""
    reason = " ".join(reason.split())
    if not reason:
        raise ValueError("marking a message handled needs a reason")
    t = datetime.now(UTC)
    out = []
    with transaction(engine) as conn:
        rows = conn.execute(
            select(deliveries.c.message_id, deliveries.c.state).where(deliveries.c.message_id.in_(message_ids))
        )
        found = {r.message_id: r.state for r in rows}
        for mid in message_ids:
            state = found.get(mid)
            if state not in MARKABLE:
                why = "has no delivery (rejected or unknown)" if state is None else f"its delivery is {state}"
                out.append(f"message {mid}: not marked handled: {why}")
                continue
            moved = conn.execute(
                update(deliveries)
                .where(deliveries.c.message_id == mid, deliveries.c.state == state)  # unchanged since read
                .values(state=DState.HANDLED.value, updated_at=t)
            ).rowcount
            if not moved:
                out.append(f"message {mid}: not marked handled: its delivery changed meanwhile")
                continue
            conn.execute(
                update(messages).where(messages.c.id == mid).values(state=MESSAGE_STATE[DState.HANDLED], updated_at=t)
            )
            audit(conn, actor, "marked handled", f"message {mid}", reason)
            out.append(f"message {mid}: marked handled")
    return out
