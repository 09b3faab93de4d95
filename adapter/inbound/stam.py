"""The STAM inbound channel: ``POST /stam/verzoeknotificatie``.

A verzoeknotificatie only says that a verzoek waits in our werkmap. It is validated against our own
(reconstructed) schema and stored with its outbox row in one transaction; only then is 202 sent. The
same verzoeknummer + volgnummer again (a resend, or the safety-net poll finding it first) gets 202 and
changes nothing. Invalid input gets 400 with a problem+json body naming the error, and so does a
notification for a verzoek that is not ours: neither its bevoegd gezag nor its uitvoerende instantie is
one of our OINs (``Settings.own_oins``), so the werkmap would not give it to us anyway.

The notification is a hint, not the truth: the delivery asks the werkmap, and a notification the werkmap
refuses (403/404) gives its duplicate key to the next notification of that verzoek
(``adapter.store.messages.accept``), so a forged one cannot make the real one a "duplicate".
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

from lxml import etree

from adapter import recording
from adapter.config import Settings
from adapter.errors import StoreUnavailable
from adapter.logs import get_logger
from adapter.loket import stam
from adapter.schemas import SchemaInvalid, SchemaSet, UnknownNamespace
from adapter.store import messages as store
from adapter.store.writer import GroupCommitWriter
from adapter.xmlsafe import XmlRejected, parse

CHANNEL = "stam"
log = get_logger("adapter.inbound.stam")


@dataclass(frozen=True)
class Answer:
    status: int  # 202 accepted (also for a duplicate), 400 invalid, 503 store unavailable
    body: dict[str, object]

    @property
    def media_type(self) -> str:
        return "application/json" if self.status == 202 else "application/problem+json"


def problem(status: int, title: str, detail: str) -> Answer:
    return Answer(status, {"type": f"about:blank#{status}", "title": title, "status": status, "detail": detail})


def dedup_key(verzoeknummer: str, volgnummer: int) -> str:
    """One key for a verzoek version, whoever reports it first (notification or werkmap poll)."""
    return f"{CHANNEL}|{verzoeknummer}|{volgnummer}"


def record_for(raw: bytes, root: etree._Element, correlation_id: str, message_type: str) -> store.InboundRecord:
    n = stam.read_notificatie(root)
    return store.InboundRecord(
        correlation_id=correlation_id,
        channel=CHANNEL,
        message_type=message_type,
        body=raw,
        sha256=hashlib.sha256(etree.tostring(root, method="c14n", exclusive=True)).hexdigest(),
        referentienummer=f"{n.verzoeknummer}-{n.volgnummer}",
        nummer=n.verzoeknummer,
        volgnummer=n.volgnummer,
        ontvanger=n.bevoegd_gezag_oin,
        dedup_key=dedup_key(n.verzoeknummer, n.volgnummer),
        creates_zaak=stam.soort_of(n.doel).creates_zaak,
    )


def not_ours(n: stam.Notificatie, own_oins: frozenset[str]) -> str | None:
    """Why a notification is not for us, or None. Ours when the bevoegd gezag or the uitvoerende instantie
    (behandeldienst) is one of our OINs; a missing uitvoerende instantie means the bevoegd gezag handles it."""
    bg, ui = n.bevoegd_gezag_oin, n.uitvoerende_instantie_oin
    if bg in own_oins or (ui and ui in own_oins):
        return None
    ours = "our OINs are the [[stuf.ontvangers]] organisaties and [werkmap] oin of the configuration"
    if ui:
        return f"neither bevoegdGezag/oin {bg} nor uitvoerendeInstantie/oin {ui} is one of our OINs ({ours})"
    return f"bevoegdGezag/oin {bg} is not one of our OINs and no uitvoerendeInstantie is named ({ours})"


class StamChannel:
    def __init__(self, settings: Settings, writer: GroupCommitWriter, schemas: SchemaSet) -> None:
        self.settings = settings
        self.writer = writer
        self.schemas = schemas
        self.limits = settings.inbound.xml_limits()
        self.own_oins = settings.own_oins()

    def receive(self, raw: bytes, correlation_id: str, message_type: str = "verzoeknotificatie") -> Answer:
        try:
            root = parse(raw, self.limits)
            if etree.QName(root).namespace != stam.VERZOEKNOTIFICATIE:
                raise SchemaInvalid("xsd/" + stam.XSD_VERZOEKNOTIFICATIE, [])
            self.schemas.validate(root)
        except XmlRejected as exc:
            return self._invalid(raw, correlation_id, f"not acceptable XML: {exc}")
        except SchemaInvalid as exc:
            what = (
                str(exc.errors[0])
                if exc.errors
                else f"root element {etree.QName(root).text} is not a verzoeknotificatie"
            )
            return self._invalid(raw, correlation_id, f"not valid against {exc.schema}: {what}")
        except UnknownNamespace as exc:
            return self._invalid(raw, correlation_id, str(exc))
        foreign = not_ours(stam.read_notificatie(root), self.own_oins)
        if foreign:
            return self._invalid(raw, correlation_id, foreign, title="Verzoeknotificatie not for us")
        record = record_for(raw, root, correlation_id, message_type)
        try:
            result = store.accept(self.writer, record, "202 Accepted")
        except StoreUnavailable as exc:
            log.warning("verzoeknotificatie not stored", reason=str(exc))
            return problem(503, "Store unavailable", "the notification could not be stored; send it again")
        if result.outcome is store.Outcome.CONFLICT:
            # Same verzoek version, other content: the first one stands; the werkmap is the truth anyway.
            log.warning("verzoeknotificatie differs from the stored one", message_id=result.message_id)
        duplicate = result.outcome is not store.Outcome.STORED
        if result.replaced is not None:
            log.warning(
                "verzoeknotificatie takes the place of a refused hint", message_id=result.message_id,
                refused_hint=result.replaced, nummer=record.nummer, volgnummer=record.volgnummer,
            )  # fmt: skip
        log.info(
            "verzoeknotificatie accepted" if not duplicate else "verzoeknotificatie already known",
            message_id=result.message_id,
            nummer=record.nummer,
            volgnummer=record.volgnummer,
        )
        return Answer(202, {"status": "accepted", "id": result.message_id, "duplicate": duplicate})

    def _invalid(
        self, raw: bytes, correlation_id: str, detail: str, title: str = "Invalid verzoeknotificatie"
    ) -> Answer:
        """400, logged once; the message is kept in the log as ``rejected`` (STAM: log invalid ones too)."""
        answer = problem(400, title, detail)
        if self.settings.inbound.log_rejected:
            record = store.InboundRecord(
                correlation_id=correlation_id,
                channel=CHANNEL,
                message_type="verzoeknotificatie",
                body=raw,
                sha256=hashlib.sha256(raw).hexdigest(),
            )
            try:
                row_id = store.reject(
                    self.writer,
                    record,
                    json.dumps(answer.body),
                    "400",
                    detail,
                    max_body_bytes=self.settings.retention.rejected_body_max_bytes,
                )
            except StoreUnavailable as exc:
                log.warning("rejected notification not logged", reason=str(exc))
            else:
                recording.rejected(row_id)
        log.warning("verzoeknotificatie rejected", detail=detail)
        return answer
