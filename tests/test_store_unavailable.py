"""Store unavailable: Fo03 StUF046 (Server), nothing stored; once the store is back the resend is accepted."""

from __future__ import annotations

import sqlite3
import threading
import uuid

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tests.conftest import Server
from tests.soap import STUF, fixture, post, with_reference


class StoreLock:
    """Holds an exclusive lock on the messages table from another connection, as a stuck
    migration, backup or failing disk would."""

    def __init__(self, db_url: str) -> None:
        self.db_url = db_url
        self._release = threading.Event()
        self._held = threading.Event()
        self._thread = threading.Thread(target=self._hold, daemon=True)

    def _hold(self) -> None:
        url = make_url(self.db_url)
        if url.get_backend_name() == "sqlite":
            conn = sqlite3.connect(url.database, isolation_level=None)
            conn.execute("BEGIN EXCLUSIVE")
            self._held.set()
            self._release.wait()
            conn.execute("ROLLBACK")
            conn.close()
        else:
            engine = create_engine(self.db_url)
            with engine.connect() as conn:
                conn.execute(text("LOCK TABLE messages IN ACCESS EXCLUSIVE MODE"))
                self._held.set()
                self._release.wait()
                conn.rollback()
            engine.dispose()

    def __enter__(self) -> StoreLock:
        self._thread.start()
        assert self._held.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self._release.set()
        self._thread.join(10)


def count(db_url: str, referentienummer: str) -> int:
    engine = create_engine(db_url)
    with engine.connect() as conn:
        n = conn.execute(
            text("SELECT count(*) FROM messages WHERE referentienummer=:r"), {"r": referentienummer}
        ).scalar_one()
    engine.dispose()
    return n


def test_store_unavailable_is_stuf046_then_resend_succeeds(server: Server) -> None:
    r = f"T-{uuid.uuid4().hex[:20]}"
    body = with_reference(fixture("omvDi01AanbiedenAanvraag"), r)
    with StoreLock(server.db_url):
        answer = post(server.soap_url, body)
        assert answer.status == 500
        assert answer.code == "StUF046"
        assert answer.faultcode.endswith(":Server")
        assert answer.fo03.findtext(f"{{{STUF}}}body/{{{STUF}}}plek") == "server"
    assert count(server.db_url, r) == 0  # nothing half-written
    again = post(server.soap_url, body)  # StUF: same referentienummer after a receiver-side fault
    assert again.status == 200 and again.payload.tag == f"{{{STUF}}}Bv03Bericht"
    assert count(server.db_url, r) == 1


def test_readyz_reports_the_store(server: Server) -> None:
    import httpx

    assert httpx.get(f"{server.url}/readyz").json()["status"] == "ready"
