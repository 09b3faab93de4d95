"""The ``loket-adapter`` command: thin click commands that parse, call a service and print.

Every failure the user can cause prints one readable line on stderr and exits non-zero.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar

import click

from adapter.config import Settings, load_settings
from adapter.errors import AdapterError
from adapter.logs import configure_logging

F = TypeVar("F", bound=Callable[..., Any])
DEFAULT_CONFIG = "config.example.toml"


def _fail(message: str, code: int = 1) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def readable_errors(fn: F) -> F:
    """Turn our own errors into one line on stderr and exit status 1 (no traceback)."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except AdapterError as exc:
            _fail(str(exc))
        except OSError as exc:  # e.g. the SQLite file's folder cannot be created
            _fail(f"{exc.filename}: {exc.strerror}" if exc.filename and exc.strerror else str(exc))
        except Exception as exc:
            from sqlalchemy.exc import SQLAlchemyError  # here, so `validate` does not pay for the import

            if not isinstance(exc, SQLAlchemyError):
                raise
            # A store failure the store layer did not translate (e.g. "file is not a database").
            orig = getattr(exc, "orig", None)
            text = (str(orig) if orig is not None else str(exc)).strip()
            _fail(f"store unavailable: {text.splitlines()[0] if text else type(exc).__name__}")

    return wrapper  # type: ignore[return-value]


def _settings(ctx: click.Context, db: str | None = None) -> Settings:
    path = ctx.obj["config"]
    settings = load_settings(path)
    if db:
        settings = settings.with_overrides(**{"store.url": db})
    return settings


@click.group()
@click.option(
    "--config",
    "config",
    type=click.Path(dir_okay=False),
    default=lambda: os.environ.get("LOKET_ADAPTER_CONFIG", DEFAULT_CONFIG),
    show_default=f"$LOKET_ADAPTER_CONFIG or {DEFAULT_CONFIG}",
    help="TOML configuration file.",
)
@click.pass_context
def main(ctx: click.Context, config: str) -> None:
    """Koppeling between the Omgevingsloket and a zaaksysteem."""
    ctx.ensure_object(dict)
    ctx.obj["config"] = config


@main.command()
@click.option("--host", help="Listen address (overrides server.host).")
@click.option("--port", type=int, help="Listen port (overrides server.port).")
@click.option("--db", help="Database URL (overrides store.url).")
@click.pass_context
@readable_errors
def serve(ctx: click.Context, host: str | None, port: int | None, db: str | None) -> None:
    """Serve the SOAP and HTTP endpoints."""
    import uvicorn

    from adapter.app import build_app
    from adapter.services import open_services
    from adapter.store.db import upgrade

    settings = _settings(ctx, db).with_overrides(**{"server.host": host, "server.port": port})
    configure_logging(settings.server.environment, settings.server.log_level)
    services = open_services(settings)
    if settings.store.auto_migrate:
        upgrade(services.engine)
    app = build_app(services)
    uvicorn.run(
        app,
        host=settings.server.host,
        port=settings.server.port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=10,
    )


@main.command("check-config")
@click.pass_context
@readable_errors
def check_config(ctx: click.Context) -> None:
    """Validate the configuration, compile the schemas and reach the store."""
    settings = _settings(ctx)  # first: a broken file is reported without loading the rest

    from adapter.services import open_services
    from adapter.store.db import current_revision

    services = open_services(settings)
    try:
        revision = current_revision(services.engine)
    finally:
        services.close()
    click.echo(f"{settings.source}: ok")
    click.echo(f"  store      {_safe_url(settings.store.url)} (schema revision {revision or 'none: run db upgrade'})")
    click.echo(f"  ontvangers {', '.join(f'{s.organisatie}/{s.applicatie}' for s in settings.stuf.ontvangers)}")


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@click.option("--db", "db_url", help="Database URL (overrides store.url).")
@click.pass_context
@readable_errors
def db_upgrade(ctx: click.Context, db_url: str | None) -> None:
    """Apply all migrations."""
    from adapter.store.db import current_revision, make_engine, upgrade

    settings = _settings(ctx, db_url)
    engine = make_engine(settings.store.url, lock_timeout_ms=settings.store.lock_timeout_ms)
    try:
        upgrade(engine)
        click.echo(f"schema at revision {current_revision(engine)}")
    finally:
        engine.dispose()


@main.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@readable_errors
def validate(file: Path) -> None:
    """Validate a message (SOAP envelope or bare message) against our schemas."""
    from adapter.validation import validate_file

    ok, lines = validate_file(file)
    for line in lines:
        click.echo(line, err=not ok)
    if not ok:
        sys.exit(1)


@main.group()
def messages() -> None:
    """The message log."""


def _parse_since(value: str | None) -> datetime | None:
    if not value:
        return None
    units = {"m": "minutes", "h": "hours", "d": "days"}
    if value[-1:] in units and value[:-1].isdigit():
        return datetime.now(UTC) - timedelta(**{units[value[-1]]: int(value[:-1])})
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter("use an ISO date/time or an age like 30m, 12h, 7d", param_hint="'--since'") from None
    # SQLite stores received_at as UTC wall-clock text and compares as text: the bound value must be UTC too.
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _utc(value: datetime) -> datetime:
    """A stored timestamp in UTC (SQLite gives naive UTC, PostgreSQL the session's time zone)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@messages.command("list")
@click.option("--state", help="received, rejected, …")
@click.option("--type", "message_type", help="Message type, e.g. omvDi01AanbiedenAanvraag.")
@click.option("--since", help="ISO date/time or age (30m, 12h, 7d).")
@click.option("--nummer", help="aanvraagnummer or verzoeknummer.")
@click.option("--limit", type=int, default=100, show_default=True)
@click.option("--db", "db_url", help="Database URL (overrides store.url).")
@click.pass_context
@readable_errors
def messages_list(
    ctx: click.Context,
    state: str | None,
    message_type: str | None,
    since: str | None,
    nummer: str | None,
    limit: int,
    db_url: str | None,
) -> None:
    """List messages, newest first."""
    from adapter.store import messages as store
    from adapter.store.db import make_engine

    settings = _settings(ctx, db_url)
    engine = make_engine(settings.store.url, lock_timeout_ms=settings.store.lock_timeout_ms)
    rows = store.list_messages(
        engine, state=state, message_type=message_type, since=_parse_since(since), nummer=nummer, limit=limit
    )
    click.echo(f"{'ID':>6}  {'RECEIVED (UTC)':19}  {'STATE':9}  {'TYPE':30}  {'NUMMER':14}  {'CODE':8}  REFERENTIE")
    for r in rows:
        received = _utc(r.received_at).strftime("%Y-%m-%d %H:%M:%S")
        click.echo(
            f"{r.id:>6}  {received:19}  {r.state:9}  {r.message_type[:30]:30}  {(r.nummer or '-')[:14]:14}  "
            f"{r.error_code or '-':8}  {r.referentienummer or '-'}"
        )
    engine.dispose()


@messages.command("show")
@click.argument("message_id", type=int)
@click.option("--raw", is_flag=True, help="Print the body exactly as received (bytes to stdout).")
@click.option("--db", "db_url", help="Database URL (overrides store.url).")
@click.pass_context
@readable_errors
def messages_show(ctx: click.Context, message_id: int, raw: bool, db_url: str | None) -> None:
    """Show one message: its fields, the answer sent and (with --raw) the body."""
    from adapter.store import messages as store
    from adapter.store.db import make_engine

    settings = _settings(ctx, db_url)
    engine = make_engine(settings.store.url, lock_timeout_ms=settings.store.lock_timeout_ms)
    row = store.get_message(engine, message_id)
    engine.dispose()
    if row is None:
        _fail(f"message {message_id} not found")
    assert row is not None
    if raw:
        sys.stdout.buffer.write(row.body)
        return
    fields = [
        "id",
        "correlation_id",
        "channel",
        "message_type",
        "berichtcode",
        "zender",
        "ontvanger",
        "referentienummer",
        "cross_refnummer",
        "tijdstip_bericht",
        "nummer",
        "volgnummer",
        "state",
        "error_code",
        "error_text",
        "size",
        "sha256",
        "received_at",
        "updated_at",
    ]
    for f in fields:
        value = getattr(row, f)
        if value is not None:
            click.echo(f"{f:17} {value}")
    click.echo("answer:")
    click.echo(row.answer or "(none)")
