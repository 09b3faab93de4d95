"""The SOAP layer's survivors of mutation run 8 (docs/guarantees.md): what a StUF-LVO sender receives from
``/soap/stuf-lvo`` — the Bv03 alone in the Body, every fault a SOAP Fault with a ``StUF:Fo03Bericht`` and the
right code, the correlation id, the caller's OIN checked against the zender. The WSGI app is called in-process
(the HTTP tests drive it through ``serve``), so each mutant of ``adapter/inbound/soap.py`` is visible here."""

from __future__ import annotations

import dataclasses
import io
import re
import wsgiref.util
from collections.abc import Callable, Iterable
from typing import Any

import pytest
import structlog
from lxml import etree

from adapter.inbound import soap
from adapter.inbound.soap import CALLER_OIN, build_wsgi
from adapter.inbound.stuf_lvo import StufLvoChannel
from adapter.services import Services
from adapter.stuf.namespaces import STUF
from tests.logrecord import record_log
from tests.soap import NS, fixture, with_reference
from tests.test_mutation_kills_inbound import rows

LOKET_OIN = "00000001800866472000"
OTHER_OIN = "00000001234567890000"
LIMIT = 100_000


@dataclasses.dataclass
class Answer:
    status: str
    headers: dict[str, str]
    body: bytes

    @property
    def envelope(self) -> etree._Element:
        return etree.fromstring(self.body)

    @property
    def fault(self) -> etree._Element:
        (fault,) = self.envelope.findall("soap:Body/soap:Fault", NS)
        return fault

    def fo03(self, tag: str) -> str | None:
        return self.fault.findtext(f"detail/StUF:Fo03Bericht/{tag}", namespaces=NS)


def channel(sv: Services) -> StufLvoChannel:
    ch = StufLvoChannel(sv.settings, sv.writer, sv.schemas)
    ch.limits = dataclasses.replace(ch.limits, max_bytes=LIMIT)
    return ch


def call(
    app: Callable[..., Iterable[bytes]], body: bytes, headers: dict[str, str] | None = None, scope: Any = None
) -> Answer:
    """``POST`` ``body`` to the WSGI app as the ASGI bridge does (the verified caller in ``asgi.scope``)."""
    environ: dict[str, Any] = {}
    wsgiref.util.setup_testing_defaults(environ)
    environ |= {
        "REQUEST_METHOD": "POST",
        "CONTENT_TYPE": "text/xml; charset=utf-8",
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.input": io.BytesIO(body),
    }
    environ |= {"HTTP_" + k.upper().replace("-", "_"): v for k, v in (headers or {}).items()}
    if scope is not None:
        environ["asgi.scope"] = scope
    started: dict[str, Any] = {}

    def start_response(status: str, response_headers: list[tuple[str, str]], exc_info: Any = None) -> None:
        started.update(status=status, headers=dict(response_headers))

    out = b"".join(app(environ, start_response))
    return Answer(started["status"], started["headers"], out)


def aanvraag(ref: str) -> bytes:
    return with_reference(fixture("omvDi01AanbiedenAanvraag"), ref)


def test_an_aanvraag_gets_only_its_bv03_in_the_body_with_the_stuf_prefix(
    inbound: Services,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ch = channel(inbound)
    accept, context = ch.accept, []

    def accept_noting_the_log_context(incoming: Any) -> Any:
        context.append(structlog.contextvars.get_contextvars())
        return accept(incoming)

    monkeypatch.setattr(ch, "accept", accept_noting_the_log_context)
    answer = call(build_wsgi(ch), aanvraag("R-1"), {"X-Correlation-ID": "abc123"})
    assert context == [{"correlation_id": "abc123", "channel": "stuf-lvo"}]  # on every log line of the request
    assert (answer.status, answer.headers["X-Correlation-ID"]) == ("200 OK", "abc123")
    envelope = answer.envelope
    assert envelope.nsmap["StUF"] == STUF and b"ns0:" not in answer.body  # StUF declared once, as "StUF"
    (bv03,) = envelope.find("soap:Body", NS)
    assert bv03.tag == f"{{{STUF}}}Bv03Bericht"
    assert [el.tag.split("}")[1] for el in bv03] == ["stuurgegevens"]
    assert bv03.findtext("StUF:stuurgegevens/StUF:crossRefnummer", namespaces=NS) == "R-1"
    assert bv03.findtext("StUF:stuurgegevens/StUF:ontvanger/StUF:organisatie", namespaces=NS) == LOKET_OIN
    (row,) = rows(inbound)
    assert row.correlation_id == "abc123"


@pytest.mark.parametrize(
    ("given", "echoed"), [("abc123", True), ("A" * 32, True), ("A" * 33, False), ("abc-123", False), ("", False)]
)
def test_a_correlation_id_is_taken_when_it_is_short_and_alphanumeric(
    given: str,
    echoed: bool,
    inbound: Services,
) -> None:
    answer = call(build_wsgi(channel(inbound)), b"<x/>", {"X-Correlation-ID": given} if given else {})
    cid = answer.headers["X-Correlation-ID"]
    assert cid == given if echoed else re.fullmatch(r"[0-9a-f]{32}", cid)
    (row,) = rows(inbound)  # the rejection is logged under the same id
    assert row.correlation_id == cid


def test_a_rejected_message_is_a_client_fault_with_its_fo03_and_no_faultactor(inbound: Services) -> None:
    answer = call(build_wsgi(channel(inbound)), b"<x/>")
    assert answer.status == "500 Internal Server Error"
    fault = answer.fault
    assert [el.tag for el in fault] == ["faultcode", "faultstring", "detail"]
    assert fault.findtext("faultcode") == "soap11env:Client"
    omschrijving = "Bericht afgewezen: root element is x, expected a SOAP 1.1 Envelope"
    assert fault.findtext("faultstring") == omschrijving
    assert answer.fo03("StUF:body/StUF:code") == "StUF055"
    assert answer.fo03("StUF:body/StUF:omschrijving") == omschrijving


@pytest.mark.parametrize(("caller", "code"), [(LOKET_OIN, None), (OTHER_OIN, "StUF013")])
def test_the_zender_must_be_the_oin_of_the_callers_certificate(
    caller: str,
    code: str | None,
    inbound: Services,
) -> None:
    answer = call(build_wsgi(channel(inbound)), aanvraag(f"R-{caller[-6:]}"), scope={CALLER_OIN: caller})
    if code is None:
        assert answer.status == "200 OK", answer.body
    else:
        assert answer.fo03("StUF:body/StUF:code") == code
        assert f"niet het OIN van het certificaat ({caller})" in (answer.fo03("StUF:body/StUF:omschrijving") or "")


def test_a_request_over_the_limit_is_refused_by_spyne_as_stuf055_naming_the_limit(
    inbound: Services,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    logs = record_log(monkeypatch, soap)
    answer = call(build_wsgi(channel(inbound)), b"a" * (LIMIT + 10))
    text = f"Bericht afgewezen: groter dan de limiet van {LIMIT} bytes"
    assert answer.fault.findtext("faultcode") == "soap11env:Client"
    assert answer.fault.findtext("faultstring") == text
    assert answer.fo03("StUF:body/StUF:code") == "StUF055"
    assert answer.fo03("StUF:body/StUF:omschrijving") == text
    assert answer.fo03("StUF:body/StUF:details") == "Client.RequestTooLong"
    assert answer.fo03("StUF:stuurgegevens/StUF:zender/StUF:applicatie") == "ZAAKSYSTEEM"  # our own system
    rejected = [e for e in logs if e["event"] == "message rejected"]
    assert [(e["level"], e["code"], e["omschrijving"]) for e in rejected] == [("warning", "StUF055", text)]


def test_an_internal_error_after_parsing_is_a_server_fault_stuf058_answering_the_sender(
    inbound: Services,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ch = channel(inbound)

    def broken(_incoming: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(ch, "accept", broken)
    answer = call(build_wsgi(ch), aanvraag("R-2"))
    assert answer.fault.findtext("faultcode") == "soap11env:Server"
    assert answer.fo03("StUF:body/StUF:code") == "StUF058"
    assert answer.fo03("StUF:body/StUF:plek") == "server"
    # the stuurgegevens of the request it could read: the Fo03 goes back to the loket, crossRef its reference
    assert answer.fo03("StUF:stuurgegevens/StUF:ontvanger/StUF:organisatie") == LOKET_OIN
    assert answer.fo03("StUF:stuurgegevens/StUF:crossRefnummer") == "R-2"


def padded(body: bytes, size: int) -> bytes:
    """``body`` grown to ``size`` bytes by an XML comment after its declaration."""
    declaration, _, rest = body.partition(b"?>")
    filler = size - len(body) - len(b"<!---->")
    return declaration + b"?><!--" + b"x" * filler + b"-->" + rest


@pytest.mark.parametrize(
    ("extra", "details"),
    [
        (0, None),  # exactly the limit: accepted (read in several chunks, joined as they came)
        (1, f"body of {LIMIT + 1} bytes exceeds the limit of {LIMIT} bytes"),  # our own check, its clearer words
        (2, "Client.RequestTooLong"),  # beyond: spyne stops reading
    ],
)
def test_the_size_limit_is_the_channels_and_spyne_only_stops_what_lies_beyond_it(
    extra: int,
    details: str | None,
    inbound: Services,
) -> None:
    body = padded(aanvraag(f"R-{extra}"), LIMIT + extra)
    assert len(body) == LIMIT + extra
    answer = call(build_wsgi(channel(inbound)), body)
    if details is None:
        assert answer.status == "200 OK", answer.body
    else:
        assert answer.fo03("StUF:body/StUF:code") == "StUF055"
        assert answer.fo03("StUF:body/StUF:details") == details


def test_a_reference_used_before_for_another_message_is_stuf016(inbound: Services) -> None:
    app = build_wsgi(channel(inbound))
    assert call(app, aanvraag("R-16")).status == "200 OK"
    answer = call(app, with_reference(fixture("vrgDi01IntrekkenAanvraag"), "R-16"))
    assert answer.fault.findtext("faultcode") == "soap11env:Client"
    assert answer.fo03("StUF:body/StUF:code") == "StUF016"


def test_a_store_that_cannot_commit_is_a_server_fault_stuf046(
    inbound: Services,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from adapter.errors import StoreUnavailable
    from adapter.store import messages as message_store

    def down(*_a: object, **_k: object) -> None:
        raise StoreUnavailable("database is locked")

    monkeypatch.setattr(message_store, "accept", down)
    monkeypatch.setattr(message_store, "reject", lambda *a, **k: None)
    answer = call(build_wsgi(channel(inbound)), aanvraag("R-046"))
    assert answer.fault.findtext("faultcode") == "soap11env:Server"
    assert (answer.fo03("StUF:body/StUF:code"), answer.fo03("StUF:body/StUF:plek")) == ("StUF046", "server")
