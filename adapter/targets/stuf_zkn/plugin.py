"""StUF-ZKN (ZDS 1.1 / 1.2) target plugin: carries out an Opdracht as ZDS calls, one checkpointed step each.

Call order (domain.md §8.2): genereerZaakIdentificatie → creeerZaak → genereerDocumentIdentificatie →
voegZaakdocumentToe → actualiseerZaakstatus. Exactly once, and a retry adopts only what this delivery
made (or, with a deterministic zaak identificatie, what belongs to this verzoek):

* a generated identificatie is checkpointed (``zaakid:``/``docid:``) before the call that uses it, so
  a retry never reserves a second number (Open Forms #1183) and the identificatie is this delivery's
  own; only a Di02 whose *answer* was lost reserves again, which costs a number, not a duplicate;
* zaak: after an uncertain creeerZaak the retry asks geefZaakdetails for that identificatie and adopts
  the zaak only if its kenmerk (verzoeknummer) and zaaktype, when the zaaksysteem returns them, are
  ours; a zaak with our identificatie that belongs to another verzoek is refused, not adopted;
* document: the identificatie came from this delivery's own genereerDocumentIdentificatie, so finding
  it in geefLijstZaakdocumenten is precise; a document whose identificatie was never generated was never
  sent, and is not looked for. That identificatie is no use to a later message of the same verzoek (an
  aanvulling, a later STAM version listing every document so far), so each document made is recorded per
  zaak and bijlage across deliveries (``Steps.link_document``) and a bijlage listed again is adopted from
  that record, without a call; listed again with another size it is refused, as the ZGW target does;
* status: zaak + statustype is not precise (the zaak may hold that status from elsewhere), so the
  toelichting names the message (``(bericht <referentienummer>)``) and ``datumStatusGezet`` is fixed and
  checkpointed once per delivery before the first send; a retry compares them. A zaaksysteem that
  returns no toelichting and keeps less than seconds, or two statuses that fit, make the find ambiguous
  and the delivery fails loudly (``Ambiguous``).

A zaaksysteem that does not offer the vragen (StUF025, or a fault that blames our vraag) gets the same
creeerZaak/voegZaakdocumentToe again with the same identificatie — the identificatie is the object's
key there, so it is refused rather than duplicated; StUF has no standard "already exists" code, so that
refusal stays a fault. A transient fault on a vraag is retried like any call. A status is never resent
blind: without an answer to the vraag the delivery stops as ``Ambiguous``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

from lxml import etree

from adapter.errors import Ambiguous, MappingError, TargetError, TargetRefused, WaitingError
from adapter.mapping.opdracht import DocumentOpdracht, Opdracht, Profiel, ZaakOpdracht
from adapter.model import Persoon, Soort
from adapter.stuf.stuurgegevens import Systeem, tijdstip
from adapter.targets.base import Call, DryRunSteps, Result, Steps, run_step
from adapter.targets.stuf_zkn import messages as msg
from adapter.targets.stuf_zkn.client import StufFault, StufZknClient
from adapter.targets.stuf_zkn.options import StufSysteem, StufZknOptions

#: Fewer digits of datumStatusGezet than yyyyMMddHHmmss cannot tell two statuses of one day apart.
_PRECISE_TIJDSTIP = 14
_TOELICHTING_MAX = 1000  # ZKN Toelichting


def _systeem(s: StufSysteem) -> Systeem:
    return Systeem(s.organisatie, s.applicatie, s.administratie, s.gebruiker)


def _texts(answer: etree._Element, *path: str) -> list[str]:
    """Texts of every element along ``path`` (local names, any namespace) below ``answer``, each element once:
    ZDS nests a name in itself (``kenmerk/kenmerk``), which a plain descendant search finds twice."""
    found = [answer]
    for name in path:
        below = (c for e in found for c in e.iterdescendants() if isinstance(c.tag, str))
        found = list({id(c): c for c in below if etree.QName(c).localname == name}.values())
    return [" ".join(e.text.split()) for e in found if e.text and e.text.strip()]


def _child(el: etree._Element, name: str) -> str | None:
    """Text of the direct child ``name`` (any namespace), whitespace collapsed."""
    for c in el:
        if isinstance(c.tag, str) and etree.QName(c).localname == name:
            return " ".join((c.text or "").split()) or None
    return None


@dataclass(frozen=True)
class _Status:
    volgnummer: int | None
    datum: str | None
    toelichting: str | None

    def __str__(self) -> str:
        return f"status {self.volgnummer} gezet {self.datum or '?'} ({self.toelichting or 'zonder toelichting'})"


@dataclass(frozen=True)
class _Rol:
    """A gemachtigde relation: who (``bsn:…``/``vestiging:…``, None when not returned) and its toelichting."""

    wie: str | None
    toelichting: str | None

    def __str__(self) -> str:
        return f"gemachtigde {self.wie or '?'} ({self.toelichting or 'zonder toelichting'})"


def _wie(persoon: Persoon | None) -> str | None:
    """The identity ZDS carries for a betrokkene (a KvK-nummer alone has no StUF place: None)."""
    if persoon is None:
        return None
    if persoon.natuurlijk:
        return f"bsn:{persoon.bsn}" if persoon.bsn else None
    return f"vestiging:{persoon.vestigingsnummer}" if persoon.vestigingsnummer else None


@dataclass(frozen=True)
class _ZaakDetails:
    """What geefZaakdetails says about one zaak (empty lists: the zaaksysteem did not return them)."""

    kenmerken: list[str] = field(default_factory=list)
    zaaktypen: list[str] = field(default_factory=list)
    statussen: list[_Status] = field(default_factory=list)
    gemachtigden: list[_Rol] = field(default_factory=list)

    @classmethod
    def of(cls, answer: etree._Element, zaak_id: str) -> _ZaakDetails | None:
        """The zaak in a La01, or None when the answer has no object with that identificatie."""
        for obj in answer.iter():
            if not (isinstance(obj.tag, str) and etree.QName(obj).localname == "object"):
                continue
            if _child(obj, "identificatie") != zaak_id:
                continue
            statussen = []
            for heeft in (c for c in obj if isinstance(c.tag, str) and etree.QName(c).localname == "heeft"):
                nr = _texts(heeft, "gerelateerde", "volgnummer")
                statussen.append(
                    _Status(
                        int(nr[0]) if nr and nr[0].isdigit() else None,
                        _child(heeft, "datumStatusGezet"),
                        _child(heeft, "toelichting"),
                    )
                )
            gemachtigden = []
            for rel in (c for c in obj if isinstance(c.tag, str) and etree.QName(c).localname == "heeftAlsGemachtigde"):
                bsn = _texts(rel, "gerelateerde", "natuurlijkPersoon", "inp.bsn")
                ves = _texts(rel, "gerelateerde", "vestiging", "vestigingsNummer")
                wie = f"bsn:{bsn[0]}" if bsn else f"vestiging:{ves[0]}" if ves else None
                gemachtigden.append(_Rol(wie, _child(rel, "toelichting")))
            return cls(
                _texts(obj, "kenmerk", "kenmerk"),
                _texts(obj, "isVan", "gerelateerde", "code"),
                statussen,
                gemachtigden,
            )
        return None


class StufZknTarget:
    kind = "stuf-zkn"

    def __init__(self, name: str, options: StufZknOptions) -> None:
        self.name = name
        self.options = options
        self.client = StufZknClient(options)

    def context(self) -> msg.Context:
        return msg.Context(self.options.dialect, _systeem(self.options.zender), _systeem(self.options.ontvanger))

    def check(self) -> list[str]:
        """Options sane (certificate files exist) and every endpoint answers HTTP at all."""
        problems = self.options.missing_files() + self.client.probe()
        return [f"target {self.name}: {p}" for p in problems]

    def missing_in_catalogus(self, refs: dict[str, set[str]]) -> list[str]:
        """ZDS has no catalogus query in the zs-dms berichtencatalogus, so existence cannot be checked
        online; only references that can never be valid in a StUF-ZKN message are reported."""
        bad = [
            f"zaaktype {zt!r}: a StUF-ZKN zaaktype code has 1..10 characters"
            for zt in sorted(refs.get("zaaktype", set()))
            if not 1 <= len(zt) <= 10
        ]
        for st in sorted(refs.get("statustype", set())):
            if not (str(st).isdigit() and 1 <= int(st) <= 9999):
                bad.append(f"statustype {st!r}: a StUF-ZKN statustype is a volgnummer 1..9999")
        return bad

    def check_zaak(self, zaak: ZaakOpdracht, on: date) -> list[str]:
        """For ``mappings check --online``: what can be checked without a catalogus query."""
        p = zaak.profiel
        statustypen = {str(x) for x in (p.statustype_start, p.statustype_intrekking) if x is not None}
        return self.missing_in_catalogus({"zaaktype": {zaak.zaaktype}, "statustype": statustypen})

    def preview(self, opdracht: Opdracht) -> list[Call]:
        calls: list[Call] = []
        _Plan(self, opdracht, DryRunSteps(calls), dry_run=True).run()
        return calls

    def deliver(self, opdracht: Opdracht, steps: Steps) -> str:
        return _Plan(self, opdracht, steps, dry_run=False).run()


class _Plan:
    """One delivery run: walks the steps for the verzoek's soort."""

    def __init__(self, target: StufZknTarget, opdracht: Opdracht, steps: Steps, *, dry_run: bool) -> None:
        self.t = target
        self.o = opdracht
        self.v = opdracht.verzoek
        self.steps = steps
        self.dry = dry_run
        self.ctx = target.context()
        self.summary: list[str] = []

    def run(self) -> str:
        try:
            if self.v.soort.creates_zaak:
                self._new_zaken()
            else:
                self._follow_up()
        except ValueError as exc:  # a value no StUF-ZKN message can carry: a mapping problem, not retried
            raise MappingError(f"verzoek {self.v.nummer}: {exc}") from None
        return "; ".join(self.summary)

    # -- calls -----------------------------------------------------------------------------------------
    def _send(self, key: str, bericht: msg.Bericht, expect: tuple[str, ...]) -> etree._Element | None:
        call = Call(key, "POST", self.t.client.url(bericht), bericht.xml())
        if self.dry:
            assert isinstance(self.steps, DryRunSteps)
            self.steps.calls.append(call)
            return None
        self.steps.called(call.summary())
        return self.t.client.send(bericht, expect)

    def _genereer(self, key: str, build: Callable[[msg.Context], msg.Bericht], entity: str) -> Result:
        answer = self._send(key, build(self.ctx), ("Du02",))
        if answer is None:
            return {"identificatie": f"<{key}>"}
        found = _texts(answer, entity, "identificatie")
        if not found:
            raise TargetError(f"{key}: Du02 without {entity} identificatie")
        return {"identificatie": found[0]}

    def _ask(self, key: str, bericht: msg.Bericht) -> etree._Element | None:
        """A vraag to recognise an earlier attempt; None when the zaaksysteem does not offer it (StUF025,
        or a fault that blames the vraag). A transient fault is raised: the delivery asks again later."""
        try:
            return self._send(key, bericht, ("La01",))
        except StufFault as exc:
            if exc.code == "StUF025" or not exc.transient:
                return None
            raise

    def _zaakdetails(self, key: str, zaak_id: str) -> tuple[bool, _ZaakDetails | None]:
        """(asked, details): ``asked`` is False when the zaaksysteem does not answer geefZaakdetails."""
        answer = self._ask(f"{key} (geefZaakdetails)", msg.geef_zaakdetails(self.ctx, zaak_id))
        if answer is None:
            return False, None
        return True, _ZaakDetails.of(answer, zaak_id)

    # -- a new zaak per zaaktype, then the documents on all of them, then the start statuses -----------
    def _new_zaken(self) -> None:
        for zo in self.o.zaken:  # a code no ZDS message can carry fails before anything is sent
            msg.zaaktype_code(zo.zaaktype)
        created: list[tuple[ZaakOpdracht, str]] = []
        for zo in self.o.zaken:
            created.append((zo, self._zaak(zo)))
        self._documenten([zaak_id for _, zaak_id in created])
        for zo, zaak_id in created:
            if zo.profiel.statustype_start:
                self._status(
                    f"status:start:{zo.zaaktype}",
                    zaak_id,
                    zo.zaaktype,
                    zo.profiel.statustype_start,
                    "Ontvangen via het Omgevingsloket",
                )

    def _zaak(self, zo: ZaakOpdracht) -> str:
        zt = zo.zaaktype
        # a generated identificatie held before this run is the only way the zaak may have been sent
        maybe_sent = True
        if zo.profiel.zaak_identificatie:
            zaak_id = zo.profiel.zaak_identificatie
        else:
            key = f"zaakid:{zt}"
            maybe_sent = self.steps.result(key) is not None
            gen = run_step(self.steps, key, lambda: self._genereer(key, msg.genereer_zaak_identificatie, "zaak"))
            zaak_id = gen["identificatie"]
        key = f"zaak:{zt}"

        def create() -> Result:
            self._send(key, msg.creeer_zaak(self.ctx, zo, self.v, zaak_id), ("Bv03",))
            return {"identificatie": zaak_id, "zaaktype": zt}

        def find() -> Result | None:
            """Precise: the identificatie is this delivery's (generated and checkpointed) or this
            verzoek's (deterministic); a zaak under it that carries another verzoeknummer or zaaktype
            is somebody else's and is refused rather than adopted."""
            if not maybe_sent:
                return None
            _, found = self._zaakdetails(key, zaak_id)
            if found is None:
                return None
            kenmerk_ok = not found.kenmerken or self.v.nummer in found.kenmerken
            zaaktype_ok = not found.zaaktypen or zt in found.zaaktypen
            if not (kenmerk_ok and zaaktype_ok):
                raise TargetRefused(
                    f"{key}: zaak {zaak_id} exists in the zaaksysteem but is not verzoek {self.v.nummer}'s "
                    f"(kenmerk {', '.join(found.kenmerken) or '-'}, zaaktype {', '.join(found.zaaktypen) or '-'}): "
                    "not adopted; check the mapping's zaak_identificatie"
                )
            return {"identificatie": zaak_id, "zaaktype": zt}

        zaak = run_step(self.steps, key, create, find)
        if not self.dry:
            ident = zaak["identificatie"]
            self.steps.link_zaak(self.v.zaak_sleutel, zt, url=ident, identificatie=ident)
        self.summary.append(f"zaak {zaak['identificatie']} ({zt}{', triage' if zo.triage else ''})")
        return zaak["identificatie"]

    def _documenten(self, zaken: list[str], documenten: tuple[DocumentOpdracht, ...] | None = None) -> None:
        """One document per bijlage, related to every zaak given (ZDS relates a document to several zaken;
        its type is that of the first zaak's profile)."""
        documenten = self.o.documenten if documenten is None else documenten
        if not documenten or not zaken:
            return
        auteur = (self.v.initiatiefnemer.weergavenaam if self.v.initiatiefnemer else "") or "Omgevingsloket"
        for d in documenten:
            self._document(d, zaken, auteur)
        without = sum(not d.bijlage.heeft_inhoud for d in documenten)
        self.summary.append(
            f"{len(documenten)} document(en)"
            + (f", {without} zonder inhoud (alleen metadata; inhoud volgt via postbus)" if without else "")
        )

    def _document(self, d: DocumentOpdracht, zaken: list[str], auteur: str) -> None:
        """One document, relevant for every zaak of this delivery (ZDS: ``isRelevantVoor`` 1..n), made only
        on the zaken that have none for this bijlage yet (``_made_before``); it is recorded per zaak at once.

        A resend after the mapping gained a zaaktype finds this delivery's document made, and a new zaak
        without a record: that zaak gets a document of its own (ZDS relates a document when it is made), under
        a step of its own. When no zaak has a record, the document predates the records and was made for all."""
        made = self.steps.result(f"document:{d.bijlage.id}")
        if made is None:
            missing = self._made_before(d, zaken)
            if not missing:
                return
            made = self._voeg_toe(d, missing, auteur)
        else:
            recorded = {z for z in zaken if self.steps.document(self.v.nummer, z, d.bijlage.id) is not None}
            new = [z for z in zaken if z not in recorded] if recorded else []
            if new:
                extra = self._voeg_toe(d, new, auteur, suffix=f"@{new[0]}")
                self.steps.link_document(
                    self.v.nummer, new, d.bijlage.id, str(extra["identificatie"]), d.bijlage.omvang
                )
        # also when this run found the step done: a run before the record existed may not have written it
        # (``link_document`` keeps the first record of each zaak)
        self.steps.link_document(self.v.nummer, zaken, d.bijlage.id, str(made["identificatie"]), d.bijlage.omvang)

    def _made_before(self, d: DocumentOpdracht, zaken: list[str]) -> list[str]:
        """The zaken that still need this bijlage's document. The identificatie is generated per delivery, so
        a later message of the verzoek that lists the bijlage again (an aanvulling; a later STAM version lists
        every document so far) can only know the document by the ``document_links`` record of the delivery
        that made it. On every zaak recorded: adopted, as a retry would, without a call. Listed again with
        another size: not ours to replace (the ZGW target refuses the same), so refused for a person to check."""
        key = f"document:{d.bijlage.id}"
        missing: list[str] = []
        adopted: Result | None = None
        for zaak in zaken:
            link = self.steps.document(self.v.nummer, zaak, d.bijlage.id)
            if link is None:
                missing.append(zaak)
                continue
            known, omvang = link.get("omvang"), d.bijlage.omvang
            if known and omvang and known != omvang:
                raise TargetRefused(
                    f"{key}: document {link['identificatie']} on zaak {zaak} was made for bijlage {d.bijlage.id} "
                    f"with {known} bytes, this message lists it with {omvang}: not replaced; check it"
                )
            adopted = adopted or {"identificatie": str(link["identificatie"])}
        if adopted is not None and not missing:
            self.steps.done(key, adopted, recoverable=True)
        return missing

    def _voeg_toe(self, d: DocumentOpdracht, zaken: list[str], auteur: str, suffix: str = "") -> Result:
        """genereerDocumentIdentificatie (checkpointed) and voegZaakdocumentToe on ``zaken``; ``suffix`` keys
        a further document of the same bijlage (for a zaak a resend added)."""
        idkey, key = f"docid:{d.bijlage.id}{suffix}", f"document:{d.bijlage.id}{suffix}"
        # the document can only have been sent under an identificatie an earlier run already holds
        maybe_sent = self.steps.result(idkey) is not None
        gen = run_step(
            self.steps, idkey, lambda: self._genereer(idkey, msg.genereer_document_identificatie, "document")
        )
        doc_id = gen["identificatie"]

        def create() -> Result:
            self._send(key, msg.voeg_zaakdocument_toe(self.ctx, d, self.v, doc_id, zaken, auteur), ("Bv03",))
            return {"identificatie": doc_id}

        def find() -> Result | None:
            """Precise: ``doc_id`` was generated for this delivery and checkpointed before the send."""
            if not maybe_sent:
                return None
            answer = self._ask(f"{key} (geefLijstZaakdocumenten)", msg.geef_lijst_zaakdocumenten(self.ctx, zaken[0]))
            if answer is not None and doc_id in _texts(answer, "heeftRelevant", "gerelateerde", "identificatie"):
                return {"identificatie": doc_id}
            return None

        return run_step(self.steps, key, create, find)

    def _status(self, key: str, zaak_id: str, zaaktype: str, volgnummer: int | str, toelichting: str) -> None:
        """actualiseerZaakstatus, recognisable on a retry as this delivery's own: its toelichting names
        the message (StUF referentienummer / STAM verzoek) and its ``datumStatusGezet`` is checkpointed.

        The ``…:gezet`` checkpoint is written before the first send, so it also says whether the status
        may have been sent at all: without it there is nothing to look for.
        """
        try:
            nr = int(volgnummer)
        except (TypeError, ValueError):
            raise ValueError(f"statustype volgnummer {volgnummer!r} is not a volgnummer") from None
        marker = f"(bericht {self.v.referentie})" if self.v.referentie else None
        text = " ".join(toelichting.split())
        if marker:
            text = f"{text[: _TOELICHTING_MAX - len(marker) - 1]} {marker}".strip()
        plan_key = f"{key}:gezet"
        maybe_sent = self.steps.result(plan_key) is not None
        gezet = run_step(self.steps, plan_key, lambda: {"datumStatusGezet": tijdstip(self.ctx.now)})["datumStatusGezet"]
        bericht = msg.actualiseer_zaakstatus(
            self.ctx, zaak_id, zaaktype, nr, text, self.t.options.medewerker, gezet=gezet
        )

        def create() -> Result:
            self._send(key, bericht, ("Bv03",))
            return {"volgnummer": nr, "datumStatusGezet": gezet}

        def find() -> Result | None:
            """Precise when the zaaksysteem returns the toelichting (it names this message) or keeps
            datumStatusGezet to the second; a zaak may well hold the same statustype from elsewhere, so
            zaak + volgnummer alone never counts. Neither to tell by, two that fit, or no answer to the
            vraag: ``Ambiguous`` naming the candidates, never a guess."""
            if not maybe_sent:
                return None
            asked, found = self._zaakdetails(key, zaak_id)
            if not asked:
                raise Ambiguous(
                    f"{key}: cannot tell whether status {nr} on zaak {zaak_id} (datumStatusGezet {gezet}) was "
                    "set by the unanswered attempt: the zaaksysteem does not answer geefZaakdetails; "
                    "check the zaak, then resend"
                )
            if found is None:
                raise TargetError(f"{key}: zaak {zaak_id} not found in the zaaksysteem")
            exact: list[_Status] = []
            unsure: list[_Status] = []
            for st in found.statussen:
                if st.volgnummer != nr:
                    continue
                if st.toelichting is not None:
                    if st.toelichting != text:
                        continue  # another status of this type (set elsewhere, or by another message)
                    if marker:
                        exact.append(st)  # the toelichting names this message
                        continue
                if not st.datum:
                    unsure.append(st)
                    continue
                n = min(len(st.datum), len(gezet))
                if st.datum[:n] == gezet[:n]:
                    (exact if n >= _PRECISE_TIJDSTIP else unsure).append(st)
            if len(exact) == 1 and not unsure:
                return {"volgnummer": nr, "datumStatusGezet": gezet}
            if exact or unsure:
                raise Ambiguous(
                    f"{key}: zaak {zaak_id} has {len(exact) + len(unsure)} statuses that may be the one the "
                    f"unanswered attempt set (ours: status {nr} gezet {gezet}): "
                    + "; ".join(str(c) for c in exact + unsure)
                    + ". Not adopted and not resent: check the zaak, then resend"
                )
            return None

        run_step(self.steps, key, create, find)
        self.summary.append(f"status {nr} op zaak {zaak_id}")

    # -- follow-ups on the zaken of the verzoek -----------------------------------------------------------
    def _follow_up(self) -> None:
        """An aanvulling, advies, intrekking or wijziging gemachtigde reaches every zaak its verzoek made,
        in the order they were made: the intrekking status and the new gemachtigde on each zaak as its own
        zaaktype's profile says, the bijlagen as one document per bijlage relevant for all of them (as in
        the aanvraag: ZDS relates a document to several zaken; its type is that of the first zaak's
        profile). Not the advice zaken we made as adviseur (``<nummer>#<adviesverzoek>``).

        Step keys: the first zaak keeps the keys a follow-up always had (``status:intrekking``,
        ``rol:gemachtigde``), so a delivery interrupted before this change finishes without a second status
        or rol; every further zaak's keys end in ``:<zaaktype>``."""
        zaken = self.steps.zaken(self.v.nummer)
        if not zaken:
            raise WaitingError(f"no zaak known yet for verzoek {self.v.nummer}: waiting for its aanvraag")
        soort = self.v.soort
        ids = [str(z.get("identificatie") or z["url"]) for z in zaken]
        first_plan = self.o.vervolg.get(str(zaken[0]["zaaktype"]))
        documenten = first_plan.documenten if first_plan else self.o.documenten
        if soort is Soort.INTREKKING:
            for n, (zaak, zaak_id) in enumerate(zip(zaken, ids, strict=True)):
                zt = str(zaak["zaaktype"])
                p = self._vervolg_profiel(zt)
                self.summary.append(f"intrekking op zaak {zaak_id}")
                if p is not None and p.statustype_intrekking:
                    self._status(
                        "status:intrekking" + (f":{zt}" if n else ""),
                        zaak_id,
                        zt,
                        p.statustype_intrekking,
                        self.v.reden or "Ingetrokken via het Omgevingsloket",
                    )
                else:
                    self.summary.append("geen statustype_intrekking in de mapping: geen status gezet")
            self._documenten(ids, documenten)
            return
        self.summary.extend(f"{soort} bij zaak {zaak_id}" for zaak_id in ids)
        self._documenten(ids, documenten)
        if soort is Soort.WIJZIGING_GEMACHTIGDE:
            if self.v.gemachtigde is None:
                self.summary.append("geen gemachtigde in het bericht: niets bijgewerkt")
                return
            for n, (zaak, zaak_id) in enumerate(zip(zaken, ids, strict=True)):
                key = "rol:gemachtigde" + (f":{zaak['zaaktype']}" if n else "")
                self._gemachtigde(key, zaak_id, self.v.gemachtigde)

    def _vervolg_profiel(self, zaaktype: str) -> Profiel | None:
        """The profile of a zaak of ``zaaktype`` (the mapping's for that zaaktype, else its defaults)."""
        plan = self.o.vervolg.get(zaaktype)
        return plan.profiel if plan else self.o.profiel

    def _gemachtigde(self, key: str, zaak_id: str, persoon: Persoon) -> None:
        """updateZaak adds the new gemachtigde; the relation's toelichting names this message, so a
        retry tells it from the gemachtigde of the aanvraag or of an earlier wijziging (possibly the same
        person). The ``…:gepland`` checkpoint, written before the send, says whether it may have been
        sent at all."""
        marker = f"(bericht {self.v.referentie})" if self.v.referentie else None
        text = f"gemachtigde {marker}" if marker else "gemachtigde"
        plan_key = f"{key}:gepland"
        maybe_sent = self.steps.result(plan_key) is not None
        run_step(self.steps, plan_key, lambda: {"toelichting": text})
        bericht = msg.update_zaak_gemachtigde(self.ctx, zaak_id, persoon, text)
        wie = _wie(persoon)

        def create() -> Result:
            self._send(key, bericht, ("Bv03",))
            return {"gemachtigde": wie, "toelichting": text}

        def find() -> Result | None:
            """Precise when the zaaksysteem returns the relation's toelichting (it names this message).
            Without it only the person is left, and that person may well be a gemachtigde already
            (aanvraag, an earlier wijziging): such a candidate, or no answer to the vraag, is
            ``Ambiguous`` naming the candidates, never a guess; no candidate at all means not made."""
            if not maybe_sent:
                return None
            asked, found = self._zaakdetails(key, zaak_id)
            if not asked:
                raise Ambiguous(
                    f"{key}: cannot tell whether gemachtigde {wie or '?'} on zaak {zaak_id} was added by the "
                    "unanswered attempt: the zaaksysteem does not answer geefZaakdetails; check the zaak, then resend"
                )
            if found is None:
                raise TargetError(f"{key}: zaak {zaak_id} not found in the zaaksysteem")
            exact: list[_Rol] = []
            unsure: list[_Rol] = []
            for rol in found.gemachtigden:
                if rol.toelichting is not None:
                    if rol.toelichting == text and (rol.wie in (None, wie)):
                        (exact if marker else unsure).append(rol)
                elif rol.wie is None or wie is None or rol.wie == wie:
                    unsure.append(rol)
            if len(exact) == 1 and not unsure:
                return {"gemachtigde": wie, "toelichting": text}
            if exact or unsure:
                raise Ambiguous(
                    f"{key}: zaak {zaak_id} has {len(exact) + len(unsure)} gemachtigden that may be the one the "
                    f"unanswered attempt added (ours: {wie or '?'}, {text!r}): "
                    + "; ".join(str(c) for c in exact + unsure)
                    + ". Not adopted and not resent: check the zaak, then resend"
                )
            return None

        run_step(self.steps, key, create, find)
        self.summary.append(f"gemachtigde {wie or persoon.naam or '?'} toegevoegd aan zaak {zaak_id}")
