"""The ``loket-adapter`` command, run as a real subprocess (``python -m adapter``) as an operator would."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import httpx
import pytest
from lxml import etree
from sqlalchemy import create_engine, inspect, select

from adapter.store.db import make_engine
from adapter.store.tables import messages as messages_table
from adapter.stuf import berichten
from adapter.stuf.stuurgegevens import Stuurgegevens, Systeem
from adapter.validation import validate_file
from tests.conftest import ROOT, drop_database, free_port, make_server, new_database_url, stop_process, write_config
from tests.delivery_env import zgw_target_toml
from tests.soap import LVO, SOAP, fixture, post, with_reference

EXAMPLE_CONFIG = ROOT / "config.example.toml"
LVO_FIXTURES = ROOT / "fixtures" / "stuf-lvo"
# inbound only: with delivery on, check-config also wants the mapping files
ONTVANGER = (
    "\n[delivery]\nenabled = false\n"
    '\n[[stuf.ontvangers]]\norganisatie = "00000001002564440000"\napplicatie = "ZAAKSYSTEEM"\n'
)


def cli(*args: str | Path, cwd: Path = ROOT, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[bytes]:
    """Run ``python -m adapter ARGS`` and return its exit code, stdout and stderr (bytes)."""
    return subprocess.run(
        [sys.executable, "-m", "adapter", *map(str, args)],
        cwd=cwd,
        env=env if env is not None else dict(os.environ),
        capture_output=True,
        timeout=60,
    )


def out(r: subprocess.CompletedProcess[bytes]) -> str:
    return r.stdout.decode("utf-8")


def err(r: subprocess.CompletedProcess[bytes]) -> str:
    return r.stderr.decode("utf-8")


def one_error_line(r: subprocess.CompletedProcess[bytes]) -> str:
    """The failure contract: non-zero exit, exactly one line on stderr, no traceback."""
    assert r.returncode != 0, out(r)
    assert "Traceback" not in err(r), err(r)
    lines = err(r).splitlines()
    assert len(lines) == 1, err(r)
    return lines[0]


# -- check-config ----------------------------------------------------------------------------------


def example_copy(tmp_path: Path, var: bool = True) -> Path:
    """config.example.toml with its mappings/ in ``tmp_path`` (and its var/ folder unless ``var=False``):
    the example's relative SQLite URL and file store then land there, not in the working tree."""
    import shutil

    shutil.copy(EXAMPLE_CONFIG, tmp_path / "config.toml")
    shutil.copytree(ROOT / "mappings", tmp_path / "mappings")
    if var:
        (tmp_path / "var").mkdir()
    return tmp_path / "config.toml"


def test_check_config_on_the_example_is_ok(tmp_path: Path) -> None:
    config = example_copy(tmp_path)
    r = cli("--config", config, "check-config", cwd=ROOT)  # run elsewhere: the store is beside the config
    assert r.returncode == 0, err(r)
    assert out(r).splitlines()[0] == f"{config}: ok"
    assert f"sqlite:///{tmp_path}/var/loket-adapter.db" in out(r)
    assert (tmp_path / "var" / "loket-adapter.db").is_file()
    assert "schema revision none: run db upgrade" in out(r)
    assert "00000001002564440000/ZAAKSYSTEEM" in out(r)
    assert err(r) == ""


def test_check_config_expands_environment_variables(tmp_path: Path) -> None:
    config = tmp_path / "env.toml"
    config.write_text('[store]\nurl = "sqlite:///${LOKET_TEST_DB_DIR}/from-env.db"\n' + ONTVANGER)
    env = {**os.environ, "LOKET_TEST_DB_DIR": str(tmp_path / "dbdir")}
    (tmp_path / "dbdir").mkdir()
    r = cli("--config", config, "check-config", env=env)
    assert r.returncode == 0, err(r)
    assert f"sqlite:///{tmp_path}/dbdir/from-env.db" in out(r)
    assert (tmp_path / "dbdir" / "from-env.db").exists()


BROKEN_CONFIGS = {
    "unknown-key": ("[server]\nprot = 8080\n" + ONTVANGER, ["server.prot", "unknown key"]),
    "wrong-type": ('[server]\nport = "eighty"\n' + ONTVANGER, ["server.port", "integer"]),
    "missing-section": ("[server]\nport = 8080\n", ["stuf", "required"]),
    "invalid-toml": ("[server\nport = 8080\n", ["not valid TOML", "line 1"]),
    "unset-variable": (
        '[store]\nurl = "${LOKET_TEST_NOT_SET_VAR}"\n' + ONTVANGER,
        ["store.url", "LOKET_TEST_NOT_SET_VAR", "not set"],
    ),
    "unsupported-database": ('[store]\nurl = "mysql://db/adapter"\n' + ONTVANGER, ["store.url", "mysql"]),
}


@pytest.mark.parametrize("case", sorted(BROKEN_CONFIGS))
def test_check_config_reports_one_line_naming_file_and_key(tmp_path: Path, case: str) -> None:
    content, expected = BROKEN_CONFIGS[case]
    config = tmp_path / f"{case}.toml"
    config.write_text(content)
    env = {k: v for k, v in os.environ.items() if k != "LOKET_TEST_NOT_SET_VAR"}
    line = one_error_line(cli("--config", config, "check-config", cwd=tmp_path, env=env))
    assert line.startswith(f"error: {config}: "), line
    for text in expected:
        assert text in line, line


def test_check_config_on_a_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    line = one_error_line(cli("--config", missing, "check-config"))
    assert line == f"error: {missing}: cannot read: No such file or directory"


def test_check_config_on_an_unreachable_store_is_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    config = tmp_path / "c.toml"
    config.write_text(f'[store]\nurl = "sqlite:///{blocker}/sub/x.db"\n' + ONTVANGER)
    line = one_error_line(cli("--config", config, "check-config"))
    assert line == f"error: store.url: folder {blocker}/sub does not exist (create it, for the service alone)"


@pytest.mark.parametrize("command", [("db", "upgrade"), ("messages", "show", "1")])
def test_a_file_that_is_not_a_database_is_one_line(tmp_path: Path, command: tuple[str, ...]) -> None:
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not an SQLite database file, just text. " * 100)
    config = write_config(tmp_path / "c.toml", f"sqlite:///{garbage}", free_port())
    line = one_error_line(cli("--config", config, *command))
    assert line == "error: store unavailable: file is not a database"


# -- db upgrade ------------------------------------------------------------------------------------


@pytest.fixture
def db_url(tmp_path: Path) -> Iterator[str]:
    url = new_database_url(tmp_path)
    yield url
    drop_database(url)


def tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return set(inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_db_upgrade_creates_the_schema_and_is_repeatable(tmp_path: Path, db_url: str) -> None:
    config = write_config(tmp_path / "c.toml", db_url, free_port())
    first = cli("--config", config, "db", "upgrade")
    assert first.returncode == 0, err(first)
    match = re.fullmatch(r"schema at revision (\S+)\n", out(first))
    assert match and match.group(1) != "None", out(first)
    assert {"messages", "alembic_version"} <= tables(db_url)

    second = cli("--config", config, "db", "upgrade")
    assert second.returncode == 0, err(second)
    assert out(second) == out(first)

    checked = cli("--config", config, "check-config")
    assert checked.returncode == 0, err(checked)
    assert f"(schema revision {match.group(1)})" in out(checked)


def test_db_upgrade_db_flag_overrides_the_config(tmp_path: Path) -> None:
    configured = tmp_path / "configured.db"
    config = write_config(tmp_path / "c.toml", f"sqlite:///{configured}", free_port())
    (tmp_path / "other").mkdir()
    url = new_database_url(tmp_path / "other")
    try:
        r = cli("--config", config, "db", "upgrade", "--db", url)
        assert r.returncode == 0, err(r)
        assert "messages" in tables(url)
        assert not configured.exists()
    finally:
        drop_database(url)


def test_db_upgrade_with_a_bad_db_flag_is_one_line(tmp_path: Path) -> None:
    config = write_config(tmp_path / "c.toml", f"sqlite:///{tmp_path / 'x.db'}", free_port())
    line = one_error_line(cli("--config", config, "db", "upgrade", "--db", "mysql://localhost/adapter"))
    assert "store.url" in line and "mysql" in line


# -- messages list / show --------------------------------------------------------------------------


@dataclass
class MessageLog:
    config: Path
    url: str
    ids: dict[str, int]
    bodies: dict[str, bytes]
    #: The StUF element each HTTP answer carried (Bv03Bericht, or Fo03Bericht inside the Fault).
    answers: dict[str, etree._Element]


def _aanvraag(referentie: str, nummer: bytes = b"1234567") -> bytes:
    body = with_reference(fixture("omvDi01AanbiedenAanvraag"), referentie)
    return body.replace(b"<LVO:aanvraagnummer>1234567<", b"<LVO:aanvraagnummer>" + nummer + b"<", 1)


def _soap_action(body: bytes) -> str:
    envelope = etree.fromstring(body.removeprefix(b"\xef\xbb\xbf"))
    return f'"{LVO}/{etree.QName(envelope.find(f"{{{SOAP}}}Body")[0]).localname}"'


@pytest.fixture(scope="module")
def message_log(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MessageLog]:
    """A message log filled by a real server: one 3-day-old, two accepted and one rejected message."""
    tmp = tmp_path_factory.mktemp("messages")
    srv = make_server(tmp)
    # The operator's config points elsewhere: every command below must use --db.
    config = write_config(tmp / "operator.toml", f"sqlite:///{tmp / 'unused.db'}", free_port())
    r = cli("--config", config, "db", "upgrade", "--db", srv.db_url)
    assert r.returncode == 0, err(r)

    aanvulling = with_reference(fixture("vrgDi01IndienenAanvulling"), "CLI-B").replace(
        b"<LVO:aanvraagnummer>1234567<", b"<LVO:aanvraagnummer>7654321<", 1
    )
    # A BOM, CRLF line ends and non-ASCII text: --raw must give back exactly these bytes.
    rejected = b"\xef\xbb\xbf" + _aanvraag("CLI-C").replace(b"<LVO:postcode>1234AB<", b"<LVO:postcode>1234 ab<", 1)
    rejected = rejected.replace(b"\n", b"\r\n").replace(b"kleur antraciet", "kleur crème".encode())
    # Posted in this order, so the ids ascend: old < aanvraag < aanvulling < rejected.
    bodies = {
        "old": _aanvraag("CLI-O", b"1111111"),
        "aanvraag": _aanvraag("CLI-A"),
        "aanvulling": aanvulling,
        "rejected": rejected,
    }
    refs = {"old": "CLI-O", "aanvraag": "CLI-A", "aanvulling": "CLI-B", "rejected": "CLI-C"}
    answers = {}
    srv.start()
    try:
        for key, body in bodies.items():
            answer = post(srv.soap_url, body, soap_action=_soap_action(body))
            assert answer.status == (500 if key == "rejected" else 200), answer.body
            answers[key] = answer.fo03 if key == "rejected" else answer.payload
    finally:
        srv.stop()

    engine = create_engine(srv.db_url)
    try:
        with engine.begin() as conn:
            by_ref = dict(conn.execute(select(messages_table.c.referentienummer, messages_table.c.id)).all())
            assert sorted(by_ref) == sorted(refs.values())
            ids = {key: by_ref[ref] for key, ref in refs.items()}
            conn.execute(
                messages_table.update()
                .where(messages_table.c.id == ids["old"])
                .values(received_at=datetime.now(UTC) - timedelta(days=3))
            )
    finally:
        engine.dispose()
    yield MessageLog(config, srv.db_url, ids, bodies, answers)
    drop_database(srv.db_url)


def listed(log: MessageLog, *args: str) -> list[int]:
    """IDs that ``messages list ARGS`` prints, in order (in-process: the filters, not the process start)."""
    from click.testing import CliRunner

    from adapter.cli import main

    r = CliRunner().invoke(main, ["--config", str(log.config), "messages", "list", "--db", log.url, *args])
    assert r.exit_code == 0, r.output
    lines = r.stdout.splitlines()
    assert lines[0].split()[:3] == ["ID", "RECEIVED", "(UTC)"]
    return [int(line.split()[0]) for line in lines[1:]]


def test_messages_list_shows_all_newest_first(message_log: MessageLog) -> None:
    i = message_log.ids
    assert listed(message_log) == [i["rejected"], i["aanvulling"], i["aanvraag"], i["old"]]
    assert listed(message_log, "--limit", "2") == [i["rejected"], i["aanvulling"]]


def test_messages_list_row_shows_the_columns(message_log: MessageLog) -> None:
    r = cli("--config", message_log.config, "messages", "list", "--db", message_log.url, "--state", "rejected")
    (row,) = out(r).splitlines()[1:]
    cols = row.split()
    received = datetime.fromisoformat(f"{cols[1]}T{cols[2]}+00:00")
    assert abs(datetime.now(UTC) - received) < timedelta(minutes=5)  # shown in UTC
    assert cols[0] == str(message_log.ids["rejected"])
    # a rejected message has no delivery: no attempts, no next attempt, no delivery error
    assert cols[3:] == ["rejected", "omvDi01AanbiedenAanvraag", "1234567", "StUF055", "CLI-C", "-", "-", "-"]


def test_messages_list_filters(message_log: MessageLog) -> None:
    now = datetime.now(UTC)
    cases: dict[tuple[str, ...], list[str]] = {
        ("--state", "rejected"): ["rejected"],
        ("--state", "received"): ["aanvulling", "aanvraag", "old"],
        ("--type", "vrgDi01IndienenAanvulling"): ["aanvulling"],
        ("--type", "omvDi01AanbiedenAanvraag"): ["rejected", "aanvraag", "old"],
        ("--nummer", "1234567"): ["rejected", "aanvraag"],
        ("--nummer", "9999999"): [],
        ("--state", "received", "--nummer", "1234567"): ["aanvraag"],
        ("--since", "1h"): ["rejected", "aanvulling", "aanvraag"],
        ("--since", "4d"): ["rejected", "aanvulling", "aanvraag", "old"],
        # ISO dates and times: a date, a naive time (UTC) and times with an offset, which must be honoured.
        ("--since", (now - timedelta(days=1)).date().isoformat()): ["rejected", "aanvulling", "aanvraag"],
        ("--since", (now - timedelta(days=5)).date().isoformat()): ["rejected", "aanvulling", "aanvraag", "old"],
        ("--since", (now + timedelta(days=1)).date().isoformat()): [],
        ("--since", (now - timedelta(minutes=30)).replace(tzinfo=None).isoformat()): [
            "rejected",
            "aanvulling",
            "aanvraag",
        ],
        ("--since", (now - timedelta(minutes=30)).astimezone(timezone(timedelta(hours=2))).isoformat()): [
            "rejected",
            "aanvulling",
            "aanvraag",
        ],
        ("--since", (now + timedelta(minutes=30)).astimezone(timezone(timedelta(hours=-5))).isoformat()): [],
    }
    results = {args: listed(message_log, *args) for args in cases}
    expected = {args: [message_log.ids[k] for k in keys] for args, keys in cases.items()}
    assert results == expected


def test_messages_list_rejects_a_bad_since(message_log: MessageLog) -> None:
    r = cli("--config", message_log.config, "messages", "list", "--db", message_log.url, "--since", "yesterday")
    assert r.returncode == 2
    assert "Traceback" not in err(r)
    assert "'--since'" in err(r) and "30m, 12h, 7d" in err(r)


def show_fields(text: str) -> tuple[dict[str, str], str]:
    head, _, answer = text.partition("answer:\n")
    fields = dict(line.split(None, 1) for line in head.splitlines())
    return fields, answer


def content(el: etree._Element) -> list[tuple[str, str | None]]:
    """Element names and texts in document order (namespace prefixes do not matter)."""
    return [(e.tag, (e.text or "").strip() or None) for e in el.iter() if isinstance(e.tag, str)]


def test_messages_show_prints_fields_and_answer(message_log: MessageLog) -> None:
    mid = message_log.ids["rejected"]
    r = cli("--config", message_log.config, "messages", "show", str(mid), "--db", message_log.url)
    assert r.returncode == 0, err(r)
    fields, answer = show_fields(out(r))
    assert fields["id"] == str(mid)
    assert fields["channel"] == "stuf-lvo"
    assert fields["state"] == "rejected"
    assert fields["message_type"] == "omvDi01AanbiedenAanvraag"
    assert fields["berichtcode"] == "Di01"
    assert fields["zender"].startswith("00000001800866472000/OLO")
    assert fields["referentienummer"] == "CLI-C"
    assert fields["nummer"] == "1234567"
    assert fields["error_code"] == "StUF055"
    assert "postcode" in fields["error_text"]
    assert fields["size"] == str(len(message_log.bodies["rejected"]))
    assert re.fullmatch(r"[0-9a-f]{32}", fields["correlation_id"])
    assert "body" not in fields
    # The answer printed is the Fo03 that was sent.
    assert content(etree.fromstring(answer.encode())) == content(message_log.answers["rejected"])

    mid = message_log.ids["aanvraag"]
    accepted = cli("--config", message_log.config, "messages", "show", str(mid), "--db", message_log.url)
    fields, answer = show_fields(out(accepted))
    assert fields["state"] == "received"
    assert "error_code" not in fields  # empty fields are left out
    assert content(etree.fromstring(answer.encode())) == content(message_log.answers["aanvraag"])
    assert etree.QName(message_log.answers["aanvraag"]).localname == "Bv03Bericht"


@pytest.mark.parametrize("which", ["rejected", "aanvraag"])
def test_messages_show_raw_is_byte_for_byte(message_log: MessageLog, which: str) -> None:
    r = cli(
        "--config",
        message_log.config,
        "messages",
        "show",
        str(message_log.ids[which]),
        "--raw",
        "--db",
        message_log.url,
    )
    assert r.returncode == 0, err(r)
    assert r.stdout == message_log.bodies[which]


def test_messages_show_unknown_id(message_log: MessageLog) -> None:
    r = cli("--config", message_log.config, "messages", "show", "987654", "--db", message_log.url)
    assert one_error_line(r) == "error: message 987654 not found"
    assert r.returncode == 1
    assert r.stdout == b""


def test_messages_list_on_a_database_without_schema_is_one_line(tmp_path: Path, db_url: str) -> None:
    config = write_config(tmp_path / "c.toml", db_url, free_port())
    line = one_error_line(cli("--config", config, "messages", "list"))
    assert line.startswith("error: store unavailable"), line


# -- validate --------------------------------------------------------------------------------------

SOME_FIXTURES = [
    LVO_FIXTURES / "omvDi01AanbiedenAanvraag.xml",
    LVO_FIXTURES / "omvDu01LeverenAanvraag.xml",
    LVO_FIXTURES / "outgoing" / "vrgDi01WijzigStatus.xml",
]


@pytest.mark.parametrize("path", SOME_FIXTURES, ids=lambda p: p.stem)
def test_validate_accepts_fixtures(path: Path) -> None:
    r = cli("validate", path)
    assert r.returncode == 0, err(r)
    assert out(r) == f"{path}: {path.stem} is valid against xsd/lvo/lvo0312.xsd\n"


def test_validate_a_bare_stuf_message(tmp_path: Path) -> None:
    request = Stuurgegevens(
        zender=Systeem("00000001800866472000", "OLO"),
        ontvanger=Systeem("00000001002564440000", "ZAAKSYSTEEM"),
        referentienummer="R1",
    )
    path = tmp_path / "bv03.xml"
    path.write_bytes(berichten.to_bytes(berichten.bv03(request, Systeem("x", "ZAAKSYSTEEM"))))
    r = cli("validate", path)
    assert r.returncode == 0, err(r)
    assert "Bv03Bericht is valid against xsd/stuf0301/stuf0301.xsd" in out(r)


def line_of(text: bytes, needle: bytes) -> int:
    return text[: text.index(needle)].count(b"\n") + 1


def test_validate_reports_schema_line_and_problem(tmp_path: Path) -> None:
    original = (LVO_FIXTURES / "omvDi01AanbiedenAanvraag.xml").read_bytes()
    bad = original.replace(b"<LVO:postcode>1234AB<", b"<LVO:postcode>1234 ab<", 1)
    assert bad != original
    path = tmp_path / "bad-postcode.xml"
    path.write_bytes(bad)
    r = cli("validate", path)
    assert r.returncode == 1
    assert out(r) == ""
    lines = err(r).splitlines()
    assert lines[0] == f"{path}: omvDi01AanbiedenAanvraag is not valid against xsd/lvo/lvo0312.xsd (1 errors)"
    assert lines[1].startswith(f"{path}:{line_of(bad, b'1234 ab')}: ")
    assert "postcode" in lines[1] and "1234 ab" in lines[1]
    assert len(lines) == 2


def test_validate_applies_the_content_rules_the_server_applies(tmp_path: Path) -> None:
    original = (LVO_FIXTURES / "omvDi01AanbiedenAanvraag.xml").read_bytes()
    bad = re.sub(rb"<LVO:locatie>.*?</LVO:locatie>", b"<LVO:locatie></LVO:locatie>", original, count=1, flags=re.S)
    assert bad != original
    path = tmp_path / "empty-locatie.xml"
    path.write_bytes(bad)
    r = cli("validate", path)
    assert r.returncode == 1
    lines = err(r).splitlines()
    assert "not valid against xsd/lvo/lvo0312.xsd" in lines[0]
    assert lines[1].startswith(f"{path}:{line_of(bad, b'<LVO:locatie>')}: locatie needs at least one of")


def test_validate_malformed_file_is_one_line_with_the_line_number(tmp_path: Path) -> None:
    original = (LVO_FIXTURES / "omvDi01AanbiedenAanvraag.xml").read_bytes()
    bad = original.replace(b"<LVO:aanvraagdatum>", b"<LVO:aanvraagdatum", 1)
    path = tmp_path / "malformed.xml"
    path.write_bytes(bad)
    line = one_error_line(cli("validate", path))
    assert line.startswith(f"{path}: line {line_of(bad, b'<LVO:aanvraagdatum')}: not well-formed XML"), line


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b'<a xmlns="urn:example:other"><b/></a>', "a: no schema for namespace 'urn:example:other'"),
        (b"<a><b/></a>", "a: no schema for namespace '(none)'"),
    ],
)
def test_validate_unknown_namespace_says_no_schema(tmp_path: Path, content: bytes, expected: str) -> None:
    path = tmp_path / "other.xml"
    path.write_bytes(content)
    assert one_error_line(cli("validate", path)) == f"{path}: {expected}"


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b'<?xml version="1.0"?>\n<!DOCTYPE a [<!ENTITY x "y">]><a>&x;</a>', "DOCTYPE"),
        (b"", "empty body"),
        (
            b'<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body/></s:Envelope>',
            "exactly one element",
        ),
    ],
    ids=["doctype", "empty", "empty-soap-body"],
)
def test_validate_refuses_unacceptable_input(tmp_path: Path, content: bytes, expected: str) -> None:
    path = tmp_path / "in.xml"
    path.write_bytes(content)
    line = one_error_line(cli("validate", path))
    assert line.startswith(f"{path}: ") and expected in line, line


def test_validate_file_that_cannot_be_read(tmp_path: Path) -> None:
    ok, lines = validate_file(tmp_path / "gone.xml")
    assert not ok
    assert lines == [f"{tmp_path / 'gone.xml'}: cannot read: No such file or directory"]


# -- serve -----------------------------------------------------------------------------------------


def test_serve_port_flag_overrides_the_config(tmp_path: Path) -> None:
    srv = make_server(tmp_path)  # its config names srv.port; we serve on another one
    port = free_port()
    assert port != srv.port
    log = (tmp_path / "serve.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "adapter", "--config", str(srv.config), "serve", "--port", str(port)],
        cwd=ROOT,
        stdout=log,
        stderr=log,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = datetime.now(UTC) + timedelta(seconds=30)
        while True:
            assert proc.poll() is None, (tmp_path / "serve.log").read_text()
            try:
                if httpx.get(f"{url}/healthz", timeout=0.5).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
            assert datetime.now(UTC) < deadline, "server did not start"
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{srv.url}/healthz", timeout=0.5)

        # End to end: a message posted to this server is in the log the CLI reads.
        body = with_reference(fixture("omvDi01AanbiedenAanvraag"), f"CLI-{uuid.uuid4().hex[:12]}")
        answer = post(f"{url}/soap/stuf-lvo", body, soap_action=f'"{LVO}/omvDi01AanbiedenAanvraag"')
        assert answer.status == 200, answer.body
    finally:
        stop_process(proc)
        log.close()
    try:
        r = cli("--config", srv.config, "messages", "list", "--nummer", "1234567")
        assert r.returncode == 0, err(r)
        (row,) = out(r).splitlines()[1:]
        assert row.split()[3:7] == ["received", "omvDi01AanbiedenAanvraag", "1234567", "-"]
        mid = row.split()[0]
        raw = cli("--config", srv.config, "messages", "show", mid, "--raw")
        assert raw.stdout == body
    finally:
        drop_database(srv.db_url)


def test_check_config_reports_a_broken_mapping_in_one_line(tmp_path: Path) -> None:
    import shutil

    shutil.copytree(ROOT / "mappings", tmp_path / "mappings")
    (tmp_path / "mappings" / "voorbeeldstad.toml").write_text(
        (ROOT / "mappings" / "voorbeeldstad.toml").read_text().replace("[triage]", "[triage]\nzaaktyp = 1")
    )
    config = tmp_path / "c.toml"
    config.write_text(EXAMPLE_CONFIG.read_text().replace('url = "sqlite:///var/', f'url = "sqlite:///{tmp_path}/'))
    line = one_error_line(cli("--config", config, "check-config"))
    assert "voorbeeldstad.toml:" in line and "triage.zaaktyp: unknown key" in line


SECRET_TARGET = """
[server]
environment = "{environment}"
port = {port}
[delivery]
workers = 0
mappings_dir = "{mappings}"
{target}
[[stuf.ontvangers]]
organisatie = "00000001002564440000"
applicatie = "ZAAKSYSTEEM"
"""


def test_read_only_commands_run_without_the_target_secret_and_sending_ones_name_it(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(
        f'[store]\nurl = "sqlite:///{tmp_path}/a.db"\n'
        + SECRET_TARGET.format(
            environment="production",
            port=free_port(),
            target=zgw_target_toml("http://127.0.0.1:9", "${LOKET_T_NOT_SET}"),
            mappings=ROOT / "mappings",
        ),
        encoding="utf-8",
    )
    env = {k: v for k, v in os.environ.items() if k != "LOKET_T_NOT_SET"}
    assert cli("--config", config, "db", "upgrade", env=env).returncode == 0
    listed = cli("--config", config, "messages", "list", env=env)
    assert listed.returncode == 0, listed.stderr
    for command in (("check-config",), ("serve",), ("mappings", "check", "--online")):
        line = one_error_line(cli("--config", config, *command, env=env))
        assert line == (
            f"error: {config}: targets.zaaksysteem.auth.secret: environment variable LOKET_T_NOT_SET is not set"
        ), command


def test_serve_refuses_a_development_default_secret_in_production_in_one_line(tmp_path: Path) -> None:
    port = free_port()
    config = tmp_path / "c.toml"
    config.write_text(
        f'[store]\nurl = "sqlite:///{tmp_path}/a.db"\n'
        + SECRET_TARGET.format(
            environment="production",
            port=port,
            target=zgw_target_toml("http://127.0.0.1:9", "${LOKET_T_NOT_SET:-change-me}"),
            mappings=ROOT / "mappings",
        ),
        encoding="utf-8",
    )
    env = {k: v for k, v in os.environ.items() if k != "LOKET_T_NOT_SET"}
    line = one_error_line(cli("--config", config, "serve", env=env))
    assert line == (
        f"error: {config}: targets.zaaksysteem.auth.secret: LOKET_T_NOT_SET is not set, and its development "
        'default may not be used with environment = "production"'
    )
    assert "change-me" not in line
    development = config.read_text(encoding="utf-8").replace('"production"', '"development"')
    config.write_text(development, encoding="utf-8")
    checked = cli("--config", config, "check-config", env=env)
    assert checked.returncode == 0, checked.stderr
