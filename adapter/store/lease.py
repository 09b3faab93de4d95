"""The lease a worker holds on a claimed delivery, with a fencing token.

Every claim (``outbox.claim``, a resend's ``claim_ids``, a takeover of an expired lease) raises the row's
``fence`` and hands the new value to its worker. The worker renews the lease while it runs (a heartbeat
in ``delivery.worker``), and each of its writes to the delivery — the outcome in ``outbox.finish``, the
checkpoints and zaak links in ``DbSteps`` — first renews it *in the same transaction* with
``WHERE fence = <ours> AND state = 'running'``. A worker whose lease was taken over therefore writes
nothing (its transaction rolls back on ``LeaseLost``), and the UPDATE's row lock orders the check against
a concurrent takeover on PostgreSQL (SQLite serialises all writers anyway).

The zaaksysteem takes no fencing token, so the calls themselves are guarded by ``Lease.check`` before
each one: a flag the heartbeat sets when it finds the lease gone, and, when the heartbeat has not
confirmed the lease for half its duration (the process stalled, the store was slow), a renewal right
there, so a worker that wakes up from a stall learns it lost the delivery before it calls again.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, select, update

from adapter.errors import LeaseLost, StoreUnavailable
from adapter.store.db import reading, transaction
from adapter.store.tables import deliveries

__all__ = ["Lease", "LeaseLost", "holder_of"]

_RUNNING = "running"  # outbox.DState.RUNNING (the outbox imports this module, not the other way round)

#: Extends the lease only while the row still carries our token and runs: built once, like the claim.
_RENEW = (
    update(deliveries)
    .where(
        deliveries.c.id == bindparam("delivery_id"),
        deliveries.c.fence == bindparam("held_fence"),
        deliveries.c.state == _RUNNING,
    )
    .values(lease_until=bindparam("lease_until"))
)


class Lease:
    """This run's hold on one delivery: its fencing token, renewal, and whether it was lost."""

    def __init__(
        self, engine: Engine, delivery_id: int, fence: int, duration: timedelta, confirmed_at: float | None = None
    ) -> None:
        self.engine = engine
        self.delivery_id = delivery_id
        self.fence = fence
        self.duration = duration
        #: ``time.monotonic()`` of the last write that proved the lease ours (at first: the claim)
        self._confirmed = time.monotonic() if confirmed_at is None else confirmed_at
        self._lost = threading.Event()

    @property
    def lost(self) -> bool:
        return self._lost.is_set()

    def _error(self) -> LeaseLost:
        return LeaseLost(
            f"delivery {self.delivery_id}: lease taken over by another worker (our fencing token {self.fence} "
            "is no longer current); this run stops and writes nothing"
        )

    def hold(self, conn: Connection) -> None:
        """Inside a write transaction: renew the lease, or raise ``LeaseLost`` so the transaction (and every
        write in it) rolls back."""
        t0 = time.monotonic()
        params = {
            "delivery_id": self.delivery_id,
            "held_fence": self.fence,
            "lease_until": datetime.now(UTC) + self.duration,
        }
        if conn.execute(_RENEW, params).rowcount != 1:
            self._lost.set()
            raise self._error()
        self._confirmed = t0

    def renew(self) -> bool:
        """Extend the lease by its duration from now (the heartbeat); False once another claim replaced it."""
        if self.lost:
            return False
        try:
            with transaction(self.engine) as conn:
                self.hold(conn)
        except LeaseLost:
            return False
        return True

    def check(self) -> None:
        """Before a call to the far side: raise ``LeaseLost`` if this run no longer holds the delivery."""
        if self.lost:
            raise self._error()
        if time.monotonic() - self._confirmed > self.duration.total_seconds() / 2 and not self.renew():
            raise self._error()


def holder_of(engine: Engine, delivery_id: int) -> dict[str, Any]:
    """Who holds a delivery now (for the log line of a run that lost it); empty if the store cannot say."""
    try:
        with reading(engine) as conn:
            row = conn.execute(
                select(deliveries.c.claimed_by, deliveries.c.fence, deliveries.c.state).where(
                    deliveries.c.id == delivery_id
                )
            ).first()
    except StoreUnavailable:
        return {}
    if row is None:
        return {}
    return {"now_claimed_by": row.claimed_by, "now_fence": row.fence, "now_state": row.state}
