"""StUF-ZKN (ZDS 1.1 / 1.2) target plugin: carries out an Opdracht as ZDS calls, one checkpointed step each.

Call order (domain.md §8.2): genereerZaakIdentificatie → creeerZaak → genereerDocumentIdentificatie →
voegZaakdocumentToe → actualiseerZaakstatus. Exactly once:

* a generated identificatie is checkpointed (``zaakid:``/``docid:``), so a retry never reserves a second
  number (Open Forms #1183); only a Di02 whose *answer* was lost reserves again, which costs a number,
  not a duplicate;
* after an uncertain creeerZaak or voegZaakdocumentToe the retry first asks the zaaksysteem
  (geefZaakdetails / geefLijstZaakdocumenten on the BeantwoordVraag port) whether the zaak or document
  with that identificatie exists, and adopts it. A zaaksysteem that does not answer those vragen gets
  the same message again with the same identificatie: StUF has no standard "already exists" Fo03 code
  to recognise reliably, so such a fault stays a fault;
* actualiseerZaakstatus is resent after an uncertain attempt (ZDS offers no way to tell "this status,
  set by us" apart from an earlier equal one).
"""

from __future__ import annotations

from collections.abc import Callable

from lxml import etree

from adapter.errors import TargetError, WaitingError
from adapter.mapping.opdracht import DocumentOpdracht, Opdracht, Profiel, ZaakOpdracht
from adapter.model import Soort
from adapter.stuf.stuurgegevens import Systeem
from adapter.targets.base import Call, DryRunSteps, Result, Steps, run_step
from adapter.targets.stuf_zkn import messages as msg
from adapter.targets.stuf_zkn.client import StufFault, StufZknClient
from adapter.targets.stuf_zkn.options import StufSysteem, StufZknOptions


def _systeem(s: StufSysteem) -> Systeem:
    return Systeem(s.organisatie, s.applicatie, s.administratie, s.gebruiker)


def _texts(answer: etree._Element, *path: str) -> list[str]:
    """Texts of every element along ``path`` (local names, any namespace) below ``answer``."""
    found = [answer]
    for name in path:
        found = [c for e in found for c in e.iter() if isinstance(c.tag, str) and etree.QName(c).localname == name]
    return [" ".join(e.text.split()) for e in found if e.text and e.text.strip()]


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
        except ValueError as exc:  # a value no StUF-ZKN message can carry: a mapping problem
            raise TargetError(f"verzoek {self.v.nummer}: {exc}") from None
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
        """A vraag to recognise an earlier attempt; a zaaksysteem that faults on it just gets a resend."""
        try:
            return self._send(key, bericht, ("La01",))
        except StufFault:
            return None

    # -- a new zaak per zaaktype, then the documents on all of them, then the start statuses -----------
    def _new_zaken(self) -> None:
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
        if zo.profiel.zaak_identificatie:
            zaak_id = zo.profiel.zaak_identificatie
        else:
            key = f"zaakid:{zt}"
            gen = run_step(self.steps, key, lambda: self._genereer(key, msg.genereer_zaak_identificatie, "zaak"))
            zaak_id = gen["identificatie"]
        key = f"zaak:{zt}"

        def create() -> Result:
            self._send(key, msg.creeer_zaak(self.ctx, zo, self.v, zaak_id), ("Bv03",))
            return {"identificatie": zaak_id, "zaaktype": zt}

        def find() -> Result | None:
            answer = self._ask(f"{key} (geefZaakdetails)", msg.geef_zaakdetails(self.ctx, zaak_id))
            if answer is not None and zaak_id in _texts(answer, "antwoord", "object", "identificatie"):
                return {"identificatie": zaak_id, "zaaktype": zt}
            return None

        zaak = run_step(self.steps, key, create, find)
        if not self.dry:
            self.steps.link_zaak(self.v.nummer, zt, url=zaak["identificatie"], identificatie=zaak["identificatie"])
        self.summary.append(f"zaak {zaak['identificatie']} ({zt}{', triage' if zo.triage else ''})")
        return zaak["identificatie"]

    def _documenten(self, zaken: list[str]) -> None:
        if not self.o.documenten or not zaken:
            return
        auteur = (self.v.initiatiefnemer.weergavenaam if self.v.initiatiefnemer else "") or "Omgevingsloket"
        for d in self.o.documenten:
            self._document(d, zaken, auteur)
        without = sum(d.bijlage.inhoud is None for d in self.o.documenten)
        self.summary.append(
            f"{len(self.o.documenten)} document(en)"
            + (f", {without} zonder inhoud (alleen metadata; inhoud volgt via postbus)" if without else "")
        )

    def _document(self, d: DocumentOpdracht, zaken: list[str], auteur: str) -> None:
        """One document, relevant for every zaak of this delivery (ZDS: ``isRelevantVoor`` 1..n)."""
        idkey, key = f"docid:{d.bijlage.id}", f"document:{d.bijlage.id}"
        gen = run_step(
            self.steps, idkey, lambda: self._genereer(idkey, msg.genereer_document_identificatie, "document")
        )
        doc_id = gen["identificatie"]

        def create() -> Result:
            self._send(key, msg.voeg_zaakdocument_toe(self.ctx, d, self.v, doc_id, zaken, auteur), ("Bv03",))
            return {"identificatie": doc_id}

        def find() -> Result | None:
            answer = self._ask(f"{key} (geefLijstZaakdocumenten)", msg.geef_lijst_zaakdocumenten(self.ctx, zaken[0]))
            if answer is not None and doc_id in _texts(answer, "heeftRelevant", "gerelateerde", "identificatie"):
                return {"identificatie": doc_id}
            return None

        run_step(self.steps, key, create, find)

    def _status(self, key: str, zaak_id: str, zaaktype: str, volgnummer: int | str, toelichting: str) -> None:
        try:
            nr = int(volgnummer)
        except (TypeError, ValueError):
            raise ValueError(f"statustype {volgnummer!r} is not a volgnummer") from None
        bericht = msg.actualiseer_zaakstatus(self.ctx, zaak_id, zaaktype, nr, toelichting, self.t.options.medewerker)

        def create() -> Result:
            self._send(key, bericht, ("Bv03",))
            return {"volgnummer": nr}

        run_step(self.steps, key, create)
        self.summary.append(f"status {nr} op zaak {zaak_id}")

    # -- follow-ups on the existing zaak ----------------------------------------------------------------
    def _follow_up(self) -> None:
        zaak = self.steps.zaak(self.v.nummer)
        if zaak is None:
            raise WaitingError(f"no zaak known yet for verzoek {self.v.nummer}: waiting for its aanvraag")
        p: Profiel | None = self.o.profiel
        zaak_id = zaak.get("identificatie") or zaak["url"]
        soort = self.v.soort
        if soort is Soort.INTREKKING:
            if p is not None and p.statustype_intrekking:
                self._status(
                    "status:intrekking",
                    zaak_id,
                    zaak["zaaktype"],
                    p.statustype_intrekking,
                    self.v.reden or "Ingetrokken via het Omgevingsloket",
                )
            else:
                self.summary.append("geen statustype_intrekking in de mapping: geen status gezet")
            self.summary.insert(0, f"intrekking op zaak {zaak_id}")
            self._documenten([zaak_id])
            return
        self._documenten([zaak_id])
        self.summary.insert(0, f"{soort} bij zaak {zaak_id}")
        if soort is Soort.WIJZIGING_GEMACHTIGDE:
            self.summary.append("gemachtigde niet bijgewerkt: deze StUF-ZKN target voegt alleen documenten toe")
