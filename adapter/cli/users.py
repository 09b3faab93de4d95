"""users add/list/passwd/role/remove, audit: the named accounts of the operators' console."""

from __future__ import annotations

import getpass
import sys

import click

from adapter.cli import _engine, _settings, main, readable_errors
from adapter.cli.output import table
from adapter.text import short, utc_text

#: ``adapter.store.users.Role``'s values (named here so the command line starts without the store and argon2)
ROLES = click.Choice(["operator", "beheerder"])


def _actor() -> str:
    """Who acts from the command line: the operating-system account (the audit log's ``actor``)."""
    return f"cli:{getpass.getuser()}"


def _password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    return str(click.prompt("password", hide_input=True, confirmation_prompt=True, err=True))


@main.group()
def users() -> None:
    """Named accounts of the operators' console (operator: read-only, personal data masked; beheerder: acts)."""


@users.command("add")
@click.argument("name")
@click.option("--role", type=ROLES, required=True, help="operator (read-only) or beheerder.")
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of stdin.")
@click.pass_context
@readable_errors
def users_add(ctx: click.Context, name: str, role: str, password_stdin: bool) -> None:
    """Add a named account; the password is asked twice (or read from stdin), stored as an argon2id hash."""
    from adapter.store import users as store

    store.check_name(name)
    password = _password(password_stdin)
    engine = _engine(_settings(ctx))
    try:
        store.add(engine, name, store.Role(role), password, actor=_actor())
    finally:
        engine.dispose()
    click.echo(f"user {name} added ({role})")


@users.command("passwd")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of stdin.")
@click.pass_context
@readable_errors
def users_passwd(ctx: click.Context, name: str, password_stdin: bool) -> None:
    """Set an account's password."""
    from adapter.store import users as store

    password = _password(password_stdin)
    engine = _engine(_settings(ctx))
    try:
        store.set_password(engine, name, password, actor=_actor())
    finally:
        engine.dispose()
    click.echo(f"password of {name} set")


@users.command("role")
@click.argument("name")
@click.argument("role", type=ROLES)
@click.pass_context
@readable_errors
def users_role(ctx: click.Context, name: str, role: str) -> None:
    """Give an account another role."""
    from adapter.store import users as store

    engine = _engine(_settings(ctx))
    try:
        store.set_role(engine, name, store.Role(role), actor=_actor())
    finally:
        engine.dispose()
    click.echo(f"{name} is {role} now")


@users.command("remove")
@click.argument("name")
@click.pass_context
@readable_errors
def users_remove(ctx: click.Context, name: str) -> None:
    """Remove an account."""
    from adapter.store import users as store

    engine = _engine(_settings(ctx))
    try:
        store.remove(engine, name, actor=_actor())
    finally:
        engine.dispose()
    click.echo(f"user {name} removed")


@users.command("list")
@click.pass_context
@readable_errors
def users_list(ctx: click.Context) -> None:
    """Every account with its role (never a password or its hash)."""
    from adapter.store import users as store

    engine = _engine(_settings(ctx))
    try:
        rows = store.list_users(engine)
    finally:
        engine.dispose()
    table(
        ["NAME", "ROLE", "CREATED (UTC)", "CHANGED (UTC)"],
        ([u.name, u.role.value, utc_text(u.created_at), utc_text(u.updated_at)] for u in rows),
    )


@users.command("audit")
@click.option("--limit", type=click.IntRange(min=1), default=100, show_default=True)
@click.pass_context
@readable_errors
def users_audit(ctx: click.Context, limit: int) -> None:
    """The audit log, newest first: who did what to which object, when and why."""
    from adapter.store import users as store

    engine = _engine(_settings(ctx))
    try:
        rows = store.audit_entries(engine, limit)
    finally:
        engine.dispose()
    table(
        ["AT (UTC)", "ACTOR", "ACTION", "TARGET", "REASON"],
        ([utc_text(a.at), a.actor, a.action, a.target, short(a.reason, 80)] for a in rows),
    )
