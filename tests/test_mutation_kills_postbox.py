"""The postbus file store (``adapter/store/postbox.py``) on its own: written for the survivors of mutation run 7
(docs/guarantees.md).

The pickup tests drive these queries through a real sshd, but only along the common path: one postbox, one
aanvraag, files that arrive and are delivered. These pin what the pickup relies on at the edges: a row belongs to
its postbox; an orphan is adopted only by an accepted message of its own aanvraag, also in the moment between
listing the orphans and expiring one; a file moves to ``processed`` only once its aanvraag's delivery is done; and
the times an operator reads (``postbox files``) are the times things happened.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, Row, insert, update

from adapter.store import messages as message_store
from adapter.store import postbox as store
from adapter.store.db import aware
from adapter.store.outbox import DState
from adapter.store.tables import deliveries, delivery_steps
from adapter.store.writer import GroupCommitWriter
from tests.test_mutation_kills import record

T0 = datetime(2026, 12, 3, 8, 0, tzinfo=UTC)
SHA = hashlib.sha256(b"bouwtekening").hexdigest()


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Callable[[datetime], None]:
    """Set the postbus store's clock."""
    at = {"t": T0}
    monkeypatch.setattr(store, "now", lambda: at["t"])
    return lambda t: at.update(t=t)


def stored(engine: Engine, name: str, postbox: str = "olo", sha256: str = SHA) -> store.PostbusFile:
    """A file picked up from ``postbox`` as the pickup records it (``<aanvraagnummer>_<bestandsnaam>``)."""
    nummer, bestandsnaam = name.split("_", 1)
    store.record_stored(engine, postbox, name, nummer, bestandsnaam, sha256, 12)
    row = store.get_file(engine, postbox, name)
    assert row is not None
    return row


def message(engine: Engine, nummer: str, *, accepted: bool = True) -> int:
    """A received message of aanvraag ``nummer``: accepted (with its delivery) or rejected (Fo03, no key)."""
    r = replace(record(nummer), creates_zaak=True)
    writer = GroupCommitWriter(engine)
    try:
        if accepted:
            return message_store.accept(writer, r, "<Bv03/>").message_id
        return message_store.reject(writer, replace(r, dedup_key=None), "<Fo03/>", "StUF055", "schema")
    finally:
        writer.close()


def checkpoint(engine: Engine, message_id: int, key: str, result: dict[str, object], state: str = "done") -> None:
    with engine.begin() as conn:
        delivery_id = conn.execute(deliveries.select().where(deliveries.c.message_id == message_id)).one().id
        conn.execute(
            insert(delivery_steps).values(
                delivery_id=delivery_id, key=key, state=state, result=json.dumps(result), updated_at=T0
            )
        )


def delivery_state(engine: Engine, message_id: int, state: DState) -> None:
    with engine.begin() as conn:
        conn.execute(update(deliveries).where(deliveries.c.message_id == message_id).values(state=state.value))


def test_a_file_reads_back_with_the_times_it_was_seen_stored_and_processed(
    engine: Engine, clock: Callable[[datetime], None]
) -> None:
    """``postbox files`` shows when a file was first seen, stored and processed, and why it failed last: a
    file that could not be read twice (each run's reason kept, not the first), was stored a run later and
    moved to processed after that."""
    store.record_failure(engine, "olo", "1234567_Tekening.pdf", "failed: permission denied")
    store.record_failure(engine, "odrn", "1234567_Tekening.pdf", "failed: no such file")  # another postbox
    clock(T0 + timedelta(minutes=2))
    store.record_failure(engine, "olo", "1234567_Tekening.pdf", "failed: connection lost")
    row = store.get_file(engine, "olo", "1234567_Tekening.pdf")
    assert row is not None and (row.state, row.detail, row.first_seen_at) == ("failed", "failed: connection lost", T0)
    assert store.get_file(engine, "odrn", "1234567_Tekening.pdf").detail == "failed: no such file"  # type: ignore[union-attr]
    clock(T0 + timedelta(minutes=5))
    stored(engine, "1234567_Tekening.pdf")
    other = stored(engine, "1234567_Foto.jpg")
    # a detail left on a stored row (none of the pickup's paths leaves one today) is cleared on processing
    store.record_failure(engine, "olo", "1234567_Tekening.pdf", "failed: cannot move to processed")
    clock(T0 + timedelta(minutes=9))
    row = store.get_file(engine, "olo", "1234567_Tekening.pdf")
    assert row is not None and row.detail == "failed: cannot move to processed"
    store.mark_processed(engine, row.id)
    clock(T0 + timedelta(hours=1))
    row = store.get_file(engine, "olo", "1234567_Tekening.pdf")
    assert row is not None
    assert (row.aanvraagnummer, row.bestandsnaam, row.state, row.detail) == (
        "1234567",
        "Tekening.pdf",
        "processed",
        None,
    )
    assert row.first_seen_at == T0
    assert row.stored_at == T0 + timedelta(minutes=5)
    assert row.matched_at == row.processed_at == T0 + timedelta(minutes=9)
    assert store.get_file(engine, "olo", "1234567_Foto.jpg") == other  # only that file moved


def test_the_same_name_in_two_postboxes_is_two_files(engine: Engine) -> None:
    a = stored(engine, "1234567_Tekening.pdf", postbox="olo")
    b = stored(engine, "1234567_Tekening.pdf", postbox="odrn", sha256="b" * 64)
    assert a.id != b.id
    assert store.get_file(engine, "odrn", "1234567_Tekening.pdf") == b
    assert store.get_file(engine, "olo", "1234567_Tekening.pdf") == a
    assert store.in_state(engine, "odrn", store.STORED) == [b]
    store.mark_processed(engine, a.id)
    assert store.in_state(engine, "olo", store.PROCESSED) == [store.get_file(engine, "olo", "1234567_Tekening.pdf")]
    assert store.in_state(engine, "olo", store.STORED) == []


def test_list_files_shows_the_newest_first_up_to_the_limit_and_filters_by_state(engine: Engine) -> None:
    rows = [stored(engine, f"1234567_{i}.pdf") for i in range(3)]
    assert store.record_refused(engine, "olo", "../x", "refused: path separator")
    assert not store.record_refused(engine, "olo", "../x", "refused: path separator")  # judged once
    assert [f.remote_name for f in store.list_files(engine, None, 2)] == ["../x", rows[2].remote_name]
    assert store.list_files(engine, store.STORED, 2) == [rows[2], rows[1]]
    assert [f.state for f in store.list_files(engine, store.REFUSED, 10)] == [store.REFUSED]


def test_an_expired_orphan_is_not_found_for_a_late_aanvraag(engine: Engine) -> None:
    """An orphan that expired may have lost its bytes (the file store removes them): an aanvraag that comes
    after that waits for the file to be placed again instead of using it."""
    f = stored(engine, "1234567_Tekening.pdf")
    assert store.expire(engine, f.id, "orphan: no aanvraag 1234567 within 72 h")
    assert store.find_stored(engine, "1234567", ("1234567_Tekening.pdf",)) is None
    g = stored(engine, "1234567_Foto.jpg")
    store.mark_processed(engine, g.id)
    assert store.find_stored(engine, "1234567", ("1234567_Foto.jpg",)) == store.get_file(engine, "olo", g.remote_name)


def test_only_an_accepted_message_of_its_own_aanvraag_adopts_an_orphan(engine: Engine) -> None:
    f = stored(engine, "1234567_Tekening.pdf")
    g = stored(engine, "7654321_Tekening.pdf")
    message(engine, "1234567", accepted=False)  # rejected (Fo03): the loket sends it again, corrected
    message(engine, "5555555")  # another aanvraag
    assert store.orphans(engine) == [f, g]
    message(engine, "1234567")
    assert store.orphans(engine) == [g]


def test_expire_leaves_a_file_whose_message_came_after_the_orphans_were_listed(engine: Engine) -> None:
    """The pickup lists the orphans, then expires them one by one: an aanvraag accepted in between keeps its
    file; a rejected one or one of another aanvraag does not; only the file named expires."""
    f = stored(engine, "1234567_Tekening.pdf")
    g = stored(engine, "7654321_Tekening.pdf")
    h = stored(engine, "2222222_Tekening.pdf")
    assert store.orphans(engine) == [f, g, h]
    message(engine, "7654321", accepted=False)
    message(engine, "5555555")
    message(engine, "1234567")
    assert not store.expire(engine, f.id, "orphan")
    assert store.expire(engine, g.id, "orphan: no aanvraag 7654321 within 72 h")
    assert [(r.remote_name, r.state) for r in store.list_files(engine, None, 10)] == [
        (h.remote_name, store.STORED),
        (g.remote_name, store.EXPIRED),
        (f.remote_name, store.STORED),
    ]
    assert store.get_file(engine, "olo", g.remote_name).detail == "orphan: no aanvraag 7654321 within 72 h"  # type: ignore[union-attr]


def test_expire_touches_only_a_stored_file(engine: Engine) -> None:
    """A name refused (or a file processed) is not an orphan, whatever id the caller passes."""
    store.record_refused(engine, "olo", ".ssh", "refused: dot")
    (refused,) = store.list_files(engine, store.REFUSED, 10)
    assert not store.expire(engine, refused.id, "orphan")
    assert store.get_file(engine, "olo", ".ssh") == refused


def test_a_file_is_delivered_once_its_aanvraags_delivery_is_done(engine: Engine) -> None:
    """The remote file moves to processed only when the document is on the zaak: the delivery that used it
    (checkpoint ``postbus:<bijlageId>``) is done — not while it retries, and not by another aanvraag's."""
    f = stored(engine, "1234567_Tekening.pdf")
    g = stored(engine, "1234567_Foto.jpg")
    mid = message(engine, "1234567")
    checkpoint(engine, mid, "postbus:B0", {"sha256": SHA})  # a checkpoint it cannot read hides no other
    checkpoint(engine, mid, "postbus:B1", {"file_id": f.id, "sha256": SHA, "grootte": 12})
    checkpoint(engine, mid, "postbus:B2", {"file_id": g.id, "sha256": SHA, "grootte": 12})
    delivery_state(engine, mid, DState.RETRY)
    assert store.files_delivered(engine, [f, g]) == set()
    delivery_state(engine, mid, DState.DONE)
    assert store.files_delivered(engine, [f, g]) == {f.id, g.id}
    assert store.files_delivered(engine, []) == set()


def test_deadline_and_age_of_an_unknown_time() -> None:
    assert store.deadline(None, 1) is None
    assert store.deadline(T0.replace(tzinfo=None), 2) == T0 + timedelta(hours=2)  # a naive time is UTC
    assert not store.older_than(None, 1)


def test_content_is_in_use_while_another_file_or_a_checkpoint_names_it(engine: Engine) -> None:
    """An expired orphan's bytes leave the file store only when nothing else needs them: another stored or
    processed file with the same content, or a delivery checkpoint naming it (the document is being made)."""
    f = stored(engine, "1234567_Tekening.pdf")
    assert not store.sha_in_use(engine, SHA, f.id)  # itself does not count
    g = stored(engine, "7654321_Tekening.pdf")
    assert store.sha_in_use(engine, SHA, f.id)
    assert not store.sha_in_use(engine, "c" * 64, f.id)
    assert store.expire(engine, g.id, "orphan")
    assert not store.sha_in_use(engine, SHA, f.id)  # an expired file needs nothing
    store.mark_processed(engine, f.id)
    assert store.sha_in_use(engine, SHA, g.id)
    h = stored(engine, "2222222_Foto.jpg", sha256="d" * 64)
    mid = message(engine, "3333333")
    assert not store.sha_in_use(engine, "d" * 64, h.id)
    checkpoint(engine, mid, "postbus:B1", {"file_id": 99, "sha256": "d" * 64, "grootte": 12})
    assert store.sha_in_use(engine, "d" * 64, h.id)


def test_a_postboxs_failures_count_up_from_one_and_a_success_resets_them(
    engine: Engine, clock: Callable[[datetime], None]
) -> None:
    store.set_status(engine, "olo", "cannot connect")
    store.set_status(engine, "odrn", None)
    assert store.statuses(engine)["olo"] == store.PostboxStatus("olo", None, T0, "cannot connect", 1)
    assert store.statuses(engine)["odrn"] == store.PostboxStatus("odrn", T0, None, None, 0)
    clock(T0 + timedelta(minutes=1))
    store.set_status(engine, "olo", "host key changed")
    assert store.statuses(engine)["olo"] == store.PostboxStatus(
        "olo", None, T0 + timedelta(minutes=1), "host key changed", 2
    )
    clock(T0 + timedelta(minutes=2))
    store.set_status(engine, "olo", None)
    s = store.statuses(engine)["olo"]
    assert (s.last_success_at, s.failures, s.last_error) == (T0 + timedelta(minutes=2), 0, "host key changed")


def delivery(engine: Engine, message_id: int) -> Row[Any]:
    with engine.connect() as conn:
        return conn.execute(deliveries.select().where(deliveries.c.message_id == message_id)).one()


def set_delivery(engine: Engine, message_id: int, state: DState, error: str | None, attempts: int = 4) -> None:
    later = T0 + timedelta(hours=6)
    with engine.begin() as conn:
        conn.execute(
            update(deliveries)
            .where(deliveries.c.message_id == message_id)
            .values(state=state.value, last_error=error, attempts=attempts, next_attempt_at=later, updated_at=T0)
        )


def test_a_new_file_wakes_only_the_deliveries_of_its_aanvraag_that_wait_for_postbus_files(
    engine: Engine, clock: Callable[[datetime], None]
) -> None:
    """A file that comes late is not the delivery's fault: the deliveries of its aanvraag that wait for (or
    gave up on) postbus files run again at once with their attempts reset. A delivery running now, one that
    fails for another reason and another aanvraag's are left alone."""
    waits = message(engine, "1234567")
    gave_up = message(engine, "1234567")
    running = message(engine, "1234567")
    other_reason = message(engine, "1234567")
    other_aanvraag = message(engine, "7654321")
    set_delivery(engine, waits, DState.RETRY, "postbus: waiting for 1 bijlage(n) from the postbus: B1")
    set_delivery(engine, gave_up, DState.NEEDS_ATTENTION, "postbus: 1 bijlage(n) not in the postbus 72 h after")
    set_delivery(engine, running, DState.RUNNING, "postbus: waiting for 1 bijlage(n) from the postbus: B1")
    set_delivery(engine, other_reason, DState.RETRY, "zaaksysteem: 503 Service Unavailable")
    set_delivery(engine, other_aanvraag, DState.DEAD, "postbus: waiting for 1 bijlage(n) from the postbus: B1")
    clock(T0 + timedelta(minutes=30))
    assert store.wake_waiting(engine, "1234567") == 2
    for mid in (waits, gave_up):
        d = delivery(engine, mid)
        assert (d.state, d.attempts) == (DState.RETRY.value, 0)
        assert aware(d.next_attempt_at) == aware(d.updated_at) == T0 + timedelta(minutes=30)
        m = message_store.get_message(engine, mid)
        assert m is not None and (m.state, aware(m.updated_at)) == ("retrying", T0 + timedelta(minutes=30))
    for mid, state in ((running, DState.RUNNING), (other_reason, DState.RETRY), (other_aanvraag, DState.DEAD)):
        d = delivery(engine, mid)
        assert (d.state, d.attempts, aware(d.updated_at)) == (state.value, 4, T0)
        assert message_store.get_message(engine, mid).state == "received"  # type: ignore[union-attr]
    assert store.wake_waiting(engine, "5555555") == 0
    assert [(w[0], w[2]) for w in store.waiting(engine)] == [
        (waits, "retry"),
        (gave_up, "retry"),
        (running, "running"),
        (other_aanvraag, "dead"),
    ]
