"""Documents on the zaak after mapping fixes, document identificaties that cannot collide, and empty files.

In-process against the fake ZGW (every request and answer validated against the official OpenAPI files):

- after any number of mapping fixes (each followed by ``messages resend``) the zaak has one document per
  bijlage, of the latest type, linked once, whatever call of a replacement failed or lost its answer;
- a document's identificatie is unique per bijlage and informatieobjecttype and at most 40 characters,
  also for long bijlageIds, and stays what it was for the short ids already in production;
- a werkmap or postbus file of 0 bytes is complete on its create: no lock, no unlock, no forced unlock.
"""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from adapter.services import Services
from adapter.store.outbox import DbSteps
from adapter.targets.zgw.plugin import document_identificatie
from tests import test_mutation_kills_zgw as kills
from tests.delivery_env import Zaaksysteem, needs_zgw_specs
from tests.test_catalogus_rules import edit_mapping, mapping_file
from tests.test_delivery_zgw import drain, receive
from tests.test_mutation_kills_zgw import (
    aanvraag_with,
    fake,
    on_zaak,
    resend,
    stam_version,
    tekeningen,
    type_of,
    werkmap_documents,
)
from tests.test_stam_e2e import documents_of
from tests.test_zgw_exactly_once import last_error

pytestmark = needs_zgw_specs
two_zaken_two_types = kills.two_zaken_two_types  # the fixtures, shared with the mutation-kill tests
stam_services = kills.stam_services


def the_bouwtekening(zs: Zaaksysteem) -> dict[str, Any]:
    """The zaak's one Bouwtekening: one document, linked once, and no link to anything else of its kind."""
    [doc] = tekeningen(zs)
    links = [z for z in fake(zs).zaakinformatieobjecten if z["informatieobject"] == doc["url"]]
    assert len(links) == 1, links
    assert len(fake(zs).zaakinformatieobjecten) == len(fake(zs).documenten) == 2, fake(zs).zaakinformatieobjecten
    return doc


def deliver_then_fix(sv: Services, zs: Zaaksysteem, types: list[str]) -> tuple[int, list[str]]:
    """Deliver the example aanvraag (stopped by a refused status), then for each type in ``types`` fix the
    Bouwtekening's mapping to it and resend; every resend but the last stops on a refused status again.
    Returns the message id and the outcome detail of each resend."""
    fake(zs).fail_next("POST", "/statussen", status=400, times=len(types))
    mid = receive(sv)
    assert drain(sv) == ["needs-attention"]
    details = []
    current = "Tekening"
    for n, new in enumerate(types):
        edit_mapping(sv, f'Bouwtekening = "{current}"', f'Bouwtekening = "{new}"')
        current = new
        assert sv.outbox is not None
        [report] = sv.outbox.resend([mid])
        assert not isinstance(report, str), report
        assert report.state == ("done" if n == len(types) - 1 else "needs-attention"), report
        details.append(report.detail)
    return mid, details


# -- 1. a second (third, …) mapping fix: one document of the latest type ----------------------------------


@pytest.mark.parametrize(
    "types",
    [
        ["Bijlage", "Aanvraag"],
        ["Bijlage", "Aanvraag", "Bijlage"],
        ["Bijlage", "Tekening"],
        ["Bijlage", "Aanvraag", "Tekening"],
        ["Bijlage", "Tekening", "Bijlage", "Tekening"],  # the original type made a third time: key#3
    ],
    ids=[
        "twice",
        "back-to-the-first-fix",
        "back-to-the-original",
        "three-times-back-to-the-original",
        "back-to-the-original-twice",
    ],
)
def test_after_any_number_of_mapping_fixes_the_zaak_has_one_bouwtekening_of_the_latest_type(
    services: Services, zs: Zaaksysteem, types: list[str]
) -> None:
    """The Bouwtekening's type is fixed several times, a resend after each, also back to a type it had
    before (whose document was deleted when it was replaced): the zaak ends with one Bouwtekening, of the
    latest type, linked once; every replaced document is gone."""
    deliver_then_fix(services, zs, types)
    assert type_of(zs, the_bouwtekening(zs)) == types[-1]


def test_the_summary_names_the_document_each_resend_replaced(services: Services, zs: Zaaksysteem) -> None:
    """The outcome of the second fix's resend names the document it replaced: the first replacement (of
    type Bijlage), not the original that the first resend had already removed."""
    mid = receive(services)
    assert drain(services) == ["done"]
    edit_mapping(services, 'Bouwtekening = "Tekening"', 'Bouwtekening = "Bijlage"')
    assert resend(services, mid) == "done"
    bijlage = the_bouwtekening(zs)["identificatie"]
    edit_mapping(services, 'Bouwtekening = "Bijlage"', 'Bouwtekening = "Aanvraag"')
    assert services.outbox is not None
    [report] = services.outbox.resend([mid])
    assert not isinstance(report, str) and report.state == "done", report
    aanvraag = the_bouwtekening(zs)["identificatie"]
    assert f"document {bijlage} vervangen door {aanvraag}" in report.detail, report.detail
    assert "document 1234567-1 " not in report.detail, report.detail


SECOND_REPLACEMENT_CALLS = [
    ("POST", "/enkelvoudiginformatieobjecten"),  # the document of the latest type
    ("POST", "/zaakinformatieobjecten"),  # its link
    ("DELETE", "/zaakinformatieobjecten/{uuid}"),  # the first replacement's link
    ("DELETE", "/enkelvoudiginformatieobjecten/{uuid}"),  # the first replacement
]


@pytest.mark.parametrize("lose_buffered", [False, True], ids=["run-recorded", "killed-buffer-lost"])
@pytest.mark.parametrize("after_processing", [False, True], ids=["500-before", "lost-answer-after-commit"])
@pytest.mark.parametrize(
    ("method", "path"), SECOND_REPLACEMENT_CALLS, ids=[f"{m}{p}" for m, p in SECOND_REPLACEMENT_CALLS]
)
def test_a_second_replacement_interrupted_at_any_call_converges(
    services: Services,
    zs: Zaaksysteem,
    monkeypatch: pytest.MonkeyPatch,
    method: str,
    path: str,
    after_processing: bool,
    lose_buffered: bool,
) -> None:
    """The second mapping fix's resend fails at one call of the replacement (before the zaaksysteem did it,
    or after, its answer lost); with ``killed-buffer-lost`` the run also loses the checkpoints it had not
    written yet, as a kill -9 would. The retries converge: one Bouwtekening of the latest type, linked
    once, the first replacement unlinked and deleted, the original not touched again."""
    mid, _ = deliver_then_fix(services, zs, ["Bijlage"])
    original_deletes = [r for r in fake(zs).requests if r.method == "DELETE"]
    edit_mapping(services, 'Bouwtekening = "Bijlage"', 'Bouwtekening = "Aanvraag"')
    fake(zs).fail_next(method, path, status=500, after_processing=after_processing)
    if lose_buffered:
        flush = DbSteps.flush
        lost = {"done": False}

        def flush_once_lost(self: DbSteps, conn: Any) -> None:
            if not lost["done"]:
                lost["done"] = True
                self._pending.clear()
                return
            flush(self, conn)

        monkeypatch.setattr(DbSteps, "flush", flush_once_lost)
    assert resend(services, mid) == "retry"
    assert drain(services) == ["done"], last_error(services)
    assert type_of(zs, the_bouwtekening(zs)) == "Aanvraag"
    deletes = [r for r in fake(zs).requests if r.method == "DELETE"][len(original_deletes) :]
    first_urls = {r.path for r in original_deletes}
    assert not [r for r in deletes if r.path in first_urls], "the original's link or document deleted again"
    assert all(r.status in (204, 404, 500) for r in deletes), [(r.path, r.status) for r in deletes]


def test_a_resend_without_a_further_fix_changes_nothing(services: Services, zs: Zaaksysteem) -> None:
    """After two fixes are delivered, another resend (the mapping unchanged) makes, links and deletes
    nothing: the zaak keeps its one Bouwtekening of the latest type."""
    mid, _ = deliver_then_fix(services, zs, ["Bijlage", "Aanvraag"])
    before = len(fake(zs).requests)
    assert resend(services, mid) == "done"
    after = fake(zs).requests[before:]
    assert not [r for r in after if r.method in ("POST", "DELETE") and "statussen" not in r.path], [
        (r.method, r.path) for r in after
    ]
    assert type_of(zs, the_bouwtekening(zs)) == "Aanvraag"


# -- 2. identificaties: unique per bijlage and type, at most 40 characters ---------------------------------

ENDS_IN_2 = "1234567-bouwtekening-gevelaanzicht-v-2"  # 38 characters: its second type's old form was itself
NOORD = "1234567-bouwtekening-gevelaanzicht-noord"  # 40 characters
#: two bijlageIds of 40 characters (the StUF-LVO maximum) whose ``1234567-<bijlageId>`` agree in 40 characters
SCHAAL_100, SCHAAL_200 = "bouwtekening-gevel-noord-schaal-1-op-100", "bouwtekening-gevel-noord-schaal-1-op-200"


def test_a_bijlage_id_ending_in_2_gets_its_second_type_under_an_identificatie_of_its_own(
    two_zaken_two_types: Services, zs: Zaaksysteem
) -> None:
    """The Bouwtekening's bijlageId is 38 characters and ends in ``-2``; two zaken need it as different types.
    The second type's document gets an identificatie of its own (the old ``<first 36>-2`` was the first's
    own, so its create was refused as a duplicate): one document per type, each zaak linked to its own, and
    a retry after the second create's lost answer adopts that one, not the first type's."""
    sv = two_zaken_two_types
    fake(zs).fail_next("POST", "/enkelvoudiginformatieobjecten", status=500, skip=2, after_processing=True)
    receive(sv, body=aanvraag_with("1234567", {"1234567-1": ENDS_IN_2}))
    assert drain(sv) == ["retry", "done"], last_error(sv)
    docs = tekeningen(zs)
    idents = sorted(d["identificatie"] for d in docs)
    assert len(docs) == 2 and len(set(idents)) == 2 and all(len(i) <= 40 for i in idents), idents
    assert ENDS_IN_2 in idents
    assert sorted(type_of(zs, d) for d in docs) == ["Bijlage", "Tekening"]
    for zaak in fake(zs).zaken:
        linked = {z["informatieobject"] for z in on_zaak(zs, "zaakinformatieobjecten", zaak)}
        [tekening] = [d for d in docs if d["url"] in linked]
        assert type_of(zs, tekening) == ("Bijlage" if zaak["identificatie"].startswith("MLD-") else "Tekening")


def test_two_long_bijlage_ids_that_agree_in_40_characters_get_identificaties_of_their_own(
    services: Services, zs: Zaaksysteem
) -> None:
    """Two bijlagen whose ``<verzoeknummer>-<bijlageId>`` agree in the first 40 characters (all the Documenten
    API allows) and differ after: each gets its own identificatie (readable prefix and a hash of the whole
    id), so neither create is refused as a duplicate; a retry after a lost answer finds each again."""
    fake(zs).fail_next("POST", "/enkelvoudiginformatieobjecten", status=500, skip=1, after_processing=True)
    receive(services, body=aanvraag_with("1234567", {"1234567-1": SCHAAL_100, "1234567-2": SCHAAL_200}))
    assert drain(services) == ["retry", "done"], last_error(services)
    idents = sorted(d["identificatie"] for d in fake(zs).documenten)
    assert len(idents) == 2 and idents[0] != idents[1], idents
    for ident in idents:
        assert len(ident) == 40 and ident.startswith(f"1234567-{SCHAAL_100}"[:33]), ident
    assert len(fake(zs).zaakinformatieobjecten) == 2


def test_short_identificaties_keep_the_forms_already_in_production() -> None:
    """Ids that fit keep their identificatie: ``<base>``, ``<base>-<n>`` for a further type and
    ``<identificatie>-<6 hex of the type URL>`` for a replacement (what existing documents carry, and what
    retries and later versions of verzoeken delivered before look for)."""
    iot = "https://zaken.example/catalogi/api/v1/informatieobjecttypen/1"
    tag = hashlib.sha256(iot.encode()).hexdigest()[:6]
    assert document_identificatie("1234567-1") == "1234567-1"
    assert document_identificatie("1234567-1", 1) == "1234567-1-2"
    assert document_identificatie("1234567-1", 0, iot) == f"1234567-1-{tag}"
    assert document_identificatie("1234567-1", 1, iot) == f"1234567-1-2-{tag}"
    forty = "x" * 40
    assert document_identificatie(forty) == forty


def test_long_identificaties_are_unique_per_bijlage_and_type_and_fit_in_40() -> None:
    """Every form, for ids around and over the limit: at most 40 characters, the same on every call, and
    all different, except where a short id's production form ``<base>-<n>`` is another bijlage's id."""
    iot_a = "https://zaken.example/catalogi/api/v1/informatieobjecttypen/a"
    iot_b = "https://zaken.example/catalogi/api/v1/informatieobjecttypen/b"
    long = [f"1234567-{SCHAAL_100}", f"1234567-{SCHAAL_200}", f"{NOORD}-v1", f"{NOORD}-v2"]
    bases = [ENDS_IN_2, ENDS_IN_2[:-2], *long, NOORD, NOORD[:-1], "1234567-1", "1234567-1-2"]
    made: dict[str, tuple[str, int, str | None]] = {}
    for base in bases:
        for n in (0, 1, 2):
            for replaced_by in (None, iot_a, iot_b):
                ident = document_identificatie(base, n, replaced_by)
                assert ident == document_identificatie(base, n, replaced_by)
                assert len(ident) <= 40, ident
                if (
                    n
                    and f"{base}-{n + 1}" in bases
                    and ident == document_identificatie(f"{base}-{n + 1}", 0, replaced_by)
                ):
                    # the one clash left, kept on purpose: the production form "<base>-2" of a short id is
                    # also the identificatie of a bijlage whose id is literally "<base>-2" (a duplicate the
                    # zaaksysteem refuses, never adopted: the find wants the document's own type)
                    continue
                assert ident not in made, (ident, made.get(ident), (base, n, replaced_by))
                made[ident] = (base, n, replaced_by)


def test_a_document_made_under_the_old_cut_identificatie_is_found_again(services: Services, zs: Zaaksysteem) -> None:
    """A long bijlageId whose document an earlier release made under the old identificatie (cut to 40
    characters), its create answer lost: the retry finds it under that identificatie, since it is this
    bijlage's (its type and bestandsnaam), and makes no second one."""
    long_id = f"1234567-{SCHAAL_100}"
    fake(zs).fail_next("POST", "/enkelvoudiginformatieobjecten", status=500, after_processing=True)
    fake(zs).fail_next("POST", "/statussen", status=400)
    receive(services, body=aanvraag_with("1234567", {"1234567-1": SCHAAL_100}))
    assert services.outbox is not None
    assert [r.state for r in services.outbox.work_once()] == ["retry"]
    store = fake(zs).store
    with store.lock:  # named as the release before this one named it
        [doc] = [
            d for d in store.all("enkelvoudiginformatieobjecten") if d["bestandsnaam"].endswith("Bouwtekening.pdf")
        ]
        doc["identificatie"] = long_id[:40]
    assert drain(services) == ["needs-attention"]
    assert "/statussen" in last_error(services)
    [tekening] = tekeningen(zs)
    assert tekening["identificatie"] == long_id[:40]
    assert len(fake(zs).zaakinformatieobjecten) == len(fake(zs).documenten) == 2


# -- 3. an empty werkmap or postbus file: complete on its create, never unlocked ----------------------------


@pytest.mark.parametrize("after_processing", [None, True], ids=["answered", "lost-answer-after-commit"])
def test_an_empty_werkmap_document_is_one_create_without_lock_or_unlock(
    stam_services: tuple[Services, Any], zs: Zaaksysteem, after_processing: bool | None
) -> None:
    """A werkmap document of 0 bytes (a postbus file arrives as the same kind of bijlage: a file in the
    store, its size known), where the adapter lacks the ``documenten.geforceerd-unlock`` scope: one create
    with bestandsomvang 0, which Open Zaak stores complete and unlocked (no bestandsdelen, no lock in its
    answer); no lock, no unlock, so nothing that would be a forced unlock. Done, also when the create's
    answer is lost (the retry adopts the document)."""
    sv, werkmap = stam_services
    fake(zs).force_unlock_allowed = False
    first = documents_of("initieren")[0]
    if after_processing:
        fake(zs).fail_next("POST", "/enkelvoudiginformatieobjecten", status=500, after_processing=True)
    want = ["retry", "done"] if after_processing else ["done"]
    assert stam_version(sv, werkmap, "initieren", {first: 0}) == want, last_error(sv)
    docs = werkmap_documents(zs)
    empty = docs[first]["url"].rsplit("/", 1)[-1]
    assert not [r.path for r in fake(zs).requests if empty in r.path and r.method != "GET"]  # no lock, no unlock
    assert not [r for r in fake(zs).requests if r.status == 403]
    assert sorted(docs) == sorted(documents_of("initieren"))
    assert docs[first]["bestandsomvang"] == 0 and not docs[first]["locked"]
    [zaak] = fake(zs).zaken
    assert docs[first]["url"] in {z["informatieobject"] for z in on_zaak(zs, "zaakinformatieobjecten", zaak)}


def test_a_replaced_document_the_zaaksysteem_kept_is_taken_back_when_a_fix_returns_to_its_type(
    services: Services, zs: Zaaksysteem
) -> None:
    """The zaaksysteem refuses to delete a replaced document (another zaak still uses it, say): it is kept,
    not recorded as gone, so a later fix back to its type takes that document back rather than making another
    under its identificatie."""
    fake(zs).fail_next("POST", "/statussen", status=400, times=2)
    mid = receive(services)
    assert drain(services) == ["needs-attention"]
    [original] = tekeningen(zs)
    fake(zs).fail_next("DELETE", original["url"].rstrip("/").rsplit("/", 1)[-1], status=400)
    assert services.outbox is not None
    for old, new, state in (("Tekening", "Bijlage", "needs-attention"), ("Bijlage", "Tekening", "done")):
        edit_mapping(services, f'Bouwtekening = "{old}"', f'Bouwtekening = "{new}"')
        [report] = services.outbox.resend([mid])
        assert not isinstance(report, str) and report.state == state, report
    doc = the_bouwtekening(zs)
    assert (doc["url"], type_of(zs, doc)) == (original["url"], "Tekening")


@pytest.mark.parametrize(
    "failure",
    [None, ("POST", "/zaken", 0), ("POST", "/zaakinformatieobjecten", 0), ("POST", "/zaakinformatieobjecten", 1)],
    ids=["answered", "zaak-lost-answer", "first-link-lost-answer", "second-link-lost-answer"],
)
def test_a_resend_after_a_zaaktype_was_added_links_the_documents_to_the_new_zaak_too(
    services: Services, zs: Zaaksysteem, failure: tuple[str, str, int] | None
) -> None:
    """An aanvraag delivered onto one zaak; the mapping then gets a second zaaktype for aanvragen and the
    message is resent (a call of the new zaak's losing its answer after the zaaksysteem stored it): the new
    zaak is made once and linked to the same documents (its zaaktype takes them as the same types), each
    once; a further resend makes nothing. (The StUF-ZKN plugin once missed this: 80f4173.)"""
    from tests.test_follow_ups_every_zaak import documents_on, zaken

    mid = receive(services)
    assert drain(services) == ["done"]
    documenten = list(fake(zs).documenten)
    with mapping_file(services).open("a") as f:
        f.write(kills.TWO_ZAKEN)
    if failure:
        method, path, skip = failure
        fake(zs).fail_next(method, path, status=500, skip=skip, after_processing=True)
    assert resend(services, mid) == ("retry" if failure else "done")
    if failure:
        assert drain(services) == ["done"]
    z = zaken(zs)
    assert sorted(z) == ["MLD-1234567", "OLO-1234567"]
    expected = {"1234567_Bouwtekening.pdf": "Tekening", "1234567_Foto_voorgevel.jpg": "Foto"}
    assert documents_on(zs, z["OLO-1234567"]) == documents_on(zs, z["MLD-1234567"]) == expected
    assert fake(zs).documenten == documenten  # no document made again
    links, rollen = len(fake(zs).zaakinformatieobjecten), len(fake(zs).rollen)
    assert resend(services, mid) == "done"
    assert (len(fake(zs).zaakinformatieobjecten), len(fake(zs).rollen), len(fake(zs).zaken)) == (links, rollen, 2)
