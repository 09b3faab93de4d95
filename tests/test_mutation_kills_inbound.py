"""Tests written to kill the mutants that survived a mutation run over the inbound channels, the werkmap
poll, ``mappings check`` and the delivery worker outside ``Outbox._run`` (``docs/guarantees.md``).

In-process and fast: the channels are called as the web app calls them, the poll against the fake werkmap
on a loopback port. Each test states what a sender, an operator or the zaaksysteem can observe.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lxml import etree
from sqlalchemy import select
from structlog.testing import capture_logs

from adapter.config import load_settings
from adapter.delivery import worker as worker_module
from adapter.errors import StoreUnavailable
from adapter.inbound.stam import StamChannel
from adapter.inbound.stuf_lvo import Rejected, StufLvoChannel
from adapter.services import Services, open_services
from adapter.store import messages as message_store
from adapter.store.db import upgrade
from adapter.store.tables import deliveries, messages, metadata
from tests.conftest import FIXTURES, NO_DELIVERY, drop_database, new_database_url, write_config
from tests.logrecord import record_log
from tests.soap import NS, STUF, fixture, with_reference

SENDER = "00000001800866472000/OLO"
US = "00000001002564440000/ZAAKSYSTEEM"


def open_inbound(tmp_path: Path, extra_toml: str = NO_DELIVERY, **inbound: Any) -> Services:
    url = new_database_url(tmp_path)
    sv = open_services(
        load_settings(write_config(tmp_path / "config.toml", url, 8999, extra_toml, **inbound)), with_outbox=False
    )
    upgrade(sv.engine)
    return sv


@pytest.fixture(scope="module")
def shared_inbound(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    sv = open_inbound(tmp_path_factory.mktemp("inbound"))
    yield sv
    url = sv.engine.url.render_as_string(hide_password=False)
    sv.close()
    drop_database(url)


@pytest.fixture
def inbound(shared_inbound: Services) -> Services:
    """The conftest ``inbound`` services (store, schemas, writer), shared by this module's tests and emptied
    before each: a fresh database per test costs more than the tests."""
    with shared_inbound.engine.begin() as conn:
        for table in reversed(metadata.sorted_tables):
            conn.execute(table.delete())
    return shared_inbound


@pytest.fixture
def inbound_with(tmp_path: Path) -> Iterator[Any]:
    """A factory of in-process inbound services with the ``[inbound]`` settings a test needs."""
    opened: list[Services] = []

    def open_(**inbound: object) -> Services:
        sv = open_inbound(tmp_path / str(len(opened)), NO_DELIVERY, **inbound)
        opened.append(sv)
        return sv

    (tmp_path / "0").mkdir()
    (tmp_path / "1").mkdir()
    yield open_
    for sv in opened:
        url = str(sv.engine.url.render_as_string(hide_password=False))
        sv.close()
        drop_database(url)


def rows(sv: Services) -> list[Any]:
    with sv.engine.connect() as conn:
        return list(conn.execute(select(messages).order_by(messages.c.id)))


def n_deliveries(sv: Services) -> int:
    with sv.engine.connect() as conn:
        return len(conn.execute(select(deliveries.c.id)).all())


# -- StUF-LVO: the fault codes, as the sender sees them and as they are logged ------------------------------


def lvo(sv: Services) -> StufLvoChannel:
    return StufLvoChannel(sv.settings, sv.writer, sv.schemas)


def send(sv: Services, raw: bytes) -> etree._Element:
    """The Bv03 for ``raw``, through the channel as the SOAP endpoint drives it."""
    channel = lvo(sv)
    return channel.accept(channel.receive(raw, "c" * 32))


def refused(sv: Services, raw: bytes) -> Rejected:
    with pytest.raises(Rejected) as info:
        send(sv, raw)
    return info.value


def fo03_body(rej: Rejected) -> dict[str, str]:
    """code, plek, omschrijving, details of the Fo03 ("" when absent)."""
    return {
        tag: rej.answer.findtext(f"StUF:body/StUF:{tag}", namespaces=NS) or ""
        for tag in ("code", "plek", "omschrijving", "details")
    }


def c14n(el: etree._Element) -> bytes:
    return etree.tostring(el, method="c14n")


def sg_text(el: etree._Element, path: str) -> str | None:
    return el.findtext(f"StUF:stuurgegevens/{path}", namespaces=NS)


INTREKKEN = "vrgDi01IntrekkenAanvraag"


def intrekken(ref: str = "R-1") -> bytes:
    return with_reference(fixture(INTREKKEN), ref)


FAULTS = [
    # (id, change to the IntrekkenAanvraag, code, plek, words in the omschrijving)
    ("not-xml", lambda b: b"<not-xml", "StUF055", "client", ["Bericht afgewezen"]),
    ("malformed", lambda b: b.replace(b"</LVO:reden>", b"</LVO:rede>"), "StUF055", "client", ["mismatch"]),
    (
        "not-an-envelope",
        lambda b: b'<x:Envelope xmlns:x="urn:not-soap"><x:Body/></x:Envelope>',
        "StUF055",
        "client",
        ["root element", "SOAP 1.1 Envelope"],
    ),
    (
        "no-body",
        lambda b: b'<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Header/></s:Envelope>',
        "StUF055",
        "client",
        ["no Body"],
    ),
    (
        "empty-body",
        lambda b: b'<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body> </s:Body></s:Envelope>',
        "StUF055",
        "client",
        ["exactly one element, found 0"],
    ),
    (
        "two-in-body",
        lambda b: (
            b'<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><a/><!-- c --><b/>'
            b"</s:Body></s:Envelope>"
        ),
        "StUF055",
        "client",
        ["exactly one element, found 2"],
    ),
    (
        "unknown-message",
        lambda b: b.replace(INTREKKEN.encode(), b"vrgDi01OnbekendBericht"),
        "StUF025",
        "server",
        ["vrgDi01OnbekendBericht", "niet ondersteund", "ondersteund: omvDi01AanbiedenAanvraag"],
    ),
    (
        "other-namespace",
        lambda b: b.replace(b"http://www.egem.nl/StUF/sector/lvo/0312", b"urn:ander"),
        "StUF025",
        "server",
        [INTREKKEN],
    ),
    (
        "unknown-ontvanger",
        lambda b: b.replace(
            b"<StUF:applicatie>ZAAKSYSTEEM</StUF:applicatie>", b"<StUF:applicatie>ANDER</StUF:applicatie>"
        ),
        "StUF010",
        "client",
        ["Ontvanger", "ANDER", "niet bekend"],
    ),
    (
        "unknown-zender",
        lambda b: b.replace(b"<StUF:applicatie>OLO</StUF:applicatie>", b"<StUF:applicatie>NIETOLO</StUF:applicatie>"),
        "StUF013",
        "client",
        ["Zender", "NIETOLO", "niet bekend"],
    ),
    (
        "wrong-berichtcode",
        lambda b: b.replace(b"<StUF:berichtcode>Di01</StUF:berichtcode>", b"<StUF:berichtcode>Lk01</StUF:berichtcode>"),
        "StUF022",
        "client",
        ["Berichtcode Lk01", INTREKKEN, "verwacht Di01"],
    ),
    (
        "no-referentienummer",
        lambda b: b.replace(b"<StUF:referentienummer>R-1</StUF:referentienummer>", b""),
        "StUF055",
        "client",
        ["stuurgegevens zonder referentienummer"],
    ),
    (
        "no-berichtcode",
        lambda b: b.replace(b"<StUF:berichtcode>Di01</StUF:berichtcode>", b""),
        "StUF055",
        "client",
        ["stuurgegevens zonder berichtcode"],
    ),
]


@pytest.mark.parametrize(("change", "code", "plek", "words"), [f[1:] for f in FAULTS], ids=[f[0] for f in FAULTS])
def test_each_stuf_lvo_fault_has_its_code_and_is_logged_once_as_rejected(
    inbound: Services, change: Any, code: str, plek: str, words: list[str]
) -> None:
    """README: StUF055 (malformed, not SOAP, incomplete stuurgegevens), StUF010/013 (ontvanger/zender), StUF022
    (berichtcode), StUF025 (message); the Fo03 is addressed back to the sender and the message is kept in the
    log as ``rejected``, never under a duplicate key."""
    raw = change(intrekken())
    rej = refused(inbound, raw)
    body = fo03_body(rej)
    assert (rej.fout.fout.code, body["code"], body["plek"]) == (code, code, plek)
    for word in words:
        assert word in (body["omschrijving"] or "") + (body["details"] or ""), body
    assert rej.answer.tag == f"{{{STUF}}}Fo03Bericht" and sg_text(rej.answer, "StUF:berichtcode") == "Fo03"
    us = "ANDER" if code == "StUF010" else "ZAAKSYSTEEM"  # from the system addressed, else our first ontvanger
    assert sg_text(rej.answer, "StUF:zender/StUF:applicatie") == us
    (row,) = rows(inbound)
    assert (row.state, row.error_code, row.channel) == ("rejected", code, "stuf-lvo")
    assert bytes(row.body) == raw and row.dedup_key is None and row.correlation_id == "c" * 32
    assert c14n(etree.fromstring(row.answer.encode())) == c14n(rej.answer)  # the Fo03 that was sent
    assert code in row.error_text
    assert n_deliveries(inbound) == 0
    if code in ("StUF010", "StUF013", "StUF022", "StUF025") or "referentienummer" in body["omschrijving"]:
        # readable: filed with its stuurgegevens, and the fault refers to the request
        assert row.message_type == (INTREKKEN if code != "StUF025" else row.message_type)
        assert row.berichtcode in ("Di01", "Lk01", None)
        assert sg_text(rej.answer, "StUF:ontvanger/StUF:applicatie") == ("NIETOLO" if code == "StUF013" else "OLO")
        assert sg_text(rej.answer, "StUF:crossRefnummer") == (row.referentienummer or "onbekend")
    if code == "StUF055" and body["plek"] == "client" and "stuurgegevens" not in (body["omschrijving"] or ""):
        assert row.message_type == "(unreadable)" and row.sha256 == hashlib.sha256(raw).hexdigest()
        assert (row.zender, row.ontvanger, row.referentienummer, row.nummer) == (None, None, None, None)


SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
NOT_SOAP = [
    ('<?xml version="1.0"?>\n<x:Envelope xmlns:x="urn:x"/>', "line 2: root element is {urn:x}Envelope, expected"),
    (f'<s:Envelope xmlns:s="{SOAP_ENV}">\n<s:Header/>\n</s:Envelope>', "line 1: SOAP Envelope has no Body"),
    (
        f'<s:Envelope xmlns:s="{SOAP_ENV}">\n<s:Body>\n</s:Body></s:Envelope>',
        "line 2: SOAP Body must hold exactly one element, found 0",
    ),
]


@pytest.mark.parametrize(("raw", "details"), NOT_SOAP, ids=["root", "no-body", "empty-body"])
def test_a_request_that_is_not_one_soap_message_is_stuf055_naming_line_and_reason(
    inbound: Services, raw: str, details: str
) -> None:
    rej = refused(inbound, raw.encode())
    body = fo03_body(rej)
    assert body["code"] == "StUF055" and str(rej) == str(rej.fout) and "StUF055" in str(rej)
    assert (body["details"] or "").startswith(details), body
    assert (body["omschrijving"] or "").startswith("Bericht afgewezen: " + details.split(": ", 1)[1])


def test_the_configured_depth_limit_applies_to_stuf_lvo(inbound_with: Any) -> None:
    sv = inbound_with(max_depth=8)
    deep = "<a>" * 10 + "</a>" * 10
    raw = intrekken().replace(b"<LVO:reden>", f"<LVO:reden>{deep}".encode(), 1)
    rej = refused(sv, raw)
    assert rej.fout.fout.code == "StUF055" and "deeper than 8 levels" in (fo03_body(rej)["details"] or "")


def test_a_fault_refers_to_the_request_and_files_its_stuurgegevens(inbound: Services) -> None:
    raw = intrekken("R-ZENDER").replace(
        b"<StUF:applicatie>OLO</StUF:applicatie>", b"<StUF:applicatie>NIETOLO</StUF:applicatie>"
    )
    rej = refused(inbound, raw)
    assert sg_text(rej.answer, "StUF:crossRefnummer") == "R-ZENDER"
    assert sg_text(rej.answer, "StUF:ontvanger/StUF:applicatie") == "NIETOLO"
    (row,) = rows(inbound)
    assert row.referentienummer == "R-ZENDER" and row.message_type == INTREKKEN and row.berichtcode == "Di01"
    assert row.zender.endswith("/NIETOLO") or "NIETOLO" in row.zender
    assert row.ontvanger.startswith(US) and row.tijdstip_bericht
    assert row.dedup_key is None and row.nummer
    assert row.sha256 != hashlib.sha256(raw).hexdigest()  # the C14N of the message element


def test_schema_invalid_is_stuf055_naming_the_schema_line_and_element(inbound: Services) -> None:
    raw = with_reference(fixture("omvDi01AanbiedenAanvraag"), "R-XSD").replace(
        b"<LVO:postcode>1234AB</LVO:postcode>", b"<LVO:postcode>12345</LVO:postcode>", 1
    )
    rej = refused(inbound, raw)
    body = fo03_body(rej)
    line = raw[: raw.index(b"<LVO:postcode>12345")].count(b"\n") + 1
    assert body["code"] == "StUF055" and body["omschrijving"].startswith("Bericht niet conform xsd/")
    assert f"regel {line}: " in body["omschrijving"] and "postcode" in body["omschrijving"]
    assert len(body["omschrijving"]) <= 200 and "postcode" in body["details"]
    assert [(r.state, r.error_code, r.referentienummer) for r in rows(inbound)] == [("rejected", "StUF055", "R-XSD")]
    assert rows(inbound)[0].message_type == "omvDi01AanbiedenAanvraag" and rows(inbound)[0].nummer  # filed readable
    # a corrected resend under the same reference is a first delivery, not StUF016
    send(inbound, with_reference(fixture("omvDi01AanbiedenAanvraag"), "R-XSD"))
    assert [r.state for r in rows(inbound)] == ["rejected", "received"]


def test_a_content_rule_is_stuf055_like_a_schema_error(inbound: Services) -> None:
    xml = with_reference(fixture("omvDi01AanbiedenAanvraag"), "R-LOC")
    start, end = xml.index(b"<LVO:locatie>"), xml.index(b"</LVO:locatie>")
    rej = refused(inbound, xml[:start] + b"<LVO:locatie>" + xml[end:])
    assert rej.fout.fout.code == "StUF055" and "locatie" in fo03_body(rej)["omschrijving"]
    assert [r.state for r in rows(inbound)] == ["rejected"] and n_deliveries(inbound) == 0


def test_identical_resend_gets_the_same_bv03_and_is_stored_once(inbound: Services) -> None:
    raw = with_reference(fixture("omvDi01AanbiedenAanvraag"), "R-DUP")
    first = send(inbound, raw)
    reprefixed = raw.replace(b"soapenv:", b"S:").replace(b"xmlns:soapenv", b"xmlns:S")
    again = send(inbound, reprefixed)  # another envelope around the same message: still the same message
    assert etree.tostring(first, method="c14n") == etree.tostring(again, method="c14n")
    assert first.tag == f"{{{STUF}}}Bv03Bericht" and sg_text(first, "StUF:crossRefnummer") == "R-DUP"
    (row,) = rows(inbound)
    assert row.state == "received" and row.dedup_key == f"stuf-lvo|{row.zender}|R-DUP"
    assert row.zender.startswith(SENDER) and n_deliveries(inbound) == 1


def test_the_same_reference_for_another_message_is_stuf016_and_the_first_stands(inbound: Services) -> None:
    raw = with_reference(fixture("omvDi01AanbiedenAanvraag"), "R-016")
    send(inbound, raw)
    rej = refused(inbound, raw.replace(b"Plaatsen van een dakkapel", b"Plaatsen van twee dakkapellen"))
    body = fo03_body(rej)
    first = rows(inbound)[0]
    assert body["code"] == "StUF016" and body["plek"] == "client"
    assert "R-016" in body["omschrijving"] and SENDER in body["omschrijving"]
    assert body["details"] == f"eerder opgeslagen als bericht {first.id}"
    assert sg_text(rej.answer, "StUF:crossRefnummer") == "R-016"
    assert [(r.state, r.error_code) for r in rows(inbound)] == [("received", None), ("rejected", "StUF016")]
    assert n_deliveries(inbound) == 1


def test_a_store_that_cannot_commit_is_stuf046_and_nothing_is_stored(
    inbound: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    def down(*_a: object, **_k: object) -> None:
        raise StoreUnavailable("database is locked")

    monkeypatch.setattr(message_store, "accept", down)
    rejected_calls: list[object] = []
    monkeypatch.setattr(message_store, "reject", lambda *a, **k: rejected_calls.append(a))
    rej = refused(inbound, with_reference(fixture("omvDi01AanbiedenAanvraag"), "R-046"))
    body = fo03_body(rej)
    assert (body["code"], body["plek"]) == ("StUF046", "server")
    assert body["omschrijving"] == "Het bericht kon niet worden opgeslagen" and "locked" in body["details"]
    assert rejected_calls == [] and rows(inbound) == []  # not even logged: the store is down


def test_a_rejection_the_store_cannot_log_is_still_answered(inbound: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    def down(*_a: object, **_k: object) -> None:
        raise StoreUnavailable("database is locked")

    monkeypatch.setattr(message_store, "reject", down)
    assert refused(inbound, b"<not-xml").fout.fout.code == "StUF055"


def test_with_log_rejected_off_a_fault_stores_nothing(inbound_with: Any) -> None:
    sv = inbound_with(log_rejected=False)
    assert refused(sv, b"<not-xml").fout.fout.code == "StUF055"
    assert refused(sv, intrekken().replace(INTREKKEN.encode(), b"vrgDi01X")).fout.fout.code == "StUF025"
    assert rows(sv) == []


def test_an_accepted_message_is_stored_with_its_hash_type_and_whether_it_creates_a_zaak(inbound: Services) -> None:
    raw = with_reference(fixture("omvDi01AanbiedenAanvraag"), "R-NEW")
    answer = send(inbound, raw)
    (row,) = rows(inbound)
    env = etree.fromstring(raw)
    message = env.find("{http://schemas.xmlsoap.org/soap/envelope/}Body")[0]
    assert row.sha256 == hashlib.sha256(etree.tostring(message, method="c14n", exclusive=True)).hexdigest()
    assert (row.message_type, row.channel, row.state) == ("omvDi01AanbiedenAanvraag", "stuf-lvo", "received")
    assert row.correlation_id == "c" * 32 and row.warnings in (None, "", "[]")
    with inbound.engine.connect() as conn:
        (creates_zaak,) = conn.execute(select(deliveries.c.creates_zaak)).one()
    assert creates_zaak is True
    assert etree.tostring(etree.fromstring(row.answer.encode()), method="c14n") == etree.tostring(answer, method="c14n")
    assert sg_text(answer, "StUF:zender/StUF:organisatie") == "00000001002564440000"
    assert sg_text(answer, "StUF:zender/StUF:applicatie") == "ZAAKSYSTEEM"


def test_lenient_schema_stores_errors_as_warnings_but_still_needs_the_aanvraagnummer(inbound_with: Any) -> None:
    sv = inbound_with(lvo_schema="lenient")
    bad = with_reference(fixture("omvDi01AanbiedenAanvraag"), "R-LEN").replace(
        b"<LVO:postcode>1234AB</LVO:postcode>", b"<LVO:postcode>12345</LVO:postcode>", 1
    )
    send(sv, bad)
    (row,) = rows(sv)
    assert row.state == "received" and "postcode" in row.warnings and "12345" not in row.warnings
    start = bad.index(b"<LVO:aanvraagnummer>")
    end = bad.index(b"</LVO:aanvraagnummer>") + len(b"</LVO:aanvraagnummer>")
    rej = refused(sv, with_reference(bad[:start] + bad[end:], "R-LEN2"))
    body = fo03_body(rej)
    assert body["code"] == "StUF055" and body["omschrijving"].endswith(": aanvraagnummer ontbreekt")
    assert body["omschrijving"].startswith("Bericht niet conform xsd/")


# -- STAM: 202 after the commit, 400 problem+json, 503, one row per verzoek version ------------------------


NOTIFICATIE = FIXTURES / "stam" / "verzoeknotificatie-initieren.xml"


def stam(sv: Services) -> StamChannel:
    return StamChannel(sv.settings, sv.writer, sv.schemas)


def test_a_notification_is_answered_202_only_with_its_stored_row(inbound: Services) -> None:
    raw = NOTIFICATIE.read_bytes()
    answer = stam(inbound).receive(raw, "c" * 32)
    (row,) = rows(inbound)
    assert (answer.status, answer.media_type) == (202, "application/json")
    assert answer.body == {"status": "accepted", "id": row.id, "duplicate": False}
    root = etree.fromstring(raw)
    assert row.sha256 == hashlib.sha256(etree.tostring(root, method="c14n", exclusive=True)).hexdigest()
    assert (row.channel, row.message_type, row.correlation_id) == ("stam", "verzoeknotificatie", "c" * 32)
    assert row.dedup_key == "stam|2026112300123|1" and bytes(row.body) == raw and row.answer == "202 Accepted"
    polled = stam(inbound).receive(raw.replace(b"10:15:02", b"10:15:09"), "d" * 32, message_type="werkmap-poll")
    assert polled.body == {"status": "accepted", "id": row.id, "duplicate": True}
    assert len(rows(inbound)) == 1 and n_deliveries(inbound) == 1


def test_an_intrekking_does_not_create_a_zaak(inbound: Services) -> None:
    answer = stam(inbound).receive((FIXTURES / "stam" / "verzoeknotificatie-intrekken.xml").read_bytes(), "c" * 32)
    assert answer.status == 202
    with inbound.engine.connect() as conn:
        (creates_zaak,) = conn.execute(select(deliveries.c.creates_zaak)).one()
    assert creates_zaak is False


INVALID_STAM = [
    ("not-xml", b"<not-xml", "not acceptable XML: "),
    ("other-root", b'<x:verzoeknotificatie xmlns:x="urn:other"/>', "is not a verzoeknotificatie"),
    ("schema", None, "not valid against xsd/"),
]


@pytest.mark.parametrize(("raw", "detail"), [c[1:] for c in INVALID_STAM], ids=[c[0] for c in INVALID_STAM])
def test_an_invalid_notification_is_400_problem_json_and_logged_rejected(
    inbound: Services, raw: bytes | None, detail: str
) -> None:
    raw = raw or NOTIFICATIE.read_bytes().replace(
        b"<vn:volgnummer>1</vn:volgnummer>", b"<vn:volgnummer>x</vn:volgnummer>"
    )
    answer = stam(inbound).receive(raw, "c" * 32)
    assert (answer.status, answer.media_type) == (400, "application/problem+json")
    assert answer.body["type"] == "about:blank#400" and answer.body["status"] == 400
    assert answer.body["title"] == "Invalid verzoeknotificatie" and detail in str(answer.body["detail"])
    (row,) = rows(inbound)
    assert (row.state, row.error_code, row.channel, row.message_type) == (
        "rejected",
        "400",
        "stam",
        "verzoeknotificatie",
    )
    assert bytes(row.body) == raw and row.sha256 == hashlib.sha256(raw).hexdigest()
    assert json.loads(row.answer) == answer.body and row.error_text == answer.body["detail"]
    assert row.dedup_key is None and n_deliveries(inbound) == 0


def test_a_notification_in_another_namespace_names_its_root(inbound: Services) -> None:
    answer = stam(inbound).receive(b'<x:verzoeknotificatie xmlns:x="urn:other"/>', "c" * 32)
    assert str(answer.body["detail"]).startswith("not valid against xsd/stam/verzoeknotificatie.xsd: root element")
    assert str(answer.body["detail"]).endswith("root element {urn:other}verzoeknotificatie is not a verzoeknotificatie")
    bad = NOTIFICATIE.read_bytes().replace(b"<vn:volgnummer>1</vn:volgnummer>", b"<vn:volgnummer>x</vn:volgnummer>")
    detail = str(stam(inbound).receive(bad, "c" * 32).body["detail"])
    assert "volgnummer" in detail and "is not a verzoeknotificatie" not in detail


def test_an_invalid_notification_with_log_rejected_off_stores_nothing(inbound_with: Any) -> None:
    sv = inbound_with(log_rejected=False)
    assert stam(sv).receive(b"<not-xml", "c" * 32).status == 400
    assert rows(sv) == []


def test_a_notification_the_store_cannot_commit_is_503(inbound: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    def down(*_a: object, **_k: object) -> None:
        raise StoreUnavailable("database is locked")

    monkeypatch.setattr(message_store, "accept", down)
    answer = stam(inbound).receive(NOTIFICATIE.read_bytes(), "c" * 32)
    assert (answer.status, answer.media_type) == (503, "application/problem+json")
    assert answer.body["type"] == "about:blank#503" and answer.body["title"] == "Store unavailable"
    assert answer.body["detail"] == "the notification could not be stored; send it again"
    monkeypatch.setattr(message_store, "reject", down)  # a 400 the store cannot log is still answered
    assert stam(inbound).receive(b"<not-xml", "c" * 32).status == 400
    assert rows(inbound) == []


def test_other_content_for_a_known_verzoek_version_is_202_duplicate_and_the_first_stands(inbound: Services) -> None:
    raw = NOTIFICATIE.read_bytes()
    first = stam(inbound).receive(raw, "c" * 32)
    other = raw.replace(b"10:15:02", b"10:15:09")  # the same verzoek version, other bytes (the poll's own)
    again = stam(inbound).receive(other, "d" * 32)
    assert again.status == 202, again
    assert (again.body["duplicate"], again.body["id"]) == (True, first.body["id"])
    (row,) = rows(inbound)
    assert bytes(row.body) == raw


# -- werkmap poll: every verzoek of the lookback once, page by page, never stored twice ---------------------

OIN = "00000001002564440000"


@pytest.fixture
def polling(tmp_path: Path, werkmap: tuple[Any, str]) -> Iterator[tuple[Services, Any]]:
    """Inbound services with a ``[werkmap]`` at the fake (pages of 3, a lookback of 2 days), and the fake."""
    from adapter.services import build_werkmap

    fake, url = werkmap
    toml = (
        NO_DELIVERY
        + f'[werkmap]\nbase_url = "{url}"\noin = "{OIN}"\ntimeout = 5\nretries = 1\n'
        + "[jobs]\nenabled = false\nwerkmap_poll_lookback_days = 2\nwerkmap_poll_page_size = 3\n"
    )
    sv = open_inbound(tmp_path, toml)
    sv.werkmap = build_werkmap(sv.settings)
    yield sv, fake
    assert sv.werkmap is not None
    sv.werkmap.close()
    url_db = sv.engine.url.render_as_string(hide_password=False)
    sv.close()
    drop_database(url_db)


def test_the_poll_stores_each_verzoek_of_the_lookback_once_over_all_pages(polling: tuple[Services, Any]) -> None:
    from datetime import UTC, datetime, timedelta

    from adapter.jobs.werkmap_poll import poll

    sv, fake = polling
    now = datetime.now(UTC)
    fake.generate_verzoeken(1, start=now - timedelta(days=3))  # before the lookback: not asked for
    nummers = fake.generate_verzoeken(7, start=now - timedelta(days=1), spacing=timedelta(minutes=10))
    notified = stam(sv).receive(fake.notificatie(nummers[0]), "c" * 32)  # its notification came first
    assert notified.body["duplicate"] is False
    before = datetime.now(UTC)
    result = poll(sv)
    vanaf = before - timedelta(days=2)
    assert (result.found, result.new, result.errors) == (7, 6, 0)
    assert result.detail in {
        f"7 verzoeken since {(vanaf - timedelta(minutes=m)):%Y-%m-%d %H:%M}, 6 new" for m in (0, 1)
    }, result.detail
    assert len([r for r in fake.requests if r.path.endswith("/_zoek")]) == 3  # pages of 3, 3 and 1
    stored = rows(sv)
    assert sorted(r.nummer for r in stored) == sorted(nummers) and len(stored) == 7
    assert {r.message_type for r in stored[1:]} == {"werkmap-poll"} and {r.volgnummer for r in stored} == {1}
    assert {r.dedup_key for r in stored} == {f"stam|{n}|1" for n in nummers}
    assert {r.ontvanger for r in stored} == {OIN} and n_deliveries(sv) == 7
    again = poll(sv)  # the next interval finds them all again, and nothing new
    assert (again.found, again.new, again.errors) == (7, 0, 0) and again.detail.endswith(", 0 new")
    assert len(rows(sv)) == 7


def test_a_verzoek_the_poll_cannot_turn_into_a_notification_is_counted_and_named(
    polling: tuple[Services, Any],
) -> None:
    from adapter.jobs.werkmap_poll import poll

    sv, fake = polling
    from adapter.loket import stam as stam_contract

    vz = f'<vz:verzoek xmlns:vz="{stam_contract.VERZOEK}"/>'.encode()
    fake.add_verzoek(vz, check_schema=False, verzoeknummer="NR-1", volgnummer=2)  # no doel: Initiëren
    fake.add_verzoek(vz, check_schema=False, verzoeknummer="bad.nr", volgnummer=1)  # not a verzoeknummer
    for n in range(2, 7):
        fake.add_verzoek(vz, check_schema=False, verzoeknummer=f"bad.nr{n}", volgnummer=1)
    result = poll(sv)
    assert (result.found, result.new, result.errors) == (7, 1, 6)
    assert "; bad.nr: not valid against xsd/" in result.detail and "; bad.nr2: not valid" in result.detail
    assert result.detail.count(": not valid against") == 5  # the first five problems, not all
    (row,) = [r for r in rows(sv) if r.state == "received"]
    assert (row.nummer, row.volgnummer, row.dedup_key) == ("NR-1", 2, "stam|NR-1|2")
    with sv.engine.connect() as conn:
        (creates_zaak,) = conn.execute(select(deliveries.c.creates_zaak)).one()
    assert creates_zaak is True  # an Initiëren verzoek


def test_the_notification_of_a_hit_is_escaped_and_defaults_volgnummer_and_doel() -> None:
    from adapter.jobs.werkmap_poll import notificatie_xml
    from adapter.loket import stam as stam_contract

    root = etree.fromstring(notificatie_xml({"verzoeknummer": "A<&>B"}, "OIN<1>"))
    ns = {"vn": stam_contract.VERZOEKNOTIFICATIE}
    assert root.tag == f"{{{stam_contract.VERZOEKNOTIFICATIE}}}verzoeknotificatie"
    assert root.findtext("vn:verzoeknummer", namespaces=ns) == "A<&>B"
    assert root.findtext("vn:volgnummer", namespaces=ns) == "1"
    assert root.findtext("vn:doel", namespaces=ns) == "Initiëren"
    assert root.findtext("vn:bevoegdGezag/vn:oin", namespaces=ns) == "OIN<1>"
    tijdstip = root.findtext("vn:tijdstipNotificatie", namespaces=ns)
    assert tijdstip.endswith("+00:00") and "." not in tijdstip
    other = etree.fromstring(notificatie_xml({"verzoeknummer": "N", "volgnummer": "3", "doel": "Aanvullen"}, "O"))
    assert (
        other.findtext("vn:volgnummer", namespaces=ns) == "3"
        and other.findtext("vn:doel", namespaces=ns) == "Aanvullen"
    )


def test_without_a_werkmap_the_poll_does_nothing(inbound: Services) -> None:
    from adapter.jobs.werkmap_poll import PollResult, poll

    assert poll(inbound) == PollResult(0, 0, 0, "no [werkmap] configured: nothing to poll")


# -- delivery worker: what a delivery does besides making a zaak; the worker threads; mapping reloads -------

STAM_DIR = FIXTURES / "stam"
TRANSFER = (
    '[[overdragen]]\nactiviteiten = ["nl.imow-gm0344.activiteit.BouwenDakkapel", "dakkapel-plaatsen"]\n'
    'naar = "00000001823288444000"\nrol = "behandeldienst"\n\n[triage]'
)


@pytest.fixture
def stam_delivering(tmp_path: Path, zs: Any, werkmap: tuple[Any, str]) -> Iterator[tuple[Services, Any, Path]]:
    """Services with outbox (no worker threads), the fake ZGW target and a ``[werkmap]`` at the fake; the fake
    werkmap and the mapping directory."""
    from tests.delivery_env import copy_mappings, delivery_toml

    fake, url = werkmap
    mappings = copy_mappings(tmp_path)
    toml = delivery_toml(zs, mappings, workers=0, backoff_initial=0) + (
        f'\n[werkmap]\nbase_url = "{url}"\noin = "{OIN}"\ntimeout = 5\nretries = 1\n\n[jobs]\nenabled = false\n'
    )
    db = new_database_url(tmp_path)
    sv = open_services(load_settings(write_config(tmp_path / "config.toml", db, 8999, toml)))
    upgrade(sv.engine)
    yield sv, fake, mappings
    sv.close()
    drop_database(db)


def notify(sv: Services, fake: Any, verzoek: str, notificatie: str) -> int:
    fake.add_verzoek((STAM_DIR / verzoek).read_bytes())
    answer = stam(sv).receive((STAM_DIR / notificatie).read_bytes(), "c" * 32)
    assert answer.status == 202
    return int(answer.body["id"])  # type: ignore[call-overload]


def test_a_kopiebericht_is_kept_and_makes_no_zaak(stam_delivering: tuple[Services, Any, Path], zs: Any) -> None:
    sv, fake, _ = stam_delivering
    mid = notify(sv, fake, "verzoek-kopiebericht.xml", "verzoeknotificatie-kopiebericht.xml")
    assert sv.outbox is not None
    (report,) = sv.outbox.work_once()
    assert (report.message_id, report.state) == (mid, "done")
    assert report.detail == "kopiebericht (uitvoerende instantie 00000001823288444000): opgeslagen, geen zaak"
    assert report.line() == f"message {mid}: done: {report.detail}"
    assert zs.fake.zaken == [] and fake.transfers == []
    with sv.engine.connect() as conn:  # kept, not routed: `messages show` names no target
        assert conn.execute(select(deliveries.c.target).where(deliveries.c.message_id == mid)).scalar_one() is None


def test_the_warnings_of_a_lenient_read_are_stored_on_their_message_alone(
    stam_delivering: tuple[Services, Any, Path], zs: Any
) -> None:
    """What the delivery's lenient read let through (element names and lines, never values) is kept on the
    message for `messages show`; a verzoek read cleanly has none, stored as nothing."""
    sv, fake, _ = stam_delivering
    assert sv.outbox is not None
    clean = notify(sv, fake, "verzoek-initieren.xml", "verzoeknotificatie-initieren.xml")
    fake.add_verzoek((STAM_DIR / "lenient" / "verzoek-onbekend-element.xml").read_bytes(), check_schema=False)
    answer = stam(sv).receive((STAM_DIR / "lenient" / "verzoeknotificatie-onbekend-element.xml").read_bytes(), "d" * 32)
    lenient = int(answer.body["id"])  # type: ignore[call-overload]
    with capture_logs() as logs:
        assert sorted(r.state for r in sv.outbox.work_once(limit=2)) == ["done", "done"]
    row = message_store.get_message(sv.engine, lenient)
    assert row is not None and len(row.warnings) == 3, row
    [line] = [e for e in logs if e["event"] == "verzoek read with warnings"]  # once, for the lenient one
    assert (line["log_level"], line["count"], line["first"]) == ("warning", 3, row.warnings[0])
    assert row.warnings[0].startswith("line 13: verzoek/verzoekVersie: element not known to our schema")
    assert "1970-01-01" not in " ".join(row.warnings)
    assert message_store.get_message(sv.engine, clean).warnings == ()  # type: ignore[union-attr]
    with sv.engine.connect() as conn:
        stored = dict(conn.execute(select(messages.c.id, messages.c.warnings)).all())
    assert stored[clean] is None and json.loads(stored[lenient]) == list(row.warnings)


def test_a_transfer_rule_hands_the_verzoek_over_once_and_makes_no_zaak(
    stam_delivering: tuple[Services, Any, Path], zs: Any
) -> None:
    sv, fake, mappings = stam_delivering
    mapping = mappings / "voorbeeldstad.toml"
    mapping.write_text(mapping.read_text().replace("[triage]", TRANSFER))
    mid = notify(sv, fake, "verzoek-initieren.xml", "verzoeknotificatie-initieren.xml")
    assert sv.outbox is not None
    (report,) = sv.outbox.work_once()
    assert report.state == "done", report
    assert report.detail == "overgedragen aan 00000001823288444000 als behandeldienst (mapping-regel); geen zaak hier"
    transfers = [(t.verzoeknummer, t.naar_oin, t.rol, t.toelichting) for t in fake.transfers]
    assert transfers == [
        ("2026112300123", "00000001823288444000", "behandeldienst", "Overgedragen door loket-adapter volgens mapping")
    ]
    (again,) = sv.outbox.resend([mid])  # a resend finds the checkpoint: the werkmap is not asked twice
    assert isinstance(again, type(report)) and again.state == "done"
    assert len(fake.transfers) == 1 and zs.fake.zaken == []


def test_a_route_to_a_target_that_is_not_configured_needs_attention(delivering: Any, zs: Any, tmp_path: Path) -> None:
    from tests.test_delivery_zgw import receive

    sv = delivering(backoff_initial=0)
    sv.targets.pop("zaaksysteem")
    receive(sv)
    (report,) = sv.outbox.work_once()
    assert report.state == "needs-attention"
    assert report.detail.startswith("mapping routes to target 'zaaksysteem', which is not configured"), report
    assert zs.fake.zaken == []


def test_worker_threads_deliver_until_stopped_and_survive_an_error(
    delivering: Any, zs: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading
    import time

    from adapter.store import outbox as outbox_store
    from tests.test_delivery_zgw import receive

    sv = delivering(workers=2, poll_interval=0.05)
    box = sv.outbox
    claims: list[str] = []
    real_claim = outbox_store.claim

    def flaky_claim(*a: Any, **k: Any) -> Any:
        claims.append(threading.current_thread().name)
        if len(claims) == 1:
            raise RuntimeError("claim failed once")
        return real_claim(*a, **k)

    monkeypatch.setattr(outbox_store, "claim", flaky_claim)
    lines = record_log(monkeypatch, worker_module)
    box.start()
    try:
        assert sorted(t.name for t in box._threads) == ["delivery-0", "delivery-1"]
        assert all(t.daemon and t.is_alive() for t in box._threads)
        receive(sv)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and len(zs.fake.zaken) < 1:
            time.sleep(0.05)
        assert len(zs.fake.zaken) == 1  # the failed claim did not stop the worker
    finally:
        box.stop(timeout=30)
    assert not any(t.is_alive() for t in box._threads)
    polls = len(claims)
    time.sleep(0.2)
    assert len(claims) == polls  # stopped: no more claims
    assert {"delivery-0", "delivery-1"} <= set(claims)
    # the unexpected error is logged once, with its traceback, and the worker carried on
    assert [e for e in lines if e["level"] == "error"] == [
        {"level": "error", "event": "delivery worker error", "exc_info": True}
    ]


def test_mapping_files_are_reloaded_when_one_changes_and_a_broken_edit_keeps_the_last_good_set(
    tmp_path: Path,
) -> None:
    import os

    from adapter.delivery.worker import MappingSet
    from adapter.errors import AdapterError
    from tests.delivery_env import copy_mappings

    directory = copy_mappings(tmp_path)
    file = directory / "voorbeeldstad.toml"
    good = file.read_text()
    ms = MappingSet(directory)
    first = ms.get()
    assert [m.path.name for m in first] == ["voorbeeldstad.toml"] and ms.get() is first  # unchanged: not reread

    def edit(text: str, bump: int) -> None:
        file.write_text(text)
        st = file.stat()
        os.utime(file, (st.st_atime, st.st_mtime + bump))

    edit(good.replace('omschrijving = "{verzoek.omschrijving}"', 'omschrijving = "Nieuw {verzoek.omschrijving}"'), 10)
    second = ms.get()
    assert second is not first and second[0].mapping.defaults.omschrijving == "Nieuw {verzoek.omschrijving}"
    edit(good.replace("[defaults]", "[defaults\n"), 20)  # broken: the last good set stays
    assert ms.get() is second
    (directory / "zweede.toml").write_text(good)  # a new file counts as a change
    assert [m.path.name for m in ms.get()] == ["voorbeeldstad.toml"]  # still broken: still the last good set
    edit(good, 30)
    assert sorted(m.path.name for m in ms.get()) == ["voorbeeldstad.toml", "zweede.toml"]
    broken = MappingSet(tmp_path / "nowhere")
    with pytest.raises(AdapterError):
        broken.get()  # nothing loaded yet: a broken set is an error


# -- mappings check: one line per problem (file:line: key: problem), errors and warnings, online via the target

CHECK_BASE = """[[route]]
oin = "00000001002564440000"
target = "zgw"

[defaults]
bronorganisatie = "002564440"
verantwoordelijke_organisatie = "002564440"
zaak_identificatie = "OLO-{verzoek.nummer}"

[profiles.beperkt]
informatieobjecttypen = { Bouwtekening = "Tekening", Foto = "Bijlage" }

[[zaaktypen]]
activiteiten = ["dakkapel"]
zaaktype = "ZT-A"
profile = "beperkt"

[[zaaktypen]]
activiteiten = ["schuur"]
zaaktype = "ZT-A"

[[zaaktypen]]
activiteiten = ["*"]
zaaktype = "ZT-B"

[values.informatieobjecttype]
"*" = "Bijlage"
Situatie = "Kaart"
"""


class StubTarget:
    """A target whose catalogus answers from a table: zaaktype -> problems, and per informatieobjecttype."""

    def __init__(self, problems: dict[str, list[str]] | None = None, fail: Exception | None = None) -> None:
        self.problems = problems or {}
        self.fail = fail
        self.calls: list[tuple[str, tuple[str, ...], Any]] = []

    def check_zaak(self, zaak: Any, on: Any) -> list[str]:
        if self.fail:
            raise self.fail
        iots = tuple(d.informatieobjecttype for d in zaak.documenten)
        self.calls.append((zaak.zaaktype, iots, on))
        out = list(self.problems.get(zaak.zaaktype, [])) if not iots else []
        for iot in iots:
            out += self.problems.get(f"{zaak.zaaktype}/{iot}", [])
        return out


def mapping_file(tmp_path: Path, text: str = CHECK_BASE, name: str = "m.toml") -> Path:
    d = tmp_path / "maps"
    d.mkdir(exist_ok=True)
    (d / name).write_text(text)
    return d


ZT_A, WEG, VALUES = 'zaaktype = "ZT-A"', 'profile = "weg"', "[values.informatieobjecttype]"


def line_of(text: str, needle: str, start: int = 0) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line and i > start)


def test_a_good_mapping_has_no_problems_offline_and_each_zaaktype_is_checked_online(tmp_path: Path) -> None:
    from datetime import date

    from adapter.mapping.check import check_dir, check_online
    from adapter.mapping.loader import load_file

    d = mapping_file(tmp_path)
    target = StubTarget()
    assert check_dir(d, {"zgw": target}, online=False) == [] and target.calls == []  # type: ignore[dict-item]
    assert check_dir(d, {"zgw": target}, online=True) == []  # type: ignore[dict-item]
    today = date.today()
    # every zaaktype once without documents, then once per documenttype its profile can give (and the fallback)
    assert target.calls == [
        ("ZT-A", (), today),
        ("ZT-A", ("Tekening",), today),
        ("ZT-A", ("Bijlage",), today),  # Foto
        ("ZT-A", ("Bijlage",), today),  # Situatie: a profile with its own map does not use [values]
        ("ZT-A", ("Bijlage",), today),  # any other
        ("ZT-B", (), today),
        ("ZT-B", ("Kaart",), today),
        ("ZT-B", ("Bijlage",), today),
    ], target.calls
    loaded, _ = load_file(d / "m.toml")
    assert loaded is not None
    target.calls.clear()
    check_online(loaded, {"zgw": target}, on=date(2030, 1, 2))  # type: ignore[dict-item]
    assert {c[2] for c in target.calls} == {date(2030, 1, 2)}


def test_online_problems_are_named_by_the_rule_or_the_documenttype_that_causes_them(tmp_path: Path) -> None:
    from adapter.mapping.check import check_dir

    d = mapping_file(tmp_path)
    f = str(d / "m.toml")
    target = StubTarget(
        {
            "ZT-A": ["zaaktype 'ZT-A' does not exist"],
            "ZT-B/Kaart": ["documenttype 'Situatie' → informatieobjecttype 'Kaart': not allowed", "roltype x"],
            "ZT-A/Tekening": ["documenttype 'Bouwtekening' → informatieobjecttype 'Tekening': not allowed"],
        }
    )
    problems = [str(p) for p in check_dir(d, {"zgw": target}, online=True)]  # type: ignore[dict-item]
    text = CHECK_BASE
    assert problems == [
        f"{f}:{line_of(text, ZT_A)}: zaaktypen.0.zaaktype: zaaktype 'ZT-A' does not exist",
        f"{f}:{line_of(text, 'informatieobjecttypen')}: profiles.beperkt.informatieobjecttypen.Bouwtekening: "
        "zaaktype ZT-A: documenttype 'Bouwtekening' → informatieobjecttype 'Tekening': not allowed",
        f"{f}:{line_of(text, 'Situatie')}: values.informatieobjecttype.Situatie: "
        "zaaktype ZT-B: documenttype 'Situatie' → informatieobjecttype 'Kaart': not allowed",
    ], problems


def test_a_catalogus_that_cannot_be_reached_is_one_line_on_the_route(tmp_path: Path) -> None:
    from adapter.errors import TargetError
    from adapter.mapping.check import check_dir

    d = mapping_file(tmp_path)
    (p,) = check_dir(d, {"zgw": StubTarget(fail=TargetError("GET /zaaktypen: HTTP 503"))}, online=True)  # type: ignore[dict-item]
    assert str(p) == f"{d / 'm.toml'}:1: route (target zgw): catalogus not reachable: GET /zaaktypen: HTTP 503"
    assert p.severity == "error"


def test_offline_problems_each_name_file_line_and_key(tmp_path: Path) -> None:
    from adapter.mapping.check import check_dir

    text = (
        CHECK_BASE.replace('target = "zgw"', 'target = "elders"')
        .replace('profile = "beperkt"', 'profile = "onbekend"')
        .replace('zaak_identificatie = "OLO-{verzoek.nummer}"', 'omschrijving = "{verzoek.titel}"')
        .replace('verantwoordelijke_organisatie = "002564440"\n', "")
        .replace('"*" = "Bijlage"\n', "")
        + '\n[triage]\nzaaktype = "ZT-T"\nprofile = "weg"\n'
    )
    d = mapping_file(tmp_path, text)
    f = str(d / "m.toml")
    target = StubTarget()
    problems = check_dir(d, {"zgw": target}, online=True)  # type: ignore[dict-item]
    assert target.calls == []  # routes only to a target that is not configured: nothing to ask online
    lines = [f"{p.severity}: {p}" for p in problems]
    defaults = line_of(text, "[defaults]")
    assert lines == [
        f"error: {f}:{line_of(text, 'elders')}: route[0].target: target 'elders' is not configured ([targets.elders])",
        f"error: {f}:{line_of(text, 'onbekend')}: zaaktypen[0].profile: unknown profile 'onbekend'",
        f"error: {f}:{line_of(text, WEG)}: triage.profile: unknown profile 'weg'",
        f"error: {f}:{line_of(text, 'omschrijving')}: defaults.omschrijving: template field 'verzoek.titel' does "
        "not exist",
        f"warning: {f}:{line_of(text, VALUES)}: values.informatieobjecttype: documenttypes not "
        "listed fall back to 'Bijlage'; add \"*\" to say so",
        f"error: {f}:{defaults}: defaults.verantwoordelijke_organisatie: required (RSIN of the bevoegd gezag): every "
        "delivery would stop",
        f"warning: {f}:{defaults}: defaults.zaak_identificatie: not set: the zaaksysteem picks the identificatie, so a "
        'retry after a lost answer cannot recognise the zaak it made (set e.g. "OLO-{verzoek.nummer}")',
    ], "\n".join(lines)


def test_a_zaak_identificatie_in_a_profile_or_a_default_informatieobjecttype_is_enough(tmp_path: Path) -> None:
    from adapter.mapping.check import check_dir

    text = (
        CHECK_BASE.replace('zaak_identificatie = "OLO-{verzoek.nummer}"\n', 'informatieobjecttype = "Bijlage"\n')
        .replace('"*" = "Bijlage"\n', "")
        .replace("[profiles.beperkt]\n", '[profiles.beperkt]\nzaak_identificatie = "X-{verzoek.nummer}"\n')
    )
    assert check_dir(mapping_file(tmp_path, text), {"zgw": StubTarget()}, online=False) == []  # type: ignore[dict-item]


def test_a_file_that_does_not_load_is_reported_and_not_checked_further_and_the_others_are(tmp_path: Path) -> None:
    from adapter.mapping.check import check_dir

    d = mapping_file(tmp_path, CHECK_BASE.replace("[defaults]", "[defaults\n"), name="a.toml")
    mapping_file(tmp_path, CHECK_BASE.replace('target = "zgw"', 'target = "elders"'), name="b.toml")
    target = StubTarget()
    problems = check_dir(d, {"zgw": target}, online=True)  # type: ignore[dict-item]
    assert [(Path(p.file).name, p.severity) for p in problems] == [("a.toml", "error"), ("b.toml", "error")]
    assert "route[0].target" in str(problems[1]) and target.calls == []
    # a file with only warnings is still checked online
    (d / "a.toml").write_text(CHECK_BASE.replace('"*" = "Bijlage"\n', ""))
    (d / "b.toml").unlink()
    problems = check_dir(d, {"zgw": target}, online=True)  # type: ignore[dict-item]
    assert [p.severity for p in problems] == ["warning"] and target.calls


def test_a_missing_or_empty_mapping_directory_is_one_line(tmp_path: Path) -> None:
    from adapter.mapping.check import check_dir

    (p,) = check_dir(tmp_path / "nowhere", {}, online=False)
    assert (str(p), p.severity) == (f"{tmp_path / 'nowhere'}: mapping directory does not exist", "error")
    (tmp_path / "leeg").mkdir()
    (tmp_path / "leeg" / "notes.txt").write_text("x")
    (p,) = check_dir(tmp_path / "leeg", {}, online=False)
    assert (str(p), p.severity) == (f"{tmp_path / 'leeg'}: no mapping files (*.toml)", "error")


def with_first_ontvanger(sv: Services, **changes: str) -> StufLvoChannel:
    stuf = sv.settings.stuf
    first = stuf.ontvangers[0].model_copy(update=changes)
    settings = sv.settings.model_copy(
        update={"stuf": stuf.model_copy(update={"ontvangers": [first, *stuf.ontvangers[1:]]})}
    )
    return StufLvoChannel(settings, sv.writer, sv.schemas)


def test_a_configured_ontvanger_administratie_must_match(inbound: Services) -> None:
    channel = with_first_ontvanger(inbound, administratie="ADM")
    ontvanger = b"<StUF:applicatie>ZAAKSYSTEEM</StUF:applicatie>"

    def addressed(ref: str, adm: bytes) -> bytes:
        return intrekken(ref).replace(ontvanger, ontvanger + b"<StUF:administratie>" + adm + b"</StUF:administratie>")

    assert channel.accept(channel.receive(addressed("R-ADM", b"ADM"), "c" * 32)).tag == f"{{{STUF}}}Bv03Bericht"
    with pytest.raises(Rejected) as info:
        channel.receive(addressed("R-OTHER", b"ANDERS"), "c" * 32)
    assert info.value.fout.fout.code == "StUF010"


def test_a_fault_to_an_unreadable_request_comes_from_our_first_ontvanger(inbound: Services) -> None:
    """With no stuurgegevens to answer from, the Fo03's zender is the first ``[[stuf.ontvangers]]`` in full."""
    stuf = inbound.settings.stuf
    first = stuf.ontvangers[0].model_copy(update={"administratie": "ADM"})
    settings = inbound.settings.model_copy(
        update={"stuf": stuf.model_copy(update={"ontvangers": [first, *stuf.ontvangers[1:]]})}
    )
    channel = StufLvoChannel(settings, inbound.writer, inbound.schemas)
    with pytest.raises(Rejected) as info:
        channel.receive(b"<not-xml", "c" * 32)
    zender = [
        sg_text(info.value.answer, f"StUF:zender/StUF:{t}") for t in ("organisatie", "applicatie", "administratie")
    ]
    assert zender == ["00000001002564440000", "ZAAKSYSTEEM", "ADM"]


def test_a_long_rejection_reason_is_cut_at_200_characters_in_the_omschrijving(inbound: Services) -> None:
    """StUF caps the omschrijving at 200; the reason is cut to fit, the full one stays in the details."""
    name = "x" * 300
    rej = refused(inbound, f"<{name}></{name}y>".encode())
    body = fo03_body(rej)
    assert body["omschrijving"] is not None and len(body["omschrijving"]) == 200
    assert body["omschrijving"].startswith("Bericht afgewezen: ") and not body["omschrijving"].endswith("…")
    assert body["details"] is not None and len(body["details"]) > 200


def test_each_fault_is_logged_once_with_its_code_plek_and_row(inbound: Services) -> None:
    """README: a fault is logged once, at warning, naming the code and the rejected row (no personal values)."""
    with capture_logs() as logs:
        rej = refused(inbound, intrekken("R-LOG").replace(INTREKKEN.encode(), b"vrgDi01Onbekend"))
    (row,) = rows(inbound)
    lines = [e for e in logs if e.get("event") == "message rejected"]
    assert len(lines) == 1 and lines[0]["log_level"] == "warning"
    line = lines[0]
    assert (line["code"], line["plek"], line["message_id"], line["referentienummer"]) == (
        "StUF025",
        "server",
        row.id,
        "R-LOG",
    )
    assert line["omschrijving"] == rej.fout.omschrijving and "ondersteund" in line["details"]


def test_resend_of_several_messages_goes_on_past_one_it_cannot_resend(delivering: Any, zs: Any) -> None:
    """``messages resend A B C``: an unknown message or one another worker holds is named, the others run."""
    from datetime import timedelta

    from adapter.delivery.worker import Report
    from adapter.store import outbox as outbox_store
    from tests.test_delivery_zgw import receive

    sv = delivering(backoff_initial=0)
    held = receive(sv)
    (claimed,) = outbox_store.claim(sv.engine, "other-worker", timedelta(minutes=5))
    assert claimed.message_id == held
    free = receive(sv, body=fixture("omvDi01AanbiedenAanvraag").replace(b">1234567<", b">7654321<"))
    box = sv.outbox
    holders: list[str | None] = []
    real_run = box.run

    def run(c: Any) -> Any:  # who holds the delivery while the resend runs it
        with sv.engine.connect() as conn:
            holders.append(conn.execute(select(deliveries.c.claimed_by).where(deliveries.c.id == c.id)).scalar_one())
        return real_run(c)

    box.run = run  # type: ignore[method-assign]
    out = box.resend([held + 1000, held, free])
    assert holders == [box.worker_id]
    assert out[:2] == [
        f"message {held + 1000}: has no delivery (rejected or unknown)",
        f"message {held}: being delivered by another worker right now; not resent",
    ]
    assert isinstance(out[2], Report) and (out[2].message_id, out[2].state) == (free, "done")


def test_a_worker_claims_one_delivery_at_a_time_under_its_own_name(delivering: Any, zs: Any) -> None:
    import os

    from tests.test_delivery_zgw import receive

    sv = delivering(backoff_initial=0)
    first = receive(sv)
    receive(sv, body=fixture("omvDi01AanbiedenAanvraag").replace(b">1234567<", b">7654321<"))
    box = sv.outbox
    holders: list[str | None] = []
    real_run = box.run

    def run(c: Any) -> Any:
        with sv.engine.connect() as conn:
            holders.append(conn.execute(select(deliveries.c.claimed_by).where(deliveries.c.id == c.id)).scalar_one())
        return real_run(c)

    box.run = run  # type: ignore[method-assign]
    reports = box.work_once()
    assert [r.message_id for r in reports] == [first]  # one at a time: the other waits, unclaimed
    assert holders == [box.worker_id] and box.worker_id.endswith(f":{os.getpid()}")
    assert [r.state for r in box.work_once(limit=5)] == ["done"]


class RecordingLoket:
    def __init__(self) -> None:
        self.sent: list[Any] = []

    def send(self, el: Any) -> str:
        self.sent.append(el)
        return "REF-1"


class ZaakSteps:
    """Just what ``_koppel_zaak`` reads of a delivery's checkpoints: the zaak made for the verzoek."""

    def __init__(self, zaak: dict[str, str] | None) -> None:
        self._zaak = zaak
        self.calls: list[str] = []

    def zaak(self, nummer: str) -> dict[str, str] | None:
        return self._zaak

    def called(self, what: str) -> None:
        self.calls.append(what)


def test_the_loket_hears_of_the_zaak_only_when_asked_and_only_once_the_zaak_has_an_identificatie(
    delivering: Any, zs: Any
) -> None:
    from adapter.mapping.check import SAMPLE

    loket = RecordingLoket()
    box = delivering(backoff_initial=0).outbox
    box.loket = loket
    assert box._koppel_zaak(SAMPLE, ZaakSteps({"identificatie": "OLO-1"})) == ""  # not asked: a loket hears nothing
    box.settings = box.settings.model_copy(update={"koppel_zaak_aan_aanvraag": True})
    for zaak in (None, {"identificatie": ""}, {"url": "https://zs/zaken/1"}):  # no zaak (yet): nothing to couple
        assert box._koppel_zaak(SAMPLE, ZaakSteps(zaak)) == ""
    assert loket.sent == []


def test_the_koppeling_is_listed_among_the_calls_of_its_attempt(tmp_path: Path, zs: Any) -> None:
    """The attempt log (``messages show``) lists every call an attempt made, the loket koppeling too."""
    from adapter.simulation.fake_loket import ENDPOINT_PATH, FakeLoket
    from adapter.simulation.fake_zgw import serve_in_thread
    from adapter.store.tables import delivery_attempts
    from tests.delivery_env import copy_mappings, delivery_toml
    from tests.test_delivery_zgw import receive

    loket = FakeLoket()
    loket_url, stop_loket = serve_in_thread(loket)
    url = new_database_url(tmp_path)
    extra = delivery_toml(zs, copy_mappings(tmp_path), workers=0, koppel_zaak_aan_aanvraag="true") + (
        f'\n[loket]\nurl = "{loket_url}{ENDPOINT_PATH}"\n'
        'zender = { organisatie = "00000001002564440000", applicatie = "ZAAKSYSTEEM" }\n'
        'ontvanger = { organisatie = "00000001800866472000", applicatie = "OLO" }\n'
    )
    sv = open_services(load_settings(write_config(tmp_path / "config.toml", url, 8999, extra)))
    upgrade(sv.engine)
    try:
        receive(sv)
        assert sv.outbox is not None
        (report,) = sv.outbox.work_once()
        assert report.state == "done" and report.detail.endswith("; gekoppeld aan aanvraag 1234567 in het loket")
        with sv.engine.connect() as conn:
            (calls,) = conn.execute(select(delivery_attempts.c.calls)).one()
        assert "koppel:loket: vrgDi01KoppelZaakAanAanvraag 1234567 → OLO-1234567" in json.loads(calls)
    finally:
        sv.close()
        stop_loket()
        drop_database(url)


def test_a_problem_in_the_second_route_or_rule_names_that_line(tmp_path: Path) -> None:
    from adapter.mapping.check import check_dir

    text = CHECK_BASE.replace(
        '[[route]]\noin = "00000001002564440000"\ntarget = "zgw"\n',
        '[[route]]\noin = "00000001002564440000"\ntarget = "zgw"\n\n[[route]]\noin = "00000001002564440001"\n'
        'target = "elders"\n',
    ).replace(
        'activiteiten = ["schuur"]\nzaaktype = "ZT-A"\n',
        'activiteiten = ["schuur"]\nzaaktype = "ZT-A"\nprofile = "weg"\n',
    )
    d = mapping_file(tmp_path, text)
    f = str(d / "m.toml")
    assert [str(p) for p in check_dir(d, {"zgw": StubTarget()}, online=False)] == [  # type: ignore[dict-item]
        f"{f}:{line_of(text, 'elders')}: route[1].target: target 'elders' is not configured ([targets.elders])",
        f"{f}:{line_of(text, WEG)}: zaaktypen[1].profile: unknown profile 'weg'",
    ]


def test_the_configured_depth_limit_applies_to_a_notification(inbound_with: Any) -> None:
    sv = inbound_with(max_depth=8)
    deep = "<a>" * 10 + "</a>" * 10
    raw = NOTIFICATIE.read_bytes().replace(b"</vn:doel>", f"</vn:doel>{deep}".encode(), 1)
    answer = stam(sv).receive(raw, "c" * 32)
    assert answer.status == 400 and "deeper than 8 levels" in str(answer.body["detail"])


def test_a_file_with_an_invalid_xpath_is_not_checked_online(tmp_path: Path) -> None:
    from adapter.mapping.check import check_dir

    d = mapping_file(tmp_path, CHECK_BASE + '\n[xpath]\nprocedure = "//L:aanvraag[["\n')
    target = StubTarget()
    problems = check_dir(d, {"zgw": target}, online=True)  # type: ignore[dict-item]
    assert [(p.key, p.severity) for p in problems] == [("xpath.procedure", "error")]
    assert target.calls == []  # an error in the file: its catalogus is not asked


def test_a_route_to_a_target_that_is_not_configured_does_not_stop_the_online_check_of_the_others(
    tmp_path: Path,
) -> None:
    from adapter.mapping.check import check_dir

    # two routes; the unconfigured target sorts first, the configured one is still asked about every zaaktype
    text = CHECK_BASE.replace(
        'target = "zgw"\n', 'target = "zgw"\n\n[[route]]\noin = "00000001001234567000"\ntarget = "archief"\n', 1
    )
    d = mapping_file(tmp_path, text)
    f = str(d / "m.toml")
    target = StubTarget({"ZT-B": ["zaaktype 'ZT-B' does not exist"]})
    problems = [str(p) for p in check_dir(d, {"zgw": target}, online=True)]  # type: ignore[dict-item]
    assert problems == [
        f"{f}:{line_of(text, 'archief')}: route[1].target: target 'archief' is not configured ([targets.archief])",
        f"{f}:{line_of(text, 'ZT-B')}: zaaktypen.2.zaaktype: zaaktype 'ZT-B' does not exist",
    ], problems
    assert sorted({c[0] for c in target.calls}) == ["ZT-A", "ZT-B"]


def test_a_documenttype_problem_of_the_built_in_fallback_is_named_on_the_rule(tmp_path: Path) -> None:
    from adapter.mapping.check import check_dir

    # no "*" and no default informatieobjecttype: the fallback is the built-in "Bijlage", which no mapping key
    # names, so its online problem is reported on the zaaktype rule it was checked for
    text = CHECK_BASE.replace('"*" = "Bijlage"\n', "")
    d = mapping_file(tmp_path, text)
    f = str(d / "m.toml")
    target = StubTarget({"ZT-B/Bijlage": ["documenttype None → informatieobjecttype 'Bijlage': not allowed"]})
    problems = [str(p) for p in check_dir(d, {"zgw": target}, online=True)]  # type: ignore[dict-item]
    assert problems == [
        f"{f}:{line_of(text, VALUES)}: values.informatieobjecttype: documenttypes not listed fall back to 'Bijlage'; "
        'add "*" to say so',
        f"{f}:{line_of(text, 'ZT-B')}: zaaktypen.2.zaaktype: zaaktype ZT-B: documenttype None → informatieobjecttype "
        "'Bijlage': not allowed",
    ], problems


def test_a_template_error_in_a_profile_names_the_profile_key_and_its_line(tmp_path: Path) -> None:
    from adapter.mapping.check import check_dir

    text = CHECK_BASE.replace("[profiles.beperkt]\n", '[profiles.beperkt]\nomschrijving = "{verzoek.titel}"\n')
    d = mapping_file(tmp_path, text)
    problems = [str(p) for p in check_dir(d, {"zgw": StubTarget()}, online=False)]  # type: ignore[dict-item]
    assert problems == [
        f"{d / 'm.toml'}:{line_of(text, 'omschrijving')}: profiles.beperkt.omschrijving: template field "
        "'verzoek.titel' does not exist"
    ], problems


def test_an_idle_worker_waits_the_poll_interval_between_claims(
    delivering: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import time

    from adapter.store import outbox as outbox_store

    sv = delivering(workers=1, poll_interval=0.2)
    claims: list[float] = []
    real_claim = outbox_store.claim

    def counting_claim(*a: Any, **k: Any) -> Any:
        claims.append(time.monotonic())
        return real_claim(*a, **k)

    monkeypatch.setattr(outbox_store, "claim", counting_claim)
    sv.outbox.start()
    try:
        deadline = time.monotonic() + 30
        while not claims and time.monotonic() < deadline:
            time.sleep(0.01)
        first = len(claims)
        time.sleep(0.5)  # nothing to deliver: a claim every 0.2 s at most, not one after the other
        idle = len(claims) - first
    finally:
        sv.outbox.stop(timeout=30)
    assert first >= 1 and idle <= 3, (first, idle)


def test_a_configured_zender_administratie_must_match(inbound: Services) -> None:
    stuf = inbound.settings.stuf
    zender = stuf.ontvangers[0].model_copy(
        update={"organisatie": SENDER.split("/")[0], "applicatie": "OLO", "administratie": "ADM"}
    )
    settings = inbound.settings.model_copy(update={"stuf": stuf.model_copy(update={"zenders": [zender]})})
    channel = StufLvoChannel(settings, inbound.writer, inbound.schemas)
    olo = b"<StUF:applicatie>OLO</StUF:applicatie>"

    def sent(ref: str, adm: bytes) -> bytes:
        return intrekken(ref).replace(olo, olo + b"<StUF:administratie>" + adm + b"</StUF:administratie>")

    assert channel.accept(channel.receive(sent("R-ADM", b"ADM"), "c" * 32)).tag == f"{{{STUF}}}Bv03Bericht"
    with pytest.raises(Rejected) as info:
        channel.receive(sent("R-OTHER", b"ANDERS"), "c" * 32)
    assert info.value.fout.fout.code == "StUF013"


def test_a_stuf016_rejection_is_filed_with_its_message_type_and_aanvraagnummer(inbound: Services) -> None:
    raw = with_reference(fixture("omvDi01AanbiedenAanvraag"), "R-016B")
    send(inbound, raw)
    refused(inbound, raw.replace(b"Plaatsen van een dakkapel", b"Plaatsen van twee dakkapellen"))
    first, rejected = rows(inbound)
    assert (rejected.state, rejected.error_code) == ("rejected", "StUF016")
    assert (rejected.message_type, rejected.nummer) == ("omvDi01AanbiedenAanvraag", first.nummer) and first.nummer
    assert rejected.sha256 != first.sha256  # the hash of its own content, as for an accepted message


def test_a_rejected_notification_is_stored_cut_to_the_configured_size(inbound: Services) -> None:
    """README: a rejected body is stored cut to ``rejected_body_max_bytes``, STAM as StUF-LVO."""
    retention = inbound.settings.retention.model_copy(update={"rejected_body_max_bytes": 100})
    settings = inbound.settings.model_copy(update={"retention": retention})
    raw = NOTIFICATIE.read_bytes().replace(b"<vn:volgnummer>1</vn:volgnummer>", b"<vn:volgnummer>x</vn:volgnummer>")
    assert StamChannel(settings, inbound.writer, inbound.schemas).receive(raw, "c" * 32).status == 400
    (row,) = rows(inbound)
    assert (bytes(row.body), row.body_truncated, row.size) == (raw[:100], True, len(raw))


def test_resend_of_several_messages_goes_on_past_a_purged_one(delivering: Any, zs: Any) -> None:
    """``messages resend A B``: a message whose body the retention purged is named, the next one still runs."""
    from datetime import UTC, datetime

    from sqlalchemy import update

    from adapter.delivery.worker import Report
    from tests.test_delivery_zgw import receive

    sv = delivering(backoff_initial=0)
    purged = receive(sv)
    free = receive(sv, body=fixture("omvDi01AanbiedenAanvraag").replace(b">1234567<", b">7654321<"))
    with sv.engine.begin() as conn:
        conn.execute(update(messages).where(messages.c.id == purged).values(body=b"", body_purged_at=datetime.now(UTC)))
    out = sv.outbox.resend([purged, free])
    assert len(out) == 2, out
    assert isinstance(out[0], str) and out[0].startswith(f"message {purged}: not resent: body purged on "), out
    assert isinstance(out[1], Report) and (out[1].message_id, out[1].state) == (free, "done"), out


def test_an_unexpected_error_in_the_endpoint_is_a_stuf058_server_fault_answering_the_message(
    inbound: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failure of our own (a bug, a library surprise) while accepting a valid message: spyne raises its own
    Server fault, which still leaves as a conform Fo03 — StUF058, plek server, answering the message's
    referentienummer — so that the loket resends it; nothing is stored."""
    import asyncio

    import httpx

    from adapter.app import build_app

    def broken(self: StufLvoChannel, incoming: object) -> None:
        raise RuntimeError("kapot")

    monkeypatch.setattr(StufLvoChannel, "accept", broken)

    async def call() -> httpx.Response:
        transport = httpx.ASGITransport(app=build_app(inbound))
        async with httpx.AsyncClient(transport=transport, base_url="http://adapter") as client:
            body = with_reference(fixture("vrgDi01IntrekkenAanvraag"), "R-058")
            return await client.post("/soap/stuf-lvo", content=body, headers={"Content-Type": "text/xml"})

    answer = asyncio.run(call())
    assert answer.status_code == 500
    fault = etree.fromstring(answer.content).find(".//{http://schemas.xmlsoap.org/soap/envelope/}Fault")
    assert fault is not None and fault.findtext("faultcode", "").endswith(":Server")
    assert fault.findtext("faultstring") == "Internal Error"
    fo03 = fault.find(f"detail/{{{STUF}}}Fo03Bericht")
    assert fo03 is not None
    fields = ("code", "plek", "omschrijving", "details")
    found = [fo03.findtext(f"StUF:body/StUF:{name}", namespaces=NS) for name in fields]
    assert found == ["StUF058", "server", "Internal Error", "Server"]  # details: spyne's own faultcode
    assert fo03.findtext("StUF:stuurgegevens/StUF:crossRefnummer", namespaces=NS) == "R-058"
    with inbound.engine.connect() as conn:
        assert conn.execute(select(messages)).all() == []
