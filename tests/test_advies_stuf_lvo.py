"""Adviesverzoeken through StUF-LVO (issue 9, items 4 and 5), over HTTP against a real ``serve``.

The adapter runs as a subprocess with its delivery workers, the fake ZGW zaaksysteem (validating against
the official OpenAPI files) as target and the fake loket (validating every message against our StUF-LVO
schema, answering as a StUF end node) as ``[loket]``. The adviesverzoek is triggered by the CLI; its relay
is the workers' job; the advice comes back as ``vrgDi01VoegAdviesToe`` on the SOAP endpoint.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import pytest
from lxml import etree
from sqlalchemy import text

from adapter.simulation.fake_loket import ENDPOINT_PATH, FakeLoket
from adapter.simulation.serving import serve_in_thread
from tests.conftest import ROOT
from tests.delivery_env import (
    AdviesEnv,
    adviesverzoek_id,
    cli,
    copy_mappings,
    needs_zgw_specs,
    relay_message,
    serving_with_aanvraag,
    start_zaaksysteem,
    wait_for,
)
from tests.soap import LVO, fixture, post, with_reference

pytestmark = needs_zgw_specs

ADVISEUR = "00000001823288444000"  # the omgevingsdienst of the contract's vrgDi01VoegAdviesToe
TOKEN = "a-zaaksysteem-token-of-some-length"
L = f"{{{LVO}}}"


def adviseurs_toml(loket_url: str) -> str:
    return f"""
[loket]
url = "{loket_url}{ENDPOINT_PATH}"
zender = {{ organisatie = "00000001002564440000", applicatie = "ZAAKSYSTEEM" }}
ontvanger = {{ organisatie = "00000001800866472000", applicatie = "OLO" }}

[advies]
termijn_dagen = 14
api_token = "{TOKEN}"

[adviseurs.welstand]
oin = "{ADVISEUR}"
naam = "Omgevingsdienst Voorbeeldregio"
channel = "stuf-lvo"
"""


#: A ZGW notification rule (tests/test_advies_http.py): a status "Ontvangen" asks welstand for advice.
ADVIES_RULE = """
[[adviesverzoeken]]
kanaal = "zaken"
resource = "status"
actie = "create"
statustype = "Ontvangen"
adviseur = "welstand"
omschrijving = "Welstandsadvies (regel)"
"""


@dataclass
class Env(AdviesEnv):
    loket: FakeLoket

    def soap(self, body: bytes, name: str) -> None:
        answer = post(self.server.soap_url, with_reference(body, uuid.uuid4().hex[:30]), f'"{LVO}/{name}"')
        assert answer.status == 200, answer.body.decode()


def start_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    """The adapter (serve, with the notification rule), the fake ZGW, the fake loket; the aanvraag delivered."""
    zs = start_zaaksysteem()
    loket = FakeLoket()
    loket_url, stop_loket = serve_in_thread(loket)
    home = tmp_path_factory.mktemp("advies")
    mappings = copy_mappings(home)
    with (mappings / "voorbeeldstad.toml").open("a", encoding="utf-8") as f:
        f.write(ADVIES_RULE)
    with serving_with_aanvraag(home, zs, adviseurs_toml(loket_url), max_attempts=3, mappings=mappings) as e:
        yield Env(e.server, e.zs, e.db, loket)
    stop_loket()
    zs.stop()


env_fixture = pytest.fixture(scope="module", name="env")(start_env)


def advies_toe(av_id: str, strekking: str = "positief") -> bytes:
    """The contract's vrgDi01VoegAdviesToe answering our adviesverzoek (crossRefnummer and adviesverzoekId)."""
    body = fixture("vrgDi01VoegAdviesToe").replace(b"ZS-ADV-2026-0042", av_id.encode())
    return body.replace(b"<LVO:strekking>positief<", f"<LVO:strekking>{strekking}<".encode())


def sent_requests(loket: FakeLoket, av_id: str) -> list[etree._Element]:
    return [
        el
        for el in loket.messages("vrgDi01AanvragenAdvies")
        if el.findtext(f"{L}adviesaanvraag/{L}adviesverzoekId") == av_id
    ]


def test_stuf_advice_round_trip(env: Env) -> None:
    """CLI → schema-valid vrgDi01AanvragenAdvies at the loket → vrgDi01VoegAdviesToe → advice on the zaak,
    adviesverzoek gereed with its strekking."""
    out = env.advies(
        "aanvragen", "--zaak", "OLO-1234567", "--adviseur", ADVISEUR, "--document", "1234567-1",
        "--omschrijving", "Welstandsadvies dakkapel",
    )  # fmt: skip
    av_id = adviesverzoek_id(out)
    assert "uitgezet" in out and "aanvraag 1234567" in out
    wait_for(lambda: len(sent_requests(env.loket, av_id)) == 1, what="vrgDi01AanvragenAdvies at the loket")
    el = sent_requests(env.loket, av_id)[0]  # the fake accepted it: valid against xsd/lvo, right SOAPAction
    content = el.find(f"{L}adviesaanvraag")
    assert content is not None
    assert content.findtext(f"{L}aanvraagnummer") == "1234567"
    assert content.findtext(f"{L}adviseur/{L}oin") == ADVISEUR
    assert content.findtext(f"{L}adviseur/{L}naam") == "Omgevingsdienst Voorbeeldregio"
    assert content.findtext(f"{L}omschrijving") == "Welstandsadvies dakkapel"
    assert content.findtext(f"{L}einddatum") == (date.today() + timedelta(days=14)).strftime("%Y%m%d")
    assert [b.text for b in content.iter(f"{L}bijlageId")] == ["1234567-1"]
    wait_for(lambda: env.delivered(relay_message(out)), what="the relay done")
    shown = env.advies("show", av_id)
    assert "state: uitgezet" in shown and "relay: message" in shown and ": done after 1 attempt" in shown

    documents_before = len(env.zs.fake.documenten)  # type: ignore[attr-defined]
    env.soap(advies_toe(av_id), "vrgDi01VoegAdviesToe")
    advice = env.last_message_id()
    wait_for(lambda: env.delivered(advice), what="the advice delivered")
    docs = env.zs.fake.documenten  # type: ignore[attr-defined]
    assert len(docs) == documents_before + 1
    assert docs[-1]["bestandsnaam"] == "1234567_Advies_welstand.pdf"
    # a behandelaar sees who advised and the strekking on the document itself (Documenten API beschrijving)
    assert docs[-1]["beschrijving"] == (
        "Advies van Omgevingsdienst Voorbeeldregio (OIN 00000001823288444000): strekking positief"
    )
    shown = env.advies("show", av_id)
    assert "state: gereed" in shown, shown
    assert "strekking positief" in shown and f"advies: message {advice}" in shown
    assert docs[-1]["url"] in shown  # the document the advice became on the zaak
    messages = cli(env.server, "messages", "show", str(advice)).stdout
    # the outcome: what the delivery did on the zaak, then what it did to the adviesverzoek
    outcome = "advies bij zaak OLO-1234567; 1 document(en); adviesverzoek {} gereed, strekking positief"
    assert f"outcome:          {outcome.format(av_id)}" in messages, messages


def test_an_advice_for_an_unknown_adviesverzoek_is_delivered_with_a_warning(env: Env) -> None:
    env.soap(advies_toe("ZS-ADV-ONBEKEND-1"), "vrgDi01VoegAdviesToe")
    advice = env.last_message_id()
    wait_for(lambda: env.delivered(advice), what="the advice delivered")
    shown = cli(env.server, "messages", "show", str(advice)).stdout
    assert "adviesverzoek ZS-ADV-ONBEKEND-1 is not known here" in shown, shown


def test_loket_failure_is_retried_then_dead_and_resendable(env: Env) -> None:
    env.loket.fail_next(status=503, times=3)  # max_attempts = 3
    out = env.advies("aanvragen", "--zaak", "OLO-1234567", "--adviseur", ADVISEUR)
    av_id, relay = adviesverzoek_id(out), relay_message(out)

    def dead() -> bool:
        with env.db.connect() as conn:
            row = conn.execute(text("SELECT state, attempts FROM deliveries WHERE message_id = :m"), {"m": relay}).one()
        return tuple(row) == ("dead", 3)

    wait_for(dead, what="the relay dead after 3 attempts")
    assert sent_requests(env.loket, av_id) == []
    assert "relay: message" in (shown := env.advies("show", av_id)) and ": dead after 3 attempt(s)" in shown
    assert "HTTP 503" in shown
    resent = cli(env.server, "messages", "resend", str(relay))
    assert resent.returncode == 0, resent.stdout + resent.stderr
    assert f"message {relay}: done: adviesverzoek {av_id} uitgezet" in resent.stdout
    assert len(sent_requests(env.loket, av_id)) == 1


def test_past_its_einddatum_without_an_advice_it_shows_verlopen(env: Env) -> None:
    out = env.advies("aanvragen", "--zaak", "OLO-1234567", "--adviseur", "welstand", "--einddatum", str(date.today()))
    av_id = adviesverzoek_id(out)
    assert av_id not in env.advies("list", "--state", "verlopen")
    with env.db.begin() as conn:  # time passes
        conn.execute(
            text("UPDATE adviesverzoeken SET einddatum = :d WHERE id = :id"),
            {"d": date.today() - timedelta(days=1), "id": av_id},
        )
    listed = env.advies("list", "--state", "verlopen")
    assert av_id in listed and "verlopen" in listed
    assert av_id not in env.advies("list", "--state", "uitgezet")
    assert "state: verlopen (einddatum" in env.advies("show", av_id)


def test_intrekken_through_stuf_lvo_says_the_loket_is_not_told(env: Env) -> None:
    av_id = adviesverzoek_id(env.advies("aanvragen", "--zaak", "OLO-1234567", "--adviseur", ADVISEUR))
    out = env.advies("intrekken", av_id)
    assert f"adviesverzoek {av_id}: ingetrokken; the StUF-LVO contract has no message" in out
    assert "state: ingetrokken" in env.advies("show", av_id)


def test_cli_refuses_an_unknown_adviseur_and_a_zaak_it_cannot_place(env: Env) -> None:
    done = cli(env.server, "advies", "aanvragen", "--zaak", "OLO-1234567", "--adviseur", "00000009999999999000")
    assert done.returncode == 1 and "is not an [adviseurs.NAME]" in done.stderr
    done = cli(env.server, "advies", "aanvragen", "--zaak", "ZAAK-ONBEKEND", "--adviseur", ADVISEUR)
    assert done.returncode == 1 and "no aanvraag known for zaak ZAAK-ONBEKEND" in done.stderr
    assert ROOT.is_dir()


def test_the_adviesverzoek_is_stored_with_its_relay_in_one_transaction(env: Env, tmp_path: Path) -> None:
    """The row, its relay message and the delivery exist together (the relay message names it)."""
    av_id = adviesverzoek_id(env.advies("aanvragen", "--zaak", "OLO-1234567", "--adviseur", ADVISEUR))
    with env.db.connect() as conn:
        row = conn.execute(
            text(
                "SELECT m.channel, m.message_type, m.referentienummer, d.id IS NOT NULL FROM adviesverzoeken a "
                "JOIN messages m ON m.id = a.message_id LEFT JOIN deliveries d ON d.message_id = m.id WHERE a.id = :i"
            ),
            {"i": av_id},
        ).one()
    assert tuple(row) == ("advies", "adviesverzoek", av_id, True)
