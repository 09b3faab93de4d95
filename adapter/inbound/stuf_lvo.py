"""The StUF-LVO inbound channel: parse, check, validate, store, answer (no SOAP library in here).

Checks run cheapest-first and, among the StUF kind-3 checks, in the order the standard lists them:
not well-formed or hostile input (StUF055) necessarily first; then ontvanger (StUF010) and zender
(StUF013); berichtcode (StUF022); message not supported (StUF025); required stuurgegevens and
the project rule that the body must be valid against our
schema (StUF055, before anything touches the store); then the store decides duplicate (same answer
again), reused reference (StUF016) or unavailable (StUF046).

With ``[inbound] lvo_schema = "lenient"`` (for a real loket that disagrees with our reconstructed schema)
schema and content-rule errors do not reject: they are stored with the message as warnings (element
names and lines only), as long as the message has its aanvraagnummer.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace

from lxml import etree

from adapter import recording
from adapter.config import Settings
from adapter.errors import StoreUnavailable
from adapter.logs import get_logger, mask_text
from adapter.loket import lvo
from adapter.model import Soort
from adapter.schemas import SchemaError, SchemaInvalid, SchemaSet
from adapter.store import messages as store
from adapter.store.writer import GroupCommitWriter
from adapter.stuf import berichten
from adapter.stuf.fouten import Foutcode, StufFout
from adapter.stuf.namespaces import SOAP11_ENV, q
from adapter.stuf.stuurgegevens import Stuurgegevens, Systeem, parse_stuurgegevens
from adapter.xmlsafe import XmlRejected, parse

CHANNEL = "stuf-lvo"
log = get_logger("adapter.inbound.stuf_lvo")


class Rejected(Exception):
    """A message answered with Fo03. ``answer`` is the ``StUF:Fo03Bericht`` to put in the fault."""

    def __init__(self, fout: StufFout, answer: etree._Element) -> None:
        self.fout = fout
        self.answer = answer
        super().__init__(str(fout))


@dataclass(frozen=True)
class Incoming:
    """A well-formed SOAP request whose addressing passed the StUF checks."""

    correlation_id: str
    raw: bytes
    envelope: etree._Element
    message: etree._Element
    stuurgegevens: Stuurgegevens
    bericht: lvo.LvoBericht


def _message_element(envelope: etree._Element) -> etree._Element:
    if envelope.tag != q(SOAP11_ENV, "Envelope"):
        raise XmlRejected(f"root element is {envelope.tag}, expected a SOAP 1.1 Envelope", envelope.sourceline)
    body = envelope.find(q(SOAP11_ENV, "Body"))
    if body is None:
        raise XmlRejected("SOAP Envelope has no Body", envelope.sourceline)
    children = [c for c in body if isinstance(c.tag, str)]
    if len(children) != 1:
        raise XmlRejected(f"SOAP Body must hold exactly one element, found {len(children)}", body.sourceline)
    return children[0]


def content_hash(message: etree._Element) -> str:
    """sha256 of the exclusive C14N of the message element: resends compare equal even when the
    envelope around them (prefixes, headers, whitespace outside the body) differs."""
    return hashlib.sha256(etree.tostring(message, method="c14n", exclusive=True)).hexdigest()


class StufLvoChannel:
    def __init__(self, settings: Settings, writer: GroupCommitWriter, schemas: SchemaSet) -> None:
        self.settings = settings
        self.writer = writer
        self.schemas = schemas
        self.limits = settings.inbound.xml_limits()
        first = settings.stuf.ontvangers[0]
        self.own_system = Systeem(first.organisatie, first.applicatie, first.administratie)

    # -- stage 1: envelope and addressing ------------------------------------------------------
    def receive(self, raw: bytes, correlation_id: str, caller_oin: str | None = None) -> Incoming:
        """Parse the request and check what needs only the stuurgegevens; raise Rejected. ``caller_oin``: the
        OIN of the caller's verified client certificate, when known; the zender organisatie must be it."""
        try:
            envelope = parse(raw, self.limits)
            message = _message_element(envelope)
        except XmlRejected as exc:
            afgewezen = StufFout(Foutcode.STUF055, f"Bericht afgewezen: {exc.reason}"[:200], str(exc))
            raise self._reject(afgewezen, Stuurgegevens(), raw, correlation_id, None) from None
        sg = parse_stuurgegevens(message)
        name = etree.QName(message)
        bericht = lvo.INCOMING.get(name.localname) if name.namespace == lvo.LVO else None
        fout = self._check_addressing(sg, caller_oin) or self._check_bericht(sg, name, bericht)
        if fout:
            raise self._reject(fout, sg, raw, correlation_id, message)
        assert bericht is not None
        return Incoming(correlation_id, raw, envelope, message, sg, bericht)

    @staticmethod
    def _check_bericht(sg: Stuurgegevens, name: etree.QName, bericht: lvo.LvoBericht | None) -> StufFout | None:
        """Berichtcode, message type and the stuurgegevens a Di01/Du01 must carry.

        Our schema types Di01 stuurgegevens with the generic ``StUF:Stuurgegevens`` (the official
        ``StuurgegevensDi01`` forbids the crossRefnummer that VoegAdviesToe carries), so the
        required fields are checked here.
        """
        if bericht is None:
            return StufFout(
                Foutcode.STUF025,
                f"Bericht {name.localname} wordt niet ondersteund",
                f"namespace {name.namespace}; ondersteund: {', '.join(lvo.INCOMING)}",
            )
        if sg.berichtcode and sg.berichtcode != bericht.berichtcode:
            return StufFout(
                Foutcode.STUF022,
                f"Berichtcode {sg.berichtcode} hoort niet bij {bericht.name} (verwacht {bericht.berichtcode})",
            )
        missing = [
            label
            for label, value in (
                ("berichtcode", sg.berichtcode),
                ("zender/applicatie", sg.zender.applicatie),
                ("ontvanger/applicatie", sg.ontvanger.applicatie),
                ("referentienummer", sg.referentienummer),
                ("tijdstipBericht", sg.tijdstip_bericht),
            )
            if not value
        ]
        if missing:
            return StufFout(Foutcode.STUF055, f"Bericht niet conform: stuurgegevens zonder {', '.join(missing)}")
        return None

    def _check_addressing(self, sg: Stuurgegevens, caller_oin: str | None = None) -> StufFout | None:
        o, z = sg.ontvanger, sg.zender
        if o.applicatie and not any(
            s.matches(o.organisatie, o.applicatie, o.administratie) for s in self.settings.stuf.ontvangers
        ):
            return StufFout(
                Foutcode.STUF010,
                f"Ontvanger {o.key()} is hier niet bekend",
                "configureer [[stuf.ontvangers]] of adresseer het bericht aan een bekend systeem",
            )
        zenders = self.settings.stuf.zenders
        if (
            z.applicatie
            and zenders
            and not any(s.matches(z.organisatie, z.applicatie, z.administratie) for s in zenders)
        ):
            return StufFout(Foutcode.STUF013, f"Zender {z.key()} is hier niet bekend")
        if caller_oin and z.organisatie and z.organisatie != caller_oin:
            return StufFout(
                Foutcode.STUF013,
                f"Zender organisatie {z.organisatie} is niet het OIN van het certificaat ({caller_oin})",
                "de zender moet de organisatie zijn waarvan het TLS-clientcertificaat is",
            )
        return None

    # -- stage 2: content, storage, answer --------------------------------------------------------
    def accept(self, incoming: Incoming) -> etree._Element:
        """Validate and store; return the ``StUF:Bv03Bericht`` to send (only after the commit)."""
        sg = incoming.stuurgegevens
        warnings: tuple[str, ...] = ()
        try:
            schema = self.schemas.validate(incoming.message)
            rules = lvo.content_rules(incoming.message)
            if rules:
                raise SchemaInvalid(self.schemas.schema_name(incoming.message), [SchemaError(*p) for p in rules])
        except SchemaInvalid as exc:
            schema = exc.schema
            lenient = self.settings.inbound.lvo_schema == "lenient"
            if lenient and lvo.aanvraagnummer_of(incoming.message):
                warnings = tuple(e.without_values() for e in exc.errors)
            else:
                first = exc.errors[0]
                # element and problem, never the value (the answer is stored and logged; the sender has its
                # message and the line)
                where = f"{first.element}: " if first.element else ""
                omschrijving = f"Bericht niet conform {exc.schema}: regel {first.line}: {where}{first.problem}"
                if lenient:
                    omschrijving = f"Bericht niet conform {exc.schema}: aanvraagnummer ontbreekt"
                fout = StufFout(Foutcode.STUF055, omschrijving[:200], "; ".join(str(e) for e in exc.errors[:5]))
                raise self._reject(fout, sg, incoming.raw, incoming.correlation_id, incoming.message) from None
        record = self._record(incoming, warnings)
        answer_el = berichten.bv03(sg, self.own_system)
        answer = berichten.to_bytes(answer_el).decode()
        try:
            result = store.accept(self.writer, record, answer)
        except StoreUnavailable as exc:
            fout = StufFout(Foutcode.STUF046, "Het bericht kon niet worden opgeslagen", str(exc))
            raise self._reject(
                fout, sg, incoming.raw, incoming.correlation_id, incoming.message, log_row=False
            ) from None
        if result.outcome is store.Outcome.CONFLICT:
            fout = StufFout(
                Foutcode.STUF016,
                f"Referentienummer {sg.referentienummer} van zender {sg.zender.key()} is al gebruikt "
                "voor een ander bericht",
                f"eerder opgeslagen als bericht {result.message_id}",
            )
            raise self._reject(fout, sg, incoming.raw, incoming.correlation_id, incoming.message)
        if result.outcome is store.Outcome.DUPLICATE:
            log.info("duplicate resend answered again", message_id=result.message_id, schema=schema)
            assert result.answer is not None
            return berichten.from_bytes(result.answer.encode())
        log.info(
            "message accepted",
            message_id=result.message_id,
            message_type=incoming.bericht.name,
            referentienummer=sg.referentienummer,
            nummer=record.nummer,
            size=len(incoming.raw),
            warnings=len(warnings),
        )
        return answer_el

    # -- helpers ------------------------------------------------------------------------------------
    def _record(self, incoming: Incoming, warnings: tuple[str, ...] = ()) -> store.InboundRecord:
        record = self._make_record(
            incoming.raw, incoming.correlation_id, incoming.stuurgegevens, incoming.message, dedup=True
        )
        return replace(record, warnings=warnings)

    def _make_record(
        self,
        raw: bytes,
        correlation_id: str,
        sg: Stuurgegevens,
        message: etree._Element | None,
        *,
        dedup: bool,
    ) -> store.InboundRecord:
        name = etree.QName(message).localname if message is not None else "(unreadable)"
        bericht = lvo.INCOMING.get(name)
        return store.InboundRecord(
            correlation_id=correlation_id,
            channel=CHANNEL,
            message_type=name,
            body=raw,
            sha256=content_hash(message) if message is not None else hashlib.sha256(raw).hexdigest(),
            berichtcode=sg.berichtcode,
            zender=sg.zender.key() if sg.zender.applicatie else None,
            ontvanger=sg.ontvanger.key() if sg.ontvanger.applicatie else None,
            referentienummer=sg.referentienummer,
            cross_refnummer=sg.cross_refnummer,
            tijdstip_bericht=sg.tijdstip_bericht,
            nummer=lvo.aanvraagnummer_of(message) if message is not None else None,
            dedup_key=f"{CHANNEL}|{sg.zender.key()}|{sg.referentienummer}" if dedup else None,
            creates_zaak=bericht is not None and Soort(bericht.soort).creates_zaak,
        )

    def _reject(
        self,
        fout: StufFout,
        sg: Stuurgegevens,
        raw: bytes,
        correlation_id: str,
        message: etree._Element | None,
        *,
        log_row: bool = True,
    ) -> Rejected:
        answer = berichten.fo03(sg, fout, self.own_system)
        row_id = None
        if log_row and self.settings.inbound.log_rejected:
            record = self._make_record(raw, correlation_id, sg, message, dedup=False)
            try:
                row_id = store.reject(
                    self.writer,
                    record,
                    berichten.to_bytes(answer).decode(),
                    fout.fout.code,
                    str(fout),
                    max_body_bytes=self.settings.retention.rejected_body_max_bytes,
                )
            except StoreUnavailable as exc:
                log.warning("rejected message not logged", reason=str(exc))
            recording.rejected(row_id)
        log.warning(
            "message rejected",
            code=fout.fout.code,
            plek=fout.fout.plek,
            omschrijving=mask_text(fout.omschrijving),
            details=mask_text(fout.details or ""),
            referentienummer=sg.referentienummer,
            message_id=row_id,
        )
        return Rejected(fout, answer)
