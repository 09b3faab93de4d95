"""Tests written for the mutants of ``adapter/targets/zgw/plugin.py`` that survived the existing tests
(docs/guarantees.md, "Mutation results"): each asserts a guarantee of the ZGW delivery (exactly once,
one zaak, one document per bijlage, the right person and type) on the path the mutant broke. In-process,
against the fake ZGW that validates every request and response against the official OpenAPI files."""

from __future__ import annotations

import base64
import copy
import hashlib
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from adapter.config import load_settings
from adapter.inbound.stam import StamChannel
from adapter.services import Services, open_services
from adapter.simulation.fake_loket import FakeLoket
from adapter.store.db import upgrade
from tests import test_stam_hints, test_zgw_exactly_once
from tests.conftest import drop_database, new_database_url, write_config
from tests.delivery_env import Zaaksysteem, copy_mappings, delivery_toml, needs_zgw_specs
from tests.soap import fixture
from tests.test_catalogus_rules import edit_mapping
from tests.test_delivery_zgw import drain, inhoud_of, receive
from tests.test_stam_e2e import STAM, documents_of
from tests.test_zgw_exactly_once import add_copy, assert_whole_and_unlocked, big_aanvraag, last_error

pytestmark = needs_zgw_specs
big_services = test_zgw_exactly_once.big_services  # the fixture: bijlagen over 1 KiB go up in bestandsdelen

BSN_INITIATOR = "999993653"  # the initiatiefnemer of omvDi01AanbiedenAanvraag.xml
BSN_OTHER = "999990032"


def fake(zs: Zaaksysteem) -> Any:
    return zs.fake


def first_attempt(sv: Services) -> list[str]:
    assert sv.outbox is not None
    return [r.state for r in sv.outbox.work_once()]


def test_a_rol_found_after_a_lost_answer_is_adopted_only_for_the_same_person(
    services: Services, zs: Zaaksysteem
) -> None:
    """The answer to POST /rollen (the initiatiefnemer) is lost, and the rol the zaaksysteem stored now
    names another person: the retry must not adopt it (same zaak, roltype and toelichting, but not our
    betrokkene); the zaak ends with a rol for the initiatiefnemer."""
    fake(zs).fail_next("POST", "/rollen", status=500, after_processing=True)
    receive(services)
    assert first_attempt(services) == ["retry"]
    with fake(zs).store.lock:
        for r in fake(zs).store.all("rollen"):
            r["betrokkeneIdentificatie"]["inpBsn"] = BSN_OTHER
    assert drain(services) == ["done"]
    personen = [r for r in fake(zs).rollen if r["betrokkeneType"] == "natuurlijk_persoon"]
    assert sorted(r["betrokkeneIdentificatie"]["inpBsn"] for r in personen) == sorted([BSN_OTHER, BSN_INITIATOR])


def test_a_zaak_found_after_a_lost_answer_is_coupled_to_the_aanvraag_by_its_identificatie(
    coupled: tuple[Services, FakeLoket], zs: Zaaksysteem
) -> None:
    """The answer to POST /zaken is lost: the retry finds the zaak by its identificatie and adopts it with
    that identificatie, so the loket is still told which zaak handles the aanvraag (once)."""
    sv, loket = coupled
    fake(zs).fail_next("POST", "/zaken", status=500, after_processing=True)
    receive(sv)
    assert drain(sv) == ["retry", "done"]
    assert len(fake(zs).zaken) == 1
    assert [(name, nummer) for name, nummer, _ in loket.received] == [("vrgDi01KoppelZaakAanAanvraag", "1234567")]
    el = loket.received[0][2]
    assert el.findtext(".//{http://www.egem.nl/StUF/sector/lvo/0312}zaakidentificatie") == "OLO-1234567"


def services_with_mapping(tmp_path: Path, zs: Zaaksysteem, extra_mapping: str) -> Iterator[Services]:
    """In-process services whose example mapping has ``extra_mapping`` appended before they load it."""
    mappings = copy_mappings(tmp_path)
    with (mappings / "voorbeeldstad.toml").open("a") as f:
        f.write(extra_mapping)
    url = new_database_url(tmp_path)
    sv = open_services(
        load_settings(write_config(tmp_path / "config.toml", url, 8999, delivery_toml(zs, mappings, workers=0)))
    )
    upgrade(sv.engine)
    yield sv
    sv.close()
    drop_database(url)


TWO_ZAKEN = """
[[zaaktypen]]
activiteiten = ["*"]
zaaktype = "ZT-MELDING"
profile = "melding"
soorten = ["aanvraag"]

[profiles.melding]
zaak_identificatie = "MLD-{verzoek.nummer}"
"""


@pytest.fixture
def two_zaken(tmp_path: Path, zs: Zaaksysteem) -> Iterator[Services]:
    """The example aanvraag becomes two zaken (ZT-OMV-REG and ZT-MELDING), with the same persons, locaties
    and documents on each: what one zaak's find might wrongly adopt from the other."""
    yield from services_with_mapping(tmp_path, zs, TWO_ZAKEN)


def on_zaak(zs: Zaaksysteem, kind: str, zaak: dict[str, Any]) -> list[dict[str, Any]]:
    return [x for x in getattr(fake(zs), kind) if x["zaak"] == zaak["url"]]


SECOND_ZAAK_CALLS = [
    ("/zaken", 1),
    ("/rollen", 2),
    ("/rollen", 3),
    ("/zaakobjecten", 2),
    ("/zaakinformatieobjecten", 2),
    ("/statussen", 1),
]


@pytest.mark.parametrize(("path", "skip"), SECOND_ZAAK_CALLS, ids=[f"{p}#{n}" for p, n in SECOND_ZAAK_CALLS])
def test_each_zaak_of_a_verzoek_gets_its_own_objects_when_the_second_zaaks_answer_is_lost(
    two_zaken: Services, zs: Zaaksysteem, path: str, skip: int
) -> None:
    """The answer to a call for the second zaak is lost after the zaaksysteem stored it. The first zaak
    has an identical rol (same person, same toelichting), zaakobject, status and document link: the
    retry must adopt only the one on its own zaak, never the first zaak's, and never make a second."""
    fake(zs).fail_next("POST", path, status=500, skip=skip, after_processing=True)
    receive(two_zaken)
    assert drain(two_zaken) == ["retry", "done"]
    zaken = sorted(fake(zs).zaken, key=lambda z: z["identificatie"])
    assert [z["identificatie"] for z in zaken] == ["MLD-1234567", "OLO-1234567"]
    assert len(fake(zs).documenten) == 2  # one document per bijlage, linked to both zaken
    for zaak in zaken:
        rollen = on_zaak(zs, "rollen", zaak)
        assert sorted(r["betrokkeneType"] for r in rollen) == ["natuurlijk_persoon", "vestiging"], rollen
        assert all(r["roltype"].startswith(fake(zs).base_url) and r["zaak"] == zaak["url"] for r in rollen)
        assert sorted(o["objectType"] for o in on_zaak(zs, "zaakobjecten", zaak)) == [
            "adres",
            "kadastrale_onroerende_zaak",
        ]
        assert len(on_zaak(zs, "zaakinformatieobjecten", zaak)) == 2
        assert len(on_zaak(zs, "statussen", zaak)) == 1


def test_another_adres_on_the_zaak_is_not_taken_for_ours_after_a_lost_answer(
    services: Services, zs: Zaaksysteem
) -> None:
    """The answer to POST /zaakobjecten (the adres) is lost, and before the retry someone adds another
    address to the zaak: the retry adopts the one with our address's identifying fields, not the other
    (no Ambiguous, no duplicate)."""
    fake(zs).fail_next("POST", "/zaakobjecten", status=500, after_processing=True)
    receive(services)
    assert first_attempt(services) == ["retry"]
    store = fake(zs).store
    with store.lock:
        ours = next(o for o in store.all("zaakobjecten") if o["objectType"] == "adres")
        other = copy.deepcopy(ours)
        for k in ("url", "uuid"):
            other.pop(k)
        other["objectIdentificatie"].update(identificatie="0344200000999999", huisnummer=99, postcode="3511ZZ")
        store.add("zaakobjecten", other)
    assert drain(services) == ["done"]
    adressen = [o["objectIdentificatie"]["huisnummer"] for o in fake(zs).zaakobjecten if o["objectType"] == "adres"]
    assert sorted(adressen) == sorted([ours["objectIdentificatie"]["huisnummer"], 99])


def test_two_documents_under_our_identificatie_are_ambiguous_not_adopted(services: Services, zs: Zaaksysteem) -> None:
    """The answer to POST /enkelvoudiginformatieobjecten is lost, and the zaaksysteem then holds two
    documents under our identificatie and bronorganisatie: the retry cannot tell which one it made, so it
    adopts neither and makes no third (needs-attention, naming the identificatie)."""
    fake(zs).fail_next("POST", "/enkelvoudiginformatieobjecten", status=500, after_processing=True)
    receive(services)
    assert first_attempt(services) == ["retry"]
    add_copy(zs, "enkelvoudiginformatieobjecten", lambda d: True)
    assert drain(services) == ["needs-attention"]
    assert "2 with this identificatie" in last_error(services)
    assert len(fake(zs).documenten) == 2


def test_a_document_of_another_bronorganisatie_under_the_same_identificatie_is_not_ours(
    services: Services, zs: Zaaksysteem
) -> None:
    """A zaaksysteem shared by several organisations: the same verzoek also went to another bevoegd gezag,
    whose document has the same identificatie (verzoeknummer-bijlageId) under its own bronorganisatie.
    After a lost answer the retry adopts our document only (identificatie and bronorganisatie)."""
    fake(zs).fail_next("POST", "/enkelvoudiginformatieobjecten", status=500, after_processing=True)
    receive(services)
    assert first_attempt(services) == ["retry"]
    store = fake(zs).store
    with store.lock:
        ours = dict(store.all("enkelvoudiginformatieobjecten")[0])
        for k in ("url", "uuid"):
            ours.pop(k)
        store.add("enkelvoudiginformatieobjecten", {**ours, "bronorganisatie": "002220647"})
    assert drain(services) == ["done"]
    mine = [d for d in fake(zs).documenten if d["bronorganisatie"] == "002564440"]
    assert len(mine) == 2
    zios = {z["informatieobject"] for z in fake(zs).zaakinformatieobjecten}
    assert zios == {d["url"] for d in mine}


def test_a_complete_document_someone_has_locked_is_adopted_and_left_locked(services: Services, zs: Zaaksysteem) -> None:
    """The answer to POST /enkelvoudiginformatieobjecten is lost, and before the retry a medewerker locks
    the (complete) document to edit it. A lock without bestandsdelen is not an interrupted upload: the
    retry adopts the document and leaves the lock alone (no forced unlock, no new lock)."""
    fake(zs).fail_next("POST", "/enkelvoudiginformatieobjecten", status=500, after_processing=True)
    receive(services)
    assert first_attempt(services) == ["retry"]
    store = fake(zs).store
    with store.lock:
        doc = store.all("enkelvoudiginformatieobjecten")[0]
        doc["lock"] = "lock-of-a-medewerker"
    assert drain(services) == ["done"]
    assert doc["lock"] == "lock-of-a-medewerker"
    assert not [r for r in fake(zs).requests if r.path.endswith(("/lock", "/unlock"))]
    assert len(fake(zs).documenten) == 2


def test_an_interrupted_upload_resumes_with_its_own_checkpointed_lock(big_services: Services, zs: Zaaksysteem) -> None:
    """A bestandsdeel PUT fails; the retry resumes the upload with the lock it checkpointed when it made the
    document, so it needs no forced unlock: it completes even where the adapter lacks the
    ``documenten.geforceerd-unlock`` scope, and never takes the lock over."""
    fake(zs).force_unlock_allowed = False
    fake(zs).fail_next("PUT", "/bestandsdelen/{uuid}", status=500, skip=1)
    receive(big_services, body=big_aanvraag())
    assert drain(big_services) == ["retry", "done"]
    assert_whole_and_unlocked(zs)
    assert not [r for r in fake(zs).requests if r.path.endswith("/lock")]


def test_an_ambiguous_find_names_every_candidate_for_the_operator(services: Services, zs: Zaaksysteem) -> None:
    """Two candidates for the rol whose answer was lost: needs-attention at once, and the error names both
    (their URLs), so an operator can remove the one that is not ours and resend."""
    fake(zs).fail_next("POST", "/rollen", status=500, after_processing=True)
    receive(services)
    assert first_attempt(services) == ["retry"]
    add_copy(zs, "rollen", lambda r: True)
    assert drain(services) == ["needs-attention"]
    error = last_error(services)
    assert "2 candidates" in error
    assert all(r["url"] in error for r in fake(zs).rollen), error


def test_a_link_adopted_after_a_lost_answer_is_replaced_like_one_the_adapter_made(
    services: Services, zs: Zaaksysteem
) -> None:
    """The answer to the Bouwtekening's zaakinformatieobject is lost (the retry finds and adopts the link),
    then the delivery stops on a refused status. After the mapping is fixed and the message resent, the
    adopted link is unlinked and its document replaced exactly as if the adapter had seen the answer: one
    Bouwtekening of the new type on the zaak."""
    resent_after_a_fix(services, zs, lost="/zaakinformatieobjecten")
    tekeningen = [d for d in fake(zs).documenten if d["bestandsnaam"] == "1234567_Bouwtekening.pdf"]
    assert len(tekeningen) == 1
    assert (
        fake(zs).store.resolve(tekeningen[0]["informatieobjecttype"], "informatieobjecttypen")["omschrijving"]
        == "Bijlage"
    )
    assert len(fake(zs).zaakinformatieobjecten) == len(fake(zs).documenten) == 2


def _without_voltooid(answer: Any) -> Any:
    """An answer as a Documenten API that does not say which bestandsdelen it has (no ``voltooid``)."""
    if isinstance(answer, list):
        return [_without_voltooid(x) for x in answer]
    if isinstance(answer, dict):
        return {k: _without_voltooid(v) for k, v in answer.items() if k != "voltooid"}
    return answer


def test_where_the_server_does_not_say_which_parts_it_has_the_checkpoints_decide(
    big_services: Services, zs: Zaaksysteem, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Documenten API that leaves ``voltooid`` out of its bestandsdelen: after a failing PUT the retry
    resumes from the adapter's own part checkpoints. It sends again only the part that failed and those
    after it (not the one already stored), and the document ends up whole: the right bytes, unlocked."""
    from adapter.targets.zgw.client import ZgwClient

    request = ZgwClient.request
    monkeypatch.setattr(ZgwClient, "request", lambda self, *a, **kw: _without_voltooid(request(self, *a, **kw)))
    fake(zs).fail_next("PUT", "/bestandsdelen/{uuid}", status=500, skip=1)
    receive(big_services, body=big_aanvraag())
    assert drain(big_services) == ["retry", "done"]
    assert_whole_and_unlocked(zs)
    puts = [r.path for r in fake(zs).requests if r.method == "PUT"]
    assert len(puts) == 5 and puts[1] == puts[2], puts  # part 1 once; part 2 failed, then sent again


def one_attempt(sv: Services) -> list[str]:
    """Run the outbox until one attempt has been made (a retry comes due after its short backoff)."""

    assert sv.outbox is not None
    for _ in range(100):
        reports = sv.outbox.work_once()
        if reports:
            return [r.state for r in reports]
        time.sleep(0.06)
    return []


@pytest.mark.parametrize("says_voltooid", [True, False], ids=["server-says-voltooid", "server-does-not-say"])
def test_a_taken_over_upload_resumes_with_its_new_lock_after_a_second_interruption(
    big_services: Services, zs: Zaaksysteem, monkeypatch: pytest.MonkeyPatch, says_voltooid: bool
) -> None:
    """The create's answer is lost (the retry force-unlocks the document and locks it again), and then a
    bestandsdeel PUT fails too. The new lock and each part were checkpointed at once: the next retry
    resumes with that lock, without a second forced unlock (no longer allowed here), sends only what is
    missing, and the document ends up whole and unlocked, once."""
    if not says_voltooid:
        from adapter.targets.zgw.client import ZgwClient

        request = ZgwClient.request
        monkeypatch.setattr(ZgwClient, "request", lambda self, *a, **kw: _without_voltooid(request(self, *a, **kw)))
    big = "/enkelvoudiginformatieobjecten"
    fake(zs).fail_next("POST", big, status=500, after_processing=True)
    fake(zs).fail_next("PUT", "/bestandsdelen/{uuid}", status=500, skip=1)
    receive(big_services, body=big_aanvraag())
    assert one_attempt(big_services) == ["retry"]  # the create's answer lost
    assert one_attempt(big_services) == ["retry"]  # taken over: forced unlock, new lock; the second part fails
    assert [r.path for r in fake(zs).requests if r.path.endswith("/lock")], "the lock was not taken over"
    fake(zs).force_unlock_allowed = False
    assert drain(big_services) == ["done"], last_error(big_services)
    assert_whole_and_unlocked(zs)
    assert len(fake(zs).documenten) == 2
    puts = [r.path for r in fake(zs).requests if r.method == "PUT"]
    assert len(puts) == 5 and puts[1] == puts[2], puts  # the first part once; the second failed, then again


def test_the_preview_of_a_large_bijlage_shows_its_upload_in_parts_and_sends_nothing(
    big_services: Services, zs: Zaaksysteem
) -> None:
    """``mappings preview`` of an aanvraag whose Bouwtekening is above ``large_file_bytes``: the document
    is shown as the create of an upload in bestandsdelen, under its step, with its size; nothing is sent."""
    from adapter.delivery.preview import preview_message
    from adapter.mapping.engine import build_opdracht
    from adapter.mapping.loader import load_dir
    from adapter.services import own_oins, resolve_path

    settings = big_services.settings
    mappings = load_dir(resolve_path(settings, settings.delivery.mappings_dir))
    before = len(fake(zs).requests)
    lines = list(
        preview_message(big_aanvraag(), settings, mappings, big_services.targets, build_opdracht, own_oins(settings))
    )
    assert len(fake(zs).requests) == before
    [i] = [n for n, line in enumerate(lines) if line.startswith("POST") and "(bestandsdelen)  " in line]
    assert re.fullmatch(r"POST .*/enkelvoudiginformatieobjecten \(bestandsdelen\)\s+\[document:[^\]]+\]", lines[i]), (
        lines[i]
    )
    assert '"bestandsnaam": "1234567_Bouwtekening.pdf"' in lines[i + 1]
    assert '"bestandsomvang": ' in lines[i + 1] and '"inhoud"' not in lines[i + 1], lines[i + 1]


def test_each_bijlage_is_one_document_under_its_own_identificatie(services: Services, zs: Zaaksysteem) -> None:
    """Two bijlagen of different informatieobjecttypen on one zaak: one document each, under the
    identificatie of its bijlage (``<verzoeknummer>-<n>``, what a retry and a later version look for), not
    numbered as a second type of the same bijlage."""
    receive(services)
    assert drain(services) == ["done"]
    assert sorted(d["identificatie"] for d in fake(zs).documenten) == ["1234567-1", "1234567-2"]
    assert len({d["informatieobjecttype"] for d in fake(zs).documenten}) == 2


@pytest.fixture
def two_zaken_two_types(tmp_path: Path, zs: Zaaksysteem) -> Iterator[Services]:
    """As ``two_zaken``, but the ZT-MELDING profile maps every bijlage to "Bijlage": the Bouwtekening is
    a "Tekening" on the one zaak and a "Bijlage" on the other."""
    yield from services_with_mapping(tmp_path, zs, TWO_ZAKEN + 'informatieobjecttypen = { "*" = "Bijlage" }\n')


def test_a_bijlage_that_two_zaken_need_as_different_types_becomes_one_document_per_type(
    two_zaken_two_types: Services, zs: Zaaksysteem
) -> None:
    """One verzoek, two zaken whose mappings give the Bouwtekening different informatieobjecttypen: one
    document per type (the second under ``<identificatie>-2``), each zaak linked to the one of its own
    type, and a retry after a lost answer makes no third."""
    fake(zs).fail_next("POST", "/zaakinformatieobjecten", status=500, skip=3, after_processing=True)
    receive(two_zaken_two_types)
    assert drain(two_zaken_two_types) == ["retry", "done"]
    store = fake(zs).store
    tekeningen = sorted(
        (d for d in fake(zs).documenten if d["bestandsnaam"] == "1234567_Bouwtekening.pdf"),
        key=lambda d: d["identificatie"],
    )
    ident = tekeningen[0]["identificatie"]
    assert [d["identificatie"] for d in tekeningen] == [ident, f"{ident}-2"]
    type_of = {
        d["url"]: store.resolve(d["informatieobjecttype"], "informatieobjecttypen")["omschrijving"]
        for d in fake(zs).documenten
    }
    for zaak in fake(zs).zaken:
        linked = [z["informatieobject"] for z in on_zaak(zs, "zaakinformatieobjecten", zaak)]
        tekening = [u for u in linked if u in {d["url"] for d in tekeningen}]
        assert len(linked) == 2 and len(tekening) == 1, linked
        want = "Bijlage" if zaak["identificatie"].startswith("MLD-") else "Tekening"
        assert type_of[tekening[0]] == want


# -- _document: inline or in parts, identificaties, adopted documents, later STAM versions ----------------


def content_calls(zs: Zaaksysteem) -> list[str]:
    """Every call that sent a document's content in parts or took or released its lock."""
    return [r.path for r in fake(zs).requests if r.method == "PUT" or r.path.endswith(("/lock", "/unlock"))]


def test_a_small_bijlage_is_one_inline_create_and_one_without_content_is_never_locked(
    services: Services, zs: Zaaksysteem
) -> None:
    """A bijlage at or below ``large_file_bytes`` whose bytes the message holds goes up in one create with
    base64 ``inhoud`` (README: bestandsdelen only above ``large_file_bytes``), and a bijlage without content
    (postbus, none configured) is one create without content: no bestandsdelen, no lock, no unlock for
    either, and the Bouwtekening has its bytes."""
    receive(services)
    assert drain(services) == ["done"]
    creates = [r for r in fake(zs).requests if r.method == "POST" and r.path.endswith("/enkelvoudiginformatieobjecten")]
    assert [r.status for r in creates] == [201, 201]
    assert content_calls(zs) == []
    docs = {d["bestandsnaam"]: d for d in fake(zs).documenten}
    assert docs["1234567_Bouwtekening.pdf"]["bytes"] == inhoud_of("1234567-1")
    assert docs["1234567_Foto_voorgevel.jpg"]["bytes"] is None
    assert not any(d["locked"] for d in docs.values())


def aanvraag_with(nummer: str, bijlage_ids: dict[str, str]) -> bytes:
    """The example aanvraag under aanvraagnummer ``nummer``, its bijlagen renamed (old bijlageId → new)."""
    body = fixture("omvDi01AanbiedenAanvraag")
    body = body.replace(b"<LVO:aanvraagnummer>1234567<", f"<LVO:aanvraagnummer>{nummer}<".encode())
    for old, new in bijlage_ids.items():
        body = body.replace(f"<LVO:bijlageId>{old}<".encode(), f"<LVO:bijlageId>{new}<".encode())
    return body


def test_bijlage_ids_need_be_unique_only_within_their_verzoek(services: Services, zs: Zaaksysteem) -> None:
    """Two aanvragen whose bijlagen are both numbered "1" and "2" (ids that do not start with the
    verzoeknummer): each bijlage becomes a document under ``<verzoeknummer>-<bijlageId>``, so the second
    aanvraag's documents are neither refused as duplicates nor taken for the first's; each zaak links its own."""
    for nummer in ("1234567", "7654321"):
        receive(services, body=aanvraag_with(nummer, {"1234567-1": "1", "1234567-2": "2"}))
    assert drain(services) == ["done", "done"]
    docs = {d["url"]: d["identificatie"] for d in fake(zs).documenten}
    assert sorted(docs.values()) == ["1234567-1", "1234567-2", "7654321-1", "7654321-2"]
    for zaak in fake(zs).zaken:
        nummer = zaak["identificatie"].removeprefix("OLO-")
        linked = [docs[z["informatieobject"]] for z in on_zaak(zs, "zaakinformatieobjecten", zaak)]
        assert sorted(linked) == [f"{nummer}-1", f"{nummer}-2"]


def tekeningen(zs: Zaaksysteem) -> list[dict[str, Any]]:
    return [d for d in fake(zs).documenten if d["bestandsnaam"] == "1234567_Bouwtekening.pdf"]


def type_of(zs: Zaaksysteem, doc: dict[str, Any]) -> str:
    return str(fake(zs).store.resolve(doc["informatieobjecttype"], "informatieobjecttypen")["omschrijving"])


def resend(sv: Services, mid: int) -> str:
    assert sv.outbox is not None
    [report] = sv.outbox.resend([mid])
    assert not isinstance(report, str), report
    return report.state


LONG_ID = "bouwtekening-gevel-noord-schaal-1-op-100"  # 40 characters, not starting with the verzoeknummer


def test_a_long_bijlage_id_is_found_again_under_its_40_character_identificatie(
    services: Services, zs: Zaaksysteem
) -> None:
    """A bijlageId of 40 characters: ``<verzoeknummer>-<bijlageId>`` is made to fit the 40 characters the
    Documenten API allows, and every find looks for exactly what was sent. The create's answer is lost: the
    retry adopts the document. Then, after a mapping fix and a resend, the replacement's answer (``…-<6 hex>``,
    again within 40) is lost too: that retry adopts the replacement. One Bouwtekening, of the new type, on
    the zaak; nothing refused as a duplicate."""
    fake(zs).fail_next("POST", "/enkelvoudiginformatieobjecten", status=500, after_processing=True)
    fake(zs).fail_next("POST", "/statussen", status=400)
    mid = receive(services, body=aanvraag_with("1234567", {"1234567-1": LONG_ID}))
    assert drain(services) == ["retry", "needs-attention"]
    assert "/statussen" in last_error(services)  # the document was adopted; the refused status stopped it
    [first] = tekeningen(zs)
    whole = f"1234567-{LONG_ID}"  # 48 characters: its first 33 and a hash of all of it (plugin.document_identificatie)
    assert first["identificatie"] == f"{whole[:33]}-{hashlib.sha256(whole.encode()).hexdigest()[:6]}"
    edit_mapping(services, 'Bouwtekening = "Tekening"', 'Bouwtekening = "Bijlage"')
    fake(zs).fail_next("POST", "/enkelvoudiginformatieobjecten", status=500, after_processing=True)
    assert resend(services, mid) == "retry"
    assert drain(services) == ["done"]
    [tekening] = tekeningen(zs)
    assert type_of(zs, tekening) == "Bijlage"
    assert re.fullmatch(re.escape(first["identificatie"][:33]) + "-[0-9a-f]{6}", tekening["identificatie"])
    assert len(fake(zs).zaakinformatieobjecten) == len(fake(zs).documenten) == 2


def test_a_document_adopted_after_a_lost_answer_is_replaced_after_a_mapping_fix(
    services: Services, zs: Zaaksysteem
) -> None:
    """The answer to the Bouwtekening's create is lost (the retry adopts the document), then the delivery
    stops on a refused status. After the mapping is fixed and the message resent, the adopted document is
    known to be of the old type: it is replaced exactly as one the adapter saw made (one Bouwtekening, of
    the new type, on the zaak)."""
    fake(zs).fail_next("POST", "/enkelvoudiginformatieobjecten", status=500, after_processing=True)
    fake(zs).fail_next("POST", "/statussen", status=400)
    mid = receive(services)
    assert drain(services) == ["retry", "needs-attention"]
    edit_mapping(services, 'Bouwtekening = "Tekening"', 'Bouwtekening = "Bijlage"')
    assert resend(services, mid) == "done"
    [tekening] = tekeningen(zs)
    assert type_of(zs, tekening) == "Bijlage"
    assert len(fake(zs).zaakinformatieobjecten) == len(fake(zs).documenten) == 2


def fixed_twice(sv: Services, zs: Zaaksysteem) -> None:
    """Deliver the example aanvraag (stopped by a refused status), fix the Bouwtekening's type to "Bijlage"
    and resend (stopped again), fix it to "Aanvraag" and resend (done)."""
    fake(zs).fail_next("POST", "/statussen", status=400, times=2)
    mid = receive(sv)
    assert drain(sv) == ["needs-attention"]
    edit_mapping(sv, 'Bouwtekening = "Tekening"', 'Bouwtekening = "Bijlage"')
    assert resend(sv, mid) == "needs-attention"
    edit_mapping(sv, 'Bouwtekening = "Bijlage"', 'Bouwtekening = "Aanvraag"')
    assert resend(sv, mid) == "done"


def test_a_second_mapping_fix_makes_a_document_of_the_latest_type(services: Services, zs: Zaaksysteem) -> None:
    """The mapping is fixed twice (Tekening → Bijlage → Aanvraag), with a resend after each: the second
    resend makes a document of the latest type, under an identificatie of its own (``…-<6 hex>`` of that
    type, not the first replacement's), and links it to the zaak once."""
    fixed_twice(services, zs)
    by_type = {type_of(zs, d): d for d in tekeningen(zs)}
    latest = by_type["Aanvraag"]
    assert re.fullmatch(r"1234567-1-[0-9a-f]{6}", latest["identificatie"])
    tag = hashlib.sha256(latest["informatieobjecttype"].encode()).hexdigest()[:6]
    assert latest["identificatie"] == f"1234567-1-{tag}"  # of that type; the first replacement's is deleted
    assert [z["informatieobject"] for z in fake(zs).zaakinformatieobjecten].count(latest["url"]) == 1


def test_after_a_second_mapping_fix_the_zaak_has_one_bouwtekening(services: Services, zs: Zaaksysteem) -> None:
    """After two mapping fixes (Tekening → Bijlage → Aanvraag) the zaak has one Bouwtekening, of the latest
    type: the first replacement is unlinked and deleted like the original. Fails today: the second resend
    compares with the link of the *first* attempt (the original, already removed), so the first
    replacement ("Bijlage") stays linked next to the new one."""
    fixed_twice(services, zs)
    [tekening] = tekeningen(zs)
    assert type_of(zs, tekening) == "Aanvraag"
    assert len(fake(zs).zaakinformatieobjecten) == len(fake(zs).documenten) == 2


stam_services = test_stam_hints.stam_services  # the fixture: store, outbox, ZGW target and the fake werkmap
STAM_NUMMER = "2026112300123"  # verzoek-initieren.xml and verzoek-aanvullen.xml


def stam_version(sv: Services, werkmap: Any, name: str, documents: dict[str, int] | None = None) -> list[str]:
    """Put ``verzoek-NAME.xml`` into the werkmap, hand the adapter its verzoeknotificatie and deliver it."""
    werkmap.add_verzoek((STAM / f"verzoek-{name}.xml").read_bytes(), documents)
    channel = StamChannel(sv.settings, sv.writer, sv.schemas)
    assert channel.receive(werkmap.notificatie(STAM_NUMMER), uuid.uuid4().hex).status == 202
    return drain(sv)


def werkmap_documents(zs: Zaaksysteem) -> dict[str, dict[str, Any]]:
    """The documents made from werkmap documents (not the verzoek PDFs), by documentId."""
    prefix = f"{STAM_NUMMER}-"
    docs = [d for d in fake(zs).documenten if not d["identificatie"].startswith(f"{prefix}pdf-")]
    assert all(d["identificatie"].startswith(prefix) for d in docs), docs
    return {d["identificatie"].removeprefix(prefix): d for d in docs}


def test_a_later_stam_version_makes_only_its_new_documents(
    stam_services: tuple[Services, Any], zs: Zaaksysteem
) -> None:
    """STAM lists every document so far in each version: the Aanvullen (volgnummer 2) names the Initiëren's
    two documents and a new one. Each werkmap document becomes one document under
    ``<verzoeknummer>-<documentId>`` (the documentId lacks the nummer), whole (the werkmap's bytes, small
    files too) and unlocked; the aanvulling makes only the new one (no create refused as a duplicate) and
    the zaak links all three."""
    sv, werkmap = stam_services
    assert stam_version(sv, werkmap, "initieren") == ["done"]
    assert stam_version(sv, werkmap, "aanvullen") == ["done"]
    docs = werkmap_documents(zs)
    assert sorted(docs) == sorted(set(documents_of("initieren") + documents_of("aanvullen")))
    for doc_id, d in docs.items():
        assert not d["locked"] and d["bytes"] is not None, d
        assert hashlib.sha256(d["bytes"]).hexdigest() == werkmap.document_sha256(doc_id)
    creates = [r for r in fake(zs).requests if r.method == "POST" and r.path.endswith("/enkelvoudiginformatieobjecten")]
    assert [r.status for r in creates] == [201] * len(fake(zs).documenten)
    [zaak] = fake(zs).zaken
    urls = {d["url"] for d in docs.values()}
    linked = [z["informatieobject"] for z in on_zaak(zs, "zaakinformatieobjecten", zaak)]
    assert sorted(u for u in linked if u in urls) == sorted(urls)  # each once


def test_an_empty_werkmap_document_is_adopted_after_a_lost_answer(
    stam_services: tuple[Services, Any], zs: Zaaksysteem
) -> None:
    """A werkmap document of 0 bytes: the answer to its create is lost, and the retry adopts the document it
    made (its size is checked against the 0 bytes of the bijlage, not refused as another's): done, one
    document per werkmap document."""
    sv, werkmap = stam_services
    first = documents_of("initieren")[0]
    fake(zs).fail_next("POST", "/enkelvoudiginformatieobjecten", status=500, after_processing=True)
    assert stam_version(sv, werkmap, "initieren", {first: 0}) == ["retry", "done"], last_error(sv)
    docs = werkmap_documents(zs)
    assert sorted(docs) == sorted(documents_of("initieren"))
    assert docs[first]["bestandsomvang"] == 0


# -- the functions changed since e474aac (run of 2 December 2026, helper G) ---------------------------------


SCHAAL_100 = "bouwtekening-gevel-noord-schaal-1-op-100"  # 1234567-<this> is 48 characters: a hashed identificatie


def settle(sv: Services) -> list[str]:
    """As ``drain``, but done once no delivery is open: one that needs attention ends it too (``drain`` waits out
    its 60 rounds for those)."""
    return drain(sv)


def resent_after_a_fix(services: Services, zs: Zaaksysteem, lost: str) -> Any:
    """The answer to ``POST lost`` is lost (the retry adopts what it made), the delivery stops on a refused
    status; the mapping is fixed (Tekening → Bijlage) and the message resent: its report, done."""
    fake(zs).fail_next("POST", lost, status=500, after_processing=True)
    fake(zs).fail_next("POST", "/statussen", status=400)
    mid = receive(services)
    assert settle(services) == ["retry", "needs-attention"]
    edit_mapping(services, 'Bouwtekening = "Tekening"', 'Bouwtekening = "Bijlage"')
    assert services.outbox is not None
    [report] = services.outbox.resend([mid])
    assert not isinstance(report, str) and report.state == "done", report
    return report


def test_a_replacement_an_earlier_release_made_under_its_old_identificatie_is_found_again(
    services: Services, zs: Zaaksysteem
) -> None:
    """A long bijlageId, its document replaced after a mapping fix; the replacement's create answer is lost,
    and the replacement carries the identificatie the release before this one gave it (the first 33
    characters of the old cut id and the type's 6 hex). The retry finds it under that identificatie (it is
    this bijlage's: the new type and its bestandsnaam) and makes no second one: one Bouwtekening, of the new
    type, linked once."""
    fake(zs).fail_next("POST", "/statussen", status=400)
    mid = receive(services, body=aanvraag_with("1234567", {"1234567-1": SCHAAL_100}))
    assert settle(services) == ["needs-attention"]
    edit_mapping(services, 'Bouwtekening = "Tekening"', 'Bouwtekening = "Bijlage"')
    fake(zs).fail_next("POST", "/enkelvoudiginformatieobjecten", status=500, after_processing=True)
    assert resend(services, mid) == "retry"
    store = fake(zs).store
    with store.lock:  # named as the release before this one named a replacement
        [new] = [d for d in tekeningen(zs) if type_of(zs, d) == "Bijlage"]
        tag = hashlib.sha256(new["informatieobjecttype"].encode()).hexdigest()[:6]
        old_form = f"{f'1234567-{SCHAAL_100}'[:40][:33]}-{tag}"
        [rec] = [d for d in store.all("enkelvoudiginformatieobjecten") if new["url"].endswith(d["uuid"])]
        rec["identificatie"] = old_form
    assert settle(services) == ["done"], last_error(services)
    [tekening] = tekeningen(zs)
    assert tekening["identificatie"] == old_form and type_of(zs, tekening) == "Bijlage"
    assert [z["informatieobject"] for z in fake(zs).zaakinformatieobjecten].count(tekening["url"]) == 1
    assert len(fake(zs).zaakinformatieobjecten) == len(fake(zs).documenten) == 2


def test_a_bijlage_of_exactly_large_file_bytes_is_one_inline_create(big_services: Services, zs: Zaaksysteem) -> None:
    """``large_file_bytes`` is the largest bijlage sent inline (README: bestandsdelen only above it): one of
    exactly 1024 bytes is one create with its base64 ``inhoud``, no bestandsdelen, lock or unlock."""
    exact = bytes(range(256)) * 4
    body = fixture("omvDi01AanbiedenAanvraag").replace(test_zgw_exactly_once.TEKENING_B64, base64.b64encode(exact))
    receive(big_services, body=body)
    assert settle(big_services) == ["done"]
    assert content_calls(zs) == []
    [doc] = tekeningen(zs)
    assert doc["bytes"] == exact and not doc["locked"]


def test_a_first_types_document_under_the_second_types_old_identificatie_is_not_adopted(
    two_zaken_two_types: Services, zs: Zaaksysteem
) -> None:
    """A bijlageId of 38 characters ending in ``-2``, needed as two types by two zaken: the second type's
    identificatie in the release before this one (``<first 36>-2``) is the first type's document's own. The
    second type's create fails before the zaaksysteem stores it; the retry, looking under that old
    identificatie too, finds the first type's document (same bestandsnaam, other type) and must not adopt
    it: one document per type, each zaak linked to the one of its own type."""
    ends_in_2 = "1234567-bouwtekening-gevelaanzicht-v-2"
    sv = two_zaken_two_types
    fake(zs).fail_next("POST", "/enkelvoudiginformatieobjecten", status=500, skip=2)
    receive(sv, body=aanvraag_with("1234567", {"1234567-1": ends_in_2}))
    assert settle(sv) == ["retry", "done"], last_error(sv)
    docs = tekeningen(zs)
    assert sorted(type_of(zs, d) for d in docs) == ["Bijlage", "Tekening"]
    for zaak in fake(zs).zaken:
        linked = {z["informatieobject"] for z in on_zaak(zs, "zaakinformatieobjecten", zaak)}
        [tekening] = [d for d in docs if d["url"] in linked]
        assert type_of(zs, tekening) == ("Bijlage" if zaak["identificatie"].startswith("MLD-") else "Tekening")


def test_another_bijlages_document_under_a_second_types_identificatie_is_refused_not_adopted(
    two_zaken_two_types: Services, zs: Zaaksysteem
) -> None:
    """The clash kept on purpose (``document_identificatie``): the Bouwtekening (``1234567-1``) is needed as a
    second type, whose identificatie ``1234567-1-2`` is the Foto's own, a bijlage with that very id. The
    second type's create fails before the zaaksysteem stores it; the retry finds the Foto's document under that
    identificatie, of another type, and must not take it for the Bouwtekening: the create is refused as a
    duplicate and an operator is told, nothing filed under the wrong bijlage."""
    sv = two_zaken_two_types
    fake(zs).fail_next("POST", "/enkelvoudiginformatieobjecten", status=500, skip=2)
    receive(sv, body=aanvraag_with("1234567", {"1234567-2": "1234567-1-2"}))
    assert settle(sv) == ["retry", "needs-attention"]
    assert "identificatie-niet-uniek" in last_error(sv)
    foto = [d["url"] for d in fake(zs).documenten if d["bestandsnaam"] == "1234567_Foto_voorgevel.jpg"]
    assert [z["informatieobject"] for z in fake(zs).zaakinformatieobjecten].count(foto[0]) == 1


def test_a_mapping_fix_between_a_lost_answer_and_its_retry_gives_a_document_of_the_new_type(
    services: Services, zs: Zaaksysteem
) -> None:
    """The Bouwtekening's create answer is lost, and the mapping is fixed (Tekening → Bijlage) before the retry.
    The retry finds the document it made, of the type of before: it is replaced at once, like after a resend
    (a document's type cannot change), and the one it made, linked nowhere, deleted. One Bouwtekening, of the
    new type, on the zaak; a resend changes nothing."""
    fake(zs).fail_next("POST", "/enkelvoudiginformatieobjecten", status=500, after_processing=True)
    mid = receive(services)
    assert first_attempt(services) == ["retry"]
    edit_mapping(services, 'Bouwtekening = "Tekening"', 'Bouwtekening = "Bijlage"')
    assert settle(services) == ["done"], last_error(services)
    [tekening] = tekeningen(zs)
    assert type_of(zs, tekening) == "Bijlage"
    assert [z["informatieobject"] for z in fake(zs).zaakinformatieobjecten].count(tekening["url"]) == 1
    assert len(fake(zs).zaakinformatieobjecten) == len(fake(zs).documenten) == 2
    assert resend(services, mid) == "done"
    assert tekeningen(zs) == [tekening] and len(fake(zs).zaakinformatieobjecten) == 2


@pytest.mark.parametrize("other", ["bronorganisatie", "bestandsnaam", "bestandsomvang"])
def test_under_the_old_cut_identificatie_only_this_bijlages_own_document_is_adopted(
    services: Services, zs: Zaaksysteem, other: str
) -> None:
    """A long bijlageId whose create answer is lost; under the identificatie the release before this one gave
    it (cut to 40 characters) sits a document that is not this bijlage's: of another bronorganisatie, of another
    bestandsnaam, or of another size. Another aanvraag's Bouwtekening (same bestandsnaam and type, under its own
    identificatie) is in the zaaksysteem too. Neither is adopted: the first two are passed over (the bijlage gets
    a document of its own, the foreign one stays unlinked), the one of another size is refused, naming its size."""
    receive(services)  # aanvraag 1234567: its Bouwtekening under identificatie 1234567-1
    assert settle(services) == ["done"]
    long_id = f"7654321-{SCHAAL_100}"
    fake(zs).fail_next("POST", "/enkelvoudiginformatieobjecten", status=500, after_processing=True)
    fake(zs).fail_next("POST", "/statussen", status=400)
    receive(services, body=aanvraag_with("7654321", {"1234567-1": SCHAAL_100}))
    assert first_attempt(services) == ["retry"]
    store = fake(zs).store
    with store.lock:  # named as the release before this one named it, and not this bijlage's
        [rec] = [d for d in store.all("enkelvoudiginformatieobjecten") if d["identificatie"].startswith("7654321-b")]
        rec["identificatie"] = long_id[:40]
        rec[other] = {"bronorganisatie": "123456782", "bestandsnaam": "7654321_Andere.pdf"}.get(other) or (
            rec["bestandsomvang"] + 1
        )
    settle(services)
    if other == "bestandsomvang":  # the size found is named, beside the one this bijlage has
        assert f"exists with bestandsomvang {rec['bestandsomvang']}, " in last_error(services), last_error(services)
        return
    assert "/statussen" in last_error(services)  # the document step is done; the refused status stopped it
    [zaak] = [z for z in fake(zs).zaken if z["identificatie"] == "OLO-7654321"]
    linked = {z["informatieobject"] for z in on_zaak(zs, "zaakinformatieobjecten", zaak)}
    [tekening] = [d for d in tekeningen(zs) if d["url"] in linked]
    assert tekening["identificatie"].startswith(long_id[:33]) and tekening["identificatie"] != long_id[:40]


def test_a_replaced_bijlage_listed_again_after_a_further_fix_without_resend_stays_one_document(
    services: Services, zs: Zaaksysteem
) -> None:
    """The Bouwtekening is replaced after a fix (Tekening → Bijlage) and a resend; the mapping is then fixed
    again (→ Aanvraag) but not resent, and an aanvulling lists the Bouwtekening again. Its current document is
    of neither the aanvulling's type nor the original's: it is looked for under every type's replacement
    identificatie, so it is found and reused; no second Bouwtekening, nothing linked twice."""
    from tests.test_zgw_replaced_then_listed_again import aanvulling_listing_the_bouwtekening

    mid = receive(services)
    assert settle(services) == ["done"]
    edit_mapping(services, 'Bouwtekening = "Tekening"', 'Bouwtekening = "Bijlage"')
    assert resend(services, mid) == "done"
    [replacement] = tekeningen(zs)
    edit_mapping(services, 'Bouwtekening = "Bijlage"', 'Bouwtekening = "Aanvraag"')
    receive(services, body=aanvulling_listing_the_bouwtekening())
    assert settle(services) == ["done"], last_error(services)
    assert tekeningen(zs) == [replacement]
    assert [z["informatieobject"] for z in fake(zs).zaakinformatieobjecten].count(replacement["url"]) == 1


def replaced_bouwtekening(services: Services, zs: Zaaksysteem) -> tuple[dict[str, Any], dict[str, Any]]:
    """The aanvraag delivered, the mapping fixed (Tekening → Bijlage) and resent: the replacement document as the
    API shows it, and its record in the fake's store (to tamper with under ``fake(zs).store.lock``)."""
    mid = receive(services)
    assert settle(services) == ["done"]
    edit_mapping(services, 'Bouwtekening = "Tekening"', 'Bouwtekening = "Bijlage"')
    assert resend(services, mid) == "done"
    [replacement] = tekeningen(zs)
    [rec] = [d for d in fake(zs).store.all("enkelvoudiginformatieobjecten") if replacement["url"].endswith(d["uuid"])]
    return replacement, rec


@pytest.mark.parametrize("other", ["bronorganisatie", "bestandsomvang"])
def test_a_replacement_of_another_bronorganisatie_or_size_is_not_reused_by_a_later_version(
    services: Services, zs: Zaaksysteem, other: str
) -> None:
    """The Bouwtekening is replaced after a mapping fix and a resend; then an aanvulling lists it again. The
    document under the replacement's identificatie is not this bijlage's any more: of another bronorganisatie
    (passed over: the aanvulling makes the bijlage's document again) or of another size (refused, naming the
    size). Never reused."""
    from tests.test_zgw_replaced_then_listed_again import aanvulling_listing_the_bouwtekening

    replacement, rec = replaced_bouwtekening(services, zs)
    store = fake(zs).store
    with store.lock:
        rec[other] = "123456782" if other == "bronorganisatie" else rec["bestandsomvang"] + 1
    receive(services, body=aanvulling_listing_the_bouwtekening())
    settle(services)
    if other == "bestandsomvang":  # the size found is named, beside the one this bijlage has
        assert f"exists with bestandsomvang {rec['bestandsomvang']}, " in last_error(services), last_error(services)
        return
    assert [z["informatieobject"] for z in fake(zs).zaakinformatieobjecten].count(replacement["url"]) == 1
    [again] = [d for d in tekeningen(zs) if d["url"] != replacement["url"]]
    assert [z["informatieobject"] for z in fake(zs).zaakinformatieobjecten].count(again["url"]) == 1


def test_two_documents_a_later_version_could_reuse_for_a_bijlage_are_ambiguous(
    services: Services, zs: Zaaksysteem
) -> None:
    """The Bouwtekening is replaced after a mapping fix and a resend; then someone puts a copy of the replacement
    under the original's identificatie (free since the original was deleted), and an aanvulling lists the
    Bouwtekening again. Two documents could be the bijlage's: the aanvulling stops for an operator, naming
    both, and reuses neither."""
    from tests.test_zgw_replaced_then_listed_again import aanvulling_listing_the_bouwtekening

    replacement, rec = replaced_bouwtekening(services, zs)
    store = fake(zs).store
    with store.lock:
        copy_ = {k: v for k, v in rec.items() if k not in ("url", "uuid")}
        copy_["identificatie"] = "1234567-1"
        store.add("enkelvoudiginformatieobjecten", copy_)
    links = len(fake(zs).zaakinformatieobjecten)
    receive(services, body=aanvulling_listing_the_bouwtekening())
    assert settle(services) == ["needs-attention"]
    assert "2 documents" in last_error(services) and replacement["identificatie"] in last_error(services)
    assert len(fake(zs).zaakinformatieobjecten) == links


def test_an_aanvulling_resent_after_a_mapping_fix_reuses_the_replacement_once(
    services: Services, zs: Zaaksysteem
) -> None:
    """The aanvraag is delivered, then an aanvulling listing its Bouwtekening again; the mapping is fixed
    (Tekening → Bijlage) and both are resent. The aanvulling's resend finds the aanvraag's replacement under its
    identificatie, which is both the one it looks for and the new type's: one document, not two candidates (it
    used to stop as ambiguous, naming the same document twice). Done; one Bouwtekening, linked once."""
    from tests.test_zgw_replaced_then_listed_again import aanvulling_listing_the_bouwtekening

    mid = receive(services)
    assert settle(services) == ["done"]
    later = receive(services, body=aanvulling_listing_the_bouwtekening())
    assert settle(services) == ["done"]
    edit_mapping(services, 'Bouwtekening = "Tekening"', 'Bouwtekening = "Bijlage"')
    assert resend(services, mid) == "done"
    assert resend(services, later) == "done", last_error(services)
    [tekening] = tekeningen(zs)
    assert type_of(zs, tekening) == "Bijlage"
    assert [z["informatieobject"] for z in fake(zs).zaakinformatieobjecten].count(tekening["url"]) == 1
    assert len(fake(zs).zaakinformatieobjecten) == len(fake(zs).documenten) == 2


@pytest.mark.parametrize("lost", ["/enkelvoudiginformatieobjecten", "/zaakinformatieobjecten"])
def test_the_summary_of_a_resend_names_the_replaced_document_also_when_it_or_its_link_was_adopted(
    services: Services, zs: Zaaksysteem, lost: str
) -> None:
    """The answer to the Bouwtekening's create or to its zaakinformatieobject is lost (the retry adopts it), the
    delivery stops on a refused status; after a mapping fix and a resend, the outcome names the document it
    replaced by its identificatie (what an operator looks up), as when the adapter saw the answer."""
    report = resent_after_a_fix(services, zs, lost)
    [tekening] = tekeningen(zs)
    assert f"document 1234567-1 vervangen door {tekening['identificatie']}" in report.detail, report.detail


def test_identificaties_that_fit_keep_the_production_form_and_hashed_ones_are_the_same_in_every_release() -> None:
    """``document_identificatie`` is what a retry, a later verzoek version and the next release look for, so its
    text is part of the guarantee: a form that fits in 40 characters stays the production form up to the last
    character (a 36-character base's second type ``<base>-2``; a 33-character identificatie's replacement
    ``<identificatie>-<6 hex of the type>``), and a hashed form is exactly its readable 33 characters and 6 hex
    of the parts joined by newlines (base, type number, replacing type)."""
    from adapter.targets.zgw.plugin import document_identificatie

    iot = "https://zaken.example/catalogi/api/v1/informatieobjecttypen/1"
    tag = hashlib.sha256(iot.encode()).hexdigest()[:6]

    def h6(*parts: str) -> str:
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:6]

    b36, b33, b48 = "b" * 36, "c" * 33, f"1234567-{SCHAAL_100}"
    assert document_identificatie(b36, 1) == f"{b36}-2"
    assert document_identificatie(b33, 0, iot) == f"{b33}-{tag}"
    assert document_identificatie(b48, 1) == f"{b48[:33]}-{h6(b48, '2')}"
    assert document_identificatie(b48, 0, iot) == f"{b48[:33]}-{h6(b48, '1', iot)}"
    assert document_identificatie(b48, 2, iot) == f"{b48[:33]}-{h6(b48, '3', iot)}"


def test_a_second_types_document_an_earlier_release_made_is_found_again(
    two_zaken_two_types: Services, zs: Zaaksysteem
) -> None:
    """A bijlageId of 40 characters needed as two types by two zaken; the second type's create answer is lost,
    and that document carries the identificatie the release before this one gave a second type
    (``<first 36>-2``). The retry finds it under that identificatie (this bijlage's type and bestandsnaam) and
    makes no other: one document per type, each zaak linked to the one of its own type."""
    noord = "1234567-bouwtekening-gevelaanzicht-noord"  # 40 characters
    sv = two_zaken_two_types
    fake(zs).fail_next("POST", "/enkelvoudiginformatieobjecten", status=500, skip=2, after_processing=True)
    receive(sv, body=aanvraag_with("1234567", {"1234567-1": noord}))
    assert first_attempt(sv) == ["retry"]
    store = fake(zs).store
    with store.lock:  # named as the release before this one named a second type's document
        [second] = [d for d in tekeningen(zs) if type_of(zs, d) == "Bijlage"]
        [rec] = [d for d in store.all("enkelvoudiginformatieobjecten") if second["url"].endswith(d["uuid"])]
        rec["identificatie"] = f"{noord[:36]}-2"
    assert settle(sv) == ["done"], last_error(sv)
    docs = tekeningen(zs)
    assert sorted((type_of(zs, d), d["identificatie"]) for d in docs) == [
        ("Bijlage", f"{noord[:36]}-2"),
        ("Tekening", noord),
    ]
    for zaak in fake(zs).zaken:
        linked = {z["informatieobject"] for z in on_zaak(zs, "zaakinformatieobjecten", zaak)}
        [tekening] = [d for d in docs if d["url"] in linked]
        assert type_of(zs, tekening) == ("Bijlage" if zaak["identificatie"].startswith("MLD-") else "Tekening")
