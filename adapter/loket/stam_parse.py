"""STAM verzoek element → canonical ``Verzoek`` (pure; depends on our reconstructed ``xsd/stam/verzoek.xsd``).

Input is an element already valid against that schema, so required parts are present. The files of the
verzoek are downloaded separately from the werkmap; pass what is known about them as ``bijlage_bestanden``.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import date, datetime

from lxml import etree

from adapter.loket.stam import DOEL_SOORT, GEEN_BSN, VERZOEK, is_kopie
from adapter.model import (
    Activiteit,
    Adres,
    Bijlage,
    KadastraalPerceel,
    Locatie,
    Organisatie,
    Persoon,
    PuntRD,
    Specificatie,
    Verzoek,
)

_NS = {"V": VERZOEK}

#: documentId -> (path in the file store, size in bytes, sha256 hex)
BijlageBestanden = Mapping[str, tuple[str, int, str]]


def _t(el: etree._Element | None, path: str) -> str | None:
    if el is None:
        return None
    found = el.find(path, _NS)
    if found is None or found.text is None:
        return None
    return found.text.strip() or None


def _datum(text: str | None) -> date | None:
    """The date as written (local date of the offset given), not converted to UTC."""
    if not text:
        return None
    try:
        return datetime.fromisoformat(text).date()
    except ValueError:
        try:
            return date.fromisoformat(text[:10])
        except ValueError:
            return None


def _adres(el: etree._Element | None) -> Adres | None:
    if el is None or not any(isinstance(c.tag, str) for c in el):
        return None
    huisnummer = _t(el, "V:huisnummer")
    return Adres(
        straatnaam=_t(el, "V:straatnaam"),
        huisnummer=int(huisnummer) if huisnummer and huisnummer.isdigit() else None,
        huisletter=_t(el, "V:huisletter"),
        huisnummertoevoeging=_t(el, "V:huisnummertoevoeging"),
        postcode=_t(el, "V:postcode"),
        woonplaats=_t(el, "V:woonplaatsnaam"),
        bag_nummeraanduiding_id=_t(el, "V:bagNummeraanduidingId"),
    )


def _postadres(el: etree._Element | None) -> Adres | None:
    """The Dutch address of a correspondentieAdres/postAdres: binnenlands, else postbus (as straatnaam)."""
    if el is None:
        return None
    binnen = _adres(el.find("V:binnenlandsAdres", _NS))
    if binnen is not None:
        return binnen
    afw = el.find("V:afwijkendAdres", _NS)
    if afw is None:
        return None
    nummer = _t(afw, "V:postbusnummer") or _t(afw, "V:antwoordnummer")
    soort = "Postbus" if _t(afw, "V:postbusnummer") else "Antwoordnummer"
    return Adres(
        straatnaam=soort if nummer else None,
        huisnummer=int(nummer) if nummer else None,
        postcode=_t(afw, "V:postcode"),
        woonplaats=_t(afw, "V:woonplaatsnaam"),
    )


def _persoon(el: etree._Element | None) -> Persoon | None:
    if el is None:
        return None
    np_ = el.find("V:natuurlijkPersoon", _NS)
    if np_ is not None:
        bsn = _t(np_, "V:bsn")
        return Persoon(
            natuurlijk=True,
            bsn=None if bsn == GEEN_BSN else bsn,
            voorletters=_t(np_, "V:voorletters"),
            voorvoegsel=_t(np_, "V:voorvoegsel"),
            geslachtsnaam=_t(np_, "V:achternaam"),
            correspondentieadres=_postadres(np_.find("V:correspondentieAdres", _NS))
            or _adres(np_.find("V:verblijfsadres", _NS)),
            emailadres=_t(np_, "V:emailadres"),
            telefoonnummer=_t(np_, "V:telefoonnummer"),
        )
    nnp = el.find("V:nietNatuurlijkPersoon", _NS)
    if nnp is None:
        return None
    return Persoon(
        natuurlijk=False,
        kvk_nummer=_t(nnp, "V:kvkNummer"),
        vestigingsnummer=_t(nnp, "V:vestigingsnummer"),
        naam=_t(nnp, "V:naam"),
        correspondentieadres=_postadres(nnp.find("V:postAdres", _NS)) or _adres(nnp.find("V:bezoekadres", _NS)),
        emailadres=_t(nnp, "V:emailadres"),
        telefoonnummer=_t(nnp, "V:telefoonnummer"),
    )


def _organisatie(el: etree._Element | None) -> Organisatie | None:
    oin = _t(el, "V:oin")
    return Organisatie(oin, _t(el, "V:naam")) if oin else None


def _locaties(root: etree._Element) -> tuple[Locatie, ...]:
    """Every projectlocatie in order (the first places the zaak). Polygons and ETRS points stay in bron_xml."""
    out = []
    for pl in root.findall("V:projectlocaties/V:projectlocatie", _NS):
        punt = pl.find("V:rdPunt", _NS)
        out.append(
            Locatie(
                adres=_adres(pl.find("V:adresAanduiding", _NS)),
                percelen=tuple(
                    KadastraalPerceel(
                        _t(k, "V:kadastraleGemeente") or "", _t(k, "V:sectie") or "", _t(k, "V:perceelnummer") or ""
                    )
                    for k in pl.findall("V:kadastraleGegevens", _NS)
                ),
                punt_rd=PuntRD(float(_t(punt, "V:x") or 0), float(_t(punt, "V:y") or 0)) if punt is not None else None,
            )
        )
    return tuple(out)


def _specificatie_elementen(root: etree._Element) -> list[etree._Element]:
    """Top-level specificaties (contract example) first, then those per projectactiviteit (real STAM)."""
    return root.findall("V:specificaties/V:specificatie", _NS) + root.findall(
        "V:projectactiviteiten/V:projectactiviteit/V:specificaties/V:specificatie", _NS
    )


def _specificaties(specs: list[etree._Element]) -> tuple[Specificatie, ...]:
    out = []
    for s in specs:
        antwoorden = [a.text.strip() for a in s.findall("V:antwoord", _NS) if a.text and a.text.strip()]
        out.append(Specificatie(_t(s, "V:vraagId") or "", _t(s, "V:vraagtekst"), "; ".join(antwoorden) or None))
    return tuple(out)


def _bijlagen(
    root: etree._Element, specs: list[etree._Element], bestanden: BijlageBestanden | None
) -> tuple[Bijlage, ...]:
    """Documents of gevraagde bijlagen, then verzoekbijlages; a documentId listed twice counts once."""
    found: list[tuple[etree._Element, str | None]] = []
    for s in specs:
        for gb in s.findall("V:gevraagdeBijlage", _NS):
            soort = _t(gb, "V:documentsoortDSO")
            found += [(d, soort) for d in gb.findall("V:documenten/V:document", _NS)]
    for vb in root.findall("V:verzoekbijlages/V:verzoekbijlage", _NS):
        soort = _t(vb, "V:documentsoortDSO")
        found += [(d, soort) for d in vb.findall("V:document", _NS)]
    out: dict[str, Bijlage] = {}
    for d, soort in found:
        doc_id = _t(d, "V:documentId") or ""
        if doc_id in out:
            continue
        bestand = (bestanden or {}).get(doc_id)
        out[doc_id] = Bijlage(
            id=doc_id,
            bestandsnaam=_t(d, "V:bestandsnaam") or "",
            documenttype=_t(d, "V:documentsoort") or soort,
            mime_type=_t(d, "V:mimeType"),
            vertrouwelijk=(_t(d, "V:vertrouwelijk") or "false") in ("true", "1"),
            bestand=bestand[0] if bestand else None,
            grootte=bestand[1] if bestand else None,
            sha256=bestand[2] if bestand else None,
        )
    return tuple(out.values())


def _ontvanger(bg: Organisatie | None, ui: Organisatie | None, own_oins: Collection[str]) -> Organisatie | None:
    """Our side: the bevoegd gezag if it is ours, else the uitvoerende instantie if that is ours, else the
    bevoegd gezag (a verzoek for nobody we know; routing will refuse it)."""
    if bg is not None and bg.oin in own_oins:
        return bg
    if ui is not None and ui.oin in own_oins:
        return ui
    return bg


def parse_stam_verzoek(
    el: etree._Element,
    own_oins: Collection[str],
    bijlage_bestanden: BijlageBestanden | None = None,
) -> Verzoek:
    """Translate a schema-valid STAM ``verzoek`` element. ``own_oins``: the OINs we act for (bevoegd gezag
    and/or behandeldienst). ``bijlage_bestanden``: documentId -> (file-store path, size, sha256) of the
    documents already downloaded; others get ``bestand=None`` (not here yet)."""
    if etree.QName(el) != etree.QName(VERZOEK, "verzoek"):
        raise ValueError(f"not a STAM verzoek: {el.tag}")
    bg = _organisatie(el.find("V:bevoegdGezag", _NS))
    ui = _organisatie(el.find("V:uitvoerendeInstantie", _NS))
    volgnummer = _t(el, "V:volgnummer")
    specs = _specificatie_elementen(el)
    return Verzoek(
        bron="stam",
        bericht="verzoek",
        soort=DOEL_SOORT[_t(el, "V:doel") or ""],
        nummer=_t(el, "V:verzoeknummer") or "",
        bevoegd_gezag=bg,
        ontvanger=_ontvanger(bg, ui, own_oins),
        volgnummer=int(volgnummer) if volgnummer and volgnummer.isdigit() else None,
        referentie=f"{_t(el, 'V:verzoeknummer') or ''}/{volgnummer or ''}",
        type=_t(el, "V:type"),
        omschrijving=_t(el, "V:naam"),
        datum=_datum(_t(el, "V:indiendatum")),
        uitvoerende_instantie=ui,
        initiatiefnemer=_persoon(el.find("V:initiatiefnemer", _NS)),
        gemachtigde=_persoon(el.find("V:gemachtigde", _NS)),
        locaties=_locaties(el),
        activiteiten=tuple(
            Activiteit(_t(a, "V:activiteitId") or "", _t(a, "V:activiteitNaam"))
            for a in el.findall("V:projectactiviteiten/V:projectactiviteit", _NS)
        ),
        specificaties=_specificaties(specs),
        bijlagen=_bijlagen(el, specs, bijlage_bestanden),
        bron_xml=etree.tostring(el),
    )


def is_kopiebericht(verzoek: Verzoek, own_oins: Collection[str]) -> bool:
    """True when the verzoek names an uitvoerende instantie that is not ours: store it, create no zaak."""
    ui = verzoek.uitvoerende_instantie
    return is_kopie(ui.oin if ui else None, own_oins)
