"""How ``serve`` listens: TLS of its own (server certificate, accepted client CAs, client certificate
optional or required), and an HTTP protocol that hands each connection's verified client certificate to
the application.

uvicorn puts no peer certificate into the ASGI scope. ``PeerH11Protocol`` is uvicorn's h11 protocol with
one addition: when a connection is made (after the TLS handshake, so the certificate is verified), it reads
the peer certificate and address from the transport once and stamps them on every request of that
connection (``scope[PEER]``). The direct peer's address is recorded there too, so trusting a proxy never
depends on ``X-Forwarded-For`` (uvicorn's proxy-header rewriting is switched off in ``serve``).
"""

from __future__ import annotations

import asyncio
import errno
import socket
import ssl
from typing import Any

from uvicorn.protocols.http.h11_impl import H11Protocol

from adapter.config import ServerSettings, Settings
from adapter.errors import ConfigError
from adapter.web.trust import PEER, Peer, identity_of_der


class PeerH11Protocol(H11Protocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        ssl_object = transport.get_extra_info("ssl_object")
        der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
        peer = Peer(self.client[0] if self.client else None, identity_of_der(der) if der else None)
        inner = self.app

        async def app(scope: Any, receive: Any, send: Any) -> None:
            scope[PEER] = peer
            await inner(scope, receive, send)

        self.app = app


def _resolve(settings: Settings, value: str) -> str:
    from adapter.services import resolve_path

    return str(resolve_path(settings, value))


def tls_files(settings: Settings) -> dict[str, str]:
    """The ``[server.tls]`` files that are set, by key, as absolute paths (relative ones: to the config)."""
    tls = settings.server.tls
    keys = {"certfile": tls.certfile, "keyfile": tls.keyfile, "client_ca": tls.client_ca, "crlfile": tls.crlfile}
    return {key: _resolve(settings, value) for key, value in keys.items() if value}


def check_tls(settings: Settings) -> ssl.SSLContext | None:
    """Load ``[server.tls]`` as ``serve`` will; any problem is one ConfigError line naming key and file."""
    files = tls_files(settings)
    if not files:
        return None
    for key, path in files.items():
        try:
            with open(path, "rb"):
                pass
        except OSError as exc:
            raise ConfigError(f"{settings.source}: server.tls.{key}: {path}: {exc.strerror}") from None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(files["certfile"], files.get("keyfile"))
    except (ssl.SSLError, OSError) as exc:
        what = "certfile/keyfile" if "keyfile" in files else "certfile"
        raise ConfigError(f"{settings.source}: server.tls.{what}: not a usable certificate and key: {exc}") from None
    if "client_ca" in files:
        try:
            context.load_verify_locations(files["client_ca"])
        except (ssl.SSLError, OSError) as exc:
            raise ConfigError(f"{settings.source}: server.tls.client_ca: not a PEM CA bundle: {exc}") from None
    if "crlfile" in files:
        try:
            _check_revocations(context, files["crlfile"])
        except (ssl.SSLError, OSError) as exc:
            raise ConfigError(f"{settings.source}: server.tls.crlfile: not a PEM CRL: {exc}") from None
    return context


def _check_revocations(context: ssl.SSLContext, crlfile: str) -> ssl.SSLContext:
    """Load the CRLs and have every client certificate checked against its issuer's (a revoked PKIoverheid
    certificate must not pass because it has not expired yet)."""
    context.load_verify_locations(crlfile)
    context.verify_flags |= ssl.VERIFY_CRL_CHECK_LEAF
    return context


def uvicorn_options(settings: Settings) -> dict[str, Any]:
    """Keyword arguments for ``uvicorn.run``: our protocol, no proxy-header rewriting, and TLS when set."""
    options: dict[str, Any] = {"http": PeerH11Protocol, "proxy_headers": False}
    files = tls_files(settings)
    if files:
        tls = settings.server.tls
        options |= {
            "ssl_certfile": files["certfile"],
            "ssl_keyfile": files.get("keyfile"),
            "ssl_ca_certs": files.get("client_ca"),
            "ssl_cert_reqs": (
                ssl.CERT_REQUIRED if tls.require_client_cert else ssl.CERT_OPTIONAL if tls.client_ca else ssl.CERT_NONE
            ),
        }
        if "crlfile" in files:
            crlfile = files["crlfile"]
            options["ssl_context_factory"] = lambda _config, default: _check_revocations(default(), crlfile)
    return options


def public_url(server: ServerSettings) -> str:
    """Where the loket reaches us, ending in ``/``: ``public_url``, else our own listen address (never a
    request's Host header, which the caller chooses)."""
    if server.public_url:
        return server.public_url
    scheme = "https" if server.tls.certfile else "http"
    host = f"[{server.host}]" if ":" in server.host else server.host
    return f"{scheme}://{host}:{server.port}/"


def transport_summary(server: ServerSettings) -> str:
    """One line for ``check-config``: how callers connect and who may call what."""
    tls = server.tls
    if tls.certfile:
        how = "https, client certificate " + (
            "required" if tls.require_client_cert else "optional" if tls.client_ca else "not asked"
        )
    else:
        how = "plain http"
    if server.proxy.client_cert_header:
        how += f", certificate from {server.proxy.client_cert_header} of {', '.join(server.proxy.trusted_proxies)}"
    allowed = "; ".join(f"{path}: {len(oins)} OIN(s)" for path, oins in server.allowed_oins.items())
    return f"{how}; allowlist: {allowed or 'none (every caller)'}"


def listen(host: str, port: int) -> socket.socket:
    """The listening socket ``serve`` hands to uvicorn, bound before anything else starts: a port in use or an
    address this machine does not have is one line (``ConfigError``) and a non-zero exit, not a log line
    after "startup complete" with delivery workers already running."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # a restart while old connections linger
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        why = "address already in use" if exc.errno == errno.EADDRINUSE else (exc.strerror or str(exc))
        raise ConfigError(f"cannot listen on {host}:{port}: {why}") from None
    sock.set_inheritable(True)
    return sock
