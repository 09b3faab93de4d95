"""The postbus: each postbox's status, the files seen in the inboxes, and the orphans."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from adapter.cli import _settings, main, readable_errors
from adapter.cli.output import table
from adapter.text import utc_text

if TYPE_CHECKING:
    from adapter.store.postbox import PostbusFile


@main.group()
def postbox() -> None:
    """SFTP postboxes: status, files picked up, orphans (``[postboxes.NAME]``)."""


@postbox.command("status")
@click.option("--check", is_flag=True, help="Also connect to each postbox now and list its inbox.")
@click.pass_context
@readable_errors
def postbox_status(ctx: click.Context, check: bool) -> None:
    """Per postbox: host, last successful pickup, last error; exit 1 when a postbox's last run failed."""
    from adapter.errors import AdapterError
    from adapter.postbox.pickup import postboxes
    from adapter.services import open_services
    from adapter.store.postbox import statuses
    from adapter.store.uploads import counts

    settings = _settings(ctx)
    if not settings.postboxes:
        click.echo("no postboxes configured ([postboxes.NAME])")
        return
    if check:
        settings.require_env()
    services = open_services(settings, with_outbox=False)
    failing = False
    try:
        known = statuses(services.engine)
        uploads = counts(services.engine)
        boxes = postboxes(settings) if check else {}
        for name, s in settings.postboxes.items():
            st = known.get(name)
            line = f"{name}: {s.user}@{s.host}:{s.port} inbox {s.inbox}"
            line += f"; last success {utc_text(st.last_success_at if st else None)} UTC"
            if (
                st
                and st.last_error
                and (st.last_success_at is None or (st.last_error_at or st.last_success_at) > st.last_success_at)
            ):
                failing = True
                line += f"; last error {utc_text(st.last_error_at)} UTC ({st.failures}x): {st.last_error}"
            if name in uploads:  # mirroring ([[mirror]] rules, postbox drops)
                n = uploads[name]
                todo = n.get("pending", 0) + n.get("uploading", 0)
                line += f"; mirror: {n.get('done', 0)} done, {todo} to do, {n.get('failed', 0)} failed"
            click.echo(line)
            if check:
                try:
                    boxes[name].check()
                    click.echo(f"{name}: connected, inbox readable")
                except AdapterError as exc:
                    failing = True
                    click.echo(f"{name}: {exc}")
                finally:
                    boxes[name].close()
    finally:
        services.close()
    if failing:
        sys.exit(1)


def _print_files(rows: list[PostbusFile]) -> None:
    table(
        ["ID", "POSTBOX", "STATE", "SIZE", "FIRST SEEN (UTC)", "FILE", "DETAIL"],
        ([f.id, f.postbox, f.state, f.size, utc_text(f.first_seen_at), f.remote_name, f.detail] for f in rows),
    )


@postbox.command("files")
@click.option("--state", type=click.Choice(["stored", "processed", "refused", "failed", "expired"]), help="Only these.")
@click.option("--limit", default=200, show_default=True)
@click.pass_context
@readable_errors
def postbox_files(ctx: click.Context, state: str | None, limit: int) -> None:
    """Files seen in the inboxes, newest first: stored, processed, refused (why), failed (why), expired."""
    from adapter.services import open_services
    from adapter.store.postbox import list_files

    services = open_services(_settings(ctx), with_outbox=False)
    try:
        _print_files(list_files(services.engine, state, limit))
    finally:
        services.close()


@postbox.command("uploads")
@click.option("--state", type=click.Choice(["pending", "uploading", "done", "failed"]), help="Only these.")
@click.option("--limit", default=200, show_default=True)
@click.pass_context
@readable_errors
def postbox_uploads(ctx: click.Context, state: str | None, limit: int) -> None:
    """Files mirrored to postbox outboxes, newest first: pending, uploading, done, failed (why; tried again
    every run of postbox-mirror)."""
    from adapter.services import open_services
    from adapter.store.uploads import list_uploads

    services = open_services(_settings(ctx), with_outbox=False)
    try:
        rows = list_uploads(services.engine, state, limit)
        table(
            ["ID", "POSTBOX", "STATE", "SIZE", "BATCH", "FILE", "DETAIL"],
            ([u.id, u.postbox, u.state, u.size, u.batch, u.remote_name, u.detail] for u in rows),
        )
    finally:
        services.close()


@postbox.command("orphans")
@click.pass_context
@readable_errors
def postbox_orphans(ctx: click.Context) -> None:
    """Picked-up files whose aanvraag has not arrived (yet); they expire after [postbus] orphan_hours."""
    from adapter.services import open_services
    from adapter.store.postbox import orphans

    settings = _settings(ctx)
    services = open_services(settings, with_outbox=False)
    try:
        rows = orphans(services.engine)
        _print_files(rows)
        click.echo(f"{len(rows)} orphan(s); each expires {settings.postbus.orphan_hours:g} h after it was stored")
    finally:
        services.close()


@postbox.command("waiting")
@click.pass_context
@readable_errors
def postbox_waiting(ctx: click.Context) -> None:
    """Aanvragen whose delivery waits for postbus files (retrying) or gave up on them (needs-attention after
    [postbus] missing_hours): message, state, which bijlagen are missing."""
    from adapter.services import open_services
    from adapter.store.postbox import waiting

    services = open_services(_settings(ctx), with_outbox=False)
    try:
        rows = waiting(services.engine)
        for message_id, nummer, state, error in rows:
            click.echo(f"message {message_id} aanvraag {nummer}: {state}: {error}")
        click.echo(f"{len(rows)} aanvraag/aanvragen waiting for postbus files")
    finally:
        services.close()
