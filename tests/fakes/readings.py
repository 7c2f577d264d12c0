"""Readings and device state in memory (implements services.ports.readings.ReadingStore).

Every condition of `adapters.reading_store.DynamoReadings` holds here too: a reading is stored only
where none is (and its external id names no other reading); an accepted reading keeps the id of its
`ReadingAccepted` event; a state change only from the version it
was read at; a transition only from its `from_status` and, given `judged_energy_wh`, while the reading
still holds that energy; the groups of one pack stand or fall together, with their events.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

from chalicelib.adapters.reading_store import MAX_ITEMS_PER_COMMIT, pack, transaction_size
from chalicelib.domain.index_keys import shard_of as index_shard
from chalicelib.domain.ledger.events import READING_ACCEPTED
from chalicelib.domain.ledger.shards import device_key, shard_of
from chalicelib.domain.readings import (
    DeviceState,
    DeviceWrites,
    ReadingContent,
    ReadingStatus,
    ReceivedReading,
    Stage,
    StateChange,
    Transition,
)
from chalicelib.domain.registry import DeviceStatus
from chalicelib.domain.twin.peers import PeerHistogram

from .events import FakeEventLog
from .paging import every_shard, offset_page


def stored(value: Any) -> Any:
    """A value as DynamoDB keeps it: None inside maps is not stored."""
    if isinstance(value, Mapping):
        return {k: stored(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return [stored(v) for v in value]
    return value


class FakeReadings:
    def __init__(self, events: FakeEventLog | None = None, registry: Any = None) -> None:
        self.events = events or FakeEventLog()
        self.registry = registry  # a FakeRegistry, for the validator's changes to device records
        self.peer_bins: dict[tuple[str, int, int, int], Counter[int]] = {}
        self.diffuse_bins: dict[tuple[str, int, int, int], Counter[int]] = {}
        self.assumed_bins: dict[tuple[str, int, int, int], Counter[int]] = {}
        self.reporting: Counter[str] = Counter()
        self.items: dict[str, ReceivedReading] = {}
        self.externals: dict[tuple[str, str], str] = {}  # (source_id, external_id) -> reading_id
        self.states: dict[str, DeviceState] = {}
        self.links: dict[str, list[str]] = {}  # reading_id -> serials

    # -- reads --------------------------------------------------------------------------------
    def readings(self, reading_ids: Sequence[str]) -> dict[str, ReceivedReading]:
        return {i: self.items[i] for i in dict.fromkeys(reading_ids) if i in self.items}

    def contents(self, reading_ids: Sequence[str]) -> dict[str, ReadingContent]:
        return {r.reading_id: ReadingContent(r.reading_id, r.device_id, r.period_start, r.period_end, r.energy_wh)
                for r in self.readings(reading_ids).values()}

    def external_targets(self, source_id: str, external_ids: Sequence[str]) -> dict[str, str]:
        return {e: self.externals[(source_id, e)] for e in dict.fromkeys(external_ids)
                if (source_id, e) in self.externals}

    def device_states(self, device_ids: Sequence[str]) -> dict[str, DeviceState]:
        return {d: self.states[d] for d in dict.fromkeys(device_ids) if d in self.states}

    def serials_of(self, reading_id: str, limit: int = 1000) -> list[str]:
        return self.links.get(reading_id, [])[:limit]

    def device_readings(self, device_id: str, limit: int, cursor: str | None,
                        status: ReadingStatus | None) -> tuple[list[ReceivedReading], str | None]:
        # The device's readings are its index partition; the status filters what is read of it.
        own = sorted((r for r in self.items.values() if r.device_id == device_id), key=lambda r: r.period_start)
        return offset_page(own, limit, cursor, lambda r: status in (None, r.status))

    def by_status(self, status: ReadingStatus, limit: int,
                  cursor: str | None) -> tuple[list[ReceivedReading], str | None]:
        # The index is write-sharded: id order within a shard, shard after shard, as the adapter reads it.
        own = sorted((r for r in self.items.values() if r.status == status),
                     key=lambda r: (index_shard(r.reading_id), r.reading_id))
        return offset_page(own, limit, cursor)

    def waiting(self, stage: str, received_before: str, limit: int = 500) -> list[dict[str, Any]]:
        own = sorted((r for r in self.items.values() if r.stage == stage and (r.received_at or "") < received_before),
                     key=lambda r: (index_shard(r.reading_id), r.received_at or ""))
        return [{"id": r.reading_id} for r in every_shard(own, lambda r: index_shard(r.reading_id), limit)]

    # -- writes -------------------------------------------------------------------------------
    def store_new(self, readings: Sequence[ReceivedReading], source_id: str) -> list[str]:
        refused: list[str] = []
        for reading in readings:
            target = self.externals.get((source_id, reading.external_id or ""))
            if reading.reading_id in self.items or (target is not None and target != reading.reading_id):
                refused.append(reading.reading_id)
                continue
            self.items[reading.reading_id] = replace(reading, payment=stored(reading.payment))
            if reading.external_id:
                self.externals[(source_id, reading.external_id)] = reading.reading_id
        return refused

    def commit_verdicts(self, groups: Sequence[DeviceWrites]) -> list[DeviceWrites]:
        refused: list[DeviceWrites] = []
        for group in groups:  # DynamoDB refuses a transaction of more than 100 items; so does the fake
            assert transaction_size(group) <= MAX_ITEMS_PER_COMMIT, f"{group.device_id}: transaction too large"
        for batch in pack(groups, lambda device_id: shard_of(device_key(device_id), self.events.shards)):
            # as the store: a device whose condition fails is set aside, the rest of its pack written
            holds = [self._holds(group) for group in batch]
            held = [group for group, ok in zip(batch, holds) if ok]
            refused += [group for group, ok in zip(batch, holds) if not ok]
            if held:
                stored = self.events.append([e for group in held for e in group.events],
                                            device_key(held[0].device_id))
                accepted = {e.subject_id: e.event_id for e in stored if e.type == READING_ACCEPTED}
                for group in held:
                    self._apply(group, accepted)
        return refused

    def return_to_validation(self, change: StateChange | None, reading_ids: Sequence[str], rule: str,
                             review: dict[str, Any]) -> bool:
        current = self.states.get(change.device_id) if change else None
        if change and (current.version if current else 0) != change.old_version:
            return False
        held = [self.items.get(i) for i in dict.fromkeys(reading_ids)]
        if any(r is None or r.status != ReadingStatus.FLAGGED or r.rule != rule for r in held):
            return False
        if change:
            self._set_state(change)
        for reading in held:
            assert reading is not None
            self.items[reading.reading_id] = replace(
                reading, status=ReadingStatus.QUEUED, stage=Stage.VALIDATION, rule=None, reason=None,
                judged_at=None, judged_energy_wh=None, review=stored(review))
        return True

    def peer_histograms(self, periods: Sequence[tuple[str, int, int]],
                        shards: int) -> dict[tuple[str, int, int], PeerHistogram]:
        found: dict[tuple[str, int, int], PeerHistogram] = {}
        for period in dict.fromkeys(periods):
            for shard in range(shards):
                key = (*period, shard)
                if self.peer_bins.get(key) or self.assumed_bins.get(key):
                    part = PeerHistogram(dict(self.peer_bins.get(key, {})), dict(self.diffuse_bins.get(key, {})),
                                         dict(self.assumed_bins.get(key, {})))
                    found[period] = found.get(period, PeerHistogram()).merged(part)
        return found

    def reporting_devices(self, cells: Sequence[str]) -> dict[str, int]:
        return {c: self.reporting[c] for c in dict.fromkeys(cells) if self.reporting[c]}

    def _holds(self, group: DeviceWrites) -> bool:
        if group.device is not None and group.device.still_under_review:
            device = self.registry.devices_by_id.get(group.device_id) if self.registry else None
            if device is None or device.status != DeviceStatus.UNDER_REVIEW:
                return False
        if group.device is not None and group.device.review is not None:
            device = self.registry.devices_by_id.get(group.device_id) if self.registry else None
            if device is None or device.status != DeviceStatus.ACTIVE:
                return False
        if group.state is not None:
            current = self.states.get(group.state.device_id)
            if (current.version if current else 0) != group.state.old_version:
                return False
        for t in group.transitions:
            reading = self.items.get(t.reading_id)
            if reading is None or reading.status != t.from_status:
                return False
            if t.judged_energy_wh is not None and reading.energy_wh != t.judged_energy_wh:
                return False
        return True

    def _apply(self, group: DeviceWrites, accepted: dict[str, str]) -> None:
        for p in group.peers:
            plane = self.peer_bins if p.orientation_known else self.assumed_bins
            plane.setdefault((p.cell, p.period_start_s, p.duration_s, p.shard), Counter())[p.ratio_bin] += 1
            if p.diffuse_bin is not None:
                self.diffuse_bins.setdefault((p.cell, p.period_start_s, p.duration_s, p.shard),
                                             Counter())[p.diffuse_bin] += 1
        if group.new_cell:
            self.reporting[group.new_cell] += 1
        if group.device is not None and self.registry is not None:
            change, device = group.device, self.registry.devices_by_id[group.device_id]
            if change.review is not None:
                device = replace(device, status=DeviceStatus.UNDER_REVIEW, review=dict(change.review))
            if change.maintenance_changed:
                device = replace(device, maintenance=dict(change.maintenance) if change.maintenance else None)
            self.registry.devices_by_id[group.device_id] = device
        if group.state is not None:
            self._set_state(group.state)
        for t in group.transitions:
            self.items[t.reading_id] = _transitioned(self.items[t.reading_id], t, accepted.get(t.reading_id))

    def _set_state(self, change: StateChange) -> None:
        self.states[change.device_id] = DeviceState(change.device_id, change.old_version + 1, tuple(change.ranges),
                                                    dict(change.history))


def _transitioned(reading: ReceivedReading, t: Transition, accepted_event_id: str | None) -> ReceivedReading:
    changes: dict[str, Any] = {"status": t.status, "stage": Stage(t.stage) if t.stage else None}
    if accepted_event_id is not None:
        changes["accepted_event_id"] = accepted_event_id
    for name in ("judged_energy_wh", "judged_at", "rule", "reason"):
        if getattr(t, name) is not None:
            changes[name] = getattr(t, name)
    if t.numbers:
        changes["numbers"] = {**reading.numbers, **t.numbers}
    if t.review is not None:
        changes["review"] = stored(t.review)
    return replace(reading, **changes)

