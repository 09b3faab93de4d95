"""``loket-adapter mappings check``: find mapping mistakes before production does.

Offline: unknown keys and bad values (schema), invalid XPath, routes to unconfigured targets, unknown
profiles, templates naming fields that do not exist, value maps without a fallback, and no
deterministic zaak identificatie (a retry after a lost answer could not recognise its zaak).
Online (``--online``): every zaaktype the mapping can make (its rules and triage), with every
documenttype it names and the fallback, is resolved by the target's own delivery code on today's date:
the valid zaaktype version, the roltypen by name (two roltypen fitting one generic name is an error),
the statustypen, the resultaat an eindstatus needs, and each informatieobjecttype among those the
zaaktype allows. A check that passes means the delivery's catalogus lookups pass.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from pathlib import Path

from adapter.errors import AdapterError, TargetError
from adapter.mapping.engine import (
    DEFAULTS,
    TemplateError,
    informatieobjecttype_from,
    render,
    zaak_opdracht,
    zaaktype_profiles,
)
from adapter.mapping.loader import LoadedMapping, Problem, load_file
from adapter.mapping.schema import ProfielRegels
from adapter.model import (
    Activiteit,
    Adres,
    Advies,
    Bijlage,
    KadastraalPerceel,
    Locatie,
    Organisatie,
    Persoon,
    Soort,
    Verzoek,
)
from adapter.targets.base import Target

SAMPLE = Verzoek(
    bron="stuf-lvo",
    bericht="omvDi01AanbiedenAanvraag",
    soort=Soort.AANVRAAG,
    nummer="1234567",
    bevoegd_gezag=Organisatie("00000001002564440000", "Gemeente"),
    ontvanger=Organisatie("00000001002564440000", "Gemeente"),
    volgnummer=1,
    type="Reguliere procedure",
    omschrijving="Omschrijving",
    toelichting="Toelichting",
    datum=date(2026, 1, 1),
    initiatiefnemer=Persoon(natuurlijk=True, bsn="999993653", voorletters="J.", geslachtsnaam="Jansen"),
    locaties=(Locatie(Adres("Straat", 1, None, None, "1234AB", "Plaats"), (KadastraalPerceel("A", "B", "1"),)),),
    activiteiten=(Activiteit("code", "omschrijving"),),
    bijlagen=(Bijlage("1", "a.pdf", "Tekening"),),
)


def _profiles(m: LoadedMapping) -> list[tuple[tuple[str, ...], ProfielRegels]]:
    return [(("defaults",), m.mapping.defaults)] + [(("profiles", n), p) for n, p in m.mapping.profiles.items()]


def check_offline(m: LoadedMapping, target_names: set[str], adviseurs: set[str] | None = None) -> list[Problem]:
    """``adviseurs``: the names and OINs of ``[adviseurs.NAME]`` (None: not checked)."""
    f, mp = str(m.path), m.mapping
    out: list[Problem] = []
    for i, a in enumerate(mp.adviesverzoeken):
        if adviseurs is not None and a.adviseur not in adviseurs:
            out.append(
                Problem(
                    f,
                    f"adviesverzoeken[{i}].adviseur",
                    m.line_of("adviesverzoeken", i, "adviseur"),
                    f"adviseur {a.adviseur!r} is not configured ([adviseurs.NAME], by name or oin)",
                )
            )
    for i, r in enumerate(mp.route):
        if r.target not in target_names:
            out.append(
                Problem(
                    f,
                    f"route[{i}].target",
                    m.line_of("route", i, "target"),
                    f"target {r.target!r} is not configured ([targets.{r.target}])",
                )
            )
    for i, z in enumerate(mp.zaaktypen):
        if z.profile and z.profile not in mp.profiles:
            out.append(
                Problem(
                    f, f"zaaktypen[{i}].profile", m.line_of("zaaktypen", i, "profile"), f"unknown profile {z.profile!r}"
                )
            )
    if mp.triage and mp.triage.profile and mp.triage.profile not in mp.profiles:
        out.append(
            Problem(f, "triage.profile", m.line_of("triage", "profile"), f"unknown profile {mp.triage.profile!r}")
        )
    if mp.adviseur is not None:
        out += _check_adviseur(m)
    extra = {name: "x" for name in mp.xpath}
    for loc, prof in _profiles(m):
        for key, value in prof.model_dump().items():
            if isinstance(value, str) and "{" in value:
                try:
                    render(value, SAMPLE, extra)
                except (TemplateError, ValueError) as exc:
                    out.append(Problem(f, ".".join((*loc, key)), m.line_of(*loc, key), str(exc)))
    if "*" not in mp.values.informatieobjecttype and not mp.defaults.informatieobjecttype:
        out.append(
            Problem(
                f,
                "values.informatieobjecttype",
                m.line_of("values", "informatieobjecttype"),
                f'documenttypes not listed fall back to {DEFAULTS.informatieobjecttype!r}; add "*" to say so',
                "warning",
            )
        )
    for key in ("bronorganisatie", "verantwoordelijke_organisatie"):
        if not getattr(mp.defaults, key):
            out.append(
                Problem(
                    f,
                    f"defaults.{key}",
                    m.line_of("defaults"),
                    "required (RSIN of the bevoegd gezag): every delivery would stop",
                )
            )
    if not any(p.zaak_identificatie for _, p in _profiles(m)):
        out.append(
            Problem(
                f,
                "defaults.zaak_identificatie",
                m.line_of("defaults"),
                "not set: the zaaksysteem picks the identificatie, so a retry after a lost answer cannot recognise "
                'the zaak it made (set e.g. "OLO-{verzoek.nummer}")',
                "warning",
            )
        )
    return out


_ADVIES = Advies("ZS-ADV-2026-0057", Organisatie("00000001002564440000"))
#: An adviesaanvraag for the offline template check (crossRefnummer: the requester's adviesverzoek).
ADVIESAANVRAAG = replace(
    SAMPLE,
    bericht="omvDu01LeverenAanvraag",
    soort=Soort.ADVIESAANVRAAG,
    advies=_ADVIES,
)
_ADVIES_AGAIN = replace(_ADVIES, adviesverzoek_id="ZS-ADV-2026-0058")


def _check_adviseur(m: LoadedMapping) -> list[Problem]:
    """``[adviseur]``: a known profile, and an identificatie template that works and names the adviesverzoek
    (else a second advice request on one aanvraag would find the first one's zaak)."""
    f, regel = str(m.path), m.mapping.adviseur
    assert regel is not None
    out: list[Problem] = []
    if regel.profile and regel.profile not in m.mapping.profiles:
        out.append(
            Problem(f, "adviseur.profile", m.line_of("adviseur", "profile"), f"unknown profile {regel.profile!r}")
        )
    extra = {name: "x" for name in m.mapping.xpath}
    try:
        one = render(regel.zaak_identificatie, ADVIESAANVRAAG, extra)
        # the same adviseur asks again (a second adviesverzoek on the aanvraag, e.g. after an aanvulling)
        other = render(regel.zaak_identificatie, replace(ADVIESAANVRAAG, advies=_ADVIES_AGAIN), extra)
    except (TemplateError, ValueError) as exc:
        return [*out, Problem(f, "adviseur.zaak_identificatie", m.line_of("adviseur", "zaak_identificatie"), str(exc))]
    if one == other:
        out.append(
            Problem(
                f,
                "adviseur.zaak_identificatie",
                m.line_of("adviseur", "zaak_identificatie"),
                "does not name the adviesverzoek: two advice requests on one aanvraag would get one zaak "
                '(include "{verzoek.advies.adviesverzoek_id}")',
            )
        )
    return out


def check_mirror(m: LoadedMapping, postboxes: set[str]) -> list[Problem]:
    """``[[mirror]]`` rules naming a postbox the configuration does not have (``[postboxes.NAME]``)."""
    return [
        Problem(
            str(m.path),
            f"mirror[{i}].postbox",
            m.line_of("mirror", i, "postbox"),
            f"postbox {r.postbox!r} is not configured ([postboxes.{r.postbox}])",
        )
        for i, r in enumerate(m.mapping.mirror)
        if r.postbox not in postboxes
    ]


def check_mirror_dir(directory: Path, postboxes: set[str]) -> list[Problem]:
    """``check_mirror`` for every mapping file that loads (load problems are ``check_dir``'s to report)."""
    out: list[Problem] = []
    for path in sorted(directory.glob("*.toml")) if directory.is_dir() else []:
        loaded, _ = load_file(path)
        if loaded is not None:
            out += check_mirror(loaded, postboxes)
    return out


def _documenttypes(m: LoadedMapping, profile: str | None) -> list[str | None]:
    """Every documenttype a mapping names for this profile, and None for "any other" (the fallback)."""
    prof = m.mapping.profiles.get(profile or "")
    named = set(prof.informatieobjecttypen) if prof and prof.informatieobjecttypen else set()
    named |= set(m.mapping.values.informatieobjecttype)
    return [*sorted(named - {"*"}), None]


def check_online(m: LoadedMapping, targets: dict[str, Target], on: date | None = None) -> list[Problem]:
    """Every zaaktype the mapping can make (rules and triage) with every documenttype it names (and the
    fallback), resolved by the target exactly as a delivery on ``on`` (today) would resolve them."""
    f, mp = str(m.path), m.mapping
    on = on or date.today()
    out: list[Problem] = []
    rule_loc: dict[str, tuple[str | int, ...]] = {}
    for i, z in enumerate(mp.zaaktypen):
        rule_loc.setdefault(z.zaaktype, ("zaaktypen", i, "zaaktype"))
    if mp.triage:
        rule_loc.setdefault(mp.triage.zaaktype, ("triage", "zaaktype"))
    if mp.adviseur:
        rule_loc.setdefault(mp.adviseur.zaaktype, ("adviseur", "zaaktype"))
    for target_name in sorted({r.target for r in mp.route}):
        target = targets.get(target_name)
        if target is None:
            continue
        try:
            for zaaktype, profile in zaaktype_profiles(m).items():
                loc = rule_loc[zaaktype]
                bijlagen = tuple(
                    Bijlage(f"check-{n}", "check.pdf", d) for n, d in enumerate(_documenttypes(m, profile))
                )
                zaak = zaak_opdracht(
                    m, zaaktype, profile, replace(SAMPLE, bijlagen=bijlagen), {n: "x" for n in mp.xpath}
                )
                for problem in target.check_zaak(replace(zaak, documenten=()), on):
                    out.append(Problem(f, ".".join(map(str, loc)), m.line_of(*loc), problem))
                for d in zaak.documenten:
                    problems = target.check_zaak(replace(zaak, documenten=(d,)), on)
                    _, source = informatieobjecttype_from(m, profile, d.bijlage.documenttype)
                    key = ".".join(source) or ".".join(map(str, loc))
                    line = m.line_of(*source) if source else m.line_of(*loc)
                    for problem in problems:
                        if problem.startswith("documenttype"):
                            out.append(Problem(f, key, line, f"zaaktype {zaaktype}: {problem}"))
        except (TargetError, AdapterError) as exc:
            out.append(
                Problem(f, f"route (target {target_name})", m.line_of("route"), f"catalogus not reachable: {exc}")
            )
    return out


def check_dir(
    directory: Path, targets: dict[str, Target], *, online: bool, adviseurs: set[str] | None = None
) -> list[Problem]:
    if not directory.is_dir():
        return [Problem(str(directory), "", None, "mapping directory does not exist")]
    files = sorted(directory.glob("*.toml"))
    if not files:
        return [Problem(str(directory), "", None, "no mapping files (*.toml)")]
    problems: list[Problem] = []
    for path in files:
        loaded, found = load_file(path)
        problems += found
        if loaded is None:
            continue
        problems += check_offline(loaded, set(targets), adviseurs)
        if online and not any(p.severity == "error" for p in found):
            problems += check_online(loaded, targets)
    return problems
