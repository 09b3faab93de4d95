"""Verzoek → Opdracht: routing, zaaktypen, profiles, value maps and templates (pure functions)."""

from __future__ import annotations

import string
from dataclasses import dataclass
from typing import Any

from lxml import etree

from adapter.errors import MappingError
from adapter.mapping.loader import LoadedMapping
from adapter.mapping.opdracht import DocumentOpdracht, Opdracht, Overdracht, Profiel, ZaakOpdracht
from adapter.mapping.schema import ProfielRegels
from adapter.model import Soort, Verzoek

DEFAULTS = ProfielRegels(
    omschrijving="{verzoek.omschrijving}",
    toelichting="{verzoek.soort} {verzoek.nummer} via het Omgevingsloket",
    vertrouwelijkheidaanduiding="zaakvertrouwelijk",
    roltype_initiator="initiator",
    roltype_gemachtigde="belanghebbende",
    statustype_start=1,
    kenmerk_bron="Omgevingsloket",
    informatieobjecttype="Bijlage",
)


class NoRoute(MappingError):
    """No mapping routes this verzoek (its OIN or soort is not configured)."""


class TemplateError(MappingError):
    """A template names a field that is not allowed or does not exist for this verzoek."""


class _SafeFormatter(string.Formatter):
    """``{verzoek.nummer}``-style templates; no private attributes, no indexing tricks."""

    def get_field(self, field_name: str, args: Any, kwargs: Any) -> Any:
        if any(part.startswith("_") for part in field_name.replace("[", ".").split(".")):
            raise TemplateError(f"template field {field_name!r} is not allowed")
        try:
            return super().get_field(field_name, args, kwargs)
        except (AttributeError, KeyError, IndexError) as exc:
            raise TemplateError(f"template field {field_name!r} does not exist") from exc

    def format_field(self, value: Any, format_spec: str) -> str:
        return "" if value is None else super().format_field(value, format_spec)


_fmt = _SafeFormatter()


def render(template: str, verzoek: Verzoek, extra: dict[str, str]) -> str:
    return _fmt.format(template, verzoek=verzoek, xpath=extra).strip()


def extract_xpaths(mapping: LoadedMapping, verzoek: Verzoek) -> dict[str, str]:
    if not mapping.xpaths or verzoek.bron_xml is None:
        return {}
    root = etree.fromstring(verzoek.bron_xml, etree.XMLParser(resolve_entities=False, no_network=True))
    out = {}
    for name, xp in mapping.xpaths.items():
        result = xp(root)
        if isinstance(result, list):
            result = " ".join(r.text or "" if isinstance(r, etree._Element) else str(r) for r in result)
        out[name] = str(result).strip()
    return out


@dataclass(frozen=True)
class Routed:
    mapping: LoadedMapping
    target: str


def route(mappings: list[LoadedMapping], verzoek: Verzoek) -> Routed:
    oin = verzoek.ontvanger.oin if verzoek.ontvanger else None
    for m in mappings:
        for r in m.mapping.route:
            if r.oin == oin and (r.soorten is None or verzoek.soort in r.soorten):
                return Routed(m, r.target)
    raise NoRoute(f"no mapping routes {verzoek.soort} for OIN {oin} (verzoek {verzoek.nummer})")


def _profiel(m: LoadedMapping, profile: str | None, verzoek: Verzoek, extra: dict[str, str]) -> Profiel:
    layers = [DEFAULTS, m.mapping.defaults]
    if profile:
        layers.append(m.mapping.profiles[profile])
    merged: dict[str, Any] = {}
    for layer in layers:
        merged.update({k: v for k, v in layer.model_dump().items() if v is not None})
    for key in ("bronorganisatie", "verantwoordelijke_organisatie"):
        if key not in merged:
            raise TemplateError(f"{m.path.name}: defaults.{key} is required (RSIN of the bevoegd gezag)")
    texts = {k: render(v, verzoek, extra) if isinstance(v, str) else v for k, v in merged.items()}
    return Profiel(
        omschrijving=texts["omschrijving"][:80],
        toelichting=texts["toelichting"][:1000],
        bronorganisatie=texts["bronorganisatie"],
        verantwoordelijke_organisatie=texts["verantwoordelijke_organisatie"],
        vertrouwelijkheidaanduiding=texts["vertrouwelijkheidaanduiding"],
        roltype_initiator=texts["roltype_initiator"],
        roltype_gemachtigde=texts["roltype_gemachtigde"],
        statustype_start=merged.get("statustype_start"),  # volgnummers (int), not templates
        statustype_intrekking=merged.get("statustype_intrekking"),
        zaak_identificatie=texts.get("zaak_identificatie") or None,
        kenmerk_bron=texts["kenmerk_bron"],
    )


def _zaken(m: LoadedMapping, verzoek: Verzoek, extra: dict[str, str]) -> tuple[ZaakOpdracht, ...]:
    codes = {a.code for a in verzoek.activiteiten}
    chosen: dict[str, str | None] = {}
    for regel in m.mapping.zaaktypen:
        if verzoek.soort not in regel.soorten:
            continue
        if "*" in regel.activiteiten or codes & set(regel.activiteiten):
            chosen.setdefault(regel.zaaktype, regel.profile)
    if chosen:
        return tuple(ZaakOpdracht(zt, _profiel(m, p, verzoek, extra)) for zt, p in chosen.items())
    triage = m.mapping.triage
    if triage is None:
        raise NoRoute(f"{m.path.name}: no zaaktype for activiteiten {sorted(codes)} and no [triage] zaaktype")
    return (ZaakOpdracht(triage.zaaktype, _profiel(m, triage.profile, verzoek, extra), triage=True),)


def _documenten(m: LoadedMapping, verzoek: Verzoek, profiel: Profiel, default_iot: str) -> tuple[DocumentOpdracht, ...]:
    values = m.mapping.values
    out = []
    for b in verzoek.bijlagen:
        iot = values.informatieobjecttype.get(b.documenttype or "", values.informatieobjecttype.get("*", default_iot))
        vertrouwelijk = values.vertrouwelijkheid.get(
            "true" if b.vertrouwelijk else "false",
            "vertrouwelijk" if b.vertrouwelijk else profiel.vertrouwelijkheidaanduiding,
        )
        out.append(DocumentOpdracht(b, iot, vertrouwelijk, b.bestandsnaam))
    return tuple(out)


def build_opdracht(mappings: list[LoadedMapping], verzoek: Verzoek) -> Opdracht:
    """Everything a target needs to deliver this verzoek. Raises NoRoute / TemplateError."""
    routed = route(mappings, verzoek)
    m = routed.mapping
    extra = extract_xpaths(m, verzoek)
    profiel = _profiel(m, None, verzoek, extra)
    default_iot = m.mapping.defaults.informatieobjecttype or DEFAULTS.informatieobjecttype or "Bijlage"
    overdracht = _overdracht(m, verzoek)
    zaken = _zaken(m, verzoek, extra) if verzoek.soort.creates_zaak and overdracht is None else ()
    return Opdracht(
        target=routed.target,
        verzoek=verzoek,
        zaken=zaken,
        documenten=_documenten(m, verzoek, zaken[0].profiel if zaken else profiel, default_iot),
        profiel=profiel,
        extra=extra,
        overdracht=overdracht,
    )


def _overdracht(m: LoadedMapping, verzoek: Verzoek) -> Overdracht | None:
    """Transfer rules apply to new STAM verzoeken only (the werkmap is where they can be handed on)."""
    if verzoek.bron != "stam" or verzoek.soort not in (Soort.AANVRAAG, Soort.CONCEPTVERZOEK):
        return None
    codes = {a.code for a in verzoek.activiteiten}
    for regel in m.mapping.overdragen:
        if codes & set(regel.activiteiten) or "*" in regel.activiteiten:
            return Overdracht(regel.naar, regel.rol, regel.toelichting)
    return None


def is_follow_up(soort: Soort) -> bool:
    return not soort.creates_zaak
