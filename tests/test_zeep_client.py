"""The served WSDL works for a real SOAP client: zeep loads it (and its schemas) over HTTP, sends every
fixture as a typed call and gets a Bv03 it can read; a fault arrives as a zeep Fault with the Fo03."""

from __future__ import annotations

import uuid

import pytest
import zeep
from lxml import etree
from zeep.exceptions import Fault

from tests.conftest import Server
from tests.soap import LVO, STUF, fixture, with_reference
from tests.test_stuf_lvo_http import INCOMING


@pytest.fixture(scope="module")
def client(server: Server) -> zeep.Client:
    c = zeep.Client(f"{server.soap_url}?wsdl")
    assert c.service._binding_options["address"] == server.soap_url
    return c


def call(client: zeep.Client, name: str, body: bytes) -> object:
    """Parse the fixture's message element with zeep's own types and send it as a typed operation."""
    message = etree.fromstring(body).find(f".//{{{LVO}}}{name}")
    element = client.get_element(f"{{{LVO}}}{name}")
    value = element.type.parse_xmlelement(message, client.wsdl.types)
    kwargs = {child: getattr(value, child) for child in value}
    return getattr(client.service, name)(**kwargs)


@pytest.mark.parametrize("name", INCOMING)
def test_zeep_sends_each_message_and_reads_the_bv03(client: zeep.Client, name: str) -> None:
    ref = f"Z-{uuid.uuid4().hex[:20]}"
    result = call(client, name, with_reference(fixture(name), ref))
    sg = result  # zeep unwraps Bv03Bericht's single child: the stuurgegevens
    assert sg.berichtcode == "Bv03"
    assert sg.crossRefnummer == ref
    assert sg.zender.applicatie == "ZAAKSYSTEEM" and sg.ontvanger.applicatie == "OLO"


def test_zeep_gets_fo03_as_fault(client: zeep.Client) -> None:
    body = with_reference(fixture("vrgDi01IntrekkenAanvraag"), "Z-dup-" + uuid.uuid4().hex[:10])
    call(client, "vrgDi01IntrekkenAanvraag", body)
    changed = body.replace(b"ziet af van het plan", b"ziet er toch van af")
    with pytest.raises(Fault) as info:
        call(client, "vrgDi01IntrekkenAanvraag", changed)
    assert info.value.code.endswith("Client")
    assert info.value.detail.find(f".//{{{STUF}}}code").text == "StUF016"
