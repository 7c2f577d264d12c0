"""Capacity model: does a fleet reporting hourly, in top-of-the-hour bursts, fit DynamoDB without a hot partition?

    python -m tests.bench.capacity_model [--devices 10000000] [--burst-s 300] [--event-shards 64]
                                         [--pool-shards 8] [--largest-pool-share 0.1] [--measured FILE]

Inputs measured, not guessed: the write units per reading of each table and index, and of the hottest
partition key of each, from the pipeline benchmark (`make bench-pipeline` writes
`.stack/bench-pipeline.json`; without it, `tests/bench/capacity_measured.json`, a run kept in the repo).
DynamoDB's published limits: 1,000 write units/s and 3,000 read units/s per partition key (a
partition), and an on-demand table's default 40,000 write units/s (a quota AWS raises on request).
Transactions cost 2× units: already in the measured units.

Peak rate: every device sends its hourly reading within the first `--burst-s` seconds of the hour,
so readings/s = devices / burst. Each hot key is scaled by what it serves:
- event counters (`event_seq*` in `counters`): events of a device go to shard hash(device) % S, so
  all event-counter writes spread over `--event-shards` shards;
- per owner (pools, `by_owner*` indexes): the largest pool (or owner) gets `--largest-pool-share`
  of the fleet's readings (the benchmark's fleet is one owner: all of it), spread over `--pool-shards`;
- per device or reading (keys that grow with the fleet): a key sees one device's rate — no hot spot;
- per anchoring batch (`batches`, `anchored_seq`): the anchoring schedule runs once a minute on AWS,
  so these are written once a minute whatever the fleet (the run's units per batch / 60 s);
- fleet-wide (a few keys whatever the fleet: other counters, low-cardinality index keys such as
  `pipeline` or `status`): the key's measured share of all readings, at the full peak rate;
- write-sharded index keys (`chalicelib/domain/index_keys.py`: an index `infra/resources.py` keys by
  `<plain>_key`): a value's writes spread evenly over `--index-shards` keys `<value>#<nnn>` (a sha256 of
  each item's key picks its shard), so each shard takes 1/INDEX_SHARDS of the value's fleet-wide load.
  A measured key `<value>#<nnn>` is one shard of `<value>`; a run of a release before sharding measured
  `<value>` whole, and the same division applies (`--index-shards 1`: as unsharded).
The answer per key: write units/s at peak, and how many partition keys (shards) it needs to stay under
1,000 units/s.
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from chalicelib.domain.index_keys import INDEX_SHARDS, SHARDED, key_attribute
from infra.resources import RESOURCES

REPO = Path(__file__).resolve().parents[2]
MEASURED = REPO / ".stack" / "bench-pipeline.json"
KEPT = Path(__file__).with_name("capacity_measured.json")
PARTITION_WCU = 1000.0
PARTITION_RCU = 3000.0
TABLE_WCU = 40_000.0  # on-demand default per table (account quota, raisable)
OWNER_SCOPES = ("pools", "by_owner")
FEW_KEYS = 16
ACCOUNT_KEY = "acc-"  # an account's id: a key that serves one owner's share of the fleet (event links of its D-RECs)
AWS_ANCHOR_S = 60.0  # the anchoring schedule's Rate on AWS: a batch a minute at most


@dataclass(frozen=True)
class Params:
    devices: int = 10_000_000
    burst_s: float = 300.0
    event_shards: int = 64  # DREC_EVENT_SHARDS of the aws stage (.chalice/config.json)
    pool_shards: int = 8  # DREC_POOLING's shards=8 of the aws stage
    largest_pool_share: float = 0.1
    partition_wcu: float = PARTITION_WCU
    index_shards: int = INDEX_SHARDS

    @property
    def peak_readings_s(self) -> float:
        return self.devices / self.burst_s


@dataclass(frozen=True)
class Row:
    scope: str  # table or table/index
    kind: str
    key: str
    units_per_reading: float  # write units of this key per reading of the whole measured fleet
    peak_units_s: float  # per key (per shard where sharded) at the peak
    shards: int  # the keys (shards) it is spread over at scale
    shards_needed: int

    @property
    def fits(self) -> bool:
        return self.shards >= self.shards_needed


def shards_needed(units_s: float, limit: float = PARTITION_WCU) -> int:
    return max(1, math.ceil(units_s / limit))


def kind_of(scope: str, keys: int, devices: int, key: str = "") -> str:
    """How a table's (or index's) partition keys grow with the fleet, from what the run wrote."""
    if scope.endswith("-batches"):
        return "per anchoring batch"
    if any(part in scope for part in OWNER_SCOPES) or key.startswith(ACCOUNT_KEY):
        return "per owner"
    if scope.endswith("-counters") or (keys <= FEW_KEYS and keys < devices / 4):
        return "fleet-wide"  # an enumeration or a handful of counters: the same keys at any fleet size
    return "per device or reading"


def sharded_groups(hot: dict[str, Any]) -> dict[str, list[tuple[str, float]]]:
    """Keys of a few-key table grouped by name before `#` (`event_seq#3` → `event_seq`): one counter's shards.

    `holdings#<account>` keys are one per owner, not shards: they stay apart."""
    groups: dict[str, list[tuple[str, float]]] = {}
    for key, units in _all_keys(hot):
        groups.setdefault(key if key.startswith("holdings#") else key.split("#")[0], []).append((key, units))
    return groups


def sharded_index(scope: str) -> bool:
    """Whether `scope` (`<prefix>-<table>/<index>`) is an index this release keys by a write-sharded attribute."""
    table, _, index = scope.partition("/")
    for t in RESOURCES.tables:
        if table.endswith("-" + t.logical.replace("_", "-")) and t.logical in SHARDED:
            sharded = {key_attribute(p) for p in SHARDED[t.logical][1]}
            return any(i.name == index and i.hash_key.name in sharded for i in t.indexes)
    return False


def index_values(hot: dict[str, Any], index_shards: int) -> dict[str, float]:
    """A sharded index's measured units per plain value: `<value>#<nnn>` keys summed into `<value>`.

    From the run's per-value sums (`values`), else from every key (`all`); a run that kept neither
    (only its top keys) gives the hottest shard × `index_shards`, an upper bound."""
    if "values" in hot:
        return {k: float(u) for k, u in hot["values"]}
    if "all" not in hot:
        key, units = hot["top"][0]
        return {key.rpartition("#")[0] or key: float(units) * index_shards}
    values: dict[str, float] = {}
    for key, units in _all_keys(hot):
        head, _, shard = key.rpartition("#")
        value = head if head and shard.isdigit() else key
        values[value] = values.get(value, 0.0) + units
    return values


def model(measured: dict[str, Any], params: Params) -> list[Row]:
    readings = float(measured["readings"])
    devices = int(measured["devices"])
    batches = max(1.0, float(measured.get("anchor_batches", 1)))
    peak = params.peak_readings_s
    rows = []
    for scope, hot in sorted(measured["hot_keys"].items()):
        if not hot["top"]:
            continue
        if sharded_index(scope):
            for value, units in sorted(index_values(hot, params.index_shards).items()):
                total = units / readings * peak
                rows.append(Row(scope, "fleet-wide, sharded" if params.index_shards > 1 else "fleet-wide",
                                f"{value}#<shard>" if params.index_shards > 1 else value, total / peak,
                                total / params.index_shards, params.index_shards,
                                shards_needed(total, params.partition_wcu)))
            continue
        kind = kind_of(scope, int(hot["keys"]), devices, str(hot["top"][0][0]))
        if kind == "fleet-wide":
            # Each counter (or enumeration value) with its shards: the load spreads over them.
            for name, members in sorted(sharded_groups(hot).items()):
                total = sum(u for _, u in members) / readings * peak
                if name == "event_seq":
                    kind, shards = "event counter", params.event_shards
                elif name.startswith("anchored_seq"):
                    kind, shards = "per anchoring batch", len(members)
                    total = sum(u for _, u in members) / batches / AWS_ANCHOR_S
                elif name.startswith("holdings#"):
                    kind, shards = "per owner", 1
                    total *= params.largest_pool_share
                elif scope.endswith("events/by_type"):
                    # Keyed `<type>#<event shard>`: a device's events in its shard, an issuance in its
                    # pool's; the run had fewer shards (and one pool) than the deployment modelled.
                    kind = "per event shard"
                    shards = params.event_shards if name.startswith("Reading") else min(
                        params.event_shards, params.pool_shards)
                else:
                    kind, shards = "fleet-wide", len(members)
                label = f"{name}#<shard>" if shards > 1 or name == "event_seq" else name
                rows.append(Row(scope, kind, label, total / peak, total / shards, shards,
                                shards_needed(total, params.partition_wcu)))
            continue
        key, units = hot["top"][0]
        per_reading = units / readings
        if kind == "per anchoring batch":
            total = units / batches / AWS_ANCHOR_S  # one batch a minute, whatever the fleet
            shards = 1
        elif kind == "per owner":
            total = per_reading * peak * params.largest_pool_share
            shards = params.pool_shards if scope.endswith("-pools") else 1
        else:
            total = per_reading * devices / params.burst_s  # one device's key: its own readings only
            shards = 1
        rows.append(Row(scope, kind, key, per_reading, total / shards, shards,
                        shards_needed(total, params.partition_wcu)))
    return rows


def _all_keys(hot: dict[str, Any]) -> list[tuple[str, float]]:
    """Every key with its units; a table with too many keys to list (counters beside a per-device tally)
    gives each name's total and key count instead: its keys are taken as taking equal shares."""
    if "all" in hot or "groups" not in hot:
        return [(k, float(u)) for k, u in hot.get("all", hot["top"])]
    return [(f"{name}#{i}", float(units) / count) for name, (units, count) in hot["groups"].items()
            for i in range(int(count))]


def table_rates(measured: dict[str, Any], params: Params) -> dict[str, float]:
    """Write units/s of each table (with its indexes) at the peak."""
    readings = float(measured["readings"])
    return {table: (t.get("write_units", 0.0) + t.get("index_write_units", 0.0)) / readings * params.peak_readings_s
            for table, t in measured["tables"].items()}


def main() -> None:
    parser = argparse.ArgumentParser()
    defaults = Params()
    parser.add_argument("--devices", type=int, default=defaults.devices)
    parser.add_argument("--burst-s", type=float, default=defaults.burst_s,
                        help="every device reports within this many seconds of the hour")
    parser.add_argument("--event-shards", type=int, default=defaults.event_shards)
    parser.add_argument("--pool-shards", type=int, default=defaults.pool_shards)
    parser.add_argument("--largest-pool-share", type=float, default=defaults.largest_pool_share)
    parser.add_argument("--index-shards", type=int, default=defaults.index_shards,
                        help="shards of each write-sharded index value (1: as if unsharded)")
    parser.add_argument("--measured", type=Path, default=MEASURED if MEASURED.exists() else KEPT)
    args = parser.parse_args()
    measured = json.loads(args.measured.read_text())
    params = Params(args.devices, args.burst_s, args.event_shards, args.pool_shards, args.largest_pool_share,
                    index_shards=args.index_shards)
    print(f"measured: {args.measured} ({measured.get('label', '')}, {measured['devices']:,} devices, "
          f"{measured['readings']:,} readings, {measured.get('measured_at', '?')})")
    print(f"fleet: {params.devices:,} devices reporting hourly, all within {params.burst_s:.0f} s of the hour: "
          f"{params.peak_readings_s:,.0f} readings/s at the peak ({params.devices / 3600:,.0f}/s averaged)")
    print(f"limits: {PARTITION_WCU:,.0f} write units/s and {PARTITION_RCU:,.0f} read units/s per partition key; "
          f"{TABLE_WCU:,.0f} write units/s per on-demand table by default (raisable)\n")
    rows = model(measured, params)
    print(f"{'table / index':<44} {'kind':<22} {'hottest key':<28} {'WU/reading':>10} {'WU/s per key':>13} "
          f"{'keys':>5} {'needed':>7}  fits")
    for row in rows:
        print(f"{row.scope:<44} {row.kind:<22} {row.key[:28]:<28} {row.units_per_reading:>10.4f} "
              f"{row.peak_units_s:>13,.0f} {row.shards:>5} {row.shards_needed:>7}  {'yes' if row.fits else 'NO'}")
    print(f"\nper table at the peak (write units/s incl. indexes; > {TABLE_WCU:,.0f} needs a quota raise):")
    rates = table_rates(measured, params)
    for table, rate in sorted(rates.items(), key=lambda kv: -kv[1]):
        if rate:
            print(f"  {table:<34} {rate:>14,.0f}  {'quota raise' if rate > TABLE_WCU else ''}")
    print(f"  {'all tables':<34} {sum(rates.values()):>14,.0f}")
    hot = [r for r in rows if not r.fits]
    print(f"\n{'no hot partition' if not hot else f'{len(hot)} hot partition keys'} at {params.devices:,} devices "
          f"with {params.event_shards} event shards, {params.pool_shards} pool shards and {params.index_shards} "
          f"index shards"
          + ("" if not hot else ": " + "; ".join(f"{r.scope} {r.key} needs {r.shards_needed} keys" for r in hot)))


if __name__ == "__main__":
    main()
