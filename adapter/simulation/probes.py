"""What the ketensimulatie reads from a chain to check expectations: the zaak with everything around it (as
the fake ZGW holds it, or through the Zaken, Documenten and Catalogi APIs of a real zaaksysteem), paths into
that (a small JSONPath-like subset), and the adapter's own log events.

Kept apart from the runner so the runner stays about steps; everything here only reads.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import threading
from collections.abc import Callable, Iterator, MutableMapping
from contextlib import contextmanager
from datetime import date, timedelta
from typing import Any

import structlog

from adapter.logs import mask_personal_data

#: what a path that leads nowhere yields (shown as the actual value)
ABSENT = "<absent>"

# -- the zaak and what belongs to it ------------------------------------------------------------------------


def _with_inhoud(doc: dict[str, Any], data: bytes | None) -> dict[str, Any]:
    """A document as the API shows it, plus the sha256 (hex) and size of its content (None: no content)."""
    return {
        **doc,
        "inhoud_sha256": hashlib.sha256(data).hexdigest() if data is not None else None,
        "inhoud_size": len(data) if data is not None else None,
    }


def fake_zaak_view(fake: Any, zaak: dict[str, Any]) -> dict[str, Any]:
    """The zaak, its zaaktype (the version it got), documenten (with their content's sha256 and size), rollen,
    statussen and zaakobjecten, as the fake ZGW holds them."""
    url = zaak["url"]
    docs = {d["url"]: d for d in fake.documenten}
    documenten = []
    for zio in fake.zaakinformatieobjecten:
        if zio["zaak"] == url and zio["informatieobject"] in docs:
            doc = dict(docs[zio["informatieobject"]])
            documenten.append(_with_inhoud(doc, doc.pop("bytes", None)))

    def resolve(type_url: Any, kind: str) -> dict[str, Any] | None:
        with fake.store.lock:
            found = fake.store.resolve(type_url, kind)
            return dict(found) if found is not None else None

    return _with_type_names(
        {
            "zaak": zaak,
            "zaaktype": resolve(zaak.get("zaaktype"), "zaaktypen"),
            "documenten": documenten,
            "rollen": [r for r in fake.rollen if r["zaak"] == url],
            "statussen": [s for s in fake.statussen if s["zaak"] == url],
            "zaakobjecten": [o for o in fake.zaakobjecten if o["zaak"] == url],
        },
        resolve,
    )


def zgw_zaak_view(client: Any, zaak: dict[str, Any]) -> dict[str, Any]:
    """The same view read through a real zaaksysteem's ZGW APIs (``ZgwClient``); each document's content is
    downloaded to hash it."""
    url = zaak["url"]
    documenten = []
    for zio in client.find_all("zaken", "zaakinformatieobjecten", zaak=url):
        doc = client.get(zio["informatieobject"])
        data = client.download(doc["inhoud"]) if doc.get("inhoud") else None
        documenten.append(_with_inhoud(doc, data))
    types: dict[str, dict[str, Any]] = {}

    def resolve(type_url: Any, kind: str) -> dict[str, Any] | None:
        if not isinstance(type_url, str) or not type_url:
            return None
        if type_url not in types:
            types[type_url] = client.get(type_url)
        return types[type_url]

    return _with_type_names(
        {
            "zaak": zaak,
            "zaaktype": resolve(zaak.get("zaaktype"), "zaaktypen"),
            "documenten": documenten,
            "rollen": client.find_all("zaken", "rollen", zaak=url),
            "statussen": client.find_all("zaken", "statussen", zaak=url),
            "zaakobjecten": client.find_all("zaken", "zaakobjecten", zaak=url),
        },
        resolve,
    )


#: (list in the view, the field with a catalogus URL, the catalogus resource): each item gets that type's
#: omschrijving beside the URL, so a scenario names the type a mapping chose rather than a generated URL
_TYPED = (
    ("documenten", "informatieobjecttype", "informatieobjecttypen"),
    ("rollen", "roltype", "roltypen"),
    ("statussen", "statustype", "statustypen"),
)


def _with_type_names(view: dict[str, Any], resolve: Callable[[Any, str], dict[str, Any] | None]) -> dict[str, Any]:
    """Each document, rol and status with ``<type field>_omschrijving``: its type's omschrijving (None when the
    URL resolves to nothing)."""
    for items, type_field, kind in _TYPED:
        named = []
        for item in view[items]:
            found = resolve(item.get(type_field), kind)
            named.append({**item, f"{type_field}_omschrijving": found.get("omschrijving") if found else None})
        view[items] = named
    return view


def add_zaaktype_version(
    fake: Any, identificatie: str, omschrijving: str, begin: date, einde: date | None, concept: bool, close: bool
) -> None:
    """A new version of a zaaktype in the fake's catalogus (with the default roltypen, statustypen, …).
    ``close``: the published version valid the day before ``begin`` ends that day, as a catalogus tool does
    when a new version is published; without it two versions may overlap (a catalogus mistake)."""
    from adapter.simulation.fake_zgw import catalogi

    day_before = (begin - timedelta(days=1)).isoformat()
    with fake.store.lock:
        if close and not concept:
            for zt in fake.store.all("zaaktypen"):
                end = zt.get("eindeGeldigheid")
                if (
                    zt.get("identificatie") == identificatie
                    and not zt.get("concept")
                    and zt["beginGeldigheid"] <= day_before
                    and (not end or day_before <= end)
                ):
                    zt["eindeGeldigheid"] = day_before
        catalogi.add_zaaktype(
            fake.store,
            {
                "identificatie": identificatie,
                "omschrijving": omschrijving,
                "beginGeldigheid": begin.isoformat(),
                "eindeGeldigheid": einde.isoformat() if einde else None,
                "versiedatum": begin.isoformat(),
                "concept": concept,
            },
        )


# -- paths --------------------------------------------------------------------------------------------------

_TOKEN = re.compile(r"\.?([^.\[\]]+)|\[([^\]]*)\]")


def _tokens(path: str) -> list[tuple[str, str]]:
    """``documenten[bestandsnaam=a.pdf].inhoud_sha256`` → [("key", "documenten"), ("select", "bestandsnaam=a.pdf"),
    ("key", "inhoud_sha256")]."""
    out, pos = [], 0
    while pos < len(path):
        m = _TOKEN.match(path, pos)
        if m is None or m.end() == pos:
            raise ValueError(f"path {path!r}: cannot read it from character {pos + 1}")
        out.append(("key", m[1]) if m[1] is not None else ("select", m[2]))
        pos = m.end()
    return out


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def check_path(path: str) -> None:
    """Refuse a path ``dig`` cannot follow (ValueError saying where), so a scenario file with one is refused when
    it is loaded, before any chain runs."""
    for kind, arg in _tokens(path):
        if kind == "select" and arg != "*" and not re.fullmatch(r"-?\d+", arg) and "=" not in arg:
            raise ValueError(f"path {path!r}: [{arg}]: give an index, * or key=value")


def dig(obj: Any, path: str) -> Any:
    """The value at ``path``: ``a.b`` a field, ``a.0`` or ``a[0]`` / ``a[-1]`` an item, ``a[key=value]`` the one
    item whose field is that value (none or several: says so), ``a[*].b`` that field of every item (a list),
    ``a.length`` how many items. A step that leads nowhere gives ``<absent>``."""
    return _walk(obj, _tokens(path))


def _walk(obj: Any, tokens: list[tuple[str, str]]) -> Any:
    for n, (kind, arg) in enumerate(tokens):
        if kind == "key":
            if isinstance(obj, dict) and arg in obj:
                obj = obj[arg]
            elif isinstance(obj, list) and arg == "length":
                obj = len(obj)
            elif isinstance(obj, list) and re.fullmatch(r"-?\d+", arg) and -len(obj) <= int(arg) < len(obj):
                obj = obj[int(arg)]
            else:
                return ABSENT
            continue
        if not isinstance(obj, list):
            return ABSENT
        if arg == "*":
            return [_walk(item, tokens[n + 1 :]) for item in obj]
        if re.fullmatch(r"-?\d+", arg):
            if not -len(obj) <= int(arg) < len(obj):
                return ABSENT
            obj = obj[int(arg)]
            continue
        key, eq, value = arg.partition("=")
        if not eq:
            raise ValueError(f"[{arg}]: give an index, * or key=value")
        hits = [item for item in obj if isinstance(item, dict) and key in item and _text(item[key]) == value]
        if len(hits) != 1:
            return f"<{len(hits)} items with {key}={value}>"
        obj = hits[0]
    return obj


# -- log events ---------------------------------------------------------------------------------------------


class LogCapture:
    """The adapter's log events of one chain, masked as every log line is (no personal data in clear)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._events: list[dict[str, Any]] = []

    def __call__(self, _: Any, __: str, event_dict: MutableMapping[str, Any]) -> Any:
        with self._lock:
            self._events.append(dict(event_dict))
        raise structlog.DropEvent  # kept, not printed: the progress lines stay readable

    def events(self) -> list[str]:
        with self._lock:
            return [str(e.get("event")) for e in self._events]


@contextmanager
def captured_log() -> Iterator[LogCapture]:
    """Every structlog event of level INFO and up goes to the capture, masked, until the chain stops; then the
    configuration before it is back."""
    before = structlog.get_config()
    capture = LogCapture()
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            mask_personal_data,
            capture,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
        cache_logger_on_first_use=False,
    )
    try:
        yield capture
    finally:
        structlog.configure(**before)
