"""Remote file names in a postbus: ``<aanvraagnummer>_<bestandsnaam>``, refused when odd.

A name is only ever used to *match* a bijlage and to address the remote file; nothing is written under
it locally (the file store names files by sha256). Still, a name with a path separator, a ``..``, a
leading dot, control characters or no aanvraagnummer is refused: it is not what the loket sends, and the
operator should see it rather than have it guessed at.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

_AANVRAAGNUMMER = re.compile(r"^[0-9A-Za-z][0-9A-Za-z-]{0,63}$")
MAX_NAME = 255


@dataclass(frozen=True)
class PostbusName:
    aanvraagnummer: str
    bestandsnaam: str  # the part after the first underscore


def parse_name(name: str) -> PostbusName:
    """The aanvraagnummer and bestandsnaam of a remote file name; ``ValueError`` saying why it is refused."""
    if not name or len(name.encode("utf-8", "surrogateescape")) > MAX_NAME:
        raise ValueError("empty or longer than 255 bytes")
    if "/" in name or "\\" in name:
        raise ValueError("contains a path separator")
    if name.startswith(".") or ".." in name:
        raise ValueError("starts with a dot or contains '..'")
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Zl", "Zp") for ch in name):
        raise ValueError("contains control or invisible characters")
    if name != name.strip():
        raise ValueError("leading or trailing white space")
    nummer, sep, rest = name.partition("_")
    if not sep or not rest:
        raise ValueError("not <aanvraagnummer>_<bestandsnaam>")
    if not _AANVRAAGNUMMER.match(nummer):
        raise ValueError("the part before '_' is not an aanvraagnummer")
    return PostbusName(nummer, rest)


def candidate_names(aanvraagnummer: str, bestandsnaam: str) -> tuple[str, ...]:
    """The remote names a bijlage's file may carry: ``<aanvraagnummer>_<bestandsnaam>``, and the bestandsnaam
    itself when the loket already put the aanvraagnummer in front of it (as in the contract's example)."""
    names = [f"{aanvraagnummer}_{bestandsnaam}"]
    if bestandsnaam.startswith(f"{aanvraagnummer}_"):
        names.append(bestandsnaam)
    return tuple(names)


def safe_for_log(name: str) -> str:
    """A remote name as it may appear in logs and error texts: printable, at most 120 characters."""
    shown = "".join(ch if ch.isprintable() else "?" for ch in name)
    return shown if len(shown) <= 120 else shown[:117] + "…"
