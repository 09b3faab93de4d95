"""Tests that kill the surviving mutants of the StUF-ZKN target (issue #12, docs/guarantees.md): each one
fails with a mutant of ``adapter/targets/stuf_zkn/plugin.py`` or ``client.py`` that breaks a guarantee
(one zaak, one document per bijlage, follow-ups on every zaak, a retry adopts only what this delivery
made, transient vs permanent) and passes without it.

Through the same production path as test_stuf_zkn_exactly_once: the real StUF-LVO channel and outbox on
a real database, the fake ZDS zaaksysteem checking every request against the official XSDs."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from adapter.errors import TargetError, TargetRefused
from adapter.inbound.stuf_lvo import StufLvoChannel
from adapter.mapping.opdracht import ZaakOpdracht
from adapter.services import Services
from adapter.targets.stuf_zkn import messages as msg
from adapter.targets.stuf_zkn.client import StufFault, StufZknClient
from tests import test_stuf_zkn_exactly_once as zx
from tests.conftest import needs_shared
from tests.soap import fixture, with_reference
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
from tests.test_stuf_zkn_target import SOAP

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


def test_a_bijlage_a_later_message_lists_again_stays_one_document(tmp_path: Path, zkn: Zkn) -> None:
    """An aanvulling that lists the aanvraag's Bouwtekening (bijlageId 1234567-1) again, as every later
    STAM version lists all documents so far: the zaak keeps one document for that bijlage (the ZGW target
    finds it under its deterministic identificatie and adopts it)."""
    with adapter(tmp_path, zkn) as sv:
        delivered(sv, AANVRAAG)
        raw = with_reference(fixture(AANVULLING), "TNOGMAALS000000000001")
        raw = raw.replace(b"1234567-3", b"1234567-1").replace(b"Bouwtekening_v2.pdf", b"Bouwtekening.pdf")
        channel = StufLvoChannel(sv.settings, sv.writer, sv.schemas)
        channel.accept(channel.receive(raw, "nogmaals"))
        assert drain(sv) == ["done"]
    titels = sorted(d["titel"] for d in zkn.fake.documenten.values())
    assert titels == ["1234567_Bouwtekening.pdf", "1234567_Foto_voorgevel.jpg"], titels


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
        assert re.search(r"status 1 gezet \d{14} \(Ontvangen via het Omgevingsloket \(bericht T-\w+\)\)", d.last_error)
    assert z.fake.count("actualiseerZaakstatus") == 1 and len(z.fake.statussen) == 2


def test_an_intrekking_without_reden_names_the_omgevingsloket_and_the_message(tmp_path: Path, zkn: Zkn) -> None:
    """An intrekking whose message gives a blank reden: the status toelichting says it came through the
    Omgevingsloket and names the message (never empty, never "None")."""
    with adapter(tmp_path, zkn) as sv:
        delivered(sv, AANVRAAG)
        raw = with_reference(fixture(INTREKKING), "TZONDERREDEN0000000001")
        raw = re.sub(rb"<LVO:reden>[^<]*</LVO:reden>", b"<LVO:reden> </LVO:reden>", raw)
        channel = StufLvoChannel(sv.settings, sv.writer, sv.schemas)
        channel.accept(channel.receive(raw, "zonder-reden"))
        assert drain(sv) == ["done"]
    assert [(s["volgnummer"], s["toelichting"]) for s in zkn.fake.statussen][1:] == [
        (3, "Ingetrokken via het Omgevingsloket (bericht TZONDERREDEN0000000001)")
    ]


def test_an_intrekking_on_a_zaaktype_without_statustype_intrekking_sets_no_status(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The mapping names no statustype_intrekking: the intrekking is delivered (done) and sets no status;
    it is not a mapping error and nothing is guessed."""
    monkeypatch.setattr(zx, "MAPPING", zx.MAPPING.replace("statustype_intrekking = 3\n", ""))
    with zaaksysteem() as z, adapter(tmp_path, z) as sv:
        delivered(sv, AANVRAAG, INTREKKING)
    assert [s["volgnummer"] for s in z.fake.statussen] == [1]
    assert z.fake.count("actualiseerZaakstatus") == 1


def test_a_long_reden_is_cut_so_the_toelichting_keeps_the_message_and_fits_1000_characters(
    tmp_path: Path, zkn: Zkn
) -> None:
    """A reden of 1000 characters (the most the message allows): the status toelichting (ZKN: at most 1000)
    is the reden cut to fit, then the marker naming this message, exactly 1000 characters."""
    reden = ("Aanvrager ziet af van het plan. " * 40)[:1000]
    with adapter(tmp_path, zkn) as sv:
        delivered(sv, AANVRAAG)
        raw = with_reference(fixture(INTREKKING), "TLANGEREDEN0000000001")
        raw = re.sub(rb"<LVO:reden>[^<]*</LVO:reden>", f"<LVO:reden>{reden}</LVO:reden>".encode(), raw)
        channel = StufLvoChannel(sv.settings, sv.writer, sv.schemas)
        channel.accept(channel.receive(raw, "lange-reden"))
        assert drain(sv) == ["done"]
    toelichting = zkn.fake.statussen[1]["toelichting"]
    marker = " (bericht TLANGEREDEN0000000001)"
    assert len(toelichting) == 1000 and toelichting.endswith(marker), (len(toelichting), toelichting[-40:])
    assert toelichting == " ".join(reden.split())[: 1000 - len(marker)] + marker


def test_statuses_set_after_the_lost_answer_do_not_hide_ours(tmp_path: Path, zkn: Zkn) -> None:
    """The answer to our start status is lost; before the retry a behandelaar sets status 2 and another
    status 1 with a toelichting of his own (both newer than ours, so listed before it). The retry still
    finds ours by its toelichting and adopts it: one status 1 of ours, none sent twice."""
    with adapter(tmp_path, zkn) as sv:
        zkn.fake.fail_next("actualiseerZaakstatus", status=500, after_processing=True)
        receive(sv, AANVRAAG)
        assert sv.outbox is not None
        assert [r.state for r in sv.outbox.work_once()] == ["retry"]
        [ours] = zkn.fake.statussen
        assert re.fullmatch(r"Ontvangen via het Omgevingsloket \(bericht T-\w+\)", ours["toelichting"]), ours
        zkn.fake.add_status(ours["zaak"], 2, "20991231235959", "In behandeling genomen")
        zkn.fake.add_status(ours["zaak"], 1, "20991231235958", "Ontvangen, handmatig gezet")
        assert drain(sv) == ["done"]
    assert zkn.fake.count("actualiseerZaakstatus") == 1
    assert [s["toelichting"] for s in zkn.fake.statussen].count(ours["toelichting"]) == 1


def test_a_resent_status_keeps_the_datum_checkpointed_before_the_first_send(tmp_path: Path) -> None:
    """A zaaksysteem without toelichting, kept to the second. The first actualiseerZaakstatus fails before
    the zaaksysteem stored it; the second (ten seconds later by the adapter's clock) is stored but its answer
    is lost. The resend carried the datumStatusGezet checkpointed before the first send, so the third
    attempt recognises the status by it and adopts it: one status, not a second."""
    start = datetime(2026, 12, 2, 9, 0, 0, tzinfo=UTC)
    runs = iter(range(100))
    with zaaksysteem(keeps_toelichting=False) as z, adapter(tmp_path, z) as sv:
        t: Any = sv.targets["zaaksysteem"]
        real = t.context
        t.context = lambda: replace(real(), now=start + timedelta(seconds=10 * next(runs)))
        z.fake.fail_next("actualiseerZaakstatus", status=500)
        z.fake.fail_next("actualiseerZaakstatus", status=500, after_processing=True)
        receive(sv, AANVRAAG)
        assert drain(sv) == ["retry", "retry", "done"]
    assert z.fake.count("actualiseerZaakstatus") == 2
    assert [s["datumStatusGezet"] for s in z.fake.statussen] == ["20261202090000"]


def test_the_status_names_the_configured_medewerker(tmp_path: Path) -> None:
    """``medewerker`` in the target's options is who set the status (isGezetDoor) in actualiseerZaakstatus."""
    from tests.test_stuf_zkn_target import opdracht, target, verzoek

    calls = target("zds-1.2", "http://127.0.0.1:9/zds", medewerker="BEH0042").preview(opdracht(verzoek()))
    (status,) = [c for c in calls if c.step.startswith("status:")]
    assert "BEH0042" in status.body
    assert all("BEH0042" not in c.body for c in calls if c is not status)


KVK_ONLY = b"""<LVO:nietNatuurlijkPersoon>
            <LVO:kvkNummer>87654321</LVO:kvkNummer>
            <LVO:naam>Vergunningen Snel B.V.</LVO:naam>
          </LVO:nietNatuurlijkPersoon>"""


def test_a_gemachtigde_known_only_by_kvk_makes_every_relation_without_toelichting_a_candidate(
    tmp_path: Path,
) -> None:
    """The new gemachtigde has only a KvK-nummer, which StUF-ZKN cannot carry, and the zaaksysteem keeps no
    toelichting: after a lost answer any gemachtigde relation may be the one we added, the aanvraag's
    vestiging too. Ambiguous naming both, nothing adopted or resent."""
    with zaaksysteem(keeps_toelichting=False) as z, adapter(tmp_path, z) as sv:
        delivered(sv, AANVRAAG)
        raw = with_reference(fixture(WIJZIGING), "TALLEENKVK00000000001")
        raw = re.sub(rb"<LVO:natuurlijkPersoon>.*?</LVO:natuurlijkPersoon>", KVK_ONLY, raw, flags=re.S)
        z.fake.fail_next("updateZaak", status=500, after_processing=True)
        channel = StufLvoChannel(sv.settings, sv.writer, sv.schemas)
        channel.accept(channel.receive(raw, "alleen-kvk"))
        assert drain(sv) == ["retry", "needs-attention"]
        d = deliveries(sv)[-1]
        assert "has 2 gemachtigden that may be the one" in d.last_error, d.last_error
        assert "gemachtigde vestiging:000012345678 (zonder toelichting)" in d.last_error, d.last_error
    assert z.fake.count("updateZaak") == 1


def test_a_status_kept_to_the_day_is_recognised_by_its_toelichting(tmp_path: Path) -> None:
    """A zaaksysteem that keeps datumStatusGezet only to the day but does keep the toelichting: after a
    lost answer the retry recognises its status by the toelichting naming this message and adopts it, even
    beside another status 1 of the same day with a toelichting of its own."""
    with zaaksysteem(tijdstip_digits=8) as z, adapter(tmp_path, z) as sv:
        z.fake.fail_next("actualiseerZaakstatus", status=500, after_processing=True)
        receive(sv, AANVRAAG)
        assert sv.outbox is not None
        assert [r.state for r in sv.outbox.work_once()] == ["retry"]
        [ours] = z.fake.statussen
        z.fake.add_status(ours["zaak"], 1, ours["datumStatusGezet"], "Ontvangen, handmatig gezet")
        assert drain(sv) == ["done"]
    assert z.fake.count("actualiseerZaakstatus") == 1 and len(z.fake.statussen) == 2


LA01 = """<La01 xmlns="http://www.egem.nl/StUF/sector/zkn/0310" xmlns:StUF="http://www.egem.nl/StUF/StUF0301"
  xmlns:BG="http://www.egem.nl/StUF/sector/bg/0310"><antwoord>
  <!-- a comment, as some zaaksystemen write -->
  <object><identificatie>ZAAK-2</identificatie><kenmerk><kenmerk>7654321</kenmerk></kenmerk></object>
  <object><identificatie> ZAAK-1 </identificatie>
    <kenmerk><kenmerk>1234567</kenmerk><bron>Omgevingsloket</bron></kenmerk>
    <isVan><gerelateerde><code>ZT-OMV</code><omschrijving>omschrijving</omschrijving></gerelateerde></isVan>
    <heeft><gerelateerde><volgnummer>0003</volgnummer></gerelateerde><toelichting>ingetrokken</toelichting>
      <datumStatusGezet>20261202090000</datumStatusGezet></heeft>
    <heeft><gerelateerde><omschrijving>zonder volgnummer</omschrijving></gerelateerde></heeft>
    <heeft><gerelateerde><volgnummer>x1</volgnummer></gerelateerde></heeft>
    <heeftAlsGemachtigde><gerelateerde><natuurlijkPersoon><BG:inp.bsn>999990032</BG:inp.bsn></natuurlijkPersoon>
      </gerelateerde><toelichting>gemachtigde (bericht T1)</toelichting></heeftAlsGemachtigde>
    <heeftAlsGemachtigde><gerelateerde><vestiging><vestigingsNummer>000012345678</vestigingsNummer></vestiging>
      </gerelateerde></heeftAlsGemachtigde>
    <heeftAlsGemachtigde><gerelateerde><nietNatuurlijkPersoon><naam>B.V.</naam></nietNatuurlijkPersoon>
      </gerelateerde></heeftAlsGemachtigde>
  </object></antwoord></La01>"""


def test_geef_zaakdetails_is_read_for_the_zaak_asked_and_tolerates_what_it_cannot_use() -> None:
    """The La01 is read for the object with the identificatie asked (not the first object), whatever the
    whitespace; a status without a (numeric) volgnummer and a gemachtigde without BSN or vestiging are kept
    as unknown rather than failing the delivery; comments are skipped."""
    from lxml import etree

    from adapter.targets.stuf_zkn.plugin import _Rol, _Status, _ZaakDetails

    details = _ZaakDetails.of(etree.fromstring(LA01), "ZAAK-1")
    assert details is not None
    assert set(details.kenmerken) == {"1234567"} and details.zaaktypen == ["ZT-OMV"]
    assert details.statussen == [
        _Status(3, "20261202090000", "ingetrokken"),
        _Status(None, None, None),
        _Status(None, None, None),
    ]
    assert details.gemachtigden == [
        _Rol("bsn:999990032", "gemachtigde (bericht T1)"),
        _Rol("vestiging:000012345678", None),
        _Rol(None, None),
    ]
    assert _ZaakDetails.of(etree.fromstring(LA01), "ZAAK-3") is None


# -- the attempt log and the vragen -------------------------------------------------------------------------


def test_each_call_of_a_delivery_is_listed_in_its_attempt(tmp_path: Path, zkn: Zkn) -> None:
    """The attempt log lists every call the delivery made, by step, in order (what an operator reads)."""
    with adapter(tmp_path, zkn) as sv:
        delivered(sv, AANVRAAG)
        with sv.engine.connect() as conn:
            [calls] = conn.execute(text("SELECT calls FROM delivery_attempts")).scalars()
    steps = ["zaakid:ZT-OMV-REG", "zaak:ZT-OMV-REG", "docid:1234567-1", "document:1234567-1"]
    steps += ["docid:1234567-2", "document:1234567-2", "status:start:ZT-OMV-REG"]
    assert json.loads(calls) == [f"{step}: POST {zkn.url}" for step in steps]


def soap_fault(code: str, plek: str) -> str:
    return (
        f'<s:Envelope xmlns:s="{SOAP}"><s:Body><s:Fault><faultcode>s:{"Client" if plek == "client" else "Server"}'
        '</faultcode><faultstring>x</faultstring><detail><Fo02Bericht xmlns="http://www.egem.nl/StUF/StUF0301">'
        f"<stuurgegevens><berichtcode>Fo02</berichtcode></stuurgegevens><body><code>{code}</code><plek>{plek}</plek>"
        "<omschrijving>fout</omschrijving></body></Fo02Bericht></detail></s:Fault></s:Body></s:Envelope>"
    )


@pytest.mark.parametrize(
    ("code", "plek", "offered"),
    [("StUF058", "server", None), ("StUF025", "server", False), ("StUF055", "client", False)],
    ids=["transient", "not-offered", "blames-the-vraag"],
)
def test_a_vraag_that_fails_transiently_is_asked_again_not_taken_as_unanswerable(
    code: str, plek: str, offered: bool | None
) -> None:
    """geefZaakdetails answered with a fault: StUF025 (not offered) or a fault that blames the vraag means
    the zaaksysteem cannot answer it (asked is False); a transient server fault is raised, so the delivery
    asks again later instead of treating a status or gemachtigde as unknowable."""
    from adapter.targets.stuf_zkn.plugin import _Plan
    from tests.test_stuf_zkn_target import MemorySteps, opdracht, target, verzoek

    t = target("zds-1.2", "http://zaaksysteem.test/zds")
    t.client = StufZknClient(t.options, httpx.MockTransport(lambda r: httpx.Response(500, text=soap_fault(code, plek))))
    plan = _Plan(t, opdracht(verzoek()), MemorySteps(), dry_run=False)
    if offered is None:
        with pytest.raises(StufFault) as exc:
            plan._zaakdetails("status:start:ZT-OMV", "ZAAK-000001")
        assert exc.value.transient and exc.value.code == code
    else:
        assert plan._zaakdetails("status:start:ZT-OMV", "ZAAK-000001") == (False, None)


def test_a_new_gemachtigde_vestiging_is_adopted_after_a_lost_answer(tmp_path: Path, zkn: Zkn) -> None:
    """The wijziging names a vestiging as gemachtigde; the answer to updateZaak is lost. The retry finds the
    relation by its toelichting and vestigingsnummer and adopts it: one relation, not a second."""
    vestiging = KVK_ONLY.replace(
        b"<LVO:naam>", b"<LVO:vestigingsnummer>000087654321</LVO:vestigingsnummer>\n            <LVO:naam>"
    )
    with adapter(tmp_path, zkn) as sv:
        delivered(sv, AANVRAAG)
        raw = with_reference(fixture(WIJZIGING), "TVESTIGING00000000001")
        raw = re.sub(rb"<LVO:natuurlijkPersoon>.*?</LVO:natuurlijkPersoon>", vestiging, raw, flags=re.S)
        zkn.fake.fail_next("updateZaak", status=500, after_processing=True)
        channel = StufLvoChannel(sv.settings, sv.writer, sv.schemas)
        channel.accept(channel.receive(raw, "vestiging"))
        assert drain(sv) == ["retry", "done"]
    [zaak] = zkn.fake.zaken.values()
    assert [g["vestigingsnummer"] for g in zaak["gemachtigden"]] == ["000012345678", "000087654321"]


def test_every_message_names_the_configured_zender_and_ontvanger() -> None:
    """The stuurgegevens of every message carry the configured zender and ontvanger in full (organisatie,
    applicatie, administratie, gebruiker), each in its own place: how the zaaksysteem knows who sends and
    whether the message is meant for it."""
    from lxml import etree

    from tests.test_stuf_zkn_target import opdracht, target, verzoek

    zender = {"organisatie": "00000001002564440000", "applicatie": "LOKETADAPTER", "administratie": "LA1"}
    ontvanger = {"organisatie": "1234", "applicatie": "ZAAKSYS", "administratie": "ZKN", "gebruiker": "koppeling"}
    t = target("zds-1.2", "http://127.0.0.1:9/zds", zender={**zender, "gebruiker": "adapter"}, ontvanger=ontvanger)
    calls = t.preview(opdracht(verzoek()))
    assert len(calls) == 7
    for c in calls:
        root = etree.fromstring(c.body.encode())
        sg = next(e for e in root.iter() if isinstance(e.tag, str) and etree.QName(e).localname == "stuurgegevens")
        got = {
            etree.QName(party).localname: {etree.QName(f).localname: f.text for f in party}
            for party in sg
            if etree.QName(party).localname in ("zender", "ontvanger")
        }
        assert got == {"zender": {**zender, "gebruiker": "adapter"}, "ontvanger": ontvanger}, (c.step, got)


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


def test_an_intrekking_with_a_bijlage_puts_it_on_every_zaak(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An intrekking that carries a bijlage (STAM can; the StUF-LVO message cannot): its status on each of
    the two zaken and one document for the bijlage, relevant for both, of the type the first zaak's own
    profile gives it ("Bijlage", not the defaults' "Tekening")."""
    from lxml import etree

    from adapter.loket.lvo import INCOMING
    from adapter.loket.lvo_parse import parse_verzoek
    from adapter.mapping.engine import build_opdracht
    from adapter.mapping.loader import load_dir
    from tests.test_follow_ups_every_zaak import LinkedSteps

    def verzoek_of(name: str) -> Any:
        root = etree.fromstring(fixture(name))
        el = next(e for e in root.iter() if isinstance(e.tag, str) and etree.QName(e).localname in INCOMING)
        return parse_verzoek(el, "00000001002564440000")

    mapping = zx.MAPPING.replace('zaaktype = "ZT-OMV-REG"\n', 'zaaktype = "ZT-OMV-REG"\nprofile = "eigen"\n')
    monkeypatch.setattr(zx, "MAPPING", mapping + OWN_TYPES + ZKN_SECOND)
    with zaaksysteem() as z, adapter(tmp_path, z) as sv:
        delivered(sv, AANVRAAG)
        intrekking = replace(verzoek_of(INTREKKING), bijlagen=verzoek_of(AANVULLING).bijlagen)
        opdracht = build_opdracht(load_dir(Path(sv.settings.delivery.mappings_dir)), intrekking)
        links = [{"url": i, "identificatie": i, "zaaktype": zk["zaaktype"]} for i, zk in z.fake.zaken.items()]
        sv.targets["zaaksysteem"].deliver(opdracht, LinkedSteps(links))  # type: ignore[arg-type]
    assert sorted(s["volgnummer"] for s in z.fake.statussen) == [1, 1, 2, 3]
    (doc,) = [d for d in z.fake.documenten.values() if d["titel"] == "1234567_Bouwtekening_v2.pdf"]
    assert sorted(doc["zaken"]) == sorted(z.fake.zaken) and doc["dct.omschrijving"] == "Bijlage"


# -- mappings check --online -----------------------------------------------------------------------------------


def test_check_zaak_reports_a_zaaktype_or_statustype_no_zds_message_can_carry() -> None:
    """``mappings check --online`` for a StUF-ZKN zaak: a zaaktype code over 10 characters and a start or
    intrekking statustype that is not a volgnummer 1..9999 are named; a sound zaak gives nothing."""
    from tests.test_stuf_zkn_target import profiel, target

    t = target("zds-1.2", "http://zaaksysteem.test/zds")
    on = datetime(2026, 12, 2, tzinfo=UTC).date()
    assert t.check_zaak(ZaakOpdracht("ZT-OMV", profiel(statustype_start=1, statustype_intrekking=3)), on) == []
    assert t.check_zaak(ZaakOpdracht("ZT-OMV", profiel(statustype_start=None, statustype_intrekking=None)), on) == []
    bad = t.check_zaak(
        ZaakOpdracht("ZT-VEEL-TE-LANG", profiel(statustype_start="Ontvangen", statustype_intrekking=0)), on
    )
    assert bad == [
        "zaaktype 'ZT-VEEL-TE-LANG': a StUF-ZKN zaaktype code has 1..10 characters",
        "statustype '0': a StUF-ZKN statustype is a volgnummer 1..9999",
        "statustype 'Ontvangen': a StUF-ZKN statustype is a volgnummer 1..9999",
    ]


def test_missing_in_catalogus_names_exactly_the_codes_outside_the_zds_limits() -> None:
    """A zaaktype code has 1..10 characters and a statustype is a volgnummer 1..9999: the bounds themselves
    pass, one past them is named; a check with only one kind of reference works too."""
    from tests.test_stuf_zkn_target import target

    t = target("zds-1.2", "http://zaaksysteem.test/zds")
    zaaktypen = {"Z", "ZT-1234567", "ZT-12345678", ""}
    statustypen = {"1", "9999", "0", "10000", "x1"}
    assert t.missing_in_catalogus({"zaaktype": zaaktypen, "statustype": statustypen}) == [
        "zaaktype '': a StUF-ZKN zaaktype code has 1..10 characters",
        "zaaktype 'ZT-12345678': a StUF-ZKN zaaktype code has 1..10 characters",
        "statustype '0': a StUF-ZKN statustype is a volgnummer 1..9999",
        "statustype '10000': a StUF-ZKN statustype is a volgnummer 1..9999",
        "statustype 'x1': a StUF-ZKN statustype is a volgnummer 1..9999",
    ]
    assert t.missing_in_catalogus({"statustype": {"3"}}) == []
    assert t.missing_in_catalogus({"zaaktype": {"ZT-OMV"}}) == []


# -- the client: transient or refused ----------------------------------------------------------------------------

FO03_SERVER = (
    f'<s:Envelope xmlns:s="{SOAP}"><s:Body><StUF:Fo03Bericht xmlns:StUF="http://www.egem.nl/StUF/StUF0301">'
    "<StUF:body><StUF:code>StUF058</StUF:code><StUF:plek>server</StUF:plek><StUF:omschrijving>Opslaan mislukt"
    "</StUF:omschrijving><StUF:details>database</StUF:details></StUF:body></StUF:Fo03Bericht></s:Body></s:Envelope>"
)


@pytest.mark.parametrize(
    ("status", "body", "kind", "transient"),
    [
        (500, soap_fault("StUF058", "server"), StufFault, True),
        (500, soap_fault("StUF055", "client"), StufFault, False),
        (200, FO03_SERVER, StufFault, True),
        (
            500,
            f'<s:Envelope xmlns:s="{SOAP}"><s:Body><s:Fault><faultcode>s:Server</faultcode>'
            "<faultstring>Interne fout</faultstring></s:Fault></s:Body></s:Envelope>",
            StufFault,
            True,
        ),
        (503, "Service Unavailable", TargetError, True),
        (400, "Bad Request", TargetRefused, False),
        (300, "Multiple Choices", TargetRefused, False),
    ],
    ids=["fault-server", "fault-client", "fo03-in-200", "fault-without-stuf-code", "http-503", "http-400", "http-300"],
)
def test_the_client_tells_a_transient_failure_from_a_refusal(
    status: int, body: str, kind: type[TargetError], transient: bool
) -> None:
    """What the worker retries: a fault that blames the server and a 5xx are transient; a fault that
    blames our request, a 4xx and an unfollowed 3xx are not. A fault keeps its StUF code, omschrijving and
    details for the operator."""
    from tests.test_stuf_zkn_target import _client, ctx

    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(status, text=body)

    with pytest.raises(TargetError) as exc:
        _client(answer).send(msg.genereer_zaak_identificatie(ctx("zds-1.2")), ("Du02",))
    assert type(exc.value) is kind and exc.value.transient is transient, exc.value
    if isinstance(exc.value, StufFault) and status == 200:
        assert (exc.value.code, exc.value.omschrijving, exc.value.details) == ("StUF058", "Opslaan mislukt", "database")
    assert seen[0].headers["Content-Type"] == "text/xml; charset=utf-8"


# -- the client's probe (``check``): each endpoint that does not answer, by its URL (run 8) -----------------------


def test_the_probe_names_each_endpoint_that_does_not_answer_and_a_tls_setup_that_fails() -> None:
    from tests.test_stuf_zkn_target import options

    def silent(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("no answer", request=request)

    client = StufZknClient(options("zds-1.2", "http://zaaksysteem.test/zds", timeout=2.5), httpx.MockTransport(silent))
    endpoints = sorted({client.options.endpoint(p) for p in ("ontvangasynchroon", "vrijeberichten", "beantwoordvraag")})
    assert client.probe() == [f"{url}: no answer within 2.5 s" for url in endpoints]
    broken = StufZknClient(options("zds-1.2", "https://zaaksysteem.test/zds", ca_bundle="/nonexistent/ca.pem"))
    (problem,) = broken.probe()
    assert problem.startswith("TLS/HTTP setup for https://zaaksysteem.test/zds: FileNotFoundError: "), problem


def test_closing_a_client_closes_its_connections_and_an_unused_one_closes_quietly() -> None:
    from tests.test_stuf_zkn_target import options

    StufZknClient(options("zds-1.2", "http://zaaksysteem.test/zds")).close()  # never used: nothing to close
    used = StufZknClient(
        options("zds-1.2", "http://zaaksysteem.test/zds"), httpx.MockTransport(lambda _r: httpx.Response(405))
    )
    assert used.probe() == []
    http = used._session()
    used.close()
    assert http.is_closed


# -- the client's failure texts: what the operator reads on the delivery (run 9) ----------------------------------

FO03_LONG = FO03_SERVER.replace("Opslaan mislukt", "Opslaan mislukt " + "x" * 700).replace(
    "<StUF:details>database</StUF:details>", ""
)
BARE_FAULT = (
    f'<s:Envelope xmlns:s="{SOAP}"><s:Body><s:Fault><faultcode>s:Server</faultcode>'
    "<faultstring>Interne fout</faultstring></s:Fault></s:Body></s:Envelope>"
)
BV03 = (
    f'<s:Envelope xmlns:s="{SOAP}"><s:Body><StUF:Bv03Bericht xmlns:StUF="http://www.egem.nl/StUF/StUF0301">'
    "<StUF:stuurgegevens><StUF:berichtcode>Bv03</StUF:berichtcode></StUF:stuurgegevens></StUF:Bv03Bericht>"
    "</s:Body></s:Envelope>"
)


@pytest.mark.parametrize(
    ("status", "body", "text"),
    [
        (500, BARE_FAULT, "Interne fout"),  # a fault without a StUF code, nor details
        (200, FO03_SERVER.replace("<StUF:details>database</StUF:details>", ""), "StUF058: Opslaan mislukt"),
        (503, "y" * 300, "HTTP 503: " + "y" * 200),
        (200, "", "HTTP 200 without a readable SOAP answer"),
        (200, f'<s:Envelope xmlns:s="{SOAP}"><s:Header/></s:Envelope>', "SOAP answer without a body element"),
        (200, f'<s:Envelope xmlns:s="{SOAP}"><s:Body> </s:Body></s:Envelope>', "SOAP answer without a body element"),
        (200, BV03, "expected Du02/La01, got Bv03"),
    ],
    ids=["bare-fault", "fo03-without-details", "http-503-body-cut", "empty", "no-body", "empty-body", "berichtcode"],
)
def test_each_failed_call_names_the_call_and_what_came_back(status: int, body: str, text: str) -> None:
    from tests.test_stuf_zkn_target import _client, ctx

    client = _client(lambda _r: httpx.Response(status, text=body))
    bericht = msg.genereer_zaak_identificatie(ctx("zds-1.2"))
    with pytest.raises(TargetError) as exc:
        client.send(bericht, ("Du02", "La01"))
    assert str(exc.value) == f"{bericht.operation} {client.url(bericht)}: {text}"


def test_a_long_fault_text_is_cut_to_600_characters() -> None:
    from tests.test_stuf_zkn_target import _client, ctx

    client = _client(lambda _r: httpx.Response(200, text=FO03_LONG))
    with pytest.raises(StufFault) as exc:
        client.send(msg.genereer_zaak_identificatie(ctx("zds-1.2")), ("Du02",))
    assert len(str(exc.value)) == 600 and str(exc.value).endswith("x" * 20)
