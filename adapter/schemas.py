"""Our XSDs, compiled once at start and looked up by the namespace of the element to validate.

lxml schema objects keep their error log on the object, so each thread gets its own compiled copy
(compiling is a few milliseconds, validating is the hot path).
"""

from __future__ import annotations

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


@dataclass(frozen=True)
class SchemaError:
    line: int | None
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}" if self.line else self.message


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
            errors = [SchemaError(e.line or None, e.message) for e in schema.error_log]
            raise SchemaInvalid(name, errors or [SchemaError(None, "invalid")])
        return name
