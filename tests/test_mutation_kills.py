"""Tests written to kill the mutants that survived a mutation run over the guarantee modules
(``docs/guarantees.md`` lists the run, its score and the mutants left with their reason).

Each test states a guarantee of README.md in terms an operator or a sender could observe: what is
committed, what a caller gets back, which state a delivery is in and when it is due again.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
import threading
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select, update
from structlog.testing import capture_logs

from adapter.delivery.worker import Outbox, Report
from adapter.errors import AdapterError, StoreUnavailable, TargetError
from adapter.services import Services
from adapter.store import messages as message_store
from adapter.store import outbox
from adapter.store.tables import deliveries, messages
from adapter.store.writer import GroupCommitWriter
from tests.conftest import FIXTURES
from tests.delivery_env import Zaaksysteem, needs_zgw_specs
from tests.soap import fixture
from tests.test_delivery_zgw import receive


def record(nummer: str = "N1", ref: str | None = None) -> message_store.InboundRecord:
    ref = ref or uuid.uuid4().hex
    return message_store.InboundRecord(
        correlation_id=ref[:32],
        channel="stuf-lvo",
        message_type="omvDi01AanbiedenAanvraag",
        body=ref.encode(),
        sha256=hashlib.sha256(ref.encode()).hexdigest(),
        referentienummer=ref,
        nummer=nummer,
        dedup_key=f"t|{ref}",
    )


def stored_refs(engine: Engine) -> set[str]:
    with engine.connect() as conn:
        return set(conn.execute(select(messages.c.referentienummer)).scalars())


def in_threads(calls: list[Callable[[], Any]], timeout: float = 30) -> list[Any]:
    """Run each call in its own thread, started together; return each result or the exception it raised.
    Fails (instead of hanging) when a call does not come back."""
    results: list[Any] = [None] * len(calls)
    start = threading.Barrier(len(calls))

    def run(i: int) -> None:
        start.wait()
        try:
            results[i] = calls[i]()
        except BaseException as exc:
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(len(calls))]
    for t in threads:
        t.start()
    deadline = time.monotonic() + timeout
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    assert not any(t.is_alive() for t in threads), "a writer thread never got its answer"
    return results


# -- group commit: ack only after the commit, every write its own answer -------------------------------


def test_concurrent_writes_each_return_their_own_committed_message(engine: Engine) -> None:
    """Many request threads share group commits; each gets back the id of *its* message, and only once
    that message is committed (README: the Bv03 leaves only after the commit)."""
    writer = GroupCommitWriter(engine)
    recs = [record(f"N{i % 5}") for i in range(48)]

    def accept(r: message_store.InboundRecord) -> tuple[str, int]:
        result = message_store.accept(writer, r, "<answer/>")
        assert result.outcome is message_store.Outcome.STORED
        with engine.connect() as conn:  # committed by the time the caller is answered
            ref = conn.execute(select(messages.c.referentienummer).where(messages.c.id == result.message_id))
            return ref.scalar_one(), result.message_id

    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # interleave the threads as finely as possible
    try:
        results = in_threads([lambda r=r: accept(r) for r in recs])
    finally:
        sys.setswitchinterval(old)
    errors = [r for r in results if isinstance(r, BaseException)]
    assert not errors, errors
    assert sorted(ref for ref, _ in results) == sorted(r.referentienummer for r in recs)
    assert len({mid for _, mid in results}) == len(recs)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(messages)).scalar_one() == len(recs)


def test_a_failing_write_fails_alone_and_its_batch_mates_are_committed(engine: Engine) -> None:
    """A batch that fails as a whole is retried one write per transaction: the bad write gets its own
    error, the good one queued with it is committed and answered."""
    writer = GroupCommitWriter(engine)
    go = threading.Event()

    def slow(conn: Any) -> str:  # holds the lead so the next two writes queue up as one batch
        go.wait(10)
        return "first"

    good, bad = record("G"), record("B")

    def bad_write(conn: Any) -> None:
        conn.execute(messages.insert(), {**bad.values(), "state": "received", "dedup_key": bad.dedup_key})
        raise ValueError("this write is broken")

    results: dict[str, Any] = {}

    def run(name: str, fn: Callable[[], Any]) -> None:
        try:
            results[name] = fn()
        except BaseException as exc:
            results[name] = exc

    threads = [threading.Thread(target=run, args=("slow", lambda: writer.run(slow)), daemon=True)]
    threads[0].start()
    time.sleep(0.2)
    threads.append(
        threading.Thread(
            target=run, args=("good", lambda: message_store.accept(writer, good, "<a/>").message_id), daemon=True
        )
    )
    threads[1].start()
    time.sleep(0.2)  # the good write is queued before the bad one
    threads.append(threading.Thread(target=run, args=("bad", lambda: writer.run(bad_write)), daemon=True))
    threads[2].start()
    time.sleep(0.2)
    go.set()
    for t in threads:
        t.join(20)
    assert not any(t.is_alive() for t in threads), "a writer thread never got its answer"
    assert results["slow"] == "first"
    assert isinstance(results["good"], int), results["good"]
    assert isinstance(results["bad"], ValueError), results["bad"]
    assert stored_refs(engine) == {good.referentienummer}


def test_a_write_queued_behind_a_running_commit_is_committed_and_answered(engine: Engine) -> None:
    writer = GroupCommitWriter(engine)
    go = threading.Event()
    queued = record("Q")

    def slow(conn: Any) -> str:
        go.wait(10)
        return "first"

    def second() -> int:
        time.sleep(0.2)  # arrives while the first commit runs
        threading.Timer(0.2, go.set).start()
        return message_store.accept(writer, queued, "<a/>").message_id

    first, mid = in_threads([lambda: writer.run(slow), second])
    assert first == "first"
    assert isinstance(mid, int), mid
    assert stored_refs(engine) == {queued.referentienummer}


def test_a_single_failing_write_raises_its_own_error(engine: Engine) -> None:
    writer = GroupCommitWriter(engine)

    def broken(conn: Any) -> None:
        raise ValueError("broken write")

    with pytest.raises(ValueError, match="broken write"):
        writer.run(broken)
    assert writer.run(lambda conn: "next") == "next"  # the writer goes on


def test_a_closed_writer_acknowledges_nothing(engine: Engine) -> None:
    """After shutdown nothing can be stored, so nothing may be acknowledged: the channel answers StUF046."""
    writer = GroupCommitWriter(engine)
    writer.close()
    with pytest.raises(StoreUnavailable):
        message_store.accept(writer, record(), "<answer/>")
    assert stored_refs(engine) == set()


# -- delivery: backoff applied, dead after max_attempts, needs-attention, resend ------------------------


def delivery_row(sv: Services, message_id: int) -> Any:
    with sv.engine.connect() as conn:
        return conn.execute(select(deliveries).where(deliveries.c.message_id == message_id)).one()


def message_row(sv: Services, message_id: int) -> Any:
    with sv.engine.connect() as conn:
        return conn.execute(select(messages).where(messages.c.id == message_id)).one()


def make_due(sv: Services) -> None:
    with sv.engine.begin() as conn:
        conn.execute(update(deliveries).values(next_attempt_at=outbox.now() - timedelta(seconds=1)))


def outbox_of(sv: Services) -> Outbox:
    assert sv.outbox is not None
    return sv.outbox


@needs_zgw_specs
def test_each_attempt_is_visible_on_the_delivery_and_its_message(
    delivering: Callable[..., Services], zs: Zaaksysteem
) -> None:
    """``messages list``/``show``: a failed attempt shows the failing call and its answer and the message is
    ``retrying``; once delivered, the error is gone and the target is recorded. (The backoff itself:
    test_guarantees.py::test_failed_attempt_n_is_retried_after_capped_exponential_backoff.)"""
    sv = delivering(backoff_initial=30, max_attempts=5)
    zs.fake.fail_next("POST", "/zaken", status=503)  # type: ignore[attr-defined]
    mid = receive(sv)
    (report,) = outbox_of(sv).work_once()
    assert report.state == "retry" and "attempt 1/5" in report.detail, report
    row, msg = delivery_row(sv, mid), message_row(sv, mid)
    assert (report.message_id, report.delivery_id, row.state, row.attempts) == (mid, row.id, "retry", 1)
    assert row.last_error.startswith("POST ") and "HTTP 503" in row.last_error  # the call and its answer
    assert (msg.state, msg.error_text) == ("retrying", row.last_error)
    make_due(sv)
    (report,) = outbox_of(sv).work_once()
    assert report.state == "done"
    row, msg = delivery_row(sv, mid), message_row(sv, mid)
    assert (row.state, row.attempts, row.last_error, row.target) == ("done", 2, None, "zaaksysteem")
    assert row.outcome == report.detail and report.detail.startswith("zaak ")  # `messages show`: what it made
    assert (msg.state, msg.error_text) == ("delivered", None)
    assert len(zs.fake.zaken) == 1  # type: ignore[attr-defined]


@needs_zgw_specs
def test_the_target_is_recorded_by_the_attempt_that_routed_it_failed_or_delivered(
    delivering: Callable[..., Services], zs: Zaaksysteem
) -> None:
    """``messages show`` says where a delivery goes ("done to zaaksysteem"): an aanvraag delivered at its
    first attempt records it, and so does an aanvulling whose first attempt fails after routing; each is one
    line in the log."""
    sv = delivering(backoff_initial=30, backoff_max=600, max_attempts=5)
    aanvraag = receive(sv)
    with capture_logs() as logs:
        [done] = outbox_of(sv).work_once()
    assert done.state == "done" and delivery_row(sv, aanvraag).target == "zaaksysteem"
    [line] = [e for e in logs if e["event"] == "delivered"]
    assert (line["target"], line["summary"], line["attempt"]) == ("zaaksysteem", done.detail, 1)
    zs.fake.fail_next("POST", "/enkelvoudiginformatieobjecten", status=503)  # type: ignore[attr-defined]
    aanvulling = receive(sv, "vrgDi01IndienenAanvulling")
    with capture_logs() as logs:
        assert [r.state for r in outbox_of(sv).work_once()] == ["retry"]
    row = delivery_row(sv, aanvulling)
    assert (row.state, row.target) == ("retry", "zaaksysteem") and "HTTP 503" in row.last_error
    # the operator's log line for it: a warning (expected failure, no traceback) with state, attempt, error, retry
    [line] = [e for e in logs if e["event"] == "delivery failed"]
    assert line["log_level"] == "warning" and "exc_info" not in line
    assert (line["state"], line["attempt"], line["error"], line["retry_in"]) == ("retry", 1, row.last_error, 30)


@needs_zgw_specs
def test_after_max_attempts_a_delivery_is_dead_until_a_resend_delivers_it(
    delivering: Callable[..., Services], zs: Zaaksysteem
) -> None:
    sv = delivering(backoff_initial=0, max_attempts=2)
    zs.fake.fail_next("POST", "/zaken", status=503, times=2)  # type: ignore[attr-defined]
    mid = receive(sv)
    assert [r.state for r in outbox_of(sv).work_once()] == ["retry"]
    make_due(sv)
    (report,) = outbox_of(sv).work_once()
    assert report.state == "dead" and "503" in report.detail
    row, msg = delivery_row(sv, mid), message_row(sv, mid)
    assert (row.state, row.attempts) == ("dead", 2) and "503" in row.last_error
    assert msg.state == "dead" and "503" in msg.error_text
    make_due(sv)
    assert outbox_of(sv).work_once() == []  # dead: never picked up again by itself
    assert outbox.dead_message_ids(sv.engine) == [mid]
    assert outbox.dead_message_ids(sv.engine, since=outbox.now() - timedelta(hours=1)) == [mid]  # --since
    assert outbox.dead_message_ids(sv.engine, since=outbox.now() + timedelta(hours=1)) == []
    assert zs.fake.zaken == []  # type: ignore[attr-defined]

    (again,) = outbox_of(sv).resend([mid])
    assert isinstance(again, Report) and again.state == "done", again
    row, msg = delivery_row(sv, mid), message_row(sv, mid)
    assert (row.state, row.attempts, row.last_error) == ("done", 1, None)  # attempts were reset
    assert (msg.state, msg.error_text) == ("delivered", None)
    assert outbox.dead_message_ids(sv.engine) == []
    assert len(zs.fake.zaken) == 1  # type: ignore[attr-defined]


@needs_zgw_specs
def test_a_refused_request_needs_attention_at_once_and_is_not_retried(
    delivering: Callable[..., Services], zs: Zaaksysteem
) -> None:
    sv = delivering(backoff_initial=0, max_attempts=5)
    zs.fake.fail_next("POST", "/zaken", status=400)  # type: ignore[attr-defined]
    mid = receive(sv)
    (report,) = outbox_of(sv).work_once()
    assert report.state == "needs-attention" and f"messages resend {mid}" in report.detail, report
    row, msg = delivery_row(sv, mid), message_row(sv, mid)
    assert (row.state, row.attempts) == ("needs-attention", 1)
    assert msg.state == "needs-attention" and msg.error_text
    make_due(sv)
    assert outbox_of(sv).work_once() == []
    assert outbox.dead_message_ids(sv.engine, state=outbox.DState.NEEDS_ATTENTION) == [mid]
    (again,) = outbox_of(sv).resend([mid])
    assert isinstance(again, Report) and again.state == "done"
    assert len(zs.fake.zaken) == 1  # type: ignore[attr-defined]


@needs_zgw_specs
def test_a_failing_delivery_does_not_hold_up_another_verzoek(
    delivering: Callable[..., Services], zs: Zaaksysteem
) -> None:
    sv = delivering(backoff_initial=60, max_attempts=5)
    zs.fake.fail_next("POST", "/zaken", status=503)  # type: ignore[attr-defined]
    failing = receive(sv)
    other = receive(sv, body=fixture("omvDi01AanbiedenAanvraag").replace(b">1234567<", b">7654321<"))
    reports = outbox_of(sv).work_once(limit=10)
    assert {r.message_id: r.state for r in reports} == {failing: "retry", other: "done"}


@needs_zgw_specs
def test_resend_leaves_a_delivery_alone_while_another_worker_holds_it(
    delivering: Callable[..., Services], zs: Zaaksysteem
) -> None:
    sv = delivering(backoff_initial=0)
    mid = receive(sv)
    (held,) = outbox.claim(sv.engine, "other-worker", timedelta(minutes=5))
    assert held.message_id == mid
    (line,) = outbox_of(sv).resend([mid])
    assert line == f"message {mid}: being delivered by another worker right now; not resent"
    assert delivery_row(sv, mid).claimed_by == "other-worker"
    assert zs.fake.zaken == []  # type: ignore[attr-defined]
    (unknown,) = outbox_of(sv).resend([mid + 1000])
    assert unknown == f"message {mid + 1000}: has no delivery (rejected or unknown)"
    with sv.engine.begin() as conn:  # the other worker died: its lease runs out
        conn.execute(update(deliveries).values(lease_until=outbox.now() - timedelta(seconds=1)))
    (report,) = outbox_of(sv).resend([mid])
    assert isinstance(report, Report) and report.state == "done"


# -- what is stored with an accepted message ---------------------------------------------------------


def test_an_accepted_stuf_lvo_message_is_stored_with_its_stuurgegevens_and_answer(inbound: Services) -> None:
    """``messages show`` lists the stuurgegevens, the exact body and the answer that was sent; the follow-up
    routing (nummer) and the bevoegd-gezag fallback (ontvanger) read them from the row."""
    from lxml import etree

    from adapter.inbound.stuf_lvo import StufLvoChannel

    channel = StufLvoChannel(inbound.settings, inbound.writer, inbound.schemas)
    raw = fixture("vrgDi01VoegAdviesToe")
    answer = etree.tostring(channel.accept(channel.receive(raw, "c" * 32)))
    with inbound.engine.connect() as conn:
        row = conn.execute(select(messages)).one()
        (delivery,) = conn.execute(select(deliveries)).all()
    ref = etree.fromstring(raw).findtext(".//{http://www.egem.nl/StUF/StUF0301}referentienummer")
    assert row.state == "received" and bytes(row.body) == raw
    assert row.zender.startswith("00000001800866472000/OLO")
    assert row.ontvanger.startswith("00000001002564440000/ZAAKSYSTEEM")
    assert row.referentienummer == ref and row.berichtcode == "Di01"
    assert row.tijdstip_bericht == "20261205101010000" and row.cross_refnummer
    assert row.nummer and row.nummer == delivery.nummer
    assert etree.tostring(etree.fromstring(row.answer.encode())) == answer  # the same bytes again on a resend
    assert delivery.message_id == row.id and delivery.state == "pending" and not delivery.creates_zaak


def test_a_stam_notification_is_stored_under_its_verzoek_version(inbound: Services) -> None:
    from adapter.inbound.stam import StamChannel

    channel = StamChannel(inbound.settings, inbound.writer, inbound.schemas)
    raw = (FIXTURES / "stam" / "verzoeknotificatie-initieren.xml").read_bytes()
    first = channel.receive(raw, "c" * 32)
    assert (first.status, first.body["duplicate"]) == (202, False)
    for resent in (raw, raw.replace(b"10:15:02", b"10:15:03")):  # a resend; the poll's own notification
        again = channel.receive(resent, "d" * 32)
        assert (again.status, again.body["duplicate"], again.body["id"]) == (202, True, first.body["id"])
    with inbound.engine.connect() as conn:
        row = conn.execute(select(messages)).one()
        delivery = conn.execute(select(deliveries)).one()
    assert (row.nummer, row.volgnummer, row.ontvanger) == ("2026112300123", 1, "00000001002564440000")
    assert row.referentienummer == "2026112300123-1" and row.state == "received"
    assert (delivery.nummer, delivery.creates_zaak) == ("2026112300123", True)


# -- checkpoints: a retry resumes where the last run stopped -------------------------------------------------


def new_delivery(engine: Engine) -> outbox.Claimed:
    message_store.accept(GroupCommitWriter(engine), record("CP"), "<answer/>")
    (claimed,) = outbox.claim(engine, "w", timedelta(minutes=5))
    return claimed


def test_a_step_that_cannot_be_found_again_is_checkpointed_before_the_run_ends(engine: Engine) -> None:
    """A crash right after a call that has no *find* (the loket koppeling, a werkmap transfer) must not
    make the next run send it again: its result is on disk at once, not only with the run's outcome."""
    from adapter.targets.base import run_step

    c = new_delivery(engine)
    sent: list[str] = []
    steps = outbox.DbSteps(engine, c.id, "t")
    run_step(steps, "koppel:loket", lambda: sent.append("first") or {"referentienummer": "R1"})
    assert steps.result("koppel:loket") == {"referentienummer": "R1"}
    # crash: the run never reaches finish(), nothing is flushed
    again = outbox.DbSteps(engine, c.id, "t")
    assert run_step(again, "koppel:loket", lambda: sent.append("again") or {}) == {"referentienummer": "R1"}
    assert sent == ["first"]


def test_a_step_that_can_be_found_again_is_looked_up_after_a_crash_not_sent_twice(engine: Engine) -> None:
    from adapter.targets.base import run_step

    c = new_delivery(engine)
    made: list[dict[str, str]] = []

    def create() -> dict[str, str]:
        made.append({"url": f"http://z/{len(made) + 1}"})
        return made[-1]

    def find() -> dict[str, str] | None:
        return made[0] if made else None

    run_step(outbox.DbSteps(engine, c.id, "t"), "zaak:ZT", create, find)  # crash before the outcome
    again = outbox.DbSteps(engine, c.id, "t")
    # a result the target can find again is buffered for the run's outcome (one commit, one fsync on SQLite,
    # per run rather than per step): the crash left nothing on disk, the retry has to look
    assert again.result("zaak:ZT") is None
    assert run_step(again, "zaak:ZT", create, find) == {"url": "http://z/1"}
    assert len(made) == 1
    assert outbox.DbSteps(engine, c.id, "t").result("zaak:ZT") is None  # adopted: buffered in the same way
    outbox.finish(engine, c, state=outbox.DState.RETRY, attempts=1, steps=again)  # the run's outcome
    third = outbox.DbSteps(engine, c.id, "t")
    assert third.result("zaak:ZT") == {"url": "http://z/1"}  # adopted, and checkpointed as such
    assert run_step(third, "zaak:ZT", create, lambda: None) == {"url": "http://z/1"}
    assert len(made) == 1


@needs_zgw_specs
def test_an_unexpected_error_is_recorded_with_its_type_and_retried(
    delivering: Callable[..., Services], zs: Zaaksysteem, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every failure is recorded: one that is not an adapter error (a bug, a library surprise) is named by
    its type and retried like a transient one, never lost."""
    sv = delivering(backoff_initial=0, max_attempts=3)
    mid = receive(sv)

    def broken(self: Any, row: Any, steps: Any) -> Any:
        raise KeyError("verzoeknummer")

    monkeypatch.setattr(type(outbox_of(sv).sources), "verzoek_for", broken)
    with capture_logs() as logs:
        (report,) = outbox_of(sv).work_once()
    [line] = [e for e in logs if e["event"] == "delivery failed unexpectedly"]  # an error line with the traceback
    assert (line["log_level"], line["state"], line["attempt"], line["exc_info"]) == ("error", "retry", 1, True)
    row = delivery_row(sv, mid)
    assert (report.state, row.state, row.attempts) == ("retry", "retry", 1)
    assert row.last_error == "KeyError: 'verzoeknummer'"
    assert message_row(sv, mid).error_text == "KeyError: 'verzoeknummer'"
    monkeypatch.undo()
    make_due(sv)
    assert [r.state for r in outbox_of(sv).work_once()] == ["done"]


@needs_zgw_specs
def test_every_attempt_is_logged_with_its_outcome_and_the_calls_it_made(
    delivering: Callable[..., Services], zs: Zaaksysteem
) -> None:
    """``messages show``: the attempts of a delivery, each with its status, error and calls; a follow-up
    that came before its aanvraag is logged as waiting, not as an error."""
    sv = delivering(backoff_initial=0, max_attempts=5)
    early = receive(sv, "vrgDi01IndienenAanvulling")
    assert [r.state for r in outbox_of(sv).work_once()] == ["retry"]
    (waiting,) = outbox.delivery_of_message(sv.engine, early)["attempts"]
    assert waiting.status == "waiting" and "waiting for its aanvraag" in waiting.error

    zs.fake.fail_next("POST", "/zaken", status=503)  # type: ignore[attr-defined]
    aanvraag = receive(sv)
    make_due(sv)
    reports = {r.message_id: r.state for r in outbox_of(sv).work_once(limit=10)}
    assert reports[aanvraag] == "retry"
    (failed,) = outbox.delivery_of_message(sv.engine, aanvraag)["attempts"]
    assert failed.status == "error" and "HTTP 503" in failed.error
    assert any("/zaken" in call for call in json.loads(failed.calls))
    make_due(sv)
    outbox_of(sv).work_once(limit=10)
    attempts = outbox.delivery_of_message(sv.engine, aanvraag)["attempts"]
    assert [(a.status, a.error) for a in attempts] == [("error", failed.error), ("ok", None)]
    # each call is named by the step that made it: the documents by their bijlage
    calls = json.loads(attempts[-1].calls)
    documents = [c for c in calls if c.endswith("/enkelvoudiginformatieobjecten")]
    assert documents and all(re.fullmatch(r"document:[^ :]+: POST http\S+", c) for c in documents), calls


def test_checkpoints_belong_to_their_delivery_and_the_latest_result_counts(engine: Engine) -> None:
    """Two deliveries with the same step keys (two messages of one kind) never see or overwrite each
    other's checkpoints, in the running process and after a restart."""
    w = GroupCommitWriter(engine)
    for n in ("A", "B"):
        message_store.accept(w, record(n), "<answer/>")
    c1, c2 = outbox.claim(engine, "w", timedelta(minutes=5), limit=2)
    s1, s2 = outbox.DbSteps(engine, c1.id, "t"), outbox.DbSteps(engine, c2.id, "t")
    s1.done("werkmap:referenties", {"v": "one"})
    s2.done("werkmap:referenties", {"v": "two"})
    s1.done("werkmap:referenties", {"v": "one, again"})  # a step written twice: the latest result counts
    s1.done("zaak:ZT", {"url": "http://z/1"}, recoverable=True)
    s2.done("zaak:ZT", {"url": "http://z/2"}, recoverable=True)
    assert s1.result("zaak:ZT") == {"url": "http://z/1"}  # known in this run before it is written
    assert s1.result("werkmap:referenties") == {"v": "one, again"}
    outbox.finish(engine, c1, state=outbox.DState.RETRY, attempts=1, steps=s1)
    outbox.finish(engine, c2, state=outbox.DState.RETRY, attempts=1, steps=s2)
    r1, r2 = outbox.DbSteps(engine, c1.id, "t"), outbox.DbSteps(engine, c2.id, "t")
    assert (r1.result("werkmap:referenties"), r1.result("zaak:ZT")) == ({"v": "one, again"}, {"url": "http://z/1"})
    assert (r2.result("werkmap:referenties"), r2.result("zaak:ZT")) == ({"v": "two"}, {"url": "http://z/2"})


def test_the_zaak_of_a_verzoek_is_found_by_target_verzoeknummer_and_zaaktype(engine: Engine) -> None:
    """Follow-ups find their zaak through the recorded verzoeknummer → zaak link (README), per target;
    with a one-to-many mapping each zaaktype has its own zaak and the first one is the verzoek's zaak."""
    c = new_delivery(engine)
    a, b = outbox.DbSteps(engine, c.id, "a"), outbox.DbSteps(engine, c.id, "b")
    a.link_zaak("N1", "ZT1", "http://a/1", "OLO-N1")
    a.link_zaak("N1", "ZT2", "http://a/2", "OLO-N1-2")
    a.link_zaak("N2", "ZT1", "http://a/3", "OLO-N2")
    b.link_zaak("N1", "ZT1", "http://b/1", None)
    assert a.zaak("N1") == {"url": "http://a/1", "identificatie": "OLO-N1", "zaaktype": "ZT1"}
    assert a.zaak("N1", "ZT2") == {"url": "http://a/2", "identificatie": "OLO-N1-2", "zaaktype": "ZT2"}
    assert a.zaak("N2") == {"url": "http://a/3", "identificatie": "OLO-N2", "zaaktype": "ZT1"}
    assert b.zaak("N1") == {"url": "http://b/1", "identificatie": None, "zaaktype": "ZT1"}
    assert a.zaak("N3") is None and b.zaak("N2") is None


def test_a_document_of_a_verzoek_is_found_by_target_verzoeknummer_zaak_and_bijlage(engine: Engine) -> None:
    """A later message of the verzoek that lists a bijlage again adopts the document this target made for it
    on that zaak, and no other: not another target's, verzoek's, zaak's or bijlage's. The first record of a
    zaak stays."""
    c = new_delivery(engine)
    a, b = outbox.DbSteps(engine, c.id, "a"), outbox.DbSteps(engine, c.id, "b")
    a.link_document("N1", ["z1", "z2", "z1"], "B1", "DOC-1", 10)
    a.link_document("N1", ["z2", "z3"], "B1", "DOC-1b", 11)  # z2 keeps DOC-1
    a.link_document("N1", ["z1"], "B2", "DOC-2", None)
    a.link_document("N2", ["z1"], "B1", "DOC-3", 30)
    b.link_document("N1", ["z1"], "B1", "DOC-4", 40)
    assert a.document("N1", "z1", "B1") == {"identificatie": "DOC-1", "omvang": 10}
    assert a.document("N1", "z2", "B1") == {"identificatie": "DOC-1", "omvang": 10}
    assert a.document("N1", "z3", "B1") == {"identificatie": "DOC-1b", "omvang": 11}
    assert a.document("N1", "z1", "B2") == {"identificatie": "DOC-2", "omvang": None}
    assert a.document("N2", "z1", "B1") == {"identificatie": "DOC-3", "omvang": 30}
    assert b.document("N1", "z1", "B1") == {"identificatie": "DOC-4", "omvang": 40}
    assert a.document("N1", "z3", "B2") is None and b.document("N2", "z1", "B1") is None


def test_a_resend_claims_only_its_delivery_under_a_lease_that_a_worker_can_take_over(engine: Engine) -> None:
    """``messages resend`` runs the delivery in the CLI process: no worker may run it at the same time,
    and if that process dies, a worker takes it over once the lease has run out."""
    w = GroupCommitWriter(engine)
    first, other = (message_store.accept(w, record(n), "<answer/>").message_id for n in ("R1", "R2"))
    dids = outbox.deliveries_for_messages(engine, [first, other])
    (claimed,) = outbox.claim_ids(engine, [dids[first]], "cli", timedelta(minutes=5))
    assert (claimed.message_id, claimed.attempts) == (first, 0)
    with engine.connect() as conn:
        row = conn.execute(select(deliveries).where(deliveries.c.id == dids[first])).one()
    assert (row.state, row.claimed_by) == ("running", "cli")
    assert [c.message_id for c in outbox.claim(engine, "w", timedelta(minutes=5), limit=10)] == [other]
    assert outbox.claim_ids(engine, [dids[first]], "cli-2", timedelta(minutes=5)) == []  # being resent
    outbox.finish(engine, claimed, state=outbox.DState.DEAD, attempts=1)
    (gone,) = outbox.claim_ids(engine, [dids[first]], "cli", timedelta(0))  # this resend dies at once
    assert gone.message_id == first
    time.sleep(0.01)
    assert [c.message_id for c in outbox.claim(engine, "w", timedelta(minutes=5))] == [first]  # taken over


# -- werkmap: a broken download resumes, and starts over when the resume is refused ------------------------


def test_a_resume_the_werkmap_refuses_with_416_starts_over_and_completes(tmp_path: Path) -> None:
    """README "STAM": werkmap calls are retried on any 5xx; a broken download resumes with ``Range``, and
    when the werkmap no longer accepts the part we hold (416) the part is thrown away and the document
    fetched from byte 0, not given up."""
    from adapter.loket import stam
    from adapter.loket.werkmap import WerkmapClient, WerkmapOptions
    from adapter.simulation.fake_werkmap import FakeWerkmap
    from adapter.simulation.fake_zgw.server import serve_in_thread
    from adapter.store.files import FileStore

    fake = FakeWerkmap(oin="00000001002564440000")
    base, stop = serve_in_thread(fake.app)
    options = WerkmapOptions(
        base_url=base + stam.DEFAULT_BASE_PATH, oin="00000001002564440000", backoff_initial=0.01, backoff_max=0.05
    )
    try:
        with WerkmapClient(options, FileStore(tmp_path / "files")) as client:
            nummer = fake.generate_verzoeken(1, document_size=300 * 1024)[0]
            doc = client.referenties(nummer)["documenten"][0]
            path = stam.document(doc["documentId"])
            fake.fail_next(stam.verzoekreferenties(nummer), status=500)  # a 5xx: retried
            assert client.referenties(nummer)["documenten"][0] == doc
            fake.fail_next(path, cut_after=100 * 1024)  # the first transfer breaks: a part is left
            fake.fail_next(path, status=416)  # the resume of that part is refused
            stored = client.download(doc)
            assert hashlib.sha256(stored.read_bytes()).hexdigest() == doc["sha256"]
            transfers = [r for r in fake.requests if r.path.endswith(path)]
            assert [r.status for r in transfers] == [200, 416, 200]  # the last one from byte 0, whole
    finally:
        stop()


# -- jobs: every run is recorded, a failing job too, and the scheduler's call runs it ----------------------


def test_job_runs_are_recorded_with_their_outcome_and_a_failing_job_releases_its_lock(
    inbound: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``jobs list`` shows each run (start, end, found, new, errors, detail); a job that raises is recorded
    as an error and the scheduler goes on (the lock is released for the next run)."""
    from adapter.jobs import scheduler
    from adapter.store import jobs as job_store

    ok = scheduler.run_job(inbound, "werkmap-poll", force=True)  # no [werkmap] configured: nothing to poll
    assert (ok.ran, ok.status) == (True, "ok") and "no [werkmap]" in ok.detail

    def boom(services: Services) -> Any:
        raise RuntimeError("werkmap exploded")

    job = scheduler.JOBS["werkmap-poll"]
    monkeypatch.setitem(scheduler.JOBS, "werkmap-poll", scheduler.Job(job.name, boom, job.interval))
    failed = scheduler.run_job(inbound, "werkmap-poll", force=True)
    assert (failed.ran, failed.status, failed.detail) == (True, "error", "RuntimeError: werkmap exploded")

    def down(services: Services) -> Any:
        raise TargetError("POST /_zoek: HTTP 503")

    def partly(services: Services) -> Any:
        from adapter.jobs.werkmap_poll import PollResult

        return PollResult(found=3, new=1, errors=1, detail="3 found, 1 new; 2026112300123: invalid")

    monkeypatch.setitem(scheduler.JOBS, "werkmap-poll", scheduler.Job(job.name, down, job.interval))
    assert scheduler.run_job(inbound, "werkmap-poll", force=True).detail == "POST /_zoek: HTTP 503"
    monkeypatch.setitem(scheduler.JOBS, "werkmap-poll", scheduler.Job(job.name, partly, job.interval))
    assert scheduler.run_job(inbound, "werkmap-poll", force=True).status == "error"  # ran, with errors
    monkeypatch.undo()
    assert scheduler.run_job(inbound, "werkmap-poll", force=True).ran  # the failed runs let go of the lock

    runs = job_store.recent_runs(inbound.engine, "werkmap-poll")[::-1]  # oldest first
    assert [(r.status, r.found, r.new, r.errors) for r in runs] == [
        ("ok", 0, 0, 0),
        ("error", 0, 0, 1),
        ("error", 0, 0, 1),
        ("error", 3, 1, 1),
        ("ok", 0, 0, 0),
    ]
    assert [r.detail for r in runs[1:4]] == [
        "RuntimeError: werkmap exploded",
        "POST /_zoek: HTTP 503",
        "3 found, 1 new; 2026112300123: invalid",
    ]
    assert all(r.ended_at is not None for r in runs)
    with pytest.raises(AdapterError, match="unknown job 'nope'; jobs: werkmap-poll"):
        scheduler.run_job(inbound, "nope")


def test_the_scheduler_entry_point_runs_the_job_for_the_running_services(
    inbound: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """APScheduler calls ``fire(name)`` every interval; it runs the job on the services ``serve`` started."""
    from adapter.jobs import scheduler
    from adapter.store import jobs as job_store

    monkeypatch.setattr(scheduler, "_services", inbound)
    scheduler.fire("werkmap-poll")
    (run,) = job_store.recent_runs(inbound.engine, "werkmap-poll")
    assert run.status == "ok"
    scheduler.fire("werkmap-poll")  # the same interval: not again
    assert len(job_store.recent_runs(inbound.engine, "werkmap-poll")) == 1
