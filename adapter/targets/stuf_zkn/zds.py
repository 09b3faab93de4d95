"""The ZDS dialects and the XML plumbing every StUF-ZKN message shares: namespaces, the operation table
(message element and SOAPAction per dialect, WSDL port), stuurgegevens, the StUF attribute helpers and
the SOAP 1.1 envelope. ``messages`` builds the message contents on top of this.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from lxml import etree

from adapter.stuf.stuurgegevens import Systeem, new_referentienummer, tijdstip

STUF = "http://www.egem.nl/StUF/StUF0301"
ZKN = "http://www.egem.nl/StUF/sector/zkn/0310"
BG = "http://www.egem.nl/StUF/sector/bg/0310"
ZDS = "http://www.stufstandaarden.nl/koppelvlak/zds0120"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
XMIME = "http://www.w3.org/2005/05/xmlmime"
SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"

ZDS12 = "zds-1.2"
ZDS11 = "zds-1.1"

#: operation -> (ZDS 1.2 element, ZDS 1.1 element, ZDS 1.1 SOAPAction suffix, WSDL port)
OPERATIONS: dict[str, tuple[str, str, str, str]] = {
    "genereerZaakIdentificatie": (
        "genereerZaakIdentificatie_Di02",
        "genereerZaakIdentificatie_Di02",
        "genereerZaakIdentificatie_Di02",
        "vrijeberichten",
    ),
    "genereerDocumentIdentificatie": (
        "genereerDocumentIdentificatie_Di02",
        "genereerDocumentIdentificatie_Di02",
        "genereerDocumentIdentificatie_Di02",
        "vrijeberichten",
    ),
    "creeerZaak": ("creeerZaak_ZakLk01", "zakLk01", "creeerZaak_Lk01", "ontvangasynchroon"),
    "voegZaakdocumentToe": ("voegZaakdocumentToe_EdcLk01", "edcLk01", "voegZaakdocumentToe_Lk01", "ontvangasynchroon"),
    "actualiseerZaakstatus": (
        "actualiseerZaakstatus_ZakLk01",
        "zakLk01",
        "actualiseerZaakstatus_Lk01",
        "ontvangasynchroon",
    ),
    "updateZaak": ("updateZaak_ZakLk01", "zakLk01", "updateZaak_Lk01", "ontvangasynchroon"),
    "geefZaakdetails": ("geefZaakdetails_ZakLv01", "zakLv01", "geefZaakdetails_Lv01", "beantwoordvraag"),
    "geefLijstZaakdocumenten": (
        "geefLijstZaakdocumenten_ZakLv01",
        "zakLv01",
        "geefLijstZaakdocumenten_Lv01",
        "beantwoordvraag",
    ),
}

_VERTROUWELIJK = {
    "openbaar": "OPENBAAR",
    "beperkt_openbaar": "BEPERKT OPENBAAR",
    "intern": "INTERN",
    "zaakvertrouwelijk": "ZAAKVERTROUWELIJK",
    "vertrouwelijk": "VERTROUWELIJK",
    "confidentieel": "CONFIDENTIEEL",
    "geheim": "GEHEIM",
    "zeer_geheim": "ZEER GEHEIM",
}


def soap_action(dialect: str, operation: str) -> str:
    el12, _, action11, _ = OPERATIONS[operation]
    return f"{ZDS}/{el12}" if dialect == ZDS12 else f"{ZKN}/{action11}"


def port(operation: str) -> str:
    return OPERATIONS[operation][3]


def stuf_datum(d: date) -> str:
    """StUF Datum: yyyyMMdd."""
    return d.strftime("%Y%m%d")


def vertrouwelijk_aanduiding(value: str) -> str:
    """ZGW spelling (``beperkt_openbaar``) or ZDS spelling (``BEPERKT OPENBAAR``) → the ZDS enumeration."""
    key = value.strip().lower().replace(" ", "_")
    if key not in _VERTROUWELIJK:
        raise ValueError(f"vertrouwelijkheidaanduiding {value!r} is not one of {sorted(_VERTROUWELIJK)}")
    return _VERTROUWELIJK[key]


@dataclass(frozen=True)
class Context:
    """What every message needs besides its content; ``now`` and ``refnr`` are injectable for tests."""

    dialect: str
    zender: Systeem
    ontvanger: Systeem
    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    refnr: Callable[[], str] = lambda: new_referentienummer("ZK")


@dataclass(frozen=True)
class Bericht:
    """One request: its operation, SOAPAction, WSDL port and body element."""

    operation: str
    soap_action: str
    port: str
    referentienummer: str
    body: etree._Element

    def xml(self) -> str:
        return etree.tostring(self.body, encoding="unicode")

    def envelope(self) -> bytes:
        return envelope(self.body)


def envelope(body: etree._Element) -> bytes:
    """SOAP 1.1 envelope around a message element (the body is copied, not moved)."""
    env = etree.Element(f"{{{SOAP11}}}Envelope", nsmap={"soapenv": SOAP11})
    etree.SubElement(env, f"{{{SOAP11}}}Header")
    b = etree.SubElement(env, f"{{{SOAP11}}}Body")
    b.append(etree.fromstring(etree.tostring(body)))
    return etree.tostring(env, xml_declaration=True, encoding="UTF-8")


# -- element helpers ---------------------------------------------------------------------------------


def clip(text: str | None, n: int) -> str | None:
    text = (text or "").strip()
    return text[:n] if text else None


def _stuf_attrs(entiteittype: str | None, verwerkingssoort: str | None) -> dict[str, str]:
    attrs = {}
    if entiteittype:
        attrs[f"{{{STUF}}}entiteittype"] = entiteittype
    if verwerkingssoort:
        attrs[f"{{{STUF}}}verwerkingssoort"] = verwerkingssoort
    return attrs


def el(
    parent: etree._Element,
    ns: str,
    name: str,
    text: str | None = None,
    entiteittype: str | None = None,
    verwerkingssoort: str | None = None,
) -> etree._Element:
    """A child element with the StUF attributes the schema asks of it."""
    child = etree.SubElement(parent, f"{{{ns}}}{name}", _stuf_attrs(entiteittype, verwerkingssoort))
    if text is not None:
        child.text = text
    return child


def nil(
    parent: etree._Element,
    ns: str,
    name: str,
    no_value: str = "geenWaarde",
    entiteittype: str | None = None,
    verwerkingssoort: str | None = None,
) -> etree._Element:
    """An element without a value: ``xsi:nil="true"`` plus the StUF reason (``StUF:noValue``)."""
    child = el(parent, ns, name, None, entiteittype, verwerkingssoort)
    child.set(f"{{{XSI}}}nil", "true")
    child.set(f"{{{STUF}}}noValue", no_value)
    return child


def asked(parent: etree._Element, ns: str, name: str, entiteittype: str | None = None) -> etree._Element:
    """A scope element of a vraag: ``xsi:nil`` asks for the value."""
    child = el(parent, ns, name, None, entiteittype)
    child.set(f"{{{XSI}}}nil", "true")
    return child


def opt(parent: etree._Element, ns: str, name: str, text: str | None) -> None:
    if text:
        el(parent, ns, name, text)


class Builder:
    """Per-message state: dialect namespaces and one referentienummer."""

    def __init__(self, ctx: Context, operation: str) -> None:
        if ctx.dialect not in (ZDS12, ZDS11):
            raise ValueError(f"unknown dialect {ctx.dialect!r}")
        self.ctx = ctx
        self.operation = operation
        self.refnr = ctx.refnr()
        el12, el11, _, _ = OPERATIONS[operation]
        v12 = ctx.dialect == ZDS12
        nsmap = {"StUF": STUF, "ZKN": ZKN, "BG": BG, "xsi": XSI, "xmime": XMIME}
        if v12:
            nsmap["ZDS"] = ZDS
        self.root = etree.Element(f"{{{ZDS if v12 else ZKN}}}{el12 if v12 else el11}", nsmap=nsmap)
        # ZDS 1.2 declares the vrije berichten' children locally in its own namespace
        self.child_ns = ZDS if v12 and operation.startswith("genereer") else ZKN

    def stuurgegevens(self, berichtcode: str, *, entiteittype: str | None = None, functie: str | None = None) -> None:
        sg = el(self.root, self.child_ns, "stuurgegevens")
        el(sg, STUF, "berichtcode", berichtcode)
        for tag, s in (("zender", self.ctx.zender), ("ontvanger", self.ctx.ontvanger)):
            sy = el(sg, STUF, tag)
            opt(sy, STUF, "organisatie", s.organisatie)
            el(sy, STUF, "applicatie", s.applicatie or "")
            opt(sy, STUF, "administratie", s.administratie)
            opt(sy, STUF, "gebruiker", s.gebruiker)
        el(sg, STUF, "referentienummer", self.refnr)
        el(sg, STUF, "tijdstipBericht", tijdstip(self.ctx.now))
        if entiteittype:
            el(sg, STUF, "entiteittype", entiteittype)
        if functie:
            el(sg, STUF, "functie", functie)

    def lk01_parameters(self, mutatiesoort: str) -> None:
        p = el(self.root, ZKN, "parameters")
        el(p, STUF, "mutatiesoort", mutatiesoort)
        el(p, STUF, "indicatorOvername", "V")

    def done(self) -> Bericht:
        return Bericht(
            self.operation,
            soap_action(self.ctx.dialect, self.operation),
            port(self.operation),
            self.refnr,
            self.root,
        )
