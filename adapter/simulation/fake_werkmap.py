"""A fake DSO werkmap ("Verzoek afhandelen" REST, contract §3) for tests and the ketensimulatie.

As strict as the contract: every verzoek put in must validate against OUR ``xsd/stam/verzoek.xsd`` unless
it is added with ``check_schema=False`` (the DSO's real files are not held to our reconstruction: unknown
elements, other shapes, even a missing verzoeknummer), every request must carry ``X-Oin`` with the OIN the
fake serves (else 403), and a verzoek is visible only when that OIN is its bevoegd gezag or uitvoerende
instantie (else 404, as unknown ones). Each version has its publiceerbare PDF (``pdf.href``) unless added
with ``pdf=False``. Paths, JSON shapes and
the reconstructed rules (``?volgnummer=``, _zoek paging, Range) come from ``adapter.loket.stam``.

Documents never exist in memory or on disk: their bytes are generated on the fly, deterministically from
(documentId, size), in 64 KiB chunks; the sha256 is computed once by streaming the same generator and cached.
So a test can ask for a 2 GB document. ``fail_next`` injects errors, slowness, a flipped byte or a cut
connection; ``requests`` records (method, path, status) of every request, ``transfers`` every overdracht.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import mimetypes
import re
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone, tzinfo
from pathlib import Path
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from lxml import etree
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from adapter.loket import stam
from adapter.paths import XSD_DIR
from adapter.simulation.werkmap_parts import (  # noqa: F401 - re-exported for tests
    BLOCK,
    byte_range,
    document_bytes,
    make_self_signed_cert,
    serve_tls_in_thread,
)
from adapter.xmlsafe import parse as parse_xml

DEFAULT_DOCUMENT_SIZE = 2048
DEFAULT_OIN = "00000001002564440000"
try:
    LOCAL_TZ: tzinfo = ZoneInfo("Europe/Amsterdam")
except ZoneInfoNotFoundError:  # no tz database: winter time is close enough for a fake
    LOCAL_TZ = timezone(timedelta(hours=1))


class RecordedRequest(NamedTuple):
    """One request the fake answered; ``path`` is the full request path (base path included), no query."""

    method: str
    path: str
    status: int


@dataclass
class Fault:
    path_suffix: str
    status: int | None
    times: int
    delay: float
    corrupt: bool
    cut_after: int | None


@dataclass(frozen=True)
class Transfer:
    """One ``_overdragen`` call the fake accepted."""

    verzoeknummer: str
    naar_oin: str
    rol: str
    toelichting: str | None


@dataclass(frozen=True)
class _Versie:
    verzoeknummer: str
    volgnummer: int
    doel: str
    indiendatum: str
    ingediend: datetime
    bevoegd_gezag: str
    uitvoerende_instantie: str | None
    xml: bytes
    documenten: tuple[tuple[str, str], ...]  # (documentId, bestandsnaam)
    pdf: bool = True  # the referenties link a PDF

    @property
    def oins(self) -> set[str]:
        return {self.bevoegd_gezag, self.uitvoerende_instantie or self.bevoegd_gezag}


@dataclass
class _Document:
    bestandsnaam: str
    size: int
    oins: set[str]


class _Problem(Exception):
    def __init__(self, status: int, title: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.title, self.detail = status, title, detail


def _problem(status: int, title: str, detail: str, headers: dict[str, str] | None = None) -> Response:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    return JSONResponse(body, status_code=status, media_type=stam.PROBLEM_JSON, headers=headers)


def _instant(value: Any, name: str) -> datetime:
    """ISO 8601 date (midnight) or date-time; Dutch local time when it has no offset."""
    if not isinstance(value, str):
        raise _Problem(400, "Bad Request", f"{name} must be an ISO 8601 date or date-time string")
    try:
        parsed = (
            datetime.fromisoformat(value)
            if "T" in value
            else datetime.combine(date.fromisoformat(value), datetime.min.time())
        )
    except ValueError:
        raise _Problem(400, "Bad Request", f"{name} is not an ISO 8601 date or date-time: {value!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=LOCAL_TZ)


class FakeWerkmap:
    """In-memory werkmap serving one OIN; ``app`` is the Starlette application."""

    def __init__(
        self,
        *,
        oin: str = DEFAULT_OIN,
        xsd_dir: Path = XSD_DIR,
        page_size_max: int = stam.ZOEK_PAGINAGROOTTE_MAX,
        base_path: str = stam.DEFAULT_BASE_PATH,
        default_document_size: int = DEFAULT_DOCUMENT_SIZE,
    ) -> None:
        self.oin = oin
        self.page_size_max = page_size_max
        self.base_path = base_path.rstrip("/")
        self.default_document_size = default_document_size
        parser = etree.XMLParser(no_network=True, resolve_entities=False)
        self._schema = etree.XMLSchema(etree.parse(str(xsd_dir / stam.XSD_VERZOEK), parser))
        self._notif_schema = etree.XMLSchema(etree.parse(str(xsd_dir / stam.XSD_VERZOEKNOTIFICATIE), parser))
        self._lock = threading.Lock()
        self._versies: dict[str, dict[int, _Versie]] = {}
        self._documents: dict[str, _Document] = {}
        self._sha256: dict[tuple[str, int], str] = {}
        self._faults: list[Fault] = []
        self._requests: list[RecordedRequest] = []
        self._transfers: list[Transfer] = []
        self._generated = 0
        self.app = Starlette(routes=[Route("/{rest:path}", self._endpoint, methods=["GET", "POST", "PUT", "DELETE"])])

    # -- content ------------------------------------------------------------------------------------------

    def add_verzoek(
        self,
        verzoek_xml: bytes,
        documents: dict[str, int] | None = None,
        *,
        check_schema: bool = True,
        pdf: bool = True,
        verzoeknummer: str | None = None,
        volgnummer: int | None = None,
    ) -> None:
        """Put one version of a verzoek in the werkmap. ``documents``: documentId -> size in bytes for
        documents of this XML (others keep an earlier size or get ``default_document_size``).
        ``check_schema=False``: take the XML as the DSO might send it (only well-formed); ``verzoeknummer``
        and ``volgnummer`` then file a version whose XML lacks them, a missing or odd indiendatum counts as
        now, a missing bevoegd gezag as this werkmap's OIN. ``pdf=False``: the referenties link no PDF."""
        root = parse_xml(verzoek_xml)
        if check_schema:
            with self._lock:
                if not self._schema.validate(root):
                    raise ValueError(
                        f"verzoek not valid against xsd/{stam.XSD_VERZOEK}: {self._schema.error_log.last_error}"
                    )
        nummer = verzoeknummer or stam.verzoeknummer_of(root) or ""
        volgnummer = volgnummer or stam.volgnummer_of(root) or 0
        if not nummer or not volgnummer:
            raise ValueError("the verzoek XML has no verzoeknummer or volgnummer: pass them")
        docs: dict[str, str] = {}
        for d in root.iter(f"{{{stam.VERZOEK}}}document"):
            doc_id = d.findtext(f"{{{stam.VERZOEK}}}documentId", "").strip()
            docs.setdefault(doc_id, d.findtext(f"{{{stam.VERZOEK}}}bestandsnaam", "").strip())
        unknown = set(documents or {}) - set(docs)
        if unknown:
            raise ValueError(f"documents not in the verzoek XML: {sorted(unknown)}")
        indiendatum = root.findtext(f"{{{stam.VERZOEK}}}indiendatum", "").strip()
        try:
            ingediend = _instant(indiendatum, "indiendatum")
        except _Problem:
            if check_schema:
                raise
            ingediend, indiendatum = datetime.now(LOCAL_TZ), datetime.now(LOCAL_TZ).isoformat()
        versie = _Versie(
            nummer, volgnummer, stam.doel_of(root) or "", indiendatum, ingediend,
            stam.bevoegd_gezag_oin_of(root) or ("" if check_schema else self.oin),
            stam.uitvoerende_instantie_oin_of(root), verzoek_xml, tuple(docs.items()), pdf,
        )  # fmt: skip
        with self._lock:
            if volgnummer in self._versies.get(nummer, {}):
                raise ValueError(f"verzoek {nummer} volgnummer {volgnummer} is already in the werkmap")
            self._versies.setdefault(nummer, {})[volgnummer] = versie
            for doc_id, naam in docs.items():
                doc = self._documents.setdefault(doc_id, _Document(naam, self.default_document_size, set()))
                doc.size = (documents or {}).get(doc_id, doc.size)
                doc.oins |= versie.oins

    def generate_verzoeken(
        self,
        n: int,
        *,
        start: datetime = datetime(2026, 1, 5, 9, 0, tzinfo=LOCAL_TZ),
        spacing: timedelta = timedelta(hours=1),
        bevoegd_gezag: str | None = None,
        uitvoerende_instantie: str | None = None,
        documents_per_verzoek: int = 1,
        document_size: int = DEFAULT_DOCUMENT_SIZE,
        pdf: bool = True,
    ) -> list[str]:
        """Add ``n`` minimal Initiëren verzoeken with indiendatum start, start + spacing, ...; return their
        verzoeknummers (13 digits starting with 9, unique per fake). ``pdf=False``: no PDF linked."""
        nummers = []
        for i in range(n):
            with self._lock:
                self._generated += 1
                nummer = f"9{self._generated:012d}"
            ui = (
                f"<vz:uitvoerendeInstantie><vz:oin>{uitvoerende_instantie}</vz:oin></vz:uitvoerendeInstantie>"
                if uitvoerende_instantie
                else ""
            )
            ids = [f"DOC-{nummer}-{k}" for k in range(1, documents_per_verzoek + 1)]
            bijlagen = "".join(
                f"<vz:verzoekbijlage><vz:document><vz:documentId>{d}</vz:documentId>"
                f"<vz:bestandsnaam>{d.lower()}.pdf</vz:bestandsnaam></vz:document></vz:verzoekbijlage>"
                for d in ids
            )
            xml = (
                f'<vz:verzoek xmlns:vz="{stam.VERZOEK}"><vz:verzoeknummer>{nummer}</vz:verzoeknummer>'
                "<vz:doel>Initiëren</vz:doel><vz:volgnummer>1</vz:volgnummer><vz:type>Aanvraag vergunning</vz:type>"
                f"<vz:naam>Gegenereerd verzoek {i + 1}</vz:naam>"
                f"<vz:indiendatum>{(start + i * spacing).isoformat()}</vz:indiendatum>"
                f"<vz:bevoegdGezag><vz:oin>{bevoegd_gezag or self.oin}</vz:oin></vz:bevoegdGezag>{ui}"
                + (f"<vz:verzoekbijlages>{bijlagen}</vz:verzoekbijlages>" if ids else "")
                + "</vz:verzoek>"
            )
            self.add_verzoek(xml.encode(), dict.fromkeys(ids, document_size), pdf=pdf)
            nummers.append(nummer)
        return nummers

    def document_sha256(self, document_id: str) -> str:
        """sha256 (hex) of a document, computed once by streaming its generator."""
        size = self._documents[document_id].size
        key = (document_id, size)
        with self._lock:
            if key in self._sha256:
                return self._sha256[key]
        digest = hashlib.sha256()
        for chunk in document_bytes(document_id, size):
            digest.update(chunk)
        with self._lock:
            return self._sha256.setdefault(key, digest.hexdigest())

    def pdf_bytes(self, verzoeknummer: str, volgnummer: int | None = None) -> bytes:
        """The PDF served for a stored version (default: the latest)."""
        with self._lock:
            versies = self._versies[verzoeknummer]
            return _fake_pdf(versies[volgnummer if volgnummer is not None else max(versies)])

    def notificatie(self, verzoeknummer: str, volgnummer: int | None = None) -> bytes:
        """The verzoeknotificatie the DSO would send for a stored version (default: the latest)."""
        with self._lock:
            versies = self._versies[verzoeknummer]
            v = versies[volgnummer if volgnummer is not None else max(versies)]
        ui = f"<vn:uitvoerendeInstantie><vn:oin>{v.uitvoerende_instantie}</vn:oin></vn:uitvoerendeInstantie>"
        xml = (
            f'<vn:verzoeknotificatie xmlns:vn="{stam.VERZOEKNOTIFICATIE}"><vn:verzoeknummer>{v.verzoeknummer}'
            f"</vn:verzoeknummer><vn:volgnummer>{v.volgnummer}</vn:volgnummer><vn:doel>{v.doel}</vn:doel>"
            f"<vn:bevoegdGezag><vn:oin>{v.bevoegd_gezag}</vn:oin></vn:bevoegdGezag>"
            f"{ui if v.uitvoerende_instantie else ''}</vn:verzoeknotificatie>"
        ).encode()
        with self._lock:
            self._notif_schema.assertValid(etree.fromstring(xml))
        return xml

    # -- test helpers -------------------------------------------------------------------------------------

    def fail_next(
        self,
        path_suffix: str,
        *,
        status: int | None = 503,
        times: int = 1,
        delay: float = 0.0,
        corrupt: bool = False,
        cut_after: int | None = None,
    ) -> None:
        """Spoil the next ``times`` requests whose path ends with ``path_suffix`` (any method, after the
        X-Oin check). ``delay``: wait that long first. Then answer ``status`` (problem+json), or, with
        ``corrupt`` / ``cut_after``, the normal answer with one byte flipped in the middle of the body /
        the connection closed after ``cut_after`` body bytes. ``status=None``: only the delay."""
        with self._lock:
            self._faults.append(Fault(path_suffix, status, times, delay, corrupt, cut_after))

    def clear_faults(self) -> None:
        """The werkmap is back: faults not yet taken are dropped."""
        with self._lock:
            self._faults.clear()

    @property
    def pending_faults(self) -> int:
        with self._lock:
            return len(self._faults)

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    @property
    def transfers(self) -> list[Transfer]:
        with self._lock:
            return list(self._transfers)

    def _take_fault(self, path: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if path.endswith(fault.path_suffix):
                    fault.times -= 1
                    if fault.times <= 0:
                        self._faults.remove(fault)
                    return fault
        return None

    # -- HTTP ---------------------------------------------------------------------------------------------

    async def _endpoint(self, request: Request) -> Response:
        path = request.url.path
        response = await self._respond(request, path)
        with self._lock:
            self._requests.append(RecordedRequest(request.method, path, response.status_code))
        return response

    async def _respond(self, request: Request, path: str) -> Response:
        if not path.startswith(self.base_path + "/"):
            return _problem(404, "Not Found", f"no API under {path}")
        if request.headers.get(stam.OIN_HEADER) != self.oin:
            return _problem(403, "Forbidden", f"header {stam.OIN_HEADER} must carry the OIN this werkmap serves")
        fault = self._take_fault(path)
        if fault and fault.delay:
            await asyncio.sleep(fault.delay)
        damage = fault is not None and (fault.corrupt or fault.cut_after is not None)
        if fault and fault.status is not None and not damage:
            return _problem(fault.status, "Injected fault", f"fail_next({fault.path_suffix!r})")
        try:
            response = await self._route(request, path[len(self.base_path) :])
        except _Problem as p:
            response = _problem(p.status, p.title, p.detail)
        return _Damaged(response, fault) if fault and damage else response

    async def _route(self, request: Request, rel: str) -> Response:
        method = request.method
        if rel == stam.ZOEK:
            return await self._zoek(request) if method == "POST" else _problem(405, "Method Not Allowed", rel)
        m = re.fullmatch(r"/verzoeken/([^/]+)/(verzoekreferenties|samenvatting|pdf|_overdragen)", rel)
        if m:
            if (method == "POST") != (m[2] == "_overdragen") or method not in ("GET", "POST"):
                return _problem(405, "Method Not Allowed", rel)
            versie = self._versie(m[1], request.query_params.get(stam.VOLGNUMMER_PARAM))
            if m[2] == "verzoekreferenties":
                return await self._referenties(request, versie)
            if m[2] == "samenvatting":
                return Response(versie.xml, media_type="application/xml")
            if m[2] == "pdf":
                if not versie.pdf:
                    raise _Problem(404, "Not Found", f"verzoek {versie.verzoeknummer} has no PDF")
                return Response(_fake_pdf(versie), media_type="application/pdf")
            return await self._overdragen(request, versie)
        m = re.fullmatch(r"/documenten/([^/]+)", rel)
        if m:
            return self._document(request, m[1]) if method == "GET" else _problem(405, "Method Not Allowed", rel)
        raise _Problem(404, "Not Found", f"no such resource: {rel}")

    def _versie(self, nummer: str, volgnummer: str | None) -> _Versie:
        with self._lock:
            versies = {k: v for k, v in self._versies.get(nummer, {}).items() if self.oin in v.oins}
        if not versies:
            raise _Problem(404, "Not Found", f"verzoek {nummer} is not in the werkmap")
        if volgnummer is None:
            return versies[max(versies)]
        if not volgnummer.isdigit():
            raise _Problem(400, "Bad Request", f"{stam.VOLGNUMMER_PARAM} must be a positive integer")
        if int(volgnummer) not in versies:
            raise _Problem(404, "Not Found", f"verzoek {nummer} has no volgnummer {volgnummer}")
        return versies[int(volgnummer)]

    async def _referenties(self, request: Request, v: _Versie) -> Response:
        base = f"{request.url.scheme}://{request.url.netloc}{self.base_path}"
        query = f"?{stam.VOLGNUMMER_PARAM}={v.volgnummer}"
        documenten: list[stam.WerkmapDocument] = []
        for doc_id, naam in v.documenten:
            sha = await run_in_threadpool(self.document_sha256, doc_id)
            documenten.append(
                {
                    "documentId": doc_id,
                    "bestandsnaam": naam,
                    "href": base + stam.document(doc_id),
                    "sha256": sha,
                    "grootte": self._documents[doc_id].size,
                }
            )
        body: stam.VerzoekReferenties = {
            "verzoeknummer": v.verzoeknummer,
            "volgnummer": v.volgnummer,
            "verzoek": {"href": base + stam.samenvatting(v.verzoeknummer) + query},
            "documenten": documenten,
        }
        if v.pdf:
            body["pdf"] = {"href": base + stam.pdf(v.verzoeknummer) + query}
        return JSONResponse(body)

    def _document(self, request: Request, doc_id: str) -> Response:
        with self._lock:
            doc = self._documents.get(doc_id)
        if doc is None or self.oin not in doc.oins:
            raise _Problem(404, "Not Found", f"document {doc_id} is not in the werkmap")
        size, status = doc.size, 200
        headers = {"Accept-Ranges": "bytes", "Content-Disposition": f'attachment; filename="{doc.bestandsnaam}"'}
        start, end = 0, size
        if "range" in request.headers:
            try:
                rng = byte_range(request.headers["range"], size)
            except ValueError as exc:
                return _problem(416, "Range Not Satisfiable", str(exc), {"Content-Range": f"bytes */{size}"})
            if rng is not None:
                (start, end), status = rng, 206
                headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
        headers["Content-Length"] = str(end - start)
        media = mimetypes.guess_type(doc.bestandsnaam)[0] or "application/octet-stream"
        return StreamingResponse(document_bytes(doc_id, size, start, end), status, headers, media)

    async def _json_body(self, request: Request) -> dict[str, Any]:
        try:
            body = json.loads(await request.body())
        except (ValueError, UnicodeDecodeError):
            raise _Problem(400, "Bad Request", "body is not JSON") from None
        if not isinstance(body, dict):
            raise _Problem(400, "Bad Request", "body must be a JSON object")
        return body

    async def _zoek(self, request: Request) -> Response:
        body = await self._json_body(request)
        if "vanaf" not in body:
            raise _Problem(400, "Bad Request", "vanaf is required")
        vanaf = _instant(body["vanaf"], "vanaf")
        tot = _instant(body["tot"], "tot") if body.get("tot") is not None else None
        pagina, grootte = body.get("pagina", 1), body.get("paginagrootte", self.page_size_max)
        for name, value, high in (("pagina", pagina, None), ("paginagrootte", grootte, self.page_size_max)):
            if type(value) is not int or value < 1 or (high is not None and value > high):
                raise _Problem(
                    400, "Bad Request", f"{name} must be an integer from 1" + (f" to {high}" if high else "")
                )
        with self._lock:
            hits = sorted(
                (v for vs in self._versies.values() for v in vs.values()
                 if self.oin in v.oins and vanaf <= v.ingediend and (tot is None or v.ingediend < tot)),
                key=lambda v: (v.ingediend, v.verzoeknummer, v.volgnummer),
            )  # fmt: skip
        page = hits[(pagina - 1) * grootte : pagina * grootte]
        answer: stam.ZoekAntwoord = {
            "verzoeken": [
                {
                    "verzoeknummer": v.verzoeknummer,
                    "volgnummer": v.volgnummer,
                    "doel": v.doel,
                    "indiendatum": v.indiendatum,
                }
                for v in page
            ],
            "pagina": pagina,
            "aantalPaginas": -(-len(hits) // grootte),
        }
        return JSONResponse(answer)

    async def _overdragen(self, request: Request, v: _Versie) -> Response:
        body = await self._json_body(request)
        naar, rol, toelichting = body.get("naarOin"), body.get("rol"), body.get("toelichting")
        if not isinstance(naar, str) or not re.fullmatch(r"[0-9]{20}", naar):
            raise _Problem(400, "Bad Request", "naarOin must be an OIN of 20 digits")
        if rol not in stam.ROLLEN:
            raise _Problem(400, "Bad Request", f"rol must be one of {', '.join(stam.ROLLEN)}")
        if toelichting is not None and not isinstance(toelichting, str):
            raise _Problem(400, "Bad Request", "toelichting must be a string")
        with self._lock:
            self._transfers.append(Transfer(v.verzoeknummer, naar, rol, toelichting))
        return Response(status_code=202)


def _fake_pdf(v: _Versie) -> bytes:
    text = f"Verzoek {v.verzoeknummer} volgnummer {v.volgnummer} ({v.doel})"
    return f"%PDF-1.4\n% fake publiceerbare PDF: {text}\n%%EOF\n".encode()


class _Damaged(Response):
    """The same answer with one byte flipped in the middle and/or the body cut after ``cut_after`` bytes.
    A cut leaves the response incomplete (Content-Length still promises the whole body), so the server
    closes the connection and the client sees a broken transfer, not a short file."""

    def __init__(self, inner: Response, fault: Fault) -> None:
        self.inner, self.fault, self.status_code, self.background = inner, fault, inner.status_code, None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        inner, limit = self.inner, self.fault.cut_after
        flip = int(inner.headers.get("content-length", "0")) // 2 if self.fault.corrupt else -1
        await send({"type": "http.response.start", "status": inner.status_code, "headers": inner.raw_headers})
        source = inner.body_iterator if isinstance(inner, StreamingResponse) else _once(bytes(inner.body))
        pos = 0
        async for part in source:
            chunk = part.encode() if isinstance(part, str) else bytes(part)
            if limit is not None:
                chunk = chunk[: max(limit - pos, 0)]
            if pos <= flip < pos + len(chunk):
                chunk = chunk[: flip - pos] + bytes([chunk[flip - pos] ^ 0xFF]) + chunk[flip - pos + 1 :]
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
            pos += len(chunk)
            if limit is not None and pos >= limit:
                return
        await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _once(data: bytes) -> AsyncIterator[bytes]:
    yield data


# -- serving over TLS -------------------------------------------------------------------------------------
