"""Builds the web application: the SOAP endpoint, its WSDL and schemas, health checks.

One process serves everything; blocking work (parsing, validation, the database commit) runs in the
WSGI thread pool of the SOAP mount, so the event loop only moves bytes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from a2wsgi import WSGIMiddleware
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, request_response
from starlette.types import ASGIApp, Receive, Scope, Send

from adapter.advies.web import routes as advies_routes
from adapter.errors import StoreUnavailable
from adapter.inbound.intake import Intake
from adapter.inbound.soap import build_wsgi
from adapter.inbound.stam import StamChannel, problem
from adapter.inbound.stuf_lvo import StufLvoChannel
from adapter.logs import correlation
from adapter.loket import lvo
from adapter.paths import XSD_DIR
from adapter.services import Services
from adapter.store.db import transaction
from adapter.web.access import AccessLog
from adapter.web.console import console_routes
from adapter.web.metrics import registry as metrics_registry
from adapter.web.transport import public_url
from adapter.web.trust import CallerTrust


def _wsdl(base: str) -> Response:
    """Our static WSDL with its schema imports and address pointed at ``base``, our configured public URL
    (``adapter.web.transport.public_url``): never the request's Host header, which the caller chooses."""
    wsdl = (XSD_DIR / lvo.WSDL).read_text(encoding="utf-8")
    wsdl = wsdl.replace('schemaLocation="../', f'schemaLocation="{base}xsd/')
    wsdl = wsdl.replace("http://localhost:8080/soap/stuf-lvo", f"{base}soap/stuf-lvo")
    return Response(wsdl, media_type="text/xml; charset=utf-8")


def _xsd(request: Request) -> Response:
    rel = request.path_params["path"]
    path = (XSD_DIR / rel).resolve()
    if path.suffix != ".xsd" or XSD_DIR.resolve() not in path.parents or not path.is_file():
        return Response("not found", status_code=404, media_type="text/plain")
    return Response(path.read_bytes(), media_type="text/xml; charset=utf-8")


class SoapEndpoint:
    """``/soap/stuf-lvo``: GET (``?wsdl``) gives the WSDL, POST goes to spyne."""

    def __init__(self, wsgi: WSGIMiddleware, base_url: str) -> None:
        self.base_url = base_url
        # a2wsgi types the ASGI scope and events as TypedDicts, Starlette as plain mappings: one protocol
        self.wsgi = cast(ASGIApp, wsgi)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in ("GET", "HEAD"):
            await _wsdl(self.base_url)(scope, receive, send)
            return
        await self.wsgi(scope, receive, send)


def stam_endpoint(channel: StamChannel, max_bytes: int) -> Callable[[Request], Any]:
    async def verzoeknotificatie(request: Request) -> Response:
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > max_bytes:
            answer = problem(413, "Too large", f"body larger than {max_bytes} bytes")
            return JSONResponse(answer.body, status_code=413, media_type=answer.media_type)
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > max_bytes:
                answer = problem(413, "Too large", f"body larger than {max_bytes} bytes")
                return JSONResponse(answer.body, status_code=413, media_type=answer.media_type)
            chunks.append(chunk)
        raw = b"".join(chunks)
        given = request.headers.get("x-correlation-id", "")
        with correlation(given if given.isalnum() and len(given) <= 32 else None, channel="stam") as cid:
            answer = await run_in_threadpool(channel.receive, raw, cid)
        return JSONResponse(
            answer.body, status_code=answer.status, media_type=answer.media_type, headers={"X-Correlation-ID": cid}
        )

    return verzoeknotificatie


def build_app(services: Services) -> Starlette:
    channel = StufLvoChannel(services.settings, services.writer, services.schemas)
    stam_channel = StamChannel(services.settings, services.writer, services.schemas)
    wsgi = WSGIMiddleware(build_wsgi(channel), workers=services.settings.server.request_threads)
    soap = SoapEndpoint(wsgi, public_url(services.settings.server))
    server = services.settings.server

    def intake(endpoint: str, app: ASGIApp) -> Intake:
        return Intake(
            app,
            endpoint=endpoint,
            max_bytes=services.settings.inbound.max_body_bytes,
            body_timeout=server.body_timeout,
            max_concurrent=server.max_concurrent_requests,
        )

    def healthz(_: Request) -> Response:
        return JSONResponse({"status": "ok"})

    def readyz(_: Request) -> Response:
        """Ready when the store takes a write (in the file it opened) and every worker and the scheduler run."""
        problems = []
        try:
            with transaction(services.engine) as conn:
                conn.execute(text("UPDATE alembic_version SET version_num = version_num"))
        except StoreUnavailable as exc:
            problems.append(str(exc))
        if services.outbox is not None and (stopped := services.outbox.dead_workers()):
            problems.append(f"delivery workers stopped: {', '.join(stopped)}")
        if services.scheduler is not None and not services.scheduler.running:
            problems.append("job scheduler stopped")
        if problems:
            return JSONResponse({"status": "unavailable", "reason": "; ".join(problems)}, status_code=503)
        return JSONResponse({"status": "ready"})

    scrape = metrics_registry(services.engine)

    async def metrics(_: Request) -> Response:
        """Prometheus' text format; read from the store in a thread (the event loop keeps serving)."""
        body = await run_in_threadpool(generate_latest, scrape)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    return Starlette(
        # first, before routing: a refused caller's body is never read (issue 8, Digikoppeling transport)
        # the access log outermost, so it sees what every other layer answered (a refused caller included)
        middleware=[Middleware(AccessLog), Middleware(CallerTrust, settings=services.settings.server)],
        routes=[
            Route("/soap/stuf-lvo", intake("/soap/stuf-lvo", soap), methods=["GET", "HEAD", "POST"]),
            Route(
                "/stam/verzoeknotificatie",
                intake(
                    "/stam/verzoeknotificatie",
                    request_response(stam_endpoint(stam_channel, services.settings.inbound.max_body_bytes)),
                ),
                methods=["POST"],
            ),
            *advies_routes(services, intake),  # the zaaksysteem's: adviesverzoeken, ZGW notifications
            Route("/xsd/{path:path}", _xsd, methods=["GET"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/readyz", readyz, methods=["GET"]),
            Route("/metrics", metrics, methods=["GET"]),
            *console_routes(services),
        ],
    )
