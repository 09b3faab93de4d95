"""What an operator reads in the log about each inbound message, and what a sender reads in its fault.

One line per accepted, duplicate or rejected message, with the fields the operator filters on (message id,
type, referentienummer, nummer, size, warnings; code and plek of a fault) and nothing personal in clear: a
BSN-shaped number quoted by a parser error is masked in the log line, while the sender gets its own Fo03
unmasked. In-process: the channels called as the web app calls them (``docs/guarantees.md``, run 9).
"""

from __future__ import annotations

import re
from typing import Any

import pytest

import adapter.inbound.stam as stam_module
import adapter.inbound.stuf_lvo as lvo_module
from adapter.errors import StoreUnavailable
from adapter.services import Services
from adapter.store import messages as message_store
from tests import test_mutation_kills_inbound as kills
from tests import test_stam_hints as hints
from tests.logrecord import record_log
from tests.soap import fixture, with_reference
from tests.test_mutation_kills_inbound import (
    INTREKKEN,
    NOTIFICATIE,
    fo03_body,
    intrekken,
    lvo,
    refused,
    rows,
    send,
    stam,
)

# the fixtures, shared with the mutation-kill tests of the inbound channels
shared_inbound, inbound, inbound_with, polling = kills.shared_inbound, kills.inbound, kills.inbound_with, kills.polling
stam_services = hints.stam_services
AANVRAAG = "omvDi01AanbiedenAanvraag"
#: A tag mismatch whose parser error quotes a name holding a valid BSN (999990032 passes the eleven-test).
BSN_IN_ERROR = b"<a>\n<_999990032></x></a>"


def store_down(*_a: object, **_k: object) -> None:
    """In place of a store function: the database cannot be written."""
    raise StoreUnavailable("database is locked")


@pytest.fixture
def lvo_log(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    return record_log(monkeypatch, lvo_module)


@pytest.fixture
def stam_log(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    return record_log(monkeypatch, stam_module)


def events(lines: list[dict[str, Any]]) -> list[str]:
    return [line["event"] for line in lines]


# -- StUF-LVO ------------------------------------------------------------------------------------------------


def test_an_accepted_message_is_one_info_line_naming_it(inbound: Services, lvo_log: list[dict[str, Any]]) -> None:
    raw = with_reference(fixture(AANVRAAG), "R-LOG")
    send(inbound, raw)
    (row,) = rows(inbound)
    assert lvo_log == [
        {
            "level": "info",
            "event": "message accepted",
            "message_id": row.id,
            "message_type": AANVRAAG,
            "referentienummer": "R-LOG",
            "nummer": "1234567",
            "size": len(raw),
            "warnings": 0,
        }
    ]


def test_a_duplicate_is_one_info_line_naming_the_stored_message_and_its_schema(
    inbound: Services, lvo_log: list[dict[str, Any]]
) -> None:
    raw = with_reference(fixture(AANVRAAG), "R-DUP")
    send(inbound, raw)
    send(inbound, raw)
    (row,) = rows(inbound)
    assert lvo_log[1:] == [
        {
            "level": "info",
            "event": "duplicate resend answered again",
            "message_id": row.id,
            "schema": "xsd/lvo/lvo0312.xsd",
        }
    ]


def test_a_lenient_read_is_accepted_counting_its_warnings_and_its_duplicate_names_the_schema_it_failed(
    inbound_with: Any, lvo_log: list[dict[str, Any]]
) -> None:
    sv = inbound_with(lvo_schema="lenient")
    bad = with_reference(fixture(AANVRAAG), "R-LEN").replace(
        b"<LVO:postcode>1234AB</LVO:postcode>", b"<LVO:postcode>12345</LVO:postcode>", 1
    )
    send(sv, bad)
    send(sv, bad)
    accepted, duplicate = lvo_log
    assert (accepted["event"], accepted["warnings"]) == ("message accepted", 1)
    assert (duplicate["event"], duplicate["schema"]) == ("duplicate resend answered again", "xsd/lvo/lvo0312.xsd")


def test_a_rejected_message_is_one_warning_line_with_its_code_and_personal_data_masked(
    inbound: Services, lvo_log: list[dict[str, Any]]
) -> None:
    rej = refused(inbound, BSN_IN_ERROR)
    body = fo03_body(rej)
    assert "_999990032" in body["omschrijving"] and "_999990032" in body["details"]  # the sender's own text
    (row,) = rows(inbound)
    [line] = lvo_log
    assert line == {
        "level": "warning",
        "event": "message rejected",
        "code": "StUF055",
        "plek": "client",
        "omschrijving": body["omschrijving"].replace("999990032", "*********"),
        "details": body["details"].replace("999990032", "*********"),
        "referentienummer": None,
        "message_id": row.id,
    }


def test_a_fault_without_details_logs_empty_details(inbound: Services, lvo_log: list[dict[str, Any]]) -> None:
    raw = intrekken("R-ZENDER").replace(
        b"<StUF:applicatie>OLO</StUF:applicatie>", b"<StUF:applicatie>NIETOLO</StUF:applicatie>"
    )
    rej = refused(inbound, raw)
    assert (rej.fout.fout.code, rej.fout.details) == ("StUF013", None)
    [line] = lvo_log
    assert (line["code"], line["details"], line["referentienummer"]) == ("StUF013", "", "R-ZENDER")


def test_a_rejection_the_store_cannot_log_says_so_and_why(
    inbound: Services, lvo_log: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(message_store, "reject", store_down)
    refused(inbound, b"<not-xml")
    assert lvo_log[0] == {"level": "warning", "event": "rejected message not logged", "reason": "database is locked"}
    assert lvo_log[1]["event"] == "message rejected" and lvo_log[1]["message_id"] is None
    assert rows(inbound) == []


def test_several_schema_errors_are_listed_in_the_details_separated_by_semicolons(inbound: Services) -> None:
    raw = with_reference(fixture(AANVRAAG), "R-TWO").replace(
        b"<LVO:postcode>1234AB</LVO:postcode>", b"<LVO:postcode>12345</LVO:postcode>"
    )
    assert raw.count(b"<LVO:postcode>12345</LVO:postcode>") >= 2
    details = fo03_body(refused(inbound, raw))["details"]
    parts = details.split("; ")
    assert len(parts) >= 2 and all(p.startswith("line ") and "postcode" in p for p in parts), details


def test_the_same_reference_for_another_message_says_so_in_full(inbound: Services) -> None:
    raw = with_reference(fixture(AANVRAAG), "R-016")
    send(inbound, raw)
    rej = refused(inbound, raw.replace(b"Plaatsen van een dakkapel", b"Plaatsen van twee dakkapellen"))
    assert fo03_body(rej)["omschrijving"] == (  # the zender as organisatie/applicatie/administratie
        "Referentienummer R-016 van zender 00000001800866472000/OLO/ is al gebruikt voor een ander bericht"
    )


def test_an_unknown_ontvanger_tells_the_sender_what_to_do(inbound: Services) -> None:
    raw = intrekken().replace(
        b"<StUF:applicatie>ZAAKSYSTEEM</StUF:applicatie>", b"<StUF:applicatie>ANDER</StUF:applicatie>"
    )
    body = fo03_body(refused(inbound, raw))
    assert body["code"] == "StUF010"
    assert body["details"] == "configureer [[stuf.ontvangers]] of adresseer het bericht aan een bekend systeem"


def test_a_zender_that_is_not_the_certificates_oin_is_stuf013_saying_why(inbound: Services) -> None:
    channel = lvo(inbound)
    with pytest.raises(lvo_module.Rejected) as info:
        channel.receive(intrekken(), "c" * 32, caller_oin="00000001999999999000")
    body = fo03_body(info.value)
    assert body["code"] == "StUF013"
    assert body["omschrijving"] == (
        "Zender organisatie 00000001800866472000 is niet het OIN van het certificaat (00000001999999999000)"
    )
    assert body["details"] == "de zender moet de organisatie zijn waarvan het TLS-clientcertificaat is"
    assert [r.message_type for r in rows(inbound)] == [INTREKKEN]


def test_a_content_rule_names_the_schema_and_line_with_no_element_before_the_problem(inbound: Services) -> None:
    xml = with_reference(fixture(AANVRAAG), "R-LOC")
    start, end = xml.index(b"<LVO:locatie>"), xml.index(b"</LVO:locatie>")
    line = xml[:start].count(b"\n") + 1
    body = fo03_body(refused(inbound, xml[:start] + b"<LVO:locatie>" + xml[end:]))
    assert body["omschrijving"] == (
        f"Bericht niet conform xsd/lvo/lvo0312.xsd: regel {line}: "
        "locatie needs at least one of adres, kadastraalPerceel, puntRD"
    )


def test_the_omschrijving_is_cut_to_200_characters(inbound: Services) -> None:
    """An unknown element of a long name: the omschrijving (StUF: 200 characters at most) is cut to exactly 200."""
    xml = with_reference(fixture(AANVRAAG), "R-LONG").replace(
        b"<LVO:postcode>1234AB</LVO:postcode>", ("<LVO:onbekendElement" + "X" * 200 + "/>").encode(), 1
    )
    body = fo03_body(refused(inbound, xml))
    assert len(body["omschrijving"]) == 200 and "onbekendElementXXX" in body["omschrijving"]


def test_the_details_list_the_first_five_schema_errors(inbound: Services) -> None:
    xml = re.sub(rb"<LVO:huisnummer>[^<]*<", b"<LVO:huisnummer>x<", with_reference(fixture(AANVRAAG), "R-SIX"))
    xml = re.sub(rb"<LVO:postcode>[^<]*<", b"<LVO:postcode>12345<", xml)
    assert xml.count(b"<LVO:huisnummer>x<") + xml.count(b"<LVO:postcode>12345<") == 6
    details = fo03_body(refused(inbound, xml))["details"]
    assert len(details.split("; line ")) == 5, details


def test_a_rejected_body_is_stored_cut_to_the_configured_size(tmp_path: Any) -> None:
    sv = kills.open_inbound(tmp_path, kills.NO_DELIVERY + "[retention]\nrejected_body_max_bytes = 100\n")
    try:
        raw = intrekken().replace(b"<StUF:berichtcode>Di01</StUF:berichtcode>", b"")
        refused(sv, raw)
        (row,) = rows(sv)
        assert (bytes(row.body), row.body_truncated, row.size) == (raw[:100], True, len(raw))
    finally:
        url = sv.engine.url.render_as_string(hide_password=False)
        sv.close()
        kills.drop_database(url)


# -- STAM ------------------------------------------------------------------------------------------------------


def test_a_notification_is_one_info_line_and_its_duplicate_another(
    inbound: Services, stam_log: list[dict[str, Any]]
) -> None:
    raw = NOTIFICATIE.read_bytes()
    stam(inbound).receive(raw, "c" * 32)
    stam(inbound).receive(raw, "d" * 32)
    (row,) = rows(inbound)
    fields = {"message_id": row.id, "nummer": "2026112300123", "volgnummer": 1}
    assert stam_log == [
        {"level": "info", "event": "verzoeknotificatie accepted", **fields},
        {"level": "info", "event": "verzoeknotificatie already known", **fields},
    ]


def test_other_content_for_a_known_version_is_logged_as_a_conflict(
    inbound: Services, stam_log: list[dict[str, Any]]
) -> None:
    raw = NOTIFICATIE.read_bytes()
    stam(inbound).receive(raw, "c" * 32)
    stam(inbound).receive(raw.replace(b"10:15:02", b"10:15:09"), "d" * 32)
    (row,) = rows(inbound)
    assert stam_log[1] == {
        "level": "warning",
        "event": "verzoeknotificatie differs from the stored one",
        "message_id": row.id,
    }
    assert events(stam_log[2:]) == ["verzoeknotificatie already known"]


def test_a_notification_the_store_cannot_commit_is_logged_with_the_reason(
    inbound: Services, stam_log: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(message_store, "accept", store_down)
    stam(inbound).receive(NOTIFICATIE.read_bytes(), "c" * 32)
    assert stam_log == [{"level": "warning", "event": "verzoeknotificatie not stored", "reason": "database is locked"}]
    stam_log.clear()
    monkeypatch.setattr(message_store, "reject", store_down)
    answer = stam(inbound).receive(b"<not-xml", "c" * 32)
    assert stam_log == [
        {"level": "warning", "event": "rejected notification not logged", "reason": "database is locked"},
        {"level": "warning", "event": "verzoeknotificatie rejected", "detail": answer.body["detail"]},
    ]


def test_a_notification_for_someone_else_says_which_oins_are_ours(
    inbound: Services, stam_log: list[dict[str, Any]]
) -> None:
    other = "00000009999999999000"
    raw = NOTIFICATIE.read_bytes()
    ours = [oin for oin in inbound.settings.own_oins() if oin.encode() in raw]
    assert ours, "the fixture's bevoegd gezag is ours"
    answer = stam(inbound).receive(raw.replace(ours[0].encode(), other.encode()), "c" * 32)
    assert (answer.status, answer.body["title"]) == (400, "Verzoeknotificatie not for us")
    assert str(answer.body["detail"]).endswith(
        "(our OINs are the [[stuf.ontvangers]] organisaties and [werkmap] oin of the configuration)"
    )
    assert stam_log == [{"level": "warning", "event": "verzoeknotificatie rejected", "detail": answer.body["detail"]}]


def test_a_namespace_the_schemas_do_not_know_is_400_naming_it_and_logged_rejected(
    inbound: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Our own schema set lacking the notification's schema (a broken install) is the sender's 400 all the
    same, naming what is missing, and the notification is kept in the log as ``rejected``."""
    from adapter.schemas import UnknownNamespace

    def unknown(_root: object) -> str:
        raise UnknownNamespace("no schema for namespace urn:gone")

    monkeypatch.setattr(inbound.schemas, "validate", unknown)
    raw = NOTIFICATIE.read_bytes()
    answer = stam(inbound).receive(raw, "c" * 32)
    assert (answer.status, answer.body["title"], answer.body["detail"]) == (
        400,
        "Invalid verzoeknotificatie",
        "no schema for namespace urn:gone",
    )
    (row,) = rows(inbound)
    assert (row.state, bytes(row.body), row.correlation_id) == ("rejected", raw, "c" * 32)
    assert row.error_text == "no schema for namespace urn:gone"


def test_a_notification_taking_a_refused_hints_key_is_logged_naming_both(
    stam_services: tuple[Services, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.test_stam_hints import REAL, notificatie

    sv, _fake = stam_services
    assert sv.outbox is not None
    channel = stam(sv)
    hint = channel.receive(notificatie(REAL), "c1")
    assert sv.outbox.work_once()[0].state == "hint-refused"  # the werkmap does not know it
    lines = record_log(monkeypatch, stam_module)
    second = channel.receive(notificatie(REAL), "c2")
    assert lines[0] == {
        "level": "warning",
        "event": "verzoeknotificatie takes the place of a refused hint",
        "message_id": second.body["id"],
        "refused_hint": hint.body["id"],
        "nummer": REAL,
        "volgnummer": 1,
    }
    assert events(lines[1:]) == ["verzoeknotificatie accepted"]


# -- werkmap poll ----------------------------------------------------------------------------------------------


def test_the_poll_logs_each_verzoek_it_found_without_notification_and_the_hints_it_expired(
    polling: tuple[Services, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from datetime import UTC, datetime, timedelta

    from adapter.jobs import werkmap_poll

    sv, fake = polling
    lines = record_log(monkeypatch, werkmap_poll)
    nummers = fake.generate_verzoeken(2, start=datetime.now(UTC) - timedelta(hours=3))
    stam(sv).receive(fake.notificatie(nummers[0]), "c" * 32)  # the first one's notification came
    monkeypatch.setattr(werkmap_poll.messages, "expire_refused_hints", lambda *_a: [11, 12])
    result = werkmap_poll.poll(sv)
    assert (result.found, result.new) == (2, 1) and ", 2 refused hints expired" in result.detail
    days = sv.settings.jobs.refused_hint_days
    assert lines == [
        {"level": "info", "event": "refused hints expired", "count": 2, "older_than_days": days},
        {"level": "warning", "event": "werkmap poll found a verzoek without notification", "nummer": nummers[1]},
    ]
