"""Named accounts of the operators' console (role, argon2id password hash) and the audit log.

A password is only ever hashed (argon2id, the library's defaults: memory-hard, salted per hash) and checked
against its hash; it is never stored, logged or shown. Every change to an account is written to the audit log
in the same transaction, so the log cannot miss one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Connection, Engine, delete, insert, select, update

from adapter.errors import ConfigError
from adapter.store.db import reading, transaction
from adapter.store.tables import audit_log, console_sessions, users
from adapter.text import as_utc

_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
MIN_PASSWORD = 12
_hasher = PasswordHasher()


class Role(StrEnum):
    #: reads everything, BSN and names masked; cannot act
    OPERATOR = "operator"
    #: resends, marks handled, unmasks after giving a reason (logged)
    BEHEERDER = "beheerder"


@dataclass(frozen=True)
class User:
    name: str
    role: Role
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class AuditEntry:
    at: datetime
    actor: str
    action: str
    target: str | None
    reason: str | None


class UserError(ConfigError):
    """A wrong name, role or password for an account: one line for the CLI (exit 1)."""


def check_name(name: str) -> str:
    if not _NAME.match(name):
        raise UserError(f"user name {name!r}: lower-case letters, digits, '.', '_' and '-', at most 64")
    return name


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise UserError(f"a password needs at least {MIN_PASSWORD} characters")
    return password


def _now() -> datetime:
    return datetime.now(UTC)


def audit(conn: Connection, actor: str, action: str, target: str | None, reason: str | None = None) -> None:
    """One audit line, written in the caller's transaction: it commits exactly when the change it records does."""
    conn.execute(insert(audit_log).values(at=_now(), actor=actor, action=action, target=target, reason=reason))


def add(engine: Engine, name: str, role: Role, password: str, *, actor: str) -> None:
    check_name(name)
    hashed = _hasher.hash(check_password(password))
    with transaction(engine) as conn:
        if conn.execute(select(users.c.name).where(users.c.name == name)).first() is not None:
            raise UserError(f"user {name} exists (set its password with `users passwd`, its role with `users role`)")
        t = _now()
        conn.execute(insert(users).values(name=name, role=role.value, password_hash=hashed, created_at=t, updated_at=t))
        audit(conn, actor, "user added", name, f"role {role.value}")


def _change(engine: Engine, name: str, values: dict[str, object], *, actor: str, action: str, why: str | None) -> None:
    with transaction(engine) as conn:
        done = conn.execute(update(users).where(users.c.name == name).values(**values, updated_at=_now())).rowcount
        if not done:
            raise UserError(f"no user {name}")
        # a session keeps the role it began with, and a new password shuts out whoever knew the old one
        conn.execute(delete(console_sessions).where(console_sessions.c.user_name == name))
        audit(conn, actor, action, name, why)


def set_password(engine: Engine, name: str, password: str, *, actor: str) -> None:
    hashed = _hasher.hash(check_password(password))
    # a new password also lifts a lock (an administrator set it)
    values = {"password_hash": hashed, "failed_logins": 0, "locked_until": None}
    _change(engine, name, values, actor=actor, action="password set", why=None)


def set_role(engine: Engine, name: str, role: Role, *, actor: str) -> None:
    _change(engine, name, {"role": role.value}, actor=actor, action="role set", why=f"role {role.value}")


def remove(engine: Engine, name: str, *, actor: str) -> None:
    with transaction(engine) as conn:
        if not conn.execute(delete(users).where(users.c.name == name)).rowcount:
            raise UserError(f"no user {name}")
        conn.execute(delete(console_sessions).where(console_sessions.c.user_name == name))
        audit(conn, actor, "user removed", name)


def list_users(engine: Engine) -> list[User]:
    with reading(engine) as conn:
        rows = conn.execute(
            select(users.c.name, users.c.role, users.c.created_at, users.c.updated_at).order_by(users.c.name)
        )
        return [User(r.name, Role(r.role), r.created_at, r.updated_at) for r in rows]


#: Wrong passwords in a row that lock an account, and for how long: guessing stays slow even from many
#: addresses, while a locked-out colleague waits minutes, not for an administrator.
MAX_FAILED_LOGINS = 5
LOCK = timedelta(minutes=15)


def authenticate(engine: Engine, name: str, password: str) -> Role | None:
    """The account's role when ``password`` is its password and the account is not locked, else None (also for
    an unknown name: the same work is done, so the answer's timing does not tell which names exist). The
    ``MAX_FAILED_LOGINS``-th wrong password in a row locks the account for ``LOCK`` (audited)."""
    t = _now()
    with reading(engine) as conn:
        row = conn.execute(
            select(users.c.role, users.c.password_hash, users.c.failed_logins, users.c.locked_until).where(
                users.c.name == name
            )
        ).first()
    locked = row is not None and row.locked_until is not None and as_utc(row.locked_until) > t
    stored = row.password_hash if row is not None and not locked else _dummy()
    try:
        _hasher.verify(stored, password)
        ok = row is not None and not locked
    except (VerificationError, InvalidHashError):
        ok = False
    if row is None or locked:
        return None
    if not ok:
        _failed(engine, name, t)
        return None
    values: dict[str, object] = {}
    if row.failed_logins:
        values["failed_logins"] = 0
    if _hasher.check_needs_rehash(stored):  # the library's parameters grew stronger since: hash again
        values["password_hash"] = _hasher.hash(password)
    if values:
        with transaction(engine) as conn:
            conn.execute(update(users).where(users.c.name == name).values(**values))
    return Role(row.role)


def _failed(engine: Engine, name: str, t: datetime) -> None:
    with transaction(engine) as conn:
        failed = conn.execute(
            update(users)
            .where(users.c.name == name)
            .values(failed_logins=users.c.failed_logins + 1)
            .returning(users.c.failed_logins)
        ).scalar_one()
        if failed >= MAX_FAILED_LOGINS:
            conn.execute(update(users).where(users.c.name == name).values(failed_logins=0, locked_until=t + LOCK))
            minutes = int(LOCK.total_seconds() // 60)
            audit(conn, "console", "account locked", name, f"{failed} wrong passwords in a row; {minutes} minutes")


@cache
def _dummy() -> str:
    """A hash to check an unknown name's password against (made once, when first needed: hashing is slow)."""
    return _hasher.hash("not a password of anyone")


def audit_entries(engine: Engine, limit: int = 100) -> list[AuditEntry]:
    with reading(engine) as conn:
        rows = conn.execute(select(audit_log).order_by(audit_log.c.id.desc()).limit(limit))
        return [AuditEntry(r.at, r.actor, r.action, r.target, r.reason) for r in rows]
