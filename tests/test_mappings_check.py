"""``mappings check`` names file, key and line, and exits 1; ``mappings preview`` sends nothing."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import FIXTURES, write_config
from tests.delivery_env import Zaaksysteem, cli, copy_mappings, delivery_toml, needs_zgw_specs, start_zaaksysteem


@pytest.fixture(scope="module")
def zs() -> Iterator[Zaaksysteem]:
    z = start_zaaksysteem()
    yield z
    z.stop()


class Env:
    def __init__(self, tmp_path: Path, zs: Zaaksysteem) -> None:
        self.mappings = copy_mappings(tmp_path)
        self.file = self.mappings / "voorbeeldstad.toml"
        self.good = self.file.read_text()
        self.config = write_config(
            tmp_path / "config.toml", f"sqlite:///{tmp_path / 'a.db'}", 8999, delivery_toml(zs, self.mappings)
        )

    def run(self, *args: str) -> tuple[int, str, str]:
        class S:  # what tests.delivery_env.cli needs
            config = self.config

        r = cli(S, *args)  # type: ignore[arg-type]
        return r.returncode, r.stdout, r.stderr

    def line_of(self, needle: str) -> int:
        return next(i for i, line in enumerate(self.file.read_text().splitlines(), 1) if needle in line)


@pytest.fixture
def env(tmp_path: Path, zs: Zaaksysteem) -> Env:
    return Env(tmp_path, zs)


pytestmark = needs_zgw_specs


def test_good_mapping_passes_offline_and_online(env: Env) -> None:
    code, out, err = env.run("mappings", "check", "--online")
    assert code == 0, err
    assert "ok (catalogus checked)" in out


def test_unknown_key_names_file_key_and_line(env: Env) -> None:
    env.file.write_text(env.good.replace('profile = "regulier"', 'profiel = "regulier"'))
    code, _, err = env.run("mappings", "check")
    assert code == 1
    line = env.line_of('profiel = "regulier"')
    assert re.search(rf"voorbeeldstad\.toml:{line}: zaaktypen\.0\.profiel: unknown key", err), err


def test_invalid_xpath_names_file_key_and_line(env: Env) -> None:
    env.file.write_text(env.good.replace('procedure = "//L:aanvraagprocedure"', 'procedure = "//L:aanvraag[["'))
    code, _, err = env.run("mappings", "check")
    assert code == 1
    line = env.line_of('procedure = "//L:aanvraag[["')
    assert re.search(rf"voorbeeldstad\.toml:{line}: xpath\.procedure: invalid XPath", err), err


def test_unknown_zaaktype_is_found_online(env: Env) -> None:
    env.file.write_text(env.good.replace('zaaktype = "ZT-VOOROVERLEG"', 'zaaktype = "ZT-BESTAAT-NIET"'))
    assert env.run("mappings", "check")[0] == 0  # offline it cannot know
    code, _, err = env.run("mappings", "check", "--online")
    assert code == 1
    line = env.line_of('zaaktype = "ZT-BESTAAT-NIET"')
    assert re.search(
        rf"voorbeeldstad\.toml:{line}: zaaktypen\.1\.zaaktype: zaaktype 'ZT-BESTAAT-NIET' does not exist", err
    ), err


def test_unknown_informatieobjecttype_and_roltype_are_found_online(env: Env) -> None:
    env.file.write_text(
        env.good.replace('Foto = "Foto"', 'Foto = "Fotootje"').replace(
            'roltype_gemachtigde = "Gemachtigde"', 'roltype_gemachtigde = "adviseur"'
        )
    )
    code, _, err = env.run("mappings", "check", "--online")
    assert code == 1
    assert f"voorbeeldstad.toml:{env.line_of('Fotootje')}: values.informatieobjecttype.Foto: zaaktype ZT-OMV-REG" in err
    assert "informatieobjecttype 'Fotootje' does not exist" in err
    assert "roltype 'adviseur' does not exist for zaaktype ZT-OMV-REG" in err


def test_a_generic_roltype_that_fits_two_roltypen_is_an_error_naming_both(env: Env) -> None:
    """The catalogus has two roltypen with omschrijvingGeneriek "belanghebbende": naming the generic
    description is ambiguous, never a silent first pick."""
    env.file.write_text(
        env.good.replace('roltype_gemachtigde = "Gemachtigde"', 'roltype_gemachtigde = "belanghebbende"')
    )
    assert env.run("mappings", "check")[0] == 0  # offline a name cannot be judged
    code, _, err = env.run("mappings", "check", "--online")
    assert code == 1
    assert "roltype 'belanghebbende' matches 2 of zaaktype ZT-OMV-REG: 'Belanghebbende', 'Gemachtigde'" in err


def test_a_document_type_the_zaaktype_does_not_allow_is_named_with_file_line_and_both_names(env: Env) -> None:
    """Without its own map, the triage profile would send a Bouwtekening as "Tekening", which ZT-TRIAGE
    does not allow; the check walks every (zaaktype, documenttype) pair, triage included."""
    env.file.write_text(env.good.replace('informatieobjecttypen = { "*" = "Bijlage" }', ""))
    code, _, err = env.run("mappings", "check", "--online")
    assert code == 1
    line = env.line_of('Bouwtekening = "Tekening"')
    assert (
        f"voorbeeldstad.toml:{line}: values.informatieobjecttype.Bouwtekening: zaaktype ZT-TRIAGE: documenttype "
        "'Bouwtekening' → informatieobjecttype 'Tekening': informatieobjecttype 'Tekening' is not allowed for "
        "zaaktype ZT-TRIAGE (allowed: Aanvraag, Bijlage)"
    ) in err
    assert "ZT-OMV-REG" not in err  # the regular zaaktype allows it


def test_template_with_unknown_field_and_unknown_target(env: Env) -> None:
    env.file.write_text(
        env.good.replace('omschrijving = "{verzoek.omschrijving}"', 'omschrijving = "{verzoek.titel}"').replace(
            'target = "zaaksysteem"', 'target = "elders"'
        )
    )
    code, _, err = env.run("mappings", "check")
    assert code == 1
    assert f"voorbeeldstad.toml:{env.line_of('verzoek.titel')}: defaults.omschrijving:" in err
    assert "'verzoek.titel' does not exist" in err
    assert f"voorbeeldstad.toml:{env.line_of('target = ')}: route[0].target: target 'elders' is not configured" in err


def test_broken_toml_is_one_line_with_its_line(env: Env) -> None:
    env.file.write_text(env.good.replace("[triage]", "[triage"))
    code, _, err = env.run("mappings", "check")
    assert code == 1 and "not valid TOML" in err and "Traceback" not in err


def test_preview_prints_the_calls_and_sends_nothing(env: Env, zs: Zaaksysteem) -> None:
    before = len(zs.fake.requests)  # type: ignore[attr-defined]
    code, out, err = env.run("mappings", "preview", str(FIXTURES / "stuf-lvo" / "omvDi01AanbiedenAanvraag.xml"))
    assert code == 0, err
    assert "zaaktype ZT-OMV-REG" in out
    assert re.search(r"POST .*/zaken/api/v1/zaken\s+\[zaak:ZT-OMV-REG\]", out)
    assert out.count("/enkelvoudiginformatieobjecten") == 2
    assert "999993653" not in out  # the BSN is masked in the preview
    assert len(zs.fake.requests) == before  # type: ignore[attr-defined]


def test_preview_names_every_call_with_its_step_and_links_by_step(env: Env) -> None:
    """An operator reads the preview as the plan of the delivery: every call in order, under the step key
    its checkpoint will have (what the attempt log shows too), and each reference to an object made
    earlier in the plan by that object's step."""
    code, out, err = env.run("mappings", "preview", str(FIXTURES / "stuf-lvo" / "omvDi01AanbiedenAanvraag.xml"))
    assert code == 0, err
    calls = re.findall(r"^(POST|PUT|PATCH|DELETE) \S+/api/v1/(\S+)\s+\[(.+)\]$", out, re.M)
    assert calls == [
        ("POST", "zaken", "zaak:ZT-OMV-REG"),
        ("POST", "rollen", "rol:initiatiefnemer:ZT-OMV-REG"),
        ("POST", "rollen", "rol:gemachtigde:ZT-OMV-REG"),
        ("POST", "zaakobjecten", "zaakobject:adres:ZT-OMV-REG"),
        ("POST", "zaakobjecten", "zaakobject:perceel:0:ZT-OMV-REG"),
        ("POST", "enkelvoudiginformatieobjecten", "document:1234567-1"),
        ("POST", "zaakinformatieobjecten", "zio:ZT-OMV-REG:1234567-1"),
        ("POST", "enkelvoudiginformatieobjecten", "document:1234567-2"),
        ("POST", "zaakinformatieobjecten", "zio:ZT-OMV-REG:1234567-2"),
        ("POST", "statussen", "status:start:ZT-OMV-REG"),
    ]
    bodies = [json.loads(line) for line in out.splitlines() if line.startswith("    {")]
    assert len(bodies) == len(calls)
    assert all(b["zaak"] == "<zaken zaak:ZT-OMV-REG>" for b in bodies[1:] if "zaak" in b)
    assert [b["informatieobject"] for b in bodies if "informatieobject" in b] == [
        "<enkelvoudiginformatieobjecten document:1234567-1>",
        "<enkelvoudiginformatieobjecten document:1234567-2>",
    ]
    assert [b.get("identificatie") for b in bodies if "informatieobjecttype" in b] == ["1234567-1", "1234567-2"]
    assert bodies[-1]["statustoelichting"] == "Ontvangen via het Omgevingsloket (bericht OLO-2026-000000123)"


def test_preview_of_a_follow_up_puts_its_documents_on_the_zaak_of_its_verzoek(env: Env) -> None:
    """A follow-up goes to the zaken its aanvraag made; the preview knows none, so it shows one placeholder
    zaak of the verzoek (``DryRunSteps.zaken``) rather than stopping as "waiting for its aanvraag"."""
    code, out, err = env.run("mappings", "preview", str(FIXTURES / "stuf-lvo" / "vrgDi01IndienenAanvulling.xml"))
    assert code == 0, err
    calls = re.findall(r"^(POST|PUT|PATCH|DELETE) \S+/api/v1/(\S+)\s+\[(.+)\]$", out, re.M)
    assert [c[1] for c in calls] == ["enkelvoudiginformatieobjecten", "zaakinformatieobjecten"]
    bodies = [json.loads(line) for line in out.splitlines() if line.startswith("    {")]
    assert bodies[1]["zaak"] == "<zaak van verzoek 1234567>"


@pytest.mark.parametrize(
    ("drop", "objects"),
    [
        ("kadastraalPerceel", ["zaakobject:adres:ZT-OMV-REG"]),
        ("adres", ["zaakobject:perceel:0:ZT-OMV-REG"]),
        ("both", ["zaakobject:punt:ZT-OMV-REG"]),
    ],
)
def test_a_point_becomes_a_zaakobject_only_for_a_locatie_without_adres_and_perceel(
    env: Env, tmp_path: Path, drop: str, objects: list[str]
) -> None:
    """The puntRD of a locatie only places the zaak; it becomes a zaakobject of its own only when the
    locatie has nothing better to point at (no adres, no perceel)."""
    body = (FIXTURES / "stuf-lvo" / "omvDi01AanbiedenAanvraag.xml").read_text()
    for element in ("kadastraalPerceel", "adres") if drop == "both" else (drop,):
        body = re.sub(rf"<LVO:{element}>.*?</LVO:{element}>", "", body, flags=re.S)
    message = tmp_path / "locatie.xml"
    message.write_text(body)
    code, out, err = env.run("mappings", "preview", str(message))
    assert code == 0, err
    assert re.findall(r"^POST \S+/zaakobjecten\s+\[(.+)\]$", out, re.M) == objects


@pytest.mark.parametrize(
    ("old", "new", "problem"),
    [
        ('roltype_initiator = "initiator"', 'roltype_initiator = "initiatorx"', "roltype 'initiatorx' does not exist"),
        ('roltype_gemachtigde = "Gemachtigde"', 'roltype_gemachtigde = "Gemachtigdex"', "roltype 'Gemachtigdex'"),
        ("statustype_start = 1 ", "statustype_start = 9 ", "statustype 9 does not exist"),
        ('statustype_intrekking = "Ingetrokken"', 'statustype_intrekking = "Weg"', "statustype 'Weg' does not exist"),
    ],
    ids=["roltype_initiator", "roltype_gemachtigde", "statustype_start", "statustype_intrekking"],
)
def test_each_roltype_and_statustype_of_a_profile_is_checked_online_and_named(
    env: Env, old: str, new: str, problem: str
) -> None:
    """Every roltype and statustype a delivery will look up is looked up by `mappings check --online`
    first: a wrong one is an error on the rule's zaaktype line naming the setting, not a delivery that
    stops later."""
    env.file.write_text(env.good.replace(old, new))
    assert env.run("mappings", "check")[0] == 0  # offline it cannot know
    code, _, err = env.run("mappings", "check", "--online")
    assert code == 1
    key = new.split(" =")[0]
    line = env.line_of('zaaktype = "ZT-OMV-REG"')
    assert f"voorbeeldstad.toml:{line}: zaaktypen.0.zaaktype: {key}: {problem}" in err, err


def test_an_intrekking_to_the_eindstatus_without_a_resultaattype_is_found_online(env: Env) -> None:
    """The Zaken API closes a zaak only with a resultaat: an intrekking statustype that is the eindstatus
    needs resultaattype_intrekking, and the online check says so before any delivery stops on it."""
    env.file.write_text(
        env.good.replace('statustype_intrekking = "Ingetrokken"', 'statustype_intrekking = "Afgehandeld"')
    )
    code, _, err = env.run("mappings", "check", "--online")
    assert code == 1
    line = env.line_of('zaaktype = "ZT-OMV-REG"')
    assert f"voorbeeldstad.toml:{line}: zaaktypen.0.zaaktype: statustype_intrekking: " in err, err
    assert "resultaattype_intrekking" in err
