"""Outbox queries on a real database (SQLite, or PostgreSQL with LOKET_TEST_DATABASE_URL): enqueue with
the message, claim order per verzoek, leases, capped backoff, checkpoints."""

from __future__ import annotations

import hashlib
import threading
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, select, update

from adapter.store import messages as message_store
from adapter.store import outbox
from adapter.store.db import make_engine, upgrade
from adapter.store.tables import deliveries
from adapter.store.writer import GroupCommitWriter
from tests.conftest import drop_database, new_database_url


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    url = new_database_url(tmp_path)
    e = make_engine(url, lock_timeout_ms=2000)
    upgrade(e)
    yield e
    e.dispose()
    drop_database(url)


def store_message(writer: GroupCommitWriter, nummer: str) -> int:
    ref = uuid.uuid4().hex
    record = message_store.InboundRecord(
        correlation_id=ref[:32],
        channel="stuf-lvo",
        message_type="omvDi01AanbiedenAanvraag",
        body=b"<x/>",
        sha256=hashlib.sha256(ref.encode()).hexdigest(),
        referentienummer=ref,
        nummer=nummer,
        dedup_key=f"t|{ref}",
    )
    return message_store.accept(writer, record, "<answer/>").message_id


def test_message_and_its_delivery_commit_together(engine: Engine) -> None:
    mid = store_message(GroupCommitWriter(engine), "A1")
    assert outbox.deliveries_for_messages(engine, [mid]).keys() == {mid}


def test_claim_runs_one_verzoek_in_order_and_others_in_parallel(engine: Engine) -> None:
    w = GroupCommitWriter(engine)
    first_a, second_a, first_b = store_message(w, "A"), store_message(w, "A"), store_message(w, "B")
    claimed = outbox.claim(engine, "w1", timedelta(minutes=5), limit=10)
    assert [c.message_id for c in claimed] == [first_a, first_b]  # A's second waits for A's first
    assert outbox.claim(engine, "w2", timedelta(minutes=5), limit=10) == []  # nothing else is due
    a1 = next(c for c in claimed if c.message_id == first_a)
    outbox.finish(engine, a1, state=outbox.DState.DONE, attempts=1)
    assert [c.message_id for c in outbox.claim(engine, "w2", timedelta(minutes=5))] == [second_a]


def test_expired_lease_is_taken_over(engine: Engine) -> None:
    store_message(GroupCommitWriter(engine), "L")
    (c,) = outbox.claim(engine, "dead-worker", timedelta(minutes=5))
    assert outbox.claim(engine, "w2", timedelta(minutes=5)) == []
    with engine.begin() as conn:  # the dead worker's lease runs out
        conn.execute(update(deliveries).values(lease_until=outbox.now() - timedelta(seconds=1)))
    (again,) = outbox.claim(engine, "w2", timedelta(minutes=5))
    assert again.id == c.id


def test_concurrent_claims_never_hand_out_a_delivery_twice(engine: Engine) -> None:
    w = GroupCommitWriter(engine)
    for i in range(40):
        store_message(w, f"N{i}")
    got: list[int] = []
    lock = threading.Lock()

    def worker(name: str) -> None:
        while True:
            claimed = outbox.claim(engine, name, timedelta(minutes=5), limit=3)
            if not claimed:
                return
            with lock:
                got.extend(c.id for c in claimed)

    threads = [threading.Thread(target=worker, args=(f"w{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == 40 and len(set(got)) == 40


def test_backoff_is_exponential_and_capped() -> None:
    delays = [outbox.backoff(n, initial=10, factor=2, max_delay=60).total_seconds() for n in range(1, 6)]
    assert delays == [10, 20, 40, 60, 60]


def test_retry_is_not_due_before_its_time(engine: Engine) -> None:
    store_message(GroupCommitWriter(engine), "R")
    (c,) = outbox.claim(engine, "w", timedelta(minutes=5))
    outbox.finish(engine, c, state=outbox.DState.RETRY, attempts=1, next_attempt_at=outbox.now() + timedelta(hours=1))
    assert outbox.claim(engine, "w", timedelta(minutes=5)) == []
    with engine.connect() as conn:
        assert conn.execute(select(deliveries.c.state)).scalar_one() == "retry"


def test_checkpoints_survive_a_new_steps_object(engine: Engine) -> None:
    store_message(GroupCommitWriter(engine), "C")
    (c,) = outbox.claim(engine, "w", timedelta(minutes=5))
    steps = outbox.DbSteps(engine, c.id, "t")
    assert not steps.was_started("zaak:X")  # first run: nothing can have been sent before
    steps.start("zaak:X")
    steps.done("zaak:X", {"url": "http://z/1"})
    again = outbox.DbSteps(engine, c.id, "t")  # a retry, or a takeover after a crash
    assert again.result("zaak:X") == {"url": "http://z/1"}
    assert not again.was_started("zaak:X")  # done: skipped, no lookup
    assert again.was_started("rol:Y") and again.result("rol:Y") is None  # may have been sent: look first
    again.link_zaak("C", "ZT", "http://z/1", "OLO-C")
    again.link_zaak("C", "ZT", "http://z/other", "OLO-C")  # first link wins
    assert outbox.DbSteps(engine, c.id, "t").zaak("C") == {
        "url": "http://z/1",
        "identificatie": "OLO-C",
        "zaaktype": "ZT",
    }


def test_an_aanvraag_is_not_held_up_by_a_follow_up_that_came_first(engine: Engine) -> None:
    w = GroupCommitWriter(engine)
    early = store_message(w, "V")  # e.g. an aanvulling that overtook its aanvraag
    with engine.begin() as conn:
        conn.execute(update(deliveries).values(creates_zaak=False))
    record = message_store.InboundRecord(
        correlation_id="c" * 32,
        channel="stuf-lvo",
        message_type="omvDi01AanbiedenAanvraag",
        body=b"<x/>",
        sha256="0" * 64,
        referentienummer="aanvraag",
        nummer="V",
        dedup_key="t|aanvraag",
        creates_zaak=True,
    )
    aanvraag = message_store.accept(w, record, "<answer/>").message_id
    (c,) = outbox.claim(engine, "w", timedelta(minutes=5))
    outbox.finish(engine, c, state=outbox.DState.RETRY, attempts=1, next_attempt_at=outbox.now() + timedelta(hours=1))
    assert c.message_id == early
    assert [x.message_id for x in outbox.claim(engine, "w", timedelta(minutes=5))] == [aanvraag]


def test_results_buffered_in_a_failed_run_are_kept_for_the_retry(engine: Engine) -> None:
    store_message(GroupCommitWriter(engine), "F")
    (c,) = outbox.claim(engine, "w", timedelta(minutes=5))
    steps = outbox.DbSteps(engine, c.id, "t")
    steps.done("zaak:X", {"url": "http://z/1"}, recoverable=True)  # buffered until the run's outcome
    outbox.finish(engine, c, state=outbox.DState.RETRY, attempts=1, next_attempt_at=outbox.now(), steps=steps)
    assert outbox.DbSteps(engine, c.id, "t").result("zaak:X") == {"url": "http://z/1"}


def test_a_second_delivery_that_makes_the_zaak_waits_for_the_first(engine: Engine) -> None:
    """Two messages of one verzoek that both make (or adopt) its zaak, e.g. two STAM versions of an aanvraag,
    are delivered in their order: the second is not claimed while the first is unfinished."""
    w = GroupCommitWriter(engine)
    first, second = store_message(w, "Z"), store_message(w, "Z")
    with engine.begin() as conn:
        conn.execute(update(deliveries).values(creates_zaak=True))
    (c,) = outbox.claim(engine, "w", timedelta(minutes=5), limit=10)
    assert c.message_id == first
    outbox.finish(engine, c, state=outbox.DState.RETRY, attempts=1, next_attempt_at=outbox.now() - timedelta(seconds=1))
    (again,) = outbox.claim(engine, "w", timedelta(minutes=5), limit=10)  # due again: still the first
    assert again.message_id == first
    outbox.finish(engine, again, state=outbox.DState.DONE, attempts=2)
    assert [x.message_id for x in outbox.claim(engine, "w", timedelta(minutes=5), limit=10)] == [second]


def test_the_delivery_due_first_is_claimed_first(engine: Engine) -> None:
    """A claim of one takes the delivery whose attempt is due earliest, not the oldest row: a retry that
    came due before a newer message goes first (ties by id)."""
    w = GroupCommitWriter(engine)
    a, b, c = store_message(w, "A"), store_message(w, "B"), store_message(w, "C")
    with engine.begin() as conn:
        t = outbox.now()
        for message_id, due in (
            (a, t - timedelta(minutes=1)),
            (b, t - timedelta(minutes=2)),
            (c, t - timedelta(minutes=1)),
        ):
            conn.execute(update(deliveries).where(deliveries.c.message_id == message_id).values(next_attempt_at=due))
    order = [outbox.claim(engine, "w", timedelta(minutes=5))[0].message_id for _ in range(3)]
    assert order == [b, a, c]
