"""Request bodies for the ZGW APIs (pure: Opdracht parts + URLs in, JSON dicts out)."""

from __future__ import annotations

import base64
from datetime import date
from typing import Any

from adapter.mapping.opdracht import DocumentOpdracht, Profiel
from adapter.model import Adres, KadastraalPerceel, Persoon, PuntRD, Verzoek


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
    if profiel.zaak_identificatie:
        body["identificatie"] = profiel.zaak_identificatie[:40]
    # zaakgeometrie is left out: the loket gives RD (EPSG:28992) and the API's Content-Crs is WGS84;
    # the adres and percelen zaakobjecten place the zaak.
    return body


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


def rol(zaak_url: str, roltype_url: str, p: Persoon, toelichting: str) -> dict[str, Any]:
    soort, ident = betrokkene(p)
    return {
        "zaak": zaak_url,
        "betrokkeneType": soort,
        "roltype": roltype_url,
        "roltoelichting": toelichting,
        "betrokkeneIdentificatie": ident,
    }


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
) -> dict[str, Any]:
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
