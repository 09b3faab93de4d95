"""The one module that speaks to DSO samenwerken (advice in the DSO era, contract §4), and the one place
that holds its reconstructed details, so the official SWF v4 shapes can replace them here.

Contract §4 (reconstructed paths, relative to ``[samenwerken] base_url``)::

    POST   /samenwerkingen                                   {"verzoeknummer", "titel"} → {"samenwerkingId"}
    POST   /samenwerkingen/{id}/documenten                   multipart ``bestand`` → {"documentId"}
    POST   /samenwerkingen/{id}/actieverzoeken               {"type": "advies", "ontvangerOin", "omschrijving",
                                                              "einddatum", "documentIds"} → {"actieverzoekId",
                                                              "status": "UITGEZET"}
    PATCH  /samenwerkingen/{id}/actieverzoeken/{aid}         {"status": "INGETROKKEN"}
    GET    /notificaties?sinds=<iso>                         → [{"notificatieId", "type", "samenwerkingId",
                                                              "actieverzoekId", "documentIds"}]
    DELETE /notificaties/{notificatieId}                     acknowledges one
    GET    /samenwerkingen/{id}/documenten/{documentId}      → the file bytes

**Reconstructed here, beyond §4** (what a retry and the advice need; the public SWF v4 description lists
"view a samenwerking", "view actieverzoeken" and document listings, not their shapes):

- ``kenmerk``: our own reference on a samenwerking and an actieverzoek (the adviesverzoekId). Sent on
  create and returned on every read, so a retry after a lost answer *finds* what it made instead of making
  a second: ``GET /samenwerkingen?verzoeknummer=`` lists the samenwerkingen of a verzoek, ``GET
  /samenwerkingen/{id}/actieverzoeken`` those of a samenwerking, and we pick **by kenmerk, never by list
  order** (two with our kenmerk is an error naming both).
- ``GET /samenwerkingen/{id}/documenten`` → ``[{"documentId", "bestandsnaam", "sha256", "grootte"}]``: an
  upload is found again by name and sha256.
- ``GET /samenwerkingen/{id}/actieverzoeken/{aid}`` → ``{"actieverzoekId", "kenmerk", "status",
  "strekking", "toelichting", "afgerondOp", "documentIds"}``: the advice the adviseur gave when it completed
  the actieverzoek (status ``GEREED``). The notification names it; the strekking is read here.
- Every call carries ``X-Oin: <our OIN>`` (as the werkmap) and our PKIoverheid client certificate.
- Errors are ``application/problem+json``; 409 on a PATCH to a status the actieverzoek already has.

Failures map to ``adapter.errors``: 5xx, 408/425/429 and transport errors are transient (the outbox or the
next poll retries), any other 4xx is ``TargetRefused``.
"""

from __future__ import annotations

import json
import ssl
import threading
from datetime import date, datetime
from pathlib import Path
from typing import Any, TypedDict
from urllib.parse import quote

import certifi
import httpx
from pydantic import Field

from adapter import recording
from adapter.envsubst import redact_url
from adapter.errors import Ambiguous, TargetError, TargetRefused, http_failure
from adapter.logs import get_logger
from adapter.loket.dso_api import DsoApiOptions, one_line
from adapter.store.files import ContentMismatch, FileStore

log = get_logger(__name__)

OIN_HEADER = "X-Oin"
#: The path part of the public pre-production base URL (SWF REST v4).
DEFAULT_BASE_PATH = "/overheid/samenwerken/api/behandelen/v4"
PROBLEM_JSON = "application/problem+json"

#: Actieverzoek states (``status``) and the notification type the adapter acts on.
UITGEZET = "UITGEZET"
GEREED = "GEREED"
INGETROKKEN = "INGETROKKEN"
ACTIEVERZOEK_GEREED = "ACTIEVERZOEK_GEREED"
#: The actieverzoek ``type`` of an adviesverzoek.
ADVIES = "advies"


# -- paths --------------------------------------------------------------------------------------------------


def _q(part: str) -> str:
    return quote(str(part), safe="")


SAMENWERKINGEN = "/samenwerkingen"
NOTIFICATIES = "/notificaties"


def samenwerking(sid: str) -> str:
    return f"{SAMENWERKINGEN}/{_q(sid)}"


def documenten(sid: str) -> str:
    return f"{samenwerking(sid)}/documenten"


def document(sid: str, document_id: str) -> str:
    return f"{documenten(sid)}/{_q(document_id)}"


def actieverzoeken(sid: str) -> str:
    return f"{samenwerking(sid)}/actieverzoeken"


def actieverzoek(sid: str, aid: str) -> str:
    return f"{actieverzoeken(sid)}/{_q(aid)}"


def notificatie(nid: str) -> str:
    return f"{NOTIFICATIES}/{_q(nid)}"


# -- shapes -------------------------------------------------------------------------------------------------


class Notificatie(TypedDict):
    notificatieId: str
    type: str
    samenwerkingId: str
    actieverzoekId: str
    documentIds: list[str]


class Actieverzoek(TypedDict, total=False):
    actieverzoekId: str
    kenmerk: str
    status: str
    strekking: str | None
    toelichting: str | None
    afgerondOp: str | None
    documentIds: list[str]


class Document(TypedDict):
    documentId: str
    bestandsnaam: str
    sha256: str
    grootte: int


def read_notificatie(item: Any) -> Notificatie:
    """One notification, checked; ``TargetRefused`` names what is wrong (an operator must look)."""
    if not isinstance(item, dict):
        raise TargetRefused("samenwerken notificatie is not an object")
    for k in ("notificatieId", "type", "samenwerkingId", "actieverzoekId"):
        if not isinstance(item.get(k), str) or not item[k].strip():
            raise TargetRefused(f"samenwerken notificatie {item.get('notificatieId')!r}: {k} missing")
    ids = item.get("documentIds") or []
    if not isinstance(ids, list) or not all(isinstance(d, str) and d for d in ids):
        raise TargetRefused(f"samenwerken notificatie {item['notificatieId']}: documentIds is not a list of ids")
    return Notificatie(
        notificatieId=item["notificatieId"],
        type=item["type"],
        samenwerkingId=item["samenwerkingId"],
        actieverzoekId=item["actieverzoekId"],
        documentIds=list(ids),
    )


def notificatie_body(n: Notificatie) -> bytes:
    """The notification as we store it (canonical JSON: the same notification is the same bytes)."""
    return json.dumps(n, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode()


# -- client -------------------------------------------------------------------------------------------------


class SamenwerkenOptions(DsoApiOptions):
    """``[samenwerken]``: where the samenwerken API is and as whom we call it, e.g. base_url
    ``https://pkio.service.pre.omgevingswet.overheid.nl/overheid/samenwerken/api/behandelen/v4``; our OIN
    is also the OIN the advice is routed for in the mappings."""

    #: ``samenwerken-poll`` asks for notifications of the last this many days (unacknowledged ones stay).
    lookback_days: float = Field(30.0, gt=0)


def _error_text(r: httpx.Response) -> str:
    try:
        problem = r.json()
    except ValueError:
        return one_line(r.text[:300])
    if isinstance(problem, dict):
        return one_line(": ".join(str(problem[k]) for k in ("title", "detail") if problem.get(k)))[:300]
    return ""


class SamenwerkenClient:
    def __init__(self, options: SamenwerkenOptions, files: FileStore) -> None:
        self.options = options
        self.files = files
        self._base = options.base_url.rstrip("/")
        self._http: httpx.Client | None = None
        self._lock = threading.Lock()

    def _session(self) -> httpx.Client:
        with self._lock:
            if self._http is None:
                o = self.options
                try:
                    ctx = ssl.create_default_context(cafile=o.ca_bundle or certifi.where())
                    if o.client_cert:
                        ctx.load_cert_chain(o.client_cert, o.client_key)
                except (OSError, ssl.SSLError) as exc:
                    raise TargetError(one_line(f"TLS setup for {o.base_url}: {type(exc).__name__}: {exc}")) from None
                self._http = httpx.Client(
                    verify=ctx,
                    timeout=httpx.Timeout(o.timeout),
                    headers={OIN_HEADER: o.oin},
                    follow_redirects=False,
                    event_hooks=recording.EVENT_HOOKS,
                    transport=recording.transport(),
                )
            return self._http

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None

    def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        url = self._base + path
        what = f"samenwerken {method} {redact_url(url)}"
        try:
            r = self._session().request(method, url, **kwargs)
        except httpx.TimeoutException:
            raise TargetError(f"{what}: timeout: no answer within {self.options.timeout:g} s") from None
        except httpx.TransportError as exc:
            raise TargetError(one_line(f"{what}: connection error: {type(exc).__name__}: {exc}")) from None
        if r.status_code >= 400:
            body = _error_text(r)
            raise http_failure(r.status_code, f"{what}: HTTP {r.status_code}" + (f": {body}" if body else ""))
        return r

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        r = self._call(method, path, **kwargs)
        if not r.content.strip():
            return None
        try:
            return r.json()
        except ValueError:
            raise TargetRefused(f"samenwerken {method} {path}: HTTP {r.status_code}: not JSON") from None

    @staticmethod
    def _ours(items: Any, kenmerk: str, what: str, id_key: str) -> dict[str, Any] | None:
        """The one item whose kenmerk is ours (never the first or last of a list); two is ``Ambiguous``."""
        if not isinstance(items, list):
            raise TargetRefused(f"samenwerken: {what}: answer is not a list")
        mine = [i for i in items if isinstance(i, dict) and i.get("kenmerk") == kenmerk]
        if len(mine) > 1:
            ids = ", ".join(str(i.get(id_key)) for i in mine)
            raise Ambiguous(f"samenwerken: {what}: {len(mine)} with our kenmerk {kenmerk} ({ids}); look first")
        return mine[0] if mine else None

    # -- out: the adviesverzoek ---------------------------------------------------------------------------

    def find_samenwerking(self, verzoeknummer: str, kenmerk: str) -> str | None:
        """The samenwerking with our ``kenmerk`` on this verzoek, if one exists (a retry after a lost answer)."""
        found = self._ours(
            self._json("GET", SAMENWERKINGEN, params={"verzoeknummer": verzoeknummer}),
            kenmerk,
            f"samenwerkingen of verzoek {verzoeknummer}",
            "samenwerkingId",
        )
        return str(found["samenwerkingId"]) if found is not None else None

    def start_samenwerking(self, verzoeknummer: str, titel: str, kenmerk: str) -> str:
        body = {"verzoeknummer": verzoeknummer, "titel": titel[:200], "kenmerk": kenmerk}
        made = self._json("POST", SAMENWERKINGEN, json=body)
        if not isinstance(made, dict) or not made.get("samenwerkingId"):
            raise TargetRefused("samenwerken POST /samenwerkingen: answer has no samenwerkingId")
        return str(made["samenwerkingId"])

    def find_document(self, sid: str, bestandsnaam: str, sha256: str) -> str | None:
        """A document of the samenwerking with this name and content (the same bytes: any one will do)."""
        for d in self.documenten(sid):
            if (d.get("bestandsnaam"), d.get("sha256")) == (bestandsnaam, sha256):
                return str(d["documentId"])
        return None

    def upload_document(self, sid: str, bestandsnaam: str, path: Path, mime_type: str | None) -> str:
        with open(path, "rb") as f:
            files = {"bestand": (bestandsnaam, f, mime_type or "application/octet-stream")}
            made = self._json("POST", documenten(sid), files=files)
        if not isinstance(made, dict) or not made.get("documentId"):
            raise TargetRefused(f"samenwerken POST {documenten(sid)}: answer has no documentId")
        return str(made["documentId"])

    def find_actieverzoek(self, sid: str, kenmerk: str) -> str | None:
        """The actieverzoek with our ``kenmerk`` in the samenwerking, if one exists."""
        found = self._ours(
            self._json("GET", actieverzoeken(sid)), kenmerk, f"actieverzoeken of samenwerking {sid}", "actieverzoekId"
        )
        return str(found["actieverzoekId"]) if found is not None else None

    def put_out_actieverzoek(
        self,
        sid: str,
        kenmerk: str,
        ontvanger_oin: str,
        omschrijving: str,
        einddatum: date,
        document_ids: list[str],
    ) -> str:
        """Put out an advice actieverzoek to ``ontvanger_oin``; its id."""
        body = {
            "type": ADVIES,
            "kenmerk": kenmerk,
            "ontvangerOin": ontvanger_oin,
            "omschrijving": omschrijving[:1000],
            "einddatum": einddatum.isoformat(),
            "documentIds": document_ids,
        }
        made = self._json("POST", actieverzoeken(sid), json=body)
        if not isinstance(made, dict) or not made.get("actieverzoekId"):
            raise TargetRefused(f"samenwerken POST {actieverzoeken(sid)}: answer has no actieverzoekId")
        return str(made["actieverzoekId"])

    def intrekken(self, sid: str, aid: str) -> str:
        """Withdraw the actieverzoek; one already withdrawn (409, or status INGETROKKEN) is fine."""
        try:
            self._json("PATCH", actieverzoek(sid, aid), json={"status": INGETROKKEN})
        except TargetRefused as exc:
            if exc.status != 409:
                raise
            status = self.actieverzoek(sid, aid).get("status")
            if status != INGETROKKEN:
                raise TargetRefused(f"{exc} (status {status}: it cannot be withdrawn)", 409) from None
            return "was already ingetrokken"
        return "ingetrokken"

    # -- in: the advice -----------------------------------------------------------------------------------

    def actieverzoek(self, sid: str, aid: str) -> Actieverzoek:
        got = self._json("GET", actieverzoek(sid, aid))
        if not isinstance(got, dict) or got.get("actieverzoekId") != aid:
            raise TargetRefused(f"samenwerken GET {actieverzoek(sid, aid)}: not the actieverzoek asked for")
        return Actieverzoek(**{k: got[k] for k in Actieverzoek.__annotations__ if k in got})  # type: ignore[typeddict-item]

    def notificaties(self, sinds: datetime) -> list[Notificatie]:
        """Every notification since ``sinds`` that was not acknowledged yet (checked one by one)."""
        got = self._json("GET", NOTIFICATIES, params={"sinds": sinds.isoformat()})
        if not isinstance(got, list):
            raise TargetRefused("samenwerken GET /notificaties: answer is not a list")
        return [read_notificatie(item) for item in got]

    def bevestigen(self, nid: str) -> None:
        """Acknowledge one notification (it is gone from the list); one already gone (404) is fine."""
        try:
            self._call("DELETE", notificatie(nid))
        except TargetRefused as exc:
            if exc.status != 404:
                raise

    def documenten(self, sid: str) -> list[Document]:
        listed = self._json("GET", documenten(sid))
        if not isinstance(listed, list):
            raise TargetRefused(f"samenwerken GET {documenten(sid)}: answer is not a list")
        return [d for d in listed if isinstance(d, dict)]  # type: ignore[misc]

    def download(self, sid: str, doc: Document) -> Path:
        """One document of the samenwerking into the file store (checked against its sha256 and size)."""
        sha, size = str(doc["sha256"]).lower(), int(doc["grootte"])
        if self.files.has(sha, size):
            return self.files.path_for(sha)
        url = self._base + document(sid, doc["documentId"])
        what = f"samenwerken GET {redact_url(url)}"
        try:
            with self.files.writer(sha, size, resume=False) as w, self._session().stream("GET", url) as r:
                if r.status_code >= 400:
                    r.read()
                    raise http_failure(r.status_code, f"{what}: HTTP {r.status_code}: {_error_text(r)}")
                for chunk in r.iter_bytes():
                    w.write(chunk)
                return w.commit()
        except ContentMismatch as exc:
            raise TargetError(f"{what}: {exc}") from None
        except httpx.TransportError as exc:
            raise TargetError(one_line(f"{what}: connection error: {type(exc).__name__}: {exc}")) from None
