"""StUF building blocks without a server: stuurgegevens, Bv03/Fo03 and the hardened XML parser."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest
from lxml import etree

from adapter.schemas import SchemaSet
from adapter.stuf import berichten
from adapter.stuf.fouten import DETAILS_MAX, OMSCHRIJVING_MAX, Foutcode, StufFout
from adapter.stuf.namespaces import STUF
from adapter.stuf.stuurgegevens import (
    Stuurgegevens,
    Systeem,
    new_referentienummer,
    parse_stuurgegevens,
    reply_stuurgegevens,
    stuurgegevens_element,
    tijdstip,
)
from adapter.validation import message_of
from adapter.xmlsafe import Limits, XmlRejected, parse
from tests.conftest import FIXTURES, SHARED, needs_shared

NS = {"StUF": STUF}
OFFICIAL_STUF = SHARED / "reference" / "stuf0301" / "0301" / "stuf0301.xsd"

OLO = Systeem("00000001800866472000", "OLO", "LOKET", "gebruiker1")
ZAAKSYSTEEM = Systeem("00000001002564440000", "ZAAKSYSTEEM")
OWN = Systeem("00000001002564440000", "ADAPTER")
REQUEST = Stuurgegevens(
    berichtcode="Di01",
    zender=OLO,
    ontvanger=ZAAKSYSTEEM,
    referentienummer="OLO-2026-000000123",
    tijdstip_bericht="20261123101500123",
    functie="AanbiedenAanvraag",
)


# -- stuurgegevens ---------------------------------------------------------------------------------


def test_reply_swaps_zender_and_ontvanger_and_refers_to_the_request() -> None:
    reply = reply_stuurgegevens(REQUEST, "Bv03", OWN)
    assert reply.berichtcode == "Bv03"
    assert reply.zender == ZAAKSYSTEEM
    assert reply.ontvanger == OLO
    assert reply.cross_refnummer == "OLO-2026-000000123"
    assert reply.referentienummer and reply.referentienummer != REQUEST.referentienummer
    assert len(reply.referentienummer) <= 40
    assert reply.tijdstip_bericht and re.fullmatch(r"[0-9]{17}", reply.tijdstip_bericht)
    # A reply carries no entiteittype/functie of its own.
    assert reply.functie is None and reply.entiteittype is None


def test_reply_falls_back_when_the_request_lacks_parts() -> None:
    reply = reply_stuurgegevens(Stuurgegevens(), "Fo03", OWN)
    assert reply.zender == OWN
    assert reply.ontvanger == Systeem(applicatie="ONBEKEND")
    assert reply.cross_refnummer == "onbekend"

    long_ref = "R" * 60
    reply = reply_stuurgegevens(Stuurgegevens(zender=OLO, referentienummer=long_ref), "Fo03", OWN)
    assert reply.cross_refnummer == long_ref[:40]
    assert reply.zender == OWN  # the request named no ontvanger applicatie
    assert reply.ontvanger == OLO


def test_referentienummers_are_unique_across_threads() -> None:
    def batch(_: int) -> list[str]:
        return [reply_stuurgegevens(REQUEST, "Bv03", OWN).referentienummer or "" for _ in range(1250)]

    with ThreadPoolExecutor(8) as pool:
        refs = [r for chunk in pool.map(batch, range(8)) for r in chunk]
    assert len(refs) == 10_000
    assert len(set(refs)) == 10_000
    assert max(len(r) for r in refs) <= 40
    assert all(re.fullmatch(r"[A-Za-z0-9]+", r) for r in refs)


def test_referentienummer_prefix_and_length() -> None:
    ref = new_referentienummer("XY")
    assert ref.startswith("XY")
    assert len(ref) <= 40
    assert re.fullmatch(r"XY[0-9]+", ref)


def test_tijdstip_is_17_digits() -> None:
    assert re.fullmatch(r"[0-9]{17}", tijdstip())
    assert tijdstip(datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)) == "20260102030405678"
    assert tijdstip(datetime(2026, 12, 31, 23, 59, 59, 999, tzinfo=UTC)) == "20261231235959000"
    before = datetime.now(UTC).replace(microsecond=0)
    now = datetime.strptime(tijdstip()[:14], "%Y%m%d%H%M%S").replace(tzinfo=UTC)
    assert before <= now <= datetime.now(UTC)  # the current time, in UTC


def test_parse_stuurgegevens_from_a_fixture() -> None:
    root = parse((FIXTURES / "stuf-lvo" / "omvDi01AanbiedenAanvraag.xml").read_bytes())
    sg = parse_stuurgegevens(message_of(root))
    assert sg.berichtcode == "Di01"
    assert sg.zender == Systeem("00000001800866472000", "OLO")
    assert sg.ontvanger == Systeem("00000001002564440000", "ZAAKSYSTEEM")
    assert sg.referentienummer == "OLO-2026-000000123"
    assert sg.tijdstip_bericht == "20261123101500123"
    assert sg.functie == "AanbiedenAanvraag"
    assert sg.cross_refnummer is None


def test_stuurgegevens_element_round_trips() -> None:
    sg = reply_stuurgegevens(REQUEST, "Bv03", OWN)
    parent = etree.Element(f"{{{STUF}}}Bv03Bericht", nsmap={"StUF": STUF})
    stuurgegevens_element(sg, parent)
    assert parse_stuurgegevens(parent) == sg
    order = [etree.QName(c).localname for c in parent[0]]
    assert order == ["berichtcode", "zender", "ontvanger", "referentienummer", "tijdstipBericht", "crossRefnummer"]


def test_parse_stuurgegevens_is_lenient() -> None:
    el = etree.fromstring(
        f'<m xmlns:StUF="{STUF}"><stuurgegevens><StUF:zender><StUF:applicatie>  OLO </StUF:applicatie>'
        "<StUF:organisatie/></StUF:zender></stuurgegevens></m>"
    )
    sg = parse_stuurgegevens(el)
    assert sg.zender == Systeem(applicatie="OLO")
    assert sg.berichtcode is None
    assert parse_stuurgegevens(etree.fromstring("<m/>")) == Stuurgegevens()


# -- Bv03 / Fo03 -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def schemas() -> SchemaSet:
    return SchemaSet()


@pytest.fixture(scope="module")
def official() -> etree.XMLSchema:
    if not OFFICIAL_STUF.is_file():
        pytest.skip(f"{OFFICIAL_STUF} is absent")
    return etree.XMLSchema(etree.parse(str(OFFICIAL_STUF), etree.XMLParser(no_network=True)))


def answers() -> list[tuple[str, etree._Element]]:
    long = StufFout(Foutcode.STUF055, "o" * 500, "d" * 5000)
    built = [("bv03", berichten.bv03(REQUEST, OWN)), ("bv03-empty-request", berichten.bv03(Stuurgegevens(), OWN))]
    built += [(f"fo03-{f.code}", berichten.fo03(REQUEST, StufFout(f, f.standaard), OWN)) for f in Foutcode]
    built += [
        ("fo03-long", berichten.fo03(REQUEST, long, OWN)),
        ("fo03-details", berichten.fo03(REQUEST, StufFout(Foutcode.STUF046, "opslag", "database weg"), OWN)),
        ("fo03-empty-request", berichten.fo03(Stuurgegevens(), StufFout(Foutcode.STUF055, "kapot"), OWN)),
    ]
    # Through bytes and back, as they are stored and sent.
    return [(name, berichten.from_bytes(berichten.to_bytes(el))) for name, el in built]


ANSWERS = answers()


@pytest.mark.parametrize(("name", "answer"), ANSWERS, ids=[n for n, _ in ANSWERS])
def test_answers_are_valid_against_our_schema(schemas: SchemaSet, name: str, answer: etree._Element) -> None:
    assert schemas.validate(answer) == "xsd/stuf0301/stuf0301.xsd"


@needs_shared
@pytest.mark.parametrize(("name", "answer"), ANSWERS, ids=[n for n, _ in ANSWERS])
def test_answers_are_valid_against_the_official_schema(
    official: etree.XMLSchema, name: str, answer: etree._Element
) -> None:
    assert official.validate(answer), official.error_log


def test_fo03_content(schemas: SchemaSet) -> None:
    fo = berichten.fo03(REQUEST, StufFout(Foutcode.STUF013, "Zender onbekend", "OLO/LOKET"), OWN)
    assert fo.tag == f"{{{STUF}}}Fo03Bericht"
    assert fo.findtext("StUF:stuurgegevens/StUF:berichtcode", namespaces=NS) == "Fo03"
    assert fo.findtext("StUF:stuurgegevens/StUF:crossRefnummer", namespaces=NS) == "OLO-2026-000000123"
    assert fo.findtext("StUF:stuurgegevens/StUF:ontvanger/StUF:applicatie", namespaces=NS) == "OLO"
    assert fo.findtext("StUF:body/StUF:code", namespaces=NS) == "StUF013"
    assert fo.findtext("StUF:body/StUF:plek", namespaces=NS) == "client"
    assert fo.findtext("StUF:body/StUF:omschrijving", namespaces=NS) == "Zender onbekend"
    assert fo.findtext("StUF:body/StUF:details", namespaces=NS) == "OLO/LOKET"
    assert berichten.fo03_code(fo) == "StUF013"
    server = berichten.fo03(REQUEST, StufFout(Foutcode.STUF046, "opslag"), OWN)
    assert server.findtext("StUF:body/StUF:plek", namespaces=NS) == "server"
    assert server.find("StUF:body/StUF:details", namespaces=NS) is None
    assert berichten.fo03_code(berichten.bv03(REQUEST, OWN)) is None


def test_fo03_clips_omschrijving_and_details() -> None:
    fo = berichten.fo03(REQUEST, StufFout(Foutcode.STUF055, "o" * 500, "d" * 5000), OWN)
    omschrijving = fo.findtext("StUF:body/StUF:omschrijving", namespaces=NS)
    details = fo.findtext("StUF:body/StUF:details", namespaces=NS)
    assert omschrijving is not None and details is not None
    assert len(omschrijving) == OMSCHRIJVING_MAX == 200
    assert len(details) == DETAILS_MAX == 1000
    assert omschrijving.endswith("…") and details.endswith("…")
    exact = StufFout(Foutcode.STUF055, "x" * 200, "y" * 1000)
    assert (exact.omschrijving, exact.details) == ("x" * 200, "y" * 1000)  # at the limit: untouched


def test_bv03_has_only_stuurgegevens() -> None:
    bv = berichten.bv03(REQUEST, OWN)
    assert bv.tag == f"{{{STUF}}}Bv03Bericht"
    assert [etree.QName(c).localname for c in bv] == ["stuurgegevens"]
    assert bv.findtext("StUF:stuurgegevens/StUF:zender/StUF:applicatie", namespaces=NS) == "ZAAKSYSTEEM"
    assert bv.findtext("StUF:stuurgegevens/StUF:ontvanger/StUF:gebruiker", namespaces=NS) == "gebruiker1"


# -- xmlsafe.parse ---------------------------------------------------------------------------------

DOCTYPES = {
    "plain": b'<!DOCTYPE a [<!ENTITY x "y">]><a>&x;</a>',
    "after-bom": b'\xef\xbb\xbf<!DOCTYPE a [<!ENTITY x "y">]><a>&x;</a>',
    "after-declaration": b'<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE a SYSTEM "file:///etc/passwd"><a/>',
    "after-comment": b'<!-- hello -->\n<!DOCTYPE a [<!ENTITY x SYSTEM "http://example.org/">]><a>&x;</a>',
    "after-all-three": b'\xef\xbb\xbf<?xml version="1.0"?>\n<!-- c --><?pi x?>\n  <!DOCTYPE a><a/>',
    "utf-16": '<?xml version="1.0" encoding="UTF-16"?><!DOCTYPE a [<!ENTITY x "y">]><a>&x;</a>'.encode("utf-16"),
    "billion-laughs": b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY l0 "ha"><!ENTITY l1 "&l0;&l0;&l0;&l0;">'
    b'<!ENTITY l2 "&l1;&l1;&l1;&l1;">]><l>&l2;</l>',
}


@pytest.mark.parametrize("name", sorted(DOCTYPES))
def test_parse_rejects_doctype(name: str) -> None:
    with pytest.raises(XmlRejected) as info:
        parse(DOCTYPES[name])
    assert "DOCTYPE" in str(info.value)
    assert info.value.line == 1
    assert str(info.value).startswith("line 1: ")


def nested(depth: int) -> bytes:
    return b"<a>" * depth + b"</a>" * depth


def test_parse_depth_limit() -> None:
    assert parse(nested(64)).tag == "a"
    with pytest.raises(XmlRejected) as info:
        parse(nested(65))
    assert "deeper than 64" in str(info.value)
    assert parse(nested(10), Limits(max_depth=10)) is not None
    with pytest.raises(XmlRejected, match="deeper than 10"):
        parse(nested(11), Limits(max_depth=10))


def test_parse_depth_reports_the_line() -> None:
    data = b"<a>\n" + b"<b>" * 5 + b"\n<c><d/></c>" + b"</b>" * 5 + b"</a>"
    with pytest.raises(XmlRejected) as info:
        parse(data, Limits(max_depth=6))
    assert info.value.line == 3


@pytest.mark.parametrize("data", [b"", b"   ", b"\n\t\r\n "])
def test_parse_rejects_empty_input(data: bytes) -> None:
    with pytest.raises(XmlRejected, match="empty body"):
        parse(data)


def test_parse_size_limit() -> None:
    data = b"<a>" + b"x" * 993 + b"</a>"
    assert len(data) == 1000
    assert parse(data, Limits(max_bytes=1000)).text == "x" * 993
    with pytest.raises(XmlRejected) as info:
        parse(data + b" ", Limits(max_bytes=1000))
    assert str(info.value) == "body of 1001 bytes exceeds the limit of 1000 bytes"


def test_parse_malformed_names_the_line() -> None:
    with pytest.raises(XmlRejected) as info:
        parse(b"<a>\n<b>\n</a>")
    assert info.value.line == 3
    assert str(info.value).startswith("line 3: not well-formed XML")


def test_parse_accepts_ordinary_documents_and_drops_comments_and_pis() -> None:
    root = parse(b'\xef\xbb\xbf<?xml version="1.0"?><!-- c --><a><?pi x?><!-- d --><b>t&amp;</b></a>')
    assert [c.tag for c in root] == ["b"]
    assert root[0].text == "t&"


def test_parse_a_real_fixture() -> None:
    root = parse((FIXTURES / "stuf-lvo" / "omvDi01AanbiedenAanvraag.xml").read_bytes())
    assert etree.QName(message_of(root)).localname == "omvDi01AanbiedenAanvraag"
