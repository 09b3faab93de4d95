"""The upload store (``adapter/store/uploads.py``) on its own: written for the survivors of mutation run 7
(docs/guarantees.md).

The mirror tests drive it through a real sshd with one postbox. These pin what the mirror and the operator rely
on beyond that: an upload belongs to its postbox (the same document, batch or name in two postboxes is two
uploads); a row reads back as planned, with the time it was planned and the time it was done; and the counts
``postbox status`` shows are per postbox and state.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, insert

from adapter.store import postbox as postbus
from adapter.store import uploads as store
from adapter.store.tables import zaak_links
from tests.test_mutation_kills_postbox import checkpoint, message

T0 = datetime(2026, 12, 3, 8, 0, tzinfo=UTC)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Callable[[datetime], None]:
    """Set the upload store's clock."""
    at = {"t": T0}
    monkeypatch.setattr(store, "now", lambda: at["t"])
    return lambda t: at.update(t=t)


def add(engine: Engine, postbox: str, ident: str, **kw: Any) -> store.Upload | None:
    values: dict[str, Any] = {
        "kind": store.FILE,
        "batch": "1234567-41",
        "message_id": 41,
        "remote_name": f"{ident}.pdf",
        "sha256": "a" * 64,
        "size": 12,
    }
    return store.add(engine, postbox=postbox, ident=ident, **(values | kw))


def test_an_upload_reads_back_as_planned_with_when_it_was_planned_and_done(
    engine: Engine, clock: Callable[[datetime], None]
) -> None:
    u = add(engine, "odrn", "doc-1:" + "a" * 64, remote_name="Tekening.pdf")
    assert u is not None
    assert u == store.Upload(
        u.id,
        "odrn",
        "doc-1:" + "a" * 64,
        store.FILE,
        "1234567-41",
        41,
        "Tekening.pdf",
        "a" * 64,
        12,
        store.PENDING,
        0,
        None,
        T0,
        None,
    )
    assert store.get(engine, u.id) == u
    assert store.get(engine, u.id + 1) is None
    clock(T0 + timedelta(minutes=1))
    store.mark(engine, u.id, store.UPLOADING, None, attempt=True)
    store.mark(engine, u.id, store.FAILED, "permission denied")
    got = store.get(engine, u.id)
    assert got is not None and (got.state, got.attempts, got.detail, got.done_at) == (
        store.FAILED,
        1,
        "permission denied",
        None,
    )
    clock(T0 + timedelta(minutes=2))
    store.mark(engine, u.id, store.UPLOADING, got.detail, attempt=True)
    clock(T0 + timedelta(minutes=3))
    store.mark(engine, u.id, store.DONE)
    got = store.get(engine, u.id)
    assert got is not None
    assert (got.state, got.attempts, got.detail) == (store.DONE, 2, None)
    assert (got.created_at, got.done_at) == (T0, T0 + timedelta(minutes=3))


def test_an_upload_belongs_to_its_postbox(engine: Engine) -> None:
    """The same document in the same batch for two adviseurs' postboxes is two uploads, each found, listed
    and counted on its own; within one postbox, its ident or its remote name is taken once."""
    a = add(engine, "odrn", "doc-1")
    b = add(engine, "welstand", "doc-1")
    assert a is not None and b is not None and a.id != b.id
    assert add(engine, "odrn", "doc-1", remote_name="other.pdf") is None  # planned twice: nothing added
    assert add(engine, "odrn", "doc-2", remote_name="doc-1.pdf") is None  # two files never under one name
    assert store.by_ident(engine, "welstand", "doc-1") == b
    assert store.by_ident(engine, "odrn", "doc-1") == a
    assert store.name_taken(engine, "welstand", "doc-1.pdf")
    assert not store.name_taken(engine, "vrr", "doc-1.pdf")
    assert store.batch_rows(engine, "welstand", "1234567-41") == [b]
    store.mark(engine, a.id, store.DONE)
    assert store.to_do(engine, "odrn") == []
    assert store.to_do(engine, "welstand") == [b]
    assert store.counts(engine) == {"odrn": {store.DONE: 1}, "welstand": {store.PENDING: 1}}
    c = add(engine, "welstand", "doc-3")
    assert store.counts(engine) == {"odrn": {store.DONE: 1}, "welstand": {store.PENDING: 2}}
    d = add(engine, "odrn", "doc-4")
    assert d is not None
    assert store.counts(engine) == {"odrn": {store.DONE: 1, store.PENDING: 1}, "welstand": {store.PENDING: 2}}
    assert store.list_uploads(engine, None, 2) == [d, c]
    assert store.list_uploads(engine, store.DONE, 10) == [store.get(engine, a.id)]


def test_a_manifests_content_is_set_until_it_is_uploaded(engine: Engine) -> None:
    m = add(engine, "odrn", "manifest:1234567-41", kind=store.MANIFEST, sha256=None, size=None)
    other = add(engine, "odrn", "manifest:7654321-42", kind=store.MANIFEST, sha256=None, size=None, batch="b2")
    assert m is not None and other is not None
    store.set_content(engine, m.id, "b" * 64, 300)
    assert store.get(engine, other.id) == other  # only the manifest named
    store.mark(engine, m.id, store.DONE)
    store.set_content(engine, m.id, "c" * 64, 400)  # a late rebuild does not change what was uploaded
    got = store.get(engine, m.id)
    assert got is not None and (got.sha256, got.size) == ("b" * 64, 300)


def test_content_is_needed_while_anything_but_the_upload_itself_may_still_read_it(engine: Engine) -> None:
    """After an upload the mirror removes its bytes from the file store unless another upload not done yet, a
    postbus file or a delivery checkpoint still names them."""
    u = add(engine, "odrn", "doc-1", sha256="a" * 64)
    assert u is not None
    assert not store.sha_needed(engine, "a" * 64, u.id)  # itself does not count
    v = add(engine, "welstand", "doc-1", sha256="a" * 64)
    assert v is not None
    assert store.sha_needed(engine, "a" * 64, u.id)
    assert not store.sha_needed(engine, "f" * 64, u.id)
    store.mark(engine, v.id, store.DONE)
    assert not store.sha_needed(engine, "a" * 64, u.id)  # uploaded already
    postbus.record_stored(engine, "olo", "1234567_Tekening.pdf", "1234567", "Tekening.pdf", "a" * 64, 12)
    assert store.sha_needed(engine, "a" * 64, u.id)
    w = add(engine, "odrn", "doc-2", sha256="d" * 64)
    assert w is not None and not store.sha_needed(engine, "d" * 64, w.id)
    checkpoint(engine, message(engine, "3333333"), "werkmap:document:D1", {"sha256": "d" * 64, "grootte": 12})
    assert store.sha_needed(engine, "d" * 64, w.id)


def test_the_zaaktypen_of_a_verzoek_are_those_of_its_zaken_at_that_target(engine: Engine) -> None:
    """A mirror rule by zaaktype also matches a follow-up (its opdracht makes no zaak): by the zaken the
    verzoek's earlier deliveries made at the same target."""
    with engine.begin() as conn:
        for target, nummer, zaaktype in [
            ("zgw", "1234567", "https://catalogi/zaaktypen/omgevingsvergunning"),
            ("zgw", "1234567", "https://catalogi/zaaktypen/melding"),
            ("zgw", "7654321", "https://catalogi/zaaktypen/sloop"),
            ("zds", "1234567", "B1026"),
        ]:
            conn.execute(
                insert(zaak_links).values(
                    target=target, nummer=nummer, zaaktype=zaaktype, zaak_url=f"{target}/{zaaktype}", created_at=T0
                )
            )
    assert store.zaaktypen(engine, "zgw", "1234567") == {
        "https://catalogi/zaaktypen/omgevingsvergunning",
        "https://catalogi/zaaktypen/melding",
    }
    assert store.zaaktypen(engine, "zds", "1234567") == {"B1026"}
    assert store.zaaktypen(engine, "zds", "7654321") == set()
