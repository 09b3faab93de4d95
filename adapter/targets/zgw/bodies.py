"""Request bodies for the ZGW APIs (pure: Opdracht parts + URLs in, JSON dicts out)."""

from __future__ import annotations

import base64
from datetime import date
from typing import Any

from pyproj import Transformer

from adapter.mapping.engine import bounded_identificatie
from adapter.mapping.opdracht import DocumentOpdracht, Profiel
from adapter.model import Adres, KadastraalPerceel, Persoon, PuntRD, Verzoek


def zaak_identificatie(profiel: Profiel) -> str | None:
    """The zaak's identificatie, the same in the create and in the find that recognises it after a lost
    answer: the mapping's ``zaak_identificatie`` when it fits the Zaken API's 40 characters, else its first
    33, ``-`` and 6 hex of a hash of all of it (as document identificaties): deterministic, and never shared
    by two long ones that agree in their first 40 characters."""
    return bounded_identificatie(profiel.zaak_identificatie) if profiel.zaak_identificatie else None


def legacy_zaak_identificatie(profiel: Profiel) -> str | None:
    """What releases before 2 December 2026 sent for a long ``zaak_identificatie`` (its first 40 characters,
    while they looked for the whole): still looked for, so a zaak one of them made is found again."""
    ident = profiel.zaak_identificatie
    return ident[:40] if ident and zaak_identificatie(profiel) != ident else None


def zaak(profiel: Profiel, verzoek: Verzoek, zaaktype_url: str, today: date) -> dict[str, Any]:
    body: dict[str, Any] = {
        "bronorganisatie": profiel.bronorganisatie,
        "zaaktype": zaaktype_url,
        "verantwoordelijkeOrganisatie": profiel.verantwoordelijke_organisatie,
        "startdatum": (verzoek.datum or today).isoformat(),
        "registratiedatum": today.isoformat(),
        "omschrijving": profiel.omschrijving[:80],
        "toelichting": profiel.toelichting[:1000],
        "vertrouwelijkheidaanduiding": profiel.vertrouwelijkheidaanduiding,
        "kenmerken": [{"kenmerk": verzoek.nummer[:40], "bron": profiel.kenmerk_bron[:40]}],
    }
    if ident := zaak_identificatie(profiel):
        body["identificatie"] = ident
    punt = verzoek.hoofdlocatie.punt_rd if verzoek.hoofdlocatie else None
    if punt is not None:
        body["zaakgeometrie"] = zaakgeometrie(punt)
    return body


_RD_TO_WGS84: Transformer | None = None


def zaakgeometrie(punt: PuntRD) -> dict[str, Any]:
    """The verzoek's point as GeoJSON in WGS84 (the Zaken API's only Content-Crs, EPSG:4326): the loket
    gives Rijksdriehoek (EPSG:28992); pyproj does the datum transformation exactly."""
    global _RD_TO_WGS84
    if _RD_TO_WGS84 is None:
        _RD_TO_WGS84 = Transformer.from_crs("EPSG:28992", "EPSG:4326", always_xy=True)
    lon, lat = _RD_TO_WGS84.transform(punt.x, punt.y)
    return {"type": "Point", "coordinates": [round(lon, 7), round(lat, 7)]}


#: betrokkeneType → (the field of betrokkeneIdentificatie that identifies the betrokkene, the Zaken API's
#: list filter on it): how a retry recognises a rol it made.
IDENTITY: dict[str, tuple[str, str]] = {
    "natuurlijk_persoon": ("inpBsn", "betrokkeneIdentificatie__natuurlijkPersoon__inpBsn"),
    "vestiging": ("vestigingsNummer", "betrokkeneIdentificatie__vestiging__vestigingsNummer"),
    "niet_natuurlijk_persoon": ("annIdentificatie", "betrokkeneIdentificatie__nietNatuurlijkPersoon__annIdentificatie"),
}

#: objectType → the objectIdentificatie fields that identify a zaakobject we send.
OBJECT_KEYS: dict[str, tuple[str, ...]] = {
    "adres": ("identificatie", "postcode", "huisnummer", "gorOpenbareRuimteNaam"),
    "kadastrale_onroerende_zaak": ("kadastraleIdentificatie",),
    "overige": ("overigeData",),
}


def betrokkene(p: Persoon) -> tuple[str, dict[str, Any]]:
    """(betrokkeneType, betrokkeneIdentificatie) for a person of the verzoek."""
    if p.natuurlijk:
        ident = {
            "inpBsn": p.bsn or "",
            "geslachtsnaam": (p.geslachtsnaam or "")[:200],
            "voorvoegselGeslachtsnaam": (p.voorvoegsel or "")[:80],
            "voorletters": (p.voorletters or "")[:20],
        }
        return "natuurlijk_persoon", ident
    if p.vestigingsnummer:
        return "vestiging", {
            "vestigingsNummer": p.vestigingsnummer,
            "kvkNummer": p.kvk_nummer or "",
            "handelsnaam": [p.naam or ""],
        }
    return "niet_natuurlijk_persoon", {"annIdentificatie": (p.kvk_nummer or "")[:17], "statutaireNaam": p.naam or ""}


def _naam(p: Persoon) -> str:
    if not p.natuurlijk:
        return p.naam or ""
    return " ".join(x for x in (p.voorletters, p.voorvoegsel, p.geslachtsnaam) if x)


def adres(a: Adres) -> dict[str, Any]:
    """A correspondentieadres in the Zaken API's address shape (VerblijfsAdres)."""
    out: dict[str, Any] = {
        "aoaIdentificatie": (a.bag_nummeraanduiding_id or "")[:100],
        "wplWoonplaatsNaam": (a.woonplaats or "")[:80],
        "gorOpenbareRuimteNaam": (a.straatnaam or "")[:80],
        "aoaHuisnummer": a.huisnummer or 0,
    }
    if a.postcode:
        out["aoaPostcode"] = a.postcode.replace(" ", "")[:7]
    if a.huisletter:
        out["aoaHuisletter"] = a.huisletter[:1]
    if a.huisnummertoevoeging:
        out["aoaHuisnummertoevoeging"] = a.huisnummertoevoeging[:4]
    return out


def rol(zaak_url: str, roltype_url: str, p: Persoon, toelichting: str) -> dict[str, Any]:
    """A rol with what the message says of the person: identity, e-mail and telephone as the
    ``contactpersoonRol`` (for a natuurlijk persoon: the betrokkene self, as the API describes it), and the
    correspondentieadres in the one address field the rol has for that betrokkeneType (the Zaken API 1.5
    has no separate correspondence address)."""
    soort, ident = betrokkene(p)
    body: dict[str, Any] = {
        "zaak": zaak_url,
        "betrokkeneType": soort,
        "roltype": roltype_url,
        "roltoelichting": toelichting,
        "betrokkeneIdentificatie": ident,
    }
    if p.emailadres or p.telefoonnummer:
        contact: dict[str, Any] = {"naam": _naam(p)[:200] or "onbekend"}
        if p.emailadres:
            contact["emailadres"] = p.emailadres[:254]
        if p.telefoonnummer:
            contact["telefoonnummer"] = p.telefoonnummer[:20]
        body["contactpersoonRol"] = contact
    a = p.correspondentieadres
    if a is not None and a.straatnaam and a.woonplaats:
        if soort == "niet_natuurlijk_persoon":
            ident["bezoekadres"] = ", ".join(
                x for x in (f"{a.straatnaam} {a.huisnummer or ''}".strip(), a.postcode, a.woonplaats) if x
            )[:1000]
        else:
            ident["verblijfsadres"] = adres(a)
    return body


def zaakobject_adres(zaak_url: str, a: Adres) -> dict[str, Any]:
    ident: dict[str, Any] = {
        "identificatie": a.bag_nummeraanduiding_id or "",
        "wplWoonplaatsNaam": (a.woonplaats or "")[:80],
        "gorOpenbareRuimteNaam": (a.straatnaam or "")[:80],
        "huisnummer": a.huisnummer or 0,
    }
    if a.huisletter:
        ident["huisletter"] = a.huisletter[:1]
    if a.huisnummertoevoeging:
        ident["huisnummertoevoeging"] = a.huisnummertoevoeging[:4]
    if a.postcode:
        ident["postcode"] = a.postcode[:7]
    return {"zaak": zaak_url, "objectType": "adres", "relatieomschrijving": "locatie", "objectIdentificatie": ident}


def zaakobject_perceel(zaak_url: str, p: KadastraalPerceel) -> dict[str, Any]:
    return {
        "zaak": zaak_url,
        "objectType": "kadastrale_onroerende_zaak",
        "relatieomschrijving": "locatie",
        "objectIdentificatie": {
            "kadastraleIdentificatie": f"{p.kadastrale_gemeente}{p.sectie}{p.perceelnummer}"[:100],
            "kadastraleAanduiding": p.aanduiding,
        },
    }


def zaakobject_punt(zaak_url: str, punt: PuntRD) -> dict[str, Any]:
    """A projectlocatie that is only a point (RD, EPSG:28992): an ``overige`` zaakobject carrying it."""
    return {
        "zaak": zaak_url,
        "objectType": "overige",
        "objectTypeOverige": "projectlocatie",
        "relatieomschrijving": "locatie",
        "objectIdentificatie": {"overigeData": {"puntRD": {"x": punt.x, "y": punt.y}, "crs": "EPSG:28992"}},
    }


def document(
    d: DocumentOpdracht,
    *,
    bronorganisatie: str,
    identificatie: str,
    iot_url: str,
    auteur: str,
    today: date,
    inline: bool,
    beschrijving: str | None = None,
) -> dict[str, Any]:
    """An enkelvoudiginformatieobject; ``beschrijving`` (an advice document's ``Advies.beschrijving``) is
    what a behandelaar reads on it (Documenten API: at most 1000 characters; never part of a find)."""
    b = d.bijlage
    body: dict[str, Any] = {
        "identificatie": identificatie[:40],
        "bronorganisatie": bronorganisatie,
        "creatiedatum": today.isoformat(),
        "titel": d.titel[:200],
        "vertrouwelijkheidaanduiding": d.vertrouwelijkheidaanduiding,
        "auteur": auteur[:200],
        "taal": "nld",
        "bestandsnaam": b.bestandsnaam[:255],
        "formaat": (b.mime_type or "application/octet-stream")[:255],
        "informatieobjecttype": iot_url,
        "indicatieGebruiksrecht": False,
    }
    if beschrijving:
        body["beschrijving"] = beschrijving[:1000]
    if b.omvang is not None:
        body["bestandsomvang"] = b.omvang
        if inline and b.inhoud is not None:
            body["inhoud"] = base64.b64encode(b.inhoud).decode("ascii")
    return body


def zaakinformatieobject(zaak_url: str, eio_url: str, titel: str) -> dict[str, Any]:
    return {"zaak": zaak_url, "informatieobject": eio_url, "titel": titel[:200]}


def status(zaak_url: str, statustype_url: str, when: str, toelichting: str) -> dict[str, Any]:
    return {
        "zaak": zaak_url,
        "statustype": statustype_url,
        "datumStatusGezet": when,
        "statustoelichting": toelichting[:1000],
    }
