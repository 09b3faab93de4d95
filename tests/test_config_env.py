"""Every setting can come from the environment (``LOKET_SECTION__KEY``, 12-factor), and the SQLite store is
where the config file says, whatever the working directory (issue 10, point 5)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from adapter.config import load_settings
from adapter.errors import ConfigError
from tests.conftest import ROOT, free_port, stop_process

BASE = """
[server]
port = 8080

[targets.Zaaksysteem]
kind = "zgw"
timeout = 5

[[stuf.ontvangers]]
organisatie = "00000001002564440000"
applicatie = "ZAAKSYSTEEM"
"""


def config(tmp_path: Path, text: str = BASE) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_variable_overrides_the_file_s_value_with_the_setting_s_type(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOKET_SERVER__PORT", "9090")
    monkeypatch.setenv("LOKET_SERVER__ENVIRONMENT", "production")
    monkeypatch.setenv("LOKET_DELIVERY__ENABLED", "false")
    monkeypatch.setenv("LOKET_TARGETS__ZAAKSYSTEEM__TIMEOUT", "30")  # the file's own spelling is kept
    monkeypatch.setenv("LOKET_STORE__URL", "sqlite:////srv/loket/adapter.db")
    monkeypatch.setenv(
        "LOKET_STUF__ZENDERS", '[{"organisatie": "00000001800866472000", "applicatie": "OLO"}]'
    )  # a list as JSON
    monkeypatch.setenv("LOKET_ADAPTER_CONFIG", "elsewhere.toml")  # no "__": not a setting
    s = load_settings(config(tmp_path))
    assert (s.server.port, s.server.environment, s.delivery.enabled) == (9090, "production", False)
    assert s.targets == {"Zaaksysteem": {"kind": "zgw", "timeout": "30"}}  # the target plugin types it
    assert s.store.url == "sqlite:////srv/loket/adapter.db"
    assert [(z.organisatie, z.applicatie) for z in s.stuf.zenders] == [("00000001800866472000", "OLO")]
    assert s.stuf.ontvangers[0].applicatie == "ZAAKSYSTEEM"  # untouched


def test_a_section_the_file_does_not_have_is_made(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOKET_RETENTION__DELIVERED_DAYS", "30")
    assert load_settings(config(tmp_path)).retention.delivered_days == 30


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("LOKET_SERVER__PORT", "eighty", "server.port (from $LOKET_SERVER__PORT): Input should be a valid integer"),
        ("LOKET_SERVER__PROT", "80", "server.prot (from $LOKET_SERVER__PROT): unknown key"),
        ("LOKET_BOGUS__KEY", "1", "bogus (from $LOKET_BOGUS__KEY): unknown key"),
        ("LOKET_STUF__ZENDERS", "[{", "stuf.zenders (from $LOKET_STUF__ZENDERS): not valid JSON"),
        ("LOKET_SERVER__PORT__X", "1", "server.port (from $LOKET_SERVER__PORT__X): not a table"),
        ("LOKET_SERVER____PORT", "1", "LOKET_SERVER____PORT: not a setting (use LOKET_SECTION__KEY"),
    ],
)
def test_a_wrong_variable_is_one_error_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, value: str, expected: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError) as e:
        load_settings(config(tmp_path))
    assert expected in str(e.value), str(e.value)


def test_serve_listens_on_the_port_from_the_environment(tmp_path: Path) -> None:
    (tmp_path / "var").mkdir()
    path = config(
        tmp_path, BASE.replace('[targets.Zaaksysteem]\nkind = "zgw"\ntimeout = 5\n', "[delivery]\nenabled = false\n")
    )
    port = free_port()
    env = {**os.environ, "LOKET_SERVER__PORT": str(port), "LOKET_STORE__URL": "sqlite:///var/env.db"}
    log = (tmp_path / "serve.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "adapter", "--config", str(path), "serve"], cwd=ROOT, env=env, stdout=log, stderr=log
    )
    try:
        for _ in range(300):
            assert proc.poll() is None, (tmp_path / "serve.log").read_text()
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=0.5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        else:
            raise AssertionError("serve did not answer on the port from LOKET_SERVER__PORT")
        assert (tmp_path / "var" / "env.db").is_file()  # the variable's relative URL: beside the config too
    finally:
        stop_process(proc)


def run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "adapter", *args], cwd=cwd, capture_output=True, text=True, timeout=60, env=os.environ
    )


def test_the_sqlite_file_is_beside_the_config_not_in_the_working_directory(tmp_path: Path) -> None:
    home, elsewhere = tmp_path / "etc", tmp_path / "cwd"
    (home / "data").mkdir(parents=True)
    elsewhere.mkdir()
    path = config(home, BASE + '\n[store]\nurl = "sqlite:///data/adapter.db"\n')
    r = run("--config", str(path), "db", "upgrade", cwd=elsewhere)
    assert r.returncode == 0, r.stderr
    assert (home / "data" / "adapter.db").is_file()
    assert list(elsewhere.iterdir()) == []


def test_a_missing_folder_for_the_sqlite_file_is_an_error_not_made(tmp_path: Path) -> None:
    path = config(tmp_path, BASE + '\n[store]\nurl = "sqlite:///data/adapter.db"\n')
    r = run("--config", str(path), "db", "upgrade", cwd=tmp_path)
    assert r.returncode == 1
    assert r.stderr.splitlines() == [
        f"error: store.url: folder {tmp_path}/data does not exist (create it, for the service alone)"
    ]
    assert not (tmp_path / "data").exists()


def test_a_relative_db_option_is_relative_to_where_the_command_runs(tmp_path: Path) -> None:
    home, elsewhere = tmp_path / "etc", tmp_path / "cwd"
    home.mkdir()
    elsewhere.mkdir()
    path = config(home)
    r = run("--config", str(path), "db", "upgrade", "--db", "sqlite:///here.db", cwd=elsewhere)
    assert r.returncode == 0, r.stderr
    assert (elsewhere / "here.db").is_file() and not (home / "here.db").exists()
