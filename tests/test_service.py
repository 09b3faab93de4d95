"""``serve`` as a service (issue 10, point 5): a start-up failure is one line and a non-zero exit before any
worker starts; one access-log line per request (no body, no query); Python warnings as structured lines."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import warnings
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT, drop_database, make_server
from tests.soap import fixture, post, with_reference


def test_a_port_in_use_is_one_line_and_exit_1_before_anything_starts(tmp_path: Path) -> None:
    srv = make_server(tmp_path)
    taken = socket.socket()
    taken.bind(("127.0.0.1", srv.port))
    taken.listen(1)
    try:
        r = subprocess.run(
            [sys.executable, "-m", "adapter", "--config", str(srv.config), "serve"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        taken.close()
    assert r.returncode == 1, r.stderr
    # the only line: nothing was opened, migrated or started before it (no "startup complete", no worker)
    assert r.stderr.splitlines() == [f"error: cannot listen on 127.0.0.1:{srv.port}: address already in use"]
    assert r.stdout == ""


def test_an_address_this_machine_does_not_have_is_one_line(tmp_path: Path) -> None:
    srv = make_server(tmp_path)
    r = subprocess.run(
        [sys.executable, "-m", "adapter", "--config", str(srv.config), "serve", "--host", "192.0.2.1"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 1
    (line,) = r.stderr.splitlines()
    assert line.startswith(f"error: cannot listen on 192.0.2.1:{srv.port}: "), line


def test_one_access_line_per_request_with_the_correlation_id_and_no_body(tmp_path: Path) -> None:
    srv = make_server(tmp_path)
    srv.start()
    try:
        body = with_reference(fixture("omvDi01AanbiedenAanvraag"), "ACCESS-1")
        answer = post(srv.soap_url, body)
        assert answer.status == 200
        health = httpx.get(f"{srv.url}/healthz?probe=secret-looking")
        assert health.status_code == 200
        missing = httpx.get(f"{srv.url}/no/such/path")
        assert missing.status_code == 404
    finally:
        srv.stop()
        drop_database(srv.db_url)
    lines = [json.loads(line) for line in srv.log_text().splitlines() if line.startswith("{")]
    access = [line for line in lines if line.get("logger") == "adapter.access"]
    started = [a["path"] for a in access].index("/soap/stuf-lvo")
    assert {a["path"] for a in access[:started]} == {"/healthz"}  # the start check's probes, logged too
    access = access[started:]
    assert [(a["method"], a["path"], a["status"]) for a in access] == [
        ("POST", "/soap/stuf-lvo", 200),
        ("GET", "/healthz", 200),
        ("GET", "/no/such/path", 404),
    ]
    soap = access[0]
    # the same correlation id as the message's own lines: an operator follows one request through
    accepted = next(line for line in lines if line.get("event") == "message accepted")
    assert soap["correlation_id"] == accepted["correlation_id"]
    assert soap["bytes_sent"] > 0 and soap["duration_ms"] >= 0 and soap["client"] == "127.0.0.1"
    assert access[1]["correlation_id"] != soap["correlation_id"]  # a fresh one for a request without its own
    text = json.dumps(access)
    assert "secret-looking" not in text and "ACCESS-1" not in text and "omvDi01" not in text  # no query, no body


def test_a_python_warning_is_a_structured_log_line(capsys: pytest.CaptureFixture[str]) -> None:
    from adapter.logs import configure_logging

    configure_logging("production", "INFO")
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.warn("an insecure setting for 123456782", UserWarning, stacklevel=1)
    (line,) = [json.loads(x) for x in capsys.readouterr().err.splitlines()]
    assert line["logger"] == "py.warnings" and line["level"] == "warning"
    assert "UserWarning: an insecure setting" in line["event"]
    assert "123456782" not in line["event"]  # masked like every other line (a BSN-shaped number)
