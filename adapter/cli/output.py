"""How commands print: tables through rich, JSON for scripts.

Cells are rich ``Text``, never markup: a referentienummer or an error text comes from outside and may hold
``[bold]``-like brackets, which must print as they are. Piped output is never cut to a terminal's width, so
columns stay split by whitespace for ``awk`` and ``cut``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, is_dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import click

from adapter.text import as_utc

if TYPE_CHECKING:
    from rich.console import Console


def _console() -> Console:
    from rich.console import Console  # here: most commands print no table, and rich takes a while to import

    tty = sys.stdout.isatty()
    # not a terminal: as wide as the widest line needs (rich would assume 80 columns and fold)
    return Console(width=None if tty else 100_000, highlight=False, markup=False, emoji=False, soft_wrap=not tty)


def table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    """Columns separated by two spaces, a header line, no borders; None prints as ``-``."""
    from rich.table import Table
    from rich.text import Text

    t = Table(box=None, show_edge=False, pad_edge=False, header_style="bold", padding=(0, 1))
    for h in headers:
        t.add_column(h, no_wrap=True, overflow="ignore")
    for row in rows:
        t.add_row(*(Text("-" if v is None else str(v)) for v in row))
    _console().print(t)


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return as_utc(value).isoformat()
    if isinstance(value, bytes):
        return None  # bodies are never part of JSON output (``messages show --raw`` prints them)
    if is_dataclass(value) and not isinstance(value, type):
        return _plain(asdict(value))
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def emit_json(value: Any) -> None:
    """One JSON document on stdout: timestamps as ISO 8601 in UTC, dataclasses as objects."""
    click.echo(json.dumps(_plain(value), ensure_ascii=False, indent=2))


def progress(items: Sequence[int], label: str) -> Iterator[int]:
    """``items`` one by one, with a progress bar on stderr when it is a terminal and there are more than five
    (piped or short, nothing: a script's stderr gets no control characters)."""
    if len(items) <= 5 or not sys.stderr.isatty():
        yield from items
        return
    from rich.console import Console
    from rich.progress import track

    yield from track(items, description=label, console=Console(stderr=True), transient=True)
