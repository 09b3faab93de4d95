"""Builders for the generic StUF answers ``StUF:Bv03Bericht`` and ``StUF:Fo03Bericht``.

Shapes follow the official stuf0301.xsd exactly (tests validate them against it).
"""

from __future__ import annotations

from lxml import etree

from adapter.stuf.fouten import StufFout
from adapter.stuf.namespaces import STUF, q
from adapter.stuf.stuurgegevens import Stuurgegevens, Systeem, reply_stuurgegevens, stuurgegevens_element


def bv03(request: Stuurgegevens, own_system: Systeem) -> etree._Element:
    root = etree.Element(q(STUF, "Bv03Bericht"), nsmap={"StUF": STUF})
    stuurgegevens_element(reply_stuurgegevens(request, "Bv03", own_system), root)
    return root


def fo03(request: Stuurgegevens, fout: StufFout, own_system: Systeem) -> etree._Element:
    root = etree.Element(q(STUF, "Fo03Bericht"), nsmap={"StUF": STUF})
    stuurgegevens_element(reply_stuurgegevens(request, "Fo03", own_system), root)
    body = etree.SubElement(root, q(STUF, "body"))
    etree.SubElement(body, q(STUF, "code")).text = fout.fout.code
    etree.SubElement(body, q(STUF, "plek")).text = fout.fout.plek
    etree.SubElement(body, q(STUF, "omschrijving")).text = fout.omschrijving
    if fout.details:
        etree.SubElement(body, q(STUF, "details")).text = fout.details
    return root


def to_bytes(el: etree._Element) -> bytes:
    return etree.tostring(el, encoding="UTF-8")


def from_bytes(data: bytes) -> etree._Element:
    """Re-read an answer we stored ourselves (trusted, but parsed with the safe defaults anyway)."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    return etree.fromstring(data, parser)


def fo03_code(answer: etree._Element) -> str | None:
    el = answer.find(f"{q(STUF, 'body')}/{q(STUF, 'code')}")
    return None if el is None else el.text
