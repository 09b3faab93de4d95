"""Notifications cannot shadow verzoeken (issue 8, item 2).

A verzoeknotificatie is a hint; the werkmap is the truth. A forged notification for a future verzoeknummer
is fetched, refused by the werkmap (404/403) and kept as ``hint-refused`` with its reason, and then gives its
duplicate key to the real notification or the werkmap-poll, which deliver the verzoek once. A notification
for a verzoek of two foreign OINs is refused with 400. Refused hints expire (``[jobs] refused_hint_days``).
Everything runs on SQLite and on PostgreSQL (``LOKET_TEST_DATABASE_URL``).
"""

from __future__ import annotations

import re
import shlex
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import structlog
from sqlalchemy import create_engine, text

from adapter.config import load_settings
from adapter.inbound.stam import StamChannel, not_ours
from adapter.loket import stam
from adapter.services import Services, open_services
from adapter.store import messages as message_store
from adapter.store import outbox
from adapter.store.db import upgrade
from adapter.store.tables import messages
from tests.conftest import ROOT, drop_database, new_database_url, write_config
from tests.delivery_env import Zaaksysteem, cli, copy_mappings, delivery_toml, needs_zgw_specs, wait_for
from tests.test_stam_e2e import STAM, adapter, post_notificatie, states, werkmap_toml

pytestmark = needs_zgw_specs
OIN = "00000001002564440000"  # ours: the stuf ontvanger and the werkmap oin of every test config
FOREIGN = "00000001823288444000"
OTHER_FOREIGN = "00000001003214345000"
REAL = "2026112300123"  # verzoek-initieren.xml


def notificatie(
    nummer: str, *, bg: str = OIN, ui: str | None = None, tijdstip: str = "2026-12-01T03:00:00+01:00"
) -> bytes:
    """A schema-valid verzoeknotificatie as anyone could post it (the forger included)."""
    ns = stam.VERZOEKNOTIFICATIE
    uitvoerend = f"<vn:uitvoerendeInstantie><vn:oin>{ui}</vn:oin></vn:uitvoerendeInstantie>" if ui else ""
    return (
        f'<vn:verzoeknotificatie xmlns:vn="{ns}"><vn:verzoeknummer>{nummer}</vn:verzoeknummer>'
        "<vn:volgnummer>1</vn:volgnummer><vn:doel>Initiëren</vn:doel>"
        f"<vn:bevoegdGezag><vn:oin>{bg}</vn:oin></vn:bevoegdGezag>{uitvoerend}"
        f"<vn:tijdstipNotificatie>{tijdstip}</vn:tijdstipNotificatie></vn:verzoeknotificatie>"
    ).encode()


def sql(url: str, query: str, **params: object) -> list[Any]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(text(query), params).all())
    finally:
        engine.dispose()


def key_holders(url: str, nummer: str) -> list[tuple[int, str]]:
    """(message id, state) of the messages of this verzoek that hold a duplicate key."""
    rows = sql(url, "SELECT id, state FROM messages WHERE nummer = :n AND dedup_key IS NOT NULL", n=nummer)
    return [(r.id, r.state) for r in rows]


def zaken(zs: Zaaksysteem, nummer: str) -> int:
    return sum(1 for z in zs.fake.zaken if z["identificatie"] == f"OLO-{nummer}")  # type: ignore[attr-defined]


def readme_commands(marker: str) -> list[list[str]]:
    """The README's ``loket-adapter`` lines that contain ``marker``, as argument lists (comments cut)."""
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    found = [line.split("  #")[0].strip() for line in lines if line.startswith(".venv/bin/loket-adapter ")]
    commands = [shlex.split(c)[1:] for c in found if marker in c]
    assert commands, f"README shows no loket-adapter command with {marker!r}"
    return commands


# -- through serve: forged hint, then the real verzoek by notification or by poll ------------------------------


def test_forged_notification_then_the_real_one_delivers_the_verzoek_once(
    tmp_path: Path, zs: Zaaksysteem, werkmap: tuple[Any, str]
) -> None:
    fake, url = werkmap
    srv = adapter(tmp_path, zs, url)
    srv.start()
    try:
        forged = post_notificatie(srv, notificatie(REAL))  # the verzoek is not in the werkmap yet: 404
        assert forged.status_code == 202 and forged.json()["duplicate"] is False
        hint = forged.json()["id"]
        wait_for(lambda: states(srv) == {"hint-refused": 1}, timeout=30, what="the forged hint to be refused")
        for args in readme_commands("--state hint-refused"):  # as the README shows it
            listed = cli(srv, *args)
            assert listed.returncode == 0, listed.stderr
            assert re.search(rf"^\s*{hint}\s.*hint-refused\s.*{REAL}", listed.stdout, re.M), listed.stdout
        shown = cli(srv, "messages", "show", str(hint)).stdout
        assert "hint-refused" in shown and "HTTP 404" in shown and "does not confirm verzoek" in shown, shown

        fake.add_verzoek((STAM / "verzoek-initieren.xml").read_bytes())  # the real verzoek appears ...
        real = post_notificatie(srv, fake.notificatie(REAL))  # ... and is notified: not a duplicate
        assert real.status_code == 202 and real.json()["duplicate"] is False, real.text
        wait_for(lambda: states(srv) == {"hint-refused": 1, "done": 1}, timeout=60, what="the real delivery")
        assert zaken(zs, REAL) == 1
        assert key_holders(srv.db_url, REAL) == [(real.json()["id"], "delivered")]

        again = post_notificatie(srv, fake.notificatie(REAL))  # genuine resend: the same 202, duplicate
        assert again.json() == {"status": "accepted", "id": real.json()["id"], "duplicate": True}
        forged_again = post_notificatie(srv, notificatie(REAL))  # now a duplicate of the delivered verzoek
        assert forged_again.status_code == 202 and forged_again.json()["id"] == real.json()["id"]
        resent = cli(srv, "messages", "resend", str(hint))  # the refused hint may not deliver it a 2nd time
        assert resent.returncode == 1 and f"message {hint}: hint-refused: a later notification" in resent.stdout
        time.sleep(0.5)
        assert zaken(zs, REAL) == 1 and len(zs.fake.zaken) == 1  # type: ignore[attr-defined]
        assert sql(srv.db_url, "SELECT count(*) FROM messages")[0][0] == 2  # nothing stored for the resends
    finally:
        srv.stop()
        drop_database(srv.db_url)


def test_forged_notification_then_the_poll_delivers_the_verzoek_once_and_the_hint_expires(
    tmp_path: Path, zs: Zaaksysteem, werkmap: tuple[Any, str]
) -> None:
    fake, url = werkmap
    nummer = "9000000000001"  # the next verzoeknummer the fake hands out: predictable, as in the attack
    fake.fail_next("/verzoekreferenties", status=403)  # this time the werkmap says "not yours"
    srv = adapter(tmp_path, zs, url)
    srv.start()
    try:
        assert post_notificatie(srv, notificatie(nummer)).status_code == 202
        wait_for(lambda: states(srv) == {"hint-refused": 1}, timeout=30, what="the forged hint to be refused")
        assert "HTTP 403" in sql(srv.db_url, "SELECT error_text FROM messages")[0][0]
        assert fake.generate_verzoeken(1, start=datetime.now(UTC) - timedelta(hours=1)) == [nummer]

        run = cli(srv, "jobs", "run", "werkmap-poll")
        assert run.returncode == 0 and "1 verzoeken" in run.stdout and "1 new" in run.stdout, run.stdout + run.stderr
        assert "expired" not in run.stdout  # 30 days by default: the hint stays
        wait_for(lambda: states(srv) == {"hint-refused": 1, "done": 1}, timeout=60, what="the polled delivery")
        again = cli(srv, "jobs", "run", "werkmap-poll")
        assert "0 new" in again.stdout, again.stdout
        assert zaken(zs, nummer) == 1 and len(zs.fake.zaken) == 1  # type: ignore[attr-defined]
        assert [s for _, s in key_holders(srv.db_url, nummer)] == ["delivered"]

        srv.config.write_text(srv.config.read_text().replace("[jobs]\n", "[jobs]\nrefused_hint_days = 0.00001\n"))
        time.sleep(1.0)  # 0.00001 days = 0.864 s
        expired = cli(srv, "jobs", "run", "werkmap-poll")
        assert expired.returncode == 0 and "1 refused hints expired" in expired.stdout, expired.stdout
        assert cli(srv, "messages", "list", "--state", "hint-refused").stdout.count("\n") == 1  # header only
        assert sql(srv.db_url, "SELECT state FROM messages") == [("delivered",)]
        assert sql(srv.db_url, "SELECT state FROM deliveries") == [("done",)]
    finally:
        srv.stop()
        drop_database(srv.db_url)


def test_notification_racing_the_poll_after_a_refused_hint_delivers_once(
    tmp_path: Path, zs: Zaaksysteem, werkmap: tuple[Any, str]
) -> None:
    """Eight copies of the real notification and a poll (another process) at once take the refused hint's key:
    exactly one of them is stored, and the verzoek becomes one zaak."""
    fake, url = werkmap
    nummer = "9000000000001"
    srv = adapter(tmp_path, zs, url)
    srv.start()
    try:
        assert post_notificatie(srv, notificatie(nummer)).status_code == 202
        wait_for(lambda: states(srv) == {"hint-refused": 1}, timeout=30, what="the forged hint to be refused")
        fake.generate_verzoeken(1, start=datetime.now(UTC) - timedelta(hours=1))
        answers: list[httpx.Response] = []
        polls: list[str] = []
        go = threading.Barrier(9)

        def notify() -> None:
            go.wait()
            answers.append(post_notificatie(srv, fake.notificatie(nummer)))

        def poll() -> None:
            go.wait()
            polls.append(cli(srv, "jobs", "run", "werkmap-poll").stdout)

        threads = [threading.Thread(target=notify) for _ in range(8)] + [threading.Thread(target=poll)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert len(answers) == 8 and all(a.status_code == 202 for a in answers)
        stored = [a for a in answers if not a.json()["duplicate"]] + (["poll"] if "1 new" in polls[0] else [])
        assert len(stored) == 1, (polls, [a.json() for a in answers])
        assert len({a.json()["id"] for a in answers}) == 1  # every answer names the one message that holds it
        wait_for(lambda: states(srv) == {"hint-refused": 1, "done": 1}, timeout=60, what="one delivery")
        assert zaken(zs, nummer) == 1 and len(key_holders(srv.db_url, nummer)) == 1
    finally:
        srv.stop()
        drop_database(srv.db_url)


def test_notification_for_a_verzoek_of_two_foreign_oins_is_refused_with_400(
    tmp_path: Path, zs: Zaaksysteem, werkmap: tuple[Any, str]
) -> None:
    _, url = werkmap
    srv = adapter(tmp_path, zs, url)
    srv.start()
    try:
        r = post_notificatie(srv, notificatie("2026120100001", bg=FOREIGN, ui=OTHER_FOREIGN))
        assert r.status_code == 400 and r.headers["content-type"].startswith("application/problem+json")
        body = r.json()
        assert body["title"] == "Verzoeknotificatie not for us"
        assert FOREIGN in body["detail"] and OTHER_FOREIGN in body["detail"] and "our OINs" in body["detail"]
        assert sql(srv.db_url, "SELECT state, error_code FROM messages") == [("rejected", "400")]
        assert states(srv) == {}  # nothing to fetch, nothing delivered
        assert (
            post_notificatie(srv, notificatie("2026120100002", bg=FOREIGN, ui=OIN)).status_code == 202
        )  # behandeldienst
    finally:
        srv.stop()
        drop_database(srv.db_url)


# -- in-process: which OINs are ours, and the hand-over of the key step by step -----------------------------


def test_ours_is_the_bevoegd_gezag_or_the_uitvoerende_instantie_among_ontvangers_and_werkmap_oin(
    tmp_path: Path,
) -> None:
    toml = f'[werkmap]\nbase_url = "http://127.0.0.1:9"\noin = "{OTHER_FOREIGN}"\n'
    settings = load_settings(write_config(tmp_path / "c.toml", "sqlite:///x.db", 8999, toml))
    own = settings.own_oins()
    assert own == {OIN, OTHER_FOREIGN}  # the stuf ontvanger and the werkmap identity

    def read(bg: str, ui: str | None) -> stam.Notificatie:
        from lxml import etree

        return stam.read_notificatie(etree.fromstring(notificatie("1", bg=bg, ui=ui)))

    assert not_ours(read(OIN, None), own) is None
    assert not_ours(read(OIN, FOREIGN), own) is None  # a kopiebericht: ours to store
    assert not_ours(read(FOREIGN, OIN), own) is None  # we are the behandeldienst
    assert not_ours(read(FOREIGN, OTHER_FOREIGN), own) is None  # the werkmap oin counts as ours
    assert "no uitvoerendeInstantie is named" in (not_ours(read(FOREIGN, None), own) or "")
    both = not_ours(read(FOREIGN, "00000001999999999000"), own) or ""
    assert both.startswith(f"neither bevoegdGezag/oin {FOREIGN} nor uitvoerendeInstantie/oin 00000001999999999000")


@pytest.fixture
def stam_services(tmp_path: Path, zs: Zaaksysteem, werkmap: tuple[Any, str]) -> Iterator[tuple[Services, Any]]:
    """Store, outbox (no worker threads: the test runs each delivery), ZGW target and werkmap, in-process."""
    fake, url = werkmap
    db_url = new_database_url(tmp_path)
    toml = delivery_toml(zs, copy_mappings(tmp_path), workers=0) + werkmap_toml(url)
    sv = open_services(load_settings(write_config(tmp_path / "config.toml", db_url, 8999, toml)))
    upgrade(sv.engine)
    yield sv, fake
    sv.close()
    drop_database(db_url)


def test_the_key_stays_with_a_pending_hint_and_goes_to_the_next_once_refused(
    stam_services: tuple[Services, Any], zs: Zaaksysteem
) -> None:
    sv, fake = stam_services
    assert sv.outbox is not None
    channel = StamChannel(sv.settings, sv.writer, sv.schemas)
    first = channel.receive(notificatie(REAL), "c1")
    resend = channel.receive(notificatie(REAL), "c2")  # identical, while the first is pending: duplicate
    assert resend.body == {"status": "accepted", "id": first.body["id"], "duplicate": True}
    [report] = sv.outbox.work_once()
    assert report.state == "hint-refused" and "holds no duplicate key" in report.detail
    second = channel.receive(notificatie(REAL), "c3")  # the same forged hint again: stored, fetched again
    assert second.body["duplicate"] is False and second.body["id"] != first.body["id"]
    assert sv.outbox.work_once()[0].state == "hint-refused"
    row = message_store.get_message(sv.engine, int(first.body["id"]))
    assert row is not None and row.state == "hint-refused" and "HTTP 404" in (row.error_text or "")

    # a resend of a refused hint that is confirmed first keeps the key: the real notification is a duplicate
    fake.add_verzoek((STAM / "verzoek-initieren.xml").read_bytes())
    [resent] = sv.outbox.resend([int(second.body["id"])])
    assert not isinstance(resent, str) and resent.state == "done", resent
    real = channel.receive(fake.notificatie(REAL), "c4")
    assert real.body == {"status": "accepted", "id": second.body["id"], "duplicate": True}
    assert sv.outbox.resend([int(first.body["id"])])[0].state == "hint-refused"  # type: ignore[union-attr]
    assert zaken(zs, REAL) == 1


def test_a_resend_of_a_refused_hint_overtaken_by_the_real_notification_does_not_deliver(
    stam_services: tuple[Services, Any], zs: Zaaksysteem
) -> None:
    """The resend claims the hint, the real notification takes the key while it runs, the resend's
    confirmation then fails: the verzoek is delivered once, by the real notification."""
    sv, fake = stam_services
    assert sv.outbox is not None
    channel = StamChannel(sv.settings, sv.writer, sv.schemas)
    hint = int(channel.receive(notificatie(REAL), "c1").body["id"])
    assert sv.outbox.work_once()[0].state == "hint-refused"
    fake.add_verzoek((STAM / "verzoek-initieren.xml").read_bytes())
    [delivery_id] = outbox.deliveries_for_messages(sv.engine, [hint]).values()
    [claimed] = outbox.claim_ids(sv.engine, [delivery_id], "operator", timedelta(seconds=30))  # resend begins
    real = channel.receive(fake.notificatie(REAL), "c2")  # meanwhile the real notification arrives
    assert real.body["duplicate"] is False
    report = sv.outbox.run(claimed)  # the resend fetched the verzoek, but no longer holds the key
    assert report.state == "hint-refused" and "took over this refused hint's duplicate key" in report.detail
    assert [r.state for r in sv.outbox.work_once()] == ["done"]
    assert zaken(zs, REAL) == 1 and len(zs.fake.zaken) == 1  # type: ignore[attr-defined]
    assert message_store.get_message(sv.engine, hint).state == "hint-refused"  # type: ignore[union-attr]


def test_a_refusal_after_the_werkmap_confirmed_the_verzoek_is_no_refused_hint(
    stam_services: tuple[Services, Any],
) -> None:
    """Only the referenties decide: a 404 on a document is the werkmap's fault, and the key stays."""
    sv, fake = stam_services
    assert sv.outbox is not None
    fake.add_verzoek((STAM / "verzoek-initieren.xml").read_bytes())
    fake.fail_next("/documenten/" + first_document_id(), status=404)
    channel = StamChannel(sv.settings, sv.writer, sv.schemas)
    first = channel.receive(fake.notificatie(REAL), "c1")
    assert sv.outbox.work_once()[0].state == "needs-attention"
    again = channel.receive(fake.notificatie(REAL), "c2")
    assert again.body == {"status": "accepted", "id": first.body["id"], "duplicate": True}


def first_document_id() -> str:
    from lxml import etree

    root = etree.parse(str(STAM / "verzoek-initieren.xml")).getroot()
    return next(el.text or "" for el in root.iter(f"{{{stam.VERZOEK}}}documentId"))


def test_a_refused_hint_being_resent_does_not_expire(stam_services: tuple[Services, Any]) -> None:
    sv, _ = stam_services
    assert sv.outbox is not None
    channel = StamChannel(sv.settings, sv.writer, sv.schemas)
    running = int(channel.receive(notificatie(REAL), "c1").body["id"])
    old = int(channel.receive(notificatie("2026112300999"), "c2").body["id"])
    assert [r.state for r in sv.outbox.work_once(limit=2)] == ["hint-refused", "hint-refused"]
    later = datetime.now(UTC) + timedelta(minutes=1)
    [delivery_id] = outbox.deliveries_for_messages(sv.engine, [running]).values()
    assert outbox.claim_ids(sv.engine, [delivery_id], "operator", timedelta(seconds=30))
    assert message_store.expire_refused_hints(sv.engine, datetime.now(UTC) - timedelta(minutes=1)) == []  # young
    assert message_store.expire_refused_hints(sv.engine, later) == [old]  # the running one stays
    assert message_store.get_message(sv.engine, old) is None
    assert message_store.get_message(sv.engine, running) is not None


def test_an_old_refused_hint_expires_with_its_delivery_and_a_new_notification_says_whose_key_it_took(
    stam_services: tuple[Services, Any],
) -> None:
    """The refused hint whose key a new notification takes is named in the log (the operator's trace from
    the stored forgery to its replacement); a refused hint older than the cut-off expires with its delivery
    rows, a younger one stays."""
    sv, _ = stam_services
    assert sv.outbox is not None
    channel = StamChannel(sv.settings, sv.writer, sv.schemas)
    first = int(channel.receive(notificatie(REAL), "c1").body["id"])
    assert sv.outbox.work_once()[0].state == "hint-refused"
    with structlog.testing.capture_logs() as logs:
        second = int(channel.receive(notificatie(REAL), "c2").body["id"])
    [took] = [e for e in logs if e["event"] == "verzoeknotificatie takes the place of a refused hint"]
    assert (took["refused_hint"], took["message_id"]) == (first, second)

    assert sv.outbox.work_once()[0].state == "hint-refused"
    later = datetime.now(UTC) + timedelta(minutes=1)
    with sv.engine.begin() as conn:  # the second refused after the cut-off: only the first is old enough
        conn.execute(
            messages.update().where(messages.c.id == second),
            {"updated_at": later + timedelta(hours=1)},
        )
    assert message_store.expire_refused_hints(sv.engine, later) == [first]
    assert message_store.get_message(sv.engine, first) is None
    assert outbox.deliveries_for_messages(sv.engine, [first]) == {}


def test_a_confirmed_resend_keeps_the_key_against_a_notification_arriving_while_it_delivers(
    stam_services: tuple[Services, Any],
) -> None:
    """The other order of the race above: the resend's confirmation commits first, so the real notification
    that comes while the resend still delivers is a duplicate and stores nothing."""
    sv, _ = stam_services
    assert sv.outbox is not None
    channel = StamChannel(sv.settings, sv.writer, sv.schemas)
    hint = int(channel.receive(notificatie(REAL), "c1").body["id"])
    assert sv.outbox.work_once()[0].state == "hint-refused"
    assert message_store.confirm_hint(sv.engine, hint)  # what the resend does once the werkmap confirmed
    row = message_store.get_message(sv.engine, hint)
    assert row is not None and row.state == "received"
    real = channel.receive(notificatie(REAL, tijdstip="2026-12-01T04:00:00+01:00"), "c2")
    assert real.body == {"status": "accepted", "id": hint, "duplicate": True}
    assert sql_count(sv, "SELECT count(*) FROM messages") == 1


def sql_count(sv: Services, query: str) -> int:
    with sv.engine.connect() as conn:
        return int(conn.execute(text(query)).scalar_one())


def test_a_hint_confirmed_between_the_look_and_the_takeover_keeps_its_key(
    stam_services: tuple[Services, Any],
) -> None:
    """``accept`` reads the holder, then takes its key with a conditional UPDATE. A resend's confirmation
    committed in between (made here on the same transaction, right before the UPDATE runs) wins: the UPDATE
    re-checks the state and changes nothing, and the new notification is a duplicate."""
    from sqlalchemy import event

    sv, _ = stam_services
    assert sv.outbox is not None
    channel = StamChannel(sv.settings, sv.writer, sv.schemas)
    hint = int(channel.receive(notificatie(REAL), "c1").body["id"])
    assert sv.outbox.work_once()[0].state == "hint-refused"
    placeholder = "%s" if sv.engine.dialect.name == "postgresql" else "?"
    fired: list[str] = []

    def confirm_just_before(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().upper().startswith("UPDATE MESSAGES SET DEDUP_KEY") and not fired:
            fired.append(statement)
            cursor.execute(f"UPDATE messages SET state = 'received' WHERE id = {placeholder}", (hint,))

    event.listen(sv.engine, "before_cursor_execute", confirm_just_before)
    try:
        real = channel.receive(notificatie(REAL, tijdstip="2026-12-01T04:00:00+01:00"), "c2")
    finally:
        event.remove(sv.engine, "before_cursor_execute", confirm_just_before)
    assert fired, "the takeover UPDATE did not run"
    assert real.body == {"status": "accepted", "id": hint, "duplicate": True}
    assert sql_count(sv, "SELECT count(*) FROM messages WHERE dedup_key IS NOT NULL") == 1


def test_a_holder_that_expires_between_the_insert_and_the_look_leaves_the_key_to_the_new_notification(
    stam_services: tuple[Services, Any],
) -> None:
    """The insert meets the refused hint's key, and the hint expires before ``accept`` looks at it (deleted
    here on the same transaction, as a committed expiry would be seen): the notification is stored anew."""
    from sqlalchemy import event

    sv, _ = stam_services
    assert sv.outbox is not None
    channel = StamChannel(sv.settings, sv.writer, sv.schemas)
    hint = int(channel.receive(notificatie(REAL), "c1").body["id"])
    assert sv.outbox.work_once()[0].state == "hint-refused"
    p = "%s" if sv.engine.dialect.name == "postgresql" else "?"
    fired: list[str] = []

    def expire_just_before(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        if "FROM messages" in statement and "dedup_key =" in statement and not fired:
            fired.append(statement)
            for table, column in [("delivery_attempts", "delivery_id"), ("delivery_steps", "delivery_id")]:
                cursor.execute(
                    f"DELETE FROM {table} WHERE {column} IN (SELECT id FROM deliveries WHERE message_id = {p})",
                    (hint,),
                )
            cursor.execute(f"DELETE FROM deliveries WHERE message_id = {p}", (hint,))
            cursor.execute(f"DELETE FROM messages WHERE id = {p}", (hint,))

    event.listen(sv.engine, "before_cursor_execute", expire_just_before)
    try:
        real = channel.receive(notificatie(REAL, tijdstip="2026-12-01T04:00:00+01:00"), "c2")
    finally:
        event.remove(sv.engine, "before_cursor_execute", expire_just_before)
    assert fired, "accept did not look for the holder"
    assert real.status == 202 and real.body["duplicate"] is False  # (SQLite may give the freed id again)
    stored = message_store.get_message(sv.engine, int(real.body["id"]))
    assert stored is not None and stored.correlation_id == "c2" and stored.state == "received"
    assert sql_count(sv, "SELECT count(*) FROM messages WHERE dedup_key IS NOT NULL") == 1


def test_the_poll_expires_only_refused_hints_older_than_refused_hint_days(stam_services: tuple[Services, Any]) -> None:
    """In-process, the poll's housekeeping: a hint refused just now stays (the operator can still see the
    forgery); once it is older than ``[jobs] refused_hint_days`` the next poll removes it."""
    from adapter.jobs.werkmap_poll import poll

    sv, _ = stam_services
    assert sv.outbox is not None
    hint = int(StamChannel(sv.settings, sv.writer, sv.schemas).receive(notificatie(REAL), "c1").body["id"])
    assert sv.outbox.work_once()[0].state == "hint-refused"
    assert "refused hints expired" not in poll(sv).detail
    assert message_store.get_message(sv.engine, hint) is not None
    days = sv.settings.jobs.refused_hint_days
    with sv.engine.begin() as conn:
        old = datetime.now(UTC) - timedelta(days=days, minutes=5)
        conn.execute(messages.update().where(messages.c.id == hint), {"updated_at": old})
    assert poll(sv).detail.endswith(", 1 refused hints expired")
    assert message_store.get_message(sv.engine, hint) is None
