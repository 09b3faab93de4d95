"""Issue 12, "Exactly-once, proven": one test per README guarantee that had none failing when it breaks.

Each test names the README guarantee it protects. Everything runs in one process (the adapter's web app
and the fakes on loopback ports, the outbox driven by hand), on SQLite or, with ``LOKET_TEST_DATABASE_URL``,
on PostgreSQL. Guarantees already protected elsewhere: ack only after the commit when the store is locked
(``test_store_unavailable.py``), duplicate key
(``test_stuf_lvo_http.py::test_identical_resend_gets_the_same_answer_and_is_stored_once``).
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, event, func, select, text, update
from sqlalchemy import exc as sa_exc

from adapter.app import build_app
from adapter.config import load_settings
from adapter.inbound.stuf_lvo import StufLvoChannel
from adapter.services import Services, open_services, resolve_path
from adapter.simulation.serving import serving
from adapter.store import jobs as job_store
from adapter.store import outbox
from adapter.store.db import make_engine, stop_checkpoints, upgrade
from adapter.store.tables import deliveries, messages
from tests.conftest import FIXTURES, ROOT, drop_database, new_database_url, write_config
from tests.delivery_env import Zaaksysteem, needs_zgw_specs, start_zaaksysteem
from tests.soap import STUF, Answer, fixture, with_reference

OIN = "00000001002564440000"
MiB = 1024 * 1024
NOTIFICATIE = FIXTURES / "stam" / "verzoeknotificatie-initieren.xml"


# -- helpers ------------------------------------------------------------------------------------------------


def post_message(http: httpx.Client, channel: str) -> httpx.Response:
    """The example aanvraag (StUF-LVO) or verzoeknotificatie (STAM) posted to its real endpoint."""
    if channel == "stuf-lvo":
        body = with_reference(fixture("omvDi01AanbiedenAanvraag"), "GUARANTEE-1")
        return http.post("/soap/stuf-lvo", content=body, headers={"Content-Type": "text/xml", "SOAPAction": '""'})
    return http.post(
        "/stam/verzoeknotificatie", content=NOTIFICATIE.read_bytes(), headers={"Content-Type": "application/xml"}
    )


def acknowledged(channel: str, r: httpx.Response) -> bool:
    """Did the sender get the acknowledgement (Bv03 / 202)?"""
    if channel == "stuf-lvo":
        return r.status_code == 200 and Answer(200, r.content).payload.tag == f"{{{STUF}}}Bv03Bericht"
    return r.status_code == 202


def assert_store_unavailable_answer(channel: str, r: httpx.Response) -> None:
    """The answer the README prescribes when the store cannot take the message."""
    if channel == "stuf-lvo":
        answer = Answer(r.status_code, r.content)
        assert r.status_code == 500 and answer.code == "StUF046", r.text
        assert answer.faultcode is not None and answer.faultcode.endswith(":Server")
    else:
        assert r.status_code == 503, r.text
        assert r.headers["content-type"].startswith("application/problem+json")


def counts(engine: Engine) -> tuple[int, int]:
    """(messages, deliveries) in the store."""
    with engine.connect() as conn:
        return (
            conn.execute(text("SELECT count(*) FROM messages")).scalar_one(),
            conn.execute(text("SELECT count(*) FROM deliveries")).scalar_one(),
        )


def injected_failure(what: str) -> sa_exc.OperationalError:
    return sa_exc.OperationalError(what, None, sqlite3.OperationalError("disk I/O error (injected by the test)"))


@contextmanager
def statements_and_commits(engine: Engine) -> Iterator[list[str]]:
    """Every SQL statement (its first three words, upper case) and every COMMIT/ROLLBACK on ``engine``."""
    seen: list[str] = []

    def on_sql(_c: Any, _cur: Any, statement: str, *_: Any) -> None:
        seen.append(" ".join(statement.split()[:3]).upper())

    def on_commit(_c: Any) -> None:
        seen.append("COMMIT")

    def on_rollback(_c: Any) -> None:
        seen.append("ROLLBACK")

    listeners: list[tuple[str, Callable[..., None]]] = [
        ("before_cursor_execute", on_sql),
        ("commit", on_commit),
        ("rollback", on_rollback),
    ]
    for name, fn in listeners:
        event.listen(engine, name, fn)
    try:
        yield seen
    finally:
        for name, fn in listeners:
            event.remove(engine, name, fn)


@contextmanager
def failing_commits(engine: Engine) -> Iterator[None]:
    """Every COMMIT on ``engine`` fails (as on a full disk or a lost connection), then works again."""

    def fail(_c: Any) -> None:
        raise injected_failure("COMMIT")

    event.listen(engine, "commit", fail)
    try:
        yield
    finally:
        event.remove(engine, "commit", fail)


@contextmanager
def adapter_http(sv: Services) -> Iterator[httpx.Client]:
    """The adapter's web app (as ``serve`` builds it) on a loopback port, and a client for it."""
    with serving(build_app(sv)) as base, httpx.Client(base_url=base, timeout=30) as http:
        yield http


CHANNELS = ["stuf-lvo", "stam"]


# -- 1. the outbox row in the same transaction as the message ------------------------------------------------


@pytest.mark.parametrize("channel", CHANNELS)
def test_outbox_row_is_inserted_before_the_commit_of_its_message(inbound: Services, channel: str) -> None:
    """README "Delivery": every accepted message gets an outbox row in the same transaction as itself."""
    with adapter_http(inbound) as http, statements_and_commits(inbound.engine) as seen:
        assert acknowledged(channel, post_message(http, channel))
    msg = next(i for i, s in enumerate(seen) if s.startswith("INSERT INTO MESSAGES"))
    dlv = next((i for i, s in enumerate(seen) if s.startswith("INSERT INTO DELIVERIES")), None)
    assert dlv is not None and dlv > msg, seen
    between = seen[msg:dlv]
    assert "COMMIT" not in between and "ROLLBACK" not in between, f"message committed before its outbox row: {seen}"
    assert "COMMIT" in seen[dlv:], seen
    assert counts(inbound.engine) == (1, 1)


@pytest.mark.parametrize("channel", CHANNELS)
def test_failing_outbox_insert_stores_no_message_and_is_not_acknowledged(
    inbound: Services, channel: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """README "Delivery": outbox row in the message's own transaction; "store unavailable": nothing stored."""

    def broken_enqueue(*_: Any, **__: Any) -> None:
        raise injected_failure("INSERT INTO deliveries")

    with adapter_http(inbound) as http:
        monkeypatch.setattr(outbox, "enqueue", broken_enqueue)
        r = post_message(http, channel)
        assert_store_unavailable_answer(channel, r)
        assert counts(inbound.engine) == (0, 0), "a message was stored without its outbox row"
        monkeypatch.undo()
        again = post_message(http, channel)  # the sender's resend is a first delivery
        assert acknowledged(channel, again), again.text
        if channel == "stam":
            assert again.json()["duplicate"] is False
    assert counts(inbound.engine) == (1, 1)


# -- 2. SQLite synchronous=FULL and WAL ----------------------------------------------------------------------


def sqlite_pragmas(conn: Any) -> tuple[str, int]:
    return (
        str(conn.exec_driver_sql("PRAGMA journal_mode").scalar()).lower(),
        int(conn.exec_driver_sql("PRAGMA synchronous").scalar()),
    )


def raw_pragmas(dbapi_conn: Any) -> tuple[str, int]:
    cur = dbapi_conn.cursor()
    try:
        return (
            str(cur.execute("PRAGMA journal_mode").fetchone()[0]).lower(),
            int(cur.execute("PRAGMA synchronous").fetchone()[0]),
        )
    finally:
        cur.close()


WAL_FULL = ("wal", 2)  # PRAGMA synchronous: 0 OFF, 1 NORMAL, 2 FULL, 3 EXTRA


def test_sqlite_store_runs_in_wal_with_synchronous_full(tmp_path: Path) -> None:
    """README "StUF-LVO endpoint": a Bv03 only after the commit (SQLite synchronous=FULL, WAL).

    Always on a SQLite file (also when the suite runs on PostgreSQL): it checks how the embedded store is
    opened, which is independent of the database the other tests use."""
    url = f"sqlite:///{tmp_path / 'store.db'}"
    for background_checkpoints in (False, True):  # the CLI's engine and serve's engine
        engine = make_engine(url, background_checkpoints=background_checkpoints)
        try:
            # three pooled connections open at once (raw: no transaction, so no write lock taken)
            conns = [engine.raw_connection() for _ in range(3)]
            try:
                assert [raw_pragmas(c) for c in conns] == [WAL_FULL] * 3
            finally:
                for c in conns:
                    c.close()
        finally:
            stop_checkpoints(engine)
            engine.dispose()
    # the connections the group-commit writer commits messages on (Services as serve builds them)
    sv = open_services(load_settings(write_config(tmp_path / "config.toml", url, 8999)), with_outbox=False)
    try:
        assert sv.engine.dialect.name == "sqlite"
        seen = {sv.writer.run(sqlite_pragmas) for _ in range(3)}
        assert seen == {WAL_FULL}
    finally:
        sv.close()


def checkpointers(but: frozenset[threading.Thread] = frozenset()) -> list[threading.Thread]:
    """The live checkpoint threads, except ``but`` (those of earlier tests' engines: stopped, they end within
    a moment, which under a loaded suite may still be after the next test began)."""
    return [t for t in threading.enumerate() if t.name == "sqlite-checkpoint" and t not in but]


def test_serves_store_checkpoints_its_wal_in_a_thread_of_its_own_and_the_clis_does_not(tmp_path: Path) -> None:
    """``serve`` turns SQLite's own checkpoint off (the commit that crosses 1000 WAL pages would do it, and
    hold up every message acknowledged with it) and runs PASSIVE checkpoints from a daemon thread instead:
    the rows reach the database file without any commit doing it, and the thread ends with the engine."""
    path = tmp_path / "store.db"
    earlier = frozenset(checkpointers())
    cli = make_engine(f"sqlite:///{path}")  # the CLI's: SQLite checkpoints as usual, no thread
    with cli.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 1000
    assert checkpointers(earlier) == []
    cli.dispose()

    engine = make_engine(f"sqlite:///{path}", background_checkpoints=True)
    try:
        [thread] = checkpointers(earlier)
        assert thread.daemon  # never keeps a stopping process alive
        with engine.begin() as conn:
            assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar() == 0
            conn.exec_driver_sql("CREATE TABLE t (x BLOB)")
            for _ in range(64):
                conn.exec_driver_sql("INSERT INTO t VALUES (randomblob(32768))")  # ~2 MiB, all in the WAL
        before = path.stat().st_size
        deadline = time.monotonic() + 10
        while path.stat().st_size < before + 2_000_000 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert path.stat().st_size >= before + 2_000_000, "the WAL never reached the database file"
    finally:
        stop_checkpoints(engine)
        engine.dispose()
    thread.join(5)
    assert not thread.is_alive()


# -- 3. acknowledge only after the commit (STAM 202; StUF-LVO: test_store_unavailable.py) --------------------


@pytest.mark.parametrize("channel", CHANNELS)
def test_no_acknowledgement_when_the_commit_fails(inbound: Services, channel: str) -> None:
    """README: Bv03 / 202 "only after the commit"; a store that cannot commit gets StUF046 / 503, stores nothing."""
    with adapter_http(inbound) as http:
        with failing_commits(inbound.engine):
            r = post_message(http, channel)
        assert not acknowledged(channel, r), "acknowledged although the commit failed"
        assert_store_unavailable_answer(channel, r)
        assert counts(inbound.engine) == (0, 0)
        again = post_message(http, channel)  # the store is back: the resend is a first delivery
        assert acknowledged(channel, again), again.text
    assert counts(inbound.engine) == (1, 1)


# -- 4. retries: backoff applied, permanent failures, dead letters -------------------------------------------


@pytest.fixture
def zs() -> Iterator[Zaaksysteem]:
    z = start_zaaksysteem()
    yield z
    z.stop()


def receive_aanvraag(sv: Services) -> int:
    """Accept the example aanvraag through the real StUF-LVO channel; its message id."""
    channel = StufLvoChannel(sv.settings, sv.writer, sv.schemas)
    raw = with_reference(fixture("omvDi01AanbiedenAanvraag"), f"G4-{time.monotonic_ns()}")
    channel.accept(channel.receive(raw, "c" * 32))
    with sv.engine.connect() as conn:
        return int(conn.execute(select(func.max(messages.c.id))).scalar_one())


def delivery_row(sv: Services, message_id: int) -> Any:
    with sv.engine.connect() as conn:
        return conn.execute(select(deliveries).where(deliveries.c.message_id == message_id)).one()


def message_state(sv: Services, message_id: int) -> str:
    with sv.engine.connect() as conn:
        return conn.execute(select(messages.c.state).where(messages.c.id == message_id)).scalar_one()


def make_due(sv: Services) -> None:
    """Time passes: every waiting delivery is due now (attempt counts untouched)."""
    with sv.engine.begin() as conn:
        conn.execute(update(deliveries).values(next_attempt_at=outbox.now() - timedelta(seconds=1)))


def utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)  # SQLite hands back naive UTC


@needs_zgw_specs
def test_failed_attempt_n_is_retried_after_capped_exponential_backoff(
    delivering: Callable[..., Services], zs: Zaaksysteem
) -> None:
    """README "Retries": next attempt after backoff_initial · backoff_factor^(n-1), at most backoff_max."""
    sv = delivering(backoff_initial=10, backoff_factor=3, backoff_max=100, max_attempts=6)
    assert sv.outbox is not None
    zs.fake.fail_next("POST", "/zaken", status=503, times=4)  # type: ignore[attr-defined]
    mid = receive_aanvraag(sv)
    for attempt, delay in [(1, 10), (2, 30), (3, 90), (4, 100)]:  # 10·3³ = 270 is capped at 100
        make_due(sv)
        before = outbox.now()
        reports = sv.outbox.work_once(limit=10)
        after = outbox.now()
        assert [r.state for r in reports] == ["retry"], reports
        row = delivery_row(sv, mid)
        assert (row.state, row.attempts) == ("retry", attempt) and "503" in row.last_error
        due = utc(row.next_attempt_at)
        wait = timedelta(seconds=delay)
        slack = timedelta(milliseconds=1)
        assert before + wait - slack <= due <= after + wait + slack, (
            f"attempt {attempt}: next_attempt_at {due} is not the finish time + {delay} s ({before}..{after})"
        )
        assert sv.outbox.work_once(limit=10) == []  # not due before its time
    make_due(sv)
    assert [r.state for r in sv.outbox.work_once(limit=10)] == ["done"]
    assert len(zs.fake.zaken) == 1  # type: ignore[attr-defined]


@needs_zgw_specs
def test_transient_failure_is_retried_then_dead_after_max_attempts(
    delivering: Callable[..., Services], zs: Zaaksysteem
) -> None:
    """README "Retries": a failing delivery is retried; after max_attempts it is dead with its last error."""
    sv = delivering(backoff_initial=0, backoff_max=0.01, max_attempts=3)
    assert sv.outbox is not None
    zs.fake.fail_next("POST", "/zaken", status=503, times=10)  # type: ignore[attr-defined]
    mid = receive_aanvraag(sv)
    states: list[str] = []
    for _ in range(3):
        make_due(sv)
        states += [r.state for r in sv.outbox.work_once(limit=10)]
    assert states == ["retry", "retry", "dead"]
    row = delivery_row(sv, mid)
    assert (row.state, row.attempts) == ("dead", 3) and "HTTP 503" in row.last_error
    assert message_state(sv, mid) == "dead"
    make_due(sv)
    assert sv.outbox.work_once(limit=10) == []  # dead stays dead until an operator resends
    assert zs.fake.zaken == []  # type: ignore[attr-defined]


@needs_zgw_specs
def test_permanent_failure_needs_attention_at_once_and_resend_delivers_it(
    delivering: Callable[..., Services], zs: Zaaksysteem, tmp_path: Path
) -> None:
    """errors.py / README "Retries": a permanent failure (no route: MappingError) is not retried but
    ``needs-attention`` on the first attempt; ``messages resend <id>`` runs it again after the fix."""
    sv = delivering(backoff_initial=0, backoff_max=0.01, max_attempts=5)
    assert sv.outbox is not None
    mapping = resolve_path(sv.settings, sv.settings.delivery.mappings_dir) / "voorbeeldstad.toml"
    good = mapping.read_text(encoding="utf-8")
    routed = f'oin = "{OIN}"\ntarget = "zaaksysteem"'
    assert routed in good
    mapping.write_text(good.replace(routed, 'oin = "00000001999999999000"\ntarget = "zaaksysteem"'), encoding="utf-8")
    mid = receive_aanvraag(sv)
    (report,) = sv.outbox.work_once(limit=10)
    assert report.state == "needs-attention" and "not retried" in report.detail, report
    row = delivery_row(sv, mid)
    assert (row.state, row.attempts) == ("needs-attention", 1) and "no mapping routes" in row.last_error
    assert message_state(sv, mid) == "needs-attention"
    make_due(sv)
    assert sv.outbox.work_once(limit=10) == []  # never picked up again by the workers

    mapping.write_text(good, encoding="utf-8")  # the operator's fix
    later = time.time() + 5
    os.utime(mapping, (later, later))  # a distinct mtime, so the mapping set reloads
    resent = subprocess.run(
        [sys.executable, "-m", "adapter", "--config", sv.settings.source, "messages", "resend", str(mid)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert resent.returncode == 0, resent.stdout + resent.stderr
    assert f"message {mid}: done" in resent.stdout, resent.stdout
    assert delivery_row(sv, mid).state == "done" and message_state(sv, mid) == "delivered"
    assert len(zs.fake.zaken) == 1  # type: ignore[attr-defined]


# -- 5. werkmap documents streamed in flat memory ------------------------------------------------------------


def test_werkmap_download_keeps_memory_flat(tmp_path: Path) -> None:
    """README "STAM": each document streamed into the file store; memory stays flat whatever the size."""
    from adapter.loket import stam
    from adapter.loket.werkmap import WerkmapClient, WerkmapOptions
    from adapter.simulation.fake_werkmap import FakeWerkmap
    from adapter.simulation.serving import serve_in_thread
    from adapter.store.files import FileStore

    size = 64 * MiB
    fake = FakeWerkmap(oin=OIN)  # generates document bytes on the fly, 64 KiB at a time
    small, big = fake.generate_verzoeken(1, document_size=4096)[0], fake.generate_verzoeken(1, document_size=size)[0]
    base, stop = serve_in_thread(fake.app)
    options = WerkmapOptions(base_url=base + fake.base_path, oin=OIN, timeout=30)
    try:
        with WerkmapClient(options, FileStore(tmp_path / "files")) as client:
            client.download(client.referenties(small)["documenten"][0])  # warm up: lazy imports, connection
            doc = client.referenties(big)["documenten"][0]  # the fake hashes the document here, not below
            tracemalloc.start()
            try:
                path = client.download(doc)
                _, peak = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
    finally:
        stop()
    assert path.stat().st_size == size
    assert len([r for r in fake.requests if r.path.endswith(stam.document(doc["documentId"]))]) == 1
    assert peak < 8 * MiB, f"peak {peak / MiB:.1f} MiB of Python allocations for a {size // MiB} MiB download"


# -- 6. one werkmap poll per interval, across processes -----------------------------------------------------


@pytest.fixture
def two_processes(tmp_path: Path) -> Iterator[tuple[Engine, Engine]]:
    """Two engines on one database, as two adapter processes have."""
    url = new_database_url(tmp_path)
    a, b = make_engine(url), make_engine(url)
    upgrade(a)
    yield a, b
    a.dispose()
    b.dispose()
    drop_database(url)


def test_job_lock_is_taken_once_per_interval(
    two_processes: tuple[Engine, Engine], monkeypatch: pytest.MonkeyPatch
) -> None:
    """README "STAM": with several processes on one database the job runs in exactly one of them per
    interval (conditional UPDATE on job_locks); a crashed holder's lock expires."""
    a, b = two_processes
    interval, hold = timedelta(minutes=15), timedelta(minutes=30)
    real_now = job_store.now
    clock = {"offset": timedelta(0)}
    monkeypatch.setattr(job_store, "now", lambda: real_now() + clock["offset"])

    def lock(engine: Engine, holder: str) -> bool:
        return job_store.try_lock(engine, "werkmap-poll", holder, hold=hold, interval=interval)

    assert lock(a, "A")
    job_store.unlock(a, "werkmap-poll", "A")  # A's run finished quickly
    clock["offset"] = timedelta(minutes=1)
    assert not lock(b, "B"), "B ran the job a second time within the interval"
    assert not lock(a, "A")
    clock["offset"] = interval + timedelta(seconds=1)  # next interval: whoever fires first runs it
    assert lock(b, "B")
    assert not lock(a, "A")
    # B crashes holding the lock: the next interval is skipped while the lock lives, then it expires
    clock["offset"] = 2 * interval
    assert not lock(a, "A"), "took the lock another process still holds"
    clock["offset"] = interval + hold + timedelta(seconds=2)
    assert lock(a, "A")


def test_run_job_runs_once_per_interval_across_processes(tmp_path: Path) -> None:
    """README "STAM": ``jobs`` scheduler runs werkmap-poll in exactly one process per interval."""
    from adapter.jobs.scheduler import run_job

    url = new_database_url(tmp_path)
    config = write_config(tmp_path / "config.toml", url, 8999)
    first = open_services(load_settings(config), with_outbox=False)
    second = open_services(load_settings(config), with_outbox=False)
    try:
        upgrade(first.engine)
        assert run_job(first, "werkmap-poll").ran
        skipped = run_job(second, "werkmap-poll")
        assert not skipped.ran and skipped.status == "skipped"
        assert not run_job(first, "werkmap-poll").ran
        assert run_job(second, "werkmap-poll", force=True).ran  # an operator's `jobs run` may force it
        with first.engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM job_runs WHERE name='werkmap-poll'")).scalar_one() == 2
    finally:
        first.close()
        second.close()
        drop_database(url)


_CLAIMING_PROCESS = """
import json, sys, time
from datetime import timedelta
from pathlib import Path
from adapter.store import outbox
from adapter.store.db import make_engine
engine = make_engine(sys.argv[1], lock_timeout_ms=5000)
engine.connect().close()
go = Path(sys.argv[2])
Path(sys.argv[2] + "." + sys.argv[3]).touch()  # ready: imported and connected
while not go.exists():
    time.sleep(0.005)
got = []
while claimed := outbox.claim(engine, sys.argv[3], timedelta(minutes=5), limit=2):
    got += [c.id for c in claimed]
    time.sleep(0.002)  # as a worker does some work: SQLite's busy handler would let one process take all
print(json.dumps(got))
"""


def test_two_processes_claiming_at_once_never_get_the_same_delivery(tmp_path: Path) -> None:
    """README "exactly once": two `serve` processes on one store (PostgreSQL's ``FOR UPDATE SKIP LOCKED``,
    SQLite's ``BEGIN IMMEDIATE``) never both run a delivery. Threads of one process would not show it: they
    share the process's own write lock."""
    from adapter.store.writer import GroupCommitWriter
    from tests.test_outbox_store import store_message

    url = new_database_url(tmp_path)
    engine = make_engine(url)
    try:
        upgrade(engine)
        writer = GroupCommitWriter(engine)
        for i in range(120):
            store_message(writer, f"P{i}")
        writer.close()
        go = tmp_path / "go"
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", _CLAIMING_PROCESS, url, str(go), f"proc{n}"],
                cwd=ROOT,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for n in range(3)
        ]
        deadline = time.monotonic() + 60
        while not all(Path(f"{go}.proc{n}").exists() for n in range(3)):  # all three ready, then start together
            assert time.monotonic() < deadline and all(p.poll() is None for p in procs), "a process did not start"
            time.sleep(0.01)
        go.touch()
        results = [p.communicate(timeout=120) for p in procs]
        assert all(p.returncode == 0 for p in procs), [err[-500:] for _out, err in results]
        per_process = [json.loads(out) for out, _err in results]
        claimed = [i for ids in per_process for i in ids]
        assert sorted(claimed) == sorted(set(claimed)), "a delivery was claimed by two processes"
        assert len(claimed) == 120
        assert sum(1 for ids in per_process if ids) >= 2, "the processes did not overlap; the test proves nothing"
    finally:
        stop_checkpoints(engine)
        engine.dispose()
        drop_database(url)


def test_a_wait_with_its_own_deadline_is_never_dead_before_it(
    delivering: Callable[..., Services], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A delivery waiting for postbus files (``WaitingError(until=…)``) keeps being retried past
    ``max_attempts`` until its deadline; a wait without one, or past it, ends dead as any transient failure."""
    from adapter.errors import WaitingError

    sv = delivering(backoff_initial=0, backoff_max=0.01, max_attempts=2)
    assert sv.outbox is not None
    until = [datetime.now(UTC) + timedelta(hours=1)]

    def waiting(*_: object) -> str:
        raise WaitingError("postbus: waiting for 1 bijlage(n)", until=until[0])

    monkeypatch.setattr(sv.outbox, "_deliver", waiting)
    mid = receive_aanvraag(sv)
    states: list[str] = []
    for _ in range(4):
        make_due(sv)
        states += [r.state for r in sv.outbox.work_once(limit=10)]
    assert states == ["retry"] * 4
    assert delivery_row(sv, mid).attempts == 4
    until[0] = datetime.now(UTC) - timedelta(seconds=1)  # the deadline has passed
    make_due(sv)
    assert [r.state for r in sv.outbox.work_once(limit=10)] == ["dead"]
