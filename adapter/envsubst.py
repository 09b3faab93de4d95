"""``${NAME}`` and ``${NAME:-default}`` in configuration values, read from the environment at load time.

Three rules keep secrets where they belong:

- A value that lands inside a URL's user information or query (``postgresql://adapter:${PW}@db/…``) is
  percent-encoded there, so a password with ``@``, ``/`` or ``%`` cannot change which host is reached.
- A command that does not use a section's secrets (``messages list``, ``mappings check`` offline) may load
  a file whose variables are unset: what is missing is recorded and only a command that needs those
  values refuses, naming key and variable (``Report.require``). The store's own variables are always needed.
- A development default (``${LOKET_ZGW_SECRET:-change-me}``) for a secret — a key named like a secret, or
  the user information of a URL — is refused with ``environment = "production"``.

Error texts name keys and variables, never values.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from adapter.errors import ConfigError

_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_SECRET_KEY = re.compile(r"(secret|password|passwd|token|private_key|key_password|credentials?)$", re.I)
#: Sections a read-only command never uses: their unset variables are recorded instead of refused.
_DEFERRABLE = ("targets", "loket", "werkmap", "server")


@dataclass
class Report:
    """What expansion noticed: unset variables left for later, development defaults used for secrets."""

    source: str = "<defaults>"
    unset: list[tuple[str, str]] = field(default_factory=list)  # (key path, variable)
    defaulted_secrets: list[tuple[str, str]] = field(default_factory=list)

    def require(self, production: bool) -> None:
        """Refuse (one line) when a variable is unset, or a secret has its development default in production."""
        if self.unset:
            path, name = self.unset[0]
            raise ConfigError(f"{self.source}: {path}: environment variable {name} is not set")
        if production and self.defaulted_secrets:
            path, name = self.defaulted_secrets[0]
            raise ConfigError(
                f"{self.source}: {path}: {name} is not set, and its development default may not be used with "
                'environment = "production"'
            )


Span = tuple[int, int]


def _url_parts(template: str) -> tuple[Span | None, Span | None]:
    """Where in a URL template the user information and the query are: values there are percent-encoded."""
    flat = _REF.sub(lambda m: "x" * len(m.group(0)), template)  # defaults may hold ":", "@", "/"
    scheme = re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", flat)
    if not scheme:
        return None, None
    start = scheme.end()
    end_authority = min([i for i in (flat.find(c, start) for c in "/?#") if i >= 0], default=len(flat))
    at = flat.rfind("@", start, end_authority)
    userinfo = (start, at) if at >= 0 else None
    q = flat.find("?", start)
    query = None
    if q >= 0:
        fragment = flat.find("#", q)
        query = (q, fragment if fragment >= 0 else len(flat))
    return userinfo, query


def expand(data: Any, source: str, *, strict: bool = True) -> tuple[Any, Report]:
    """``data`` with every reference replaced. ``strict``: an unset variable without default is an error at
    once; otherwise (for read-only commands) one outside the store is recorded and replaced by a marker."""
    report = Report(source)

    def walk(value: Any, path: str) -> Any:
        if isinstance(value, dict):
            return {k: walk(v, f"{path}.{k}" if path else k) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v, f"{path}[{i}]") for i, v in enumerate(value)]
        if isinstance(value, str) and "${" in value:
            return substitute(value, path)
        return value

    def substitute(template: str, path: str) -> str:
        userinfo, query = _url_parts(template)
        key = path.rsplit(".", 1)[-1]

        def repl(m: re.Match[str]) -> str:
            name, default = m.group(1), m.group(2)
            in_userinfo = userinfo is not None and userinfo[0] <= m.start() < userinfo[1]
            in_query = query is not None and query[0] <= m.start() < query[1]
            if name in os.environ:
                got = os.environ[name]
            elif default is not None:
                got = default
                if _SECRET_KEY.search(key) or in_userinfo:
                    report.defaulted_secrets.append((path, name))
            elif strict or not path.startswith(_DEFERRABLE):
                raise ConfigError(f"{source}: {path}: environment variable {name} is not set")
            else:
                report.unset.append((path, name))
                return f"unset-{name}"  # never sent anywhere: commands that send call Report.require first
            return quote(got, safe="") if in_userinfo or in_query else got

        return _REF.sub(repl, template)

    return walk(data, ""), report


def redact_url(url: str) -> str:
    """``url`` fit for an error text or a log line: a password and query values replaced by ``***``."""
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
        if "@" in netloc:
            userinfo, host = netloc.rsplit("@", 1)
            user = userinfo.split(":", 1)[0]
            netloc = f"{user}:***@{host}" if ":" in userinfo else f"{user}@{host}"
        query = "&".join(f"{p.split('=', 1)[0]}=***" if "=" in p else p for p in parts.query.split("&") if p)
        if "://" not in url:
            return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
        return (
            f"{parts.scheme}://{netloc}{parts.path}"
            + (f"?{query}" if query else "")
            + (f"#{parts.fragment}" if parts.fragment else "")
        )
    except ValueError:
        return "<not a URL>"
