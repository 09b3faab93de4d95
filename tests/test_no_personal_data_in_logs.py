"""Logs never carry personal data: a real ``serve`` (production JSON logging, DEBUG) takes every fixture and
every error path — schema-invalid messages whose invalid values are personal, not well-formed ones, unknown
messages, refused notifications, deliveries the zaaksysteem refuses quoting a name back, werkmap failures —
and its whole log output is searched for every personal value used: none may appear. Stored error texts
are held to the same rule; the Fo03 names element and line, never the value.

Also here: ``mappings preview`` shows the gemeente's own RSIN (it passes the eleven-test, but is no BSN)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest
from lxml import etree
from sqlalchemy import create_engine, text

from adapter.simulation.fake_werkmap import FakeWerkmap
from adapter.simulation.fake_zgw import app as fake_zgw_app
from adapter.simulation.fake_zgw.validation import Problem
from tests.conftest import FIXTURES, ROOT, Server, drop_database, make_server
from tests.delivery_env import Zaaksysteem, copy_mappings, delivery_toml, needs_zgw_specs, wait_for
from tests.soap import post, with_reference

OIN = "00000001002564440000"
STAM = FIXTURES / "stam"
LVO = FIXTURES / "stuf-lvo"

#: Elements whose text is personal data (names only under a person or company: a bevoegd gezag's is not).
PERSONAL_ELEMENTS = {
    "bsn", "voorletters", "voornamen", "voorvoegsel", "geslachtsnaam", "achternaam", "emailadres",
    "telefoonnummer", "straatnaam", "postcode", "geboortedatum",
}  # fmt: skip
PERSON_PARENTS = {"natuurlijkPersoon", "nietNatuurlijkPersoon", "vestiging", "contactpersoon"}

#: Personal values the error paths below bring in (quoted by libxml2 or by the zaaksysteem if nothing stopped it).
QUOTED_NAME = "Oosterhuis-Quispel"  # a geslachtsnaam the zaaksysteem refuses, quoting it back
INJECTED = [
    "Pietje Puk 12",  # postcode
    "Grietje Bakker",  # bsn
    "bakker.grietje at example dot org",  # emailadres
    "Keizersgracht 99 Amsterdam",  # in an unfinished CDATA section
    "Jan Modaal",  # verzoeknummer of a notification
    QUOTED_NAME,
]


def personal_values() -> set[str]:
    """Every personal value in every fixture (values under 4 characters and the all-zero BSN are left out)."""
    values: set[str] = set()
    for path in [*LVO.glob("*.xml"), *LVO.glob("outgoing/*.xml"), *STAM.glob("*.xml"), *STAM.glob("lenient/*.xml")]:
        root = etree.parse(str(path), etree.XMLParser(resolve_entities=False, no_network=True)).getroot()
        for el in root.iter():
            if not isinstance(el.tag, str) or not el.text or not el.text.strip():
                continue
            name = etree.QName(el).localname
            parent = el.getparent()
            under_person = parent is not None and etree.QName(parent).localname in PERSON_PARENTS
            if name in PERSONAL_ELEMENTS or (name == "naam" and under_person):
                values.add(el.text.strip())
    return {v for v in values if len(v) >= 4 and v != "000000000"} | set(INJECTED)


def test_the_fixtures_hold_the_personal_values_searched_for() -> None:
    """The search below is only as good as this list."""
    found = personal_values()
    for expected in ("999993653", "Berg", "j.vanderberg@example.org", "0612345678", "Dorpsstraat", "1234AB",
                     "0107654321", "Havenkantoren B.V.", "Jansen", "p.jansen@example.org"):  # fmt: skip
        assert expected in found
    assert len(found) > 25


def lvo(name: str) -> bytes:
    return with_reference((LVO / f"{name}.xml").read_bytes(), uuid.uuid4().hex[:30])


def aanvraag(**replace: str) -> bytes:
    body = lvo("omvDi01AanbiedenAanvraag").replace(b">1234567<", b">7654321<")  # its own aanvraagnummer
    for old, new in replace.items():
        body = body.replace(old.encode(), new.encode(), 1)
    return body


def notify(srv: Server, xml: bytes) -> httpx.Response:
    return httpx.post(f"{srv.url}/stam/verzoeknotificatie", content=xml, headers={"Content-Type": "application/xml"})


def start(tmp_path: Path, zs: Zaaksysteem, werkmap_url: str) -> Server:
    toml = (
        delivery_toml(zs, copy_mappings(tmp_path), max_attempts=2)
        + f"""
[werkmap]
base_url = "{werkmap_url}"
oin = "{OIN}"
timeout = 2
retries = 1
backoff_initial = 0.05
backoff_max = 0.1

[jobs]
enabled = false
"""
    )
    srv = make_server(tmp_path, extra_toml=toml)
    config = srv.config.read_text(encoding="utf-8")
    srv.config.write_text(
        config.replace('environment = "production"', 'environment = "production"\nlog_level = "DEBUG"')
    )
    srv.start()
    return srv


def quoting_the_name(api: str, fault: object) -> object:
    """A 400 as a real zaaksysteem may word it: the refused value quoted in ``invalidParams``."""
    reason = f"'{QUOTED_NAME}' bevat ongeldige tekens"
    param = {"name": "betrokkeneIdentificatie.geslachtsnaam", "code": "invalid", "reason": reason}
    return fake_zgw_app._problem(api, Problem(400, "invalid", "Invalid input.", reason, (param,)))


def settled(srv: Server) -> bool:
    engine = create_engine(srv.db_url)
    with engine.connect() as conn:
        busy = conn.execute(
            text("SELECT count(*) FROM deliveries WHERE state IN ('pending', 'running', 'retry')")
        ).scalar_one()
    engine.dispose()
    return busy == 0


def stored_texts(srv: Server) -> str:
    """Every stored error text, answer, call and checkpoint: what stays after retention purged the bodies."""
    engine = create_engine(srv.db_url)
    with engine.connect() as conn:
        rows = [
            *conn.execute(text("SELECT error_text, answer, warnings FROM messages")),
            *conn.execute(text("SELECT last_error, outcome, '' FROM deliveries")),
            *conn.execute(text("SELECT error, calls, '' FROM delivery_attempts")),
            *conn.execute(text("SELECT key, result, '' FROM delivery_steps")),
        ]
    engine.dispose()
    return "\n".join(str(v) for row in rows for v in row if v)


@needs_zgw_specs
def test_no_personal_value_reaches_the_log(
    tmp_path: Path, zs: Zaaksysteem, werkmap: tuple[FakeWerkmap, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    fake, werkmap_url = werkmap
    for path in sorted(STAM.glob("verzoek-*.xml")):
        fake.add_verzoek(path.read_bytes())
    fake.add_verzoek((STAM / "lenient" / "verzoek-onbekend-element.xml").read_bytes(), check_schema=False)
    fake.add_verzoek(
        (STAM / "lenient" / "verzoek-zonder-verzoeknummer.xml").read_bytes(),
        check_schema=False,
        verzoeknummer="2026112600248",
        volgnummer=1,
    )
    srv = start(tmp_path, zs, werkmap_url)
    codes: list[str | None] = []
    try:
        # every StUF-LVO fixture, the aanvraag first (the others follow it up); those we only send are unknown here
        others = sorted(p.stem for p in LVO.glob("*.xml") if p.stem != "omvDi01AanbiedenAanvraag")
        names = ["omvDi01AanbiedenAanvraag", *others]
        for name in names:
            answer = post(srv.soap_url, lvo(name))
            assert answer.status == 200, (name, answer.body[:500])
        for path in sorted((LVO / "outgoing").glob("*.xml")):
            codes.append(post(srv.soap_url, with_reference(path.read_bytes(), uuid.uuid4().hex[:30])).code)
        # every STAM notification, including the lenient ones and one the werkmap does not know
        for path in [
            *sorted(STAM.glob("verzoeknotificatie-*.xml")),
            *sorted((STAM / "lenient").glob("verzoeknotificatie-*.xml")),
        ]:
            assert notify(srv, path.read_bytes()).status_code == 202, path.name
        unknown = (STAM / "verzoeknotificatie-bedrijf.xml").read_bytes().replace(b"2026112600246", b"2026112699999")
        assert notify(srv, unknown).status_code == 202  # the werkmap answers 404
        # schema-invalid StUF-LVO whose invalid values are personal (libxml2 quotes them)
        for old, new in [
            ("<LVO:postcode>1234AB<", "<LVO:postcode>Pietje Puk 12<"),
            ("<LVO:bsn>999993653<", "<LVO:bsn>Grietje Bakker<"),
            ("<LVO:emailadres>j.vanderberg@example.org<", "<LVO:emailadres>bakker.grietje at example dot org<"),
        ]:
            codes.append(post(srv.soap_url, aanvraag(**{old: new})).code)
        # not well-formed: an unfinished CDATA section (libxml2 quotes its start) and a broken tag
        cdata = aanvraag(**{"<LVO:toelichting>": "<LVO:toelichting><![CDATA[Keizersgracht 99 Amsterdam "})
        codes.append(post(srv.soap_url, cdata).code)
        codes.append(post(srv.soap_url, aanvraag(**{"</LVO:geslachtsnaam>": "</LVO:achternaam>"})).code)
        # unknown message, wrong berichtcode, unknown zender: each with the aanvrager's data in it
        unknown_message = aanvraag().replace(b"omvDi01AanbiedenAanvraag", b"omvDi01OnbekendBericht")
        codes.append(post(srv.soap_url, unknown_message).code)
        codes.append(post(srv.soap_url, aanvraag(**{"<StUF:berichtcode>Di01<": "<StUF:berichtcode>Lk01<"})).code)
        codes.append(post(srv.soap_url, aanvraag(**{">OLO</StUF:applicatie>": ">ANDER</StUF:applicatie>"})).code)
        # a notification with a name where the verzoeknummer goes, and one that is not XML at all
        named = (STAM / "verzoeknotificatie-initieren.xml").read_bytes().replace(b"2026112300123", b"Jan Modaal")
        assert notify(srv, named).status_code == 400
        assert notify(srv, b"<vn:verzoeknotificatie>Dorpsstraat 1a, 1234AB").status_code == 400
        # deliveries that fail: a rol the zaaksysteem refuses quoting the name back, a zaaksysteem that is down
        wait_for(lambda: settled(srv), timeout=120, what="the deliveries so far done or failed")
        with monkeypatch.context() as m:
            m.setattr(fake_zgw_app, "_fault_response", quoting_the_name)
            zs.fake.fail_next("POST", "/rollen", status=400)  # type: ignore[attr-defined]
            refused = aanvraag(**{"<LVO:geslachtsnaam>Berg<": f"<LVO:geslachtsnaam>{QUOTED_NAME}<"})
            assert post(srv.soap_url, refused.replace(b">7654321<", b">7654322<")).status == 200
            wait_for(lambda: settled(srv), timeout=120, what="the refused delivery in needs-attention")
        zs.fake.fail_next("POST", "/zaken", status=503, times=3)  # type: ignore[attr-defined]
        assert post(srv.soap_url, aanvraag().replace(b">7654321<", b">7654323<")).status == 200
        wait_for(lambda: settled(srv), timeout=120, what="every delivery done, dead or needs-attention")
    finally:
        srv.stop()
    try:
        stored = stored_texts(srv)
    finally:
        drop_database(srv.db_url)
    log = srv.log_text()
    records = [json.loads(line) for line in log.splitlines() if line.strip()]  # production: JSON lines only
    events = [r.get("event") for r in records]
    # the paths ran: faults of every kind, refused notifications, deliveries done and failed
    assert {"StUF055", "StUF025", "StUF022", "StUF013"} <= set(codes), codes
    assert events.count("message rejected") >= 8 and events.count("verzoeknotificatie rejected") == 2
    assert "delivered" in events and "delivery failed" in events
    assert "bevat ongeldige tekens" in stored  # the zaaksysteem's refusal is kept, without the name it quoted
    for value in sorted(personal_values()):
        escaped = json.dumps(value)[1:-1]
        assert value not in log and escaped not in log, f"personal value {value!r} in the log"
        assert value not in stored, f"personal value {value!r} in a stored error text or answer"


def test_the_grep_catches_a_schema_error_that_quotes_a_value() -> None:
    """The search above fails when a line carries a value (libxml2's own text is exactly such a line)."""
    from adapter.schemas import SchemaInvalid, SchemaSet
    from adapter.validation import message_of
    from adapter.xmlsafe import parse

    bad = aanvraag(**{"<LVO:postcode>1234AB<": "<LVO:postcode>Pietje Puk 12<"})
    with pytest.raises(SchemaInvalid) as info:
        SchemaSet().validate(message_of(parse(bad)))
    first = info.value.errors[0]
    assert "Pietje Puk 12" in first.message  # what libxml2 says, and `validate` shows the operator
    assert "Pietje Puk 12" not in str(first) and "Pietje Puk 12" not in str(info.value)
    assert re.fullmatch(r"line \d+: .*/postcode: value does not have the expected form \(pattern\)", str(first))


def test_mappings_preview_shows_the_gemeente_rsin_unmasked_and_masks_the_bsn() -> None:
    r = subprocess.run(
        [sys.executable, "-m", "adapter", "--config", str(ROOT / "config.example.toml"), "mappings", "preview",
         str(LVO / "omvDi01AanbiedenAanvraag.xml")],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert '"bronorganisatie": "002564440"' in r.stdout  # the gemeente's RSIN (passes the eleven-test too)
    assert '"verantwoordelijkeOrganisatie": "002564440"' in r.stdout
    assert "999993653" not in r.stdout and "*********" in r.stdout  # the aanvrager's BSN stays masked


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mail j.vanderberg@example.org of info@bouwadvies.example.org", "mail ***@*** of ***@***"),
        ("bel 0612345678, 010-7654321 of +31 6 12345678", "bel ***, *** of ***"),
        ("aanvrager 999993653", "aanvrager *********"),
        # left alone: OINs, references, timestamps, uuids, an RSIN inside a longer number, a duration
        ("OIN 00000001800866472000", "OIN 00000001800866472000"),
        ("ref OLO-2026-000000123 om 20261123101500123", "ref OLO-2026-000000123 om 20261123101500123"),
        (
            "zaak 3fa85f64-5717-4562-b3fc-2c963f66afa6 0123456789ab",
            "zaak 3fa85f64-5717-4562-b3fc-2c963f66afa6 0123456789ab",
        ),
        ("took 0.0123456789 s", "took 0.0123456789 s"),
    ],
)
def test_redact_masks_contact_details_in_free_text(text: str, expected: str) -> None:
    from adapter.logs import redact

    assert redact(text) == expected


def test_a_verzoeks_personal_values_are_masked_within_its_correlation_scope_only() -> None:
    from adapter.logs import correlation, personal_values, redact, redact_values
    from adapter.loket.lvo_parse import parse_verzoek
    from adapter.validation import message_of
    from adapter.xmlsafe import parse

    verzoek = parse_verzoek(message_of(parse(lvo("omvDi01AanbiedenAanvraag"))), OIN)
    values = personal_values(verzoek)
    assert {"999993653", "Berg", "Dorpsstraat", "1234AB", "j.vanderberg@example.org", "Industrieweg"} <= values
    line = "HTTP 400: geslachtsnaam 'Berg' te kort; straat Dorpsstraat, Industrieweg 10"
    with correlation("a"):
        redact_values(values)
        assert redact(line) == "HTTP 400: geslachtsnaam '***' te kort; straat ***, *** 10"
        with correlation("b"):  # a nested scope adds to, never drops, the outer one's values
            redact_values(["Keizersgracht"])
            assert redact("Berg, Keizersgracht") == "***, ***"
        assert redact("Keizersgracht") == "Keizersgracht"
    assert redact(line) == line  # the next delivery's lines are not garbled by this one's values


def test_a_not_well_formed_text_quotes_no_content() -> None:
    """libxml2 quotes the first 50 characters of an unfinished CDATA section on a second line."""
    from adapter.xmlsafe import XmlRejected, parse

    with pytest.raises(XmlRejected) as info:
        parse(b"<a><![CDATA[Keizersgracht 99 Amsterdam, j.vanderberg@example.org")
    assert str(info.value) == "line 1: not well-formed XML: CData section not finished"
