"""``mappings preview``: what a message would become, as the list of calls, without sending any."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

from adapter.config import Settings
from adapter.errors import AdapterError
from adapter.logs import mask_text
from adapter.loket.lvo_parse import parse_verzoek
from adapter.mapping.loader import LoadedMapping
from adapter.mapping.opdracht import Opdracht
from adapter.model import Verzoek
from adapter.schemas import SchemaInvalid, SchemaSet
from adapter.targets.base import Target
from adapter.validation import message_of
from adapter.xmlsafe import Limits, XmlRejected, parse


def _body(body: Any) -> str:
    if isinstance(body, dict):
        shown = {k: (f"<{len(v)} base64 chars>" if k == "inhoud" else v) for k, v in body.items()}
        return mask_text(json.dumps(shown, ensure_ascii=False))
    return mask_text(str(body))[:2000]


def preview_message(
    raw: bytes,
    settings: Settings,
    mappings: list[LoadedMapping],
    targets: dict[str, Target],
    build: Callable[[list[LoadedMapping], Verzoek], Opdracht],
) -> Iterator[str]:
    try:
        message = message_of(parse(raw, Limits(max_bytes=settings.inbound.max_body_bytes)))
        SchemaSet().validate(message)
    except (XmlRejected, SchemaInvalid) as exc:
        raise AdapterError(f"message not usable: {exc}") from None
    ontvanger = settings.stuf.ontvangers[0].organisatie
    verzoek = parse_verzoek(message, ontvanger)
    opdracht = build(mappings, verzoek)
    target = targets.get(opdracht.target)
    if target is None:
        raise AdapterError(f"mapping routes to target {opdracht.target!r}, which is not configured")
    yield f"verzoek {verzoek.nummer} ({verzoek.soort}) → target {opdracht.target} ({target.kind})"
    for z in opdracht.zaken:
        yield f"  zaaktype {z.zaaktype}{' (triage: no activiteit mapped)' if z.triage else ''}"
    for d in opdracht.documenten:
        yield f"  bijlage {d.bijlage.bestandsnaam} → {d.informatieobjecttype} ({d.vertrouwelijkheidaanduiding})"
    for call in target.preview(opdracht):
        yield f"{call.method} {call.endpoint}   [{call.step}]"
        if call.body is not None:
            yield f"    {_body(call.body)}"
