"""Hardened XML parsing for everything that comes from outside.

No DTDs at all (so no entity expansion, billion laughs or XXE), no network, no processing
instructions, a size limit checked before parsing, an element count limit checked while parsing and a
depth limit checked after. Every rejection says where (line) and what, in one line.

Bytes alone do not bound memory: 40 MiB of ``<a/>`` is ten million elements, about 2 GB of tree. Every
element starts with ``<``, so a body with no more ``<`` than ``max_elements`` is parsed in one go; any other
body is fed to a pull parser that counts elements as they are built and stops at the limit, so the tree
never grows past it.

libxml2 runs with ``huge_tree``: without it a single text node over 10 MB (an inline base64 bijlage of
~7.5 MB) is "not well-formed" however large ``max_bytes`` is. The limits that option lifts are ours to
keep: the body size (checked before parsing), the depth (checked after; libxml2 still stops at 2048
levels), and entities, which never get that far because any DOCTYPE is refused, before the parse when
it stands in the prolog, after it otherwise.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass

from lxml import etree

from adapter.errors import InputError


class XmlRejected(InputError):
    """The input is not acceptable XML; ``str()`` is a one-line reason with the line number."""

    def __init__(self, reason: str, line: int | None = None) -> None:
        self.reason = reason
        self.line = line
        super().__init__(f"line {line}: {reason}" if line else reason)


@dataclass(frozen=True)
class Limits:
    max_bytes: int = 50 * 1024 * 1024
    max_depth: int = 64
    max_elements: int = 200_000


_OPTIONS = {
    "resolve_entities": False,
    "no_network": True,
    "load_dtd": False,
    "dtd_validation": False,
    "huge_tree": True,  # text nodes up to max_bytes (see the module doc); entities stay off
    "remove_pis": True,
    "remove_comments": True,
    "collect_ids": False,
}
_FEED = 1 << 16


_local = threading.local()
# A DOCTYPE can only stand in the prolog: before the root element, after declaration/comments/PIs.
_PROLOG_DOCTYPE = re.compile(rb"^(?:\xef\xbb\xbf)?\s*(?:<\?.*?\?>\s*|<!--.*?-->\s*)*<!DOCTYPE", re.S)


def _parser() -> etree.XMLParser:
    # lxml parsers keep per-parse state: one per thread.
    p = getattr(_local, "parser", None)
    if p is None:
        p = etree.XMLParser(**_OPTIONS)
        _local.parser = p
    return p


def check_depth(root: etree._Element, max_depth: int) -> None:
    depth = 0
    for event, el in etree.iterwalk(root, events=("start", "end")):
        if event == "start":
            depth += 1
            if depth > max_depth:
                raise XmlRejected(f"element nesting deeper than {max_depth} levels", el.sourceline)
        else:
            depth -= 1


def _counted(data: bytes, max_elements: int) -> etree._Element:
    """Parse in chunks, counting elements as they are built; stop as soon as there are too many."""
    parser = etree.XMLPullParser(events=("start",), **_OPTIONS)
    count = 0
    view = memoryview(data)
    for at in range(0, len(data), _FEED):
        parser.feed(view[at : at + _FEED].tobytes())
        for _event, el in parser.read_events():
            count += 1
            if count > max_elements:
                raise XmlRejected(f"more than {max_elements} elements", el.sourceline)
    root: etree._Element = parser.close()
    return root


def parse(data: bytes, limits: Limits = Limits()) -> etree._Element:
    """Parse untrusted bytes into an element tree or raise XmlRejected."""
    if len(data) > limits.max_bytes:
        raise XmlRejected(f"body of {len(data)} bytes exceeds the limit of {limits.max_bytes} bytes")
    if not data.strip():
        raise XmlRejected("empty body")
    if b"<!DOCTYPE" in data and _PROLOG_DOCTYPE.match(data):  # the whole prolog, however long
        # Refused before libxml2 sees it: no entity is ever declared, let alone expanded.
        raise XmlRejected("DOCTYPE and entity declarations are not allowed", 1)
    try:
        if data.count(b"<") <= limits.max_elements:  # every element starts with "<": cannot exceed
            root = etree.fromstring(data, _parser())
        else:
            root = _counted(data, limits.max_elements)
    except etree.XMLSyntaxError as exc:
        line = exc.lineno if exc.lineno and exc.lineno > 0 else None
        # the first line only: libxml2 quotes content on the next (an unfinished CDATA section's first 50 chars)
        raise XmlRejected(f"not well-formed XML: {exc.msg.splitlines()[0] if exc.msg else exc}", line) from None
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        raise XmlRejected("DOCTYPE and entity declarations are not allowed", 1)
    check_depth(root, limits.max_depth)
    return root
