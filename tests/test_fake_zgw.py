"""The fake ZGW zaaksysteem, spoken to over real HTTP: seeded catalogi, the zaak/document chain of
domain.md §8.1, spec validation both ways, auth, and the fault injection exactly-once tests rely on."""

from __future__ import annotations

import base64
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from adapter.simulation.fake_zgw import FakeZgw, make_token, serve_in_thread
from adapter.simulation.fake_zgw import state as fake_state
from adapter.simulation.fake_zgw import zaken as fake_zaken

SPEC_DIR = Path(__file__).resolve().parent.parent.parent / "shared" / "reference" / "zgw"
pytestmark = pytest.mark.skipif(
    not SPEC_DIR.is_dir(), reason=f"official ZGW OpenAPI files absent ({SPEC_DIR}): ../shared is not checked out"
)

RSIN = "002220647"
OTHER_RSIN = "123456782"
CRS = {"Accept-Crs": "EPSG:4326", "Content-Crs": "EPSG:4326"}
Z = "/zaken/api/v1"
D = "/documenten/api/v1"
C = "/catalogi/api/v1"


@dataclass
class Served:
    fake: FakeZgw
    base: str
    http: httpx.Client

    def zaaktype(self, identificatie: str = "ZT-OMV-REG") -> dict[str, Any]:
        r = self.http.get(f"{C}/zaaktypen", params={"identificatie": identificatie})
        assert r.status_code == 200, r.text
        return r.json()["results"][0]

    def roltype(self, zaaktype: str, generiek: str) -> str:
        r = self.http.get(f"{C}/roltypen", params={"zaaktype": zaaktype, "omschrijvingGeneriek": generiek})
        return r.json()["results"][0]["url"]

    def statustypen(self, zaaktype: str) -> list[dict[str, Any]]:
        found = self.http.get(f"{C}/statustypen", params={"zaaktype": zaaktype}).json()["results"]
        return sorted(found, key=lambda s: s["volgnummer"])  # servers list in their own order

    def iotype(self, omschrijving: str) -> str:
        return self.http.get(f"{C}/informatieobjecttypen", params={"omschrijving": omschrijving}).json()["results"][0][
            "url"
        ]

    def zaak_body(self, **extra: Any) -> dict[str, Any]:
        return {
            "bronorganisatie": RSIN,
            "zaaktype": self.zaaktype()["url"],
            "verantwoordelijkeOrganisatie": RSIN,
            "startdatum": "2024-03-01",
            "omschrijving": "Aanvraag omgevingsvergunning",
            "kenmerken": [{"kenmerk": "OLO-1234567", "bron": "Omgevingsloket"}],
            **extra,
        }

    def create_zaak(self, **extra: Any) -> dict[str, Any]:
        r = self.http.post(f"{Z}/zaken", json=self.zaak_body(**extra), headers=CRS)
        assert r.status_code == 201, r.text
        return r.json()

    def create_eio(self, content: bytes, **extra: Any) -> dict[str, Any]:
        body = {
            "bronorganisatie": RSIN,
            "creatiedatum": "2024-03-01",
            "titel": "Aanvraagformulier",
            "auteur": "Omgevingsloket",
            "taal": "nld",
            "informatieobjecttype": self.iotype("Aanvraag"),
            "bestandsnaam": "aanvraag.pdf",
            "formaat": "application/pdf",
            "inhoud": base64.b64encode(content).decode(),
            "indicatieGebruiksrecht": False,
            **extra,
        }
        r = self.http.post(f"{D}/enkelvoudiginformatieobjecten", json=body)
        assert r.status_code == 201, r.text
        return r.json()


class Switch:
    """One uvicorn for the module (starting and stopping one costs ~0.2 s); each test plugs in a fresh fake."""

    def __init__(self) -> None:
        self.app: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[Switch, str]]:
    switch = Switch()
    base, stop = serve_in_thread(switch)
    yield switch, base
    stop()


@pytest.fixture
def served(server: tuple[Switch, str]) -> Iterator[Served]:
    switch, base = server
    fake = FakeZgw(SPEC_DIR)
    fake.base_url = base
    switch.app = fake.app
    with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {make_token()}"}, timeout=10) as http:
        yield Served(fake, base, http)
    # Every answer the fake gave was checked against the spec; none may have failed.
    assert fake.response_errors == []


def assert_schema(fake: FakeZgw, api: str, schema: str, value: Any) -> None:
    """Check a body against a component schema of the official file, independently of the fake's own check."""
    from openapi_core.validation.schemas import oas30_read_schema_validators_factory

    spec = fake.specs[api].openapi.spec
    validator = oas30_read_schema_validators_factory.create(spec, spec / "components" / "schemas" / schema)
    validator.validate(value)


def params_named(response: httpx.Response) -> dict[str, str]:
    return {p["name"]: p["code"] for p in response.json().get("invalidParams", [])}


# -- catalogi ---------------------------------------------------------------------------------------------


def test_seeded_catalogus_is_listable_and_filterable(served: Served) -> None:
    http = served.http
    catalogus = http.get(f"{C}/catalogussen", params={"rsin": RSIN}).json()["results"][0]
    everything = http.get(f"{C}/zaaktypen", params={"catalogus": catalogus["url"]}).json()
    # published versions only (status=definitief is the default): the concept of ZT-OMV-REG is left out
    assert everything["count"] == 6 and everything["next"] is None and everything["previous"] is None
    assert sorted(z["identificatie"] for z in everything["results"]) == [
        "ZT-ADVIES",
        "ZT-MELDING",
        "ZT-OMV-REG",
        "ZT-OMV-REG",
        "ZT-TRIAGE",
        "ZT-VOOROVERLEG",
    ]
    alles = http.get(f"{C}/zaaktypen", params={"identificatie": "ZT-OMV-REG", "status": "alles"}).json()
    # newest first, as Open Zaak lists them
    assert [z["beginGeldigheid"] for z in alles["results"]] == ["2099-01-01", "2024-01-01", "2020-01-01"]
    served.fake.newest_first = False
    oldest_first = http.get(f"{C}/zaaktypen", params={"identificatie": "ZT-OMV-REG", "status": "alles"}).json()
    assert [z["beginGeldigheid"] for z in oldest_first["results"]] == ["2020-01-01", "2024-01-01", "2099-01-01"]

    found = http.get(
        f"{C}/zaaktypen",
        params={"catalogus": catalogus["url"], "identificatie": "ZT-OMV-REG", "datumGeldigheid": "2026-11-23"},
    ).json()
    assert found["count"] == 1
    zaaktype = found["results"][0]
    assert zaaktype["omschrijving"] == "Omgevingsvergunning regulier"
    assert_schema(served.fake, "catalogi", "ZaakType", zaaktype)
    assert http.get(zaaktype["url"]).json() == zaaktype
    assert http.get(f"{C}/zaaktypen", params={"identificatie": "ZT-NOPE"}).json()["count"] == 0

    roltypen = http.get(f"{C}/roltypen", params={"zaaktype": zaaktype["url"], "omschrijvingGeneriek": "initiator"})
    [roltype] = roltypen.json()["results"]
    assert (roltype["omschrijving"], roltype["zaaktype"]) == ("Aanvrager", zaaktype["url"])
    assert roltype["url"] in zaaktype["roltypen"]
    shared = http.get(f"{C}/roltypen", params={"zaaktype": zaaktype["url"], "omschrijvingGeneriek": "belanghebbende"})
    assert sorted(r["omschrijving"] for r in shared.json()["results"]) == ["Belanghebbende", "Gemachtigde"]

    triage = http.get(f"{C}/zaaktypen", params={"identificatie": "ZT-TRIAGE"}).json()["results"][0]
    links = http.get(f"{C}/zaaktype-informatieobjecttypen", params={"zaaktype": triage["url"]}).json()["results"]
    assert sorted(z["informatieobjecttype"] for z in links) == ["Aanvraag", "Bijlage"]
    resultaattypen = http.get(f"{C}/resultaattypen", params={"zaaktype": zaaktype["url"]}).json()["results"]
    assert sorted(r["omschrijving"] for r in resultaattypen) == ["Ingetrokken", "Verleend"]
    assert_schema(served.fake, "catalogi", "ResultaatType", resultaattypen[0])

    statustypen = served.statustypen(zaaktype["url"])
    assert [(s["volgnummer"], s["omschrijving"], s["isEindstatus"]) for s in statustypen] == [
        (1, "Ontvangen", False),
        (2, "In behandeling", False),
        (3, "Ingetrokken", False),
        (4, "Afgehandeld", True),
    ]
    iotypen = http.get(f"{C}/informatieobjecttypen", params={"catalogus": catalogus["url"]}).json()["results"]
    assert {i["omschrijving"] for i in iotypen} == {"Aanvraag", "Bijlage", "Tekening", "Foto", "Advies"}
    assert http.get(f"{C}/zaaktypen/00000000-0000-4000-8000-000000000000").status_code == 404


def test_custom_seed_and_pagination(monkeypatch: pytest.MonkeyPatch) -> None:
    seed = {
        "zaaktypen": [{"identificatie": f"ZT-{n}", "omschrijving": f"Type {n}"} for n in range(3)],
        "statustypen": ["Nieuw", "Klaar"],
        "informatieobjecttypen": [{"omschrijving": "Stuk", "vertrouwelijkheidaanduiding": "intern"}],
    }
    fake = FakeZgw(SPEC_DIR, catalogus_seed=seed)
    base, stop = serve_in_thread(fake.app)
    monkeypatch.setattr(fake_state, "PAGE_SIZE", 2)
    try:
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {make_token()}"}) as http:
            page1 = http.get(f"{C}/zaaktypen").json()
            assert page1["count"] == 3 and len(page1["results"]) == 2 and page1["previous"] is None
            page2 = http.get(page1["next"]).json()
            # newest first, as Open Zaak lists
            assert [z["identificatie"] for z in page2["results"]] == ["ZT-0"] and page2["next"] is None
            bad_page = http.get(f"{C}/zaaktypen", params={"page": 9})
            assert bad_page.status_code == 400 and params_named(bad_page) == {"page": "invalid"}
            statustypen = http.get(f"{C}/statustypen", params={"zaaktype": page2["results"][0]["url"]}).json()
            assert [(s["omschrijving"], s["isEindstatus"]) for s in reversed(statustypen["results"])] == [
                ("Nieuw", False),
                ("Klaar", True),
            ]
    finally:
        stop()
    assert fake.response_errors == []


def test_second_fake_reuses_the_parsed_specs() -> None:
    FakeZgw(SPEC_DIR)
    started = time.perf_counter()
    FakeZgw(SPEC_DIR)
    assert time.perf_counter() - started < 0.1


# -- zaken ------------------------------------------------------------------------------------------------


def test_create_zaak_returns_spec_valid_body(served: Served) -> None:
    body = served.zaak_body(zaakgeometrie={"type": "Point", "coordinates": [5.12, 52.09]})
    r = served.http.post(f"{Z}/zaken", json=body, headers=CRS)
    assert r.status_code == 201, r.text
    zaak = r.json()
    assert_schema(served.fake, "zaken", "Zaak", zaak)
    assert zaak["url"].startswith(served.base + f"{Z}/zaken/") and zaak["url"].endswith(zaak["uuid"])
    assert zaak["identificatie"].startswith("ZAAK-")
    assert r.headers["Location"] == zaak["url"] and r.headers["Content-Crs"] == "EPSG:4326"
    assert zaak["kenmerken"] == body["kenmerken"] and zaak["zaaktype"] == body["zaaktype"]

    found = served.http.get(
        f"{Z}/zaken", params={"identificatie": zaak["identificatie"], "bronorganisatie": RSIN}, headers=CRS
    )
    assert found.status_code == 200 and [z["url"] for z in found.json()["results"]] == [zaak["url"]]
    assert served.http.get(zaak["url"], headers=CRS).json() == zaak
    assert [z["url"] for z in served.fake.zaken] == [zaak["url"]]


def test_zaak_missing_required_field_is_400_naming_it(served: Served) -> None:
    body = served.zaak_body(startdatum="1 maart")
    del body["zaaktype"]
    r = served.http.post(f"{Z}/zaken", json=body, headers=CRS)
    assert r.status_code == 400 and r.headers["content-type"] == "application/problem+json"
    problem = r.json()
    assert {"type", "title", "status", "detail", "invalidParams"} <= problem.keys() and problem["status"] == 400
    assert params_named(r) == {"zaaktype": "required", "startdatum": "invalid"}
    assert served.fake.zaken == []


def test_zaak_crs_headers_are_required(served: Served) -> None:
    # The real APIs (vng-api-common) answer a missing CRS header with 412, an unsupported CRS with 406.
    r = served.http.post(f"{Z}/zaken", json=served.zaak_body(), headers={"Accept-Crs": "EPSG:4326"})
    assert r.status_code == 412 and params_named(r) == {"Content-Crs": "required"}
    assert "Content-Crs" in r.json()["detail"]
    r = served.http.post(f"{Z}/zaken", json=served.zaak_body(), headers={**CRS, "Accept-Crs": "EPSG:28992"})
    assert r.status_code == 406 and params_named(r) == {"Accept-Crs": "invalid"}
    assert served.http.get(f"{Z}/zaken").status_code == 412  # the spec requires the CRS headers on GET too
    assert served.fake.zaken == []


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "Bearer not-a-jwt",
        f"Bearer {make_token(secret='wrong-secret')}",
        f"Bearer {make_token(client_id='someone-else')}",
        f"Token {make_token()}",
    ],
)
def test_bad_or_missing_token_is_403(served: Served, authorization: str | None) -> None:
    headers = {**CRS, "Authorization": authorization} if authorization else CRS
    http = httpx.Client(base_url=served.base, headers=headers)
    r = http.post(f"{Z}/zaken", json=served.zaak_body())
    assert r.status_code == 403 and r.json()["status"] == 403 and r.json()["detail"]
    assert http.get(f"{C}/zaaktypen").status_code == 403
    assert served.fake.zaken == []


def test_identificatie_is_unique_per_bronorganisatie(served: Served) -> None:
    served.create_zaak(identificatie="OLO-2024-1")
    again = served.http.post(f"{Z}/zaken", json=served.zaak_body(identificatie="OLO-2024-1"), headers=CRS)
    assert again.status_code == 400 and params_named(again) == {"identificatie": "identificatie-niet-uniek"}
    elsewhere = served.create_zaak(identificatie="OLO-2024-1", bronorganisatie=OTHER_RSIN)
    assert elsewhere["identificatie"] == "OLO-2024-1"
    assert len(served.fake.zaken) == 2


def test_references_must_resolve_to_the_seeded_catalogus(served: Served) -> None:
    unknown = served.zaak_body(zaaktype=f"{served.base}{C}/zaaktypen/00000000-0000-4000-8000-000000000000")
    r = served.http.post(f"{Z}/zaken", json=unknown, headers=CRS)
    assert r.status_code == 400 and params_named(r) == {"zaaktype": "bad-url"}
    bad_rsin = served.http.post(f"{Z}/zaken", json=served.zaak_body(bronorganisatie="123456789"), headers=CRS)
    assert bad_rsin.status_code == 400 and params_named(bad_rsin) == {"bronorganisatie": "invalid"}

    zaak = served.create_zaak()
    other_roltype = served.roltype(served.zaaktype("ZT-MELDING")["url"], "initiator")
    rol = {"zaak": zaak["url"], "betrokkeneType": "natuurlijk_persoon", "roltype": other_roltype, "roltoelichting": "x"}
    r = served.http.post(f"{Z}/rollen", json={**rol, "betrokkeneIdentificatie": {"inpBsn": "999993653"}})
    assert r.status_code == 400 and params_named(r) == {"roltype": "zaaktype-mismatch"}
    other_status = served.statustypen(served.zaaktype("ZT-TRIAGE")["url"])[0]["url"]
    r = served.http.post(
        f"{Z}/statussen",
        json={"zaak": zaak["url"], "statustype": other_status, "datumStatusGezet": "2024-03-01T10:00:00Z"},
    )
    assert r.status_code == 400 and params_named(r) == {"statustype": "zaaktype-mismatch"}


def test_rollen_zaakobjecten_document_zio_and_status(served: Served) -> None:
    http, fake = served.http, served.fake
    zaak = served.create_zaak()
    zaaktype = zaak["zaaktype"]

    initiator = {
        "zaak": zaak["url"],
        "betrokkeneType": "natuurlijk_persoon",
        "roltype": served.roltype(zaaktype, "initiator"),
        "roltoelichting": "Aanvrager",
        "betrokkeneIdentificatie": {"inpBsn": "999993653", "geslachtsnaam": "Jansen", "voorletters": "J"},
    }
    gemachtigde = {
        "zaak": zaak["url"],
        "betrokkeneType": "vestiging",
        "roltype": served.roltype(zaaktype, "belanghebbende"),
        "roltoelichting": "Gemachtigde",
        "indicatieMachtiging": "gemachtigde",
        "betrokkeneIdentificatie": {"vestigingsNummer": "000012345678", "handelsnaam": ["Architecten BV"]},
    }
    for rol in (initiator, gemachtigde):
        r = http.post(f"{Z}/rollen", json=rol)
        assert r.status_code == 201, r.text
        assert_schema(fake, "zaken", "Rol", r.json())
    rollen = http.get(f"{Z}/rollen", params={"zaak": zaak["url"], "omschrijvingGeneriek": "initiator"}).json()
    assert [r["betrokkeneIdentificatie"]["inpBsn"] for r in rollen["results"]] == ["999993653"]
    assert rollen["results"][0]["omschrijving"] == "Aanvrager"
    assert http.get(f"{Z}/rollen", params={"zaak": zaak["url"], "betrokkeneType": "vestiging"}).json()["count"] == 1

    adres = {
        "zaak": zaak["url"],
        "objectType": "adres",
        "objectIdentificatie": {
            "identificatie": "0344200000123456",
            "wplWoonplaatsNaam": "Utrecht",
            "gorOpenbareRuimteNaam": "Domplein",
            "huisnummer": 1,
            "postcode": "3512JC",
        },
    }
    perceel = {
        "zaak": zaak["url"],
        "objectType": "kadastrale_onroerende_zaak",
        "objectIdentificatie": {"kadastraleIdentificatie": "12345678910000", "kadastraleAanduiding": "UTT00 A 1234"},
    }
    for zaakobject in (adres, perceel):
        r = http.post(f"{Z}/zaakobjecten", json=zaakobject)
        assert r.status_code == 201, r.text
        assert_schema(fake, "zaken", "ZaakObject", r.json())
    found = http.get(f"{Z}/zaakobjecten", params={"zaak": zaak["url"], "objectType": "adres"}).json()["results"]
    assert [z["objectIdentificatie"]["gorOpenbareRuimteNaam"] for z in found] == ["Domplein"]

    content = b"%PDF-1.7\n" + os.urandom(2048)
    document = served.create_eio(content)
    assert_schema(fake, "documenten", "SchemaEIO", document)
    assert document["bestandsomvang"] == len(content) and not document["locked"]
    download = http.get(document["inhoud"])
    assert download.status_code == 200 and download.content == content
    assert fake.documenten[0]["bytes"] == content
    by_id = http.get(f"{D}/enkelvoudiginformatieobjecten", params={"identificatie": document["identificatie"]})
    assert [d["url"] for d in by_id.json()["results"]] == [document["url"]]

    zio = http.post(f"{Z}/zaakinformatieobjecten", json={"zaak": zaak["url"], "informatieobject": document["url"]})
    assert zio.status_code == 201, zio.text
    assert zio.json()["aardRelatieWeergave"] == "Hoort bij, omgekeerd: kent"
    twice = http.post(f"{Z}/zaakinformatieobjecten", json={"zaak": zaak["url"], "informatieobject": document["url"]})
    assert twice.status_code == 400 and params_named(twice) == {"nonFieldErrors": "unique"}
    assert len(http.get(f"{Z}/zaakinformatieobjecten", params={"zaak": zaak["url"]}).json()) == 1  # not paginated

    ontvangen = served.statustypen(zaaktype)[0]["url"]
    status = http.post(
        f"{Z}/statussen",
        json={"zaak": zaak["url"], "statustype": ontvangen, "datumStatusGezet": "2024-03-01T10:00:00Z"},
    )
    assert status.status_code == 201, status.text
    assert status.json()["indicatieLaatstGezetteStatus"] is True

    zaak_now = http.get(zaak["url"], headers=CRS).json()
    assert zaak_now["status"] == status.json()["url"]
    assert len(zaak_now["rollen"]) == 2 and len(zaak_now["zaakobjecten"]) == 2
    assert zaak_now["zaakinformatieobjecten"] == [zio.json()["url"]]
    assert (len(fake.rollen), len(fake.zaakobjecten), len(fake.zaakinformatieobjecten), len(fake.statussen)) == (
        2,
        2,
        1,
        1,
    )


def test_zaakobject_identification_is_checked_against_its_object_type(served: Served) -> None:
    zaak = served.create_zaak()
    adres_without_street = {"zaak": zaak["url"], "objectType": "adres", "objectIdentificatie": {"identificatie": "1"}}
    r = served.http.post(f"{Z}/zaakobjecten", json=adres_without_street)
    assert r.status_code == 400
    assert params_named(r) == {
        "objectIdentificatie.wplWoonplaatsNaam": "required",
        "objectIdentificatie.gorOpenbareRuimteNaam": "required",
        "objectIdentificatie.huisnummer": "required",
    }
    rol = {
        "zaak": zaak["url"],
        "betrokkeneType": "natuurlijk_persoon",
        "roltype": served.roltype(zaak["zaaktype"], "initiator"),
        "roltoelichting": "Aanvrager",
        "betrokkeneIdentificatie": {"inpBsn": "9999936531"},
    }
    r = served.http.post(f"{Z}/rollen", json=rol)
    assert r.status_code == 400 and params_named(r) == {"betrokkeneIdentificatie.inpBsn": "max_length"}
    assert served.fake.zaakobjecten == [] and served.fake.rollen == []


def test_eindstatus_needs_indicatie_gebruiksrecht_and_closes_the_zaak(served: Served) -> None:
    http = served.http
    zaak = served.create_zaak()
    document = served.create_eio(b"tekening", indicatieGebruiksrecht=None)
    http.post(f"{Z}/zaakinformatieobjecten", json={"zaak": zaak["url"], "informatieobject": document["url"]})
    afgehandeld = served.statustypen(zaak["zaaktype"])[-1]["url"]
    eind = {"zaak": zaak["url"], "statustype": afgehandeld, "datumStatusGezet": "2024-04-01T12:00:00Z"}
    no_resultaat = http.post(f"{Z}/statussen", json=eind)
    assert no_resultaat.status_code == 400
    assert params_named(no_resultaat) == {"nonFieldErrors": "resultaat-does-not-exist"}
    resultaattype = http.get(f"{C}/resultaattypen", params={"zaaktype": zaak["zaaktype"]}).json()["results"][0]["url"]
    r = http.post(f"{Z}/resultaten", json={"zaak": zaak["url"], "resultaattype": resultaattype})
    assert r.status_code == 201, r.text
    assert http.get(zaak["url"], headers=CRS).json()["resultaat"] == r.json()["url"]
    again = http.post(f"{Z}/resultaten", json={"zaak": zaak["url"], "resultaattype": resultaattype})
    assert again.status_code == 400 and params_named(again) == {"zaak": "unique"}
    refused = http.post(f"{Z}/statussen", json=eind)
    assert refused.status_code == 400 and params_named(refused) == {"nonFieldErrors": "indicatiegebruiksrecht-unset"}

    other = served.create_zaak()
    http.post(f"{Z}/resultaten", json={"zaak": other["url"], "resultaattype": resultaattype})
    closed = http.post(f"{Z}/statussen", json={**eind, "zaak": other["url"]})
    assert closed.status_code == 201
    assert http.get(other["url"], headers=CRS).json()["einddatum"] == "2024-04-01"


def test_large_document_via_bestandsdelen(served: Served) -> None:
    http = served.http
    served.fake.chunk_size = 1000
    content = os.urandom(2400) + b"\r\n--boundary-lookalike\r\n"
    body = {
        "bronorganisatie": RSIN,
        "creatiedatum": "2024-03-01",
        "titel": "Tekeningen",
        "auteur": "Omgevingsloket",
        "taal": "nld",
        "informatieobjecttype": served.iotype("Tekening"),
        "bestandsomvang": len(content),
        "inhoud": None,
    }
    created = http.post(f"{D}/enkelvoudiginformatieobjecten", json=body)
    assert created.status_code == 201, created.text
    document = created.json()
    assert document["locked"] and document["lock"] and document["inhoud"] is None
    parts = document["bestandsdelen"]
    assert [(p["volgnummer"], p["omvang"], p["voltooid"]) for p in parts] == [
        (1, 1000, False),
        (2, 1000, False),
        (3, len(content) - 2000, False),
    ]
    early = http.post(f"{document['url']}/unlock", json={"lock": document["lock"]})
    assert early.status_code == 400 and params_named(early) == {"nonFieldErrors": "incomplete-upload"}

    wrong_lock = http.put(parts[0]["url"], data={"lock": "nope"}, files={"inhoud": ("1.bin", content[:1000])})
    assert wrong_lock.status_code == 400 and params_named(wrong_lock) == {"lock": "incorrect-lock-id"}
    offset = 0
    for part in parts:
        chunk = content[offset : offset + part["omvang"]]
        offset += part["omvang"]
        r = http.put(part["url"], data={"lock": document["lock"]}, files={"inhoud": ("part.bin", chunk)})
        assert r.status_code == 200 and r.json()["voltooid"] is True, r.text
    assert http.post(f"{document['url']}/unlock", json={"lock": document["lock"]}).status_code == 204

    after = http.get(document["url"]).json()
    assert not after["locked"] and after["bestandsdelen"] == [] and after["inhoud"]
    assert http.get(after["inhoud"]).content == content
    assert served.fake.documenten[0]["bytes"] == content


# -- fault injection --------------------------------------------------------------------------------------


def test_fail_next_without_processing_stores_nothing(served: Served) -> None:
    served.fake.fail_next("POST", "/zaken", status=503, times=2)
    for _ in range(2):
        r = served.http.post(f"{Z}/zaken", json=served.zaak_body(), headers=CRS)
        assert r.status_code == 503 and r.json()["code"] == "injected-fault"
    assert served.fake.zaken == []
    served.create_zaak()  # the fault is used up
    assert [s for _m, _p, s in served.fake.requests if _p == f"{Z}/zaken"] == [503, 503, 201]


def test_fail_next_after_processing_really_stores(served: Served) -> None:
    served.fake.fail_next("POST", "/zaken", after_processing=True)
    r = served.http.post(f"{Z}/zaken", json=served.zaak_body(identificatie="OLO-77"), headers=CRS)
    assert r.status_code == 500
    assert [z["identificatie"] for z in served.fake.zaken] == ["OLO-77"]
    # What a careful client does next: look the zaak up instead of creating a second one.
    found = served.http.get(f"{Z}/zaken", params={"identificatie": "OLO-77", "bronorganisatie": RSIN}, headers=CRS)
    assert found.json()["count"] == 1
    retry = served.http.post(f"{Z}/zaken", json=served.zaak_body(identificatie="OLO-77"), headers=CRS)
    assert retry.status_code == 400 and params_named(retry) == {"identificatie": "identificatie-niet-uniek"}


def test_timeout_after_commit_and_before_processing(served: Served) -> None:
    impatient = httpx.Client(base_url=served.base, headers=served.http.headers, timeout=0.3)
    served.fake.fail_next("POST", "/zaken", after_processing=True, delay=1.5)
    with pytest.raises(httpx.ReadTimeout):
        impatient.post(f"{Z}/zaken", json=served.zaak_body(identificatie="LATE-1"), headers=CRS)
    assert [z["identificatie"] for z in served.fake.zaken] == ["LATE-1"]  # committed before the hang

    served.fake.fail_next("POST", "/rollen", delay=1.0)
    zaak = served.fake.zaken[0]
    rol = {
        "zaak": zaak["url"],
        "betrokkeneType": "natuurlijk_persoon",
        "roltype": served.roltype(zaak["zaaktype"], "initiator"),
        "roltoelichting": "Aanvrager",
        "betrokkeneIdentificatie": {"inpBsn": "999993653"},
    }
    with pytest.raises(httpx.ReadTimeout):
        impatient.post(f"{Z}/rollen", json=rol)
    time.sleep(1.2)
    assert served.fake.rollen == []  # the delay came before processing, and the fault answered 500 after it
    assert served.http.post(f"{Z}/rollen", json=rol).status_code == 201
    impatient.close()


def test_slow_success_with_status_none(served: Served) -> None:
    served.fake.fail_next("GET", "/zaaktypen", status=None, delay=0.3)
    started = time.perf_counter()
    assert served.http.get(f"{C}/zaaktypen").status_code == 200
    assert time.perf_counter() - started >= 0.3


# -- the fake's own guarantees ----------------------------------------------------------------------------


def test_request_log_unknown_paths_and_media_types(served: Served) -> None:
    http = served.http
    assert http.get(f"{Z}/bestaat-niet").status_code == 404
    assert http.get(f"{Z}/klantcontacten").status_code == 501  # in the spec, not in the fake
    as_text = http.post(f"{Z}/rollen", content=b"{}", headers={"Content-Type": "text/plain"})
    assert as_text.status_code == 415
    broken = http.post(f"{Z}/rollen", content=b"{not json", headers={"Content-Type": "application/json"})
    assert broken.status_code == 400 and params_named(broken) == {"nonFieldErrors": "parse_error"}
    assert served.fake.requests == [
        ("GET", f"{Z}/bestaat-niet", 404),
        ("GET", f"{Z}/klantcontacten", 501),
        ("POST", f"{Z}/rollen", 415),
        ("POST", f"{Z}/rollen", 400),
    ]


def test_json_with_charset_is_accepted(served: Served) -> None:
    # The spec declares Content-Type as a header parameter with enum [application/json]; OAS 3.0 says to
    # ignore such declarations, and real servers accept a charset.
    zaak = served.create_zaak()
    rol = {
        "zaak": zaak["url"],
        "betrokkeneType": "natuurlijk_persoon",
        "roltype": served.roltype(zaak["zaaktype"], "initiator"),
        "roltoelichting": "Aanvrager",
        "betrokkeneIdentificatie": {"inpBsn": "999993653", "verblijfsadres": None},
    }
    r = served.http.post(
        f"{Z}/rollen",
        content=httpx.Request("POST", "/", json=rol).content,
        headers={"Content-Type": "application/json; charset=utf-8"},
    )
    assert r.status_code == 201, r.text


def test_invalid_response_becomes_500(served: Served, monkeypatch: pytest.MonkeyPatch) -> None:
    zaak = served.create_zaak()
    real_render = fake_zaken.render_zaak
    monkeypatch.setattr(fake_zaken, "render_zaak", lambda ctx, z: {**real_render(ctx, z), "startdatum": "gisteren"})
    r = served.http.get(zaak["url"], headers=CRS)
    assert r.status_code == 500 and "startdatum" in r.json()["detail"]
    assert len(served.fake.response_errors) == 1
    served.fake.response_errors.clear()
