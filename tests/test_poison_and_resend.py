"""A poison message (its mapping names a zaaktype the catalogus does not have: a permanent error) goes to
needs-attention at once, without retries, while 50 others are delivered; once the mapping is fixed,
``messages resend`` delivers it and says so truthfully."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tests.conftest import drop_database
from tests.delivery_env import Zaaksysteem, adapter_with_delivery, cli, needs_zgw_specs, start_zaaksysteem, wait_for
from tests.soap import fixture, post, with_reference

pytestmark = [needs_zgw_specs, pytest.mark.slow]


@pytest.fixture
def zs() -> Iterator[Zaaksysteem]:
    z = start_zaaksysteem()
    yield z
    z.stop()


def numbered(n: int) -> bytes:
    body = with_reference(fixture("omvDi01AanbiedenAanvraag"), f"P-{n}")
    return body.replace(b">1234567<", f">{7000000 + n}<".encode())


def test_poison_needs_attention_others_delivered_then_resend_after_fix(tmp_path: Path, zs: Zaaksysteem) -> None:
    srv = adapter_with_delivery(tmp_path, zs, max_attempts=3, workers=3)
    mapping = tmp_path / "mappings" / "voorbeeldstad.toml"
    good = mapping.read_text()
    # the water activiteit is mapped to a zaaktype the catalogus does not have
    mapping.write_text(
        good.replace(
            "[triage]", '[[zaaktypen]]\nactiviteiten = ["grondwater-onttrekken"]\nzaaktype = "ZT-WATER"\n\n[triage]'
        )
    )
    srv.start()
    engine = create_engine(srv.db_url)
    try:
        assert post(srv.soap_url, with_reference(fixture("wwvDi01AanbiedenAanvraag"), "POISON")).status == 200
        for n in range(50):
            assert post(srv.soap_url, numbered(n)).status == 200

        def settled() -> bool:
            with engine.connect() as conn:
                return not conn.execute(
                    text("SELECT count(*) FROM deliveries WHERE state NOT IN ('done','dead','needs-attention')")
                ).scalar_one()

        wait_for(settled, timeout=120, what="all deliveries to settle")
        with engine.connect() as conn:
            states = dict(conn.execute(text("SELECT state, count(*) FROM deliveries GROUP BY state")).all())
            poison = conn.execute(
                text(
                    "SELECT m.id, d.attempts, d.last_error FROM messages m JOIN deliveries d ON d.message_id=m.id "
                    "WHERE m.referentienummer='POISON'"
                )
            ).one()
        assert states == {"done": 50, "needs-attention": 1}
        assert poison.attempts == 1 and "zaaktype 'ZT-WATER' does not exist" in poison.last_error
        assert len(zs.fake.zaken) == 50  # type: ignore[attr-defined]

        listed = cli(srv, "messages", "list", "--state", "needs-attention")
        assert re.search(rf"^\s*{poison.id}\s.*needs-attention", listed.stdout, re.M), listed.stdout

        failed = cli(srv, "messages", "resend", str(poison.id))  # not fixed yet: says so, exit 1
        assert failed.returncode == 1 and "ZT-WATER" in failed.stdout and "0 delivered" in failed.stdout
        assert "not retried: fix the cause" in failed.stdout

        mapping.write_text(good)  # the fix: back to the triage zaaktype
        fixed = cli(srv, "messages", "resend", "--state", "needs-attention")
        assert fixed.returncode == 0, fixed.stdout + fixed.stderr
        assert f"message {poison.id}: done" in fixed.stdout and "1 delivered, 0 not delivered" in fixed.stdout
        assert len(zs.fake.zaken) == 51  # type: ignore[attr-defined]
        shown = cli(srv, "messages", "show", str(poison.id))
        assert "delivery:         done" in shown.stdout and "attempt" in shown.stdout
    finally:
        engine.dispose()
        srv.stop()
        drop_database(srv.db_url)
