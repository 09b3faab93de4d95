"""A fake DSO samenwerken server (contract §4 and the reconstructed reads in ``adapter.loket.samenwerken``)
for tests and the ketensimulatie. Written from the contract, strict about what it receives:

- every request carries ``X-Oin`` with the OIN the fake serves (else 403); a samenwerking is the caller's;
- ``POST /samenwerkingen`` needs a verzoeknummer and a titel (texts), ``kenmerk`` optional;
- a document upload is ``multipart/form-data`` with exactly one file part ``bestand`` that has a file name;
- an actieverzoek needs ``type`` ``advies``, a 20-digit ``ontvangerOin`` other than the caller's, an
  ``omschrijving``, an ``einddatum`` (ISO date, not in the past) and ``documentIds`` that are documents of
  *that* samenwerking; unknown fields are refused (400, problem+json naming them);
- ``PATCH`` only to ``INGETROKKEN``, and only from ``UITGEZET`` (409 otherwise, as for a second one).

Awkward habits of a real server: every list is **newest first** (so a client that takes the first or last
item gets the wrong one); ``GET /notificaties?sinds=`` returns every unacknowledged notification again on
each call until it is deleted; ids are opaque UUIDs. ``fail_next(path_suffix, status, after=True)`` makes
the next matching request *do its work and then* answer ``status`` (a lost answer); ``after=False`` fails
before doing anything. ``requests`` records (method, path, status) of every request.

Playing the adviseur: ``complete(actieverzoek_id, strekking, bestandsnaam, data)`` adds the advice document
to the samenwerking, sets the actieverzoek ``GEREED`` with the strekking, and queues an
``ACTIEVERZOEK_GEREED`` notification. ``acknowledged`` lists the notifications deleted, in order.

Serve it with ``adapter.simulation.serving.serve_in_thread(fake.app)``; the API is under ``base_path``
(the public v4 path by default), as ``[samenwerken] base_url`` = the served URL + that path.
"""

from __future__ import annotations

import email.parser
import email.policy
import hashlib
import json
import re
import threading
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, NamedTuple

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from adapter.loket import samenwerken as sw

DEFAULT_OIN = "00000001002564440000"
_OIN = re.compile(r"^\d{20}$")


class RecordedRequest(NamedTuple):
    method: str
    path: str
    status: int


@dataclass
class _Document:
    document_id: str
    bestandsnaam: str
    data: bytes
    mime_type: str
    by: str  # the OIN that uploaded it

    def listed(self) -> dict[str, Any]:
        sha = hashlib.sha256(self.data).hexdigest()
        naam = self.bestandsnaam
        return {"documentId": self.document_id, "bestandsnaam": naam, "sha256": sha, "grootte": len(self.data)}


@dataclass
class _Actieverzoek:
    actieverzoek_id: str
    kenmerk: str | None
    ontvanger_oin: str
    omschrijving: str
    einddatum: str
    document_ids: list[str]
    status: str = sw.UITGEZET
    strekking: str | None = None
    toelichting: str | None = None
    afgerond_op: str | None = None
    advies_documenten: list[str] = field(default_factory=list)

    def shown(self) -> dict[str, Any]:
        return {
            "actieverzoekId": self.actieverzoek_id,
            "type": sw.ADVIES,
            "kenmerk": self.kenmerk,
            "ontvangerOin": self.ontvanger_oin,
            "omschrijving": self.omschrijving,
            "einddatum": self.einddatum,
            "status": self.status,
            "strekking": self.strekking,
            "toelichting": self.toelichting,
            "afgerondOp": self.afgerond_op,
            "documentIds": list(self.advies_documenten if self.status == sw.GEREED else self.document_ids),
        }


@dataclass
class _Samenwerking:
    samenwerking_id: str
    verzoeknummer: str
    titel: str
    kenmerk: str | None
    eigenaar: str
    documenten: dict[str, _Document] = field(default_factory=dict)  # insertion order = upload order
    actieverzoeken: dict[str, _Actieverzoek] = field(default_factory=dict)

    def shown(self) -> dict[str, Any]:
        return {
            "samenwerkingId": self.samenwerking_id,
            "verzoeknummer": self.verzoeknummer,
            "titel": self.titel,
            "kenmerk": self.kenmerk,
        }


@dataclass
class _Fault:
    method: str
    path_suffix: str
    status: int
    after: bool
    times: int


class _Problem(Exception):
    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status, self.detail = status, detail


_TITLES = {400: "Bad Request", 403: "Forbidden", 404: "Not Found", 409: "Conflict", 500: "Internal Server Error"}


def _problem(status: int, detail: str) -> Response:
    body = {"type": "about:blank", "title": _TITLES.get(status, "Error"), "status": status, "detail": detail}
    return JSONResponse(body, status_code=status, media_type=sw.PROBLEM_JSON)


def _text(data: dict[str, Any], key: str, *, required: bool = True) -> str | None:
    value = data.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise _Problem(400, f"{key}: a non-empty text is required")
    return value


def _only(data: Any, allowed: set[str]) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise _Problem(400, "the body is not a JSON object")
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise _Problem(400, f"unknown fields: {', '.join(unknown)}")
    return data


class FakeSamenwerken:
    """In-memory samenwerken serving one OIN; ``app`` is the Starlette application."""

    def __init__(
        self, *, oin: str = DEFAULT_OIN, today: date | None = None, base_path: str = sw.DEFAULT_BASE_PATH
    ) -> None:
        self.oin = oin
        self.base_path = base_path.rstrip("/")
        self.today = today
        self._lock = threading.Lock()
        self.samenwerkingen: dict[str, _Samenwerking] = {}
        self._notificaties: list[tuple[datetime, sw.Notificatie]] = []
        self.acknowledged: list[str] = []
        self.requests: list[RecordedRequest] = []
        self._faults: list[_Fault] = []
        self.app = Starlette(routes=[Route("/{rest:path}", self._endpoint, methods=["GET", "POST", "PATCH", "DELETE"])])

    # -- test controls ------------------------------------------------------------------------------------

    def fail_next(
        self, method: str, path_suffix: str, status: int = 500, *, after: bool = True, times: int = 1
    ) -> None:
        """The next ``times`` requests ``method`` whose path ends with ``path_suffix`` answer ``status``;
        with ``after`` the work is done first (the answer is lost), else nothing is done."""
        with self._lock:
            self._faults.append(_Fault(method, path_suffix, status, after, times))

    def actieverzoeken(self) -> list[tuple[str, _Actieverzoek]]:
        """(samenwerkingId, actieverzoek) of every actieverzoek, in the order they were made."""
        with self._lock:
            return [(s.samenwerking_id, a) for s in self.samenwerkingen.values() for a in s.actieverzoeken.values()]

    def pending_notificaties(self) -> list[sw.Notificatie]:
        with self._lock:
            return [n for _, n in self._notificaties]

    def complete(
        self,
        actieverzoek_id: str,
        strekking: str,
        bestandsnaam: str,
        data: bytes,
        *,
        toelichting: str | None = None,
        mime_type: str = "application/pdf",
    ) -> sw.Notificatie:
        """Play the adviseur: give the advice (document + strekking); queue the ACTIEVERZOEK_GEREED notification."""
        with self._lock:
            for s in self.samenwerkingen.values():
                a = s.actieverzoeken.get(actieverzoek_id)
                if a is None:
                    continue
                if a.status != sw.UITGEZET:
                    raise ValueError(f"actieverzoek {actieverzoek_id} is {a.status}, not {sw.UITGEZET}")
                doc = _Document(str(uuid.uuid4()), bestandsnaam, data, mime_type, a.ontvanger_oin)
                s.documenten[doc.document_id] = doc
                now = datetime.now(UTC)
                a.status, a.strekking, a.toelichting = sw.GEREED, strekking, toelichting
                a.afgerond_op, a.advies_documenten = now.isoformat(), [doc.document_id]
                n = sw.Notificatie(
                    notificatieId=str(uuid.uuid4()),
                    type=sw.ACTIEVERZOEK_GEREED,
                    samenwerkingId=s.samenwerking_id,
                    actieverzoekId=actieverzoek_id,
                    documentIds=[doc.document_id],
                )
                self._notificaties.append((now, n))
                return n
        raise KeyError(actieverzoek_id)

    # -- HTTP ---------------------------------------------------------------------------------------------

    async def _endpoint(self, request: Request) -> Response:
        path, method = request.url.path, request.method
        fault = self._fault(method, path)
        if fault is not None and not fault.after:
            return self._record(method, path, _problem(fault.status, "injected failure"))
        try:
            if request.headers.get(sw.OIN_HEADER) != self.oin:
                raise _Problem(403, f"{sw.OIN_HEADER} missing or not the OIN this samenwerken serves")
            if not path.startswith(self.base_path + "/"):
                raise _Problem(404, f"not under {self.base_path}")
            rest = path[len(self.base_path) :]
            response = await self._route(request, method, [p for p in rest.split("/") if p])
        except _Problem as exc:
            response = _problem(exc.status, exc.detail)
        if fault is not None and response.status_code < 400:
            response = _problem(fault.status, "injected failure after the work was done")
        return self._record(method, path, response)

    def _fault(self, method: str, path: str) -> _Fault | None:
        with self._lock:
            for f in self._faults:
                if f.method == method and path.endswith(f.path_suffix) and f.times > 0:
                    f.times -= 1
                    return f
        return None

    def _record(self, method: str, path: str, response: Response) -> Response:
        with self._lock:
            self.requests.append(RecordedRequest(method, path, response.status_code))
        return response

    async def _json_body(self, request: Request) -> Any:
        if not request.headers.get("content-type", "").startswith("application/json"):
            raise _Problem(400, "Content-Type must be application/json")
        try:
            return json.loads(await request.body())
        except ValueError as exc:
            raise _Problem(400, f"not JSON: {exc}") from None

    def _samenwerking(self, sid: str) -> _Samenwerking:
        s = self.samenwerkingen.get(sid)
        if s is None or s.eigenaar != self.oin:
            raise _Problem(404, f"no samenwerking {sid}")
        return s

    async def _route(self, request: Request, method: str, parts: list[str]) -> Response:
        match parts:
            case ["samenwerkingen"] if method == "GET":
                nummer = request.query_params.get("verzoeknummer")
                with self._lock:
                    found = [s.shown() for s in self.samenwerkingen.values() if nummer in (None, s.verzoeknummer)]
                return JSONResponse(found[::-1])
            case ["samenwerkingen"] if method == "POST":
                data = _only(await self._json_body(request), {"verzoeknummer", "titel", "kenmerk"})
                nummer, titel = _text(data, "verzoeknummer"), _text(data, "titel")
                kenmerk = _text(data, "kenmerk", required=False)
                s = _Samenwerking(str(uuid.uuid4()), nummer or "", titel or "", kenmerk, self.oin)
                with self._lock:
                    self.samenwerkingen[s.samenwerking_id] = s
                return JSONResponse({"samenwerkingId": s.samenwerking_id}, status_code=201)
            case ["samenwerkingen", sid, "documenten"] if method == "GET":
                with self._lock:
                    return JSONResponse([d.listed() for d in self._samenwerking(sid).documenten.values()][::-1])
            case ["samenwerkingen", sid, "documenten"] if method == "POST":
                self._samenwerking(sid)
                naam, inhoud, mime = self._file_part(request.headers.get("content-type", ""), await request.body())
                doc = _Document(str(uuid.uuid4()), naam, inhoud, mime, self.oin)
                with self._lock:
                    self._samenwerking(sid).documenten[doc.document_id] = doc
                return JSONResponse({"documentId": doc.document_id}, status_code=201)
            case ["samenwerkingen", sid, "documenten", did] if method == "GET":
                with self._lock:
                    d = self._samenwerking(sid).documenten.get(did)
                if d is None:
                    raise _Problem(404, f"no document {did} in samenwerking {sid}")
                return Response(d.data, media_type=d.mime_type)
            case ["samenwerkingen", sid, "actieverzoeken"] if method == "GET":
                with self._lock:
                    return JSONResponse([a.shown() for a in self._samenwerking(sid).actieverzoeken.values()][::-1])
            case ["samenwerkingen", sid, "actieverzoeken"] if method == "POST":
                allowed = {"type", "kenmerk", "ontvangerOin", "omschrijving", "einddatum", "documentIds"}
                a = self._new_actieverzoek(sid, _only(await self._json_body(request), allowed))
                with self._lock:
                    self._samenwerking(sid).actieverzoeken[a.actieverzoek_id] = a
                return JSONResponse({"actieverzoekId": a.actieverzoek_id, "status": a.status}, status_code=201)
            case ["samenwerkingen", sid, "actieverzoeken", aid] if method == "GET":
                with self._lock:
                    one = self._samenwerking(sid).actieverzoeken.get(aid)
                if one is None:
                    raise _Problem(404, f"no actieverzoek {aid} in samenwerking {sid}")
                return JSONResponse(one.shown())
            case ["samenwerkingen", sid, "actieverzoeken", aid] if method == "PATCH":
                data = _only(await self._json_body(request), {"status"})
                if data.get("status") != sw.INGETROKKEN:
                    raise _Problem(400, f"status: only {sw.INGETROKKEN} may be set")
                with self._lock:
                    target = self._samenwerking(sid).actieverzoeken.get(aid)
                    if target is None:
                        raise _Problem(404, f"no actieverzoek {aid} in samenwerking {sid}")
                    if target.status != sw.UITGEZET:
                        raise _Problem(409, f"actieverzoek {aid} is {target.status}")
                    target.status = sw.INGETROKKEN
                    return JSONResponse(target.shown())
            case ["notificaties"] if method == "GET":
                raw = request.query_params.get("sinds")
                try:
                    sinds = datetime.fromisoformat(raw) if raw else None
                except ValueError:
                    raise _Problem(400, f"sinds is not an ISO 8601 date-time: {raw!r}") from None
                if sinds is not None and sinds.tzinfo is None:
                    raise _Problem(400, "sinds needs a UTC offset")
                with self._lock:
                    found = [dict(n) for t, n in self._notificaties if sinds is None or t >= sinds]
                return JSONResponse(found[::-1])
            case ["notificaties", nid] if method == "DELETE":
                with self._lock:
                    kept = [(t, n) for t, n in self._notificaties if n["notificatieId"] != nid]
                    if len(kept) == len(self._notificaties):
                        raise _Problem(404, f"no notificatie {nid}")
                    self._notificaties = kept
                    self.acknowledged.append(nid)
                return Response(status_code=204)
        raise _Problem(404, f"no route {method} /{'/'.join(parts)}")

    @staticmethod
    def _file_part(content_type: str, body: bytes) -> tuple[str, bytes, str]:
        if not content_type.startswith("multipart/form-data"):
            raise _Problem(400, "a document is uploaded as multipart/form-data")
        head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
        msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
        parts = [p for p in msg.iter_parts()] if msg.is_multipart() else []
        files = [p for p in parts if p.get_param("name", header="content-disposition") == "bestand"]
        if len(files) != 1 or len(parts) != 1:
            raise _Problem(400, "exactly one part, the file 'bestand', is expected")
        naam = files[0].get_filename()
        if not naam or "/" in naam or "\\" in naam:
            raise _Problem(400, "the file part needs a plain file name")
        data = files[0].get_payload(decode=True)
        assert isinstance(data, bytes)
        return naam, data, files[0].get_content_type()

    def _new_actieverzoek(self, sid: str, data: dict[str, Any]) -> _Actieverzoek:
        if data.get("type") != sw.ADVIES:
            raise _Problem(400, f"type: only {sw.ADVIES!r} is supported")
        oin = _text(data, "ontvangerOin") or ""
        if not _OIN.match(oin):
            raise _Problem(400, "ontvangerOin: 20 digits")
        if oin == self.oin:
            raise _Problem(400, "ontvangerOin: you cannot ask yourself")
        omschrijving = _text(data, "omschrijving") or ""
        einddatum = _text(data, "einddatum") or ""
        try:
            eind = date.fromisoformat(einddatum)
        except ValueError:
            raise _Problem(400, f"einddatum: an ISO date, not {einddatum!r}") from None
        if eind < (self.today or date.today()):
            raise _Problem(400, f"einddatum {einddatum} has passed")
        ids = data.get("documentIds")
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise _Problem(400, "documentIds: a list of document ids")
        with self._lock:
            known = self._samenwerking(sid).documenten
            missing = [i for i in ids if i not in known]
        if missing:
            raise _Problem(400, f"documentIds: not documents of samenwerking {sid}: {', '.join(missing)}")
        kenmerk = _text(data, "kenmerk", required=False)
        return _Actieverzoek(str(uuid.uuid4()), kenmerk, oin, omschrijving, einddatum, list(ids))


def main() -> None:  # pragma: no cover - manual use
    import argparse

    import uvicorn

    p = argparse.ArgumentParser(description="fake DSO samenwerken server (contract §4)")
    p.add_argument("--port", type=int, default=8002)
    p.add_argument("--oin", default=DEFAULT_OIN)
    args = p.parse_args()
    uvicorn.run(FakeSamenwerken(oin=args.oin).app, host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":  # pragma: no cover
    main()
