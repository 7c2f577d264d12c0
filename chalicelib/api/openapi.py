"""The OpenAPI 3 document, from operations each blueprint declares beside its routes (`route`).

Request and response bodies are the pydantic models of `api.schemas`, `api.trade_schemas` and `api.key_schemas`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, ParamSpec

from chalice import Blueprint, Response
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from .. import telemetry
from ..domain.errors import BadInput
from . import schemas
from .errors import admit, api, error_response
from .request import MAX_QUERY_VALUE


@dataclass(frozen=True)
class Param:
    """A query parameter and the JSON Schema of what the server takes in it."""

    name: str
    schema: dict[str, Any]
    description: str = ""
    required: bool = False
    example: Any = None


def text(name: str, description: str = "", required: bool = False, example: Any = None) -> Param:
    """A text parameter as `Incoming.query` takes it: present means 1 to 4096 characters, no control characters."""
    return Param(name, {"type": "string", "minLength": 1, "maxLength": MAX_QUERY_VALUE,
                        "pattern": schemas.NO_CONTROL_CHARACTERS}, description, required, example)


def one_of(name: str, values: Iterable[str], description: str = "", example: Any = None) -> Param:
    return Param(name, {"type": "string", "enum": list(values)}, description, example=example)


LIMIT = Param("limit", {"type": "integer", "minimum": 1, "maximum": 1000, "default": 50},
              "Items per page: an integer from 1 to 1000 in ASCII digits", example=10)
# What `adapters.dynamo.sign_cursor` issues; one the server did not sign (forged, for another listing) is a 400.
CURSOR = Param("cursor", {"type": "string", "maxLength": MAX_QUERY_VALUE,
                          "pattern": r"^[A-Za-z0-9_-]*\.[A-Za-z0-9_-]{43}$"},
               "next_cursor of the previous page of the same listing, exactly as returned")
PAGED = (LIMIT, CURSOR)
Query = tuple[str | Param, ...]


@dataclass(frozen=True)
class Operation:
    """One route as the document shows it: what it takes, what it answers, who may call it."""

    method: str
    path: str
    summary: str
    response: type[BaseModel] | None
    status: int = 200
    request: type[BaseModel] | None = None
    query: Query = ()
    write: bool = False
    # Reads whose answer depends on the key (privacy): the key is optional, an unknown one is a 401.
    key_optional: bool = False
    items: type[BaseModel] | None = None
    # Media types of a body that is not JSON (a CSV upload), and of an answer that is not JSON.
    content_types: tuple[str, ...] = ()
    response_media: str = "application/json"
    example: Any = None
    # Registrations: the same external_id (or Idempotency-Key) again answers 200 with this, the existing record.
    replayed: type[BaseModel] | None = None


P = ParamSpec("P")

# Filled by `route` as the blueprints are imported; the document is built on first request.
OPERATIONS: list[Operation] = []


def register(*operations: Operation) -> None:
    OPERATIONS.extend(operations)
    openapi_document.cache_clear()


def route(blueprint: Blueprint, method: str, path: str, summary: str, response: type[BaseModel] | None = None,
          status: int = 200, *, request: type[BaseModel] | None = None, query: Query = (),
          write: bool = False, key_optional: bool = False, items: type[BaseModel] | None = None,
          content_types: list[str] | None = None, response_media: str = "application/json",
          example: Any = None, replayed: type[BaseModel] | None = None,
          ) -> Callable[[Callable[P, Response]], Callable[P, Response]]:
    """A route of `blueprint` and its OpenAPI operation, declared together; domain errors map to statuses.

    `items` is the model of a list's items when the answer is a page (`items`, `next_cursor`);
    `example` is a request body the document offers (schema-driven clients replay it).
    """
    register(Operation(method, path, summary, response, status, request, query, write, key_optional, items,
                       tuple(content_types or ()), response_media, example, replayed))
    # Chalice would answer a wrong media type with its own body; every type reaches `admit`, which
    # answers 415 (or 413 for a body over API Gateway's 10 MB) in the error schema.
    options: dict[str, Any] = {"methods": [method.upper()], "cors": True, "content_types": ["*/*"]}
    accepted = content_types or ["application/json"]

    def declare(handler: Callable[P, Response]) -> Callable[P, Response]:
        @functools.wraps(handler)
        def admitted(*args: P.args, **kwargs: P.kwargs) -> Response:
            if method.lower() in ("post", "put", "patch"):
                admit(blueprint.current_request, accepted)
            return handler(*args, **kwargs)

        wrapped = api(admitted)

        @functools.wraps(handler)
        def correlated(*args: P.args, **kwargs: P.kwargs) -> Response:
            """The request's correlation id goes on its log lines, its readings, and back in the answer."""
            try:
                value = telemetry.request_correlation_id(_current_request(blueprint))
            except BadInput as error:
                return error_response(error)
            with telemetry.correlated(value):
                response = wrapped(*args, **kwargs)
            # A fresh dict: answers share their header dicts (errors.HEADERS).
            response.headers = {**(response.headers or {}), telemetry.CORRELATION_HEADER: value}
            return response

        blueprint.route(path, **options)(correlated)
        return correlated

    return declare


def _current_request(blueprint: Blueprint) -> Any:
    try:
        return blueprint.current_request
    except RuntimeError:  # called in process, outside a request
        return None


@lru_cache(maxsize=1)
def openapi_document() -> dict[str, Any]:
    models: set[type[BaseModel]] = {schemas.ErrorOut, schemas.ReadingIn}  # ReadingIn: ReadingsIn's items
    for op in OPERATIONS:
        models.update(m for m in (op.request, op.response) if m is not None)
    models.update(op.items for op in OPERATIONS if op.items is not None)
    models.update(op.replayed for op in OPERATIONS if op.replayed is not None)
    ordered = sorted(models, key=lambda m: m.__name__)
    _, definitions = models_json_schema([(m, "validation") for m in ordered],
                                        ref_template="#/components/schemas/{model}")
    components = definitions.get("$defs", {})
    paths: dict[str, dict[str, Any]] = {}
    for op in OPERATIONS:
        paths.setdefault(op.path, {})[op.method] = _operation(op)
    return {
        "openapi": "3.1.0",
        "info": {"title": "D-REC platform API", "version": "1.0.0",
                 "description": "Registry, validation, issuance, trading and ledger of D-RECs (1 kWh each)."},
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"ApiKey": {"type": "apiKey", "in": "header", "name": "X-Api-Key"}},
        },
    }


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{model.__name__}"}


ERROR_STATUSES = {400: "malformed: the field named does not match this document",
                  401: "no key, or a key nobody holds", 403: "the key may not do this", 404: "no such resource",
                  409: "conflict: already done, wrong state, overlap", 413: "body over 10 MB",
                  415: "a media type this route does not read", 422: "a rule beyond this document is broken",
                  503: "the store or the chain did not answer in time: send the same request again (Retry-After)"}


CORRELATION_PARAMETER: dict[str, Any] = {
    "name": telemetry.CORRELATION_HEADER, "in": "header", "required": False,
    "schema": {"type": "string", "pattern": telemetry.CORRELATION_ID_PATTERN},
    "description": "Your id for this request (else API Gateway's request id, else a new one): stored on the "
                   "readings it brings and written on every log line about them; answered in the same header"}


def _parameter(param: str | Param) -> dict[str, Any]:
    spec = param if isinstance(param, Param) else text(param, "Filter; leave it out to not filter by it")
    out: dict[str, Any] = {"name": spec.name, "in": "query", "required": spec.required, "schema": spec.schema}
    if spec.description:
        out["description"] = spec.description
    if spec.example is not None:
        out["example"] = spec.example
    return out


def _operation(op: Operation) -> dict[str, Any]:
    if op.response_media != "application/json":
        body_schema: dict[str, Any] = {"type": "string"}
    elif op.response is not None:
        body_schema = _ref(op.response)
    elif op.items is not None:
        body_schema = {"type": "object", "required": ["items", "next_cursor"], "properties": {
            "items": {"type": "array", "items": _ref(op.items)},
            "next_cursor": {"type": ["string", "null"]}}}
    else:
        body_schema = {"type": "object"}
    codes = {400, 404, 503}
    if op.method in ("post", "put", "patch"):
        codes |= {413, 415}
    if op.write:
        codes |= {401, 403, 409, 422}
    elif op.key_optional:
        codes.add(401)
    responses: dict[str, Any] = {str(op.status): {"description": "success", "content": {op.response_media: {
        "schema": body_schema}}, "headers": {telemetry.CORRELATION_HEADER: {
            "description": "The request's correlation id: its readings, their log lines and events carry it",
            "schema": {"type": "string"}}}}}
    if op.replayed is not None:
        responses["200"] = {"description": "already registered: the existing record (no key)", "content": {
            "application/json": {"schema": _ref(op.replayed)}}}
    for code in sorted(codes):
        responses[str(code)] = {"description": ERROR_STATUSES[code], "content": {"application/json": {
            "schema": _ref(schemas.ErrorOut)}}}
    out: dict[str, Any] = {"summary": op.summary, "responses": responses}
    parameters = [{"name": p.strip("{}"), "in": "path", "required": True,
                   "schema": {"type": "string", "minLength": 1, "pattern": schemas.NO_CONTROL_CHARACTERS}}
                  for p in op.path.split("/") if p.startswith("{")]
    parameters += [_parameter(q) for q in op.query]
    parameters.append(CORRELATION_PARAMETER)
    out["parameters"] = parameters
    if op.request is not None:
        media: dict[str, Any] = {"schema": _ref(op.request)}
        if op.example is not None:
            media["example"] = op.example
        out["requestBody"] = {"required": True, "content": {"application/json": media}}
    elif op.content_types:
        # Any bytes are a file: an empty one or one that is no CSV is read too, and its report says why.
        out["requestBody"] = {"required": False, "content": {
            t: {"schema": {"description": "the file's bytes"},
                **({"example": op.example} if op.example is not None else {})} for t in op.content_types}}
    if op.write:
        out["security"] = [{"ApiKey": []}]
    elif op.key_optional:
        out["security"] = [{}, {"ApiKey": []}]
    return out
