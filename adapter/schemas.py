"""Our XSDs, compiled once at start and looked up by the namespace of the element to validate.

lxml schema objects keep their error log on the object, so each thread gets its own compiled copy
(compiling is a few milliseconds, validating is the hot path).
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from pathlib import Path

from lxml import etree

from adapter.errors import InputError
from adapter.loket import lvo, stam
from adapter.paths import XSD_DIR
from adapter.stuf.namespaces import STUF

#: namespace of a root element -> schema file under ``xsd/``
SCHEMA_FILES: dict[str, str] = {
    lvo.LVO: lvo.XSD,
    STUF: "stuf0301/stuf0301.xsd",
    stam.VERZOEK: stam.XSD_VERZOEK,
    stam.VERZOEKNOTIFICATIE: stam.XSD_VERZOEKNOTIFICATIE,
}


#: libxml2 error types whose message names only elements and attributes, never the content of the message.
_STRUCTURE_ERRORS = frozenset(
    {
        "SCHEMAV_ELEMENT_CONTENT",  # not expected here / missing child element(s)
        "SCHEMAV_CVC_COMPLEX_TYPE_2_3",  # character content where only elements may stand
        "SCHEMAV_CVC_COMPLEX_TYPE_2_4",
        "SCHEMAV_CVC_COMPLEX_TYPE_3_2_1",  # attribute not allowed
        "SCHEMAV_CVC_COMPLEX_TYPE_3_2_2",
        "SCHEMAV_CVC_COMPLEX_TYPE_4",  # attribute required
        "SCHEMAV_CVC_TYPE_3_1_1",
        "SCHEMAV_CVC_TYPE_3_1_2",  # element content where a simple value belongs
        "SCHEMAV_CVC_ELT_1",  # no matching global declaration
    }
)
_CLARK = re.compile(r"\{[^}]*\}")
_PREFIX = re.compile(r"(?<=/)[A-Za-z_][\w.-]*:")
_ELEMENT_PREFIX = re.compile(r"^Element '[^']*'(?:, attribute '[^']*')?: ")
_FACET = re.compile(r"^\[facet '(\w+)'\]")
_FACET_PROBLEMS = {
    "pattern": "value does not have the expected form (pattern)",
    "enumeration": "value is not one of the allowed values",
    "length": "value has the wrong length",
    "minLength": "value is too short",
    "maxLength": "value is too long",
}
_OF_TYPE = re.compile(r"of the (?:atomic|list|union) type '(?:\{[^}']*\}|[\w.-]+:)?([\w.-]+)'\.?$")


@dataclass(frozen=True)
class SchemaError:
    """One schema error. ``message`` is libxml2's text, which quotes the offending value (a BSN, a name, an
    e-mail address): only ``loket-adapter validate`` shows it, to the operator holding the file. Everything
    else (``str()``, logs, stored error texts, the Fo03 and 400 answers) says line, element and problem."""

    line: int | None
    message: str
    #: Where, as libxml2 gives it (``/vz:verzoek/vz:initiatiefnemer/…``), and libxml2's error type name;
    #: both None for a content rule of ours (``lvo.content_rules``), whose message names no value.
    path: str | None = None
    kind: str | None = None

    def __str__(self) -> str:
        return self.without_values()

    @property
    def where(self) -> str:
        """The element path without prefixes (``verzoek/initiatiefnemer/natuurlijkPersoon/bsn``)."""
        return _PREFIX.sub("", self.path or "").lstrip("/")

    @property
    def element(self) -> str:
        """The element's own name (the last step of ``where``), for one short line."""
        return self.where.rsplit("/", 1)[-1]

    @property
    def problem(self) -> str:
        """What is wrong, never a value: libxml2 quotes the offending value in value errors, so only structure
        errors keep their text; value errors say which facet or type the value missed."""
        rest = _ELEMENT_PREFIX.sub("", self.message.strip())
        if self.kind is None and self.path is None:
            return self.message  # our own rule (no value in it), or our own fallback text
        if self.kind in _STRUCTURE_ERRORS:
            return _CLARK.sub("", rest)
        if m := _FACET.match(rest):
            return _FACET_PROBLEMS.get(m[1], f"value does not meet the schema's {m[1]} facet")
        if m := _OF_TYPE.search(rest):
            return f"value is not a valid {m[1]}"
        return "value not valid against the schema"

    def without_values(self) -> str:
        """One line naming line, element path and problem, never a value from the message."""
        where = self.where
        line = f"line {self.line}: " if self.line else ""
        return f"{line}{where + ': ' if where else ''}{self.problem}"


class SchemaInvalid(InputError):
    def __init__(self, schema: str, errors: list[SchemaError]) -> None:
        self.schema = schema
        self.errors = errors
        super().__init__(f"not valid against {schema}: {errors[0] if errors else 'invalid'}")


class UnknownNamespace(InputError):
    """The root element's namespace is none we have a schema for."""


def _compile(path: Path) -> etree.XMLSchema:
    parser = etree.XMLParser(no_network=True, resolve_entities=False)
    return etree.XMLSchema(etree.parse(str(path), parser))


class SchemaSet:
    """All our schemas; ``validate`` picks one by the element's namespace."""

    def __init__(self, xsd_dir: Path = XSD_DIR) -> None:
        self.xsd_dir = xsd_dir
        self._local = threading.local()
        # Compile once up front: a broken schema stops the start, not the first request.
        self._local.compiled = {ns: _compile(xsd_dir / f) for ns, f in SCHEMA_FILES.items()}

    def _schemas(self) -> dict[str, etree.XMLSchema]:
        compiled = getattr(self._local, "compiled", None)
        if compiled is None:
            compiled = {ns: _compile(self.xsd_dir / f) for ns, f in SCHEMA_FILES.items()}
            self._local.compiled = compiled
        return compiled

    def schema_name(self, el: etree._Element) -> str:
        ns = etree.QName(el).namespace or ""
        if ns not in SCHEMA_FILES:
            raise UnknownNamespace(f"no schema for namespace {ns or '(none)'!r}")
        return f"xsd/{SCHEMA_FILES[ns]}"

    def validate(self, el: etree._Element) -> str:
        """Validate ``el`` (a message element, not the envelope); return the schema name used."""
        name = self.schema_name(el)
        schema = self._schemas()[etree.QName(el).namespace or ""]
        if not schema.validate(el):
            errors = [SchemaError(e.line or None, e.message, e.path, e.type_name) for e in schema.error_log]
            raise SchemaInvalid(name, errors or [SchemaError(None, "invalid")])
        return name
