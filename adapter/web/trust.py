"""Who is calling: the OIN of a verified client certificate, and the per-endpoint allowlist that acts on it.

Digikoppeling authorises organisations by OIN, taken from the client certificate after TLS verified it.
PKIoverheid (and the Logius OIN-stelsel, "Invulling OIN in het PKIoverheidcertificaat") put the 20-digit
OIN or HRN in the subject ``serialNumber``; that is the only place read here. ``organizationIdentifier``
(ETSI EN 319 412-1, e.g. ``NTRNL-<KvK number>``) names a register entry, not an OIN, and is ignored.

The certificate reaches us one of two ways: from our own TLS handshake (``adapter.web.transport`` puts the
verified peer certificate of each connection into the ASGI scope), or from a TLS proxy that verified it
and forwards it in a configured header, believed only when the connection comes from a configured proxy
address. ``CallerTrust`` runs before routing, so a refused caller never has its body read, let alone parsed.
"""

from __future__ import annotations

import ipaddress
import json
import re
from dataclasses import dataclass
from urllib.parse import unquote

from cryptography import x509
from cryptography.x509.oid import NameOID
from starlette.types import ASGIApp, Receive, Scope, Send

from adapter.config import ServerSettings
from adapter.inbound.soap import CALLER_OIN
from adapter.logs import correlation, get_logger

#: ASGI scope key where the transport puts the connection's ``Peer``.
PEER = "adapter.peer"
_OIN = re.compile(r"^[0-9]{20}$")
_PEM = re.compile(r"-----BEGIN CERTIFICATE-----(.+?)-----END CERTIFICATE-----", re.S)
log = get_logger("adapter.web.trust")


@dataclass(frozen=True)
class Identity:
    """What a verified certificate says about its holder: the OIN, or why there is none."""

    oin: str | None
    problem: str | None = None


@dataclass(frozen=True)
class Peer:
    """One connection as the transport saw it: the direct peer's address and, with TLS, its certificate."""

    address: str | None
    tls: Identity | None  # None: no client certificate in the handshake


def identity_of(cert: x509.Certificate) -> Identity:
    """The OIN in the subject serialNumber: exactly one, of 20 digits (PKIoverheid's OIN/HRN form)."""
    values = [a.value for a in cert.subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER)]
    if not values:
        return Identity(None, "client certificate has no subject serialNumber (OIN)")
    if len(values) > 1:
        return Identity(None, "client certificate has more than one subject serialNumber")
    value = values[0] if isinstance(values[0], str) else values[0].decode("ascii", "replace")
    if not _OIN.match(value):
        return Identity(None, "client certificate subject serialNumber is not an OIN (20 digits)")
    return Identity(value)


def identity_of_der(der: bytes) -> Identity:
    try:
        return identity_of(x509.load_der_x509_certificate(der))
    except ValueError:
        return Identity(None, "client certificate could not be read")


def identity_of_header(value: str) -> Identity:
    """A certificate forwarded by a proxy: URL-encoded PEM (nginx ``$ssl_client_escaped_cert``), or PEM whose
    line breaks became spaces or tabs (Apache ``SSL_CLIENT_CERT``, nginx's old ``$ssl_client_cert``)."""
    m = _PEM.search(unquote(value))
    if not m:
        return Identity(None, "client certificate header holds no PEM certificate")
    body = "".join(m.group(1).split())
    pem = "-----BEGIN CERTIFICATE-----\n" + "\n".join(body[i : i + 64] for i in range(0, len(body), 64))
    try:
        cert = x509.load_pem_x509_certificate((pem + "\n-----END CERTIFICATE-----\n").encode("ascii"))
    except ValueError:
        return Identity(None, "client certificate header could not be read")
    return identity_of(cert)


class CallerTrust:
    """ASGI middleware: find the caller's OIN, put it in the scope (``CALLER_OIN``) for the channels, and
    refuse with 403 a caller of an endpoint in ``[server.allowed_oins]`` whose OIN is not listed there."""

    def __init__(self, app: ASGIApp, settings: ServerSettings) -> None:
        self.app = app
        self.allowed = {path: frozenset(oins) for path, oins in settings.allowed_oins.items()}
        proxy = settings.proxy
        self.header = proxy.client_cert_header.lower().encode("latin-1") if proxy.client_cert_header else None
        self.header_name = proxy.client_cert_header
        self.proxies = [ipaddress.ip_network(p, strict=False) for p in proxy.trusted_proxies]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        identity = self.identity(scope)
        scope[CALLER_OIN] = identity.oin if identity else None
        path = scope["path"].rstrip("/") or "/"
        allowed = self.allowed.get(path)
        if allowed is None or (identity is not None and identity.oin in allowed):
            await self.app(scope, receive, send)
            return
        if identity is None:
            reason = "no client certificate"
        elif identity.oin is None:
            reason = identity.problem or "no OIN"
        else:
            reason = f"OIN {identity.oin} may not call {path}"
        given = dict(scope.get("headers", ())).get(b"x-correlation-id", b"").decode("latin-1")
        with correlation(given if given.isalnum() and len(given) <= 32 else None, channel="transport") as cid:
            log.warning("caller refused", endpoint=path, reason=reason, oin=identity.oin if identity else None)
        await _forbidden(send, reason, cid)

    def identity(self, scope: Scope) -> Identity | None:
        """The caller's identity, or None when it showed no certificate at all."""
        peer: Peer | None = scope.get(PEER)
        address = peer.address if peer else (scope.get("client") or (None,))[0]
        if self.header is not None:
            values = [v for k, v in scope.get("headers", ()) if k == self.header]
            if values and self._trusted(address):
                if len(values) > 1:
                    return Identity(None, f"{self.header_name} header given more than once")
                return identity_of_header(values[0].decode("latin-1"))
            if values:
                with correlation(None, channel="transport"):
                    log.warning("client certificate header from an untrusted address ignored", address=address)
        return peer.tls if peer else None

    def _trusted(self, address: str | None) -> bool:
        if address is None:
            return False
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in net for net in self.proxies)


async def _forbidden(send: Send, reason: str, correlation_id: str) -> None:
    """403 without reading the request body; the connection is closed, so an unread body does no harm."""
    body = json.dumps({"type": "about:blank#403", "title": "Forbidden", "status": 403, "detail": reason}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 403,
            "headers": [
                (b"content-type", b"application/problem+json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
                (b"x-correlation-id", correlation_id.encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
