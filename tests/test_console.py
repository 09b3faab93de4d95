"""Issue 10, the console in-process (the app over Starlette's test client, HTTPS base URL so secure cookies
travel): login and its CSRF, roles, masking and unmasking with a reason, resend and mark handled with their
true outcome and audit lines, filters and keyset pages, idle logout, security headers, hostile values escaped.
The browser walk-through is tests/test_console_browser.py."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import text
from starlette.testclient import TestClient

from adapter.app import build_app
from adapter.services import Services
from adapter.store import users
from adapter.store.users import Role
from tests.delivery_env import Zaaksysteem, needs_zgw_specs
from tests.soap import fixture
from tests.test_delivery_zgw import drain, receive
from tests.test_resend_cli import make_dead

pytestmark = needs_zgw_specs
PASSWORD = "correct horse battery"


def add_users(sv: Services) -> None:
    users.add(sv.engine, "bea", Role.BEHEERDER, PASSWORD, actor="test")
    users.add(sv.engine, "otto", Role.OPERATOR, PASSWORD, actor="test")


def csrf_of(html: str) -> str:
    m = re.search(r'name="csrf" value="([^"]+)"', html)
    assert m, "no CSRF token in the page"
    return m.group(1)


def login(client: TestClient, name: str, password: str = PASSWORD) -> Any:
    form = client.get("/console/login")
    return client.post(
        "/console/login",
        data={"csrf": csrf_of(form.text), "name": name, "password": password},
        follow_redirects=False,
    )


def client_for(sv: Services) -> TestClient:
    return TestClient(build_app(sv), base_url="https://testserver")


@pytest.fixture
def console(services: Services) -> Iterator[Callable[[str], TestClient]]:
    add_users(services)
    opened: list[TestClient] = []

    def as_(name: str) -> TestClient:
        c = client_for(services)
        opened.append(c)
        assert login(c, name).status_code == 303
        return c

    yield as_
    for c in opened:
        c.close()


def audit_rows(sv: Services) -> list[tuple[str, str, str | None, str | None]]:
    with sv.engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text("SELECT actor, action, target, reason FROM audit_log ORDER BY id"))]


def delivery_state(sv: Services, mid: int) -> str:
    with sv.engine.connect() as conn:
        return conn.execute(text("SELECT state FROM deliveries WHERE message_id = :m"), {"m": mid}).scalar_one()


# -- login ---------------------------------------------------------------------------------------------


def test_pages_need_a_login_and_the_login_sets_a_secure_strict_session_cookie(services: Services) -> None:
    add_users(services)
    with client_for(services) as c:
        first = c.get("/console/messages", follow_redirects=False)
        assert first.status_code == 303 and first.headers["location"] == "/console/login"
        wrong = login(c, "bea", "not the password at all")
        assert wrong.status_code == 401 and "Wrong name or password (5 wrong ones in a row lock" in wrong.text
        unknown = login(c, "nobody", PASSWORD)
        assert unknown.status_code == 401 and "Wrong name or password (5 wrong ones in a row lock" in unknown.text
        ok = login(c, "bea")
        assert ok.status_code == 303 and ok.headers["location"] == "/console/messages"
        cookie = next(v for k, v in ok.headers.multi_items() if k == "set-cookie" and "loket-console" in v)
        assert cookie.startswith("__Host-loket-console=")
        for flag in ("HttpOnly", "Secure", "SameSite=strict", "Path=/"):
            assert flag.lower() in cookie.lower(), cookie
        page = c.get("/console/messages")
        assert page.status_code == 200 and "bea (beheerder)" in page.text
    # the session row holds the token's hash, never the token
    token = cookie.split(";")[0].split("=", 1)[1]
    with services.engine.connect() as conn:
        keys = conn.execute(text("SELECT id FROM console_sessions")).scalars().all()
    assert keys and token not in keys
    assert ("bea", "login", None, "password, role beheerder") in audit_rows(services)


def test_a_login_post_without_its_csrf_token_is_refused(services: Services) -> None:
    add_users(services)
    with client_for(services) as c:
        c.get("/console/login")
        r = c.post("/console/login", data={"name": "bea", "password": PASSWORD}, follow_redirects=False)
        assert r.status_code == 403 and "The form had expired" in r.text
        assert c.get("/console/messages", follow_redirects=False).status_code == 303  # still not logged in


def test_logout_ends_the_session_server_side(console: Callable[[str], TestClient], services: Services) -> None:
    c = console("otto")
    token = c.cookies.get("__Host-loket-console")
    page = c.get("/console/messages")
    assert c.post("/console/logout", data={"csrf": csrf_of(page.text)}, follow_redirects=False).status_code == 303
    # the old cookie no longer opens anything, even when a copy of it is sent again
    with client_for(services) as other:
        other.cookies.set("__Host-loket-console", token or "")
        assert other.get("/console/messages", follow_redirects=False).status_code == 303


def test_idle_logout_after_the_configured_minutes(delivering: Any) -> None:
    sv = delivering(extra_toml="[console]\nidle_minutes = 0.02\n")  # 1.2 seconds
    add_users(sv)
    with client_for(sv) as c:
        assert login(c, "otto").status_code == 303
        assert c.get("/console/messages").status_code == 200
        time.sleep(1.5)
        r = c.get("/console/messages", follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/console/login?expired=1"
        again = c.get(r.headers["location"])
        assert "You were logged out after 0.02 minutes without activity (or 12 hours after logging in)." in again.text
    assert ("otto", "logout", None, "timed out (idle)") in audit_rows(sv)


def test_a_role_change_ends_the_accounts_sessions(console: Callable[[str], TestClient], services: Services) -> None:
    c = console("bea")
    users.set_role(services.engine, "bea", Role.OPERATOR, actor="admin")
    assert c.get("/console/messages", follow_redirects=False).status_code == 303


# -- the list ------------------------------------------------------------------------------------------


def test_filter_to_dead_counts_on_top_and_keyset_pages(
    console: Callable[[str], TestClient], services: Services, zs: Zaaksysteem
) -> None:
    dead = make_dead(services, zs, 3)
    zs.fake.clear_faults()  # type: ignore[attr-defined]
    delivered = receive(services)
    assert drain(services) == ["done"]
    c = console("otto")
    page = c.get("/console/messages", params={"state": "dead"}).text
    shown = [int(i) for i in re.findall(r'id="row-(\d+)"', page)]
    assert shown == sorted(dead, reverse=True) and delivered not in shown
    assert re.search(r'id="count-dead"[^>]*>dead <b>3</b>', page)
    assert re.search(r'id="count-delivered"[^>]*>delivered <b>1</b>', page)
    assert re.search(r'id="count-orphans"[^>]*>orphans <b>0</b>', page)
    assert "HTTP 503" in page  # the last error, in short
    # a wrong filter is named, and the page still shows the log
    odd = c.get("/console/messages", params={"since": "yesterday-ish"}).text
    assert "filter not applied: use an ISO date/time or an age like 30m, 12h, 7d" in odd
    bogus = c.get("/console/messages", params={"state": "bogus"}).text  # named, not silently ignored
    assert "filter not applied: unknown message state" in bogus
    by_nummer = c.get("/console/messages", params={"nummer": "8100001"}).text
    assert re.findall(r'id="row-(\d+)"', by_nummer) == [str(dead[1])]


def test_keyset_paging_walks_every_row_once(delivering: Any, zs: Zaaksysteem) -> None:
    sv = delivering(extra_toml="[console]\npage_size = 10\n")
    add_users(sv)
    ids = [receive(sv) for _ in range(23)]
    with client_for(sv) as c:
        login(c, "otto")
        seen: list[int] = []
        url: str | None = "/console/messages"
        while url:
            page = c.get(url).text
            seen += [int(i) for i in re.findall(r'id="row-(\d+)"', page)]
            m = re.search(r'<a href="([^"]+)" id="older">', page)
            url = m.group(1).replace("&amp;", "&") if m else None
    assert seen == sorted(ids, reverse=True)


def test_hostile_values_are_escaped(console: Callable[[str], TestClient], services: Services) -> None:
    body = fixture("omvDi01AanbiedenAanvraag")
    mid = receive(services, body=body)
    with services.engine.begin() as conn:
        conn.execute(
            text("UPDATE messages SET referentienummer = :r WHERE id = :m"),
            {"r": "<script>alert(1)</script>", "m": mid},
        )
    c = console("otto")
    for url in ("/console/messages", f"/console/messages/{mid}"):
        r = c.get(url)
        assert "<script>alert(1)</script>" not in r.text and "&lt;script&gt;alert(1)&lt;/script&gt;" in r.text
        assert "script-src 'self'" in r.headers["content-security-policy"]
        assert r.headers["x-frame-options"] == "DENY" and r.headers["cache-control"] == "no-store"


# -- masking -------------------------------------------------------------------------------------------

PERSONAL = ("999993653", "Berg", "j.vanderberg@example.org", "0612345678", "Dorpsstraat", "1234AB")


def test_an_operator_sees_bsn_and_names_masked_and_cannot_act(
    console: Callable[[str], TestClient], services: Services, zs: Zaaksysteem
) -> None:
    (mid,) = make_dead(services, zs, 1)
    c = console("otto")
    page = c.get(f"/console/messages/{mid}")
    assert page.status_code == 200 and "personal data masked" in page.text
    assert "Dakkapel van 3 meter breed" in page.text  # the rest of the message is there
    for value in PERSONAL:
        assert value not in page.text, value
    download = c.get(f"/console/messages/{mid}/body")
    assert download.headers["content-disposition"] == f'attachment; filename="message-{mid}-masked.xml"'
    assert b"Dakkapel" in download.content and not any(v.encode() in download.content for v in PERSONAL)
    assert 'id="resend"' not in page.text and 'id="unmask"' not in page.text
    # what a resend sends now (mappings as they are), masked too
    preview = re.search(r'<pre id="preview">(.*?)</pre>', page.text, re.S)
    assert preview and "→ target zaaksysteem (zgw)" in preview.group(1) and "POST " in preview.group(1)
    csrf = csrf_of(page.text)
    zs.fake.clear_faults()  # type: ignore[attr-defined]
    for path, data in (
        ("resend", {}),
        ("handled", {"reason": "done by hand"}),
        ("unmask", {"reason": "I want to see it"}),
    ):
        r = c.post(f"/console/messages/{mid}/{path}", data={"csrf": csrf, **data})
        assert r.status_code == 403 and "your role (operator) can look, not act" in r.text
    r = c.post("/console/messages/bulk", data={"csrf": csrf, "do": "resend-matching", "state": "dead"})
    assert r.status_code == 403
    assert delivery_state(services, mid) == "dead" and not zs.fake.zaken  # type: ignore[attr-defined]
    audit = c.get("/console/audit")  # beheerders only
    assert audit.status_code == 403 and "The audit log is for beheerders." in audit.text


def test_a_beheerder_unmasks_with_a_reason_that_is_audited(
    console: Callable[[str], TestClient], services: Services
) -> None:
    mid = receive(services)
    c = console("bea")
    page = c.get(f"/console/messages/{mid}").text
    assert "999993653" not in page
    short = c.post(f"/console/messages/{mid}/unmask", data={"csrf": csrf_of(page), "reason": "  "})
    assert short.status_code == 400 and "needs a reason" in short.text
    r = c.post(
        f"/console/messages/{mid}/unmask", data={"csrf": csrf_of(page), "reason": "klacht 2026-114 van aanvrager"}
    )
    assert r.status_code == 200 and "personal data shown (unmasked, logged)" in r.text
    for value in PERSONAL:
        assert value in r.text, value
    raw = c.get(f"/console/messages/{mid}/body")
    with services.engine.connect() as conn:
        stored = conn.execute(text("SELECT body FROM messages WHERE id = :m"), {"m": mid}).scalar_one()
    assert raw.content == stored  # exactly as received
    assert ("bea", "unmasked personal data", f"message {mid}", "klacht 2026-114 van aanvrager") in audit_rows(services)
    assert "klacht 2026-114 van aanvrager" in c.get("/console/audit").text


# -- actions -------------------------------------------------------------------------------------------


def test_resend_needs_the_csrf_token_and_reports_the_true_outcome(
    console: Callable[[str], TestClient], services: Services, zs: Zaaksysteem
) -> None:
    (mid,) = make_dead(services, zs, 1)
    c = console("bea")
    page = c.get(f"/console/messages/{mid}").text
    assert "Every attempt failed" in page and "HTTP 503" in page  # what to do next, and why
    refused = c.post(f"/console/messages/{mid}/resend", data={})
    assert refused.status_code == 403 and "CSRF token is missing or wrong" in refused.text
    wrong = c.post(f"/console/messages/{mid}/resend", data={"csrf": "x" * 43})
    assert wrong.status_code == 403
    assert delivery_state(services, mid) == "dead"
    still_down = c.post(f"/console/messages/{mid}/resend", data={"csrf": csrf_of(page)})
    assert "Resend: 0 of 1 succeeded" in still_down.text and "HTTP 503" in still_down.text
    drain(services)
    zs.fake.clear_faults()  # type: ignore[attr-defined]  # the cause fixed
    ok = c.post(f"/console/messages/{mid}/resend", data={"csrf": csrf_of(page)})
    assert "Resend: 1 of 1 succeeded" in ok.text and f"message {mid}: done" in ok.text
    assert delivery_state(services, mid) == "done" and len(zs.fake.zaken) == 1  # type: ignore[attr-defined]
    assert 'id="state">delivered<' in c.get(f"/console/messages/{mid}").text
    resent = [r for r in audit_rows(services) if r[1] == "resent"]
    assert [r[2] for r in resent] == [f"message {mid}"] * 2 and resent[-1][3].startswith(f"message {mid}: done")


def test_resend_all_matching_the_filter_in_batches_of_bulk_limit(delivering: Any, zs: Zaaksysteem) -> None:
    sv = delivering(extra_toml="[console]\nbulk_limit = 2\n", max_attempts=1)
    add_users(sv)
    zs.fake.fail_next("POST", "/zaken", status=503, times=1000)  # type: ignore[attr-defined]
    ids = [
        receive(sv, body=fixture("omvDi01AanbiedenAanvraag").replace(b">1234567<", f">{8200000 + i}<".encode()))
        for i in range(3)
    ]
    assert drain(sv) == ["dead"] * 3
    zs.fake.clear_faults()  # type: ignore[attr-defined]
    with client_for(sv) as c:
        login(c, "bea")
        csrf = csrf_of(c.get("/console/messages").text)
        first = c.post("/console/messages/bulk", data={"csrf": csrf, "do": "resend-matching", "state": "dead"})
        assert "Resend: 2 of 2 succeeded" in first.text and "1 more match the filter" in first.text
        second = c.post("/console/messages/bulk", data={"csrf": csrf, "do": "resend-matching", "state": "dead"})
        assert "Resend: 1 of 1 succeeded" in second.text and "more match" not in second.text
    assert [delivery_state(sv, m) for m in ids] == ["done"] * 3


def test_mark_handled_needs_a_reason_and_leaves_other_states_alone(
    console: Callable[[str], TestClient], services: Services, zs: Zaaksysteem
) -> None:
    a, b = make_dead(services, zs, 2)
    zs.fake.clear_faults()  # type: ignore[attr-defined]
    done = receive(services)
    drain(services)
    c = console("bea")
    csrf = csrf_of(c.get("/console/messages").text)
    no_reason = c.post("/console/messages/bulk", data={"csrf": csrf, "do": "handled-selected", "id": [a]})
    assert no_reason.status_code == 400 and "needs a reason" in no_reason.text
    r = c.post(
        "/console/messages/bulk",
        data={"csrf": csrf, "do": "handled-selected", "id": [a, done], "reason": "zaak handmatig aangemaakt"},
    )
    assert "Mark handled: 1 of 2 succeeded" in r.text
    assert f"message {done}: not marked handled: its delivery is done" in r.text
    assert delivery_state(services, a) == "handled" and delivery_state(services, b) == "dead"
    assert delivery_state(services, done) == "done"
    page = c.get("/console/messages").text
    assert re.search(r'id="count-handled"[^>]*>handled <b>1</b>', page)
    assert re.search(r'id="count-dead"[^>]*>dead <b>1</b>', page)
    assert ("bea", "marked handled", f"message {a}", "zaak handmatig aangemaakt") in audit_rows(services)
    assert services.outbox is not None and services.outbox.work_once(limit=10) == []  # never claimed again


def test_views_of_jobs_polls_advies_postboxes_and_audit_render(console: Callable[[str], TestClient]) -> None:
    c = console("bea")
    for path, words in (
        ("/console/jobs", ("Scheduled jobs", "werkmap-poll", "purge")),
        ("/console/polls", ("werkmap-poll", "samenwerken-poll")),
        ("/console/advies", ("Adviesverzoeken",)),
        ("/console/postboxes", ("Orphans",)),
        ("/console/audit", ("login",)),
    ):
        r = c.get(path)
        assert r.status_code == 200, path
        for w in words:
            assert w in r.text, (path, w)


def test_every_console_setting_has_its_effect(delivering: Any) -> None:
    off = delivering(extra_toml="[console]\nenabled = false\n")
    with client_for(off) as c:
        assert c.get("/console/messages", follow_redirects=False).status_code == 404
        assert c.get("/console/login").status_code == 404
    plain = delivering(extra_toml="[console]\nsecure_cookies = false\nmax_session_hours = 0.0005\n")  # 1.8 s
    add_users(plain)
    with TestClient(build_app(plain), base_url="http://testserver") as c:
        ok = login(c, "otto")
        cookie = next(v for k, v in ok.headers.multi_items() if k == "set-cookie" and "loket-console" in v)
        assert cookie.startswith("loket-console=") and "secure" not in cookie.lower()
        assert c.get("/console/messages").status_code == 200
        time.sleep(1)
        assert c.get("/console/messages").status_code == 200  # busy, yet ...
        time.sleep(1)
        r = c.get("/console/messages", follow_redirects=False)  # ... at most max_session_hours after login
        assert r.status_code == 303 and r.headers["location"] == "/console/login?expired=1"
    assert ("otto", "logout", None, "timed out (session too old)") in audit_rows(plain)
