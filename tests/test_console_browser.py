"""Issue 10, the console in a real browser: Debian's headless Chromium through its chromedriver (Selenium; no
browser download), against ``loket-adapter serve`` as a subprocess delivering to the fake ZGW zaaksysteem.

A beheerder logs in, filters to dead messages, opens one, the cause is fixed (the zaaksysteem answers again),
resends it and sees it delivered; a form posted without its CSRF token is refused; an operator sees BSN and
names masked and cannot resend, not even with a forged POST; an idle session is logged out. The list and the
detail page are photographed (``LOKET_SCREENSHOTS=docs`` writes them to docs/, as README shows them).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tests.conftest import ROOT, Server, drop_database
from tests.delivery_env import Zaaksysteem, adapter_with_delivery, needs_zgw_specs, wait_for
from tests.soap import fixture, post, with_reference

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
pytestmark = [
    needs_zgw_specs,
    pytest.mark.slow,
    pytest.mark.skipif(
        not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
        reason="chromium and chromium-driver (Debian packages, installed by .ci/run) are absent",
    ),
]
PASSWORD = "correct horse battery"
IDLE_SECONDS = 4.8  # [console] idle_minutes = 0.08 below


def add_user(server: Server, name: str, role: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "adapter", "--config", str(server.config), "users", "add", name, "--role", role,
         "--password-stdin"],
        cwd=ROOT, input=PASSWORD + "\n", capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr


@pytest.fixture
def served(tmp_path: Path, zs: Zaaksysteem) -> Iterator[Server]:
    server = adapter_with_delivery(tmp_path, zs, max_attempts=2)
    server.config.write_text(
        server.config.read_text(encoding="utf-8") + "\n[console]\nidle_minutes = 0.08\n", encoding="utf-8"
    )
    server.start()
    yield server
    server.stop()
    drop_database(server.db_url)


@pytest.fixture
def browser() -> Iterator[object]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        "--window-size=1400,1000",
    ):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def send_aanvraag(server: Server, nummer: str) -> None:
    body = fixture("omvDi01AanbiedenAanvraag").replace(b">1234567<", f">{nummer}<".encode())
    assert post(server.soap_url, with_reference(body, uuid.uuid4().hex[:30])).status == 200


def states(server: Server) -> dict[str, str]:
    engine = create_engine(server.db_url)
    try:
        with engine.connect() as conn:
            return dict(conn.execute(text("SELECT nummer, state FROM messages")).tuples().all())
    finally:
        engine.dispose()


def screenshot(driver: object, tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    assert driver.save_screenshot(str(path))  # type: ignore[attr-defined]
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000
    if target := os.environ.get("LOKET_SCREENSHOTS"):
        shutil.copy(path, ROOT / target / name)


def test_operators_console_in_chromium(served: Server, zs: Zaaksysteem, browser: object, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    def until(cond: object, what: str) -> None:
        """A click starts a navigation; read the page only once it shows what the click led to."""
        WebDriverWait(d, 20).until(cond, message=what)  # type: ignore[arg-type]

    d = browser
    find = d.find_element  # type: ignore[attr-defined]
    add_user(served, "bea", "beheerder")
    add_user(served, "otto", "operator")
    send_aanvraag(served, "7000001")  # delivered
    wait_for(lambda: states(served).get("7000001") == "delivered", what="the first aanvraag delivered")
    zs.fake.fail_next("POST", "/zaken", status=503, times=1000)  # type: ignore[attr-defined]
    for nummer in ("7000002", "7000003"):
        send_aanvraag(served, nummer)
    wait_for(lambda: [states(served).get(n) for n in ("7000002", "7000003")] == ["dead", "dead"], what="two dead")
    base = f"http://localhost:{served.port}"  # localhost: browsers keep its Secure (__Host-) cookies over http

    def log_in(name: str) -> None:
        d.get(f"{base}/console/messages")  # type: ignore[attr-defined]
        assert d.current_url.endswith("/console/login")  # type: ignore[attr-defined]
        find(By.ID, "name").send_keys(name)
        find(By.ID, "password").send_keys(PASSWORD)
        find(By.ID, "login").click()
        until(lambda drv: drv.find_elements(By.ID, "who"), "logged in")
        assert f"{name} (" in find(By.ID, "who").text

    # a beheerder: filter to the dead ones, open one, fix the cause, resend, see it delivered
    log_in("bea")
    Select(find(By.ID, "f-state")).select_by_value("dead")
    find(By.ID, "apply").click()
    until(lambda drv: "state=dead" in drv.current_url, "the filtered list")
    rows = d.find_elements(By.CSS_SELECTOR, "#log tbody tr")  # type: ignore[attr-defined]
    assert len(rows) == 2 and all("dead" in r.find_element(By.CLASS_NAME, "state").text for r in rows)
    assert find(By.ID, "count-dead").text == "dead 2"
    screenshot(d, tmp_path, "console-list.png")
    dead_id = rows[-1].find_element(By.TAG_NAME, "a").text
    rows[-1].find_element(By.TAG_NAME, "a").click()
    until(lambda drv: drv.current_url.endswith(f"/console/messages/{dead_id}"), "the detail page")
    assert find(By.ID, "state").text == "dead"
    assert "Every attempt failed" in find(By.ID, "next").text and "HTTP 503" in find(By.ID, "last-error").text
    assert "999993653" not in d.page_source  # type: ignore[attr-defined]  # masked for a beheerder too, until unmasked
    screenshot(d, tmp_path, "console-detail.png")
    zs.fake.clear_faults()  # type: ignore[attr-defined]  # the cause: the zaaksysteem is back
    find(By.ID, "resend").click()
    until(lambda drv: drv.current_url.endswith("/resend"), "the resend's outcome")
    assert "Resend: 1 of 1 succeeded" in find(By.TAG_NAME, "h1").text
    assert f"message {dead_id}: done" in find(By.ID, "outcomes").text
    d.get(f"{base}/console/messages/{dead_id}")  # type: ignore[attr-defined]
    assert find(By.ID, "state").text == "delivered" and find(By.ID, "delivery-state").text == "done"

    # a form posted without its CSRF token is refused, and changes nothing
    other = next(n for n, s in states(served).items() if s == "dead")
    d.get(f"{base}/console/messages?nummer={other}")  # type: ignore[attr-defined]
    find(By.CSS_SELECTOR, "#log tbody tr a").click()
    until(lambda drv: drv.find_elements(By.ID, "next"), "the detail page")
    d.execute_script("document.querySelectorAll('input[name=csrf]').forEach(e => e.remove())")  # type: ignore[attr-defined]
    find(By.ID, "resend").click()
    until(lambda drv: drv.find_elements(By.ID, "refused"), "the refusal")
    assert "CSRF token is missing or wrong" in find(By.ID, "refused").text
    assert states(served)[other] == "dead"
    d.back()  # type: ignore[attr-defined]
    d.refresh()  # type: ignore[attr-defined]
    find(By.ID, "logout").click()
    until(lambda drv: drv.current_url.endswith("/console/login"), "the login page")

    # an operator: masked, no actions, and a forged POST (with the session's own token) is refused
    log_in("otto")
    d.get(f"{base}/console/messages?nummer={other}")  # type: ignore[attr-defined]
    find(By.CSS_SELECTOR, "#log tbody tr a").click()
    until(lambda drv: drv.find_elements(By.ID, "next"), "the detail page")
    source = d.page_source  # type: ignore[attr-defined]
    assert "personal data masked" in source and "Dakkapel van 3 meter breed" in source
    for value in ("999993653", "Berg", "j.vanderberg@example.org", "0612345678"):
        assert value not in source, value
    assert not d.find_elements(By.ID, "resend") and not d.find_elements(By.ID, "unmask")  # type: ignore[attr-defined]
    d.execute_script(  # type: ignore[attr-defined]
        """const form = document.createElement('form');
        form.method = 'post';
        form.action = location.pathname + '/resend';
        form.appendChild(document.querySelector('input[name=csrf]').cloneNode());
        document.body.appendChild(form);
        form.submit();"""
    )
    until(lambda drv: drv.find_elements(By.ID, "refused"), "the refusal")
    assert "your role (operator) can look, not act" in find(By.ID, "refused").text
    assert states(served)[other] == "dead"
    d.back()  # type: ignore[attr-defined]

    # idle: no request for longer than idle_minutes logs out
    time.sleep(IDLE_SECONDS + 1)
    d.refresh()  # type: ignore[attr-defined]
    until(lambda drv: drv.current_url.endswith("/console/login?expired=1"), "the login page after idling")  # type: ignore[attr-defined]
    assert "logged out after 0.08 minutes without activity" in find(By.ID, "expired").text
