"""Verzoek → Opdracht: routing, zaaktypen, profiles, value maps and templates (pure functions)."""

from __future__ import annotations

import hashlib
import string
from dataclasses import dataclass, replace
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


class _Named(dict[str, str]):
    """The XPath values, readable as ``{xpath.NAME}`` and as ``{xpath[NAME]}``."""

    def __getattr__(self, name: str) -> str:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


def render(template: str, verzoek: Verzoek, extra: dict[str, str]) -> str:
    try:
        return _fmt.format(template, verzoek=verzoek, xpath=_Named(extra)).strip()
    except ValueError as exc:  # a bad format spec or brace: the mapping's fault, not a reason to retry
        raise TemplateError(f"template {template!r}: {exc}") from None


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
    """The first route (files in name order, routes in file order) whose OIN, soorten and typen match."""
    oin = verzoek.ontvanger.oin if verzoek.ontvanger else None
    for m in mappings:
        for r in m.mapping.route:
            if (
                r.oin == oin
                and (r.soorten is None or verzoek.soort in r.soorten)
                and (r.typen is None or verzoek.type in r.typen)
            ):
                return Routed(m, r.target)
    kind = f" of type {verzoek.type!r}" if verzoek.type else ""
    raise NoRoute(f"no mapping routes {verzoek.soort}{kind} for OIN {oin} (verzoek {verzoek.nummer})")


def _profiel(m: LoadedMapping, profile: str | None, verzoek: Verzoek, extra: dict[str, str]) -> Profiel:
    layers = [DEFAULTS, m.mapping.defaults]
    if profile:
        if profile not in m.mapping.profiles:
            raise TemplateError(f"{m.path.name}: unknown profile {profile!r}")
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
        statustype_start=merged.get("statustype_start"),  # volgnummer or omschrijving, not templates
        statustype_intrekking=merged.get("statustype_intrekking"),
        resultaattype_intrekking=merged.get("resultaattype_intrekking"),
        zaak_identificatie=texts.get("zaak_identificatie") or None,
        kenmerk_bron=texts["kenmerk_bron"],
    )


def zaak_opdracht(
    m: LoadedMapping,
    zaaktype: str,
    profile: str | None,
    verzoek: Verzoek,
    extra: dict[str, str],
    *,
    triage: bool = False,
) -> ZaakOpdracht:
    """A zaak of ``zaaktype`` with ``profile``: its profile after templates, and the verzoek's bijlagen
    as documents of the types this profile maps them to."""
    profiel = _profiel(m, profile, verzoek, extra)
    return ZaakOpdracht(zaaktype, profiel, triage, _documenten(m, verzoek, profiel, profile))


#: A ZGW identificatie is at most 40 characters.
_ID_MAX, _ID_PREFIX = 40, 33


def bounded_identificatie(ident: str) -> str:
    """``ident`` when it fits in 40 characters, else its first 33 and ``-`` and 6 hex of a hash of all of
    it: deterministic (a retry finds its zaak by it) and never shared by two that agree in a prefix."""
    if len(ident) <= _ID_MAX:
        return ident
    return f"{ident[:_ID_PREFIX]}-{hashlib.sha256(ident.encode()).hexdigest()[:6]}"


def adviseur_zaak(m: LoadedMapping, verzoek: Verzoek, extra: dict[str, str]) -> ZaakOpdracht:
    """An adviesaanvraag under ``[adviseur]``: a zaak of its zaaktype per adviesverzoek, identificatie from
    its template, and documents of their own (bijlage ``<bijlageId>-<adviesverzoek>``: the same bijlage of a
    second adviesverzoek on the aanvraag is another document, on the other zaak)."""
    regel = m.mapping.adviseur
    assert regel is not None
    av = verzoek.advies.adviesverzoek_id if verzoek.advies else ""
    if not av:
        raise MappingError(
            f"adviesaanvraag {verzoek.nummer} names no adviesverzoek (crossRefnummer): no zaak of its own"
        )
    zo = zaak_opdracht(m, regel.zaaktype, regel.profile, verzoek, extra)
    ident = bounded_identificatie(render(regel.zaak_identificatie, verzoek, extra))
    documenten = tuple(replace(d, bijlage=replace(d.bijlage, id=f"{d.bijlage.id}-{av}"[:200])) for d in zo.documenten)
    return replace(zo, profiel=replace(zo.profiel, zaak_identificatie=ident), documenten=documenten)


def _zaken(m: LoadedMapping, verzoek: Verzoek, extra: dict[str, str]) -> tuple[ZaakOpdracht, ...]:
    """Every rule that matches (``"*"`` matches always); a fallback rule only when none did; then triage.
    An adviesaanvraag under ``[adviseur]``: its one zaak."""
    if verzoek.soort is Soort.ADVIESAANVRAAG and m.mapping.adviseur is not None:
        return (adviseur_zaak(m, verzoek, extra),)
    codes = {a.code for a in verzoek.activiteiten}
    chosen: dict[str, str | None] = {}
    fallback: dict[str, str | None] = {}
    specific = False  # an activiteit rule (not "*") matched
    for regel in m.mapping.zaaktypen:
        if verzoek.soort not in regel.soorten or (regel.typen is not None and verzoek.type not in regel.typen):
            continue
        if regel.fallback:
            fallback.setdefault(regel.zaaktype, regel.profile)
        elif codes & set(regel.activiteiten):
            specific = True
            chosen.setdefault(regel.zaaktype, regel.profile)
        elif "*" in regel.activiteiten:
            chosen.setdefault(regel.zaaktype, regel.profile)
    if not specific:  # "otherwise": no activiteit rule matched ("*" rules are not activiteit rules)
        for zt, p in fallback.items():
            chosen.setdefault(zt, p)
    if chosen:
        return tuple(zaak_opdracht(m, zt, p, verzoek, extra) for zt, p in chosen.items())
    triage = m.mapping.triage
    if triage is None:
        raise NoRoute(f"{m.path.name}: no zaaktype for activiteiten {sorted(codes)} and no [triage] zaaktype")
    return (zaak_opdracht(m, triage.zaaktype, triage.profile, verzoek, extra, triage=True),)


def informatieobjecttype(m: LoadedMapping, profile: str | None, documenttype: str | None) -> str:
    """The informatieobjecttype (omschrijving) of a bijlage on a zaak of this profile's zaaktypen."""
    return informatieobjecttype_from(m, profile, documenttype)[0]


def informatieobjecttype_from(
    m: LoadedMapping, profile: str | None, documenttype: str | None
) -> tuple[str, tuple[str, ...]]:
    """(informatieobjecttype, the mapping key it came from) of a bijlage on a zaak of this profile.

    A profile with its own ``informatieobjecttypen`` map uses that map instead of
    ``[values.informatieobjecttype]`` (a zaaktype allows only some types: its profile says which). The
    documenttype is looked up in that map; else the map's ``"*"``, the profile's ``informatieobjecttype``,
    the global ``"*"`` (without a profile map), the defaults' ``informatieobjecttype``, "Bijlage"."""
    d = documenttype or ""
    prof = m.mapping.profiles.get(profile or "")
    own = prof.informatieobjecttypen if prof and prof.informatieobjecttypen else None
    own_loc = ("profiles", profile or "", "informatieobjecttypen")
    values_loc = ("values", "informatieobjecttype")
    if own is not None:
        if d in own and d != "*":
            return own[d], (*own_loc, d)
    elif d and d != "*" and d in m.mapping.values.informatieobjecttype:
        return m.mapping.values.informatieobjecttype[d], (*values_loc, d)
    fallbacks: list[tuple[str | None, tuple[str, ...]]] = [
        (own.get("*") if own else None, (*own_loc, "*")),
        (prof.informatieobjecttype if prof else None, ("profiles", profile or "", "informatieobjecttype")),
        (None if own else m.mapping.values.informatieobjecttype.get("*"), (*values_loc, "*")),
        (m.mapping.defaults.informatieobjecttype, ("defaults", "informatieobjecttype")),
    ]
    for value, loc in fallbacks:
        if value:
            return value, loc
    return str(DEFAULTS.informatieobjecttype), ()


def _documenten(
    m: LoadedMapping, verzoek: Verzoek, profiel: Profiel, profile: str | None
) -> tuple[DocumentOpdracht, ...]:
    values = m.mapping.values
    out = []
    for b in verzoek.bijlagen:
        vertrouwelijk = values.vertrouwelijkheid.get(
            "true" if b.vertrouwelijk else "false",
            "vertrouwelijk" if b.vertrouwelijk else profiel.vertrouwelijkheidaanduiding,
        )
        out.append(DocumentOpdracht(b, informatieobjecttype(m, profile, b.documenttype), vertrouwelijk, b.bestandsnaam))
    return tuple(out)


def zaaktype_profiles(m: LoadedMapping) -> dict[str, str | None]:
    """Every zaaktype the mapping can make, with its profile (first rule wins), triage included."""
    out: dict[str, str | None] = {}
    for regel in m.mapping.zaaktypen:
        out.setdefault(regel.zaaktype, regel.profile)
    if m.mapping.triage:
        out.setdefault(m.mapping.triage.zaaktype, m.mapping.triage.profile)
    if m.mapping.adviseur:
        out.setdefault(m.mapping.adviseur.zaaktype, m.mapping.adviseur.profile)
    return out


def build_opdracht(mappings: list[LoadedMapping], verzoek: Verzoek) -> Opdracht:
    """Everything a target needs to deliver this verzoek. Raises NoRoute / TemplateError."""
    routed = route(mappings, verzoek)
    m = routed.mapping
    extra = extract_xpaths(m, verzoek)
    profiel = _profiel(m, None, verzoek, extra)
    overdracht = _overdracht(m, verzoek)
    zaken = _zaken(m, verzoek, extra) if verzoek.soort.creates_zaak and overdracht is None else ()
    vervolg = (
        {zt: zaak_opdracht(m, zt, p, verzoek, extra) for zt, p in zaaktype_profiles(m).items()}
        if not verzoek.soort.creates_zaak
        else {}
    )
    return Opdracht(
        target=routed.target,
        verzoek=verzoek,
        zaken=zaken,
        documenten=zaken[0].documenten if zaken else _documenten(m, verzoek, profiel, None),
        profiel=profiel,
        extra=extra,
        overdracht=overdracht,
        vervolg=vervolg,
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
