"""In-memory state of the fake and the small helpers its handlers share.

Resources are stored with server-relative URLs (``/zaken/api/v1/zaken/<uuid>``) and made absolute per
response with the base URL the client used, so one seeded catalogus works under TestClient and on any port.
"""

from __future__ import annotations

import copy
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit

from starlette.datastructures import Headers, QueryParams

from .validation import Operation, Problem

if TYPE_CHECKING:
    from .app import FakeZgw

PREFIXES = {"catalogi": "/catalogi/api/v1", "zaken": "/zaken/api/v1", "documenten": "/documenten/api/v1"}
API_OF_KIND = {
    **dict.fromkeys(
        (
            "catalogussen",
            "zaaktypen",
            "roltypen",
            "statustypen",
            "informatieobjecttypen",
            "zaaktype-informatieobjecttypen",
            "resultaattypen",
        ),
        "catalogi",
    ),
    **dict.fromkeys(("zaken", "rollen", "zaakobjecten", "statussen", "zaakinformatieobjecten", "resultaten"), "zaken"),
    **dict.fromkeys(("enkelvoudiginformatieobjecten", "bestandsdelen"), "documenten"),
}
PAGE_SIZE = 100


class ApiError(Exception):
    """Raised by a handler: answered as a problem body (ZGW `Fout`/`ValidatieFout`)."""

    def __init__(self, problem: Problem) -> None:
        super().__init__(problem.detail)
        self.problem = problem


def invalid(name: str, code: str, reason: str) -> ApiError:
    """A 400 naming one field, the way the real APIs report a failed check."""
    return ApiError(
        Problem(400, "invalid", "Invalid input.", reason, ({"name": name, "code": code, "reason": reason},))
    )


def not_found(what: str) -> ApiError:
    return ApiError(Problem(404, "not_found", "Niet gevonden.", f"{what} bestaat niet."))


@dataclass
class Reply:
    """What a handler answers: a JSON body (rendered with absolute URLs) or raw bytes."""

    status: int
    body: Any = None
    data: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Ctx:
    """One request as a handler sees it."""

    fake: FakeZgw
    api: str
    op: Operation
    body: Any
    raw: bytes
    query: QueryParams
    headers: Headers
    base: str

    @property
    def store(self) -> Store:
        return self.fake.store

    def var(self, name: str = "uuid") -> str:
        return self.op.variables[name]

    def absolute(self, obj: Any) -> Any:
        return absolutize(obj, self.base)


class Store:
    """Every resource by kind and uuid, plus a path index to resolve URL references."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.kinds: dict[str, dict[str, dict[str, Any]]] = {kind: {} for kind in API_OF_KIND}
        self.by_path: dict[str, tuple[str, str]] = {}
        self.blobs: dict[str, bytes] = {}
        self._seq: dict[str, int] = {}

    def remove(self, kind: str, uid: str) -> None:
        record = self.kinds[kind].pop(uid)
        self.by_path.pop(record["url"], None)
        self.blobs.pop(uid, None)

    def add(self, kind: str, record: dict[str, Any], *, uid: str | None = None) -> dict[str, Any]:
        uid = uid or str(uuid.uuid4())
        path = f"{PREFIXES[API_OF_KIND[kind]]}/{kind}/{uid}"
        record = {"url": path, "uuid": uid, **record}
        self.kinds[kind][uid] = record
        self.by_path[path] = (kind, uid)
        return record

    def get(self, kind: str, uid: str) -> dict[str, Any]:
        try:
            return self.kinds[kind][uid]
        except KeyError:
            raise not_found(f"{kind}/{uid}") from None

    def resolve(self, url: Any, kind: str) -> dict[str, Any] | None:
        """The record a URL points at when it is one of ours of that kind (host and port are not compared)."""
        if not isinstance(url, str) or not url:
            return None
        hit = self.by_path.get(urlsplit(url).path.rstrip("/"))
        if hit is None or hit[0] != kind:
            return None
        return self.kinds[kind][hit[1]]

    def require(self, url: Any, kind: str, field_name: str) -> dict[str, Any]:
        """Resolve or raise the 400 the real API gives for a URL that does not resolve to the right kind."""
        record = self.resolve(url, kind)
        if record is None:
            raise invalid(field_name, "bad-url", f"{field_name}: {url!r} does not resolve to a {kind} resource here.")
        return record

    def next_number(self, name: str) -> int:
        self._seq[name] = self._seq.get(name, 0) + 1
        return self._seq[name]

    def all(self, kind: str) -> list[dict[str, Any]]:
        return list(self.kinds[kind].values())


def ref_key(url: Any) -> str:
    """Compare URL references by path when they point into the fake, by full text otherwise."""
    if not isinstance(url, str):
        return ""
    path = urlsplit(url).path
    if any(path.startswith(p + "/") for p in PREFIXES.values()):
        return path.rstrip("/")
    return url


def absolutize(obj: Any, base: str) -> Any:
    """A deep copy with every server-relative URL of ours made absolute."""
    if isinstance(obj, str):
        return base + obj if any(obj.startswith(p + "/") for p in PREFIXES.values()) else obj
    if isinstance(obj, dict):
        return {k: absolutize(v, base) for k, v in obj.items()}
    if isinstance(obj, list):
        return [absolutize(v, base) for v in obj]
    return copy.deepcopy(obj)


def filtered(
    records: Iterable[dict[str, Any]], query: Mapping[str, str], fields: Mapping[str, Callable[[dict[str, Any]], Any]]
) -> list[dict[str, Any]]:
    """Records matching every given query filter; `fields` maps a filter name to the value it compares."""
    out = []
    for rec in records:
        if all(ref_key(get(rec)) == ref_key(query[name]) for name, get in fields.items() if name in query):
            out.append(rec)
    return out


def paginate(ctx: Ctx, items: list[dict[str, Any]]) -> Reply:
    """The spec's paginated list shape: count, next, previous, results (DRF page size 100)."""
    try:
        page = int(ctx.query.get("page", "1"))
    except ValueError:
        page = 0
    pages = max(1, -(-len(items) // PAGE_SIZE))
    if not 1 <= page <= pages:
        raise invalid("page", "invalid", "Ongeldige pagina.")

    def link(n: int) -> str | None:
        if not 1 <= n <= pages:
            return None
        query = [(k, v) for k, v in ctx.query.multi_items() if k != "page"] + [("page", str(n))]
        return f"{ctx.base}{PREFIXES[ctx.api]}{ctx.op.template}?{urlencode(query)}"

    results = items[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]
    return Reply(200, {"count": len(items), "next": link(page + 1), "previous": link(page - 1), "results": results})


def rsin_ok(value: str) -> bool:
    """RSIN/BSN eleven-test, as the real APIs check bronorganisatie and verantwoordelijkeOrganisatie."""
    if len(value) != 9 or not value.isdigit():
        return False
    total = sum(int(d) * w for d, w in zip(value[:8], range(9, 1, -1), strict=True)) - int(value[8])
    return total % 11 == 0


def require_rsin(body: Mapping[str, Any], *names: str) -> None:
    for name in names:
        if name in body and not rsin_ok(str(body[name])):
            raise invalid(name, "invalid", f"{name}: {body[name]!r} is not a valid RSIN (9 digits, eleven-test).")


def today() -> str:
    return date.today().isoformat()


def now() -> str:
    return datetime.now(UTC).isoformat()
