"""Validators running at once: whole devices per queue message, a batch judged and written a chunk at a time,
and a device that keeps losing its state's race goes back to the queue on its own while the rest is judged."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

from chalicelib.domain.readings import IDS_PER_MESSAGE, DeviceWrites, id_messages
from chalicelib.services.validation import ATTEMPTS, CHUNK_IDS, Validator
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


class Recording(FakeReadings):
    """A store noting, in order, how many devices' states each read asked for and each verdict write."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.calls: list[tuple[str, int]] = []

    def device_states(self, device_ids: Sequence[str]) -> Any:
        self.calls.append(("read states", len(device_ids)))
        return super().device_states(device_ids)

    def commit_verdicts(self, groups: Sequence[DeviceWrites]) -> list[DeviceWrites]:
        self.calls.append(("write verdicts", len(groups)))
        return super().commit_verdicts(groups)


def _readings(world: World, devices: int, hours: int = 3) -> tuple[list[str], dict[str, str]]:
    source, account, _ = world.registered_device()
    device_ids = [world.device(source, account["account_id"])["device_id"] for _ in range(devices)]
    start = dt.datetime(2026, 10, 14, 9, tzinfo=dt.UTC)
    items: list[dict[str, Any]] = [
        {"device_id": d, "period_start": (start + dt.timedelta(hours=h)).isoformat().replace("+00:00", "Z"),
         "period_end": (start + dt.timedelta(hours=h + 1)).isoformat().replace("+00:00", "Z"), "energy_wh": 40}
        for d in device_ids for h in range(hours)]
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


def test_a_batch_is_read_judged_and_written_a_chunk_at_a_time() -> None:
    # GIVEN a batch of 3 hours of 50 devices (150 ids, grouped by device as messages hold them)
    world = World()
    world.readings = store = Recording(world.events, world.registry)
    ids, device_of = _readings(world, 50)
    assert len(ids) > CHUNK_IDS
    validator = Validator(world.registry, store, world.accepted_queue, readings_queue=world.readings_queue)
    # WHEN one validator judges it
    validator.validate(ids, now=dt.datetime(2026, 10, 16, tzinfo=dt.UTC))
    # THEN the states of a chunk's devices are written before the next chunk's are read: another validator
    # holding other hours of these devices races only for the chunk in hand, not for the whole batch
    reads = [n for call, n in store.calls if call == "read states"]
    assert len(reads) == 2 and all(n <= CHUNK_IDS for n in reads)
    assert [call for call, _ in store.calls] == ["read states", "write verdicts", "read states", "write verdicts"]
    # AND every reading was judged, the device split between two chunks included
    split = device_of[ids[CHUNK_IDS]]
    assert device_of[ids[CHUNK_IDS - 1]] == split
    stored = store.readings(ids)
    assert all(stored[i].status.value != "queued" for i in ids)
    assert {stored[i].status.value for i in ids if device_of[i] == split} == {"accepted"}
