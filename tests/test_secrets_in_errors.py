"""No error text echoes a fragment of a secret (issue 8, item 7): a database password, a werkmap token in a
query, a password in a URL that a validator refuses, a target's JWT secret. Each command is run as an operator
would (a subprocess) against something that fails; stdout and stderr are searched for every five-character
fragment of the secret, as given and as percent-encoded."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import quote

import pytest

from adapter.envsubst import redact_url
from tests.conftest import ROOT
from tests.delivery_env import zgw_target_toml
from tests.test_cli import cli

SECRET = "Zq7!pW@x/9#k%Lm&t=Rv"
OIN = "00000001002564440000"
ONTVANGER = f'\n[[stuf.ontvangers]]\norganisatie = "{OIN}"\napplicatie = "ZAAKSYSTEEM"\n'
ZGW = zgw_target_toml("http://127.0.0.1:9", "${LOKET_T_SECRET}", timeout=2)


def fragments(secret: str, n: int = 5) -> set[str]:
    return {s[i : i + n] for s in (secret, quote(secret, safe="")) for i in range(len(s) - n + 1)}


def assert_no_fragment(text: str) -> None:
    leaked = sorted(f for f in fragments(SECRET) if f in text)
    assert not leaked, f"secret fragments {leaked} in: {text[-600:]}"


def run(tmp_path: Path, toml: str, *command: str) -> str:
    config = tmp_path / "c.toml"
    config.write_text(toml, encoding="utf-8")
    r = cli("--config", config, *command, env={**os.environ, "LOKET_T_SECRET": SECRET})
    text = r.stdout.decode() + r.stderr.decode()
    assert r.returncode != 0, text  # each case fails: the point is what the failure says
    return text


def test_unreachable_postgresql_with_a_password_in_its_url(tmp_path: Path) -> None:
    toml = (
        '[store]\nurl = "postgresql+psycopg://adapter:${LOKET_T_SECRET}@127.0.0.1:9/adapter"\nlock_timeout_ms = 1000\n'
        f'[delivery]\nmappings_dir = "{ROOT / "mappings"}"\n'
    )
    for command in (("messages", "list"), ("check-config",), ("db", "upgrade")):
        text = run(tmp_path, toml + ONTVANGER, *command)
        assert "store unavailable" in text or "connection" in text.lower(), text
        assert_no_fragment(text)


@pytest.mark.parametrize("table", ["werkmap", "loket"])
def test_a_refused_url_with_a_password_is_named_without_it(tmp_path: Path, table: str) -> None:
    key = "base_url" if table == "werkmap" else "url"
    extra = (
        f'oin = "{OIN}"\n'
        if table == "werkmap"
        else f'zender = {{ organisatie = "{OIN}", applicatie = "ZAAKSYSTEEM" }}\n'
        'ontvanger = { organisatie = "00000001800866472000", applicatie = "OLO" }\n'
    )
    toml = (
        f'[store]\nurl = "sqlite:///{tmp_path}/a.db"\n[delivery]\nmappings_dir = "{ROOT / "mappings"}"\n'
        f'[{table}]\n{key} = "ftp://adapter:${{LOKET_T_SECRET}}@werkmap.example/x"\n{extra}' + ZGW + ONTVANGER
    )
    text = run(tmp_path, toml, "check-config")
    assert "not an http(s) URL" in text and "adapter:***@werkmap.example" in text, text
    assert_no_fragment(text)


def test_an_unreachable_target_checked_online(tmp_path: Path) -> None:
    toml = f'[store]\nurl = "sqlite:///{tmp_path}/a.db"\n[delivery]\nmappings_dir = "{ROOT / "mappings"}"\n'
    text = run(tmp_path, toml + ZGW + ONTVANGER, "mappings", "check", "--online")
    assert "127.0.0.1:9" in text, text
    assert_no_fragment(text)


def test_an_unreachable_werkmap_with_a_token_in_its_query(tmp_path: Path) -> None:
    toml = (
        f'[store]\nurl = "sqlite:///{tmp_path}/a.db"\n[delivery]\nmappings_dir = "{ROOT / "mappings"}"\n'
        f'[werkmap]\nbase_url = "http://127.0.0.1:9/api?token=${{LOKET_T_SECRET}}"\noin = "{OIN}"\n'
        "timeout = 1\nretries = 0\n" + ZGW + ONTVANGER
    )
    config = tmp_path / "c.toml"
    config.write_text(toml, encoding="utf-8")
    assert cli("--config", config, "db", "upgrade", env={**os.environ, "LOKET_T_SECRET": SECRET}).returncode == 0
    text = run(tmp_path, toml, "jobs", "run", "werkmap-poll")
    assert "127.0.0.1:9" in text or "connection" in text.lower(), text
    assert_no_fragment(text)


def test_redact_url_hides_passwords_and_query_values_only() -> None:
    assert redact_url("postgresql+psycopg://adapter:p%40ss@db:5432/ad") == "postgresql+psycopg://adapter:***@db:5432/ad"
    assert redact_url("https://w.example/api?token=abc&x=1#f") == "https://w.example/api?token=***&x=***#f"
    assert redact_url("https://user@w.example/api") == "https://user@w.example/api"
    assert redact_url("sqlite:///var/a.db") == "sqlite:///var/a.db"
