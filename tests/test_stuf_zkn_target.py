"""StUF-ZKN (ZDS 1.1 / 1.2) target: every outgoing message validates against the official XSD set of its
dialect and carries the SOAPAction the official WSDLs bind to it; end to end over HTTP against the fake
zaaksysteem (which validates both too); faults become TargetErrors naming the StUF code. Exactly once
through the real outbox is in ``test_stuf_zkn_exactly_once.py``.
"""

from __future__ import annotations

import base64
import dataclasses
import functools
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from lxml import etree
from pydantic import ValidationError

from adapter.errors import TargetError, WaitingError
from adapter.loket.lvo_parse import parse_verzoek
from adapter.mapping.opdracht import DocumentOpdracht, Opdracht, Profiel, ZaakOpdracht
from adapter.model import Persoon, Verzoek
from adapter.simulation.fake_zkn import FakeZkn, serving
from adapter.stuf.stuurgegevens import Systeem
from adapter.targets.base import Result
from adapter.targets.stuf_zkn import messages as m
from adapter.targets.stuf_zkn.client import StufFault, StufZknClient
from adapter.targets.stuf_zkn.options import StufZknOptions
from adapter.targets.stuf_zkn.plugin import StufZknTarget
from adapter.targets.stuf_zkn.schemas import load_schema, wsdl_operations
from adapter.targets.stuf_zkn.zds import OPERATIONS
from tests.conftest import FIXTURES, SHARED, free_port, needs_shared

REFERENCE = SHARED / "reference"
SOAP = "http://schemas.xmlsoap.org/soap/envelope/"
DIALECTS = ("zds-1.2", "zds-1.1")
OIN = "00000001002564440000"

WSDL = "http://schemas.xmlsoap.org/wsdl/"
WSDL_SOAP = "http://schemas.xmlsoap.org/wsdl/soap/"


# -- helpers -----------------------------------------------------------------------------------------------


def verzoek(name: str = "omvDi01AanbiedenAanvraag") -> Verzoek:
    return parse_verzoek(etree.parse(FIXTURES / "stuf-lvo" / f"{name}.xml").getroot()[0][0], OIN)


def profiel(**kw: Any) -> Profiel:
    values: dict[str, Any] = {f.name: None for f in dataclasses.fields(Profiel)}  # fields added later: unset
    values |= {
        "omschrijving": "Dakkapel plaatsen, Dorpsstraat 1a",
        "toelichting": "Aanvraag 1234567 via het Omgevingsloket",
        "bronorganisatie": "002564440",
        "verantwoordelijke_organisatie": "002564440",
        "vertrouwelijkheidaanduiding": "zaakvertrouwelijk",
        "roltype_initiator": "initiator",
        "roltype_gemachtigde": "gemachtigde",
        "statustype_start": 1,
        "statustype_intrekking": 9,
        "zaak_identificatie": None,
        "kenmerk_bron": "Omgevingsloket",
    }
    values.update(kw)
    return Profiel(**values)


def opdracht(v: Verzoek, **profiel_kw: Any) -> Opdracht:
    p = profiel(**profiel_kw)
    docs = tuple(
        DocumentOpdracht(
            b, b.documenttype or "Bijlage", "vertrouwelijk" if b.vertrouwelijk else "openbaar", b.bestandsnaam
        )
        for b in v.bijlagen
    )
    zaken = (ZaakOpdracht("ZT-OMV", p),) if v.soort.creates_zaak else ()
    return Opdracht("zaaksysteem", v, zaken=zaken, documenten=docs, profiel=None if zaken else p)


class MemorySteps:
    """A first, uninterrupted run in a dict (zaak links in ``links``, shared by later deliveries).

    Only for single runs: anything about retries goes through the real outbox and ``DbSteps``
    (``test_stuf_zkn_exactly_once.py``), so no test relies on a double's idea of uncertainty.
    """

    def __init__(self, links: dict[tuple[str, str], Result] | None = None) -> None:
        self.state: dict[str, tuple[str, Result | None]] = {}
        self.links: dict[tuple[str, str], Result] = {} if links is None else links
        self.documents: dict[tuple[str, str, str], Result] = {}
        self.calls: list[str] = []

    def result(self, key: str) -> Result | None:
        state, result = self.state.get(key, ("", None))
        return result if state == "done" else None

    def was_started(self, key: str) -> bool:
        return False

    def start(self, key: str) -> None:
        self.state[key] = ("started", None)

    def done(self, key: str, result: Result, recoverable: bool = False) -> None:
        self.state[key] = ("done", result)

    def zaak(self, nummer: str, zaaktype: str | None = None) -> Result | None:
        for (n, zt), link in self.links.items():
            if n == nummer and zaaktype in (None, zt):
                return link
        return None

    def zaken(self, nummer: str) -> list[Result]:
        return [link for (n, _), link in self.links.items() if n == nummer]

    def link_zaak(self, nummer: str, zaaktype: str, url: str, identificatie: str | None) -> None:
        self.links.setdefault((nummer, zaaktype), {"url": url, "identificatie": identificatie, "zaaktype": zaaktype})

    def document(self, nummer: str, zaak: str, bijlage: str) -> Result | None:
        return self.documents.get((nummer, zaak, bijlage))

    def link_document(
        self, nummer: str, zaken: Sequence[str], bijlage: str, identificatie: str, omvang: int | None
    ) -> None:
        for zaak in zaken:
            self.documents.setdefault((nummer, zaak, bijlage), {"identificatie": identificatie, "omvang": omvang})

    def called(self, call: str) -> None:
        self.calls.append(call)


def ctx(dialect: str) -> m.Context:
    now = datetime(2026, 11, 23, 10, 30, 0, tzinfo=UTC)
    return m.Context(dialect, Systeem("00000001002564440000", "LOKETADAPTER"), Systeem("1234", "ZAAKSYS"), now)


def options(dialect: str, url: str, **kw: Any) -> StufZknOptions:
    return StufZknOptions.model_validate(
        {
            "kind": "stuf-zkn",
            "url": url,
            "dialect": dialect,
            "zender": {"organisatie": OIN, "applicatie": "LOKETADAPTER"},
            "ontvanger": {"organisatie": "1234", "applicatie": "ZAAKSYS"},
            "timeout": 5,
            **kw,
        }
    )


@pytest.fixture(scope="module", params=DIALECTS)
def dialect(request: pytest.FixtureRequest) -> str:
    if not SHARED.is_dir():
        pytest.skip("../shared (official ZDS schemas and WSDLs) is absent")
    return request.param


_SCHEMAS: dict[str, etree.XMLSchema] = {}


def schema(dialect: str) -> etree.XMLSchema:
    if dialect not in _SCHEMAS:
        _SCHEMAS[dialect] = load_schema(dialect, REFERENCE / dialect)
    return _SCHEMAS[dialect]


def assert_valid(dialect: str, el: etree._Element) -> None:
    s = schema(dialect)
    standalone = etree.fromstring(etree.tostring(el))
    assert s.validate(standalone), "\n".join(f"{e.line}: {e.message}" for e in s.error_log)


def new_fake(dialect: str, **kw: Any) -> FakeZkn:
    """The fake with the official XSDs and WSDLs of ``dialect`` (both folders hold their WSDLs)."""
    return FakeZkn(REFERENCE / dialect, dialect, wsdl_dir=REFERENCE / dialect, **kw)


@pytest.fixture
def fake(dialect: str) -> Iterator[tuple[FakeZkn, str]]:
    f = new_fake(dialect)
    with serving(f.app) as url:
        yield f, url


@functools.cache
def official_operations(dialect: str) -> dict[str, tuple[str, str]]:
    """WSDL operation name -> (SOAPAction, body element), read here with plain lxml from the official
    WSDLs (independently of the fake's own reader)."""
    roots = [etree.parse(str(f)).getroot() for f in sorted((REFERENCE / dialect).rglob("*.wsdl"))]
    elements: dict[tuple[str, str], str] = {}
    for root in roots:
        for message in root.iterfind(f"{{{WSDL}}}message"):
            part = message.find(f"{{{WSDL}}}part")
            prefix, _, local = part.get("element").partition(":")
            elements[(root.get("targetNamespace"), message.get("name"))] = f"{{{part.nsmap[prefix]}}}{local}"
    out: dict[str, tuple[str, str]] = {}
    for root in roots:
        for op in root.iterfind(f"{{{WSDL}}}binding/{{{WSDL}}}operation"):
            action = op.find(f"{{{WSDL_SOAP}}}operation").get("soapAction")
            abstract = root.find(f"{{{WSDL}}}portType/{{{WSDL}}}operation[@name='{op.get('name')}']")
            prefix, _, local = abstract.find(f"{{{WSDL}}}input").get("message").partition(":")
            out[op.get("name")] = (action, elements[(abstract.nsmap[prefix], local)])
    return out


def official(dialect: str, operation: str) -> tuple[str, str]:
    """(SOAPAction, body element) the official WSDL binds to ``operation`` (e.g. ``creeerZaak``)."""
    found = [v for name, v in official_operations(dialect).items() if name.startswith(f"{operation}_")]
    assert len(found) == 1, (dialect, operation, found)
    return found[0]


def target(dialect: str, url: str, **kw: Any) -> StufZknTarget:
    return StufZknTarget("zaaksysteem", options(dialect, url, **kw))


# -- the messages against the official schemas ----------------------------------------------------------


def all_messages(dialect: str) -> list[tuple[str, m.Bericht]]:
    v = verzoek()
    o = opdracht(v)
    c = ctx(dialect)
    kvk_only = Persoon(natuurlijk=False, kvk_nummer="12345678", naam="Bouwbedrijf B.V.")
    nieuw = verzoek("vrgDi01WijzigGemachtigde").gemachtigde
    assert nieuw is not None
    out = [
        ("genereerZaakIdentificatie", m.genereer_zaak_identificatie(c)),
        ("genereerDocumentIdentificatie", m.genereer_document_identificatie(c)),
        ("creeerZaak: natuurlijk persoon + vestiging", m.creeer_zaak(c, o.zaken[0], v, "ZAAK-000001")),
        (
            "creeerZaak: niet-natuurlijk persoon by KvK",
            m.creeer_zaak(c, o.zaken[0], dataclasses.replace(v, initiatiefnemer=kvk_only), "ZAAK-000002"),
        ),
        (
            "creeerZaak: no initiator",
            m.creeer_zaak(c, o.zaken[0], dataclasses.replace(v, initiatiefnemer=None, gemachtigde=None), "Z-0003"),
        ),
        ("actualiseerZaakstatus", m.actualiseer_zaakstatus(c, "ZAAK-000001", "ZT-OMV", 1, "Ontvangen", None)),
        ("actualiseerZaakstatus: medewerker", m.actualiseer_zaakstatus(c, "ZAAK-000001", "ZT-OMV", 12, None, "mdw-1")),
        (
            "updateZaak: gemachtigde natuurlijk persoon",
            m.update_zaak_gemachtigde(c, "ZAAK-000001", nieuw, "g (bericht X)"),
        ),
        ("updateZaak: gemachtigde by KvK", m.update_zaak_gemachtigde(c, "ZAAK-000001", kvk_only, "g")),
        ("geefZaakdetails", m.geef_zaakdetails(c, "ZAAK-000001")),
        ("geefLijstZaakdocumenten", m.geef_lijst_zaakdocumenten(c, "ZAAK-000001")),
    ]
    for d in o.documenten:
        label = f"voegZaakdocumentToe: {d.bijlage.id} ({'with' if d.bijlage.inhoud else 'without'} inhoud)"
        out.append(
            (label, m.voeg_zaakdocument_toe(c, d, v, f"DOC-{d.bijlage.id}", ["ZAAK-000001", "ZAAK-2"], "J.A. Berg"))
        )
    return out


@needs_shared
@pytest.mark.parametrize("dialect_", DIALECTS)
def test_every_message_validates_against_the_official_set(dialect_: str) -> None:
    msgs = all_messages(dialect_)
    assert len(msgs) == 13
    for label, bericht in msgs:
        s = schema(dialect_)
        ok = s.validate(etree.fromstring(etree.tostring(bericht.body)))
        assert ok, f"{dialect_} {label}: " + "; ".join(f"{e.line}: {e.message}" for e in s.error_log)
        assert bericht.referentienummer and len(bericht.referentienummer) <= 40
        # the envelope is SOAP 1.1 with exactly this message in its Body
        env = etree.fromstring(bericht.envelope())
        assert env.tag == f"{{{SOAP}}}Envelope"
        assert env[1][0].tag == bericht.body.tag
    assert len({b.referentienummer for _, b in msgs}) == len(msgs), "a referentienummer is unique per message"


@needs_shared
def test_each_dialect_rejects_the_others_message() -> None:
    """The two sets are not interchangeable: a target validates against the one it speaks."""
    v = verzoek()
    for mine, other in (("zds-1.2", "zds-1.1"), ("zds-1.1", "zds-1.2")):
        body = m.creeer_zaak(ctx(mine), opdracht(v).zaken[0], v, "ZAAK-000001").body
        assert not schema(other).validate(etree.fromstring(etree.tostring(body)))


@needs_shared
@pytest.mark.parametrize("dialect_", DIALECTS)
@pytest.mark.parametrize(
    ("path", "attribute"),
    [
        (".//{*}isVan", "verwerkingssoort"),
        (".//{*}heeftAlsInitiator", "entiteittype"),
        (".//{*}authentiek", "metagegeven"),
        (".//{*}object", "entiteittype"),
    ],
)
def test_the_validation_notices_a_missing_stuf_attribute(dialect_: str, path: str, attribute: str) -> None:
    """Guards the guard: Open Forms #6171 was exactly such a missing attribute."""
    v = verzoek()
    body = etree.fromstring(etree.tostring(m.creeer_zaak(ctx(dialect_), opdracht(v).zaken[0], v, "ZAAK-1").body))
    del body.find(path).attrib[f"{{{m.STUF}}}{attribute}"]
    assert not schema(dialect_).validate(body)


@needs_shared
@pytest.mark.parametrize("dialect_", DIALECTS)
def test_soap_actions_and_elements_are_the_official_wsdls(dialect_: str) -> None:
    """Every message the target sends carries the SOAPAction the official WSDL binds to its body element."""
    msgs = all_messages(dialect_)
    for label, bericht in msgs:
        action, element = official(dialect_, bericht.operation)
        assert bericht.soap_action == action, label
        assert bericht.body.tag == element, label
    assert {b.operation for _, b in msgs} == set(OPERATIONS), "every operation the target knows is checked"


def test_message_contents() -> None:
    v = verzoek()
    o = opdracht(v)
    body = m.creeer_zaak(ctx("zds-1.2"), o.zaken[0], v, "ZAAK-000001").body
    ns = {"ZKN": m.ZKN, "BG": m.BG, "StUF": m.STUF}
    assert body.findtext("ZKN:object/ZKN:isVan/ZKN:gerelateerde/ZKN:code", namespaces=ns) == "ZT-OMV"
    assert body.findtext("ZKN:object/ZKN:kenmerk/ZKN:kenmerk", namespaces=ns) == "1234567"
    assert body.findtext("ZKN:object/ZKN:kenmerk/ZKN:bron", namespaces=ns) == "Omgevingsloket"
    assert body.findtext("ZKN:object/ZKN:startdatum", namespaces=ns) == "20261123"
    ini = "ZKN:object/ZKN:heeftAlsInitiator/ZKN:gerelateerde/ZKN:natuurlijkPersoon/BG:inp.bsn"
    assert body.findtext(ini, namespaces=ns) == "999993653"
    doc = m.voeg_zaakdocument_toe(ctx("zds-1.2"), o.documenten[0], v, "DOC-1", ["ZAAK-000001"], "J.A. Berg").body
    inhoud = doc.find("ZKN:object/ZKN:inhoud", ns)
    assert base64.b64decode(inhoud.text) == v.bijlagen[0].inhoud
    assert inhoud.get(f"{{{m.XMIME}}}contentType") == "application/pdf"
    assert inhoud.get(f"{{{m.STUF}}}bestandsnaam") == "1234567_Bouwtekening.pdf"
    assert doc.findtext("ZKN:object/ZKN:taal", namespaces=ns) == "nld"
    assert doc.findtext("ZKN:object/ZKN:vertrouwelijkAanduiding", namespaces=ns) == "OPENBAAR"
    with pytest.raises(ValueError, match=r"1\.\.10"):
        m.creeer_zaak(ctx("zds-1.2"), ZaakOpdracht("ZAAKTYPE-TE-LANG", profiel()), v, "ZAAK-1")


# -- the fake's own answers --------------------------------------------------------------------------------


def test_fake_du02_answers_validate(fake: tuple[FakeZkn, str], dialect: str) -> None:
    _, url = fake
    for op in ("genereerZaakIdentificatie", "genereerDocumentIdentificatie"):
        bericht = (
            m.genereer_zaak_identificatie if op.startswith("genereerZaak") else m.genereer_document_identificatie
        )(ctx(dialect))
        r = httpx.post(url, content=bericht.envelope(), headers={"SOAPAction": f'"{bericht.soap_action}"'})
        assert r.status_code == 200, r.text
        assert_valid(dialect, etree.fromstring(r.content)[0][0])


def post_as(url: str, bericht: m.Bericht, soap_action: str) -> httpx.Response:
    return httpx.post(url, content=bericht.envelope(), headers={"SOAPAction": f'"{soap_action}"'}, timeout=30)


def test_fake_refuses_a_soapaction_the_wsdl_does_not_bind_to_the_message(
    fake: tuple[FakeZkn, str], dialect: str
) -> None:
    _, url = fake
    genereer = m.genereer_zaak_identificatie(ctx(dialect))
    creeer = m.creeer_zaak(ctx(dialect), opdracht(verzoek()).zaken[0], verzoek(), "ZAAK-000001")
    other = "zds-1.1" if dialect == "zds-1.2" else "zds-1.2"
    # the other dialect's action: not an operation of these WSDLs
    r = post_as(url, genereer, official(other, "creeerZaak")[0])
    assert r.status_code == 500 and b"StUF025" in r.content and b"Fo02Bericht" in r.content
    # an action of these WSDLs, but bound to another message than the one carried
    r = post_as(url, genereer, official(dialect, "creeerZaak")[0])
    assert r.status_code == 500 and b"hoort niet bij SOAPAction" in r.content
    r = post_as(url, creeer, official(dialect, "voegZaakdocumentToe")[0])
    assert r.status_code == 500 and b"hoort niet bij SOAPAction" in r.content
    if dialect == "zds-1.1":
        # ZDS 1.1 binds creeerZaak and actualiseerZaakstatus to the same zakLk01: the mutatiesoort tells
        r = post_as(url, creeer, official(dialect, "actualiseerZaakstatus")[0])
        assert r.status_code == 500 and b"mutatiesoort W" in r.content
    r = httpx.post(url, content=b"<not xml", headers={"SOAPAction": official(dialect, "creeerZaak")[0]})
    assert r.status_code == 500 and b"StUF055" in r.content
    # and the official pairing is accepted
    assert post_as(url, genereer, official(dialect, "genereerZaakIdentificatie")[0]).status_code == 200


def test_the_fakes_wsdl_reader_agrees_with_a_plain_reading(dialect: str) -> None:
    ops = {op.name: (op.soap_action, op.input) for op in wsdl_operations(REFERENCE / dialect)}
    assert ops == official_operations(dialect)
    assert any(name.startswith("creeerZaak_") for name in ops)


def test_fake_la01_answers_validate(fake: tuple[FakeZkn, str], dialect: str) -> None:
    """The vragen a retry asks are answered with what the scope asks, in the official La01 shape."""
    f, url = fake
    target(dialect, url).deliver(opdracht(verzoek()), MemorySteps())
    zaak_id = next(iter(f.zaken))
    f.add_status(zaak_id, 2, "20261123103000123", None)  # a status without toelichting: nil in the answer
    nieuw = verzoek("vrgDi01WijzigGemachtigde").gemachtigde
    assert nieuw is not None
    for bericht in (
        m.update_zaak_gemachtigde(ctx(dialect), zaak_id, nieuw, "gemachtigde (bericht X)"),
        m.update_zaak_gemachtigde(ctx(dialect), zaak_id, Persoon(natuurlijk=False, kvk_nummer="12345678"), "nnp"),
    ):
        assert post_as(url, bericht, official(dialect, "updateZaak")[0]).status_code == 200
    assert [g["toelichting"] for g in f.zaken[zaak_id]["gemachtigden"]] == [None, "gemachtigde (bericht X)", "nnp"]
    for bericht in (m.geef_zaakdetails(ctx(dialect), zaak_id), m.geef_lijst_zaakdocumenten(ctx(dialect), zaak_id)):
        r = post_as(url, bericht, official(dialect, bericht.operation)[0])
        assert r.status_code == 200, r.text
        answer = etree.fromstring(r.content)[0][0]
        assert_valid(dialect, answer)
        assert zaak_id in answer.itertext()
    r = post_as(url, m.geef_zaakdetails(ctx(dialect), "ZAAK-ONBEKEND"), official(dialect, "geefZaakdetails")[0])
    assert r.status_code == 200
    assert_valid(dialect, etree.fromstring(r.content)[0][0])


# -- end to end over HTTP ------------------------------------------------------------------------------------


def test_deliver_the_example_aanvraag(fake: tuple[FakeZkn, str], dialect: str) -> None:
    f, url = fake
    v = verzoek()
    steps = MemorySteps()
    summary = target(dialect, url).deliver(opdracht(v), steps)

    assert len(f.zaken) == 1
    zaak = next(iter(f.zaken.values()))
    assert zaak["zaaktype"] == "ZT-OMV"
    assert zaak["kenmerken"] == [("1234567", "Omgevingsloket")]
    assert zaak["initiator"] == {
        "soort": "natuurlijkPersoon",
        "bsn": "999993653",
        "vestigingsnummer": None,
        "naam": "Berg",
    }
    assert zaak["gemachtigde"]["vestigingsnummer"] == "000012345678"
    assert f.count("creeerZaak") == 1
    assert f.count("voegZaakdocumentToe") == len(v.bijlagen) == 2
    by_titel = {d["titel"]: d for d in f.documenten.values()}
    assert by_titel["1234567_Bouwtekening.pdf"]["inhoud"] == v.bijlagen[0].inhoud
    assert by_titel["1234567_Bouwtekening.pdf"]["bestandsnaam"] == "1234567_Bouwtekening.pdf"
    assert by_titel["1234567_Bouwtekening.pdf"]["contentType"] == "application/pdf"
    assert by_titel["1234567_Foto_voorgevel.jpg"]["inhoud"] is None  # metadata only, bytes follow separately
    assert all(d["zaken"] == [zaak["identificatie"]] for d in f.documenten.values())
    assert [(s["zaak"], s["volgnummer"]) for s in f.statussen] == [(zaak["identificatie"], 1)]
    assert steps.links[("1234567", "ZT-OMV")]["identificatie"] == zaak["identificatie"]
    assert "zonder inhoud" in summary and zaak["identificatie"] in summary
    assert len(steps.calls) == 1 + 1 + 2 * 2 + 1


def test_a_fault_becomes_a_target_error_naming_the_stuf_code(fake: tuple[FakeZkn, str], dialect: str) -> None:
    _, url = fake
    t = target(dialect, url)
    t.deliver(opdracht(verzoek(), zaak_identificatie="ZAAK-VAST-1"), MemorySteps())
    # a second verzoek with the same deterministic identificatie: the zaaksysteem refuses it (Fo03)
    with pytest.raises(TargetError, match=r"creeerZaak .*StUF058: zaak ZAAK-VAST-1 bestaat al") as exc:
        t.deliver(opdracht(verzoek(), zaak_identificatie="ZAAK-VAST-1"), MemorySteps())
    assert isinstance(exc.value, StufFault) and exc.value.code == "StUF058"
    assert "\n" not in str(exc.value)


@pytest.mark.parametrize("style", ["stuf", "soap"])
def test_a_schema_fault_names_stuf055_and_the_schema_error(dialect: str, style: str) -> None:
    f = FakeZkn(REFERENCE / dialect, dialect, faultcode_style=style)
    with serving(f.app) as url:
        client = StufZknClient(options(dialect, url))
        bericht = m.creeer_zaak(ctx(dialect), opdracht(verzoek()).zaken[0], verzoek(), "ZAAK-000001")
        del bericht.body.find(".//{*}isVan").attrib[f"{{{m.STUF}}}verwerkingssoort"]
        with pytest.raises(
            StufFault, match=r"StUF055: Bericht niet conform het schema \(regel \d+: .*verwerkingssoort"
        ):
            client.send(bericht, ("Bv03",))


# -- client: lenient fault parsing, transport errors ------------------------------------------------------


def _client(handler: Any, **kw: Any) -> StufZknClient:
    return StufZknClient(options("zds-1.2", "http://zaaksysteem.test/zds", **kw), httpx.MockTransport(handler))


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (
            500,
            f'<s:Envelope xmlns:s="{SOAP}"><s:Body><s:Fault><faultcode>s:StUF058</faultcode>'
            "<faultstring>Proces voor afhandelen bericht geeft fout</faultstring></s:Fault></s:Body></s:Envelope>",
            "StUF058: Proces voor afhandelen bericht geeft fout",
        ),
        (
            500,
            f'<s:Envelope xmlns:s="{SOAP}"><s:Body><s:Fault><faultcode>s:Client</faultcode><faultstring>x</faultstring>'
            '<detail><Fo02Bericht xmlns="http://www.egem.nl/StUF/StUF0301"><stuurgegevens><berichtcode>Fo02'
            "</berichtcode></stuurgegevens><body><code>StUF055</code><plek>client</plek><omschrijving>Niet conform"
            "</omschrijving><details>regel 3</details></body></Fo02Bericht></detail></s:Fault></s:Body></s:Envelope>",
            "StUF055: Niet conform (regel 3)",
        ),
        (
            200,
            f'<s:Envelope xmlns:s="{SOAP}"><s:Body><StUF:Fo03Bericht xmlns:StUF="http://www.egem.nl/StUF/StUF0301">'
            "<StUF:body><StUF:code>StUF046</StUF:code><StUF:omschrijving>Opslaan mislukt</StUF:omschrijving>"
            "</StUF:body></StUF:Fo03Bericht></s:Body></s:Envelope>",
            "StUF046: Opslaan mislukt",
        ),
        (503, "Service Unavailable", "HTTP 503: Service Unavailable"),
        (200, "<html>hello</html>", "HTTP 200: not a SOAP envelope but <html>"),
    ],
)
def test_client_reads_faults_leniently(status: int, body: str, expected: str) -> None:
    c = _client(lambda request: httpx.Response(status, text=body))
    bericht = m.genereer_zaak_identificatie(ctx("zds-1.2"))
    with pytest.raises(TargetError, match=expected.replace("(", r"\(").replace(")", r"\)")):
        c.send(bericht, ("Bv03",))


def test_client_timeouts_and_refused_connections_are_target_errors() -> None:
    def timeout(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    with pytest.raises(TargetError, match="no answer within 5 s"):
        _client(timeout).send(m.genereer_zaak_identificatie(ctx("zds-1.2")), ("Du02",))
    closed = StufZknClient(options("zds-1.2", f"http://127.0.0.1:{free_port()}/zds"))
    with pytest.raises(TargetError, match="ConnectError"):
        closed.send(m.genereer_zaak_identificatie(ctx("zds-1.2")), ("Du02",))


def test_client_sends_the_soapaction_and_basic_auth() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, text=f'<s:Envelope xmlns:s="{SOAP}"><s:Body><x/></s:Body></s:Envelope>')

    c = StufZknClient(
        options("zds-1.1", "http://zaaksysteem.test/zds", username="u", password="p"), httpx.MockTransport(handler)
    )
    with pytest.raises(TargetError, match="expected Bv03"):
        c.send(m.creeer_zaak(ctx("zds-1.1"), opdracht(verzoek()).zaken[0], verzoek(), "ZAAK-1"), ("Bv03",))
    if SHARED.is_dir():
        assert seen[0].headers["SOAPAction"] == f'"{official("zds-1.1", "creeerZaak")[0]}"'
    assert seen[0].headers["SOAPAction"].startswith('"http')
    assert seen[0].headers["Authorization"].startswith("Basic ")


# -- plugin: check, catalogus, preview, follow-ups, options ---------------------------------------------------


def test_check_and_missing_in_catalogus(fake: tuple[FakeZkn, str], dialect: str) -> None:
    _, url = fake
    assert target(dialect, url).check() == []
    problems = target(dialect, url, ca_bundle="/nonexistent/ca.pem").check()
    assert any("ca_bundle /nonexistent/ca.pem does not exist" in p for p in problems)
    assert any("TLS/HTTP setup" in p for p in problems)  # reported, not a crash at start-up
    down = target(dialect, f"http://127.0.0.1:{free_port()}/zds").check()
    assert len(down) == 1 and "ConnectError" in down[0] and down[0].startswith("target zaaksysteem: ")
    refs = {"zaaktype": {"ZT-OMV", "VEEL-TE-LANGE-CODE"}, "statustype": {"1", "x"}, "informatieobjecttype": {"Foto"}}
    missing = target(dialect, url).missing_in_catalogus(refs)
    assert len(missing) == 2 and "VEEL-TE-LANGE-CODE" in missing[0] and "'x'" in missing[1]


def test_preview_sends_nothing_and_its_bodies_validate(fake: tuple[FakeZkn, str], dialect: str) -> None:
    f, url = fake
    calls = target(dialect, url).preview(opdracht(verzoek()))
    assert [c.step for c in calls] == [
        "zaakid:ZT-OMV",
        "zaak:ZT-OMV",
        "docid:1234567-1",
        "document:1234567-1",
        "docid:1234567-2",
        "document:1234567-2",
        "status:start:ZT-OMV",
    ]
    assert f.received.calls == []
    for c in calls:
        assert c.method == "POST" and c.endpoint == url and isinstance(c.body, str)
        assert_valid(dialect, etree.fromstring(c.body.encode()))


def test_follow_ups_wait_for_the_zaak_then_land_on_it(fake: tuple[FakeZkn, str], dialect: str) -> None:
    f, url = fake
    t = target(dialect, url, medewerker="behandelaar1")
    links: dict[tuple[str, str], Result] = {}
    aanvulling = opdracht(verzoek("vrgDi01IndienenAanvulling"))
    with pytest.raises(WaitingError) as waiting:
        t.deliver(aanvulling, MemorySteps(links))
    assert str(waiting.value) == "no zaak known yet for verzoek 1234567: waiting for its aanvraag"

    t.deliver(opdracht(verzoek()), MemorySteps(links))
    zaak_id = next(iter(f.zaken))
    summary = t.deliver(aanvulling, MemorySteps(links))
    assert summary.startswith(f"aanvulling bij zaak {zaak_id}")
    extra = [
        d for d in f.documenten.values() if d["titel"] == verzoek("vrgDi01IndienenAanvulling").bijlagen[0].bestandsnaam
    ]
    assert len(extra) == 1 and extra[0]["zaken"] == [zaak_id] and extra[0]["inhoud"]

    zonder = dataclasses.replace(verzoek("vrgDi01WijzigGemachtigde"), gemachtigde=None)
    summary = t.deliver(opdracht(zonder), MemorySteps(links))
    assert summary == f"wijziging_gemachtigde bij zaak {zaak_id}; geen gemachtigde in het bericht: niets bijgewerkt"

    zonder_statustype = opdracht(verzoek("vrgDi01IntrekkenAanvraag"), statustype_intrekking=None)
    summary = t.deliver(zonder_statustype, MemorySteps(links))
    assert summary.endswith("; geen statustype_intrekking in de mapping: geen status gezet"), summary

    summary = t.deliver(opdracht(verzoek("vrgDi01IntrekkenAanvraag")), MemorySteps(links))
    assert summary.startswith(f"intrekking op zaak {zaak_id}")
    assert [(s["volgnummer"], s["toelichting"]) for s in f.statussen] == [
        (1, "Ontvangen via het Omgevingsloket (bericht OLO-2026-000000123)"),
        (9, "Aanvrager ziet af van het plan. (bericht OLO-2026-000000201)"),
    ]


def test_options() -> None:
    o = options("zds-1.1", "https://zs.example.nl/zds", url_vrijeberichten="https://zs.example.nl/vrij")
    assert o.endpoint("ontvangasynchroon") == "https://zs.example.nl/zds"
    assert o.endpoint("vrijeberichten") == "https://zs.example.nl/vrij"
    good = o.model_dump(exclude_none=True)
    for bad in ({"onbekend": 1}, {"dialect": "zds-2.0"}, {"username": "u"}, {"url": "ftp://x"}, {"timeout": 0}):
        with pytest.raises(ValidationError):
            StufZknOptions.model_validate({**good, **bad})


def test_texts_reads_each_element_once_skips_empty_ones_and_collapses_whitespace() -> None:
    """The reader behind every vraag's answer: ZDS nests a name in itself (``kenmerk/kenmerk``), leaves
    elements empty (``xsi:nil``, ``StUF:noValue``) and may wrap a text over lines."""
    from adapter.targets.stuf_zkn.plugin import _texts

    answer = etree.fromstring(
        '<a xmlns:x="urn:x" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
        "<x:kenmerk><x:kenmerk>1234567</x:kenmerk><x:bron>OLO</x:bron></x:kenmerk>"
        '<x:kenmerk><x:kenmerk xsi:nil="true"/></x:kenmerk>'
        "<x:kenmerk><x:kenmerk>  Dorpsstraat\n   1a </x:kenmerk></x:kenmerk></a>"
    )
    assert _texts(answer, "kenmerk", "kenmerk") == ["1234567", "Dorpsstraat 1a"]
    assert _texts(answer, "bron") == ["OLO"] and _texts(answer, "onbekend") == []
