"""Checks every request and response of the fake against the official ZGW OpenAPI files.

The YAML files are large (300-500 KB), so each is parsed and compiled once per process and shared by
all `FakeZgw` instances (keyed by path and mount prefix).
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml
from jsonschema_path import SchemaPath
from openapi_core import Config, OpenAPI
from openapi_core.datatypes import RequestParameters
from openapi_core.deserializing.media_types.util import json_loads
from openapi_core.templating.media_types.exceptions import MediaTypeNotFound
from openapi_core.templating.paths.finders import APICallPathFinder
from openapi_core.validation.request.exceptions import (
    MissingRequiredParameter,
    MissingRequiredRequestBody,
    ParameterValidationError,
)
from openapi_core.validation.schemas import (
    oas30_read_schema_validators_factory,
    oas30_write_schema_validators_factory,
)
from starlette.datastructures import Headers, QueryParams

_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_REQUIRED = re.compile(r"^'(?P<name>.+)' is a required property$")
# OAS 3.0: header parameters named Accept, Content-Type or Authorization "SHALL be ignored" (the ZGW specs
# declare Content-Type with enum [application/json], which would refuse "; charset=utf-8" and multipart
# boundaries). openapi-core does check them, so we drop those errors; the media type is still checked.
IGNORED_HEADERS = {"accept", "content-type", "authorization"}
CRS_HEADERS = {"Accept-Crs", "Content-Crs"}
# jsonschema keyword -> the error code the real (DRF based) APIs put in invalidParams
_CODES = {"required": "required", "maxLength": "max_length", "minLength": "min_length", "enum": "invalid_choice"}


@dataclass(frozen=True)
class Problem:
    """An HTTP problem the fake answers with (`ValidatieFout` when `invalid_params` is set)."""

    status: int
    code: str
    title: str
    detail: str
    invalid_params: tuple[dict[str, str], ...] = ()


@dataclass
class OpenApiRequest:
    """The request as openapi-core wants it (its Request protocol)."""

    host_url: str
    path: str
    method: str
    body: bytes | None
    content_type: str
    headers: Headers
    query: QueryParams
    parameters: RequestParameters = field(init=False)

    def __post_init__(self) -> None:
        self.parameters = RequestParameters(query=self.query, header=self.headers, cookie={})


@dataclass
class OpenApiResponse:
    """The response as openapi-core wants it (its Response protocol)."""

    status_code: int
    data: bytes
    headers: Headers

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "")


@dataclass(frozen=True)
class Operation:
    """Where a request landed in the spec: path template (without server prefix) and its variables."""

    method: str
    template: str
    variables: Mapping[str, str]


class ApiSpec:
    """One compiled API spec, mounted under `prefix` (e.g. ``/zaken/api/v1``)."""

    def __init__(self, path: Path, prefix: str) -> None:
        with path.open("rb") as fh:
            raw: dict[str, Any] = yaml.load(fh, Loader=_YAML_LOADER)
        # The official servers are absolute production URLs; the fake serves the same paths under a prefix.
        raw["servers"] = [{"url": prefix}]
        self.nullable_fixes = _allow_null_refs(raw)
        self.raw = raw
        self.prefix = prefix
        self.openapi = OpenAPI.from_dict(
            raw,
            # The files are the official ones: checking the spec itself would only cost ~0.4 s each.
            config=Config(
                spec_validator_cls=None, extra_media_type_deserializers={"application/problem+json": json_loads}
            ),
        )
        self._finder = APICallPathFinder(self.openapi.spec)
        self._sub_validators: dict[tuple[str, bool], Any] = {}
        self._lock = threading.Lock()

    @cached_property
    def schemas(self) -> dict[str, Any]:
        return self.raw["components"]["schemas"]

    def find(self, request: OpenApiRequest) -> Operation:
        """Raise PathNotFound/OperationNotFound when the spec has no such operation."""
        found = self._finder.find(request.method, request.host_url + request.path)
        result = found.path_result
        return Operation(request.method.upper(), result.pattern, dict(result.variables or {}))

    def request_problem(self, request: OpenApiRequest, op: Operation, body: Any) -> Problem | None:
        """Validate a request (parameters, headers, body, discriminated sub-shapes); None if it is fine."""
        params: list[dict[str, str]] = []
        for err in self.openapi.iter_request_errors(request):
            cause = err.__cause__
            if isinstance(cause, MediaTypeNotFound):
                return Problem(415, "unsupported_media_type", "Media type wordt niet ondersteund", str(cause))
            if isinstance(err, ParameterValidationError) and err.location == "header":
                if err.name.lower() in IGNORED_HEADERS:
                    continue
                if err.name in CRS_HEADERS:
                    return _crs_problem(err, request)
            if isinstance(err, MissingRequiredParameter):
                params.append(_param(err.name, "required", f"Missing required {err.location} parameter: {err.name}"))
            elif isinstance(err, ParameterValidationError):
                reasons = "; ".join(e.message for e in getattr(cause, "schema_errors", ()) or ()) or str(cause)
                params.append(_param(err.name, "invalid", f"Invalid {err.location} parameter {err.name}: {reasons}"))
            elif isinstance(err, MissingRequiredRequestBody):
                params.append(_param("nonFieldErrors", "required", "Missing required request body"))
            elif (schema_errors := getattr(cause, "schema_errors", None)) is not None:
                params.extend(schema_params(schema_errors))
            else:
                params.append(_param("nonFieldErrors", "parse_error", str(cause or err)))
        if not params and body is not None:
            schema = self._body_schema(op)
            if schema is not None:
                params.extend(schema_params(self.discriminated_errors(schema, body, read=False)))
        if params:
            names = ", ".join(sorted({p["name"] for p in params}))
            return Problem(400, "invalid", "Invalid input.", f"Request does not match the spec: {names}", tuple(params))
        return None

    def response_errors(self, request: OpenApiRequest, op: Operation, response: OpenApiResponse) -> list[str]:
        """Messages for everything in a response that the spec does not allow (empty when valid)."""
        out: list[str] = []
        for err in self.openapi.iter_response_errors(request, response):
            cause = err.__cause__
            errors = getattr(cause, "schema_errors", None)
            if errors:
                out.extend(
                    f"{type(err).__name__} at {_dotted(e.absolute_path) or '<root>'}: {e.message}" for e in errors
                )
            else:
                out.append(f"{type(err).__name__}: {cause or err}")
        if not out and response.content_type.startswith("application/json") and response.data:
            schema = self._response_schema(op, response.status_code)
            if schema is not None:
                body = json.loads(response.data)
                out.extend(
                    f"discriminator at {_dotted(e.absolute_path) or '<root>'}: {e.message}"
                    for e in self.discriminated_errors(schema, body, read=True)
                )
        return out

    # -- discriminators ---------------------------------------------------------------------------------
    # Rol and ZaakObject carry a `discriminator` mapping but no oneOf, so openapi-core checks only the base
    # shape; the spec says `objectIdentificatie`/`betrokkeneIdentificatie` are validated against the mapped
    # schema (allOf [base, extra]). We check the extra part ourselves.

    def discriminated_errors(
        self, schema: Mapping[str, Any], value: Any, *, read: bool, depth: int = 0
    ) -> Iterator[Any]:
        if depth > 8:
            return
        ref = schema.get("$ref")
        if ref:
            name = ref.rsplit("/", 1)[-1]
            yield from self._discriminated_named(name, value, read=read, depth=depth)
            return
        if isinstance(value, list) and "items" in schema:
            for i, item in enumerate(value):
                for err in self.discriminated_errors(schema["items"], item, read=read, depth=depth + 1):
                    err.path.appendleft(i)
                    yield err
        elif isinstance(value, dict):
            for key, sub in schema.get("properties", {}).items():
                if key in value:
                    for err in self.discriminated_errors(sub, value[key], read=read, depth=depth + 1):
                        err.path.appendleft(key)
                        yield err

    def _discriminated_named(self, name: str, value: Any, *, read: bool, depth: int) -> Iterator[Any]:
        schema = self.schemas[name]
        disc = schema.get("discriminator")
        if disc and "mapping" in disc and "oneOf" not in schema and isinstance(value, dict):
            target = disc["mapping"].get(value.get(disc["propertyName"]))
            if target:
                for member in self.schemas[target.rsplit("/", 1)[-1]].get("allOf", []):
                    member_ref = member.get("$ref", "")
                    if member_ref.rsplit("/", 1)[-1] != name and member_ref:
                        yield from self._sub_validator(member_ref.rsplit("/", 1)[-1], read).iter_errors(value)
        yield from self.discriminated_errors(
            {k: v for k, v in schema.items() if k != "$ref"}, value, read=read, depth=depth + 1
        )

    def _sub_validator(self, name: str, read: bool) -> Any:
        with self._lock:
            key = (name, read)
            if key not in self._sub_validators:
                factory = oas30_read_schema_validators_factory if read else oas30_write_schema_validators_factory
                sp: SchemaPath = self.openapi.spec / "components" / "schemas" / name
                self._sub_validators[key] = factory.create(self.openapi.spec, sp).validator
            return self._sub_validators[key]

    def declared_statuses(self, op: Operation) -> set[int]:
        return {int(code) for code in self._operation_raw(op).get("responses", {}) if code.isdigit()}

    def _operation_raw(self, op: Operation) -> dict[str, Any]:
        return self.raw["paths"][op.template][op.method.lower()]

    def _body_schema(self, op: Operation) -> dict[str, Any] | None:
        content = self._operation_raw(op).get("requestBody", {}).get("content", {})
        return content.get("application/json", {}).get("schema")

    def _response_schema(self, op: Operation, status: int) -> dict[str, Any] | None:
        resp = self._operation_raw(op).get("responses", {}).get(str(status), {})
        return resp.get("content", {}).get("application/json", {}).get("schema")


def _allow_null_refs(raw: dict[str, Any]) -> list[str]:
    """Make ``{nullable: true, allOf: [$ref X]}`` mean "X or null", as drf-spectacular (which wrote the files) means.

    Under strict OAS 3.0.3 the allOf'd X still refuses null, so e.g. ``zaakgeometrie: null`` (what real servers
    send and accept) would fail. Returns the JSON pointers rewritten, for the record.
    """
    schemas = raw["components"]["schemas"]
    fixed: list[str] = []

    def walk(node: Any, where: str) -> None:
        if isinstance(node, dict):
            refs = node.get("allOf") if node.get("nullable") else None
            if isinstance(refs, list) and len(refs) == 1 and "$ref" in refs[0]:
                target = schemas.get(refs[0]["$ref"].rsplit("/", 1)[-1], {})
                if not target.get("nullable"):
                    node["anyOf"] = [node.pop("allOf")[0], {"enum": [None]}]
                    fixed.append(where)
            for key, value in node.items():
                walk(value, f"{where}/{key}")
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, f"{where}/{i}")

    walk(schemas, "#/components/schemas")
    return fixed


def _crs_problem(err: ParameterValidationError, request: OpenApiRequest) -> Problem:
    """What the real APIs (vng-api-common) answer for CRS headers: 412 when missing, 406 when unsupported."""
    if isinstance(err, MissingRequiredParameter):
        detail = f"'{err.name}' header ontbreekt"
        return Problem(
            412, "precondition_failed", "Voorwaarde is niet vervuld", detail, (_param(err.name, "required", detail),)
        )
    detail = f"CRS '{request.headers.get(err.name)}' is niet ondersteund (only EPSG:4326)"
    return Problem(406, "not_acceptable", "CRS niet ondersteund", detail, (_param(err.name, "invalid", detail),))


def schema_params(errors: Iterable[Any]) -> list[dict[str, str]]:
    """jsonschema errors -> ZGW `invalidParams` entries naming the (dotted) field."""
    out = []
    for e in errors:
        name = _dotted(e.absolute_path)
        code = _CODES.get(e.validator, "invalid")
        if e.validator == "required" and (m := _REQUIRED.match(e.message)):
            name = f"{name}.{m['name']}" if name else m["name"]
        elif e.validator == "type" and e.instance is None:
            code = "null"
        out.append(_param(name or "nonFieldErrors", code, e.message))
    return out


def _param(name: str, code: str, reason: str) -> dict[str, str]:
    return {"name": name, "code": code, "reason": reason}


def _dotted(path: Iterable[Any]) -> str:
    return ".".join(str(p) for p in path)


_CACHE: dict[tuple[str, str], ApiSpec] = {}
_CACHE_LOCK = threading.Lock()


def load_spec(path: Path, prefix: str) -> ApiSpec:
    """The compiled spec for `path`, loaded once per process."""
    key = (str(path.resolve()), prefix)
    with _CACHE_LOCK:
        spec = _CACHE.get(key)
        if spec is None:
            spec = _CACHE[key] = ApiSpec(path, prefix)
        return spec
