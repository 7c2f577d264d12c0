"""Readings in through the API, judged by the validator handler, on an in-memory AWS."""

from __future__ import annotations

import json
from typing import Any

from tests.conftest import Api, pump, registered_device

NOON_UTC = "2026-10-14T09:00:00Z"  # Nairobi is UTC+3: 12:00-13:00 local


def _reading(device_id: str, start: str, end: str, energy_wh: Any, **extra: Any) -> dict[str, Any]:
    return {"device_id": device_id, "period_start": start, "period_end": end, "energy_wh": energy_wh, **extra}


def test_honest_reading_accepted_with_expectation_and_event(api: Api, aws: Any) -> None:
    source, _, device = registered_device(api, capacity_w=100, tilt_deg=10, azimuth_deg=0)
    status, body = api.post("/readings", {"readings": [
        _reading(device["device_id"], "2026-10-14T09:00:00Z", "2026-10-14T10:00:00Z", 60)]}, key=source["api_key"])
    assert status == 202 and not body["errors"], body
    reading_id = body["accepted"][0]["reading_id"]
    assert api.get(f"/readings/{reading_id}")[1]["status"] == "queued"
    pump(aws)
    _, reading = api.get(f"/readings/{reading_id}")
    assert reading["status"] == "accepted", reading
    assert reading["expected_wh"] > 0 and reading["sigma_wh"] > 0 and reading["ceiling_wh"] > 60
    _, events = api.get(f"/events?subject_id={reading_id}")
    assert [e["type"] for e in events["items"]] == ["ReadingAccepted"]


def test_impossible_readings_rejected_with_rule(api: Api, aws: Any) -> None:
    source, _, device = registered_device(api, capacity_w=100)
    d = device["device_id"]
    _, body = api.post("/readings", {"readings": [
        _reading(d, "2026-10-15T09:00:00Z", "2026-10-15T10:00:00Z", 300),   # 3x clear sky at noon
        _reading(d, "2026-10-15T21:00:00Z", "2026-10-15T22:00:00Z", 40),    # local midnight
    ]}, key=source["api_key"])
    pump(aws)
    noon, night = (api.get(f"/readings/{a['reading_id']}")[1] for a in body["accepted"])
    assert noon["status"] == "rejected" and noon["rule"] in ("above_ceiling", "above_capacity"), noon
    assert night["status"] == "rejected" and night["rule"] == "night", night
    assert "Wh" in noon["reason"]


def test_overlap_rejected_and_resubmission_counts_once(api: Api, aws: Any) -> None:
    source, _, device = registered_device(api, capacity_w=100)
    d = device["device_id"]
    first = _reading(d, "2026-10-16T08:00:00Z", "2026-10-16T10:00:00Z", 100)
    _, one = api.post("/readings", {"readings": [first]}, key=source["api_key"])
    _, again = api.post("/readings", {"readings": [first]}, key=source["api_key"])
    assert one["accepted"] == again["accepted"]
    pump(aws)
    _, body = api.post("/readings", {"readings": [_reading(d, "2026-10-16T09:00:00Z", "2026-10-16T11:00:00Z", 50)]},
                       key=source["api_key"])
    pump(aws)
    overlap = api.get(f"/readings/{body['accepted'][0]['reading_id']}")[1]
    assert overlap["status"] == "rejected" and overlap["rule"] == "overlap", overlap
    _, listed = api.get(f"/devices/{d}/readings?status=accepted")
    assert len(listed["items"]) == 1


def test_bad_readings_named_by_index_rest_proceed(api: Api, aws: Any) -> None:
    source, _, device = registered_device(api)
    d = device["device_id"]
    readings = [
        _reading(d, "2026-10-17T09:00:00Z", "2026-10-17T10:00:00Z", 50),
        _reading(d, "2026-10-17T10:00:00Z", "2026-10-17T11:00:00Z", -5),
        _reading(d, "2026-10-17T11:00:00Z", "2026-10-17T12:00:00Z", 12.5),
        _reading(d, "2026-10-17T12:00:00", "2026-10-17T13:00:00Z", 5),
        _reading(d, "2026-10-01T00:00:00Z", "2026-11-15T00:00:00Z", 5),
        _reading("dev-unknown", "2026-10-17T09:00:00Z", "2026-10-17T10:00:00Z", 5),
        _reading(d, "2026-10-17T13:00:00Z", "2026-10-17T14:00:00Z", "lots"),
    ]
    status, body = api.post("/readings", {"readings": readings}, key=source["api_key"])
    assert status == 202
    assert [a["index"] for a in body["accepted"]] == [0]
    fields = {e["index"]: e["error"]["field"] for e in body["errors"]}
    assert fields == {1: "readings.1.energy_wh", 2: "readings.2.energy_wh", 3: "readings.3.period_start",
                      4: "readings.4.period_end", 5: "readings.5.device_id", 6: "readings.6.energy_wh"}


def test_device_of_another_owner_refused(api: Api) -> None:
    _, _, device = registered_device(api)
    other, _, _ = registered_device(api)
    _, body = api.post("/readings", {"readings": [_reading(device["device_id"], "2026-10-17T09:00:00Z",
                                                           "2026-10-17T10:00:00Z", 5)]}, key=other["api_key"])
    assert body["errors"][0]["error"]["code"] == "forbidden"


def test_redelivered_batch_changes_nothing(api: Api, aws: Any) -> None:
    from chalicelib.api import handlers
    from infra.dispatcher import LambdaContext

    source, _, device = registered_device(api)
    _, body = api.post("/readings", {"readings": [_reading(device["device_id"], "2026-10-19T09:00:00Z",
                                                           "2026-10-19T10:00:00Z", 50)]}, key=source["api_key"])
    reading_id = body["accepted"][0]["reading_id"]
    pump(aws)
    _, events_before = api.get("/events?type=ReadingAccepted")
    event = {"Records": [{"body": json.dumps({"reading_ids": [reading_id]}), "messageId": "m", "receiptHandle": "r",
                          "attributes": {}, "messageAttributes": {}, "md5OfBody": "", "eventSource": "aws:sqs",
                          "eventSourceARN": "arn:aws:sqs:us-east-1:1:q", "awsRegion": "us-east-1"}]}
    handlers.validate_readings(event, LambdaContext("validate_readings"))
    _, events_after = api.get("/events?type=ReadingAccepted")
    assert events_after == events_before


def test_payment_becomes_derived_reading(api: Api, aws: Any) -> None:
    source, _, device = registered_device(api, capacity_w=50, battery_wh=100)
    status, body = api.post("/payments", {"device_id": device["device_id"], "paid_from": "2026-10-20T00:00:00Z",
                                          "paid_until": "2026-10-23T00:00:00Z"}, key=source["api_key"])
    assert status == 202, body
    pump(aws)
    _, reading = api.get(f"/readings/{body['reading_id']}")
    assert reading["derived"] is True and 0 < reading["energy_wh"] <= 300
    assert reading["status"] in ("accepted", "flagged"), reading


def test_flagged_reading_reviewed_by_operator(api: Api, aws: Any) -> None:
    source, _, device = registered_device(api, capacity_w=100)
    # A high reading on a clear-sky site, below the ceiling, is beyond 2 sigma high: held for review.
    _, body = api.post("/readings", {"readings": [_reading(device["device_id"], "2026-10-21T06:00:00Z",
                                                           "2026-10-21T12:00:00Z", 550)]}, key=source["api_key"])
    pump(aws)
    reading_id = body["accepted"][0]["reading_id"]
    reading = api.get(f"/readings/{reading_id}")[1]
    assert reading["status"] == "flagged", reading
    assert api.post(f"/readings/{reading_id}/review", {"decision": "accept"}, key=source["api_key"])[0] == 403
    status, reviewed = api.post(f"/readings/{reading_id}/review", {"decision": "reject", "note": "meter fault"})
    assert status == 200 and reviewed["status"] == "rejected"
    assert api.post(f"/readings/{reading_id}/review", {"decision": "accept"})[0] == 409


def test_same_reading_again_is_the_same_reading_other_energy_is_refused(api: Api, aws: Any) -> None:
    # GIVEN a stored reading
    source, _, device = registered_device(api)
    d = device["device_id"]
    first = _reading(d, "2026-10-22T09:00:00Z", "2026-10-22T10:00:00Z", 50)
    _, one = api.post("/readings", {"readings": [first]}, key=source["api_key"])
    reading_id = one["accepted"][0]["reading_id"]
    # WHEN the same values come again, and other energy for the same device and period beside a new reading
    _, again = api.post("/readings", {"readings": [first]}, key=source["api_key"])
    status, other = api.post("/readings", {"readings": [
        _reading(d, "2026-10-22T09:00:00Z", "2026-10-22T10:00:00Z", 70),
        _reading(d, "2026-10-22T10:00:00Z", "2026-10-22T11:00:00Z", 40)]}, key=source["api_key"])
    # THEN the same values give the same id; the other energy is refused naming the stored reading, the rest proceeds
    assert again["accepted"] == [{"index": 0, "reading_id": reading_id}]
    assert status == 202 and [a["index"] for a in other["accepted"]] == [1]
    (error,) = other["errors"]
    assert error["index"] == 0 and error["error"]["code"] == "conflict", error
    assert reading_id in error["error"]["message"] and error["error"]["field"] == "readings.0.energy_wh"
    assert api.get(f"/readings/{reading_id}")[1]["energy_wh"] == 50


def test_conflicting_repeats_within_one_batch_and_by_external_id_are_refused(api: Api, aws: Any) -> None:
    # GIVEN a reading stored under an external id
    source, _, device = registered_device(api)
    d = device["device_id"]
    _, one = api.post("/readings", {"readings": [_reading(d, "2026-10-23T09:00:00Z", "2026-10-23T10:00:00Z", 50,
                                                          external_id="meter-1")]}, key=source["api_key"])
    stored_id = one["accepted"][0]["reading_id"]
    # WHEN the external id comes with another period, and one batch holds a period twice with two energies
    _, body = api.post("/readings", {"readings": [
        _reading(d, "2026-10-23T11:00:00Z", "2026-10-23T12:00:00Z", 50, external_id="meter-1"),
        _reading(d, "2026-10-23T12:00:00Z", "2026-10-23T13:00:00Z", 30),
        _reading(d, "2026-10-23T12:00:00Z", "2026-10-23T13:00:00Z", 31),
        _reading(d, "2026-10-23T12:00:00Z", "2026-10-23T13:00:00Z", 30)]}, key=source["api_key"])
    # THEN the external id's reading is named, the first of the batch's pair wins, its exact repeat shares its id
    errors = {e["index"]: e["error"] for e in body["errors"]}
    assert set(errors) == {0, 2}
    assert errors[0]["code"] == "conflict" and stored_id in errors[0]["message"]
    assert errors[0]["field"] == "readings.0.external_id"
    accepted = {a["index"]: a["reading_id"] for a in body["accepted"]}
    assert set(accepted) == {1, 3} and accepted[1] == accepted[3]
    assert errors[2]["code"] == "conflict" and accepted[1] in errors[2]["message"]
    assert api.get(f"/readings/{accepted[1]}")[1]["energy_wh"] == 30
