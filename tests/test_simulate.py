"""Issue 11, the ketensimulatie: `loket-adapter simulate` runs every shipped scenario green and writes JUnit and
HTML; a broken mapping fails exactly the affected scenarios, naming step, expectation, expected and actual; the
documented example runs; a wrong scenario file is one line; the HTML report opens in headless Chromium."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest
from click.testing import CliRunner

from adapter.cli import main
from tests.conftest import ROOT
from tests.delivery_env import needs_zgw_specs

pytestmark = needs_zgw_specs
SCENARIOS = ROOT / "fixtures" / "scenarios"


def simulate(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "adapter", "simulate", *map(str, args)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


def junit_cases(path: Path) -> dict[str, str | None]:
    """scenario id → its failure message (None when it passed)."""
    suite = ET.parse(path).getroot()
    out = {}
    for case in suite.iter("testcase"):
        failure = case.find("failure")
        out[case.get("name", "")] = failure.get("message") if failure is not None else None
    return out


def project_copy(dest: Path) -> Path:
    """The project's files as a fresh clone has them (tracked and new, not ignored), alone in ``dest``: no
    ../shared beside it."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=ROOT, capture_output=True, check=True,
    ).stdout.decode().split("\0")  # fmt: skip
    for rel in filter(None, listed):
        if (ROOT / rel).is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, dest / rel)
    return dest


def test_every_shipped_scenario_passes_with_junit_and_html_without_shared(tmp_path: Path) -> None:
    clone = project_copy(tmp_path / "clone")
    assert not (clone.parent / "shared").exists()
    # ``python -m adapter`` from the copy runs the copy's code (the working directory comes first on sys.path)
    r = subprocess.run(
        [sys.executable, "-m", "adapter", "simulate", "--report-dir", str(tmp_path)],
        cwd=clone, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr
    files = sorted(SCENARIOS.glob("*.toml"))
    assert len(files) >= 15
    cases = junit_cases(tmp_path / "junit.xml")
    assert len(cases) == len(files) and all(v is None for v in cases.values()), cases
    ran = len(files) - len(needing_sshd(files))  # without OpenSSH's sshd the postbus scenarios are skipped
    assert f"{ran} of {ran} scenarios passed" in r.stdout
    report = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert f"Ketensimulatie: {len(files)} of {len(files)} scenarios passed" in report
    assert all(f"id='{case}'" in report for case in cases)
    # the messages exchanged are in the report, their personal data masked
    assert "omvDi01AanbiedenAanvraag" in report and "999993653" not in report and "Dorpsstraat" not in report


def needing_sshd(files: list[Path]) -> list[Path]:
    """The scenario files that are skipped on this machine for want of an sshd (none where it has one)."""
    from adapter.simulation import runner
    from adapter.simulation.scenarios import load

    return [] if runner._sshd_available() else [f for f in files if "postbus" in runner._far_sides(load(f))]


def test_a_broken_mapping_fails_the_affected_scenarios_and_names_what(tmp_path: Path) -> None:
    mappings = tmp_path / "mappings"
    shutil.copytree(ROOT / "mappings", mappings)
    example = mappings / "voorbeeldstad.toml"
    text = example.read_text(encoding="utf-8")
    assert 'zaaktype = "ZT-OMV-REG"' in text
    example.write_text(text.replace('zaaktype = "ZT-OMV-REG"', 'zaaktype = "ZT-BESTAAT-NIET"'), encoding="utf-8")
    chosen = [SCENARIOS / f for f in ("aanvraag-delivered.toml", "vooroverleg.toml", "xsd-invalid.toml")]
    r = simulate(*chosen, "--mappings", mappings, "--report-dir", tmp_path / "out")
    assert r.returncode == 1, r.stdout + r.stderr
    cases = junit_cases(tmp_path / "out" / "junit.xml")
    assert cases["LVO-06"] is None and cases["ERR-01"] is None  # not affected: still green
    failure = cases["LVO-01"]
    assert failure is not None and failure.startswith(
        "LVO-01 step 2 (it is delivered): state: expected delivered, actual needs-attention ("
    ), failure
    assert "ZT-BESTAAT-NIET" in failure
    assert "LVO-01 step 2 (it is delivered): state: expected delivered, actual needs-attention (" in r.stderr
    assert "2 of 3 scenarios passed" in r.stdout


def test_the_documented_example_and_commands_run(tmp_path: Path) -> None:
    doc = (ROOT / "docs" / "ketensimulatie.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```toml\n(.*?)```", doc, re.S)
    assert len(blocks) >= 2
    for n, block in enumerate(blocks):
        (tmp_path / f"doc-{n}.toml").write_text(block, encoding="utf-8")
    r = simulate(*sorted(tmp_path.glob("doc-*.toml")), "--report-dir", tmp_path / "out")
    assert r.returncode == 0 and f"{len(blocks)} of {len(blocks)} scenarios passed" in r.stdout, r.stdout + r.stderr
    # the console block's commands (the one with every scenario runs above)
    commands = re.findall(r"^\$ \.venv/bin/loket-adapter simulate(.*?)(?:\s+#.*)?$", doc, re.M)
    assert len(commands) == 3
    for extra in commands[1:]:
        args = [a.replace("var/mine", str(tmp_path / "mine")) for a in extra.split()]
        r = simulate(*args, "--report-dir", tmp_path / "mine") if "--report-dir" not in args else simulate(*args)
        assert r.returncode == 0, r.stdout + r.stderr


def test_a_wrong_scenario_file_is_one_line_naming_file_and_key(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    original = (SCENARIOS / "aanvraag-delivered.toml").read_text(encoding="utf-8")
    for text, said in (
        (original.replace('\nstate = "delivered"', '\nstat = "delivered"'), "steps.2.expect.stat: unknown key"),
        (original.replace('do = "wait"', 'do = "wait"\nof = 2'), "steps.2: step 2 is not an earlier send step"),
        ('id = "X"\n', "description: Field required"),
        (original.replace("[steps.expect.json]", '[steps.expect.json]\n"documenten[size]" = 1'), "give an index, *"),
        ("id = [", "not TOML"),
        (original.replace('do = "wait"', 'do = "wait"\nsystem = "werkmap"'),
         "steps.2: system: a wait step has no such key (its own: timeout)"),
        (original.replace('do = "send"', 'do = "send"\nmethod = "GET"'),
         "steps.1: method: a send step has no such key"),
        ('id = "X"\ndescription = "x"\n[[steps]]\ndo = "fail"\nsystem = "werkmap"\npath = "/pdf"\nmethod = "GET"\n',
         "method: the werkmap fails requests of every method"),
    ):  # fmt: skip
        assert text != original
        bad.write_text(text, encoding="utf-8")
        r = CliRunner().invoke(main, ["simulate", str(bad), "--report-dir", str(tmp_path / "out")])
        assert r.exit_code == 1 and r.stdout == "", r.stdout
        assert r.stderr.count("\n") == 1 and str(bad) in r.stderr and said in r.stderr, r.stderr


@pytest.mark.skipif(not Path("/usr/bin/chromedriver").exists(), reason="chromium-driver absent")
def test_the_html_report_opens_in_chromium_without_console_errors(tmp_path: Path) -> None:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    r = simulate(
        SCENARIOS / "duplicate-other-body.toml", SCENARIOS / "target-down-then-up.toml", "--report-dir", tmp_path
    )
    assert r.returncode == 0, r.stderr
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--window-size=1300,900",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    try:
        driver.get((tmp_path / "report.html").as_uri())
        assert driver.title == "Ketensimulatie"
        assert "2 of 2 scenarios passed" in driver.find_element("tag name", "h1").text
        errors = [e for e in driver.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]
        assert errors == [], errors
        shot = tmp_path / "ketensimulatie-report.png"
        assert driver.save_screenshot(str(shot)) and shot.stat().st_size > 10_000
        if target := os.environ.get("LOKET_SCREENSHOTS"):
            shutil.copy(shot, ROOT / target / shot.name)
    finally:
        driver.quit()


def test_target_config_runs_the_delivery_scenarios_against_a_separately_started_zaaksysteem(tmp_path: Path) -> None:
    """How a supplier runs them against an acceptance zaaksysteem: its config, its target; scenarios that need to
    make the zaaksysteem fail are skipped; every aanvraagnummer gets a suffix of the run, so a second run
    against the same zaaksysteem does not meet the first one's zaken."""
    from adapter.simulation.fake_zgw import FakeZgw
    from adapter.simulation.serving import serving
    from tests.conftest import write_config
    from tests.delivery_env import SECRET, copy_mappings, zgw_target_toml

    fake = FakeZgw(client_id="loket-adapter", secret=SECRET)
    with serving(fake.app) as url:
        fake.base_url = url
        # no workers where this config is used: the simulation's own adapter delivers all the same
        toml = f'[delivery]\nworkers = 0\nmappings_dir = "{copy_mappings(tmp_path)}"\n' + zgw_target_toml(
            url, SECRET, catalogus=fake.catalogus_url("catalogussen")
        )
        config = write_config(tmp_path / "config.toml", f"sqlite:///{tmp_path / 'unused.db'}", 8999, toml)
        chosen = [
            SCENARIOS / f
            for f in ("aanvraag-delivered.toml", "aanvulling-after-aanvraag.toml", "target-down-then-up.toml",
                      "xsd-invalid.toml", "adviseur.toml")
        ]  # fmt: skip
        for run in (1, 2):
            r = subprocess.run(
                [sys.executable, "-m", "adapter", "--config", str(config), "simulate", "--target", "config",
                 *map(str, chosen), "--report-dir", str(tmp_path / f"out{run}")],
                cwd=ROOT, capture_output=True, text=True, timeout=300,
            )  # fmt: skip
            assert r.returncode == 0, r.stdout + r.stderr
            assert "4 of 4 scenarios passed, 1 skipped" in r.stdout
            cases = junit_cases(tmp_path / f"out{run}" / "junit.xml")
            assert cases == {"LVO-01": None, "LVO-02": None, "DLV-01": None, "ERR-01": None, "LVO-08": None}
        olo = [z["identificatie"] for z in fake.zaken if z["identificatie"].startswith("OLO-")]
        assert len(olo) == len(set(olo)) == 4  # two per run (LVO-01's, LVO-02's: the aanvulling on its run's zaak)
        advies = [z["identificatie"] for z in fake.zaken if z["identificatie"].startswith("ADV-")]
        assert len(advies) == len(set(advies)) == 4  # two adviesverzoeken a run, each its own zaak (by link)
    assert not (tmp_path / "unused.db").exists()  # a throwaway store, not the config's


WRONG = {
    # each new expectation kind with a wrong value: (file, scenario, the failure line it must give)
    "json.toml": (
        """id = "W-JSON"
description = "a document's bytes are not what the scenario says"
[[steps]]
do = "notify"
verzoek = "verzoek-initieren"
notificatie = "verzoeknotificatie-initieren"
[[steps]]
do = "wait"
expect = { state = "delivered", json = { "documenten[bestandsnaam=situatietekening.pdf].inhoud_sha256" = "%s" } }
"""
        % ("0" * 64),
        "W-JSON step 2 (wait): json documenten[bestandsnaam=situatietekening.pdf].inhoud_sha256: expected "
        + "0" * 64
        + ", actual 641a3e0f0f468ea0bb375d51cf4f90e412db1254a8edf81bc6a7e7034983bb3d: FAILED",
    ),
    "error.toml": (
        """id = "W-ERROR"
description = "the delivery's error is another one"
[[steps]]
do = "send"
message = "omvDi01AanbiedenAanvraag"
nummer = "7700001"
replace = { ">20261123<" = ">20190601<" }
[[steps]]
do = "wait"
expect = { state = "needs-attention", error = "roltype" }
""",
        "W-ERROR step 2 (wait): error: expected containing 'roltype', actual \"zaaktype 'ZT-OMV-REG': no published",
    ),
    "overdracht.toml": (
        """id = "W-OVERDRACHT"
description = "no rule hands the verzoek over, so the werkmap records none"
[[steps]]
do = "notify"
verzoek = "verzoek-initieren"
notificatie = "verzoeknotificatie-initieren"
[[steps]]
do = "wait"
[steps.expect]
state = "delivered"
overdrachten = [{ verzoeknummer = "2026112300123", naar = "00000001823288444000", rol = "behandeldienst" }]
""",
        "W-OVERDRACHT step 2 (wait): overdrachten: expected "
        "['2026112300123 to 00000001823288444000 as behandeldienst'], actual []: FAILED",
    ),
    "log.toml": (
        """id = "W-LOG"
description = "an event the adapter never logs"
[[steps]]
do = "send"
message = "omvDi01AanbiedenAanvraag"
nummer = "7700002"
[[steps]]
do = "wait"
expect = { state = "delivered", log = ["werkmap poll found a verzoek without notification"] }
""",
        "W-LOG step 2 (wait): log: expected 'werkmap poll found a verzoek without notification', actual not among ",
    ),
    "zaaktype.toml": (
        """id = "W-ZAAKTYPE"
description = "the new zaaktype version begins after the aanvraag's date: the current one is used"
[[steps]]
do = "catalogus"
zaaktype = "ZT-OMV-REG"
omschrijving = "Omgevingsvergunning regulier (2027)"
begin = 2027-01-01
[[steps]]
do = "send"
message = "omvDi01AanbiedenAanvraag"
nummer = "7700003"
[[steps]]
do = "wait"
expect = { state = "delivered", json = { "zaaktype.omschrijving" = "Omgevingsvergunning regulier (2027)" } }
""",
        "W-ZAAKTYPE step 3 (wait): json zaaktype.omschrijving: expected Omgevingsvergunning regulier (2027), actual"
        " Omgevingsvergunning regulier: FAILED",
    ),
    "advies.toml": (
        """id = "W-ADVIES"
description = "the adviseur has not answered yet: the adviesverzoek is uitgezet, not gereed"
[[steps]]
do = "send"
message = "omvDi01AanbiedenAanvraag"
nummer = "7700004"
[[steps]]
do = "wait"
expect = { state = "delivered" }
[[steps]]
do = "advies"
adviseur = "welstand"
[[steps]]
do = "wait"
expect = { state = "delivered", advies = { state = "gereed" } }
""",
        "W-ADVIES step 4 (wait): advies.state: expected gereed, actual uitgezet: FAILED",
    ),
    "poll.toml": (
        """id = "W-POLL"
description = "a verzoek the poll finds is delivered: a wrong zaak count fails"
[[steps]]
do = "poll"
verzoek = "verzoek-initieren"
[[steps]]
do = "wait"
expect = { state = "delivered", zaken = 2 }
""",
        "W-POLL step 2 (wait): zaken: expected 2, actual 1: FAILED",
    ),
}


WRONG_POSTBUS = (
    """id = "W-POSTBUS"
description = "a file nobody used stays in the inbox: not in processed"
[[steps]]
do = "postbus"
file = "1234567_Bouwtekening.pdf"
size = 10
expect = { postbus = { inbox = ["1234567_Bouwtekening.pdf"], processed = ["1234567_Bouwtekening.pdf"] } }
""",
    "W-POSTBUS step 1 (postbus): postbus.processed: expected ['1234567_Bouwtekening.pdf'], actual []: FAILED",
)


def test_each_new_expectation_kind_fails_when_wrong_naming_step_expectation_expected_actual(tmp_path: Path) -> None:
    from adapter.simulation.runner import _sshd_available

    wrong = {**WRONG, "postbus.toml": WRONG_POSTBUS} if _sshd_available() else WRONG
    for name, (text, _) in wrong.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    r = simulate(*sorted(tmp_path.glob("*.toml")), "--report-dir", tmp_path / "out")
    assert r.returncode == 1, r.stdout + r.stderr
    assert f"0 of {len(wrong)} scenarios passed" in r.stdout, r.stdout
    for _, line in wrong.values():
        assert line in r.stderr, (line, r.stderr)
    cases = junit_cases(tmp_path / "out" / "junit.xml")
    assert all(cases[i] is not None for i in cases) and len(cases) == len(wrong)
    # the log expectation names the events seen, never a value logged with them (the BSN of the aanvrager)
    assert "999993653" not in r.stderr and "Dorpsstraat" not in r.stderr


def test_target_config_skips_every_scenario_that_needs_the_fakes() -> None:
    from adapter.simulation import runner
    from adapter.simulation.scenarios import load

    config = Path("config.toml")
    needing = (
        "stam-poll-missed", "catalogus-versions", "stam-transfer", "stam-large-document", "target-down-then-up",
        "advies-stuf-lvo", "advies-samenwerken", "postbus-orphan", "postbus-missing",
    )  # fmt: skip
    for name in needing:
        why = runner._cannot_run(load(SCENARIOS / f"{name}.toml"), config, None)
        assert why is not None and "only with --target fake" in why, name
    assert runner._cannot_run(load(SCENARIOS / "aanvraag-delivered.toml"), config, None) is None
    assert runner._cannot_run(load(SCENARIOS / "stam-poll-missed.toml"), None, None) is None


def test_without_sshd_the_postbus_scenarios_are_skipped_saying_why(monkeypatch: pytest.MonkeyPatch) -> None:
    from adapter.simulation import runner
    from adapter.simulation.scenarios import load

    monkeypatch.setattr(runner, "_sshd_available", lambda: False)
    chosen = [load(SCENARIOS / "postbus-orphan.toml"), load(SCENARIOS / "postbus-missing.toml")]
    results = runner.run_all(chosen, specs=Path("unused"), mappings=None, progress=lambda _: None)
    assert [r.skipped for r in results] == [
        "needs OpenSSH's sshd (/usr/sbin/sshd) and ssh-keygen for the SFTP postbox; this machine has none"
    ] * 2
    assert all(r.ok and r.checks == [] for r in results)  # skipped is not failed, and nothing ran


def test_paths_into_the_zaak_view() -> None:
    from adapter.simulation.probes import ABSENT, dig

    view = {
        "zaak": {"identificatie": "OLO-1", "kenmerken": [{"kenmerk": "1", "bron": "OLO"}]},
        "documenten": [{"bestandsnaam": "a.pdf", "size": 1}, {"bestandsnaam": "b.pdf", "size": 2}],
        "rollen": [{"type": "x"}, {"type": "x"}],
    }
    assert dig(view, "zaak.identificatie") == "OLO-1"
    assert dig(view, "zaak.kenmerken.0.bron") == dig(view, "zaak.kenmerken[0].bron") == "OLO"
    assert dig(view, "documenten[-1].bestandsnaam") == "b.pdf"
    assert dig(view, "documenten[bestandsnaam=b.pdf].size") == 2
    assert dig(view, "documenten[*].bestandsnaam") == ["a.pdf", "b.pdf"]
    assert dig(view, "documenten.length") == 2
    assert dig(view, "documenten[size=2].bestandsnaam") == "b.pdf"  # a number compared as JSON text
    assert dig(view, "rollen[type=x]") == "<2 items with type=x>"  # ambiguous: said, not guessed
    assert dig(view, "documenten[bestandsnaam=c.pdf]") == "<0 items with bestandsnaam=c.pdf>"
    assert dig(view, "zaak.nothing") == dig(view, "documenten[5]") == dig(view, "zaak[0]") == ABSENT
    with pytest.raises(ValueError):
        dig(view, "documenten[size]")


def test_a_failed_expectation_on_a_whole_rol_shows_no_personal_data(tmp_path: Path) -> None:
    """An expectation whose path names no personal field (``rollen[…]``) still shows the rol's names, BSN and
    address masked by their keys, in ZGW's spelling (``inpBsn``, ``voorvoegselGeslachtsnaam``, ``aoaPostcode``)."""
    initiator = "rollen[omschrijvingGeneriek=initiator]"
    scenario = tmp_path / "rol.toml"
    scenario.write_text(
        "\n".join([
            'id = "ROL"', 'description = "a whole rol compared"',
            "[[steps]]", 'do = "send"', 'message = "omvDi01AanbiedenAanvraag"', 'nummer = "5100009"',
            "[[steps]]", 'do = "wait"', "[steps.expect]", 'state = "delivered"',
            "[steps.expect.json]", f'"{initiator}" = "a rol"',
            f'"{initiator}.betrokkeneIdentificatie.verblijfsadres" = "an address"',
        ]) + "\n",
        encoding="utf-8",
    )  # fmt: skip
    r = simulate(scenario, "--report-dir", tmp_path / "out")
    assert r.returncode == 1, r.stdout + r.stderr
    assert f"json {initiator}: expected a rol, actual {{" in r.stderr, r.stderr
    assert "'geslachtsnaam': '***'" in r.stderr and "'voorvoegselGeslachtsnaam': '***'" in r.stderr
    assert "'aoaPostcode': '***'" in r.stderr and "'omschrijvingGeneriek': 'initiator'" in r.stderr
    shown = r.stdout + r.stderr + (tmp_path / "out/junit.xml").read_text() + (tmp_path / "out/report.html").read_text()
    for personal in ("Berg", "J.A.", "van der", "Dorpsstraat", "1234AB", "999993653"):
        assert personal not in shown, personal
