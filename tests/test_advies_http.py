"""The zaaksysteem's HTTP triggers of adviesverzoeken (issue 9, item 4), against a real ``serve``: the
authenticated endpoint, withdrawing, and a ZGW notification (Notificaties API 1.0) that a mapping rule
turns into an adviesverzoek. The relays go to the fake loket as in ``test_advies_stuf_lvo``."""

from __future__ import annotations

import shlex
import tomllib
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest

from adapter.config import Settings
from tests.conftest import ROOT
from tests.delivery_env import cli, needs_zgw_specs, wait_for
from tests.test_advies_stuf_lvo import ADVISEUR, TOKEN, Env, L, sent_requests, start_env

pytestmark = needs_zgw_specs
AUTH = {"Authorization": f"Bearer {TOKEN}"}
env_fixture = pytest.fixture(scope="module", name="env")(start_env)


def call(env: Env, path: str, body: Any, **headers: str) -> httpx.Response:
    return httpx.post(f"{env.server.url}{path}", json=body, headers={**AUTH, **headers}, timeout=30)


def zaak_url(env: Env) -> str:
    return str(env.zs.fake.zaken[0]["url"])  # type: ignore[attr-defined]


def test_the_endpoint_needs_the_token(env: Env) -> None:
    body = {"zaak": "OLO-1234567", "adviseur": ADVISEUR}
    r = httpx.post(f"{env.server.url}/advies/adviesverzoeken", json=body, timeout=30)
    assert r.status_code == 401 and r.headers["content-type"] == "application/problem+json"
    r = call(env, "/advies/adviesverzoeken", body, Authorization="Bearer not-the-token")
    assert r.status_code == 401
    assert "ADV-" not in env.advies("list")


def test_http_trigger_is_relayed_and_idempotent_by_key(env: Env) -> None:
    body = {
        "zaak": zaak_url(env),  # by URL: the adapter knows which aanvraag made it
        "adviseur": ADVISEUR,
        "documenten": ["1234567-2"],
        "einddatum": str(date.today() + timedelta(days=7)),
        "omschrijving": "Advies brandveiligheid",
    }
    r = call(env, "/advies/adviesverzoeken", body, **{"Idempotency-Key": "zs-42"})
    assert r.status_code == 201, r.text
    made = r.json()
    assert made["state"] == "uitgezet" and made["aanvraagnummer"] == "1234567"
    assert made["einddatum"] == body["einddatum"] and made["documenten"] == ["1234567-2"]
    again = call(env, "/advies/adviesverzoeken", body, **{"Idempotency-Key": "zs-42"})
    assert again.status_code == 200 and again.json()["adviesverzoekId"] == made["adviesverzoekId"]
    av_id = made["adviesverzoekId"]
    wait_for(lambda: len(sent_requests(env.loket, av_id)) == 1, what="vrgDi01AanvragenAdvies at the loket")
    el = sent_requests(env.loket, av_id)[0]
    assert el.findtext(f"{L}adviesaanvraag/{L}omschrijving") == "Advies brandveiligheid"
    assert el.findtext(f"{L}adviesaanvraag/{L}einddatum") == str(body["einddatum"]).replace("-", "")


def test_http_trigger_refuses_what_cannot_be_an_adviesverzoek(env: Env) -> None:
    r = call(env, "/advies/adviesverzoeken", {"zaak": "OLO-1234567", "adviseur": "00000009999999999000"})
    assert r.status_code == 400 and "is not an [adviseurs.NAME]" in r.json()["detail"]
    r = call(env, "/advies/adviesverzoeken", {"zaak": "OLO-1234567"})
    assert r.status_code == 400 and "adviseur" in r.json()["detail"]
    r = call(env, "/advies/adviesverzoeken", {"zaak": "OLO-1234567", "adviseur": ADVISEUR, "kleur": "rood"})
    assert r.status_code == 400 and "unknown fields: kleur" in r.json()["detail"]


def test_intrekken_over_http(env: Env) -> None:
    made = call(env, "/advies/adviesverzoeken", {"zaak": "OLO-1234567", "adviseur": ADVISEUR}).json()
    r = call(env, "/advies/intrekken", {"adviesverzoekId": made["adviesverzoekId"]})
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "ingetrokken"
    assert "StUF-LVO contract has no message" in r.json()["toelichting"]
    assert call(env, "/advies/intrekken", {"adviesverzoekId": "ADV-00000000-0000000000"}).status_code == 404


def notificatie(env: Env, status: dict[str, Any], **changes: Any) -> dict[str, Any]:
    zaak = env.zs.fake.zaken[0]  # type: ignore[attr-defined]
    return {
        "kanaal": "zaken",
        "hoofdObject": zaak["url"],
        "resource": "status",
        "resourceUrl": status["url"],
        "actie": "create",
        "aanmaakdatum": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "kenmerken": {"bronorganisatie": zaak["bronorganisatie"], "zaaktype": zaak["zaaktype"]},
        **changes,
    }


def test_a_zgw_notification_matching_a_rule_puts_out_one_adviesverzoek(env: Env) -> None:
    """The start status (statustype "Ontvangen") matches the env's [[adviesverzoeken]] rule: one
    adviesverzoek with every bijlage of the aanvraag, however often the notification comes."""
    status = env.zs.fake.statussen[0]  # type: ignore[attr-defined]
    before = env.advies("list")
    for _ in range(2):  # the Notificaties API retries: still one
        r = call(env, "/zgw/notificaties", notificatie(env, status))
        assert r.status_code == 204, r.text
    listed = [line for line in env.advies("list").splitlines() if line not in before.splitlines()]
    assert len(listed) == 1, listed
    av_id = listed[0].split()[0]
    wait_for(lambda: len(sent_requests(env.loket, av_id)) == 1, what="vrgDi01AanvragenAdvies at the loket")
    el = sent_requests(env.loket, av_id)[0]
    assert el.findtext(f"{L}adviesaanvraag/{L}omschrijving") == "Welstandsadvies (regel)"
    assert [b.text for b in el.iter(f"{L}bijlageId")] == ["1234567-1", "1234567-2"]
    assert "trigger: notificatie" in env.advies("show", av_id)


def test_a_notification_no_rule_matches_changes_nothing(env: Env) -> None:
    status = env.zs.fake.statussen[0]  # type: ignore[attr-defined]
    before = env.advies("list")
    for other in ({"actie": "update"}, {"resource": "zaak", "resourceUrl": zaak_url(env)}, {"kanaal": "documenten"}):
        assert call(env, "/zgw/notificaties", notificatie(env, status, **other)).status_code == 204
    assert env.advies("list") == before


def test_a_notification_that_is_not_one_is_400(env: Env) -> None:
    r = call(env, "/zgw/notificaties", {"kanaal": "zaken"})
    assert r.status_code == 400 and "hoofdObject" in r.json()["detail"]


# -- the README's commands, as typed ---------------------------------------------------------------------

README_ID = "ADV-20261205-1a2b3c4d5e"


def readme_commands() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = text.split("<!-- advies commands -->\n```bash\n", 1)[1].split("\n```", 1)[0]
    return [line.split("  #")[0].strip() for line in block.replace("\\\n", " ").splitlines() if line.strip()]


def test_the_readme_commands_run(env: Env) -> None:
    commands = readme_commands()
    assert [c.split()[0] for c in commands] == [".venv/bin/loket-adapter"] * 4 + ["curl"]
    made = None
    for command in commands:
        words = shlex.split(command.replace("$LOKET_ADVIES_TOKEN", TOKEN))
        if words[0] == "curl":
            headers = dict(w.split(": ", 1) for w in (words[i + 1] for i, w in enumerate(words) if w == "-H"))
            data = words[words.index("-d") + 1]
            url = next(w for w in words if w.startswith("http")).replace("http://127.0.0.1:8080", env.server.url)
            r = httpx.post(url, content=data, headers=headers, timeout=30)
            assert r.status_code == 201, r.text
            assert r.json()["documenten"] == ["1234567-2"]
            continue
        args = [made if w == README_ID and made else w for w in words[1:]]
        done = cli(env.server, *args)
        assert done.returncode == 0, f"{command}: {done.stderr}{done.stdout}"
        if args[:2] == ["advies", "aanvragen"]:
            made = done.stdout.split()[1].rstrip(":")
            assert made.startswith("ADV-"), done.stdout
    assert made and "state: ingetrokken" in env.advies("show", made)


def test_the_readme_config_example_loads() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = text.split("<!-- advies example -->\n```toml\n", 1)[1].split("\n```", 1)[0]
    data = tomllib.loads(block.replace("${LOKET_ADVIES_TOKEN}", TOKEN))
    settings = Settings.model_validate(
        {**data, "stuf": {"ontvangers": [{"organisatie": "00000001002564440000", "applicatie": "ZAAKSYSTEEM"}]}}
    )
    assert settings.adviseurs["welstand"].channel == "stuf-lvo"
