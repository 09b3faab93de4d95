"""The only module that speaks HTTP to the ZGW APIs: JWT per API, timeouts, client certificates,
errors turned into one-line TargetErrors that name the call and the API's own explanation."""

from __future__ import annotations

import time
from typing import Any

import httpx
import jwt

from adapter import recording
from adapter.envsubst import redact_url
from adapter.errors import TargetError, TargetRefused, http_failure
from adapter.targets.zgw.options import ApiAuth, ZgwOptions

APIS = ("zaken", "documenten", "catalogi")


_TOKEN_SECONDS = 300
_IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE"})


def _token(auth: ApiAuth) -> str:
    """A fresh HS256 JWT; ``ZgwClient`` reuses one for a few minutes (``iat`` stays recent)."""
    now = int(time.time())
    return jwt.encode(
        {"iss": auth.client_id, "client_id": auth.client_id, "iat": now, "user_id": auth.client_id},
        auth.secret,
        algorithm="HS256",
    )


def _explain(r: httpx.Response) -> str:
    """The API's problem detail in one line (``invalidParams`` name what was wrong)."""
    try:
        body = r.json()
    except ValueError:
        return r.text[:300].replace("\n", " ")
    if not isinstance(body, dict):
        return str(body)[:300]
    parts = [str(body.get("detail") or body.get("title") or "")]
    for p in body.get("invalidParams") or []:
        code = f" [{p['code']}]" if p.get("code") else ""  # e.g. missing-zaaktype-informatieobjecttype-relation
        parts.append(f"{p.get('name')}: {p.get('reason')}{code}")
    return "; ".join(x for x in parts if x)[:500]


class ZgwClient:
    def __init__(self, options: ZgwOptions) -> None:
        self.options = options
        self._http = httpx.Client(
            timeout=options.timeout,
            event_hooks=recording.EVENT_HOOKS,
            transport=recording.transport(),
            **options.httpx_tls(),
        )
        self.base = {"zaken": options.zaken_url, "documenten": options.documenten_url, "catalogi": options.catalogi_url}
        self._tokens: dict[str, tuple[float, str]] = {}

    def close(self) -> None:
        self._http.close()

    def _api_of(self, url: str) -> str:
        for api in APIS:
            if url.startswith(self.base[api]):
                return api
        raise TargetRefused(f"URL {redact_url(url)} belongs to none of the configured ZGW APIs")

    def _headers(self, api: str) -> dict[str, str]:
        cached = self._tokens.get(api)
        if cached is None or time.monotonic() - cached[0] > _TOKEN_SECONDS:
            auth = self.options.auth_per_api.get(api, self.options.auth)  # type: ignore[call-overload]
            cached = (time.monotonic(), _token(auth))
            self._tokens[api] = cached
        headers = {"Authorization": f"Bearer {cached[1]}", "Accept": "application/json"}
        if api == "zaken":
            # The Zaken spec declares both CRS headers on zaak GETs too; real servers accept them.
            headers["Accept-Crs"] = self.options.crs
            headers["Content-Crs"] = self.options.crs
        return headers

    def url(self, api: str, path: str) -> str:
        return f"{self.base[api].rstrip('/')}/{path.lstrip('/')}"

    def request(self, method: str, url: str, *, json: Any = None, params: dict[str, Any] | None = None) -> Any:
        api = self._api_of(url)
        headers = self._headers(api)
        try:
            try:
                r = self._http.request(method, url, json=json, params=params, headers=headers)
            except (httpx.RemoteProtocolError, httpx.ReadError):
                # A kept-open connection the server had closed (e.g. uwsgi without keep-alive): an
                # idempotent call is sent again at once on a fresh one; a POST is left to the step's
                # retry, which first looks for what it may have made.
                if method not in _IDEMPOTENT:
                    raise
                r = self._http.request(method, url, json=json, params=params, headers=headers)
        except httpx.TimeoutException:
            raise TargetError(f"{method} {redact_url(url)}: no answer within {self.options.timeout:g} s") from None
        except httpx.HTTPError as exc:
            raise TargetError(f"{method} {redact_url(url)}: {type(exc).__name__}: {exc}") from None
        if r.status_code >= 400:
            raise http_failure(r.status_code, f"{method} {redact_url(url)}: HTTP {r.status_code}: {_explain(r)}")
        if r.status_code == 204 or not r.content:
            return None
        return r.json()

    def get(self, url: str, **params: Any) -> Any:
        return self.request("GET", url, params={k: v for k, v in params.items() if v is not None})

    def post(self, url: str, body: dict[str, Any]) -> Any:
        return self.request("POST", url, json=body)

    def delete(self, url: str) -> None:
        """DELETE; an object that is already gone counts as deleted (a retry after a lost answer)."""
        try:
            self.request("DELETE", url)
        except TargetError as exc:
            if exc.status != 404:
                raise

    def find_all(self, api: str, path: str, **params: Any) -> list[dict[str, Any]]:
        """All results of a (paginated) list call."""
        url: str | None = self.url(api, path)
        out: list[dict[str, Any]] = []
        query: dict[str, Any] | None = {k: v for k, v in params.items() if v is not None}
        while url:
            page = self.request("GET", url, params=query)
            query = None  # ``next`` carries the query
            if isinstance(page, list):
                return out + page
            out += page.get("results", [])
            url = page.get("next")
        return out

    def put_bestandsdeel(self, url: str, data: bytes, lock: str) -> None:
        headers = self._headers("documenten")
        try:
            r = self._http.put(url, files={"inhoud": ("deel", data)}, data={"lock": lock}, headers=headers)
        except httpx.HTTPError as exc:
            raise TargetError(f"PUT {redact_url(url)}: {type(exc).__name__}: {exc}") from None
        if r.status_code >= 400:
            raise http_failure(r.status_code, f"PUT {redact_url(url)}: HTTP {r.status_code}: {_explain(r)}")

    def download(self, url: str) -> bytes:
        """A document's content (its ``inhoud`` URL): bytes, not JSON, with the API's token like every call."""
        headers = {**self._headers(self._api_of(url)), "Accept": "*/*"}
        try:
            r = self._http.get(url, headers=headers)
        except httpx.HTTPError as exc:
            raise TargetError(f"GET {redact_url(url)}: {type(exc).__name__}: {exc}") from None
        if r.status_code >= 400:
            raise http_failure(r.status_code, f"GET {redact_url(url)}: HTTP {r.status_code}: {_explain(r)}")
        return r.content
