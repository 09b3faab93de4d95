"""Sessions of the operators' console: who is logged in, with which role, until when.

The browser holds a random token; the store holds only its sha256, so a copy of the database opens no
session. A session ends after ``idle`` without a request (the portal rule: 20 minutes by default) and at
``max_age`` however busy; logging out, and a change of the account's role or its removal
(``adapter.store.users``), end it at once. Each session has its own CSRF token, which every console form posts
back. Logins, logouts and unmasking are written to the audit log.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, delete, insert, select, update

from adapter.store.db import transaction
from adapter.store.tables import console_logins, console_sessions
from adapter.store.users import Role, audit
from adapter.text import as_utc

#: How long an OpenID Connect login may take between leaving for the provider and coming back.
LOGIN_TTL = timedelta(minutes=10)


@dataclass(frozen=True)
class Session:
    key: str  # sha256 of the browser's token
    user: str
    role: Role
    csrf: str
    created_at: datetime
    last_seen_at: datetime
    #: messages unmasked in this session (beheerder only; each with a reason in the audit log)
    unmasked: frozenset[int]

    @property
    def may_act(self) -> bool:
        return self.role is Role.BEHEERDER


def _key(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _now() -> datetime:
    return datetime.now(UTC)


def start(engine: Engine, user: str, role: Role, *, how: str = "password") -> str:
    """A new session for ``user``; returns the token for the browser's cookie (never stored)."""
    token = secrets.token_urlsafe(32)
    t = _now()
    with transaction(engine) as conn:
        conn.execute(
            insert(console_sessions).values(
                id=_key(token),
                user_name=user,
                role=role.value,
                csrf=secrets.token_urlsafe(32),
                created_at=t,
                last_seen_at=t,
            )
        )
        audit(conn, user, "login", None, f"{how}, role {role.value}")
    return token


def find(engine: Engine, token: str, *, idle: timedelta, max_age: timedelta) -> Session | None:
    """The live session of ``token``, its idle clock restarted; None (and the row removed, the end audited)
    when there is none or it ran out."""
    key, t = _key(token), _now()
    with transaction(engine) as conn:
        row = conn.execute(select(console_sessions).where(console_sessions.c.id == key)).first()
        if row is None:
            return None
        if as_utc(row.last_seen_at) + idle < t or as_utc(row.created_at) + max_age < t:
            conn.execute(delete(console_sessions).where(console_sessions.c.id == key))
            why = "idle" if as_utc(row.last_seen_at) + idle < t else "session too old"
            audit(conn, row.user_name, "logout", None, f"timed out ({why})")
            return None
        conn.execute(update(console_sessions).where(console_sessions.c.id == key).values(last_seen_at=t))
    return Session(
        key=key,
        user=row.user_name,
        role=Role(row.role),
        csrf=row.csrf,
        created_at=as_utc(row.created_at),
        last_seen_at=t,
        unmasked=frozenset(json.loads(row.unmasked or "[]")),
    )


def end(engine: Engine, session: Session) -> None:
    with transaction(engine) as conn:
        if conn.execute(delete(console_sessions).where(console_sessions.c.id == session.key)).rowcount:
            audit(conn, session.user, "logout", None, None)


def unmask(engine: Engine, session: Session, message_id: int, reason: str) -> None:
    """Show ``message_id``'s personal data in this session from now on; the reason goes to the audit log."""
    if not session.may_act:
        raise PermissionError("only a beheerder can unmask personal data")
    shown = sorted(session.unmasked | {message_id})
    with transaction(engine) as conn:
        conn.execute(
            update(console_sessions).where(console_sessions.c.id == session.key).values(unmasked=json.dumps(shown))
        )
        audit(conn, session.user, "unmasked personal data", f"message {message_id}", reason)


@dataclass(frozen=True)
class PendingLogin:
    state: str  # for the provider and the browser's cookie; stored as its sha256
    nonce: str
    verifier: str  # PKCE code_verifier


def begin_login(engine: Engine) -> PendingLogin:
    """A new OpenID Connect login: random state, nonce and PKCE verifier, kept until its callback."""
    login = PendingLogin(secrets.token_urlsafe(32), secrets.token_urlsafe(32), secrets.token_urlsafe(64))
    t = _now()
    with transaction(engine) as conn:
        conn.execute(delete(console_logins).where(console_logins.c.created_at < t - LOGIN_TTL))  # abandoned ones
        conn.execute(
            insert(console_logins).values(
                state=_key(login.state), nonce=login.nonce, verifier=login.verifier, created_at=t
            )
        )
    return login


def take_login(engine: Engine, state: str) -> PendingLogin | None:
    """The login ``state`` began, once (a replayed callback finds nothing), if begun less than ``LOGIN_TTL`` ago."""
    with transaction(engine) as conn:
        row = conn.execute(select(console_logins).where(console_logins.c.state == _key(state))).first()
        if row is None:
            return None
        conn.execute(delete(console_logins).where(console_logins.c.state == _key(state)))
    if as_utc(row.created_at) + LOGIN_TTL < _now():
        return None
    return PendingLogin(state, row.nonce, row.verifier)
