"""Intake, validation and review on the in-memory stores: each reading stored, judged and handed on once."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from chalicelib.domain.errors import Conflict, Forbidden
from chalicelib.domain.readings import ReadingStatus, Stage
from chalicelib.services import review
from chalicelib.services.intake import get_reading, submit_payment
from tests.fakes.faults import Faults
from tests.fakes.world import OPERATOR, World

DAY = "2026-10-14"
NOW = datetime(2026, 11, 1, tzinfo=UTC)


def _reading(device_id: str, start: str, end: str, energy_wh: Any, **extra: Any) -> dict[str, Any]:
    return {"device_id": device_id, "period_start": start, "period_end": end, "energy_wh": energy_wh, **extra}


def test_readings_are_stored_and_queued_once_and_bad_items_refused_alone() -> None:
    world = World()
    source, _, device = world.registered_device()
    d = device["device_id"]
    items = [_reading(d, f"{DAY}T08:00:00Z", f"{DAY}T09:00:00Z", 40, external_id="r1"),
             _reading(d, f"{DAY}T09:00:00Z", f"{DAY}T10:00:00Z", 12.5),
             _reading("dev-nobody", f"{DAY}T09:00:00Z", f"{DAY}T10:00:00Z", 12)]
    result = world.intake().submit(source, list(enumerate(items)))
    assert [i for i, _ in result.accepted] == [0] and result.queued == 1
    assert [(i, e.field) for i, e in result.errors] == [(1, "readings.1.energy_wh"), (2, "readings.2.device_id")]
    (reading_id,) = world.readings_queue.reading_ids()
    stored = world.readings.readings([reading_id])[reading_id]
    assert (stored.status, stored.stage, stored.owner_account_id) == (ReadingStatus.QUEUED, Stage.VALIDATION,
                                                                       device["owner_account_id"])
    # WHEN the same reading comes again THEN the same id, nothing queued; other energy is a conflict
    again = world.intake().submit(source, [(0, items[0])])
    assert again.accepted == [(0, reading_id)] and again.queued == 0
    other = world.intake().submit(source, [(0, {**items[0], "energy_wh": 41})])
    ((_, error),) = other.errors
    assert isinstance(error, Conflict) and reading_id in error.message and "40 Wh" in error.message
    # AND an external id names one reading only
    moved = world.intake().submit(source, [(0, _reading(d, f"{DAY}T10:00:00Z", f"{DAY}T11:00:00Z", 5,
                                                         external_id="r1"))])
    assert moved.errors[0][1].field == "readings.0.external_id"
    assert world.readings_queue.reading_ids() == [reading_id]


def test_only_who_may_act_for_the_owner_submits() -> None:
    world = World()
    _, _, device = world.registered_device()
    stranger, _ = world.source()
    result = world.intake().submit(stranger, [(0, _reading(device["device_id"], f"{DAY}T08:00:00Z",
                                                           f"{DAY}T09:00:00Z", 40))])
    assert isinstance(result.errors[0][1], Forbidden) and not world.readings.items


def test_other_energy_landing_between_the_check_and_the_write_is_refused_naming_the_stored_reading() -> None:
    world = World()
    source, _, device = world.registered_device()
    reading = _reading(device["device_id"], f"{DAY}T08:00:00Z", f"{DAY}T09:00:00Z", 40)
    # GIVEN another request stores 90 Wh for the same period right after this one checked and found nothing
    intake = world.intake()
    store = Faults(world.readings)
    intake.store = store
    store.hook("contents", lambda: world.intake().submit(source, [(0, {**reading, "energy_wh": 90})]), after=True)
    # WHEN this request writes THEN its write is refused, it reads again, and answers with a conflict
    result = intake.submit(source, [(0, reading)])
    ((_, error),) = result.errors
    assert isinstance(error, Conflict) and "90 Wh" in error.message and result.queued == 0
    assert store.calls["contents"] == 2  # read again after the refused write
    (stored,) = world.readings.items.values()
    assert stored.energy_wh == 90


def _judged(world: World, source: Any, items: list[dict[str, Any]]) -> tuple[list[str], dict[str, int]]:
    result = world.intake().submit(source, list(enumerate(items)))
    assert not result.errors, result.errors
    ids = [r for _, r in result.accepted]
    return ids, world.validator().validate(ids, now=NOW)


def test_the_validator_accepts_once_and_never_counts_an_overlap_twice() -> None:
    world = World()
    source, _, device = world.registered_device()
    d = device["device_id"]
    ids, counts = _judged(world, source, [_reading(d, f"{DAY}T05:00:00Z", f"{DAY}T13:00:00Z", 400),
                                          _reading(d, f"{DAY}T12:00:00Z", f"{DAY}T14:00:00Z", 60)])
    assert counts == {"accepted": 1, "rejected": 1}
    first, second = (world.readings.items[i] for i in ids)
    assert (first.status, first.stage, first.judged_energy_wh) == (ReadingStatus.ACCEPTED, Stage.POOLING, 400)
    assert (second.status, second.rule, second.stage) == (ReadingStatus.REJECTED, "overlap", None)
    assert world.accepted_queue.reading_ids() == [ids[0]]
    (event,) = world.events.of_type("ReadingAccepted")
    assert event.body["energy_wh"] == 400 and event.related_ids == (d,)
    assert world.readings.states[d].version == 1
    # WHEN the batch is redelivered THEN nothing changes
    assert world.validator().validate(ids, now=NOW) == {}
    assert len(world.events.events) == 4 and world.readings.states[d].version == 1


def test_a_validator_losing_the_race_for_device_state_reads_again_and_never_double_claims() -> None:
    world = World()
    source, _, device = world.registered_device()
    d = device["device_id"]
    ids, _ = _judged(world, source, [_reading(d, f"{DAY}T05:00:00Z", f"{DAY}T13:00:00Z", 400)])
    later = world.intake().submit(source, [(0, _reading(d, "2026-10-15T05:00:00Z", "2026-10-15T13:00:00Z", 380)),
                                           (1, _reading(d, "2026-10-15T06:00:00Z", "2026-10-15T07:00:00Z", 30))])
    first_id, overlapping_id = (r for _, r in later.accepted)
    # GIVEN a second validator commits the first reading right after this one read the device state
    validator = world.validator()
    store = Faults(world.readings)
    validator.store = store
    store.hook("device_states", lambda: world.validator().validate([first_id], now=NOW), after=True)
    # WHEN this validator judges both THEN its first commit is refused, it reads again, and the overlap is rejected
    assert validator.validate([first_id, overlapping_id], now=NOW) == {"rejected": 1}
    assert store.calls["commit_verdicts"] == 2
    assert world.readings.items[overlapping_id].rule == "overlap"
    assert world.accepted_queue.reading_ids().count(first_id) == 1
    assert ids


def test_a_flagged_reading_is_reviewed_by_the_operator_only_once() -> None:
    world = World()
    source, _, device = world.registered_device()
    d = device["device_id"]
    # A high reading on a clear-sky site, below the ceiling, is beyond 2 sigma high: held for review.
    (reading_id,), counts = _judged(world, source, [_reading(d, "2026-10-21T06:00:00Z", "2026-10-21T12:00:00Z", 550)])
    assert counts == {"flagged": 1} and world.readings.states[d].ranges
    with pytest.raises(Forbidden):
        review.review_reading(world.readings, world.accepted_queue, source, reading_id, "accept", None)
    done = review.review_reading(world.readings, world.accepted_queue, OPERATOR, reading_id, "reject", "meter fault")
    assert done["status"] == "rejected" and world.readings.states[d].ranges == ()
    assert world.readings.items[reading_id].review == {"decision": "reject", "note": "meter fault",
                                                       "by": "operator", "at": done["review"]["at"]}
    with pytest.raises(Conflict):
        review.review_reading(world.readings, world.accepted_queue, OPERATOR, reading_id, "accept", None)


def test_an_accepted_review_hands_the_judged_energy_on_for_issuance() -> None:
    world = World()
    source, _, device = world.registered_device()
    (reading_id,), _ = _judged(world, source, [_reading(device["device_id"], "2026-10-21T06:00:00Z",
                                                        "2026-10-21T12:00:00Z", 550)])
    review.review_reading(world.readings, world.accepted_queue, OPERATOR, reading_id, "accept", None)
    reading = world.readings.items[reading_id]
    assert (reading.status, reading.stage, reading.judged_energy_wh) == (ReadingStatus.ACCEPTED, Stage.POOLING, 550)
    assert world.accepted_queue.reading_ids() == [reading_id]
    (event,) = world.events.of_type("ReadingAccepted")
    assert event.body["review"] == {"decision": "accept", "by": "operator"}
    view = get_reading(world.readings, reading_id)
    assert view["status"] == "accepted" and view["serials"] == [] and view["pooled_wh"] == 0


def test_a_payment_becomes_a_derived_reading_capped_by_the_twin() -> None:
    world = World()
    source, _, device = world.registered_device()
    reading_id = submit_payment(world.intake(), source, device["device_id"], datetime(2026, 10, 20, tzinfo=UTC),
                                datetime(2026, 10, 23, tzinfo=UTC), "pay-1")
    reading = world.readings.items[reading_id]
    assert reading.derived and reading.payment and reading.payment["rule"] == "capacity x solar hours"
    assert 0 < reading.energy_wh <= 100 * 72
