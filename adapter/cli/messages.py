"""The message log: list, show, stats, resend."""

from __future__ import annotations

import sys
from datetime import datetime
from typing import TYPE_CHECKING, Any

import click

from adapter.cli import _engine, _fail, _parse_since, _settings, main, readable_errors
from adapter.cli.output import emit_json, progress, table
from adapter.logs import configure_logging
from adapter.store.states import MESSAGE_STATES
from adapter.text import short, utc_text

if TYPE_CHECKING:
    from adapter.store.messages import StoredMessage


@main.group()
def messages() -> None:
    """The message log."""


_LIST_HEADERS = [
    "ID",
    "RECEIVED (UTC)",
    "STATE",
    "TYPE",
    "NUMMER",
    "CODE",
    "REFERENTIE",
    "ATTEMPTS",
    "NEXT (UTC)",
    "LAST ERROR",
]


@messages.command("list")
@click.option("--state", type=click.Choice(MESSAGE_STATES), help="Only messages in this state.")
@click.option("--type", "message_type", help="Message type, e.g. omvDi01AanbiedenAanvraag.")
@click.option("--since", help="ISO date/time or age (30m, 12h, 7d).")
@click.option("--nummer", help="aanvraagnummer or verzoeknummer.")
@click.option("--limit", type=click.IntRange(min=1), default=100, show_default=True)
@click.option("--before", type=click.IntRange(min=1), help="Only messages with a lower ID (the next page).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (one array) instead of a table.")
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
    before: int | None,
    as_json: bool,
    db_url: str | None,
) -> None:
    """List messages, newest first, with their delivery: attempts, next attempt, last error (its first line)."""
    from adapter.store import message_log

    settings = _settings(ctx, db_url)
    engine = _engine(settings)
    try:
        flt = message_log.LogFilter(state, message_type, since=_parse_since(since), nummer=nummer)
        rows = message_log.page(engine, flt, limit=limit, before=before)
    finally:
        engine.dispose()
    if as_json:
        emit_json(rows)
        return
    table(
        _LIST_HEADERS,
        (
            [
                r.id,
                utc_text(r.received_at),
                r.state,
                r.message_type,
                r.nummer,
                r.error_code,
                r.referentienummer,
                r.attempts,
                utc_text(r.next_attempt_at) if r.delivery_state in ("pending", "retry") else None,
                short(r.last_error),
            ]
            for r in rows
        ),
    )


@messages.command("show")
@click.argument("message_id", type=int)
@click.option("--raw", is_flag=True, help="Print the body exactly as received (bytes to stdout).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (one object) instead of text.")
@click.option("--db", "db_url", help="Database URL (overrides store.url).")
@click.pass_context
@readable_errors
def messages_show(ctx: click.Context, message_id: int, raw: bool, as_json: bool, db_url: str | None) -> None:
    """Show one message: its fields, its delivery, the answer sent and (with --raw) the body."""
    from adapter.store import messages as store
    from adapter.store.message_log import delivery_view
    from adapter.store.outbox import delivery_of_message
    from adapter.store.retention import purged_text

    if raw and as_json:
        raise click.UsageError("--raw prints the body as received, --json the fields: give one of them")
    settings = _settings(ctx, db_url)
    engine = _engine(settings)
    try:
        row = store.get_message(engine, message_id)
        info = delivery_of_message(engine, message_id) if row is not None and not raw else None
    finally:
        engine.dispose()
    if row is None:
        _fail(f"message {message_id} not found")
    if raw:
        if row.body_purged_at is not None:
            _fail(f"message {message_id}: {purged_text(row.body_purged_at)}")
        if row.body_truncated:
            click.echo(f"note: {_truncated_text(row)}", err=True)
        sys.stdout.buffer.write(row.body)
        return
    fields = {f: getattr(row, f) for f in _FIELDS}
    if row.body_purged_at is not None:
        fields["body"] = purged_text(row.body_purged_at)
    elif row.body_truncated:
        fields["body"] = _truncated_text(row)
    delivery = delivery_view(info)
    if as_json:
        # warnings: what a lenient schema check let through (element names and lines, never content)
        emit_json({**fields, "warnings": list(row.warnings), "delivery": delivery, "answer": row.answer})
        return
    for f, value in fields.items():
        if value is not None:
            click.echo(f"{f:17} {utc_text(value) if isinstance(value, datetime) else value}")
    if row.warnings:
        click.echo(f"{'warnings':17} {len(row.warnings)}")
        for w in row.warnings:
            click.echo(f"  - {w}")
    if delivery is not None:
        _print_delivery(delivery)
    click.echo("answer:")
    click.echo(row.answer or "(none)")


_FIELDS = (
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
)


def _truncated_text(row: StoredMessage) -> str:
    return f"stored truncated to {len(row.body)} of {row.size} bytes ([retention] rejected_body_max_bytes)"


def _print_delivery(d: dict[str, Any]) -> None:
    click.echo(
        f"delivery:         {d['state']} to {d['target'] or '(not yet routed)'} after {d['attempts']} attempt(s)"
    )
    if d["next_attempt_at"] is not None:
        click.echo(f"next attempt:     {utc_text(d['next_attempt_at'])} UTC")
    if d["last_error"]:
        click.echo(f"last error:       {d['last_error']}")
    if d["outcome"]:
        click.echo(f"outcome:          {d['outcome']}")
    for a in d["attempt_log"]:
        click.echo(f"  attempt {utc_text(a['started_at'])} {a['status']:7} {a['duration_ms']:6} ms  {a['error'] or ''}")
        for call in a["calls"]:
            click.echo(f"      {call}")
    if d["checkpoints"]:
        click.echo(f"checkpoints:      {', '.join(d['checkpoints'])}")


@messages.command("stats")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (one object) instead of text.")
@click.option("--db", "db_url", help="Database URL (overrides store.url).")
@click.pass_context
@readable_errors
def messages_stats(ctx: click.Context, as_json: bool, db_url: str | None) -> None:
    """Counts: messages by state, deliveries by state, and deliveries that landed in triage."""
    from adapter.store import messages as store
    from adapter.store.outbox import delivery_stats

    settings = _settings(ctx, db_url)
    engine = _engine(settings)
    try:
        by_state = store.count_by_state(engine)
        deliveries = delivery_stats(engine)
    finally:
        engine.dispose()
    triage = deliveries.pop("triage", 0)
    if as_json:
        emit_json({"messages": by_state, "deliveries": deliveries, "triage": triage})
        return
    click.echo("messages:   " + (", ".join(f"{k} {v}" for k, v in sorted(by_state.items())) or "none"))
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

    if not message_ids and not state:
        raise click.UsageError("nothing to resend: give message IDs, or --state dead|needs-attention")
    if message_ids and state:
        raise click.UsageError("give message IDs or --state, not both")
    if since and not state:
        raise click.UsageError("--since selects by state: use it with --state dead|needs-attention")
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
        results = []
        for mid in progress(ids, "resending"):
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
