"""``mappings preview``: what a message would become, as the list of calls, without sending any.

Takes a StUF-LVO message (envelope or bare) or a STAM verzoek (the werkmap's samenvatting, read laxly as
the delivery reads it: its warnings are printed, and its own PDF is shown as the bijlage it becomes when
the werkmap links one). A verzoeknotificatie only names its verzoek, so it cannot be previewed.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Iterator
from typing import Any

from lxml import etree

from adapter.config import Settings
from adapter.errors import AdapterError
from adapter.logs import mask_text
from adapter.loket.lvo_parse import parse_verzoek
from adapter.loket.stam_parse import is_kopiebericht, read_stam_verzoek, with_pdf
from adapter.mapping.loader import LoadedMapping
from adapter.mapping.opdracht import Opdracht
from adapter.model import Verzoek
from adapter.schemas import SchemaInvalid, SchemaSet
from adapter.targets.base import Target
from adapter.validation import message_of
from adapter.xmlsafe import Limits, XmlRejected, parse


def _body(body: Any, keep: Collection[str]) -> str:
    """BSNs masked; ``keep``: the gemeente's own RSINs, which pass the same eleven-test but are no BSN."""
    if isinstance(body, dict):
        shown = {k: (f"<{len(v)} base64 chars>" if k == "inhoud" else v) for k, v in body.items()}
        return mask_text(json.dumps(shown, ensure_ascii=False), keep)
    return mask_text(str(body), keep)[:2000]


def preview_message(
    raw: bytes,
    settings: Settings,
    mappings: list[LoadedMapping],
    targets: dict[str, Target],
    build: Callable[[list[LoadedMapping], Verzoek], Opdracht],
    own_oins: Collection[str] = (),
) -> Iterator[str]:
    """``own_oins``: the OINs we act for (STAM: whose verzoek it is, and whether it is a kopiebericht)."""
    warnings: tuple[str, ...] = ()
    try:
        message = message_of(parse(raw, Limits(max_bytes=settings.inbound.max_body_bytes)))
        name = etree.QName(message).localname
        if name == "verzoeknotificatie":
            raise AdapterError(
                "a verzoeknotificatie only names its verzoek: preview the STAM verzoek (the werkmap's samenvatting)"
            )
        if name == "verzoek":
            read = read_stam_verzoek(message, own_oins)
            verzoek, warnings = with_pdf(read.verzoek), read.warnings
        else:
            SchemaSet().validate(message)
            verzoek = parse_verzoek(message, settings.stuf.ontvangers[0].organisatie)
    except (XmlRejected, SchemaInvalid) as exc:
        raise AdapterError(f"message not usable: {exc}") from None
    for w in warnings:
        yield f"warning: {w}"
    if verzoek.bron == "stam" and is_kopiebericht(verzoek, own_oins):
        ui = verzoek.uitvoerende_instantie.oin if verzoek.uitvoerende_instantie else "?"
        yield f"verzoek {verzoek.nummer} ({verzoek.soort}): kopiebericht (uitvoerende instantie {ui}): stored, no zaak"
        return
    opdracht = build(mappings, verzoek)
    target = targets.get(opdracht.target)
    if target is None:
        raise AdapterError(f"mapping routes to target {opdracht.target!r}, which is not configured")
    yield f"verzoek {verzoek.nummer} ({verzoek.soort}) → target {opdracht.target} ({target.kind})"
    for z in opdracht.zaken:
        yield f"  zaaktype {z.zaaktype}{' (triage: no activiteit mapped)' if z.triage else ''}"
    for d in opdracht.documenten:
        yield f"  bijlage {d.bijlage.bestandsnaam} → {d.informatieobjecttype} ({d.vertrouwelijkheidaanduiding})"
    rsins = {
        rsin for z in opdracht.zaken for rsin in (z.profiel.bronorganisatie, z.profiel.verantwoordelijke_organisatie)
    }
    for call in target.preview(opdracht):
        yield f"{call.method} {call.endpoint}   [{call.step}]"
        if call.body is not None:
            yield f"    {_body(call.body, rsins)}"
