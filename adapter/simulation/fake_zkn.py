"""A fake ZDS zaaksysteem (StUF-ZKN 0310, dialect ZDS 1.2 or 1.1) for tests and ketensimulatie.

It is strict where real receivers are: every request body is validated against the *official* XSD set
of its dialect (read from ``schema_dir``, never copied into the project) and the SOAPAction must be
the dialect's own; a violation is answered with a SOAP Fault carrying a Fo03 (kennisgevingen) or Fo02
(vrije berichten, vragen) that names the schema error. Zaak and document identificaties are unique:
a second creeerZaak for the same zaak is refused, as a real zaaksysteem would.

What it received is kept for assertions (``zaken``, ``documenten`` with decoded bytes, ``statussen``,
``calls``); ``fail_next`` injects HTTP failures before or after a request was processed.
"""

from __future__ import annotations

import base64
import binascii
import threading
from dataclasses import dataclass, field
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
from adapter.targets.stuf_zkn.schemas import load_schema
from adapter.targets.stuf_zkn.zds import OPERATIONS, SOAP11, STUF, ZDS, ZDS12, ZKN, soap_action
from adapter.xmlsafe import XmlRejected, parse

OWN = Systeem(organisatie="FAKE", applicatie="FAKEZKN")

# -- the fake ----------------------------------------------------------------------------------------------


class Refused(Exception):
    """The fake says no: answered as a SOAP Fault with this StUF code."""

    def __init__(self, code: str, omschrijving: str, details: str | None = None) -> None:
        super().__init__(omschrijving)
        self.code, self.omschrijving, self.details = code, omschrijving, details


@dataclass
class _Failure:
    suffix: str
    status: int
    times: int
    after_processing: bool


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


class FakeZkn:
    """The zaaksysteem: ``app`` is the Starlette app to serve (see ``serving``)."""

    def __init__(self, schema_dir: str | Path, dialect: str = ZDS12, *, faultcode_style: str = "stuf") -> None:
        self.dialect = dialect
        self.schema = load_schema(dialect, schema_dir)
        self.faultcode_style = faultcode_style  # "stuf": s:StUF058 (as some receivers do); "soap": s:Client
        self.received = Received()
        self._lock = threading.Lock()
        self._failures: list[_Failure] = []
        self._actions = {soap_action(dialect, op): op for op in OPERATIONS}
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

    def count(self, operation: str, *, answered: int | None = None) -> int:
        """How many requests for ``operation`` came in (optionally: that got this HTTP status)."""
        return sum(1 for op, _, st in self.received.calls if op == operation and answered in (None, st))

    def fail_next(
        self, soap_action_suffix: str, status: int = 500, times: int = 1, after_processing: bool = False
    ) -> None:
        """The next ``times`` requests whose SOAPAction ends with (or whose operation starts with) the
        suffix get HTTP ``status``; ``after_processing``: the request takes effect, its answer is lost."""
        with self._lock:
            self._failures.append(_Failure(soap_action_suffix, status, times, after_processing))

    def _take_failure(self, action: str) -> _Failure | None:
        last = action.rstrip("/").rpartition("/")[2]
        for f in self._failures:
            if action.endswith(f.suffix) or last.startswith(f.suffix):
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
            status, answer = self._handle(action, body)
        return Response(answer, status_code=status, media_type="text/xml; charset=utf-8")

    def _handle(self, action: str, body: bytes) -> tuple[int, bytes]:
        operation = self._actions.get(action, "?")
        failure = self._take_failure(action)
        if failure is not None and not failure.after_processing:
            self.received.calls.append((operation, action, failure.status))
            return failure.status, b"injected failure"
        sg = Stuurgegevens()
        try:
            root = parse(body)
            message = self._message(root)
            sg = parse_stuurgegevens(message)
            if operation == "?":
                raise Refused("StUF025", f"SOAPAction {action!r} is not a {self.dialect} operation")
            self._validate(operation, message)
            answer = self._process(operation, message, sg)
            status = 200
        except XmlRejected as exc:
            status, answer = 500, self._fault(operation, sg, Refused("StUF055", f"geen XML: {exc}"))
        except Refused as exc:
            status, answer = 500, self._fault(operation, sg, exc)
        if failure is not None:
            status, answer = failure.status, b"injected failure after processing"
        self.received.calls.append((operation, action, status))
        return status, answer

    @staticmethod
    def _message(root: etree._Element) -> etree._Element:
        body = _find(root, "Body") if root.tag == f"{{{SOAP11}}}Envelope" else None
        message = next((c for c in body if isinstance(c.tag, str)), None) if body is not None else None
        if message is None:
            raise Refused("StUF055", "geen SOAP 1.1 Envelope/Body met een bericht")
        return message

    def _validate(self, operation: str, message: etree._Element) -> None:
        el12, el11, _, _ = OPERATIONS[operation]
        want = f"{{{ZDS}}}{el12}" if self.dialect == ZDS12 else f"{{{ZKN}}}{el11}"
        if message.tag != want:
            raise Refused("StUF055", f"bericht {message.tag} hoort niet bij SOAPAction van {operation} ({want})")
        standalone = etree.fromstring(etree.tostring(message))
        if not self.schema.validate(standalone):
            first = next(iter(self.schema.error_log))
            raise Refused("StUF055", "Bericht niet conform het schema", f"regel {first.line}: {first.message}"[:1000])
        soort = _text(message, "parameters", "mutatiesoort")
        if operation in ("creeerZaak", "voegZaakdocumentToe") and soort != "T":
            raise Refused("StUF055", f"{operation} verwacht mutatiesoort T, niet {soort}")
        if operation == "actualiseerZaakstatus" and soort != "W":
            raise Refused("StUF055", f"actualiseerZaakstatus verwacht mutatiesoort W, niet {soort}")

    # -- processing --------------------------------------------------------------------------------------
    def _process(self, operation: str, message: etree._Element, sg: Stuurgegevens) -> bytes:
        if operation == "genereerZaakIdentificatie":
            return self._du02(operation, sg, "zaak", self._new_id("zaak", "ZAAK-"))
        if operation == "genereerDocumentIdentificatie":
            return self._du02(operation, sg, "document", self._new_id("document", "DOC-"))
        if operation == "creeerZaak":
            self._creeer_zaak(message)
        elif operation == "voegZaakdocumentToe":
            self._voeg_document_toe(message)
        elif operation == "actualiseerZaakstatus":
            self._actualiseer_status(message)
        else:
            return self._la01(operation, message, sg)
        return _envelope(bv03(sg, OWN))

    def _new_id(self, kind: str, prefix: str) -> str:
        issued = self.received.issued[kind]
        issued.append(f"{prefix}{len(issued) + 1:06d}")
        return issued[-1]

    def _creeer_zaak(self, message: etree._Element) -> None:
        obj = _find(message, "object")
        zaak_id = _text(obj, "identificatie") or ""
        if zaak_id in self.zaken:
            raise Refused("StUF058", f"zaak {zaak_id} bestaat al")
        ini = _find(obj, "heeftAlsInitiator", "gerelateerde")
        gmc = _find(obj, "heeftAlsGemachtigde", "gerelateerde")
        self.zaken[zaak_id] = {
            "identificatie": zaak_id,
            "zaaktype": _text(obj, "isVan", "gerelateerde", "code"),
            "omschrijving": _text(obj, "omschrijving"),
            "toelichting": _text(obj, "toelichting"),
            "kenmerken": [(_text(k, "kenmerk"), _text(k, "bron")) for k in obj if _local(k) == "kenmerk"],
            "startdatum": _text(obj, "startdatum"),
            "initiator": _betrokkene(ini),
            "gemachtigde": _betrokkene(gmc),
            "xml": etree.tostring(message),
        }

    def _voeg_document_toe(self, message: etree._Element) -> None:
        obj = _find(message, "object")
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
            "formaat": _text(obj, "formaat"),
            "taal": _text(obj, "taal"),
            "vertrouwelijkAanduiding": _text(obj, "vertrouwelijkAanduiding"),
            "auteur": _text(obj, "auteur"),
            "bestandsnaam": inhoud.get(f"{{{STUF}}}bestandsnaam") if inhoud is not None else None,
            "contentType": inhoud.get("{http://www.w3.org/2005/05/xmlmime}contentType") if inhoud is not None else None,
            "inhoud": data if inhoud is not None and data else None,
            "xml": etree.tostring(message),
        }

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
                "toelichting": _text(heeft, "toelichting"),
                "datumStatusGezet": _text(heeft, "datumStatusGezet"),
            }
        )

    # -- answers ----------------------------------------------------------------------------------------
    def _ns(self, operation: str) -> tuple[str, str]:
        """(namespace of the answer element, namespace of its children)."""
        if self.dialect != ZDS12:
            return ZKN, ZKN
        return ZDS, ZDS if operation.startswith("genereer") else ZKN

    def _stuurgegevens(self, parent: etree._Element, ns: str, request: Stuurgegevens, code: str) -> None:
        reply = reply_stuurgegevens(request, code, OWN)
        sg = stuurgegevens_element(reply)
        container = etree.SubElement(parent, f"{{{ns}}}stuurgegevens")
        container.extend(list(sg))

    def _du02(self, operation: str, request: Stuurgegevens, entity: str, identificatie: str) -> bytes:
        ns, child = self._ns(operation)
        root = etree.Element(f"{{{ns}}}{operation}_Du02", nsmap={"StUF": STUF, "ZKN": ZKN, "ZDS": ZDS})
        self._stuurgegevens(root, child, request, "Du02")
        _sg = _find(root, "stuurgegevens")
        etree.SubElement(_sg, f"{{{STUF}}}functie").text = (
            request.functie or f"genereer{entity.capitalize()}identificatie"
        )
        ent = etree.SubElement(root, f"{{{child}}}{entity}")
        ent.set(f"{{{STUF}}}entiteittype", "ZAK" if entity == "zaak" else "EDC")
        ent.set(f"{{{STUF}}}functie", "entiteit")
        etree.SubElement(ent, f"{{{ZKN}}}identificatie").text = identificatie
        return _envelope(root)

    def _la01(self, operation: str, message: etree._Element, request: Stuurgegevens) -> bytes:
        zaak_id = _text(message, "gelijk", "identificatie") or ""
        ns, _ = self._ns(operation)
        name = OPERATIONS[operation][0].replace("Lv01", "La01") if self.dialect == ZDS12 else "zakLa01"
        root = etree.Element(f"{{{ns}}}{name}", nsmap={"StUF": STUF, "ZKN": ZKN, "ZDS": ZDS})
        self._stuurgegevens(root, ZKN, request, "La01")
        etree.SubElement(_find(root, "stuurgegevens"), f"{{{STUF}}}entiteittype").text = "ZAK"
        params = etree.SubElement(root, f"{{{ZKN}}}parameters")
        etree.SubElement(params, f"{{{STUF}}}indicatorVervolgvraag").text = "false"
        antwoord = etree.SubElement(root, f"{{{ZKN}}}antwoord")
        if zaak_id in self.zaken:
            obj = etree.SubElement(antwoord, f"{{{ZKN}}}object", {f"{{{STUF}}}entiteittype": "ZAK"})
            etree.SubElement(obj, f"{{{ZKN}}}identificatie").text = zaak_id
            if operation == "geefLijstZaakdocumenten":
                for doc in self.documenten.values():
                    if zaak_id in doc["zaken"]:
                        rel = etree.SubElement(obj, f"{{{ZKN}}}heeftRelevant", {f"{{{STUF}}}entiteittype": "ZAKEDC"})
                        edc = etree.SubElement(rel, f"{{{ZKN}}}gerelateerde", {f"{{{STUF}}}entiteittype": "EDC"})
                        etree.SubElement(edc, f"{{{ZKN}}}identificatie").text = doc["identificatie"]
        return _envelope(root)

    def _fault(self, operation: str, request: Stuurgegevens, refused: Refused) -> bytes:
        """SOAP 1.1 Fault with a Fo03 (kennisgevingen) or Fo02 (vrije berichten, vragen) as detail."""
        port = OPERATIONS[operation][3] if operation in OPERATIONS else "ontvangasynchroon"
        code = "Fo03" if port == "ontvangasynchroon" else "Fo02"
        plek = "server" if refused.code == "StUF058" else "client"
        env = etree.Element(f"{{{SOAP11}}}Envelope", nsmap={"s": SOAP11})
        fault = etree.SubElement(etree.SubElement(env, f"{{{SOAP11}}}Body"), f"{{{SOAP11}}}Fault")
        soap_code = refused.code if self.faultcode_style == "stuf" else plek.capitalize()
        etree.SubElement(fault, "faultcode").text = f"s:{soap_code}"
        etree.SubElement(fault, "faultstring").text = refused.omschrijving
        fo = etree.SubElement(etree.SubElement(fault, "detail"), f"{{{STUF}}}{code}Bericht", nsmap={"StUF": STUF})
        fo.append(stuurgegevens_element(reply_stuurgegevens(request, code, OWN)))
        body = etree.SubElement(fo, f"{{{STUF}}}body")
        etree.SubElement(body, f"{{{STUF}}}code").text = refused.code
        etree.SubElement(body, f"{{{STUF}}}plek").text = plek
        etree.SubElement(body, f"{{{STUF}}}omschrijving").text = refused.omschrijving[:200]
        if refused.details:
            etree.SubElement(body, f"{{{STUF}}}details").text = refused.details
        return etree.tostring(env, xml_declaration=True, encoding="UTF-8")


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
