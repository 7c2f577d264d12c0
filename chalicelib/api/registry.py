"""Routes of the registry: sources, accounts, devices, who is calling, totals, and the API's own document."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chalice import Blueprint, Response
from pydantic import BaseModel

from .. import bootstrap
from ..domain.registry import RegisterAccount, RegisterDevice, RegisterSource
from ..services import device_review, operations, stats
from ..services import registry as registering
from . import schemas
from .errors import api, json_response, page_body
from .openapi import PAGED, openapi_document, route
from .request import PAGING, incoming

registry = Blueprint(__name__)


@registry.route("/openapi.json", methods=["GET"], cors=True)
@api
def openapi() -> Response:
    return json_response(openapi_document())


@route(registry, "get", "/whoami", "Whose key this is", write=True)
def whoami() -> Response:
    principal = incoming(registry).principal()
    return json_response({"kind": principal.kind, "id": principal.id})


@route(registry, "get", "/stats", "Registry totals, issuance by month, and the pipeline's operations: queue and "
       "dead-letter depths, anchoring lag, readings by status (counters and queue attributes, never a scan)",
       schemas.StatsOut)
def get_stats() -> Response:
    c = bootstrap.container()
    totals = c.drecs.totals()
    return json_response({**stats.registry_stats(c.drecs, totals),
                          "operations": operations.operations(c.queue, c.events, c.batches, totals)})


def _listed(lister: Callable[..., Any], *filters: str, **extra: Any) -> Response:
    """A page of accounts or devices, filtered by the query's `filters`, as the caller's key may see it."""
    rq = incoming(registry)
    page = lister(bootstrap.container().registry, *rq.paging(), **{f: rq.query.get(f) for f in filters},
                  viewer=rq.viewer(), **extra)
    return json_response(page_body(page))


def _registration(register: Callable[..., registering.Registered], model: type[BaseModel],
                  command_type: Callable[..., Any], site_lookup: bool = False) -> Response:
    """201 with the new record (and its key, shown once) the first time; 200 with the same record on a replay."""
    rq = incoming(registry)
    command = command_type(**rq.parse(model).model_dump())
    c = bootstrap.container()
    extra = {"site_lookup": c.site_lookup} if site_lookup else {}
    done = register(c.registry, rq.principal(), command, idempotency_key=rq.idempotency_key(), **extra)
    body = {**done.record, "api_key": done.api_key} if done.created and done.api_key else done.record
    return json_response(body, 201 if done.created else 200)


@route(registry, "post", "/sources", "Register a source (operator)", schemas.SourceCreated, 201,
       request=schemas.SourceIn, write=True, replayed=schemas.SourceOut,
       example={"name": "Example aggregator", "kind": "aggregator"})
def post_source() -> Response:
    return _registration(registering.register_source, schemas.SourceIn, RegisterSource)


@route(registry, "get", "/sources", "List sources", query=PAGED, items=schemas.SourceOut)
def get_sources() -> Response:
    page = registering.list_sources(bootstrap.container().registry, *incoming(registry).paging())
    return json_response(page_body(page))


@route(registry, "get", "/sources/{source_id}", "One source", schemas.SourceOut)
def get_source(source_id: str) -> Response:
    return json_response(registering.get_source(bootstrap.container().registry, source_id))


@route(registry, "post", "/accounts", "Register an account (operator or source)", schemas.AccountCreated, 201,
       request=schemas.AccountIn, write=True, replayed=schemas.AccountOut,
       example={"name": "Example developer", "kind": "developer", "country": "KE"})
def post_account() -> Response:
    return _registration(registering.register_account, schemas.AccountIn, RegisterAccount)


@route(registry, "get", "/accounts", "List accounts (contact only for the account's side); " + PAGING,
       query=PAGED + ("kind", "country"), key_optional=True, items=schemas.AccountOut)
def get_accounts() -> Response:
    return _listed(registering.list_accounts, "kind", "country")


@route(registry, "get", "/accounts/{account_id}", "One account (contact only for the account's side)",
       schemas.AccountOut, key_optional=True)
def get_account(account_id: str) -> Response:
    return json_response(registering.get_account(bootstrap.container().registry, account_id,
                                                 incoming(registry).viewer()))


@route(registry, "post", "/devices", "Register a device (operator, source, or owner)", schemas.DeviceOut, 201,
       request=schemas.DeviceIn, write=True, replayed=schemas.DeviceOut,
       example={"owner_account_id": "acc-example", "device_type": "solar_home_system", "capacity_w": 100,
                "latitude": -1.29, "longitude": 36.82, "country": "KE", "commissioning_date": "2025-01-15",
                "offtaker_type": "household"})
def post_device() -> Response:
    return _registration(registering.register_device, schemas.DeviceIn, RegisterDevice, site_lookup=True)


@route(registry, "get", "/devices", "List devices (exact locations only for the owner's side); " + PAGING,
       query=PAGED + ("owner_account_id", "country", "device_type"), key_optional=True, items=schemas.DeviceOut)
def get_devices() -> Response:
    return _listed(registering.list_devices, "owner_account_id", "country", "device_type",
                   figures=_figures())


@route(registry, "get", "/devices/{device_id}", "One device (exact location only for the owner's side)",
       schemas.DeviceOut, key_optional=True)
def get_device(device_id: str) -> Response:
    return json_response(registering.get_device(bootstrap.container().registry, device_id,
                                                incoming(registry).viewer(), _figures()))


def _figures() -> registering.DeviceFigures:
    c = bootstrap.container()
    return registering.DeviceFigures(c.readings, c.drecs)


@route(registry, "post", "/devices/{device_id}/review", "Operator decision on a device under review: clear (its held "
       "readings are judged again) or suspend (they are rejected); header Idempotency-Key optional",
       schemas.DeviceDecisionOut, 200, request=schemas.DeviceReviewIn, write=True,
       example={"decision": "clear", "note": "inspected on site: new panels, output confirmed"})
def post_device_review(device_id: str) -> Response:
    rq = incoming(registry)
    c = bootstrap.container()
    body = rq.parse(schemas.DeviceReviewIn)
    return json_response(device_review.decide_device_review(c.registry, c.readings, c.queue("readings"),
                                                            rq.principal(), device_id, body.decision, body.note,
                                                            rq.idempotency_key()))
