"""Zaken API 1.5.1: zaken, rollen, zaakobjecten, statussen and zaakinformatieobjecten, with the checks the
spec's operation descriptions promise (URL references resolve, identificatie unique per bronorganisatie, ...)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

from .state import Ctx, Reply, filtered, invalid, now, paginate, require_rsin, today

CRS = {"Content-Crs": "EPSG:4326"}
AARD_RELATIE = "Hoort bij, omgekeerd: kent"


def _writable(ctx: Ctx, schema: str, *extra: str) -> dict[str, Any]:
    """The request's fields that the schema lets a client write (DRF drops the rest)."""
    props = ctx.fake.specs["zaken"].schemas[schema]["properties"]
    keep = {k for k, p in props.items() if not p.get("readOnly")} | set(extra)
    return {k: v for k, v in ctx.body.items() if k in keep}


# -- zaken ------------------------------------------------------------------------------------------------


def create_zaak(ctx: Ctx) -> Reply:
    body = _writable(ctx, "Zaak")
    store = ctx.store
    zaaktype = store.require(body["zaaktype"], "zaaktypen", "zaaktype")
    if zaaktype.get("concept"):
        raise invalid("zaaktype", "not-published", "zaaktype is a concept (concept=true).")
    require_rsin(body, "bronorganisatie", "verantwoordelijkeOrganisatie")
    if body.get("laatsteBetaaldatum") and body["laatsteBetaaldatum"][:10] > today():
        raise invalid("laatsteBetaaldatum", "date-in-future", "laatsteBetaaldatum lies in the future.")
    if body.get("hoofdzaak"):
        body["hoofdzaak"] = store.require(body["hoofdzaak"], "zaken", "hoofdzaak")["url"]
    taken = {z["identificatie"] for z in store.all("zaken") if z["bronorganisatie"] == body["bronorganisatie"]}
    if body.get("identificatie"):
        if body["identificatie"] in taken:
            raise invalid(
                "identificatie",
                "identificatie-niet-uniek",
                f"Deze identificatie ({body['identificatie']}) bestaat al voor deze bronorganisatie.",
            )
    else:
        body["identificatie"] = _generate(store, "ZAAK", taken)
    record = {
        "omschrijving": "",
        "toelichting": "",
        "registratiedatum": today(),
        "einddatumGepland": None,
        "uiterlijkeEinddatumAfdoening": None,
        "publicatiedatum": None,
        "communicatiekanaal": "",
        "productenOfDiensten": [],
        "vertrouwelijkheidaanduiding": zaaktype["vertrouwelijkheidaanduiding"],
        "betalingsindicatie": "",
        "laatsteBetaaldatum": None,
        "zaakgeometrie": None,
        "verlenging": None,
        "opschorting": {"indicatie": False, "reden": ""},
        "selectielijstklasse": "",
        "hoofdzaak": None,
        "relevanteAndereZaken": [],
        "kenmerken": [],
        "archiefnominatie": None,
        "archiefstatus": "nog_te_archiveren",
        "archiefactiedatum": None,
        "opdrachtgevendeOrganisatie": "",
        "processobjectaard": "",
        "startdatumBewaartermijn": None,
        "processobject": None,
        **body,
        "zaaktype": zaaktype["url"],
        "einddatum": None,
    }
    zaak = store.add("zaken", record)
    return Reply(201, render_zaak(ctx, zaak), headers={**CRS, "Location": ctx.absolute(zaak["url"])})


def _generate(store: Any, kind: str, taken: set[str]) -> str:
    while True:
        ident = f"{kind}-{date.today().year}-{store.next_number(kind):010d}"
        if ident not in taken:
            return ident


def render_zaak(ctx: Ctx, zaak: dict[str, Any]) -> dict[str, Any]:
    store = ctx.store
    url = zaak["url"]
    statussen = [s for s in store.all("statussen") if s["zaak"] == url]
    return {
        **zaak,
        "betalingsindicatieWeergave": "",
        "deelzaken": [z["url"] for z in store.all("zaken") if z.get("hoofdzaak") == url],
        "eigenschappen": [],
        "rollen": [r["url"] for r in store.all("rollen") if r["zaak"] == url],
        "zaakinformatieobjecten": [z["url"] for z in store.all("zaakinformatieobjecten") if z["zaak"] == url],
        "zaakobjecten": [z["url"] for z in store.all("zaakobjecten") if z["zaak"] == url],
        "status": _latest(statussen)["url"] if statussen else None,
        "resultaat": next((r["url"] for r in store.all("resultaten") if r["zaak"] == url), None),
    }


def _latest(statussen: list[dict[str, Any]]) -> dict[str, Any]:
    # max() keeps the first of equal keys; reversed() makes the last one created win a tie.
    return max(reversed(statussen), key=lambda s: _moment(s["datumStatusGezet"]))


def _moment(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def list_zaken(ctx: Ctx) -> Reply:
    fields = {
        "identificatie": lambda z: z["identificatie"],
        "bronorganisatie": lambda z: z["bronorganisatie"],
        "zaaktype": lambda z: z["zaaktype"],
    }
    found = filtered(ctx.store.all("zaken"), ctx.query, fields)
    reply = paginate(ctx, [render_zaak(ctx, z) for z in found])
    reply.headers.update(CRS)
    return reply


def get_zaak(ctx: Ctx) -> Reply:
    return Reply(200, render_zaak(ctx, ctx.store.get("zaken", ctx.var())), headers=dict(CRS))


# -- rollen -----------------------------------------------------------------------------------------------


def create_rol(ctx: Ctx) -> Reply:
    body = _writable(ctx, "Rol", "betrokkeneIdentificatie")
    store = ctx.store
    zaak = store.require(body["zaak"], "zaken", "zaak")
    roltype = store.require(body["roltype"], "roltypen", "roltype")
    if roltype["zaaktype"] != zaak["zaaktype"]:
        raise invalid("roltype", "zaaktype-mismatch", "roltype belongs to another zaaktype than the zaak's.")
    if not body.get("betrokkene") and not body.get("betrokkeneIdentificatie"):
        raise invalid("nonFieldErrors", "invalid-betrokkene", "betrokkene or betrokkeneIdentificatie is required.")
    record = {
        "betrokkene": "",
        "afwijkendeNaamBetrokkene": "",
        "indicatieMachtiging": "",
        "contactpersoonRol": None,
        **body,
        "zaak": zaak["url"],
        "roltype": roltype["url"],
        "omschrijving": roltype["omschrijving"],
        "omschrijvingGeneriek": roltype["omschrijvingGeneriek"],
        "registratiedatum": now(),
        "statussen": [],
    }
    return _created(ctx, store.add("rollen", record))


def _ident(key: str) -> Callable[[dict[str, Any]], Any]:
    return lambda r: (r.get("betrokkeneIdentificatie") or {}).get(key)


ROL_FILTERS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "zaak": lambda r: r["zaak"],
    "betrokkene": lambda r: r["betrokkene"],
    "betrokkeneType": lambda r: r["betrokkeneType"],
    "roltype": lambda r: r["roltype"],
    "omschrijving": lambda r: r["omschrijving"],
    "omschrijvingGeneriek": lambda r: r["omschrijvingGeneriek"],
    "betrokkeneIdentificatie__natuurlijkPersoon__inpBsn": _ident("inpBsn"),
    "betrokkeneIdentificatie__nietNatuurlijkPersoon__innNnpId": _ident("innNnpId"),
    "betrokkeneIdentificatie__nietNatuurlijkPersoon__annIdentificatie": _ident("annIdentificatie"),
    "betrokkeneIdentificatie__vestiging__vestigingsNummer": _ident("vestigingsNummer"),
}


# -- zaakobjecten -----------------------------------------------------------------------------------------


def create_zaakobject(ctx: Ctx) -> Reply:
    body = _writable(ctx, "ZaakObject", "objectIdentificatie")
    zaak = ctx.store.require(body["zaak"], "zaken", "zaak")
    if body["objectType"] == "overige" and not body.get("objectTypeOverige"):
        raise invalid("objectTypeOverige", "required", "objectTypeOverige is required when objectType is overige.")
    if not body.get("object") and not body.get("objectIdentificatie"):
        # Not in the spec text: a fake's rule, so a zaakobject never identifies nothing.
        raise invalid("objectIdentificatie", "required", "Give object (a URL) or objectIdentificatie.")
    record = {"object": "", "relatieomschrijving": "", **body, "zaak": zaak["url"]}
    return _created(ctx, ctx.store.add("zaakobjecten", record))


# -- statussen --------------------------------------------------------------------------------------------


def create_status(ctx: Ctx) -> Reply:
    body = _writable(ctx, "Status")
    store = ctx.store
    zaak = store.require(body["zaak"], "zaken", "zaak")
    statustype = store.require(body["statustype"], "statustypen", "statustype")
    if statustype["zaaktype"] != zaak["zaaktype"]:
        raise invalid("statustype", "zaaktype-mismatch", "statustype belongs to another zaaktype than the zaak's.")
    moment = _moment(body["datumStatusGezet"])
    if any(st["zaak"] == zaak["url"] and _moment(st["datumStatusGezet"]) == moment for st in store.all("statussen")):
        # as Open Zaak: (zaak, datumStatusGezet) is unique
        raise invalid("nonFieldErrors", "unique", "De velden zaak, datum status gezet moeten een unieke set zijn.")
    if statustype["isEindstatus"]:
        if not any(r["zaak"] == zaak["url"] for r in store.all("resultaten")):
            # as Open Zaak: a zaak is closed only once it has its resultaat
            raise invalid(
                "nonFieldErrors", "resultaat-does-not-exist", "De zaak heeft geen resultaat; zet eerst het resultaat."
            )
        for zio in store.all("zaakinformatieobjecten"):
            eio = (
                store.resolve(zio["informatieobject"], "enkelvoudiginformatieobjecten")
                if zio["zaak"] == zaak["url"]
                else None
            )
            if eio is not None and eio.get("indicatieGebruiksrecht") is None:
                raise invalid(
                    "nonFieldErrors",
                    "indicatiegebruiksrecht-unset",
                    "Closing the zaak needs indicatieGebruiksrecht set on every related informatieobject.",
                )
        zaak["einddatum"] = body["datumStatusGezet"][:10]
    record = {"statustoelichting": "", **body, "zaak": zaak["url"], "statustype": statustype["url"]}
    return _created(ctx, store.add("statussen", record))


def render_status(ctx: Ctx, status: dict[str, Any]) -> dict[str, Any]:
    siblings = [s for s in ctx.store.all("statussen") if s["zaak"] == status["zaak"]]
    return {**status, "indicatieLaatstGezetteStatus": _latest(siblings) is status, "zaakinformatieobjecten": []}


# -- zaakinformatieobjecten -------------------------------------------------------------------------------


def create_zio(ctx: Ctx) -> Reply:
    body = _writable(ctx, "ZaakInformatieObject")
    store = ctx.store
    zaak = store.require(body["zaak"], "zaken", "zaak")
    eio = store.require(body["informatieobject"], "enkelvoudiginformatieobjecten", "informatieobject")
    iotype = store.resolve(eio["informatieobjecttype"], "informatieobjecttypen")
    allowed = {
        z["informatieobjecttype"]
        for z in store.all("zaaktype-informatieobjecttypen")
        if z["zaaktype"] == zaak["zaaktype"]
    }
    if iotype is None or iotype["omschrijving"] not in allowed:
        raise invalid(
            "nonFieldErrors",
            "missing-zaaktype-informatieobjecttype-relation",
            "Het informatieobjecttype hoort niet bij het zaaktype van de zaak.",
        )
    for zio in store.all("zaakinformatieobjecten"):
        if zio["zaak"] == zaak["url"] and zio["informatieobject"] == eio["url"]:
            raise invalid("nonFieldErrors", "unique", "De velden zaak, informatieobject moeten een unieke set zijn.")
    record = {
        "titel": "",
        "beschrijving": "",
        "vernietigingsdatum": None,
        "status": None,
        **body,
        "zaak": zaak["url"],
        "informatieobject": eio["url"],
        "aardRelatieWeergave": AARD_RELATIE,
        "registratiedatum": now(),
    }
    return _created(ctx, store.add("zaakinformatieobjecten", record))


# -- resultaten -------------------------------------------------------------------------------------------


def create_resultaat(ctx: Ctx) -> Reply:
    body = _writable(ctx, "Resultaat")
    store = ctx.store
    zaak = store.require(body["zaak"], "zaken", "zaak")
    resultaattype = store.require(body["resultaattype"], "resultaattypen", "resultaattype")
    if resultaattype["zaaktype"] != zaak["zaaktype"]:
        raise invalid(
            "resultaattype", "zaaktype-mismatch", "resultaattype belongs to another zaaktype than the zaak's."
        )
    if any(r["zaak"] == zaak["url"] for r in store.all("resultaten")):
        raise invalid("zaak", "unique", "Deze zaak heeft al een resultaat.")
    record = {"toelichting": "", **body, "zaak": zaak["url"], "resultaattype": resultaattype["url"]}
    return _created(ctx, store.add("resultaten", record))


# -- generic ----------------------------------------------------------------------------------------------

Render = Callable[[Ctx, dict[str, Any]], dict[str, Any]]


def _same(ctx: Ctx, rec: dict[str, Any]) -> dict[str, Any]:
    return rec


RENDER: dict[str, Render] = {"statussen": render_status}


def _created(ctx: Ctx, rec: dict[str, Any]) -> Reply:
    kind = ctx.op.template.strip("/")
    return Reply(201, RENDER.get(kind, _same)(ctx, rec), headers={"Location": ctx.absolute(rec["url"])})


def _lister(
    kind: str, fields: dict[str, Callable[[dict[str, Any]], Any]], *, paginated: bool = True
) -> Callable[[Ctx], Reply]:
    render = RENDER.get(kind, _same)

    def handler(ctx: Ctx) -> Reply:
        found = filtered(ctx.store.all(kind), ctx.query, fields)
        if kind == "statussen" and "indicatieLaatstGezetteStatus" in ctx.query:
            wanted = ctx.query["indicatieLaatstGezetteStatus"] == "true"
            found = [s for s in found if render(ctx, s)["indicatieLaatstGezetteStatus"] == wanted]
        results = [render(ctx, r) for r in found]
        return paginate(ctx, results) if paginated else Reply(200, results)

    return handler


def _getter(kind: str) -> Callable[[Ctx], Reply]:
    render = RENDER.get(kind, _same)
    return lambda ctx: Reply(200, render(ctx, ctx.store.get(kind, ctx.var())))


def _delete(ctx: Ctx, kind: str) -> Reply:
    ctx.store.get(kind, ctx.var())  # 404 when it does not exist
    ctx.store.remove(kind, ctx.var())
    return Reply(204)


HANDLERS: dict[tuple[str, str], Callable[[Ctx], Reply]] = {
    ("POST", "/zaken"): create_zaak,
    ("GET", "/zaken"): list_zaken,
    ("GET", "/zaken/{uuid}"): get_zaak,
    ("POST", "/rollen"): create_rol,
    ("GET", "/rollen"): _lister("rollen", ROL_FILTERS),
    ("GET", "/rollen/{uuid}"): _getter("rollen"),
    ("POST", "/zaakobjecten"): create_zaakobject,
    ("GET", "/zaakobjecten"): _lister(
        "zaakobjecten",
        {"zaak": lambda r: r["zaak"], "object": lambda r: r["object"], "objectType": lambda r: r["objectType"]},
    ),
    ("GET", "/zaakobjecten/{uuid}"): _getter("zaakobjecten"),
    ("POST", "/statussen"): create_status,
    ("GET", "/statussen"): _lister("statussen", {"zaak": lambda r: r["zaak"], "statustype": lambda r: r["statustype"]}),
    ("GET", "/statussen/{uuid}"): _getter("statussen"),
    ("POST", "/zaakinformatieobjecten"): create_zio,
    ("GET", "/zaakinformatieobjecten"): _lister(
        "zaakinformatieobjecten",
        {"zaak": lambda r: r["zaak"], "informatieobject": lambda r: r["informatieobject"]},
        paginated=False,  # spec quirk: this list is a plain array
    ),
    ("GET", "/zaakinformatieobjecten/{uuid}"): _getter("zaakinformatieobjecten"),
    ("DELETE", "/zaakinformatieobjecten/{uuid}"): lambda ctx: _delete(ctx, "zaakinformatieobjecten"),
    ("POST", "/resultaten"): create_resultaat,
    ("GET", "/resultaten"): _lister(
        "resultaten", {"zaak": lambda r: r["zaak"], "resultaattype": lambda r: r["resultaattype"]}
    ),
    ("GET", "/resultaten/{uuid}"): _getter("resultaten"),
}
