"""Writers on different event shards never touch the same item: concurrent commits on the emulator.

Each writer thread commits events under its own device's shard key; every commit reads its shard's
counter and advances it with a condition in the same transaction (`DynamoBase.commit`). Writers of
different shards take zero sequence conflicts; the same writers on ONE shard lose races (the test
can fail), and every shard's events stay gap-free either way.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from chalicelib.adapters.dynamo import SEQUENCE_RACES
from chalicelib.adapters.event_store import DynamoEvents
from chalicelib.domain.ledger.events import NewEvent
from chalicelib.domain.ledger.shards import device_key, shard_of
from infra.resources import physical
from tests.integration.test_emulator import PREFIX, emulator  # noqa: F401  (the fixture)

SHARDS = 8
WRITERS = 4
ROUNDS = 25
EVENTS_PER_COMMIT = 2


def _devices_in_distinct_shards(count: int) -> list[str]:
    chosen: dict[int, str] = {}
    for i in range(1000):
        device = f"dev-{i}"
        chosen.setdefault(shard_of(device_key(device), SHARDS), device)
        if len(chosen) == count:
            return list(chosen.values())
    raise AssertionError("not enough shards")


def _run_writers(session: boto3.session.Session, device_of: list[str]) -> tuple[int, list[Exception]]:
    """`WRITERS` threads, writer w committing `ROUNDS` times under device_of[w]'s shard, all starting each round
    together (a barrier), so that writers of one shard read its counter at the same time. Returns the races lost."""
    stores = [DynamoEvents(session.client("dynamodb"), lambda logical: physical(PREFIX, logical), SHARDS)
              for _ in device_of]
    start = threading.Barrier(len(device_of))
    errors: list[Exception] = []

    def writer(w: int) -> None:
        try:
            for r in range(ROUNDS):
                start.wait()
                stores[w].commit([], [NewEvent("DeviceRegistered", f"{device_of[w]}-{r}-{i}", "test",
                                               "2026-11-01T00:00:00Z", {"writer": w, "round": r, "i": i})
                                      for i in range(EVENTS_PER_COMMIT)], shard_key=device_key(device_of[w]))
        except Exception as exc:  # collected for the assertion
            errors.append(exc)
            start.abort()

    SEQUENCE_RACES.reset()
    threads = [threading.Thread(target=writer, args=(w,)) for w in range(len(device_of))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return SEQUENCE_RACES.total(), errors


def _gap_free(session: boto3.session.Session, shard: int) -> list[int]:
    events = DynamoEvents(session.client("dynamodb"), lambda logical: physical(PREFIX, logical), SHARDS)
    seqs: list[int] = []
    cursor = None
    while True:
        page, cursor = events.in_order(shard, 100, cursor)
        seqs += [e.seq for e in page]
        assert all(e.shard == shard and e.event_id == f"ev-{shard}-{e.seq:012d}" for e in page)
        if not cursor:
            return seqs


@pytest.fixture
def session(emulator: Any) -> Iterator[boto3.session.Session]:  # noqa: F811  (the imported fixture)
    yield emulator


def test_writers_on_different_shards_take_zero_sequence_conflicts(session: boto3.session.Session) -> None:
    # GIVEN one writer per shard
    devices = _devices_in_distinct_shards(WRITERS)
    # WHEN they commit concurrently
    races, errors = _run_writers(session, devices)
    # THEN no commit lost a race for its sequence numbers, and every shard is gap-free
    assert errors == []
    assert races == 0
    for device in devices:
        shard = shard_of(device_key(device), SHARDS)
        assert _gap_free(session, shard) == list(range(1, ROUNDS * EVENTS_PER_COMMIT + 1))


def test_the_same_writers_on_one_shard_do_lose_races_and_stay_gap_free(session: boto3.session.Session) -> None:
    # GIVEN the same number of writers, all on one device's shard
    device = _devices_in_distinct_shards(1)[0]
    # WHEN they commit concurrently
    races, errors = _run_writers(session, [device] * WRITERS)
    # THEN commits conflicted on the shard's counter (and were retried), and the shard is still gap-free
    assert errors == []
    print(f"\n{WRITERS} writers x {ROUNDS} commits on one shard: {races} sequence races lost and retried")
    assert races > 0
    assert _gap_free(session, shard_of(device_key(device), SHARDS)) == list(
        range(1, WRITERS * ROUNDS * EVENTS_PER_COMMIT + 1))
