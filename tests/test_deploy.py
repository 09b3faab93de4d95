"""The deployment pieces (issue 10, point 5): the systemd unit in ``deploy/`` passes ``systemd-analyze verify``
and its settings are ones the adapter accepts; LICENSE is the licence pyproject.toml names."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from adapter.config import load_settings
from tests.conftest import ROOT

UNIT = ROOT / "deploy" / "loket-adapter.service"
INSTALLED = "/opt/loket-adapter/bin/loket-adapter"


def verify(unit_text: str, tmp_path: Path) -> list[str]:
    """``systemd-analyze verify`` of the unit with ExecStart pointed at this checkout's command (verify
    checks that it exists and is executable); the lines it prints about the unit."""
    if shutil.which("systemd-analyze") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("systemd-analyze missing (.ci/run installs systemd)")
        pytest.skip("systemd-analyze missing (apt install systemd)")
    command = Path(sys.executable).parent / "loket-adapter"
    assert INSTALLED in unit_text
    path = tmp_path / "loket-adapter.service"
    path.write_text(unit_text.replace(INSTALLED, str(command)), encoding="utf-8")
    r = subprocess.run(["systemd-analyze", "verify", str(path)], capture_output=True, text=True, timeout=60)
    said = [line for line in (r.stdout + r.stderr).splitlines() if path.name in line]
    return [f"exit {r.returncode}", *said] if r.returncode else said


def test_the_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    assert verify(UNIT.read_text(encoding="utf-8"), tmp_path) == []


def test_verify_catches_a_broken_unit(tmp_path: Path) -> None:
    """The check above can fail: a misspelt value and a missing command are reported."""
    broken = UNIT.read_text(encoding="utf-8").replace("Restart=on-failure", "Restart=sometimes")
    assert any("restart specifier" in line for line in verify(broken, tmp_path))
    missing = UNIT.read_text(encoding="utf-8").replace(" serve", " serve\nExecStartPost=/nonexistent/command")
    assert any("/nonexistent/command" in line for line in verify(missing, tmp_path))


def unit_environment() -> dict[str, str]:
    """The unit's ``Environment=`` assignments."""
    pairs = re.findall(r"^Environment=([A-Z0-9_]+)=(.*)$", UNIT.read_text(encoding="utf-8"), re.M)
    return dict(pairs)


def test_the_unit_s_settings_are_accepted_and_put_the_state_in_its_state_directory(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env = unit_environment()
    assert env["LOKET_ADAPTER_CONFIG"] == "/etc/loket-adapter/config.toml"
    for name, value in env.items():
        if "__" in name:
            monkeypatch.setenv(name, value)
    s = load_settings(ROOT / "config.example.toml")  # as /etc/loket-adapter/config.toml would be
    assert s.store_url() == "sqlite:////var/lib/loket-adapter/loket-adapter.db"
    assert s.store.files_dir == "/var/lib/loket-adapter/files"
    assert s.server.environment == "production"
    text = UNIT.read_text(encoding="utf-8")
    assert "StateDirectory=loket-adapter" in text and "UMask=0077" in text  # readable by the service alone


@pytest.mark.skipif(not Path("/run/systemd/system").is_dir(), reason="no systemd running here (PID 1 is not systemd)")
def test_the_unit_starts_under_systemd(tmp_path: Path) -> None:
    unit = tmp_path / "loket-adapter-test.service"
    config = tmp_path / "config.toml"
    shutil.copy(ROOT / "config.example.toml", config)
    text = UNIT.read_text(encoding="utf-8").replace(INSTALLED, str(Path(sys.executable).parent / "loket-adapter"))
    text = text.replace("/etc/loket-adapter/config.toml", str(config)).replace("User=loket-adapter\n", "")
    text = text.replace("Group=loket-adapter\n", "").replace("ProtectHome=yes", "ProtectHome=no")
    unit.write_text(text, encoding="utf-8")
    subprocess.run(["systemctl", "link", str(unit)], check=True)
    try:
        subprocess.run(["systemctl", "start", unit.name], check=True, timeout=60)
        state = subprocess.run(["systemctl", "is-active", unit.name], capture_output=True, text=True).stdout.strip()
        assert state == "active"
    finally:
        subprocess.run(["systemctl", "stop", unit.name], check=False)
        subprocess.run(["systemctl", "disable", unit.name], check=False)


def test_license_is_the_one_pyproject_names() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    assert project["license"] == {"text": "EUPL-1.2"}
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    assert "SPDX-License-Identifier: EUPL-1.2" in text
    assert "EUROPEAN UNION PUBLIC LICENCE v. 1.2" in text and "Appendix" in text  # the whole text, not a pointer
