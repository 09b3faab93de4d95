"""Test helpers for talking StUF-LVO over HTTP and reading the answers."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import httpx
from lxml import etree

STUF = "http://www.egem.nl/StUF/StUF0301"
LVO = "http://www.egem.nl/StUF/sector/lvo/0312"
SOAP = "http://schemas.xmlsoap.org/soap/envelope/"
NS = {"StUF": STUF, "LVO": LVO, "soap": SOAP}


@dataclass
class Answer:
    status: int
    body: bytes

    @property
    def root(self) -> etree._Element:
        return etree.fromstring(self.body)

    @property
    def payload(self) -> etree._Element:
        """The Body's single child (Bv03Bericht or Fault)."""
        body = self.root.find(f"{{{SOAP}}}Body")
        assert body is not None
        return body[0]

    @property
    def fo03(self) -> etree._Element:
        found = self.root.find(f".//{{{STUF}}}Fo03Bericht")
        assert found is not None, self.body.decode()
        return found

    @property
    def code(self) -> str | None:
        el = self.root.find(f".//{{{STUF}}}Fo03Bericht/{{{STUF}}}body/{{{STUF}}}code")
        return None if el is None else el.text

    @property
    def faultcode(self) -> str | None:
        el = self.root.find(f".//{{{SOAP}}}Fault/faultcode")
        return None if el is None else el.text

    def text(self, path: str) -> str | None:
        el = self.root.find(path, NS)
        return None if el is None else el.text


def post(url: str, body: bytes, soap_action: str = '""', timeout: float = 30) -> Answer:
    r = httpx.post(
        url,
        content=body,
        headers={"Content-Type": "text/xml; charset=utf-8", "SOAPAction": soap_action},
        timeout=timeout,
    )
    return Answer(r.status_code, r.content)


def with_reference(xml: bytes, referentienummer: str) -> bytes:
    """The same message under another referentienummer."""
    return re.sub(
        rb"<StUF:referentienummer>[^<]*</StUF:referentienummer>",
        b"<StUF:referentienummer>" + referentienummer.encode() + b"</StUF:referentienummer>",
        xml,
        count=1,
    )


def fixture(name: str) -> bytes:
    return (Path(__file__).resolve().parent.parent / "fixtures" / "stuf-lvo" / f"{name}.xml").read_bytes()
