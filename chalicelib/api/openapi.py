"""The OpenAPI 3 document, from operations each blueprint declares beside its routes (`route`).

Request and response bodies are the pydantic models of `api.schemas`, `api.trade_schemas` and `api.key_schemas`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, ParamSpec

from chalice import Blueprint, Response
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from . import schemas
from .errors import admit, api


@dataclass(frozen=True)
class Operation:
    """One route as the document shows it: what it takes, what it answers, who may call it."""

    method: str
    path: str
    summary: str
    response: type[BaseModel] | None
    status: int = 200
    request: type[BaseModel] | None = None
    query: tuple[str, ...] = ()
    write: bool = False
    # Reads whose answer depends on the key (privacy): the key is optional, an unknown one is a 401.
    key_optional: bool = False
    items: type[BaseModel] | None = None


PAGED = ("limit", "cursor")
P = ParamSpec("P")

# Filled by `route` as the blueprints are imported; the document is built on first request.
OPERATIONS: list[Operation] = []


def register(*operations: Operation) -> None:
    OPERATIONS.extend(operations)
    openapi_document.cache_clear()


def route(blueprint: Blueprint, method: str, path: str, summary: str, response: type[BaseModel] | None = None,
          status: int = 200, *, request: type[BaseModel] | None = None, query: tuple[str, ...] = (),
          write: bool = False, key_optional: bool = False, items: type[BaseModel] | None = None,
          content_types: list[str] | None = None) -> Callable[[Callable[P, Response]], Callable[P, Response]]:
    """A route of `blueprint` and its OpenAPI operation, declared together; domain errors map to statuses.

    `items` is the model of a list's items when the answer is a page (`items`, `next_cursor`).
    """
    register(Operation(method, path, summary, response, status, request, query, write, key_optional, items))
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
        blueprint.route(path, **options)(wrapped)
        return wrapped

    return declare


@lru_cache(maxsize=1)
def openapi_document() -> dict[str, Any]:
    models: set[type[BaseModel]] = {schemas.ErrorOut, schemas.ReadingIn}  # ReadingIn: ReadingsIn's items
    for op in OPERATIONS:
        models.update(m for m in (op.request, op.response) if m is not None)
    models.update(op.items for op in OPERATIONS if op.items is not None)
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


def _operation(op: Operation) -> dict[str, Any]:
    if op.response is not None:
        body_schema: dict[str, Any] = _ref(op.response)
    elif op.items is not None:
        body_schema = {"type": "object", "required": ["items"], "properties": {
            "items": {"type": "array", "items": _ref(op.items)},
            "next_cursor": {"type": ["string", "null"]}}}
    else:
        body_schema = {"type": "object"}
    error = {"description": "error", "content": {"application/json": {"schema": _ref(schemas.ErrorOut)}}}
    out: dict[str, Any] = {
        "summary": op.summary,
        "responses": {str(op.status): {"description": "success", "content": {"application/json": {
            "schema": body_schema}}}, "400": error, "404": error},
    }
    parameters = [{"name": p.strip("{}"), "in": "path", "required": True, "schema": {"type": "string"}}
                  for p in op.path.split("/") if p.startswith("{")]
    parameters += [{"name": q, "in": "query", "required": False, "schema": {"type": "string"}} for q in op.query]
    if parameters:
        out["parameters"] = parameters
    if op.request is not None:
        out["requestBody"] = {"required": True, "content": {"application/json": {"schema": _ref(op.request)}}}
    if op.write:
        out["security"] = [{"ApiKey": []}]
        out["responses"].update({"401": error, "403": error, "409": error, "422": error})
    elif op.key_optional:
        out["security"] = [{}, {"ApiKey": []}]
        out["responses"]["401"] = error
    return out
