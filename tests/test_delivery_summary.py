"""The summary a delivery leaves on its message (`messages show`, the log's `delivered` line) is what an
operator reads instead of opening the zaaksysteem: which zaak, of which zaaktype, whether it went to
triage, how many documents and how many still wait for their postbus file."""

from __future__ import annotations

import re

from sqlalchemy import text

from adapter.services import Services
from tests.delivery_env import Zaaksysteem, needs_zgw_specs
from tests.soap import fixture
from tests.test_delivery_zgw import drain, receive

pytestmark = needs_zgw_specs


def outcome(sv: Services) -> str:
    with sv.engine.connect() as conn:
        return str(conn.execute(text("SELECT outcome FROM deliveries ORDER BY id DESC")).scalars().first())


def test_the_summary_names_the_zaak_its_documents_and_what_waits_for_the_postbus(
    services: Services, zs: Zaaksysteem
) -> None:
    receive(services)
    assert drain(services) == ["done"]
    assert outcome(services) == "zaak OLO-1234567 (ZT-OMV-REG); 2 document(en), 1 zonder inhoud (volgt via postbus)"


def test_the_summary_of_a_triage_zaak_says_triage(services: Services, zs: Zaaksysteem) -> None:
    body = fixture("omvDi01AanbiedenAanvraag").replace(b"dakkapel-plaatsen", b"iets-onbekends")
    receive(services, body=body)
    assert drain(services) == ["done"]
    assert outcome(services) == (
        "zaak OLO-1234567 (ZT-TRIAGE, triage); 2 document(en), 1 zonder inhoud (volgt via postbus)"
    )


def test_without_missing_files_the_summary_counts_only_the_documents(services: Services, zs: Zaaksysteem) -> None:
    """Every bijlage came with its bytes: nothing is said to wait for the postbus."""
    body = re.sub(
        rb"<LVO:bijlage>\s*<LVO:bijlageId>1234567-2</LVO:bijlageId>.*?</LVO:bijlage>",
        b"",
        fixture("omvDi01AanbiedenAanvraag"),
        flags=re.S,
    )
    receive(services, body=body)
    assert drain(services) == ["done"]
    assert outcome(services) == "zaak OLO-1234567 (ZT-OMV-REG); 1 document(en)"
