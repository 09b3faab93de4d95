"""Issue 11: ``simulate --serve-fakes`` starts the loket side and zaaksysteem fakes alone and prints a config
that an adapter really runs with (an aanvraag over StUF-LVO and a STAM verzoek become zaken in the fake ZGW,
a postbus file arrives over SFTP, the fake loket gets its KoppelZaak); ``simulate --url`` runs the delivery
scenarios against an adapter someone else started; the fake ZDS ships its official schemas unmodified."""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from adapter.cli import main
from tests import soap
from tests.conftest import ROOT, SHARED, Server, free_port, stop_process
from tests.delivery_env import Zaaksysteem, adapter_with_delivery, needs_zgw_specs, wait_for

pytestmark = needs_zgw_specs
SCENARIOS = ROOT / "fixtures" / "scenarios"
AANVRAAG = ROOT / "fixtures" / "stuf-lvo" / "omvDi01AanbiedenAanvraag.xml"
VERZOEK = ROOT / "fixtures" / "stam" / "verzoek-initieren.xml"
DOC = ROOT / "docs" / "ketensimulatie.md"


class ServedFakes:
    """A ``simulate --serve-fakes`` subprocess and what it printed."""

    def __init__(self, proc: subprocess.Popen[bytes], out: Path) -> None:
        self.proc, self.out = proc, out

    @property
    def stdout(self) -> str:
        return self.out.read_text(encoding="utf-8")

    def url(self, name: str) -> str:
        m = re.search(rf"^  {name} +(\S+)$", self.stdout, re.M)
        assert m, self.stdout
        return m.group(1)

    def printed_config(self) -> str:
        m = re.search(r"^# --- adapter config ---\n(.*)\n# --- end of adapter config ---$", self.stdout, re.M | re.S)
        assert m, self.stdout
        return m.group(1)


def start_fakes(tmp_path: Path, *args: str) -> ServedFakes:
    out = tmp_path / "fakes.out"
    with out.open("wb") as sink, (tmp_path / "fakes.err").open("wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "adapter", "simulate", "--serve-fakes", *args], cwd=ROOT, stdout=sink, stderr=err
        )
    served = ServedFakes(proc, out)
    deadline = time.monotonic() + 60
    while "ready;" not in served.stdout:
        if proc.poll() is not None or time.monotonic() > deadline:
            stop_process(proc)
            raise AssertionError(f"--serve-fakes did not start: {(tmp_path / 'fakes.err').read_text()[-3000:]}")
        time.sleep(0.1)
    return served


@pytest.fixture
def fakes(tmp_path: Path) -> Iterator[ServedFakes]:
    served = start_fakes(tmp_path, "--write-config", str(tmp_path / "adapter.toml"))
    try:
        yield served
    finally:
        stop_process(served.proc)


def zaken(config: Path, identificatie: str) -> list[dict[str, Any]]:
    """The zaken of that identificatie in the config's ZGW zaaksysteem, read through its Zaken API."""
    from adapter.config import load_settings
    from adapter.targets.registry import build_targets

    target = build_targets(load_settings(config))["zaaksysteem"]
    return list(target.client.find_all("zaken", "zaken", identificatie=identificatie))


def test_the_printed_config_runs_an_adapter_through_every_fake(fakes: ServedFakes, tmp_path: Path) -> None:
    config = tmp_path / "adapter.toml"
    assert fakes.printed_config() == config.read_text(encoding="utf-8").rstrip()
    settings = tomllib.loads(config.read_text(encoding="utf-8"))
    assert settings["targets"]["zaaksysteem"]["kind"] == "zgw" and settings["targets"]["zds"]["kind"] == "stuf-zkn"
    assert {"werkmap", "loket", "samenwerken"} <= settings.keys()
    port = settings["server"]["port"]
    adapter = Server(config=config, db_url=settings["store"]["url"], port=port, log_path=tmp_path / "adapter.log")
    adapter.start()
    try:
        answer = soap.post(adapter.soap_url, AANVRAAG.read_bytes())
        assert answer.status == 200 and b"Bv03Bericht" in answer.body, answer.body
        postbox = settings.get("postboxes", {}).get("olo")
        if postbox is not None:  # sshd is here: the aanvraag waits for its bijlage's file in the postbus
            assert "sftp" in fakes.url("sftp")
            time.sleep(1)
            assert zaken(config, "OLO-1234567") == []
            inbox = Path(postbox["inbox"])
            (inbox / "1234567_1234567_Foto_voorgevel.jpg").write_bytes(b"\xff\xd8 a photo of the front")
        else:
            assert "SFTP postbox: not started" in fakes.stdout
        wait_for(lambda: len(zaken(config, "OLO-1234567")) == 1, 60, "the aanvraag's zaak in the fake ZGW")
        if postbox is not None:
            wait_for(lambda: any(Path(postbox["processed"]).iterdir()), 30, "the postbus file moved to processed")
        # the loket got its KoppelZaak from the adapter
        notifier = fakes.url("notifier")
        wait_for(
            lambda: (
                {"bericht": "vrgDi01KoppelZaakAanAanvraag", "aanvraagnummer": "1234567"}
                in httpx.get(f"{notifier}/loket").json()
            ),
            30,
            "the KoppelZaak at the fake loket",
        )
        # STAM: the notifier puts the verzoek in the werkmap and notifies the adapter, which fetches it
        r = httpx.post(f"{notifier}/verzoeken", content=VERZOEK.read_bytes(), timeout=30)
        assert r.status_code == 201, r.text
        assert r.json()["verzoeknummer"] == "2026112300123" and r.json()["adapter"]["status"] == 202, r.json()
        wait_for(lambda: len(zaken(config, "OLO-2026112300123")) == 1, 60, "the verzoek's zaak in the fake ZGW")
        # a verzoek the werkmap does not take is one readable answer
        r = httpx.post(f"{notifier}/verzoeken", content=b"<verzoek/>")
        assert r.status_code == 400 and "not a verzoek the werkmap takes" in r.json()["error"]
        # the loket's StUF-LVO sender: the same fixture twice is two messages (each its own referentienummer)
        sent = [httpx.post(f"{notifier}/stuf-lvo?nummer=7654321", content=AANVRAAG.read_bytes(), timeout=30)
                for _ in range(2)]  # fmt: skip
        assert [s.status_code for s in sent] == [200, 200] and all("Bv03Bericht" in s.json()["answer"] for s in sent)
        assert len({s.json()["referentienummer"] for s in sent}) == 2
        with sqlite3.connect(settings["store"]["url"].removeprefix("sqlite:///")) as db:
            stored = db.execute("select referentienummer from messages where nummer = '7654321'").fetchall()
        assert sorted(r for (r,) in stored) == sorted(s.json()["referentienummer"] for s in sent)
        r = httpx.post(f"{notifier}/stuf-lvo", content=b"<geen/>")
        assert r.status_code == 400 and "no stuurgegevens with a StUF:referentienummer" in r.json()["error"]
    finally:
        adapter.stop()
    store = Path(settings["store"]["url"].removeprefix("sqlite:///"))
    assert store.exists()
    pid_file = Path(postbox["key_file"]).parent / "sshd.pid" if postbox is not None else None
    sshd = int(pid_file.read_text()) if pid_file is not None else None
    fakes.proc.send_signal(signal.SIGTERM)
    assert fakes.proc.wait(30) == 0
    assert "stopping the fakes" in fakes.stdout
    assert not store.parent.exists()  # the fakes' temporary folder (store, postbus, sshd keys) is gone
    if sshd is not None:
        with pytest.raises(ProcessLookupError):
            os.kill(sshd, 0)
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{fakes.url('notifier')}/")


def test_port_base_fixes_every_port_and_without_sshd_it_says_so_and_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from adapter.config import load_settings
    from adapter.paths import MAPPINGS_DIR
    from adapter.simulation import fakes as module

    monkeypatch.setattr(module, "SSHD", tmp_path / "no-sshd")
    base = free_range(len(module.PORTS))
    with module.serving_fakes(port_base=base, mappings=MAPPINGS_DIR) as f:
        assert f.postbox is None and "sftp" not in f.urls
        assert f.notes == [
            f"SFTP postbox: not started ({tmp_path / 'no-sshd'} or ssh-keygen is absent); the config has none"
        ]
        assert f.adapter_url == f"http://127.0.0.1:{base}"
        for name, offset in module.PORTS.items():
            if name in f.urls:
                assert f.urls[name].startswith(f"http://127.0.0.1:{base + offset}"), (name, f.urls[name])
        config = tmp_path / "c.toml"
        config.write_text(f.config_toml, encoding="utf-8")
        settings = load_settings(config)
        assert settings.server.port == base and not settings.postboxes
        assert httpx.get(f.urls["zds"]).text.startswith("fake ZDS zaaksysteem")
        assert "POST /verzoeken" in httpx.get(f.urls["notifier"]).text
        taken = tmp_path / "taken"
        taken_message = f"uvicorn did not start on 127.0.0.1:{base + 1}"
        with (
            pytest.raises(RuntimeError, match=taken_message),
            module.serving_fakes(port_base=base, mappings=MAPPINGS_DIR),
        ):
            taken.touch()
        assert not taken.exists()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f.urls["zgw"])


def test_the_printed_config_delivers_into_the_fake_zds_when_a_mapping_routes_there(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The config's [targets.zds] reaches the fake StUF-ZKN zaaksysteem, which checks every message against the
    ZDS 1.2 schemas and WSDLs it ships."""
    import shutil

    from adapter.simulation import fakes as module

    monkeypatch.setattr(module, "SSHD", tmp_path / "no-sshd")  # no postbus: the aanvraag need not wait for a file
    mappings = shutil.copytree(ROOT / "mappings", tmp_path / "mappings")
    example = mappings / "voorbeeldstad.toml"
    text = example.read_text(encoding="utf-8")
    assert text.count('target = "zaaksysteem"') == 1
    example.write_text(text.replace('target = "zaaksysteem"', 'target = "zds"'), encoding="utf-8")
    with module.serving_fakes(mappings=mappings) as f:
        config = tmp_path / "adapter.toml"
        config.write_text(f.config_toml, encoding="utf-8")
        port = int(f.adapter_url.rsplit(":", 1)[1])
        adapter = Server(config=config, db_url="", port=port, log_path=tmp_path / "adapter.log")
        adapter.start()
        try:
            answer = soap.post(adapter.soap_url, AANVRAAG.read_bytes())
            assert answer.status == 200 and b"Bv03Bericht" in answer.body, answer.body
            zds = f.fakes["zds"]
            wait_for(lambda: len(zds.zaken) == 1, 60, "the zaak in the fake ZDS")
            wait_for(lambda: len(zds.documenten) == 2, 30, "its documents in the fake ZDS")
        finally:
            adapter.stop()
        assert all(status == 200 for _, _, status in zds.received.calls), zds.received.calls
        assert f.fakes["zgw"].zaken == []


def free_range(n: int) -> int:
    """A port with the ``n - 1`` after it free too (checked by binding them)."""
    import socket

    for _ in range(50):
        base = free_port()
        if base + n > 65535:
            continue
        socks = []
        try:
            for p in range(base, base + n):
                s = socket.socket()
                socks.append(s)
                s.bind(("127.0.0.1", p))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise AssertionError("no free range of ports")


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--serve-fakes", str(SCENARIOS / "triage.toml")], "--serve-fakes does not go with SCENARIO"),
        (["--serve-fakes", "--target", "config"], "--serve-fakes does not go with --target config"),
        (["--port-base", "9000"], "--port-base only goes with --serve-fakes"),
        (["--write-config", "x.toml"], "--write-config only goes with --serve-fakes"),
        (["--url", "http://127.0.0.1:9"],
         "--url runs against that adapter's store and zaaksysteem: add --target config"),
        (["--url", "http://127.0.0.1:9", "--target", "config", "--mappings", "mappings"],
         "--url does not go with --mappings"),
    ],
)  # fmt: skip
def test_option_mistakes_are_one_line(args: list[str], said: str) -> None:
    r = CliRunner().invoke(main, ["simulate", *args])
    assert r.exit_code == 1 and r.stdout == "", r.stdout
    assert r.stderr == f"error: {said}\n", r.stderr


def test_url_runs_the_delivery_scenarios_against_a_running_adapter(tmp_path: Path, zs: Zaaksysteem) -> None:
    """The adapter is started here as a supplier would (serve, its own store and zaaksysteem); the scenarios
    reach it only over HTTP and read its store and zaaksysteem through its config."""
    from sqlalchemy import create_engine, text

    adapter = adapter_with_delivery(tmp_path, zs)
    adapter.start()
    try:
        chosen = [
            SCENARIOS / f for f in ("aanvulling-after-aanvraag.toml", "target-down-then-up.toml", "xsd-invalid.toml")
        ]
        r = simulate_cli(
            "--config", adapter.config, "simulate", "--target", "config", "--url", adapter.url + "/", *chosen,
            "--report-dir", tmp_path / "out",
        )  # fmt: skip
        assert r.returncode == 0, r.stdout + r.stderr
        assert "2 of 2 scenarios passed, 1 skipped" in r.stdout
        fake: Any = zs.fake
        assert len(fake.zaken) == 1  # made by the running adapter: the aanvulling landed on its zaak
        engine = create_engine(adapter.db_url)
        try:
            with engine.connect() as conn:
                stored = conn.execute(text("select count(*) from messages")).scalar()
        finally:
            engine.dispose()
        assert stored == 3  # aanvraag, aanvulling, the schema-invalid one: all in the running adapter's store
        # nobody there: one line, before any scenario
        nobody = f"http://127.0.0.1:{free_port()}"
        r = simulate_cli("--config", adapter.config, "simulate", "--target", "config", "--url", nobody, *chosen)
        assert r.returncode == 1 and r.stdout == ""
        assert r.stderr.count("\n") == 1 and r.stderr.startswith(f"error: --url {nobody}: no adapter answers there")
    finally:
        adapter.stop()


def simulate_cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "adapter", *map(str, args)], cwd=ROOT, capture_output=True, text=True, timeout=300
    )


def test_the_documented_serve_fakes_commands_run(tmp_path: Path) -> None:
    """The section's commands as written, with its port base moved to free ports and var/ to a temporary folder:
    --serve-fakes, serve with the written config, the curl calls of the loket's part."""
    section = DOC.read_text(encoding="utf-8").split("## The far sides alone: `--serve-fakes`")[1].split("\n## ")[0]
    blocks = [b.strip().splitlines() for b in re.findall(r"```bash\n(.*?)```", section, re.S)]
    assert len(blocks) == 2, blocks
    base = free_range(8)

    def moved(line: str) -> str:
        line = re.sub(r"\b1808(\d)\b", lambda m: str(base + int(m.group(1))), line)
        return line.replace("--port-base 18080", f"--port-base {base}").replace("var/", f"{tmp_path}/")

    ((fakes_line,), (serve_line, *curls)) = blocks[0], blocks[1]
    assert fakes_line.startswith(".venv/bin/loket-adapter simulate --serve-fakes --port-base 18080 ")
    served = start_fakes(tmp_path, *moved(fakes_line).split()[3:])
    try:
        assert served.url("notifier") == f"http://127.0.0.1:{base + 6}"
        m = re.fullmatch(r"\.venv/bin/loket-adapter --config (\S+) serve", moved(serve_line))
        assert m, serve_line
        config = Path(m.group(1))
        adapter = Server(config=config, db_url="", port=base, log_path=tmp_path / "adapter.log")
        adapter.start()
        try:
            answers = [
                subprocess.run(moved(c), shell=True, cwd=ROOT, capture_output=True, text=True, timeout=60).stdout
                for c in curls
            ]
        finally:
            adapter.stop()
        assert len(answers) == 4 and "Bv03Bericht" in answers[0], answers
        assert '"verzoeknummer":"2026112300123"' in answers[1] and '"status":202' in answers[1], answers
        assert answers[2].startswith("["), answers
        sent = json.loads(answers[3])
        assert sent["status"] == 200 and "Bv03Bericht" in sent["answer"] and sent["referentienummer"].startswith("SIM-")
    finally:
        stop_process(served.proc)


def test_the_documented_url_command_runs(tmp_path: Path, zs: Zaaksysteem) -> None:
    doc = DOC.read_text(encoding="utf-8")
    (command,) = re.findall(r"^\.venv/bin/loket-adapter --config \S+ simulate (--target config --url .*)$", doc, re.M)
    adapter = adapter_with_delivery(tmp_path, zs)
    adapter.start()
    try:
        args = command.replace("http://127.0.0.1:8080", adapter.url).split()
        r = simulate_cli("--config", adapter.config, "simulate", *args, "--report-dir", tmp_path / "out")
        assert r.returncode == 0, r.stdout + r.stderr
        n = sum(a.endswith(".toml") for a in args)
        assert n >= 1 and f"{n} of {n} scenarios passed; reports in" in r.stdout, r.stdout
    finally:
        adapter.stop()


def zds_sums() -> dict[str, str]:
    from adapter.simulation.fakes import ZDS_SPECS_DIR

    lines = (ZDS_SPECS_DIR / "SHA256SUMS").read_text(encoding="utf-8").splitlines()
    return {name: digest for digest, name in (line.split() for line in lines if line.strip())}


def test_the_fake_zds_ships_its_official_schemas_unmodified() -> None:
    from adapter.simulation.fakes import ZDS_SPECS_DIR

    listed = zds_sums()
    shipped = {p.name for p in ZDS_SPECS_DIR.iterdir()} - {"SHA256SUMS", "README.md"}
    assert set(listed) == shipped and len(shipped) == 16
    for name, digest in listed.items():
        assert hashlib.sha256((ZDS_SPECS_DIR / name).read_bytes()).hexdigest() == digest, name
    readme = (ZDS_SPECS_DIR / "README.md").read_text(encoding="utf-8")
    assert all(f"`{name}`" in readme for name in listed) and "EUPL-1.2" in readme
    if (SHARED / "reference" / "zds-1.2").is_dir():
        for name in listed:
            assert (ZDS_SPECS_DIR / name).read_bytes() == (SHARED / "reference" / "zds-1.2" / name).read_bytes(), name
