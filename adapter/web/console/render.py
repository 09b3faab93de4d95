"""The console's pages: a Jinja2 environment over this package's templates, escaping everything by default."""

from __future__ import annotations

import json
from datetime import datetime
from functools import cache
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from starlette.responses import HTMLResponse

from adapter.text import short, utc_text

#: Sent with every console page: no script or style from elsewhere, no framing, nothing cached (personal data).
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def cell(value: Any) -> str:
    """A table cell: times as UTC text, nothing as ``-``."""
    if value is None or value == "":
        return "-"
    if isinstance(value, datetime):
        return utc_text(value)
    return str(value)


def as_json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)


@cache
def environment() -> Environment:
    env = Environment(
        loader=PackageLoader("adapter.web.console", "templates"),
        autoescape=select_autoescape(["html"]),
        undefined=StrictUndefined,  # a misspelt name fails the test that renders it, not silently empty
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["utc"] = utc_text
    env.filters["short"] = short
    env.filters["cell"] = cell
    env.filters["json"] = as_json
    return env


def page(template: str, status: int = 200, headers: dict[str, str] | None = None, **context: Any) -> HTMLResponse:
    html = environment().get_template(template).render(**context)
    return HTMLResponse(html, status_code=status, headers={**SECURITY_HEADERS, **(headers or {})})
