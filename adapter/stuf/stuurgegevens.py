"""StUF stuurgegevens: read them from any message, write the reply's own.

Reading is lenient on purpose: a Fo03 for an invalid message should still be addressed to its
zender, so we take what is there and leave validation to the schema.
"""

from __future__ import annotations

import itertools
import os
import threading
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from lxml import etree

from adapter.stuf.namespaces import STUF, q


@dataclass(frozen=True)
class Systeem:
    organisatie: str | None = None
    applicatie: str | None = None
    administratie: str | None = None
    gebruiker: str | None = None

    def key(self) -> str:
        """Stable text form (org/app/adm) used for duplicate detection and the message log."""
        return "/".join(x or "" for x in (self.organisatie, self.applicatie, self.administratie))


@dataclass(frozen=True)
class Stuurgegevens:
    berichtcode: str | None = None
    zender: Systeem = Systeem()
    ontvanger: Systeem = Systeem()
    referentienummer: str | None = None
    tijdstip_bericht: str | None = None
    cross_refnummer: str | None = None
    entiteittype: str | None = None
    functie: str | None = None


def _text(parent: etree._Element | None, local: str) -> str | None:
    if parent is None:
        return None
    el = parent.find(q(STUF, local))
    if el is None or el.text is None:
        return None
    return el.text.strip() or None


def _systeem(parent: etree._Element | None) -> Systeem:
    if parent is None:
        return Systeem()
    return Systeem(*(_text(parent, f) for f in ("organisatie", "applicatie", "administratie", "gebruiker")))


def find_stuurgegevens(message: etree._Element) -> etree._Element | None:
    """The message's ``stuurgegevens`` child, in whatever namespace its container uses."""
    for child in message:
        if isinstance(child.tag, str) and etree.QName(child).localname == "stuurgegevens":
            return child
    return None


def parse_stuurgegevens(message: etree._Element) -> Stuurgegevens:
    sg = find_stuurgegevens(message)
    if sg is None:
        return Stuurgegevens()
    return Stuurgegevens(
        berichtcode=_text(sg, "berichtcode"),
        zender=_systeem(sg.find(q(STUF, "zender"))),
        ontvanger=_systeem(sg.find(q(STUF, "ontvanger"))),
        referentienummer=_text(sg, "referentienummer"),
        tijdstip_bericht=_text(sg, "tijdstipBericht"),
        cross_refnummer=_text(sg, "crossRefnummer"),
        entiteittype=_text(sg, "entiteittype"),
        functie=_text(sg, "functie"),
    )


def tijdstip(now: datetime | None = None) -> str:
    """StUF tijdstipBericht yyyyMMddHHmmssSSS (17 digits)."""
    now = now or datetime.now(UTC)
    return now.strftime("%Y%m%d%H%M%S") + f"{now.microsecond // 1000:03d}"


_counter = itertools.count()
_counter_lock = threading.Lock()
_PROCESS_TAG = f"{os.getpid() % 100000:05d}"


def new_referentienummer(prefix: str = "LA") -> str:
    """Our own unique referentienummer (≤ 40 chars): time, process and a per-process counter."""
    with _counter_lock:
        n = next(_counter)
    return f"{prefix}{tijdstip()}{_PROCESS_TAG}{n % 10**8:08d}"


def reply_stuurgegevens(request: Stuurgegevens, berichtcode: str, own_system: Systeem) -> Stuurgegevens:
    """Reply rules of StUF 03.01: swap zender and ontvanger, own referentienummer and tijdstip,
    crossRefnummer = the request's referentienummer. Missing parts fall back so the reply stays valid.
    """
    zender = request.ontvanger if request.ontvanger.applicatie else own_system
    ontvanger = request.zender if request.zender.applicatie else Systeem(applicatie="ONBEKEND")
    return replace(
        Stuurgegevens(),
        berichtcode=berichtcode,
        zender=zender,
        ontvanger=ontvanger,
        referentienummer=new_referentienummer(),
        tijdstip_bericht=tijdstip(),
        cross_refnummer=(request.referentienummer or "onbekend")[:40],
    )


def _add(parent: etree._Element, local: str, value: str | None) -> None:
    if value is not None:
        etree.SubElement(parent, q(STUF, local)).text = value


def _systeem_el(parent: etree._Element, local: str, s: Systeem) -> None:
    el = etree.SubElement(parent, q(STUF, local))
    _add(el, "organisatie", s.organisatie)
    _add(el, "applicatie", s.applicatie)
    _add(el, "administratie", s.administratie)
    _add(el, "gebruiker", s.gebruiker)


def stuurgegevens_element(sg: Stuurgegevens, parent: etree._Element | None = None) -> etree._Element:
    """``StUF:stuurgegevens`` in the official element order."""
    el = (
        etree.SubElement(parent, q(STUF, "stuurgegevens"))
        if parent is not None
        else etree.Element(q(STUF, "stuurgegevens"), nsmap={"StUF": STUF})
    )
    _add(el, "berichtcode", sg.berichtcode)
    _systeem_el(el, "zender", sg.zender)
    _systeem_el(el, "ontvanger", sg.ontvanger)
    _add(el, "referentienummer", sg.referentienummer)
    _add(el, "tijdstipBericht", sg.tijdstip_bericht)
    _add(el, "crossRefnummer", sg.cross_refnummer)
    _add(el, "entiteittype", sg.entiteittype)
    _add(el, "functie", sg.functie)
    return el
