"""HTTP routes and event handlers: parse, call a use case, return."""

from __future__ import annotations

from chalice import Chalice

from chalicelib import bootstrap, schemas
from chalicelib.openapi import openapi_document
from chalicelib.services import provenance, registry
from chalicelib.services.access import authenticate
from chalicelib.web import api, json_response, page_body, paging

app = Chalice(app_name="drec-platform")


def _query() -> dict[str, str]:
    return app.current_request.query_params or {}


def _principal():  # type: ignore[no-untyped-def]
    c = bootstrap.container()
    return authenticate(c.registry, c.settings.operator_key, app.current_request.headers.get("x-api-key"))


@app.route("/openapi.json", methods=["GET"], cors=True)
@api
def openapi():  # type: ignore[no-untyped-def]
    return json_response(openapi_document())


@app.route("/sources", methods=["POST"], cors=True)
@api
def post_source():  # type: ignore[no-untyped-def]
    command = schemas.parse(schemas.SourceIn, app.current_request.raw_body)
    done = registry.register_source(bootstrap.container().registry, _principal(), command)
    return json_response({**done.record, "api_key": done.api_key}, 201)


@app.route("/sources", methods=["GET"], cors=True)
@api
def get_sources():  # type: ignore[no-untyped-def]
    return json_response(page_body(registry.list_sources(bootstrap.container().registry, *paging(_query()))))


@app.route("/sources/{source_id}", methods=["GET"], cors=True)
@api
def get_source(source_id: str):  # type: ignore[no-untyped-def]
    return json_response(registry.get_source(bootstrap.container().registry, source_id))


@app.route("/accounts", methods=["POST"], cors=True)
@api
def post_account():  # type: ignore[no-untyped-def]
    command = schemas.parse(schemas.AccountIn, app.current_request.raw_body)
    done = registry.register_account(bootstrap.container().registry, _principal(), command)
    body = {**done.record, "api_key": done.api_key} if done.created else done.record
    return json_response(body, 201 if done.created else 200)


@app.route("/accounts", methods=["GET"], cors=True)
@api
def get_accounts():  # type: ignore[no-untyped-def]
    q = _query()
    page = registry.list_accounts(bootstrap.container().registry, *paging(q), kind=q.get("kind"),
                                  country=q.get("country"))
    return json_response(page_body(page))


@app.route("/accounts/{account_id}", methods=["GET"], cors=True)
@api
def get_account(account_id: str):  # type: ignore[no-untyped-def]
    return json_response(registry.get_account(bootstrap.container().registry, account_id))


@app.route("/devices", methods=["POST"], cors=True)
@api
def post_device():  # type: ignore[no-untyped-def]
    command = schemas.parse(schemas.DeviceIn, app.current_request.raw_body)
    c = bootstrap.container()
    done = registry.register_device(c.registry, _principal(), command, c.site_lookup)
    return json_response(done.record, 201 if done.created else 200)


@app.route("/devices", methods=["GET"], cors=True)
@api
def get_devices():  # type: ignore[no-untyped-def]
    q = _query()
    page = registry.list_devices(bootstrap.container().registry, *paging(q), owner_account_id=q.get(
        "owner_account_id"), country=q.get("country"), device_type=q.get("device_type"))
    return json_response(page_body(page))


@app.route("/devices/{device_id}", methods=["GET"], cors=True)
@api
def get_device(device_id: str):  # type: ignore[no-untyped-def]
    return json_response(registry.get_device(bootstrap.container().registry, device_id))


@app.route("/events", methods=["GET"], cors=True)
@api
def get_events():  # type: ignore[no-untyped-def]
    q = _query()
    page = provenance.list_events(bootstrap.container().events, *paging(q), subject_id=q.get("subject_id"),
                                  event_type=q.get("type"))
    return json_response(page_body(page))


@app.route("/events/{event_id}", methods=["GET"], cors=True)
@api
def get_event(event_id: str):  # type: ignore[no-untyped-def]
    return json_response(provenance.get_event(bootstrap.container().events, event_id))
