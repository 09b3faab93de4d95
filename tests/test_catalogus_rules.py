"""Real catalogi: the delivery chooses by rule, never by list order. The fake ZGW catalogus holds an
expired, a current and a concept version of ZT-OMV-REG, lists newest first (as Open Zaak) or oldest
first, has two roltypen sharing the generic description "belanghebbende", a zaaktype (ZT-TRIAGE) that
allows only some document types, and refuses an eindstatus without resultaat."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from adapter.services import Services
from tests.conftest import FIXTURES
from tests.delivery_env import Zaaksysteem, needs_zgw_specs, wait_for
from tests.soap import fixture
from tests.test_delivery_zgw import drain, receive

pytestmark = needs_zgw_specs


def fake(zs: Zaaksysteem) -> Any:
    return zs.fake


def mapping_file(sv: Services) -> Path:
    return Path(sv.settings.source).parent / "mappings" / "voorbeeldstad.toml"


def edit_mapping(sv: Services, old: str, new: str) -> None:
    path = mapping_file(sv)
    text_ = path.read_text()
    assert old in text_, old
    path.write_text(text_.replace(old, new))


def last_error(sv: Services) -> str:
    with sv.engine.connect() as conn:
        return conn.execute(text("SELECT last_error FROM deliveries ORDER BY id DESC")).scalars().first() or ""


def zaaktype_version(z: Zaaksysteem, url: str) -> dict[str, Any]:
    record = fake(z).store.resolve(url, "zaaktypen")
    assert record is not None
    return dict(record)


@pytest.mark.parametrize("newest_first", [True, False], ids=["newest-first", "oldest-first"])
def test_the_current_version_and_the_named_roltype_are_chosen_in_either_list_order(
    services: Services, zs: Zaaksysteem, newest_first: bool
) -> None:
    fake(zs).newest_first = newest_first
    receive(services)
    assert drain(services) == ["done"]
    [zaak] = fake(zs).zaken
    version = zaaktype_version(zs, zaak["zaaktype"])
    assert (version["beginGeldigheid"], version["eindeGeldigheid"], version["concept"]) == ("2024-01-01", None, False)
    gemachtigde = next(r for r in fake(zs).rollen if r["betrokkeneType"] == "vestiging")
    assert gemachtigde["omschrijving"] == "Gemachtigde"  # named by omschrijving, not "belanghebbende"
    assert (
        fake(zs)
        .catalogus_url("roltypen", omschrijving="Gemachtigde", zaaktype=version["url"])
        .endswith(gemachtigde["roltype"].split("/catalogi/api/v1")[1])
    )


def test_a_generic_roltype_fitting_two_roltypen_needs_attention_naming_both(
    services: Services, zs: Zaaksysteem
) -> None:
    edit_mapping(services, 'roltype_gemachtigde = "Gemachtigde"', 'roltype_gemachtigde = "belanghebbende"')
    receive(services)
    assert drain(services) == ["needs-attention"]  # at once, not after max_attempts
    assert "roltype 'belanghebbende' matches 2 of zaaktype ZT-OMV-REG: 'Belanghebbende', 'Gemachtigde'" in last_error(
        services
    )
    assert len(fake(zs).rollen) == 1  # the initiator only: nothing guessed
    shown = subprocess.run(
        [sys.executable, "-m", "adapter", "--config", services.settings.source, "messages", "show", "1"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "delivery:         needs-attention to zaaksysteem after 1 attempt(s)" in shown  # routed, though it failed


def test_no_version_valid_on_the_verzoek_date_names_the_date_and_the_candidates(
    services: Services, zs: Zaaksysteem
) -> None:
    """An aanvraag of 2019 predates every version of ZT-OMV-REG: refused, naming date and versions."""
    receive(services, body=fixture("omvDi01AanbiedenAanvraag").replace(b">20261123<", b">20190601<"))
    assert drain(services) == ["needs-attention"]
    error = last_error(services)
    assert "zaaktype 'ZT-OMV-REG': no published version valid on 2019-06-01" in error
    assert "2020-01-01–2023-12-31" in error and "2024-01-01–…" in error
    assert fake(zs).zaken == []


def test_a_triage_delivery_completes_with_document_types_its_zaaktype_allows(
    services: Services, zs: Zaaksysteem
) -> None:
    receive(services, "wwvDi01AanbiedenAanvraag")  # grondwater-onttrekken: not mapped → ZT-TRIAGE
    assert drain(services) == ["done"]
    [zaak] = fake(zs).zaken
    assert zaaktype_version(zs, zaak["zaaktype"])["identificatie"] == "ZT-TRIAGE"
    types = {
        fake(zs).store.resolve(d["informatieobjecttype"], "informatieobjecttypen")["omschrijving"]
        for d in fake(zs).documenten
    }
    assert fake(zs).documenten and types <= {"Aanvraag", "Bijlage"}, types
    zios = [z for z in fake(zs).zaakinformatieobjecten if z["zaak"] == zaak["url"]]
    assert len(zios) == len(fake(zs).documenten)


def test_a_document_type_the_zaaktype_does_not_allow_needs_attention(services: Services, zs: Zaaksysteem) -> None:
    """Without the triage profile's own map the Bouwtekening would be a "Tekening", which ZT-TRIAGE does
    not allow: refused before anything of the document is sent, naming both."""
    edit_mapping(services, 'informatieobjecttypen = { "*" = "Bijlage" }', "")
    body = fixture("omvDi01AanbiedenAanvraag").replace(b"dakkapel-plaatsen", b"iets-onbekends")
    receive(services, body=body)
    assert drain(services) == ["needs-attention"]
    assert "informatieobjecttype 'Tekening' is not allowed for zaaktype ZT-TRIAGE (allowed: Aanvraag, Bijlage)" in (
        last_error(services)
    )
    assert fake(zs).documenten == []


def test_an_intrekking_to_the_eindstatus_sets_the_resultaat_first(services: Services, zs: Zaaksysteem) -> None:
    edit_mapping(
        services,
        'statustype_intrekking = "Ingetrokken"         # …or by omschrijving\n# resultaattype_intrekking',
        'statustype_intrekking = "Afgehandeld"\nresultaattype_intrekking',
    )
    receive(services)
    receive(services, "vrgDi01IntrekkenAanvraag")
    assert drain(services) == ["done", "done"]
    [zaak] = fake(zs).zaken
    [resultaat] = fake(zs).store.all("resultaten")
    rt = fake(zs).store.resolve(resultaat["resultaattype"], "resultaattypen")
    assert rt["omschrijving"] == "Ingetrokken" and zaak["url"].endswith(resultaat["zaak"])
    assert zaak["einddatum"] is not None


def test_an_eindstatus_without_a_mapped_resultaattype_needs_attention(services: Services, zs: Zaaksysteem) -> None:
    edit_mapping(services, 'statustype_intrekking = "Ingetrokken"', 'statustype_intrekking = "Afgehandeld"')
    receive(services)
    receive(services, "vrgDi01IntrekkenAanvraag")
    assert drain(services) == ["done", "needs-attention"]
    assert "is the eindstatus of zaaktype ZT-OMV-REG" in last_error(services)
    assert "resultaattype_intrekking" in last_error(services)


def test_two_statuses_in_one_second_do_not_collide(services: Services, zs: Zaaksysteem) -> None:
    """(zaak, datumStatusGezet) is unique in the Zaken API: the start status and an intrekking delivered
    right after it must not be cut to the same whole second."""
    receive(services)
    receive(services, "vrgDi01IntrekkenAanvraag")
    assert drain(services) == ["done", "done"]
    stamps = [s["datumStatusGezet"] for s in fake(zs).statussen]
    assert len(stamps) == 2 and len(set(stamps)) == 2


STAM = FIXTURES / "stam"
EXTRA_LOCATIES = b"""
    <vz:projectlocatie>
      <vz:kadastraleGegevens>
        <vz:kadastraleGemeente>VBS01</vz:kadastraleGemeente>
        <vz:sectie>B</vz:sectie>
        <vz:perceelnummer>77</vz:perceelnummer>
      </vz:kadastraleGegevens>
    </vz:projectlocatie>
    <vz:projectlocatie>
      <vz:rdPunt><vz:x>155000.5</vz:x><vz:y>463000.25</vz:y></vz:rdPunt>
    </vz:projectlocatie>
  </vz:projectlocaties>"""


def test_every_projectlocatie_reaches_the_zaak(tmp_path: Path, zs: Zaaksysteem, werkmap: tuple[Any, str]) -> None:
    """Three projectlocaties (address + perceel; a perceel only; a point only) → four zaakobjecten."""
    from tests.test_stam_e2e import adapter, post_notificatie

    fake_werkmap, url = werkmap
    verzoek = (STAM / "verzoek-initieren.xml").read_bytes().replace(b"\n  </vz:projectlocaties>", EXTRA_LOCATIES, 1)
    assert verzoek.count(b"<vz:projectlocatie>") == 3
    fake_werkmap.add_verzoek(verzoek)
    srv = adapter(tmp_path, zs, url)
    srv.start()
    try:
        assert post_notificatie(srv, (STAM / "verzoeknotificatie-initieren.xml").read_bytes()).status_code == 202
        wait_for(lambda: len(fake(zs).zaken) == 1 and len(fake(zs).zaakobjecten) == 4, what="the zaakobjecten")
    finally:
        srv.stop()
    objecten = fake(zs).zaakobjecten
    assert sorted(o["objectType"] for o in objecten) == [
        "adres",
        "kadastrale_onroerende_zaak",
        "kadastrale_onroerende_zaak",
        "overige",
    ]
    percelen = sorted(
        o["objectIdentificatie"]["kadastraleIdentificatie"] for o in objecten if "kadastrale" in o["objectType"]
    )
    assert percelen == ["VBS01A1234", "VBS01B77"]
    punt = next(o for o in objecten if o["objectType"] == "overige")
    assert punt["objectIdentificatie"]["overigeData"]["puntRD"] == {"x": 155000.5, "y": 463000.25}


def test_a_fuller_zaak_geometry_contact_details_and_addresses(services: Services, zs: Zaaksysteem) -> None:
    """The aanvraag's point becomes the zaakgeometrie (RD → WGS84); the rollen carry e-mail and telephone
    as contactpersoonRol and the correspondentieadres in the rol's address field."""
    receive(services)
    assert drain(services) == ["done"]
    [zaak] = fake(zs).zaken
    lon, lat = zaak["zaakgeometrie"]["coordinates"]
    assert zaak["zaakgeometrie"]["type"] == "Point"
    assert abs(lon - 5.3872035) < 1e-6 and abs(lat - 52.1551723) < 1e-6  # RD 155000, 463000 (Amersfoort area)
    initiator = next(r for r in fake(zs).rollen if r["betrokkeneType"] == "natuurlijk_persoon")
    assert initiator["contactpersoonRol"] == {
        "naam": "J.A. van der Berg",
        "emailadres": "j.vanderberg@example.org",
        "telefoonnummer": "0612345678",
    }
    adres = initiator["betrokkeneIdentificatie"]["verblijfsadres"]
    assert (adres["gorOpenbareRuimteNaam"], adres["aoaHuisnummer"], adres["wplWoonplaatsNaam"]) == (
        "Dorpsstraat",
        1,
        "Voorbeeldstad",
    )
    gemachtigde = next(r for r in fake(zs).rollen if r["betrokkeneType"] == "vestiging")
    assert gemachtigde["contactpersoonRol"]["emailadres"] == "info@bouwadvies.example.org"
    assert gemachtigde["betrokkeneIdentificatie"]["verblijfsadres"]["gorOpenbareRuimteNaam"] == "Industrieweg"


def test_a_resend_after_a_mapping_fix_replaces_a_document_of_the_old_type(services: Services, zs: Zaaksysteem) -> None:
    """The first attempt made the Bouwtekening as a "Tekening" and then stopped (needs-attention); the
    mapping is changed to "Bijlage" and the message resent: the zaak ends with one Bouwtekening, of the
    new type; the old one is unlinked and deleted, and the resend says so."""
    fake(zs).fail_next("POST", "/statussen", status=400)
    mid = receive(services)
    assert drain(services) == ["needs-attention"]
    edit_mapping(services, 'Bouwtekening = "Tekening"', 'Bouwtekening = "Bijlage"')
    assert services.outbox is not None
    [report] = services.outbox.resend([mid])
    assert not isinstance(report, str) and report.state == "done", report
    assert "document 1234567-1 vervangen door 1234567-1-" in report.detail  # named by identificatie
    [zaak] = fake(zs).zaken
    tekeningen = [d for d in fake(zs).documenten if d["bestandsnaam"] == "1234567_Bouwtekening.pdf"]
    assert len(tekeningen) == 1
    iot = fake(zs).store.resolve(tekeningen[0]["informatieobjecttype"], "informatieobjecttypen")
    assert iot["omschrijving"] == "Bijlage"
    linked = {z["informatieobject"] for z in fake(zs).zaakinformatieobjecten if zaak["url"].endswith(z["zaak"])}
    assert any(url.endswith(tekeningen[0]["url"].split("/documenten/api/v1")[1]) for url in linked)
    assert len(linked) == len(fake(zs).documenten) == 2
