"""Storage that fails loudly (issue 8, item 5): a removed, replaced or read-only SQLite file is StUF046 and a
503 from ``/readyz``, never an acknowledgement into a file nobody reads; stored data is the service's alone;
``/readyz`` also reports stopped delivery workers and a stopped scheduler."""

from __future__ import annotations

import os
import stat
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.engine import make_url

from adapter.app import build_app
from adapter.errors import ConfigError
from adapter.services import Services
from adapter.store.files import FileStore
from tests.conftest import PG_URL, Server, drop_database, make_server
from tests.soap import fixture, post, with_reference

sqlite_only = pytest.mark.skipif(bool(PG_URL), reason="the SQLite file itself; PostgreSQL owns its files")


def aanvraag() -> bytes:
    return with_reference(fixture("omvDi01AanbiedenAanvraag"), f"I-{uuid.uuid4().hex[:20]}")


def acknowledged(answer: Any) -> bool:
    return answer.status == 200 and b"Bv03Bericht" in answer.body


@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[Server]:
    srv = make_server(tmp_path)
    srv.start()
    yield srv
    srv.stop()
    drop_database(srv.db_url)


def db_file(server: Server) -> Path:
    database = make_url(server.db_url).database
    assert database
    return Path(database)


def readyz(server: Server) -> httpx.Response:
    return httpx.get(f"{server.url}/readyz", timeout=10)


@sqlite_only
def test_a_deleted_database_file_is_stuf046_and_not_ready(fresh: Server) -> None:
    assert acknowledged(post(fresh.soap_url, aanvraag()))
    assert readyz(fresh).json() == {"status": "ready"}
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db_file(fresh)}{suffix}").unlink(missing_ok=True)
    answer = post(fresh.soap_url, aanvraag())
    assert answer.status == 500 and answer.code == "StUF046", answer.body[:400]
    r = readyz(fresh)
    assert r.status_code == 503 and "is gone" in r.json()["reason"]
    assert not db_file(fresh).exists()  # nothing created behind the operator's back either


@sqlite_only
def test_a_replaced_database_file_is_stuf046(fresh: Server) -> None:
    assert acknowledged(post(fresh.soap_url, aanvraag()))
    path = db_file(fresh)
    copy = path.with_name("copy.db")
    copy.write_bytes(path.read_bytes())
    os.replace(copy, path)  # e.g. a restore over a running service
    answer = post(fresh.soap_url, aanvraag())
    assert answer.code == "StUF046"
    assert "was replaced" in readyz(fresh).json()["reason"]


@sqlite_only
def test_a_read_only_database_file_is_stuf046_until_it_is_writable_again(fresh: Server) -> None:
    path = db_file(fresh)
    path.chmod(0o400)
    try:
        assert post(fresh.soap_url, aanvraag()).code == "StUF046"
        assert readyz(fresh).status_code == 503
        assert f"database file {path.name} is read-only" in readyz(fresh).json()["reason"]
    finally:
        path.chmod(0o600)
    assert acknowledged(post(fresh.soap_url, aanvraag()))
    assert readyz(fresh).status_code == 200


@sqlite_only
def test_database_and_its_journal_are_owner_only(fresh: Server) -> None:
    assert acknowledged(post(fresh.soap_url, aanvraag()))
    path = db_file(fresh)
    for f in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        assert stat.S_IMODE(f.stat().st_mode) == 0o600, (f.name, oct(f.stat().st_mode))


def test_an_existing_world_readable_database_is_tightened(tmp_path: Path) -> None:
    from adapter.store.db import make_engine

    path = tmp_path / "old.db"
    journal = [Path(f"{path}-wal"), Path(f"{path}-shm")]  # left by an earlier release or a copy
    for f in (path, *journal):
        f.write_bytes(b"")
        f.chmod(0o644)
    make_engine(f"sqlite:///{path}").dispose()
    for f in (path, *journal):
        assert stat.S_IMODE(f.stat().st_mode) == 0o600, f.name
    (tmp_path / "var").mkdir(mode=0o755)
    make_engine(f"sqlite:///{tmp_path / 'var' / 'new.db'}").dispose()  # a new file is the service's alone
    assert stat.S_IMODE((tmp_path / "var" / "new.db").stat().st_mode) == 0o600
    # a missing folder is refused, not made: a mistyped path must not start an empty store beside the real one
    with pytest.raises(ConfigError, match=r"store.url: folder .*/srv/loket does not exist"):
        make_engine(f"sqlite:///{tmp_path / 'srv' / 'loket' / 'new.db'}")
    assert not (tmp_path / "srv").exists()


def test_a_pooled_sqlite_connection_serves_whichever_thread_takes_it_next(tmp_path: Path) -> None:
    """The pool hands a returned connection to the next thread that asks (the group-commit writer, the
    delivery workers, the scheduler): sqlite3's same-thread check would refuse it there."""
    import threading

    from adapter.store.db import make_engine

    engine = make_engine(f"sqlite:///{tmp_path / 'store.db'}", pool_size=3)
    try:
        assert engine.pool.size() == 3  # store.pool_size
        assert engine.pool._max_overflow == 3  # as many again under a burst, not SQLAlchemy's default 10
        with engine.connect() as conn:
            mine = conn.connection.dbapi_connection
            conn.exec_driver_sql("SELECT 1")
        seen: list[object] = []

        def other() -> None:
            try:
                with engine.connect() as conn:
                    seen.append(conn.connection.dbapi_connection is mine)
                    seen.append(conn.exec_driver_sql("SELECT 1").scalar())
            except Exception as exc:  # reported below, in the test's own thread
                seen.append(exc)

        thread = threading.Thread(target=other)
        thread.start()
        thread.join(10)
        assert seen == [True, 1]
    finally:
        engine.dispose()


def test_an_engine_remembers_the_sqlite_file_it_opened(tmp_path: Path) -> None:
    """In-process, the check behind the StUF046 of a deleted or replaced file: the engine knows which file it
    opened (without that identity every check would pass)."""
    from adapter.errors import StoreUnavailable
    from adapter.store.db import check_same_file, make_engine

    engine = make_engine(f"sqlite:///{tmp_path / 'store.db'}", lock_timeout_ms=1000)
    try:
        check_same_file(engine)
        (tmp_path / "store.db").unlink()
        with pytest.raises(StoreUnavailable, match=r"database file store\.db is gone"):
            check_same_file(engine)
    finally:
        engine.dispose()


@pytest.mark.parametrize(("lock_timeout_ms", "busy_timeout"), [(None, 5000), (1234, 1234)])
def test_an_sqlite_lock_wait_lasts_store_lock_timeout_ms(
    lock_timeout_ms: int | None, busy_timeout: int, tmp_path: Path
) -> None:
    """``store.lock_timeout_ms`` (default 5000, as in config.example.toml) bounds a wait for SQLite's write lock;
    past it the store is unavailable (StUF046) rather than hanging the request."""
    from adapter.store.db import make_engine

    url = f"sqlite:///{tmp_path / 'store.db'}"
    engine = make_engine(url) if lock_timeout_ms is None else make_engine(url, lock_timeout_ms=lock_timeout_ms)
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == busy_timeout
    finally:
        engine.dispose()


@pytest.mark.parametrize(("lock_timeout_ms", "connect_timeout"), [(500, 1), (5000, 5), (7999, 7)])
def test_a_postgresql_connection_attempt_gives_up_after_the_lock_timeout(
    lock_timeout_ms: int, connect_timeout: int
) -> None:
    """An unreachable PostgreSQL fails a request within ``store.lock_timeout_ms`` (whole seconds, at least one:
    libpq takes an integer) instead of libpq's endless default. Read from the parameters the engine hands the
    driver; nothing listens on the port, and the attempt is stopped before it is made."""
    from sqlalchemy import event

    from adapter.store.db import make_engine

    engine = make_engine("postgresql+psycopg://loket@127.0.0.1:9/loket", lock_timeout_ms=lock_timeout_ms)
    seen: dict[str, Any] = {}

    class Stop(Exception):
        pass

    @event.listens_for(engine, "do_connect")
    def _params(dialect: Any, conn_rec: Any, cargs: Any, cparams: dict[str, Any]) -> None:
        seen.update(cparams)
        raise Stop

    try:
        with pytest.raises(Stop):
            engine.connect()
    finally:
        engine.dispose()
    assert (seen["connect_timeout"], type(seen["connect_timeout"])) == (connect_timeout, int)
    assert f"-c lock_timeout={lock_timeout_ms} " in seen["options"]


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:"])
def test_an_in_memory_sqlite_store_is_refused(url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """It would acknowledge messages that vanish with the process (and SQLAlchemy's single-thread pool for it
    refuses the pool settings anyway): refused with the reason, and no file named ``:memory:`` is made."""
    from adapter.store.db import make_engine

    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match="in-memory SQLite store loses every acknowledged message"):
        make_engine(url)
    assert list(tmp_path.iterdir()) == []


def test_the_file_store_is_owner_only(tmp_path: Path) -> None:
    store = FileStore(tmp_path / "files")
    with store.writer(None, None) as w:
        w.write(b"bouwtekening")
        stored = w.commit()
    assert stat.S_IMODE((tmp_path / "files").stat().st_mode) == 0o700
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    assert stat.S_IMODE(stored.parent.stat().st_mode) == 0o700


def get_readyz(services: Services) -> httpx.Response:
    transport = httpx.ASGITransport(app=build_app(services))

    async def call() -> httpx.Response:
        async with httpx.AsyncClient(transport=transport, base_url="http://adapter") as client:
            return await client.get("/readyz")

    import asyncio

    return asyncio.run(call())


def test_readyz_reports_stopped_delivery_workers(services: Services) -> None:
    assert services.outbox is not None
    services.outbox.settings = services.outbox.settings.model_copy(update={"workers": 1})
    services.outbox.start()
    assert get_readyz(services).status_code == 200
    services.outbox.stop()  # the thread ends, as after a crash in it
    r = get_readyz(services)
    assert r.status_code == 503 and "delivery workers stopped: delivery-0" in r.json()["reason"]


def test_readyz_reports_a_stopped_scheduler(inbound: Services) -> None:
    class Stopped:
        running = False

    inbound.scheduler = Stopped()
    r = get_readyz(inbound)
    assert r.status_code == 503 and r.json()["reason"] == "job scheduler stopped"
    inbound.scheduler = type("Running", (), {"running": True})()
    assert get_readyz(inbound).status_code == 200
