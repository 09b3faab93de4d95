"""What the console shows of a message: pretty-printed, with personal data masked unless a beheerder unmasked it.

Masking works on three levels, so that a value missed by one is caught by another: every element whose name
says it holds personal data (``adapter.logs.PERSONAL_FIELDS``: BSN, names, contact details, street and postcode)
has its text replaced; each value so found is masked wherever else it appears in the document (a name quoted in
an omschrijving); and every BSN-shaped number (eleven-test), e-mail address and telephone number is masked in
all remaining text. A body that is not XML at all (a rejected message) gets the last level only.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import asdict, is_dataclass
from typing import Any

from lxml import etree

from adapter.logs import PERSONAL_FIELDS, redact
from adapter.xmlsafe import Limits, XmlRejected, parse

MASK = "***"
#: Text nodes longer than this (base64 bijlage content) are cut in the page; the download has them whole.
LONG_TEXT = 2000
_PERSONAL = {f.lower() for f in PERSONAL_FIELDS}


def _is_personal(element: etree._Element) -> bool:
    return isinstance(element.tag, str) and etree.QName(element).localname.lower() in _PERSONAL


def mask_values(text: str, values: Collection[str]) -> str:
    """``text`` with each of ``values`` (longest first, so a name inside a longer one is not left half) and every
    BSN, e-mail address and telephone number masked."""
    for value in sorted(values, key=len, reverse=True):
        text = text.replace(value, MASK)
    return redact(text)


def _shorten(root: etree._Element) -> None:
    for el in root.iter():
        if isinstance(el.tag, str) and el.text and len(el.text) > LONG_TEXT:
            el.text = f"[{len(el.text):,} characters, e.g. base64 content: in the download]"


def _mask_tree(root: etree._Element) -> set[str]:
    """Mask the text of every personal element in place; returns the values masked (those of 4 characters or
    more: a huisletter or "ja" would garble the rest if masked everywhere)."""
    found: set[str] = set()
    for el in root.iter():
        if _is_personal(el) and el.text and el.text.strip():
            found.add(el.text.strip())
            el.text = MASK
    return {v for v in found if len(v) >= 4}


def show_xml(body: bytes, *, masked: bool, limits: Limits) -> tuple[str, bool]:
    """(text to show, whether it is XML): pretty-printed; masked when ``masked``; long text nodes cut."""
    try:
        root = parse(body, limits)
    except XmlRejected:
        text = body.decode("utf-8", "replace")
        return (redact(text) if masked else text), False
    found = _mask_tree(root) if masked else set()
    _shorten(root)
    text = _pretty(root)
    return (mask_values(text, found) if masked else text), True


def masked_download(body: bytes, limits: Limits) -> bytes:
    """The whole document for an operator's download: pretty-printed, personal data masked, nothing cut."""
    try:
        root = parse(body, limits)
    except XmlRejected:
        return redact(body.decode("utf-8", "replace")).encode("utf-8")
    found = _mask_tree(root)
    return mask_values(_pretty(root), found).encode("utf-8")


def personal_values_in_xml(body: bytes, limits: Limits) -> set[str]:
    """The values of a message's personal elements (4 characters or more), to mask wherever else they turn up:
    a name or street the mapping copied into a zaak's omschrijving, shown by a ketensimulatie report. (For a
    model object, a parsed ``Verzoek``: ``adapter.logs.personal_values``.)"""
    try:
        return _mask_tree(parse(body, limits))
    except XmlRejected:
        return set()


def _pretty(root: etree._Element) -> str:
    for el in root.iter():  # drop the original indentation, so pretty_print lays it out afresh
        if isinstance(el.tag, str) and len(el) and el.text and not el.text.strip():
            el.text = None
        if el.tail and not el.tail.strip():
            el.tail = None
    return etree.tostring(root, pretty_print=True, encoding="unicode")


def model_view(obj: Any, *, masked: bool) -> Any:
    """A model object (``adapter.model.Verzoek``) as plain data for the page: bytes (the message as received,
    a bijlage's inhoud) as their size only, they are shown elsewhere; personal fields masked when ``masked``."""
    data = asdict(obj) if is_dataclass(obj) and not isinstance(obj, type) else obj
    return _mask_fields(data) if masked else _plain(data)


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return f"<{len(value):,} bytes>"
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _mask_fields(value: Any, key: str = "") -> Any:
    if key.lower() in _PERSONAL and value not in (None, ""):
        return MASK
    if isinstance(value, dict):
        return {k: _mask_fields(v, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_mask_fields(v, key) for v in value]
    if isinstance(value, str):
        return redact(value)
    return _plain(value)


_WORD = re.compile(r"[A-Za-z_]+")


def masked_field(name: str, value: str) -> str:
    """A value a report shows under a field's name (``checkpoint verzoek: field initiatiefnemer.bsn``,
    ``json rollen[*].betrokkeneIdentificatie.geslachtsnaam``): wholly masked when that field holds personal data,
    else with every BSN, e-mail address and telephone number in it masked."""
    words = _WORD.findall(name)
    key = words[-1].lower() if words else ""
    if value not in ("", "None", "<absent>", "'<absent>'", "''") and (key in _PERSONAL or key.endswith("bsn")):
        return MASK
    return redact(value)
