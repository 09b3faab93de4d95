"""The one module that speaks HTTP to the werkmap ("Verzoek afhandelen" REST API, contract §3).

Every request carries our PKIoverheid client certificate and the ``X-Oin`` header. Transient failures
(HTTP 5xx and 429, timeouts, connection and TLS errors) are retried here, a few times with capped
exponential backoff, because a download of several GB should not wait for the outbox's next round over a
blip; when they persist, or at once for any other 4xx, a ``TargetError`` with one readable line (call, URL,
reason) goes up so the outbox retries later.

Documents go straight into the content-addressed ``FileStore``: one already there is never requested
again; a broken download resumes with ``Range``; bytes whose sha256 differs from the verzoekreferenties
are thrown away and fetched once more from scratch. Memory stays flat whatever the size. The verzoek's own
PDF has no sha256 in the referenties: it is streamed in, hashed on the way, and stored under that hash.

The STAM verzoek is only checked for being safe, well-formed XML with a ``verzoek`` root here; what it
holds is read laxly by ``adapter.loket.stam_parse.read_stam_verzoek`` (our schema is a reconstruction).
"""

from __future__ import annotations

import json
import re
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar, cast
from urllib.parse import urlsplit

import certifi
import httpx
from lxml import etree
from pydantic import Field

from adapter import recording
from adapter.envsubst import redact_url
from adapter.errors import TargetError, TargetRefused
from adapter.logs import get_logger
from adapter.loket import stam
from adapter.loket.dso_api import DsoApiOptions, one_line
from adapter.store.files import ContentMismatch, FileBusy, FileStore
from adapter.xmlsafe import XmlRejected, parse

log = get_logger(__name__)
T = TypeVar("T")

_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class WerkmapOptions(DsoApiOptions):
    """Where the werkmap is and as whom we fetch (OIN header + client certificate), e.g. base_url
    ``https://pkio.service.pre.omgevingswet.overheid.nl/overheid/verzoeken/api/afhandelen/v2``."""

    #: Extra attempts after the first for transient failures.
    retries: int = Field(3, ge=0, le=20)
    backoff_initial: float = Field(1.0, ge=0)
    backoff_max: float = Field(30.0, ge=0)


class _Transient(Exception):
    """One attempt failed in a way another attempt may fix; ``str()`` is the reason."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


def _tls_reason(exc: BaseException) -> str | None:
    """'TLS error: …' when an ssl error is somewhere in the exception chain."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError):
            return f"TLS error: certificate verify failed: {seen.verify_message or seen.reason}"
        if isinstance(seen, ssl.SSLError):
            return f"TLS error: {seen.reason or seen}"
        seen = seen.__cause__ or seen.__context__
    text = str(exc)
    if "SSL" in text or "CERTIFICATE" in text.upper():
        return f"TLS error: {text}"
    return None


def _error_text(r: httpx.Response, limit: int = 300) -> str:
    """Title and detail of a problem+json answer, else the start of the body (a streamed body is not read whole)."""
    try:
        data = r.content[:4096]
    except httpx.ResponseNotRead:
        data = b""
        for chunk in r.iter_bytes():
            data += chunk
            if len(data) >= 4096:
                break
    try:
        problem = json.loads(data)
    except ValueError:
        problem = None
    if isinstance(problem, dict) and (problem.get("title") or problem.get("detail")):
        parts = [str(problem[k]) for k in ("title", "detail") if problem.get(k)]
        return one_line(": ".join(parts))[:limit]
    return one_line(data[:limit].decode("utf-8", "replace"))


def _retry_after(r: httpx.Response) -> float | None:
    value = r.headers.get("Retry-After", "")
    return float(value) if value.isdigit() else None


_FILENAME = re.compile(r"""filename\s*=\s*"?([^";]+)"?""", re.I)


def _bestandsnaam(r: httpx.Response) -> str | None:
    """The file name of a ``Content-Disposition`` answer, when it is a plain name (no path, no controls)."""
    m = _FILENAME.search(r.headers.get("Content-Disposition", ""))
    name = m[1].strip() if m else ""
    if not name or len(name) > 255 or any(c in name for c in "/\\") or any(ord(c) < 32 for c in name):
        return None
    return name


@dataclass(frozen=True)
class StoredFile:
    """A file fetched into the ``FileStore`` without a sha256 known beforehand (the verzoek's PDF)."""

    path: Path
    grootte: int
    sha256: str
    bestandsnaam: str | None  # from Content-Disposition, when the werkmap gives one


class WerkmapClient:
    """Fetches verzoeken and their documents from the werkmap, and hands verzoeken over."""

    def __init__(self, options: WerkmapOptions, files: FileStore) -> None:
        self.options = options
        self.files = files
        self._http: httpx.Client | None = None
        self._lock = threading.Lock()
        base = urlsplit(options.base_url)
        self._origin = f"{base.scheme}://{base.netloc}"
        self._base = options.base_url.rstrip("/")

    # -- plumbing ----------------------------------------------------------------------------------------

    def _session(self) -> httpx.Client:
        with self._lock:
            if self._http is None:
                self._http = self._new_session()
            return self._http

    def _new_session(self) -> httpx.Client:
        """One pooled client: our OIN header, client certificate, CA bundle and timeout on every request."""
        o = self.options
        try:
            ctx = ssl.create_default_context(cafile=o.ca_bundle or certifi.where())
            if o.client_cert:
                ctx.load_cert_chain(o.client_cert, o.client_key)
        except (OSError, ssl.SSLError) as exc:
            raise TargetError(one_line(f"TLS setup for {o.base_url}: {type(exc).__name__}: {exc}")) from None
        return httpx.Client(
            verify=ctx,
            timeout=httpx.Timeout(o.timeout),
            headers={stam.OIN_HEADER: o.oin},
            follow_redirects=False,
            event_hooks=recording.EVENT_HOOKS,
            transport=recording.transport(),
        )

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None

    def __enter__(self) -> WerkmapClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def url(self, path_or_href: str) -> str:
        """Absolute URL of an API path or of an href from the werkmap; never another host (our cert goes along)."""
        if path_or_href.startswith(("http://", "https://")):
            if urlsplit(path_or_href)._replace(path="", query="", fragment="").geturl() != self._origin:
                raise TargetRefused(f"werkmap href {path_or_href} points outside {self._origin}; refused")
            return path_or_href
        base_path = urlsplit(self._base).path
        if base_path and path_or_href.startswith(base_path + "/"):
            return self._origin + path_or_href
        return f"{self._base}/{path_or_href.lstrip('/')}"

    def _retrying(self, what: str, once: Callable[[], T]) -> T:
        """Run ``once`` until it does not raise ``_Transient`` (at most 1 + retries times)."""
        o = self.options
        delay = o.backoff_initial
        attempts = o.retries + 1
        for attempt in range(1, attempts + 1):
            try:
                return self._mapped(once)
            except _Transient as exc:
                reason = str(exc)
                if attempt == attempts:
                    tries = f" ({attempts} attempts)" if attempts > 1 else ""
                    raise TargetError(one_line(f"{what}: {reason}{tries}")[:600]) from None
                wait = min(max(delay, exc.retry_after or 0.0), o.backoff_max)
                log.warning("werkmap call failed, retrying", call=what, attempt=attempt, of=attempts,
                            reason=one_line(reason)[:300], wait_s=round(wait, 3))  # fmt: skip
                time.sleep(wait)
                delay = min(delay * 2, o.backoff_max)
        raise AssertionError("unreachable")

    def _mapped(self, once: Callable[[], T]) -> T:
        """httpx's transport failures -> ``_Transient`` with a readable reason."""
        try:
            return once()
        except httpx.TimeoutException as exc:
            kind = type(exc).__name__.replace("Timeout", "").lower() or "request"
            raise _Transient(f"timeout ({kind}): no answer within {self.options.timeout:g} s") from None
        except httpx.TransportError as exc:
            tls = _tls_reason(exc)
            hint = ""
            if self._origin.startswith("https:") and "without sending a response" in str(exc):
                hint = " (over TLS this is often the server refusing our client certificate)"
            raise _Transient(tls or f"connection error: {type(exc).__name__}: {exc}{hint}") from None

    @staticmethod
    def _check_status(what: str, r: httpx.Response) -> None:
        """Raise ``_Transient`` for statuses worth retrying, ``TargetError`` for the rest of >= 300."""
        if r.status_code < 300:
            return
        body = _error_text(r)
        reason = f"HTTP {r.status_code}" + (f": {body}" if body else "")
        if r.status_code >= 500 or r.status_code == 429:  # worth another attempt; any other 4xx is not
            raise _Transient(reason, _retry_after(r))
        raise TargetRefused(f"{what}: {reason}"[:600], r.status_code)

    def _json(self, method: str, path: str, *, body: Any = None, params: dict[str, Any] | None = None) -> Any:
        """One JSON call with retries; the decoded answer (None for an empty body)."""
        url = self.url(path)
        what = f"{method} {redact_url(url)}"

        def once() -> Any:
            r = self._session().request(method, url, json=body, params=params)
            self._check_status(what, r)
            return r

        r = self._retrying(what, once)
        if not r.content.strip():
            return None
        try:
            return r.json()
        except ValueError as exc:
            raise TargetRefused(one_line(f"{what}: HTTP {r.status_code}: not JSON: {exc}")) from None

    # -- the API -----------------------------------------------------------------------------------------

    def referenties(self, verzoeknummer: str, volgnummer: int | None = None) -> stam.VerzoekReferenties:
        """The verzoekreferenties: links to the STAM verzoek, the PDF and each document (with sha256, size)."""
        path = stam.verzoekreferenties(verzoeknummer)
        params = {"volgnummer": volgnummer} if volgnummer is not None else None
        answer = self._json("GET", path, params=params)
        what = f"GET {redact_url(self.url(path))}"
        if not isinstance(answer, dict) or not isinstance(answer.get("documenten", []), list):
            raise TargetRefused(f"{what}: answer is not verzoekreferenties (object with a documenten list)")
        for doc in answer.get("documenten", []):
            if not isinstance(doc, dict) or not {"href", "sha256", "grootte"} <= doc.keys():
                raise TargetRefused(f"{what}: a document lacks href, sha256 or grootte")
            if not _SHA256.match(str(doc["sha256"]).lower()) or type(doc["grootte"]) is not int or doc["grootte"] < 0:
                raise TargetRefused(f"{what}: document {doc.get('documentId')}: malformed sha256 or grootte")
        return cast(stam.VerzoekReferenties, answer)  # the parts we rely on were checked above

    def verzoek_xml(self, referenties: stam.VerzoekReferenties) -> bytes:
        """The STAM verzoek (samenvatting): safe, well-formed XML whose root element is ``verzoek`` (any
        namespace). Not held to our reconstructed schema: ``stam_parse.read_stam_verzoek`` reads it laxly."""
        link = referenties.get("verzoek")
        href = (link.get("href") if link else None) or stam.samenvatting(referenties["verzoeknummer"])
        url = self.url(href)
        what = f"GET {redact_url(url)}"

        def once() -> bytes:
            r = self._session().get(url, headers={"Accept": "application/xml"})
            self._check_status(what, r)
            return r.content

        data = self._retrying(what, once)
        try:
            root = parse(data)
        except XmlRejected as exc:
            raise TargetRefused(one_line(f"{what}: STAM verzoek rejected: {exc}")) from None
        if etree.QName(root).localname != "verzoek":
            raise TargetRefused(f"{what}: expected a STAM verzoek, got <{root.tag}>")
        return data

    def verzoek_pdf(self, referenties: stam.VerzoekReferenties) -> StoredFile | None:
        """The verzoek's own PDF (``pdf.href``) streamed into the FileStore; None when the referenties name
        none (the contract makes it optional). A transfer that breaks off is fetched again from byte 0."""
        link = referenties.get("pdf")
        href = link.get("href") if isinstance(link, dict) else None
        if not href:
            return None
        url = self.url(str(href))
        what = f"GET {redact_url(url)}"

        def once() -> StoredFile:
            with self.files.writer(None, None) as w, self._session().stream("GET", url) as r:
                self._check_status(what, r)
                for chunk in r.iter_bytes():
                    w.write(chunk)
                path = w.commit()
                return StoredFile(path, w.written, path.name, _bestandsnaam(r))

        try:
            return self._retrying(what, once)
        except OSError as exc:
            raise TargetError(one_line(f"{what}: storing failed: {type(exc).__name__}: {exc}")) from None

    def download(self, doc: stam.WerkmapDocument) -> Path:
        """Store one document of the verzoekreferenties in the FileStore and return its path.

        Already stored: no request at all. A broken transfer resumes with ``Range``; bytes with the wrong
        sha256 are discarded and fetched once more from byte 0 within this call.
        """
        sha, size = str(doc["sha256"]).lower(), int(doc["grootte"])
        if self.files.has(sha, size):
            return self.files.path_for(sha)
        url = self.url(str(doc["href"]))
        what = f"GET {redact_url(url)}"
        for round_ in (1, 2):
            try:
                return self._retrying(what, lambda: self._download_once(what, url, sha, size))
            except ContentMismatch as exc:
                self.files.discard_partial(sha)
                if round_ == 2:
                    raise TargetError(one_line(f"{what}: corrupt download, also when fetched again: {exc}")) from None
                log.warning("werkmap document corrupt, fetching again", call=what, reason=one_line(str(exc)))
            except FileBusy as exc:
                raise TargetError(f"{what}: {exc}") from None
            except OSError as exc:
                raise TargetError(one_line(f"{what}: storing failed: {type(exc).__name__}: {exc}")) from None
        raise AssertionError("unreachable")

    def _download_once(self, what: str, url: str, sha: str, size: int) -> Path:
        with self.files.writer(sha, size) as w:
            if w.offset == size:  # a complete part that was never renamed (crash before commit)
                return w.commit()
            headers = {"Range": f"bytes={w.offset}-"} if w.offset else {}
            with self._session().stream("GET", url, headers=headers) as r:
                if r.status_code == 416:  # our part does not fit the file any more: start over
                    w.discard()
                    raise _Transient("HTTP 416 for our resume offset; starting over")
                self._check_status(what, r)
                if w.offset and not (r.status_code == 206 and _range_start(r) == w.offset):
                    w.restart()  # the server sent the whole file (or another range): take it from byte 0
                for chunk in r.iter_bytes():
                    w.write(chunk)
            if w.offset < size:
                raise _Transient(f"connection closed after {w.offset} of {size} bytes")
            return w.commit()

    def zoek(self, vanaf: datetime, tot: datetime, paginagrootte: int = 50) -> Iterator[dict[str, Any]]:
        """Every verzoek submitted between ``vanaf`` and ``tot``, page by page (the safety-net search)."""
        pagina = 1
        while True:
            body = {
                "vanaf": vanaf.isoformat(),
                "tot": tot.isoformat(),
                "pagina": pagina,
                "paginagrootte": paginagrootte,
            }
            answer = self._json("POST", stam.ZOEK, body=body)
            hits = _zoek_page(f"POST {redact_url(self.url(stam.ZOEK))} (pagina {pagina})", answer)
            yield from hits
            if not hits or pagina >= answer.get("aantalPaginas", 0):
                return
            pagina += 1

    def overdragen(self, verzoeknummer: str, naar_oin: str, rol: stam.Rol, toelichting: str) -> None:
        """Hand the verzoek over to another bevoegd gezag or behandeldienst (answered with 202)."""
        if rol not in stam.ROLLEN:
            raise ValueError(f"rol must be one of {', '.join(stam.ROLLEN)}, not {rol!r}")
        body = {"naarOin": naar_oin, "rol": rol, "toelichting": toelichting}
        self._json("POST", stam.overdragen(verzoeknummer), body=body)


def _zoek_page(what: str, answer: Any) -> list[dict[str, Any]]:
    """The hits of one ``_zoek`` page, checked before any is used: an answer we cannot read is refused (an
    operator must look), not passed on to fail later as an unexpected error."""
    if not isinstance(answer, dict) or not isinstance(answer.get("verzoeken"), list):
        raise TargetRefused(f"{what}: answer has no verzoeken list")
    paginas = answer.get("aantalPaginas") or 0  # absent: this page is the last
    if not (type(paginas) is int or (isinstance(paginas, str) and paginas.isdigit())):
        raise TargetRefused(f"{what}: aantalPaginas is not a number: {str(paginas)[:40]!r}")
    answer["aantalPaginas"] = int(paginas)
    hits: list[dict[str, Any]] = answer["verzoeken"]
    for i, hit in enumerate(hits, 1):
        if not isinstance(hit, dict) or not str(hit.get("verzoeknummer") or "").strip():
            raise TargetRefused(f"{what}: hit {i} is not an object with a verzoeknummer")
    return hits


def _range_start(r: httpx.Response) -> int | None:
    """First byte of a 206's ``Content-Range: bytes N-M/T``."""
    value = r.headers.get("Content-Range", "")
    try:
        return int(value.split()[1].split("-")[0])
    except (IndexError, ValueError):
        return None
