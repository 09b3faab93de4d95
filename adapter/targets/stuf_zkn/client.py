"""The only module that speaks HTTP to the StUF-ZKN zaaksysteem: SOAP 1.1 posts with their SOAPAction,
timeouts, TLS client certificates, HTTP basic auth; answers and faults become one-line results or
``TargetError``s that name the StUF code and the zaaksysteem's own explanation.

Fault parsing is lenient on purpose: receivers put the StUF code in the Fo0x detail, in the faultcode
(``s:StUF058``) or only in the faultstring, and some answer a fault with HTTP 200 or a Fo03 without a
SOAP Fault around it.
"""

from __future__ import annotations

import httpx
from lxml import etree

from adapter import recording
from adapter.envsubst import redact_url
from adapter.errors import TargetError, http_failure
from adapter.stuf.soapfault import blames_client, child_text, fault_of, local_name
from adapter.targets.stuf_zkn.messages import Bericht
from adapter.targets.stuf_zkn.options import StufZknOptions
from adapter.xmlsafe import XmlRejected, parse


class StufFault(TargetError):
    """The zaaksysteem answered with a fault; ``code`` is the StUF code (e.g. ``StUF058``) when known."""

    def __init__(
        self, message: str, code: str | None, omschrijving: str, details: str | None, *, client: bool = False
    ) -> None:
        super().__init__(message)
        self.code = code
        self.transient = not client  # a fault that blames our request repeats identically
        self.omschrijving = omschrijving
        self.details = details


def berichtcode(answer: etree._Element) -> str | None:
    return child_text(answer, "stuurgegevens", "berichtcode")


class StufZknClient:
    def __init__(self, options: StufZknOptions, transport: httpx.BaseTransport | None = None) -> None:
        self.options = options
        self._transport = transport  # tests hand in an httpx.MockTransport
        self._http: httpx.Client | None = None

    def _session(self) -> httpx.Client:
        """Built on first use, so a missing certificate file is a TargetError (and a check() finding)
        rather than a crash when the adapter starts."""
        if self._http is None:
            o = self.options
            auth = (o.username, o.password) if o.username is not None and o.password is not None else None
            try:
                self._http = httpx.Client(
                    timeout=o.timeout,
                    auth=auth,
                    transport=self._transport or recording.transport(),
                    event_hooks=recording.EVENT_HOOKS,
                    **o.httpx_tls(),
                )
            except (OSError, ValueError) as exc:
                raise TargetError(f"TLS/HTTP setup for {o.url}: {type(exc).__name__}: {exc}") from None
        return self._http

    def close(self) -> None:
        if self._http is not None:
            self._http.close()

    def url(self, bericht: Bericht) -> str:
        return self.options.endpoint(bericht.port)  # type: ignore[arg-type]

    def send(self, bericht: Bericht, expect: tuple[str, ...]) -> etree._Element:
        """POST the envelope; return the answer element (Body's first child) with a berichtcode in ``expect``."""
        url = self.url(bericht)
        what = f"{bericht.operation} {redact_url(url)}"
        headers = {"Content-Type": "text/xml; charset=utf-8", "SOAPAction": f'"{bericht.soap_action}"'}
        http = self._session()
        try:
            r = http.post(url, content=bericht.envelope(), headers=headers)
        except httpx.TimeoutException:
            raise TargetError(f"{what}: no answer within {self.options.timeout:g} s") from None
        except httpx.HTTPError as exc:
            raise TargetError(f"{what}: {type(exc).__name__}: {exc}") from None
        root: etree._Element | None
        try:
            root = parse(r.content) if r.content.strip() else None
        except XmlRejected:
            root = None
        if root is not None:
            fault = fault_of(root)
            if fault is not None:
                code, omschrijving, details = fault
                text = f"{what}: {code + ': ' if code else ''}{omschrijving}" + (f" ({details})" if details else "")
                raise StufFault(text[:600], code, omschrijving, details, client=blames_client(root))
        if r.status_code >= 300:
            raise http_failure(r.status_code, f"{what}: HTTP {r.status_code}: {' '.join(r.text[:200].split())}")
        if root is None:
            raise TargetError(f"{what}: HTTP {r.status_code} without a readable SOAP answer")
        if local_name(root) != "Envelope":
            raise TargetError(f"{what}: HTTP {r.status_code}: not a SOAP envelope but <{local_name(root)}>")
        body = next((c for c in root if local_name(c) == "Body"), None)
        answer = next((c for c in body if isinstance(c.tag, str)), None) if body is not None else None
        if answer is None:
            raise TargetError(f"{what}: SOAP answer without a body element")
        code = berichtcode(answer)
        if code not in expect:
            raise TargetError(f"{what}: expected {'/'.join(expect)}, got {code or local_name(answer)}")
        return answer

    def probe(self) -> list[str]:
        """Every configured endpoint answers HTTP at all (any status counts: a SOAP port rejects a GET)."""
        try:
            http = self._session()
        except TargetError as exc:
            return [str(exc)]
        problems = []
        urls = {self.options.endpoint(p) for p in ("ontvangasynchroon", "vrijeberichten", "beantwoordvraag")}
        for url in sorted(urls):
            try:
                http.get(url)
            except httpx.TimeoutException:
                problems.append(f"{redact_url(url)}: no answer within {self.options.timeout:g} s")
            except httpx.HTTPError as exc:
                problems.append(f"{redact_url(url)}: {type(exc).__name__}: {exc}")
        return problems
