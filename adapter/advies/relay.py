"""The adviesverzoek relay, run by the delivery worker: out through the adviseur's channel, and the advice
that comes back.

**Out.** A relay message (channel ``advies``) is delivered like any other: claimed, checkpointed, retried
with backoff, dead → ``messages resend``. Through ``stuf-lvo`` it is one ``vrgDi01AanvragenAdvies`` to the
loket (``adapter.loket.lvo_client``). Its referentienummer and tijdstipBericht are a checkpoint of their
own, stored before the first send: a retry after a lost answer sends the *same* message again, which StUF
receivers answer with the same Bv03 instead of storing it twice. An adviesverzoek withdrawn before its
relay ran is not sent at all.

**Withdrawing.** The StUF-LVO contract (§1) has no message to withdraw an adviesverzoek: through
``stuf-lvo`` a withdrawal changes our state only, and says so (``INTREKKEN_STUF_LVO``).

**In.** A ``vrgDi01VoegAdviesToe`` is delivered to the zaak as before (the advice document on the zaak of
its aanvraag); the adviesverzoek it answers (its adviesverzoekId, else its crossRefnummer) becomes
``gereed`` with the strekking and the documents made. One we do not know is not refused: the advice still
reaches the zaak, and the message carries a warning naming the adviesverzoekId (``messages show``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine

from adapter.advies import store
from adapter.config import AdviseurSettings, Settings
from adapter.errors import ConfigError, InputError
from adapter.logs import get_logger
from adapter.loket.lvo_client import LoketClient, aanvragen_advies
from adapter.model import Verzoek
from adapter.store import messages as message_store
from adapter.store.messages import StoredMessage
from adapter.stuf.stuurgegevens import new_referentienummer, tijdstip
from adapter.targets.base import Result, Steps, run_step

log = get_logger("adapter.advies")

#: What a withdrawal through StUF-LVO says: the contract has no message for it.
INTREKKEN_STUF_LVO = (
    "the StUF-LVO contract has no message to withdraw an adviesverzoek: only our state changed; tell the "
    "adviseur yourself"
)


def adviseur_by_oin(settings: Settings, oin: str) -> tuple[str, AdviseurSettings] | None:
    for name, a in settings.adviseurs.items():
        if a.oin == oin:
            return name, a
    return None


@dataclass
class AdviesRelay:
    """What the delivery worker calls for adviesverzoeken (``Outbox.advies``)."""

    engine: Engine
    settings: Settings
    loket: LoketClient | None = None
    #: channel name → sender, for channels other than stuf-lvo (samenwerken, when configured)
    senders: dict[str, Callable[[store.Adviesverzoek, Steps], str]] = field(default_factory=dict)

    @staticmethod
    def handles(row: StoredMessage) -> bool:
        return row.channel == store.CHANNEL

    # -- out -----------------------------------------------------------------------------------------------
    def relay(self, row: StoredMessage, steps: Steps) -> str:
        av = store.get(self.engine, row.referentienummer or "")
        if av is None:
            raise InputError(f"relay message {row.id} names adviesverzoek {row.referentienummer}, which is not stored")
        if row.message_type == store.INTREKKEN:
            return self._intrekken(av, steps)
        if av.state == store.AState.INGETROKKEN and av.uitgezet_at is None:
            return f"adviesverzoek {av.id}: ingetrokken before it was sent; not sent"
        if av.channel == "stuf-lvo":
            summary = self._stuf_lvo(av, steps)
        elif av.channel in self.senders:
            summary = self.senders[av.channel](av, steps)
        else:
            raise ConfigError(f"adviesverzoek {av.id}: channel {av.channel!r} is not configured here")
        return summary

    def _stuf_lvo(self, av: store.Adviesverzoek, steps: Steps) -> str:
        loket = self.loket
        if loket is None:
            raise ConfigError(f"adviesverzoek {av.id} goes by StUF-LVO: configure [loket] (url, zender, ontvanger)")
        setattr(steps, "target", "loket")  # noqa: B010 - DbSteps records it as the delivery's target
        ids = run_step(
            steps, "advies:bericht", lambda: {"referentienummer": new_referentienummer(), "tijdstip": tijdstip()}
        )
        found = adviseur_by_oin(self.settings, av.adviseur_oin)
        naam = found[1].naam if found else None
        el = aanvragen_advies(
            av.aanvraagnummer,
            av.id,
            av.adviseur_oin,
            naam,
            av.omschrijving,
            av.einddatum,
            list(av.documents),
            referentienummer=ids["referentienummer"],
            tijdstip_bericht=ids["tijdstip"],
        )

        def send() -> Result:
            steps.called(f"advies:loket: vrgDi01AanvragenAdvies {av.id} → {av.adviseur_oin}")
            return {"referentienummer": loket.send(el)}

        sent = run_step(steps, "advies:loket", send)
        store.mark_uitgezet(self.engine, av.id, sent["referentienummer"])
        return (
            f"adviesverzoek {av.id} uitgezet bij {av.adviseur} ({av.adviseur_oin}) via StUF-LVO "
            f"vrgDi01AanvragenAdvies {sent['referentienummer']}"
        )

    def _intrekken(self, av: store.Adviesverzoek, steps: Steps) -> str:
        key = f"intrekken:{av.channel}"
        if av.channel in self.senders and hasattr(self.senders[av.channel], "intrekken"):
            return str(getattr(self.senders[av.channel], "intrekken")(av, steps))  # noqa: B009
        run_step(steps, key, lambda: {})
        return f"adviesverzoek {av.id} ingetrokken; {INTREKKEN_STUF_LVO}"

    # -- in ------------------------------------------------------------------------------------------------
    def advies_ontvangen(self, row: StoredMessage, verzoek: Verzoek) -> store.Adviesverzoek | None:
        """Before the advice goes to the zaak: find its adviesverzoek and record the advice (gereed); an
        unknown one is a warning on the message, never a refusal."""
        advies = verzoek.advies
        gevraagd = advies.adviesverzoek_id if advies else None
        av = store.find_for_advies(self.engine, gevraagd, row.cross_refnummer)
        if av is None:
            self._warn(
                row,
                f"advies: adviesverzoek {gevraagd or row.cross_refnummer or '(none named)'} is not known here "
                "(adviesverzoekId and crossRefnummer match none we sent); the advice is delivered to the zaak of "
                f"aanvraag {verzoek.nummer}",
            )
            return None
        if advies and advies.adviseur.oin and advies.adviseur.oin != av.adviseur_oin:
            self._warn(
                row, f"advies: adviseur {advies.adviseur.oin} answers adviesverzoek {av.id}, sent to {av.adviseur_oin}"
            )
        if av.state == store.AState.INGETROKKEN:
            self._warn(row, f"advies: adviesverzoek {av.id} was ingetrokken; the advice is kept and delivered")
        store.record_advies(
            self.engine,
            av.id,
            message_id=row.id,
            strekking=advies.strekking if advies else None,
            datum=advies.datum if advies else None,
        )
        return av

    def advies_afgeleverd(self, av: store.Adviesverzoek, row: StoredMessage, verzoek: Verzoek, steps: Steps) -> str:
        """After the advice is on the zaak: which documents it became (their URLs, else bijlage ids)."""
        documents = _documents_made(steps, verzoek) or tuple(b.id for b in verzoek.bijlagen)
        advies = verzoek.advies
        store.record_advies(
            self.engine,
            av.id,
            message_id=row.id,
            strekking=advies.strekking if advies else None,
            datum=advies.datum if advies else None,
            documents=documents,
        )
        strekking = f", strekking {advies.strekking}" if advies and advies.strekking else ""
        return f"; adviesverzoek {av.id} gereed{strekking}"

    def _warn(self, row: StoredMessage, warning: str) -> None:
        current = message_store.get_message(self.engine, row.id)
        have = current.warnings if current else row.warnings
        if warning not in have:
            message_store.set_warnings(self.engine, row.id, (*have, warning))
        log.warning("advies warning", warning=warning)


def _documents_made(steps: Steps, verzoek: Verzoek) -> tuple[str, ...]:
    """The document URLs the target checkpointed for this advice's bijlagen (step ``document:<bijlageId>``)."""
    out = []
    for b in verzoek.bijlagen:
        result = steps.result(f"document:{b.id}")
        if result and result.get("url"):
            out.append(str(result["url"]))
    return tuple(out)


def payload(row: StoredMessage) -> dict[str, Any]:
    try:
        return dict(json.loads(row.body))
    except ValueError as exc:
        raise InputError(f"relay message {row.id}: {exc}") from None
