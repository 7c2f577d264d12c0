"""Validators running at once: whole devices per queue message, and a device that keeps losing its state's
race goes back to the queue on its own while the rest of the batch is judged."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from chalicelib.domain.readings import IDS_PER_MESSAGE, DeviceWrites, id_messages
from chalicelib.services.validation import ATTEMPTS, Validator
from tests.fakes.readings import FakeReadings
from tests.fakes.world import World


def test_a_device_is_never_split_between_messages_unless_it_alone_is_larger() -> None:
    # GIVEN 9 devices of 24 readings each and one of 130, in device order
    devices = [f"dev-{d}" for d in range(9) for _ in range(24)] + ["dev-big"] * 130
    ids = [f"rdg-{i}" for i in range(len(devices))]
    bodies = id_messages(ids, "cid-1", devices)
    # THEN every id is named once, in order, no body holds more than IDS_PER_MESSAGE, and only dev-big is split
    assert [i for body in bodies for i in body["reading_ids"]] == ids
    assert all(len(body["reading_ids"]) <= IDS_PER_MESSAGE and body["correlation_id"] == "cid-1" for body in bodies)
    device_of = dict(zip(ids, devices))
    bodies_of: dict[str, int] = {}
    for body in bodies:
        for device in {device_of[i] for i in body["reading_ids"]}:
            bodies_of[device] = bodies_of.get(device, 0) + 1
    assert {d: n for d, n in bodies_of.items() if n > 1} == {"dev-big": 2}
    # AND without devices, bodies are plain slices of IDS_PER_MESSAGE
    assert [len(b["reading_ids"]) for b in id_messages(ids)] == [100, 100, 100, 46]


class LosingDevice(FakeReadings):
    """A store where another writer always changed one device's state first."""

    loser = ""
    refusals = 0

    def commit_verdicts(self, groups: Sequence[DeviceWrites]) -> list[DeviceWrites]:
        lost = [g for g in groups if g.device_id == self.loser]
        self.refusals += len(lost)
        return lost + super().commit_verdicts([g for g in groups if g.device_id != self.loser])


def _readings(world: World, devices: int) -> tuple[list[str], dict[str, str]]:
    source, account, _ = world.registered_device()
    device_ids = [world.device(source, account["account_id"])["device_id"] for _ in range(devices)]
    start = dt.datetime(2026, 10, 14, 9, tzinfo=dt.UTC)
    items: list[dict[str, Any]] = [
        {"device_id": d, "period_start": (start + dt.timedelta(hours=h)).isoformat().replace("+00:00", "Z"),
         "period_end": (start + dt.timedelta(hours=h + 1)).isoformat().replace("+00:00", "Z"), "energy_wh": 40}
        for d in device_ids for h in range(3)]
    result = world.intake().submit(source, list(enumerate(items)))
    assert not result.errors
    ids = [reading_id for _, reading_id in result.accepted]
    return ids, {i: r.device_id for i, r in world.readings.readings(ids).items()}


def test_a_device_that_keeps_losing_its_race_goes_back_to_the_queue_and_the_rest_is_judged() -> None:
    # GIVEN three devices' readings, and a store where device 2's state is always changed by someone else first
    world = World()
    world.readings = store = LosingDevice(world.events, world.registry)
    ids, device_of = _readings(world, 3)
    store.loser = sorted(set(device_of.values()))[1]
    world.readings_queue.messages.clear()
    validator = Validator(world.registry, store, world.accepted_queue, readings_queue=world.readings_queue)
    # WHEN one batch judges them all
    counts = validator.validate(ids, now=dt.datetime(2026, 10, 16, tzinfo=dt.UTC))
    # THEN the loser was tried ATTEMPTS times, then its readings alone were queued again (one message, in order)
    lost = [i for i in ids if device_of[i] == store.loser]
    assert store.refusals == ATTEMPTS
    assert world.readings_queue.messages == [{"reading_ids": sorted(lost)}]
    assert counts["sent_again"] == len(lost)
    # AND every other reading was judged, and none of the loser's
    stored = store.readings(ids)
    assert {stored[i].status.value for i in ids if i not in lost} <= {"accepted", "flagged", "rejected",
                                                                        "awaiting_peers"}
    assert all(stored[i].status.value == "queued" for i in lost)


def test_without_a_queue_to_send_them_to_the_batch_fails_for_redelivery() -> None:
    world = World()
    world.readings = store = LosingDevice(world.events, world.registry)
    ids, device_of = _readings(world, 2)
    store.loser = sorted(set(device_of.values()))[0]
    validator = Validator(world.registry, store, world.accepted_queue)
    try:
        validator.validate(ids, now=dt.datetime(2026, 10, 16, tzinfo=dt.UTC))
    except RuntimeError as exc:
        assert "lost every race" in str(exc)
    else:
        raise AssertionError("expected the batch to fail")
