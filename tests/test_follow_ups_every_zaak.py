"""Follow-ups reach every zaak of their verzoek. A mapping can make one verzoek into several zaken (one per
zaaktype); its aanvulling, advies, intrekking and wijziging gemachtigde then land on each of them, each as
the zaak's own zaaktype's profile says (statustype_intrekking, roltype_gemachtigde, document types), exactly
once when a call for the second zaak fails before or after the zaaksysteem stored it. Not on the advice
zaken we made as adviseur on the same aanvraagnummer: a follow-up of an aanvraag goes to its bevoegd gezag.

ZGW in-process against the fake ZGW (every request checked against the official OpenAPI files); StUF-ZKN
through the real outbox against the fake ZDS zaaksysteem (official XSDs)."""

from __future__ import annotations

import datetime
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from adapter.services import Services
from tests.conftest import SHARED
from tests.delivery_env import Zaaksysteem, needs_zgw_specs
from tests.soap import fixture
from tests.test_catalogus_rules import edit_mapping, last_error
from tests.test_delivery_zgw import drain, receive, volgnummer
from tests.test_mutation_kills_zgw import TWO_ZAKEN, services_with_mapping

pytestmark = needs_zgw_specs

REDEN = "Aanvrager ziet af van het plan."  # the reden of vrgDi01IntrekkenAanvraag.xml
BSN_GEMACHTIGDE = "999990032"  # the gemachtigde of vrgDi01WijzigGemachtigde.xml

#: The ZT-MELDING zaak's profile differs from the default in everything a follow-up uses: another
#: intrekking statustype ("In behandeling", volgnummer 2, not "Ingetrokken", 3), another gemachtigde roltype
#: ("Belanghebbende", not "Gemachtigde") and every bijlage a "Bijlage" (the default maps a Bouwtekening to
#: "Tekening" and an Advies to "Advies").
OWN_PROFILE = (
    TWO_ZAKEN
    + """informatieobjecttypen = { "*" = "Bijlage" }
statustype_intrekking = "In behandeling"
roltype_gemachtigde = "Belanghebbende"
"""
)


def fake(zs: Zaaksysteem) -> Any:
    return zs.fake


@pytest.fixture
def own_profile(tmp_path: Path, zs: Zaaksysteem) -> Iterator[Services]:
    """The example aanvraag becomes two zaken: OLO-1234567 (ZT-OMV-REG, profile regulier on the defaults)
    and MLD-1234567 (ZT-MELDING, ``OWN_PROFILE``), made in that order."""
    yield from services_with_mapping(tmp_path, zs, OWN_PROFILE)


@pytest.fixture
def same_types(tmp_path: Path, zs: Zaaksysteem) -> Iterator[Services]:
    """Two zaken whose zaaktypen take every bijlage as the same informatieobjecttype."""
    yield from services_with_mapping(tmp_path, zs, TWO_ZAKEN)


def referentie(sv: Services, message_id: int) -> str:
    with sv.engine.connect() as conn:
        return str(
            conn.execute(text("SELECT referentienummer FROM messages WHERE id = :id"), {"id": message_id}).scalar_one()
        )


def zaken(zs: Zaaksysteem) -> dict[str, dict[str, Any]]:
    """The zaken by identificatie."""
    return {z["identificatie"]: z for z in fake(zs).zaken}


def on(zs: Zaaksysteem, kind: str, zaak: dict[str, Any]) -> list[dict[str, Any]]:
    return [x for x in getattr(fake(zs), kind) if x["zaak"] == zaak["url"]]


def with_aanvraag(sv: Services) -> None:
    receive(sv)
    assert drain(sv) == ["done"]


def iot_of(zs: Zaaksysteem, document_url: str) -> str:
    store = fake(zs).store
    eio = next(d for d in fake(zs).documenten if d["url"] == document_url)
    return str(store.resolve(eio["informatieobjecttype"], "informatieobjecttypen")["omschrijving"])


def documents_on(zs: Zaaksysteem, zaak: dict[str, Any]) -> dict[str, str]:
    """bestandsnaam → informatieobjecttype omschrijving of every document linked to ``zaak`` (once each)."""
    links = [z["informatieobject"] for z in on(zs, "zaakinformatieobjecten", zaak)]
    assert len(links) == len(set(links)), links
    by_url = {d["url"]: d for d in fake(zs).documenten}
    return {by_url[u]["bestandsnaam"]: iot_of(zs, u) for u in links}


def gemachtigden(zs: Zaaksysteem, zaak: dict[str, Any], toelichting: str) -> list[dict[str, Any]]:
    return [r for r in on(zs, "rollen", zaak) if r["roltoelichting"] == toelichting]


# -- every zaak, each with its own profile ------------------------------------------------------------------


def test_an_intrekking_sets_its_status_on_every_zaak_with_each_zaaks_statustype_and_the_reden(
    own_profile: Services, zs: Zaaksysteem
) -> None:
    aanvraag = referentie(own_profile, receive(own_profile))
    assert drain(own_profile) == ["done"]
    ref = referentie(own_profile, receive(own_profile, "vrgDi01IntrekkenAanvraag"))
    assert drain(own_profile) == ["done"]
    z = zaken(zs)
    assert sorted(z) == ["MLD-1234567", "OLO-1234567"]
    for ident, intrekking in (("OLO-1234567", 3), ("MLD-1234567", 2)):
        statussen = on(zs, "statussen", z[ident])
        assert [volgnummer(zs, s["statustype"]) for s in statussen] == [1, intrekking], ident
        # each status names why it was set and the message that set it
        assert statussen[0]["statustoelichting"] == f"Ontvangen via het Omgevingsloket (bericht {aanvraag})"
        assert statussen[1]["statustoelichting"] == f"{REDEN} (bericht {ref})"


class LinkedSteps:
    """A first, uninterrupted run whose zaak links are the zaken the fake holds (for a verzoek the StUF-LVO
    channel cannot carry: an intrekking without reden, as STAM may send)."""

    def __init__(self, links: list[dict[str, Any]]) -> None:
        self.links = links
        self.state: dict[str, Any] = {}

    def result(self, key: str) -> Any:
        return self.state.get(key)

    def was_started(self, key: str) -> bool:
        return False

    def start(self, key: str) -> None:
        pass

    def done(self, key: str, result: Any, recoverable: bool = False) -> None:
        self.state[key] = dict(result)

    def zaak(self, nummer: str, zaaktype: str | None = None) -> Any:
        return next(iter(self.zaken(nummer)), None)

    def zaken(self, nummer: str) -> list[dict[str, Any]]:
        return list(self.links)

    def link_zaak(self, nummer: str, zaaktype: str, url: str, identificatie: str | None) -> None:
        raise AssertionError("a follow-up makes no zaak")

    def document(self, nummer: str, zaak: str, bijlage: str) -> Any:
        return None  # the verzoek's documents made before are not this test's subject

    def link_document(self, nummer: str, zaken: Any, bijlage: str, identificatie: str, omvang: int | None) -> None:
        pass

    def called(self, call: str) -> None:
        pass


def test_an_intrekking_without_reden_has_a_toelichting_naming_only_the_message(
    own_profile: Services, zs: Zaaksysteem
) -> None:
    from dataclasses import replace

    from lxml import etree

    from adapter.loket.lvo import INCOMING
    from adapter.loket.lvo_parse import parse_verzoek
    from adapter.mapping.engine import build_opdracht
    from adapter.mapping.loader import load_dir

    with_aanvraag(own_profile)
    root = etree.fromstring(fixture("vrgDi01IntrekkenAanvraag"))
    el = next(e for e in root.iter() if isinstance(e.tag, str) and etree.QName(e).localname in INCOMING)
    verzoek = replace(parse_verzoek(el, "00000001002564440000"), reden=None)
    assert verzoek.referentie
    opdracht = build_opdracht(load_dir(Path(own_profile.settings.delivery.mappings_dir)), verzoek)
    z = zaken(zs)
    links = [{"url": z[i]["url"], "identificatie": i, "zaaktype": zt} for i, zt in LINKS]
    own_profile.targets["zaaksysteem"].deliver(opdracht, LinkedSteps(links))  # type: ignore[arg-type]
    for ident, intrekking in (("OLO-1234567", 3), ("MLD-1234567", 2)):
        statussen = on(zs, "statussen", z[ident])
        assert [volgnummer(zs, s["statustype"]) for s in statussen] == [1, intrekking], ident
        # no reden: the toelichting names the message alone (never "None", never a made-up text)
        assert statussen[1]["statustoelichting"].strip() == f"(bericht {verzoek.referentie})"


LINKS = [("OLO-1234567", "ZT-OMV-REG"), ("MLD-1234567", "ZT-MELDING")]


def test_a_wijziging_gemachtigde_gives_every_zaak_the_new_gemachtigde_in_its_own_roltype(
    own_profile: Services, zs: Zaaksysteem
) -> None:
    with_aanvraag(own_profile)
    ref = referentie(own_profile, receive(own_profile, "vrgDi01WijzigGemachtigde"))
    assert drain(own_profile) == ["done"]
    z = zaken(zs)
    for ident, roltype in (("OLO-1234567", "Gemachtigde"), ("MLD-1234567", "Belanghebbende")):
        (rol,) = gemachtigden(zs, z[ident], f"gemachtigde (bericht {ref})")
        assert rol["omschrijving"] == roltype, ident
        assert rol["betrokkeneIdentificatie"]["inpBsn"] == BSN_GEMACHTIGDE


@pytest.mark.parametrize(
    ("name", "bestandsnaam", "default_type"),
    [
        ("vrgDi01IndienenAanvulling", "1234567_Bouwtekening_v2.pdf", "Tekening"),
        ("vrgDi01VoegAdviesToe", "1234567_Advies_welstand.pdf", "Advies"),
    ],
)
def test_an_aanvulling_or_advies_adds_its_documents_to_every_zaak_as_each_zaaks_type(
    own_profile: Services, zs: Zaaksysteem, name: str, bestandsnaam: str, default_type: str
) -> None:
    with_aanvraag(own_profile)
    receive(own_profile, name)
    assert drain(own_profile) == ["done"]
    z = zaken(zs)
    assert documents_on(zs, z["OLO-1234567"])[bestandsnaam] == default_type
    assert documents_on(zs, z["MLD-1234567"])[bestandsnaam] == "Bijlage"
    # one document per type the zaken need: two, each linked once
    assert len([d for d in fake(zs).documenten if d["bestandsnaam"] == bestandsnaam]) == 2


def test_zaken_that_take_a_bijlage_as_one_type_share_one_document(same_types: Services, zs: Zaaksysteem) -> None:
    with_aanvraag(same_types)
    receive(same_types, "vrgDi01IndienenAanvulling")
    assert drain(same_types) == ["done"]
    (tekening,) = [d for d in fake(zs).documenten if d["bestandsnaam"] == "1234567_Bouwtekening_v2.pdf"]
    for zaak in zaken(zs).values():
        assert [z["informatieobject"] for z in on(zs, "zaakinformatieobjecten", zaak)].count(tekening["url"]) == 1


# -- exactly once when a call for the second zaak fails -------------------------------------------------------

#: (message, method, path suffix, how many matching calls of the follow-up pass first): every call the
#: follow-up makes for the second zaak (MLD-1234567); "<zaak>" is that zaak's own URL (its zaaktype is read).
SECOND_ZAAK_CALLS = [
    ("vrgDi01IndienenAanvulling", "GET", "<zaak>", 0),
    ("vrgDi01IndienenAanvulling", "POST", "/enkelvoudiginformatieobjecten", 1),
    ("vrgDi01IndienenAanvulling", "POST", "/zaakinformatieobjecten", 1),
    ("vrgDi01VoegAdviesToe", "POST", "/enkelvoudiginformatieobjecten", 1),
    ("vrgDi01VoegAdviesToe", "POST", "/zaakinformatieobjecten", 1),
    ("vrgDi01IntrekkenAanvraag", "GET", "<zaak>", 0),
    ("vrgDi01IntrekkenAanvraag", "POST", "/statussen", 1),
    ("vrgDi01WijzigGemachtigde", "GET", "<zaak>", 0),
    ("vrgDi01WijzigGemachtigde", "POST", "/rollen", 1),
]


def effect(zs: Zaaksysteem, zaak: dict[str, Any], name: str, ref: str) -> list[Any]:
    """What the follow-up adds to ``zaak`` (exactly once each)."""
    if name == "vrgDi01IntrekkenAanvraag":
        return [volgnummer(zs, s["statustype"]) for s in on(zs, "statussen", zaak)]
    if name == "vrgDi01WijzigGemachtigde":
        return [r["omschrijving"] for r in gemachtigden(zs, zaak, f"gemachtigde (bericht {ref})")]
    return sorted(documents_on(zs, zaak).items())


EXPECTED = {
    "vrgDi01IndienenAanvulling": {
        "OLO-1234567": [
            ("1234567_Bouwtekening.pdf", "Tekening"),
            ("1234567_Bouwtekening_v2.pdf", "Tekening"),
            ("1234567_Foto_voorgevel.jpg", "Foto"),
        ],
        "MLD-1234567": [
            ("1234567_Bouwtekening.pdf", "Bijlage"),
            ("1234567_Bouwtekening_v2.pdf", "Bijlage"),
            ("1234567_Foto_voorgevel.jpg", "Bijlage"),
        ],
    },
    "vrgDi01VoegAdviesToe": {
        "OLO-1234567": [
            ("1234567_Advies_welstand.pdf", "Advies"),
            ("1234567_Bouwtekening.pdf", "Tekening"),
            ("1234567_Foto_voorgevel.jpg", "Foto"),
        ],
        "MLD-1234567": [
            ("1234567_Advies_welstand.pdf", "Bijlage"),
            ("1234567_Bouwtekening.pdf", "Bijlage"),
            ("1234567_Foto_voorgevel.jpg", "Bijlage"),
        ],
    },
    "vrgDi01IntrekkenAanvraag": {"OLO-1234567": [1, 3], "MLD-1234567": [1, 2]},
    "vrgDi01WijzigGemachtigde": {"OLO-1234567": ["Gemachtigde"], "MLD-1234567": ["Belanghebbende"]},
}


@pytest.mark.parametrize("after_processing", [False, True], ids=["500-before", "lost-answer-after-commit"])
@pytest.mark.parametrize(
    ("name", "method", "path", "skip"),
    SECOND_ZAAK_CALLS,
    ids=[f"{n.removeprefix('vrgDi01')}:{m} {p}#{s + 1}" for n, m, p, s in SECOND_ZAAK_CALLS],
)
def test_a_follow_up_failing_at_a_call_for_the_second_zaak_reaches_both_exactly_once(
    own_profile: Services, zs: Zaaksysteem, name: str, method: str, path: str, skip: int, after_processing: bool
) -> None:
    with_aanvraag(own_profile)
    documenten_before = len(fake(zs).documenten)
    second = zaken(zs)["MLD-1234567"]
    suffix = "/zaken/" + second["url"].rstrip("/").rsplit("/", 1)[-1] if path == "<zaak>" else path
    fake(zs).fail_next(method, suffix, status=500, skip=skip, after_processing=after_processing)
    ref = referentie(own_profile, receive(own_profile, name))
    assert drain(own_profile) == ["retry", "done"]
    assert fake(zs).pending_faults == 0  # the call for the second zaak did fail once
    z = zaken(zs)
    assert sorted(z) == ["MLD-1234567", "OLO-1234567"]
    for ident, want in EXPECTED[name].items():
        assert effect(zs, z[ident], name, ref) == want, ident
    added = len(fake(zs).documenten) - documenten_before
    assert added == (2 if name in ("vrgDi01IndienenAanvulling", "vrgDi01VoegAdviesToe") else 0)


# -- not the advice zaken we made as adviseur -----------------------------------------------------------------


def test_an_intrekking_does_not_reach_the_advice_zaak_we_made_as_adviseur_on_the_same_aanvraagnummer(
    own_profile: Services, zs: Zaaksysteem
) -> None:
    """We are asked for advice (omvDu01LeverenAanvraag) on an aanvraag with the number of one we handle:
    the advice zaak is linked under ``<nummer>#<adviesverzoek>``. The intrekking of the aanvraag is the
    bevoegd gezag's business (it withdraws its adviesverzoek itself): our advice zaak gets no status."""
    with_aanvraag(own_profile)
    receive(own_profile, body=fixture("omvDu01LeverenAanvraag").replace(b"1234612", b"1234567"))
    assert drain(own_profile) == ["done"]
    (advies,) = [z for z in fake(zs).zaken if z["identificatie"].startswith("ADV-1234567-")]
    statussen_before = on(zs, "statussen", advies)
    receive(own_profile, "vrgDi01IntrekkenAanvraag")
    assert drain(own_profile) == ["done"]
    assert on(zs, "statussen", advies) == statussen_before
    for ident in ("OLO-1234567", "MLD-1234567"):
        assert len(on(zs, "statussen", zaken(zs)[ident])) == 2


# -- StUF-ZKN -------------------------------------------------------------------------------------------------

needs_shared = pytest.mark.skipif(not SHARED.is_dir(), reason="../shared (reference schemas) is absent")

ZKN_SECOND = """
[[zaaktypen]]
activiteiten = ["*"]
zaaktype = "ZT-MELD"
profile = "melding"
soorten = ["aanvraag"]

[profiles.melding]
statustype_intrekking = 2
"""


@pytest.fixture
def zkn_two(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Services, Any]]:
    """The StUF-ZKN mapping of test_stuf_zkn_exactly_once plus a second zaaktype ZT-MELD whose intrekking
    statustype is 2 (the default's is 3): the aanvraag makes two zaken."""
    from tests import test_stuf_zkn_exactly_once as zx

    monkeypatch.setattr(zx, "MAPPING", zx.MAPPING + ZKN_SECOND)
    with zx.zaaksysteem() as zkn, zx.adapter(tmp_path, zkn) as sv:
        yield sv, zkn.fake


def zkn_statussen(fk: Any) -> dict[str, list[int]]:
    """zaaktype → the volgnummers of its zaak's statussen."""
    by_id = {z["identificatie"]: z["zaaktype"] for z in fk.zaken.values()}
    out: dict[str, list[int]] = {zt: [] for zt in by_id.values()}
    for s in fk.statussen:
        out[by_id[s["zaak"]]].append(s["volgnummer"])
    return out


@needs_shared
@pytest.mark.parametrize("mode", ["none", "500-before-commit", "500-after-commit"])
def test_stuf_zkn_an_intrekking_sets_each_zaaks_own_status_on_every_zaak_exactly_once(
    zkn_two: tuple[Services, Any], mode: str
) -> None:
    from tests import test_stuf_zkn_exactly_once as zx

    sv, fk = zkn_two
    zx.delivered(sv, zx.AANVRAAG)
    assert len(fk.zaken) == 2
    if mode != "none":  # the intrekking's second actualiseerZaakstatus: the second zaak's status
        zx.inject(fk, "actualiseerZaakstatus", 1, mode)
    zx.receive(sv, zx.INTREKKING)
    states = zx.drain(sv)
    assert [d.state for d in zx.deliveries(sv)] == ["done", "done"]
    assert states == (["done"] if mode == "none" else ["retry", "done"])
    assert fk.count("actualiseerZaakstatus", answered=500) == (mode != "none")
    assert zkn_statussen(fk) == {"ZT-OMV-REG": [1, 3], "ZT-MELD": [1, 2]}


@needs_shared
def test_stuf_zkn_an_aanvulling_and_a_wijziging_reach_every_zaak(zkn_two: tuple[Services, Any]) -> None:
    from tests import test_stuf_zkn_exactly_once as zx

    sv, fk = zkn_two
    zx.delivered(sv, zx.AANVRAAG, zx.AANVULLING, zx.WIJZIGING)
    ids = sorted(z["identificatie"] for z in fk.zaken.values())
    (v2,) = [d for d in fk.documenten.values() if d["titel"] == "1234567_Bouwtekening_v2.pdf"]
    assert sorted(v2["zaken"]) == ids  # one document, relevant for both zaken
    for zaak in fk.zaken.values():
        wie = [g["vestigingsnummer"] or g["bsn"] for g in zaak["gemachtigden"]]
        assert wie == ["000012345678", BSN_GEMACHTIGDE], zaak["identificatie"]


# -- a zaak_identificatie longer than the Zaken API's 40 characters -------------------------------------------

LONG = "OLO-{verzoek.nummer}-een-melding-met-een-lange-identificatie"
LONG_1234567 = LONG.replace("{verzoek.nummer}", "1234567")
LONG_ZAAK = f"""
[[zaaktypen]]
activiteiten = ["*"]
zaaktype = "ZT-MELDING"
profile = "lang"
soorten = ["aanvraag"]

[profiles.lang]
zaak_identificatie = "{LONG}"
"""


@pytest.fixture
def long_ident(tmp_path: Path, zs: Zaaksysteem) -> Iterator[Services]:
    """The example aanvraag becomes OLO-1234567 (ZT-OMV-REG) and a ZT-MELDING zaak whose mapped
    identificatie has 60 characters."""
    yield from services_with_mapping(tmp_path, zs, LONG_ZAAK)


def assert_complete(zs: Zaaksysteem, zaak: dict[str, Any]) -> None:
    """Everything the aanvraag puts on a zaak, once: two rollen, two zaakobjecten, two documents, a status."""
    for kind, n in (("rollen", 2), ("zaakobjecten", 2), ("zaakinformatieobjecten", 2), ("statussen", 1)):
        assert len(on(zs, kind, zaak)) == n, (kind, zaak["identificatie"])


@pytest.mark.parametrize("after_processing", [False, True], ids=["500-before", "lost-answer-after-commit"])
def test_a_long_zaak_identificatie_is_sent_and_looked_for_bounded_so_a_retry_finds_its_zaak(
    long_ident: Services, zs: Zaaksysteem, after_processing: bool
) -> None:
    """The answer to POST /zaken of the long one is lost (or a 500 before): the zaak is made under the
    bounded identificatie (first 33 characters, "-", 6 hex of a hash of all of it) and the retry looks for
    that same one, so it adopts the zaak instead of making a second (or being refused one)."""
    from adapter.mapping.engine import bounded_identificatie

    want = bounded_identificatie(LONG_1234567)
    assert len(LONG_1234567) > 40 and len(want) == 40 and want.startswith(LONG_1234567[:33] + "-")
    fake(zs).fail_next("POST", "/zaken", status=500, skip=1, after_processing=after_processing)
    receive(long_ident)
    assert drain(long_ident) == ["retry", "done"]
    z = zaken(zs)
    assert sorted(z) == sorted(["OLO-1234567", want])
    for zaak in z.values():
        assert_complete(zs, zaak)


@pytest.mark.parametrize("kenmerk", ["1234567", "7654321"], ids=["ours", "another-verzoek"])
def test_a_zaak_an_earlier_release_made_under_the_cut_identificatie_is_adopted_only_when_ours(
    long_ident: Services, zs: Zaaksysteem, kenmerk: str
) -> None:
    """Releases before this one sent the first 40 characters of a long identificatie. A delivery they
    started (POST /zaken sent, no answer) and this release retries finds that zaak under the cut
    identificatie and adopts it when it carries this verzoek's kenmerk and zaaktype; another verzoek's zaak
    under it is left alone and ours is made under the bounded identificatie."""
    from adapter.mapping.engine import bounded_identificatie

    t: Any = long_ident.targets["zaaksysteem"]
    cut = LONG_1234567[:40]
    zt_url = t.catalogus.zaaktype("ZT-MELDING", datetime.date(2026, 11, 23))
    body = {
        "bronorganisatie": "002564440",
        "zaaktype": zt_url,
        "verantwoordelijkeOrganisatie": "002564440",
        "startdatum": "2026-11-23",
        "identificatie": cut,
        "kenmerken": [{"kenmerk": kenmerk, "bron": "Omgevingsloket"}],
    }
    t.client.post(t.client.url("zaken", "zaken"), body)
    fake(zs).fail_next("POST", "/zaken", status=500, skip=1)  # the delivery's own POST /zaken of ZT-MELDING
    receive(long_ident)
    lookups: list[dict[str, Any]] = []
    find_all = t.client.find_all
    t.client.find_all = lambda api, path, **params: lookups.append(params) or find_all(api, path, **params)
    assert drain(long_ident) == ["retry", "done"]
    # asked by identificatie and bronorganisatie, not by scanning every zaak of the zaaksysteem
    assert {"identificatie": cut, "bronorganisatie": "002564440"} in lookups, lookups
    z = zaken(zs)
    ours = cut if kenmerk == "1234567" else bounded_identificatie(LONG_1234567)
    assert sorted(z) == sorted({"OLO-1234567", cut, ours})
    assert_complete(zs, z[ours])
    if ours != cut:
        assert on(zs, "rollen", z[cut]) == []


# -- one zaak whose zaaktype's profile is not the default ---------------------------------------------------


def test_follow_ups_on_a_triage_zaak_use_the_triage_profile_not_the_defaults(
    services: Services, zs: Zaaksysteem
) -> None:
    """The verzoek made one zaak, of ZT-TRIAGE (no activiteit mapped), whose profile differs from
    ``[defaults]`` in everything a follow-up uses. The aanvulling's Bouwtekening is a "Bijlage" (the default
    map's "Tekening" is not allowed for ZT-TRIAGE), the intrekking sets "In behandeling" (2, not the
    default "Ingetrokken", 3) with the reden and the message in its toelichting, the new gemachtigde is a
    "Belanghebbende" (not "Gemachtigde") whose roltoelichting names "gemachtigde" and the message."""
    edit_mapping(
        services,
        'informatieobjecttypen = { "*" = "Bijlage" }   # its own map',
        'statustype_intrekking = "In behandeling"\nroltype_gemachtigde = "Belanghebbende"\n'
        'informatieobjecttypen = { "*" = "Bijlage" }   # its own map',
    )
    receive(services, body=fixture("omvDi01AanbiedenAanvraag").replace(b"dakkapel-plaatsen", b"iets-onbekends"))
    assert drain(services) == ["done"]
    (zaak,) = fake(zs).zaken
    assert zaak["zaaktype"] == fake(zs).catalogus_url("zaaktypen", identificatie="ZT-TRIAGE")
    receive(services, "vrgDi01IndienenAanvulling")
    ref_intrekking = referentie(services, receive(services, "vrgDi01IntrekkenAanvraag"))
    ref_wijziging = referentie(services, receive(services, "vrgDi01WijzigGemachtigde"))
    assert drain(services) == ["done", "done", "done"]
    assert documents_on(zs, zaak)["1234567_Bouwtekening_v2.pdf"] == "Bijlage"
    statussen = on(zs, "statussen", zaak)
    assert [volgnummer(zs, s["statustype"]) for s in statussen] == [1, 2]
    assert statussen[1]["statustoelichting"] == f"{REDEN} (bericht {ref_intrekking})"
    (rol,) = gemachtigden(zs, zaak, f"gemachtigde (bericht {ref_wijziging})")
    assert rol["omschrijving"] == "Belanghebbende"
    assert rol["betrokkeneIdentificatie"]["inpBsn"] == BSN_GEMACHTIGDE


def test_a_follow_up_on_a_zaak_whose_zaaktype_the_mapping_no_longer_makes_uses_the_defaults(
    services: Services, zs: Zaaksysteem
) -> None:
    """The mapping was edited after the aanvraag: its zaak's zaaktype is no longer one the mapping makes. The
    aanvulling still lands on that zaak, with the ``[defaults]`` profile and document types."""
    receive(services)
    assert drain(services) == ["done"]
    (zaak,) = fake(zs).zaken
    edit_mapping(services, 'zaaktype = "ZT-OMV-REG"', 'zaaktype = "ZT-OMV-NIEUW"')
    receive(services, "vrgDi01IndienenAanvulling")
    assert drain(services) == ["done"]
    assert len(fake(zs).zaken) == 1
    assert documents_on(zs, zaak)["1234567_Bouwtekening_v2.pdf"] == "Tekening"


def test_a_follow_ups_document_type_is_checked_against_the_zaaktype_of_its_zaak(
    services: Services, zs: Zaaksysteem
) -> None:
    """The aanvulling's document type must be one the zaak's own zaaktype allows (the Zaken API refuses
    another), not merely one some zaaktype of the catalogus allows: "Tekening" exists and ZT-OMV-REG allows
    it, ZT-TRIAGE does not. The follow-up on a triage zaak stops with the reason before anything is made."""
    receive(services, body=fixture("omvDi01AanbiedenAanvraag").replace(b"dakkapel-plaatsen", b"iets-onbekends"))
    assert drain(services) == ["done"]
    assert fake(zs).zaken[0]["zaaktype"] == fake(zs).catalogus_url("zaaktypen", identificatie="ZT-TRIAGE")
    documents = len(fake(zs).documenten)
    triage_map = 'informatieobjecttypen = { "*" = "Bijlage" }'
    edit_mapping(services, triage_map, triage_map.replace("Bijlage", "Tekening"))
    receive(services, "vrgDi01IndienenAanvulling")
    assert drain(services) == ["needs-attention"]
    assert "informatieobjecttype 'Tekening' is not allowed for zaaktype" in last_error(services), last_error(services)
    assert "ZT-TRIAGE" in last_error(services) and len(fake(zs).documenten) == documents
