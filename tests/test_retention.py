"""Retention (AVG): ``purge --dry-run`` lists and changes nothing; ``purge`` empties bodies past retention per
state and removes the werkmap files only purged messages name, keeps metadata, and never touches a body
whose delivery is pending, retrying or running; a purged message is shown as such and cannot be resent;
rejected bodies are stored capped; the purge job runs once per interval across processes."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import subprocess
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select, update

from adapter.config import load_settings
from adapter.inbound.stuf_lvo import Rejected, StufLvoChannel
from adapter.jobs import scheduler as scheduler_module
from adapter.jobs.scheduler import JOBS, run_job
from adapter.jobs.scheduler import start as start_scheduler
from adapter.services import Services, open_services, resolve_path
from adapter.store import retention
from adapter.store.db import upgrade
from adapter.store.files import FileStore
from adapter.store.tables import deliveries, delivery_steps, messages
from tests.conftest import PG_URL, ROOT, drop_database, new_database_url, write_config
from tests.delivery_env import Zaaksysteem, cli_with, copy_mappings, delivery_toml, needs_zgw_specs
from tests.soap import fixture
from tests.test_delivery_zgw import drain, receive

pytestmark = needs_zgw_specs

RETENTION = """
[retention]
delivered_days = 30
rejected_days = 14
dead_days = 90
needs_attention_days = "forever"
rejected_body_max_bytes = 1000
purge_minutes = 60
"""
#: Personal values of the example aanvraag: none may appear in what purge prints.
PERSONAL = ("999993653", "Jansen", "Dorpsstraat")


def open_sv(tmp_path: Path, zs: Zaaksysteem, url: str, retention_toml: str = RETENTION) -> Services:
    toml = delivery_toml(zs, copy_mappings(tmp_path), workers=0) + retention_toml
    config = write_config(tmp_path / "config.toml", url, 8999, toml)
    return open_services(load_settings(config))


@pytest.fixture
def sv(tmp_path: Path, zs: Zaaksysteem) -> Iterator[Services]:
    url = new_database_url(tmp_path)
    services = open_sv(tmp_path, zs, url)
    upgrade(services.engine)
    yield services
    services.close()
    drop_database(url)


def aanvraag(sv: Services, nummer: int) -> int:
    return receive(sv, body=fixture("omvDi01AanbiedenAanvraag").replace(b">1234567<", f">{nummer}<".encode()))


def age(engine: Engine, message_id: int, days: float, state: str | None = None, delivery: str | None = None) -> None:
    """Put a message ``days`` into its state (and optionally into another message/delivery state)."""
    values: dict[str, Any] = {"updated_at": datetime.now(UTC) - timedelta(days=days)}
    if state:
        values["state"] = state
    with engine.begin() as conn:
        conn.execute(update(messages).where(messages.c.id == message_id).values(**values))
        if delivery:
            conn.execute(update(deliveries).where(deliveries.c.message_id == message_id).values(state=delivery))


def add_document(sv: Services, message_id: int, content: bytes) -> str:
    """A werkmap document in the file store, named by a checkpoint of the message's delivery (as STAM does)."""
    sha = hashlib.sha256(content).hexdigest()
    store = FileStore(resolve_path(sv.settings, sv.settings.store.files_dir))
    with store.writer(sha, len(content)) as w:
        w.write(content)
        path = w.commit()
    with sv.engine.begin() as conn:
        did = conn.execute(select(deliveries.c.id).where(deliveries.c.message_id == message_id)).scalar_one()
        conn.execute(
            delivery_steps.insert().values(
                delivery_id=did,
                key=f"werkmap:document:{uuid.uuid4().hex[:8]}",
                state="done",
                result=json.dumps({"bestand": str(path), "grootte": len(content), "sha256": sha}),
                updated_at=datetime.now(UTC),
            )
        )
    return sha


def reject(sv: Services) -> int:
    channel = StufLvoChannel(sv.settings, sv.writer, sv.schemas)
    raw = fixture("omvDi01AanbiedenAanvraag").replace(b"<StUF:berichtcode>Di01<", b"<StUF:berichtcode>Lk01<")
    with pytest.raises(Rejected):
        channel.receive(raw, uuid.uuid4().hex)
    with sv.engine.connect() as conn:
        return conn.execute(select(messages.c.id).order_by(messages.c.id.desc())).scalars().first()  # type: ignore[return-value]


def snapshot(engine: Engine) -> dict[int, dict[str, Any]]:
    with engine.connect() as conn:
        return {r.id: {**r._asdict(), "body": bytes(r.body)} for r in conn.execute(select(messages))}


def loket_adapter(sv: Services, *args: str) -> subprocess.CompletedProcess[str]:
    return cli_with(sv.settings.source, *args)


@pytest.fixture
def scenario(sv: Services) -> dict[str, Any]:
    """Messages in every situation, delivered for real into the fake ZGW, then aged and put in their states."""
    ids = {
        name: aanvraag(sv, 8200000 + i)
        for i, name in enumerate(["old", "young", "dead", "attention", "resending", "retrying"])
    }
    assert drain(sv) == ["done"] * 6
    ids["rejected_old"] = reject(sv)
    ids["rejected_young"] = reject(sv)
    e = sv.engine
    age(e, ids["old"], 31)  # delivered, past 30 days: goes
    age(e, ids["young"], 29)  # delivered, within: stays
    age(e, ids["dead"], 91, state="dead", delivery="dead")  # past 90: goes
    age(e, ids["attention"], 900, state="needs-attention", delivery="needs-attention")  # "forever": stays
    age(e, ids["resending"], 400, delivery="running")  # a resend runs now: stays, however old
    age(e, ids["retrying"], 400, state="retrying", delivery="retry")  # stays
    age(e, ids["rejected_old"], 15)  # rejected, past 14: goes
    age(e, ids["rejected_young"], 13)
    files = {
        "only_old": add_document(sv, ids["old"], b"only the old message needs this"),
        "shared": add_document(sv, ids["old"], b"old and young share this"),
        "resending": add_document(sv, ids["resending"], b"a running delivery needs this"),
    }
    add_document(sv, ids["young"], b"old and young share this")
    orphan = FileStore(resolve_path(sv.settings, sv.settings.store.files_dir))
    with orphan.writer(None, None) as w:  # a file no checkpoint names (yet): never purged
        w.write(b"no step names me")
        files["orphan"] = Path(w.commit()).name
    return {"ids": ids, "files": files}


GOES = ("old", "dead", "rejected_old")
STAYS = ("young", "attention", "resending", "retrying", "rejected_young")


def file_exists(sv: Services, sha: str) -> bool:
    return FileStore(resolve_path(sv.settings, sv.settings.store.files_dir)).has(sha)


def test_dry_run_lists_what_would_go_and_changes_nothing(sv: Services, scenario: dict[str, Any]) -> None:
    ids, files = scenario["ids"], scenario["files"]
    before = snapshot(sv.engine)
    run = loket_adapter(sv, "purge", "--dry-run")
    assert run.returncode == 0, run.stderr
    listed = {int(line.split()[1]) for line in run.stdout.splitlines() if line.startswith("message ")}
    assert listed == {ids[n] for n in GOES}
    assert f"message {ids['dead']:>8}  dead " in run.stdout
    listed_files = {line.split()[1] for line in run.stdout.splitlines() if line.startswith("file ")}
    assert listed_files == {files["only_old"]}
    assert "would purge 3 message bodies" in run.stdout and ", 1 files (31 bytes)" in run.stdout
    for value in PERSONAL:
        assert value not in run.stdout
    assert snapshot(sv.engine) == before
    assert all(file_exists(sv, sha) for sha in files.values())


def test_purge_empties_bodies_past_retention_keeps_metadata_and_pending_deliveries(
    sv: Services, scenario: dict[str, Any]
) -> None:
    ids, files = scenario["ids"], scenario["files"]
    before = snapshot(sv.engine)
    run = loket_adapter(sv, "purge")
    assert run.returncode == 0, run.stderr
    assert "purged 3 message bodies" in run.stdout and ", 1 files (31 bytes)" in run.stdout
    after = snapshot(sv.engine)
    for name in GOES:
        row, old = after[ids[name]], before[ids[name]]
        assert row["body"] == b"" and row["body_purged_at"] is not None
        kept = {k: v for k, v in row.items() if k not in ("body", "body_purged_at")}
        assert kept == {k: v for k, v in old.items() if k not in ("body", "body_purged_at")}  # metadata stays
        assert row["sha256"] and row["referentienummer"] and row["state"]
    for name in STAYS:
        assert after[ids[name]] == before[ids[name]], name
    assert not file_exists(sv, files["only_old"])
    assert file_exists(sv, files["shared"]) and file_exists(sv, files["resending"])
    assert file_exists(sv, files["orphan"])
    again = loket_adapter(sv, "purge")
    assert "purged 0 message bodies (0 bytes), 0 files" in again.stdout
    # once the young message is past retention too, the file they shared goes
    age(sv.engine, ids["young"], 31)
    later = retention.purge(sv.engine, sv.settings.retention, resolve_path(sv.settings, sv.settings.store.files_dir))
    assert [m.id for m in later.messages] == [ids["young"]]
    assert [f.sha256 for f in later.files] == [files["shared"]]


def test_a_purged_message_is_shown_as_such_and_cannot_be_resent(sv: Services, scenario: dict[str, Any]) -> None:
    mid = scenario["ids"]["old"]
    loket_adapter(sv, "purge")
    show = loket_adapter(sv, "messages", "show", str(mid))
    assert show.returncode == 0, show.stderr
    assert "body              body purged on " in show.stdout and "UTC (retention)" in show.stdout
    assert "referentienummer" in show.stdout and "delivery:         done" in show.stdout
    raw = loket_adapter(sv, "messages", "show", str(mid), "--raw")
    assert raw.returncode == 1 and raw.stdout == ""
    assert raw.stderr.strip().startswith(f"error: message {mid}: body purged on ")
    assert len(raw.stderr.strip().splitlines()) == 1
    resend = loket_adapter(sv, "messages", "resend", str(mid))
    assert resend.returncode == 1
    assert f"message {mid}: not resent: body purged on " in resend.stdout and "Traceback" not in resend.stderr
    with sv.engine.connect() as conn:
        state = conn.execute(select(deliveries.c.state).where(deliveries.c.message_id == mid)).scalar_one()
    assert state == "done"  # untouched


def test_a_delivery_that_finds_its_body_purged_needs_attention_saying_so(sv: Services) -> None:
    """The race a resend can lose: its message was purged between the check and the run."""
    mid = aanvraag(sv, 8300001)
    with sv.engine.begin() as conn:
        conn.execute(update(messages).where(messages.c.id == mid).values(body=b"", body_purged_at=datetime.now(UTC)))
    assert drain(sv) == ["needs-attention"]
    with sv.engine.connect() as conn:
        error = conn.execute(select(deliveries.c.last_error).where(deliveries.c.message_id == mid)).scalar_one()
    assert "body purged on " in error and "(retention)" in error


def test_rejected_bodies_are_stored_capped_and_say_so(sv: Services) -> None:
    mid = reject(sv)
    size = len(fixture("omvDi01AanbiedenAanvraag"))
    with sv.engine.connect() as conn:
        row = conn.execute(select(messages).where(messages.c.id == mid)).one()
    assert len(bytes(row.body)) == 1000 and row.body_truncated is True and row.size == size
    show = loket_adapter(sv, "messages", "show", str(mid))
    assert f"stored truncated to 1000 of {size} bytes" in show.stdout
    raw = loket_adapter(sv, "messages", "show", str(mid), "--raw")
    assert raw.returncode == 0 and len(raw.stdout.encode()) == 1000 and "truncated" in raw.stderr
    accepted = aanvraag(sv, 8300002)  # accepted bodies are never cut
    with sv.engine.connect() as conn:
        row = conn.execute(select(messages).where(messages.c.id == accepted)).one()
    assert row.body_truncated is None and len(bytes(row.body)) == row.size > 1000


def test_the_purge_job_runs_once_per_interval_across_processes(
    tmp_path: Path, sv: Services, zs: Zaaksysteem, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert "purge" in JOBS and JOBS["purge"].interval(sv) == timedelta(minutes=60)
    monkeypatch.setattr(scheduler_module, "_services", None)  # start() sets it; put back afterwards
    scheduler = start_scheduler(sv)  # what `serve` starts: the purge job fires every purge_minutes
    try:
        assert scheduler.get_job("purge").trigger.interval == timedelta(minutes=60)
    finally:
        scheduler.shutdown(wait=False)
    mid = aanvraag(sv, 8300003)
    drain(sv)
    age(sv.engine, mid, 31)
    (tmp_path / "other").mkdir()
    other = open_sv(tmp_path / "other", zs, sv.settings.store.url)  # a second adapter process on the same store
    try:
        first = run_job(sv, "purge")
        assert first.ran and first.status == "ok" and first.detail.startswith("purged 1 message bodies")
        assert not run_job(other, "purge").ran  # the second process: already ran this interval
        assert not run_job(sv, "purge").ran
        assert run_job(other, "purge", force=True).ran  # `jobs run` still runs it on demand
    finally:
        other.close()
    with sv.engine.connect() as conn:
        purged = conn.execute(select(messages.c.body_purged_at).where(messages.c.id == mid)).scalar_one()
    assert purged is not None


def test_forever_keeps_and_zero_days_purges_at_once(tmp_path: Path, zs: Zaaksysteem) -> None:
    url = new_database_url(tmp_path)
    toml = RETENTION.replace("delivered_days = 30", 'delivered_days = "forever"').replace(
        "rejected_days = 14", "rejected_days = 0"
    )
    services = open_sv(tmp_path, zs, url, toml)
    upgrade(services.engine)
    try:
        delivered = aanvraag(services, 8300004)
        drain(services)
        age(services.engine, delivered, 10_000)
        rejected = reject(services)
        got = retention.plan(services.engine, services.settings.retention, None)
        assert [m.id for m in got.messages] == [rejected]
    finally:
        services.close()
        drop_database(url)


def readme_commands() -> list[list[str]]:
    """The bash block of the README's "Retention (AVG)" section, one command per line, comments dropped."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Retention (AVG)", 1)[1].split("\n## ", 1)[0]
    block = section.split("```bash\n", 1)[1].split("```", 1)[0]
    return [line.split("#", 1)[0].split() for line in block.splitlines() if line.strip()]


def test_the_readme_retention_commands_run_as_typed(sv: Services, scenario: dict[str, Any]) -> None:
    commands = readme_commands()
    assert [c[1:] for c in commands] == [["purge", "--dry-run"], ["purge"], ["jobs", "run", "purge"]]
    assert all(c[0] == ".venv/bin/loket-adapter" for c in commands)
    dry, purge, job = (loket_adapter(sv, *c[1:]) for c in commands)
    assert dry.returncode == 0 and "would purge 3 message bodies" in dry.stdout, dry.stderr
    assert purge.returncode == 0 and "purged 3 message bodies" in purge.stdout, purge.stderr
    assert job.returncode == 0, job.stdout + job.stderr
    assert job.stdout.startswith("purge: ok: purged 0 message bodies (0 bytes), 0 files (0 bytes)")


def test_purge_works_in_batches(sv: Services, scenario: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(retention, "BATCH", 1)
    ids = scenario["ids"]
    age(sv.engine, ids["young"], 31)  # two delivered ones due: two batches
    files_root = resolve_path(sv.settings, sv.settings.store.files_dir)
    done = retention.purge(sv.engine, sv.settings.retention, files_root)
    assert sorted(m.id for m in done.messages) == sorted([ids["young"], *(ids[n] for n in GOES)])
    assert retention.plan(sv.engine, sv.settings.retention, files_root).messages == []


def test_files_wait_while_a_stam_delivery_runs(sv: Services, scenario: dict[str, Any]) -> None:
    """A running STAM delivery may be about to reuse a file no checkpoint of its own names yet."""
    with sv.engine.begin() as conn:
        conn.execute(update(messages).where(messages.c.id == scenario["ids"]["resending"]).values(channel="stam"))
    files_root = resolve_path(sv.settings, sv.settings.store.files_dir)
    first = retention.purge(sv.engine, sv.settings.retention, files_root)
    assert len(first.messages) == 3 and first.files == [] and first.files_postponed
    assert file_exists(sv, scenario["files"]["only_old"])
    age(sv.engine, scenario["ids"]["resending"], 1, delivery="done")  # the delivery ended just now
    second = retention.purge(sv.engine, sv.settings.retention, files_root)
    assert [f.sha256 for f in second.files] == [scenario["files"]["only_old"]] and not second.files_postponed


@pytest.mark.skipif(bool(PG_URL), reason="the SQLite file's bytes; PostgreSQL frees dead rows by VACUUM")
def test_a_purged_body_leaves_no_bytes_in_the_sqlite_file(sv: Services) -> None:
    # A body larger than a page lives in overflow pages; freed, they keep their bytes unless secure_delete
    # zeroes them.
    marker = b"Purge-Marker-" + uuid.uuid4().hex.encode()
    body = fixture("omvDi01AanbiedenAanvraag").replace(b"?>", b"?><!--" + marker * 200 + b"-->", 1)
    mid = receive(sv, body=body)
    assert drain(sv) == ["done"]
    age(sv.engine, mid, 31)
    database = Path(str(sv.engine.url.database))

    def on_disk() -> bytes:
        raw = sqlite3.connect(database)
        try:
            busy, _, _ = raw.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            assert busy == 0
        finally:
            raw.close()
        return b"".join(p.read_bytes() for p in (database, Path(f"{database}-wal")) if p.exists())

    assert marker in on_disk()
    retention.purge(sv.engine, sv.settings.retention, resolve_path(sv.settings, sv.settings.store.files_dir))
    assert marker not in on_disk()
