"""Mirroring to postboxes against a real OpenSSH sshd (tests/sftp_server.py), and the crash acceptance of
issue 9 for pickup and mirror: ``[[mirror]]`` rules select delivered documents by zaaktype, documenttype
and adviseur; each is uploaded once under a temporary name, verified (size, sha256 read back) and renamed;
a manifest comes last; a partial upload resumes; a permission-denied outbox fails with the reason, visibly,
and is retried; ``mappings check`` names an unknown postbox; password login through ``${ENV}``; an orphan
expires after ``orphan_hours``; ``kill -9`` of ``serve`` mid-pickup and mid-upload of 200 MB (``slow``)."""

from __future__ import annotations

import hashlib
import json
import os
import pwd
import time
from pathlib import Path
from typing import Any, cast

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine, text

from adapter.cli import main
from adapter.jobs.scheduler import run_job
from adapter.postbox import mirror, pickup
from adapter.postbox.client import Postbox
from adapter.services import Services
from adapter.store import postbox as pickup_store
from adapter.store import uploads as store
from adapter.store.files import FileStore
from tests import postbox_env
from tests.conftest import FIXTURES, NO_DELIVERY, make_server
from tests.delivery_env import Zaaksysteem, needs_zgw_specs
from tests.postbox_env import receive_lvo, work
from tests.sftp_server import SftpServer, serve

AANVRAAG = FIXTURES / "stuf-lvo" / "omvDi01AanbiedenAanvraag.xml"
ADVIES = FIXTURES / "stuf-lvo" / "vrgDi01VoegAdviesToe.xml"
TEKENING, FOTO = "1234567_Bouwtekening.pdf", "1234567_Foto_voorgevel.jpg"
pytestmark = needs_zgw_specs  # the delivering fixture runs the fake ZGW on the official OpenAPI files


def _outbox(srv: SftpServer) -> Path:
    """The chroot's outbox, owned by the postbus user (tests/sftp_server.py makes inbox and processed)."""
    path = srv.chroot / "outbox"
    path.mkdir(exist_ok=True)
    uid = pwd.getpwnam(srv.user).pw_uid
    os.chown(path, uid, uid)
    return path


sftp_server, _close_sessions = postbox_env.sftp_server, postbox_env._close_sessions


def rules(sv: Services, toml: str) -> None:
    """Append ``[[mirror]]`` rules to the instance's mapping (reloaded on change)."""
    path = Path(sv.settings.delivery.mappings_dir) / "voorbeeldstad.toml"
    path.write_text(path.read_text(encoding="utf-8") + "\n" + toml, encoding="utf-8")
    os.utime(path, (time.time() + 2, time.time() + 2))  # a new mtime even within the same second


@pytest.fixture
def adapter(delivering: Any, sftp_server: SftpServer) -> Any:
    def open_(extra: str = "", **postbox: object) -> Services:
        _outbox(sftp_server)
        toml = "\n[postbus]\norphan_hours = 1\n" + sftp_server.toml(outbox="/outbox", **postbox) + extra
        return cast(Services, delivering(extra_toml=toml, max_attempts=5))

    return open_


def receive(sv: Services, path: Path = AANVRAAG) -> int:
    return receive_lvo(sv, path.read_bytes())


def mirror_now(sv: Services) -> str:
    outcome = run_job(sv, "postbox-mirror", force=True)
    return f"{outcome.status}: {outcome.detail}"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def bijlagen(sv: Services, zs: Zaaksysteem) -> dict[str, bytes]:
    """The documents the zaaksysteem got: bestandsnaam → bytes (what the mirror must copy)."""
    return {d["bestandsnaam"]: d["bytes"] for d in zs.fake.documenten}  # type: ignore[attr-defined]


def cli(sv: Services, *args: str) -> Any:
    return CliRunner().invoke(main, ["--config", sv.settings.source, *args])


def test_selected_documents_are_uploaded_once_verified_with_the_manifest_last(
    adapter: Any, zs: Zaaksysteem, sftp_server: SftpServer
) -> None:
    sv = adapter()
    rules(sv, '[[mirror]]\npostbox = "olo"\nzaaktypen = ["ZT-OMV-REG"]\nmanifest = true\n')
    # the example's second bijlage has no inhoud: its file comes through the postbus (a file-store file)
    sftp_server.put(f"1234567_{FOTO}", b"\xff\xd8\xff" + os.urandom(400_000))
    assert run_job(sv, "postbox-pickup", force=True).status == "ok"
    mid = receive(sv)
    (report,) = work(sv)
    assert report.startswith("done:") and "mirrored to olo (2 new)" in report, report
    sent = bijlagen(sv, zs)
    assert mirror_now(sv) == "ok: 3 to upload, 3 uploaded, 0 failed"
    outbox = _outbox(sftp_server)
    batch = f"1234567-{mid}"
    assert sorted(p.name for p in outbox.iterdir()) == sorted([TEKENING, FOTO, f"{batch}.manifest.json"])
    for name, data in sent.items():
        assert sha((outbox / name).read_bytes()) == sha(data)
    manifest = json.loads((outbox / f"{batch}.manifest.json").read_bytes())
    assert manifest["batch"] == batch and manifest["postbox"] == "olo"
    assert manifest["files"] == [{"name": n, "size": len(sent[n]), "sha256": sha(sent[n])} for n in sorted(sent)]
    rows = store.list_uploads(sv.engine, None, 100)
    assert [r.state for r in rows] == ["done"] * 3
    manifest_row = next(r for r in rows if r.kind == "manifest")
    assert manifest_row.done_at is not None and all(  # uploaded last
        manifest_row.done_at >= r.done_at for r in rows if r.done_at is not None
    )
    # the inline bytes were only copied for the upload: gone from the file store once uploaded; the
    # postbus file stays (the pickup and retention own it)
    files_root = Path(sv.settings.source).parent / "var" / "files"
    assert [p.name for p in files_root.rglob("*") if p.is_file()] == [sha(sent[FOTO])]

    # nothing twice: another run; and a resend whose plan runs again (its checkpoint removed) finds every
    # document planned by identity and sha256
    assert mirror_now(sv) == "ok: 0 to upload, 0 uploaded, 0 failed"
    with sv.engine.begin() as conn:
        assert conn.execute(text("DELETE FROM delivery_steps WHERE key = 'mirror:plan'")).rowcount == 1
    assert sv.outbox is not None
    (again,) = sv.outbox.resend([mid])
    assert not isinstance(again, str) and again.state == "done" and "mirrored to olo (0 new)" in again.detail, again
    assert mirror_now(sv) == "ok: 0 to upload, 0 uploaded, 0 failed"
    assert len(list(outbox.iterdir())) == 3
    shown = cli(sv, "postbox", "uploads")
    assert shown.exit_code == 0 and f"{batch}.manifest.json" in shown.output and "done" in shown.output
    status = cli(sv, "postbox", "status")
    assert "mirror: 3 done, 0 to do, 0 failed" in status.output, status.output


def test_rules_select_by_zaaktype_documenttype_and_adviseur(tmp_path: Path) -> None:
    from adapter.mapping.check import SAMPLE
    from adapter.mapping.loader import load_file
    from adapter.model import Advies, Bijlage, Organisatie, Soort

    path = tmp_path / "m.toml"
    path.write_text(
        """
[[route]]
oin = "00000001002564440000"
target = "zgw"

[[mirror]]
postbox = "archief"
zaaktypen = ["ZT-OMV-REG"]
documenttypen = ["Bouwtekening"]

[[mirror]]
postbox = "odrn"
adviseurs = ["00000001823288444000"]
manifest = true
""",
        encoding="utf-8",
    )
    loaded, problems = load_file(path)
    assert loaded is not None and not problems
    planner = mirror.MirrorPlanner(cast(Any, None), cast(Any, None), {"archief", "odrn"})
    docs = (Bijlage("1", "a.pdf", "Bouwtekening", inhoud=b"a"), Bijlage("2", "b.jpg", "Foto", inhoud=b"b"))
    aanvraag = SAMPLE.__class__(**{**SAMPLE.__dict__, "bijlagen": docs})
    got = planner.selected(loaded, aanvraag, {"ZT-OMV-REG"})
    assert {p: [b.id for b in bs] for p, (_, bs) in got.items()} == {"archief": ["1"]}
    assert planner.selected(loaded, aanvraag, {"ZT-TRIAGE"}) == {}
    advies = SAMPLE.__class__(
        **{
            **SAMPLE.__dict__,
            "soort": Soort.ADVIES,
            "bijlagen": docs,
            "advies": Advies("AV-1", Organisatie("00000001823288444000")),
        }
    )
    got = planner.selected(loaded, advies, set())
    assert {p: (m, [b.id for b in bs]) for p, (m, bs) in got.items()} == {"odrn": (True, ["1", "2"])}
    other = SAMPLE.__class__(**{**advies.__dict__, "advies": Advies("AV-2", Organisatie("00000001999999999000"))})
    assert planner.selected(loaded, other, set()) == {}
    # a rule naming a postbox the configuration lacks stops the delivery, naming it
    with pytest.raises(Exception, match=r"mirror\[0\].postbox: postbox 'archief' is not configured"):
        mirror.MirrorPlanner(cast(Any, None), cast(Any, None), {"odrn"}).selected(loaded, aanvraag, {"ZT-OMV-REG"})


def test_mappings_check_names_an_unknown_postbox(tmp_path: Path, zs: Zaaksysteem) -> None:
    from tests.conftest import write_config
    from tests.delivery_env import copy_mappings, delivery_toml

    mappings = copy_mappings(tmp_path)
    text_ = (mappings / "voorbeeldstad.toml").read_text(encoding="utf-8")
    (mappings / "voorbeeldstad.toml").write_text(
        text_ + '\n[[mirror]]\npostbox = "archief"\ndocumenttypen = ["Bouwtekening"]\n', encoding="utf-8"
    )
    config = write_config(tmp_path / "config.toml", f"sqlite:///{tmp_path / 'a.db'}", 8999, delivery_toml(zs, mappings))
    got = CliRunner().invoke(main, ["--config", str(config), "mappings", "check"])
    assert got.exit_code == 1, got.output
    line = text_.count("\n") + 3  # the postbox key of the appended rule
    assert f"voorbeeldstad.toml:{line}: mirror[0].postbox: postbox 'archief' is not configured" in got.output


def test_a_partial_upload_resumes_and_a_bad_prefix_restarts(
    adapter: Any, sftp_server: SftpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    sv = adapter()
    files = FileStore(Path(sv.settings.source).parent / "var" / "files")
    data = os.urandom(3_000_000)
    (row,) = mirror.drop_batch(sv.engine, files, "olo", "B1", [mirror.DropFile("x.bin", data)], manifest=False)
    offsets: list[int] = []
    real_write = Postbox.write_outbox

    def write(self: Postbox, name: str, source: Any, offset: int, size: int) -> None:
        offsets.append(offset)
        real_write(self, name, source, offset, size)

    monkeypatch.setattr(Postbox, "write_outbox", write)
    outbox = _outbox(sftp_server)
    part = outbox / mirror.temp_name(row)
    part.write_bytes(data[:1_000_000])  # an earlier run stopped here
    uid = pwd.getpwnam(sftp_server.user).pw_uid
    os.chown(part, uid, uid)
    assert mirror_now(sv) == "ok: 1 to upload, 1 uploaded, 0 failed"
    assert (outbox / "x.bin").read_bytes() == data and not part.exists()
    assert offsets == [1_000_000]  # appended to what was there, not sent again
    log_ = store.get(sv.engine, row.id)
    assert log_ is not None and log_.state == "done" and log_.attempts == 1

    # a part whose prefix is not ours (another file's bytes): the check after the upload catches it and the
    # upload starts over from byte 0, in the same run
    (row2,) = mirror.drop_batch(sv.engine, files, "olo", "B2", [mirror.DropFile("y.bin", data[::-1])], manifest=False)
    part2 = outbox / mirror.temp_name(row2)
    part2.write_bytes(b"\0" * 500_000)
    os.chown(part2, uid, uid)
    assert mirror_now(sv) == "ok: 1 to upload, 1 uploaded, 0 failed"
    assert (outbox / "y.bin").read_bytes() == data[::-1] and not part2.exists()
    assert offsets == [1_000_000, 500_000, 0]  # resumed, did not verify, sent whole
    assert mirror.batch_state(sv.engine, "olo", "B2") == "done"
    # the same batch again: nothing new
    assert mirror.drop_batch(sv.engine, files, "olo", "B2", [mirror.DropFile("y.bin", data[::-1])], manifest=False)
    assert mirror_now(sv) == "ok: 0 to upload, 0 uploaded, 0 failed"


def test_a_file_already_renamed_is_recorded_and_another_file_of_that_name_is_never_overwritten(
    adapter: Any, sftp_server: SftpServer
) -> None:
    sv = adapter()
    files = FileStore(Path(sv.settings.source).parent / "var" / "files")
    outbox = _outbox(sftp_server)
    uid = pwd.getpwnam(sftp_server.user).pw_uid
    (outbox / "same.bin").write_bytes(b"ours")  # renamed by a run that died before recording it
    (outbox / "taken.bin").write_bytes(b"somebody else's")
    for p in outbox.iterdir():
        os.chown(p, uid, uid)
    mirror.drop_batch(sv.engine, files, "olo", "C", [mirror.DropFile("same.bin", b"ours")], manifest=False)
    mirror.drop_batch(sv.engine, files, "olo", "D", [mirror.DropFile("taken.bin", b"mine")], manifest=False)
    outcome = mirror_now(sv)
    assert outcome.startswith("error: 2 to upload, 1 uploaded, 1 failed"), outcome
    assert "taken.bin is in the outbox with other content; not overwritten" in outcome
    assert (outbox / "taken.bin").read_bytes() == b"somebody else's"
    assert mirror.batch_state(sv.engine, "olo", "C") == "done"
    assert mirror.batch_state(sv.engine, "olo", "D").startswith("failed: taken.bin: ")


def test_permission_denied_on_the_outbox_fails_with_the_reason_visibly_and_is_retried(
    adapter: Any, sftp_server: SftpServer
) -> None:
    sv = adapter()
    files = FileStore(Path(sv.settings.source).parent / "var" / "files")
    outbox = _outbox(sftp_server)
    os.chown(outbox, 0, 0)
    outbox.chmod(0o755)  # root's: the postbus user may not write there
    mirror.drop_batch(sv.engine, files, "olo", "P", [mirror.DropFile("p.bin", b"data")])
    outcome = mirror_now(sv)
    assert outcome.startswith("error: 2 to upload, 0 uploaded, 1 failed") and "permission denied" in outcome, outcome
    (failed,) = store.list_uploads(sv.engine, "failed", 100)
    assert failed.remote_name == "p.bin" and "permission denied" in (failed.detail or "")
    status = cli(sv, "postbox", "status")
    assert status.exit_code == 1 and "permission denied" in status.output and "1 failed" in status.output, status.output
    shown = cli(sv, "postbox", "uploads", "--state", "failed")
    assert "p.bin" in shown.output and "permission denied" in shown.output, shown.output

    uid = pwd.getpwnam(sftp_server.user).pw_uid
    os.chown(outbox, uid, uid)  # the provider fixed it: the next run uploads, then the manifest
    assert mirror_now(sv) == "ok: 2 to upload, 2 uploaded, 0 failed"
    assert sorted(p.name for p in outbox.iterdir()) == ["P.manifest.json", "p.bin"]
    assert cli(sv, "postbox", "status").exit_code == 0


def test_password_login_from_the_environment(delivering: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    gen = serve(password="geheim-postbus-1")
    srv = next(gen)
    try:
        _outbox(srv)
        monkeypatch.setenv("POSTBUS_PASSWORD", "geheim-postbus-1")
        toml = srv.toml(outbox="/outbox").replace(f'key_file = "{srv.client_key}"', 'password = "${POSTBUS_PASSWORD}"')
        assert "key_file" not in toml
        sv = cast(Services, delivering(extra_toml=toml))
        files = FileStore(Path(sv.settings.source).parent / "var" / "files")
        mirror.drop_batch(sv.engine, files, "olo", "W", [mirror.DropFile("w.bin", b"by password")], manifest=False)
        assert mirror_now(sv) == "ok: 1 to upload, 1 uploaded, 0 failed"
        assert (srv.chroot / "outbox" / "w.bin").read_bytes() == b"by password"
        assert "Accepted password" in (srv.workdir / "log").read_text()
        assert cli(sv, "postbox", "status", "--check").exit_code == 0
    finally:
        for pb in list(pickup._cache.values()):
            pb.close()
        pickup._cache.clear()
        for _ in gen:
            pass


def test_an_orphan_expires_after_orphan_hours_and_stays_visible(adapter: Any, sftp_server: SftpServer) -> None:
    sv = adapter(extra="")
    sftp_server.put("7654321_Tekening.pdf", b"%PDF orphan")
    assert run_job(sv, "postbox-pickup", force=True).status == "ok"
    (orphan,) = pickup_store.orphans(sv.engine)
    assert "1 orphan(s)" in cli(sv, "postbox", "orphans").output
    # orphan_hours = 1 in this instance: an hour and a bit later (the stored time moved back) it expires
    with sv.engine.begin() as conn:
        conn.execute(
            text("UPDATE postbox_files SET stored_at = :t WHERE id = :i"),
            {"t": pickup_store.deadline(orphan.stored_at, -1.01), "i": orphan.id},
        )
    outcome = run_job(sv, "postbox-pickup", force=True)
    assert "1 orphans expired" in outcome.detail, outcome.detail
    assert pickup_store.orphans(sv.engine) == []
    shown = cli(sv, "postbox", "files", "--state", "expired")
    assert "7654321_Tekening.pdf" in shown.output and "orphan: no aanvraag 7654321 within 1 h" in shown.output
    assert not (
        Path(sv.settings.source).parent / "var" / "files" / (orphan.sha256 or "")[:2] / (orphan.sha256 or "")
    ).exists()
    assert (sftp_server.inbox / "7654321_Tekening.pdf").exists()  # the remote file stays


def test_a_job_lock_held_by_a_dead_process_on_this_host_is_taken_over(engine: Any) -> None:
    """After ``kill -9`` of serve mid-pickup its lock would hold the job for 30 minutes (``Job.hold``)."""
    import socket
    import subprocess
    import sys
    from datetime import timedelta

    from adapter.store import jobs

    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()  # reaped: its pid names no process now
    hold = timedelta(minutes=30)
    here = socket.gethostname()
    assert jobs.try_lock(engine, "postbox-mirror", f"{here}:{gone.pid}", hold=hold, interval=None)
    assert jobs.try_lock(engine, "postbox-mirror", f"{here}:{os.getpid()}", hold=hold, interval=None)
    # a live holder, or one on another host (whose processes we cannot see), keeps its lock
    assert not jobs.try_lock(engine, "postbox-mirror", f"{here}:1", hold=hold, interval=None)
    jobs.unlock(engine, "postbox-mirror", f"{here}:{os.getpid()}")
    assert jobs.try_lock(engine, "postbox-mirror", f"elsewhere:{gone.pid}", hold=hold, interval=None)
    assert not jobs.try_lock(engine, "postbox-mirror", f"{here}:{os.getpid()}", hold=hold, interval=None)


# -- kill -9 of serve mid-transfer (200 MB) -----------------------------------------------------------------

BIG = 200 * 1000 * 1000


def _big_file(path: Path) -> str:
    digest = hashlib.sha256()
    block = os.urandom(1 << 20)
    with open(path, "wb") as f:
        written = 0
        while written < BIG:
            chunk = block[: min(len(block), BIG - written)]
            f.write(chunk)
            digest.update(chunk)
            written += len(chunk)
            block = block[1:] + block[:1]  # not one repeated MiB
    return digest.hexdigest()


def _serve_with_postbox(tmp_path: Path, srv: SftpServer) -> Any:
    _outbox(srv)
    toml = (
        NO_DELIVERY + "[postbus]\npickup_minutes = 0.02\nmirror_minutes = 0.02\n" + srv.toml(outbox="/outbox")
    )  # the file store: var/files beside the config (the default)
    return make_server(tmp_path, toml)


def _wait(what: str, cond: Any, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


@pytest.mark.slow
def test_kill_9_of_serve_during_a_200mb_pickup_then_restart_completes_it(
    tmp_path: Path, sftp_server: SftpServer
) -> None:
    src = tmp_path / "big.bin"
    digest = _big_file(src)
    srv = _serve_with_postbox(tmp_path, sftp_server)
    files_root = tmp_path / "var" / "files"
    os.replace(src, sftp_server.inbox / "1234567_groot.pdf")
    uid = pwd.getpwnam(sftp_server.user).pw_uid
    os.chown(sftp_server.inbox / "1234567_groot.pdf", uid, uid)
    srv.start()
    try:
        parts = lambda: list(files_root.glob(".resume-*.part")) if files_root.exists() else []  # noqa: E731
        _wait("the download to start", lambda: any(p.stat().st_size > 20_000_000 for p in parts()))
        srv.kill9()
        (part,) = parts()
        at_kill = part.stat().st_size
        assert 0 < at_kill < BIG, at_kill
        srv.start()
        engine = create_engine(srv.db_url)
        try:

            def stored() -> bool:
                with engine.connect() as conn:
                    return conn.execute(text("SELECT count(*) FROM postbox_files WHERE state='stored'")).scalar() == 1

            _wait("the pickup to complete after the restart", stored)
            with engine.connect() as conn:
                row = conn.execute(text("SELECT sha256, size FROM postbox_files")).one()
        finally:
            engine.dispose()
    finally:
        srv.stop()
    assert tuple(row) == (digest, BIG)
    stored_files = [p for p in files_root.rglob("*") if p.is_file()]
    assert [p.name for p in stored_files] == [digest]  # one file, no part left
    assert "resuming a postbus download" in srv.log_text()


@pytest.mark.slow
def test_kill_9_of_serve_during_a_200mb_mirror_upload_then_restart_completes_it(
    tmp_path: Path, sftp_server: SftpServer
) -> None:
    from adapter.store.db import make_engine, upgrade

    srv = _serve_with_postbox(tmp_path, sftp_server)
    engine = make_engine(srv.db_url, lock_timeout_ms=5000)
    upgrade(engine)
    src = tmp_path / "big.bin"
    digest = _big_file(src)
    files = FileStore(tmp_path / "var" / "files")
    (row,) = mirror.drop_batch(
        engine, files, "olo", "GROOT", [mirror.DropFile("1234567_groot.pdf", path=src)], manifest=False
    )
    src.unlink()
    outbox = _outbox(sftp_server)
    part = outbox / mirror.temp_name(row)
    srv.start()
    try:
        _wait("the upload to start", lambda: part.exists() and part.stat().st_size > 20_000_000)
        srv.kill9()
        at_kill = part.stat().st_size
        assert 0 < at_kill < BIG, at_kill
        srv.start()
        _wait("the upload to complete after the restart", lambda: mirror.batch_state(engine, "olo", "GROOT") == "done")
    finally:
        srv.stop()
        engine.dispose()
    assert [p.name for p in outbox.iterdir()] == ["1234567_groot.pdf"]  # one file, no temporary left
    got = hashlib.sha256()
    with open(outbox / "1234567_groot.pdf", "rb") as f:
        while chunk := f.read(1 << 20):
            got.update(chunk)
    assert got.hexdigest() == digest
    assert "resuming a postbox upload" in srv.log_text()


def _readme_mirror() -> tuple[str, list[list[str]]]:
    import shlex

    from tests.conftest import ROOT

    text_ = (ROOT / "README.md").read_text(encoding="utf-8")
    after = text_.split("<!-- mirror example -->\n```toml\n", 1)[1]
    block, rest = after.split("```", 1)
    bash = rest.split("```bash\n", 1)[1].split("```", 1)[0]
    commands = [shlex.split(line.split("  #")[0])[1:] for line in bash.splitlines() if line.strip()]
    return block, commands


def test_the_readme_mirror_example_and_commands_run(adapter: Any, zs: Zaaksysteem, sftp_server: SftpServer) -> None:
    block, commands = _readme_mirror()
    assert [c[:3] for c in commands] == [["postbox", "uploads"], ["jobs", "run", "postbox-mirror"]], commands
    sv = adapter()
    rules(sv, block)
    sftp_server.put(f"1234567_{FOTO}", b"\xff\xd8\xff readme")
    run_job(sv, "postbox-pickup", force=True)
    mid = receive(sv)
    (report,) = work(sv)
    assert "mirrored to olo (2 new)" in report, report  # the zaaktype rule; the adviseur rule: no advies
    outputs = {}
    for args in commands:
        got = cli(sv, *args)
        assert got.exit_code == 0, f"{args}: {got.output}"
        outputs[args[0]] = got.output
    assert "postbox-mirror: ok: 3 to upload, 3 uploaded, 0 failed" in outputs["jobs"], outputs["jobs"]
    assert "pending" in outputs["postbox"] and f"1234567-{mid}.manifest.json" in outputs["postbox"]
    assert sorted(p.name for p in _outbox(sftp_server).iterdir()) == sorted(
        [TEKENING, FOTO, f"1234567-{mid}.manifest.json"]
    )
