"""A bijlage whose document a mapping fix and a resend replaced, then listed again by a later verzoek version.

In-process against the fake ZGW (every request and answer validated against the official OpenAPI files).
The aanvraag is delivered, the Bouwtekening's type is fixed in the mapping and the aanvraag resent (its
document of the old type is replaced by one of the new type, ``<identificatie>-<6 hex of the type>``);
then a StUF-LVO aanvulling carries the same bijlageId again (as a STAM version lists every document so
far). Checkpoints are per delivery, so the aanvulling must recognise the bijlage's current document in
the zaaksysteem: the zaak keeps exactly one Bouwtekening, of the latest type, its bytes unchanged, linked
once — not a second document made under the original identificatie (deleted by the replacement).
"""

from __future__ import annotations

import hashlib

from adapter.services import Services
from tests.delivery_env import Zaaksysteem, needs_zgw_specs
from tests.soap import fixture
from tests.test_catalogus_rules import edit_mapping
from tests.test_delivery_zgw import drain, receive
from tests.test_mutation_kills_zgw import fake, resend, tekeningen, type_of
from tests.test_zgw_exactly_once import last_error

pytestmark = needs_zgw_specs


def aanvulling_listing_the_bouwtekening() -> bytes:
    """The example aanvulling, its one bijlage being the aanvraag's Bouwtekening again (same id, name, bytes)."""
    body = fixture("vrgDi01IndienenAanvulling")
    body = body.replace(b"<LVO:bijlageId>1234567-3<", b"<LVO:bijlageId>1234567-1<")
    return body.replace(b"1234567_Bouwtekening_v2.pdf", b"1234567_Bouwtekening.pdf")


def test_a_replaced_bijlage_listed_again_by_a_later_version_stays_one_document(
    services: Services, zs: Zaaksysteem
) -> None:
    mid = receive(services)
    assert drain(services) == ["done"]
    [original] = tekeningen(zs)
    edit_mapping(services, 'Bouwtekening = "Tekening"', 'Bouwtekening = "Bijlage"')
    assert resend(services, mid) == "done"
    [replacement] = tekeningen(zs)
    assert type_of(zs, replacement) == "Bijlage"
    tag = hashlib.sha256(replacement["informatieobjecttype"].encode()).hexdigest()[:6]
    assert replacement["identificatie"] == f"1234567-1-{tag}"
    creates = len([r for r in fake(zs).requests if r.method == "POST" and "informatieobjecten" in r.path])

    receive(services, body=aanvulling_listing_the_bouwtekening())
    assert drain(services) == ["done"], last_error(services)

    [tekening] = tekeningen(zs)  # not a second one under the original identificatie "1234567-1"
    assert tekening["url"] == replacement["url"]
    assert type_of(zs, tekening) == "Bijlage"
    assert tekening["bytes"] == original["bytes"]
    links = [z for z in fake(zs).zaakinformatieobjecten if z["informatieobject"] == tekening["url"]]
    assert len(links) == 1, links
    after = [r for r in fake(zs).requests if r.method == "POST" and "informatieobjecten" in r.path]
    assert len(after) == creates, [(r.method, r.path) for r in after[creates:]]  # nothing made, nothing linked
