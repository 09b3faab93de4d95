"""serve, check-config, db upgrade, validate."""

from __future__ import annotations

import socket
import sys
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING

import click

from adapter.cli import (
    _engine,
    _safe_url,
    _settings,
    main,
    readable_errors,
)
from adapter.config import Settings
from adapter.logs import configure_logging

if TYPE_CHECKING:
    from adapter.services import Services


@main.command()
@click.option("--host", help="Listen address (overrides server.host).")
@click.option("--port", type=int, help="Listen port (overrides server.port).")
@click.option("--db", help="Database URL (overrides store.url).")
@click.option(
    "--record",
    type=click.Path(file_okay=False, path_type=Path),
    help="Record every delivered message's flow into this folder (a ketensimulatie recording: simulate --rerun).",
)
@click.pass_context
@readable_errors
def serve(ctx: click.Context, host: str | None, port: int | None, db: str | None, record: Path | None) -> None:
    """Serve the SOAP and HTTP endpoints."""
    from adapter.web.transport import check_tls, listen

    settings = _settings(ctx, db).with_overrides(**{"server.host": host, "server.port": port})
    configure_logging(settings.server.environment, settings.server.log_level)
    check_tls(settings)  # a missing or unreadable certificate stops the start with one line
    # the port before anything starts: taken, it is one line and exit 1, with no worker or job started
    sock = listen(settings.server.host, settings.server.port)
    try:
        _serve(settings, sock, record)
    finally:
        sock.close()


def _serve(settings: Settings, sock: socket.socket, record: Path | None = None) -> None:
    import uvicorn

    from adapter.app import build_app
    from adapter.services import open_services
    from adapter.store.db import upgrade
    from adapter.web.transport import uvicorn_options

    services = open_services(settings)
    if settings.store.auto_migrate:
        upgrade(services.engine)
    app = build_app(services)
    recording = ExitStack()
    if record is not None:  # personal data of real verzoeken lands in these files: an acceptance environment's
        _record_into(recording, services, settings, record)
    if services.outbox and settings.delivery.enabled:
        services.outbox.mappings.get()  # a broken mapping stops the start with one line
        services.outbox.start()
    scheduler = None
    # the scheduled jobs need something to work on: the werkmap (poll), a postbox (pickup, mirror), samenwerken
    if settings.jobs.enabled and (services.werkmap is not None or settings.postboxes or services.samenwerken):
        from adapter.jobs.scheduler import start as start_scheduler

        scheduler = services.scheduler = start_scheduler(services)
    try:
        config = uvicorn.Config(
            app,
            log_config=None,
            access_log=False,  # ours: adapter/web/access.py (one structured line, caller and OIN, no query)
            timeout_graceful_shutdown=10,
            **uvicorn_options(settings),  # TLS and the protocol that passes on client certificates
        )
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        if scheduler is not None:
            scheduler.shutdown(wait=False)
        services.close()
        recording.close()


def _record_into(stack: ExitStack, services: Services, settings: Settings, folder: Path) -> None:
    """Every delivery run of this process recorded into ``folder`` (``serve --record``), from before the
    first worker starts."""
    from adapter import recording
    from adapter.simulation.recorded import FlowRecorder, setup_of

    flows = FlowRecorder(services.engine, folder, setup_of(settings), settings.store.files_dir)
    flows.description = f"recorded by serve --record ({settings.source})"
    stack.enter_context(recording.installed(flows))


@main.command("check-config")
@click.pass_context
@readable_errors
def check_config(ctx: click.Context) -> None:
    """Validate the configuration (targets, werkmap, loket, mappings too), compile the schemas, reach the store."""
    settings = _settings(ctx)  # first: a broken file is reported without loading the rest

    from adapter.services import open_services
    from adapter.store.db import current_revision
    from adapter.web.transport import check_tls, transport_summary

    check_tls(settings)  # the certificates as serve loads them
    services = open_services(settings)
    try:
        if services.outbox is not None and settings.delivery.enabled:
            loaded = services.outbox.mappings.get()  # a broken mapping is one line, naming file and line
        revision = current_revision(services.engine)
    finally:
        services.close()
    click.echo(f"{settings.source}: ok")
    click.echo(f"  store      {_safe_url(settings.store_url())} (schema revision {revision or 'none: run db upgrade'})")
    click.echo(f"  ontvangers {', '.join(f'{s.organisatie}/{s.applicatie}' for s in settings.stuf.ontvangers)}")
    if services.targets:
        click.echo(f"  targets    {', '.join(f'{n} ({t.kind})' for n, t in services.targets.items())}")
    if services.outbox is not None and settings.delivery.enabled:
        click.echo(f"  mappings   {', '.join(m.path.name for m in loaded)}")
    click.echo(f"  werkmap    {'configured' if services.werkmap else 'not configured (STAM off)'}")
    click.echo(f"  transport  {transport_summary(settings.server)}")


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@click.option("--db", "db_url", help="Database URL (overrides store.url).")
@click.pass_context
@readable_errors
def db_upgrade(ctx: click.Context, db_url: str | None) -> None:
    """Apply all migrations."""
    from adapter.store.db import current_revision, upgrade

    settings = _settings(ctx, db_url)
    engine = _engine(settings)
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
