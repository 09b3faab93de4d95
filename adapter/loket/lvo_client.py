"""The one module that sends StUF-LVO to the loket: message builders and the SOAP 1.1 client.

Outgoing messages (contract §1): ``vrgDi01KoppelZaakAanAanvraag``, ``vrgDi01WijzigStatus`` and
``vrgDi01AanvragenAdvies``, each ``LVO:<message>`` with an ``LVO:stuurgegevens`` whose fields are
StUF-qualified, then one content element. Their content models are reconstructed (``xsd/lvo``); every
message is validated against that XSD by its builder and again just before it is posted, so a builder
bug never reaches the loket.

The loket answers a Di01 synchronously with ``StUF:Bv03Bericht`` (crossRefnummer = our
referentienummer) or a SOAP Fault carrying ``StUF:Fo03Bericht``. Everything that goes wrong becomes a
``TargetError`` whose text is one readable line, so the outbox can record it and retry. Fault parsing is
lenient: receivers put the StUF code in the Fo03, in the faultcode (``s:StUF058``) or nowhere.

A resend with the *same* element keeps its referentienummer and tijdstipBericht, which is what StUF asks
after a receiver-side fault; the loket then answers the same Bv03 instead of storing it twice.
"""

from __future__ import annotations

import copy
import re
from datetime import date
from functools import cache

import httpx
from lxml import etree
from pydantic import BaseModel, ConfigDict, Field, model_validator

from adapter import recording
from adapter.envsubst import redact_url
from adapter.errors import TargetError, TargetRefused, http_failure
from adapter.loket.lvo import LVO, OUTGOING
from adapter.schemas import SchemaInvalid, SchemaSet
from adapter.stuf.namespaces import SOAP11_ENV, STUF, q
from adapter.stuf.soapfault import blames_client, child_text, fault_of, local_name
from adapter.stuf.stuurgegevens import (
    Stuurgegevens,
    Systeem,
    find_stuurgegevens,
    new_referentienummer,
    parse_stuurgegevens,
    stuurgegevens_element,
    tijdstip,
)
from adapter.tls import TlsClientOptions
from adapter.xmlsafe import XmlRejected, parse

KOPPEL_ZAAK = "vrgDi01KoppelZaakAanAanvraag"
WIJZIG_STATUS = "vrgDi01WijzigStatus"
AANVRAGEN_ADVIES = "vrgDi01AanvragenAdvies"

_NAME = re.compile(r"^[a-z]{3}(Di01|Du01|Di02|Du02)(\w+)$")

# -- options ---------------------------------------------------------------------------------------------


class LoketSysteem(BaseModel):
    """A StUF ``zender``/``ontvanger``: how we and the loket are known in the stuurgegevens (organisatie = OIN)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    organisatie: str = Field(..., min_length=1, max_length=200)
    applicatie: str = Field(..., min_length=3, max_length=50)  # StUF Applicatie: 3..50
    administratie: str | None = Field(None, max_length=50)

    def systeem(self) -> Systeem:
        return Systeem(self.organisatie, self.applicatie, self.administratie)


class LoketOptions(TlsClientOptions):
    """Where and as whom the adapter sends StUF-LVO (configured stuurgegevens, as OpenWave does)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: The loket's asynchronous StUF-LVO endpoint.
    url: str = Field(..., min_length=1)
    #: Us.
    zender: LoketSysteem
    #: The loket.
    ontvanger: LoketSysteem
    timeout: float = Field(30.0, gt=0)

    @model_validator(mode="after")
    def _check(self) -> LoketOptions:
        if not self.url.startswith(("http://", "https://")):
            raise ValueError(f"not an http(s) URL: {redact_url(self.url)!r}")
        return self


# -- errors ----------------------------------------------------------------------------------------------


class LvoMessageInvalid(TargetRefused, ValueError):
    """An outgoing message is not what the loket accepts (a builder or caller bug); never sent."""


class LoketFault(TargetError):
    """The loket answered with a SOAP Fault / Fo03; ``code`` is the StUF code (e.g. ``StUF055``) when known."""

    def __init__(
        self, message: str, code: str | None, omschrijving: str, details: str | None, *, client: bool = False
    ) -> None:
        super().__init__(message)
        self.code = code
        self.transient = not client  # a fault that blames our request repeats identically
        self.omschrijving = omschrijving
        self.details = details


# -- builders ----------------------------------------------------------------------------------------------


@cache
def _schemas() -> SchemaSet:
    return SchemaSet()  # compiled once; SchemaSet keeps a compiled copy per thread


def functie_of(name: str) -> str:
    """``vrgDi01KoppelZaakAanAanvraag`` -> ``KoppelZaakAanAanvraag`` (StUF functie: name minus prefix and code)."""
    m = _NAME.match(name)
    if m is None:
        raise ValueError(f"not a StUF-LVO message name: {name!r}")
    return m.group(2)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def validate_message(message_el: etree._Element) -> None:
    """Our XSD plus the Di01 stuurgegevens rules our XSD leaves to code (it uses the generic StUF type)."""
    qname = etree.QName(message_el)
    bericht = OUTGOING.get(qname.localname) if qname.namespace == LVO else None
    if bericht is None:
        raise LvoMessageInvalid(f"<{qname.text}> is not a StUF-LVO message the adapter sends to the loket")
    try:
        _schemas().validate(message_el)
    except SchemaInvalid as exc:
        raise LvoMessageInvalid(_one_line(f"{bericht.name}: {exc}")) from None
    sg = parse_stuurgegevens(message_el)
    problems = [
        f"berichtcode {sg.berichtcode} is not {bericht.berichtcode}" if sg.berichtcode != bericht.berichtcode else "",
        "" if sg.zender.applicatie else "zender missing",
        "" if sg.ontvanger.applicatie else "ontvanger missing",
        "" if sg.referentienummer else "referentienummer missing",
        "" if sg.tijdstip_bericht else "tijdstipBericht missing",
        f"functie {sg.functie} is not {functie_of(bericht.name)}" if sg.functie != functie_of(bericht.name) else "",
        "crossRefnummer not allowed in a Di01" if sg.cross_refnummer else "",
    ]
    if any(problems):
        raise LvoMessageInvalid(f"{bericht.name}: stuurgegevens: " + "; ".join(p for p in problems if p))


def _message(
    name: str,
    zender: Systeem | None,
    ontvanger: Systeem | None,
    referentienummer: str | None,
    tijdstip_bericht: str | None,
) -> tuple[etree._Element, etree._Element]:
    """The message element with its stuurgegevens; returns (message, content element)."""
    bericht = OUTGOING[name]
    root = etree.Element(q(LVO, name), nsmap={"LVO": LVO, "StUF": STUF})
    sg = Stuurgegevens(
        berichtcode=bericht.berichtcode,
        zender=zender or Systeem(),
        ontvanger=ontvanger or Systeem(),
        referentienummer=referentienummer or new_referentienummer(),
        tijdstip_bericht=tijdstip_bericht or tijdstip(),
        functie=functie_of(name),
    )
    container = etree.SubElement(root, q(LVO, "stuurgegevens"))
    fields = stuurgegevens_element(sg)
    for child in fields:
        # An unset zender/ontvanger stays out: LoketClient.send addresses the message from its options.
        if etree.QName(child).localname in ("zender", "ontvanger") and len(child) == 0:
            continue
        container.append(child)
    return root, etree.SubElement(root, q(LVO, bericht.content))


def _add(parent: etree._Element, local: str, value: str) -> etree._Element:
    el = etree.SubElement(parent, q(LVO, local))
    el.text = value
    return el


def _datum(d: date) -> str:
    return d.strftime("%Y%m%d")


def _checked(root: etree._Element) -> etree._Element:
    """Validate a freshly built message against our XSD (``send`` checks the addressing again)."""
    try:
        _schemas().validate(root)
    except SchemaInvalid as exc:
        raise LvoMessageInvalid(_one_line(f"{etree.QName(root).localname}: {exc}")) from None
    return root


def koppel_zaak(
    aanvraagnummer: str,
    zaakidentificatie: str,
    *,
    zender: Systeem | None = None,
    ontvanger: Systeem | None = None,
    referentienummer: str | None = None,
    tijdstip_bericht: str | None = None,
) -> etree._Element:
    """``vrgDi01KoppelZaakAanAanvraag``: tells the loket which zaak handles the aanvraag."""
    root, content = _message(KOPPEL_ZAAK, zender, ontvanger, referentienummer, tijdstip_bericht)
    _add(content, "aanvraagnummer", aanvraagnummer)
    _add(content, "zaakidentificatie", zaakidentificatie)
    return _checked(root)


def wijzig_status(
    aanvraagnummer: str,
    statuscode: int,
    datum: date,
    *,
    zender: Systeem | None = None,
    ontvanger: Systeem | None = None,
    referentienummer: str | None = None,
    tijdstip_bericht: str | None = None,
) -> etree._Element:
    """``vrgDi01WijzigStatus``: the aanvraag's new status (1..8; OLO ignores 1, 3 and 8) as of ``datum``."""
    if isinstance(statuscode, bool) or not isinstance(statuscode, int) or not 1 <= statuscode <= 8:
        raise LvoMessageInvalid(f"{WIJZIG_STATUS}: statuscode {statuscode!r} is not one of 1..8")
    root, content = _message(WIJZIG_STATUS, zender, ontvanger, referentienummer, tijdstip_bericht)
    _add(content, "aanvraagnummer", aanvraagnummer)
    _add(content, "statuscode", str(statuscode))
    _add(content, "datum", _datum(datum))
    return _checked(root)


def aanvragen_advies(
    aanvraagnummer: str,
    adviesverzoek_id: str,
    adviseur_oin: str,
    adviseur_naam: str | None,
    omschrijving: str,
    einddatum: date,
    bijlage_ids: list[str],
    *,
    zender: Systeem | None = None,
    ontvanger: Systeem | None = None,
    referentienummer: str | None = None,
    tijdstip_bericht: str | None = None,
) -> etree._Element:
    """``vrgDi01AanvragenAdvies``: asks an adviseur for advice; the advice returns as ``vrgDi01VoegAdviesToe``."""
    root, content = _message(AANVRAGEN_ADVIES, zender, ontvanger, referentienummer, tijdstip_bericht)
    _add(content, "aanvraagnummer", aanvraagnummer)
    _add(content, "adviesverzoekId", adviesverzoek_id)
    adviseur = etree.SubElement(content, q(LVO, "adviseur"))
    _add(adviseur, "oin", adviseur_oin)
    if adviseur_naam is not None:
        _add(adviseur, "naam", adviseur_naam)
    _add(content, "omschrijving", omschrijving)
    _add(content, "einddatum", _datum(einddatum))
    if bijlage_ids:
        ids = etree.SubElement(content, q(LVO, "bijlageIds"))
        for bijlage_id in bijlage_ids:
            _add(ids, "bijlageId", bijlage_id)
    return _checked(root)


# -- answers -----------------------------------------------------------------------------------------------


def envelope(message_el: etree._Element) -> bytes:
    """SOAP 1.1 envelope, UTF-8, the message as the Body's single child (a copy: the caller's tree stays)."""
    env = etree.Element(q(SOAP11_ENV, "Envelope"), nsmap={"soapenv": SOAP11_ENV})
    etree.SubElement(env, q(SOAP11_ENV, "Body")).append(copy.deepcopy(message_el))
    return etree.tostring(env, xml_declaration=True, encoding="UTF-8")


# -- client ------------------------------------------------------------------------------------------------


class LoketClient:
    """Posts StUF-LVO Di01s to the loket and checks its Bv03 (``send``)."""

    def __init__(self, options: LoketOptions, transport: httpx.BaseTransport | None = None) -> None:
        self.options = options
        self._transport = transport  # tests may hand in an httpx.MockTransport
        self._http: httpx.Client | None = None

    def __enter__(self) -> LoketClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None

    def _session(self) -> httpx.Client:
        """Built on first use, so a missing certificate is a TargetError on send, not a crash at start."""
        if self._http is None:
            o = self.options
            try:
                self._http = httpx.Client(
                    timeout=o.timeout,
                    transport=self._transport or recording.transport(),
                    event_hooks=recording.EVENT_HOOKS,
                    **o.httpx_tls(),
                )
            except (OSError, ValueError) as exc:
                raise TargetError(_one_line(f"TLS/HTTP setup for {o.url}: {type(exc).__name__}: {exc}")) from None
        return self._http

    def address(self, message_el: etree._Element) -> etree._Element:
        """A copy of the message with zender/ontvanger from the options where the builder left them out."""
        msg = copy.deepcopy(message_el)
        sg = find_stuurgegevens(msg)
        if sg is None:
            raise LvoMessageInvalid(f"{local_name(msg)}: no stuurgegevens")
        after = sg.find(q(STUF, "berichtcode"))
        for local, systeem in (("zender", self.options.zender), ("ontvanger", self.options.ontvanger)):
            existing = sg.find(q(STUF, local))
            if existing is None:
                own = systeem.systeem()
                only = Stuurgegevens(zender=own) if local == "zender" else Stuurgegevens(ontvanger=own)
                fields = stuurgegevens_element(only)
                existing = fields.find(q(STUF, local))
                assert existing is not None
                if after is None:
                    sg.insert(0, existing)
                else:
                    after.addnext(existing)
            after = existing
        return msg

    def send(self, message_el: etree._Element) -> str:
        """Post one message; return its referentienummer once the loket's Bv03 acknowledged exactly it."""
        msg = self.address(message_el)
        validate_message(msg)
        name = local_name(msg)
        sg = parse_stuurgegevens(msg)
        ref = sg.referentienummer or ""
        nummer = child_text(msg, OUTGOING[name].content, "aanvraagnummer")
        url = self.options.url
        what = f"{name} (aanvraag {nummer}) to {redact_url(url)}"
        headers = {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": f'"{OUTGOING[name].soap_action}"'}
        http = self._session()
        try:
            r = http.post(url, content=envelope(msg), headers=headers)
        except httpx.TimeoutException:
            raise TargetError(f"{what}: no answer within {self.options.timeout:g} s") from None
        except httpx.HTTPError as exc:
            raise TargetError(_one_line(f"{what}: {type(exc).__name__}: {exc}")) from None
        return self._check_answer(what, ref, r)

    @staticmethod
    def _check_answer(what: str, ref: str, r: httpx.Response) -> str:
        try:
            root = parse(r.content) if r.content.strip() else None
        except XmlRejected:
            root = None
        if root is not None:
            fault = fault_of(root)
            if fault is not None:
                code, omschrijving, details = fault
                text = f"{what}: {code + ': ' if code else ''}{omschrijving}" + (f" ({details})" if details else "")
                raise LoketFault(_one_line(text)[:600], code, omschrijving, details, client=blames_client(root))
        if r.status_code >= 300:
            raise http_failure(r.status_code, _one_line(f"{what}: HTTP {r.status_code}: {r.text[:200]}"))
        if root is None:
            raise TargetError(f"{what}: HTTP {r.status_code} without a readable SOAP answer")
        body = next((c for c in root if local_name(c) == "Body"), None) if local_name(root) == "Envelope" else None
        answer = next((c for c in body if isinstance(c.tag, str)), None) if body is not None else None
        if answer is None:
            raise TargetError(f"{what}: HTTP {r.status_code}: not a SOAP envelope with a body element")
        code = child_text(answer, "stuurgegevens", "berichtcode")
        if local_name(answer) != "Bv03Bericht" or code != "Bv03":
            raise TargetError(f"{what}: expected a Bv03, got {code or '<' + local_name(answer) + '>'}")
        cross = child_text(answer, "stuurgegevens", "crossRefnummer")
        if cross != ref:
            raise TargetError(f"{what}: Bv03 acknowledges {cross or 'no referentienummer'}, not our {ref}")
        return ref
