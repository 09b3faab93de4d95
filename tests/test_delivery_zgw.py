"""Delivery into a ZGW zaaksysteem: the fake validates every request and response against the official
OpenAPI files. The example aanvraag becomes one zaak with rollen, zaakobjecten, documenten and status;
failures at every step, in turn, still end in exactly one zaak and one document per bijlage."""

from __future__ import annotations

import base64
import uuid
from pathlib import Path

import httpx
import pytest
from lxml import etree
from sqlalchemy import create_engine, text

from adapter.config import load_settings
from adapter.services import Services, open_services
from adapter.simulation.fake_loket import FakeLoket
from adapter.store.db import upgrade
from tests.conftest import FIXTURES, drop_database, new_database_url, write_config
from tests.delivery_env import (
    Zaaksysteem,
    adapter_with_delivery,
    copy_mappings,
    delivery_toml,
    needs_zgw_specs,
    wait_for,
)
from tests.soap import fixture, post, with_reference

pytestmark = needs_zgw_specs

AANVRAAG = FIXTURES / "stuf-lvo" / "omvDi01AanbiedenAanvraag.xml"


def receive(sv: Services, name: str = "omvDi01AanbiedenAanvraag", body: bytes | None = None) -> int:
    """Accept a message through the real inbound channel (as the SOAP endpoint does)."""
    from adapter.inbound.stuf_lvo import StufLvoChannel

    channel = StufLvoChannel(sv.settings, sv.writer, sv.schemas)
    raw = with_reference(body or fixture(name), uuid.uuid4().hex[:30])
    channel.accept(channel.receive(raw, uuid.uuid4().hex))
    with sv.engine.connect() as conn:
        return conn.execute(text("SELECT max(id) FROM messages")).scalar_one()


def drain(sv: Services, rounds: int = 60) -> list[str]:
    """Run the outbox until no delivery can run again by itself (retries come due after their short
    backoff): done, dead, needs-attention and hint-refused are never claimed again, so they end the wait."""
    import time

    states = []
    assert sv.outbox is not None
    for _ in range(rounds):
        reports = sv.outbox.work_once(limit=10)
        states += [r.state for r in reports]
        with sv.engine.connect() as conn:
            open_ = conn.execute(
                text("SELECT count(*) FROM deliveries WHERE state IN ('pending', 'running', 'retry')")
            ).scalar_one()
        if not open_:
            break
        if not reports:
            time.sleep(0.06)
    return states


def inhoud_of(bijlage_id: str) -> bytes:
    root = etree.parse(str(AANVRAAG)).getroot()
    ns = {"L": "http://www.egem.nl/StUF/sector/lvo/0312"}
    el = root.find(f".//L:bijlage[L:bijlageId='{bijlage_id}']/L:inhoud", ns)
    return base64.b64decode(el.text)


def assert_one_complete_zaak(zs: Zaaksysteem) -> None:
    fake = zs.fake
    assert fake.response_errors == []  # type: ignore[attr-defined]
    zaken = fake.zaken  # type: ignore[attr-defined]
    assert len(zaken) == 1, zaken
    zaak = zaken[0]
    assert zaak["identificatie"] == "OLO-1234567"
    assert zaak["zaaktype"] == fake.catalogus_url("zaaktypen", identificatie="ZT-OMV-REG")  # type: ignore[attr-defined]
    assert zaak["kenmerken"] == [{"kenmerk": "1234567", "bron": "Omgevingsloket"}]
    rollen = [r for r in fake.rollen if r["zaak"] == zaak["url"]]  # type: ignore[attr-defined]
    assert sorted(r["betrokkeneType"] for r in rollen) == ["natuurlijk_persoon", "vestiging"]
    initiator = next(r for r in rollen if r["betrokkeneType"] == "natuurlijk_persoon")
    assert initiator["betrokkeneIdentificatie"]["inpBsn"] == "999993653"
    objecten = [o for o in fake.zaakobjecten if o["zaak"] == zaak["url"]]  # type: ignore[attr-defined]
    assert sorted(o["objectType"] for o in objecten) == ["adres", "kadastrale_onroerende_zaak"]
    docs = fake.documenten  # type: ignore[attr-defined]
    assert sorted(d["bestandsnaam"] for d in docs) == ["1234567_Bouwtekening.pdf", "1234567_Foto_voorgevel.jpg"]
    tekening = next(d for d in docs if d["bestandsnaam"] == "1234567_Bouwtekening.pdf")
    assert tekening["bytes"] == inhoud_of("1234567-1")
    foto = next(d for d in docs if d["bestandsnaam"] == "1234567_Foto_voorgevel.jpg")
    assert foto["bytes"] is None  # no inhoud in the message: it comes through the postbus
    zios = [z for z in fake.zaakinformatieobjecten if z["zaak"] == zaak["url"]]  # type: ignore[attr-defined]
    assert sorted(z["informatieobject"] for z in zios) == sorted(d["url"] for d in docs)
    statussen = [s for s in fake.statussen if s["zaak"] == zaak["url"]]  # type: ignore[attr-defined]
    assert len(statussen) == 1


def test_example_aanvraag_becomes_one_complete_zaak(services: Services, zs: Zaaksysteem) -> None:
    mid = receive(services)
    assert drain(services) == ["done"]
    assert_one_complete_zaak(zs)
    with services.engine.connect() as conn:
        assert conn.execute(text("SELECT state FROM messages WHERE id=:i"), {"i": mid}).scalar_one() == "delivered"


def test_follow_ups_land_on_the_same_zaak(services: Services, zs: Zaaksysteem) -> None:
    receive(services, "vrgDi01IndienenAanvulling")  # arrives before its aanvraag: waits, then proceeds
    receive(services)
    receive(services, "vrgDi01IntrekkenAanvraag")
    states = drain(services)
    assert states.count("done") == 3, states
    zaak = zs.fake.zaken[0]  # type: ignore[attr-defined]
    assert len(zs.fake.zaken) == 1  # type: ignore[attr-defined]
    names = sorted(d["bestandsnaam"] for d in zs.fake.documenten)  # type: ignore[attr-defined]
    assert names == ["1234567_Bouwtekening.pdf", "1234567_Bouwtekening_v2.pdf", "1234567_Foto_voorgevel.jpg"]
    statussen = [s for s in zs.fake.statussen if s["zaak"] == zaak["url"]]  # type: ignore[attr-defined]
    assert [volgnummer(zs, s["statustype"]) for s in statussen] == [1, 3]  # start, then ingetrokken
    with services.engine.connect() as conn:  # what `messages show` says each follow-up did, naming the zaak
        outcomes = [o for (o,) in conn.execute(text("SELECT outcome FROM deliveries ORDER BY message_id"))]
    assert outcomes[0].startswith("aanvulling bij zaak OLO-1234567; ")
    assert outcomes[2] == "intrekking op zaak OLO-1234567"


def volgnummer(zs: Zaaksysteem, statustype_url: str) -> int:
    from adapter.simulation.fake_zgw import make_token

    token = make_token("loket-adapter", "a-test-secret-of-at-least-thirty-two-bytes")
    return httpx.get(statustype_url, headers={"Authorization": f"Bearer {token}"}).json()["volgnummer"]


STEPS = [
    ("POST", "/zaken"),
    ("POST", "/rollen"),
    ("POST", "/zaakobjecten"),
    ("POST", "/enkelvoudiginformatieobjecten"),
    ("POST", "/zaakinformatieobjecten"),
    ("POST", "/statussen"),
]


@pytest.mark.parametrize("after_processing", [False, True], ids=["500-before", "lost-answer-after-commit"])
@pytest.mark.parametrize(("method", "path"), STEPS, ids=[p for _, p in STEPS])
def test_failure_at_each_step_still_gives_exactly_one_zaak(
    services: Services, zs: Zaaksysteem, method: str, path: str, after_processing: bool
) -> None:
    zs.fake.fail_next(method, path, status=500, after_processing=after_processing)  # type: ignore[attr-defined]
    receive(services)
    states = drain(services)
    assert states[-1] == "done" and "retry" in states, states
    assert_one_complete_zaak(zs)


def test_timeout_after_the_zaaksysteem_committed(services: Services, zs: Zaaksysteem) -> None:
    """The answer to POST /zaken comes after our timeout (5 s in delivery_env): the retry must adopt
    the zaak that was made, found by its identificatie."""
    zs.fake.fail_next("POST", "/zaken", after_processing=True, delay=6)  # type: ignore[attr-defined]
    receive(services)
    states = drain(services, rounds=200)
    assert states[0] == "retry" and states[-1] == "done"
    assert_one_complete_zaak(zs)


def test_kill_9_of_the_worker_mid_delivery(tmp_path: Path, zs: Zaaksysteem) -> None:
    """serve is killed while the zaaksysteem is still working on its document request; that request
    completes after the kill (as a real server would). After the restart the delivery resumes from its
    checkpoints and adopts that document instead of making a second one."""
    srv = adapter_with_delivery(tmp_path, zs, lease_seconds=1)
    zs.fake.fail_next("POST", "/enkelvoudiginformatieobjecten", status=None, delay=2)  # type: ignore[attr-defined]
    srv.start()
    try:
        assert post(srv.soap_url, with_reference(fixture("omvDi01AanbiedenAanvraag"), "K9-1")).status == 200
        wait_for(lambda: zs.fake.pending_faults == 0, what="the document request to be in flight")  # type: ignore[attr-defined]
        srv.kill9()
        wait_for(lambda: len(zs.fake.documenten) == 1, what="the orphaned request to complete")  # type: ignore[attr-defined]
        srv.start()
        engine = create_engine(srv.db_url)

        def delivered() -> bool:
            with engine.connect() as conn:
                return conn.execute(text("SELECT state FROM deliveries")).scalar_one() == "done"

        wait_for(delivered, timeout=40, what="the resumed delivery")
        engine.dispose()
    finally:
        srv.stop()
        drop_database(srv.db_url)
    assert_one_complete_zaak(zs)


def test_zaak_is_coupled_to_the_aanvraag_in_the_loket(coupled: tuple[Services, FakeLoket], zs: Zaaksysteem) -> None:
    """With koppel_zaak_aan_aanvraag the loket receives vrgDi01KoppelZaakAanAanvraag (validated by
    the fake loket against our StUF-LVO schema) once the zaak exists, once."""
    sv, loket = coupled
    loket.fail_next(status=500)  # the loket is down once: retried like any step
    receive(sv)
    assert drain(sv) == ["retry", "done"]
    assert [(name, nummer) for name, nummer, _ in loket.received] == [("vrgDi01KoppelZaakAanAanvraag", "1234567")]
    el = loket.received[0][2]
    assert el.findtext(".//{http://www.egem.nl/StUF/sector/lvo/0312}zaakidentificatie") == "OLO-1234567"
    assert len(zs.fake.zaken) == 1  # type: ignore[attr-defined]


def test_large_bijlage_goes_up_in_bestandsdelen(tmp_path: Path, zs: Zaaksysteem) -> None:
    """Above ``large_file_bytes`` a document is created with its size, uploaded in the parts the
    Documenten API hands out, and unlocked; the zaaksysteem ends up with the exact bytes."""
    url = new_database_url(tmp_path)
    extra = delivery_toml(zs, copy_mappings(tmp_path), workers=0).replace(
        "timeout = 5", "timeout = 5\nlarge_file_bytes = 1024"
    )
    sv = open_services(load_settings(write_config(tmp_path / "config.toml", url, 8999, extra)))
    upgrade(sv.engine)
    zs.fake.chunk_size = 1000  # type: ignore[attr-defined]
    big = bytes(range(256)) * 12  # 3072 bytes: four parts
    body = fixture("omvDi01AanbiedenAanvraag").replace(
        b"JVBERi0xLjQKJcfsj6IKMSAwIG9iago8PC9UeXBlL0NhdGFsb2c+PgplbmRvYmoKdHJhaWxlcgo8PC9Sb290IDEgMCBSPj4KJSVFT0YK",
        base64.b64encode(big),
    )
    try:
        receive(sv, body=body)
        assert drain(sv) == ["done"]
        tekening = next(d for d in zs.fake.documenten if d["bestandsnaam"] == "1234567_Bouwtekening.pdf")  # type: ignore[attr-defined]
        assert tekening["bytes"] == big
        puts = [r for r in zs.fake.requests if r.method == "PUT"]  # type: ignore[attr-defined]
        assert len(puts) == 4
        assert not tekening["locked"]
    finally:
        sv.close()
        drop_database(url)


def test_unmapped_activiteit_goes_to_triage_and_is_counted(tmp_path: Path, services: Services, zs: Zaaksysteem) -> None:
    receive(services, "wwvDi01AanbiedenAanvraag")  # grondwater-onttrekken: not in the mapping
    assert drain(services) == ["done"]
    assert zs.fake.zaken[0]["zaaktype"] == zs.fake.catalogus_url("zaaktypen", identificatie="ZT-TRIAGE")  # type: ignore[attr-defined]
    from adapter.store.outbox import delivery_stats

    assert delivery_stats(services.engine) == {"done": 1, "triage": 1}
    import subprocess
    import sys

    out = subprocess.run(
        [sys.executable, "-m", "adapter", "--config", services.settings.source, "messages", "stats"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "triage:     1 delivered to a triage zaaktype" in out and "delivered 1" in out


def test_a_retry_skips_the_steps_that_succeeded_before_the_failure(services: Services, zs: Zaaksysteem) -> None:
    """Steps done before a failure are checkpointed with the failed attempt: the retry neither repeats
    them nor has to look them up (no GET for the zaak), it only looks for the step that failed."""
    zs.fake.fail_next("POST", "/zaakobjecten", status=500)  # type: ignore[attr-defined]
    receive(services)
    assert drain(services) == ["retry", "done"]
    requests = zs.fake.requests  # type: ignore[attr-defined]
    assert [r.method for r in requests if r.path.endswith("/zaken/api/v1/zaken")] == ["POST"]
    assert len([r for r in requests if r.method == "POST" and r.path.endswith("/rollen")]) == 2
    assert_one_complete_zaak(zs)
