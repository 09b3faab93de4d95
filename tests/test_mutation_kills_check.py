"""``mappings check`` in-process, for the survivors of mutation run 7 over ``adapter/mapping/check.py``
(docs/guarantees.md): the ``[adviseur]``, ``[[adviesverzoeken]]`` and ``[[mirror]]`` problems were tested only
through the CLI and by a substring of their line. README: one line ``file:line: key: problem`` — so these
assert every problem whole, on the entry that causes it (the second of two, not the first), in every file.
"""

from __future__ import annotations

from pathlib import Path

from adapter.mapping.check import check_dir, check_mirror_dir, check_offline
from adapter.mapping.loader import LoadedMapping, Problem, load_file
from tests.test_mutation_kills_inbound import CHECK_BASE, line_of, mapping_file

IDENTIFICATIE = "does not name the adviesverzoek: two advice requests on one aanvraag would get one zaak "
IDENTIFICATIE += '(include "{verzoek.advies.adviesverzoek_id}")'


def loaded(tmp_path: Path, text: str) -> LoadedMapping:
    m, problems = load_file(mapping_file(tmp_path, text) / "m.toml")
    assert m is not None and problems == []
    return m


def adviseur(tmp_path: Path, section: str) -> tuple[list[Problem], str, str]:
    text = CHECK_BASE + "\n[adviseur]\n" + section
    m = loaded(tmp_path, text)
    return [p for p in check_offline(m, {"zgw"}) if p.key.startswith("adviseur.")], text, str(m.path)


def test_an_adviseur_with_an_unknown_profile_and_a_broken_identificatie_gets_both_named(tmp_path: Path) -> None:
    problems, text, f = adviseur(
        tmp_path, 'zaaktype = "ZT-ADVIES"\nprofile = "advies"\nzaak_identificatie = "ADV-{verzoek.titel}"\n'
    )
    assert problems == [
        Problem(f, "adviseur.profile", line_of(text, 'profile = "advies"'), "unknown profile 'advies'"),
        Problem(
            f,
            "adviseur.zaak_identificatie",
            line_of(text, "ADV-{verzoek.titel}"),
            "template field 'verzoek.titel' does not exist",
        ),
    ]


def test_an_identificatie_must_tell_two_adviesverzoeken_of_one_adviseur_apart(tmp_path: Path) -> None:
    """Naming the aanvraag, or only the adviseur, gives a second adviesverzoek from the same adviseur on the
    same aanvraag (after an aanvulling, say) the first one's zaak."""
    for template in ("ADV-{verzoek.nummer}", "ADV-{verzoek.nummer}-{verzoek.advies.adviseur.oin}"):
        problems, text, f = adviseur(tmp_path, f'zaaktype = "ZT-ADVIES"\nzaak_identificatie = "{template}"\n')
        assert problems == [Problem(f, "adviseur.zaak_identificatie", line_of(text, template), IDENTIFICATIE)]
    for good in (
        "ADV-{verzoek.advies.adviesverzoek_id}",
        "{verzoek.advies.adviseur.oin}-{verzoek.advies.adviesverzoek_id}",
    ):
        assert adviseur(tmp_path, f'zaaktype = "ZT-ADVIES"\nzaak_identificatie = "{good}"\n')[0] == []
    assert adviseur(tmp_path, 'zaaktype = "ZT-ADVIES"\n')[0] == []  # the default names the adviesverzoek


def test_an_unknown_adviseur_is_named_on_its_own_rule(tmp_path: Path) -> None:
    text = CHECK_BASE + (
        '\n[[adviesverzoeken]]\nstatustype = "Advies nodig"\nadviseur = "odrn"\n'
        '\n[[adviesverzoeken]]\nstatustype = "Welstand nodig"\nadviseur = "welstand"\n'
    )
    m = loaded(tmp_path, text)
    assert check_offline(m, {"zgw"}, {"odrn", "00000001234567890000"}) == [
        Problem(
            str(m.path),
            "adviesverzoeken[1].adviseur",
            line_of(text, 'adviseur = "welstand"'),
            "adviseur 'welstand' is not configured ([adviseurs.NAME], by name or oin)",
        )
    ]
    assert check_offline(m, {"zgw"}, None) == []  # not checked without the configuration's adviseurs


def test_an_unknown_postbox_is_named_on_its_own_rule_in_every_file(tmp_path: Path) -> None:
    rules = '\n[[mirror]]\npostbox = "odrn"\n\n[[mirror]]\npostbox = "welstand"\ndocumenttypen = ["Bouwtekening"]\n'
    text = CHECK_BASE + rules
    d = mapping_file(tmp_path, text, "a.toml")
    mapping_file(tmp_path, text, "b.toml")
    line = line_of(text, 'postbox = "welstand"')
    message = "postbox 'welstand' is not configured ([postboxes.welstand])"
    assert check_mirror_dir(d, {"odrn"}) == [
        Problem(str(d / "a.toml"), "mirror[1].postbox", line, message),
        Problem(str(d / "b.toml"), "mirror[1].postbox", line, message),
    ]
    assert check_mirror_dir(tmp_path / "elsewhere", {"odrn"}) == []


def test_a_missing_or_empty_mapping_directory_is_one_line_without_a_key(tmp_path: Path) -> None:
    assert [str(p) for p in check_dir(tmp_path / "weg", {}, online=False)] == [
        f"{tmp_path / 'weg'}: mapping directory does not exist"
    ]
    (tmp_path / "leeg").mkdir()
    assert [str(p) for p in check_dir(tmp_path / "leeg", {}, online=False)] == [
        f"{tmp_path / 'leeg'}: no mapping files (*.toml)"
    ]
