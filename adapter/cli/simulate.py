"""``simulate``: the ketensimulatie, scenario files run against a chain started here (docs/ketensimulatie.md)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click

from adapter.cli import main, readable_errors
from adapter.paths import FIXTURES_DIR, MAPPINGS_DIR

SCENARIOS_DIR = FIXTURES_DIR / "scenarios"
RECORDED_DIR = FIXTURES_DIR / "recorded"


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
@click.option(
    "--record",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Record each scenario's flows into DIR/<scenario id> (inbound, verzoek, opdracht, every call and answer).",
)
@click.option(
    "--rerun",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Replay a recording (a folder, or a name in fixtures/recorded/) with its far side stubbed, and compare "
    "every checkpoint.",
)
@click.option(
    "--url",
    default=None,
    help="Run against the adapter already running at this URL (needs --target config: its --config).",
)
@click.option(
    "--serve-fakes",
    is_flag=True,
    help="Run no scenarios: start the loket side and zaaksysteem fakes alone, print their URLs and a matching "
    "adapter config, and run until Ctrl-C or SIGTERM.",
)
@click.option("--host", default=None, help="With --serve-fakes: the address the fakes listen on [127.0.0.1].")
@click.option(
    "--port-base",
    type=click.IntRange(1024, 65528),
    default=None,
    help="With --serve-fakes: fixed ports from here on (adapter +0, zgw +1, zds +2, werkmap +3, loket +4, "
    "samenwerken +5, notifier +6, sftp +7) instead of free ones.",
)
@click.option(
    "--write-config",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="With --serve-fakes: also write the printed adapter config to this file.",
)
@click.pass_context
@readable_errors
def simulate(
    ctx: click.Context, scenarios: tuple[Path, ...], report_dir: Path, mappings: Path | None, target: str,
    specs: Path | None, url: str | None, serve_fakes: bool, host: str | None, port_base: int | None,
    write_config: Path | None, record: Path | None, rerun: Path | None,
) -> None:  # fmt: skip
    """Run scenario files (default: every one in fixtures/scenarios/), each against its own adapter and fake
    zaaksysteem; write JUnit XML and an HTML report. Exit 1 when any expectation failed."""
    from adapter.errors import ConfigError
    from adapter.logs import configure_logging
    from adapter.simulation import scenarios as scenario_files
    from adapter.simulation.chains import check_adapter
    from adapter.simulation.fake_zgw.app import SPECS_DIR
    from adapter.simulation.runner import run_all

    own_specs = {"--specs": specs}  # the fake zaaksysteem's: refused where no fake zaaksysteem runs
    specs = specs or SPECS_DIR
    if not specs.is_dir():
        raise ConfigError(f"{specs}: no ZGW OpenAPI files there (the fake zaaksysteem validates against them; --specs)")
    fakes_only: dict[str, object] = {"--host": host, "--port-base": port_base, "--write-config": write_config}
    if serve_fakes:
        clash: dict[str, object] = {"SCENARIO": scenarios, "--url": url, "--target config": target == "config"}
        _refuse_with("--serve-fakes", clash)
        _serve_fakes(host or "127.0.0.1", port_base, specs, mappings or MAPPINGS_DIR, write_config)
        return
    _refuse_without("--serve-fakes", fakes_only)
    if rerun is not None:
        clash = {"SCENARIO": scenarios, "--url": url, "--target config": target == "config", "--record": record}
        _refuse_with("--rerun", {**clash, **own_specs})
        _rerun(rerun, mappings or MAPPINGS_DIR, report_dir)
        return
    if url is not None:
        if target != "config":
            raise ConfigError("--url runs against that adapter's store and zaaksysteem: add --target config")
        # that adapter's deliveries run in its own process: record there (serve --record)
        _refuse_with("--url", {"--mappings": mappings, "--record": record})
        check_adapter(url)
    if target == "config":
        _refuse_with("--target config", own_specs)
    loaded = scenario_files.load_all(list(scenarios) or [SCENARIOS_DIR])
    configure_logging("production", "CRITICAL")  # the chain's own log lines would drown the progress
    config = None
    if target == "config":
        config = Path(ctx.obj["config"])  # --config, $LOKET_ADAPTER_CONFIG or config.example.toml
    elif mappings is None:
        mappings = MAPPINGS_DIR
    resolved = mappings.resolve() if mappings is not None else None
    results = run_all(
        loaded, specs=specs, mappings=resolved, progress=click.echo, config=config, url=url, record=record
    )
    if record is not None:
        click.echo(f"flows recorded in {record}/<scenario id>; rerun: loket-adapter simulate --rerun FOLDER")
    _report(results, report_dir, "scenarios")


def _rerun(folder: Path, mappings: Path, report_dir: Path) -> None:
    """Replay the recording with the current mapping files; every flow a result, every difference a line."""
    from adapter.logs import configure_logging
    from adapter.simulation.replay import rerun

    if not folder.is_dir() and not folder.is_absolute() and (RECORDED_DIR / folder).is_dir():
        folder = RECORDED_DIR / folder
    configure_logging("production", "CRITICAL")
    _report(rerun(folder, mappings=mappings.resolve(), progress=click.echo), report_dir, "flows")


def _report(results: list[Any], report_dir: Path, what: str) -> None:
    """JUnit and HTML into ``report_dir``, each failure one line on stderr, a summary; exit 1 on a failure."""
    from adapter.simulation import reports

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
    click.echo(f"{ran - len(failed)} of {ran} {what} passed{more}; reports in {report_dir}")
    if failed:
        raise SystemExit(1)
    if not ran:  # nothing was checked: not a green run
        click.echo(f"error: no {what[:-1]} ran (every one was skipped)", err=True)
        raise SystemExit(1)


def _refuse_with(option: str, given: Mapping[str, object]) -> None:
    """One line for an option that makes no sense together with ``option``."""
    from adapter.errors import ConfigError

    for name, value in given.items():
        if value:
            raise ConfigError(f"{option} does not go with {name}")


def _refuse_without(option: str, given: Mapping[str, object]) -> None:
    from adapter.errors import ConfigError

    for name, value in given.items():
        if value is not None:
            raise ConfigError(f"{name} only goes with {option}")


def _serve_fakes(host: str, port_base: int | None, specs: Path, mappings: Path, write_config: Path | None) -> None:
    """Start the fakes, print where they are and the adapter config that reaches them, run until Ctrl-C or
    SIGTERM; then stop every one (their temporary folder with them)."""
    import signal
    import threading

    from adapter.logs import configure_logging
    from adapter.simulation.fakes import serving_fakes

    configure_logging("development", "INFO")  # what the notifier sends, on stderr; the URLs and config on stdout
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with serving_fakes(host=host, port_base=port_base, specs=specs, mappings=mappings.resolve()) as f:
            click.echo("fakes running:")
            for name, where in f.urls.items():
                click.echo(f"  {name:<12} {where}")
            for note in f.notes:
                click.echo(f"  {note}")
            click.echo(f"the adapter of this config listens on {f.adapter_url}")
            if write_config is not None:
                write_config.write_text(f.config_toml, encoding="utf-8")
                click.echo(f"adapter config written to {write_config}")
            click.echo("# --- adapter config ---")
            click.echo(f.config_toml.rstrip())
            click.echo("# --- end of adapter config ---")
            click.echo("ready; Ctrl-C or SIGTERM stops every fake")
            while not stop.wait(0.5):
                pass
            click.echo("stopping the fakes")
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
