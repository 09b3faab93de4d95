"""Pure builders of the StUF-ZKN 0310 (ZDS) requests, in both deployed dialects.

Every element carries the StUF attributes the official schemas require (``StUF:entiteittype``,
``StUF:verwerkingssoort``, ``StUF:noValue`` with ``xsi:nil``, ``StUF:metagegeven``): strict receivers
reject a message that lacks one (Open Forms #6171), and the tests validate every builder's output
against the official XSD set of its dialect. Texts are clipped to the schema's limits; a value that
cannot be clipped (a zaaktype code, a statustype volgnummer) raises ``ValueError``.

Both dialects share the entity content models, and the stricter ZDS 1.2 requirements (initiator, zaak
dates, document metadata) are met for both; they differ in the message element, the namespace of the
vrije berichten' children and the SOAPAction (``zds.OPERATIONS``).
"""

from __future__ import annotations

import base64
import mimetypes
from collections.abc import Sequence
from pathlib import Path

from lxml import etree

from adapter.mapping.opdracht import DocumentOpdracht, ZaakOpdracht
from adapter.model import Persoon, Soort, Verzoek
from adapter.stuf.stuurgegevens import tijdstip
from adapter.targets.stuf_zkn.zds import (
    BG,
    STUF,
    XMIME,
    ZDS11,
    ZDS12,
    ZKN,
    Bericht,
    Builder,
    Context,
    asked,
    clip,
    el,
    envelope,
    nil,
    opt,
    soap_action,
    stuf_datum,
    vertrouwelijk_aanduiding,
)

__all__ = ["ZDS11", "ZDS12", "Bericht", "Context", "envelope", "soap_action"]


# -- vrije berichten -----------------------------------------------------------------------------------


def genereer_zaak_identificatie(ctx: Context) -> Bericht:
    b = Builder(ctx, "genereerZaakIdentificatie")
    b.stuurgegevens("Di02", functie="genereerZaakidentificatie")
    return b.done()


def genereer_document_identificatie(ctx: Context) -> Bericht:
    b = Builder(ctx, "genereerDocumentIdentificatie")
    b.stuurgegevens("Di02", functie="genereerDocumentidentificatie")
    return b.done()


# -- creeerZaak ----------------------------------------------------------------------------------------


def zaaktype_code(zaaktype: str) -> str:
    if not 1 <= len(zaaktype) <= 10:
        raise ValueError(f"zaaktype code {zaaktype!r} must be 1..10 characters (StUF-ZKN Code)")
    return zaaktype


def _betrokkene(parent: etree._Element, persoon: Persoon) -> list[tuple[str, str]]:
    """``gerelateerde`` content for a person; returns extra elements that have no StUF place (KvK)."""
    extra: list[tuple[str, str]] = []
    if persoon.natuurlijk:
        nps = el(parent, ZKN, "natuurlijkPersoon", entiteittype="NPS", verwerkingssoort="T")
        if persoon.bsn:
            el(nps, BG, "inp.bsn", persoon.bsn)
        else:
            nil(nps, BG, "inp.bsn", "waardeOnbekend")
        el(nps, BG, "authentiek", "J" if persoon.bsn else "N").set(f"{{{STUF}}}metagegeven", "true")
        opt(nps, BG, "geslachtsnaam", clip(persoon.geslachtsnaam, 200))
        opt(nps, BG, "voorvoegselGeslachtsnaam", clip(persoon.voorvoegsel, 10))
        opt(nps, BG, "voorletters", clip(persoon.voorletters, 20))
    elif persoon.vestigingsnummer:
        ves = el(parent, ZKN, "vestiging", entiteittype="VES", verwerkingssoort="T")
        el(ves, BG, "vestigingsNummer", persoon.vestigingsnummer)
        el(ves, BG, "authentiek", "J").set(f"{{{STUF}}}metagegeven", "true")
        opt(ves, BG, "handelsnaam", clip(persoon.naam, 200))
        if persoon.kvk_nummer:
            extra.append(("kvkNummer", persoon.kvk_nummer))
    else:
        # inn.nnpId is the 9-digit RSIN; a KvK-nummer (8 digits) does not fit, so it travels as extraElement
        nnp = el(parent, ZKN, "nietNatuurlijkPersoon", entiteittype="NNP", verwerkingssoort="T")
        nil(nnp, BG, "inn.nnpId", "waardeOnbekend")
        el(nnp, BG, "authentiek", "N").set(f"{{{STUF}}}metagegeven", "true")
        opt(nnp, BG, "statutaireNaam", clip(persoon.naam, 500))
        if persoon.kvk_nummer:
            extra.append(("kvkNummer", persoon.kvk_nummer))
    return extra


def _rol(
    obj: etree._Element,
    name: str,
    entiteittype: str,
    persoon: Persoon | None,
    when: str,
    toelichting: str | None = None,
) -> None:
    if persoon is None:
        nil(obj, ZKN, name, "waardeOnbekend", entiteittype, "T")
        return
    rol = el(obj, ZKN, name, entiteittype=entiteittype, verwerkingssoort="T")
    extra = _betrokkene(el(rol, ZKN, "gerelateerde"), persoon)
    opt(rol, ZKN, "toelichting", clip(toelichting, 1000))
    el(rol, STUF, "tijdstipRegistratie", when)
    if extra:
        ee = el(rol, STUF, "extraElementen")
        for naam, value in extra:
            el(ee, STUF, "extraElement", value).set("naam", naam)


def _locatie_aanduiding(verzoek: Verzoek) -> str | None:
    loc = verzoek.hoofdlocatie
    if loc is None:
        return None
    if loc.adres and loc.adres.straatnaam:
        a = loc.adres
        nr = "".join(str(x) for x in (a.huisnummer, a.huisletter) if x)
        nr += f"-{a.huisnummertoevoeging}" if a.huisnummertoevoeging else ""
        plaats = " ".join(x for x in (a.postcode, a.woonplaats) if x)
        return clip(f"{a.straatnaam} {nr}".strip() + (f", {plaats}" if plaats else ""), 80)
    if loc.percelen:
        return clip(", ".join(p.aanduiding for p in loc.percelen), 80)
    return None


def creeer_zaak(ctx: Context, zaak: ZaakOpdracht, verzoek: Verzoek, identificatie: str) -> Bericht:
    """creeerZaak_ZakLk01 / zakLk01 (mutatiesoort T): the zaak with kenmerk, zaaktype, initiator, gemachtigde."""
    p = zaak.profiel
    today = stuf_datum(ctx.now.date())
    when = tijdstip(ctx.now)
    b = Builder(ctx, "creeerZaak")
    b.stuurgegevens("Lk01", entiteittype="ZAK")
    b.lk01_parameters("T")
    obj = el(b.root, ZKN, "object", entiteittype="ZAK", verwerkingssoort="T")
    el(obj, ZKN, "identificatie", identificatie)
    opt(obj, ZKN, "omschrijving", clip(p.omschrijving, 80))
    opt(obj, ZKN, "toelichting", clip(p.toelichting, 1000))
    if verzoek.nummer:
        k = el(obj, ZKN, "kenmerk")
        el(k, ZKN, "kenmerk", clip(verzoek.nummer, 40))
        el(k, ZKN, "bron", clip(p.kenmerk_bron, 40) or "Omgevingsloket")
    aanduiding = _locatie_aanduiding(verzoek)
    if aanduiding:
        azo = el(obj, ZKN, "anderZaakObject")
        el(azo, ZKN, "omschrijving", "locatie")
        el(azo, ZKN, "aanduiding", aanduiding)
    el(obj, ZKN, "startdatum", stuf_datum(verzoek.datum) if verzoek.datum else today)
    el(obj, ZKN, "registratiedatum", today)
    el(obj, ZKN, "zaakniveau", "1")
    el(obj, ZKN, "deelzakenIndicatie", "N")
    el(obj, STUF, "tijdstipRegistratie", when)
    is_van = el(obj, ZKN, "isVan", entiteittype="ZAKZKT", verwerkingssoort="T")
    zkt = el(is_van, ZKN, "gerelateerde", entiteittype="ZKT", verwerkingssoort="I")
    el(zkt, ZKN, "code", zaaktype_code(zaak.zaaktype))
    if verzoek.gemachtigde is not None:
        _rol(obj, "heeftAlsGemachtigde", "ZAKBTRGMC", verzoek.gemachtigde, when)
    _rol(obj, "heeftAlsInitiator", "ZAKBTRINI", verzoek.initiatiefnemer, when)
    return b.done()


# -- updateZaak: a gemachtigde added -------------------------------------------------------------------


def update_zaak_gemachtigde(ctx: Context, zaak_identificatie: str, gemachtigde: Persoon, toelichting: str) -> Bericht:
    """updateZaak_ZakLk01 / zakLk01 (mutatiesoort W): the new object gains a ``heeftAlsGemachtigde``
    (verwerkingssoort T); the old object names that relation as empty. The relation's toelichting lets a
    retry recognise it as this message's."""
    when = tijdstip(ctx.now)
    b = Builder(ctx, "updateZaak")
    b.stuurgegevens("Lk01", entiteittype="ZAK")
    b.lk01_parameters("W")
    oud = el(b.root, ZKN, "object", entiteittype="ZAK", verwerkingssoort="W")
    el(oud, ZKN, "identificatie", zaak_identificatie)
    nil(oud, ZKN, "heeftAlsGemachtigde", "geenWaarde", "ZAKBTRGMC", "T")
    nieuw = el(b.root, ZKN, "object", entiteittype="ZAK", verwerkingssoort="W")
    el(nieuw, ZKN, "identificatie", zaak_identificatie)
    _rol(nieuw, "heeftAlsGemachtigde", "ZAKBTRGMC", gemachtigde, when, toelichting)
    return b.done()


# -- voegZaakdocumentToe -----------------------------------------------------------------------------


def formaat(doc: DocumentOpdracht) -> str:
    """The mime type: as delivered, else guessed from the file name."""
    return doc.bijlage.mime_type or mimetypes.guess_type(doc.bijlage.bestandsnaam)[0] or "application/octet-stream"


def voeg_zaakdocument_toe(
    ctx: Context,
    doc: DocumentOpdracht,
    verzoek: Verzoek,
    identificatie: str,
    zaken: Sequence[str],
    auteur: str,
) -> Bericht:
    """voegZaakdocumentToe_EdcLk01 / edcLk01: document metadata, base64 inhoud, relevant for ``zaken``.

    Bytes come inline or from the file store (``bestand``: postbus, werkmap). A bijlage without bytes is sent
    with metadata only: ZDS 1.2 requires an ``inhoud`` element, so it is empty there; ZDS 1.1 leaves it out.
    """
    if not zaken:
        raise ValueError("a zaakdocument needs at least one zaak")
    today = stuf_datum(ctx.now.date())
    when = tijdstip(ctx.now)
    mime = formaat(doc)
    b = Builder(ctx, "voegZaakdocumentToe")
    b.stuurgegevens("Lk01", entiteittype="EDC")
    b.lk01_parameters("T")
    obj = el(b.root, ZKN, "object", entiteittype="EDC", verwerkingssoort="T")
    el(obj, ZKN, "identificatie", identificatie)
    el(obj, ZKN, "dct.omschrijving", clip(doc.informatieobjecttype, 80) or "Bijlage")
    el(obj, ZKN, "creatiedatum", stuf_datum(verzoek.datum) if verzoek.datum else today)
    el(obj, ZKN, "ontvangstdatum", stuf_datum(verzoek.datum) if verzoek.datum else today)
    el(obj, ZKN, "titel", clip(doc.titel, 200) or clip(doc.bijlage.bestandsnaam, 200) or identificatie)
    # an advice document says who advised and the strekking (ZDS Toelichting: at most 1000 characters)
    advies = verzoek.advies.beschrijving() if verzoek.soort is Soort.ADVIES and verzoek.advies else None
    opt(obj, ZKN, "beschrijving", clip(advies or doc.bijlage.documenttype, 1000))
    el(obj, ZKN, "formaat", mime[:85])
    el(obj, ZKN, "taal", "nld")
    el(obj, ZKN, "vertrouwelijkAanduiding", vertrouwelijk_aanduiding(doc.vertrouwelijkheidaanduiding))
    el(obj, ZKN, "auteur", clip(auteur, 200) or "onbekend")
    data = doc.bijlage.inhoud
    if data is None and doc.bijlage.bestand is not None:
        data = Path(doc.bijlage.bestand).read_bytes()  # from the file store (postbus, werkmap): StUF has it inline
    if data is not None or ctx.dialect == ZDS12:
        inhoud = el(obj, ZKN, "inhoud", base64.b64encode(data or b"").decode("ascii"))
        inhoud.set(f"{{{XMIME}}}contentType", mime)
        inhoud.set(f"{{{STUF}}}bestandsnaam", (doc.bijlage.bestandsnaam or identificatie)[:255])
    el(obj, STUF, "tijdstipRegistratie", when)
    for zaak_id in zaken:
        rel = el(obj, ZKN, "isRelevantVoor", entiteittype="EDCZAK", verwerkingssoort="T")
        z = el(rel, ZKN, "gerelateerde", entiteittype="ZAK", verwerkingssoort="I")
        el(z, ZKN, "identificatie", zaak_id)
        el(rel, STUF, "tijdstipRegistratie", when)
    return b.done()


# -- actualiseerZaakstatus ----------------------------------------------------------------------------


def actualiseer_zaakstatus(
    ctx: Context,
    zaak_identificatie: str,
    zaaktype: str,
    volgnummer: int,
    toelichting: str | None,
    medewerker: str | None,
    gezet: str | None = None,
) -> Bericht:
    """actualiseerZaakstatus_ZakLk01 / zakLk01 (mutatiesoort W): old and new zaak, the new one with a status.

    The statustype is named by zaaktype code + volgnummer; its omschrijving is not known here, so it is
    sent as unknown (``waardeOnbekend``). ``isGezetDoor`` is the configured medewerker, else nil.
    ``gezet`` (StUF Tijdstip) is the ``datumStatusGezet``: the plugin fixes it once per delivery, so a
    retry sends the same value and can recognise its own status by it (default: ``ctx.now``).
    """
    if not 1 <= volgnummer <= 9999:
        raise ValueError(f"statustype volgnummer {volgnummer} must be 1..9999")
    when = gezet or tijdstip(ctx.now)
    b = Builder(ctx, "actualiseerZaakstatus")
    b.stuurgegevens("Lk01", entiteittype="ZAK")
    b.lk01_parameters("W")
    oud = el(b.root, ZKN, "object", entiteittype="ZAK", verwerkingssoort="W")
    el(oud, ZKN, "identificatie", zaak_identificatie)
    nil(oud, ZKN, "heeft", "geenWaarde", "ZAKSTT", "T")
    nieuw = el(b.root, ZKN, "object", entiteittype="ZAK", verwerkingssoort="W")
    el(nieuw, ZKN, "identificatie", zaak_identificatie)
    heeft = el(nieuw, ZKN, "heeft", entiteittype="ZAKSTT", verwerkingssoort="T")
    stt = el(heeft, ZKN, "gerelateerde", entiteittype="STT", verwerkingssoort="I")
    el(stt, ZKN, "zkt.code", zaaktype_code(zaaktype))
    el(stt, ZKN, "volgnummer", str(volgnummer))
    nil(stt, ZKN, "omschrijving", "waardeOnbekend")
    opt(heeft, ZKN, "toelichting", clip(toelichting, 1000))
    el(heeft, ZKN, "datumStatusGezet", when)
    if medewerker:
        door = el(heeft, ZKN, "isGezetDoor", entiteittype="ZAKSTTBTR", verwerkingssoort="T")
        mdw = el(el(door, ZKN, "gerelateerde"), ZKN, "medewerker", entiteittype="MDW", verwerkingssoort="I")
        el(mdw, ZKN, "identificatie", medewerker[:24])
    else:
        nil(heeft, ZKN, "isGezetDoor", "waardeOnbekend", "ZAKSTTBTR", "T")
    return b.done()


# -- vragen (to recognise what an uncertain earlier attempt created) -------------------------------------


def _lv01(ctx: Context, operation: str, zaak_identificatie: str) -> tuple[Builder, etree._Element]:
    b = Builder(ctx, operation)
    b.stuurgegevens("Lv01", entiteittype="ZAK")
    p = el(b.root, ZKN, "parameters")
    el(p, STUF, "sortering", "1")
    el(p, STUF, "indicatorVervolgvraag", "false")
    gelijk = el(b.root, ZKN, "gelijk", entiteittype="ZAK")
    el(gelijk, ZKN, "identificatie", zaak_identificatie)
    scope = el(el(b.root, ZKN, "scope"), ZKN, "object", entiteittype="ZAK")
    asked(scope, ZKN, "identificatie")
    return b, scope


def geef_zaakdetails(ctx: Context, zaak_identificatie: str) -> Bericht:
    """geefZaakdetails_ZakLv01 / zakLv01: does a zaak with this identificatie exist, and is it ours?

    The scope asks what a retry compares: the kenmerken (verzoeknummer), the zaaktype code, every
    gemachtigde with its identity and toelichting, and every status with its volgnummer, toelichting
    and ``datumStatusGezet``.
    """
    b, scope = _lv01(ctx, "geefZaakdetails", zaak_identificatie)
    asked(scope, ZKN, "kenmerk")
    is_van = el(scope, ZKN, "isVan", entiteittype="ZAKZKT")
    asked(el(is_van, ZKN, "gerelateerde", entiteittype="ZKT"), ZKN, "code")
    gmc = el(scope, ZKN, "heeftAlsGemachtigde", entiteittype="ZAKBTRGMC")
    wie = el(gmc, ZKN, "gerelateerde")
    asked(el(wie, ZKN, "natuurlijkPersoon", entiteittype="NPS"), BG, "inp.bsn")
    asked(el(wie, ZKN, "nietNatuurlijkPersoon", entiteittype="NNP"), BG, "inn.nnpId")
    asked(el(wie, ZKN, "vestiging", entiteittype="VES"), BG, "vestigingsNummer")
    asked(gmc, ZKN, "toelichting")
    heeft = el(scope, ZKN, "heeft", entiteittype="ZAKSTT")
    asked(el(heeft, ZKN, "gerelateerde", entiteittype="STT"), ZKN, "volgnummer")
    asked(heeft, ZKN, "toelichting")
    asked(heeft, ZKN, "datumStatusGezet")
    return b.done()


def geef_lijst_zaakdocumenten(ctx: Context, zaak_identificatie: str) -> Bericht:
    """geefLijstZaakdocumenten_ZakLv01 / zakLv01: the identificaties of the zaak's documents."""
    b, scope = _lv01(ctx, "geefLijstZaakdocumenten", zaak_identificatie)
    rel = el(scope, ZKN, "heeftRelevant", entiteittype="ZAKEDC")
    asked(el(rel, ZKN, "gerelateerde", entiteittype="EDC"), ZKN, "identificatie")
    return b.done()
