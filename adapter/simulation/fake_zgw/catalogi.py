"""Catalogi API 1.3.1, read-only: a seeded catalogus with zaaktypen, roltypen, statustypen and
informatieobjecttypen, listable with the filters the delivery code uses (domain.md §8.1)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .state import Ctx, Reply, Store, filtered, paginate

# The seed format: zaaktypen may override `roltypen`/`statustypen` and any ZaakType field (e.g. "concept").
DEFAULT_SEED: dict[str, Any] = {
    "catalogus": {"domein": "OMGEV", "rsin": "002220647", "naam": "Omgevingswet", "contactpersoonBeheerNaam": "Beheer"},
    "zaaktypen": [
        {"identificatie": "ZT-OMV-REG", "omschrijving": "Omgevingsvergunning regulier"},
        {"identificatie": "ZT-MELDING", "omschrijving": "Melding"},
        {"identificatie": "ZT-VOOROVERLEG", "omschrijving": "Vooroverleg"},
        {"identificatie": "ZT-TRIAGE", "omschrijving": "Triage"},
    ],
    "roltypen": [
        {"omschrijving": "Aanvrager", "omschrijvingGeneriek": "initiator"},
        {"omschrijving": "Gemachtigde", "omschrijvingGeneriek": "belanghebbende"},
    ],
    "statustypen": ["Ontvangen", "In behandeling", "Ingetrokken", "Afgehandeld"],
    "informatieobjecttypen": ["Aanvraag", "Bijlage", "Tekening", "Foto", "Advies"],
}
GELDIG_VANAF = "2024-01-01"


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


def _seed_zaaktype(store: Store, cat: dict[str, Any], item: dict[str, Any], data: dict[str, Any]) -> None:
    roltypen = item.pop("roltypen", data.get("roltypen", DEFAULT_SEED["roltypen"]))
    statustypen = item.pop("statustypen", data.get("statustypen", DEFAULT_SEED["statustypen"]))
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


def _render_catalogus(ctx: Ctx, rec: dict[str, Any]) -> dict[str, Any]:
    store = ctx.store
    return {
        **{k: v for k, v in rec.items() if k != "uuid"},
        "zaaktypen": [z["url"] for z in store.all("zaaktypen") if z["catalogus"] == rec["url"]],
        "besluittypen": [],
        "informatieobjecttypen": [i["url"] for i in store.all("informatieobjecttypen") if i["catalogus"] == rec["url"]],
    }


def _render_zaaktype(ctx: Ctx, rec: dict[str, Any]) -> dict[str, Any]:
    iots = [i["url"] for i in ctx.store.all("informatieobjecttypen") if i["catalogus"] == rec["catalogus"]]
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


def _lister(kind: str, render: Render, fields: dict[str, Callable[[dict[str, Any]], Any]]) -> Callable[[Ctx], Reply]:
    def handler(ctx: Ctx) -> Reply:
        records = [r for r in filtered(ctx.store.all(kind), ctx.query, fields) if _status_ok(ctx, r)]
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
