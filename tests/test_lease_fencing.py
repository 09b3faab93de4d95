"""Leases with fencing (issue 8, item 4): a running delivery keeps its lease with a heartbeat, however long
it runs or one call blocks; every claim (a worker's, a takeover's, a resend's) raises the delivery's
fencing token, and a worker whose lease was taken over writes nothing and stops before its next call.

Store-level tests run on any database; the delivery tests use the fake ZGW (official OpenAPI files).
"""

from __future__ import annotations

import base64
import copy
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, func, select, update
from structlog.testing import capture_logs

from adapter.delivery import worker
from adapter.delivery.worker import LEASE_LOST, Outbox, Report
from adapter.errors import LeaseLost, StoreUnavailable
from adapter.services import Services
from adapter.store import outbox
from adapter.store.lease import Lease
from adapter.store.tables import (
    deliveries,
    delivery_attempts,
    delivery_steps,
    document_links,
    messages,
    zaak_links,
)
from adapter.store.writer import GroupCommitWriter
from tests.conftest import ROOT
from tests.delivery_env import Zaaksysteem, needs_zgw_specs, wait_for
from tests.soap import fixture
from tests.test_delivery_zgw import assert_one_complete_zaak, receive
from tests.test_outbox_store import store_message

MINUTES = timedelta(minutes=5)


def expire_leases(engine: Engine) -> None:
    """The holder stalled (or died) past its lease: as if its time ran out."""
    with engine.begin() as conn:
        conn.execute(update(deliveries).values(lease_until=outbox.now() - timedelta(seconds=1)))


def snapshot(engine: Engine) -> dict[str, Any]:
    """Everything a run may write: the delivery rows, checkpoints, attempts, zaak links, message states."""
    with engine.connect() as conn:
        return {
            "deliveries": [tuple(r) for r in conn.execute(select(deliveries).order_by(deliveries.c.id))],
            "steps": sorted(
                tuple(r)
                for r in conn.execute(
                    select(delivery_steps.c.delivery_id, delivery_steps.c.key, delivery_steps.c.result)
                )
            ),
            "attempts": conn.execute(select(func.count()).select_from(delivery_attempts)).scalar_one(),
            "links": sorted(tuple(r) for r in conn.execute(select(zaak_links.c.nummer, zaak_links.c.zaak_url))),
            "documents": sorted(
                tuple(r) for r in conn.execute(select(document_links.c.zaak, document_links.c.bijlage))
            ),
            "messages": [
                tuple(r) for r in conn.execute(select(messages.c.id, messages.c.state).order_by(messages.c.id))
            ],
        }


# -- the fencing token, on the store ---------------------------------------------------------------------


def test_every_claim_raises_the_fencing_token_and_only_its_holder_can_write(engine: Engine) -> None:
    """A worker claims, stalls past its lease, another takes over: the first one's ``finish``, checkpoint
    and zaak-link writes are refused with ``LeaseLost`` and leave nothing behind; the new holder's succeed."""
    store_message(GroupCommitWriter(engine), "F1")
    (first,) = outbox.claim(engine, "w1", MINUTES)
    stale = outbox.DbSteps(engine, first.id, "t", first.lease(engine, MINUTES))  # writes the run marker
    stale.done("koppel:loket", {"referentienummer": "R1"})  # not recoverable: written at once
    stale.done("zaak:ZT", {"url": "http://z/1"}, recoverable=True)  # buffered for the outcome
    expire_leases(engine)
    (second,) = outbox.claim(engine, "w2", MINUTES)
    assert (second.id, first.fence, second.fence) == (first.id, 1, 2)
    before = snapshot(engine)

    with pytest.raises(LeaseLost, match="fencing token 1"):
        outbox.finish(engine, first, state=outbox.DState.DONE, attempts=1, attempt=attempt(), steps=stale)
    with pytest.raises(LeaseLost):
        stale.done("document:1", {"url": "http://d/1"})
    with pytest.raises(LeaseLost):
        stale.link_zaak("F1", "ZT", "http://z/1", "OLO-F1")
    with pytest.raises(LeaseLost):
        stale.link_document("F1", ["http://z/1"], "B1", "OLO-F1-B1", 10)
    with pytest.raises(LeaseLost):
        stale.document("F1", "http://z/1", "B1")
    with pytest.raises(LeaseLost):  # and from now on it stops before any call or lookup
        stale.called("POST /documenten")
    with pytest.raises(LeaseLost):
        stale.result("zaak:ZT")
    assert not first.lease(engine, MINUTES).renew()
    assert snapshot(engine) == before  # not the outcome, not the buffered zaak, not the step, not the link

    current = outbox.DbSteps(engine, second.id, "t", second.lease(engine, MINUTES))
    assert current.retry and current.result("koppel:loket") == {"referentienummer": "R1"}
    current.link_zaak("F1", "ZT", "http://z/2", "OLO-F1")
    current.link_document("F1", ["http://z/2"], "B1", "OLO-F1-B1", 10)
    assert snapshot(engine)["documents"] == [("http://z/2", "B1")]
    outbox.finish(engine, second, state=outbox.DState.DONE, attempts=1, attempt=attempt(), steps=current)
    row = delivery_row(engine, second.id)
    assert (row.state, row.fence, row.claimed_by, row.lease_until) == ("done", 2, None, None)
    with pytest.raises(LeaseLost):  # a lease ends with its outcome: no second one
        outbox.finish(engine, second, state=outbox.DState.RETRY, attempts=2)


def test_a_holder_renews_its_lease_and_a_claim_needs_it_expired(engine: Engine) -> None:
    """Two deliveries claimed under a 1 s lease; only one is renewed (for 10 minutes): after the second
    has passed, another worker can take the other one, not the renewed one."""
    w = GroupCommitWriter(engine)
    store_message(w, "F2")
    store_message(w, "F2B")
    kept, left = outbox.claim(engine, "w1", timedelta(seconds=1), limit=2)
    lease = kept.lease(engine, timedelta(minutes=10))
    assert lease.renew()
    time.sleep(1.1)  # both claims' own leases have run out by now
    assert [c.id for c in outbox.claim(engine, "w2", MINUTES, limit=2)] == [left.id]
    lease.check()  # still ours: no error


def test_a_delivery_claimed_in_a_batch_that_waited_past_its_lease_is_not_started(engine: Engine) -> None:
    """``work_once(limit=n)`` runs its claims one after another: one that waited past its lease and was
    taken over meanwhile learns so before its first step, though its own heartbeat never ran."""
    w = GroupCommitWriter(engine)
    store_message(w, "F4")
    store_message(w, "F4B")
    first, waiting = outbox.claim(engine, "w1", timedelta(seconds=1), limit=2)
    time.sleep(1.1)  # the first delivery runs long
    assert [c.id for c in outbox.claim(engine, "w2", MINUTES, limit=2)] == [first.id, waiting.id]
    with pytest.raises(LeaseLost):
        waiting.lease(engine, timedelta(seconds=1)).check()


def test_resend_fences_the_worker_it_took_over_from_and_is_fenced_by_a_takeover(engine: Engine) -> None:
    """``messages resend`` claims with ``claim_ids``: that raises the token too, both ways."""
    mid = store_message(GroupCommitWriter(engine), "F3")
    (did,) = outbox.deliveries_for_messages(engine, [mid]).values()
    (by_worker,) = outbox.claim(engine, "worker", MINUTES)
    expire_leases(engine)
    (by_resend,) = outbox.claim_ids(engine, [did], "cli", MINUTES)
    assert by_resend.fence == by_worker.fence + 1
    with pytest.raises(LeaseLost):
        outbox.finish(engine, by_worker, state=outbox.DState.RETRY, attempts=1)
    expire_leases(engine)  # the resend dies
    (again,) = outbox.claim(engine, "worker-2", MINUTES)
    assert again.fence == by_resend.fence + 1
    with pytest.raises(LeaseLost):
        outbox.finish(engine, by_resend, state=outbox.DState.DONE, attempts=1)
    with pytest.raises(LeaseLost):
        outbox.DbSteps(engine, did, "t", by_resend.lease(engine, MINUTES)).done("x", {"y": 1})
    outbox.finish(engine, again, state=outbox.DState.DONE, attempts=1)
    assert delivery_row(engine, did).state == "done"


def attempt() -> dict[str, Any]:
    return {"started_at": outbox.now(), "duration_ms": 1, "status": "ok", "error": None, "calls": "[]"}


def delivery_row(engine: Engine, delivery_id: int) -> Any:
    with engine.connect() as conn:
        return conn.execute(select(deliveries).where(deliveries.c.id == delivery_id)).one()


# -- deliveries against the fake ZGW ---------------------------------------------------------------------


def another_worker(sv: Services) -> Outbox:
    """A second worker on the same store (another thread or process of ``serve``)."""
    assert sv.outbox is not None
    other = copy.copy(sv.outbox)
    other.worker_id = "another-worker"
    return other


class Competitor:
    """Another worker polling for due deliveries while one runs; it must never get the running one."""

    def __init__(self, out: Outbox) -> None:
        self.out = out
        self.got: list[Report] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self) -> None:
        while not self._stop.wait(0.05):
            self.got += self.out.work_once()

    def __enter__(self) -> Competitor:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def lease_lost_lines(logs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in logs if e["event"].startswith("delivery lease lost")]


@needs_zgw_specs
def test_a_delivery_that_outlives_its_lease_keeps_it_and_runs_once(
    delivering: Callable[..., Services], zs: Zaaksysteem
) -> None:
    """Lease 1 s; the zaak call blocks 2.5 s and each document call 1 s (about 5 s in all), while another
    worker polls all along: the heartbeat keeps the delivery, it runs once, one document per bijlage."""
    sv = delivering(lease_seconds=1)
    zs.fake.fail_next("POST", "/zaken", status=None, delay=2.5)  # type: ignore[attr-defined]
    zs.fake.fail_next("POST", "/enkelvoudiginformatieobjecten", status=None, delay=1, times=2)  # type: ignore[attr-defined]
    mid = receive(sv)
    assert sv.outbox is not None
    with capture_logs() as logs, Competitor(another_worker(sv)) as competitor:
        t0 = time.monotonic()
        (report,) = sv.outbox.work_once()
        took = time.monotonic() - t0
    assert took > 3, "the delivery did not outlive its lease; the test proves nothing"
    assert report.state == "done" and competitor.got == []
    assert lease_lost_lines(logs) == []
    assert_one_complete_zaak(zs)
    row = delivery_row(sv.engine, report.delivery_id)
    assert (row.state, row.fence) == ("done", 1)  # claimed once
    assert len(outbox.delivery_of_message(sv.engine, mid)["attempts"]) == 1  # type: ignore[index]


@needs_zgw_specs
def test_the_heartbeat_survives_a_store_that_fails_a_renewal(
    delivering: Callable[..., Services], zs: Zaaksysteem, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The heartbeat's first renewal finds the store unavailable: it says so and tries again at the next
    beat, so the delivery (its zaak call blocking 2.5 s under a 1 s lease) still keeps its lease."""
    sv = delivering(lease_seconds=1)
    zs.fake.fail_next("POST", "/zaken", status=None, delay=2.5)  # type: ignore[attr-defined]
    receive(sv)
    renew = Lease.renew
    failed: list[str] = []

    def flaky(self: Lease) -> bool:
        if threading.current_thread().name.startswith("lease-") and not failed:
            failed.append("once")
            raise StoreUnavailable("store unavailable: injected")
        return renew(self)

    monkeypatch.setattr(Lease, "renew", flaky)
    assert sv.outbox is not None
    with capture_logs() as logs, Competitor(another_worker(sv)) as competitor:
        (report,) = sv.outbox.work_once()
    assert failed == ["once"]
    assert [e["error"] for e in logs if e["event"].startswith("lease renewal failed")] == [
        "store unavailable: injected"
    ]
    assert report.state == "done" and competitor.got == []
    assert_one_complete_zaak(zs)


@needs_zgw_specs
def test_a_stalled_worker_is_taken_over_writes_nothing_after_and_stops(
    delivering: Callable[..., Services], zs: Zaaksysteem, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Worker A's heartbeat is stopped (as if its process stalled) while a document call blocks past its
    1 s lease; worker B takes the delivery over. When A's call returns, A writes nothing more, makes no
    further call and reports ``lease-lost`` (logged once, naming B); B then finishes it: one zaak, one
    document per bijlage (the one A's call made is adopted)."""
    sv = delivering(lease_seconds=1)
    assert sv.outbox is not None
    zs.fake.fail_next("POST", "/enkelvoudiginformatieobjecten", status=None, delay=3.5)  # type: ignore[attr-defined]
    receive(sv)
    (a_claim,) = outbox.claim(sv.engine, sv.outbox.worker_id, sv.outbox.lease)
    a_report: list[Report] = []
    with monkeypatch.context() as m, capture_logs() as logs:
        m.setattr(worker.Heartbeat, "start", lambda self: None)
        a = threading.Thread(target=lambda: a_report.append(sv.outbox.run(a_claim)))  # type: ignore[union-attr]
        a.start()
        wait_for(lambda: zs.fake.pending_faults == 0, what="A's document call in flight")  # type: ignore[attr-defined]
        taken: list[outbox.Claimed] = []
        wait_for(lambda: bool(taken.extend(outbox.claim(sv.engine, "worker-b", sv.outbox.lease)) or taken))  # type: ignore[union-attr]
        assert a.is_alive(), "A's call returned before the takeover; the test proves nothing"
        before, calls_before = snapshot(sv.engine), len(zs.fake.requests)  # type: ignore[attr-defined]
        a.join(30)
    (b_claim,) = taken
    assert b_claim.fence == a_claim.fence + 1
    [lost] = a_report  # what `messages resend` prints for it: the message, the delivery and why
    assert (lost.message_id, lost.delivery_id, lost.state) == (a_claim.message_id, a_claim.id, LEASE_LOST)
    assert "lease taken over by another worker" in lost.detail and f"token {a_claim.fence}" in lost.detail
    assert snapshot(sv.engine) == before  # A wrote nothing after the takeover: no outcome, step or attempt
    after = zs.fake.requests[calls_before:]  # type: ignore[attr-defined]
    assert [(r.method, r.path.rsplit("/", 1)[-1]) for r in after] == [("POST", "enkelvoudiginformatieobjecten")]
    (line,) = lease_lost_lines(logs)
    assert (line["log_level"], line["now_claimed_by"], line["fence"]) == ("warning", "worker-b", a_claim.fence)

    b_report = sv.outbox.run(b_claim)
    assert b_report.state == "done", b_report
    assert_one_complete_zaak(zs)


@needs_zgw_specs
def test_a_resend_that_outlives_its_lease_keeps_it(delivering: Callable[..., Services], zs: Zaaksysteem) -> None:
    """``messages resend`` runs with the same heartbeat: a worker polling meanwhile does not take it."""
    sv = delivering(lease_seconds=1, backoff_initial=3600)
    zs.fake.fail_next("POST", "/zaken", status=503)  # type: ignore[attr-defined]
    mid = receive(sv)
    assert sv.outbox is not None
    assert [r.state for r in sv.outbox.work_once()] == ["retry"]
    zs.fake.fail_next("POST", "/zaken", status=None, delay=2.5)  # type: ignore[attr-defined]
    with Competitor(another_worker(sv)) as competitor:
        (report,) = sv.outbox.resend([mid])
    assert isinstance(report, Report) and report.state == "done" and competitor.got == []
    assert_one_complete_zaak(zs)


# -- thousands of calls ----------------------------------------------------------------------------------


def aanvraag_with_bijlagen(n: int) -> bytes:
    """The example aanvraag with ``n`` small inline bijlagen (1234567-1 … 1234567-n)."""
    inhoud = base64.b64encode(b"%PDF-1.4\n%%EOF\n").decode()
    bijlagen = "".join(
        f"<LVO:bijlage><LVO:bijlageId>1234567-{i}</LVO:bijlageId>"
        f"<LVO:bestandsnaam>1234567_Bijlage_{i}.pdf</LVO:bestandsnaam><LVO:documenttype>Bouwtekening</LVO:documenttype>"
        f"<LVO:mimeType>application/pdf</LVO:mimeType><LVO:vertrouwelijk>false</LVO:vertrouwelijk>"
        f"<LVO:inhoud>{inhoud}</LVO:inhoud></LVO:bijlage>"
        for i in range(1, n + 1)
    )
    body, count = re.subn(
        rb"<LVO:bijlagen>.*</LVO:bijlagen>",
        f"<LVO:bijlagen>{bijlagen}</LVO:bijlagen>".encode(),
        fixture("omvDi01AanbiedenAanvraag"),
        flags=re.S,
    )
    assert count == 1
    return body


def deliver_many_bijlagen(sv: Services, zs: Zaaksysteem, n: int) -> float:
    """Deliver an aanvraag with ``n`` bijlagen under a 2 s lease while another worker polls: it runs
    once, with one document (and one zaakinformatieobject) per bijlage. Returns the seconds it took."""
    mid = receive(sv, body=aanvraag_with_bijlagen(n))
    assert sv.outbox is not None
    with Competitor(another_worker(sv)) as competitor:
        t0 = time.monotonic()
        (report,) = sv.outbox.work_once()
        took = time.monotonic() - t0
    assert report.state == "done", report
    assert competitor.got == []
    fake = zs.fake
    assert fake.response_errors == []  # type: ignore[attr-defined]
    (zaak,) = fake.zaken  # type: ignore[attr-defined]
    docs = fake.documenten  # type: ignore[attr-defined]
    assert sorted(d["bestandsnaam"] for d in docs) == sorted(f"1234567_Bijlage_{i}.pdf" for i in range(1, n + 1))
    zios = [z for z in fake.zaakinformatieobjecten if z["zaak"] == zaak["url"]]  # type: ignore[attr-defined]
    assert sorted(z["informatieobject"] for z in zios) == sorted(d["url"] for d in docs)
    row = delivery_row(sv.engine, report.delivery_id)
    assert (row.state, row.fence) == ("done", 1)
    assert len(outbox.delivery_of_message(sv.engine, mid)["attempts"]) == 1  # type: ignore[index]
    return took


@needs_zgw_specs
def test_a_delivery_with_200_bijlagen_runs_once(delivering: Callable[..., Services], zs: Zaaksysteem) -> None:
    sv = delivering(lease_seconds=1)
    # the zaak's answer takes 2.5 s, so the run outlives its 1 s lease however fast the rest goes
    zs.fake.fail_next("POST", "/zaken", status=None, delay=2.5)  # type: ignore[attr-defined]
    took = deliver_many_bijlagen(sv, zs, 200)
    assert took > 2, "the delivery did not outlive its lease; the test proves nothing"


@pytest.mark.slow
@needs_zgw_specs
def test_a_delivery_with_2000_bijlagen_runs_once(delivering: Callable[..., Services], zs: Zaaksysteem) -> None:
    deliver_many_bijlagen(delivering(lease_seconds=2), zs, 2000)


_RUN_CUT_SHORT = """
from datetime import timedelta
from adapter.delivery.worker import Heartbeat

class Renewing:  # a lease that stays ours
    delivery_id = 1
    duration = timedelta(seconds=0.3)

    def renew(self):
        return True

Heartbeat(Renewing()).start()
print("beating", flush=True)
"""


def test_a_heartbeat_never_keeps_the_process_from_exiting() -> None:
    """`serve` stopping while a delivery blocks in a call ends the process with the heartbeat still beating
    (the run's thread never reaches its ``finally``): the heartbeat must not hold the exit up. The lease then
    runs out and another worker takes the delivery over."""
    done = subprocess.run([sys.executable, "-c", _RUN_CUT_SHORT], cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert (done.returncode, done.stdout) == (0, "beating\n"), done.stderr
