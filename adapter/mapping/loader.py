"""Load ``mappings/*.toml``; every problem names file, key and line.

tomllib gives no positions, so a key path from the validator is located in the text by walking the
table headers and ``key =`` lines; good enough to point a person at the right line.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from lxml import etree
from pydantic import ValidationError

from adapter.errors import MappingError
from adapter.loket.lvo import LVO
from adapter.mapping.schema import MappingFile

#: Prefixes usable in a mapping's XPath expressions.
XPATH_NS = {
    "L": LVO,
    "StUF": "http://www.egem.nl/StUF/StUF0301",
    "vz": "http://www.omgevingswet.nl/koppelvlak/stam-v4/verzoek",
}


@dataclass(frozen=True)
class Problem:
    file: str
    key: str
    line: int | None
    message: str
    severity: str = "error"  # error | warning

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.key}: {self.message}" if self.key else f"{where}: {self.message}"


class MappingFilesInvalid(MappingError):
    """The mapping files do not load; ``problems`` holds every one found (file, key, line)."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        super().__init__(f"{problems[0]}{more}")


@dataclass(frozen=True)
class LoadedMapping:
    path: Path
    text: str
    mapping: MappingFile
    xpaths: dict[str, etree.XPath]

    def line_of(self, *loc: str | int) -> int | None:
        return locate(self.text, loc)


_HEADER = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")


def locate(text: str, loc: tuple[str | int, ...]) -> int | None:
    """Best-effort line number (1-based) of a key path such as ("zaaktypen", 1, "zaaktype").

    A key counts only inside the table the path is in, so ``values.informatieobjecttype`` is never
    reported on the ``informatieobjecttype`` key of ``[defaults]``."""
    lines = text.splitlines()
    tables: list[str] = []  # the table each line belongs to
    current = ""
    for line in lines:
        if m := _HEADER.match(line):
            current = m.group(1).replace(" ", "").replace('"', "")
        tables.append(current)
    start, section = 0, ""
    found: int | None = None
    for part in loc:
        if isinstance(part, int):
            hdr = re.compile(rf"^\s*\[\[\s*{re.escape(section)}\s*\]\]")
            hits = [i for i, line in enumerate(lines) if hdr.match(line)]
            if part < len(hits):
                start = found = hits[part]
            continue
        name = f"{section}.{part}" if section else part
        header = re.compile(rf"^\s*\[\[?\s*{re.escape(name)}\s*\]\]?\s*(#.*)?$")
        key = re.compile(rf"^\s*\"?{re.escape(part)}\"?\s*=")
        for i in range(start, len(lines)):
            if header.match(lines[i]):
                start = found = i
                section = name
                break
            if key.match(lines[i]) and tables[i] == section:
                start = found = i
                break
        else:
            section = name
    return None if found is None else found + 1


def _compile_xpaths(path: Path, text: str, m: MappingFile) -> tuple[dict[str, etree.XPath], list[Problem]]:
    compiled, problems = {}, []
    for name, expr in m.xpath.items():
        try:
            compiled[name] = etree.XPath(expr, namespaces=XPATH_NS)
        except etree.XPathSyntaxError as exc:
            problems.append(Problem(str(path), f"xpath.{name}", locate(text, ("xpath", name)), f"invalid XPath: {exc}"))
    return compiled, problems


def load_file(path: Path) -> tuple[LoadedMapping | None, list[Problem]]:
    text = path.read_text(encoding="utf-8")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        m = re.search(r"line (\d+)", str(exc))
        return None, [Problem(str(path), "", int(m.group(1)) if m else None, f"not valid TOML: {exc}")]
    try:
        mapping = MappingFile.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = tuple(err["loc"])
            msg = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
            problems.append(Problem(str(path), ".".join(str(p) for p in loc), locate(text, loc), msg))
        return None, problems
    xpaths, problems = _compile_xpaths(path, text, mapping)
    return LoadedMapping(path, text, mapping, xpaths), problems


def load_dir(directory: Path) -> list[LoadedMapping]:
    """Load every ``*.toml`` in the directory; raise MappingError with all problems found."""
    if not directory.is_dir():
        raise MappingFilesInvalid([Problem(str(directory), "", None, "mapping directory does not exist")])
    loaded, problems = [], []
    for path in sorted(directory.glob("*.toml")):
        m, p = load_file(path)
        problems += p
        if m is not None:
            loaded.append(m)
    errors = [p for p in problems if p.severity == "error"]
    if errors:
        raise MappingFilesInvalid(errors)
    if not loaded:
        raise MappingFilesInvalid([Problem(str(directory), "", None, "no mapping files (*.toml)")])
    return loaded
