"""The operators' console at ``/console``: the message log, its actions, the jobs, polls, adviesverzoeken and
postboxes, for named accounts (``loket-adapter users``) with the role operator (reads, personal data masked) or
beheerder (resends, marks handled, unmasks with a reason, reads the audit log)."""

from __future__ import annotations

from importlib.resources import files

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from adapter.services import Services
from adapter.web.console.auth import Gate
from adapter.web.console.pages import Pages
from adapter.web.console.render import SECURITY_HEADERS
from adapter.web.console.views import MessageViews

_STATIC = {"console.css": "text/css", "console.js": "text/javascript"}


def _static(request: Request) -> Response:
    name = request.path_params["name"]
    if name not in _STATIC:
        return Response("not found", status_code=404, media_type="text/plain")
    body = (files("adapter.web.console") / "static" / name).read_bytes()
    return Response(body, media_type=_STATIC[name], headers={"Cache-Control": "max-age=3600", **_NOSNIFF})


_NOSNIFF = {"X-Content-Type-Options": SECURITY_HEADERS["X-Content-Type-Options"]}


def console_routes(services: Services) -> list[BaseRoute]:
    """The console's routes, or none when ``[console] enabled = false``."""
    if not services.settings.console.enabled:
        return []
    gate = Gate(services.engine, services.settings.console)
    m, p = MessageViews(services, gate), Pages(services, gate)

    def home(_: Request) -> Response:
        return RedirectResponse("/console/messages", status_code=303)

    return [
        Route("/console", home, methods=["GET"]),
        Route("/console/", home, methods=["GET"]),
        Route("/console/static/{name}", _static, methods=["GET"]),
        Route("/console/login", p.login_page, methods=["GET"]),
        Route("/console/login", p.login, methods=["POST"]),
        Route("/console/logout", p.logout, methods=["POST"]),
        Route("/console/oidc/start", p.oidc_start, methods=["GET"]),
        Route("/console/oidc/callback", p.oidc_callback, methods=["GET"]),
        Route("/console/messages", m.list_page, methods=["GET"]),
        Route("/console/messages/bulk", m.bulk, methods=["POST"]),
        Route("/console/messages/{id:int}", m.detail_page, methods=["GET"]),
        Route("/console/messages/{id:int}/body", m.download, methods=["GET"]),
        Route("/console/messages/{id:int}/resend", m.resend, methods=["POST"]),
        Route("/console/messages/{id:int}/handled", m.handled, methods=["POST"]),
        Route("/console/messages/{id:int}/unmask", m.unmask, methods=["POST"]),
        Route("/console/jobs", p.jobs_page, methods=["GET"]),
        Route("/console/polls", p.polls_page, methods=["GET"]),
        Route("/console/advies", p.advies_page, methods=["GET"]),
        Route("/console/postboxes", p.postboxes_page, methods=["GET"]),
        Route("/console/audit", p.audit_page, methods=["GET"]),
    ]
