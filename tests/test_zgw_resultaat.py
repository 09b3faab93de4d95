"""The resultaat an intrekking sets before the eindstatus: exactly once, on its own zaak, never over
someone else's. A zaak has at most one resultaat (unique in the Zaken API), so the step looks first."""

from __future__ import annotations

from typing import Any

import pytest

from adapter.services import Services
from tests.delivery_env import Zaaksysteem, needs_zgw_specs
from tests.test_catalogus_rules import edit_mapping, fake, last_error
from tests.test_delivery_zgw import drain, receive
from tests.test_zgw_exactly_once import delivery_states

pytestmark = needs_zgw_specs


def to_eindstatus(sv: Services) -> None:
    edit_mapping(
        sv,
        'statustype_intrekking = "Ingetrokken"         # …or by omschrijving\n# resultaattype_intrekking',
        'statustype_intrekking = "Afgehandeld"\nresultaattype_intrekking',
    )


def the_zaak(zs: Zaaksysteem) -> dict[str, Any]:
    """The fake's own record of the one zaak the aanvraag made (references in the store are its urls)."""
    [zaak] = [z for z in fake(zs).store.all("zaken") if z.get("identificatie") == "OLO-1234567"]
    return dict(zaak)


def resultaattype(zs: Zaaksysteem, zaak: dict[str, Any], omschrijving: str) -> str:
    """The zaak's own zaaktype's resultaattype with this omschrijving."""
    for rt in fake(zs).store.all("resultaattypen"):
        if rt["omschrijving"] == omschrijving and rt["zaaktype"] == zaak["zaaktype"]:
            return str(rt["url"])
    raise AssertionError(f"no resultaattype {omschrijving!r} for {zaak['zaaktype']}")


def resultaten_of(zs: Zaaksysteem, zaak: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for r in fake(zs).store.all("resultaten") if r["zaak"] == zaak["url"]]


def einddatum(zs: Zaaksysteem, zaak: dict[str, Any]) -> Any:
    return fake(zs).store.resolve(zaak["url"], "zaken").get("einddatum")


def test_a_lost_resultaat_answer_is_adopted_and_the_eindstatus_follows(services: Services, zs: Zaaksysteem) -> None:
    """The zaaksysteem stored the resultaat but its answer was lost: the retry finds it (one resultaat of
    our resultaattype on our zaak) instead of posting a second one, which the API would refuse."""
    to_eindstatus(services)
    receive(services)
    assert drain(services) == ["done"]
    fake(zs).fail_next("POST", "/resultaten", status=500, after_processing=True)
    receive(services, "vrgDi01IntrekkenAanvraag")
    assert drain(services) == ["retry", "done"]
    zaak = the_zaak(zs)
    [resultaat] = resultaten_of(zs, zaak)
    assert resultaat["resultaattype"] == resultaattype(zs, zaak, "Ingetrokken")
    assert resultaat["toelichting"].startswith("Ingetrokken (bericht ")  # names the message that set it
    assert einddatum(zs, zaak) is not None
    assert len(fake(zs).zaken) == 1


def test_a_resultaat_of_our_type_already_on_the_zaak_is_taken_not_posted_again(
    services: Services, zs: Zaaksysteem
) -> None:
    """A behandelaar (or an earlier, lost attempt) already set our resultaat: the step looks before it
    posts, takes it, and the eindstatus is set; no POST /resultaten at all."""
    to_eindstatus(services)
    receive(services)
    assert drain(services) == ["done"]
    zaak = the_zaak(zs)
    fake(zs).store.add("resultaten", {"zaak": zaak["url"], "resultaattype": resultaattype(zs, zaak, "Ingetrokken")})
    posts_before = sum(1 for r in fake(zs).requests if r[0] == "POST" and r[1].endswith("/resultaten"))
    receive(services, "vrgDi01IntrekkenAanvraag")
    assert drain(services) == ["done"]
    assert sum(1 for r in fake(zs).requests if r[0] == "POST" and r[1].endswith("/resultaten")) == posts_before
    assert len(resultaten_of(zs, zaak)) == 1
    assert einddatum(zs, zaak) is not None


def test_a_resultaat_of_another_type_is_refused_not_overwritten(services: Services, zs: Zaaksysteem) -> None:
    """The zaak already has a resultaat of another resultaattype (a behandelaar decided 'Verleend'): the
    intrekking needs an operator at once, naming that resultaat; nothing is posted, no eindstatus set."""
    to_eindstatus(services)
    receive(services)
    assert drain(services) == ["done"]
    zaak = the_zaak(zs)
    theirs = fake(zs).store.add(
        "resultaten", {"zaak": zaak["url"], "resultaattype": resultaattype(zs, zaak, "Verleend")}
    )
    statussen_before = len(fake(zs).statussen)
    receive(services, "vrgDi01IntrekkenAanvraag")
    assert drain(services) == ["needs-attention"]
    error = last_error(services)
    assert f"already has resultaat {zs.base_url}{theirs['url']} of another resultaattype" in error, error
    assert resultaten_of(zs, zaak) == [theirs]
    assert len(fake(zs).statussen) == statussen_before
    assert einddatum(zs, zaak) is None


@pytest.mark.parametrize("lost_answer", [False, True], ids=["first-try", "lost-answer"])
def test_another_zaaks_resultaat_is_never_taken_for_ours(
    services: Services, zs: Zaaksysteem, lost_answer: bool
) -> None:
    """Another zaak of the same zaaktype already has the same resultaattype: the look-up is by our zaak,
    so our zaak gets its own resultaat and its eindstatus."""
    to_eindstatus(services)
    receive(services)
    assert drain(services) == ["done"]
    zaak = the_zaak(zs)
    other = dict(zaak)
    for k in ("url", "uuid", "identificatie"):
        other.pop(k, None)
    other = fake(zs).store.add("zaken", other)
    fake(zs).store.add("resultaten", {"zaak": other["url"], "resultaattype": resultaattype(zs, zaak, "Ingetrokken")})
    if lost_answer:
        fake(zs).fail_next("POST", "/resultaten", status=500, after_processing=True)
    receive(services, "vrgDi01IntrekkenAanvraag")
    assert delivery_states(services)[-1] in ("pending", "retry")
    drain(services)
    assert delivery_states(services)[-1] == "done"
    [ours] = resultaten_of(zs, zaak)
    assert ours["resultaattype"] == resultaattype(zs, zaak, "Ingetrokken")
    assert einddatum(zs, zaak) is not None
