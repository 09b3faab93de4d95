"""The message log: list, show, stats, resend."""

from __future__ import annotations

import json
import sys

import click

from adapter.cli import (
    _fail,
    _parse_since,
    _settings,
    _utc,
    main,
    readable_errors,
)
from adapter.config import Settings
from adapter.logs import configure_logging
from adapter.store.messages import StoredMessage
from adapter.store.retention import purged_text


@main.group()
def messages() -> None:
    """The message log."""


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
        if row.body_purged_at is not None:
            _fail(f"message {message_id}: {purged_text(row.body_purged_at)}")
        if row.body_truncated:
            click.echo(f"note: {_truncated_text(row)}", err=True)
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
    if row.body_purged_at is not None:
        click.echo(f"{'body':17} {purged_text(row.body_purged_at)}")
    elif row.body_truncated:
        click.echo(f"{'body':17} {_truncated_text(row)}")
    if row.warnings:  # what a lenient schema check let through: element names and lines, never content
        click.echo(f"{'warnings':17} {len(row.warnings)}")
        for w in row.warnings:
            click.echo(f"  - {w}")
    _show_delivery(settings, message_id)
    click.echo("answer:")
    click.echo(row.answer or "(none)")


def _truncated_text(row: StoredMessage) -> str:
    return f"stored truncated to {len(row.body)} of {row.size} bytes ([retention] rejected_body_max_bytes)"


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
@click.option(
    "--state",
    type=click.Choice(["dead", "needs-attention"]),
    help="Resend every message whose delivery is in this state.",
)
@click.option("--since", help="With --state: only those that got there since (ISO date/time or age like 12h).")
@click.pass_context
@readable_errors
def messages_resend(ctx: click.Context, message_ids: tuple[int, ...], state: str | None, since: str | None) -> None:
    """Reset attempts and deliver now; prints the real outcome of each. Exit 1 if any failed."""
    from adapter.services import open_services
    from adapter.store.outbox import DState, dead_message_ids

    if bool(message_ids) == bool(state):
        raise click.UsageError("give message IDs or --state dead|needs-attention, not both")
    settings = _settings(ctx)
    configure_logging(settings.server.environment, "WARNING")
    services = open_services(settings)
    assert services.outbox is not None
    try:
        ids = list(message_ids) or dead_message_ids(services.engine, _parse_since(since), DState(state or "dead"))
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
