"""The ``loket-adapter`` command: thin click commands that parse, call a service and print.

Every failure the user can cause prints one readable line on stderr and exits non-zero.
"""

from __future__ import annotations

import json
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
    if services.outbox and settings.delivery.enabled:
        services.outbox.mappings.get()  # a broken mapping stops the start with one line
        services.outbox.start()
    scheduler = None
    if settings.jobs.enabled and services.werkmap is not None:
        from adapter.jobs.scheduler import start as start_scheduler

        scheduler = start_scheduler(services)
    try:
        uvicorn.run(
            app,
            host=settings.server.host,
            port=settings.server.port,
            log_config=None,
            access_log=False,
            timeout_graceful_shutdown=10,
        )
    finally:
        if scheduler is not None:
            scheduler.shutdown(wait=False)
        services.close()


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
    _show_delivery(settings, message_id)
    click.echo("answer:")
    click.echo(row.answer or "(none)")


def _show_delivery(settings: Settings, message_id: int) -> None:
    from adapter.store.db import make_engine
    from adapter.store.outbox import delivery_of_message

    engine = make_engine(settings.store.url, lock_timeout_ms=settings.store.lock_timeout_ms)
    info = delivery_of_message(engine, message_id)
    engine.dispose()
    if info is None:
        return
    d = info["delivery"]
    click.echo(f"delivery:         {d.state} to {d.target or '(not yet routed)'} after {d.attempts} attempt(s)")
    if d.state in ("retry", "pending"):
        click.echo(f"next attempt:     {d.next_attempt_at}")
    if d.last_error:
        click.echo(f"last error:       {d.last_error}")
    if d.outcome:
        click.echo(f"outcome:          {d.outcome}")
    for a in info["attempts"]:
        click.echo(f"  attempt {a.started_at:%Y-%m-%d %H:%M:%S} {a.status:7} {a.duration_ms:6} ms  {a.error or ''}")
        for call in json.loads(a.calls or "[]"):
            click.echo(f"      {call}")
    done = [s.key for s in info["steps"] if s.state == "done"]
    if done:
        click.echo(f"checkpoints:      {', '.join(done)}")


@messages.command("stats")
@click.option("--db", "db_url", help="Database URL (overrides store.url).")
@click.pass_context
@readable_errors
def messages_stats(ctx: click.Context, db_url: str | None) -> None:
    """Counts: messages by state, deliveries by state, and deliveries that landed in triage."""
    from adapter.store import messages as store
    from adapter.store.db import make_engine
    from adapter.store.outbox import delivery_stats

    settings = _settings(ctx, db_url)
    engine = make_engine(settings.store.url, lock_timeout_ms=settings.store.lock_timeout_ms)
    try:
        by_state = store.count_by_state(engine)
        deliveries = delivery_stats(engine)
    finally:
        engine.dispose()
    click.echo("messages:   " + (", ".join(f"{k} {v}" for k, v in sorted(by_state.items())) or "none"))
    triage = deliveries.pop("triage", 0)
    click.echo("deliveries: " + (", ".join(f"{k} {v}" for k, v in sorted(deliveries.items())) or "none"))
    click.echo(f"triage:     {triage} delivered to a triage zaaktype (no activiteit mapped)")


@messages.command("resend")
@click.argument("message_ids", nargs=-1, type=int)
@click.option("--state", type=click.Choice(["dead"]), help="Resend every message whose delivery is dead.")
@click.option("--since", help="With --state: only those that died since (ISO date/time or age like 12h).")
@click.pass_context
@readable_errors
def messages_resend(ctx: click.Context, message_ids: tuple[int, ...], state: str | None, since: str | None) -> None:
    """Reset attempts and deliver now; prints the real outcome of each. Exit 1 if any failed."""
    from adapter.services import open_services
    from adapter.store.outbox import dead_message_ids

    if bool(message_ids) == bool(state):
        raise click.UsageError("give message IDs or --state dead, not both")
    settings = _settings(ctx)
    configure_logging(settings.server.environment, "WARNING")
    services = open_services(settings)
    assert services.outbox is not None
    try:
        ids = list(message_ids) or dead_message_ids(services.engine, _parse_since(since))
        if not ids:
            click.echo("nothing to resend")
            return
        failed = 0
        with click.progressbar(ids, label="resending", file=sys.stderr) if len(ids) > 5 else _nullbar(ids) as bar:
            results = []
            for mid in bar:
                results.extend(services.outbox.resend([mid]))
        for r in results:
            line = r if isinstance(r, str) else r.line()
            ok = not isinstance(r, str) and r.state == "done"
            failed += not ok
            click.echo(line)
        click.echo(f"{len(results) - failed} delivered, {failed} not delivered")
    finally:
        services.close()
    if failed:
        sys.exit(1)


class _nullbar:
    def __init__(self, items: list[int]) -> None:
        self.items = items

    def __enter__(self) -> list[int]:
        return self.items

    def __exit__(self, *_: object) -> None:
        pass


@main.group()
def mappings() -> None:
    """Mapping files: check them, preview what a message becomes."""


@mappings.command("check")
@click.option("--online", is_flag=True, help="Also check every catalogus reference in the target.")
@click.pass_context
@readable_errors
def mappings_check(ctx: click.Context, online: bool) -> None:
    """Validate the mapping files; exit 1 on any error (warnings do not fail)."""
    from adapter.mapping.check import check_dir
    from adapter.services import resolve_path
    from adapter.targets.registry import build_targets

    settings = _settings(ctx)
    directory = resolve_path(settings, settings.delivery.mappings_dir)
    problems = check_dir(directory, build_targets(settings), online=online)
    errors = [p for p in problems if p.severity == "error"]
    for p in problems:
        click.echo(f"{p.severity}: {p}", err=True)
    if errors:
        sys.exit(1)
    click.echo(f"{directory}: ok" + (" (catalogus checked)" if online else ""))


@mappings.command("preview")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.pass_context
@readable_errors
def mappings_preview(ctx: click.Context, file: Path) -> None:
    """Print the calls the target would receive for MESSAGE.xml, without sending anything."""
    from adapter.mapping.engine import build_opdracht
    from adapter.mapping.loader import load_dir
    from adapter.preview import preview_message
    from adapter.services import resolve_path
    from adapter.targets.registry import build_targets

    settings = _settings(ctx)
    mappings_ = load_dir(resolve_path(settings, settings.delivery.mappings_dir))
    targets = build_targets(settings)
    for line in preview_message(file.read_bytes(), settings, mappings_, targets, build_opdracht):
        click.echo(line)


@main.group()
def jobs() -> None:
    """Scheduled jobs (the werkmap safety-net poll)."""


@jobs.command("list")
@click.pass_context
@readable_errors
def jobs_list(ctx: click.Context) -> None:
    """Every job with its interval, and the recent runs (start, end, found, new, errors)."""
    from adapter.jobs.scheduler import JOBS
    from adapter.services import open_services
    from adapter.store.jobs import recent_runs

    services = open_services(_settings(ctx), with_outbox=False)
    try:
        for job in JOBS.values():
            click.echo(f"{job.name:16} every {job.interval(services)}")
        header = f"{'RUN':>5}  {'JOB':16} {'STARTED (UTC)':19}  {'SECS':>6}  {'STATUS':8}"
        click.echo(f"{header} {'FOUND':>5} {'NEW':>5} {'ERR':>4}  DETAIL")
        for r in recent_runs(services.engine):
            secs = f"{(r.ended_at - r.started_at).total_seconds():6.1f}" if r.ended_at else "     -"
            click.echo(
                f"{r.id:>5}  {r.name:16} {r.started_at:%Y-%m-%d %H:%M:%S}  {secs}  {r.status:8} {r.found or 0:>5} "
                f"{r.new or 0:>5} {r.errors or 0:>4}  {(r.detail or '')[:80]}"
            )
    finally:
        services.close()


@jobs.command("run")
@click.argument("name")
@click.pass_context
@readable_errors
def jobs_run(ctx: click.Context, name: str) -> None:
    """Run a job now (unless another process is running it); exit 1 if it failed or could not run."""
    from adapter.jobs.scheduler import run_job
    from adapter.services import open_services

    settings = _settings(ctx)
    configure_logging(settings.server.environment, "WARNING")
    services = open_services(settings)
    try:
        outcome = run_job(services, name, force=True)
    finally:
        services.close()
    click.echo(f"{name}: {outcome.status}: {outcome.detail}")
    if outcome.status != "ok":
        sys.exit(1)


@main.group()
def werkmap() -> None:
    """The DSO werkmap (Verzoek afhandelen)."""


@werkmap.command("overdragen")
@click.argument("verzoeknummer")
@click.option("--naar", "naar", required=True, help="OIN of the organisation that takes it over.")
@click.option("--rol", type=click.Choice(["behandeldienst", "bevoegdGezag"]), required=True)
@click.option("--toelichting", default="Overgedragen via loket-adapter")
@click.pass_context
@readable_errors
def werkmap_overdragen(ctx: click.Context, verzoeknummer: str, naar: str, rol: str, toelichting: str) -> None:
    """Hand a verzoek over to another bevoegd gezag or behandeldienst."""
    from adapter.services import open_services
    from adapter.targets.base import TargetError

    settings = _settings(ctx)
    services = open_services(settings)
    try:
        if services.werkmap is None:
            _fail(f"{settings.source}: werkmap: not configured")
        assert services.werkmap is not None
        try:
            services.werkmap.overdragen(verzoeknummer, naar, rol, toelichting)
        except TargetError as exc:
            _fail(str(exc))
    finally:
        services.close()
    click.echo(f"verzoek {verzoeknummer} overgedragen aan {naar} als {rol}")
