"""OpenAPI 3 document generated from the pydantic models of `chalicelib.schemas`."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from . import schemas


@dataclass(frozen=True)
class Operation:
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


PAGED = ("limit", "cursor")

OPERATIONS: list[Operation] = [
    Operation("post", "/sources", "Register a source (operator)", schemas.SourceCreated, 201, schemas.SourceIn,
              write=True),
    Operation("get", "/sources", "List sources", None, query=PAGED),
    Operation("get", "/sources/{source_id}", "One source", schemas.SourceOut),
    Operation("post", "/accounts", "Register an account (operator or source)", schemas.AccountCreated, 201,
              schemas.AccountIn, write=True),
    Operation("get", "/accounts", "List accounts (contact only for the account's side)", None,
              query=PAGED + ("kind", "country"), key_optional=True),
    Operation("get", "/accounts/{account_id}", "One account (contact only for the account's side)",
              schemas.AccountOut, key_optional=True),
    Operation("post", "/devices", "Register a device (operator, source, or owner)", schemas.DeviceOut, 201,
              schemas.DeviceIn, write=True),
    Operation("get", "/devices", "List devices (exact locations only for the owner's side)", None,
              query=PAGED + ("owner_account_id", "country", "device_type"), key_optional=True),
    Operation("get", "/devices/{device_id}", "One device (exact location only for the owner's side)",
              schemas.DeviceOut, key_optional=True),
    Operation("get", "/events", "List events", None, query=PAGED + ("subject_id", "type")),
    Operation("get", "/events/{event_id}", "One event", schemas.EventOut),
    Operation("get", "/events/{event_id}/proof", "Merkle proof of an anchored event", schemas.ProofOut),
    Operation("get", "/ledger", "The chain and ledger contract events are anchored on", schemas.LedgerOut),
    Operation("post", "/readings", "Push up to 1000 readings (each signed if its device or source has a key)",
              schemas.ReadingsAccepted, 202, schemas.ReadingsIn, write=True),
    Operation("get", "/readings", "Readings by status (default flagged)", None, query=PAGED + ("status",)),
    Operation("get", "/readings/{reading_id}", "One reading and its verdict", schemas.ReadingOut),
    Operation("post", "/readings/{reading_id}/review", "Operator decision on a flagged reading", None, 200,
              schemas.ReviewIn, write=True),
    Operation("get", "/devices/{device_id}/readings", "A device's readings", None, query=PAGED + ("status",)),
    Operation("post", "/payments", "A pay-as-you-go window becomes a derived reading", None, 202,
              schemas.PaymentIn, write=True),
    Operation("post", "/uploads", "A CSV of readings (text/csv body, ?name=); answers with the report",
              schemas.UploadReport, 200, write=True, query=("name",)),
    Operation("post", "/uploads/url", "A presigned PUT URL (at most 15 min) for incoming/<source_id>/<name>.csv "
              "(source keys only)", schemas.UploadUrlOut, 201, write=True, query=("name",)),
    Operation("get", "/drecs", "D-RECs by owner, status and characteristics", None,
              query=PAGED + ("owner_account_id", "status", "country", "device_type", "offtaker_type", "device_id",
                             "vintage_from", "vintage_to")),
    Operation("get", "/drecs/{serial}", "One D-REC: contributions, hourly Wh, events", schemas.DrecOut),
    Operation("get", "/drecs/{serial}/verify", "Check a D-REC's trail against the chain", None),
    Operation("get", "/stats", "Registry totals and issuance by month", schemas.StatsOut),
    Operation("get", "/whoami", "Whose key this is", None, write=True),
]

LIST_ITEMS: dict[str, type[BaseModel]] = {
    "/sources": schemas.SourceOut,
    "/accounts": schemas.AccountOut,
    "/devices": schemas.DeviceOut,
    "/events": schemas.EventOut,
    "/readings": schemas.ReadingOut,
    "/devices/{device_id}/readings": schemas.ReadingOut,
    "/drecs": schemas.DrecOut,
}


def register(*operations: Operation, list_items: dict[str, type[BaseModel]] | None = None) -> None:
    """Further capabilities add their operations here; the document is built on first request."""
    OPERATIONS.extend(operations)
    LIST_ITEMS.update(list_items or {})
    openapi_document.cache_clear()


@lru_cache(maxsize=1)
def openapi_document() -> dict[str, Any]:
    models: set[type[BaseModel]] = {schemas.ErrorOut, schemas.ReadingIn}  # ReadingIn: ReadingsIn's items
    for op in OPERATIONS:
        models.update(m for m in (op.request, op.response) if m is not None)
    models.update(LIST_ITEMS.values())
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
    elif op.path in LIST_ITEMS:
        body_schema = {"type": "object", "required": ["items"], "properties": {
            "items": {"type": "array", "items": _ref(LIST_ITEMS[op.path])},
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
