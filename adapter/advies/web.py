"""The zaaksysteem's HTTP endpoints for adviesverzoeken (JSON; errors as problem+json).

- ``POST /advies/adviesverzoeken`` ``{"zaak", "adviseur", "documenten"?, "einddatum"?, "omschrijving"?,
  "aanvraagnummer"?}`` → 201 with the adviesverzoek (``adviesverzoekId``, ``state``, …). With an
  ``Idempotency-Key`` header a repeat answers 200 with the adviesverzoek made the first time.
- ``POST /advies/intrekken`` ``{"adviesverzoekId"}`` → 200 with the adviesverzoek, state ingetrokken, and
  ``toelichting``: what the channel was told (StUF-LVO has no message for it).
- ``POST /zgw/notificaties``: a Notificaties API 1.0 notification → 204 (``adapter.advies.notificaties``).

Every call needs ``Authorization: Bearer <[advies] api_token>`` (the token compared in constant time);
without an api_token configured the endpoints answer 403. ``[server.allowed_oins]`` may limit them to the
zaaksysteem's OIN as well (``CallerTrust``, before the body is read). The store work runs in a thread.
"""

from __future__ import annotations

import hmac
import json
from collections.abc import Callable
from datetime import date
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, request_response
from starlette.types import ASGIApp

from adapter.advies import notificaties, service, store
from adapter.errors import AdapterError, InputError, TargetError
from adapter.logs import correlation, get_logger

log = get_logger("adapter.advies.web")
MAX_BODY = 1024 * 1024


def _problem(status: int, title: str, detail: str, cid: str, **headers: str) -> JSONResponse:
    body = {"type": f"about:blank#{status}", "title": title, "status": status, "detail": detail}
    return JSONResponse(
        body, status_code=status, media_type="application/problem+json", headers={"X-Correlation-ID": cid, **headers}
    )


def _authorised(services: Any, request: Request, cid: str) -> Response | None:
    token = services.settings.advies.api_token
    if not token:
        return _problem(403, "Forbidden", "the zaaksysteem's endpoints are off: set [advies] api_token", cid)
    given = request.headers.get("authorization", "")
    if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
        return _problem(401, "Unauthorized", "Authorization: Bearer <token> missing or wrong", cid)
    return None


async def _json(request: Request) -> Any:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_BODY:
        raise InputError(f"body larger than {MAX_BODY} bytes")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            raise InputError(f"body larger than {MAX_BODY} bytes")
    try:
        return json.loads(body)
    except ValueError as exc:
        raise InputError(f"not JSON: {exc}") from None


def _text(data: dict[str, Any], key: str, required: bool = False) -> str | None:
    value = data.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise InputError(f"{key}: {'required, ' if required else ''}a non-empty text")
    return value


def _aanvraag(data: Any) -> service.Aanvraag:
    if not isinstance(data, dict):
        raise InputError("not a JSON object")
    unknown = set(data) - {"zaak", "adviseur", "documenten", "einddatum", "omschrijving", "aanvraagnummer"}
    if unknown:
        raise InputError(f"unknown fields: {', '.join(sorted(unknown))}")
    documenten = data.get("documenten") or []
    if not isinstance(documenten, list) or not all(isinstance(d, str) and d.strip() for d in documenten):
        raise InputError("documenten: a list of non-empty texts")
    einddatum = _text(data, "einddatum")
    try:
        eind = date.fromisoformat(einddatum) if einddatum else None
    except ValueError:
        raise InputError("einddatum: a date like 2026-12-31") from None
    return service.Aanvraag(
        zaak=_text(data, "zaak", True) or "",
        adviseur=_text(data, "adviseur", True) or "",
        documents=tuple(documenten),
        einddatum=eind,
        omschrijving=_text(data, "omschrijving"),
        aanvraagnummer=_text(data, "aanvraagnummer"),
    )


def _endpoint(services: Any, handler: Callable[[Request, str], Any]) -> Callable[[Request], Any]:
    async def endpoint(request: Request) -> Response:
        given = request.headers.get("x-correlation-id", "")
        with correlation(given if given.isalnum() and len(given) <= 32 else None, channel="advies") as cid:
            refused = _authorised(services, request, cid)
            if refused is not None:
                log.warning("advies caller refused", endpoint=request.url.path, status=refused.status_code)
                return refused
            try:
                return await handler(request, cid)
            except (InputError, service.AanvraagInvalid) as exc:
                return _problem(400, "Bad Request", str(exc), cid)
            except store.NotAllowed as exc:
                return _problem(409, "Conflict", str(exc), cid)
            except TargetError as exc:
                log.warning("advies request failed at the zaaksysteem", error=str(exc))
                return _problem(503, "Service Unavailable", str(exc), cid, **{"Retry-After": "60"})
            except AdapterError as exc:
                log.warning("advies request failed", error=str(exc))
                return _problem(503 if exc.transient else 500, "Error", str(exc), cid)

    return endpoint


def routes(services: Any, wrap: Callable[[str, ASGIApp], ASGIApp]) -> list[Route]:
    """The routes for ``build_app``; ``wrap`` adds the intake limits (body timeout, concurrency)."""
    settings, engine = services.settings, services.engine

    async def aanvragen(request: Request, cid: str) -> Response:
        request_ = _aanvraag(await _json(request))
        key = request.headers.get("idempotency-key")
        trigger = f"http:{key[:200]}" if key else None
        av, new = await run_in_threadpool(
            service.aanvragen, settings, engine, request_, bron="http", trigger_key=trigger
        )
        log.info("adviesverzoek from the zaaksysteem", adviesverzoek=av.id, new=new)
        return JSONResponse(av.as_json(), status_code=201 if new else 200, headers={"X-Correlation-ID": cid})

    async def intrekken(request: Request, cid: str) -> Response:
        data = await _json(request)
        av_id = _text(data if isinstance(data, dict) else {}, "adviesverzoekId", True) or ""
        try:
            av, note = await run_in_threadpool(service.intrekken, settings, engine, av_id)
        except KeyError:
            return _problem(404, "Not Found", f"no adviesverzoek {av_id}", cid)
        return JSONResponse({**av.as_json(), "toelichting": note}, headers={"X-Correlation-ID": cid})

    async def notificatie(request: Request, cid: str) -> Response:
        n = notificaties.read(await _json(request))
        mappings = services.outbox.mappings.get() if services.outbox is not None else []
        made = await run_in_threadpool(notificaties.handle, settings, engine, mappings, services.targets, n)
        log.info("zgw notification", kanaal=n.kanaal, resource=n.resource, actie=n.actie, adviesverzoeken=len(made))
        return Response(status_code=204, headers={"X-Correlation-ID": cid})

    def route(path: str, handler: Callable[[Request, str], Any]) -> Route:
        return Route(path, wrap(path, request_response(_endpoint(services, handler))), methods=["POST"])

    return [
        route("/advies/adviesverzoeken", aanvragen),
        route("/advies/intrekken", intrekken),
        route("/zgw/notificaties", notificatie),
    ]
