"""The only module that speaks HTTP to the StUF-ZKN zaaksysteem: SOAP 1.1 posts with their SOAPAction,
timeouts, TLS client certificates, HTTP basic auth; answers and faults become one-line results or
``TargetError``s that name the StUF code and the zaaksysteem's own explanation.

Fault parsing is lenient on purpose: receivers put the StUF code in the Fo0x detail, in the faultcode
(``s:StUF058``) or only in the faultstring, and some answer a fault with HTTP 200 or a Fo03 without a
SOAP Fault around it.
"""

from __future__ import annotations

from typing import Any

import httpx
from lxml import etree

from adapter.targets.base import TargetError
from adapter.targets.stuf_zkn.messages import Bericht
from adapter.targets.stuf_zkn.options import StufZknOptions
from adapter.xmlsafe import XmlRejected, parse

FOUT_BERICHTEN = ("Fo01Bericht", "Fo02Bericht", "Fo03Bericht")


class StufFault(TargetError):
    """The zaaksysteem answered with a fault; ``code`` is the StUF code (e.g. ``StUF058``) when known."""

    def __init__(self, message: str, code: str | None, omschrijving: str, details: str | None) -> None:
        super().__init__(message)
        self.code = code
        self.omschrijving = omschrijving
        self.details = details


def _local(el: etree._Element) -> str:
    return etree.QName(el).localname if isinstance(el.tag, str) else ""


def _child_text(el: etree._Element | None, *path: str) -> str | None:
    """Text of the first descendant along ``path`` (local names, any namespace)."""
    for name in path:
        if el is None:
            return None
        el = next((c for c in el if _local(c) == name), None)
    if el is None or el.text is None:
        return None
    return " ".join(el.text.split()) or None


def _fo_bericht(root: etree._Element) -> etree._Element | None:
    return next((e for e in root.iter() if _local(e) in FOUT_BERICHTEN), None)


def fault_of(root: etree._Element) -> tuple[str | None, str, str | None] | None:
    """(StUF code, omschrijving, details) of a SOAP Fault or bare Fo0x in an answer; None when there is none."""
    fault = next((e for e in root.iter() if _local(e) == "Fault"), None)
    fo = _fo_bericht(root)
    if fault is None and fo is None:
        return None
    code = _child_text(fo, "body", "code")
    omschrijving = _child_text(fo, "body", "omschrijving")
    details = _child_text(fo, "body", "details")
    if fault is not None:
        faultcode = _child_text(fault, "faultcode") or _child_text(fault, "Code", "Value") or ""
        local_code = faultcode.rpartition(":")[2]
        if code is None and local_code.upper().startswith("STUF"):
            code = local_code
        reason = _child_text(fault, "faultstring") or _child_text(fault, "Reason", "Text")
        omschrijving = omschrijving or reason or faultcode or "SOAP Fault"
    return code, omschrijving or "", details


def berichtcode(answer: etree._Element) -> str | None:
    return _child_text(answer, "stuurgegevens", "berichtcode")


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
            cert = (o.client_cert, o.client_key) if o.client_cert else None
            auth = (o.username, o.password) if o.username is not None and o.password is not None else None
            verify: Any = o.ca_bundle or True
            try:
                self._http = httpx.Client(
                    timeout=o.timeout,
                    cert=cert,  # type: ignore[arg-type]
                    verify=verify,
                    auth=auth,
                    transport=self._transport,
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
        what = f"{bericht.operation} {url}"
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
                raise StufFault(text[:600], code, omschrijving, details)
        if r.status_code >= 300:
            raise TargetError(f"{what}: HTTP {r.status_code}: {' '.join(r.text[:200].split())}")
        if root is None:
            raise TargetError(f"{what}: HTTP {r.status_code} without a readable SOAP answer")
        if _local(root) != "Envelope":
            raise TargetError(f"{what}: HTTP {r.status_code}: not a SOAP envelope but <{_local(root)}>")
        body = next((c for c in root if _local(c) == "Body"), None)
        answer = next((c for c in body if isinstance(c.tag, str)), None) if body is not None else None
        if answer is None:
            raise TargetError(f"{what}: SOAP answer without a body element")
        code = berichtcode(answer)
        if code not in expect:
            raise TargetError(f"{what}: expected {'/'.join(expect)}, got {code or _local(answer)}")
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
                problems.append(f"{url}: no answer within {self.options.timeout:g} s")
            except httpx.HTTPError as exc:
                problems.append(f"{url}: {type(exc).__name__}: {exc}")
        return problems
