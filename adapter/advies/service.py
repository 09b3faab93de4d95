"""What every trigger of an adviesverzoek calls: the CLI, the zaaksysteem's HTTP endpoint, a ZGW
notification rule. Checks the request against the configuration (a known adviseur whose channel is
configured here), completes it (aanvraagnummer from the zaak, einddatum and omschrijving defaults) and
stores it with its relay (``store.create``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from sqlalchemy import Engine

from adapter.advies import store
from adapter.advies.documenten import resolve
from adapter.advies.relay import INTREKKEN_STUF_LVO, adviseur_by_oin
from adapter.config import Settings
from adapter.errors import AdapterError, InputError

#: A bijlageId as the loket knows it (``LVO:Kenmerk``).
_KENMERK_MAX = 40


class AanvraagInvalid(AdapterError):
    """The request cannot become an adviesverzoek (the text says what to change)."""


@dataclass(frozen=True)
class Aanvraag:
    zaak: str
    adviseur: str  # OIN (or the [adviseurs.NAME] name)
    documents: tuple[str, ...] = ()
    einddatum: date | None = None
    omschrijving: str | None = None
    aanvraagnummer: str | None = None


def aanvragen(
    settings: Settings, engine: Engine, a: Aanvraag, *, bron: str, trigger_key: str | None = None
) -> tuple[store.Adviesverzoek, bool]:
    """Store an adviesverzoek and schedule its relay; (adviesverzoek, new). Raises AanvraagInvalid."""
    found = adviseur_by_oin(settings, a.adviseur)
    if found is None and a.adviseur in settings.adviseurs:
        found = a.adviseur, settings.adviseurs[a.adviseur]
    if found is None:
        known = ", ".join(f"{n} ({s.oin})" for n, s in settings.adviseurs.items()) or "none configured"
        raise AanvraagInvalid(f"adviseur {a.adviseur} is not an [adviseurs.NAME] of the configuration ({known})")
    name, adviseur = found
    if adviseur.channel == "stuf-lvo" and not settings.loket:
        raise AanvraagInvalid(f"adviseur {name} goes by StUF-LVO: configure [loket] (url, zender, ontvanger)")
    if not a.zaak.strip():
        raise AanvraagInvalid("zaak is empty: give the zaak's URL or identificatie")
    nummer = a.aanvraagnummer or store.aanvraag_of_zaak(engine, a.zaak)
    if not nummer:
        raise AanvraagInvalid(
            f"no aanvraag known for zaak {a.zaak} (the adapter did not make it, or made it for several): "
            "give the aanvraagnummer"
        )
    if adviseur.channel == "stuf-lvo":
        long = [d for d in a.documents if len(d) > _KENMERK_MAX or not d.strip()]
        if long:
            raise AanvraagInvalid(
                f"document {long[0]!r}: by StUF-LVO a document is a bijlageId the loket knows (1..40 characters)"
            )
    if adviseur.channel in FILE_CHANNELS:
        _check_documents(settings, engine, nummer, a.documents, adviseur.channel)
    today = date.today()
    einddatum = a.einddatum or today + timedelta(days=settings.advies.termijn_dagen)
    if einddatum < today:
        raise AanvraagInvalid(f"einddatum {einddatum} has passed")
    template = settings.advies.omschrijving
    omschrijving = a.omschrijving or template.replace("{aanvraagnummer}", nummer).replace(
        "{adviseur}", adviseur.naam or name
    )
    new = store.NewAdviesverzoek(
        zaak=a.zaak.strip(),
        aanvraagnummer=nummer,
        adviseur_oin=adviseur.oin,
        adviseur=name,
        channel=adviseur.channel,
        omschrijving=omschrijving[:1000],
        einddatum=einddatum,
        documents=tuple(d.strip() for d in a.documents),
        bron=bron,
        trigger_key=trigger_key,
    )
    return store.create(engine, new)


#: Channels that carry the documents' bytes themselves (``adapter.advies.documenten``).
FILE_CHANNELS = ("samenwerken", "postbus")


def _check_documents(settings: Settings, engine: Engine, nummer: str, documents: tuple[str, ...], channel: str) -> None:
    """Every document must be one the adapter received for the aanvraag, with its bytes: refused now,
    rather than the relay stopping later."""
    from adapter.services import resolve_path
    from adapter.store.files import FileStore

    files = FileStore(resolve_path(settings, settings.store.files_dir))
    for d in documents:
        try:
            resolve(engine, files, settings.inbound.xml_limits(), nummer, d.strip())
        except InputError as exc:
            raise AanvraagInvalid(f"{exc} (channel {channel} sends the file itself)") from None


def intrekken(settings: Settings, engine: Engine, av_id: str) -> tuple[store.Adviesverzoek, str]:
    """Withdraw from the zaak side; returns the adviesverzoek and what happened at the channel."""
    av = store.get(engine, av_id)
    if av is None:
        raise KeyError(av_id)
    relay = av.channel != "stuf-lvo"  # StUF-LVO has no message for it
    av = store.intrekken(engine, av_id, relay=relay)
    note = INTREKKEN_STUF_LVO if not relay else f"the adviseur is told through {av.channel}"
    return av, note
