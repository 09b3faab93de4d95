"""Tests that kill the surviving mutants of the StUF-ZKN target (issue #12, docs/guarantees.md): each one
fails with a mutant of ``adapter/targets/stuf_zkn/plugin.py`` or ``client.py`` that breaks a guarantee
(one zaak, one document per bijlage, follow-ups on every zaak, a retry adopts only what this delivery
made, transient vs permanent) and passes without it.

Through the same production path as test_stuf_zkn_exactly_once: the real StUF-LVO channel and outbox on
a real database, the fake ZDS zaaksysteem checking every request against the official XSDs."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from adapter.services import Services
from tests import test_stuf_zkn_exactly_once as zx
from tests.conftest import needs_shared
from tests.test_follow_ups_every_zaak import ZKN_SECOND
from tests.test_stuf_zkn_exactly_once import (
    AANVRAAG,
    AANVULLING,
    ADVIES,
    INTREKKING,
    WIJZIGING,
    Zkn,
    adapter,
    assert_exactly_once,
    delivered,
    deliveries,
    drain,
    receive,
    zaaksysteem,
)

pytestmark = needs_shared


@pytest.fixture
def zkn() -> Iterator[Zkn]:
    with zaaksysteem() as z:
        yield z


# -- zaak: adopted only when it is this verzoek's -----------------------------------------------------------


def test_a_zaak_under_our_identificatie_with_our_kenmerk_but_another_zaaktype_is_refused(
    tmp_path: Path, zkn: Zkn
) -> None:
    """OLO-1234567 exists with our verzoeknummer as kenmerk but zaaktype ZT-ANDERS: not the zaak this
    delivery makes (ZT-OMV-REG). After an uncertain creeerZaak the retry refuses it: needs-attention, no
    zaak link, nothing put on that zaak."""
    zkn.fake.add_zaak("OLO-1234567", "ZT-ANDERS", kenmerk="1234567")
    zkn.fake.fail_next("creeerZaak", status=500)
    with adapter(tmp_path, zkn, zaak_identificatie=True) as sv:
        receive(sv, AANVRAAG)
        assert drain(sv) == ["retry", "needs-attention"]
        [d] = deliveries(sv)
        assert "OLO-1234567 exists in the zaaksysteem but is not verzoek 1234567's" in d.last_error, d.last_error
        assert "zaaktype ZT-ANDERS)" in d.last_error, d.last_error
        with sv.engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM zaak_links")).scalar_one() == 0
    assert zkn.fake.documenten == {} and zkn.fake.statussen == []


# -- document: one per bijlage, with its metadata -------------------------------------------------------------


def test_each_document_names_the_initiatiefnemer_as_auteur_else_the_omgevingsloket(tmp_path: Path, zkn: Zkn) -> None:
    """The aanvraag's bijlagen carry the initiatiefnemer's name as auteur; an advies (no initiatiefnemer in
    the message) carries "Omgevingsloket", never the placeholder "onbekend"."""
    with adapter(tmp_path, zkn) as sv:
        delivered(sv, AANVRAAG, ADVIES)
    assert {d["titel"]: d["auteur"] for d in zkn.fake.documenten.values()} == {
        "1234567_Bouwtekening.pdf": "J.A. van der Berg",
        "1234567_Foto_voorgevel.jpg": "J.A. van der Berg",
        "1234567_Advies_welstand.pdf": "Omgevingsloket",
    }


#: The aanvraag's zaaktype with a profile of its own whose map makes every bijlage a "Bijlage" (the
#: defaults map a Bouwtekening to "Tekening").
OWN_TYPES = """
[profiles.eigen]
statustype_start = 1
statustype_intrekking = 3
informatieobjecttypen = { "*" = "Bijlage" }
"""


def test_a_follow_ups_documents_take_the_types_of_the_zaaks_own_profile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The aanvulling's Bouwtekening goes onto a zaak whose zaaktype's profile makes it a "Bijlage": it
    is sent as that type, not as the defaults' "Tekening"."""
    mapping = zx.MAPPING.replace('zaaktype = "ZT-OMV-REG"\n', 'zaaktype = "ZT-OMV-REG"\nprofile = "eigen"\n')
    monkeypatch.setattr(zx, "MAPPING", mapping + OWN_TYPES)
    with zaaksysteem() as z, adapter(tmp_path, z) as sv:
        delivered(sv, AANVRAAG, AANVULLING)
    assert {d["titel"]: d["dct.omschrijving"] for d in z.fake.documenten.values()} == {
        "1234567_Bouwtekening.pdf": "Bijlage",
        "1234567_Foto_voorgevel.jpg": "Bijlage",
        "1234567_Bouwtekening_v2.pdf": "Bijlage",
    }


# -- status: recognised by its toelichting or its datumStatusGezet, never guessed ----------------------------


def test_a_status_kept_to_the_second_without_toelichting_is_adopted_by_its_datum(tmp_path: Path) -> None:
    """A zaaksysteem that keeps no toelichting but datumStatusGezet to the second: after a lost answer the
    retry recognises its own status by the checkpointed datumStatusGezet alone and adopts it (not
    Ambiguous, not sent again)."""
    with zaaksysteem(keeps_toelichting=False) as z, adapter(tmp_path, z) as sv:
        z.fake.fail_next("actualiseerZaakstatus", status=500, after_processing=True)
        receive(sv, AANVRAAG)
        assert drain(sv) == ["retry", "done"]
    assert z.fake.count("actualiseerZaakstatus") == 1 and z.fake.count("geefZaakdetails") >= 1
    assert_exactly_once(z.fake, AANVRAAG)


def test_our_status_beside_one_without_datum_or_toelichting_is_ambiguous(tmp_path: Path) -> None:
    """The retry finds our status (its toelichting names this message) and another status 1 with neither
    toelichting nor datumStatusGezet, which may be ours as well: Ambiguous naming both, nothing adopted or
    resent."""
    with zaaksysteem() as z, adapter(tmp_path, z) as sv:
        z.fake.fail_next("actualiseerZaakstatus", status=500, after_processing=True)
        receive(sv, AANVRAAG)
        assert sv.outbox is not None
        assert [r.state for r in sv.outbox.work_once()] == ["retry"]
        [ours] = z.fake.statussen
        z.fake.add_status(ours["zaak"], 1, "", None)
        assert drain(sv) == ["needs-attention"]
        [d] = deliveries(sv)
        assert "has 2 statuses that may be the one" in d.last_error, d.last_error
        assert re.search(r"status 1 gezet \? \(zonder toelichting\)", d.last_error), d.last_error
    assert z.fake.count("actualiseerZaakstatus") == 1 and len(z.fake.statussen) == 2


# -- follow-ups: every zaak, under step keys an interrupted earlier delivery recognises -----------------------


def step_keys(sv: Services, delivery_id: int) -> list[str]:
    """The checkpoint keys of a delivery (not the worker's own ``_run``)."""
    with sv.engine.connect() as conn:
        return list(
            conn.execute(
                text("SELECT key FROM delivery_steps WHERE delivery_id = :id AND key != '_run' ORDER BY key"),
                {"id": delivery_id},
            ).scalars()
        )


def test_follow_ups_on_two_zaken_keep_the_first_zaaks_old_step_keys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The aanvraag makes two zaken (ZT-OMV-REG, ZT-MELD). The intrekking's status and the wijziging's
    gemachtigde on the first zaak are checkpointed under the keys these follow-ups had before they reached
    every zaak (``status:intrekking``, ``rol:gemachtigde``), so a delivery an earlier release interrupted
    finishes without a second status or rol; the second zaak's keys end in its zaaktype."""
    monkeypatch.setattr(zx, "MAPPING", zx.MAPPING + ZKN_SECOND)
    with zaaksysteem() as z, adapter(tmp_path, z) as sv:
        delivered(sv, AANVRAAG, INTREKKING, WIJZIGING)
        assert step_keys(sv, 2) == [
            "status:intrekking",
            "status:intrekking:ZT-MELD",
            "status:intrekking:ZT-MELD:gezet",
            "status:intrekking:gezet",
        ]
        assert step_keys(sv, 3) == [
            "rol:gemachtigde",
            "rol:gemachtigde:ZT-MELD",
            "rol:gemachtigde:ZT-MELD:gepland",
            "rol:gemachtigde:gepland",
        ]
