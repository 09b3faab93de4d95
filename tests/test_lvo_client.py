"""StUF-LVO to the loket: the three builders give XSD-valid messages shaped like the outgoing examples;
over real HTTP against the fake loket (which validates too) each is acknowledged with a Bv03 for exactly
its referentienummer; a Fo03, an HTTP error, a time-out or a refused connection is a one-line
TargetError; the fake refuses what the contract refuses (StUF055, StUF016, StUF010) with official Fo03s.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import date
from typing import Any

import httpx
import pytest
from lxml import etree
from pydantic import ValidationError

from adapter.errors import TargetError
from adapter.loket.lvo import LVO
from adapter.loket.lvo_client import (
    LoketClient,
    LoketFault,
    LoketOptions,
    LvoMessageInvalid,
    aanvragen_advies,
    envelope,
    koppel_zaak,
    wijzig_status,
)
from adapter.schemas import SchemaSet
from adapter.simulation.fake_loket import ENDPOINT_PATH, LOKET, FakeLoket
from adapter.simulation.fake_zgw.server import serve_in_thread
from adapter.stuf.namespaces import SOAP11_ENV, STUF
from adapter.stuf.stuurgegevens import Systeem, parse_stuurgegevens
from tests.conftest import FIXTURES, SHARED, free_port

OUTGOING = FIXTURES / "stuf-lvo" / "outgoing"
US = {"organisatie": "00000001002564440000", "applicatie": "ZAAKSYSTEEM"}
THEM = {"organisatie": LOKET.organisatie, "applicatie": LOKET.applicatie}
SG_ORDER = ["berichtcode", "zender", "ontvanger", "referentienummer", "tijdstipBericht", "functie"]

Builder = Callable[..., etree._Element]
BUILDERS: dict[str, tuple[Builder, tuple[Any, ...]]] = {
    "vrgDi01KoppelZaakAanAanvraag": (koppel_zaak, ("1234567", "ZAAK-2026-0000123")),
    "vrgDi01WijzigStatus": (wijzig_status, ("1234567", 2, date(2026, 11, 24))),
    "vrgDi01AanvragenAdvies": (
        aanvragen_advies,
        (
            "1234567",
            "ZS-ADV-2026-0042",
            "00000001823288444000",
            "Omgevingsdienst Voorbeeldregio",
            "Welstandsadvies over de dakkapel aan de voorzijde",
            date(2026, 12, 9),
            ["1234567-1", "1234567-2"],
        ),
    ),
}


def build(name: str, **kw: Any) -> etree._Element:
    builder, args = BUILDERS[name]
    return builder(*args, **kw)


def options(url: str, **kw: Any) -> LoketOptions:
    return LoketOptions(**{"url": url, "zender": US, "ontvanger": THEM, "timeout": 5.0, **kw})


def shape(el: etree._Element, path: str = "") -> list[str]:
    """Element paths in document order (names with their namespace), the 'shape' of a message."""
    here = f"{path}/{etree.QName(el).text}"
    return [here] + [p for c in el if isinstance(c.tag, str) for p in shape(c, here)]


def soap_answer(content: bytes) -> etree._Element:
    return etree.fromstring(content)[0][0]


@pytest.fixture(scope="module")
def schemas() -> SchemaSet:
    return SchemaSet()


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[FakeLoket, str]]:
    fake = FakeLoket()
    base, stop = serve_in_thread(fake)
    yield fake, base + ENDPOINT_PATH
    stop()


@pytest.fixture
def fake(served: tuple[FakeLoket, str]) -> FakeLoket:
    served[0].reset()
    return served[0]


@pytest.fixture
def client(served: tuple[FakeLoket, str]) -> Iterator[LoketClient]:
    with LoketClient(options(served[1])) as c:
        yield c


# -- builders ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", BUILDERS)
def test_builders_validate_and_fill_stuurgegevens(name: str, schemas: SchemaSet) -> None:
    el = build(name, zender=Systeem(**US), ontvanger=Systeem(**THEM))
    assert schemas.validate(el) == "xsd/lvo/lvo0312.xsd"
    assert el.tag == f"{{{LVO}}}{name}"
    sg_el = el[0]
    assert sg_el.tag == f"{{{LVO}}}stuurgegevens"
    assert [etree.QName(c).namespace for c in sg_el] == [STUF] * len(SG_ORDER)
    assert [etree.QName(c).localname for c in sg_el] == SG_ORDER
    sg = parse_stuurgegevens(el)
    assert sg.berichtcode == "Di01"
    assert sg.functie == name.removeprefix("vrgDi01")
    assert sg.tijdstip_bericht and sg.tijdstip_bericht.isdigit() and len(sg.tijdstip_bericht) == 17
    assert sg.cross_refnummer is None
    other = parse_stuurgegevens(build(name))
    assert sg.referentienummer and other.referentienummer and sg.referentienummer != other.referentienummer
    assert len(sg.referentienummer) <= 40


@pytest.mark.skipif(not (SHARED / "contract").is_dir(), reason="../shared/contract is absent")
@pytest.mark.parametrize("name", BUILDERS)
def test_builders_have_the_shape_of_the_outgoing_examples(name: str) -> None:
    example = etree.parse(str(OUTGOING / f"{name}.xml")).getroot()
    ours = build(name, zender=Systeem(**US), ontvanger=Systeem(**THEM))
    assert shape(ours) == shape(example)
    # Same content in, same text out (bar the referentienummer and tijdstip, which are our own).
    volatile = {"referentienummer", "tijdstipBericht"}
    texts = [(etree.QName(e).localname, e.text) for e in ours.iter() if etree.QName(e).localname not in volatile]
    expected = [(etree.QName(e).localname, e.text) for e in example.iter() if etree.QName(e).localname not in volatile]
    assert [(k, (v or "").strip()) for k, v in texts] == [(k, (v or "").strip()) for k, v in expected]


def test_advies_without_naam_and_bijlagen_is_valid(schemas: SchemaSet) -> None:
    el = aanvragen_advies("1234567", "ADV-1", "00000001823288444000", None, "Advies", date(2026, 1, 2), [])
    schemas.validate(el)
    assert el.find(f".//{{{LVO}}}naam") is None and el.find(f".//{{{LVO}}}bijlageIds") is None
    assert el.findtext(f".//{{{LVO}}}einddatum") == "20260102"


@pytest.mark.parametrize("code", [0, 9, True, "2"])
def test_wijzig_status_refuses_codes_outside_1_to_8(code: Any) -> None:
    with pytest.raises(LvoMessageInvalid, match="statuscode"):
        wijzig_status("1234567", code, date(2026, 1, 1))


def test_builder_refuses_what_the_xsd_refuses() -> None:
    with pytest.raises(LvoMessageInvalid, match=r"lvo0312\.xsd.*aanvraagnummer") as err:
        koppel_zaak("x" * 41, "ZAAK-1")
    assert "\n" not in str(err.value) and isinstance(err.value, TargetError)


def test_options_are_strict() -> None:
    with pytest.raises(ValidationError):
        LoketOptions(url="http://x", zender=US, ontvanger=THEM, onbekend=1)
    with pytest.raises(ValidationError):
        LoketOptions(url="ftp://x", zender=US, ontvanger=THEM)
    with pytest.raises(ValidationError):
        LoketOptions(url="http://x", zender={**US, "applicatie": "ZS"}, ontvanger=THEM)
    with pytest.raises(ValidationError):
        LoketOptions(url="http://x", zender=US, ontvanger=THEM, client_key="k.pem")


# -- over HTTP against the fake ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", BUILDERS)
def test_each_message_is_acknowledged(name: str, fake: FakeLoket, client: LoketClient) -> None:
    el = build(name)
    ref = client.send(el)
    assert ref == parse_stuurgegevens(el).referentienummer
    assert fake.calls == [(f"{LVO}/{name}", 200)]
    [(got_name, nummer, got)] = fake.received
    assert (got_name, nummer) == (name, "1234567")
    sg = parse_stuurgegevens(got)
    assert (sg.zender, sg.ontvanger) == (Systeem(**US), Systeem(**THEM))
    assert sg.referentienummer == ref


def test_the_fakes_bv03_is_official_and_swaps_addresses(fake: FakeLoket, served: Any, schemas: SchemaSet) -> None:
    msg = LoketClient(options(served[1])).address(build("vrgDi01WijzigStatus"))
    r = httpx.post(served[1], content=envelope(msg), headers={"SOAPAction": f'"{LVO}/vrgDi01WijzigStatus"'})
    answer = soap_answer(r.content)
    assert r.status_code == 200 and schemas.validate(answer) == "xsd/stuf0301/stuf0301.xsd"
    sg, req = parse_stuurgegevens(answer), parse_stuurgegevens(msg)
    assert (sg.berichtcode, sg.zender, sg.ontvanger) == ("Bv03", req.ontvanger, req.zender)
    assert sg.cross_refnummer == req.referentienummer != sg.referentienummer


def test_resend_after_timeout_gets_the_same_bv03_and_is_stored_once(fake: FakeLoket, served: Any) -> None:
    el = build("vrgDi01KoppelZaakAanAanvraag")
    fake.delay_next(1.0)
    with LoketClient(options(served[1], timeout=0.2)) as slow, pytest.raises(TargetError) as err:
        slow.send(el)
    assert str(err.value) == (f"vrgDi01KoppelZaakAanAanvraag (aanvraag 1234567) to {served[1]}: no answer within 0.2 s")
    deadline = time.monotonic() + 5
    while not fake.calls and time.monotonic() < deadline:  # the fake still processes the slow request
        time.sleep(0.02)
    assert len(fake.received) == 1
    with LoketClient(options(served[1])) as c:
        assert c.send(el) == parse_stuurgegevens(el).referentienummer
    assert len(fake.received) == 1 and [s for _, s in fake.calls] == [200, 200]


@pytest.mark.parametrize("code", ["StUF046", "StUF058"])
def test_injected_fo03_is_a_target_error_naming_code(code: str, fake: FakeLoket, client: LoketClient) -> None:
    fake.fail_next(fo03_code=code)
    with pytest.raises(LoketFault) as err:
        client.send(build("vrgDi01WijzigStatus"))
    assert err.value.code == code
    assert f": {code}: Geïnjecteerde fout" in str(err.value) and "\n" not in str(err.value)
    assert fake.received == []
    client.send(build("vrgDi01WijzigStatus"))  # the fault is gone: accepted
    assert len(fake.received) == 1


def test_injected_http_500_is_a_target_error(fake: FakeLoket, client: LoketClient) -> None:
    fake.fail_next(status=503, times=2)
    for _ in range(2):
        with pytest.raises(TargetError, match=r"\(aanvraag 1234567\) to http://.*: HTTP 503: injected failure$"):
            client.send(build("vrgDi01KoppelZaakAanAanvraag"))
    client.send(build("vrgDi01KoppelZaakAanAanvraag"))
    assert [s for _, s in fake.calls] == [503, 503, 200]


def test_connection_refused_is_one_line() -> None:
    with LoketClient(options(f"http://127.0.0.1:{free_port()}/soap/lvo")) as c, pytest.raises(TargetError) as err:
        c.send(build("vrgDi01KoppelZaakAanAanvraag"))
    assert "ConnectError" in str(err.value) and "\n" not in str(err.value)


def test_client_never_sends_an_invalid_message(fake: FakeLoket, client: LoketClient) -> None:
    el = build("vrgDi01WijzigStatus")
    el.find(f".//{{{LVO}}}statuscode").text = "9"
    with pytest.raises(LvoMessageInvalid, match="statuscode"):
        client.send(el)
    el = build("vrgDi01KoppelZaakAanAanvraag")
    el[0].find(f"{{{STUF}}}functie").text = "WijzigStatus"
    with pytest.raises(LvoMessageInvalid, match="functie WijzigStatus is not KoppelZaakAanAanvraag"):
        client.send(el)
    assert fake.calls == []


def _post_raw(url: str, message: etree._Element, action: str) -> etree._Element:
    r = httpx.post(url, content=envelope(message), headers={"SOAPAction": f'"{action}"'})
    assert r.status_code == 500
    fault = soap_answer(r.content)
    assert fault.tag == f"{{{SOAP11_ENV}}}Fault" and fault.find("faultactor") is None
    return fault


def test_fake_rejects_an_invalid_message_with_stuf055(fake: FakeLoket, served: Any, schemas: SchemaSet) -> None:
    msg = LoketClient(options(served[1])).address(build("vrgDi01WijzigStatus"))
    msg.find(f".//{{{LVO}}}statuscode").text = "9"
    fault = _post_raw(served[1], msg, f"{LVO}/vrgDi01WijzigStatus")
    assert fault.findtext("faultcode") == "s:Client"
    fo03 = fault.find("detail")[0]
    assert schemas.validate(fo03) == "xsd/stuf0301/stuf0301.xsd"
    assert fo03.findtext(f"{{{STUF}}}body/{{{STUF}}}code") == "StUF055"
    assert "statuscode" in fo03.findtext(f"{{{STUF}}}body/{{{STUF}}}details")
    sg = parse_stuurgegevens(fo03)
    assert sg.cross_refnummer == parse_stuurgegevens(msg).referentienummer
    assert fake.received == []


def test_fake_checks_soap_action(fake: FakeLoket, served: Any) -> None:
    msg = LoketClient(options(served[1])).address(build("vrgDi01WijzigStatus"))
    fault = _post_raw(served[1], msg, f"{LVO}/vrgDi01KoppelZaakAanAanvraag")
    assert fault.find("detail")[0].findtext(f"{{{STUF}}}body/{{{STUF}}}code") == "StUF055"
    assert "SOAPAction" in fault.findtext("faultstring")


def test_same_referentienummer_other_content_is_stuf016(fake: FakeLoket, client: LoketClient) -> None:
    client.send(koppel_zaak("1234567", "ZAAK-1", referentienummer="ZS-1", tijdstip_bericht="20260101120000000"))
    with pytest.raises(LoketFault, match="StUF016") as err:
        client.send(koppel_zaak("1234567", "ZAAK-2", referentienummer="ZS-1", tijdstip_bericht="20260101120000000"))
    assert err.value.code == "StUF016"
    assert [el.findtext(f".//{{{LVO}}}zaakidentificatie") for el in fake.messages()] == ["ZAAK-1"]


def test_wrong_ontvanger_is_stuf010(fake: FakeLoket, served: Any) -> None:
    wrong = options(served[1], ontvanger={"organisatie": "1", "applicatie": "XYZ"})
    with LoketClient(wrong) as c, pytest.raises(LoketFault, match="StUF010"):
        c.send(build("vrgDi01KoppelZaakAanAanvraag"))


def _mock(answer: bytes, status: int = 200) -> httpx.MockTransport:
    return httpx.MockTransport(lambda request: httpx.Response(status, content=answer))


def test_bv03_for_another_referentienummer_is_an_error() -> None:
    bv03 = (
        f'<s:Envelope xmlns:s="{SOAP11_ENV}"><s:Body><StUF:Bv03Bericht xmlns:StUF="{STUF}"><StUF:stuurgegevens>'
        "<StUF:berichtcode>Bv03</StUF:berichtcode><StUF:zender><StUF:applicatie>OLO</StUF:applicatie></StUF:zender>"
        "<StUF:ontvanger><StUF:applicatie>ZAAKSYSTEEM</StUF:applicatie></StUF:ontvanger>"
        "<StUF:referentienummer>X1</StUF:referentienummer><StUF:tijdstipBericht>20260101000000</StUF:tijdstipBericht>"
        "<StUF:crossRefnummer>NIET-DE-ONZE</StUF:crossRefnummer></StUF:stuurgegevens></StUF:Bv03Bericht>"
        "</s:Body></s:Envelope>"
    ).encode()
    with LoketClient(options("http://loket.test/soap"), transport=_mock(bv03)) as c:
        with pytest.raises(TargetError, match=r"Bv03 acknowledges NIET-DE-ONZE, not our LA\d+$"):
            c.send(build("vrgDi01KoppelZaakAanAanvraag"))
        assert c.send(build("vrgDi01KoppelZaakAanAanvraag", referentienummer="NIET-DE-ONZE")) == "NIET-DE-ONZE"


def test_fault_parsing_is_lenient() -> None:
    bare = (
        f'<s:Envelope xmlns:s="{SOAP11_ENV}"><s:Body><s:Fault><faultcode>s:StUF058</faultcode>'
        "<faultstring>Verwerking mislukt</faultstring></s:Fault></s:Body></s:Envelope>"
    ).encode()
    c = LoketClient(options("http://loket.test/soap"), transport=_mock(bare, 500))
    with c, pytest.raises(LoketFault, match=r": StUF058: Verwerking mislukt$") as err:
        c.send(build("vrgDi01KoppelZaakAanAanvraag"))
    assert err.value.code == "StUF058"
    c = LoketClient(options("http://loket.test/soap"), transport=_mock(b"<html>oops</html>", 200))
    with c, pytest.raises(TargetError, match="not a SOAP envelope"):
        c.send(build("vrgDi01KoppelZaakAanAanvraag"))


def test_fake_can_answer_faultcode_in_stuf_style() -> None:
    fake = FakeLoket(faultcode_style="stuf")
    base, stop = serve_in_thread(fake)
    try:
        fake.fail_next(fo03_code="StUF058")
        with LoketClient(options(base + ENDPOINT_PATH)) as c, pytest.raises(LoketFault) as err:
            c.send(build("vrgDi01AanvragenAdvies"))
        assert err.value.code == "StUF058" and fake.calls == [(f"{LVO}/vrgDi01AanvragenAdvies", 500)]
        r = httpx.post(base + ENDPOINT_PATH, content=b"<geen-soap/>", headers={"SOAPAction": ""})
        assert soap_answer(r.content).findtext("faultcode") == "s:StUF055"
    finally:
        stop()
