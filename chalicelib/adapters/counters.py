"""Counters kept in the SAME transactions as the writes they count: registry totals and holdings.

`GET /stats` and an account's holdings read a handful of items instead of counting tables.

- Registry totals live in STATS_SHARDS items `stats#<shard>` of the `counters` table. A write adds
  its deltas (DynamoDB `ADD`, so concurrent writers never lose one) to the shard picked by a hash
  of the entity it writes; a read sums the shards in one batch get. One global item would take
  every write of the registry and become a hot partition; 32 spread them (`make capacity`: 10
  million devices reporting in the first 5 minutes of the hour need 9), and the sum stays exact,
  also over items written when there were 8. More shards only cost a larger batch get (≤ 100 keys).
- Holdings live in one item per account, `holdings#<account_id>`: `active`, `redeemed`, and one
  attribute per (status, country, device type, vintage) group. An account is written by its own
  issuance and moves, so its item is as hot as the account.

A transaction may touch an item only once, so `Tally` folds every delta for one item into a
single `ADD` update, and drops the items whose deltas cancel out.
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

from ..domain.counts import group
from .dynamo import DynamoBase, update

STATS_SHARDS = 32
STATS_PREFIX = "stats#"
HOLDINGS_PREFIX = "holdings#"
# Present once the counters describe the stored records (fresh tables, or after `infra.counters.recount`).
COUNTED = "counted#stats"
# Counter attributes that are not counts.
NOT_COUNTS = frozenset({"name"})


def stats_shard(entity_id: str) -> str:
    """The stats item a write about `entity_id` adds to."""
    digest = hashlib.sha256(entity_id.encode()).digest()
    return f"{STATS_PREFIX}{int.from_bytes(digest[:4], 'big') % STATS_SHARDS}"


def stats_items() -> list[str]:
    return [f"{STATS_PREFIX}{shard}" for shard in range(STATS_SHARDS)]


def holdings_item(account_id: str) -> str:
    return f"{HOLDINGS_PREFIX}{account_id}"


class Tally:
    """Deltas to counter items, gathered for one transaction."""

    def __init__(self) -> None:
        self.deltas: defaultdict[str, Counter[str]] = defaultdict(Counter)

    def add(self, item: str, attribute: str, delta: int = 1) -> Tally:
        self.deltas[item][attribute] += delta
        return self

    def hold(self, account_id: str, drec: Mapping[str, Any], status: str, delta: int) -> Tally:
        """`delta` D-RECs like `drec` (its country, device type and vintage) held by the account in `status`."""
        item = holdings_item(account_id)
        self.add(item, status, delta)
        return self.add(item, group(status, str(drec.get("country", "")), str(drec.get("device_type", "")),
                                    str(drec.get("vintage", ""))), delta)

    def updates(self, table: str) -> list[dict[str, Any]]:
        """One unconditional `ADD` update per item with a non-zero delta."""
        writes = []
        for name, deltas in self.deltas.items():
            nonzero = [(attribute, delta) for attribute, delta in sorted(deltas.items()) if delta]
            if not nonzero:
                continue
            names = {f"#c{i}": attribute for i, (attribute, _) in enumerate(nonzero)}
            values = {f":c{i}": delta for i, (_, delta) in enumerate(nonzero)}
            writes.append(update(table, {"name": name}, "ADD " + ", ".join(f"#c{i} :c{i}" for i in range(len(nonzero))),
                                 names=names, values=values))
        return writes

    def __len__(self) -> int:
        return sum(1 for deltas in self.deltas.values() if any(deltas.values()))


def counts_of(items: Iterable[Mapping[str, Any]]) -> Counter[str]:
    """The sum of counter items, attribute by attribute."""
    total: Counter[str] = Counter()
    for item in items:
        for name, value in item.items():
            if name not in NOT_COUNTS and isinstance(value, int):
                total[name] += value
    return total


class CounterReads(DynamoBase):
    """Reads of the counters (mixed into the stores that answer totals and holdings)."""

    def totals(self) -> dict[str, int]:
        """Registry totals: the sum of the stats shards (one batch get, no scan)."""
        return dict(counts_of(self.batch_get("counters", [{"name": n} for n in stats_items()])))

    def holding_counts(self, account_id: str) -> dict[str, int]:
        item = self.get("counters", name=holdings_item(account_id))
        return dict(counts_of([item] if item else []))

    def tally(self, counts: Tally) -> list[dict[str, Any]]:
        return counts.updates(self.name("counters"))
