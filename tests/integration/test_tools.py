"""The commands the README shows for the Open Zaak suite: the install/start CLI and bench/openzaak.py."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT
from tests.integration.openzaak_server import OpenZaak

pytestmark = pytest.mark.timeout(900)


def test_install_cli_reports_the_cached_tree(openzaak: OpenZaak) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "tests.integration.openzaak_server", "install"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr
    assert f"installed: {openzaak.root} (" in out.stdout and "cold install times" in out.stdout


def test_start_cli_serves_a_seeded_open_zaak_until_interrupted(openzaak: OpenZaak) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.integration.openzaak_server", "start", "--seed"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        lines = []
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            assert line, proc.stderr.read() if proc.stderr else ""
            lines.append(line)
            if line.startswith("catalogus: "):
                break
        token = next(x for x in lines if x.startswith("client_id")).split("token: ")[1].strip()
        catalogus = lines[-1].split(": ", 1)[1].strip()
        r = httpx.get(catalogus, headers={"Authorization": f"Bearer {token}"}, timeout=30)
        assert r.status_code == 200 and r.json()["domein"] == "OMGEV", r.text
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(150)  # its stop: uwsgi up to 15 s, then PostgreSQL's `pg_ctl -w stop` (up to 60 s), then rmtree
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate(30)
            pytest.fail(f"the start CLI did not stop within 150 s of Ctrl-C; its stderr:\n{err[-3000:]}")
    assert proc.returncode == 0
    with pytest.raises(httpx.HTTPError):
        httpx.get(catalogus, timeout=2)  # stopped


def test_the_bench_prints_both_rates_and_their_ratio(openzaak: OpenZaak) -> None:
    out = subprocess.run(
        [sys.executable, "bench/openzaak.py", "--messages", "2", "--workers", "1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "fake ZGW (baseline)" in out.stdout and "states {'done': 4}" in out.stdout, out.stdout
    assert "Open Zaak 1.21.0" in out.stdout and "ratio Open Zaak/fake:" in out.stdout, out.stdout


def test_the_suite_skips_with_a_clear_reason(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from tests.integration import openzaak_server

    monkeypatch.delenv("LOKET_SKIP_OPENZAAK", raising=False)
    monkeypatch.setattr(openzaak_server, "SHARED", tmp_path / "shared")
    assert "shared is absent" in (openzaak_server.skip_reason(tmp_path / "x.tar.gz") or "")
    monkeypatch.setattr(openzaak_server, "SHARED", tmp_path)
    assert openzaak_server.skip_reason(tmp_path / "x.tar.gz") == f"{tmp_path / 'x.tar.gz'} is absent"
    monkeypatch.setenv("LOKET_SKIP_OPENZAAK", "1")
    assert "LOKET_SKIP_OPENZAAK is set" in (openzaak_server.skip_reason() or "")
    monkeypatch.delenv("LOKET_SKIP_OPENZAAK")
    tarball = tmp_path / "x.tar.gz"
    tarball.write_bytes(b"")
    monkeypatch.setattr(openzaak_server, "is_root", lambda: False)
    monkeypatch.setattr(openzaak_server, "missing_apt_packages", lambda: ["gdal-bin"])
    assert openzaak_server.skip_reason(tarball) == "not root and apt packages missing: gdal-bin"
    monkeypatch.setattr(openzaak_server, "missing_apt_packages", lambda: [])
    assert "not root" in (openzaak_server.skip_reason(tarball) or "")
