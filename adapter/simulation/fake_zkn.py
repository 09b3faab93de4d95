"""A fake ZDS zaaksysteem (StUF-ZKN 0310, dialect ZDS 1.2 or 1.1) for tests and ketensimulatie.

Written from the official contract, not from our client: every request body is validated against the
*official* XSD set of its dialect (``schema_dir``, never copied into the project), and, given the
official WSDLs (``wsdl_dir``), the SOAPAction must be the one the WSDL binds to the message it carries
(ZDS 1.1 binds creeerZaak, actualiseerZaakstatus and updateZaak to the same ``zakLk01``, so only that
pair says what is asked). A violation is answered with a SOAP Fault carrying a Fo03 (kennisgevingen) or
Fo02 (vrije berichten, vragen). Without WSDLs the operation is read from the SOAPAction's last segment.

Habits of real servers it has: zaak and document identificaties are keys (a second creeerZaak for the
same zaak is refused); ``datumStatusGezet`` is stored at a limited precision (seconds by default, some
keep only the date) and a status toelichting may not be kept at all; with ``zaaktypen`` an unknown
zaaktype code is refused as the client's fault; a vraag is answered with what its scope asks,
statuses newest first, volgnummers zero-padded, or (``answers_vragen=False``) not at all. Objects
"made elsewhere" (by a behandelaar) are added with ``add_zaak`` / ``add_status``.

What it received is kept for assertions (``zaken``, ``documenten`` with decoded bytes, ``statussen``,
``calls``); ``fail_next`` injects failures before or after a request took effect (HTTP status, delay
beyond the client's timeout, or only slowness), at the first or a later matching request.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import threading
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lxml import etree
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from adapter.simulation.serving import serving  # noqa: F401 - re-exported for tests
from adapter.stuf.berichten import bv03
from adapter.stuf.stuurgegevens import (
    Stuurgegevens,
    Systeem,
    parse_stuurgegevens,
    reply_stuurgegevens,
    stuurgegevens_element,
)
from adapter.targets.stuf_zkn.schemas import WsdlOperation, load_schema, wsdl_operations
from adapter.targets.stuf_zkn.zds import BG, SOAP11, STUF, XSI, ZDS, ZDS12, ZKN
from adapter.xmlsafe import XmlRejected, parse

OWN = Systeem(organisatie="FAKE", applicatie="FAKEZKN")

#: Operations this fake carries out (dialect-neutral WSDL names without their berichtcode suffix).
SUPPORTED = frozenset(
    {
        "genereerZaakIdentificatie",
        "genereerDocumentIdentificatie",
        "creeerZaak",
        "voegZaakdocumentToe",
        "actualiseerZaakstatus",
        "updateZaak",
        "geefZaakdetails",
        "geefLijstZaakdocumenten",
    }
)
#: StUF codes whose fault is the server's own (StUF 03.01 table); others blame the client.
_SERVER_CODES = frozenset({"StUF001", "StUF025", "StUF046", "StUF058"})

# -- the fake ----------------------------------------------------------------------------------------------


class Refused(Exception):
    """The fake says no: answered as a SOAP Fault with this StUF code and ``plek``."""

    def __init__(self, code: str, omschrijving: str, details: str | None = None, plek: str | None = None) -> None:
        super().__init__(omschrijving)
        self.code, self.omschrijving, self.details = code, omschrijving, details
        self.plek = plek or ("server" if code in _SERVER_CODES else "client")


@dataclass
class _Failure:
    match: str
    status: int | None
    times: int
    after_processing: bool
    delay: float
    skip: int


@dataclass
class Received:
    """What the fake saw, for assertions."""

    zaken: dict[str, dict[str, Any]] = field(default_factory=dict)
    documenten: dict[str, dict[str, Any]] = field(default_factory=dict)
    statussen: list[dict[str, Any]] = field(default_factory=list)
    #: (operation, SOAPAction, HTTP status of our answer) per request, in order
    calls: list[tuple[str, str, int]] = field(default_factory=list)
    #: identificaties handed out by genereer*_Di02 ("zaak", "document"), even when the answer was lost
    issued: dict[str, list[str]] = field(default_factory=lambda: {"zaak": [], "document": []})


def _local(el: etree._Element) -> str:
    return etree.QName(el).localname if isinstance(el.tag, str) else ""


def _find(el: etree._Element | None, *path: str) -> etree._Element | None:
    for name in path:
        if el is None:
            return None
        el = next((c for c in el if _local(c) == name), None)
    return el


def _text(el: etree._Element | None, *path: str) -> str | None:
    found = _find(el, *path)
    if found is None:
        return None
    return (found.text or "").strip() or None


def _sub(parent: etree._Element, ns: str, name: str, text: str | None = None, **stuf: str) -> etree._Element:
    child = etree.SubElement(parent, f"{{{ns}}}{name}", {f"{{{STUF}}}{k}": v for k, v in stuf.items()})
    if text is not None:
        child.text = text
    return child


class FakeZkn:
    """The zaaksysteem: ``app`` is the Starlette app to serve (see ``serving``)."""

    def __init__(
        self,
        schema_dir: str | Path,
        dialect: str = ZDS12,
        *,
        wsdl_dir: str | Path | None = None,
        faultcode_style: str = "stuf",
        zaaktypen: Collection[str] | None = None,
        tijdstip_digits: int = 14,
        keeps_toelichting: bool = True,
        answers_vragen: bool = True,
    ) -> None:
        self.dialect = dialect
        self.schema = load_schema(dialect, schema_dir)
        self.wsdl: dict[str, WsdlOperation] | None = None
        if wsdl_dir is not None:
            ops = [op for op in wsdl_operations(wsdl_dir) if op.input and op.input.startswith(("{" + ZKN, "{" + ZDS))]
            if not ops:
                raise ValueError(f"no ZDS operations in the WSDLs below {wsdl_dir}")
            self.wsdl = {op.soap_action: op for op in ops}
        self.faultcode_style = faultcode_style  # "stuf": s:StUF058 (as some receivers do); "soap": s:Client
        self.zaaktypen = set(zaaktypen) if zaaktypen is not None else None
        self.tijdstip_digits = tijdstip_digits
        self.keeps_toelichting = keeps_toelichting
        self.answers_vragen = answers_vragen  # False: the BeantwoordVraag port is not offered (StUF025)
        self.received = Received()
        self._lock = threading.Lock()
        self._failures: list[_Failure] = []
        self.app = Starlette(routes=[Route("/{path:path}", self._endpoint, methods=["GET", "POST"])])

    # -- test API ----------------------------------------------------------------------------------------
    @property
    def zaken(self) -> dict[str, dict[str, Any]]:
        return self.received.zaken

    @property
    def documenten(self) -> dict[str, dict[str, Any]]:
        return self.received.documenten

    @property
    def statussen(self) -> list[dict[str, Any]]:
        return self.received.statussen

    @property
    def pending_failures(self) -> int:
        """Injected failures not yet taken by a request (0: the last one is in flight or done)."""
        with self._lock:
            return len(self._failures)

    def count(self, operation: str, *, answered: int | None = None) -> int:
        """How many requests for ``operation`` came in (optionally: that got this HTTP status)."""
        return sum(1 for op, _, st in self.received.calls if op == operation and answered in (None, st))

    def fail_next(
        self,
        match: str,
        status: int | None = 500,
        times: int = 1,
        after_processing: bool = False,
        *,
        delay: float = 0.0,
        skip: int = 0,
    ) -> None:
        """Let ``skip`` requests that match (operation name, or SOAPAction suffix) pass, then fail ``times``.

        Without ``after_processing`` the fake waits ``delay`` s and then answers HTTP ``status`` without
        doing anything, or with ``status=None`` carries the request out after all (a slow server). With
        ``after_processing`` the request takes effect first (committed), then after ``delay`` s its
        answer is replaced by ``status`` (None: the real answer, late: a timeout after commit).
        """
        with self._lock:
            self._failures.append(_Failure(match, status, times, after_processing, delay, skip))

    def add_zaak(self, identificatie: str, zaaktype: str, kenmerk: str | None = None) -> None:
        """A zaak made elsewhere (by a behandelaar, another koppeling)."""
        with self._lock:
            self.zaken[identificatie] = {
                "identificatie": identificatie,
                "zaaktype": zaaktype,
                "kenmerken": [(kenmerk, "elders")] if kenmerk else [],
                "elsewhere": True,
            }

    def add_status(self, zaak: str, volgnummer: int, datum_status_gezet: str, toelichting: str | None = None) -> None:
        """A status set elsewhere on an existing zaak."""
        with self._lock:
            self.statussen.append(
                {
                    "zaak": zaak,
                    "zaaktype": self.zaken[zaak]["zaaktype"],
                    "volgnummer": volgnummer,
                    "toelichting": toelichting,
                    "datumStatusGezet": datum_status_gezet[: self.tijdstip_digits],
                    "elsewhere": True,
                }
            )

    def _operation_of(self, action: str) -> WsdlOperation | None:
        return self.wsdl.get(action) if self.wsdl is not None else None

    def _name_of(self, action: str) -> str:
        op = self._operation_of(action)
        if op is not None:
            return op.operation
        last = action.rstrip("/").rpartition("/")[2]
        return last.rsplit("_", 1)[0] if "_" in last else last or "?"

    def _take_failure(self, action: str) -> _Failure | None:
        name, last = self._name_of(action), action.rstrip("/").rpartition("/")[2]
        for f in self._failures:
            if f.match in (name, last) or action.endswith(f.match) or last.startswith(f.match):
                if f.skip > 0:
                    f.skip -= 1
                    return None
                f.times -= 1
                if f.times <= 0:
                    self._failures.remove(f)
                return f
        return None

    # -- HTTP ----------------------------------------------------------------------------------------------
    async def _endpoint(self, request: Request) -> Response:
        if request.method == "GET":
            return Response("fake ZDS zaaksysteem: POST SOAP 1.1 here\n", media_type="text/plain")
        action = request.headers.get("soapaction", "").strip().strip('"')
        body = await request.body()
        with self._lock:
            failure = self._take_failure(action)
        if failure is not None and not failure.after_processing:
            await asyncio.sleep(failure.delay)
            if failure.status is not None:
                with self._lock:
                    self.received.calls.append((self._name_of(action), action, failure.status))
                return Response(b"injected failure", status_code=failure.status, media_type="text/plain")
        with self._lock:
            status, answer = self._handle(action, body)
        if failure is not None and failure.after_processing:
            await asyncio.sleep(failure.delay)
            if failure.status is not None:
                status, answer = failure.status, b"injected failure after processing"
        with self._lock:
            self.received.calls.append((self._name_of(action), action, status))
        return Response(answer, status_code=status, media_type="text/xml; charset=utf-8")

    def _handle(self, action: str, body: bytes) -> tuple[int, bytes]:
        op = self._operation_of(action)
        operation = self._name_of(action)
        sg = Stuurgegevens()
        try:
            root = parse(body)
            message = self._message(root)
            sg = parse_stuurgegevens(message)
            self._check_action(action, op, message)
            if operation not in SUPPORTED or (operation.startswith("geef") and not self.answers_vragen):
                raise Refused("StUF025", f"{operation or action!r} wordt door deze zaaksysteem niet ondersteund")
            self._validate(operation, message)
            answer = self._process(operation, op, message, sg)
            status = 200
        except XmlRejected as exc:
            status, answer = 500, self._fault(op, sg, Refused("StUF055", f"geen XML: {exc}"))
        except Refused as exc:
            status, answer = 500, self._fault(op, sg, exc)
        return status, answer

    def _check_action(self, action: str, op: WsdlOperation | None, message: etree._Element) -> None:
        """With the WSDLs: the SOAPAction must be bound, and bound to an operation carrying this message."""
        if self.wsdl is None:
            return
        if op is None:
            carries = sorted(o.soap_action for o in self.wsdl.values() if o.input == message.tag)
            raise Refused(
                "StUF025",
                f"SOAPAction {action!r} is geen operatie van de {self.dialect} WSDL's",
                f"voor {message.tag} definieert de WSDL: {', '.join(carries) or 'niets'}",
                plek="client",
            )
        if op.input != message.tag:
            raise Refused(
                "StUF055",
                f"bericht {message.tag} hoort niet bij SOAPAction {action} (die draagt {op.input})",
                plek="client",
            )

    @staticmethod
    def _message(root: etree._Element) -> etree._Element:
        body = _find(root, "Body") if root.tag == f"{{{SOAP11}}}Envelope" else None
        message = next((c for c in body if isinstance(c.tag, str)), None) if body is not None else None
        if message is None:
            raise Refused("StUF055", "geen SOAP 1.1 Envelope/Body met een bericht")
        return message

    def _validate(self, operation: str, message: etree._Element) -> None:
        standalone = etree.fromstring(etree.tostring(message))
        if not self.schema.validate(standalone):
            first = next(iter(self.schema.error_log))
            raise Refused("StUF055", "Bericht niet conform het schema", f"regel {first.line}: {first.message}"[:1000])
        soort = _text(message, "parameters", "mutatiesoort")
        if operation in ("creeerZaak", "voegZaakdocumentToe") and soort != "T":
            raise Refused("StUF055", f"{operation} verwacht mutatiesoort T, niet {soort}")
        if operation in ("actualiseerZaakstatus", "updateZaak") and soort != "W":
            raise Refused("StUF055", f"{operation} verwacht mutatiesoort W, niet {soort}")

    # -- processing --------------------------------------------------------------------------------------
    def _process(self, operation: str, op: WsdlOperation | None, message: etree._Element, sg: Stuurgegevens) -> bytes:
        if operation == "genereerZaakIdentificatie":
            return self._du02(operation, op, message, sg, "zaak", self._new_id("zaak", "ZAAK-"))
        if operation == "genereerDocumentIdentificatie":
            return self._du02(operation, op, message, sg, "document", self._new_id("document", "DOC-"))
        if operation == "creeerZaak":
            self._creeer_zaak(message)
        elif operation == "voegZaakdocumentToe":
            self._voeg_document_toe(message)
        elif operation == "actualiseerZaakstatus":
            self._actualiseer_status(message)
        elif operation == "updateZaak":
            self._update_zaak(message)
        else:
            return self._la01(operation, op, message, sg)
        return _envelope(bv03(sg, OWN))

    def _new_id(self, kind: str, prefix: str) -> str:
        issued = self.received.issued[kind]
        issued.append(f"{prefix}{len(issued) + 1:06d}")
        return issued[-1]

    def _creeer_zaak(self, message: etree._Element) -> None:
        obj = _object(message)
        zaak_id = _text(obj, "identificatie") or ""
        if zaak_id in self.zaken:
            raise Refused("StUF058", f"zaak {zaak_id} bestaat al")
        zaaktype = _text(obj, "isVan", "gerelateerde", "code")
        if self.zaaktypen is not None and zaaktype not in self.zaaktypen:
            raise Refused("StUF058", f"zaaktype {zaaktype} is onbekend in dit zaaksysteem", plek="client")
        ini = _find(obj, "heeftAlsInitiator", "gerelateerde")
        gmc = _find(obj, "heeftAlsGemachtigde", "gerelateerde")
        self.zaken[zaak_id] = {
            "identificatie": zaak_id,
            "zaaktype": zaaktype,
            "omschrijving": _text(obj, "omschrijving"),
            "toelichting": _text(obj, "toelichting"),
            "kenmerken": [(_text(k, "kenmerk"), _text(k, "bron")) for k in obj if _local(k) == "kenmerk"],
            "startdatum": _text(obj, "startdatum"),
            "initiator": _betrokkene(ini),
            "gemachtigde": _betrokkene(gmc),
            # every gemachtigde relation (the one of creeerZaak, then those added by updateZaak)
            "gemachtigden": [{**g, "toelichting": None} for g in (_betrokkene(gmc),) if g is not None],
            "xml": etree.tostring(message),
        }

    def _voeg_document_toe(self, message: etree._Element) -> None:
        obj = _object(message)
        doc_id = _text(obj, "identificatie") or ""
        if doc_id in self.documenten:
            raise Refused("StUF058", f"document {doc_id} bestaat al")
        zaken = [_text(r, "gerelateerde", "identificatie") or "" for r in obj if _local(r) == "isRelevantVoor"]
        for z in zaken:
            if z not in self.zaken:
                raise Refused("StUF058", f"zaak {z} onbekend")
        inhoud = _find(obj, "inhoud")
        try:
            data = base64.b64decode((inhoud.text or "") if inhoud is not None else "", validate=True)
        except binascii.Error:
            raise Refused("StUF055", f"document {doc_id}: inhoud is geen base64") from None
        self.documenten[doc_id] = {
            "identificatie": doc_id,
            "zaken": zaken,
            "titel": _text(obj, "titel"),
            "dct.omschrijving": _text(obj, "dct.omschrijving"),
            "beschrijving": _text(obj, "beschrijving"),
            "formaat": _text(obj, "formaat"),
            "taal": _text(obj, "taal"),
            "vertrouwelijkAanduiding": _text(obj, "vertrouwelijkAanduiding"),
            "auteur": _text(obj, "auteur"),
            "bestandsnaam": inhoud.get(f"{{{STUF}}}bestandsnaam") if inhoud is not None else None,
            "contentType": inhoud.get("{http://www.w3.org/2005/05/xmlmime}contentType") if inhoud is not None else None,
            "inhoud": data if inhoud is not None and data else None,
            "registratiedatum": datetime.now(UTC).strftime("%Y%m%d"),
            "xml": etree.tostring(message),
        }

    def _update_zaak(self, message: etree._Element) -> None:
        """Only what a koppeling adds: a ``heeftAlsGemachtigde`` with verwerkingssoort T in the new object."""
        nieuw = [o for o in message if _local(o) == "object"][-1]
        zaak_id = _text(nieuw, "identificatie") or ""
        if zaak_id not in self.zaken:
            raise Refused("StUF058", f"zaak {zaak_id} onbekend")
        for rel in (c for c in nieuw if _local(c) == "heeftAlsGemachtigde"):
            if rel.get(f"{{{STUF}}}verwerkingssoort") != "T" or _find(rel, "gerelateerde") is None:
                raise Refused("StUF055", "updateZaak: alleen een toegevoegde heeftAlsGemachtigde wordt verwerkt")
            wie = _betrokkene(_find(rel, "gerelateerde")) or {}
            toelichting = _text(rel, "toelichting") if self.keeps_toelichting else None
            self.zaken[zaak_id].setdefault("gemachtigden", []).append({**wie, "toelichting": toelichting})

    def _actualiseer_status(self, message: etree._Element) -> None:
        nieuw = [o for o in message if _local(o) == "object"][-1]
        zaak_id = _text(nieuw, "identificatie") or ""
        if zaak_id not in self.zaken:
            raise Refused("StUF058", f"zaak {zaak_id} onbekend")
        heeft = _find(nieuw, "heeft")
        self.statussen.append(
            {
                "zaak": zaak_id,
                "zaaktype": _text(heeft, "gerelateerde", "zkt.code"),
                "volgnummer": int(_text(heeft, "gerelateerde", "volgnummer") or 0),
                "toelichting": _text(heeft, "toelichting") if self.keeps_toelichting else None,
                # stored at the precision this zaaksysteem keeps (many: seconds; some: the date)
                "datumStatusGezet": (_text(heeft, "datumStatusGezet") or "")[: self.tijdstip_digits] or None,
            }
        )

    # -- answers ----------------------------------------------------------------------------------------
    def _ns(self, operation: str) -> tuple[str, str]:
        """(namespace of the answer element, namespace of its children)."""
        if self.dialect != ZDS12:
            return ZKN, ZKN
        return ZDS, ZDS if operation.startswith("genereer") else ZKN

    def _answer_tag(self, op: WsdlOperation | None, message: etree._Element, code: str) -> str:
        """The WSDL's output element; without WSDLs the request's own name with the answer's berichtcode."""
        if op is not None and op.output:
            return op.output
        return message.tag.replace("Di02", code).replace("Lv01", code)

    def _stuurgegevens(self, parent: etree._Element, ns: str, request: Stuurgegevens, code: str) -> etree._Element:
        reply = reply_stuurgegevens(request, code, OWN)
        sg = stuurgegevens_element(reply)
        container = etree.SubElement(parent, f"{{{ns}}}stuurgegevens")
        container.extend(list(sg))
        return container

    def _du02(
        self,
        operation: str,
        op: WsdlOperation | None,
        message: etree._Element,
        request: Stuurgegevens,
        entity: str,
        identificatie: str,
    ) -> bytes:
        _, child = self._ns(operation)
        root = etree.Element(self._answer_tag(op, message, "Du02"), nsmap={"StUF": STUF, "ZKN": ZKN, "ZDS": ZDS})
        sg = self._stuurgegevens(root, child, request, "Du02")
        _sub(sg, STUF, "functie", request.functie or f"genereer{entity.capitalize()}identificatie")
        ent = _sub(root, child, entity, entiteittype="ZAK" if entity == "zaak" else "EDC", functie="entiteit")
        _sub(ent, ZKN, "identificatie", identificatie)
        return _envelope(root)

    def _la01(self, operation: str, op: WsdlOperation | None, message: etree._Element, request: Stuurgegevens) -> bytes:
        """geefZaakdetails / geefLijstZaakdocumenten: what the scope asks, for the zaak in ``gelijk``."""
        zaak_id = _text(message, "gelijk", "identificatie") or ""
        root = etree.Element(self._answer_tag(op, message, "La01"), nsmap={"StUF": STUF, "ZKN": ZKN, "ZDS": ZDS})
        sg = self._stuurgegevens(root, ZKN, request, "La01")
        _sub(sg, STUF, "entiteittype", "ZAK")
        params = _sub(root, ZKN, "parameters")
        _sub(params, STUF, "indicatorVervolgvraag", "false")
        zaak = self.zaken.get(zaak_id)
        if zaak is None:
            return _envelope(root)  # no antwoord: nothing matches
        scope = _find(message, "scope", "object")
        asked = {_local(c) for c in scope} if scope is not None else {"identificatie"}
        obj = _sub(_sub(root, ZKN, "antwoord"), ZKN, "object", entiteittype="ZAK")
        _sub(obj, ZKN, "identificatie", zaak_id)
        if "kenmerk" in asked:
            for kenmerk, bron in zaak.get("kenmerken", []):
                k = _sub(obj, ZKN, "kenmerk")
                _sub(k, ZKN, "kenmerk", kenmerk)
                _sub(k, ZKN, "bron", bron)
        if "isVan" in asked and zaak.get("zaaktype"):
            is_van = _sub(obj, ZKN, "isVan", entiteittype="ZAKZKT")
            _sub(_sub(is_van, ZKN, "gerelateerde", entiteittype="ZKT"), ZKN, "code", zaak["zaaktype"])
        if "heeftAlsGemachtigde" in asked:
            for g in zaak.get("gemachtigden", []):
                rel = _sub(obj, ZKN, "heeftAlsGemachtigde", entiteittype="ZAKBTRGMC")
                self._gerelateerde(_sub(rel, ZKN, "gerelateerde"), g)
                self._maybe(rel, "toelichting", g.get("toelichting"))
        if "heeft" in asked:
            mine = [s for s in self.statussen if s["zaak"] == zaak_id]
            for s in sorted(mine, key=lambda s: s["datumStatusGezet"] or "", reverse=True):  # newest first
                heeft = _sub(obj, ZKN, "heeft", entiteittype="ZAKSTT")
                stt = _sub(heeft, ZKN, "gerelateerde", entiteittype="STT")
                _sub(stt, ZKN, "volgnummer", f"{s['volgnummer']:04d}")
                self._maybe(heeft, "toelichting", s["toelichting"])
                self._maybe(heeft, "datumStatusGezet", s["datumStatusGezet"])
        if "heeftRelevant" in asked:
            for doc in self.documenten.values():
                if zaak_id in doc["zaken"]:
                    rel = _sub(obj, ZKN, "heeftRelevant", entiteittype="ZAKEDC")
                    _sub(_sub(rel, ZKN, "gerelateerde", entiteittype="EDC"), ZKN, "identificatie", doc["identificatie"])
                    _sub(rel, ZKN, "registratiedatum", doc["registratiedatum"])
        return _envelope(root)

    @staticmethod
    def _gerelateerde(parent: etree._Element, wie: dict[str, Any]) -> None:
        if wie.get("soort") == "natuurlijkPersoon":
            nps = _sub(parent, ZKN, "natuurlijkPersoon", entiteittype="NPS")
            FakeZkn._maybe(nps, "inp.bsn", wie.get("bsn"), BG)
            _sub(nps, BG, "authentiek", "J" if wie.get("bsn") else "N").set(f"{{{STUF}}}metagegeven", "true")
        elif wie.get("soort") == "vestiging":
            _sub(
                _sub(parent, ZKN, "vestiging", entiteittype="VES"), BG, "vestigingsNummer", wie.get("vestigingsnummer")
            )
        elif wie.get("soort") == "nietNatuurlijkPersoon":
            nnp = _sub(parent, ZKN, "nietNatuurlijkPersoon", entiteittype="NNP")
            FakeZkn._maybe(nnp, "inn.nnpId", None, BG)
            _sub(nnp, BG, "authentiek", "N").set(f"{{{STUF}}}metagegeven", "true")

    @staticmethod
    def _maybe(parent: etree._Element, name: str, value: str | None, ns: str = ZKN) -> None:
        child = _sub(parent, ns, name, value)
        if value is None:
            child.set(f"{{{XSI}}}nil", "true")
            child.set(f"{{{STUF}}}noValue", "geenWaarde")

    def _fault(self, op: WsdlOperation | None, request: Stuurgegevens, refused: Refused) -> bytes:
        """SOAP 1.1 Fault with a Fo03 (kennisgevingen) or Fo02 (vrije berichten, vragen) as detail."""
        asynchroon = op.port_type == "OntvangAsynchroon" if op is not None else request.berichtcode == "Lk01"
        code = "Fo03" if asynchroon else "Fo02"
        env = etree.Element(f"{{{SOAP11}}}Envelope", nsmap={"s": SOAP11})
        fault = etree.SubElement(etree.SubElement(env, f"{{{SOAP11}}}Body"), f"{{{SOAP11}}}Fault")
        soap_code = refused.code if self.faultcode_style == "stuf" else refused.plek.capitalize()
        etree.SubElement(fault, "faultcode").text = f"s:{soap_code}"
        etree.SubElement(fault, "faultstring").text = refused.omschrijving
        fo = etree.SubElement(etree.SubElement(fault, "detail"), f"{{{STUF}}}{code}Bericht", nsmap={"StUF": STUF})
        fo.append(stuurgegevens_element(reply_stuurgegevens(request, code, OWN)))
        body = etree.SubElement(fo, f"{{{STUF}}}body")
        etree.SubElement(body, f"{{{STUF}}}code").text = refused.code
        etree.SubElement(body, f"{{{STUF}}}plek").text = refused.plek
        etree.SubElement(body, f"{{{STUF}}}omschrijving").text = refused.omschrijving[:200]
        if refused.details:
            etree.SubElement(body, f"{{{STUF}}}details").text = refused.details
        return etree.tostring(env, xml_declaration=True, encoding="UTF-8")


def _object(message: etree._Element) -> etree._Element:
    obj = _find(message, "object")
    if obj is None:  # the schema requires it; kept for a fake without schema checks
        raise Refused("StUF055", "bericht zonder object")
    return obj


def _betrokkene(gerelateerde: etree._Element | None) -> dict[str, Any] | None:
    if gerelateerde is None:
        return None
    subject = next((c for c in gerelateerde if isinstance(c.tag, str)), None)
    if subject is None:
        return None
    return {
        "soort": _local(subject),
        "bsn": _text(subject, "inp.bsn"),
        "vestigingsnummer": _text(subject, "vestigingsNummer"),
        "naam": _text(subject, "geslachtsnaam") or _text(subject, "handelsnaam") or _text(subject, "statutaireNaam"),
    }


def _envelope(message: etree._Element) -> bytes:
    env = etree.Element(f"{{{SOAP11}}}Envelope", nsmap={"s": SOAP11})
    etree.SubElement(env, f"{{{SOAP11}}}Body").append(message)
    return etree.tostring(env, xml_declaration=True, encoding="UTF-8")


# -- serving -----------------------------------------------------------------------------------------------
