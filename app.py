"""HTTP routes and event handlers: parse, call a use case, return."""

from __future__ import annotations

from chalice import Chalice, Rate

from chalicelib import bootstrap, schemas
from chalicelib import request as edge
from chalicelib.adapters.sqs import record_bodies
from chalicelib.config import queue_name
from chalicelib.domain.errors import BadInput
from chalicelib.openapi import openapi_document
from chalicelib.portal import portal
from chalicelib.routes_keys import keys
from chalicelib.routes_trading import trading
from chalicelib.services import (
    anchoring,
    certificates,
    intake,
    maintenance,
    provenance,
    registry,
    review,
    stats,
    uploads,
)
from chalicelib.web import api, json_response, page_body, paging

app = Chalice(app_name="drec-platform")
app.register_blueprint(trading)
app.register_blueprint(keys)
app.register_blueprint(portal)


def _query() -> dict[str, str]:
    request = app.current_request
    return dict(request.query_params or {}) if request else {}


def _body() -> bytes:
    request = app.current_request
    raw = (request.raw_body if request else b"") or b""
    return raw.encode() if isinstance(raw, str) else raw


def _idempotency_key() -> str | None:
    return edge.idempotency_key(app.current_request)


def _principal():  # type: ignore[no-untyped-def]
    return edge.principal(app.current_request)


def _viewer():  # type: ignore[no-untyped-def]
    """Who reads: None (the public) without a key; a key nobody holds is a 401, as on writes."""
    return _principal() if app.current_request.headers.get("x-api-key") else None


@app.route("/openapi.json", methods=["GET"], cors=True)
@api
def openapi():  # type: ignore[no-untyped-def]
    return json_response(openapi_document())


@app.route("/whoami", methods=["GET"], cors=True)
@api
def whoami():  # type: ignore[no-untyped-def]
    principal = _principal()
    return json_response({"kind": principal.kind, "id": principal.id})


@app.route("/stats", methods=["GET"], cors=True)
@api
def get_stats():  # type: ignore[no-untyped-def]
    return json_response(stats.registry_stats(bootstrap.container().drecs))


@app.route("/sources", methods=["POST"], cors=True)
@api
def post_source():  # type: ignore[no-untyped-def]
    command = schemas.parse(schemas.SourceIn, _body())
    done = registry.register_source(bootstrap.container().registry, _principal(), command, _idempotency_key())
    return json_response({**done.record, "api_key": done.api_key} if done.created else done.record,
                         201 if done.created else 200)


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
    command = schemas.parse(schemas.AccountIn, _body())
    done = registry.register_account(bootstrap.container().registry, _principal(), command, _idempotency_key())
    body = {**done.record, "api_key": done.api_key} if done.created else done.record
    return json_response(body, 201 if done.created else 200)


@app.route("/accounts", methods=["GET"], cors=True)
@api
def get_accounts():  # type: ignore[no-untyped-def]
    q = _query()
    page = registry.list_accounts(bootstrap.container().registry, *paging(q), kind=q.get("kind"),
                                  country=q.get("country"), viewer=_viewer())
    return json_response(page_body(page))


@app.route("/accounts/{account_id}", methods=["GET"], cors=True)
@api
def get_account(account_id: str):  # type: ignore[no-untyped-def]
    return json_response(registry.get_account(bootstrap.container().registry, account_id, _viewer()))


@app.route("/devices", methods=["POST"], cors=True)
@api
def post_device():  # type: ignore[no-untyped-def]
    command = schemas.parse(schemas.DeviceIn, _body())
    c = bootstrap.container()
    done = registry.register_device(c.registry, _principal(), command, c.site_lookup, _idempotency_key())
    return json_response(done.record, 201 if done.created else 200)


@app.route("/devices", methods=["GET"], cors=True)
@api
def get_devices():  # type: ignore[no-untyped-def]
    q = _query()
    page = registry.list_devices(bootstrap.container().registry, *paging(q), owner_account_id=q.get(
        "owner_account_id"), country=q.get("country"), device_type=q.get("device_type"), viewer=_viewer())
    return json_response(page_body(page))


@app.route("/devices/{device_id}", methods=["GET"], cors=True)
@api
def get_device(device_id: str):  # type: ignore[no-untyped-def]
    return json_response(registry.get_device(bootstrap.container().registry, device_id, _viewer()))


@app.route("/events", methods=["GET"], cors=True)
@api
def get_events():  # type: ignore[no-untyped-def]
    q = _query()
    c = bootstrap.container()
    page = provenance.list_events(c.events, c.batches, *paging(q), subject_id=q.get("subject_id"),
                                  event_type=q.get("type"))
    return json_response(page_body(page))


@app.route("/events/{event_id}", methods=["GET"], cors=True)
@api
def get_event(event_id: str):  # type: ignore[no-untyped-def]
    c = bootstrap.container()
    return json_response(provenance.get_event(c.events, c.batches, event_id))


@app.route("/events/{event_id}/proof", methods=["GET"], cors=True)
@api
def get_event_proof(event_id: str):  # type: ignore[no-untyped-def]
    c = bootstrap.container()
    ledger = provenance.ledger_info(c.chain, c.settings)
    return json_response(c.proofs.proof(event_id, ledger["chain_id"], ledger["contract_address"]))


@app.route("/ledger", methods=["GET"], cors=True)
@api
def get_ledger():  # type: ignore[no-untyped-def]
    c = bootstrap.container()
    return json_response(provenance.ledger_info(c.chain, c.settings))


# -- readings -------------------------------------------------------------------------------
@app.route("/readings", methods=["POST"], cors=True)
@api
def post_readings():  # type: ignore[no-untyped-def]
    c = bootstrap.container()
    principal = _principal()
    body = schemas.parse(schemas.ReadingsIn, _body())
    result = c.intake().submit(principal, list(enumerate(body.readings)))
    return json_response(result.to_dict(), 202)


@app.route("/payments", methods=["POST"], cors=True)
@api
def post_payment():  # type: ignore[no-untyped-def]
    body = schemas.parse(schemas.PaymentIn, _body())
    reading_id = intake.submit_payment(bootstrap.container().intake(), _principal(), body.device_id, body.paid_from,
                                       body.paid_until, body.external_id, body.signature)
    return json_response({"reading_id": reading_id}, 202)


@app.route("/uploads", methods=["POST"], cors=True,
           content_types=["text/csv", "text/plain", "application/octet-stream"])
@api
def post_upload():  # type: ignore[no-untyped-def]
    c = bootstrap.container()
    name = _query().get("name", "upload.csv")
    body = _body()
    report = uploads.ingest_posted(c.intake(), _principal(), c.uploads_bucket, name, body)
    return json_response(report, 200)


@app.route("/uploads/url", methods=["POST"], cors=True)
@api
def post_upload_url():  # type: ignore[no-untyped-def]
    c = bootstrap.container()
    announced = uploads.announce_upload(c.upload_announcements, c.uploads_bucket, _principal(), _query().get("name"),
                                        c.settings.upload_url_ttl_s)
    return json_response(announced, 201)


@app.route("/readings", methods=["GET"], cors=True)
@api
def get_readings():  # type: ignore[no-untyped-def]
    q = _query()
    page = bootstrap.container().readings.by_status(_status(q.get("status") or "flagged"), *paging(q))
    return json_response({"items": [intake.reading_view(i) for i in page.items], "next_cursor": page.next_cursor})


@app.route("/readings/{reading_id}", methods=["GET"], cors=True)
@api
def get_reading(reading_id: str):  # type: ignore[no-untyped-def]
    return json_response(intake.get_reading(bootstrap.container().readings, reading_id))


@app.route("/readings/{reading_id}/review", methods=["POST"], cors=True)
@api
def post_review(reading_id: str):  # type: ignore[no-untyped-def]
    c = bootstrap.container()
    body = schemas.parse(schemas.ReviewIn, _body())
    return json_response(review.review_reading(c.readings, c.queue("accepted"), _principal(), reading_id,
                                               body.decision, body.note))


@app.route("/devices/{device_id}/readings", methods=["GET"], cors=True)
@api
def get_device_readings(device_id: str):  # type: ignore[no-untyped-def]
    q = _query()
    c = bootstrap.container()
    registry.get_device(c.registry, device_id)
    status = _status(q["status"]) if q.get("status") else None
    page = c.readings.device_readings(device_id, *paging(q), status)
    return json_response({"items": [intake.reading_view(i) for i in page.items], "next_cursor": page.next_cursor})


def _status(value: str) -> str:
    if value not in ("queued", "accepted", "rejected", "flagged"):
        raise BadInput("status must be queued, accepted, rejected or flagged", field="status")
    return value


@app.on_sqs_message(queue=queue_name("readings"), batch_size=10)
def validate_readings(event):  # type: ignore[no-untyped-def]
    ids = [i for body in record_bodies(event) for i in body.get("reading_ids", [])]
    bootstrap.container().validator.validate(ids)


@app.on_sqs_message(queue=queue_name("uploads"), batch_size=1)
def ingest_upload(event):  # type: ignore[no-untyped-def]
    c = bootstrap.container()
    for body in record_bodies(event):
        for notified in uploads.s3_records(body):
            uploads.ingest_object(c.intake(), c.registry, c.upload_announcements, c.uploads_bucket, notified)


@app.on_sqs_message(queue=queue_name("accepted"), batch_size=10)
def issue_drecs(event):  # type: ignore[no-untyped-def]
    ids = [i for body in record_bodies(event) for i in body.get("reading_ids", [])]
    bootstrap.container().issuer.issue(ids)


# -- D-RECs ---------------------------------------------------------------------------------
@app.route("/drecs", methods=["GET"], cors=True)
@api
def get_drecs():  # type: ignore[no-untyped-def]
    q = _query()
    return json_response(page_body(certificates.list_drecs(bootstrap.container().drecs, *paging(q), q)))


@app.route("/drecs/{serial}", methods=["GET"], cors=True)
@api
def get_drec(serial: str):  # type: ignore[no-untyped-def]
    c = bootstrap.container()
    item = certificates.get_drec(c.drecs, serial)
    events = provenance.list_events(c.events, c.batches, 100, None, subject_id=serial).items
    return json_response(certificates.detail(item, events))


@app.route("/drecs/{serial}/verify", methods=["GET"], cors=True)
@api
def verify_drec(serial: str):  # type: ignore[no-untyped-def]
    from chalicelib.verify import Verifier

    c = bootstrap.container()
    certificates.get_drec(c.drecs, serial)
    if c.chain is None:
        raise BadInput("no chain is configured to verify against", field="serial")
    verifier = Verifier(c.settings.public_url, str(c.settings.chain_rpc), c.settings.ledger_address)
    return json_response(verifier.verify(serial).to_dict())


@app.schedule(Rate(1, unit=Rate.MINUTES))
def sweep(event):  # type: ignore[no-untyped-def]
    c = bootstrap.container()
    maintenance.requeue_waiting(c.readings, c.queue)
    maintenance.finish_stale_moves(c.trades)
    maintenance.finish_links(c.drecs)


@app.schedule(Rate(1, unit=Rate.MINUTES))
def anchor_events(event):  # type: ignore[no-untyped-def]
    c = bootstrap.container()
    if c.chain is not None:
        anchoring.anchor_pending(c.events, c.batches, c.chain, c.ledger_bucket, c.settings.anchor_batch_size)
