"""Who is looking at the console: the session cookie, the CSRF token of every form, the login itself.

The cookie holds a random token (``adapter.store.sessions``): HttpOnly, SameSite=Strict, and with
``secure_cookies`` (the default) Secure under the ``__Host-`` name, which a browser only keeps from HTTPS (or
http://localhost) for the whole host. Every POST carries the session's CSRF token in its form; the login form,
posted before any session exists, carries a token that must equal a short-lived cookie of its own (double
submit). Both are compared in constant time.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import parse_qsl

from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from adapter.config import ConsoleSettings
from adapter.store import sessions
from adapter.store.sessions import Session

#: Forms of the console are small (a reason, some ids): anything bigger is refused before it is parsed.
MAX_FORM_BYTES = 64 * 1024
LOGIN_CSRF_SECONDS = 30 * 60


class FormTooLarge(Exception):
    pass


@dataclass(frozen=True)
class Cookies:
    """Names and flags of the console's two cookies."""

    secure: bool

    @property
    def session(self) -> str:
        return "__Host-loket-console" if self.secure else "loket-console"

    @property
    def login(self) -> str:
        return "__Host-loket-login" if self.secure else "loket-login"

    @property
    def oidc(self) -> str:
        return "__Host-loket-oidc" if self.secure else "loket-oidc"

    def set(self, response: Response, name: str, value: str, max_age: int | None = None) -> None:
        response.set_cookie(
            name, value, max_age=max_age, path="/", secure=self.secure, httponly=True, samesite="strict"
        )

    def clear(self, response: Response, name: str) -> None:
        response.delete_cookie(name, path="/", secure=self.secure, httponly=True, samesite="strict")


class Gate:
    """Finds the session of a request, and checks a form's CSRF token against it."""

    def __init__(self, engine: Engine, settings: ConsoleSettings) -> None:
        self.engine = engine
        self.cookies = Cookies(settings.secure_cookies)
        self.idle = timedelta(minutes=settings.idle_minutes)
        self.max_age = timedelta(hours=settings.max_session_hours)

    async def session(self, request: Request) -> Session | None:
        token = request.cookies.get(self.cookies.session)
        if not token or len(token) > 128:
            return None
        return await run_in_threadpool(sessions.find, self.engine, token, idle=self.idle, max_age=self.max_age)


async def form(request: Request) -> dict[str, list[str]]:
    """The urlencoded form of a POST (every field's values in order), at most ``MAX_FORM_BYTES``."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise FormTooLarge(f"form larger than {MAX_FORM_BYTES} bytes")
    out: dict[str, list[str]] = {}
    for key, value in parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True):
        out.setdefault(key, []).append(value)
    return out


def first(fields: dict[str, list[str]], key: str) -> str:
    values = fields.get(key) or [""]
    return values[0]


def token_matches(given: str, expected: str) -> bool:
    return bool(given) and bool(expected) and hmac.compare_digest(given.encode(), expected.encode())


def new_login_token() -> str:
    return secrets.token_urlsafe(32)
