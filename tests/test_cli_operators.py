"""The CLI as an operator uses it (issue 10, point 4): ``messages list`` says why a delivery is not done and
when it is tried again; ``--json`` on list, show and stats; every wrong combination of options is one line on
stderr and a non-zero exit; ``--version``."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from importlib.metadata import version
from typing import Any

import pytest
from click.testing import CliRunner

from adapter.cli import main
from adapter.services import Services
from tests.conftest import ROOT
from tests.delivery_env import needs_zgw_specs
from tests.soap import fixture, with_reference

pytestmark = needs_zgw_specs


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "adapter", *args], cwd=ROOT, capture_output=True, text=True, timeout=120
    )


def receive(sv: Services, reference: str) -> int:
    from sqlalchemy import text

    from adapter.inbound.stuf_lvo import StufLvoChannel

    channel = StufLvoChannel(sv.settings, sv.writer, sv.schemas)
    raw = with_reference(fixture("omvDi01AanbiedenAanvraag"), reference)
    channel.accept(channel.receive(raw, uuid.uuid4().hex))
    with sv.engine.connect() as conn:
        return int(conn.execute(text("SELECT max(id) FROM messages")).scalar_one())


@pytest.fixture
def log(delivering: Any, zs: Any) -> Any:
    """A store with three messages: one delivered, one retrying after a 503 of the zaaksysteem, one whose
    delivery has not run yet."""
    sv = delivering(backoff_initial=600, backoff_max=3600)
    delivered = receive(sv, "OPS-DONE")
    assert [r.state for r in sv.outbox.work_once(limit=1)] == ["done"]
    zs.fake.fail_next("POST", "/zaken", status=503, times=5)
    retrying = receive(sv, "OPS-RETRY")
    assert [r.state for r in sv.outbox.work_once(limit=1)] == ["retry"]
    pending = receive(sv, "OPS-PENDING")
    sv.ids = {"done": delivered, "retry": retrying, "pending": pending}
    return sv


def cli(sv: Services, *args: str) -> subprocess.CompletedProcess[str]:
    return run("--config", str(sv.settings.source), *args)


def test_list_shows_attempts_next_attempt_and_the_last_error(log: Any) -> None:
    r = cli(log, "messages", "list")
    assert r.returncode == 0, r.stderr
    header, *rows = r.stdout.splitlines()
    assert header.split() == [
        *("ID", "RECEIVED", "(UTC)", "STATE", "TYPE", "NUMMER", "CODE", "REFERENTIE"),
        *("ATTEMPTS", "NEXT", "(UTC)", "LAST", "ERROR"),
    ]
    by_id = {int(row.split()[0]): row.split() for row in rows}
    assert list(by_id) == [log.ids["pending"], log.ids["retry"], log.ids["done"]]  # newest first

    retry = by_id[log.ids["retry"]]
    assert retry[3:8] == ["retrying", "omvDi01AanbiedenAanvraag", "1234567", "-", "OPS-RETRY"]
    assert retry[8] == "1"  # attempts
    next_at = datetime.fromisoformat(f"{retry[9]}T{retry[10]}+00:00")
    assert timedelta(minutes=9) < next_at - datetime.now(UTC) <= timedelta(minutes=10)  # initial_backoff 600 s
    assert "503" in " ".join(retry[11:])  # the last error, its first line

    done = by_id[log.ids["done"]]
    assert done[3] == "delivered" and done[8:] == ["1", "-", "-"]  # no next attempt, no error
    pending = by_id[log.ids["pending"]]
    assert pending[3] == "received" and pending[8] == "0"
    # a pending delivery is due now: its next attempt is shown
    assert datetime.fromisoformat(f"{pending[9]}T{pending[10]}+00:00") <= datetime.now(UTC)


def test_list_json_has_the_same_rows_and_pages_by_before(log: Any) -> None:
    r = cli(log, "messages", "list", "--json")
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    assert [row["id"] for row in rows] == [log.ids["pending"], log.ids["retry"], log.ids["done"]]
    retry = rows[1]
    assert (retry["state"], retry["delivery_state"], retry["attempts"]) == ("retrying", "retry", 1)
    assert "503" in retry["last_error"] and retry["referentienummer"] == "OPS-RETRY"
    assert datetime.fromisoformat(retry["next_attempt_at"]).tzinfo is not None  # ISO 8601 with offset (UTC)

    first = json.loads(cli(log, "messages", "list", "--json", "--limit", "2").stdout)
    rest = json.loads(cli(log, "messages", "list", "--json", "--limit", "2", "--before", str(first[-1]["id"])).stdout)
    assert [row["id"] for row in first + rest] == [row["id"] for row in rows]  # two pages, no overlap, no gap

    dead_or_retrying = json.loads(cli(log, "messages", "list", "--json", "--state", "retrying").stdout)
    assert [row["id"] for row in dead_or_retrying] == [log.ids["retry"]]


def test_show_json_has_the_fields_the_delivery_and_its_attempts(log: Any) -> None:
    r = cli(log, "messages", "show", str(log.ids["retry"]), "--json")
    assert r.returncode == 0, r.stderr
    shown = json.loads(r.stdout)
    assert shown["referentienummer"] == "OPS-RETRY" and shown["state"] == "retrying"
    assert "body" not in shown or not shown["body"]  # never the body in JSON (``--raw`` prints it)
    d = shown["delivery"]
    assert (d["state"], d["attempts"]) == ("retry", 1) and "503" in d["last_error"]
    assert d["next_attempt_at"] is not None
    (attempt,) = d["attempt_log"]
    assert attempt["status"] == "error" and "503" in attempt["error"]
    assert shown["answer"].startswith("<") and "Bv03Bericht" in shown["answer"]

    text = cli(log, "messages", "show", str(log.ids["retry"])).stdout
    assert "next attempt:" in text and f"{d['next_attempt_at'][:10]}" in text


def test_stats_json_equals_the_text(log: Any) -> None:
    r = cli(log, "messages", "stats", "--json")
    assert r.returncode == 0, r.stderr
    stats = json.loads(r.stdout)
    assert stats["messages"] == {"delivered": 1, "retrying": 1, "received": 1}
    assert stats["deliveries"] == {"done": 1, "retry": 1, "pending": 1} and stats["triage"] == 0
    text = cli(log, "messages", "stats").stdout.splitlines()
    assert text[0] == "messages:   delivered 1, received 1, retrying 1"
    assert text[1] == "deliveries: done 1, pending 1, retry 1"


# Each mistake of issue 10's "Why", and the other wrong combinations: one line on stderr, exit status 2.
MISTAKES = {
    ("messages", "list", "--state", "bogus"): "error: Invalid value for '--state': 'bogus' is not one of 'received',",
    ("messages", "resend"): "error: nothing to resend: give message IDs, or --state dead|needs-attention",
    ("messages", "resend", "1", "--state", "dead"): "error: give message IDs or --state, not both",
    ("messages", "resend", "1", "--since", "2h"): "error: --since selects by state: use it with --state",
    ("messages", "resend", "--state", "done"): "error: Invalid value for '--state': 'done' is not one of 'dead',",
    ("messages", "list", "--limit", "0"): "error: Invalid value for '--limit': 0 is not in the range x>=1.",
    ("messages", "list", "--since", "yesterday"): "error: Invalid value for '--since': use an ISO date/time or",
    ("messages", "show", "1", "--raw", "--json"): "error: --raw prints the body as received, --json the fields:",
    ("messages", "show"): "error: Missing argument 'MESSAGE_ID'.",
    ("messages", "bogus"): "error: No such command 'bogus'.",
}


@pytest.mark.parametrize("args", list(MISTAKES), ids=[" ".join(a) for a in MISTAKES])
def test_each_cli_mistake_is_one_line_and_exit_2(args: tuple[str, ...]) -> None:
    # in-process (click's runner, as the console script calls main): the same exit code and streams
    r = CliRunner().invoke(main, ["--config", str(ROOT / "config.example.toml"), *args], prog_name="loket-adapter")
    assert r.exit_code == 2, (r.stdout, r.stderr)
    assert r.stdout == ""
    (line,) = r.stderr.splitlines()
    assert line.startswith(MISTAKES[args]), line
    command = "messages" if args[1] == "bogus" else " ".join(args[:2])
    assert line.endswith(f"(see: loket-adapter {command} --help)"), line  # where to read the right use


def test_version_is_the_installed_one() -> None:
    r = run("--version")
    assert r.returncode == 0 and r.stdout == f"loket-adapter, version {version('loket-adapter')}\n"


def test_the_command_line_starts_without_the_store_argon2_or_rich() -> None:
    """Operators' scripts and the suite call the CLI often: its start imports the store (SQLAlchemy, Alembic)
    and argon2 only in the commands that use them (`--version` from 1.2 s to 0.34 s here)."""
    heavy = "('sqlalchemy', 'alembic', 'argon2')"  # (rich comes anyway: structlog's console renderer imports it)
    code = f"import sys, adapter.cli; print(sorted(m for m in {heavy} if m in sys.modules))"
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert r.stdout.strip() == "[]", r.stdout


def test_the_command_line_s_states_are_the_store_s() -> None:
    from adapter.store import message_log, states

    assert states.MESSAGE_STATES == message_log._KNOWN  # message_log also refuses to import when they differ
