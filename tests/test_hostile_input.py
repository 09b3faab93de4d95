"""Hostile and oversized input gets a StUF055 fault; the server stays up and accepts the next message."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Server, drop_database, make_server
from tests.soap import STUF, fixture, post, with_reference

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body>
<x>&lol9;</x></soapenv:Body></soapenv:Envelope>"""


def xxe(target: str) -> bytes:
    return (
        f'<?xml version="1.0"?><!DOCTYPE e [<!ENTITY xxe SYSTEM "{target}">]>'
        '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body>'
        "<x>&xxe;</x></soapenv:Body></soapenv:Envelope>"
    ).encode()


def deep(levels: int) -> bytes:
    return (
        b'<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body>'
        + b"<a>" * levels
        + b"</a>" * levels
        + b"</soapenv:Body></soapenv:Envelope>"
    )


@pytest.fixture(scope="module")
def small_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = make_server(tmp_path_factory.mktemp("hostile"), max_body_bytes=200_000, max_depth=32)
    srv.start()
    yield srv
    srv.stop()
    drop_database(srv.db_url)


HOSTILE = {
    "billion_laughs": BILLION_LAUGHS,
    "xxe_file": xxe("file:///etc/passwd"),
    "xxe_network": xxe("http://127.0.0.1:9/evil.dtd"),
    "external_dtd": b'<?xml version="1.0"?><!DOCTYPE x SYSTEM "http://127.0.0.1:9/x.dtd"><x/>',
    "depth_bomb_libxml": deep(5000),
    "depth_over_limit": deep(40),
    "empty": b"",
    "not_soap": b"<aanvraag/>",
    "soap12": b'<e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope"><e:Body><x/></e:Body></e:Envelope>',
    "two_body_children": b'<e:Envelope xmlns:e="http://schemas.xmlsoap.org/soap/envelope/"><e:Body><a/><b/>'
    b"</e:Body></e:Envelope>",
    "binary_garbage": bytes(range(256)) * 10,
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_hostile_payload_gets_stuf055_and_next_message_is_accepted(small_server: Server, name: str) -> None:
    answer = post(small_server.soap_url, HOSTILE[name])
    assert answer.status == 500
    assert answer.code == "StUF055", answer.body[:500]
    assert answer.faultcode.endswith(":Client")
    assert b"root:" not in answer.body  # /etc/passwd never echoed
    ok = post(small_server.soap_url, with_reference(fixture("vrgDi01IntrekkenAanvraag"), uuid.uuid4().hex[:30]))
    assert ok.status == 200 and ok.payload.tag == f"{{{STUF}}}Bv03Bericht"
    assert small_server.proc is not None and small_server.proc.poll() is None


def test_dtd_rejection_says_why(small_server: Server) -> None:
    answer = post(small_server.soap_url, BILLION_LAUGHS)
    assert "DOCTYPE" in answer.fo03.findtext(f"{{{STUF}}}body/{{{STUF}}}omschrijving")


def test_body_over_the_limit_is_refused_with_the_limit_named(small_server: Server) -> None:
    big = fixture("omvDi01AanbiedenAanvraag").replace(b"</LVO:toelichting>", b"x" * 250_000 + b"</LVO:toelichting>")
    answer = post(small_server.soap_url, big)
    assert answer.code == "StUF055" and answer.faultcode.endswith(":Client")  # refused by spyne, before our parse
    assert "200000" in answer.fo03.findtext(f"{{{STUF}}}body/{{{STUF}}}omschrijving")


def test_chunked_body_over_the_limit_is_refused(small_server: Server) -> None:
    import httpx

    def chunks() -> Iterator[bytes]:
        yield b'<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body><x>'
        for _ in range(40):
            yield b"y" * 10_000
        yield b"</x></soapenv:Body></soapenv:Envelope>"

    r = httpx.post(small_server.soap_url, content=chunks(), headers={"Content-Type": "text/xml"})
    assert r.status_code == 500 and b"StUF055" in r.content
    assert b"200000" in r.content  # refused for its size, not cut short and refused as broken XML


def test_hostile_input_logged_without_traceback(small_server: Server, tmp_path: Path) -> None:
    post(small_server.soap_url, xxe("file:///etc/passwd"))
    log = small_server.log_text()
    assert "Traceback" not in log
    assert "root:x:" not in log
