"""``purge``: remove message bodies and werkmap documents past retention ([retention], AVG)."""

from __future__ import annotations

import click

from adapter.cli import _engine, _settings, main, readable_errors


@main.command("purge")
@click.option("--dry-run", is_flag=True, help="List what would go; change nothing.")
@click.option("--db", "db_url", help="Database URL (overrides store.url).")
@click.pass_context
@readable_errors
def purge(ctx: click.Context, dry_run: bool, db_url: str | None) -> None:
    """Purge bodies and documents past retention; metadata stays. Lists ids, states and sizes only."""
    from adapter.services import resolve_path
    from adapter.store import retention

    settings = _settings(ctx, db_url)
    engine = _engine(settings)
    files_root = resolve_path(settings, settings.store.files_dir)
    try:
        run = retention.plan if dry_run else retention.purge
        result = run(engine, settings.retention, files_root)
    finally:
        engine.dispose()
    for m in result.messages:
        click.echo(f"message {m.id:>8}  {m.state:15}  since {m.since:%Y-%m-%d %H:%M:%S}  {m.bytes:>10} bytes")
    for f in result.files:
        click.echo(f"file    {f.sha256}  {f.bytes:>10} bytes")
    click.echo(result.summary(dry_run))
    if result.errors:
        ctx.exit(1)
