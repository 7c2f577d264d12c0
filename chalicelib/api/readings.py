"""Routes of readings: pushed, paid for, uploaded as CSV, listed, and reviewed by the operator."""

from __future__ import annotations

from chalice import Blueprint, Response

from .. import bootstrap
from ..domain.errors import BadInput
from ..domain.readings import ReadingStatus
from ..services import intake, review, uploads
from ..services import registry as registering
from . import schemas
from .errors import json_response
from .openapi import PAGED, Param, one_of, route
from .reading_input import parse_reading
from .request import PAGING, incoming

readings = Blueprint(__name__)

STATUS = one_of("status", [s.value for s in ReadingStatus], "Readings in this status")
# `uploads.upload_stem`: letters, digits, '.', '_', '-', at most 120, and more than the extension.
UPLOAD_NAME = {"type": "string", "pattern": r"^(?![.][cC][sS][vV]$)[A-Za-z0-9._-]{1,120}$"}
CSV_EXAMPLE = ("device_id,period_start,period_end,energy_wh\n"
               "dev-example,2026-10-14T09:00:00Z,2026-10-14T10:00:00Z,60\n")

def _status(value: str) -> ReadingStatus:
    if value not in set(ReadingStatus):
        raise BadInput("status must be one of " + ", ".join(s.value for s in ReadingStatus), field="status")
    return ReadingStatus(value)


@route(readings, "post", "/readings", "Push up to 1000 readings (each signed if its device or source has a key)",
       schemas.ReadingsAccepted, 202, request=schemas.ReadingsIn, write=True,
       example={"readings": [{"device_id": "dev-example", "period_start": "2026-10-14T09:00:00Z",
                              "period_end": "2026-10-14T10:00:00Z", "energy_wh": 60}]})
def post_readings() -> Response:
    rq = incoming(readings)
    principal = rq.principal()
    body = rq.parse(schemas.ReadingsIn)
    intake_ = bootstrap.container().intake(parse_reading)
    return json_response(intake_.submit(principal, list(enumerate(body.readings))).to_dict(), 202)


@route(readings, "post", "/payments", "A pay-as-you-go window becomes a derived reading", None, 202,
       request=schemas.PaymentIn, write=True,
       example={"device_id": "dev-example", "paid_from": "2026-10-14T00:00:00Z", "paid_until": "2026-10-15T00:00:00Z"})
def post_payment() -> Response:
    rq = incoming(readings)
    body = rq.parse(schemas.PaymentIn)
    reading_id = intake.submit_payment(bootstrap.container().intake(parse_reading), rq.principal(), body.device_id,
                                       body.paid_from, body.paid_until, body.external_id, body.signature)
    return json_response({"reading_id": reading_id}, 202)


@route(readings, "post", "/uploads", "A CSV of readings (text/csv body, ?name=); answers with the report",
       schemas.UploadReport, 200, write=True,
       query=(Param("name", UPLOAD_NAME, "File name, default upload.csv", example="day.csv"),),
       content_types=["text/csv", "text/plain", "application/octet-stream"], example=CSV_EXAMPLE)
def post_upload() -> Response:
    rq = incoming(readings)
    c = bootstrap.container()
    name, body = rq.query.get("name", "upload.csv"), rq.body
    report = uploads.ingest_posted(c.intake(parse_reading), rq.principal(), c.uploads_bucket, name, body)
    return json_response(report, 200)


@route(readings, "post", "/uploads/url", "A presigned PUT URL (at most 15 min) for incoming/<source_id>/<name>.csv "
       "(source keys only)", schemas.UploadUrlOut, 201, write=True,
       query=(Param("name", UPLOAD_NAME, "File name", required=True, example="day.csv"),))
def post_upload_url() -> Response:
    rq = incoming(readings)
    c = bootstrap.container()
    return json_response(uploads.announce_upload(c.upload_announcements, c.uploads_bucket, rq.principal(),
                                                 rq.query.get("name"), c.settings.upload_url_ttl_s), 201)


@route(readings, "get", "/readings", "Readings by status (default flagged); " + PAGING,
       query=PAGED + (STATUS,),
       items=schemas.ReadingOut)
def get_readings() -> Response:
    rq = incoming(readings)
    status = _status(rq.query.get("status") or ReadingStatus.FLAGGED)
    return json_response(intake.list_readings(bootstrap.container().readings, status, *rq.paging()))


@route(readings, "get", "/readings/{reading_id}", "One reading and its verdict", schemas.ReadingOut)
def get_reading(reading_id: str) -> Response:
    return json_response(intake.get_reading(bootstrap.container().readings, reading_id))


@route(readings, "post", "/readings/{reading_id}/review", "Operator decision on a flagged reading", None, 200,
       request=schemas.ReviewIn, write=True, example={"decision": "accept", "note": "checked on site"})
def post_review(reading_id: str) -> Response:
    rq = incoming(readings)
    c = bootstrap.container()
    body = rq.parse(schemas.ReviewIn)
    return json_response(review.review_reading(c.readings, c.queue("accepted"), rq.principal(), reading_id,
                                               body.decision, body.note))


@route(readings, "get", "/devices/{device_id}/readings", "A device's readings; " + PAGING,
       query=PAGED + (STATUS,),
       items=schemas.ReadingOut)
def get_device_readings(device_id: str) -> Response:
    rq = incoming(readings)
    c = bootstrap.container()
    limit, cursor = rq.paging()  # a bad request is a 400 whether or not the device exists
    status = _status(rq.query["status"]) if rq.query.get("status") else None
    registering.get_device(c.registry, device_id)
    return json_response(intake.list_device_readings(c.readings, device_id, limit, cursor, status))
