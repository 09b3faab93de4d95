"""Adviesverzoeken without servers: the configuration refuses a channel without its table, the mapping
rule is checked by ``mappings check``, the store derives verlopen and keeps a trigger idempotent."""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from adapter.advies import store
from adapter.advies.notificaties import read
from adapter.config import Settings
from adapter.errors import ConfigError, InputError
from adapter.mapping.check import check_dir
from adapter.mapping.loader import load_file
from tests.conftest import ROOT, write_config

STUF = {"ontvangers": [{"organisatie": "00000001002564440000", "applicatie": "ZAAKSYSTEEM"}]}


def test_the_samenwerken_channel_needs_a_samenwerken_table(tmp_path: Path) -> None:
    from adapter.config import load_settings

    toml = '[adviseurs.welstand]\noin = "00000001823288444000"\nchannel = "samenwerken"\n'
    path = write_config(tmp_path / "config.toml", "sqlite:///x.db", 8999, toml)
    with pytest.raises(ConfigError, match=r'adviseurs.welstand.channel: "samenwerken" needs a \[samenwerken\] table'):
        load_settings(path)
    toml += '[samenwerken]\nbase_url = "http://127.0.0.1:1/sw"\noin = "00000001002564440000"\n'
    path = write_config(tmp_path / "config2.toml", "sqlite:///x.db", 8999, toml)
    assert load_settings(path).adviseurs["welstand"].channel == "samenwerken"


def test_an_adviseur_needs_an_oin() -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        Settings.model_validate({"stuf": STUF, "adviseurs": {"x": {"oin": "123"}}})


def _mapping_dir(tmp_path: Path, rule: str) -> Path:
    d = tmp_path / "mappings"
    d.mkdir()
    text = (ROOT / "mappings" / "voorbeeldstad.toml").read_text(encoding="utf-8")
    (d / "voorbeeldstad.toml").write_text(text + rule, encoding="utf-8")
    return d


def test_mappings_check_names_an_unconfigured_adviseur(tmp_path: Path) -> None:
    d = _mapping_dir(tmp_path, '\n[[adviesverzoeken]]\nstatustype = "Advies gevraagd"\nadviseur = "brandweer"\n')
    problems = check_dir(d, {}, online=False, adviseurs={"welstand", "00000001823288444000"})
    errors = [str(p) for p in problems if p.severity == "error" and "adviesverzoeken" in p.key]
    assert len(errors) == 1 and "adviseur 'brandweer' is not configured" in errors[0], errors
    line = int(errors[0].split(":")[1])
    assert (d / "voorbeeldstad.toml").read_text().splitlines()[line - 1].startswith("adviseur")
    assert not [p for p in check_dir(d, {}, online=False, adviseurs={"brandweer"}) if "adviesverzoeken" in p.key]


def test_a_statustype_rule_must_be_on_status_notifications(tmp_path: Path) -> None:
    d = _mapping_dir(tmp_path, '\n[[adviesverzoeken]]\nresource = "zaak"\nstatustype = "X"\nadviseur = "w"\n')
    loaded, problems = load_file(d / "voorbeeldstad.toml")
    assert loaded is None and any('statustype needs resource = "status"' in p.message for p in problems)


def _notificatie(**changes: Any) -> dict[str, Any]:
    return {
        "kanaal": "zaken",
        "hoofdObject": "http://zs/zaken/api/v1/zaken/1",
        "resource": "status",
        "resourceUrl": "http://zs/zaken/api/v1/statussen/1",
        "actie": "create",
        "aanmaakdatum": "2026-12-05T10:00:00Z",
        "kenmerken": {"zaaktype": "http://zs/catalogi/api/v1/zaaktypen/1"},
        **changes,
    }


def test_a_notification_is_read_as_notificaties_api_1_0() -> None:
    n = read(_notificatie())
    assert (n.kanaal, n.resource, n.actie, n.aanmaakdatum.year) == ("zaken", "status", "create", 2026)
    for bad, says in (
        (_notificatie(resourceUrl="statussen/1"), "resourceUrl: not a URL"),
        (_notificatie(aanmaakdatum="gisteren"), "aanmaakdatum"),
        (_notificatie(kenmerken={"a": 1}), "kenmerken"),
        ({"kanaal": "zaken"}, "hoofdObject"),
    ):
        with pytest.raises(InputError, match=says):
            read(bad)


def test_verlopen_is_derived_and_a_trigger_key_makes_one(engine: Any) -> None:
    new = store.NewAdviesverzoek(
        zaak="OLO-1",
        aanvraagnummer="1",
        adviseur_oin="00000001823288444000",
        adviseur="welstand",
        channel="stuf-lvo",
        omschrijving="x",
        einddatum=date.today(),
        documents=(),
        bron="test",
        trigger_key="k1",
    )
    av, made = store.create(engine, new)
    again, made_again = store.create(engine, new)
    assert made and not made_again and again.id == av.id
    assert av.effective_state() == "uitgezet"
    assert av.effective_state(date.today() + timedelta(days=1)) == "verlopen"
    later = date.today() + timedelta(days=1)
    assert [a.id for a in store.list_adviesverzoeken(engine, state="verlopen", today=later)] == [av.id]
    assert store.list_adviesverzoeken(engine, state="uitgezet", today=later) == []
    store.record_advies(engine, av.id, message_id=1, strekking="positief", datum=None)
    got = store.get(engine, av.id)
    assert got is not None and got.effective_state(later) == "gereed"
    with pytest.raises(store.NotAllowed):
        store.intrekken(engine, av.id, relay=False)
