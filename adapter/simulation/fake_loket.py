"""A fake Omgevingsloket StUF-LVO endpoint (``POST /soap/lvo``) for tests and ketensimulatie.

It is as strict as the contract: every incoming message must validate against OUR reconstructed XSD
(``xsd/lvo``, the contract until an official one exists), be one the loket accepts from a backoffice,
and come with the SOAPAction of its Body element. Its answers are what a StUF 03.01 end node sends: a
``StUF:Bv03Bericht`` (zender/ontvanger swapped, crossRefnummer = the request's referentienummer), or a
SOAP Fault whose detail is a ``StUF:Fo03Bericht`` (StUF055 with the schema error when invalid). Both are
validated against ``xsd/stuf0301`` before they leave, so the fake cannot drift from the official shape.

Duplicates work as StUF prescribes: the same zender + referentienummer with the same content gets the
same Bv03 again and is not recorded twice; with other content it gets Fo03 StUF016. A message that got
a Fo03 is not remembered, so its resend behaves like a first delivery.

``received`` lists (message name, aanvraagnummer, element) of every accepted message; ``fail_next``
injects HTTP failures or Fo03s, ``delay_next`` slow answers (for client time-outs).
"""

from __future__ import annotations

import asyncio
import copy
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from lxml import etree
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from adapter.loket.lvo import LVO, OUTGOING, aanvraagnummer_of
from adapter.paths import XSD_DIR
from adapter.schemas import SchemaInvalid, SchemaSet, UnknownNamespace
from adapter.stuf.fouten import DETAILS_MAX, OMSCHRIJVING_MAX, Foutcode, clip
from adapter.stuf.namespaces import SOAP11_ENV, STUF, q
from adapter.stuf.stuurgegevens import (
    Stuurgegevens,
    Systeem,
    parse_stuurgegevens,
    reply_stuurgegevens,
    stuurgegevens_element,
)
from adapter.xmlsafe import XmlRejected, parse

ENDPOINT_PATH = "/soap/lvo"
#: How the fake knows itself when a request does not say (Logius OIN of the loket in our fixtures).
LOKET = Systeem(organisatie="00000001800866472000", applicatie="OLO")

#: plek of the StUF codes the fake answers (others: client)
_SERVER_CODES = {f.code for f in Foutcode if f.plek == "server"} | {"StUF037", "StUF040", "StUF046", "StUF058"}


class Refused(Exception):
    """The fake says no: answered as SOAP Fault + Fo03 with this StUF code."""

    def __init__(self, code: str, omschrijving: str, details: str | None = None) -> None:
        super().__init__(f"{code}: {omschrijving}")
        self.code, self.omschrijving, self.details = code, omschrijving, details


@dataclass
class _Failure:
    status: int
    times: int
    fo03_code: str | None


@dataclass
class _Seen:
    """A message answered with Bv03: its canonical form (duplicate check) and the answer sent."""

    c14n: bytes
    answer: bytes


def _local(el: Any) -> str:
    return etree.QName(el).localname if isinstance(el.tag, str) else ""


class FakeLoket:
    """The loket's StUF-LVO endpoint; the object is itself an ASGI app (``serve_in_thread(fake)``)."""

    def __init__(
        self,
        xsd_dir: Path = XSD_DIR,
        *,
        own: Systeem = LOKET,
        known_zenders: set[str] | None = None,
        faultcode_style: Literal["soap", "stuf"] = "soap",
    ) -> None:
        self.schemas = SchemaSet(xsd_dir)
        #: Who the loket is: a request addressed to another organisatie/applicatie gets StUF010.
        self.own = own
        #: ``organisatie`` values allowed as zender (None: anyone); others get StUF013.
        self.known_zenders = known_zenders
        #: "soap": faultcode s:Client / s:Server (StUF binding); "stuf": s:StUF055 (as some services do).
        self.faultcode_style = faultcode_style
        #: (message name, aanvraagnummer, element) of every message answered with Bv03, in order.
        self.received: list[tuple[str, str | None, etree._Element]] = []
        #: (SOAPAction, HTTP status of our answer) of every POST, in order.
        self.calls: list[tuple[str, int]] = []
        self._seen: dict[tuple[str, str], _Seen] = {}
        self._failures: list[_Failure] = []
        self._delays: list[float] = []
        self._lock = threading.Lock()
        self.app = Starlette(routes=[Route(ENDPOINT_PATH, self._endpoint, methods=["GET", "POST"])])

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)

    # -- test API ----------------------------------------------------------------------------------------
    def fail_next(self, status: int = 500, times: int = 1, fo03_code: str | None = None) -> None:
        """The next ``times`` requests are not processed: HTTP ``status`` with a plain body, or, with
        ``fo03_code``, a SOAP Fault carrying a Fo03 with that code (e.g. ``StUF046``, ``StUF058``)."""
        with self._lock:
            self._failures.append(_Failure(status, times, fo03_code))

    def delay_next(self, seconds: float, times: int = 1) -> None:
        """The next ``times`` requests are answered only after ``seconds`` (they are still processed)."""
        with self._lock:
            self._delays.extend([seconds] * times)

    def messages(self, name: str | None = None) -> list[etree._Element]:
        """The accepted message elements (of one message name)."""
        with self._lock:
            return [el for n, _, el in self.received if name in (None, n)]

    def reset(self) -> None:
        with self._lock:
            self.received.clear()
            self.calls.clear()
            self._seen.clear()
            self._failures.clear()
            self._delays.clear()

    # -- HTTP ----------------------------------------------------------------------------------------------
    async def _endpoint(self, request: Request) -> Response:
        if request.method == "GET":
            return PlainTextResponse("fake Omgevingsloket StUF-LVO 3.12: POST SOAP 1.1 here\n")
        action = request.headers.get("soapaction", "").strip().strip('"')
        body = await request.body()
        with self._lock:
            delay = self._delays.pop(0) if self._delays else 0.0
        if delay:
            await asyncio.sleep(delay)
        with self._lock:
            status, answer, media = self._handle(action, body)
            self.calls.append((action, status))
        return Response(answer, status_code=status, media_type=media)

    def _take_failure(self) -> _Failure | None:
        if not self._failures:
            return None
        failure = self._failures[0]
        failure.times -= 1
        if failure.times <= 0:
            self._failures.pop(0)
        return failure

    def _handle(self, action: str, body: bytes) -> tuple[int, bytes, str]:
        xml = "text/xml; charset=utf-8"
        failure = self._take_failure()
        if failure is not None and failure.fo03_code is None:
            return failure.status, b"injected failure", "text/plain; charset=utf-8"
        sg = Stuurgegevens()
        try:
            message = self._message(parse(body))
            sg = parse_stuurgegevens(message)
            if failure is not None:
                raise Refused(failure.fo03_code or "StUF058", "Geïnjecteerde fout van het nepomgevingsloket")
            return 200, self._accept(action, message, sg), xml
        except XmlRejected as exc:
            refused = Refused("StUF055", "Bericht niet conform het schema", f"geen XML: {exc}")
        except Refused as exc:
            refused = exc
        return (failure.status if failure else 500), self._fault(sg, refused), xml

    @staticmethod
    def _message(root: etree._Element) -> etree._Element:
        body = next((c for c in root if c.tag == q(SOAP11_ENV, "Body")), None)
        if root.tag != q(SOAP11_ENV, "Envelope") or body is None:
            raise Refused("StUF055", "Bericht niet conform het schema", "geen SOAP 1.1 Envelope met Body")
        children = [c for c in body if isinstance(c.tag, str)]
        if len(children) != 1:
            raise Refused("StUF055", "Bericht niet conform het schema", f"Body heeft {len(children)} elementen, niet 1")
        return children[0]

    # -- checks and processing ---------------------------------------------------------------------------
    def _accept(self, action: str, message: etree._Element, sg: Stuurgegevens) -> bytes:
        name = self._check(action, message, sg)
        key = (sg.zender.key(), sg.referentienummer or "")
        c14n = etree.tostring(message, method="c14n")
        seen = self._seen.get(key)
        if seen is not None:
            if seen.c14n != c14n:
                raise Refused("StUF016", Foutcode.STUF016.standaard, f"referentienummer {sg.referentienummer}")
            return seen.answer  # a resend: the same Bv03, not stored twice
        answer = etree.Element(q(STUF, "Bv03Bericht"), nsmap={"StUF": STUF})
        stuurgegevens_element(reply_stuurgegevens(sg, "Bv03", self.own), answer)
        self.schemas.validate(answer)
        data = _envelope(answer)
        self._seen[key] = _Seen(c14n, data)
        self.received.append((name, aanvraagnummer_of(message), copy.deepcopy(message)))
        return data

    def _check(self, action: str, message: etree._Element, sg: Stuurgegevens) -> str:
        """Schema first (project decision), then the StUF kind-3 checks in the order of the standard."""
        qname = etree.QName(message)
        try:
            self.schemas.validate(message)
        except SchemaInvalid as exc:
            raise Refused("StUF055", "Bericht niet conform het schema", str(exc.errors[0])) from None
        except UnknownNamespace as exc:
            raise Refused("StUF055", "Bericht niet conform het schema", str(exc)) from None
        bericht = OUTGOING.get(qname.localname) if qname.namespace == LVO else None
        if bericht is None:
            raise Refused("StUF055", "Bericht niet conform het schema", f"{qname.localname} neemt het loket niet aan")
        if action != bericht.soap_action:
            raise Refused("StUF055", "SOAPAction hoort niet bij het bericht", f"{action!r} bij {bericht.name}")
        on = sg.ontvanger
        if not on.applicatie or (on.organisatie, on.applicatie) != (self.own.organisatie, self.own.applicatie):
            raise Refused("StUF010", Foutcode.STUF010.standaard, f"ontvanger {on.key() or '(geen)'}")
        if not sg.zender.applicatie or (
            self.known_zenders is not None and sg.zender.organisatie not in self.known_zenders
        ):
            raise Refused("StUF013", Foutcode.STUF013.standaard, f"zender {sg.zender.key() or '(geen)'}")
        if not sg.referentienummer or not sg.tijdstip_bericht:
            raise Refused("StUF055", "Bericht niet conform het schema", "referentienummer en tijdstipBericht verplicht")
        if sg.berichtcode != bericht.berichtcode:
            raise Refused("StUF022", Foutcode.STUF022.standaard, f"{sg.berichtcode} bij {bericht.name}")
        functie = bericht.name[len("vrgDi01") :]
        if sg.functie != functie:
            raise Refused("StUF034", "Functie onbekend", f"functie {sg.functie!r}, verwacht {functie!r}")
        return bericht.name

    # -- answers ----------------------------------------------------------------------------------------
    def _fault(self, request: Stuurgegevens, refused: Refused) -> bytes:
        """SOAP 1.1 Fault (StUF binding: no faultactor) whose detail is the Fo03Bericht."""
        plek = "server" if refused.code in _SERVER_CODES else "client"
        fo = etree.Element(q(STUF, "Fo03Bericht"), nsmap={"StUF": STUF})
        stuurgegevens_element(reply_stuurgegevens(request, "Fo03", self.own), fo)
        body = etree.SubElement(fo, q(STUF, "body"))
        etree.SubElement(body, q(STUF, "code")).text = refused.code
        etree.SubElement(body, q(STUF, "plek")).text = plek
        etree.SubElement(body, q(STUF, "omschrijving")).text = clip(refused.omschrijving, OMSCHRIJVING_MAX)
        if refused.details:
            etree.SubElement(body, q(STUF, "details")).text = clip(refused.details, DETAILS_MAX)
        self.schemas.validate(fo)
        env = etree.Element(q(SOAP11_ENV, "Envelope"), nsmap={"s": SOAP11_ENV})
        fault = etree.SubElement(etree.SubElement(env, q(SOAP11_ENV, "Body")), q(SOAP11_ENV, "Fault"))
        soap_code = refused.code if self.faultcode_style == "stuf" else plek.capitalize()
        etree.SubElement(fault, "faultcode").text = f"s:{soap_code}"
        etree.SubElement(fault, "faultstring").text = clip(refused.omschrijving, OMSCHRIJVING_MAX)
        etree.SubElement(fault, "detail").append(fo)
        return etree.tostring(env, xml_declaration=True, encoding="UTF-8")


def _envelope(message: etree._Element) -> bytes:
    env = etree.Element(q(SOAP11_ENV, "Envelope"), nsmap={"s": SOAP11_ENV})
    etree.SubElement(env, q(SOAP11_ENV, "Body")).append(message)
    return etree.tostring(env, xml_declaration=True, encoding="UTF-8")
