"""The zaak a retry adopts after an uncertain POST /zaken is ours by identificatie *and* bronorganisatie
(the Zaken API's uniqueness rule; one Open Zaak often serves several organisations), and without a
configured identificatie there is nothing to recognise it by, so nothing is adopted."""

from __future__ import annotations

from typing import Any

from adapter.services import Services
from tests.delivery_env import Zaaksysteem, needs_zgw_specs
from tests.soap import fixture
from tests.test_catalogus_rules import edit_mapping, fake
from tests.test_delivery_zgw import drain, receive

pytestmark = needs_zgw_specs

OURS = "002564440"  # the example mapping's bronorganisatie


def zaken(zs: Zaaksysteem) -> list[dict[str, Any]]:
    return [dict(z) for z in fake(zs).store.all("zaken")]


def kenmerk(zaak: dict[str, Any]) -> list[str]:
    return [k["kenmerk"] for k in zaak.get("kenmerken") or []]


def rollen_on(zs: Zaaksysteem, zaak: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for r in fake(zs).store.all("rollen") if r["zaak"] == zaak["url"]]


def other_aanvraag() -> bytes:
    return fixture("omvDi01AanbiedenAanvraag").replace(b"1234567", b"7654321")


def test_a_zaak_of_another_bronorganisatie_under_our_identificatie_is_not_adopted(
    services: Services, zs: Zaaksysteem
) -> None:
    """Another organisation in the same zaaksysteem has a zaak 'OLO-1234567': after a lost answer the
    retry adopts our own zaak, and everything of the verzoek lands on ours."""
    receive(services, body=other_aanvraag())
    assert drain(services) == ["done"]
    [theirs] = zaken(zs)
    theirs = {**theirs, "identificatie": "OLO-1234567", "bronorganisatie": "999999999"}
    for k in ("url", "uuid"):
        theirs.pop(k)
    theirs = fake(zs).store.add("zaken", theirs)
    fake(zs).fail_next("POST", "/zaken", status=500, after_processing=True)
    receive(services)
    assert drain(services) == ["retry", "done"]
    [ours] = [z for z in zaken(zs) if z["identificatie"] == "OLO-1234567" and z["bronorganisatie"] == OURS]
    assert "1234567" in kenmerk(ours) and len(rollen_on(zs, ours)) == 2
    assert rollen_on(zs, theirs) == []
    assert len(zaken(zs)) == 3


def test_without_a_zaak_identificatie_a_retry_never_adopts_another_zaak(services: Services, zs: Zaaksysteem) -> None:
    """No zaak_identificatie in the mapping: the zaaksysteem picks one, so a retry has nothing to find
    its zaak by; it creates it (the documented price of that choice) and never takes another zaak of the
    same bronorganisatie for it."""
    edit_mapping(services, 'zaak_identificatie = "OLO-{verzoek.nummer}"', 'zaak_identificatie = ""')
    receive(services, body=other_aanvraag())
    assert drain(services) == ["done"]
    [theirs] = zaken(zs)
    fake(zs).fail_next("POST", "/zaken", status=500)
    receive(services)
    assert drain(services) == ["retry", "done"]
    [ours] = [z for z in zaken(zs) if z["url"] != theirs["url"]]
    assert "1234567" in kenmerk(ours) and len(rollen_on(zs, ours)) == 2
    assert "1234567" not in kenmerk(theirs) and len(rollen_on(zs, theirs)) == 2


def test_a_zaaktype_of_the_same_identificatie_in_another_catalogus_is_never_chosen(
    services: Services, zs: Zaaksysteem
) -> None:
    """One Open Zaak holds the catalogi of several organisations, often with the same zaaktype
    identificaties: the delivery chooses only in the configured catalogus."""
    store = fake(zs).store
    [ours] = [c for c in store.all("catalogussen")]
    other = store.add(
        "catalogussen", {**{k: v for k, v in ours.items() if k not in ("url", "uuid")}, "rsin": "999999999"}
    )
    current = [z for z in store.all("zaaktypen") if z["identificatie"] == "ZT-OMV-REG" and not z.get("concept")]
    copy = {k: v for k, v in max(current, key=lambda z: z["beginGeldigheid"]).items() if k not in ("url", "uuid")}
    theirs = store.add("zaaktypen", {**copy, "catalogus": other["url"]})
    receive(services)
    assert drain(services) == ["done"]
    [zaak] = zaken(zs)
    assert zaak["zaaktype"] != theirs["url"]
    assert store.resolve(zaak["zaaktype"], "zaaktypen")["catalogus"] == ours["url"]
