"""The README's resend commands as an operator types them: several ids at once, and every dead delivery
of the last 24 hours; each prints the real outcome and exits non-zero while something still fails."""

from __future__ import annotations

import subprocess

from sqlalchemy import text

from adapter.services import Services
from tests.delivery_env import Zaaksysteem, cli_with, needs_zgw_specs
from tests.soap import fixture
from tests.test_delivery_zgw import drain, receive

pytestmark = needs_zgw_specs


def loket_adapter(sv: Services, *args: str) -> subprocess.CompletedProcess[str]:
    return cli_with(sv.settings.source, *args)


def make_dead(sv: Services, zs: Zaaksysteem, n: int) -> list[int]:
    """n aanvragen (other nummers) whose deliveries die: the zaaksysteem answers 503 until told otherwise."""
    zs.fake.fail_next("POST", "/zaken", status=503, times=1000)  # type: ignore[attr-defined]
    ids = [
        receive(sv, body=fixture("omvDi01AanbiedenAanvraag").replace(b">1234567<", f">{8100000 + i}<".encode()))
        for i in range(n)
    ]
    with sv.engine.begin() as conn:
        conn.execute(text("UPDATE deliveries SET attempts = 4"))  # one attempt left (max_attempts = 5)
    assert drain(sv) == ["dead"] * n
    return ids


def test_resend_several_ids_then_every_dead_one_since_24h(services: Services, zs: Zaaksysteem) -> None:
    a, b, c = make_dead(services, zs, 3)
    still_down = loket_adapter(services, "messages", "resend", str(a), str(b))
    assert still_down.returncode == 1
    assert "0 delivered, 2 not delivered" in still_down.stdout and "HTTP 503" in still_down.stdout
    drain(services)  # the resent ones die again (attempts were reset: retried, then dead)
    zs.fake.clear_faults()  # type: ignore[attr-defined]  # the zaaksysteem is back
    both = loket_adapter(services, "messages", "resend", str(a), str(b))
    assert both.returncode == 0, both.stdout + both.stderr
    assert f"message {a}: done" in both.stdout and f"message {b}: done" in both.stdout
    rest = loket_adapter(services, "messages", "resend", "--state", "dead", "--since", "24h")
    assert rest.returncode == 0, rest.stdout + rest.stderr
    assert f"message {c}: done" in rest.stdout and "1 delivered, 0 not delivered" in rest.stdout
    assert len(zs.fake.zaken) == 3  # type: ignore[attr-defined]
    none_left = loket_adapter(services, "messages", "resend", "--state", "dead", "--since", "24h")
    assert none_left.returncode == 0 and "nothing to resend" in none_left.stdout
