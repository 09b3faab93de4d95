"""Adviesverzoeken: put one out, list them, show one, withdraw one (``adapter.advies``)."""

from __future__ import annotations

import sys
from datetime import date

import click

from adapter.cli import _settings, main, readable_errors
from adapter.cli.output import table


@main.group()
def advies() -> None:
    """Adviesverzoeken to adviesorganisaties ([adviseurs.NAME]) and the advice that comes back."""


def _when(t: object) -> str:
    return f"{t:%Y-%m-%d %H:%M:%S}" if t is not None else "-"


def _datum(value: str | None) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise click.BadParameter("use a date like 2026-12-31", param_hint="'--einddatum'") from None


@advies.command("aanvragen")
@click.option("--zaak", required=True, help="The zaak (URL or identificatie) the advice is for.")
@click.option("--adviseur", required=True, help="The adviseur's OIN (or its [adviseurs.NAME] name).")
@click.option("--document", "documents", multiple=True, help="A document to send (StUF-LVO: a bijlageId); repeat.")
@click.option("--einddatum", help="Advice due by (YYYY-MM-DD). Default: today + [advies] termijn_dagen.")
@click.option("--omschrijving", help="What is asked. Default: [advies] omschrijving.")
@click.option("--aanvraag", "aanvraagnummer", help="The aanvraagnummer, when the adapter did not make the zaak.")
@click.pass_context
@readable_errors
def aanvragen(
    ctx: click.Context,
    zaak: str,
    adviseur: str,
    documents: tuple[str, ...],
    einddatum: str | None,
    omschrijving: str | None,
    aanvraagnummer: str | None,
) -> None:
    """Store an adviesverzoek and schedule its relay (the delivery workers of `serve` send it)."""
    from adapter.advies.service import Aanvraag
    from adapter.advies.service import aanvragen as do_aanvragen
    from adapter.services import open_services

    settings = _settings(ctx)
    services = open_services(settings, with_outbox=False)
    try:
        request = Aanvraag(zaak, adviseur, documents, _datum(einddatum), omschrijving, aanvraagnummer)
        av, _ = do_aanvragen(settings, services.engine, request, bron="cli")
    finally:
        services.close()
    click.echo(
        f"adviesverzoek {av.id}: {av.state}: aanvraag {av.aanvraagnummer}, adviseur {av.adviseur} "
        f"({av.adviseur_oin}) via {av.channel}, einddatum {av.einddatum}"
    )
    click.echo(f"relay: message {av.message_id} (`messages show {av.message_id}`)")


@advies.command("list")
@click.option("--state", type=click.Choice(["uitgezet", "gereed", "ingetrokken", "verlopen"]))
@click.option("--aanvraag", "aanvraagnummer", help="Only those of this aanvraag.")
@click.option("--limit", type=int, default=100, show_default=True)
@click.pass_context
@readable_errors
def list_(ctx: click.Context, state: str | None, aanvraagnummer: str | None, limit: int) -> None:
    """Adviesverzoeken, newest first; past its einddatum without an advice one shows as verlopen."""
    from adapter.advies import store
    from adapter.services import open_services

    services = open_services(_settings(ctx), with_outbox=False)
    try:
        rows = store.list_adviesverzoeken(services.engine, state=state, aanvraagnummer=aanvraagnummer, limit=limit)
    finally:
        services.close()
    table(
        ["ADVIESVERZOEK", "STATE", "EINDDATUM", "AANVRAAG", "ADVISEUR", "CHANNEL", "ZAAK"],
        (
            [av.id, av.effective_state(), av.einddatum, av.aanvraagnummer, av.adviseur, av.channel, av.zaak]
            for av in rows
        ),
    )


@advies.command("show")
@click.argument("adviesverzoek_id")
@click.pass_context
@readable_errors
def show(ctx: click.Context, adviesverzoek_id: str) -> None:
    """One adviesverzoek: what was asked, its relay, the advice received."""
    from adapter.advies import store
    from adapter.services import open_services
    from adapter.store.outbox import delivery_of_message

    services = open_services(_settings(ctx), with_outbox=False)
    try:
        av = store.get(services.engine, adviesverzoek_id)
        delivery = delivery_of_message(services.engine, av.message_id) if av and av.message_id else None
    finally:
        services.close()
    if av is None:
        click.echo(f"error: no adviesverzoek {adviesverzoek_id}", err=True)
        sys.exit(1)
    state = av.effective_state()
    click.echo(f"adviesverzoek: {av.id}")
    late = f" (einddatum {av.einddatum} passed without an advice)" if state == "verlopen" else ""
    click.echo(f"state: {state}{late}")
    click.echo(f"zaak: {av.zaak}")
    click.echo(f"aanvraag: {av.aanvraagnummer}")
    click.echo(f"adviseur: {av.adviseur} ({av.adviseur_oin}) via {av.channel}")
    click.echo(f"omschrijving: {av.omschrijving}")
    click.echo(f"einddatum: {av.einddatum}")
    click.echo(f"documents: {', '.join(av.documents) or '-'}")
    click.echo(f"trigger: {av.bron}; created {_when(av.created_at)} UTC")
    if delivery is not None:
        d = delivery["delivery"]
        err = f"; last error: {d.last_error}" if d.last_error and d.state != "done" else ""
        click.echo(f"relay: message {av.message_id}: {d.state} after {d.attempts} attempt(s){err}")
    if av.uitgezet_at:
        click.echo(f"uitgezet: {_when(av.uitgezet_at)} UTC ({av.channel_ref or '-'})")
    if av.ingetrokken_at:
        click.echo(f"ingetrokken: {_when(av.ingetrokken_at)} UTC")
    if av.advies_message_id is not None:
        click.echo(
            f"advies: message {av.advies_message_id}, strekking {av.advies_strekking or '-'}, "
            f"datum {av.advies_datum or '-'}, documents {', '.join(av.advies_documents) or '-'}"
        )


@advies.command("intrekken")
@click.argument("adviesverzoek_id")
@click.pass_context
@readable_errors
def intrekken(ctx: click.Context, adviesverzoek_id: str) -> None:
    """Withdraw an adviesverzoek (from the zaak side)."""
    from adapter.advies import service, store
    from adapter.services import open_services

    settings = _settings(ctx)
    services = open_services(settings, with_outbox=False)
    try:
        av, note = service.intrekken(settings, services.engine, adviesverzoek_id)
    except KeyError:
        click.echo(f"error: no adviesverzoek {adviesverzoek_id}", err=True)
        sys.exit(1)
    except store.NotAllowed as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    finally:
        services.close()
    click.echo(f"adviesverzoek {av.id}: {av.state}; {note}")
