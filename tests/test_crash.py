"""kill -9 of the server with messages in flight: every acknowledged message is stored, whole; a resend
of anything unacknowledged is accepted once (stored now, or answered again if it had been stored)."""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, text

from tests.conftest import drop_database, make_server
from tests.soap import STUF, Answer, fixture, with_reference

pytestmark = pytest.mark.slow


def test_kill_9_in_flight_loses_no_acknowledged_message(tmp_path: Path) -> None:
    srv = make_server(tmp_path)
    srv.start()
    template = fixture("omvDi01AanbiedenAanvraag")
    acked: dict[str, bytes] = {}
    sent: dict[str, bytes] = {}
    lock = threading.Lock()
    stop = threading.Event()

    def client(n: int) -> None:
        with httpx.Client(timeout=10) as http:
            i = 0
            while not stop.is_set():
                ref = f"K{n}-{i}-{uuid.uuid4().hex[:8]}"
                body = with_reference(template, ref)
                with lock:
                    sent[ref] = body
                try:
                    r = http.post(srv.soap_url, content=body, headers={"Content-Type": "text/xml"})
                except httpx.HTTPError:
                    return  # server died under us: this one is in flight, not acknowledged
                if r.status_code == 200 and Answer(200, r.content).payload.tag == f"{{{STUF}}}Bv03Bericht":
                    with lock:
                        acked[ref] = body
                i += 1

    threads = [threading.Thread(target=client, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 20
    while len(acked) < 150 and time.monotonic() < deadline:
        time.sleep(0.02)
    srv.kill9()
    stop.set()
    for t in threads:
        t.join(15)
    assert len(acked) >= 150, "the server acknowledged too few messages before the kill"
    unacked = set(sent) - set(acked)

    engine = create_engine(srv.db_url)
    with engine.connect() as conn:
        stored = {
            r.referentienummer: r
            for r in conn.execute(text("SELECT referentienummer, body, size, state, answer FROM messages"))
        }
    engine.dispose()
    for ref, body in acked.items():
        row = stored.get(ref)
        assert row is not None, f"acknowledged message {ref} was lost"
        assert row.state == "received" and bytes(row.body) == body and row.size == len(body)
        assert row.answer and "Bv03Bericht" in row.answer
    for row in stored.values():  # nothing half-written, acknowledged or not
        assert row.answer and bytes(row.body) == sent[row.referentienummer]

    # restart on the same database; the loket resends what it did not get an answer for
    srv.start()
    try:
        with httpx.Client(timeout=10) as http:
            for ref in unacked:
                r = http.post(srv.soap_url, content=sent[ref], headers={"Content-Type": "text/xml"})
                assert r.status_code == 200, r.content
    finally:
        srv.stop()
    engine = create_engine(srv.db_url)
    with engine.connect() as conn:
        n_rows = conn.execute(text("SELECT count(*) FROM messages")).scalar_one()
        n_refs = conn.execute(text("SELECT count(DISTINCT referentienummer) FROM messages")).scalar_one()
    engine.dispose()
    assert n_rows == n_refs == len(sent)  # every message once, none twice
    drop_database(srv.db_url)
