"""The operator's decision on a device under review (clear / suspend), on the fakes and on moto alike."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import date
from typing import Any

import pytest

from chalicelib.domain.device_review import HELD_RULE, SUSPENDED_RULE
from chalicelib.domain.errors import Conflict, Forbidden, NotFound, RuleBroken
from chalicelib.domain.ledger.events import Event
from chalicelib.domain.model import AccountKind, DeviceType, OfftakerType, Principal, SourceKind
from chalicelib.domain.readings import (
    DeviceWrites,
    ReadingStatus,
    ReceivedReading,
    Stage,
    StateChange,
    Transition,
    reading_id,
)
from chalicelib.domain.registry import DeviceStatus, RegisterAccount, RegisterDevice, RegisterSource
from chalicelib.domain.time import parse_utc
from chalicelib.services import registry as registering
from chalicelib.services.device_review import decide_device_review
from tests.conftest import OPERATOR_KEY, Api
from tests.fakes.events import FakeEventLog
from tests.fakes.queues import FakeQueue
from tests.fakes.readings import FakeReadings
from tests.fakes.registry import FakeRegistry

OPERATOR = Principal("operator", "operator")
SITE = {"altitude_m": 1650.0, "linke_turbidity": [3.0] * 12}
OPENED = {"state": "open", "opened_at": "2026-10-20T12:00:00Z", "reference": "peers", "cusum": 5.2, "days": 5,
          "last_day_ratio": 1.31, "review_epoch": 0,
          "reason": "output has stayed above its neighbours for 5 days (CUSUM 5.2 ≥ 5; last day ×1.31)"}


@dataclass
class Rig:
    """A registry, readings and a readings queue: the in-memory fakes or DynamoDB and SQS on moto."""

    registry: Any
    readings: Any
    queue: Any
    events: Any  # () -> list[Event]
    open_review: Any  # (device_id) -> None, as the validator does

    def queued_messages(self) -> int:
        return int(self.queue.in_queue())


def _fake_rig() -> Rig:
    events = FakeEventLog()
    registry, readings, queue = FakeRegistry(events), FakeReadings(events), FakeQueue()

    def open_review(device_id: str) -> None:
        device = registry.devices_by_id[device_id]
        registry.devices_by_id[device_id] = replace(device, status=DeviceStatus.UNDER_REVIEW, review=OPENED)

    return Rig(registry, readings, queue, lambda: list(events.events), open_review)


def _moto_rig(aws: Any) -> Rig:
    registry = aws.registry

    def open_review(device_id: str) -> None:
        # The validator's side of the contract: status under_review (from active) with the review's figures.
        registry.client.update_item(
            TableName=registry.name("devices"), Key={"id": {"S": device_id}},
            UpdateExpression="SET #s = :s, review = :r", ConditionExpression="#s = :a",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":s": {"S": "under_review"}, ":a": {"S": "active"},
                                       ":r": {"M": {k: {"N": str(v)} if isinstance(v, (int, float)) else {"S": v}
                                                    for k, v in OPENED.items()}}})

    def events() -> list[Event]:
        return [e for shard in range(aws.events.shards) for e in aws.events.in_order(shard, 1000, None)[0]]

    return Rig(registry, aws.readings, aws.queue("readings"), events, open_review)


@pytest.fixture(params=["fakes", "moto"])
def rig(request: pytest.FixtureRequest) -> Rig:
    if request.param == "fakes":
        return _fake_rig()
    return _moto_rig(request.getfixturevalue("aws"))


def _device(rig: Rig) -> tuple[Principal, str]:
    """A source, an account and its device, registered as the API does; (the source, the device id)."""
    done = registering.register_source(rig.registry, OPERATOR, RegisterSource("Agg", SourceKind.AGGREGATOR))
    source = Principal("source", done.record["source_id"])
    account = registering.register_account(rig.registry, source,
                                           RegisterAccount("Dev", AccountKind.DEVELOPER, "KE")).record
    device = registering.register_device(rig.registry, source, RegisterDevice(
        account["account_id"], DeviceType.SOLAR_HOME_SYSTEM, 100.0, -1.29, 36.82, "KE", date(2025, 1, 15),
        OfftakerType.HOUSEHOLD), lambda lat, lon: SITE).record
    return source, device["device_id"]


def _hour(hour: int) -> tuple[str, str]:
    return f"2026-10-21T{hour:02d}:00:00Z", f"2026-10-21T{hour + 1:02d}:00:00Z"


def _stored(device_id: str, hour: int, status: ReadingStatus, rule: str | None) -> ReceivedReading:
    start, end = _hour(hour)
    return ReceivedReading(reading_id(device_id, parse_utc(start), parse_utc(end)), device_id, "acc", start, end,
                           40, "src", status=status, stage=None, received_at="2026-10-21T18:00:00Z",
                           judged_at="2026-10-21T18:01:00Z", judged_energy_wh=40, rule=rule,
                           reason="held: device under review" if rule else None, numbers={"expected_wh": 30.0})


def _under_review(rig: Rig, held_hours: tuple[int, ...] = (10, 11, 12)) -> tuple[Principal, str, list[str]]:
    """A device under review whose validator accepted 09:00 and held `held_hours` (their periods claimed)."""
    source, device_id = _device(rig)
    rig.open_review(device_id)
    readings = [_stored(device_id, 9, ReadingStatus.ACCEPTED, "ok"),
                *(_stored(device_id, h, ReadingStatus.FLAGGED, HELD_RULE) for h in held_hours),
                _stored(device_id, 13, ReadingStatus.FLAGGED, "beyond_2_sigma_high")]  # held for another rule
    assert rig.readings.store_new(readings, "src") == []
    spans = sorted(r.span for r in readings)
    claim = StateChange(device_id, 0, ((spans[0][0], spans[-1][1]),), {"accepted_count": 1})
    assert rig.readings.commit_verdicts([DeviceWrites(device_id, claim, [], [])]) == []
    return source, device_id, [r.reading_id for r in readings[1:1 + len(held_hours)]]


def test_clearing_reopens_the_device_and_sends_its_held_readings_back_to_the_validator(rig: Rig) -> None:
    # GIVEN a device under review with three readings held by it
    _, device_id, held = _under_review(rig)
    # WHEN the operator clears it
    done = decide_device_review(rig.registry, rig.readings, rig.queue, OPERATOR, device_id, "clear",
                                "inspected: new panels, output confirmed")
    # THEN the device is active again, its epoch bumped (the validator starts its CUSUM afresh)
    device = rig.registry.device(device_id)
    assert (device.status, device.review_epoch) == (DeviceStatus.ACTIVE, 1)
    assert device.review["state"] == "cleared" and device.review["note"] == "inspected: new panels, output confirmed"
    assert device.review["decided_by"] == "operator" and device.review["cusum"] == 5.2  # the figures stay
    assert done["status"] == "active" and done["held_readings"] == 3 and done["review"]["state"] == "cleared"
    # AND the decision is an event naming the device and the figures that opened the review
    (event,) = [e for e in rig.events() if e.type == "DeviceReviewCleared"]
    assert event.subject_id == device_id and event.body["decision"] == "clear"
    assert event.body["from_status"] == "under_review" and event.body["last_day_ratio"] == 1.31
    # AND the held readings are queued again, their held verdict gone and their periods released
    after = rig.readings.readings(held)
    assert {(r.status, r.stage, r.rule, r.reason) for r in after.values()} == {
        (ReadingStatus.QUEUED, Stage.VALIDATION, None, None)}
    assert all(r.review["decision"] == "clear" for r in after.values())
    state = rig.readings.device_states([device_id])[device_id]
    nine, one = (_stored(device_id, h, ReadingStatus.ACCEPTED, None).span for h in (9, 13))
    assert state.ranges == (nine, one) and state.history == {"accepted_count": 1}
    # AND their ids are on the readings queue; the reading flagged for its own rule stays flagged
    assert rig.queued_messages() == 1
    others, _ = rig.readings.device_readings(device_id, 10, None, ReadingStatus.FLAGGED)
    assert [r.rule for r in others] == ["beyond_2_sigma_high"]


def test_suspending_rejects_the_held_readings_naming_the_note(rig: Rig) -> None:
    _, device_id, held = _under_review(rig, (10, 11))
    done = decide_device_review(rig.registry, rig.readings, rig.queue, OPERATOR, device_id, "suspend",
                                "meter tampered with")
    device = rig.registry.device(device_id)
    assert (device.status, device.review_epoch, device.review["state"]) == (DeviceStatus.SUSPENDED, 0, "suspended")
    assert done["held_readings"] == 2 and rig.queued_messages() == 0
    after = rig.readings.readings(held).values()
    assert {(r.status, r.stage, r.rule) for r in after} == {(ReadingStatus.REJECTED, None, SUSPENDED_RULE)}
    assert all("meter tampered with" in (r.reason or "") for r in after)
    (event,) = [e for e in rig.events() if e.type == "DeviceSuspended"]
    assert event.subject_id == device_id and event.body["note"] == "meter tampered with"
    # The rejected periods are free again; the accepted one and the one held for its own rule stay claimed
    assert len(rig.readings.device_states([device_id])[device_id].ranges) == 2
    # AND a suspended device is not suspended again, nor cleared
    for decision in ("suspend", "clear"):
        with pytest.raises(Conflict):
            decide_device_review(rig.registry, rig.readings, rig.queue, OPERATOR, device_id, decision, "again")


def test_only_the_operator_decides_and_only_on_a_device_under_review(rig: Rig) -> None:
    source, device_id = _device(rig)
    with pytest.raises(Forbidden):
        decide_device_review(rig.registry, rig.readings, rig.queue, source, device_id, "clear", "mine")
    with pytest.raises(NotFound):
        decide_device_review(rig.registry, rig.readings, rig.queue, OPERATOR, "dev-nobody", "clear", "x")
    with pytest.raises(Conflict) as active:
        decide_device_review(rig.registry, rig.readings, rig.queue, OPERATOR, device_id, "clear", "nothing to clear")
    assert "active" in active.value.message
    with pytest.raises(RuleBroken) as blank:
        decide_device_review(rig.registry, rig.readings, rig.queue, OPERATOR, device_id, "suspend", "   ")
    assert blank.value.field == "note"
    assert not [e for e in rig.events() if e.type in ("DeviceReviewCleared", "DeviceSuspended")]


def test_the_same_idempotency_key_answers_again_and_settles_what_was_left(rig: Rig) -> None:
    _, device_id, _ = _under_review(rig, (10,))
    first = decide_device_review(rig.registry, rig.readings, rig.queue, OPERATOR, device_id, "clear", "ok", "k-1")
    # A reading the validator held after the decision (it read the device just before) is left over
    late = _stored(device_id, 15, ReadingStatus.FLAGGED, HELD_RULE)
    assert rig.readings.store_new([late], "src") == []
    again = decide_device_review(rig.registry, rig.readings, rig.queue, OPERATOR, device_id, "clear", "ok", "k-1")
    assert {k: v for k, v in again.items() if k != "held_readings"} == {
        k: v for k, v in first.items() if k != "held_readings"}
    assert (first["held_readings"], again["held_readings"]) == (1, 1)
    assert rig.readings.readings([late.reading_id])[late.reading_id].status == ReadingStatus.QUEUED
    assert len([e for e in rig.events() if e.type == "DeviceReviewCleared"]) == 1
    assert rig.registry.device(device_id).review_epoch == 1
    # The key names that request only; without a key the device is no longer under review
    with pytest.raises(RuleBroken) as other:
        decide_device_review(rig.registry, rig.readings, rig.queue, OPERATOR, device_id, "suspend", "ok", "k-1")
    assert other.value.field == "Idempotency-Key"
    with pytest.raises(Conflict):
        decide_device_review(rig.registry, rig.readings, rig.queue, OPERATOR, device_id, "clear", "ok")


def test_a_decision_made_on_a_stale_read_is_refused(rig: Rig) -> None:
    _, device_id, _ = _under_review(rig, (10,))
    stale = rig.registry.device(device_id)
    decide_device_review(rig.registry, rig.readings, rig.queue, OPERATOR, device_id, "clear", "first")
    from chalicelib.domain.device_review import decided
    from chalicelib.domain.ledger.events import NewEvent
    from chalicelib.domain.stores import TransactionRefused

    after = decided(stale, "suspend", "second", "operator", "2026-10-22T00:00:00Z")
    with pytest.raises(TransactionRefused):
        rig.registry.decide_review(stale, after, NewEvent("DeviceSuspended", device_id, "operator",
                                                          "2026-10-22T00:00:00Z", {"device_id": device_id}))
    assert rig.registry.device(device_id).status == DeviceStatus.ACTIVE


def _decide(api: Api, device_id: str, body: Any, key: str | None = OPERATOR_KEY,
            idempotency_key: str | None = None) -> tuple[int, Any]:
    headers = {"Content-Type": "application/json"}
    if key:
        headers["X-Api-Key"] = key
    if idempotency_key:
        headers["Idempotency-Key"] = idempotency_key
    response = api.client.http.post(f"/devices/{device_id}/review", headers=headers, body=json.dumps(body))
    return response.status_code, json.loads(response.body)


def test_the_review_route_and_who_sees_the_review(api: Api, aws: Any) -> None:
    from tests.conftest import registered_device

    source, _, device = registered_device(api)
    device_id = device["device_id"]
    rig = _moto_rig(aws)
    rig.open_review(device_id)
    body = {"decision": "clear", "note": "checked on site"}
    assert _decide(api, device_id, body, key=None)[0] == 401
    assert _decide(api, device_id, body, key=source["api_key"])[0] == 403
    assert _decide(api, "dev-nobody", body)[0] == 404
    status, error = _decide(api, device_id, {"decision": "forget", "note": "x"})
    assert status == 400 and error["error"]["field"] == "decision"
    status, error = _decide(api, device_id, {"decision": "clear", "note": ""})
    assert status == 400 and error["error"]["field"] == "note"
    # The public sees the status, not the review; the owner's source and the operator see both
    _, public = api.get(f"/devices/{device_id}")
    assert public["status"] == "under_review" and "review" not in public and "review_epoch" not in public
    _, owned = api.get(f"/devices/{device_id}", key=source["api_key"])
    assert owned["review"]["state"] == "open" and owned["review"]["cusum"] == 5.2
    _, listed = api.get("/devices")
    assert all("review" not in d for d in listed["items"])
    status, done = _decide(api, device_id, body, idempotency_key="dec-1")
    assert status == 200 and done["status"] == "active" and done["review"]["decided_by"] == "operator", done
    assert _decide(api, device_id, body, idempotency_key="dec-1") == (200, done)
    status, error = _decide(api, device_id, body)
    assert status == 409 and error["error"]["field"] == "decision"
    _, operator_view = api.get(f"/devices/{device_id}", key=OPERATOR_KEY)
    assert operator_view["review"]["note"] == "checked on site" and operator_view["review_epoch"] == 1


def test_a_cleared_reading_is_judged_afresh_by_the_validator_not_refused_as_its_own_overlap(api: Api,
                                                                                             aws: Any) -> None:
    from tests.conftest import pump, registered_device

    # GIVEN a reading the validator held (its period claimed) because its device went under review
    source, _, device = registered_device(api, capacity_w=100, tilt_deg=10, azimuth_deg=0)
    device_id = device["device_id"]
    _moto_rig(aws).open_review(device_id)
    _, body = api.post("/readings", {"readings": [{"device_id": device_id, "period_start": "2026-10-14T09:00:00Z",
                                                   "period_end": "2026-10-14T10:00:00Z", "energy_wh": 60}]},
                       key=source["api_key"])
    held_id = body["accepted"][0]["reading_id"]
    span = aws.readings.readings([held_id])[held_id].span
    hold = Transition(held_id, ReadingStatus.QUEUED, ReadingStatus.FLAGGED, None, judged_energy_wh=60,
                      judged_at="2026-10-14T10:05:00Z", rule=HELD_RULE, reason="held: the device is under review")
    assert aws.readings.commit_verdicts([DeviceWrites(device_id, StateChange(device_id, 0, (span,), {}),
                                                      [hold], [])]) == []
    # WHEN the operator clears the device and the queues are delivered
    status, done = _decide(api, device_id, {"decision": "clear", "note": "fine"})
    assert status == 200 and done["held_readings"] == 1, done
    assert api.get(f"/readings/{held_id}")[1]["status"] == "queued"
    pump(aws)
    # THEN the validator judged it again on its own merits: its period was released, so no overlap with itself
    _, reading = api.get(f"/readings/{held_id}")
    assert reading["status"] in ("accepted", "flagged", "awaiting_peers") and reading["rule"] not in (
        "overlap", HELD_RULE), reading


def test_a_device_under_review_still_reports_and_a_suspended_one_does_not() -> None:
    from chalicelib.api.reading_input import parse_reading
    from chalicelib.services.intake import Intake

    rig = _fake_rig()
    source, device_id = _device(rig)
    rig.open_review(device_id)
    intake = Intake(rig.registry, rig.readings, rig.queue, parse_reading)
    start, end = _hour(10)
    item = {"device_id": device_id, "period_start": start, "period_end": end, "energy_wh": 40}
    # Under review: received and queued (the validator holds it for the operator's decision)
    assert intake.submit(source, [(0, item)]).queued == 1
    decide_device_review(rig.registry, rig.readings, rig.queue, OPERATOR, device_id, "suspend", "tampered")
    start, end = _hour(11)
    refused = Intake(rig.registry, rig.readings, rig.queue, parse_reading).submit(
        source, [(0, {**item, "period_start": start, "period_end": end})])
    ((_, error),) = refused.errors
    assert isinstance(error, RuleBroken) and "suspended" in error.message and error.field == "readings.0.device_id"
