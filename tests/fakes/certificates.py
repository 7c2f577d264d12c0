"""In-memory D-REC store (the `Drecs` port) with the adapter's conditions, and a registry of devices."""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from chalicelib.adapters.drec_store import drec_from_item
from chalicelib.domain.certificates import Drec, DrecStatus, Issuance, PoolableReading
from chalicelib.domain.counts import issued_in
from chalicelib.domain.index_keys import shard_of
from chalicelib.domain.ledger.events import Event
from chalicelib.domain.ledger.shards import pool_key
from chalicelib.domain.stores import Page, TransactionRefused
from tests.fakes.ledger import FakeEvents
from tests.fakes.paging import budgeted, every_shard

FAILED_CONDITION = "ConditionalCheckFailed"


class FakeDevices:
    def __init__(self, devices: Mapping[str, Mapping[str, Any]]) -> None:
        self.by_id = dict(devices)

    def devices(self, device_ids: Iterable[str]) -> dict[str, Mapping[str, Any]]:
        return {d: self.by_id[d] for d in device_ids if d in self.by_id}


class FakeDrecs:
    """Pools (state, version), readings waiting to be pooled, D-RECs and their links, in dicts."""

    def __init__(self, events: FakeEvents | None = None) -> None:
        self.events = events or FakeEvents()
        self.pools: dict[str, tuple[dict[str, Any], int, dict[str, Any]]] = {}
        # reading id -> (reading, still pooling?)
        self.readings: dict[str, tuple[PoolableReading, bool]] = {}
        self.drecs: dict[str, dict[str, Any]] = {}
        self.links: dict[str, list[str]] = {}
        self.issued: dict[str, tuple[int, int]] = {}  # device -> (D-RECs, Wh), as `device_drecs#<device>` counts
        self.shared: set[tuple[str, str, str]] = set()  # (device, serial, reading) counted in `issued`
        # reading id -> serials of the D-RECs that spend it, as the adapter adds them to the reading item
        self.spenders: dict[str, set[str]] = {}

    def accept(self, reading: PoolableReading) -> None:
        """A reading the validator accepted, now waiting to be pooled."""
        self.readings[reading.id] = (reading, True)

    # -- issuing
    def pool(self, pool_id: str) -> tuple[dict[str, Any] | None, int]:
        if pool_id not in self.pools:
            return None, 0
        state, version, _ = self.pools[pool_id]
        return copy.deepcopy(state), version

    def poolable(self, reading_ids: Sequence[str]) -> list[PoolableReading]:
        return [self.readings[i][0] for i in dict.fromkeys(reading_ids)
                if i in self.readings and self.readings[i][1]]

    def issue(self, step: Issuance) -> list[Event]:
        version = self.pools[step.pool_id][1] if step.pool_id in self.pools else 0
        reasons: list[str | None] = [None if version == step.from_version else FAILED_CONDITION]
        for moved in step.readings:
            reading, pooling = self.readings.get(moved.reading_id, (None, False))
            ok = reading is not None and pooling and reading.pooled_wh == moved.from_wh
            reasons.append(None if ok else FAILED_CONDITION)
        reasons += [FAILED_CONDITION if d["serial"] in self.drecs else None for d in step.drecs]
        if any(reasons):
            raise TransactionRefused(reasons)
        self.pools[step.pool_id] = (copy.deepcopy(dict(step.state)), version + 1, dict(step.totals))
        for moved in step.readings:
            reading, _ = self.readings[moved.reading_id]
            self.readings[moved.reading_id] = (_with_pooled(reading, moved.to_wh), not moved.done)
        for drec in step.drecs:
            self.drecs[drec["serial"]] = {**copy.deepcopy(dict(drec)), "linking": "pending"}
        return self.events.append(list(step.events), pool_key(step.pool_id))

    def link_drecs(self, drecs: Sequence[Mapping[str, Any]]) -> None:
        for drec in drecs:
            for c in drec["contributions"]:
                for subject in (c["device_id"], c["reading_id"]):
                    serials = self.links.setdefault(subject, [])
                    if drec["serial"] not in serials:
                        serials.append(drec["serial"])
                        if subject == c["device_id"]:
                            count, wh = self.issued.get(subject, (0, 0))
                            self.issued[subject] = (count + 1, wh)
                    if subject == c["device_id"] and (subject, drec["serial"], c["reading_id"]) not in self.shared:
                        self.shared.add((subject, drec["serial"], c["reading_id"]))
                        count, wh = self.issued[subject]
                        self.issued[subject] = (count, wh + int(c["energy_wh"]))
                if c["reading_id"] in self.readings:  # the adapter adds only to a reading that is there
                    self.spenders.setdefault(c["reading_id"], set()).add(drec["serial"])
            self.drecs[drec["serial"]].pop("linking", None)

    def issued_from(self, device_ids: Sequence[str]) -> dict[str, tuple[int, int]]:
        return {d: self.issued[d] for d in device_ids if d in self.issued}

    def pending_links(self, limit: int = 200) -> list[dict[str, Any]]:
        pending = sorted((d for d in self.drecs.values() if d.get("linking") == "pending"), key=_in_shard_order)
        return every_shard(pending, lambda d: shard_of(d["serial"]), limit)

    # -- reading
    def drec(self, serial: str) -> Drec | None:
        return drec_from_item(self.drecs[serial]) if serial in self.drecs else None

    def serials_of(self, subject_id: str, limit: int = 1000) -> list[str]:
        return sorted(self.links.get(subject_id, []))[:limit]

    def list_drecs(self, limit: int, cursor: str | None, filters: dict[str, Any],
                   vintage: tuple[str | None, str | None]) -> Page:
        """As the adapter lists: every filter given must match (a device by its links); with no filter
        at all, the active ones. Serial order by device or owner; by a write-sharded index (country, types,
        status) serial order within a shard, shard after shard. `cursor` is the last position read."""
        wanted = {k: v for k, v in filters.items() if v is not None and k != "device_id"}
        if not wanted and not filters.get("device_id"):
            wanted["status"] = DrecStatus.ACTIVE.value
        serials = self.links.get(filters["device_id"], []) if filters.get("device_id") else list(self.drecs)
        by_serial = bool(filters.get("device_id") or filters.get("owner_account_id"))

        def position(serial: str) -> str:
            return serial if by_serial else f"{shard_of(serial):03d}|{serial}"

        ordered = [s for s in sorted(serials, key=position) if position(s) > (cursor or "") and s in self.drecs]

        def matches(serial: str) -> bool:
            d = self.drecs[serial]
            return (all(d.get(k) == v for k, v in wanted.items())
                    and (vintage[0] is None or d["vintage"] >= vintage[0])
                    and (vintage[1] is None or d["vintage"] <= vintage[1]))

        found, at = budgeted(ordered, matches, limit)
        page = [copy.deepcopy(self.drecs[s]) for s in found]
        return Page(page, None if at is None else position(ordered[at - 1]))

    # -- totals
    def pool_totals(self) -> list[tuple[str, int, int]]:
        return [(pool_id, int(t["accepted_wh"]), int(t["issued_count"])) for pool_id, (_, _, t) in self.pools.items()]

    def totals(self) -> dict[str, int]:
        """The counters the adapter keeps, computed from the records (no registry or readings here)."""
        totals: Counter[str] = Counter(accepted_wh=sum(int(t["accepted_wh"]) for _, _, t in self.pools.values()))
        for drec in self.drecs.values():
            totals["drecs_issued"] += 1
            totals[f"drecs_{drec['status']}"] += 1
            totals[issued_in(str(drec.get("vintage", "")))] += 1
        return dict(totals)


def _in_shard_order(drec: Mapping[str, Any]) -> tuple[int, str]:
    return shard_of(drec["serial"]), drec["serial"]


def _with_pooled(reading: PoolableReading, pooled_wh: int) -> PoolableReading:
    import dataclasses

    return dataclasses.replace(reading, pooled_wh=pooled_wh)
