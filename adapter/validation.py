"""``loket-adapter validate``: say which schema a file is checked against and what is wrong with it."""

from __future__ import annotations

from pathlib import Path

from lxml import etree

from adapter.loket import lvo
from adapter.schemas import SchemaError, SchemaInvalid, SchemaSet, UnknownNamespace
from adapter.stuf.namespaces import SOAP11_ENV, q
from adapter.xmlsafe import Limits, XmlRejected, parse


def message_of(root: etree._Element) -> etree._Element:
    """The element to validate: a SOAP Body's child, or the document element itself."""
    if root.tag == q(SOAP11_ENV, "Envelope"):
        body = root.find(q(SOAP11_ENV, "Body"))
        children = [c for c in body if isinstance(c.tag, str)] if body is not None else []
        if len(children) != 1:
            raise XmlRejected("SOAP Body must hold exactly one element", root.sourceline)
        return children[0]
    return root


def validate_file(path: Path, schemas: SchemaSet | None = None) -> tuple[bool, list[str]]:
    """Return (valid, lines to print)."""
    schemas = schemas or SchemaSet()
    try:
        el = message_of(parse(path.read_bytes(), Limits(max_bytes=2**31)))
    except XmlRejected as exc:
        return False, [f"{path}: {exc}"]
    except OSError as exc:
        return False, [f"{path}: cannot read: {exc.strerror or exc}"]
    name = etree.QName(el)
    try:
        schema = schemas.validate(el)
        # The server rejects these with StUF055 too (adapter.inbound.stuf_lvo), so we must not say "valid".
        rules = lvo.content_rules(el)
        if rules:
            raise SchemaInvalid(schema, [SchemaError(*p) for p in rules])
    except UnknownNamespace as exc:
        return False, [f"{path}: {name.localname}: {exc}"]
    except SchemaInvalid as exc:
        lines = [f"{path}: {name.localname} is not valid against {exc.schema} ({len(exc.errors)} errors)"]
        lines += [f"{path}:{e.line or '?'}: {e.message}" for e in exc.errors[:20]]
        return False, lines
    return True, [f"{path}: {name.localname} is valid against {schema}"]
