"""Write-sharded index keys: no fleet-wide index value is one hot partition.

A global secondary index keyed by a value the whole fleet shares (a reading's `status`, its
`pipeline` stage, a D-REC's `country`...) puts every write of that value
into one partition key, and DynamoDB takes about 1,000 write units/s per partition key. A
throttled index throttles the table's writes, so one such key caps the whole registry.

So those indexes are keyed by `<value>#<shard>` instead (attribute `<plain>_key`, e.g.
`status_key = "accepted#017"`), the shard a stable hash of the item's own primary key: an
item keeps its shard for life, whatever value it moves to, and the fleet's writes of a
value spread evenly over `INDEX_SHARDS` partition keys. The plain attribute stays on the
item (the API and the filters read it). A query of a value reads its shards one after the
other (`DynamoBase.query_page`): results come in index order within a shard, shard after
shard, not in one global order.

`INDEX_SHARDS` is part of the data format (the backfill's marker names it): changing it
rewrites every key. Why 128: the capacity model (tests/bench/capacity_model.py) measured,
at 10,000,000 devices reporting within 300 s of the hour (33,333 readings/s), the hottest
fleet-wide key at 116,799 write units/s (readings `by_status` = "accepted", 3.5 units a
reading with the index projecting ALL); 117 partition keys are the least that fit under
1,000 units/s, and 128 is the next power of two. The index now projects keys only (2 units
a reading measured, 1 in fact: the run counts the delete from the old key on the new one),
and the hottest key left is `pipeline` "pooling" at 3 units a reading: 100,000 units/s, 781
a shard. Fewer shards (64) would not fit it; more would only make each listing read more
(empty) shards. Shard numbers are 3 digits so that they sort as numbers.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

INDEX_SHARDS = 128

# Per table: the attribute that is its primary key, and the plain attributes whose indexes are
# write-sharded (each gets `<plain>_key`). Per-owner and per-device indexes are not here: their
# keys grow with the fleet, so none takes more than one owner's or one device's share. Events are
# not here either: their `by_type` index is keyed per event shard already (`type_shard`, the
# event sequence's shards: chalicelib/domain/ledger/shards.py).
SHARDED: dict[str, tuple[str, tuple[str, ...]]] = {
    "readings": ("id", ("status", "pipeline")),
    "drecs": ("serial", ("country", "device_type", "offtaker_type", "status", "linking")),
    "devices": ("id", ("entity", "country", "device_type")),
}


def key_attribute(plain: str) -> str:
    """The attribute an index reads for the write-sharded `plain` (`status` -> `status_key`)."""
    return f"{plain}_key"


def shard_of(item_key: Any) -> int:
    """The shard of an item, from its primary key value: sha256, stable across processes and releases."""
    digest = hashlib.sha256(str(item_key).encode()).digest()
    return int.from_bytes(digest[:8], "big") % INDEX_SHARDS


def shard_value(value: Any, shard: int) -> str:
    """The index key of `value` in `shard`: `<value>#<shard, 3 digits>`."""
    return f"{value}#{shard:03d}"


def index_key(value: Any, item_key: Any) -> str:
    """The index key an item with primary key `item_key` and plain value `value` is written with."""
    return shard_value(value, shard_of(item_key))


def index_keys(table: str, item: Mapping[str, Any]) -> dict[str, str]:
    """The key attributes `item` of `table` must carry for the plain attributes it holds (none if not sharded)."""
    if table not in SHARDED:
        return {}
    primary, plains = SHARDED[table]
    return {key_attribute(p): index_key(item[p], item[primary]) for p in plains if item.get(p) is not None}


def with_index_keys(table: str, item: dict[str, Any]) -> dict[str, Any]:
    """`item` with its key attributes (a new dict; the plain attributes stay)."""
    return {**item, **index_keys(table, item)}


def index_order(table: str, plain: str, item: Mapping[str, Any], sort_key: str) -> tuple[int, Any]:
    """Where a query of a sharded index returns `item`: its shard first, then the index's sort key."""
    primary, plains = SHARDED[table]
    assert plain in plains, f"{table}.{plain} is not write-sharded"
    return shard_of(item[primary]), item[sort_key]
