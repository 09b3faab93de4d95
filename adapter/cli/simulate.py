"""``simulate``: the ketensimulatie, scenario files run against a chain started here (docs/ketensimulatie.md)."""

from __future__ import annotations

from pathlib import Path

import click

from adapter.cli import main, readable_errors
from adapter.paths import FIXTURES_DIR, MAPPINGS_DIR

SCENARIOS_DIR = FIXTURES_DIR / "scenarios"


@main.command("simulate")
@click.argument("scenarios", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.option(
    "--report-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("var/ketensimulatie"),
    show_default=True,
    help="Where junit.xml and report.html go (made if missing).",
)
@click.option(
    "--mappings",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="The mapping files under test (default: the project's mappings/; with --target config, the config's).",
)
@click.option(
    "--target",
    type=click.Choice(["fake", "config"]),
    default="fake",
    show_default=True,
    help="fake: a fake ZGW zaaksysteem per scenario; config: the target of --config (e.g. an acceptance zaaksysteem).",
)
@click.option(
    "--specs",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="The official ZGW OpenAPI files the fake zaaksysteem validates against (default: those it ships).",
)
@click.pass_context
@readable_errors
def simulate(
    ctx: click.Context, scenarios: tuple[Path, ...], report_dir: Path, mappings: Path | None, target: str,
    specs: Path | None,
) -> None:  # fmt: skip
    """Run scenario files (default: every one in fixtures/scenarios/), each against its own adapter and fake
    zaaksysteem; write JUnit XML and an HTML report. Exit 1 when any expectation failed."""
    from adapter.errors import ConfigError
    from adapter.logs import configure_logging
    from adapter.simulation import reports
    from adapter.simulation import scenarios as scenario_files
    from adapter.simulation.fake_zgw.app import SPECS_DIR
    from adapter.simulation.runner import run_all

    specs = specs or SPECS_DIR
    if not specs.is_dir():
        raise ConfigError(f"{specs}: no ZGW OpenAPI files there (the fake zaaksysteem validates against them; --specs)")
    loaded = scenario_files.load_all(list(scenarios) or [SCENARIOS_DIR])
    configure_logging("production", "CRITICAL")  # the chain's own log lines would drown the progress
    config = None
    if target == "config":
        config = Path(ctx.obj["config"])  # --config, $LOKET_ADAPTER_CONFIG or config.example.toml
    elif mappings is None:
        mappings = MAPPINGS_DIR
    resolved = mappings.resolve() if mappings is not None else None
    results = run_all(loaded, specs=specs, mappings=resolved, progress=click.echo, config=config)
    report_dir.mkdir(parents=True, exist_ok=True)
    (report_dir / "junit.xml").write_bytes(reports.junit(results))
    (report_dir / "report.html").write_text(reports.html_report(results), encoding="utf-8")
    failed = [r for r in results if not r.ok]
    for r in failed:
        for check in r.checks:
            if not check.ok:
                click.echo(check.line(), err=True)
        if r.error:
            click.echo(f"{r.scenario.id}: {r.error}", err=True)
    skipped = sum(r.skipped is not None for r in results)
    ran = len(results) - skipped
    more = f", {skipped} skipped" if skipped else ""
    click.echo(f"{ran - len(failed)} of {ran} scenarios passed{more}; reports in {report_dir}")
    if failed:
        raise SystemExit(1)
