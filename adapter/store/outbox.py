"""Outbox queries: enqueue with the message, claim with a lease, checkpoints, attempts, retry/dead.

Claiming works the same on SQLite and PostgreSQL: an UPDATE sets ``state='running'`` and a lease;
PostgreSQL additionally skips rows other workers hold (``FOR UPDATE SKIP LOCKED``), SQLite serialises
claims on its write lock. A worker that dies leaves its lease to expire; another worker then resumes
the delivery from its checkpoints. Deliveries of one verzoeknummer run in arrival order.

Every claim raises the delivery's fencing token (``fence``); its outcome and checkpoints are written only
under the token it was claimed with (``adapter.store.lease``), so a worker that outlived its lease and
was taken over writes nothing.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BindParameter,
    Connection,
    Engine,
    Integer,
    and_,
    bindparam,
    delete,
    exists,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.orm import aliased

from adapter.store.db import is_sqlite, reading, transaction
from adapter.store.lease import Lease, LeaseLost
from adapter.store.tables import (
    deliveries,
    delivery_attempts,
    delivery_steps,
    document_links,
    messages,
    zaak_links,
)


class DState(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    RETRY = "retry"
    DONE = "done"
    DEAD = "dead"
    #: A permanent failure (unreadable verzoek, mapping that cannot apply, a refused request): not retried,
    #: an operator fixes the cause and resends.
    NEEDS_ATTENTION = "needs-attention"
    #: A verzoeknotificatie whose verzoek the werkmap does not confirm (403/404): kept for the operator, not
    #: retried, holding no duplicate key (``adapter.store.messages.accept``); expires (werkmap-poll).
    HINT_REFUSED = "hint-refused"
    #: An operator marked a dead or needs-attention delivery handled (outside the adapter; the reason is in the
    #: audit log): never run again unless resent. ``adapter.store.handling``.
    HANDLED = "handled"


#: What the message log shows once its delivery moved on.
MESSAGE_STATE = {
    DState.DONE: "delivered",
    DState.DEAD: "dead",
    DState.RETRY: "retrying",
    DState.NEEDS_ATTENTION: "needs-attention",
    DState.HINT_REFUSED: "hint-refused",
    DState.HANDLED: "handled",
}


def now() -> datetime:
    return datetime.now(UTC)


_ENQUEUE = insert(deliveries)  # parameters at execute time: one cached compiled statement


def enqueue(conn: Connection, message_id: int, nummer: str | None, creates_zaak: bool = False) -> None:
    """Called inside the transaction that stores the message: the outbox row commits with it."""
    t = now()
    conn.execute(
        _ENQUEUE,
        {
            "message_id": message_id,
            "nummer": nummer,
            "creates_zaak": creates_zaak,
            "state": DState.PENDING.value,
            "attempts": 0,
            "next_attempt_at": t,
            "created_at": t,
            "updated_at": t,
        },
    )


@dataclass(frozen=True)
class Claimed:
    id: int
    message_id: int
    nummer: str | None
    attempts: int
    #: the fencing token this claim got: only writes carrying it are accepted (``finish``, ``DbSteps``)
    fence: int
    #: ``time.monotonic()`` when the lease was granted: a delivery claimed in a batch may start later
    claimed_at: float = field(default_factory=time.monotonic, compare=False)

    def lease(self, engine: Engine, duration: timedelta) -> Lease:
        return Lease(engine, self.id, self.fence, duration, confirmed_at=self.claimed_at)


_CLAIMED = (deliveries.c.id, deliveries.c.message_id, deliveries.c.nummer, deliveries.c.attempts, deliveries.c.fence)


def _claimed(rows: Any, at: float) -> list[Claimed]:
    return [Claimed(r.id, r.message_id, r.nummer, r.attempts, r.fence, at) for r in sorted(rows, key=lambda r: r.id)]


def _pick_statement(for_update: bool) -> Any:
    """The claim query, built once: statement construction costs more than running it."""
    earlier = aliased(deliveries)
    t: BindParameter[datetime] = bindparam("now")
    due = and_(
        or_(
            and_(deliveries.c.state.in_([DState.PENDING.value, DState.RETRY.value]), deliveries.c.next_attempt_at <= t),
            and_(deliveries.c.state == DState.RUNNING.value, deliveries.c.lease_until < t),
        ),
        # order per verzoek: an earlier unfinished delivery of the same nummer blocks this one, except
        # that a zaak-creating delivery does not wait for follow-ups that happened to arrive first
        ~exists().where(
            and_(
                earlier.c.nummer == deliveries.c.nummer,
                earlier.c.id < deliveries.c.id,
                earlier.c.state.in_([DState.PENDING.value, DState.RETRY.value, DState.RUNNING.value]),
                or_(earlier.c.creates_zaak, ~deliveries.c.creates_zaak),
            )
        ),
    )
    pick = (
        select(deliveries.c.id)
        .where(due)
        .order_by(deliveries.c.next_attempt_at, deliveries.c.id)
        .limit(bindparam("limit", type_=Integer, literal_execute=True))
    )
    return pick.with_for_update(skip_locked=True, of=deliveries) if for_update else pick


_PICK = {False: _pick_statement(False), True: _pick_statement(True)}
_MARK_RUNNING = (
    update(deliveries)
    .where(deliveries.c.id.in_(bindparam("ids", expanding=True)))
    .values(
        state=DState.RUNNING.value,
        lease_until=bindparam("lease_until"),
        claimed_by=bindparam("worker"),
        fence=deliveries.c.fence + 1,  # the previous holder, if any, can no longer write
        updated_at=bindparam("now"),
    )
    .returning(*_CLAIMED)
)


def claim(engine: Engine, worker: str, lease: timedelta, limit: int = 1) -> list[Claimed]:
    """Claim up to ``limit`` due deliveries (PostgreSQL skips rows other workers hold)."""
    t, at = now(), time.monotonic()
    with transaction(engine) as conn:
        ids = [r.id for r in conn.execute(_PICK[not is_sqlite(engine)], {"now": t, "limit": limit})]
        if not ids:
            return []
        rows = conn.execute(_MARK_RUNNING, {"ids": ids, "lease_until": t + lease, "worker": worker, "now": t}).all()
    return _claimed(rows, at)


def claim_ids(engine: Engine, ids: list[int], worker: str, lease: timedelta) -> list[Claimed]:
    """Claim specific deliveries for a resend (attempts reset, fencing token raised), unless another worker
    runs them now."""
    t, at = now(), time.monotonic()
    with transaction(engine) as conn:
        rows = conn.execute(
            update(deliveries)
            .where(
                deliveries.c.id.in_(ids),
                or_(deliveries.c.state != DState.RUNNING.value, deliveries.c.lease_until < t),
            )
            .values(
                state=DState.RUNNING.value,
                attempts=0,
                lease_until=t + lease,
                claimed_by=worker,
                fence=deliveries.c.fence + 1,
                updated_at=t,
            )
            .returning(*_CLAIMED)
        ).all()
    return _claimed(rows, at)


def deliveries_for_messages(engine: Engine, message_ids: list[int]) -> dict[int, int]:
    with reading(engine) as conn:
        rows = conn.execute(
            select(deliveries.c.message_id, deliveries.c.id).where(deliveries.c.message_id.in_(message_ids))
        )
        return {r.message_id: r.id for r in rows}


def dead_message_ids(engine: Engine, since: datetime | None = None, state: DState = DState.DEAD) -> list[int]:
    """Messages whose delivery is in ``state`` (dead, or needs-attention), oldest first."""
    q = select(deliveries.c.message_id).where(deliveries.c.state == state.value)
    if since:
        q = q.where(deliveries.c.updated_at >= since)
    with reading(engine) as conn:
        return [r.message_id for r in conn.execute(q.order_by(deliveries.c.id))]


def finish(
    engine: Engine,
    c: Claimed,
    *,
    state: DState,
    attempts: int,
    next_attempt_at: datetime | None = None,
    error: str | None = None,
    outcome: str | None = None,
    target: str | None = None,
    attempt: dict[str, Any] | None = None,
    steps: DbSteps | None = None,
) -> None:
    """Record the attempt and move the delivery (and its message's log state) on, in one transaction.

    Only the current lease holder can: if another claim raised the fencing token since ``c`` was claimed
    (or the delivery was finished already), raise ``LeaseLost`` and write nothing, checkpoints included."""
    t = now()
    values: dict[str, Any] = {
        "state": state.value,
        "attempts": attempts,
        "lease_until": None,
        "claimed_by": None,
        "updated_at": t,
        "last_error": error,
    }
    if next_attempt_at is not None:
        values["next_attempt_at"] = next_attempt_at
    if outcome is not None:
        values["outcome"] = outcome
    if target is not None:
        values["target"] = target
    with transaction(engine) as conn:
        held = conn.execute(
            update(deliveries)
            .where(deliveries.c.id == c.id, deliveries.c.fence == c.fence, deliveries.c.state == DState.RUNNING.value)
            .values(**values)
        ).rowcount
        if held != 1:  # rolls back: nothing of this run is written
            raise LeaseLost(
                f"delivery {c.id}: lease taken over by another worker (our fencing token {c.fence} is no "
                "longer current); its outcome is not written"
            )
        if steps is not None:
            steps.flush(conn)
        if state in MESSAGE_STATE:
            conn.execute(
                update(messages)
                .where(messages.c.id == c.message_id)
                .values(state=MESSAGE_STATE[state], updated_at=t, error_text=error if state != DState.DONE else None)
            )
        if attempt is not None:
            conn.execute(insert(delivery_attempts).values(delivery_id=c.id, **attempt))


# -- checkpoints -------------------------------------------------------------------------------------


class DbSteps:
    """The ``Steps`` of one delivery on the database (see ``adapter.targets.base``).

    Uncertainty is tracked per run, not per step: the first run of a delivery writes a ``_run`` marker;
    a later run (retry, or takeover after a crash) sees it, and then every step without a stored result
    counts as possibly sent, so the target looks for what it may have made before creating again. That
    costs one write per run instead of one per step, and a GET per step only on retries.

    With a ``lease`` (the worker always passes one) every write renews it under the run's fencing token
    in its own transaction, and every read and ``called`` first checks it: a run that was taken over
    stops at its next step with ``LeaseLost`` instead of calling the target again.
    """

    RUN_MARKER = "_run"

    def __init__(self, engine: Engine, delivery_id: int, target: str, lease: Lease | None = None) -> None:
        self.engine = engine
        self.delivery_id = delivery_id
        self.target = target
        self.lease = lease
        self.calls: list[str] = []
        self._pending: dict[str, dict[str, Any]] = {}
        with reading(engine) as conn:
            rows = conn.execute(
                select(delivery_steps.c.key, delivery_steps.c.state, delivery_steps.c.result).where(
                    delivery_steps.c.delivery_id == delivery_id
                )
            )
            self._state = {r.key: (r.state, json.loads(r.result) if r.result else None) for r in rows}
        self.retry = self.RUN_MARKER in self._state
        if not self.retry:
            self._put(self.RUN_MARKER, "started", None)

    def check(self) -> None:
        """Raise ``LeaseLost`` if this run no longer holds its delivery (see ``Lease.check``)."""
        if self.lease is not None:
            self.lease.check()

    def result(self, key: str) -> dict[str, Any] | None:
        self.check()  # every step starts here: a run that was taken over stops before it looks or calls
        state, result = self._state.get(key, (None, None))
        return result if state == "done" else None

    def was_started(self, key: str) -> bool:
        return self.retry and self.result(key) is None

    def _put(self, key: str, state: str, result: dict[str, Any] | None) -> None:
        t = now()
        payload = json.dumps(result) if result is not None else None
        with transaction(self.engine) as conn:
            if self.lease is not None:
                self.lease.hold(conn)
            changed = conn.execute(
                update(delivery_steps)
                .where(delivery_steps.c.delivery_id == self.delivery_id, delivery_steps.c.key == key)
                .values(state=state, result=payload, updated_at=t)
            ).rowcount
            if not changed:
                conn.execute(
                    insert(delivery_steps).values(
                        delivery_id=self.delivery_id, key=key, state=state, result=payload, updated_at=t
                    )
                )
        self._state[key] = (state, result)

    def start(self, key: str) -> None:
        """Nothing to write (the run marker already says this run may have sent it); the call follows, so
        make sure it is still ours to make."""
        self.check()

    def done(self, key: str, result: Mapping[str, Any], recoverable: bool = False) -> None:
        """Store a step's result. A *recoverable* one (the target can find what it made) is kept in
        memory and written with the run's outcome (``flush``): if we crash before that, the next run
        finds it again. Others are written at once."""
        self.check()
        stored = dict(result)
        if recoverable:
            self._pending[key] = stored
            self._state[key] = ("done", stored)
        else:
            self._put(key, "done", stored)

    def flush(self, conn: Connection) -> None:
        """Write the buffered results inside the transaction that records the run's outcome (``finish``,
        which holds the lease in that transaction first)."""
        if not self._pending:
            return
        t = now()
        conn.execute(
            delete(delivery_steps).where(
                delivery_steps.c.delivery_id == self.delivery_id, delivery_steps.c.key.in_(list(self._pending))
            )
        )
        conn.execute(
            insert(delivery_steps),
            [
                {"delivery_id": self.delivery_id, "key": k, "state": "done", "result": json.dumps(r), "updated_at": t}
                for k, r in self._pending.items()
            ],
        )
        self._pending.clear()

    def zaak(self, nummer: str, zaaktype: str | None = None) -> dict[str, Any] | None:
        """The oldest zaak linked under ``nummer`` (of ``zaaktype``, when given)."""
        found = self.zaken(nummer, zaaktype)
        return found[0] if found else None

    def zaken(self, nummer: str, zaaktype: str | None = None) -> list[dict[str, Any]]:
        """Every zaak linked under exactly ``nummer`` (an adviesaanvraag's zaken, under
        ``<nummer>#<adviesverzoek>``, are not among them), in the order they were made (the order of the
        verzoek's zaken in its aanvraag), ties by zaaktype: a follow-up walks them in this order."""
        self.check()
        q = select(zaak_links).where(zaak_links.c.target == self.target, zaak_links.c.nummer == nummer)
        if zaaktype:
            q = q.where(zaak_links.c.zaaktype == zaaktype)
        with reading(self.engine) as conn:
            rows = conn.execute(q.order_by(zaak_links.c.created_at, zaak_links.c.zaaktype)).all()
        return [{"url": r.zaak_url, "identificatie": r.zaak_identificatie, "zaaktype": r.zaaktype} for r in rows]

    def link_zaak(self, nummer: str, zaaktype: str, url: str, identificatie: str | None) -> None:
        with transaction(self.engine) as conn:
            if self.lease is not None:
                self.lease.hold(conn)
            exists_ = conn.execute(
                select(zaak_links.c.zaak_url).where(
                    zaak_links.c.target == self.target, zaak_links.c.nummer == nummer, zaak_links.c.zaaktype == zaaktype
                )
            ).first()
            if exists_ is None:
                conn.execute(
                    insert(zaak_links).values(
                        target=self.target,
                        nummer=nummer,
                        zaaktype=zaaktype,
                        zaak_url=url,
                        zaak_identificatie=identificatie,
                        created_at=now(),
                    )
                )

    def document(self, nummer: str, zaak: str, bijlage: str) -> dict[str, Any] | None:
        """The document this target made for ``bijlage`` of verzoek ``nummer`` on ``zaak``, by any delivery
        (``{"identificatie", "omvang"}``), or None. A later message of the verzoek that lists the bijlage
        again adopts it: its own checkpoints know nothing of an earlier delivery's document."""
        self.check()
        q = select(document_links.c.document_identificatie, document_links.c.omvang).where(
            document_links.c.target == self.target,
            document_links.c.nummer == nummer,
            document_links.c.zaak == zaak,
            document_links.c.bijlage == bijlage,
        )
        with reading(self.engine) as conn:
            row = conn.execute(q).first()
        return None if row is None else {"identificatie": row.document_identificatie, "omvang": row.omvang}

    def link_document(
        self, nummer: str, zaken: Sequence[str], bijlage: str, identificatie: str, omvang: int | None
    ) -> None:
        """Record the document made for ``bijlage`` on each of ``zaken`` in one transaction (one document
        may be relevant for several zaken: a crash never leaves it recorded on some of them only), under
        the lease like ``link_zaak``. A zaak's first record stays."""
        with transaction(self.engine) as conn:
            if self.lease is not None:
                self.lease.hold(conn)
            known = set(
                conn.execute(
                    select(document_links.c.zaak).where(
                        document_links.c.target == self.target,
                        document_links.c.nummer == nummer,
                        document_links.c.bijlage == bijlage,
                        document_links.c.zaak.in_(list(zaken)),
                    )
                ).scalars()
            )
            t = now()
            rows = [
                {
                    "target": self.target,
                    "nummer": nummer,
                    "zaak": zaak,
                    "bijlage": bijlage,
                    "document_identificatie": identificatie,
                    "omvang": omvang,
                    "created_at": t,
                }
                for zaak in dict.fromkeys(zaken)
                if zaak not in known
            ]
            if rows:
                conn.execute(insert(document_links), rows)

    def called(self, call: str) -> None:
        """Told right before each call to the far side: the last moment to stop a run that was taken over."""
        self.check()
        self.calls.append(call)


def delivery_of_message(engine: Engine, message_id: int) -> dict[str, Any] | None:
    with reading(engine) as conn:
        row = conn.execute(select(deliveries).where(deliveries.c.message_id == message_id)).first()
        if row is None:
            return None
        attempts = conn.execute(
            select(delivery_attempts).where(delivery_attempts.c.delivery_id == row.id).order_by(delivery_attempts.c.id)
        ).all()
        steps = conn.execute(
            select(delivery_steps).where(delivery_steps.c.delivery_id == row.id).order_by(delivery_steps.c.updated_at)
        ).all()
    return {"delivery": row, "attempts": attempts, "steps": steps}


def backoff(attempts: int, *, initial: float, factor: float, max_delay: float) -> timedelta:
    """Capped exponential backoff: initial · factor^(attempts-1), at most max_delay seconds."""
    return timedelta(seconds=min(max_delay, initial * factor ** max(0, attempts - 1)))


def delivery_stats(engine: Engine) -> dict[str, int]:
    """Deliveries by state, plus how many went to a triage zaaktype (no activiteit was mapped)."""
    from sqlalchemy import func

    with reading(engine) as conn:
        out = {
            state: n for state, n in conn.execute(select(deliveries.c.state, func.count()).group_by(deliveries.c.state))
        }
        out["triage"] = conn.execute(
            select(func.count()).where(deliveries.c.state == DState.DONE.value, deliveries.c.outcome.like("%triage%"))
        ).scalar_one()
    return out
