"""Reading StUF answers leniently: a SOAP 1.1/1.2 Fault and/or a bare Fo01/Fo02/Fo03 anywhere in the body.

Peers differ (a municipal service answered ``faultcode`` ``s:StUF058``, open-forms#5818), so names are
matched on their local part, in any namespace.
"""

from __future__ import annotations

from typing import Any

from lxml import etree

FOUT_BERICHTEN = ("Fo01Bericht", "Fo02Bericht", "Fo03Bericht")


def local_name(el: Any) -> str:
    return etree.QName(el).localname if isinstance(el.tag, str) else ""


def child_text(el: etree._Element | None, *path: str) -> str | None:
    """Text along ``path`` of local names (any namespace), whitespace collapsed; None if absent or empty."""
    for name in path:
        if el is None:
            return None
        el = next((c for c in el if local_name(c) == name), None)
    if el is None or el.text is None:
        return None
    return " ".join(el.text.split()) or None


def fault_of(root: etree._Element) -> tuple[str | None, str, str | None] | None:
    """(StUF code, omschrijving, details) of a SOAP Fault or bare Fo0x in an answer; None when there is none."""
    fault = next((e for e in root.iter() if local_name(e) == "Fault"), None)
    fo = next((e for e in root.iter() if local_name(e) in FOUT_BERICHTEN), None)
    if fault is None and fo is None:
        return None
    code = child_text(fo, "body", "code")
    omschrijving = child_text(fo, "body", "omschrijving")
    details = child_text(fo, "body", "details")
    if fault is not None:
        faultcode = child_text(fault, "faultcode") or child_text(fault, "Code", "Value") or ""
        local_code = faultcode.rpartition(":")[2]
        if code is None and local_code.upper().startswith("STUF"):
            code = local_code
        reason = child_text(fault, "faultstring") or child_text(fault, "Reason", "Text")
        omschrijving = omschrijving or reason or faultcode or "SOAP Fault"
    return code, omschrijving or "", details


def blames_client(root: etree._Element) -> bool:
    """Whether a fault says the request itself is wrong (Fo03 ``plek`` client, SOAP ``Client``/``Sender``):
    then sending it again gives the same answer. A server-side or unplaced fault may pass."""
    fo = next((e for e in root.iter() if local_name(e) in FOUT_BERICHTEN), None)
    plek = (child_text(fo, "body", "plek") or "").lower()
    if plek:
        return plek == "client"
    fault = next((e for e in root.iter() if local_name(e) == "Fault"), None)
    faultcode = child_text(fault, "faultcode") or child_text(fault, "Code", "Value") or ""
    return faultcode.rpartition(":")[2] in ("Client", "Sender")
