"""Documenten API 1.5.0: enkelvoudiginformatieobjecten with base64 `inhoud`, download, and the
large-file flow (bestandsdelen + lock/unlock) the spec's introduction describes."""

from __future__ import annotations

import base64
import binascii
import email.parser
import email.policy
import uuid
from collections.abc import Callable
from datetime import date
from typing import Any
from urllib.parse import parse_qsl

from .state import ApiError, Ctx, Reply, filtered, invalid, not_found, now, paginate, require_rsin
from .validation import Problem

KIND = "enkelvoudiginformatieobjecten"


def create_eio(ctx: Ctx) -> Reply:
    props = ctx.fake.specs["documenten"].schemas["EnkelvoudigInformatieObjectCreateLockRequest"]["properties"]
    body = {k: v for k, v in ctx.body.items() if k in props}
    store = ctx.store
    iotype = store.require(body["informatieobjecttype"], "informatieobjecttypen", "informatieobjecttype")
    if iotype.get("concept"):
        raise invalid("informatieobjecttype", "not-published", "informatieobjecttype is a concept (concept=true).")
    require_rsin(body, "bronorganisatie")
    taken = {d["identificatie"] for d in store.all(KIND) if d["bronorganisatie"] == body["bronorganisatie"]}
    if body.get("identificatie") in taken:
        raise invalid(
            "identificatie", "identificatie-niet-uniek", "Deze identificatie bestaat al voor deze bronorganisatie."
        )
    if not body.get("identificatie"):
        while (ident := f"DOCUMENT-{date.today().year}-{store.next_number('DOCUMENT'):010d}") in taken:
            pass
        body["identificatie"] = ident
    content = body.pop("inhoud", None)
    size = body.get("bestandsomvang")
    blob: bytes | None = None
    if content is not None:
        try:
            blob = base64.b64decode(content, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise invalid("inhoud", "invalid", f"inhoud is not valid base64: {exc}") from exc
        if size is not None and size != len(blob):
            raise invalid("bestandsomvang", "file-size", f"bestandsomvang {size} != {len(blob)} bytes in inhoud.")
        size = len(blob)
    record = {
        "vertrouwelijkheidaanduiding": iotype["vertrouwelijkheidaanduiding"],
        "status": "",
        "formaat": "",
        "bestandsnaam": "",
        "link": "",
        "beschrijving": "",
        "ontvangstdatum": None,
        "verzenddatum": None,
        "indicatieGebruiksrecht": None,
        "verschijningsvorm": "",
        "ondertekening": None,
        "integriteit": None,
        "trefwoorden": [],
        "inhoudIsVervallen": False,
        **body,
        "informatieobjecttype": iotype["url"],
        "bestandsomvang": size,
        "versie": 1,
        "beginRegistratie": now(),
        "lock": "",
    }
    eio = store.add(KIND, record)
    if blob is not None:
        store.blobs[eio["uuid"]] = blob
    elif size:
        # Large file: the API answers with the parts to PUT and locks the document meanwhile.
        eio["lock"] = uuid.uuid4().hex
        chunk = ctx.fake.chunk_size
        for n, start in enumerate(range(0, size, chunk), start=1):
            store.add(
                "bestandsdelen", {"informatieobject": eio["url"], "volgnummer": n, "omvang": min(chunk, size - start)}
            )
    out = render_eio(ctx, eio)
    if eio["lock"]:
        out["lock"] = eio["lock"]  # not in SchemaEIO, but what the real create-with-lock answer carries
    return Reply(201, out, headers={"Location": ctx.absolute(eio["url"])})


def _parts(ctx: Ctx, eio: dict[str, Any]) -> list[dict[str, Any]]:
    return sorted(
        (p for p in ctx.store.all("bestandsdelen") if p["informatieobject"] == eio["url"]),
        key=lambda p: p["volgnummer"],
    )


def render_eio(ctx: Ctx, eio: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in eio.items() if k not in ("uuid", "lock")}
    has_content = eio["uuid"] in ctx.store.blobs
    out["inhoud"] = f"{eio['url']}/download?versie={eio['versie']}" if has_content else None
    out["locked"] = bool(eio["lock"])
    out["bestandsdelen"] = [
        {"url": p["url"], "volgnummer": p["volgnummer"], "omvang": p["omvang"], "voltooid": "data" in p, "lock": ""}
        for p in _parts(ctx, eio)
    ]
    return out


def list_eio(ctx: Ctx) -> Reply:
    fields = {"identificatie": lambda d: d["identificatie"], "bronorganisatie": lambda d: d["bronorganisatie"]}
    return paginate(ctx, [render_eio(ctx, d) for d in filtered(ctx.store.all(KIND), ctx.query, fields)])


def get_eio(ctx: Ctx) -> Reply:
    return Reply(200, render_eio(ctx, ctx.store.get(KIND, ctx.var())))


def download(ctx: Ctx) -> Reply:
    eio = ctx.store.get(KIND, ctx.var())
    blob = ctx.store.blobs.get(eio["uuid"])
    if blob is None:
        raise not_found("De inhoud van dit informatieobject")
    return Reply(200, data=blob, headers={"Content-Disposition": f'attachment; filename="{eio["bestandsnaam"]}"'})


def put_bestandsdeel(ctx: Ctx) -> Reply:
    part = ctx.store.get("bestandsdelen", ctx.var())
    eio = ctx.store.resolve(part["informatieobject"], KIND)
    assert eio is not None
    form = parse_form(ctx.raw, ctx.headers.get("content-type", ""))
    lock = form.get("lock", b"").decode("utf-8", "replace")
    if not eio["lock"] or lock != eio["lock"]:
        raise invalid("lock", "incorrect-lock-id", "Incorrect lock ID.")
    data = form.get("inhoud")
    if data is None:
        raise invalid("inhoud", "required", "inhoud is required.")
    if len(data) != part["omvang"]:
        raise invalid("inhoud", "file-size", f"The part must be {part['omvang']} bytes, got {len(data)}.")
    part["data"] = data
    return Reply(
        200,
        {
            "url": part["url"],
            "lock": lock,
            "omvang": part["omvang"],
            "voltooid": True,
            "volgnummer": part["volgnummer"],
        },
    )


def lock_eio(ctx: Ctx) -> Reply:
    eio = ctx.store.get(KIND, ctx.var())
    if eio["lock"]:
        raise invalid("nonFieldErrors", "existing-lock", "Het document is al gelockt.")
    eio["lock"] = uuid.uuid4().hex
    return Reply(200, {"lock": eio["lock"]})


def unlock_eio(ctx: Ctx) -> Reply:
    eio = ctx.store.get(KIND, ctx.var())
    if not (ctx.body or {}).get("lock"):
        # Geforceerd unlock (no lock given): the fake's one client holds every scope, as an Open Zaak
        # application with heeft_alle_autorisaties does. Parts stay as they are; nothing is joined.
        if not ctx.fake.force_unlock_allowed:
            raise ApiError(Problem(403, "permission_denied", "Geen scope documenten.geforceerd-unlock.", ""))
        eio["lock"] = ""
        return Reply(204)
    if not eio["lock"] or (ctx.body or {}).get("lock") != eio["lock"]:
        raise invalid("nonFieldErrors", "incorrect-lock-id", "Incorrect lock ID.")
    parts = _parts(ctx, eio)
    if parts:
        if not all("data" in p for p in parts):
            raise invalid("nonFieldErrors", "incomplete-upload", "Het bestand is niet volledig geüpload.")
        ctx.store.blobs[eio["uuid"]] = b"".join(p["data"] for p in parts)
        for p in parts:
            del ctx.store.kinds["bestandsdelen"][p["uuid"]]
            del ctx.store.by_path[p["url"]]
    eio["lock"] = ""
    return Reply(204)


def parse_form(raw: bytes, content_type: str) -> dict[str, bytes]:
    """multipart/form-data or urlencoded fields as bytes (stdlib only; no python-multipart needed)."""
    if content_type.startswith("application/x-www-form-urlencoded"):
        return {k: v.encode() for k, v in parse_qsl(raw.decode("utf-8"), keep_blank_values=True)}
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode("latin-1")
    msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + raw)
    out: dict[str, bytes] = {}
    for part in msg.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if isinstance(name, str) and isinstance(payload, bytes):
            out[name] = payload
    return out


def delete_eio(ctx: Ctx) -> Reply:
    """Refused while a zaak still links the document (as Open Zaak: pending relations)."""
    eio = ctx.store.get(KIND, ctx.var())
    if any(z["informatieobject"] == eio["url"] for z in ctx.store.all("zaakinformatieobjecten")):
        raise invalid("nonFieldErrors", "pending-relations", "Het informatieobject is nog aan een zaak gekoppeld.")
    for part in _parts(ctx, eio):
        ctx.store.remove("bestandsdelen", part["uuid"])
    ctx.store.remove(KIND, eio["uuid"])
    return Reply(204)


HANDLERS: dict[tuple[str, str], Callable[[Ctx], Reply]] = {
    ("POST", "/enkelvoudiginformatieobjecten"): create_eio,
    ("GET", "/enkelvoudiginformatieobjecten"): list_eio,
    ("GET", "/enkelvoudiginformatieobjecten/{uuid}"): get_eio,
    ("DELETE", "/enkelvoudiginformatieobjecten/{uuid}"): delete_eio,
    ("GET", "/enkelvoudiginformatieobjecten/{uuid}/download"): download,
    ("POST", "/enkelvoudiginformatieobjecten/{uuid}/lock"): lock_eio,
    ("POST", "/enkelvoudiginformatieobjecten/{uuid}/unlock"): unlock_eio,
    ("PUT", "/bestandsdelen/{uuid}"): put_bestandsdeel,
}
