"""Catalogi API 1.3.1, read-only: a seeded catalogus with zaaktypen, roltypen, statustypen,
resultaattypen, informatieobjecttypen and their zaaktype links, listable with the filters the delivery
code uses (domain.md §8.1).

With the awkward habits of real catalogi: a zaaktype has versions side by side (expired, current,
concept), lists come newest first (as Open Zaak lists them; ``newest_first=False`` for servers that list
oldest first), two roltypen share one generic description, and a zaaktype allows only some
informatieobjecttypen (``zaaktype-informatieobjecttypen``; the Zaken fake refuses a document of another
type on the zaak).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .state import Ctx, Reply, Store, filtered, paginate

# The seed format: zaaktypen may override `roltypen`/`statustypen`/`resultaattypen`, list the
# `informatieobjecttypen` (omschrijvingen) they allow (default: all of the catalogus), and set any ZaakType
# field (e.g. "concept", "beginGeldigheid", "eindeGeldigheid", "versiedatum").
DEFAULT_SEED: dict[str, Any] = {
    "catalogus": {"domein": "OMGEV", "rsin": "002220647", "naam": "Omgevingswet", "contactpersoonBeheerNaam": "Beheer"},
    "zaaktypen": [
        # three versions of one zaaktype: expired, current, and a concept of the next one
        {
            "identificatie": "ZT-OMV-REG",
            "omschrijving": "Omgevingsvergunning regulier (oud)",
            "beginGeldigheid": "2020-01-01",
            "eindeGeldigheid": "2023-12-31",
            "versiedatum": "2020-01-01",
        },
        {"identificatie": "ZT-OMV-REG", "omschrijving": "Omgevingsvergunning regulier"},
        {
            "identificatie": "ZT-OMV-REG",
            "omschrijving": "Omgevingsvergunning regulier (concept)",
            "beginGeldigheid": "2099-01-01",
            "versiedatum": "2099-01-01",
            "concept": True,
        },
        {"identificatie": "ZT-MELDING", "omschrijving": "Melding"},
        {"identificatie": "ZT-VOOROVERLEG", "omschrijving": "Vooroverleg"},
        # adviesaanvragen we get as adviseur (omvDu01LeverenAanvraag): a zaak per adviesverzoek
        {"identificatie": "ZT-ADVIES", "omschrijving": "Advies aan een ander bevoegd gezag"},
        # a zaaktype that allows only some document types
        {"identificatie": "ZT-TRIAGE", "omschrijving": "Triage", "informatieobjecttypen": ["Aanvraag", "Bijlage"]},
    ],
    "roltypen": [
        {"omschrijving": "Aanvrager", "omschrijvingGeneriek": "initiator"},
        # two roltypen share one generic description: a mapping must name the one it means
        {"omschrijving": "Gemachtigde", "omschrijvingGeneriek": "belanghebbende"},
        {"omschrijving": "Belanghebbende", "omschrijvingGeneriek": "belanghebbende"},
    ],
    "statustypen": ["Ontvangen", "In behandeling", "Ingetrokken", "Afgehandeld"],
    "resultaattypen": [
        {"omschrijving": "Ingetrokken", "omschrijvingGeneriek": "Ingetrokken"},
        {"omschrijving": "Verleend", "omschrijvingGeneriek": "Toegekend"},
    ],
    "informatieobjecttypen": ["Aanvraag", "Bijlage", "Tekening", "Foto", "Advies"],
}
GELDIG_VANAF = "2024-01-01"
SELECTIELIJST = "https://selectielijst.openzaak.nl/api/v1/resultaten/8af64c99-a168-40dd-8afd-9fbe0597b6dc"


def seed(store: Store, data: dict[str, Any]) -> None:
    """Fill the store's catalogi from `data` (see DEFAULT_SEED for the shape)."""
    cat_in = dict(data.get("catalogus") or DEFAULT_SEED["catalogus"])
    uid = cat_in.pop("uuid", None)  # a fixed uuid lets a config name the catalogus URL in advance
    cat = store.add(
        "catalogussen",
        {
            "domein": "OMGEV",
            "rsin": "002220647",
            "contactpersoonBeheerNaam": "Beheer",
            "naam": "Catalogus",
            "versie": "1",
            "begindatumVersie": GELDIG_VANAF,
            **cat_in,
        },
        uid=uid,
    )
    for item in data.get("informatieobjecttypen", DEFAULT_SEED["informatieobjecttypen"]):
        fields = {"omschrijving": item} if isinstance(item, str) else dict(item)
        store.add(
            "informatieobjecttypen",
            {
                "catalogus": cat["url"],
                "vertrouwelijkheidaanduiding": "openbaar",
                "beginGeldigheid": GELDIG_VANAF,
                "eindeGeldigheid": None,
                "concept": False,
                "besluittypen": [],
                "informatieobjectcategorie": "Overig",
                "trefwoord": [],
                **fields,
            },
        )
    for item in data.get("zaaktypen", DEFAULT_SEED["zaaktypen"]):
        _seed_zaaktype(store, cat, dict(item), data)


def add_zaaktype(store: Store, item: dict[str, Any]) -> None:
    """One more zaaktype (or version of one) in the first catalogus, with the seed's default roltypen,
    statustypen, resultaattypen and informatieobjecttypen (the ketensimulatie's ``catalogus`` step)."""
    _seed_zaaktype(store, store.all("catalogussen")[0], dict(item), DEFAULT_SEED)


def _seed_zaaktype(store: Store, cat: dict[str, Any], item: dict[str, Any], data: dict[str, Any]) -> None:
    roltypen = item.pop("roltypen", data.get("roltypen", DEFAULT_SEED["roltypen"]))
    statustypen = item.pop("statustypen", data.get("statustypen", DEFAULT_SEED["statustypen"]))
    resultaattypen = item.pop("resultaattypen", data.get("resultaattypen", DEFAULT_SEED["resultaattypen"]))
    all_iots = [i["omschrijving"] for i in store.all("informatieobjecttypen") if i["catalogus"] == cat["url"]]
    allowed_iots = item.pop("informatieobjecttypen", all_iots)
    zt = store.add(
        "zaaktypen",
        {
            "omschrijving": item.get("identificatie", ""),
            "omschrijvingGeneriek": "",
            "vertrouwelijkheidaanduiding": "openbaar",
            "doel": "Behandelen van een verzoek uit het Omgevingsloket",
            "aanleiding": "Indiening in het Omgevingsloket",
            "toelichting": "",
            "indicatieInternOfExtern": "extern",
            "handelingInitiator": "Indienen",
            "onderwerp": "Omgevingsrecht",
            "handelingBehandelaar": "Behandelen",
            "doorlooptijd": "P56D",
            "servicenorm": None,
            "opschortingEnAanhoudingMogelijk": True,
            "verlengingMogelijk": False,
            "verlengingstermijn": None,
            "trefwoorden": [],
            "publicatieIndicatie": False,
            "publicatietekst": "",
            "verantwoordingsrelatie": [],
            "productenOfDiensten": [],
            "referentieproces": {"naam": "Omgevingsvergunning"},
            "verantwoordelijke": "Team vergunningen",
            "zaakobjecttypen": [],
            "catalogus": cat["url"],
            "resultaattypen": [],
            "eigenschappen": [],
            "besluittypen": [],
            "deelzaaktypen": [],
            "gerelateerdeZaaktypen": [],
            "beginGeldigheid": GELDIG_VANAF,
            "eindeGeldigheid": None,
            "versiedatum": GELDIG_VANAF,
            "concept": False,
            **item,
        },
    )
    zt["roltypen"] = [
        store.add(
            "roltypen",
            {"zaaktype": zt["url"], "zaaktypeIdentificatie": zt["identificatie"], "catalogus": cat["url"], **rt},
        )["url"]
        for rt in roltypen
    ]
    specs = [{"omschrijving": s} if isinstance(s, str) else dict(s) for s in statustypen]
    zt["statustypen"] = [
        store.add(
            "statustypen",
            {
                "omschrijving": st["omschrijving"],
                "omschrijvingGeneriek": "",
                "statustekst": "",
                "zaaktype": zt["url"],
                "catalogus": cat["url"],
                "zaaktypeIdentificatie": zt["identificatie"],
                "volgnummer": n,
                # The spec: isEindstatus is derived, the statustype with the highest volgnummer.
                "isEindstatus": n == len(specs),
                "informeren": False,
                "doorlooptijd": None,
                "toelichting": None,
                "checklistitemStatustype": [],
                "eigenschappen": [],
                # Spec quirk: required, non-nullable readOnly URI even when there is no zaakobjecttype.
                "zaakobjecttype": "",
                **st,
            },
        )["url"]
        for n, st in enumerate(specs, start=1)
    ]
    zt["resultaattypen"] = [
        store.add(
            "resultaattypen",
            {
                "zaaktype": zt["url"],
                "zaaktypeIdentificatie": zt["identificatie"],
                "catalogus": cat["url"],
                "resultaattypeomschrijving": "https://selectielijst.openzaak.nl/api/v1/resultaattypeomschrijvingen/1",
                "selectielijstklasse": SELECTIELIJST,
                "toelichting": "",
                "archiefnominatie": "vernietigen",
                "archiefactietermijn": "P10Y",
                "brondatumArchiefprocedure": None,
                "procesobjectaard": None,
                "beginGeldigheid": zt["beginGeldigheid"],
                "eindeGeldigheid": zt["eindeGeldigheid"],
                "beginObject": None,
                "eindeObject": None,
                "indicatieSpecifiek": None,
                "procestermijn": None,
                "besluittypen": [],
                "besluittypeOmschrijving": [],
                "informatieobjecttypen": [],
                "informatieobjecttypeOmschrijving": [],
                "zaakobjecttypen": [],
                **rt,
            },
        )["url"]
        for rt in ({"omschrijving": r} if isinstance(r, str) else dict(r) for r in resultaattypen)
    ]
    for n, omschrijving in enumerate(allowed_iots, start=1):
        if omschrijving not in all_iots:
            raise ValueError(f"seed: zaaktype {zt['identificatie']} allows unknown informatieobjecttype {omschrijving}")
        # Catalogi 1.3: the link names the informatieobjecttype by its omschrijving
        store.add(
            "zaaktype-informatieobjecttypen",
            {
                "zaaktype": zt["url"],
                "zaaktypeIdentificatie": zt["identificatie"],
                "catalogus": cat["url"],
                "informatieobjecttype": omschrijving,
                "volgnummer": n,
                "richting": "inkomend",
                "statustype": None,
            },
        )


def _render_catalogus(ctx: Ctx, rec: dict[str, Any]) -> dict[str, Any]:
    store = ctx.store
    return {
        **{k: v for k, v in rec.items() if k != "uuid"},
        "zaaktypen": [z["url"] for z in store.all("zaaktypen") if z["catalogus"] == rec["url"]],
        "besluittypen": [],
        "informatieobjecttypen": [i["url"] for i in store.all("informatieobjecttypen") if i["catalogus"] == rec["url"]],
    }


def allowed_informatieobjecttypen(ctx: Ctx, zaaktype_url: str) -> set[str]:
    """Omschrijvingen of the informatieobjecttypen a zaaktype allows."""
    return {
        z["informatieobjecttype"]
        for z in ctx.store.all("zaaktype-informatieobjecttypen")
        if z["zaaktype"] == zaaktype_url
    }


def _render_zaaktype(ctx: Ctx, rec: dict[str, Any]) -> dict[str, Any]:
    allowed = allowed_informatieobjecttypen(ctx, rec["url"])
    iots = [
        i["url"]
        for i in ctx.store.all("informatieobjecttypen")
        if i["catalogus"] == rec["catalogus"] and i["omschrijving"] in allowed
    ]
    # Spec quirk: ZaakType.informatieobjecttypen is typed `string` (real servers send a list).
    return {**_plain(ctx, rec), "informatieobjecttypen": ",".join(ctx.absolute(iots))}


def _render_iotype(ctx: Ctx, rec: dict[str, Any]) -> dict[str, Any]:
    zts = [z["url"] for z in ctx.store.all("zaaktypen") if z["catalogus"] == rec["catalogus"]]
    # Spec quirk: InformatieObjectType.zaaktypen is typed `string` too.
    return {**_plain(ctx, rec), "zaaktypen": ",".join(ctx.absolute(zts))}


def _plain(ctx: Ctx, rec: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in rec.items() if k != "uuid"}


def _status_ok(ctx: Ctx, rec: dict[str, Any]) -> bool:
    """The `status` filter: definitief (default), concept or alles."""
    wanted = ctx.query.get("status", "definitief")
    concept = bool(rec.get("concept", False))
    return wanted == "alles" or (wanted == "concept") == concept


Render = Callable[[Ctx, dict[str, Any]], dict[str, Any]]


def _geldig_ok(ctx: Ctx, rec: dict[str, Any]) -> bool:
    """The `datumGeldigheid` filter: versions valid on that date (begin ≤ date ≤ einde, open end)."""
    on = ctx.query.get("datumGeldigheid") or ctx.query.get("datum_geldigheid")
    if not on or "beginGeldigheid" not in rec:
        return True
    return rec["beginGeldigheid"] <= on and (not rec.get("eindeGeldigheid") or on <= rec["eindeGeldigheid"])


def _lister(kind: str, render: Render, fields: dict[str, Callable[[dict[str, Any]], Any]]) -> Callable[[Ctx], Reply]:
    def handler(ctx: Ctx) -> Reply:
        records = [
            r for r in filtered(ctx.store.all(kind), ctx.query, fields) if _status_ok(ctx, r) and _geldig_ok(ctx, r)
        ]
        if ctx.fake.newest_first:
            records.reverse()  # Open Zaak lists newest first; other servers oldest first
        return paginate(ctx, [render(ctx, r) for r in records])

    return handler


def _getter(kind: str, render: Render) -> Callable[[Ctx], Reply]:
    def handler(ctx: Ctx) -> Reply:
        return Reply(200, render(ctx, ctx.store.get(kind, ctx.var())))

    return handler


HANDLERS: dict[tuple[str, str], Callable[[Ctx], Reply]] = {
    ("GET", "/catalogussen"): _lister(
        "catalogussen", _render_catalogus, {"domein": lambda r: r["domein"], "rsin": lambda r: r["rsin"]}
    ),
    ("GET", "/catalogussen/{uuid}"): _getter("catalogussen", _render_catalogus),
    ("GET", "/zaaktypen"): _lister(
        "zaaktypen",
        _render_zaaktype,
        {"catalogus": lambda r: r["catalogus"], "identificatie": lambda r: r["identificatie"]},
    ),
    ("GET", "/zaaktypen/{uuid}"): _getter("zaaktypen", _render_zaaktype),
    ("GET", "/roltypen"): _lister(
        "roltypen",
        _plain,
        {
            "zaaktype": lambda r: r["zaaktype"],
            "zaaktypeIdentificatie": lambda r: r["zaaktypeIdentificatie"],
            "omschrijvingGeneriek": lambda r: r["omschrijvingGeneriek"],
        },
    ),
    ("GET", "/roltypen/{uuid}"): _getter("roltypen", _plain),
    ("GET", "/resultaattypen"): _lister(
        "resultaattypen",
        _plain,
        {"zaaktype": lambda r: r["zaaktype"], "zaaktype_identificatie": lambda r: r["zaaktypeIdentificatie"]},
    ),
    ("GET", "/resultaattypen/{uuid}"): _getter("resultaattypen", _plain),
    ("GET", "/zaaktype-informatieobjecttypen"): _lister(
        "zaaktype-informatieobjecttypen",
        _plain,
        {"zaaktype": lambda r: r["zaaktype"], "informatieobjecttype": lambda r: r["informatieobjecttype"]},
    ),
    ("GET", "/zaaktype-informatieobjecttypen/{uuid}"): _getter("zaaktype-informatieobjecttypen", _plain),
    ("GET", "/statustypen"): _lister(
        "statustypen",
        _plain,
        {"zaaktype": lambda r: r["zaaktype"], "zaaktypeIdentificatie": lambda r: r["zaaktypeIdentificatie"]},
    ),
    ("GET", "/statustypen/{uuid}"): _getter("statustypen", _plain),
    ("GET", "/informatieobjecttypen"): _lister(
        "informatieobjecttypen",
        _render_iotype,
        {"catalogus": lambda r: r["catalogus"], "omschrijving": lambda r: r["omschrijving"]},
    ),
    ("GET", "/informatieobjecttypen/{uuid}"): _getter("informatieobjecttypen", _render_iotype),
}
