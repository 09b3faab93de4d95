"""Mappings (check, preview), jobs (list, run) and the werkmap (overdragen)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from adapter.cli import (
    _fail,
    _settings,
    main,
    readable_errors,
)
from adapter.cli.output import table
from adapter.logs import configure_logging
from adapter.text import short, utc_text

if TYPE_CHECKING:
    from adapter.loket.stam import Rol


@main.group()
def mappings() -> None:
    """Mapping files: check them, preview what a message becomes."""


@mappings.command("check")
@click.option("--online", is_flag=True, help="Also check every catalogus reference in the target.")
@click.pass_context
@readable_errors
def mappings_check(ctx: click.Context, online: bool) -> None:
    """Validate the mapping files; exit 1 on any error (warnings do not fail)."""
    from adapter.mapping.check import check_dir, check_mirror_dir
    from adapter.services import resolve_path
    from adapter.targets.registry import build_targets

    settings = _settings(ctx)
    if online:
        settings.require_env()
    directory = resolve_path(settings, settings.delivery.mappings_dir)
    adviseurs = set(settings.adviseurs) | {a.oin for a in settings.adviseurs.values()}
    problems = check_dir(directory, build_targets(settings), online=online, adviseurs=adviseurs)
    problems += check_mirror_dir(directory, set(settings.postboxes))
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
    """Print the calls the target would receive for FILE (a StUF-LVO message or a STAM verzoek), without
    sending anything."""
    from adapter.delivery.preview import preview_message
    from adapter.mapping.engine import build_opdracht
    from adapter.mapping.loader import load_dir
    from adapter.services import own_oins, resolve_path
    from adapter.targets.registry import build_targets

    settings = _settings(ctx)
    mappings_ = load_dir(resolve_path(settings, settings.delivery.mappings_dir))
    targets = build_targets(settings)
    raw = file.read_bytes()
    for line in preview_message(raw, settings, mappings_, targets, build_opdracht, own_oins(settings)):
        click.echo(line)


@main.group()
def jobs() -> None:
    """Scheduled jobs (the werkmap safety-net poll, the retention purge)."""


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
        table(
            ["RUN", "JOB", "STARTED (UTC)", "SECS", "STATUS", "FOUND", "NEW", "ERR", "DETAIL"],
            (
                [
                    r.id,
                    r.name,
                    utc_text(r.started_at),
                    f"{(r.ended_at - r.started_at).total_seconds():.1f}" if r.ended_at else None,
                    r.status,
                    r.found or 0,
                    r.new or 0,
                    r.errors or 0,
                    short(r.detail, 80),
                ]
                for r in recent_runs(services.engine)
            ),
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
def werkmap_overdragen(ctx: click.Context, verzoeknummer: str, naar: str, rol: Rol, toelichting: str) -> None:
    """Hand a verzoek over to another bevoegd gezag or behandeldienst."""
    from adapter.errors import TargetError
    from adapter.services import open_services

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
