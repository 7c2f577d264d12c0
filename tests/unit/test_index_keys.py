"""Write-sharded index keys: stable shards, kept with the plain attributes, read shard after shard, backfilled once."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from typing import Any

import pytest

from chalicelib.domain.errors import BadInput
from chalicelib.domain.index_keys import INDEX_SHARDS, SHARDED, index_key, key_attribute, shard_of
from chalicelib.domain.readings import DeviceWrites, ReadingStatus, ReceivedReading, Stage, Transition
from infra.index_backfill import MARKER, ensure_index_keys
from infra.resources import RESOURCES
from tests.conftest import PREFIX

READING = ReceivedReading("rdg-0", "dev-1", "acc-1", "2026-10-14T08:00:00Z", "2026-10-14T09:00:00Z", 40, "src-1",
                          received_at="2026-10-14T09:05:00Z")


def test_an_items_shard_is_stable_spread_and_independent_of_its_value() -> None:
    assert index_key("accepted", "rdg-1") == f"accepted#{shard_of('rdg-1'):03d}"
    assert index_key("queued", "rdg-1").split("#")[1] == index_key("accepted", "rdg-1").split("#")[1]
    assert shard_of(17) == shard_of("17")  # a number or its text: the same shard
    spread = Counter(shard_of(f"rdg-{n}") for n in range(INDEX_SHARDS * 1000))
    assert len(spread) == INDEX_SHARDS and 850 < min(spread.values()) <= max(spread.values()) < 1150


def test_every_sharded_attribute_has_its_index_and_every_fleet_wide_index_is_sharded() -> None:
    indexed = {(t.logical, i.hash_key.name) for t in RESOURCES.tables for i in t.indexes}
    for table, (_, plains) in SHARDED.items():
        for plain in plains:
            assert (table, key_attribute(plain)) in indexed and (table, plain) not in indexed
    # Only per-owner and per-device keys are left unsharded on the tables written per reading.
    assert {name for table, name in indexed if table in ("readings", "drecs")} == {
        "device_id", "owner_account_id", "owner_status", *(key_attribute(p) for t in ("readings", "drecs")
                                                            for p in SHARDED[t][1])}


def _item(aws: Any, reading_id: str) -> dict[str, Any]:
    raw = aws.readings.client.get_item(TableName=f"{PREFIX}-readings", Key={"id": {"S": reading_id}})["Item"]
    return {k: next(iter(v.values())) for k, v in raw.items()}


def test_index_keys_follow_status_and_stage_and_leave_with_them(aws: Any) -> None:
    store = aws.readings
    store.store_new([READING], "src-1")
    assert {k: _item(aws, "rdg-0").get(k) for k in ("status_key", "pipeline_key")} == {
        "status_key": index_key("queued", "rdg-0"), "pipeline_key": index_key("queued", "rdg-0")}
    accept = Transition("rdg-0", ReadingStatus.QUEUED, ReadingStatus.ACCEPTED, Stage.POOLING, judged_energy_wh=40)
    assert store.commit_verdicts([DeviceWrites("dev-1", None, [accept], [])]) == []
    item = _item(aws, "rdg-0")
    assert (item["status_key"], item["pipeline_key"]) == (index_key("accepted", "rdg-0"), index_key("pooling", "rdg-0"))
    # WHEN the reading is pooled whole THEN it leaves the sparse pipeline index: both attributes are gone
    aws.drecs.transact([aws.drecs.reading_pooled("rdg-0", 0, 40, True)])
    item = _item(aws, "rdg-0")
    assert "pipeline" not in item and "pipeline_key" not in item and item["status_key"].startswith("accepted#")


def test_a_sharded_listing_pages_through_every_shard_once_and_keeps_its_cursor_to_itself(aws: Any) -> None:
    store = aws.readings
    readings = [replace(READING, reading_id=f"rdg-{n}", period_start=f"2026-10-{n % 28 + 1:02d}T08:00:00Z")
                for n in range(300)]
    store.store_new(readings, "src-1")
    assert len({shard_of(r.reading_id) for r in readings}) > INDEX_SHARDS // 2
    seen, cursor, pages = [], None, 0
    while True:
        found, cursor = store.by_status(ReadingStatus.QUEUED, 7, cursor)
        seen += [r.reading_id for r in found]
        pages += 1
        if cursor is None:
            break
    # THEN every reading once, in index order: shard after shard, id order within one
    assert seen == sorted((r.reading_id for r in readings), key=lambda i: (shard_of(i), i))
    assert pages <= 300 // 7 + 2
    # A cursor of one listing is refused by another (and the waiting readings of every shard are reached)
    _, cursor = store.by_status(ReadingStatus.QUEUED, 7, None)
    with pytest.raises(BadInput):
        store.by_status(ReadingStatus.ACCEPTED, 7, cursor)
    waiting = {r["id"] for r in store.waiting("queued", "2026-10-15T00:00:00Z", limit=INDEX_SHARDS)}
    assert {shard_of(i) for i in waiting} == {shard_of(r.reading_id) for r in readings}


def test_items_stored_before_index_keys_are_backfilled_once(aws: Any) -> None:
    dynamodb = aws.readings.client
    table = f"{PREFIX}-readings"
    # GIVEN readings as an older release stored them: plain attributes, no index keys (one with a stale key)
    for n, (status, pipeline) in enumerate((("queued", "queued"), ("accepted", "pooling"), ("rejected", None))):
        item = {"id": {"S": f"old-{n}"}, "device_id": {"S": "dev-1"}, "period_start": {"S": f"2026-10-0{n + 1}"},
                "period_end": {"S": "x"}, "energy_wh": {"N": "5"}, "status": {"S": status},
                "received_at": {"S": "2026-10-01T00:00:00Z"}}
        if pipeline:
            item["pipeline"] = {"S": pipeline}
        else:
            item["pipeline_key"] = {"S": "pooling#000"}
        dynamodb.put_item(TableName=table, Item=item)
    assert aws.readings.by_status(ReadingStatus.ACCEPTED, 10, None)[0] == []
    # WHEN the stack starts THEN each item gets its keys (the stale one loses it), once
    changed = ensure_index_keys(dynamodb, PREFIX)
    assert changed is not None and changed["readings"] == 3 and changed["drecs"] == 0
    assert [r.reading_id for r in aws.readings.by_status(ReadingStatus.ACCEPTED, 10, None)[0]] == ["old-1"]
    assert {r["id"] for r in aws.readings.waiting("pooling", "2027")} == {"old-1"}
    assert "pipeline_key" not in _item(aws, "old-2")
    assert ensure_index_keys(dynamodb, PREFIX) is None
    assert "Item" in dynamodb.get_item(TableName=f"{PREFIX}-counters", Key={"name": {"S": MARKER}})
