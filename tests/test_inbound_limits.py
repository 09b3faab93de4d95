"""Inbound limits and strictness (issue 7, items 6 and 9).

- An inline StUF-LVO bijlage over lxml's 10 MB text-node default is accepted up to ``max_body_bytes``, while
  DTDs, entities and our own size and depth limits still refuse hostile input.
- A verzoeknotificatie in the wrong namespace is a 400 problem+json, logged as ``rejected`` (it was a 500).
- ``[inbound] lvo_schema = "lenient"`` turns XSD errors on the LVO content into warnings on the stored
  message (naming elements, never values); well-formedness, stuurgegevens and the aanvraagnummer still reject.
"""

from __future__ import annotations

import base64
import json
import os
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, create_engine, text

from adapter.loket import stam
from adapter.xmlsafe import Limits, XmlRejected, parse
from tests.conftest import FIXTURES, Server, drop_database, make_server
from tests.delivery_env import cli
from tests.soap import fixture, post, with_reference

MB = 1024 * 1024


def ref() -> str:
    return f"L-{uuid.uuid4().hex[:20]}"


def aanvraag(referentienummer: str, old: bytes = b"", new: bytes = b"") -> bytes:
    body = with_reference(fixture("omvDi01AanbiedenAanvraag"), referentienummer)
    assert old in body
    return body.replace(old, new, 1)


def with_bijlage_of(size: int, referentienummer: str) -> bytes:
    inhoud = base64.b64encode(os.urandom(size))
    return re.sub(
        rb"<LVO:inhoud>[^<]*</LVO:inhoud>",
        b"<LVO:inhoud>" + inhoud + b"</LVO:inhoud>",
        aanvraag(referentienummer),
        count=1,
    )


def stored(db: Engine, referentienummer: str) -> list[tuple[str, str | None, int, str | None]]:
    with db.connect() as conn:
        return [
            (r.state, r.error_code, r.size, r.warnings)
            for r in conn.execute(
                text("SELECT state, error_code, size, warnings FROM messages WHERE referentienummer = :r ORDER BY id"),
                {"r": referentienummer},
            )
        ]


# -- huge text nodes, still no entities -------------------------------------------------------------------


def test_a_text_node_over_10_mb_parses_up_to_max_bytes_and_not_beyond() -> None:
    big = b"<a><b>" + b"QUFB" * (3 * MB) + b"</b></a>"  # one 12 MB text node
    assert len(parse(big)[0].text or "") == 12 * MB
    with pytest.raises(XmlRejected, match="exceeds the limit"):
        parse(big, Limits(max_bytes=10 * MB))


def test_entities_depth_and_doctype_stay_refused_with_huge_trees() -> None:
    laughs = (
        b'<?xml version="1.0"?><!DOCTYPE l [<!ENTITY a "aaaaaaaaaa">'
        + b"".join(f'<!ENTITY a{i} "{f"&a{i - 1};" * 10 if i else "&a;" * 10}">'.encode() for i in range(9))
        + b"]><l>&a8;</l>"
    )
    with pytest.raises(XmlRejected, match="DOCTYPE"):
        parse(laughs)
    # A DOCTYPE behind more than 64 KiB of prolog is refused before libxml2 reads it, too.
    padded = b"<!--" + b"x" * 200_000 + b"-->" + b'<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>'
    with pytest.raises(XmlRejected, match="DOCTYPE"):
        parse(padded)
    with pytest.raises(XmlRejected, match="deeper than 64"):
        parse(b"<a>" * 100 + b"</a>" * 100)
    with pytest.raises(XmlRejected, match="not well-formed"):
        parse(b"<a>" * 5000 + b"</a>" * 5000, Limits(max_depth=64))  # libxml2's own ceiling still holds


def test_inline_bijlage_of_12_mb_gets_bv03_over_http(server: Server, db: Engine) -> None:
    r = ref()
    body = with_bijlage_of(9 * MB, r)  # base64: a 12 MB text node
    assert len(body) > 12 * MB
    answer = post(server.soap_url, body, timeout=120)
    assert answer.status == 200, answer.body[:800]
    assert answer.payload.tag == "{http://www.egem.nl/StUF/StUF0301}Bv03Bericht"
    assert stored(db, r) == [("received", None, len(body), None)]


# -- the verzoeknotificatie in the wrong namespace ----------------------------------------------------------

NOTIFICATIE = (FIXTURES / "stam" / "verzoeknotificatie-initieren.xml").read_bytes()
WRONG_NAMESPACE = {
    "other_namespace": NOTIFICATIE.replace(stam.VERZOEKNOTIFICATIE.encode(), b"urn:example:stam-v5:verzoeknotificatie"),
    "no_namespace": re.sub(rb"</?vn:", lambda m: m[0].replace(b"vn:", b""), NOTIFICATIE).replace(
        f' xmlns:vn="{stam.VERZOEKNOTIFICATIE}"'.encode(), b""
    ),
    "verzoek_namespace": NOTIFICATIE.replace(stam.VERZOEKNOTIFICATIE.encode(), stam.VERZOEK.encode()),
}


@pytest.mark.parametrize("name", list(WRONG_NAMESPACE))
def test_notification_in_the_wrong_namespace_is_400_problem_json_and_logged_rejected(
    server: Server, db: Engine, name: str
) -> None:
    body = WRONG_NAMESPACE[name]
    assert b"<" in body and stam.VERZOEKNOTIFICATIE.encode() not in body
    r = httpx.post(
        f"{server.url}/stam/verzoeknotificatie", content=body, headers={"Content-Type": "application/xml"}, timeout=30
    )
    assert r.status_code == 400, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    problem = r.json()
    assert problem["status"] == 400 and problem["title"] == "Invalid verzoeknotificatie"
    assert "is not a verzoeknotificatie" in problem["detail"] and "verzoeknotificatie.xsd" in problem["detail"]
    with db.connect() as conn:
        row = conn.execute(
            text("SELECT state, error_code, error_text, answer FROM messages WHERE channel = 'stam' AND body = :b"),
            {"b": body},
        ).one()
    assert (row.state, row.error_code) == ("rejected", "400") and row.error_text == problem["detail"]
    assert json.loads(row.answer) == problem
    assert "verzoeknotificatie rejected" in server.log_text()


# -- StUF-LVO with a lenient schema -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def lenient(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Engine]]:
    srv = make_server(tmp_path_factory.mktemp("lenient"), lvo_schema="lenient")
    srv.start()
    engine = create_engine(srv.db_url)
    yield srv, engine
    engine.dispose()
    srv.stop()
    drop_database(srv.db_url)


AANVRAAGNUMMER = b"<LVO:aanvraagnummer>1234567</LVO:aanvraagnummer>"
UNKNOWN = (AANVRAAGNUMMER, AANVRAAGNUMMER + b"<LVO:dossiercode>geheim-123</LVO:dossiercode>")


def test_lenient_lvo_schema_stores_xsd_errors_as_warnings_without_values(
    lenient: tuple[Server, Engine], server: Server, tmp_path: Path
) -> None:
    srv, db = lenient
    r = ref()
    answer = post(srv.soap_url, aanvraag(r, *UNKNOWN))
    assert answer.payload.tag.endswith("Bv03Bericht"), answer.body[:800]
    ((state, code, _, warnings),) = stored(db, r)
    assert (state, code) == ("received", None)
    (warning,) = json.loads(warnings)
    assert "aanvraag/dossiercode: This element is not expected." in warning and "geheim" not in warning
    mid = (
        cli(srv, "messages", "list", "--type", "omvDi01AanbiedenAanvraag", "--limit", "1")
        .stdout.splitlines()[1]
        .split()[0]
    )
    shown = cli(srv, "messages", "show", mid).stdout
    assert "warnings          1" in shown and "dossiercode" in shown and "geheim" not in shown
    assert post(srv.soap_url, aanvraag(r, *UNKNOWN)).payload.tag.endswith("Bv03Bericht")  # a resend: same answer
    assert len(stored(db, r)) == 1
    # The default stays strict: the same message gets StUF055 there.
    strict = post(server.soap_url, aanvraag(ref(), *UNKNOWN))
    assert strict.code == "StUF055"


@pytest.mark.parametrize(
    ("old", "new", "code", "says"),
    [
        (b"<LVO:aanvraagnummer>1234567</LVO:aanvraagnummer>", b"", "StUF055", "aanvraagnummer ontbreekt"),
        (b"<LVO:aanvraagnummer>1234567</LVO:aanvraagnummer>", b"<LVO:aanvraagnummer>1234567", "StUF055", "not well-"),
        (b"<StUF:berichtcode>Di01</StUF:berichtcode>", b"<StUF:berichtcode>Du01</StUF:berichtcode>", "StUF022", "Du01"),
        (
            b"<StUF:organisatie>00000001800866472000</StUF:organisatie>",
            b"<StUF:organisatie>1</StUF:organisatie>",
            "StUF013",
            "Zender",
        ),
    ],
)
def test_lenient_lvo_schema_still_rejects_the_essentials(
    lenient: tuple[Server, Engine], old: bytes, new: bytes, code: str, says: str
) -> None:
    srv, db = lenient
    r = ref()
    answer = post(srv.soap_url, aanvraag(r, old, new))
    assert answer.code == code, answer.body[:800]
    assert says in (answer.text(".//StUF:omschrijving") or "")
    if says != "not well-":  # the others are logged under their referentienummer
        assert [s[:2] for s in stored(db, r)] == [("rejected", code)]


def test_lenient_lvo_schema_still_refuses_hostile_xml(lenient: tuple[Server, Engine]) -> None:
    srv, _ = lenient
    bomb = b'<?xml version="1.0"?><!DOCTYPE e [<!ENTITY x SYSTEM "file:///etc/passwd">]><e>&x;</e>'
    answer = post(srv.soap_url, bomb)
    assert answer.code == "StUF055" and b"root:" not in answer.body
    assert post(srv.soap_url, aanvraag(ref())).payload.tag.endswith("Bv03Bericht")  # and serves the next one


def test_config_refuses_an_unknown_lvo_schema_mode(tmp_path: Path) -> None:
    from adapter.config import load_settings
    from adapter.errors import ConfigError

    cfg = tmp_path / "c.toml"
    cfg.write_text(
        '[inbound]\nlvo_schema = "loose"\n[[stuf.ontvangers]]\norganisatie = "1"\napplicatie = "ZAAKSYSTEEM"\n'
    )
    with pytest.raises(ConfigError, match=r"inbound.lvo_schema: Input should be 'strict' or 'lenient'"):
        load_settings(cfg)
    example = load_settings(Path(__file__).resolve().parent.parent / "config.example.toml")
    assert example.inbound.lvo_schema == "strict"
