"""Slow clients and element bombs (issue 8, item 3) against a real ``serve`` over HTTP.

Bodies are read on the event loop before a request thread is taken, with a deadline and a bound on requests
per endpoint; the parser counts elements, so bytes that would make a huge tree are refused early.
"""

from __future__ import annotations

import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import cast

import httpx
import pytest

from adapter.delivery.sources import Sources
from adapter.errors import InputError
from adapter.store.messages import StoredMessage
from adapter.targets.base import Steps
from adapter.xmlsafe import Limits, XmlRejected, parse
from tests.conftest import Server, drop_database, make_server
from tests.soap import STUF, Answer, fixture, post, with_reference

SOAP = b'<e:Envelope xmlns:e="http://schemas.xmlsoap.org/soap/envelope/"><e:Body>'
SOAP_END = b"</e:Body></e:Envelope>"


def with_server_settings(server: Server, **values: object) -> Server:
    text = server.config.read_text(encoding="utf-8")
    lines = "".join(f"{k} = {v}\n" for k, v in values.items())
    server.config.write_text(text.replace("request_threads = 8\n", "request_threads = 4\n" + lines), encoding="utf-8")
    return server


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = with_server_settings(
        make_server(tmp_path_factory.mktemp("intake")), body_timeout=3, max_concurrent_requests=60
    )
    srv.start()
    yield srv
    srv.stop()
    drop_database(srv.db_url)


def slow_client(server: Server, path: str = "/soap/stuf-lvo", declared: int = 100_000) -> socket.socket:
    """A client that sends its headers and then one byte of its body, and nothing more."""
    s = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    s.sendall(
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/xml\r\n"
        f"Content-Length: {declared}\r\n\r\n<".encode()
    )
    return s


def answer_of(s: socket.socket) -> bytes:
    chunks = []
    while chunk := s.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def acknowledged(answer: Answer) -> bool:
    return answer.status == 200 and b"Bv03Bericht" in answer.body


def aanvraag() -> bytes:
    return with_reference(fixture("omvDi01AanbiedenAanvraag"), f"L-{uuid.uuid4().hex[:20]}")


def test_fifty_slow_clients_do_not_stop_a_normal_message(guarded: Server) -> None:
    # request_threads = 4: before the fix four slow bodies already held every SOAP thread.
    slow = [slow_client(guarded) for _ in range(50)]
    try:
        time.sleep(0.5)  # all fifty are in, each with its body begun
        started = time.monotonic()
        answer = post(guarded.soap_url, aanvraag())
        took = time.monotonic() - started
        assert acknowledged(answer), answer.body[:500]
        assert took < 1.0, f"acknowledged after {took:.2f} s"
    finally:
        for s in slow:
            s.close()


def test_a_body_not_complete_within_body_timeout_gets_408_and_the_connection_closes(guarded: Server) -> None:
    s = slow_client(guarded)
    try:
        started = time.monotonic()
        got = answer_of(s)  # the server answers and closes; recv returns b"" at the close
        took = time.monotonic() - started
    finally:
        s.close()
    assert got.startswith(b"HTTP/1.1 408"), got[:200]
    assert b"not received within 3 s" in got
    assert 2.5 < took < 8, took
    log = guarded.log_text()
    assert log.count("body too slow") >= 1


def test_one_request_over_the_endpoint_limit_gets_503_with_retry_after_at_once(tmp_path: Path) -> None:
    srv = with_server_settings(make_server(tmp_path), body_timeout=20, max_concurrent_requests=3)
    srv.start()
    slow = []
    try:
        slow = [slow_client(srv) for _ in range(3)]
        time.sleep(0.3)
        started = time.monotonic()
        busy = httpx.post(srv.soap_url, content=aanvraag(), headers={"Content-Type": "text/xml"}, timeout=10)
        assert time.monotonic() - started < 1.0
        assert busy.status_code == 503 and busy.headers["retry-after"] == "5", busy.text
        # the limit is per endpoint: STAM still takes notifications (its own 400 for an empty one proves it ran)
        other = httpx.post(f"{srv.url}/stam/verzoeknotificatie", content=b"<x/>", timeout=10)
        assert other.status_code == 400
        for s in slow:
            s.close()
        slow = []
        time.sleep(0.3)  # the server notices the disconnects and frees the slots
        assert acknowledged(post(srv.soap_url, aanvraag()))
    finally:
        for s in slow:
            s.close()
        srv.stop()
        drop_database(srv.db_url)


def rss_high_water_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def test_a_40_mib_element_bomb_is_refused_with_bounded_memory(guarded: Server) -> None:
    assert guarded.proc is not None
    assert acknowledged(post(guarded.soap_url, aanvraag()))  # warm: imports, schemas, first parse
    before = rss_high_water_kib(guarded.proc.pid)
    bomb = SOAP + b"<a>" + b"<b/>" * (10 * 1024 * 1024) + b"</a>" + SOAP_END  # 40 MiB, ten million elements
    answer = post(guarded.soap_url, bomb)
    grown_mb = (rss_high_water_kib(guarded.proc.pid) - before) / 1024
    assert answer.code == "StUF055"
    assert "more than 200000 elements" in (answer.fo03.findtext(f"{{{STUF}}}body/{{{STUF}}}omschrijving") or "")
    assert grown_mb < 300, f"peak RSS grew {grown_mb:.0f} MB"
    assert acknowledged(post(guarded.soap_url, aanvraag()))


def test_the_element_limit_counts_exactly_and_parses_what_is_within_it() -> None:
    many = b"<r>" + b"<a>x</a>" * 1999 + b"</r>"  # 2000 elements, 4000 "<": the counting path
    assert len(parse(many, Limits(max_elements=2000))) == 1999
    with pytest.raises(XmlRejected, match="more than 1999 elements"):
        parse(many, Limits(max_elements=1999))
    few = b"<r>" + b"<a/>" * 999 + b"</r>"  # 1000 "<": the direct path
    assert len(parse(few, Limits(max_elements=1000))) == 999
    with pytest.raises(XmlRejected, match="line 1: not well-formed"):  # the counting path still says where
        parse(b"<r>" + b"<a/>" * 3000 + b"<b></r>", Limits(max_elements=5000))


def test_delivery_parses_a_stored_message_under_the_same_limits() -> None:
    # A stored body is parsed again for delivery: with the intake's limits, not unbounded ones.
    body = SOAP + b"<x>" + b"<a/>" * 5000 + b"</x>" + SOAP_END
    stored = cast(StoredMessage, SimpleNamespace(channel="stuf-lvo", body=body, ontvanger=None))
    with pytest.raises(InputError, match="more than 1000 elements"):
        Sources(None, frozenset(), Limits(max_elements=1000)).verzoek_for(stored, cast(Steps, None))
