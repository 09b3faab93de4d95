"""Exactly once into a ZGW zaaksysteem, after an uncertain attempt: a retry adopts only what *this*
delivery made (identity, not type), resumes an interrupted upload instead of adopting it, and says so
when it cannot tell. Failures are injected at every call of every message type, through the real inbound
channel, outbox and ``DbSteps``; the fake validates every request and response against the official
OpenAPI files."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from adapter.config import load_settings
from adapter.services import Services, open_services
from adapter.store.db import upgrade
from tests.conftest import drop_database, new_database_url, write_config
from tests.delivery_env import Zaaksysteem, copy_mappings, delivery_toml, needs_zgw_specs
from tests.logrecord import record_log
from tests.soap import fixture
from tests.test_delivery_zgw import assert_one_complete_zaak, drain, receive

pytestmark = needs_zgw_specs

BSN_FIRST = b"999990032"  # the gemachtigde of vrgDi01WijzigGemachtigde.xml
BSN_SECOND = b"999992004"
TEKENING_B64 = (
    b"JVBERi0xLjQKJcfsj6IKMSAwIG9iago8PC9UeXBlL0NhdGFsb2c+PgplbmRvYmoKdHJhaWxlcgo8PC9Sb290IDEgMCBSPj4KJSVFT0YK"
)
BIG = bytes(range(256)) * 12  # 3072 bytes: four bestandsdelen of at most 1000


def fake(zs: Zaaksysteem) -> Any:
    return zs.fake


def gemachtigde_rollen(zs: Zaaksysteem) -> list[dict[str, Any]]:
    return [r for r in fake(zs).rollen if r["omschrijving"] == "Gemachtigde"]  # copied from the roltype


def add_copy(zs: Zaaksysteem, kind: str, which: Callable[[dict[str, Any]], bool]) -> None:
    """Someone else adds an object identical to one of ours (a second candidate for a retry's find)."""
    store = fake(zs).store
    with store.lock:
        original = dict(next(r for r in store.all(kind) if which(r)))
        for k in ("url", "uuid"):
            original.pop(k)
        store.add(kind, original)


def delivery_states(sv: Services) -> list[str]:
    with sv.engine.connect() as conn:
        return list(conn.execute(text("SELECT state FROM deliveries ORDER BY id")).scalars())


def last_error(sv: Services) -> str:
    with sv.engine.connect() as conn:
        return conn.execute(text("SELECT last_error FROM deliveries ORDER BY id DESC")).scalars().first() or ""


# -- rollen: identity, not type ------------------------------------------------------------------------


@pytest.mark.parametrize("after_processing", [False, True], ids=["500-before", "lost-answer-after-commit"])
def test_a_retried_wijziging_gemachtigde_makes_its_own_rol(
    services: Services,
    zs: Zaaksysteem,
    after_processing: bool,
) -> None:
    """Two wijzigingen gemachtigde; the second's POST /rollen fails once. The retry must not adopt the
    first wijziging's gemachtigde (same zaak, roltype and betrokkeneType): two distinct rollen, each once."""
    receive(services)
    receive(services, "vrgDi01WijzigGemachtigde")
    assert drain(services) == ["done", "done"]
    fake(zs).fail_next("POST", "/rollen", status=500, after_processing=after_processing)
    receive(services, body=fixture("vrgDi01WijzigGemachtigde").replace(BSN_FIRST, BSN_SECOND))
    assert drain(services) == ["retry", "done"]
    rollen = [r for r in gemachtigde_rollen(zs) if r["betrokkeneType"] == "natuurlijk_persoon"]
    assert sorted(r["betrokkeneIdentificatie"]["inpBsn"] for r in rollen) == [BSN_FIRST.decode(), BSN_SECOND.decode()]


def test_the_same_person_made_gemachtigde_again_gets_a_rol_of_its_own(
    services: Services,
    zs: Zaaksysteem,
) -> None:
    """Identity alone is not enough when the same person is made gemachtigde again: the rol's
    toelichting names the message that made it, so the retry still does not adopt the earlier rol."""
    receive(services)
    receive(services, "vrgDi01WijzigGemachtigde")
    assert drain(services) == ["done", "done"]
    fake(zs).fail_next("POST", "/rollen", status=500)
    receive(services, "vrgDi01WijzigGemachtigde")  # same person, new referentienummer
    assert drain(services) == ["retry", "done"]
    rollen = [r for r in gemachtigde_rollen(zs) if r["betrokkeneType"] == "natuurlijk_persoon"]
    assert len(rollen) == 2 and len({r["roltoelichting"] for r in rollen}) == 2


def test_two_candidates_for_a_rol_are_ambiguous_not_adopted(
    services: Services,
    zs: Zaaksysteem,
) -> None:
    """The answer to POST /rollen is lost, and before the retry someone adds an identical rol: the retry
    cannot tell which one it made. It must not guess: needs-attention at once, naming both."""
    fake(zs).fail_next("POST", "/rollen", status=500, after_processing=True)
    receive(services)
    assert services.outbox is not None
    assert [r.state for r in services.outbox.work_once()] == ["retry"]
    add_copy(zs, "rollen", lambda r: True)
    states = drain(services)
    assert states == ["needs-attention"], states
    assert "2 candidates" in last_error(services) and "cannot tell which is ours" in last_error(services)


# -- documents: complete or resumed, never adopted half-way ---------------------------------------------


@pytest.fixture
def big_services(tmp_path: Path, zs: Zaaksysteem) -> Iterator[Services]:
    """Bijlagen over 1 KiB go up in bestandsdelen of 1000 bytes."""
    url = new_database_url(tmp_path)
    extra = delivery_toml(zs, copy_mappings(tmp_path), workers=0).replace(
        "timeout = 5", "timeout = 5\nlarge_file_bytes = 1024"
    )
    sv = open_services(load_settings(write_config(tmp_path / "config.toml", url, 8999, extra)))
    upgrade(sv.engine)
    fake(zs).chunk_size = 1000
    yield sv
    sv.close()
    drop_database(url)


def big_aanvraag() -> bytes:
    return fixture("omvDi01AanbiedenAanvraag").replace(TEKENING_B64, base64.b64encode(BIG))


def tekening(zs: Zaaksysteem) -> dict[str, Any]:
    docs = [d for d in fake(zs).documenten if d["bestandsnaam"] == "1234567_Bouwtekening.pdf"]
    assert len(docs) == 1, docs
    return docs[0]


def assert_whole_and_unlocked(zs: Zaaksysteem) -> None:
    doc = tekening(zs)
    assert not doc["locked"]
    assert doc["bytes"] is not None and hashlib.sha256(doc["bytes"]).hexdigest() == hashlib.sha256(BIG).hexdigest()
    zios = [z for z in fake(zs).zaakinformatieobjecten if z["informatieobject"] == doc["url"]]
    assert len(zios) == 1


@pytest.mark.parametrize("part", [0, 1, 2, 3])
@pytest.mark.parametrize("after_processing", [False, True], ids=["500-before", "lost-answer-after-commit"])
def test_a_failing_bestandsdeel_is_resumed_into_one_complete_document(
    big_services: Services,
    zs: Zaaksysteem,
    part: int,
    after_processing: bool,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A bestandsdeel PUT fails once (each of the four in turn): the retry finds the locked, incomplete
    document, uploads only the missing parts with the checkpointed lock and unlocks it."""
    from adapter.targets.zgw import plugin

    logs = record_log(monkeypatch, plugin)
    fake(zs).fail_next("PUT", "/bestandsdelen/{uuid}", status=500, skip=part, after_processing=after_processing)
    receive(big_services, body=big_aanvraag())
    assert drain(big_services) == ["retry", "done"]
    assert_whole_and_unlocked(zs)
    [resumed] = [e for e in logs if e["event"] == "resuming an interrupted upload"]  # the operator's trace
    assert (resumed["document"], resumed["parts_left"]) == (tekening(zs)["identificatie"], 4 - part - after_processing)
    assert len(fake(zs).documenten) == 2
    puts = [r for r in fake(zs).requests if r.method == "PUT"]
    assert len(puts) == 4 + 1 - after_processing  # a part stored before the failure is not sent again


def test_a_lost_create_answer_takes_the_lock_over(big_services: Services, zs: Zaaksysteem) -> None:
    """The answer to the create (and with it the lock) is lost: the retry force-unlocks, locks again
    and uploads every part; one document, whole and unlocked."""
    fake(zs).fail_next("POST", "/enkelvoudiginformatieobjecten", status=500, after_processing=True)
    receive(big_services, body=big_aanvraag())
    assert drain(big_services) == ["retry", "done"]
    assert_whole_and_unlocked(zs)


def test_without_the_force_unlock_scope_an_operator_is_told(big_services: Services, zs: Zaaksysteem) -> None:
    fake(zs).force_unlock_allowed = False
    fake(zs).fail_next("POST", "/enkelvoudiginformatieobjecten", status=500, after_processing=True)
    receive(big_services, body=big_aanvraag())
    assert drain(big_services) == ["retry", "needs-attention"]
    assert "geforceerd-unlock" in last_error(big_services)
    assert tekening(zs)["locked"]  # nothing was adopted


def test_a_document_of_another_size_under_our_identificatie_is_refused(
    services: Services,
    zs: Zaaksysteem,
) -> None:
    """The create's answer is lost; the document found under our identificatie has another size (not
    what this delivery sent): refused with the reason, not adopted."""
    fake(zs).fail_next("POST", "/enkelvoudiginformatieobjecten", status=500, after_processing=True)
    receive(services)
    assert services.outbox is not None
    assert [r.state for r in services.outbox.work_once()] == ["retry"]
    with fake(zs).store.lock:
        for d in fake(zs).store.all("enkelvoudiginformatieobjecten"):
            d["bestandsomvang"] = 1
    assert drain(services) == ["needs-attention"]
    assert "not made by this delivery" in last_error(services)


# -- every step in turn, for every message type ----------------------------------------------------------

AANVRAAG_CALLS = [
    ("POST", "/zaken", 0),
    ("POST", "/rollen", 0),
    ("POST", "/rollen", 1),  # the second rol (gemachtigde)
    ("POST", "/zaakobjecten", 0),
    ("POST", "/zaakobjecten", 1),  # the perceel
    ("POST", "/enkelvoudiginformatieobjecten", 0),
    ("POST", "/enkelvoudiginformatieobjecten", 1),  # the second document
    ("POST", "/zaakinformatieobjecten", 0),
    ("POST", "/zaakinformatieobjecten", 1),
    ("POST", "/statussen", 0),
]


@pytest.mark.parametrize("after_processing", [False, True], ids=["500-before", "lost-answer-after-commit"])
@pytest.mark.parametrize(("method", "path", "skip"), AANVRAAG_CALLS, ids=[f"{p}#{n}" for _, p, n in AANVRAAG_CALLS])
def test_aanvraag_failing_at_every_call(
    services: Services,
    zs: Zaaksysteem,
    method: str,
    path: str,
    skip: int,
    after_processing: bool,
) -> None:
    fake(zs).fail_next(method, path, status=500, skip=skip, after_processing=after_processing)
    receive(services)
    states = drain(services)
    assert states == ["retry", "done"], states
    assert_one_complete_zaak(zs)


FOLLOW_UPS = [
    ("vrgDi01IndienenAanvulling", ("POST", "/enkelvoudiginformatieobjecten")),
    ("vrgDi01IndienenAanvulling", ("POST", "/zaakinformatieobjecten")),
    ("vrgDi01VoegAdviesToe", ("POST", "/enkelvoudiginformatieobjecten")),
    ("vrgDi01VoegAdviesToe", ("POST", "/zaakinformatieobjecten")),
    ("vrgDi01IntrekkenAanvraag", ("POST", "/statussen")),
    ("vrgDi01WijzigGemachtigde", ("POST", "/rollen")),
]


def follow_up_effect(zs: Zaaksysteem, name: str) -> list[Any]:
    """What the follow-up should have added exactly once."""
    f = fake(zs)
    if name in ("vrgDi01IndienenAanvulling", "vrgDi01VoegAdviesToe"):
        return sorted((d["bestandsnaam"], len(d["bytes"] or b"")) for d in f.documenten)
    if name == "vrgDi01IntrekkenAanvraag":
        return sorted(s["statustype"] for s in f.statussen)
    return sorted(r["betrokkeneIdentificatie"].get("inpBsn", "") for r in gemachtigde_rollen(zs))


@pytest.mark.parametrize("after_processing", [False, True], ids=["500-before", "lost-answer-after-commit"])
@pytest.mark.parametrize(("name", "call"), FOLLOW_UPS, ids=[f"{n}:{c[1]}" for n, c in FOLLOW_UPS])
def test_follow_up_failing_at_each_call(
    services: Services,
    zs: Zaaksysteem,
    name: str,
    call: tuple[str, str],
    after_processing: bool,
) -> None:
    """The follow-up's call fails once (before or after the zaaksysteem stored it): it still adds its
    document, status or rol exactly once, to the one zaak, and every document is linked once."""
    receive(services)
    assert drain(services) == ["done"]
    before = follow_up_effect(zs, name)
    fake(zs).fail_next(*call, status=500, after_processing=after_processing)
    receive(services, name)
    assert drain(services) == ["retry", "done"]
    after = follow_up_effect(zs, name)
    assert len(after) == len(before) + 1, (before, after)
    assert len(fake(zs).zaken) == 1
    # every document is linked to the zaak exactly once
    zios = [(z["zaak"], z["informatieobject"]) for z in fake(zs).zaakinformatieobjecten]
    assert len(zios) == len(set(zios)) == len(fake(zs).documenten)
    if name == "vrgDi01IndienenAanvulling":
        assert any(d["bytes"] and d["bestandsnaam"].endswith("_v2.pdf") for d in fake(zs).documenten)


def test_two_candidates_for_a_zaakobject_are_ambiguous_not_adopted(services: Services, zs: Zaaksysteem) -> None:
    """A zaakobject is found by zaak, objectType and its identifying fields; the zaak is ours, so only an
    identical object added by someone else in between can confuse it: then needs-attention, no guess."""
    fake(zs).fail_next("POST", "/zaakobjecten", status=500, after_processing=True)
    receive(services)
    assert services.outbox is not None
    assert [r.state for r in services.outbox.work_once()] == ["retry"]
    add_copy(zs, "zaakobjecten", lambda z: z["objectType"] == "adres")
    assert drain(services) == ["needs-attention"]
    assert "zaakobject adres" in last_error(services) and "2 candidates" in last_error(services)


def test_an_idempotent_call_on_a_connection_the_server_closed_is_sent_again() -> None:
    """A server that closes kept-open connections (uwsgi without keep-alive) makes the next call on one fail
    without an answer: a GET is sent again at once; a POST is not (its step's retry looks first)."""
    import httpx

    from adapter.errors import TargetError
    from adapter.targets.zgw.client import ZgwClient
    from adapter.targets.zgw.options import ZgwOptions

    calls: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request.method)
        if len(calls) % 2 == 1:
            raise httpx.RemoteProtocolError("Server disconnected without sending a response.")
        return httpx.Response(200, json={"ok": True})

    options = ZgwOptions.model_validate(
        {
            "kind": "zgw",
            "zaken_url": "http://zs.test/zaken/api/v1",
            "documenten_url": "http://zs.test/documenten/api/v1",
            "catalogi_url": "http://zs.test/catalogi/api/v1",
            "catalogus": "http://zs.test/catalogi/api/v1/catalogussen/1",
            "auth": {"client_id": "a", "secret": "s" * 32},
        }
    )
    client = ZgwClient(options)
    client._http = httpx.Client(transport=httpx.MockTransport(handler))
    assert client.get("http://zs.test/zaken/api/v1/zaken/1") == {"ok": True}
    assert calls == ["GET", "GET"]
    with pytest.raises(TargetError, match="RemoteProtocolError"):
        client.post("http://zs.test/zaken/api/v1/zaken", {})
    assert calls == ["GET", "GET", "POST"]
