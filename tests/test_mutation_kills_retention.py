"""Retention (``adapter/store/retention.py``) at the store level: written for the survivors of mutation run 7
(docs/guarantees.md).

``test_retention.py`` runs purges over messages delivered for real; these pin what it left open: the bytes an
operator is told were (or would be) purged, the summary line's every part, the werkmap PDF among the files
that go, and the times shown — in UTC on a machine whose clock runs in Europe/Amsterdam, as the servers of a
Dutch municipality do.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import Connection, Engine, event, update

from adapter.config import RetentionSettings
from adapter.store import messages as message_store
from adapter.store import postbox as postbus
from adapter.store import retention, uploads
from adapter.store.files import FileStore
from adapter.store.tables import deliveries, messages
from tests.test_mutation_kills_postbox import checkpoint, message

SETTINGS = RetentionSettings(delivered_days=30, rejected_days=14, dead_days=90, needs_attention_days="forever")


@pytest.fixture
def amsterdam(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The process's local time zone is Europe/Amsterdam (UTC+1 in December) for the test."""
    monkeypatch.setenv("TZ", "Europe/Amsterdam")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def aged(engine: Engine, message_id: int, since: datetime, state: str = "delivered", body: bytes | None = None) -> None:
    """The message in ``state`` since ``since``, its delivery done (or as the state says)."""
    values: dict[str, object] = {"state": state, "updated_at": since}
    if body is not None:
        values["body"] = body
    delivery = {"delivered": "done", "dead": "dead", "needs-attention": "needs-attention"}.get(state, "done")
    with engine.begin() as conn:
        conn.execute(update(messages).where(messages.c.id == message_id).values(**values))
        conn.execute(update(deliveries).where(deliveries.c.message_id == message_id).values(state=delivery))


def document(engine: Engine, files: FileStore, message_id: int, key: str, content: bytes) -> str:
    """A file in the file store, named by a checkpoint ``key`` of the message's delivery (as a delivery does)."""
    sha = hashlib.sha256(content).hexdigest()
    with files.writer(sha, len(content)) as w:
        w.write(content)
        w.commit()
    checkpoint(engine, message_id, key, {"sha256": sha, "grootte": len(content)})
    return sha


def test_the_bytes_purged_are_the_bodies_sizes_and_an_empty_body_counts_none(engine: Engine) -> None:
    now = datetime.now(UTC)
    big = message(engine, "1234567")
    empty = message(engine, "7654321", accepted=False)  # an empty POST, rejected
    aged(engine, big, now - timedelta(days=31), body=b"x" * 1234)
    aged(engine, empty, now - timedelta(days=15), state="rejected", body=b"")
    planned = retention.plan(engine, SETTINGS, None)
    assert [(m.id, m.state, m.bytes) for m in planned.messages] == [(big, "delivered", 1234), (empty, "rejected", 0)]
    done = retention.purge(engine, SETTINGS, None)
    assert done.messages == planned.messages
    assert done.summary() == "purged 2 message bodies (1234 bytes), 0 files (0 bytes)"


def test_plan_judges_age_at_the_moment_asked(engine: Engine) -> None:
    """``plan(at=…)``: what a purge then would remove (retention counts from when the message reached its
    state), not what a purge now would."""
    now = datetime.now(UTC)
    mid = message(engine, "1234567")
    aged(engine, mid, now - timedelta(days=20))
    assert retention.plan(engine, SETTINGS, None).messages == []
    assert [m.id for m in retention.plan(engine, SETTINGS, None, at=now + timedelta(days=11)).messages] == [mid]
    assert retention.purge(engine, SETTINGS, None, at=now + timedelta(days=9)).messages == []
    assert [m.id for m in retention.purge(engine, SETTINGS, None, at=now + timedelta(days=11)).messages] == [mid]


def test_the_werkmap_pdf_goes_with_the_documents_of_a_purged_message(engine: Engine, tmp_path: Path) -> None:
    files = FileStore(tmp_path / "files")
    mid = message(engine, "1234567")
    pdf = document(engine, files, mid, "werkmap:pdf", b"%PDF-1.7 the verzoek as the loket rendered it")
    doc = document(engine, files, mid, "werkmap:document:D1", b"a drawing")
    young = message(engine, "7654321")
    kept = document(engine, files, young, "werkmap:document:D2", b"a younger drawing")
    aged(engine, mid, datetime.now(UTC) - timedelta(days=31))
    aged(engine, young, datetime.now(UTC) - timedelta(days=1))
    planned = retention.plan(engine, SETTINGS, files.root)
    assert sorted(f.sha256 for f in planned.files) == sorted([pdf, doc])
    done = retention.purge(engine, SETTINGS, files.root)
    assert sorted(f.sha256 for f in done.files) == sorted([pdf, doc])
    assert not files.has(pdf) and not files.has(doc) and files.has(kept)


def test_the_summary_says_what_was_postponed_and_names_the_first_three_errors() -> None:
    p = retention.Purge(
        messages=[retention.PurgedMessage(1, "delivered", datetime(2026, 1, 1, tzinfo=UTC), 10)],
        files=[retention.PurgedFile("a" * 64, 5)],
        files_postponed="a STAM delivery is running; the next purge removes them",
        errors=[f"file {i}: Permission denied" for i in range(4)],
    )
    assert p.summary(dry_run=True) == (
        "would purge 1 message bodies (10 bytes), 1 files (5 bytes); files postponed: a STAM delivery is running; "
        "the next purge removes them; 4 errors: file 0: Permission denied; file 1: Permission denied; "
        "file 2: Permission denied"
    )


def test_times_are_shown_in_utc_whatever_the_machines_time_zone(engine: Engine, amsterdam: None) -> None:
    """A municipality's server runs in Europe/Amsterdam: the purge time an operator reads, and the age a purge
    judges by, are UTC all the same (SQLite hands back naive UTC, PostgreSQL the session's zone)."""
    assert (
        retention.purged_text(datetime(2026, 12, 3, 8, 0, tzinfo=UTC))
        == "body purged on 2026-12-03 08:00 UTC (retention)"
    )
    cet = timezone(timedelta(hours=1))
    assert (
        retention.purged_text(datetime(2026, 12, 3, 9, 0, tzinfo=cet))
        == "body purged on 2026-12-03 08:00 UTC (retention)"
    )
    assert retention.purged_text(datetime(2026, 12, 3, 8, 0)) == "body purged on 2026-12-03 08:00 UTC (retention)"
    now = datetime.now(UTC)
    almost = message(engine, "1234567")
    past = message(engine, "7654321")
    aged(engine, almost, now - timedelta(days=30) + timedelta(minutes=30))  # half an hour short of 30 days
    aged(engine, past, now - timedelta(days=30, minutes=30))
    (m,) = retention.plan(engine, SETTINGS, None).messages
    assert m.id == past
    assert m.since.utcoffset() == timedelta(0)
    assert abs(m.since - (now - timedelta(days=30, minutes=30))) < timedelta(seconds=1)


def test_a_purge_in_amsterdam_records_the_purge_time_in_utc(engine: Engine, amsterdam: None) -> None:
    mid = message(engine, "1234567")
    aged(engine, mid, datetime.now(UTC) - timedelta(days=31))
    before = datetime.now(UTC)
    assert [m.id for m in retention.purge(engine, SETTINGS, None).messages] == [mid]
    (at,) = retention.purged_at(engine, [mid]).values()
    assert before - timedelta(seconds=1) <= retention._utc(at) <= datetime.now(UTC) + timedelta(seconds=1)


def test_bodies_are_purged_in_batches_of_batch_rows(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """Short transactions (and SQLite's limit on bound parameters): ``BATCH`` bodies per UPDATE."""
    monkeypatch.setattr(retention, "BATCH", 2)
    ids = [message(engine, f"12345{i:02d}") for i in range(5)]
    for mid in ids:
        aged(engine, mid, datetime.now(UTC) - timedelta(days=31))
    updates: list[str] = []

    def seen(conn: object, cursor: object, statement: str, *args: object) -> None:
        if statement.lstrip().upper().startswith("UPDATE MESSAGES"):
            updates.append(statement)

    event.listen(engine, "before_cursor_execute", seen)
    try:
        done = retention.purge(engine, SETTINGS, None)
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert [m.id for m in done.messages] == ids
    assert len(updates) == 3


def test_a_delivery_claimed_between_the_purges_select_and_its_update_keeps_its_body(engine: Engine) -> None:
    """The UPDATE re-checks the conditions: a resend claimed by a worker after the purge chose its batch (on
    PostgreSQL the UPDATE sees that committed claim) wins, and the purge reports only what it emptied."""
    claimed, other = message(engine, "1234567"), message(engine, "7654321")
    for mid in (claimed, other):
        aged(engine, mid, datetime.now(UTC) - timedelta(days=31))
    body = bytes(message_store.get_message(engine, claimed).body)  # type: ignore[union-attr]

    def claim_first(conn: Connection, cursor: object, statement: str, *args: object) -> None:
        if statement.lstrip().upper().startswith("UPDATE MESSAGES") and not conn.info.get("claimed"):
            conn.info["claimed"] = True
            conn.execute(update(deliveries).where(deliveries.c.message_id == claimed).values(state="running"))

    event.listen(engine, "before_cursor_execute", claim_first)
    try:
        done = retention.purge(engine, SETTINGS, None)
    finally:
        event.remove(engine, "before_cursor_execute", claim_first)
    assert [m.id for m in done.messages] == [other]
    kept = message_store.get_message(engine, claimed)
    assert kept is not None and kept.body_purged_at is None and bytes(kept.body) == body
    assert set(retention.purged_at(engine, [claimed, other])) == {other}
    assert retention.purged_at(engine, [claimed]) == {}


def test_a_file_that_cannot_be_removed_is_an_error_and_the_others_still_go(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = FileStore(tmp_path / "files")
    mid = message(engine, "1234567")
    shas = sorted(document(engine, files, mid, f"werkmap:document:D{i}", f"drawing {i}".encode()) for i in range(3))
    aged(engine, mid, datetime.now(UTC) - timedelta(days=31))
    gone, locked = files.path_for(shas[0]), files.path_for(shas[1])
    real_unlink = Path.unlink

    def unlink(self: Path, missing_ok: bool = False) -> None:
        if self == gone:  # removed by someone else after the purge listed it
            real_unlink(self)
            raise FileNotFoundError(2, "No such file or directory", str(self))
        if self == locked:
            raise PermissionError(13, "Permission denied", str(self))
        real_unlink(self, missing_ok=missing_ok)

    monkeypatch.setattr(Path, "unlink", unlink)
    done = retention.purge(engine, SETTINGS, files.root)
    assert [f.sha256 for f in done.files] == [shas[2]]
    assert done.errors == [f"file {shas[1]}: Permission denied"]
    assert not files.has(shas[2]) and files.has(shas[1])


def test_files_wait_while_a_stam_delivery_runs_and_the_summary_says_why(engine: Engine, tmp_path: Path) -> None:
    files = FileStore(tmp_path / "files")
    mid = message(engine, "1234567")
    sha = document(engine, files, mid, "werkmap:document:D1", b"a drawing")
    aged(engine, mid, datetime.now(UTC) - timedelta(days=31))
    running = message(engine, "7654321")
    with engine.begin() as conn:
        conn.execute(update(messages).where(messages.c.id == running).values(channel="stam"))
        conn.execute(update(deliveries).where(deliveries.c.message_id == running).values(state="running"))
    done = retention.purge(engine, SETTINGS, files.root)
    assert [m.id for m in done.messages] == [mid] and done.files == [] and files.has(sha)
    assert done.summary() == (
        "purged 1 message bodies (32 bytes), 0 files (0 bytes); "
        "files postponed: a STAM delivery is running; the next purge removes them"
    )


def test_postbus_files_go_with_the_messages_whose_delivery_took_them(engine: Engine, tmp_path: Path) -> None:
    """A gap the mutant ``_document_steps`` 5 pointed at: the bijlagen a StUF-LVO delivery took from the postbus
    stayed in the file store for ever. They go once only purged messages name them — unless the same content
    waits in the postbus for another aanvraag, or an upload to a postbox has not been done yet."""
    files = FileStore(tmp_path / "files")
    mid = message(engine, "1234567")
    taken = document(engine, files, mid, "postbus:B1", b"a drawing from the postbus")
    waiting = document(engine, files, mid, "postbus:B2", b"the same file placed again for another aanvraag")
    uploading = document(engine, files, mid, "postbus:B3", b"a drawing still to be mirrored to the odrn")
    postbus.record_stored(engine, "olo", "7654321_Tekening.pdf", "7654321", "Tekening.pdf", waiting, 47)
    uploads.add(
        engine,
        postbox="odrn",
        ident=f"B3:{uploading}",
        kind=uploads.FILE,
        batch="1234567-1",
        message_id=mid,
        remote_name="Tekening.pdf",
        sha256=uploading,
        size=42,
    )
    aged(engine, mid, datetime.now(UTC) - timedelta(days=31))
    assert [f.sha256 for f in retention.plan(engine, SETTINGS, files.root).files] == [taken]
    done = retention.purge(engine, SETTINGS, files.root)
    assert [f.sha256 for f in done.files] == [taken]
    assert not files.has(taken) and files.has(waiting) and files.has(uploading)


def test_every_file_a_checkpoint_names_goes_with_its_purged_messages(engine: Engine, tmp_path: Path) -> None:
    """Not only werkmap documents: an advice document fetched from samenwerken is personal data as well. A
    checkpoint that names a file carries its sha256; one that only lists documents (``werkmap:referenties``)
    names none."""
    files = FileStore(tmp_path / "files")
    mid = message(engine, "1234567")
    advies = document(engine, files, mid, "samenwerken:document:D9", b"the advice of the omgevingsdienst")
    listed = hashlib.sha256(b"listed only").hexdigest()
    checkpoint(engine, mid, "werkmap:referenties", {"documenten": [{"documentId": "D1", "sha256": listed}]})
    aged(engine, mid, datetime.now(UTC) - timedelta(days=31))
    assert [f.sha256 for f in retention.purge(engine, SETTINGS, files.root).files] == [advies]
    assert not files.has(advies)
