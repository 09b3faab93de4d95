"""StUF-LVO over HTTP against a real server: the answers and what ends up in the store."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest
from lxml import etree
from sqlalchemy import Engine, text

from tests.conftest import SHARED, Server, needs_shared
from tests.soap import LVO, NS, STUF, fixture, post, with_reference

INCOMING = [
    "omvDi01AanbiedenAanvraag",
    "wwvDi01AanbiedenAanvraag",
    "vrgDi01AanvragenVooroverleg",
    "vrgDi01IndienenAanvulling",
    "vrgDi01IntrekkenAanvraag",
    "vrgDi01WijzigGemachtigde",
    "vrgDi01VoegAdviesToe",
    "omvDu01LeverenAanvraag",
]


def ref() -> str:
    return f"T-{uuid.uuid4().hex[:20]}"


def rows(db: Engine, referentienummer: str) -> list[tuple[str, str | None]]:
    with db.connect() as conn:
        return [
            (r.state, r.error_code)
            for r in conn.execute(
                text("SELECT state, error_code FROM messages WHERE referentienummer = :r ORDER BY id"),
                {"r": referentienummer},
            )
        ]


def official_stuf_schema() -> etree.XMLSchema:
    path = SHARED / "reference" / "stuf0301" / "0301" / "stuf0301.xsd"
    return etree.XMLSchema(etree.parse(str(path), etree.XMLParser(no_network=True)))


def assert_bv03_for(answer_el: etree._Element, request: bytes) -> None:
    """Reply rules: zender/ontvanger swapped, crossRefnummer = request's referentienummer."""
    req = etree.fromstring(request)
    rsg = req.find(".//LVO:stuurgegevens", NS)
    sg = answer_el.find("StUF:stuurgegevens", NS)
    assert answer_el.tag == f"{{{STUF}}}Bv03Bericht"
    assert sg.findtext("StUF:berichtcode", namespaces=NS) == "Bv03"
    assert sg.findtext("StUF:zender/StUF:organisatie", namespaces=NS) == rsg.findtext(
        "StUF:ontvanger/StUF:organisatie", namespaces=NS
    )
    assert sg.findtext("StUF:ontvanger/StUF:applicatie", namespaces=NS) == rsg.findtext(
        "StUF:zender/StUF:applicatie", namespaces=NS
    )
    assert sg.findtext("StUF:crossRefnummer", namespaces=NS) == rsg.findtext("StUF:referentienummer", namespaces=NS)
    assert sg.findtext("StUF:referentienummer", namespaces=NS) != rsg.findtext("StUF:referentienummer", namespaces=NS)


@pytest.mark.parametrize("name", INCOMING)
def test_every_fixture_gets_bv03_and_one_row(server: Server, db: Engine, name: str) -> None:
    r = ref()
    body = with_reference(fixture(name), r)
    answer = post(server.soap_url, body, soap_action=f'"{LVO}/{name}"')
    assert answer.status == 200, answer.body
    assert_bv03_for(answer.payload, body)
    assert rows(db, r) == [("received", None)]
    with db.connect() as conn:
        stored = conn.execute(text("SELECT body, message_type FROM messages WHERE referentienummer=:r"), {"r": r}).one()
    assert stored.body == body
    assert stored.message_type == name


@needs_shared
@pytest.mark.parametrize("path", sorted((SHARED / "contract" / "stuf-lvo").glob("*.xml")), ids=lambda p: p.stem)
def test_contract_examples_get_bv03_valid_against_official_stuf0301(server: Server, path: Path) -> None:
    schema = official_stuf_schema()
    body = with_reference(path.read_bytes(), ref())
    answer = post(server.soap_url, body)
    assert answer.status == 200, answer.body
    bv03 = answer.payload
    assert bv03.tag == f"{{{STUF}}}Bv03Bericht"  # exactly the official element, in the StUF namespace
    schema.assertValid(etree.ElementTree(bv03))
    assert_bv03_for(bv03, body)


def test_soapaction_with_namespace_and_name_is_accepted(server: Server) -> None:
    body = with_reference(fixture("vrgDi01IntrekkenAanvraag"), ref())
    answer = post(server.soap_url, body, soap_action=f"{LVO}/vrgDi01IntrekkenAanvraag")
    assert answer.status == 200 and answer.payload.tag == f"{{{STUF}}}Bv03Bericht"


def test_identical_resend_gets_the_same_answer_and_is_stored_once(server: Server, db: Engine) -> None:
    r = ref()
    body = with_reference(fixture("omvDi01AanbiedenAanvraag"), r)
    first = post(server.soap_url, body)
    again = post(server.soap_url, body)
    assert first.status == again.status == 200
    assert etree.tostring(first.payload, method="c14n") == etree.tostring(again.payload, method="c14n")
    assert rows(db, r) == [("received", None)]


def test_resend_in_another_envelope_is_still_a_duplicate(server: Server, db: Engine) -> None:
    r = ref()
    body = with_reference(fixture("vrgDi01IndienenAanvulling"), r)
    first = post(server.soap_url, body)
    reprefixed = body.replace(b"soapenv:", b"S:").replace(b"xmlns:soapenv", b"xmlns:S")
    again = post(server.soap_url, b"<?xml version='1.0' encoding='utf-8'?>\n" + reprefixed.split(b"?>", 1)[1])
    assert first.status == again.status == 200
    assert first.text(".//StUF:referentienummer") == again.text(".//StUF:referentienummer")
    assert rows(db, r) == [("received", None)]


def test_same_reference_different_body_is_stuf016(server: Server, db: Engine) -> None:
    r = ref()
    body = with_reference(fixture("omvDi01AanbiedenAanvraag"), r)
    assert post(server.soap_url, body).status == 200
    changed = body.replace(b"Plaatsen van een dakkapel", b"Plaatsen van twee dakkapellen")
    answer = post(server.soap_url, changed)
    assert answer.status == 500
    assert answer.code == "StUF016"
    assert answer.faultcode.endswith(":Client")
    assert answer.fo03.findtext("StUF:stuurgegevens/StUF:crossRefnummer", namespaces=NS) == r
    # the original stays as it was; the rejected one is only in the log
    assert rows(db, r) == [("received", None), ("rejected", "StUF016")]


def test_malformed_xml_is_stuf055_naming_the_line(server: Server, db: Engine) -> None:
    r = ref()
    body = with_reference(fixture("vrgDi01IntrekkenAanvraag"), r).replace(b"</LVO:reden>", b"</LVO:rede>")
    answer = post(server.soap_url, body)
    assert answer.status == 500 and answer.code == "StUF055"
    assert answer.faultcode.endswith(":Client")
    omschrijving = answer.fo03.findtext("StUF:body/StUF:omschrijving", namespaces=NS)
    line = body[: body.index(b"</LVO:rede>")].count(b"\n") + 1
    assert f"line {line}" in answer.fo03.findtext("StUF:body/StUF:details", namespaces=NS)
    assert "mismatch" in omschrijving
    assert rows(db, r) == []  # not readable, so not filed under its reference …
    with db.connect() as conn:  # … but kept in the log as an unreadable rejected message
        n = conn.execute(
            text("SELECT count(*) FROM messages WHERE state='rejected' AND message_type='(unreadable)' AND body=:b"),
            {"b": body},
        ).scalar_one()
    assert n == 1


def test_schema_invalid_is_stuf055_naming_line_and_element(server: Server, db: Engine) -> None:
    r = ref()
    body = with_reference(fixture("omvDi01AanbiedenAanvraag"), r).replace(
        b"<LVO:postcode>1234AB</LVO:postcode>", b"<LVO:postcode>12345</LVO:postcode>", 1
    )
    answer = post(server.soap_url, body)
    assert answer.status == 500 and answer.code == "StUF055"
    omschrijving = answer.fo03.findtext("StUF:body/StUF:omschrijving", namespaces=NS)
    line = body[: body.index(b"<LVO:postcode>12345")].count(b"\n") + 1
    assert f"regel {line}" in omschrijving and "postcode" in omschrijving, omschrijving
    assert "lvo0312.xsd" in omschrijving
    assert rows(db, r) == [("rejected", "StUF055")]
    # a corrected resend under the same reference is a first delivery, not a StUF016
    fixed = post(server.soap_url, with_reference(fixture("omvDi01AanbiedenAanvraag"), r))
    assert fixed.status == 200
    assert rows(db, r) == [("rejected", "StUF055"), ("received", None)]


def test_unknown_message_is_stuf025(server: Server, db: Engine) -> None:
    r = ref()
    body = with_reference(fixture("vrgDi01IntrekkenAanvraag"), r).replace(
        b"vrgDi01IntrekkenAanvraag", b"vrgDi01OnbekendBericht"
    )
    answer = post(server.soap_url, body)
    assert answer.status == 500 and answer.code == "StUF025"
    assert answer.faultcode.endswith(":Server")
    assert "vrgDi01OnbekendBericht" in answer.fo03.findtext("StUF:body/StUF:omschrijving", namespaces=NS)
    assert rows(db, r) == [("rejected", "StUF025")]


def test_unknown_ontvanger_is_stuf010(server: Server, db: Engine) -> None:
    r = ref()
    body = with_reference(fixture("vrgDi01IntrekkenAanvraag"), r).replace(
        b"<StUF:applicatie>ZAAKSYSTEEM</StUF:applicatie>", b"<StUF:applicatie>ANDERSYSTEEM</StUF:applicatie>"
    )
    answer = post(server.soap_url, body)
    assert answer.status == 500 and answer.code == "StUF010"
    assert answer.faultcode.endswith(":Client")
    # the fault goes back to the sender, from the ontvanger it addressed
    assert answer.fo03.findtext("StUF:stuurgegevens/StUF:ontvanger/StUF:applicatie", namespaces=NS) == "OLO"
    assert rows(db, r) == [("rejected", "StUF010")]


def test_unknown_zender_is_stuf013(server: Server, db: Engine) -> None:
    r = ref()
    body = with_reference(fixture("vrgDi01IntrekkenAanvraag"), r).replace(
        b"<StUF:applicatie>OLO</StUF:applicatie>", b"<StUF:applicatie>NIETOLO</StUF:applicatie>"
    )
    answer = post(server.soap_url, body)
    assert answer.code == "StUF013"
    assert rows(db, r) == [("rejected", "StUF013")]


def test_fo03_and_fault_are_conform(server: Server) -> None:
    """The Fault has faultcode/faultstring/detail and no faultactor; the detail is a valid Fo03."""
    answer = post(server.soap_url, b"<not-xml")
    fault = answer.payload
    assert fault.tag == "{http://schemas.xmlsoap.org/soap/envelope/}Fault"
    assert [c.tag for c in fault] == ["faultcode", "faultstring", "detail"]
    assert fault.findtext("faultstring") == answer.fo03.findtext("StUF:body/StUF:omschrijving", namespaces=NS)
    from adapter.schemas import SchemaSet

    SchemaSet().validate(answer.fo03)


@needs_shared
def test_fo03_validates_against_official_stuf0301(server: Server) -> None:
    schema = official_stuf_schema()
    for body in (b"<not-xml", with_reference(fixture("vrgDi01IntrekkenAanvraag"), "x" * 41)):
        answer = post(server.soap_url, body)
        schema.assertValid(etree.ElementTree(answer.fo03))


def test_answers_declare_the_stuf_prefix_once_at_the_envelope(server: Server) -> None:
    """Namespaces are namespaces, but the loket's own examples and many StUF parsers expect ``StUF:``: the
    Bv03 and the Fo03 use that prefix, declared on the Envelope (spyne alone would write ``ns0:``)."""
    for body in (with_reference(fixture("vrgDi01IntrekkenAanvraag"), ref()), b"<not-xml"):
        raw = post(server.soap_url, body).body
        envelope = re.search(rb"<\w+:Envelope [^>]*>", raw)
        assert envelope is not None, raw[:300]
        assert f'xmlns:StUF="{STUF}"'.encode() in envelope[0], raw[:300]
        assert raw.count(b"xmlns:StUF=") == 1 and b"ns0:" not in raw, raw[:600]
        assert b"<StUF:Bv03Bericht" in raw or b"<StUF:Fo03Bericht" in raw


def test_wrong_http_method_is_refused(server: Server) -> None:
    import httpx

    assert httpx.put(server.soap_url, content=b"<x/>").status_code == 405


def test_served_schemas_refuse_paths_outside_xsd(server: Server) -> None:
    import httpx

    assert httpx.get(f"{server.url}/xsd/lvo/lvo0312.xsd").status_code == 200
    assert httpx.get(f"{server.url}/xsd/../pyproject.toml").status_code == 404
    assert httpx.get(f"{server.url}/xsd/%2e%2e/config.example.toml").status_code == 404


def test_each_fault_is_logged_once_at_warning_without_traceback(server: Server) -> None:
    r = ref()
    body = with_reference(fixture("vrgDi01IntrekkenAanvraag"), r).replace(b"vrgDi01IntrekkenAanvraag", b"vrgDi01Xyz")
    post(server.soap_url, body)
    import json

    lines = [json.loads(line) for line in server.log_text().splitlines() if r in line]
    assert len(lines) == 1, lines
    assert lines[0]["level"] == "warning" and lines[0]["code"] == "StUF025"
    assert lines[0]["correlation_id"]
    assert "Traceback" not in server.log_text()


def test_bsn_never_appears_in_the_log(server: Server) -> None:
    body = with_reference(fixture("omvDi01AanbiedenAanvraag"), ref())
    post(server.soap_url, body)
    post(server.soap_url, body.replace(b"<LVO:bsn>999993653</LVO:bsn>", b"<LVO:bsn>999993653x</LVO:bsn>"))
    assert "999993653" not in server.log_text()


def test_missing_referentienummer_is_stuf055_not_a_duplicate_key(server: Server, db: Engine) -> None:
    body = with_reference(fixture("vrgDi01IntrekkenAanvraag"), "X").replace(
        b"<StUF:referentienummer>X</StUF:referentienummer>", b""
    )
    for _ in range(2):
        answer = post(server.soap_url, body)
        assert answer.code == "StUF055"
        assert "referentienummer" in answer.fo03.findtext("StUF:body/StUF:omschrijving", namespaces=NS)
    with db.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM messages WHERE dedup_key LIKE '%|None'")).scalar_one() == 0


def test_wrong_berichtcode_is_stuf022(server: Server, db: Engine) -> None:
    r = ref()
    body = with_reference(fixture("vrgDi01IntrekkenAanvraag"), r).replace(
        b"<StUF:berichtcode>Di01</StUF:berichtcode>", b"<StUF:berichtcode>Lk01</StUF:berichtcode>"
    )
    answer = post(server.soap_url, body)
    assert answer.code == "StUF022" and answer.faultcode.endswith(":Client")
    assert rows(db, r) == [("rejected", "StUF022")]


def test_empty_locatie_is_stuf055(server: Server, db: Engine) -> None:
    r = ref()
    xml = with_reference(fixture("omvDi01AanbiedenAanvraag"), r)
    start, end = xml.index(b"<LVO:locatie>"), xml.index(b"</LVO:locatie>")
    answer = post(server.soap_url, xml[:start] + b"<LVO:locatie>" + xml[end:])
    assert answer.code == "StUF055"
    assert "locatie" in answer.fo03.findtext("StUF:body/StUF:omschrijving", namespaces=NS)
    assert rows(db, r) == [("rejected", "StUF055")]
