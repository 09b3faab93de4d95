"""ZGW target plugin: carries out an Opdracht as Zaken/Documenten calls, one checkpointed step each.

Exactly once: every create step has a *find* that recognises what an earlier, uncertain attempt of
*this* delivery made, by identity, never by type alone — a zaak by its deterministic ``identificatie``
(mapping ``zaak_identificatie``); a document by its ``identificatie`` (``<nummer>-<bijlageId>``, see
``document_identificatie``) and only when complete (an interrupted upload is resumed); a rol by the
betrokkene's identity and a toelichting naming the message; a status by type and that toelichting; a
zaakobject by its identifying fields; a zaakinformatieobject by zaak + document. Several candidates raise
``Ambiguous``. Without a configured zaak identificatie the zaaksysteem picks one and a retry after a lost
answer could not be recognised; ``mappings check`` warns about that.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Callable
from datetime import UTC, date, datetime
from functools import partial
from typing import Any, BinaryIO

from adapter.errors import Ambiguous, TargetError, TargetRefused, WaitingError
from adapter.logs import get_logger
from adapter.mapping.opdracht import DocumentOpdracht, Opdracht, Profiel, ZaakOpdracht
from adapter.model import Bijlage, Persoon, Soort
from adapter.targets.base import Call, DryRunSteps, Made, Result, Steps, run_step
from adapter.targets.zgw import bodies
from adapter.targets.zgw.catalogus import Catalogus
from adapter.targets.zgw.client import ZgwClient
from adapter.targets.zgw.options import ZgwOptions

CACHE_SECONDS = 600
#: checkpoint prefix of a link or document this delivery removed (a replaced one): ``deleted:<url>``
_DELETED = "deleted:"
log = get_logger("adapter.targets.zgw")


#: Documenten API: an identificatie is at most 40 characters and unique per bronorganisatie. One that does
#: not fit keeps its first 33 characters (readable) and "-" and 6 hex of a hash of all it stands for.
ID_MAX, ID_PREFIX = 40, 33


def _hash6(*parts: str) -> str:
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:6]


def document_identificatie(base: str, n: int = 0, replaced_by: str | None = None) -> str:
    """The identificatie of the document of bijlage ``base`` (``<verzoeknummer>-<bijlageId>``, whole) for the
    ``n``-th informatieobjecttype a delivery needs for it (0: the first; more when zaken of one verzoek need
    different types), or, with ``replaced_by`` (an informatieobjecttype URL), of the document that replaces
    it after a mapping fix. Deterministic (a retry and a later verzoek version compute the same one, which
    is how a document whose create answer was lost is found), unique per bijlage and type, and at most
    40 characters: ``<base>``, ``<base>-<n+1>`` and ``<identificatie>-<6 hex of the type>`` as long as the
    whole fits (the forms already in production), otherwise the first 33 characters and a hash of the whole
    base, n and type, so two long ids that agree in their first 40 characters never share one."""
    if n == 0:
        ident = base if len(base) <= ID_MAX else f"{base[:ID_PREFIX]}-{_hash6(base)}"
    else:
        ident = f"{base}-{n + 1}" if len(base) <= ID_MAX - 4 else f"{base[:ID_PREFIX]}-{_hash6(base, str(n + 1))}"
    if replaced_by is None:
        return ident
    if len(ident) <= ID_PREFIX:
        return f"{ident}-{hashlib.sha256(replaced_by.encode()).hexdigest()[:6]}"
    return f"{ident[:ID_PREFIX]}-{_hash6(base, str(n + 1), replaced_by)}"


def _legacy_identificatie(base: str, n: int = 0, replaced_by: str | None = None) -> str:
    """The identificatie releases before 2 December 2026 gave (cut to 40 characters; two long ids could share
    it, and the second type's could equal the first's): still looked for, so a document one of them made is
    found again, and adopted only when it is this bijlage's (same type and bestandsnaam)."""
    ident = (base if n == 0 else f"{base[:36]}-{n + 1}")[:ID_MAX]
    if replaced_by is None:
        return ident
    return f"{ident[:ID_PREFIX]}-{hashlib.sha256(replaced_by.encode()).hexdigest()[:6]}"


def _of_type(iot_url: str, eio: dict[str, Any]) -> bool:
    return eio.get("informatieobjecttype") == iot_url


def _open_bytes(bijlage: Bijlage) -> BinaryIO:
    if bijlage.bestand is not None:
        return open(bijlage.bestand, "rb")
    return io.BytesIO(bijlage.inhoud or b"")


class ZgwTarget:
    kind = "zgw"

    def __init__(self, name: str, options: ZgwOptions) -> None:
        self.name = name
        self.options = options
        self.client = ZgwClient(options)
        self.catalogus = Catalogus(self.client, options.catalogus)

    # -- checks --------------------------------------------------------------------------------------
    def check(self) -> list[str]:
        try:
            self.client.get(self.options.catalogus)
            self.catalogus.informatieobjecttypen()
        except TargetError as exc:
            return [f"target {self.name}: {exc}"]
        return []

    def check_zaak(self, zaak: ZaakOpdracht, on: date) -> list[str]:
        """Every catalogus lookup a delivery of this zaak makes on date ``on``, by the delivery's own
        methods: zaaktype version, roltypen, statustypen, the resultaattype an eindstatus needs, and
        each document's type among those the zaaktype allows. One line per problem."""
        c, p = self.catalogus, zaak.profiel
        try:
            zt_url = c.zaaktype(zaak.zaaktype, on)
        except TargetError as exc:
            return [str(exc)]
        lookups: list[tuple[str, Callable[[], object]]] = [
            ("roltype_initiator", lambda: c.roltype(zt_url, p.roltype_initiator)),
            ("roltype_gemachtigde", lambda: c.roltype(zt_url, p.roltype_gemachtigde)),
        ]
        if p.statustype_start is not None:
            start = p.statustype_start
            lookups.append(("statustype_start", lambda: c.statustype(zt_url, start)))
        if p.statustype_intrekking is not None:
            intrekking = p.statustype_intrekking
            lookups.append(("statustype_intrekking", lambda: self._eindstatus_resultaat(zt_url, intrekking, p)))
        for d in zaak.documenten:
            what = f"documenttype {d.bijlage.documenttype!r} → informatieobjecttype {d.informatieobjecttype!r}"
            lookups.append((what, partial(c.informatieobjecttype, zt_url, d.informatieobjecttype, on)))
        problems = []
        for what, lookup in lookups:
            try:
                lookup()
            except TargetError as exc:
                problems.append(f"{what}: {exc}")
        return problems

    def _eindstatus_resultaat(self, zt_url: str, statustype: int | str, p: Profiel) -> str | None:
        """The resultaattype to set before ``statustype`` (only when it is the eindstatus)."""
        st_url = self.catalogus.statustype(zt_url, statustype)
        if not self.catalogus.is_eindstatus(st_url):
            return None
        if not p.resultaattype_intrekking:
            raise TargetRefused(
                f"statustype {statustype!r} is the eindstatus of zaaktype {self.catalogus.zaaktype_label(zt_url)}: "
                "the zaak needs a resultaat first; set resultaattype_intrekking in the mapping"
            )
        return self.catalogus.resultaattype(zt_url, p.resultaattype_intrekking)

    # -- preview -------------------------------------------------------------------------------------
    def preview(self, opdracht: Opdracht) -> list[Call]:
        calls: list[Call] = []
        _Plan(self, opdracht, DryRunSteps(calls), dry_run=True).run()
        return calls

    # -- delivery ------------------------------------------------------------------------------------
    def deliver(self, opdracht: Opdracht, steps: Steps) -> str:
        return _Plan(self, opdracht, steps, dry_run=False).run()


class _Plan:
    """One delivery run: walks the steps for the verzoek's soort."""

    def __init__(self, target: ZgwTarget, opdracht: Opdracht, steps: Steps, *, dry_run: bool) -> None:
        self.t = target
        self.o = opdracht
        self.v = opdracht.verzoek
        self.steps = steps
        self.dry = dry_run
        self.today = date.today()
        #: the date catalogus versions are chosen for: the verzoek's own (aanvraag/indien) date
        self.on = self.v.datum or self.today
        self.summary: list[str] = []
        #: per bijlage, the informatieobjecttypen its documents were made with (one document per type)
        self._types: dict[str, list[str]] = {}

    # URL lookups: placeholders in a dry run, so a preview sends nothing at all
    def _zaaktype(self, zt: str) -> str:
        return f"<zaaktype {zt}>" if self.dry else self.t.catalogus.zaaktype(zt, self.on)

    def _roltype(self, zt_url: str, naam: str) -> str:
        return f"<roltype {naam}>" if self.dry else self.t.catalogus.roltype(zt_url, naam)

    def _statustype(self, zt_url: str, nr: int | str) -> str:
        return f"<statustype {nr}>" if self.dry else self.t.catalogus.statustype(zt_url, nr)

    def _iot(self, zt_url: str, omschrijving: str) -> str:
        if self.dry:
            return f"<informatieobjecttype {omschrijving}>"
        return self.t.catalogus.informatieobjecttype(zt_url, omschrijving, self.on)

    def _post(self, key: str, api: str, path: str, body: dict[str, Any]) -> Made:
        url = self.t.client.url(api, path)
        call = Call(key, "POST", url, body)
        if self.dry:
            assert isinstance(self.steps, DryRunSteps)
            self.steps.calls.append(call)
            return {"url": f"<{path} {key}>", "identificatie": body.get("identificatie")}
        self.steps.called(call.summary())
        result = self.t.client.post(url, body)
        return {"url": result["url"], "identificatie": result.get("identificatie")}

    def _find_one(self, api: str, path: str, **params: Any) -> Made | None:
        """For lookups whose filters identify at most one object (the API's own uniqueness rules)."""
        return self._find_exact(api, path, lambda _: True, path, **params)

    def _find_exact(
        self, api: str, path: str, match: Callable[[dict[str, Any]], bool], what: str, **params: Any
    ) -> Made | None:
        """The one object the filters and ``match`` recognise as this delivery's; several → ``Ambiguous``
        (adopting one would be a guess, creating another a duplicate: an operator must look)."""
        if self.dry:
            return None
        found = [x for x in self.t.client.find_all(api, path, **params) if match(x)]
        if len(found) > 1:
            urls = ", ".join(str(x.get("url")) for x in found[:5])
            raise Ambiguous(f"{what}: {len(found)} candidates in the zaaksysteem ({urls}); cannot tell which is ours")
        return {"url": found[0]["url"], "identificatie": found[0].get("identificatie")} if found else None

    @property
    def _marker(self) -> str:
        """Appended to the toelichting of rollen and statussen: the message that made them, so a retry
        adopts only what this delivery made (not an earlier gemachtigde, not an earlier status)."""
        return f" (bericht {self.v.referentie})" if self.v.referentie else ""

    def run(self) -> str:
        if self.v.soort.creates_zaak:
            for zo in self.o.zaken:
                self._new_zaak(zo)
        else:
            self._follow_up()
        return "; ".join(self.summary)

    # -- a new zaak with everything on it ---------------------------------------------------------------
    def _new_zaak(self, zo: ZaakOpdracht) -> None:
        p, zt = zo.profiel, zo.zaaktype
        zt_url = self._zaaktype(zt)
        zaak = run_step(
            self.steps,
            f"zaak:{zt}",
            lambda: self._post(f"zaak:{zt}", "zaken", "zaken", bodies.zaak(p, self.v, zt_url, self.today)),
            (lambda: self._find_zaak(p, zt_url)) if p.zaak_identificatie else None,
        )
        if not self.dry:
            self.steps.link_zaak(self.v.zaak_sleutel, zt, zaak["url"], zaak.get("identificatie"))
        self.summary.append(f"zaak {zaak.get('identificatie') or zaak['url']} ({zt}{', triage' if zo.triage else ''})")
        if self.v.initiatiefnemer:
            self._rol(zaak["url"], zt, zt_url, p.roltype_initiator, self.v.initiatiefnemer, "initiatiefnemer")
        if self.v.gemachtigde:
            self._rol(zaak["url"], zt, zt_url, p.roltype_gemachtigde, self.v.gemachtigde, "gemachtigde")
        self._zaakobjecten(zaak["url"], zt)
        self._documenten(zaak["url"], zt, zt_url, zo.documenten, p)
        if p.statustype_start is not None:
            self._status(zaak["url"], zt, zt_url, p.statustype_start, "start", "Ontvangen via het Omgevingsloket", p)

    def _find_zaak(self, p: Profiel, zt_url: str) -> Made | None:
        """By identificatie and bronorganisatie (unique in the Zaken API), the identificatie the create sent
        (``bodies.zaak_identificatie``). Then under the cut one an earlier release sent for a long
        identificatie, adopted only when it is this verzoek's zaak of this zaaktype (two long identificaties
        that agree in their first 40 characters shared it)."""
        found = self._find_one(
            "zaken", "zaken", identificatie=bodies.zaak_identificatie(p), bronorganisatie=p.bronorganisatie
        )
        legacy = bodies.legacy_zaak_identificatie(p)
        if found is not None or legacy is None:
            return found

        def ours(z: dict[str, Any]) -> bool:
            kenmerken = {k.get("kenmerk") for k in z.get("kenmerken") or []}
            return z.get("zaaktype") == zt_url and self.v.nummer[:40] in kenmerken

        what = f"zaak {legacy}"
        return self._find_exact("zaken", "zaken", ours, what, identificatie=legacy, bronorganisatie=p.bronorganisatie)

    def _rol(
        self, zaak_url: str, zt: str, zt_url: str, generiek: str, persoon: Persoon, wie: str, tag: str = ""
    ) -> None:
        rt_url = self._roltype(zt_url, generiek)
        key = f"rol:{wie}:{zt}{tag}"
        body = bodies.rol(zaak_url, rt_url, persoon, f"{wie}{self._marker}")
        run_step(self.steps, key, lambda: self._post(key, "zaken", "rollen", body), lambda: self._find_rol(body))

    def _find_rol(self, body: dict[str, Any]) -> Made | None:
        """Precise: the betrokkene's identity (BSN, vestigingsnummer or KvK number, also as the API's
        ``betrokkeneIdentificatie__…`` filter) and the roltoelichting naming this message. A zaak may carry
        an earlier gemachtigde with the same roltype: that one is never adopted."""
        soort = body["betrokkeneType"]
        field, filter_name = bodies.IDENTITY.get(soort, ("", ""))
        value = body["betrokkeneIdentificatie"].get(field) if field else None
        params: dict[str, Any] = {"zaak": body["zaak"], "roltype": body["roltype"], "betrokkeneType": soort}
        if value:
            params[filter_name] = value

        def ours(r: dict[str, Any]) -> bool:
            same = (r.get("betrokkeneIdentificatie") or {}).get(field) == value if field else True
            return same and r.get("roltoelichting") == body["roltoelichting"]

        return self._find_exact("zaken", "rollen", ours, f"rol {body['roltoelichting']!r}", **params)

    def _zaakobjecten(self, zaak_url: str, zt: str) -> None:
        """Every projectlocatie becomes zaakobjecten: its adres, each kadastraal perceel, and a point
        when it has neither (the first locatie also places the zaak)."""
        objecten: list[tuple[str, dict[str, Any]]] = []
        for n, loc in enumerate(self.v.locaties):
            tag = "" if n == 0 else f"{n}:"  # the first locatie keeps the keys it always had
            if loc.adres and loc.adres.straatnaam:
                objecten.append((f"zaakobject:{tag}adres:{zt}", bodies.zaakobject_adres(zaak_url, loc.adres)))
            for i, perceel in enumerate(loc.percelen):
                objecten.append((f"zaakobject:{tag}perceel:{i}:{zt}", bodies.zaakobject_perceel(zaak_url, perceel)))
            if loc.punt_rd and not (loc.adres and loc.adres.straatnaam) and not loc.percelen:
                objecten.append((f"zaakobject:{tag}punt:{zt}", bodies.zaakobject_punt(zaak_url, loc.punt_rd)))
        for key, body in objecten:
            run_step(
                self.steps,
                key,
                lambda body=body, key=key: self._post(key, "zaken", "zaakobjecten", body),  # type: ignore[misc]
                lambda body=body: self._find_zaakobject(body),  # type: ignore[misc]
            )

    def _find_zaakobject(self, body: dict[str, Any]) -> Made | None:
        """By zaak, objectType and the object's identifying fields. The zaak is the one this delivery made,
        so only an identical object added by someone else in between could be mistaken: two candidates
        are reported as ``Ambiguous``, never adopted."""
        ident = body["objectIdentificatie"]
        want = {k: ident[k] for k in bodies.OBJECT_KEYS[body["objectType"]] if k in ident}

        def ours(zo: dict[str, Any]) -> bool:
            got = zo.get("objectIdentificatie") or {}
            return all(got.get(k) == v for k, v in want.items())

        what = f"zaakobject {body['objectType']} {want}"
        return self._find_exact("zaken", "zaakobjecten", ours, what, zaak=body["zaak"], objectType=body["objectType"])

    def _documenten(
        self, zaak_url: str, zt: str, zt_url: str, documenten: tuple[DocumentOpdracht, ...], p: Profiel
    ) -> None:
        without = 0
        for d in documenten:
            eio = self._document(d, p, zt_url)
            self._link(zaak_url, f"zio:{zt}:{d.bijlage.id}", eio, d.titel)
            without += not d.bijlage.heeft_inhoud
        if documenten:
            self.summary.append(
                f"{len(documenten)} document(en)"
                + (f", {without} zonder inhoud (volgt via postbus)" if without else "")
            )

    def _link(self, zaak_url: str, key: str, eio: Made, titel: str) -> None:
        """The zaakinformatieobject (zaak + document is unique: a precise find). The link the zaak has now
        for this bijlage is checkpointed under ``<key>:current`` once a resend has replaced one (before
        that it is the one under ``key``). When a resend made a new document in place of the one linked
        now (the mapping changed its type: once, again, or back), the new one is linked, then the current
        link removed and its document deleted, and only then is the new link the current one. A retry after
        a failure or crash anywhere in between compares with the same current link, so it finishes the
        same replacement (each step checkpointed, a DELETE of what is gone counts as done), and the next
        fix replaces the latest document, never one already removed."""
        current = self.steps.result(f"{key}:current") or self.steps.result(key)
        replaces = current is not None and current.get("informatieobject") not in (None, eio["url"])
        first = self.steps.result(key)
        link_key = key
        if first is not None and first.get("informatieobject") not in (None, eio["url"]):
            link_key = f"{key}@{eio['url'].rstrip('/').rsplit('/', 1)[-1]}"
        link_key = self._live_key(link_key)  # a link removed before (its document wanted back) is made again

        # the link's result names the document it links (url and identificatie), for a later replacement
        def create() -> Made:
            body = bodies.zaakinformatieobject(zaak_url, eio["url"], titel)
            made = self._post(link_key, "zaken", "zaakinformatieobjecten", body)
            return {**made, "identificatie": eio["identificatie"], "informatieobject": eio["url"]}

        def find() -> Made | None:
            found = self._find_one("zaken", "zaakinformatieobjecten", zaak=zaak_url, informatieobject=eio["url"])
            return {**found, "identificatie": eio["identificatie"], "informatieobject": eio["url"]} if found else None

        # a later version of a verzoek reuses its documents, which are already on the zaak
        made = run_step(self.steps, link_key, create, find, look_first=not self.v.soort.creates_zaak)
        if not replaces:
            return
        assert current is not None
        # the new link is made first: the zaak never goes without the bijlage, and the old document, no longer
        # linked, can be deleted (the Documenten API refuses while a link remains)
        old_link, old = str(current["url"]), str(current["informatieobject"])
        run_step(self.steps, f"{key}:unlink:{old_link}", lambda: self._remove(key, old_link))
        run_step(self.steps, f"{key}:delete:{old}", lambda: self._remove(key, old))
        self.summary.append(f"document {current.get('identificatie') or old} vervangen door {eio['identificatie']}")
        self.steps.done(f"{key}:current", made, recoverable=True)

    def _delete(self, key: str, url: str) -> Result:
        if not self.dry:
            self.steps.called(f"{key}: DELETE {url}")
            try:
                self.t.client.delete(url)
            except TargetRefused as exc:  # e.g. a document another zaak still uses: leave it, say so
                log.warning("could not delete a replaced object", url=url, reason=str(exc))
                return {"kept": str(exc)}
        return {}

    def _remove(self, key: str, url: str) -> Result:
        """Delete a replaced link or document; once it is gone (not kept, e.g. for another zaak) that is
        checkpointed under its URL, so a later fix back to its type makes it again instead of reusing it."""
        result = self._delete(key, url)
        if not self.dry and "kept" not in result:
            self.steps.done(f"{_DELETED}{url}", {"url": url})
        return result

    def _live_key(self, key: str) -> str:
        """``key``; or, when the object its checkpoint names was removed since (replaced, then wanted again
        after another mapping fix), the first ``key#<n>`` whose checkpoint names nothing removed: the key
        under which the object is made again. Deterministic, so a retry arrives at the same key."""
        k, n = key, 1
        while (made := self.steps.result(k)) is not None and self._removed(str(made.get("url"))):
            n += 1
            k = f"{key}#{n}"
        return k

    def _removed(self, url: str) -> bool:
        return self.steps.result(f"{_DELETED}{url}") is not None

    def _document(self, d: DocumentOpdracht, p: Profiel, zt_url: str) -> Made:
        """The document once per verzoek, bijlage and informatieobjecttype: one document even when it goes
        onto several zaken, unless their zaaktypen need different types (then one per type, the second
        with identificatie ``…-2``; ``document_identificatie``)."""
        bid = d.bijlage.id
        types = self._types.setdefault(bid, [])
        if d.informatieobjecttype not in types:
            types.append(d.informatieobjecttype)
        n = types.index(d.informatieobjecttype)
        key = f"document:{bid}" + (f":{d.informatieobjecttype}" if n else "")
        base = bid if bid.startswith(self.v.nummer) else f"{self.v.nummer}-{bid}"
        replaced_by: str | None = None
        size = d.bijlage.omvang or 0
        iot_url = self._iot(zt_url, d.informatieobjecttype)
        earlier = self.steps.result(key)
        if earlier is not None and earlier.get("informatieobjecttype") not in (None, iot_url):
            # made before under another type (the mapping was fixed, then resent): a document's type cannot
            # change in the Documenten API, so a new one is made under a key and identificatie of its own
            key, replaced_by = f"{key}@{hashlib.sha256(iot_url.encode()).hexdigest()[:6]}", iot_url
        identificatie = document_identificatie(base, n, replaced_by)
        legacy = _legacy_identificatie(base, n, replaced_by)
        # deleted as replaced, and now this type again (a fix went back): made again, under the identificatie
        # it had (free again once deleted) and a key of its own
        key = self._live_key(key)
        # inline base64 only for bytes we hold and that are small; files from the werkmap stream in parts
        inline = d.bijlage.inhoud is not None and size <= self.t.options.large_file_bytes
        body = bodies.document(
            d,
            bronorganisatie=p.bronorganisatie,
            identificatie=identificatie,
            iot_url=iot_url,
            auteur=self.t.options.auteur,
            today=self.today,
            inline=inline,
            beschrijving=self.v.advies.beschrijving() if self.v.soort is Soort.ADVIES and self.v.advies else None,
        )

        def create() -> Made:
            # an empty file (werkmap, postbus: bestandsomvang 0, no inhoud) is complete on its create: the
            # Documenten API (Open Zaak) stores it unlocked, with an empty inhoud and no bestandsdelen, so it
            # has no upload in parts and no lock to release
            if inline or not d.bijlage.heeft_inhoud or d.bijlage.omvang == 0:
                made = self._post(key, "documenten", "enkelvoudiginformatieobjecten", body)
            else:
                made = self._upload_in_parts(key, body, d.bijlage)
            return {**made, "informatieobjecttype": iot_url}

        def of_this_type(eio: dict[str, Any]) -> bool:
            return eio.get("informatieobjecttype") == iot_url

        def this_bijlage(eio: dict[str, Any]) -> bool:
            return of_this_type(eio) and eio.get("bestandsnaam") == body["bestandsnaam"]

        def find() -> Made | None:
            # a further type's or a replacement's identificatie names its type: another's is not ours (a short
            # id's "<base>-2" may be a bijlage "<base>-2"); the zaaksysteem then refuses the create as a duplicate
            ours = of_this_type if n or replaced_by else None
            found = self._find_document(
                key, identificatie, p.bronorganisatie, d.bijlage, expected_size=size or None, ours=ours
            )
            if found is None and legacy != identificatie:
                found = self._find_document(
                    key, legacy, p.bronorganisatie, d.bijlage, expected_size=size or None, ours=this_bijlage
                )
            # the type it has: a mapping fix between a lost answer and the retry leaves one of the type before
            if found is None:
                return None
            return {**found, "informatieobjecttype": found.get("informatieobjecttype") or iot_url}

        def find_listed_again() -> Made | None:
            # a later version of a verzoek lists a bijlage an earlier delivery made (STAM lists every document
            # so far; a StUF-LVO follow-up may carry the same bijlageId): its document now may be a
            # replacement a mapping fix and resend made (``<identificatie>-<6 hex of its type>``; the original
            # is deleted) and that delivery's checkpoints are not ours. So look under the identificatie of
            # every type it may have been replaced by (the catalogus's informatieobjecttypen), each adopted
            # only when of that type; the original's too. One candidate is the bijlage's document; more
            # cannot be told apart (an operator must look): Ambiguous, never a guess, never another copy.
            candidates = [found] if (found := find()) is not None else []
            types = [iot_url] + [
                str(t["url"]) for t in self.t.catalogus.informatieobjecttypen() if str(t["url"]) != iot_url
            ]
            for t in types:
                got = self._find_document(
                    key,
                    document_identificatie(base, n, t),
                    p.bronorganisatie,
                    d.bijlage,
                    expected_size=size or None,
                    ours=partial(_of_type, t),
                )
                # the current type's replacement identificatie is also what find() looked under: once, not twice
                if got is not None and all(c["url"] != got["url"] for c in candidates):
                    candidates.append({**got, "informatieobjecttype": t})
            if len(candidates) > 1:
                ids = ", ".join(f"{c.get('identificatie')} ({c['url']})" for c in candidates)
                raise Ambiguous(
                    f"bijlage {bid}: {len(candidates)} documents in the zaaksysteem ({ids}); which is its own?"
                )
            return candidates[0] if candidates else None

        if not self.v.soort.creates_zaak and self.steps.result(key) is None and not self.dry:
            # a later version of a verzoek (STAM lists every document so far): reuse what exists
            existing = find_listed_again()
            if existing is not None:
                self.steps.done(key, existing, recoverable=True)
                return existing
        made = run_step(self.steps, key, create, find)
        if made.get("informatieobjecttype") not in (None, iot_url):
            # adopted after a lost answer, but made under the type of before a mapping fix: replaced now, as a
            # resend would (a document's type cannot change), and the one adopted (linked nowhere) deleted
            replacement = self._document(d, p, zt_url)
            old = str(made["url"])
            run_step(self.steps, f"{key}:delete:{old}", lambda: self._remove(key, old))
            return replacement
        return made

    def _find_document(
        self,
        key: str,
        identificatie: str,
        bronorganisatie: str,
        bijlage: Bijlage,
        expected_size: int | None,
        ours: Callable[[dict[str, Any]], bool] | None = None,
    ) -> Made | None:
        """By identificatie and bronorganisatie (unique in the Documenten API; ``ours`` where the identificatie
        alone may be another bijlage's), and adopted only when complete: an upload in bestandsdelen that
        stopped half-way (still locked, parts missing) is resumed, never adopted; a document of another size
        is not ours and is refused."""
        if self.dry:
            return None
        found = self.t.client.find_all(
            "documenten", "enkelvoudiginformatieobjecten", identificatie=identificatie, bronorganisatie=bronorganisatie
        )
        if ours is not None:
            found = [eio for eio in found if ours(eio)]
        if not found:
            return None
        if len(found) > 1:
            raise Ambiguous(f"document {identificatie}: {len(found)} with this identificatie and bronorganisatie")
        eio = found[0]
        if eio.get("locked") and eio.get("bestandsdelen"):
            # parts not yet joined: an upload in bestandsdelen that did not reach its unlock
            left = sum(not deel.get("voltooid") for deel in eio["bestandsdelen"])
            log.info("resuming an interrupted upload", document=identificatie, parts_left=left)
            return self._resume_upload(key, eio, bijlage)
        if expected_size is not None and eio.get("bestandsomvang") not in (None, expected_size):
            raise TargetRefused(
                f"document {identificatie} exists with bestandsomvang {eio.get('bestandsomvang')}, "
                f"not the {expected_size} bytes of bijlage {bijlage.id}: not made by this delivery; check it"
            )
        made: Made = {"url": eio["url"], "identificatie": eio.get("identificatie")}
        if eio.get("informatieobjecttype"):  # the type it has (a mapping fix may have come since it was made)
            made["informatieobjecttype"] = str(eio["informatieobjecttype"])
        return made

    def _upload_in_parts(self, key: str, body: dict[str, Any], bijlage: Bijlage) -> Made:
        """Documenten API large files: create with bestandsomvang (the answer holds the lock and the
        parts), PUT each bestandsdeel, unlock. The lock and every part are checkpointed at once, so a
        retry resumes the upload; a file from the store is read one part at a time, never whole."""
        if self.dry:
            return self._post(key, "documenten", "enkelvoudiginformatieobjecten (bestandsdelen)", body)
        self.steps.called(f"{key}: POST enkelvoudiginformatieobjecten (bestandsdelen)")
        created = self.t.client.post(self.t.client.url("documenten", "enkelvoudiginformatieobjecten"), body)
        lock = str(created.get("lock") or "")
        self.steps.done(f"{key}:lock", {"url": created["url"], "lock": lock})
        return self._put_parts(key, created, bijlage, lock)

    def _resume_upload(self, key: str, eio: dict[str, Any], bijlage: Bijlage) -> Made:
        known = self.steps.result(f"{key}:lock")
        if known and known.get("url") == eio["url"] and known.get("lock"):
            return self._put_parts(key, eio, bijlage, str(known["lock"]))
        # The create's answer (and with it the lock) was lost: take the lock over. A forced unlock needs
        # the ``documenten.geforceerd-unlock`` scope; without it an operator has to step in.
        self.steps.called(f"{key}: POST {eio['url']}/unlock (geforceerd)")
        try:
            self.t.client.post(f"{eio['url']}/unlock", {})
        except TargetRefused as exc:
            raise TargetRefused(
                f"document {eio.get('identificatie')} is locked by an upload whose answer was lost and cannot be "
                f"unlocked by force ({exc}); grant documenten.geforceerd-unlock or unlock it by hand, then resend"
            ) from None
        self.steps.called(f"{key}: POST {eio['url']}/lock")
        lock = str(self.t.client.post(f"{eio['url']}/lock", {})["lock"])
        self.steps.done(f"{key}:lock", {"url": eio["url"], "lock": lock})
        return self._put_parts(key, self.t.client.get(eio["url"]), bijlage, lock)

    def _put_parts(self, key: str, eio: dict[str, Any], bijlage: Bijlage, lock: str) -> Made:
        """PUT every bestandsdeel the server does not have yet (``voltooid``; our checkpoint where the
        server does not say), each checkpointed, then unlock — only with a lock we hold: an unlock without
        one is a forced unlock (scope ``documenten.geforceerd-unlock``), never what an upload means."""
        if not lock:
            raise TargetRefused(
                f"document {eio.get('identificatie')}: the zaaksysteem created it for an upload in bestandsdelen "
                f"of {bijlage.omvang} bytes but answered without a lock; check the document and its content"
            )
        offset = 0
        with _open_bytes(bijlage) as source:
            for deel in sorted(eio.get("bestandsdelen") or [], key=lambda d: d["volgnummer"]):
                part_key = f"{key}:deel:{deel['volgnummer']}"
                have = deel.get("voltooid")
                if have is None:
                    have = self.steps.result(part_key) is not None
                if not have:
                    source.seek(offset)
                    self.steps.called(f"{key}: PUT {deel['url']}")
                    self.t.client.put_bestandsdeel(deel["url"], source.read(deel["omvang"]), lock)
                    self.steps.done(part_key, {"url": deel["url"]})
                offset += deel["omvang"]
        self.steps.called(f"{key}: POST {eio['url']}/unlock")
        self.t.client.post(f"{eio['url']}/unlock", {"lock": lock})
        return {"url": eio["url"], "identificatie": eio.get("identificatie")}

    def _status(
        self, zaak_url: str, zt: str, zt_url: str, statustype: int | str, tag: str, toelichting: str, p: Profiel
    ) -> None:
        """Set a status; an eindstatus gets the mapped resultaat first (the Zaken API closes a zaak only
        when it has one), and only an eindstatus does."""
        st_url = self._statustype(zt_url, statustype)
        if not self.dry and (rt_url := self.t._eindstatus_resultaat(zt_url, statustype, p)):
            self._resultaat(zaak_url, zt, rt_url)
        key = f"status:{tag}:{zt}"
        # microseconds: (zaak, datumStatusGezet) is unique, and two statuses may fall in one second
        body = bodies.status(zaak_url, st_url, datetime.now(UTC).isoformat(), f"{toelichting}{self._marker}")
        run_step(self.steps, key, lambda: self._post(key, "zaken", "statussen", body), lambda: self._find_status(body))

    def _resultaat(self, zaak_url: str, zt: str, rt_url: str) -> None:
        """A zaak has at most one resultaat (unique in the Zaken API), so the find is precise: ours if it
        has our resultaattype; another one is refused rather than overwritten."""
        key = f"resultaat:{zt}"
        body = {"zaak": zaak_url, "resultaattype": rt_url, "toelichting": f"Ingetrokken{self._marker}"}

        def find() -> Made | None:
            existing = self.t.client.find_all("zaken", "resultaten", zaak=zaak_url)
            if not existing:
                return None
            if existing[0].get("resultaattype") != rt_url:
                raise TargetRefused(
                    f"zaak {zaak_url} already has resultaat {existing[0].get('url')} of another resultaattype"
                )
            return {"url": existing[0]["url"], "identificatie": None}

        run_step(self.steps, key, lambda: self._post(key, "zaken", "resultaten", body), find, look_first=True)

    def _find_status(self, body: dict[str, Any]) -> Made | None:
        """Precise: by zaak and statustype, and the statustoelichting naming this message (the zaak may
        have reached this statustype before, e.g. an earlier intrekking)."""

        def ours(s: dict[str, Any]) -> bool:
            return s.get("statustoelichting") == body["statustoelichting"]

        what = f"status {body['statustoelichting']!r}"
        return self._find_exact("zaken", "statussen", ours, what, zaak=body["zaak"], statustype=body["statustype"])

    # -- follow-ups on the zaken of the verzoek -----------------------------------------------------------
    def _follow_up(self) -> None:
        """An aanvulling, advies, intrekking or wijziging gemachtigde reaches every zaak its verzoek made
        (one per zaaktype), in the order they were made, each as its own zaaktype's profile says. Every
        step key names the zaaktype, so a retry after a failure on the second zaak redoes nothing on the
        first. Not the advice zaken we made as adviseur (linked under ``<nummer>#<adviesverzoek>``): a
        follow-up of the aanvraag goes to its bevoegd gezag, not to us."""
        zaken = self.steps.zaken(self.v.nummer)
        if not zaken:
            raise WaitingError(f"no zaak known yet for verzoek {self.v.nummer}: waiting for its aanvraag")
        for zaak in zaken:
            self._follow_up_on(zaak)

    def _follow_up_on(self, zaak: Result) -> None:
        zt = str(zaak["zaaktype"])
        # what the mapping says for this zaak's own zaaktype (its profile and document types)
        plan = self.o.vervolg.get(zt)
        p = plan.profiel if plan else self.o.profiel
        documenten = plan.documenten if plan else self.o.documenten
        assert p is not None
        zaak_url = str(zaak["url"])
        zt_url = self._zaak_zaaktype(zaak_url, zt)
        label = zaak.get("identificatie") or zaak_url
        soort = self.v.soort
        if soort in (Soort.AANVULLING, Soort.ADVIES):
            first = len(self.summary)
            self._documenten(zaak_url, zt, zt_url, documenten, p)
            self.summary.insert(first, f"{soort} bij zaak {label}")
        elif soort is Soort.INTREKKING:
            if p.statustype_intrekking is not None:
                tag = f"intrekking:{self.v.datum}"
                self._status(zaak_url, zt, zt_url, p.statustype_intrekking, tag, self.v.reden or "", p)
            self.summary.append(f"intrekking op zaak {label}")
        elif soort is Soort.WIJZIGING_GEMACHTIGDE and self.v.gemachtigde:
            self._rol(
                zaak_url, zt, zt_url, p.roltype_gemachtigde, self.v.gemachtigde, "gemachtigde", f":{self.v.datum}"
            )
            self.summary.append(f"gemachtigde gewijzigd op zaak {label}")

    def _zaak_zaaktype(self, zaak_url: str, zt: str) -> str:
        """The zaaktype version the zaak has (not today's version of its identificatie)."""
        if self.dry:
            return f"<zaaktype {zt}>"
        return str(self.t.client.get(zaak_url)["zaaktype"])
