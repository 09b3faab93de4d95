"""Proofs (issue 8, item 8), time-compressed: ``serve`` killed with SIGKILL under load, the zaaksysteem down,
two ``serve`` processes on one PostgreSQL, PostgreSQL stopped and started under load. The logic is in
``tests/proofs.py``, which runs the same proofs full-length as a script (figures in README, "Proofs")."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.delivery_env import needs_zgw_specs
from tests.integration.openzaak_server import PGBIN
from tests.logrecord import record_log
from tests.proofs import (
    new_database,
    postgres,
    prove_kill,
    prove_postgres_outage,
    prove_two_serves,
    prove_zaaksysteem_down,
)

pytestmark = [needs_zgw_specs]
needs_own_postgres = pytest.mark.skipif(
    os.geteuid() != 0 or not (PGBIN / "initdb").exists(),
    reason="starts its own PostgreSQL 15 as the postgres user: needs root and /usr/lib/postgresql/15",
)


def test_serve_killed_three_times_under_load_delivers_every_acknowledged_message_once(tmp_path: Path) -> None:
    figures = prove_kill(tmp_path, messages=60, kills=3)
    print(figures)


def test_zaaksysteem_down_then_everything_delivered_by_retries_alone(tmp_path: Path) -> None:
    figures = prove_zaaksysteem_down(tmp_path, messages=20, outage=5)
    print(figures)


@pytest.fixture(scope="module")
def pg() -> Iterator[Any]:
    with postgres() as cluster:
        yield cluster


@needs_own_postgres
def test_two_serves_on_one_postgresql_deliver_each_message_once(tmp_path: Path, pg: Any) -> None:
    figures = prove_two_serves(tmp_path, messages=60, db_url=new_database(pg))
    print(figures)


@needs_own_postgres
def test_postgresql_stopped_and_started_under_load(tmp_path: Path, pg: Any) -> None:
    figures = prove_postgres_outage(tmp_path, messages=50, pg=pg, outages=2, outage=2)
    print(figures)


@needs_own_postgres
def test_a_postgresql_engine_sets_its_timeouts_on_every_connection_and_survives_a_restarted_server(pg: Any) -> None:
    """The production store: a lock wait and an idle transaction are bounded by the server itself, the pool
    holds ``pool_size`` + as many overflow connections, and a connection the server dropped (a restart, a
    failover) is replaced at checkout rather than failing the next acknowledgement."""
    from sqlalchemy import text

    from adapter.store.db import make_engine

    engine = make_engine(new_database(pg), lock_timeout_ms=1500, pool_size=2)
    try:
        assert engine.pool.size() == 2  # store.pool_size (services: at least request threads + workers)
        held = [engine.connect() for _ in range(4)]  # two pooled, two overflow
        for conn in held:
            assert conn.execute(text("SHOW lock_timeout")).scalar() == "1500ms"
            assert conn.execute(text("SHOW idle_in_transaction_session_timeout")).scalar() == "1min"
        pids = {conn.execute(text("SELECT pg_backend_pid()")).scalar() for conn in held}
        for conn in held:
            conn.close()
        assert len(pids) == 4
        pg.psql(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid IN ({', '.join(map(str, pids))})")
        with engine.connect() as conn:  # pre-ping: the dead pooled connection is replaced
            assert conn.execute(text("SELECT pg_backend_pid()")).scalar() not in pids
    finally:
        engine.dispose()


def test_delivery_workers_log_a_store_outage_once_not_per_poll(delivering: Any, monkeypatch: Any) -> None:
    """The loop of ``test_postgresql_stopped_and_started_under_load`` in-process and fast: two workers polling
    every 10 ms through two outages of the store (the SQLite file made read-only: every write is refused)
    log one warning per outage and one line when it is back, not a traceback per poll."""
    import time

    from sqlalchemy.engine import make_url

    from adapter.delivery import worker

    sv = delivering(workers=2, poll_interval=0.01)
    if sv.engine.dialect.name != "sqlite":
        pytest.skip("makes the SQLite file read-only; the PostgreSQL outage is the proof above")
    logs = record_log(monkeypatch, worker)
    db = Path(str(make_url(str(sv.engine.url)).database))
    sv.outbox.start()
    try:
        for _ in range(2):
            db.chmod(0o400)
            time.sleep(0.5)  # some fifty polls per worker
            db.chmod(0o600)
            time.sleep(0.5)
    finally:
        db.chmod(0o600)
        sv.outbox.stop()
    lines = [(e["level"], e["event"]) for e in logs]
    why = [e.get("error") for e in logs]  # the outage warning's error: what the store said
    assert lines == [("warning", worker.STORE_DOWN), ("info", "store available again; delivery resumed")] * 2
    assert why[::2] == ["store unavailable: database file adapter.db is read-only"] * 2, why
