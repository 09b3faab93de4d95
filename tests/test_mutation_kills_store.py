"""Tests written for the survivors of the fourth mutation run over the stores (docs/guarantees.md, run 4).

The job lock (README: one werkmap poll per interval across processes; a crashed holder's lock expires) was
tested on its ordinary path; these pin the takeover of a dead holder's lock and the release of a lock.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from adapter.store import jobs

HOLD = timedelta(minutes=30)
INTERVAL = timedelta(minutes=15)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Callable[[timedelta], None]:
    """Move the job store's clock forward by an offset from now."""
    real = jobs.now
    offset = {"by": timedelta(0)}
    monkeypatch.setattr(jobs, "now", lambda: real() + offset["by"])
    return lambda by: offset.update(by=by)


def dead_holder() -> str:
    """``host:pid`` of a process on this host that has exited (and been reaped): it holds nothing."""
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    return f"{socket.gethostname()}:{gone.pid}"


def test_a_lock_taken_over_from_a_dead_holder_counts_as_this_intervals_run(
    engine: Any, clock: Callable[[timedelta], None]
) -> None:
    """After serve was killed mid-poll, the restarted one takes the poll over at once; that takeover is the
    interval's run: once it is done, no other process polls again before the interval is over."""
    here = f"{socket.gethostname()}:1"  # pid 1 lives: a holder that is not gone
    assert jobs.try_lock(engine, "werkmap-poll", dead_holder(), hold=HOLD, interval=INTERVAL)
    clock(timedelta(minutes=20))  # the next interval; the dead holder's lock has not expired yet
    restarted = f"{socket.gethostname()}:{os.getpid()}"
    assert jobs.try_lock(engine, "werkmap-poll", restarted, hold=HOLD, interval=INTERVAL)
    jobs.unlock(engine, "werkmap-poll", restarted)  # its run finished quickly
    clock(timedelta(minutes=25))  # 5 minutes after the takeover: still the same interval
    assert not jobs.try_lock(engine, "werkmap-poll", here, hold=HOLD, interval=INTERVAL)
    clock(timedelta(minutes=20) + INTERVAL + timedelta(seconds=1))
    assert jobs.try_lock(engine, "werkmap-poll", here, hold=HOLD, interval=INTERVAL)


def test_a_lock_taken_over_from_a_dead_holder_is_held_for_its_own_hold_time(
    engine: Any, clock: Callable[[timedelta], None]
) -> None:
    """The takeover holds the lock for ``hold`` from the takeover, not for what was left of the dead one's."""
    mine = f"{socket.gethostname()}:{os.getpid()}"
    assert jobs.try_lock(engine, "postbox-mirror", dead_holder(), hold=HOLD, interval=None)
    clock(timedelta(minutes=20))
    assert jobs.try_lock(engine, "postbox-mirror", mine, hold=HOLD, interval=None)
    clock(timedelta(minutes=35))  # the dead holder's lock would have run out; ours has not
    assert not jobs.try_lock(engine, "postbox-mirror", "elsewhere:7", hold=HOLD, interval=None)
    clock(timedelta(minutes=51))
    assert jobs.try_lock(engine, "postbox-mirror", "elsewhere:7", hold=HOLD, interval=None)


def test_unlock_releases_only_that_job_and_only_for_its_holder(engine: Any, clock: Callable[[timedelta], None]) -> None:
    """One process runs several jobs: ending one leaves the others locked; and a holder whose lock expired and
    was taken over cannot release the new holder's lock when its own late run ends."""
    assert jobs.try_lock(engine, "werkmap-poll", "A:1", hold=HOLD, interval=None)
    assert jobs.try_lock(engine, "postbox-mirror", "A:1", hold=HOLD, interval=None)
    jobs.unlock(engine, "werkmap-poll", "A:1")
    assert not jobs.try_lock(engine, "postbox-mirror", "B:2", hold=HOLD, interval=None)
    assert jobs.try_lock(engine, "werkmap-poll", "B:2", hold=HOLD, interval=None)
    clock(HOLD + timedelta(seconds=1))  # A's mirror lock runs out; C takes it over
    assert jobs.try_lock(engine, "postbox-mirror", "C:3", hold=HOLD, interval=None)
    jobs.unlock(engine, "postbox-mirror", "A:1")  # A's late run ends
    assert not jobs.try_lock(engine, "postbox-mirror", "B:2", hold=HOLD, interval=None)


def test_a_holder_whose_process_belongs_to_another_user_is_not_taken_for_gone(
    engine: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``os.kill(pid, 0)`` is refused for a live process of another user: that holder is alive, its lock stays."""
    other_user = f"{socket.gethostname()}:4242"

    def refused(pid: int, sig: int) -> None:
        raise PermissionError(1, "Operation not permitted")

    assert jobs.try_lock(engine, "postbox-pickup", other_user, hold=HOLD, interval=None)
    monkeypatch.setattr(jobs.os, "kill", refused)
    me = f"{socket.gethostname()}:{os.getpid()}"
    assert not jobs.try_lock(engine, "postbox-pickup", me, hold=HOLD, interval=None)


def test_the_outcome_an_operator_reads_is_that_of_the_last_successful_run(engine: Any) -> None:
    """``messages show`` prints the delivery's outcome (the zaak it made): written by a successful run, kept
    through a later failed one (a resend that hit an outage), replaced by the next success."""
    from adapter.store import outbox
    from adapter.store.writer import GroupCommitWriter
    from tests.test_outbox_store import store_message

    writer = GroupCommitWriter(engine)
    message_id = store_message(writer, "1234567")
    writer.close()
    lease = timedelta(minutes=5)

    def outcome() -> str | None:
        shown = outbox.delivery_of_message(engine, message_id)
        assert shown is not None
        return shown["delivery"].outcome  # type: ignore[no-any-return]

    def run(state: outbox.DState, **kw: Any) -> None:
        [c] = outbox.claim(engine, "w", lease, limit=1) or outbox.claim_ids(engine, [delivery], "w", lease)
        outbox.finish(engine, c, state=state, attempts=1, **kw)

    shown = outbox.delivery_of_message(engine, message_id)
    assert shown is not None
    delivery = shown["delivery"].id
    run(outbox.DState.DONE, outcome="zaak ZAAK-1 aangemaakt")
    assert outcome() == "zaak ZAAK-1 aangemaakt"
    run(outbox.DState.NEEDS_ATTENTION, error="zaaksysteem refused")
    assert outcome() == "zaak ZAAK-1 aangemaakt"
    run(outbox.DState.DONE, outcome="zaak ZAAK-1: niets nieuws")
    assert outcome() == "zaak ZAAK-1: niets nieuws"


def test_the_zaken_of_a_verzoek_come_in_the_order_they_were_made_ties_by_zaaktype(
    engine: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A follow-up walks the zaken in the order the aanvraag made them, and ``zaak()`` (the zaak the loket is
    told about) is the first one made — not the first zaaktype in the alphabet. Two made in the same instant
    come in zaaktype order, so every retry walks them alike."""
    from datetime import UTC, datetime

    from adapter.store import outbox
    from adapter.store.writer import GroupCommitWriter
    from tests.test_outbox_store import store_message

    writer = GroupCommitWriter(engine)
    store_message(writer, "1234567")
    writer.close()
    [claimed] = outbox.claim(engine, "w", timedelta(minutes=5), limit=1)
    steps = outbox.DbSteps(engine, claimed.id, "zgw")
    clock = iter([datetime(2026, 12, 2, 9, 0, s, tzinfo=UTC) for s in (1, 2, 2)])
    monkeypatch.setattr(outbox, "now", lambda: next(clock))
    steps.link_zaak("1234567", "zt-omgevingsvergunning", "https://zs/zaken/1", "Z-1")
    steps.link_zaak("1234567", "zt-waterwet", "https://zs/zaken/3", "Z-3")
    steps.link_zaak("1234567", "zt-bouw", "https://zs/zaken/2", "Z-2")
    assert [z["identificatie"] for z in steps.zaken("1234567")] == ["Z-1", "Z-2", "Z-3"]
    assert steps.zaak("1234567") == {
        "url": "https://zs/zaken/1",
        "identificatie": "Z-1",
        "zaaktype": "zt-omgevingsvergunning",
    }


def test_a_rejected_body_is_flagged_truncated_only_when_it_was_cut(engine: Any) -> None:
    """``messages show`` says a rejected body was cut; one of exactly ``rejected_body_max_bytes`` is whole."""
    from sqlalchemy import select

    from adapter.store import messages as message_store
    from adapter.store.tables import messages
    from adapter.store.writer import GroupCommitWriter

    def record(body: bytes) -> message_store.InboundRecord:
        return message_store.InboundRecord(
            correlation_id="c" * 32, channel="stam", message_type="verzoeknotificatie", body=body, sha256="0" * 64
        )

    writer = GroupCommitWriter(engine)
    whole = message_store.reject(writer, record(b"x" * 8), "{}", "400", "bad", max_body_bytes=8)
    cut = message_store.reject(writer, record(b"x" * 9), "{}", "400", "bad", max_body_bytes=8)
    writer.close()
    with engine.connect() as conn:
        rows = {r.id: r for r in conn.execute(select(messages.c.id, messages.c.body, messages.c.body_truncated))}
    assert (bytes(rows[whole].body), bool(rows[whole].body_truncated)) == (b"x" * 8, False)
    assert (bytes(rows[cut].body), bool(rows[cut].body_truncated)) == (b"x" * 8, True)
