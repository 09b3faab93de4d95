"""The fake zaaksysteem: one Starlette app serving Catalogi, Zaken and Documenten under their prefixes.

Every request is authenticated (JWT), checked against the official OpenAPI file, handled in memory and its
answer checked against the same file, so the delivery code is tested against the contract, not our guess.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, NamedTuple

from openapi_core.templating.paths.exceptions import OperationNotFound, PathNotFound
from starlette.applications import Starlette
from starlette.datastructures import Headers, QueryParams
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route

from . import catalogi, documenten, zaken
from .auth import AuthError, check_authorization
from .state import PREFIXES, ApiError, Ctx, Reply, Store, absolutize
from .validation import ApiSpec, OpenApiRequest, OpenApiResponse, Operation, Problem, load_spec

log = logging.getLogger(__name__)

#: The official OpenAPI files, shipped unmodified with the fake (``specs/README.md``: provenance and licence).
SPECS_DIR = Path(__file__).resolve().parent / "specs"
SPEC_FILES = {"catalogi": "catalogi-1.3.1.yaml", "zaken": "zaken-1.5.1.yaml", "documenten": "documenten-1.5.0.yaml"}
API_VERSIONS = {"catalogi": "1.3.1", "zaken": "1.5.1", "documenten": "1.5.0"}
HANDLERS: dict[str, dict[tuple[str, str], Callable[[Ctx], Reply]]] = {
    "catalogi": catalogi.HANDLERS,
    "zaken": zaken.HANDLERS,
    "documenten": documenten.HANDLERS,
}
METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]


class RecordedRequest(NamedTuple):
    """One request the fake answered (compares equal to a plain ``(method, path, status)`` tuple)."""

    method: str
    path: str
    status: int


@dataclass
class Fault:
    """A failure to inject into the next matching requests (see FakeZgw.fail_next)."""

    method: str
    path_suffix: str
    status: int | None
    times: int
    after_processing: bool
    delay: float
    skip: int = 0


class FakeZgw:
    """In-memory ZGW zaaksysteem (Catalogi 1.3.1, Zaken 1.5.1, Documenten 1.5.0) for tests and the ketensimulatie."""

    def __init__(
        self,
        spec_dir: Path = SPECS_DIR,
        *,
        client_id: str = "loket-adapter",
        secret: str = "test-secret",
        catalogus_seed: dict[str, Any] | None = None,
        validate: bool = True,
    ) -> None:
        self.specs: dict[str, ApiSpec] = {
            api: load_spec(Path(spec_dir) / name, PREFIXES[api]) for api, name in SPEC_FILES.items()
        }
        #: False only for benchmarks: skips the (costly) OpenAPI checks, keeps every other rule.
        self.validate = validate
        self.client_id = client_id
        self.secret = secret
        self.store = Store()
        catalogi.seed(self.store, catalogus_seed if catalogus_seed is not None else catalogi.DEFAULT_SEED)
        self.chunk_size = 1024 * 1024  # bestandsdelen size for large-file uploads
        #: Catalogi lists newest first, as Open Zaak; False for servers that list oldest first.
        self.newest_first = True
        #: Whether the client may unlock a document without its lock (scope documenten.geforceerd-unlock).
        self.force_unlock_allowed = True
        self.base_url = ""  # learnt from requests; makes the inspection helpers' URLs absolute
        self.response_errors: list[str] = []  # responses that failed validation: bugs in the fake
        self._faults: list[Fault] = []
        self._requests: list[RecordedRequest] = []
        self._log_lock = threading.Lock()
        self.app = Starlette(
            routes=[
                Mount(
                    PREFIXES[api], app=Starlette(routes=[Route("/{rest:path}", self._endpoint(api), methods=METHODS)])
                )
                for api in SPEC_FILES
            ]
        )

    # -- test helpers -------------------------------------------------------------------------------------

    def fail_next(
        self,
        method: str,
        path_suffix: str,
        *,
        status: int | None = 500,
        times: int = 1,
        after_processing: bool = False,
        delay: float = 0,
        skip: int = 0,
    ) -> None:
        """Make the next `times` requests whose path ends with `path_suffix` fail with `status`.

        Default: answer at once, nothing stored. `delay`: sleep that long first (a client timeout before the
        server did anything). `after_processing=True`: do the work and store it, then (after `delay`)
        answer `status` anyway - the commit-then-fail case that makes exactly-once hard.
        `status=None` delays without failing (a slow but successful server). `skip`: let that many
        matching requests pass first (to fail the second rol, the third bestandsdeel, …).
        """
        with self._log_lock:
            self._faults.append(Fault(method.upper(), path_suffix, status, times, after_processing, delay, skip))

    def clear_faults(self) -> None:
        """Forget every injected fault not yet triggered (the zaaksysteem is back)."""
        with self._log_lock:
            self._faults.clear()

    @property
    def pending_faults(self) -> int:
        """Injected faults not yet triggered (0 once the request they wait for has arrived)."""
        with self._log_lock:
            return len(self._faults)

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._log_lock:
            return list(self._requests)

    def _rendered(
        self, kind: str, render: Callable[[Ctx, dict[str, Any]], dict[str, Any]] | None = None
    ) -> list[dict[str, Any]]:
        with self.store.lock:
            ctx = Ctx(self, "", Operation("GET", "", {}), None, b"", QueryParams(), Headers(), self.base_url)
            return [absolutize(render(ctx, r) if render else r, self.base_url) for r in self.store.all(kind)]

    @property
    def zaken(self) -> list[dict[str, Any]]:
        return self._rendered("zaken", zaken.render_zaak)

    @property
    def rollen(self) -> list[dict[str, Any]]:
        return self._rendered("rollen")

    @property
    def zaakobjecten(self) -> list[dict[str, Any]]:
        return self._rendered("zaakobjecten")

    @property
    def statussen(self) -> list[dict[str, Any]]:
        return self._rendered("statussen", zaken.render_status)

    @property
    def zaakinformatieobjecten(self) -> list[dict[str, Any]]:
        return self._rendered("zaakinformatieobjecten")

    @property
    def documenten(self) -> list[dict[str, Any]]:
        """Enkelvoudiginformatieobjecten as the API shows them, plus ``"bytes"``: the content (None until complete)."""
        with self.store.lock:
            docs = self._rendered("enkelvoudiginformatieobjecten", documenten.render_eio)
            for doc, rec in zip(docs, self.store.all("enkelvoudiginformatieobjecten"), strict=True):
                doc["bytes"] = self.store.blobs.get(rec["uuid"])
            return docs

    def catalogus_url(self, kind: str, **match: str) -> str:
        """URL of the one seeded catalogi resource matching, e.g. ``catalogus_url("zaaktypen",
        identificatie="ZT-MELDING")``. A roltype/statustype/resultaattype of a versioned zaaktype: pass
        ``zaaktype``. Zaaktypen: the published version valid today unless the match says otherwise."""
        today = date.today().isoformat()

        def current(rec: dict[str, Any]) -> bool:
            if kind != "zaaktypen" or {"concept", "beginGeldigheid", "uuid"} & match.keys():
                return True
            begin, end = rec.get("beginGeldigheid") or "", rec.get("eindeGeldigheid")
            return not rec.get("concept") and begin <= today and (not end or today <= end)

        with self.store.lock:
            found = [r for r in self.store.all(kind) if all(r.get(k) == v for k, v in match.items()) and current(r)]
        if kind != "zaaktypen" and "zaaktype" not in match and "zaaktypeIdentificatie" not in match:
            # roltypen etc. of the current zaaktype version only
            found = [r for r in found if "zaaktype" not in r or self._is_current_zaaktype(r["zaaktype"])]
        if len(found) != 1:
            raise KeyError(f"{len(found)} {kind} with {match}")
        return self.base_url + found[0]["url"]

    def _is_current_zaaktype(self, url: str) -> bool:
        today = date.today().isoformat()
        zt = self.store.resolve(url, "zaaktypen")
        if zt is None:
            return False
        end = zt.get("eindeGeldigheid")
        return not zt.get("concept") and zt["beginGeldigheid"] <= today and (not end or today <= end)

    # -- request pipeline ---------------------------------------------------------------------------------

    def _endpoint(self, api: str) -> Callable[[Request], Any]:
        async def endpoint(request: Request) -> Response:
            response = await self._handle(api, request)
            with self._log_lock:
                self._requests.append(RecordedRequest(request.method, request.url.path, response.status_code))
            return response

        return endpoint

    async def _handle(self, api: str, request: Request) -> Response:
        raw = await request.body()
        base = f"{request.url.scheme}://{request.url.netloc}"
        self.base_url = self.base_url or base
        spec = self.specs[api]
        oreq = OpenApiRequest(
            host_url=base,
            path=request.url.path,
            method=request.method.lower(),
            body=raw or None,
            content_type=request.headers.get("content-type", "application/octet-stream"),
            headers=request.headers,
            query=request.query_params,
        )
        try:
            op = spec.find(oreq)
        except (PathNotFound, OperationNotFound) as exc:  # not part of this API: nothing to validate against
            status = 405 if isinstance(exc, OperationNotFound) else 404
            return _problem(
                api, Problem(status, "not_found", "Niet gevonden.", f"{request.method} {request.url.path}: {exc}")
            )
        try:
            check_authorization(request.headers.get("authorization"), client_id=self.client_id, secret=self.secret)
        except AuthError as exc:
            return self._checked(
                api, oreq, op, _problem(api, Problem(403, "permission_denied", "Geen rechten.", str(exc)))
            )

        fault = self._take_fault(request.method, request.url.path)
        if fault and not fault.after_processing:
            await asyncio.sleep(fault.delay)
            if fault.status is not None:
                return _fault_response(api, fault)

        response = self._checked(api, oreq, op, self._process(api, oreq, op, raw, base))
        if fault and fault.after_processing:
            await asyncio.sleep(fault.delay)
            if fault.status is not None:
                return _fault_response(api, fault)
        return response

    def _process(self, api: str, oreq: OpenApiRequest, op: Operation, raw: bytes, base: str) -> Response:
        """Validate the request, run its handler under the state lock, build the response."""
        body: Any = None
        if raw and oreq.content_type.split(";")[0].strip().endswith("json"):
            try:
                body = json.loads(raw)
            except ValueError:
                body = None  # openapi-core reports it
        problem = self.specs[api].request_problem(oreq, op, body) if self.validate else None
        if problem:
            return _problem(api, problem, cls=_ClientProblem)
        handler = HANDLERS[api].get((op.method, op.template))
        if handler is None:
            return _problem(
                api,
                Problem(
                    501, "not_implemented", "Niet geïmplementeerd.", f"The fake does not do {op.method} {op.template}."
                ),
            )
        ctx = Ctx(self, api, op, body, raw, oreq.query, oreq.headers, base)
        try:
            with self.store.lock:
                reply = handler(ctx)
                content = None if reply.body is None else json.dumps(absolutize(reply.body, base)).encode()
        except ApiError as exc:
            return _problem(api, exc.problem, cls=_ClientProblem)
        headers = {"API-version": API_VERSIONS[api], **reply.headers}
        if reply.data is not None:
            return Response(reply.data, reply.status, headers=headers, media_type="application/octet-stream")
        if content is None:
            return Response(status_code=reply.status, headers=headers)
        return Response(content, reply.status, headers=headers, media_type="application/json")

    def _checked(self, api: str, oreq: OpenApiRequest, op: Operation, response: Response) -> Response:
        """The response if the spec allows it; else a 500 saying why (a bug in the fake)."""
        spec = self.specs[api]
        if response.status_code == 501 or not self.validate:
            return response
        if isinstance(response, _ClientProblem) and response.status_code not in spec.declared_statuses(op):
            return response  # e.g. a 400 on an operation whose spec lists no 400: still the client's fault
        errors = spec.response_errors(
            oreq, op, OpenApiResponse(response.status_code, bytes(response.body), response.headers)
        )
        if not errors:
            return response
        detail = f"Response {response.status_code} to {op.method} {op.template} violates the spec: " + "; ".join(errors)
        log.error("fake ZGW bug: %s", detail)
        with self._log_lock:
            self.response_errors.append(detail)
        return _problem(api, Problem(500, "fake-response-invalid", "Fake ZGW bug.", detail))

    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self._log_lock:
            for fault in self._faults:
                if fault.method == method.upper() and _suffix_matches(path, fault.path_suffix):
                    if fault.skip > 0:
                        fault.skip -= 1
                        return None
                    fault.times -= 1
                    if fault.times <= 0:
                        self._faults.remove(fault)
                    return fault
        return None


def _suffix_matches(path: str, suffix: str) -> bool:
    """``path`` ends with ``suffix``, where ``{uuid}`` in the suffix stands for any one path segment."""
    pattern = re.escape(suffix.rstrip("/")).replace(re.escape("{uuid}"), "[^/]+")
    return re.search(f"{pattern}$", path.rstrip("/")) is not None


class _ClientProblem(Response):
    """A problem caused by the request: sent even where the operation's spec lists no such status."""


def _problem(api: str, problem: Problem, cls: type[Response] = Response) -> Response:
    body: dict[str, Any] = {
        "type": f"urn:fake-zgw:{problem.code}",
        "code": problem.code,
        "title": problem.title,
        "status": problem.status,
        "detail": problem.detail,
        "instance": f"urn:uuid:{uuid.uuid4()}",
    }
    if problem.status == 400 or problem.invalid_params:
        body["invalidParams"] = list(problem.invalid_params)
    headers = {"API-version": API_VERSIONS[api]}
    return cls(json.dumps(body).encode(), problem.status, headers=headers, media_type="application/problem+json")


def _fault_response(api: str, fault: Fault) -> Response:
    status = fault.status or 500
    return _problem(
        api, Problem(status, "injected-fault", "Injected fault.", f"fail_next({fault.method} {fault.path_suffix})")
    )
