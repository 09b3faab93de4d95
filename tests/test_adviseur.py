"""As adviseur (issue 9 item 6): ``omvDu01LeverenAanvraag`` asks us for advice on another bevoegd gezag's
aanvraag; its crossRefnummer names that bevoegd gezag's adviesverzoek. Under the mapping's ``[adviseur]``
each adviesverzoek becomes a zaak of its own of the advice zaaktype, with the aanvraagnummer as kenmerk and
its own documents, linked per adviesverzoek; a retry after a lost answer adopts its zaak by identificatie.
Over HTTP against ``serve`` and the fake ZGW; ``mappings check`` offline and online."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from adapter.loket.lvo import INCOMING
from adapter.loket.lvo_parse import parse_verzoek
from adapter.mapping.engine import bounded_identificatie, build_opdracht
from adapter.mapping.loader import load_file
from adapter.model import Soort
from tests.conftest import ROOT, Server, drop_database, make_server
from tests.delivery_env import Zaaksysteem, copy_mappings, delivery_toml, needs_zgw_specs, start_zaaksysteem, wait_for
from tests.soap import LVO, fixture, post, with_reference
from tests.test_mappings_check import Env

pytestmark = needs_zgw_specs

CROSS_REF = "ZS-ADV-2026-0057"  # the fixture's crossRefnummer
OURS = "00000001002564440000"


def leveren(cross_ref: str) -> bytes:
    """The fixture omvDu01LeverenAanvraag for aanvraag 1234612, answering adviesverzoek ``cross_ref``."""
    body = fixture("omvDu01LeverenAanvraag")
    body = body.replace(f">{CROSS_REF}<".encode(), f">{cross_ref}<".encode())
    return with_reference(body, f"T-{uuid.uuid4().hex[:20]}")


def parsed(cross_ref: str = CROSS_REF) -> Any:
    from lxml import etree

    root = etree.fromstring(leveren(cross_ref))
    el = next(e for e in root.iter() if isinstance(e.tag, str) and etree.QName(e).localname in INCOMING)
    return parse_verzoek(el, OURS)


def test_the_crossrefnummer_is_the_adviesverzoek_and_each_gets_its_own_zaak_link_and_identificatie() -> None:
    v = parsed()
    assert v.soort is Soort.ADVIESAANVRAAG and v.nummer == "1234612"
    assert v.advies is not None and v.advies.adviesverzoek_id == CROSS_REF and v.advies.adviseur.oin == OURS
    assert v.zaak_sleutel == f"1234612#{CROSS_REF}"
    loaded, problems = load_file(ROOT / "mappings" / "voorbeeldstad.toml")
    assert loaded is not None and not problems
    (zaak,) = build_opdracht([loaded], v).zaken
    assert zaak.zaaktype == "ZT-ADVIES" and not zaak.triage
    assert zaak.profiel.zaak_identificatie == f"ADV-1234612-{CROSS_REF}"
    assert [d.bijlage.id for d in zaak.documenten] == [f"1234612-1-{CROSS_REF}", f"1234612-2-{CROSS_REF}"]
    other = build_opdracht([loaded], parsed("ZS-ADV-2026-0099")).zaken[0]
    assert other.profiel.zaak_identificatie == "ADV-1234612-ZS-ADV-2026-0099"
    # a long crossRefnummer: at most 40 characters, deterministic, and two that share a prefix differ
    long_a, long_b = "X" * 39 + "A", "X" * 39 + "B"
    a = build_opdracht([loaded], parsed(long_a)).zaken[0].profiel.zaak_identificatie
    b = build_opdracht([loaded], parsed(long_b)).zaken[0].profiel.zaak_identificatie
    assert a and b and len(a) == len(b) == 40 and a != b and a == bounded_identificatie(f"ADV-1234612-{long_a}")
    assert len(parsed(long_a).zaak_sleutel) <= 64
    # an aanvraag is linked under its nummer as before
    assert parsed().__class__(bron="stuf-lvo", bericht="x", soort=Soort.AANVRAAG, nummer="1").zaak_sleutel == "1"


@pytest.fixture
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Zaaksysteem]]:
    zs = start_zaaksysteem()
    home = tmp_path_factory.mktemp("adviseur")
    server = make_server(home, extra_toml=delivery_toml(zs, copy_mappings(home), max_attempts=5))
    server.start()
    yield server, zs
    server.stop()
    drop_database(server.db_url)
    zs.stop()


def test_two_advice_requests_on_one_aanvraag_become_two_zaken_and_a_lost_answer_makes_no_third(
    served: tuple[Server, Zaaksysteem],
) -> None:
    server, zs = served
    fake: Any = zs.fake
    db = create_engine(server.db_url)

    def delivered() -> list[str]:
        with db.connect() as conn:
            return [str(s) for (s,) in conn.execute(text("SELECT state FROM deliveries ORDER BY id"))]

    try:
        for n, cross_ref in enumerate((CROSS_REF, "ZS-ADV-2026-0099")):
            if n == 1:  # the zaaksysteem makes the second zaak, but its answer is lost
                fake.fail_next("POST", "/zaken", status=500, after_processing=True)
            answer = post(server.soap_url, leveren(cross_ref), f'"{LVO}/omvDu01LeverenAanvraag"')
            assert answer.status == 200, answer.body.decode()
            wait_for(lambda n=n: delivered()[n:] == ["done"], timeout=40, what=f"advice request {n + 1} delivered")  # type: ignore[misc]
        with db.connect() as conn:
            attempts = conn.execute(text("SELECT attempts FROM deliveries ORDER BY id")).scalars().all()
            rows = conn.execute(text("SELECT nummer, zaaktype, zaak_identificatie FROM zaak_links ORDER BY nummer"))
            links = [tuple(r) for r in rows]
    finally:
        db.dispose()
    assert attempts[1] >= 2  # the lost answer was retried
    zaken = fake.zaken
    assert sorted(z["identificatie"] for z in zaken) == [f"ADV-1234612-{CROSS_REF}", "ADV-1234612-ZS-ADV-2026-0099"]
    advies_zt = fake.catalogus_url("zaaktypen", identificatie="ZT-ADVIES")
    assert all(z["zaaktype"] == advies_zt for z in zaken)
    assert all(z["kenmerken"] == [{"kenmerk": "1234612", "bron": "Omgevingsloket"}] for z in zaken)
    assert links == [
        (f"1234612#{CROSS_REF}", "ZT-ADVIES", f"ADV-1234612-{CROSS_REF}"),
        ("1234612#ZS-ADV-2026-0099", "ZT-ADVIES", "ADV-1234612-ZS-ADV-2026-0099"),
    ]
    # each zaak has its own two documents
    per_zaak: dict[str, set[str]] = {}
    documents = {d["url"]: d for d in fake.documenten}
    for zio in fake.zaakinformatieobjecten:
        per_zaak.setdefault(zio["zaak"], set()).add(documents[zio["informatieobject"]]["identificatie"])
    by_ident = {z["identificatie"]: per_zaak.get(z["url"], set()) for z in zaken}
    for cross_ref in (CROSS_REF, "ZS-ADV-2026-0099"):
        assert by_ident[f"ADV-1234612-{cross_ref}"] == {f"1234612-1-{cross_ref}", f"1234612-2-{cross_ref}"}
    assert len(fake.documenten) == 4
    # the bijlagen of an adviesaanvraag are the aanvrager's documents, not advice: no "Advies van …" on them
    assert [d.get("beschrijving", "") for d in fake.documenten] == [""] * 4


# -- mappings check ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def zs() -> Iterator[Zaaksysteem]:
    z = start_zaaksysteem()
    yield z
    z.stop()


@pytest.fixture
def env(tmp_path: Path, zs: Zaaksysteem) -> Env:
    return Env(tmp_path, zs)


def test_mappings_check_names_an_identificatie_without_the_adviesverzoek_and_an_unknown_profile(env: Env) -> None:
    assert env.run("mappings", "check", "--online")[0] == 0  # the example's [adviseur] passes, ZT-ADVIES exists
    env.file.write_text(
        env.good.replace(
            'zaaktype = "ZT-ADVIES"',
            'zaaktype = "ZT-ADVIES"\nprofile = "advies"\nzaak_identificatie = "ADV-{verzoek.nummer}"',
        )
    )
    code, _, err = env.run("mappings", "check")
    assert code == 1
    line = env.line_of('zaak_identificatie = "ADV-{verzoek.nummer}"')
    assert re.search(rf"voorbeeldstad\.toml:{line}: adviseur\.zaak_identificatie: does not name the adviesverzoek", err)
    assert re.search(r"adviseur\.profile: unknown profile 'advies'", err), err


def test_mappings_check_online_names_an_advice_zaaktype_the_catalogus_lacks(env: Env) -> None:
    env.file.write_text(env.good.replace('zaaktype = "ZT-ADVIES"', 'zaaktype = "ZT-ADVIES-WEG"'))
    assert env.run("mappings", "check")[0] == 0
    code, _, err = env.run("mappings", "check", "--online")
    assert code == 1
    line = env.line_of('zaaktype = "ZT-ADVIES-WEG"')
    assert re.search(rf"voorbeeldstad\.toml:{line}: adviseur\.zaaktype: zaaktype 'ZT-ADVIES-WEG' does not exist", err)
