"""Issue 10: logging in to the console with OpenID Connect (``[console.oidc]``), against a fake provider that
checks PKCE, client authentication and single-use codes (tests/fake_oidc.py): the role comes from a claim, a
nested one too; no role, a token for another client, another login's nonce, an expired token, a foreign key, an
HMAC-signed token, a callback in another browser and a replayed callback are all refused."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
import pytest
from sqlalchemy import text
from starlette.testclient import TestClient

from adapter.app import build_app
from adapter.config import load_settings
from adapter.services import Services, open_services
from adapter.simulation.serving import serve_in_thread
from adapter.store.db import upgrade
from tests.conftest import NO_DELIVERY, drop_database, new_database_url, write_config
from tests.fake_oidc import FakeOidc

CALLBACK = "https://testserver/console/oidc/callback"


@pytest.fixture
def provider() -> Iterator[FakeOidc]:
    fake = FakeOidc(
        client_id="loket-console", client_secret="s3cret-for-the-console-of-the-gemeente", redirect_uri=CALLBACK
    )
    url, stop = serve_in_thread(fake.app)
    fake.issuer = url
    yield fake
    stop()


def console_toml(issuer: str, roles_claim: str = "roles") -> str:
    return f"""
[delivery]
enabled = false

[console.oidc]
issuer = "{issuer}"
client_id = "loket-console"
client_secret = "s3cret-for-the-console-of-the-gemeente"
redirect_url = "{CALLBACK}"
roles_claim = "{roles_claim}"
beheerder_roles = ["loket-beheerder"]
operator_roles = ["loket-operator", "medewerker"]
label = "Log in with Gemeente Voorbeeldstad"
"""


@pytest.fixture
def make(tmp_path: Path, provider: FakeOidc) -> Iterator[Any]:
    opened: list[tuple[Services, str]] = []

    def open_(roles_claim: str = "roles", issuer: str | None = None) -> Services:
        url = new_database_url(tmp_path / str(len(opened)))
        (tmp_path / str(len(opened))).mkdir(exist_ok=True)
        config = write_config(
            tmp_path / f"config{len(opened)}.toml", url, 8999, console_toml(issuer or provider.issuer, roles_claim)
        )
        sv = open_services(load_settings(config), with_outbox=False)
        upgrade(sv.engine)
        opened.append((sv, url))
        return sv

    yield open_
    for sv, url in opened:
        sv.close()
        drop_database(url)


def sign_in(c: TestClient, fake: FakeOidc) -> Any:
    """Start at the console, follow the provider's redirect back; the callback's answer."""
    start = c.get("/console/oidc/start", follow_redirects=False)
    assert start.status_code == 303, start.text
    back = httpx.get(start.headers["location"], follow_redirects=False)
    assert back.status_code == 302, back.text
    target = urlparse(back.headers["location"])
    return c.get(f"{target.path}?{target.query}", follow_redirects=False)


def test_the_role_comes_from_the_claim(make: Any, provider: FakeOidc) -> None:
    sv = make()
    with TestClient(build_app(sv), base_url="https://testserver") as c:
        assert (
            'id="oidc"' in c.get("/console/login").text
            and "Log in with Gemeente Voorbeeldstad" in c.get("/console/login").text
        )
        provider.next_user = {"preferred_username": "jansen", "roles": ["medewerker", "loket-beheerder"]}
        done = sign_in(c, provider)
        assert done.status_code == 200 and "url=/console/messages" in done.text
        page = c.get("/console/messages")
        assert page.status_code == 200 and "oidc:jansen (beheerder)" in page.text
    (req,) = provider.token_requests
    assert req["grant_type"] == "authorization_code" and req["redirect_uri"] == CALLBACK and req["code_verifier"]
    with sv.engine.connect() as conn:
        audit = conn.execute(text("SELECT actor, action, reason FROM audit_log")).all()
        pending = conn.execute(text("SELECT count(*) FROM console_logins")).scalar_one()
    assert ("oidc:jansen", "login", "oidc, role beheerder") in [tuple(r) for r in audit]
    assert pending == 0  # the login was taken by its callback


def test_an_issuer_ending_in_a_slash_is_matched_as_written(make: Any, provider: FakeOidc) -> None:
    """Auth0's issuers end in "/": discovery drops it for the path, the tokens' iss keeps it."""
    provider.issuer += "/"
    sv = make(issuer=provider.issuer)
    provider.next_user = {"preferred_username": "jansen", "roles": ["loket-operator"]}
    with TestClient(build_app(sv), base_url="https://testserver") as c:
        assert sign_in(c, provider).status_code == 200
        assert "oidc:jansen (operator)" in c.get("/console/messages").text


def test_a_nested_roles_claim_gives_operator(make: Any, provider: FakeOidc) -> None:
    sv = make(roles_claim="realm_access.roles")
    provider.next_user = {"preferred_username": "pietersen", "realm_access": {"roles": ["loket-operator"]}}
    with TestClient(build_app(sv), base_url="https://testserver") as c:
        assert sign_in(c, provider).status_code == 200
        assert "oidc:pietersen (operator)" in c.get("/console/messages").text


@pytest.mark.parametrize(
    ("tamper", "user", "problem"),
    [
        (None, {"preferred_username": "x", "roles": ["elsewhere"]}, "holds none of the console"),
        (None, {"roles": ["loket-beheerder"]}, "has no usable &#39;preferred_username&#39; claim"),
        ("aud", None, "the ID token is not valid: Audience doesn"),
        ("nonce", None, "the ID token is not for this login (nonce)"),
        ("expired", None, "the ID token is not valid: Signature has expired"),
        ("issuer", None, "the ID token is not valid: Invalid issuer"),
        ("key", None, "the ID token is not valid: Signature verification failed"),
        ("hs256", None, "the ID token is not valid: The specified alg value is not allowed"),
    ],
)
def test_refused_id_tokens(make: Any, provider: FakeOidc, tamper: str | None, user: Any, problem: str) -> None:
    sv = make()
    provider.next_user = user or {"preferred_username": "jansen", "roles": ["loket-beheerder"]}
    provider.tamper = tamper
    with TestClient(build_app(sv), base_url="https://testserver") as c:
        refused = sign_in(c, provider)
        assert refused.status_code == 401 and "Single sign-on failed: " in refused.text
        assert problem in refused.text, refused.text
        assert c.get("/console/messages", follow_redirects=False).status_code == 303


def test_a_callback_in_another_browser_or_twice_is_refused(make: Any, provider: FakeOidc) -> None:
    sv = make()
    provider.next_user = {"preferred_username": "jansen", "roles": ["loket-beheerder"]}
    app = build_app(sv)
    with TestClient(app, base_url="https://testserver") as victim, TestClient(app, base_url="https://testserver") as c:
        start = c.get("/console/oidc/start", follow_redirects=False)
        back = urlparse(httpx.get(start.headers["location"], follow_redirects=False).headers["location"])
        # a link with someone else's code and state, opened in the victim's browser (login CSRF): refused
        planted = victim.get(f"{back.path}?{back.query}", follow_redirects=False)
        assert planted.status_code == 403 and "did not start in this browser" in planted.text
        assert c.get(f"{back.path}?{back.query}", follow_redirects=False).status_code == 200
        # the same callback again, even with the state cookie put back: the login was taken once
        c.cookies.set("__Host-loket-oidc", parse_qs(back.query)["state"][0])
        again = c.get(f"{back.path}?{back.query}", follow_redirects=False)
        assert again.status_code == 403 and "expired or was used already" in again.text


def test_the_provider_unreachable_is_one_line_on_the_login_page(make: Any, provider: FakeOidc) -> None:
    sv = make(issuer="http://127.0.0.1:9")  # nothing listens there
    with TestClient(build_app(sv), base_url="https://testserver") as c:
        r = c.get("/console/oidc/start", follow_redirects=False)
        assert r.status_code == 502 and "Single sign-on failed: the login provider is unreachable" in r.text


@pytest.mark.parametrize(
    ("change", "said"),
    [
        (('beheerder_roles = ["loket-beheerder"]\noperator_roles = ["loket-operator", "medewerker"]\n', ""),
         "console.oidc: beheerder_roles or operator_roles: name the roles that may log in"),
        (('issuer = "http://127.0.0.1:1"', 'issuer = "http://login.example.nl"'),
         "console.oidc.issuer: must be https:// (plain http only for localhost)"),
        (('redirect_url = "https://testserver/console/oidc/callback"', 'redirect_url = "https://testserver/elsewhere"'),
         "console.oidc.redirect_url: String should match pattern"),
    ],
)  # fmt: skip
def test_a_wrong_oidc_table_is_one_line_naming_the_key(tmp_path: Path, change: tuple[str, str], said: str) -> None:
    from adapter.errors import ConfigError

    toml = console_toml("http://127.0.0.1:1").replace(*change)
    config = write_config(tmp_path / "config.toml", "sqlite:///x.db", 8999, toml)
    with pytest.raises(ConfigError) as err:
        load_settings(config)
    assert said in str(err.value) and "\n" not in str(err.value)


def test_the_readme_oidc_example_loads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import re

    from tests.conftest import ROOT

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    (block,) = re.findall(r"```toml\n(\[console\.oidc\]\n.*?)```", readme, re.S)
    monkeypatch.setenv("LOKET_OIDC_SECRET", "from-the-environment")
    settings = load_settings(write_config(tmp_path / "config.toml", "sqlite:///x.db", 8999, NO_DELIVERY + block))
    oidc = settings.console.oidc
    assert oidc is not None and oidc.client_secret == "from-the-environment"
    assert oidc.roles_claim == "realm_access.roles" and oidc.beheerder_roles == ["loket-beheerder"]
