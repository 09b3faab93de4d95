"""STAM: our reconstructed schemas accept every fixture (and the contract examples) and refuse what the adapter
cannot work with; the verzoeknotificatie helpers and ``parse_stam_verzoek`` read them into the canonical model."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from lxml import etree

from adapter.loket import stam
from adapter.loket.stam_parse import is_kopiebericht, parse_stam_verzoek
from adapter.model import Adres, KadastraalPerceel, Organisatie, PuntRD, Soort
from tests.conftest import FIXTURES, ROOT, SHARED, needs_shared

STAM_FIXTURES = FIXTURES / "stam"
XSD_DIR = ROOT / "xsd"
GEMEENTE = "00000001002564440000"
OMGEVINGSDIENST = "00000001823288444000"
XS = "{http://www.w3.org/2001/XMLSchema}"


def _schema(ns: str) -> etree.XMLSchema:
    return etree.XMLSchema(etree.parse(str(XSD_DIR / stam.SCHEMA_FILES[ns])))


SCHEMAS = {ns: _schema(ns) for ns in stam.SCHEMA_FILES}


def _valid(root: etree._Element) -> tuple[bool, str]:
    schema = SCHEMAS[etree.QName(root).namespace or ""]
    return schema.validate(root), str(schema.error_log)


def _root(name: str) -> etree._Element:
    return etree.parse(str(STAM_FIXTURES / name)).getroot()


def _verzoek(name: str, own: set[str] | None = None, bestanden: dict[str, tuple[str, int, str]] | None = None):
    return parse_stam_verzoek(_root(f"verzoek-{name}.xml"), own if own is not None else {GEMEENTE}, bestanden)


# -- schemas ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", sorted(STAM_FIXTURES.glob("*.xml")), ids=lambda p: p.name)
def test_every_fixture_validates(path: Path) -> None:
    ok, errors = _valid(etree.parse(str(path)).getroot())
    assert ok, errors


@needs_shared
@pytest.mark.parametrize("name", ["verzoek-initieren.xml", "verzoeknotificatie.xml"])
def test_contract_examples_validate_and_fixtures_are_their_copies(name: str) -> None:
    contract = SHARED / "contract" / "stam" / name
    ok, errors = _valid(etree.parse(str(contract)).getroot())
    assert ok, errors
    copy = STAM_FIXTURES / ("verzoeknotificatie-initieren.xml" if name == "verzoeknotificatie.xml" else name)
    assert copy.read_bytes() == contract.read_bytes()


@pytest.mark.parametrize("xsd", sorted(stam.SCHEMA_FILES.values()))
def test_every_declaration_says_it_is_reconstructed(xsd: str) -> None:
    tree = etree.parse(str(XSD_DIR / xsd))
    docs = etree.XPath("xs:annotation/xs:documentation/text()", namespaces={"xs": XS[1:-1]})
    declarations = [el for tag in ("element", "complexType", "simpleType") for el in tree.iter(f"{XS}{tag}")]
    unmarked = [
        f"line {el.sourceline}: {el.get('name')}"
        for el in declarations
        if el.get("name") and "Reconstructed, not official" not in "".join(docs(el))
    ]
    assert len(declarations) > 10 and not unmarked


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("<vz:doel>Initiëren</vz:doel>", "<vz:doel>Vooroverleg</vz:doel>"),
        ("<vz:volgnummer>1</vz:volgnummer>", "<vz:volgnummer>0</vz:volgnummer>"),
        ("<vz:oin>00000001002564440000</vz:oin>", "<vz:oin>0000000100256444000</vz:oin>"),
        ("<vz:bsn>999993653</vz:bsn>", "<vz:bsn>99999365</vz:bsn>"),
        ("<vz:documentId>DOC-2026112300123-1</vz:documentId>", "<vz:documentId>../etc/passwd</vz:documentId>"),
        ("<vz:verzoeknummer>2026112300123</vz:verzoeknummer>", ""),
        ("<vz:bestandsnaam>bouwtekening.pdf</vz:bestandsnaam>", "<vz:bestandsnaam>a/b.pdf</vz:bestandsnaam>"),
        ("<vz:indiendatum>2026-11-23T10:15:00+01:00</vz:indiendatum>", "<vz:indiendatum>23-11-2026</vz:indiendatum>"),
    ],
)
def test_schema_is_strict_on_what_the_adapter_relies_on(old: str, new: str) -> None:
    text = (STAM_FIXTURES / "verzoek-initieren.xml").read_text(encoding="utf-8")
    assert old in text
    ok, _ = _valid(etree.fromstring(text.replace(old, new, 1).encode()))
    assert not ok


def test_notificatie_needs_its_keys() -> None:
    text = (STAM_FIXTURES / "verzoeknotificatie-initieren.xml").read_text(encoding="utf-8")
    for old, new in [("<vn:volgnummer>1</vn:volgnummer>", ""), ("Initiëren", "Initieren"), ("<vn:oin>0", "<vn:oin>x")]:
        ok, _ = _valid(etree.fromstring(text.replace(old, new, 1).encode()))
        assert not ok, (old, new)


# -- stam helpers -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["initieren", "conceptverzoek", "aanvullen", "intrekken", "kopiebericht"])
def test_notificatie_matches_its_verzoek(kind: str) -> None:
    n = stam.read_notificatie(_root(f"verzoeknotificatie-{kind}.xml"))
    v = _root(f"verzoek-{kind}.xml")
    assert n.sleutel == (stam.verzoeknummer_of(v), stam.volgnummer_of(v))
    assert n.doel == stam.doel_of(v)
    assert n.bevoegd_gezag_oin == stam.bevoegd_gezag_oin_of(v) == GEMEENTE
    assert n.uitvoerende_instantie_oin == stam.uitvoerende_instantie_oin_of(v)
    assert n.soort is stam.soort_of(n.doel)
    assert n.is_kopie({GEMEENTE}) is (kind == "kopiebericht")


def test_read_notificatie() -> None:
    n = stam.read_notificatie(_root("verzoeknotificatie-initieren.xml"))
    assert n == stam.Notificatie("2026112300123", 1, "Initiëren", GEMEENTE, GEMEENTE, "2026-11-23T10:15:02+01:00")
    assert n.soort is Soort.AANVRAAG
    with pytest.raises(ValueError, match="not a verzoeknotificatie"):
        stam.read_notificatie(_root("verzoek-initieren.xml"))


def test_doel_mapping_and_paths() -> None:
    assert stam.DOEL_SOORT == {
        "Initiëren": Soort.AANVRAAG,
        "Conceptverzoek": Soort.CONCEPTVERZOEK,
        "Aanvullen": Soort.AANVULLING,
        "Intrekken": Soort.INTREKKING,
    }
    assert stam.verzoekreferenties("2026112300123") == "/verzoeken/2026112300123/verzoekreferenties"
    assert stam.samenvatting("A/B") == "/verzoeken/A%2FB/samenvatting"
    assert stam.document("DOC-1") == "/documenten/DOC-1"
    assert stam.overdragen("1") == "/verzoeken/1/_overdragen"
    assert (stam.ZOEK, stam.OIN_HEADER) == ("/verzoeken/_zoek", "X-Oin")


# -- parse_stam_verzoek -----------------------------------------------------------------------------------


def test_parse_initieren() -> None:
    v = _verzoek("initieren")
    assert (v.bron, v.bericht, v.soort, v.nummer, v.volgnummer) == (
        "stam",
        "verzoek",
        Soort.AANVRAAG,
        "2026112300123",
        1,
    )
    assert (v.type, v.omschrijving, v.datum) == ("Aanvraag vergunning", "Dakkapel Dorpsstraat 1a", date(2026, 11, 23))
    assert v.bevoegd_gezag == v.uitvoerende_instantie == v.ontvanger == Organisatie(GEMEENTE, "Gemeente Voorbeeldstad")
    p = v.initiatiefnemer
    assert p is not None and p.natuurlijk
    assert (p.bsn, p.voorletters, p.voorvoegsel, p.geslachtsnaam) == ("999993653", "J.A.", "van der", "Berg")
    assert p.weergavenaam == "J.A. van der Berg" and p.emailadres == "j.vanderberg@example.org"
    assert p.correspondentieadres == Adres("Dorpsstraat", 1, "a", None, "1234AB", "Voorbeeldstad")
    assert v.gemachtigde is None
    (loc,) = v.locaties
    assert loc.adres == Adres("Dorpsstraat", 1, "a", None, "1234AB", "Voorbeeldstad", "0344200000123456")
    assert loc.percelen == (KadastraalPerceel("VBS01", "A", "1234"),)
    assert loc.punt_rd == PuntRD(155000.0, 463000.0) and v.hoofdlocatie == loc
    assert [(a.code, a.omschrijving) for a in v.activiteiten] == [
        ("nl.imow-gm0344.activiteit.BouwenDakkapel", "Bouwen van een dakkapel")
    ]
    assert [(s.vraag_id, s.antwoord) for s in v.specificaties] == [("Q-1001", "3"), ("Q-1002", None)]
    assert [(b.id, b.bestandsnaam, b.documenttype, b.vertrouwelijk, b.bestand) for b in v.bijlagen] == [
        ("DOC-2026112300123-1", "bouwtekening.pdf", "Bouwtekening", False, None),
        ("DOC-2026112300123-2", "situatietekening.pdf", None, False, None),
    ]
    assert v.bron_xml and etree.fromstring(v.bron_xml).findtext(f"{{{stam.VERZOEK}}}verzoeknummer") == v.nummer


def test_parse_fills_downloaded_files() -> None:
    sha = "ab" * 32
    v = _verzoek("initieren", bestanden={"DOC-2026112300123-2": ("files/ab/abab", 2048, sha)})
    b1, b2 = v.bijlagen
    assert (b1.bestand, b1.grootte, b1.sha256, b1.heeft_inhoud) == (None, None, None, False)
    assert (b2.bestand, b2.grootte, b2.sha256, b2.heeft_inhoud, b2.omvang) == ("files/ab/abab", 2048, sha, True, 2048)


def test_parse_conceptverzoek_company_nine_zeros_and_locations() -> None:
    v = _verzoek("conceptverzoek")
    assert (v.soort, v.nummer, v.uitvoerende_instantie, v.ontvanger) == (
        Soort.CONCEPTVERZOEK, "2026112400456", None, Organisatie(GEMEENTE, "Gemeente Voorbeeldstad"),
    )  # fmt: skip
    i = v.initiatiefnemer
    assert i is not None and not i.natuurlijk
    assert (i.kvk_nummer, i.vestigingsnummer, i.naam, i.weergavenaam) == (
        "69599084", "000038509504", "Voorbeeld Metaal B.V.", "Voorbeeld Metaal B.V.",
    )  # fmt: skip
    assert i.correspondentieadres == Adres("Postbus", 1200, postcode="1230ZZ", woonplaats="Voorbeeldstad")
    g = v.gemachtigde
    assert g is not None and g.natuurlijk and g.bsn is None and g.geslachtsnaam == "Jansen"  # nine zeros = no BSN
    first, second = v.locaties
    assert v.hoofdlocatie is first and first.adres is not None and first.adres.huisnummertoevoeging == "A"
    assert first.percelen == () and first.punt_rd is None  # polygon stays in bron_xml
    assert second.adres is None and [p.perceelnummer for p in second.percelen] == ["77", "78"]
    assert [a.code.rsplit(".", 1)[1] for a in v.activiteiten] == ["BouwenBedrijfsgebouw", "MilieubelastendeActiviteit"]
    assert [(s.vraag_id, s.antwoord) for s in v.specificaties] == [("Q-2001", "Staal; Glas"), ("Q-2002", None)]
    assert [(b.id[-1], b.documenttype, b.vertrouwelijk, b.mime_type) for b in v.bijlagen] == [
        ("1", "Plattegrond", False, None),
        ("2", "Beveiligingsplan", True, "application/pdf"),
        ("3", None, False, "application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
    ]


def test_parse_aanvullen_and_intrekken() -> None:
    a, i = _verzoek("aanvullen"), _verzoek("intrekken")
    assert (a.soort, a.nummer, a.volgnummer, a.datum) == (Soort.AANVULLING, "2026112300123", 2, date(2026, 11, 30))
    assert (i.soort, i.nummer, i.volgnummer) == (Soort.INTREKKING, "2026112300123", 3)
    # Every version is a full snapshot: the aanvulling lists the earlier documents again plus one new one.
    assert [b.id for b in a.bijlagen] == [f"DOC-2026112300123-{n}" for n in (1, 2, 3)]
    new = set(b.id for b in a.bijlagen) - set(b.id for b in _verzoek("initieren").bijlagen)
    assert new == {"DOC-2026112300123-3"}


def test_kopiebericht() -> None:
    gemeente = _verzoek("kopiebericht", {GEMEENTE})
    assert gemeente.uitvoerende_instantie == Organisatie(OMGEVINGSDIENST, "Omgevingsdienst Voorbeeldregio")
    assert is_kopiebericht(gemeente, {GEMEENTE})
    assert gemeente.ontvanger is not None and gemeente.ontvanger.oin == GEMEENTE
    od = _verzoek("kopiebericht", {OMGEVINGSDIENST})
    assert not is_kopiebericht(od, {OMGEVINGSDIENST})
    assert od.ontvanger is not None and od.ontvanger.oin == OMGEVINGSDIENST
    assert not is_kopiebericht(od, {GEMEENTE, OMGEVINGSDIENST})
    for name in ("initieren", "conceptverzoek", "aanvullen"):
        assert not is_kopiebericht(_verzoek(name), {GEMEENTE}), name


def test_ontvanger_when_nothing_is_ours() -> None:
    v = _verzoek("kopiebericht", set())
    assert v.ontvanger is not None and v.ontvanger.oin == GEMEENTE


@pytest.mark.parametrize("role", ["initiatiefnemer", "gemachtigde"])
def test_nine_zeros_bsn_is_no_bsn(role: str) -> None:
    text = (STAM_FIXTURES / "verzoek-initieren.xml").read_text(encoding="utf-8").replace("999993653", "000000000")
    if role == "gemachtigde":
        text = text.replace("vz:initiatiefnemer>", "vz:gemachtigde>")
    root = etree.fromstring(text.encode())
    assert _valid(root)[0]
    p = getattr(parse_stam_verzoek(root, {GEMEENTE}), role)
    assert p is not None and p.bsn is None and p.geslachtsnaam == "Berg"


def test_parse_refuses_other_elements() -> None:
    with pytest.raises(ValueError, match="not a STAM verzoek"):
        parse_stam_verzoek(_root("verzoeknotificatie-initieren.xml"), {GEMEENTE})
