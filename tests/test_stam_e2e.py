"""STAM end to end over HTTP: verzoeknotificatie → adapter fetches the verzoek and its documents from the
(fake) werkmap → zaak with all documents in the (fake, OpenAPI-validating) ZGW zaaksysteem; the werkmap
poll as safety net; werkmap failures retried and visible; one poll per interval across processes."""

from __future__ import annotations

import itertools
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text

from tests.conftest import FIXTURES, Server, drop_database, make_server, new_database_url, write_config
from tests.delivery_env import (
    Zaaksysteem,
    cli,
    copy_mappings,
    delivery_toml,
    needs_zgw_specs,
    wait_for,
)

pytestmark = needs_zgw_specs
OIN = "00000001002564440000"
STAM = FIXTURES / "stam"


def werkmap_toml(base_url: str, *, poll_minutes: float = 60, jobs: bool = False, extra: str = "") -> str:
    return f"""
[werkmap]
base_url = "{base_url}"
oin = "{OIN}"
timeout = 2
retries = 1
backoff_initial = 0.05
backoff_max = 0.1
{extra}

[jobs]
enabled = {"true" if jobs else "false"}
werkmap_poll_minutes = {poll_minutes}
werkmap_poll_lookback_days = 7
"""


def adapter(tmp_path: Path, zs: Zaaksysteem, werkmap_url: str, **kw: object) -> Server:
    toml = delivery_toml(zs, copy_mappings(tmp_path)) + werkmap_toml(werkmap_url, **kw)  # type: ignore[arg-type]
    return make_server(tmp_path, extra_toml=toml)


def post_notificatie(srv: Server, xml: bytes) -> httpx.Response:
    return httpx.post(f"{srv.url}/stam/verzoeknotificatie", content=xml, headers={"Content-Type": "application/xml"})


def states(srv: Server) -> dict[str, int]:
    engine = create_engine(srv.db_url)
    with engine.connect() as conn:
        out = dict(conn.execute(text("SELECT state, count(*) FROM deliveries GROUP BY state")).all())
    engine.dispose()
    return out


def all_settled(srv: Server, n: int) -> bool:
    s = states(srv)
    return sum(s.values()) == n and set(s) <= {"done", "dead"}


def test_notification_to_zaak_for_every_doel_and_a_kopiebericht(tmp_path: Path, zs: Zaaksysteem, werkmap) -> None:  # type: ignore[no-untyped-def]
    fake, url = werkmap
    for name in ("initieren", "aanvullen", "intrekken", "conceptverzoek", "kopiebericht"):
        fake.add_verzoek((STAM / f"verzoek-{name}.xml").read_bytes())
    srv = adapter(tmp_path, zs, url)
    srv.start()
    try:
        for name in ("initieren", "aanvullen", "intrekken", "conceptverzoek", "kopiebericht"):
            r = post_notificatie(srv, (STAM / f"verzoeknotificatie-{name}.xml").read_bytes())
            assert r.status_code == 202, r.text
        again = post_notificatie(srv, (STAM / "verzoeknotificatie-initieren.xml").read_bytes())
        assert again.status_code == 202 and again.json()["duplicate"] is True
        wait_for(lambda: all_settled(srv, 5), timeout=60, what="five deliveries")
        assert states(srv) == {"done": 5}
        zaken = zs.fake.zaken  # type: ignore[attr-defined]
        assert sorted(z["identificatie"] for z in zaken) == sorted(
            ["OLO-2026112300123", "OLO-" + concept_nummer()]
        )  # the Initiëren zaak and the Conceptverzoek zaak; none for the kopiebericht
        hoofdzaak = next(z for z in zaken if z["identificatie"] == "OLO-2026112300123")
        docs = [d for d in zs.fake.documenten]  # type: ignore[attr-defined]
        on_zaak = {
            z["informatieobject"]
            for z in zs.fake.zaakinformatieobjecten
            if z["zaak"] == hoofdzaak["url"]  # type: ignore[attr-defined]
        }
        initieren_docs = sorted(set(documents_of("initieren") + documents_of("aanvullen")))  # STAM lists all so far
        assert len(on_zaak) == len(initieren_docs) + 2  # + the verzoek PDF of the Initiëren and of the aanvulling
        for d in docs:
            if d["url"] in on_zaak and "-pdf-" not in d["identificatie"]:  # the PDFs: tests/test_stam_lenient.py
                doc_id = next(i for i in initieren_docs if d["identificatie"].endswith(i))
                assert d["bytes"] is not None and fake.document_sha256(doc_id) == sha(d["bytes"])
        statussen = [s for s in zs.fake.statussen if s["zaak"] == hoofdzaak["url"]]  # type: ignore[attr-defined]
        assert len(statussen) == 2  # start, then ingetrokken
        shown = cli(srv, "messages", "list", "--type", "verzoeknotificatie")
        assert shown.stdout.count("delivered") == 5
        kopie = cli(srv, "messages", "list", "--nummer", nummer_of("kopiebericht"))
        kid = kopie.stdout.splitlines()[1].split()[0]
        assert "kopiebericht" in cli(srv, "messages", "show", kid).stdout
    finally:
        srv.stop()
        drop_database(srv.db_url)


def sha(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


def nummer_of(name: str) -> str:
    from lxml import etree

    from adapter.loket import stam

    return stam.verzoeknummer_of(etree.parse(str(STAM / f"verzoek-{name}.xml")).getroot()) or ""


def concept_nummer() -> str:
    return nummer_of("conceptverzoek")


def documents_of(name: str) -> list[str]:
    from lxml import etree

    from adapter.loket import stam

    root = etree.parse(str(STAM / f"verzoek-{name}.xml")).getroot()
    return [d.text for d in root.iter(f"{{{stam.VERZOEK}}}documentId")]


def test_invalid_notification_gets_400_problem_json(tmp_path: Path, zs: Zaaksysteem, werkmap) -> None:  # type: ignore[no-untyped-def]
    _, url = werkmap
    srv = adapter(tmp_path, zs, url)
    srv.start()
    try:
        bad = (
            (STAM / "verzoeknotificatie-initieren.xml").read_bytes().replace(b"<vn:volgnummer>1<", b"<vn:volgnummer>x<")
        )
        r = post_notificatie(srv, bad)
        assert r.status_code == 400
        assert r.headers["content-type"].startswith("application/problem+json")
        assert "volgnummer" in r.json()["detail"] and "verzoeknotificatie.xsd" in r.json()["detail"]
        assert post_notificatie(srv, b"<!DOCTYPE x [<!ENTITY a 'b'>]><x>&a;</x>").status_code == 400
        assert states(srv) == {}
    finally:
        srv.stop()
        drop_database(srv.db_url)


def test_poll_alone_finds_120_over_3_pages_and_nothing_is_delivered_twice(
    tmp_path: Path, zs: Zaaksysteem, werkmap
) -> None:  # type: ignore[no-untyped-def]
    fake, url = werkmap
    start = datetime.now(UTC) - timedelta(days=2)
    nummers = fake.generate_verzoeken(120, start=start, spacing=timedelta(minutes=10), document_size=2048)
    srv = adapter(tmp_path, zs, url)
    srv.start()
    try:
        run = cli(srv, "jobs", "run", "werkmap-poll")  # no notification arrived: the poll alone
        assert run.returncode == 0, run.stdout + run.stderr
        assert "120 verzoeken" in run.stdout and "120 new" in run.stdout
        zoeks = [r for r in fake.requests if r.path.endswith("/_zoek")]
        assert len(zoeks) == 3  # pages of 50, 50, 20
        for nr in nummers[:30]:  # notifications turned on again: late ones for verzoeken already polled
            r = post_notificatie(srv, fake.notificatie(nr))
            assert r.status_code == 202 and r.json()["duplicate"] is True
        wait_for(lambda: all_settled(srv, 120), timeout=120, what="120 deliveries")
        assert states(srv) == {"done": 120}
        assert len(zs.fake.zaken) == 120  # type: ignore[attr-defined]
        new = fake.generate_verzoeken(1, start=datetime.now(UTC) - timedelta(hours=1))
        assert post_notificatie(srv, fake.notificatie(new[0])).status_code == 202  # notified first ...
        again = cli(srv, "jobs", "run", "werkmap-poll")  # ... so the next poll finds nothing new
        assert "121 verzoeken" in again.stdout and "0 new" in again.stdout
        wait_for(lambda: all_settled(srv, 121), timeout=60, what="the notified one")
        assert len(zs.fake.zaken) == 121  # type: ignore[attr-defined]
        listed = cli(srv, "jobs", "list")
        assert "werkmap-poll" in listed.stdout and listed.stdout.count(" ok ") >= 2
    finally:
        srv.stop()
        drop_database(srv.db_url)


def test_transfer_by_mapping_rule_and_by_cli(tmp_path: Path, zs: Zaaksysteem, werkmap) -> None:  # type: ignore[no-untyped-def]
    fake, url = werkmap
    fake.add_verzoek((STAM / "verzoek-initieren.xml").read_bytes())
    srv = adapter(tmp_path, zs, url)
    mapping = tmp_path / "mappings" / "voorbeeldstad.toml"
    mapping.write_text(
        mapping.read_text().replace(
            "[triage]",
            '[[overdragen]]\nactiviteiten = ["nl.imow-gm0344.activiteit.BouwenDakkapel"]\n'
            'naar = "00000001823288444000"\nrol = "behandeldienst"\n\n[triage]',
        )
    )
    srv.start()
    try:
        assert post_notificatie(srv, (STAM / "verzoeknotificatie-initieren.xml").read_bytes()).status_code == 202
        wait_for(lambda: all_settled(srv, 1), timeout=60, what="the transfer")
        assert [(t.verzoeknummer, t.naar_oin, t.rol) for t in fake.transfers] == [
            ("2026112300123", "00000001823288444000", "behandeldienst")
        ]
        assert zs.fake.zaken == []  # type: ignore[attr-defined]
        by_hand = cli(srv, "werkmap", "overdragen", "2026112300123", "--naar", OIN, "--rol", "bevoegdGezag")
        assert by_hand.returncode == 0, by_hand.stderr
        assert fake.transfers[-1].rol == "bevoegdGezag"
        unknown = cli(srv, "werkmap", "overdragen", "999", "--naar", OIN, "--rol", "bevoegdGezag")
        assert unknown.returncode == 1 and len(unknown.stderr.strip().splitlines()) == 1
    finally:
        srv.stop()
        drop_database(srv.db_url)


def test_werkmap_failures_are_retried_then_visible_and_nothing_is_lost(
    tmp_path: Path, zs: Zaaksysteem, werkmap
) -> None:  # type: ignore[no-untyped-def]
    fake, url = werkmap
    fake.add_verzoek((STAM / "verzoek-initieren.xml").read_bytes())
    fake.fail_next("/verzoekreferenties", status=503, times=3)  # more than the client's own retries
    fake.fail_next(documents_of("initieren")[0], status=None, delay=3, times=2)  # then timeouts on a document
    srv = adapter(tmp_path, zs, url)
    srv.start()
    try:
        assert post_notificatie(srv, (STAM / "verzoeknotificatie-initieren.xml").read_bytes()).status_code == 202
        wait_for(lambda: all_settled(srv, 1), timeout=60, what="the delivery")
        assert states(srv) == {"done": 1}
        engine = create_engine(srv.db_url)
        with engine.connect() as conn:
            errors = [r.error for r in conn.execute(text("SELECT error FROM delivery_attempts ORDER BY id")) if r.error]
        engine.dispose()
        assert any("503" in e for e in errors), errors
        assert any("timed out" in e.lower() or "no answer" in e.lower() or "timeout" in e.lower() for e in errors), (
            errors
        )
        assert len(zs.fake.zaken) == 1  # type: ignore[attr-defined]
    finally:
        srv.stop()
        drop_database(srv.db_url)


def test_tls_error_is_visible_and_resend_after_fixing_the_ca_delivers(tmp_path: Path, zs: Zaaksysteem) -> None:
    from adapter.simulation.fake_werkmap import FakeWerkmap, make_self_signed_cert, serve_tls_in_thread

    fake = FakeWerkmap(oin=OIN)
    fake.add_verzoek((STAM / "verzoek-initieren.xml").read_bytes())
    cert, key = make_self_signed_cert(tmp_path)
    base, stop = serve_tls_in_thread(fake.app, cert, key)
    srv = adapter(tmp_path, zs, base + fake.base_path)
    srv.config.write_text(srv.config.read_text().replace("max_attempts = 5", "max_attempts = 2"))
    srv.start()
    try:
        assert post_notificatie(srv, (STAM / "verzoeknotificatie-initieren.xml").read_bytes()).status_code == 202
        wait_for(lambda: states(srv).get("dead") == 1, timeout=60, what="the delivery to die on TLS")
        dead = cli(srv, "messages", "list", "--state", "dead")
        mid = dead.stdout.splitlines()[1].split()[0]
        shown = cli(srv, "messages", "show", mid).stdout
        assert "certificate" in shown.lower() or "tls" in shown.lower(), shown
        srv.config.write_text(srv.config.read_text().replace("retries = 1", f'retries = 1\nca_bundle = "{cert}"'))
        resent = cli(srv, "messages", "resend", mid)
        assert resent.returncode == 0 and f"message {mid}: done" in resent.stdout, resent.stdout + resent.stderr
        assert len(zs.fake.zaken) == 1  # type: ignore[attr-defined]
    finally:
        srv.stop()
        stop()
        drop_database(srv.db_url)


def test_two_processes_run_the_poll_once_per_interval(tmp_path: Path, zs: Zaaksysteem, werkmap) -> None:  # type: ignore[no-untyped-def]
    """Two serve processes on one database, each with the scheduler on and a 3 s interval."""
    fake, url = werkmap
    fake.generate_verzoeken(5, start=datetime.now(UTC) - timedelta(hours=5))
    db_url = new_database_url(tmp_path)
    mappings = copy_mappings(tmp_path)
    servers = []
    for i in range(2):
        d = tmp_path / f"p{i}"
        d.mkdir()
        from tests.conftest import free_port

        port = free_port()
        toml = delivery_toml(zs, mappings) + werkmap_toml(url, poll_minutes=0.05, jobs=True)
        cfg = write_config(d / "config.toml", db_url, port, toml)
        servers.append(Server(config=cfg, db_url=db_url, port=port, log_path=d / "server.log"))
    for s in servers:
        s.start()
    try:
        time.sleep(11)
    finally:
        for s in servers:
            s.stop()
    engine = create_engine(db_url)
    with engine.connect() as conn:
        runs = conn.execute(
            text("SELECT holder, started_at FROM job_runs WHERE name='werkmap-poll' ORDER BY started_at")
        ).all()
        n_deliveries = conn.execute(text("SELECT count(*) FROM deliveries")).scalar_one()
    engine.dispose()
    drop_database(db_url)
    starts = [
        r.started_at if isinstance(r.started_at, datetime) else datetime.fromisoformat(r.started_at) for r in runs
    ]
    gaps = [(b - a).total_seconds() for a, b in itertools.pairwise(starts)]
    assert 2 <= len(runs) <= 5, runs
    assert all(g >= 0.9 * 3 - 0.2 for g in gaps), gaps  # never two runs in one interval
    assert n_deliveries == 5  # and each verzoek once
