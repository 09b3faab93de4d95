"""The official ZDS message schemas, compiled offline from a read-only reference folder.

They stay outside the project (``shared/reference/zds-1.2``, ``…/zds-1.1``) and are only read: the
fake zaaksysteem validates every request with them, and so do the conformance tests.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lxml import etree

from adapter.targets.stuf_zkn.zds import BG, STUF, ZDS12, ZKN

XS = "http://www.w3.org/2001/XMLSchema"

#: ZDS 1.1 spreads the StUF and BG namespaces over several files that import each other from different
#: places; libxml2 honours only the first schemaLocation per namespace. So each namespace gets one
#: generated umbrella document that includes all its parts, and a top document imports the umbrellas.
_UMBRELLAS_11 = {
    "zds11-umbrella-stuf.xsd": (
        STUF,
        (
            "0301/stuf0301mtom.xsd",
            "bg0310/entiteiten/bg0310_stuf_simpleTypes.xsd",
            "zkn0310/entiteiten/zkn0310_stuf_simpleTypes.xsd",
            "zkn0310/mutatie/zkn0310_msg_stuf_mutatie.xsd",
            "zkn0310/vraagAntwoord/zkn0310_msg_stuf_vraagAntwoord.xsd",
            "zkn0310/zs-dms/zkn0310_msg_stuf_zs-dms.xsd",
        ),
    ),
    "zds11-umbrella-bg.xsd": (
        BG,
        ("zkn0310/entiteiten/zkn0310_bg0310_ent.xsd", "zkn0310/zs-dms/zkn0310_bg0310_simpleTypes_zs-dms.xsd"),
    ),
}
_TOP_11 = (
    "zkn0310/mutatie/zkn0310_msg_mutatie.xsd",
    "zkn0310/vraagAntwoord/zkn0310_msg_vraagAntwoord.xsd",
    "zkn0310/zs-dms/zkn0310_msg_zs-dms.xsd",
)


def _schema_doc(namespace: str, includes: tuple[str, ...], imports: tuple[tuple[str, str], ...] = ()) -> bytes:
    root = etree.Element(
        f"{{{XS}}}schema",
        nsmap={"xs": XS},
        targetNamespace=namespace,
        elementFormDefault="qualified",
        attributeFormDefault="unqualified",
    )
    for ns, location in imports:
        etree.SubElement(root, f"{{{XS}}}import", namespace=ns, schemaLocation=location)
    for location in includes:
        etree.SubElement(root, f"{{{XS}}}include", schemaLocation=location)
    return etree.tostring(root)


class _UmbrellaResolver(etree.Resolver):
    def __init__(self, base: str) -> None:
        super().__init__()
        self.base = base

    def resolve(self, url: str, pubid: str | None, context: Any) -> Any:
        name = os.path.basename(url)
        if name in _UMBRELLAS_11:
            ns, parts = _UMBRELLAS_11[name]
            return self.resolve_string(_schema_doc(ns, parts), context, base_url=self.base + name)
        return None


def load_schema(dialect: str, schema_dir: str | Path) -> etree.XMLSchema:
    """The official message schemas of ``dialect``; ``schema_dir`` is that dialect's folder, read-only."""
    base = os.path.abspath(schema_dir) + os.sep
    parser = etree.XMLParser(no_network=True)
    if dialect == ZDS12:
        return etree.XMLSchema(etree.parse(base + "zds0120_msg_zs-dms_resolved2017.xsd", parser))
    parser.resolvers.add(_UmbrellaResolver(base))
    top = _schema_doc(ZKN, _TOP_11, ((STUF, "zds11-umbrella-stuf.xsd"), (BG, "zds11-umbrella-bg.xsd")))
    return etree.XMLSchema(etree.fromstring(top, parser, base_url=base + "zds11-top.xsd"))


# -- the official WSDLs: which SOAPAction belongs to which message ---------------------------------------

WSDL = "http://schemas.xmlsoap.org/wsdl/"
WSDL_SOAP = "http://schemas.xmlsoap.org/wsdl/soap/"


@dataclass(frozen=True)
class WsdlOperation:
    """One operation of a SOAP binding in an official WSDL."""

    name: str  # e.g. creeerZaak_ZakLk01 (ZDS 1.2), creeerZaak_Lk01 (ZDS 1.1)
    soap_action: str
    port_type: str  # local name: OntvangAsynchroon, VrijeBerichten, BeantwoordVraag
    input: str | None  # Clark name of the body element it carries
    output: str | None  # Clark name of the answer element (None: a generic StUF answer or none)

    @property
    def operation(self) -> str:
        """The dialect-neutral name (``creeerZaak``): the WSDL name without its berichtcode suffix."""
        return self.name.rsplit("_", 1)[0]


def _clark(context: etree._Element, prefixed: str | None) -> str | None:
    if not prefixed:
        return None
    prefix, _, local = prefixed.rpartition(":")
    ns = context.nsmap.get(prefix or None)
    return f"{{{ns}}}{local}" if ns else local


def wsdl_operations(folder: str | Path) -> list[WsdlOperation]:
    """Every bound operation of every ``*.wsdl`` below ``folder`` (read-only, no network).

    The WSDLs are the contract for SOAPActions: ZDS 1.1 binds several operations to one body element
    (``zakLk01`` for creeerZaak, actualiseerZaakstatus and updateZaak), so only the pair (SOAPAction,
    element) identifies what a request asks for.
    """
    parser = etree.XMLParser(no_network=True, resolve_entities=False)
    roots = [etree.parse(str(p), parser).getroot() for p in sorted(Path(folder).rglob("*.wsdl"))]
    messages: dict[str, str | None] = {}
    for root in roots:
        tns = root.get("targetNamespace")
        for m in root.iterfind(f"{{{WSDL}}}message"):
            part = m.find(f"{{{WSDL}}}part")
            messages[f"{{{tns}}}{m.get('name')}"] = _clark(part, part.get("element")) if part is not None else None
    found: list[WsdlOperation] = []
    for root in roots:
        tns = root.get("targetNamespace")
        port_types = {f"{{{tns}}}{pt.get('name')}": pt for pt in root.iterfind(f"{{{WSDL}}}portType")}
        for binding in root.iterfind(f"{{{WSDL}}}binding"):
            pt_name = _clark(binding, binding.get("type")) or ""
            pt = port_types.get(pt_name)
            for op in binding.iterfind(f"{{{WSDL}}}operation"):
                soap_op = op.find(f"{{{WSDL_SOAP}}}operation")
                if soap_op is None or pt is None:
                    continue
                abstract = next(
                    (o for o in pt.iterfind(f"{{{WSDL}}}operation") if o.get("name") == op.get("name")), None
                )
                io: dict[str, str | None] = {"input": None, "output": None}
                for kind in io:
                    el = abstract.find(f"{{{WSDL}}}{kind}") if abstract is not None else None
                    if el is not None:
                        io[kind] = messages.get(_clark(el, el.get("message")) or "")
                found.append(
                    WsdlOperation(
                        op.get("name", ""),
                        soap_op.get("soapAction", ""),
                        etree.QName(pt_name).localname,
                        io["input"],
                        io["output"],
                    )
                )
    return found
