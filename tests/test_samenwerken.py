"""Adviesverzoeken through DSO samenwerken (issue 9 items 4-5, DSO era), against a real ``serve``.

The adapter runs as a subprocess with its delivery workers, the fake ZGW zaaksysteem (validating against the
official OpenAPI files) as target and the fake samenwerken server (strict about what it receives, lists
newest first, playing the adviseur) as ``[samenwerken]``. The adviesverzoek is triggered by the CLI and
relayed by the workers; the advice comes back as a notification that ``samenwerken-poll`` stores, then
acknowledges; its delivery puts the advice on the zaak.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import text

from adapter.errors import StoreUnavailable
from adapter.simulation.fake_samenwerken import FakeSamenwerken
from adapter.simulation.serving import serve_in_thread
from tests.delivery_env import (
    AdviesEnv,
    adviesverzoek_id,
    cli,
    needs_zgw_specs,
    relay_message,
    serving_with_aanvraag,
    start_zaaksysteem,
    wait_for,
)
from tests.soap import LVO, fixture

pytestmark = needs_zgw_specs

ADVISEUR = "00000001823288444000"
OIN = "00000001002564440000"
ADVIES_PDF = b"%PDF-1.4\n% advies brandveiligheid\n%%EOF\n"


def samenwerken_toml(url: str) -> str:
    return f"""
[samenwerken]
base_url = "{url}/overheid/samenwerken/api/behandelen/v4"
oin = "{OIN}"

[adviseurs.brandweer]
oin = "{ADVISEUR}"
naam = "Veiligheidsregio Voorbeeld"
channel = "samenwerken"
"""


@dataclass
class Env(AdviesEnv):
    fake: FakeSamenwerken

    def messages(self, channel: str) -> list[Any]:
        with self.db.connect() as conn:
            q = text(
                "SELECT id, referentienummer, cross_refnummer, nummer FROM messages WHERE channel = :c ORDER BY id"
            )
            return list(conn.execute(q, {"c": channel}))


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    zs = start_zaaksysteem()
    fake = FakeSamenwerken(oin=OIN)
    url, stop_fake = serve_in_thread(fake.app)
    home = tmp_path_factory.mktemp("samenwerken")
    with serving_with_aanvraag(home, zs, samenwerken_toml(url), max_attempts=4) as e:
        yield Env(e.server, e.zs, e.db, fake)
    stop_fake()
    zs.stop()


def _ours(fake: FakeSamenwerken, av_id: str) -> list[tuple[str, Any]]:
    return [(sid, a) for sid, a in fake.actieverzoeken() if a.kenmerk == av_id]


def _bijlage_bytes() -> bytes:
    import base64

    from lxml import etree

    root = etree.fromstring(fixture("omvDi01AanbiedenAanvraag"))
    for b in root.iter(f"{{{LVO}}}bijlage"):
        if b.findtext(f"{{{LVO}}}bijlageId") == "1234567-1":
            return base64.b64decode(b.findtext(f"{{{LVO}}}inhoud") or "")
    raise AssertionError("fixture has no bijlage 1234567-1")


def test_samenwerken_round_trip(env: Env) -> None:
    """CLI → samenwerking + document + actieverzoek at the fake (a lost answer on each create is found again
    by our kenmerk, never made twice) → the adviseur completes it → samenwerken-poll stores and acknowledges
    the notification → the advice document on the zaak, the adviesverzoek gereed with its strekking."""
    env.fake.fail_next("POST", "/samenwerkingen")  # made, answer lost
    env.fake.fail_next("POST", "/documenten")
    env.fake.fail_next("POST", "/actieverzoeken")
    out = env.advies(
        "aanvragen", "--zaak", "OLO-1234567", "--adviseur", "brandweer", "--document", "1234567-1",
        "--omschrijving", "Advies brandveiligheid",
    )  # fmt: skip
    av_id, relay = adviesverzoek_id(out), relay_message(out)
    wait_for(lambda: env.delivered(relay), what="the relay done")
    made = _ours(env.fake, av_id)
    assert len(made) == 1, made  # one actieverzoek, despite the lost answers
    sid, a = made[0]
    s = env.fake.samenwerkingen[sid]
    assert [x.kenmerk for x in env.fake.samenwerkingen.values()].count(av_id) == 1
    assert s.verzoeknummer == "1234567"
    assert len(s.documenten) == 1
    doc = next(iter(s.documenten.values()))
    assert doc.bestandsnaam == "1234567_Bouwtekening.pdf" and doc.data == _bijlage_bytes()
    assert a.document_ids == [doc.document_id] and a.ontvanger_oin == ADVISEUR and a.status == "UITGEZET"
    assert a.omschrijving == "Advies brandveiligheid"
    shown = env.advies("show", av_id)
    assert "state: uitgezet" in shown and f"({sid}/{a.actieverzoek_id})" in shown, shown

    # the adviseur answers; nothing moves until the poll stores the notification
    n = env.fake.complete(a.actieverzoek_id, "positief met voorwaarden", "advies-brandweer.pdf", ADVIES_PDF)
    documents_before = len(env.zs.fake.documenten)  # type: ignore[attr-defined]
    done = cli(env.server, "jobs", "run", "samenwerken-poll")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 notificaties, 1 new" in done.stdout
    assert env.fake.acknowledged == [n["notificatieId"]] and env.fake.pending_notificaties() == []
    stored = [m for m in env.messages("samenwerken") if m.referentienummer == n["notificatieId"]]
    assert len(stored) == 1 and stored[0].cross_refnummer == av_id and stored[0].nummer == "1234567"
    wait_for(lambda: env.delivered(stored[0].id), what="the advice delivered")
    docs = env.zs.fake.documenten  # type: ignore[attr-defined]
    assert len(docs) == documents_before + 1
    assert docs[-1]["bestandsnaam"] == "advies-brandweer.pdf"
    # the strekking (from the actieverzoek) and the configured adviseur's naam on the document itself
    assert docs[-1]["beschrijving"] == (
        f"Advies van Veiligheidsregio Voorbeeld (OIN {ADVISEUR}): strekking positief met voorwaarden"
    )
    shown = env.advies("show", av_id)
    assert "state: gereed" in shown and "strekking positief met voorwaarden" in shown, shown
    assert docs[-1]["url"] in shown
    messages = cli(env.server, "messages", "show", str(stored[0].id)).stdout
    assert f"adviesverzoek {av_id} gereed, strekking positief met voorwaarden" in messages


class _FailingFirstCommit:
    """The store's group-commit writer, except that its first commit fails (the store is unavailable)."""

    def __init__(self, writer: Any) -> None:
        self.writer, self.engine, self.failed = writer, writer.engine, False

    def run(self, write: Any) -> Any:
        if not self.failed:
            self.failed = True
            raise StoreUnavailable("store unavailable: injected")
        return self.writer.run(write)

    def close(self) -> None:
        self.writer.close()


def test_a_notification_is_acknowledged_only_after_it_is_stored(env: Env) -> None:
    from adapter.config import load_settings
    from adapter.jobs.samenwerken_poll import poll
    from adapter.services import open_services

    av_id = adviesverzoek_id(env.advies("aanvragen", "--zaak", "OLO-1234567", "--adviseur", ADVISEUR))
    wait_for(lambda: len(_ours(env.fake, av_id)) == 1, what="the actieverzoek")
    _, a = _ours(env.fake, av_id)[0]
    n = env.fake.complete(a.actieverzoek_id, "negatief", "advies.pdf", b"%PDF-1.4 negatief\n")
    nid = n["notificatieId"]
    services = open_services(load_settings(env.server.config))
    try:
        services.writer = _FailingFirstCommit(services.writer)  # type: ignore[assignment]
        first = poll(services)
        assert first.errors == 1 and "store unavailable" in first.detail
        assert nid not in env.fake.acknowledged and env.fake.pending_notificaties() == [n]
        assert [m for m in env.messages("samenwerken") if m.referentienummer == nid] == []

        env.fake.fail_next("DELETE", f"/notificaties/{nid}", after=False)  # stored, the acknowledgement fails
        second = poll(services)
        assert (second.new, second.errors) == (1, 1)
        assert env.fake.pending_notificaties() == [n]
        third = poll(services)  # offered again: a duplicate, acknowledged now
        assert (third.found, third.new, third.errors) == (1, 0, 0)
        assert env.fake.acknowledged.count(nid) == 1 and env.fake.pending_notificaties() == []
    finally:
        services.close()
    stored = [m for m in env.messages("samenwerken") if m.referentienummer == nid]
    assert len(stored) == 1
    wait_for(lambda: env.delivered(stored[0].id), what="the advice delivered")
    assert "strekking negatief" in env.advies("show", av_id)


def test_intrekken_withdraws_the_actieverzoek(env: Env) -> None:
    out = env.advies("aanvragen", "--zaak", "OLO-1234567", "--adviseur", "brandweer")
    av_id = adviesverzoek_id(out)
    wait_for(lambda: env.delivered(relay_message(out)), what="the relay done")
    out = env.advies("intrekken", av_id)
    assert "the adviseur is told through samenwerken" in out
    wait_for(lambda: _ours(env.fake, av_id)[0][1].status == "INGETROKKEN", what="the actieverzoek withdrawn")
    assert "state: ingetrokken" in env.advies("show", av_id)


def test_a_document_the_adapter_never_received_is_refused_at_once(env: Env) -> None:
    done = cli(env.server, "advies", "aanvragen", "--zaak", "OLO-1234567", "--adviseur", "brandweer",
               "--document", "1234567-2")  # fmt: skip  # no inhoud, no postbox: no bytes here
    assert done.returncode == 1
    assert "document '1234567-2': not a bijlage or werkmap document the adapter received" in done.stderr


def test_the_fake_refuses_what_the_contract_does_not_allow(env: Env) -> None:
    import httpx

    from adapter.config import load_settings

    sid = next(iter(env.fake.samenwerkingen))
    root = load_settings(env.server.config).samenwerken["base_url"]
    h = {"X-Oin": OIN}
    assert httpx.get(f"{root}/samenwerkingen", headers={"X-Oin": ADVISEUR}).status_code == 403
    r = httpx.post(f"{root}/samenwerkingen/{sid}/actieverzoeken", headers=h, json={
        "type": "advies", "ontvangerOin": ADVISEUR, "omschrijving": "x", "einddatum": "2000-01-01",
        "documentIds": [],
    })  # fmt: skip
    assert r.status_code == 400 and "has passed" in r.json()["detail"]
    r = httpx.post(f"{root}/samenwerkingen/{sid}/actieverzoeken", headers=h, json={
        "type": "advies", "ontvangerOin": ADVISEUR, "omschrijving": "x", "einddatum": "2999-01-01",
        "documentIds": ["nope"], "extra": 1,
    })  # fmt: skip
    assert r.status_code == 400 and "unknown fields: extra" in r.json()["detail"]
    data = b"abc"
    r = httpx.post(f"{root}/samenwerkingen/{sid}/documenten", headers=h, files={"bestand": ("a.txt", data)})
    assert r.status_code == 201
    listed = httpx.get(f"{root}/samenwerkingen/{sid}/documenten", headers=h).json()
    assert listed[0]["documentId"] == r.json()["documentId"]  # newest first
    assert listed[0]["sha256"] == hashlib.sha256(data).hexdigest()


def test_the_readme_samenwerken_example_loads() -> None:
    import tomllib

    from adapter.config import Settings
    from adapter.loket.samenwerken import SamenwerkenOptions
    from tests.conftest import ROOT

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = text.split("<!-- samenwerken example -->\n```toml\n", 1)[1].split("\n```", 1)[0]
    data = tomllib.loads(block)
    stuf = {"ontvangers": [{"organisatie": OIN, "applicatie": "ZAAKSYSTEEM"}]}
    settings = Settings.model_validate({**data, "stuf": stuf})
    assert settings.adviseurs["brandweer"].channel == "samenwerken"
    assert SamenwerkenOptions.model_validate(settings.samenwerken).oin == OIN
