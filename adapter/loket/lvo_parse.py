"""StUF-LVO message element → canonical ``Verzoek`` (pure; depends on our reconstructed content model).

Input is an element already valid against ``xsd/lvo/lvo0312.xsd``, so required parts are present.
"""

from __future__ import annotations

import base64
from dataclasses import replace
from datetime import date

from lxml import etree

from adapter.loket.lvo import INCOMING, LVO
from adapter.model import (
    Activiteit,
    Adres,
    Advies,
    Bijlage,
    KadastraalPerceel,
    Locatie,
    Organisatie,
    Persoon,
    PuntRD,
    Soort,
    Verzoek,
)
from adapter.stuf.namespaces import STUF

_NS = {"L": LVO}


def _t(el: etree._Element | None, path: str) -> str | None:
    if el is None:
        return None
    found = el.find(path, _NS)
    if found is None or found.text is None:
        return None
    return found.text.strip() or None


def _datum(text: str | None) -> date | None:
    if not text or len(text) != 8:
        return None
    return date(int(text[:4]), int(text[4:6]), int(text[6:8]))


def _adres(el: etree._Element | None) -> Adres | None:
    if el is None:
        return None
    huisnummer = _t(el, "L:huisnummer")
    return Adres(
        straatnaam=_t(el, "L:straatnaam"),
        huisnummer=int(huisnummer) if huisnummer and huisnummer.isdigit() else None,
        huisletter=_t(el, "L:huisletter"),
        huisnummertoevoeging=_t(el, "L:huisnummertoevoeging"),
        postcode=_t(el, "L:postcode"),
        woonplaats=_t(el, "L:woonplaats"),
        bag_nummeraanduiding_id=_t(el, "L:bagNummeraanduidingId"),
    )


def _persoon(el: etree._Element | None) -> Persoon | None:
    if el is None:
        return None
    np_ = el.find("L:natuurlijkPersoon", _NS)
    nnp = el.find("L:nietNatuurlijkPersoon", _NS)
    contact = Persoon(
        natuurlijk=np_ is not None,
        correspondentieadres=_adres(el.find("L:correspondentieadres", _NS)),
        emailadres=_t(el, "L:emailadres"),
        telefoonnummer=_t(el, "L:telefoonnummer"),
    )
    if np_ is not None:
        return replace(
            contact,
            bsn=_t(np_, "L:bsn"),
            voorletters=_t(np_, "L:voorletters"),
            voorvoegsel=_t(np_, "L:voorvoegsel"),
            geslachtsnaam=_t(np_, "L:geslachtsnaam"),
        )
    return replace(
        contact,
        kvk_nummer=_t(nnp, "L:kvkNummer"),
        vestigingsnummer=_t(nnp, "L:vestigingsnummer"),
        naam=_t(nnp, "L:naam"),
    )


def _organisatie(el: etree._Element | None) -> Organisatie | None:
    oin = _t(el, "L:oin")
    return Organisatie(oin, _t(el, "L:naam")) if oin else None


def _locatie(el: etree._Element | None) -> tuple[Locatie, ...]:
    if el is None:
        return ()
    punt = el.find("L:puntRD", _NS)
    return (
        Locatie(
            adres=_adres(el.find("L:adres", _NS)),
            percelen=tuple(
                KadastraalPerceel(
                    _t(p, "L:kadastraleGemeente") or "", _t(p, "L:sectie") or "", _t(p, "L:perceelnummer") or ""
                )
                for p in el.findall("L:kadastraalPerceel", _NS)
            ),
            punt_rd=PuntRD(float(_t(punt, "L:x") or 0), float(_t(punt, "L:y") or 0)) if punt is not None else None,
        ),
    )


def _bijlagen(el: etree._Element | None) -> tuple[Bijlage, ...]:
    if el is None:
        return ()
    out = []
    for b in el.findall("L:bijlagen/L:bijlage", _NS):
        inhoud = _t(b, "L:inhoud")
        out.append(
            Bijlage(
                id=_t(b, "L:bijlageId") or "",
                bestandsnaam=_t(b, "L:bestandsnaam") or "",
                documenttype=_t(b, "L:documenttype"),
                mime_type=_t(b, "L:mimeType"),
                vertrouwelijk=(_t(b, "L:vertrouwelijk") or "false") in ("true", "1"),
                inhoud=base64.b64decode(inhoud) if inhoud else None,
            )
        )
    return tuple(out)


def _activiteiten(content: etree._Element) -> tuple[Activiteit, ...]:
    """Werkzaamheden first, then onderdelen: both are what a mapping may route on."""
    found = []
    for path in ("L:werkzaamheden/L:werkzaamheid", "L:onderdelen/L:onderdeel"):
        for w in content.findall(path, _NS):
            found.append(Activiteit(_t(w, "L:code") or "", _t(w, "L:omschrijving")))
    return tuple(found)


def parse_verzoek(message: etree._Element, ontvanger_oin: str | None = None) -> Verzoek:
    """Translate a valid StUF-LVO message element. ``ontvanger_oin`` is the StUF ontvanger's
    organisatie: routing key, and the bevoegd gezag of messages that do not name one (aanvulling, …)."""
    name = etree.QName(message).localname
    bericht = INCOMING[name]
    content = message.find(f"L:{bericht.content}", _NS)
    assert content is not None, f"{name} without {bericht.content}"
    soort = Soort(bericht.soort)
    bg = _organisatie(content.find("L:bevoegdGezag", _NS))
    if bg is None and ontvanger_oin and soort is not Soort.ADVIESAANVRAAG:
        bg = Organisatie(ontvanger_oin)
    datum_tag = {
        "aanvraag": "L:aanvraagdatum",
        "aanvulling": "L:aanvullingsdatum",
        "intrekking": "L:intrekkingsdatum",
        "wijziging": "L:wijzigingsdatum",
        "advies": "L:adviesdatum",
    }[bericht.content]
    advies = None
    if bericht.content == "advies":
        advies = Advies(
            adviesverzoek_id=_t(content, "L:adviesverzoekId") or "",
            adviseur=_organisatie(content.find("L:adviseur", _NS)) or Organisatie(""),
            datum=_datum(_t(content, "L:adviesdatum")),
            strekking=_t(content, "L:strekking"),
        )
    elif soort is Soort.ADVIESAANVRAAG:  # we are the adviseur; crossRefnummer = the requester's adviesverzoek
        cross_ref = (message.findtext(f"L:stuurgegevens/{{{STUF}}}crossRefnummer", namespaces=_NS) or "").strip()
        advies = Advies(adviesverzoek_id=cross_ref, adviseur=Organisatie(ontvanger_oin or ""))
    return Verzoek(
        bron="stuf-lvo",
        bericht=name,
        soort=soort,
        nummer=_t(content, "L:aanvraagnummer") or "",
        referentie=message.findtext(f"L:stuurgegevens/{{{STUF}}}referentienummer", namespaces=_NS),
        bevoegd_gezag=bg,
        ontvanger=Organisatie(ontvanger_oin) if ontvanger_oin else bg,
        type=_t(content, "L:aanvraagprocedure"),
        omschrijving=_t(content, "L:omschrijving"),
        toelichting=_t(content, "L:toelichting"),
        datum=_datum(_t(content, datum_tag)),
        initiatiefnemer=_persoon(content.find("L:aanvrager", _NS)),
        gemachtigde=_persoon(content.find("L:gemachtigde", _NS)),
        locaties=_locatie(content.find("L:locatie", _NS)),
        activiteiten=_activiteiten(content),
        bijlagen=_bijlagen(content),
        reden=_t(content, "L:reden"),
        advies=advies,
        bron_xml=etree.tostring(message),
    )
