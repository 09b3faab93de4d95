"""The ``adviesverzoeken`` table and the few queries that touch it.

An adviesverzoek is stored **with its relay in one transaction**: the row, an outbox message (channel
``advies``, ``message_type`` ``adviesverzoek``) and that message's delivery, so a trigger that got its
answer has a relay scheduled, and the delivery worker carries it (checkpointed, retried, dead → resend with
``messages resend``). The message's ``nummer`` is the adviesverzoek's id: its relay and a later withdrawal
run in order.

``verlopen`` is derived on read: an adviesverzoek still ``uitgezet`` whose einddatum has passed shows as
verlopen (``effective_state``; ``list_adviesverzoeken(state="verlopen")`` selects those). An advice that
arrives late still makes it ``gereed``.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Date,
    DateTime,
    Engine,
    Index,
    Integer,
    String,
    Table,
    Text,
    and_,
    or_,
    select,
    update,
)

from adapter.store import outbox
from adapter.store.db import reading, transaction
from adapter.store.messages import InboundRecord
from adapter.store.tables import messages, metadata, zaak_links

_Id = BigInteger().with_variant(Integer(), "sqlite")

#: The shape migration 0009 creates.
adviesverzoeken = Table(
    "adviesverzoeken",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("zaak", String(1000), nullable=False),
    Column("aanvraagnummer", String(64), nullable=False),
    Column("adviseur_oin", String(20), nullable=False),
    Column("adviseur", String(64), nullable=False),  # [adviseurs.NAME]
    Column("channel", String(16), nullable=False),
    Column("omschrijving", Text, nullable=False),
    Column("einddatum", Date, nullable=False),
    Column("documents", Text, nullable=False),  # JSON list
    Column("state", String(16), nullable=False),
    Column("bron", String(32), nullable=False),  # cli | http | notificatie
    Column("trigger_key", String(255), unique=True),
    Column("message_id", _Id),
    Column("channel_ref", String(255)),
    Column("advies_message_id", _Id),
    Column("advies_strekking", String(80)),
    Column("advies_datum", Date),
    Column("advies_documents", Text),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("uitgezet_at", DateTime(timezone=True)),
    Column("gereed_at", DateTime(timezone=True)),
    Column("ingetrokken_at", DateTime(timezone=True)),
    Column("verlopen_at", DateTime(timezone=True)),
    extend_existing=True,
)
Index("ix_adviesverzoeken_aanvraag", adviesverzoeken.c.aanvraagnummer)
Index("ix_adviesverzoeken_state", adviesverzoeken.c.state, adviesverzoeken.c.einddatum)

#: The outbox channel of relays, and the message types it carries.
CHANNEL = "advies"
UITZETTEN = "adviesverzoek"
INTREKKEN = "adviesverzoek-intrekking"


class AState(StrEnum):
    UITGEZET = "uitgezet"
    GEREED = "gereed"
    INGETROKKEN = "ingetrokken"
    VERLOPEN = "verlopen"


@dataclass(frozen=True)
class Adviesverzoek:
    id: str
    zaak: str
    aanvraagnummer: str
    adviseur_oin: str
    adviseur: str
    channel: str
    omschrijving: str
    einddatum: date
    documents: tuple[str, ...]
    state: str
    bron: str
    trigger_key: str | None
    message_id: int | None
    channel_ref: str | None
    advies_message_id: int | None
    advies_strekking: str | None
    advies_datum: date | None
    advies_documents: tuple[str, ...]
    created_at: datetime
    updated_at: datetime
    uitgezet_at: datetime | None
    gereed_at: datetime | None
    ingetrokken_at: datetime | None
    verlopen_at: datetime | None

    def effective_state(self, today: date | None = None) -> str:
        """The state as operators and callers see it: ``uitgezet`` past its einddatum is ``verlopen``."""
        today = today or date.today()
        if self.state == AState.UITGEZET and self.einddatum < today:
            return AState.VERLOPEN.value
        return self.state

    def as_json(self, today: date | None = None) -> dict[str, Any]:
        """What the HTTP endpoint answers about it."""
        return {
            "adviesverzoekId": self.id,
            "zaak": self.zaak,
            "aanvraagnummer": self.aanvraagnummer,
            "adviseur": self.adviseur_oin,
            "channel": self.channel,
            "omschrijving": self.omschrijving,
            "einddatum": self.einddatum.isoformat(),
            "documenten": list(self.documents),
            "state": self.effective_state(today),
            "advies": {
                "strekking": self.advies_strekking,
                "datum": self.advies_datum.isoformat() if self.advies_datum else None,
                "documenten": list(self.advies_documents),
            }
            if self.advies_message_id is not None
            else None,
        }


def _row(r: Any) -> Adviesverzoek:
    v = r._asdict()
    v["documents"] = tuple(json.loads(v["documents"] or "[]"))
    v["advies_documents"] = tuple(json.loads(v["advies_documents"] or "[]"))
    for k in ("created_at", "updated_at", "uitgezet_at", "gereed_at", "ingetrokken_at", "verlopen_at"):
        if v[k] is not None and v[k].tzinfo is None:
            v[k] = v[k].replace(tzinfo=UTC)  # SQLite hands back naive UTC
    return Adviesverzoek(**v)


def new_id(today: date | None = None) -> str:
    """Our adviesverzoekId: ``ADV-<yyyymmdd>-<10 hex>`` (23 characters; the loket's Kenmerk allows 40)."""
    return f"ADV-{(today or date.today()):%Y%m%d}-{secrets.token_hex(5)}"


def _now() -> datetime:
    return datetime.now(UTC)


def _relay_record(av_id: str, message_type: str, payload: dict[str, Any]) -> InboundRecord:
    body = json.dumps(payload, ensure_ascii=False, sort_keys=True).encode()
    return InboundRecord(
        correlation_id=uuid.uuid4().hex,
        channel=CHANNEL,
        message_type=message_type,
        body=body,
        sha256=hashlib.sha256(body).hexdigest(),
        referentienummer=av_id,
        nummer=av_id,
        dedup_key=f"{CHANNEL}|{av_id}|{message_type}",
    )


def _enqueue_relay(conn: Connection, av_id: str, message_type: str, payload: dict[str, Any]) -> int:
    record = _relay_record(av_id, message_type, payload)
    values = {**record.values(), "state": "received", "answer": None}
    message_id = int(conn.execute(messages.insert().returning(messages.c.id), values).scalar_one())
    outbox.enqueue(conn, message_id, av_id)
    return message_id


@dataclass(frozen=True)
class NewAdviesverzoek:
    zaak: str
    aanvraagnummer: str
    adviseur_oin: str
    adviseur: str
    channel: str
    omschrijving: str
    einddatum: date
    documents: tuple[str, ...]
    bron: str
    trigger_key: str | None = None


def create(engine: Engine, new: NewAdviesverzoek) -> tuple[Adviesverzoek, bool]:
    """Store the adviesverzoek, its relay message and the delivery in one transaction. Returns it and
    whether it is new: a trigger_key seen before returns the adviesverzoek made then (nothing stored)."""
    t = _now()
    av_id = new_id()
    with transaction(engine) as conn:
        if new.trigger_key is not None:
            existing = conn.execute(
                select(adviesverzoeken).where(adviesverzoeken.c.trigger_key == new.trigger_key)
            ).first()
            if existing is not None:
                return _row(existing), False
        payload = {"adviesverzoekId": av_id, "actie": "uitzetten"}
        message_id = _enqueue_relay(conn, av_id, UITZETTEN, payload)
        conn.execute(
            adviesverzoeken.insert().values(
                id=av_id,
                zaak=new.zaak,
                aanvraagnummer=new.aanvraagnummer,
                adviseur_oin=new.adviseur_oin,
                adviseur=new.adviseur,
                channel=new.channel,
                omschrijving=new.omschrijving,
                einddatum=new.einddatum,
                documents=json.dumps(list(new.documents)),
                state=AState.UITGEZET.value,
                bron=new.bron,
                trigger_key=new.trigger_key,
                message_id=message_id,
                created_at=t,
                updated_at=t,
            )
        )
        row = conn.execute(select(adviesverzoeken).where(adviesverzoeken.c.id == av_id)).one()
    return _row(row), True


def get(engine: Engine, av_id: str) -> Adviesverzoek | None:
    with reading(engine) as conn:
        row = conn.execute(select(adviesverzoeken).where(adviesverzoeken.c.id == av_id)).first()
    return _row(row) if row is not None else None


def by_message(engine: Engine, message_id: int) -> Adviesverzoek | None:
    """The adviesverzoek a relay message belongs to (its referentienummer is the id)."""
    with reading(engine) as conn:
        ref = conn.execute(select(messages.c.referentienummer).where(messages.c.id == message_id)).scalar()
    return get(engine, ref) if ref else None


def list_adviesverzoeken(
    engine: Engine,
    *,
    state: str | None = None,
    aanvraagnummer: str | None = None,
    zaak: str | None = None,
    today: date | None = None,
    limit: int = 100,
) -> list[Adviesverzoek]:
    """Newest first; ``state`` is the effective state (``verlopen`` includes the derived ones)."""
    today = today or date.today()
    q = select(adviesverzoeken).order_by(adviesverzoeken.c.created_at.desc()).limit(limit)
    c = adviesverzoeken.c
    if state == AState.VERLOPEN:
        q = q.where(or_(c.state == AState.VERLOPEN.value, and_(c.state == AState.UITGEZET.value, c.einddatum < today)))
    elif state == AState.UITGEZET:
        q = q.where(c.state == state, c.einddatum >= today)
    elif state:
        q = q.where(c.state == state)
    if aanvraagnummer:
        q = q.where(c.aanvraagnummer == aanvraagnummer)
    if zaak:
        q = q.where(c.zaak == zaak)
    with reading(engine) as conn:
        return [_row(r) for r in conn.execute(q)]


def aanvraag_of_zaak(engine: Engine, zaak: str) -> str | None:
    """The aanvraagnummer whose delivery made this zaak (by URL or identificatie), from the zaak links."""
    q = select(zaak_links.c.nummer).where(or_(zaak_links.c.zaak_url == zaak, zaak_links.c.zaak_identificatie == zaak))
    with reading(engine) as conn:
        found = sorted({r.nummer for r in conn.execute(q)})
    return found[0] if len(found) == 1 else None


def mark_uitgezet(engine: Engine, av_id: str, channel_ref: str | None) -> None:
    """The channel acknowledged the request."""
    t = _now()
    with transaction(engine) as conn:
        conn.execute(
            update(adviesverzoeken)
            .where(adviesverzoeken.c.id == av_id)
            .values(uitgezet_at=t, channel_ref=channel_ref, updated_at=t)
        )


def set_channel_ref(engine: Engine, av_id: str, channel_ref: str) -> None:
    with transaction(engine) as conn:
        conn.execute(update(adviesverzoeken).where(adviesverzoeken.c.id == av_id).values(channel_ref=channel_ref))


class NotAllowed(Exception):
    """The adviesverzoek is in a state that does not allow this (``str`` says why)."""


def intrekken(engine: Engine, av_id: str, *, relay: bool) -> Adviesverzoek:
    """Withdraw from the zaak side: state ingetrokken; with ``relay`` the channel is told too (an outbox
    message of its own, after the request's relay: same nummer). Withdrawing twice changes nothing."""
    t = _now()
    with transaction(engine) as conn:
        row = conn.execute(select(adviesverzoeken).where(adviesverzoeken.c.id == av_id)).first()
        if row is None:
            raise KeyError(av_id)
        av = _row(row)
        if av.state == AState.INGETROKKEN:
            return av
        if av.state == AState.GEREED:
            raise NotAllowed(f"adviesverzoek {av_id} is gereed (the advice came back): nothing to withdraw")
        conn.execute(
            update(adviesverzoeken)
            .where(adviesverzoeken.c.id == av_id)
            .values(state=AState.INGETROKKEN.value, ingetrokken_at=t, updated_at=t)
        )
        if relay:
            _enqueue_relay(conn, av_id, INTREKKEN, {"adviesverzoekId": av_id, "actie": "intrekken"})
        row = conn.execute(select(adviesverzoeken).where(adviesverzoeken.c.id == av_id)).one()
    return _row(row)


def find_for_advies(engine: Engine, adviesverzoek_id: str | None, cross_refnummer: str | None) -> Adviesverzoek | None:
    """The adviesverzoek an incoming advice answers: by the adviesverzoekId it names, else by its
    crossRefnummer as our id or as the referentienummer of the request we sent."""
    c = adviesverzoeken.c
    for cond in (
        c.id == adviesverzoek_id if adviesverzoek_id else None,
        c.id == cross_refnummer if cross_refnummer else None,
        c.channel_ref == cross_refnummer if cross_refnummer else None,
    ):
        if cond is None:
            continue
        with reading(engine) as conn:
            row = conn.execute(select(adviesverzoeken).where(cond)).first()
        if row is not None:
            return _row(row)
    return None


def record_advies(
    engine: Engine,
    av_id: str,
    *,
    message_id: int,
    strekking: str | None,
    datum: date | None,
    documents: tuple[str, ...] | None = None,
) -> None:
    """The advice came back: state gereed (a withdrawn one stays ingetrokken, the advice is kept)."""
    t = _now()
    values: dict[str, Any] = {
        "advies_message_id": message_id,
        "advies_strekking": strekking[:80] if strekking else None,
        "advies_datum": datum,
        "updated_at": t,
    }
    if documents is not None:
        values["advies_documents"] = json.dumps(list(documents))
    with transaction(engine) as conn:
        conn.execute(update(adviesverzoeken).where(adviesverzoeken.c.id == av_id).values(**values))
        conn.execute(
            update(adviesverzoeken)
            .where(adviesverzoeken.c.id == av_id, adviesverzoeken.c.state.in_([AState.UITGEZET, AState.VERLOPEN]))
            .values(state=AState.GEREED.value, gereed_at=t)
        )
