"""Issue 11, record / rerun / compare: a flow recorded (by the ketensimulatie or by ``serve --record`` against a
separately running zaaksysteem) reruns green with its far side stubbed from the recording; change one mapped field
and the comparison names the checkpoint and the field; an ignore rule for it makes the rerun pass again."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import httpx
import pytest

from adapter import recording
from adapter.simulation.recorded import DEFAULT_IGNORE, Flow, compare, diff, xml_fields
from tests.conftest import ROOT
from tests.delivery_env import copy_mappings, delivery_toml, needs_zgw_specs, wait_for
from tests.soap import fixture, post, with_reference

pytestmark = needs_zgw_specs
SCENARIOS = ROOT / "fixtures" / "scenarios"


def adapter(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "adapter", *map(str, args)], cwd=ROOT, capture_output=True, text=True, timeout=300
    )


def add_ignore(folder: Path, rule: str) -> None:
    """What a tester does: one line more in the recording's ignore list."""
    meta = folder / "recording.toml"
    meta.write_text(meta.read_text("utf-8").replace("ignore = [\n", f'ignore = [\n  "{rule}",\n', 1), "utf-8")


def test_record_change_one_mapped_field_rerun_names_checkpoint_and_field_then_ignore_passes(tmp_path: Path) -> None:
    r = adapter("simulate", "--record", tmp_path / "rec", SCENARIOS / "aanvraag-delivered.toml",
                "--report-dir", tmp_path / "out0")  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
    rec = tmp_path / "rec" / "LVO-01"
    flow = rec / "001-omvDi01AanbiedenAanvraag"
    assert {p.name for p in flow.iterdir()} >= {"inbound.xml", "answer.xml", "verzoek.json", "opdracht.json",
                                                "calls.json", "result.json"}  # fmt: skip
    calls = json.loads((flow / "calls.json").read_text())
    assert [c["method"] for c in calls].count("POST") >= 5  # zaak, rollen, zaakobjecten, documents, status
    assert json.loads((flow / "result.json").read_text())["state"] == "delivered"

    same = adapter("simulate", "--rerun", rec, "--report-dir", tmp_path / "out1")
    assert same.returncode == 0, same.stdout + same.stderr
    assert "1 of 1 flows passed" in same.stdout

    changed = copy_mappings(tmp_path)
    text = (changed / "voorbeeldstad.toml").read_text("utf-8")
    assert "via het Omgevingsloket" in text
    (changed / "voorbeeldstad.toml").write_text(text.replace("via het Omgevingsloket", "via de balie"), "utf-8")
    different = adapter("simulate", "--rerun", rec, "--mappings", changed, "--report-dir", tmp_path / "out2")
    assert different.returncode == 1, different.stdout + different.stderr
    lines = different.stderr.splitlines()
    assert any("checkpoint opdracht: field profiel.toelichting" in line and "via de balie" in line for line in lines)
    assert any(
        re.search(r"checkpoint calls\.\d+ \(POST /zaken/api/v1/zaken\): field request\.toelichting", line)
        for line in lines
    ), different.stderr
    assert len(lines) == 3, different.stderr  # that field and nothing else (opdracht twice, the zaak's POST)
    junit = (tmp_path / "out2" / "junit.xml").read_text()
    assert 'failures="1"' in junit and "profiel.toelichting" in junit

    add_ignore(rec, "*.toelichting")
    ignored = adapter("simulate", "--rerun", rec, "--mappings", changed, "--report-dir", tmp_path / "out3")
    assert ignored.returncode == 0, ignored.stdout + ignored.stderr


def test_a_stam_flow_reruns_with_werkmap_and_documents_from_the_recording(tmp_path: Path) -> None:
    """The werkmap's samenvatting and document bytes, the bestandsdelen uploads: all served from the recording."""
    r = adapter("simulate", "--record", tmp_path / "rec", SCENARIOS / "stam-aanvullen.toml",
                "--report-dir", tmp_path / "out0")  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
    rec = tmp_path / "rec" / "STAM-02"
    flows = sorted(p.name for p in rec.iterdir() if p.is_dir() and p.name != "bodies")
    assert flows == ["001-verzoeknotificatie", "002-verzoeknotificatie"]
    bodies = list((rec / "bodies").glob("*.bin"))
    assert bodies, "the werkmap's document bytes are kept to be served again"
    calls = json.loads((rec / flows[0] / "calls.json").read_text())
    assert any(c["method"] == "PUT" and "/bestandsdelen/" in c["url"] for c in calls)
    again = adapter("simulate", "--rerun", rec, "--report-dir", tmp_path / "out1")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "2 of 2 flows passed" in again.stdout

    # a document's bytes in the recording changed: the adapter checks the werkmap's size and refuses them, as it
    # would refuse a corrupt download; the comparison names the end state and the calls that were not made
    victim = next(b for b in bodies if len(b.read_bytes()) == 2048)
    victim.write_bytes(victim.read_bytes() + b"changed")
    changed = adapter("simulate", "--rerun", rec, "--report-dir", tmp_path / "out2")
    assert changed.returncode == 1
    assert "checkpoint result: field state: expected 'delivered', actual 'dead'" in changed.stderr
    assert "corrupt download" in changed.stderr
    assert re.search(r"checkpoint calls: expected '\d+ later writes', actual 'not made'", changed.stderr)


def test_serve_record_captures_a_live_flow_that_reruns(tmp_path: Path, zs: Any) -> None:
    """A live adapter (``serve --record``) against a separately running zaaksysteem: the flow it delivered is
    a recording; the rerun needs neither that adapter nor that zaaksysteem any more."""
    from tests.conftest import make_server

    server = make_server(tmp_path, extra_toml=delivery_toml(zs, copy_mappings(tmp_path)))
    rec = tmp_path / "live"
    server.args = ["--record", str(rec)]
    server.start()
    try:
        answer = post(server.soap_url, with_reference(fixture("omvDi01AanbiedenAanvraag"), "REC-LIVE-1"))
        assert answer.status == 200
        result = rec / "001-omvDi01AanbiedenAanvraag" / "result.json"
        wait_for(lambda: result.is_file() and json.loads(result.read_text())["state"] == "delivered", 30, "recorded")
    finally:
        server.stop()
    zs.stop()  # the far side is gone: the rerun plays it from the recording
    setup = json.loads((rec / "setup.json").read_text())
    assert "secret" not in json.dumps(setup) and setup["targets"]["zaaksysteem"]["kind"] == "zgw"
    r = adapter("simulate", "--rerun", rec, "--mappings", ROOT / "mappings", "--report-dir", tmp_path / "out")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "1 of 1 flows passed" in r.stdout


def test_a_call_the_recording_never_made_is_named_and_answered_not_found(tmp_path: Path) -> None:
    recorded = Flow("001-x", calls=[
        {"method": "GET", "url": "http://zs/a?x=1", "request": None, "status": 200},
        {"method": "POST", "url": "http://zs/zaken", "request": {"a": 1}, "status": 201},
    ])  # fmt: skip
    rerun = Flow("001-x", calls=[
        {"method": "GET", "url": "http://zs/b", "request": None, "status": 404},
        {"method": "POST", "url": "http://zs/rollen", "request": {"a": 1}, "status": 201},
        {"method": "POST", "url": "http://zs/zaken", "request": {"a": 2}, "status": 201},
    ])  # fmt: skip
    _, found = compare(recorded, rerun, [])
    lines = [d.line() for d in found]
    assert (
        "flow 001-x: checkpoint calls.1 (POST /zaken): as a whole: recorded 'POST /zaken', rerun 'POST /rollen'"
        in lines
    )
    assert "flow 001-x: checkpoint calls: as a whole: recorded 'not made', rerun 'POST /zaken'" in lines
    assert "flow 001-x: checkpoint calls: as a whole: recorded 'not made', rerun 'GET http://zs/b'" in lines
    assert len(lines) == 3


def test_comparison_reads_xml_by_element_and_ignores_only_what_a_rule_names() -> None:
    a = "<a xmlns='urn:x'><s><tijdstipBericht>1</tijdstipBericht><code>StUF055</code></s><r>1</r><r>2</r></a>"
    b = "<a xmlns='urn:x'><s><tijdstipBericht>2</tijdstipBericht><code>StUF058</code></s><r>1</r><r>3</r></a>"
    assert xml_fields(a) == {"a.s.tijdstipBericht": "1", "a.s.code": "StUF055", "a.r.0": "1", "a.r.1": "2"}
    one, two = Flow("001-x", answer=a), Flow("001-x", answer=b)
    _, found = compare(one, two, list(DEFAULT_IGNORE))
    assert [(d.checkpoint, d.field) for d in found] == [("answer", "a.r.1"), ("answer", "a.s.code")]
    _, none = compare(one, two, ["answer.a.r.*", "answer.*.code"])
    assert [(d.checkpoint, d.field) for d in none] == [("answer", "a.s.tijdstipBericht")]  # not in these rules
    assert diff({"x": [1, 2]}, {"x": [1]}) == [("x.1", 2, "<absent>")]


def test_a_recorder_that_fails_never_breaks_a_delivery() -> None:
    """The hooks sit in every far-side client: a broken recorder leaves the call unrecorded, the call goes on."""

    class Broken:
        def checkpoint(self, message_id: int, name: str, value: Any) -> None: ...

        def call(self, message_id: int, call: dict[str, Any]) -> None:
            raise RuntimeError("disk full")

        def finished(self, message_id: int) -> None: ...

    transport = httpx.MockTransport(lambda request: httpx.Response(201, json={"ok": True}))
    with recording.installed(Broken()), recording.delivering(7):
        client = httpx.Client(transport=transport, event_hooks=recording.EVENT_HOOKS)
        assert client.post("http://zs/zaken", json={"a": 1}).json() == {"ok": True}


def test_an_adviesverzoek_we_put_out_is_skipped_saying_why(tmp_path: Path) -> None:
    """It starts from our store and a behandelaar's command, not from a message that can be sent again."""
    r = adapter("simulate", "--record", tmp_path / "rec", SCENARIOS / "advies-stuf-lvo.toml",
                SCENARIOS / "advies-samenwerken.toml", "--report-dir", tmp_path / "o")  # fmt: skip
    assert r.returncode == 0, r.stdout + r.stderr
    said = {
        "ADV-01": "an adviesverzoek we put out starts in our own store (advies aanvragen), not from a message",
        "ADV-02": "arrives by the samenwerken poll, whose calls are not part of a flow: not replayed",
    }
    for rec in sorted((tmp_path / "rec").iterdir()):
        again = adapter("simulate", "--rerun", rec, "--report-dir", tmp_path / rec.name)
        assert said[rec.name] in again.stdout, again.stdout
        junit = (tmp_path / rec.name / "junit.xml").read_text()
        assert re.findall(r'<testcase [^>]*name="([^"]+)"[^>]*>\s*<skipped', junit), junit


def test_record_does_not_go_with_url_or_rerun(tmp_path: Path) -> None:
    """A running adapter's deliveries run in its own process (serve --record records there); a rerun records
    nothing new."""
    for extra in (["--target", "config", "--url", "http://127.0.0.1:9"], ["--rerun", str(tmp_path)]):
        r = adapter("simulate", "--record", tmp_path / "rec", *extra, "--report-dir", tmp_path / "out")
        assert r.returncode != 0 and r.stderr.strip().count("\n") == 0, r.stderr
        assert "does not go with --record" in r.stderr, r.stderr
    assert not (tmp_path / "rec").exists()
    # --specs is the fake zaaksysteem's: refused where none runs, not ignored
    r = adapter("simulate", "--rerun", "aanvraag-aanvulling", "--specs", tmp_path, "--report-dir", tmp_path / "out")
    assert r.returncode != 0 and "--rerun does not go with --specs" in r.stderr, r.stderr
    # nothing ran (every scenario needs the fakes): not a green run
    r = adapter("--config", ROOT / "config.example.toml", "simulate", "--target", "config",
                SCENARIOS / "target-down-then-up.toml", "--report-dir", tmp_path / "out")  # fmt: skip
    assert r.returncode == 1 and "no scenario ran (every one was skipped)" in r.stderr, r.stdout + r.stderr


def test_a_wrong_recording_is_one_line(tmp_path: Path) -> None:
    r = adapter("simulate", "--rerun", tmp_path, "--report-dir", tmp_path / "out")
    assert r.returncode != 0
    assert r.stderr.strip().count("\n") == 0 and "recording.toml" in r.stderr, r.stderr
    (tmp_path / "recording.toml").write_text('flows = ["001-x"]\nignore = "all"\n')
    r = adapter("simulate", "--rerun", tmp_path, "--report-dir", tmp_path / "out")
    assert r.returncode != 0 and "ignore must be a list" in r.stderr and r.stderr.strip().count("\n") == 0
    # setup.json and a flow's files of the wrong shape: one line naming file and key
    for name, text, said in (
        ("setup.json", "[]", "setup.json: (top level)"),
        ("setup.json", '{"ontvangers": [{"organisatie": "1", "applicatie": "ZS"}], "x": 1}', "x: unknown key"),
        ("001-omvDi01AanbiedenAanvraag/result.json", "[]", "result.json: (top level)"),
        ("001-omvDi01AanbiedenAanvraag/calls.json", '[{"url": "http://x"}]', "calls.json: 0.method"),
    ):
        shutil.rmtree(tmp_path / "bad", ignore_errors=True)
        shutil.copytree(ROOT / "fixtures" / "recorded" / "aanvraag-aanvulling", tmp_path / "bad")
        (tmp_path / "bad" / name).write_text(text)
        r = adapter("simulate", "--rerun", tmp_path / "bad", "--report-dir", tmp_path / "out")
        assert r.returncode != 0 and r.stderr.strip().count("\n") == 0 and said in r.stderr, (name, r.stderr)
    # a recording of a StUF-ZKN target: the rerun stubs ZGW and the werkmap only, and says so
    shutil.copytree(ROOT / "fixtures" / "recorded" / "aanvraag-aanvulling", tmp_path / "zkn")
    setup = json.loads((tmp_path / "zkn" / "setup.json").read_text())
    setup["targets"]["zaaksysteem"] = {"kind": "stuf-zkn", "url": "http://zs/zds"}
    (tmp_path / "zkn" / "setup.json").write_text(json.dumps(setup))
    r = adapter("simulate", "--rerun", tmp_path / "zkn", "--report-dir", tmp_path / "out")
    assert r.returncode != 0 and r.stderr.strip().count("\n") == 0, r.stderr
    assert "target zaaksysteem is 'stuf-zkn'" in r.stderr


@pytest.mark.parametrize(
    "scenario", ["target-down-then-up.toml", "aanvulling-after-aanvraag.toml", "aanvulling-before-aanvraag.toml"]
)
def test_retries_and_follow_ups_rerun_as_recorded(tmp_path: Path, scenario: str) -> None:
    """A recorded 503 replays as a retry; an aanvulling finds the zaak the recorded aanvraag made; one that came
    before its aanvraag waits for it again (sent in the order they arrived, not one after the other settled)."""
    r = adapter("simulate", "--record", tmp_path / "rec", SCENARIOS / scenario, "--report-dir", tmp_path / "o")
    assert r.returncode == 0, r.stdout + r.stderr
    (rec,) = [p for p in (tmp_path / "rec").iterdir()]
    calls = [c for f in sorted(rec.glob("0*/calls.json")) for c in json.loads(f.read_text())]
    if scenario.startswith("target-down"):
        assert [c["status"] for c in calls if c["url"].endswith("/zaken")][:3] == [503, 503, 503]
    again = adapter("simulate", "--rerun", rec, "--report-dir", tmp_path / "o2")
    assert again.returncode == 0, again.stdout + again.stderr


def test_the_documented_record_and_rerun_commands_run(tmp_path: Path) -> None:
    """docs/ketensimulatie.md, "Record, rerun, compare": each command, and the documented difference lines."""
    from tests.conftest import make_server

    doc = (ROOT / "docs" / "ketensimulatie.md").read_text(encoding="utf-8")
    section = doc[doc.index("## Record, rerun, compare") : doc.index("## The shipped scenarios")]
    commands = re.findall(r"^\.venv/bin/loket-adapter (.*)$", section, re.M)
    assert len(commands) == 4, commands
    changed = copy_mappings(tmp_path)
    toml = changed / "voorbeeldstad.toml"
    toml.write_text(toml.read_text("utf-8").replace("via het Omgevingsloket", "via de balie"), "utf-8")
    for command in commands:
        args = command.replace("var/changed-mappings", str(changed)).replace("var/", f"{tmp_path}/var/").split()
        if args[0] == "serve":  # the live form: a served adapter (its config from the tests) records into the folder
            server = make_server(tmp_path)
            server.args = args[1:]
            server.start()
            server.stop()
            assert json.loads((tmp_path / "var/recorded/live/setup.json").read_text())["ontvangers"]
            continue
        r = adapter(*args, "--report-dir", tmp_path / "out")
        if "--mappings" in args:
            assert r.returncode == 1
            documented = re.findall(r"^(aanvraag-aanvulling\..*: FAILED)$", section, re.M)
            assert len(documented) == 2
            for line in documented:
                pattern = ".*".join(re.escape(part) for part in line.split("…"))
                assert re.search(pattern, r.stderr), (line, r.stderr)
        else:
            assert r.returncode == 0, r.stdout + r.stderr
    assert (tmp_path / "var/recorded/LVO-02/recording.toml").is_file()


def test_the_shipped_recordings_rerun_green(tmp_path: Path) -> None:
    shipped = sorted(p.name for p in (ROOT / "fixtures" / "recorded").iterdir() if p.is_dir())
    assert shipped == ["aanvraag-aanvulling", "stam-initieren"]
    for name in shipped:
        r = adapter("simulate", "--rerun", name, "--report-dir", tmp_path / name)
        assert r.returncode == 0, r.stdout + r.stderr


def test_a_recording_with_koppel_zaak_reruns_with_the_loket_answered_from_it(tmp_path: Path, zs: Any) -> None:
    """KoppelZaak is a call to the loket: recorded, answered on the rerun, its StUF body compared element by
    element (its referentienummer and tijdstipBericht by the default rules)."""
    from adapter.simulation.config_text import loket_toml
    from adapter.simulation.fake_loket import ENDPOINT_PATH, FakeLoket
    from adapter.simulation.serving import serving
    from tests.conftest import make_server

    loket = FakeLoket()
    with serving(loket) as loket_url:
        extra = delivery_toml(zs, copy_mappings(tmp_path), koppel_zaak_aan_aanvraag="true")
        server = make_server(tmp_path, extra_toml=extra + loket_toml(loket_url + ENDPOINT_PATH))
        rec = tmp_path / "live"
        server.args = ["--record", str(rec)]
        server.start()
        try:
            post(server.soap_url, with_reference(fixture("omvDi01AanbiedenAanvraag"), "REC-KOPPEL-1"))
            result = rec / "001-omvDi01AanbiedenAanvraag" / "result.json"
            wait_for(lambda: result.is_file() and "gekoppeld" in (json.loads(result.read_text())["outcome"] or ""))
        finally:
            server.stop()
    calls = json.loads((rec / "001-omvDi01AanbiedenAanvraag" / "calls.json").read_text())
    assert [c["url"].endswith(ENDPOINT_PATH) for c in calls].count(True) == 1
    r = adapter("simulate", "--rerun", rec, "--mappings", ROOT / "mappings", "--report-dir", tmp_path / "out")
    assert r.returncode == 0, r.stdout + r.stderr


def test_differences_show_no_personal_data(tmp_path: Path) -> None:
    """A changed BSN is named by its field; neither value reaches the console, JUnit or HTML in clear."""
    rec = tmp_path / "rec"
    shutil.copytree(ROOT / "fixtures" / "recorded" / "aanvraag-aanvulling", rec)
    inbound = rec / "001-omvDi01AanbiedenAanvraag" / "inbound.xml"
    assert b"999993653" in inbound.read_bytes()
    inbound.write_bytes(inbound.read_bytes().replace(b"999993653", b"999990019"))
    r = adapter("simulate", "--rerun", rec, "--report-dir", tmp_path / "out")
    assert r.returncode == 1
    assert "checkpoint verzoek: field initiatiefnemer.bsn: expected ***, actual ***: FAILED" in r.stderr, r.stderr
    shown = r.stdout + r.stderr + (tmp_path / "out/junit.xml").read_text() + (tmp_path / "out/report.html").read_text()
    assert "999993653" not in shown and "999990019" not in shown
    assert "Dorpsstraat" not in r.stderr  # the whole verzoek, where shown, has its personal fields masked


def test_a_changed_omschrijving_with_the_initiatiefnemers_street_in_it_is_shown_masked(tmp_path: Path) -> None:
    """The STAM verzoek's naam ("Dakkapel Dorpsstraat 1a") holds the initiatiefnemer's street; the rerun's
    difference names the field and shows the values with what the verzoek (served by the werkmap, recorded)
    marks as personal masked, in the console, JUnit and HTML."""
    mappings = copy_mappings(tmp_path)
    example = mappings / "voorbeeldstad.toml"
    rule = 'omschrijving = "{verzoek.omschrijving}"'
    assert rule in example.read_text("utf-8")
    example.write_text(example.read_text("utf-8").replace(rule, 'omschrijving = "Nieuw: {verzoek.omschrijving}"'))
    r = adapter("simulate", "--rerun", "stam-initieren", "--mappings", mappings, "--report-dir", tmp_path / "out")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "checkpoint opdracht: field profiel.omschrijving: expected '***', actual 'Nieuw: ***': FAILED" in r.stderr
    shown = r.stdout + r.stderr + (tmp_path / "out/junit.xml").read_text() + (tmp_path / "out/report.html").read_text()
    assert "Dorpsstraat" not in shown and "Berg" not in shown


def test_a_failing_recorder_never_breaks_a_run_and_a_broken_download_fails_as_without_one() -> None:
    class Broken:
        def checkpoint(self, message_id: int, name: str, value: Any) -> None:
            raise RuntimeError("disk full")

        def call(self, message_id: int, call: dict[str, Any]) -> None:
            raise RuntimeError("disk full")

        def finished(self, message_id: int) -> None:
            raise RuntimeError("disk full")

    class Cut(httpx.SyncByteStream):
        def __iter__(self) -> Any:
            yield b"0123456789"
            raise httpx.ReadError("connection reset")

    transport = httpx.MockTransport(
        lambda request: httpx.Response(200, headers={"content-type": "application/pdf"}, stream=Cut())
    )
    with recording.installed(Broken()), recording.delivering(7):
        recording.checkpoint("verzoek", {"a": 1})  # raises nothing
        client = httpx.Client(transport=transport, event_hooks=recording.EVENT_HOOKS)
        got = b""
        with pytest.raises(httpx.ReadError), client.stream("GET", "http://werkmap/doc") as answer:
            for chunk in answer.iter_bytes():  # the werkmap client resumes from here with a Range request
                got += chunk
        assert got == b"0123456789"
        # finished() raised after the run: the run's end is unaffected
    with recording.replaying(transport), pytest.raises(RuntimeError, match="replays already"):
        recording.replaying(transport).__enter__()  # a second rerun in the same process is refused
    assert recording.transport() is None


def test_a_streamed_download_is_recorded_whole_as_the_client_reads_it(tmp_path: Path) -> None:
    from adapter.simulation.recorded import FlowRecorder

    payload = bytes(range(256)) * 8000  # 2 MB: past the spool's memory part
    transport = httpx.MockTransport(
        lambda request: httpx.Response(200, headers={"content-type": "application/pdf"}, content=payload)
    )
    recorder = FlowRecorder(engine=None, folder=tmp_path)
    with recording.installed(recorder), recording.delivering(3):
        client = httpx.Client(transport=transport, event_hooks=recording.EVENT_HOOKS)
        with client.stream("GET", "http://werkmap/doc") as answer:
            assert b"".join(answer.iter_bytes()) == payload
    (call,) = recorder.flows[3].calls
    assert call["response"]["bytes"] == len(payload)
    assert (tmp_path / "bodies" / f"{call['response']['sha256']}.bin").read_bytes() == payload


def test_recording_files_stay_readable() -> None:
    """A description outside the BMP stays valid TOML; flow folders go past 999."""
    import tomllib

    from adapter.simulation.recorded import flow_name, write_meta

    with tempfile.TemporaryDirectory() as tmp:
        write_meta(Path(tmp), "Bouwen 🏠 aan de Dorpsstraat", ["001-x", "1000-y"], ["*.x"])
        meta = tomllib.loads((Path(tmp) / "recording.toml").read_text("utf-8"))
        assert meta["description"] == "Bouwen 🏠 aan de Dorpsstraat" and meta["flows"] == ["001-x", "1000-y"]
    assert flow_name("1000", "omvDi01AanbiedenAanvraag") == "1000-omvDi01AanbiedenAanvraag"
    assert flow_name("1000-old", "verzoeknotificatie") == "1000-verzoeknotificatie"


def test_a_flow_folder_read_while_it_is_rewritten_shows_whole_files(tmp_path: Path) -> None:
    """``serve --record`` rewrites a flow's files after every run while a tester may read them (CI once read
    an empty result.json): each file is there whole or not at all, and no ``.part`` file is left behind."""
    import threading

    flow = Flow("001-omvDi01AanbiedenAanvraag", calls=[{"n": i} for i in range(200)])
    flow.result = {"state": "delivered", "outcome": "x" * 20000}
    stop, seen = threading.Event(), []

    def read() -> None:
        path = tmp_path / flow.name / "result.json"
        while not stop.is_set():
            try:
                seen.append(json.loads(path.read_text("utf-8"))["state"])
            except FileNotFoundError:
                pass
            except ValueError as exc:  # caught here: an exception in a thread would not fail the test
                seen.append(f"half-written: {exc}")

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for _ in range(300):
            flow.write(tmp_path / flow.name)
    finally:
        stop.set()
        reader.join()
    assert seen and set(seen) == {"delivered"}
    assert sorted(p.name for p in (tmp_path / flow.name).iterdir()) == [
        "answer.xml", "calls.json", "inbound.xml", "opdracht.json", "result.json", "verzoek.json"]  # fmt: skip


def test_a_refused_message_is_recorded_and_its_rerun_is_refused_the_same_way(tmp_path: Path) -> None:
    """A Fo03 (StUF-LVO) and a 400 (STAM) end their flow at the door; the rerun sends them again and compares
    the answer element by element: a recorded StUF055 the rerun answers otherwise is named."""
    chosen = [SCENARIOS / "xsd-invalid.toml", SCENARIOS / "stam-invalid.toml"]
    r = adapter("simulate", "--record", tmp_path / "rec", *chosen, "--report-dir", tmp_path / "out")
    assert r.returncode == 0, r.stdout + r.stderr
    for rec, flow in (("ERR-01", "001-omvDi01AanbiedenAanvraag"), ("STAM-08", "001-verzoeknotificatie")):
        assert json.loads((tmp_path / "rec" / rec / flow / "result.json").read_text())["state"] == "rejected"
        r = adapter("simulate", "--rerun", tmp_path / "rec" / rec, "--report-dir", tmp_path / "out")
        assert r.returncode == 0 and "1 of 1 flows passed" in r.stdout, r.stdout + r.stderr
    answer = tmp_path / "rec" / "ERR-01" / "001-omvDi01AanbiedenAanvraag" / "answer.xml"
    assert "<StUF:code>StUF055</StUF:code>" in answer.read_text()
    answer.write_text(answer.read_text().replace("<StUF:code>StUF055</StUF:code>", "<StUF:code>StUF058</StUF:code>"))
    r = adapter("simulate", "--rerun", tmp_path / "rec" / "ERR-01", "--report-dir", tmp_path / "out")
    assert r.returncode == 1
    assert "checkpoint answer: field Fo03Bericht.body.code: expected 'StUF058', actual 'StUF055': FAILED" in r.stderr
