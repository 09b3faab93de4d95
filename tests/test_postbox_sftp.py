"""The postbus against a real OpenSSH sshd (tests/sftp_server.py): an aanvraag whose two bijlagen have no
inhoud gets its files from the postbus, whether they come after the message or before it (orphans); one
zaak, one document per bijlage with the file's bytes, the remote files in processed, nothing twice. A
host key that is not the pinned one is refused naming host and fingerprint; a file we may not read fails
with the reason, visibly, and is tried again; odd names are refused and nothing lands outside the store."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any, cast

import pytest
from click.testing import CliRunner
from sqlalchemy import text

from adapter.cli import main
from adapter.jobs.scheduler import run_job
from adapter.services import Services
from adapter.store import postbox as store
from tests import postbox_env
from tests.conftest import FIXTURES
from tests.delivery_env import Zaaksysteem, needs_zgw_specs
from tests.postbox_env import receive_lvo, work
from tests.sftp_server import SftpServer

pytestmark = needs_zgw_specs

AANVRAAG = FIXTURES / "stuf-lvo" / "omvDi01AanbiedenAanvraag-postbus.xml"
TEKENING = "1234567_Bouwtekening.pdf"  # the bestandsnaam already starts with the aanvraagnummer
FOTO = "1234567_1234567_Foto_voorgevel.jpg"  # <aanvraagnummer>_<bestandsnaam>


sftp_server, _close_sessions = postbox_env.sftp_server, postbox_env._close_sessions


@pytest.fixture
def adapter(delivering: Any, sftp_server: SftpServer) -> Any:
    """A factory: in-process services delivering into the fake ZGW, with the postbox at ``sftp_server``."""

    def open_(postbus_toml: str | None = None, missing_hours: float = 24) -> Services:
        toml = f"\n[postbus]\nmissing_hours = {missing_hours}\norphan_hours = 1\n"
        toml += postbus_toml if postbus_toml is not None else sftp_server.toml()
        return cast(Services, delivering(extra_toml=toml, max_attempts=5))

    return open_


def receive(sv: Services, body: bytes | None = None) -> int:
    return receive_lvo(sv, body or AANVRAAG.read_bytes())


def pickup_now(sv: Services) -> str:
    outcome = run_job(sv, "postbox-pickup", force=True)
    return f"{outcome.status}: {outcome.detail}"


def delivery_state(sv: Services, mid: int) -> tuple[str, str | None]:
    with sv.engine.connect() as conn:
        row = conn.execute(text("SELECT state, last_error FROM deliveries WHERE message_id=:m"), {"m": mid}).one()
    return str(row[0]), row[1]


def files_in_store(sv: Services) -> list[Path]:
    root = Path(sv.settings.source).parent / "var" / "files"
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def assert_filled_once(zs: Zaaksysteem, sent: dict[str, bytes]) -> None:
    fake: Any = zs.fake
    assert fake.response_errors == []
    assert len(fake.zaken) == 1
    docs = fake.documenten
    assert sorted(d["bestandsnaam"] for d in docs) == ["1234567_Bouwtekening.pdf", "1234567_Foto_voorgevel.jpg"]
    by_name = {d["bestandsnaam"]: d for d in docs}
    for remote, data in sent.items():
        bestandsnaam = remote.removeprefix("1234567_") if remote.count("1234567_") == 2 else remote
        got = by_name[bestandsnaam]["bytes"]
        assert got is not None and hashlib.sha256(got).hexdigest() == hashlib.sha256(data).hexdigest()
        assert not by_name[bestandsnaam]["locked"]
    zios = [z for z in fake.zaakinformatieobjecten if z["zaak"] == fake.zaken[0]["url"]]
    assert sorted(z["informatieobject"] for z in zios) == sorted(d["url"] for d in docs)


def sample_files() -> dict[str, bytes]:
    return {TEKENING: b"%PDF-1.4\n" + os.urandom(300_000), FOTO: b"\xff\xd8\xff" + os.urandom(2_500_000)}


def test_files_after_the_message_fill_the_documents_once(
    adapter: Any, zs: Zaaksysteem, sftp_server: SftpServer
) -> None:
    sv = adapter()
    mid = receive(sv)
    reports = work(sv)
    assert len(reports) == 1 and reports[0].startswith("retry: postbus: waiting for 2 bijlage(n) from the postbus")
    assert zs.fake.zaken == []  # type: ignore[attr-defined]  # no zaak before its documents can be complete

    sent = sample_files()
    for name, data in sent.items():
        sftp_server.put(name, data)
    assert pickup_now(sv).startswith("ok: 2 in inboxes, 2 stored, 0 moved")
    assert delivery_state(sv, mid)[0] == "retry"  # woken: due now, attempts reset
    assert [r.split(":")[0] for r in work(sv)] == ["done"]
    assert_filled_once(zs, sent)

    assert pickup_now(sv).startswith("ok: 2 in inboxes, 0 stored, 2 moved to processed")
    assert sorted(p.name for p in sftp_server.processed.iterdir()) == sorted(sent)
    assert list(sftp_server.inbox.iterdir()) == []
    for name, data in sent.items():
        assert (sftp_server.processed / name).read_bytes() == data
    assert {f.state for f in store.list_files(sv.engine, None, 100)} == {"processed"}

    # nothing more happens: no second document, nothing picked up twice
    assert pickup_now(sv).startswith("ok: 0 in inboxes, 0 stored, 0 moved")
    assert work(sv) == []
    assert_filled_once(zs, sent)
    assert len(files_in_store(sv)) == 2
    # four pickup runs, one SSH session: the connection is reused
    assert (sftp_server.workdir / "log").read_text().count("Accepted publickey") == 1


def test_files_before_the_message_are_orphans_until_it_arrives(
    adapter: Any,
    zs: Zaaksysteem,
    sftp_server: SftpServer,
) -> None:
    sv = adapter()
    sent = sample_files()
    for name, data in sent.items():
        sftp_server.put(name, data)
    assert pickup_now(sv).startswith("ok: 2 in inboxes, 2 stored, 0 moved")
    assert sorted(f.remote_name for f in store.orphans(sv.engine)) == sorted(sent)
    shown = CliRunner().invoke(main, ["--config", sv.settings.source, "postbox", "orphans"])
    assert shown.exit_code == 0 and TEKENING in shown.output and "2 orphan(s)" in shown.output, shown.output

    mid = receive(sv)
    assert store.orphans(sv.engine) == []  # matched as soon as the message is there
    assert [r.split(":")[0] for r in work(sv)] == ["done"]
    assert delivery_state(sv, mid)[0] == "done"
    assert_filled_once(zs, sent)
    assert pickup_now(sv).startswith("ok: 2 in inboxes, 0 stored, 2 moved to processed")
    assert sorted(p.name for p in sftp_server.processed.iterdir()) == sorted(sent)
    assert list(sftp_server.inbox.iterdir()) == []
    receive(sv)  # the same aanvraag again (another referentienummer): its documents exist, none is made twice
    work(sv)
    assert len(zs.fake.documenten) == 2  # type: ignore[attr-defined]


def test_a_bijlage_that_never_comes_is_visible_as_missing_and_resumes(
    adapter: Any,
    zs: Zaaksysteem,
    sftp_server: SftpServer,
) -> None:
    sv = adapter(missing_hours=0.0001)  # 0.36 s
    mid = receive(sv)
    sftp_server.put(TEKENING, b"%PDF-1.4 only one")
    pickup_now(sv)
    import time

    time.sleep(0.5)
    reports = work(sv)
    assert reports[0].startswith("needs-attention: postbus: 1 bijlage(n) not in the postbus"), reports
    assert "1234567-2 (1234567_1234567_Foto_voorgevel.jpg)" in reports[0]
    shown = CliRunner().invoke(main, ["--config", sv.settings.source, "postbox", "waiting"])
    assert f"message {mid} aanvraag 1234567: needs-attention: postbus: 1 bijlage(n)" in shown.output, shown.output
    sftp_server.put(FOTO, b"\xff\xd8\xff late")
    pickup_now(sv)
    assert [r.split(":")[0] for r in work(sv)] == ["done"]
    assert_filled_once(zs, {TEKENING: b"%PDF-1.4 only one", FOTO: b"\xff\xd8\xff late"})


def test_a_host_key_that_is_not_the_pinned_one_is_refused(
    adapter: Any,
    sftp_server: SftpServer,
    tmp_path: Path,
) -> None:
    import subprocess

    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "other")], check=True)
    other = " ".join((tmp_path / "other.pub").read_text().split()[:2])
    sv = adapter(sftp_server.toml(host_key=other))
    sftp_server.put(TEKENING, b"data")
    outcome = pickup_now(sv)
    assert outcome.startswith("error:")
    assert (
        f"host {sftp_server.host}:{sftp_server.port} offered host key ssh-ed25519 {sftp_server.host_fingerprint}"
        in (outcome)
    )
    assert "not the pinned" in outcome
    assert store.list_files(sv.engine, None, 100) == []  # nothing read from a server we do not trust
    shown = CliRunner().invoke(main, ["--config", sv.settings.source, "postbox", "status"])
    assert shown.exit_code == 1 and sftp_server.host_fingerprint in shown.output, shown.output

    # pinned a key of a type the server does not offer: the key it offers is unknown, refused the same way
    subprocess.run(["ssh-keygen", "-q", "-t", "ecdsa", "-N", "", "-f", str(tmp_path / "ecdsa")], check=True)
    sv2 = adapter(sftp_server.toml(host_key=" ".join((tmp_path / "ecdsa.pub").read_text().split()[:2])))
    outcome = pickup_now(sv2)
    offered = f"offered host key ssh-ed25519 {sftp_server.host_fingerprint}, not the pinned ecdsa-sha2-nistp256"
    assert outcome.startswith("error:") and offered in outcome, outcome


def test_permission_denied_fails_with_the_reason_and_is_tried_again(
    adapter: Any,
    sftp_server: SftpServer,
) -> None:
    sv = adapter()
    path = sftp_server.put(TEKENING, b"secret drawing", mode=0o000)
    os.chown(path, 0, 0)  # root's, unreadable for the postbus user
    outcome = pickup_now(sv)
    assert outcome.startswith("error:") and "permission denied" in outcome, outcome
    (row,) = store.list_files(sv.engine, None, 100)
    assert row.state == "failed" and "permission denied" in (row.detail or "")
    status = store.statuses(sv.engine)["olo"]
    assert status.failures == 1 and "permission denied" in (status.last_error or "")
    shown = CliRunner().invoke(main, ["--config", sv.settings.source, "postbox", "files", "--state", "failed"])
    assert "permission denied" in shown.output
    assert files_in_store(sv) == []

    path.chmod(0o644)  # the operator fixed it: the next run picks it up
    assert pickup_now(sv).startswith("ok: 1 in inboxes, 1 stored")
    (row,) = store.list_files(sv.engine, None, 100)
    assert row.state == "stored" and row.detail is None
    assert store.statuses(sv.engine)["olo"].failures == 0


def test_odd_names_are_refused_and_nothing_lands_outside_the_store(
    adapter: Any,
    sftp_server: SftpServer,
    tmp_path: Path,
) -> None:
    sv = adapter()
    odd = ["..1234567_x.pdf", ".1234567_hidden.pdf", "1234567_a\nb.pdf", "geen-nummer.pdf", "1234567_tab\t.pdf"]
    for name in odd:
        sftp_server.put(name, b"x")
    (sftp_server.inbox / "1234567_link.pdf").symlink_to("/etc/passwd")
    (sftp_server.inbox / "1234567_dir.pdf").mkdir()
    outcome = pickup_now(sv)
    assert outcome.startswith("ok: 7 in inboxes, 0 stored, 0 moved to processed, 7 refused"), outcome
    rows = {r.remote_name: r for r in store.list_files(sv.engine, None, 100)}
    assert set(rows) == {*odd, "1234567_link.pdf", "1234567_dir.pdf"}
    assert all(r.state == "refused" for r in rows.values())
    assert "not a regular file" in (rows["1234567_link.pdf"].detail or "")
    assert "path separator" not in (rows["..1234567_x.pdf"].detail or "") and "'..'" in (
        rows["..1234567_x.pdf"].detail or ""
    )
    assert files_in_store(sv) == []
    # judged once: not fetched, counted or logged again
    assert pickup_now(sv).startswith("ok: 7 in inboxes, 0 stored, 0 moved to processed, 0 refused")


def _readme_postbus() -> tuple[dict[str, Any], list[list[str]]]:
    import re
    import shlex
    import tomllib

    from tests.conftest import ROOT

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = text.split("<!-- postbus example -->\n```toml\n", 1)[1].split("```", 1)[0]
    commands = []
    for line in re.findall(r"^\.venv/bin/loket-adapter (?:postbox|jobs run postbox-pickup).*$", text, flags=re.M):
        commands.append(shlex.split(line.split("  #")[0])[1:])
    return tomllib.loads(block), commands


def test_the_readme_postbus_example_and_commands_run(adapter: Any, sftp_server: SftpServer) -> None:
    from adapter.config import PostboxSettings, PostbusSettings

    example, commands = _readme_postbus()
    PostbusSettings.model_validate(example["postbus"])
    PostboxSettings.model_validate(example["postboxes"]["olo"])
    assert len(commands) == 7, commands  # the seventh, `postbox uploads`: mirroring (tests/test_postbox_mirror.py)
    sv = adapter()
    sftp_server.put(TEKENING, b"%PDF-1.4 readme")
    outputs = {}
    for args in commands:
        got = CliRunner().invoke(main, ["--config", sv.settings.source, *args])
        assert got.exit_code == 0, f"{args}: {got.output}"
        outputs[" ".join(args)] = got.output
    assert "olo: connected, inbox readable" in outputs["postbox status --check"]
    assert "postbox-pickup: ok: 1 in inboxes, 1 stored" in outputs["jobs run postbox-pickup"]
    assert "last success" in CliRunner().invoke(main, ["--config", sv.settings.source, "postbox", "status"]).output


def test_a_broken_download_resumes_from_its_part_file(
    adapter: Any, sftp_server: SftpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from adapter.postbox.client import Postbox, PostboxError

    sv = adapter()
    data = os.urandom(5_000_000)
    sftp_server.put(TEKENING, data)
    real = Postbox.read_inbox
    offsets: list[int] = []

    def breaks_after_2mb(self: Postbox, name: str, consume: Any, offset: int = 0) -> None:
        offsets.append(offset)
        got = 0

        def counting(chunk: bytes) -> None:
            nonlocal got
            consume(chunk)
            got += len(chunk)
            if not offsets[1:] and got >= 2_000_000:
                raise PostboxError("postbox olo: read /inbox/x: connection lost (test)")

        real(self, name, counting, offset)

    monkeypatch.setattr(Postbox, "read_inbox", breaks_after_2mb)
    outcome = pickup_now(sv)
    assert outcome.startswith("error:") and "connection lost (test)" in outcome, outcome
    parts = list((Path(sv.settings.source).parent / "var" / "files").glob(".resume-*.part"))
    assert len(parts) == 1
    resumed_from = parts[0].stat().st_size
    assert 2_000_000 <= resumed_from < len(data)
    assert pickup_now(sv).startswith("ok: 1 in inboxes, 1 stored")
    assert offsets == [0, resumed_from]  # the second run read only the rest
    (row,) = store.list_files(sv.engine, None, 100)
    assert row.sha256 == hashlib.sha256(data).hexdigest() and row.size == len(data)
    assert [p.name for p in files_in_store(sv)] == [row.sha256]  # the part is gone, one file
