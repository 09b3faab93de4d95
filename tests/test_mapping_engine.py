"""The mapping engine as pure functions: routing on soort and type, "*" versus an explicit fallback rule,
document types per profile, templates, and mapping lines found in their own table."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from adapter.errors import MappingError
from adapter.mapping.engine import NoRoute, build_opdracht, informatieobjecttype_from, render, route
from adapter.mapping.loader import LoadedMapping, load_file, locate
from adapter.model import Activiteit, Bijlage, Organisatie, Soort, Verzoek

OIN = "00000001002564440000"
BASE = f"""
[[route]]
oin = "{OIN}"
target = "zgw"
typen = ["Aanvraag vergunning"]

[[route]]
oin = "{OIN}"
target = "meldingen"
typen = ["Melding"]

[defaults]
bronorganisatie = "002564440"
verantwoordelijke_organisatie = "002564440"
informatieobjecttype = "Bijlage"

[profiles.beperkt]
informatieobjecttype = "Bijlage"
informatieobjecttypen = {{ Bouwtekening = "Aanvraag" }}

[[zaaktypen]]
activiteiten = ["dakkapel"]
zaaktype = "ZT-DAKKAPEL"

[[zaaktypen]]
activiteiten = ["*"]
zaaktype = "ZT-ALTIJD"

[[zaaktypen]]
fallback = true
zaaktype = "ZT-ANDERS"
profile = "beperkt"

[triage]
zaaktype = "ZT-TRIAGE"

[values.informatieobjecttype]
Bouwtekening = "Tekening"
"*" = "Overig"
"""


def load(tmp_path: Path, text: str = BASE) -> LoadedMapping:
    path = tmp_path / "m.toml"
    path.write_text(text)
    loaded, problems = load_file(path)
    assert loaded is not None, problems
    return loaded


def verzoek(*codes: str, type_: str | None = "Aanvraag vergunning", **kw: object) -> Verzoek:
    return Verzoek(
        bron="stam",
        bericht="verzoek",
        soort=Soort.AANVRAAG,
        nummer="1",
        ontvanger=Organisatie(OIN),
        type=type_,
        activiteiten=tuple(Activiteit(c) for c in codes),
        **kw,  # type: ignore[arg-type]
    )


def test_routing_takes_the_verzoek_type(tmp_path: Path) -> None:
    m = load(tmp_path)
    assert route([m], verzoek("dakkapel")).target == "zgw"
    assert route([m], verzoek("dakkapel", type_="Melding")).target == "meldingen"
    with pytest.raises(NoRoute, match="of type 'Informatieverzoek'"):
        route([m], verzoek("dakkapel", type_="Informatieverzoek"))


def test_star_adds_a_zaak_and_fallback_means_otherwise(tmp_path: Path) -> None:
    m = load(tmp_path)
    matched = build_opdracht([m], verzoek("dakkapel"))
    assert [z.zaaktype for z in matched.zaken] == ["ZT-DAKKAPEL", "ZT-ALTIJD"]  # no fallback: a rule matched
    other = build_opdracht([m], verzoek("schuur"))
    assert [z.zaaktype for z in other.zaken] == ["ZT-ALTIJD", "ZT-ANDERS"]  # "*" still, and the fallback
    assert not any(z.triage for z in other.zaken)
    no_rules = load(
        tmp_path,
        BASE.replace('activiteiten = ["*"]', 'activiteiten = ["nooit"]').replace(
            "fallback = true\n", 'activiteiten = ["x"]\n'
        ),
    )
    assert [(z.zaaktype, z.triage) for z in build_opdracht([no_rules], verzoek("schuur")).zaken] == [
        ("ZT-TRIAGE", True)
    ]


def test_a_fallback_rule_with_activiteiten_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "m.toml"
    path.write_text(BASE.replace("fallback = true\n", 'fallback = true\nactiviteiten = ["x"]\n'))
    loaded, problems = load_file(path)
    assert loaded is None and "leave activiteiten out" in str(problems[0])


def test_document_types_come_from_the_zaaktypes_profile(tmp_path: Path) -> None:
    m = load(tmp_path)
    bijlagen = (Bijlage("1", "t.pdf", "Bouwtekening"), Bijlage("2", "f.jpg", "Foto"))
    opdracht = build_opdracht([m], verzoek("schuur", bijlagen=bijlagen))
    by_zaaktype = {z.zaaktype: [d.informatieobjecttype for d in z.documenten] for z in opdracht.zaken}
    # the global map for ZT-ALTIJD; the profile's own map (and its fallback) for ZT-ANDERS
    assert by_zaaktype == {"ZT-ALTIJD": ["Tekening", "Overig"], "ZT-ANDERS": ["Aanvraag", "Bijlage"]}
    assert informatieobjecttype_from(m, "beperkt", "Foto") == (
        "Bijlage",
        ("profiles", "beperkt", "informatieobjecttype"),
    )
    assert informatieobjecttype_from(m, None, "Bouwtekening") == (
        "Tekening",
        ("values", "informatieobjecttype", "Bouwtekening"),
    )


def test_a_document_type_map_in_defaults_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "m.toml"
    path.write_text(
        BASE.replace(
            'informatieobjecttype = "Bijlage"\n\n[profiles', 'informatieobjecttypen = { A = "B" }\n\n[profiles', 1
        )
    )
    loaded, problems = load_file(path)
    assert loaded is None and "belongs in a profile" in str(problems[0])


def test_xpath_values_as_attribute_and_as_item() -> None:
    """The README's ``{xpath.NAME}`` form works, and so does ``{xpath[NAME]}``."""
    v = verzoek()
    assert render("P: {xpath.procedure} / {xpath[procedure]}", v, {"procedure": "regulier"}) == "P: regulier / regulier"


def test_a_dotted_key_is_located_in_its_own_table() -> None:
    """``values.informatieobjecttype`` must not be reported on ``[defaults]``'s ``informatieobjecttype``."""
    lines = BASE.splitlines()
    line = locate(BASE, ("values", "informatieobjecttype"))
    assert line is not None and lines[line - 1] == "[values.informatieobjecttype]"
    line = locate(BASE, ("values", "informatieobjecttype", "Bouwtekening"))
    assert line is not None and lines[line - 1] == 'Bouwtekening = "Tekening"'
    line = locate(BASE, ("profiles", "beperkt", "informatieobjecttype"))
    assert (
        line is not None
        and lines[line - 1] == 'informatieobjecttype = "Bijlage"'
        and line > lines.index("[profiles.beperkt]")
    )


def test_follow_ups_know_every_zaaktype_of_the_mapping(tmp_path: Path) -> None:
    m = load(tmp_path)
    aanvulling = replace(verzoek("dakkapel"), soort=Soort.AANVULLING, bijlagen=(Bijlage("1", "t.pdf", "Bouwtekening"),))
    opdracht = build_opdracht([m], aanvulling)
    assert opdracht.zaken == ()
    assert {zt: [d.informatieobjecttype for d in z.documenten] for zt, z in opdracht.vervolg.items()} == {
        "ZT-DAKKAPEL": ["Tekening"],
        "ZT-ALTIJD": ["Tekening"],
        "ZT-ANDERS": ["Aanvraag"],
        "ZT-TRIAGE": ["Tekening"],
    }


def test_what_a_mapping_accepts_has_an_effect_or_is_refused(tmp_path: Path) -> None:
    """A follow-up soort on a zaaktype rule (never makes a zaak) and a vertrouwelijkheid key other than
    true/false would be accepted and ignored: both are refused with the key."""
    for old, new, said in (
        ('zaaktype = "ZT-DAKKAPEL"', 'zaaktype = "ZT-DAKKAPEL"\nsoorten = ["aanvulling"]', "never make a zaak"),
        ('"*" = "Overig"', '"*" = "Overig"\n\n[values.vertrouwelijkheid]\nja = "geheim"', "vertrouwelijkheid"),
    ):
        path = tmp_path / "m.toml"
        path.write_text(BASE.replace(old, new))
        loaded, problems = load_file(path)
        assert loaded is None and said in str(problems[0]), problems


def test_mapping_mistakes_found_at_delivery_are_permanent(tmp_path: Path) -> None:
    from adapter.errors import is_transient

    bad_profile = load(tmp_path, BASE.replace('profile = "beperkt"', 'profile = "bestaat-niet"'))
    with pytest.raises(MappingError, match="unknown profile 'bestaat-niet'") as caught:
        build_opdracht([bad_profile], verzoek("schuur"))
    assert not is_transient(caught.value)
    with pytest.raises(MappingError, match="template"):
        render("{verzoek.nummer:>>>}", verzoek(), {})


def test_defaults_without_rsin_are_reported_offline(tmp_path: Path) -> None:
    from adapter.mapping.check import check_offline

    m = load(tmp_path, BASE.replace('bronorganisatie = "002564440"\n', ""))
    problems = [str(p) for p in check_offline(m, {"zgw", "meldingen"})]
    assert any("defaults.bronorganisatie: required" in p for p in problems), problems
