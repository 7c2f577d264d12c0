"""The validator: judges queued readings in whole batches against their devices' twins.

Per device, the accepted periods (merged ranges) and the history of accepted readings
live in one `device_state` item with a version. A batch reads them, judges every
reading vectorised, and writes the new state conditioned on the version it read,
in the same transaction as the readings' verdicts and their `ReadingAccepted`
events: two validators on one device never both accept overlapping periods, and a
redelivered batch finds its readings already judged and changes nothing.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from ..domain.ledger import events as ev
from ..domain.readings import (
    DeviceState,
    DeviceWrites,
    Range,
    ReadingStatus,
    ReceivedReading,
    Stage,
    StateChange,
    Transition,
    claim,
    from_epoch,
    overlapping,
)
from ..domain.registry import Device, DeviceStatus
from ..domain.time import iso, now_utc, parse_utc
from ..domain.twin.judging import DeviceHistory, Judgement, ReadingToJudge, judge, update_history
from .ports.queues import Queue
from .ports.readings import ReadingStore
from .ports.registry import RegistryStore
from .twins import twin_of

# A device's readings are judged at most PER_DEVICE at a time, in period order (its transaction
# stays small: see the store's MAX_ITEMS_PER_COMMIT).
PER_DEVICE = 20
ATTEMPTS = 5


@dataclass
class Verdict:
    reading: ReceivedReading
    status: ReadingStatus
    rule: str
    reason: str
    numbers: dict[str, float]


def _history(state: DeviceState | None) -> DeviceHistory:
    data = state.history if state else {}
    return DeviceHistory(**data) if data else DeviceHistory()


def _rejected(reading: ReceivedReading, rule: str, reason: str) -> Verdict:
    return Verdict(reading, ReadingStatus.REJECTED, rule, reason, {})


class Validator:
    def __init__(self, registry: RegistryStore, readings: ReadingStore, accepted_queue: Queue) -> None:
        self.registry = registry
        self.store = readings
        self.accepted_queue = accepted_queue

    def validate(self, reading_ids: Sequence[str], now: datetime | None = None) -> dict[str, int]:
        counts: dict[str, int] = defaultdict(int)
        pending = list(dict.fromkeys(reading_ids))
        refusals = 0
        while pending:
            pending, refused = self._attempt(pending, now or now_utc(), counts)
            refusals += bool(refused)
            if refusals >= ATTEMPTS:
                raise RuntimeError(f"{len(pending)} readings lost every race for their device state; redeliver")
        return dict(counts)

    def _attempt(self, reading_ids: list[str], now: datetime, counts: dict[str, int]) -> tuple[list[str], bool]:
        """Judge and commit what fits; returns the ids left for another round and whether a race was lost."""
        queued = sorted((r for r in self.store.readings(reading_ids).values() if r.status == ReadingStatus.QUEUED),
                        key=lambda r: (r.device_id, r.period_start))
        readings: list[ReceivedReading] = []
        deferred: list[ReceivedReading] = []
        per_device: dict[str, int] = defaultdict(int)
        for reading in queued:
            per_device[reading.device_id] += 1
            (readings if per_device[reading.device_id] <= PER_DEVICE else deferred).append(reading)
        if not readings:
            return [], False
        device_ids = list(dict.fromkeys(r.device_id for r in readings))
        devices = self.registry.device_records(device_ids)
        states = self.store.device_states(device_ids)
        verdicts = self._judge(readings, devices, states, now)
        by_device: dict[str, list[Verdict]] = defaultdict(list)
        for verdict in verdicts:
            by_device[verdict.reading.device_id].append(verdict)
        groups = {d: self._device_writes(d, vs, states.get(d), now) for d, vs in by_device.items()}
        refused = {g.device_id for g in self.store.commit_verdicts(list(groups.values()))}
        retry = [v.reading.reading_id for d in refused for v in by_device[d]]
        accepted: list[str] = []
        for device_id, group_verdicts in by_device.items():
            if device_id in refused:
                continue
            for v in group_verdicts:
                counts[v.status.value] += 1
                if v.status == ReadingStatus.ACCEPTED:
                    accepted.append(v.reading.reading_id)
        if accepted:
            self.accepted_queue.send_json([{"reading_ids": accepted[i:i + 100]} for i in range(0, len(accepted), 100)])
        return retry + [r.reading_id for r in deferred], bool(retry)

    def _judge(self, readings: list[ReceivedReading], devices: dict[str, Device], states: dict[str, DeviceState],
               now: datetime) -> list[Verdict]:
        verdicts: list[Verdict] = []
        to_judge: list[ReceivedReading] = []
        for reading in readings:
            device = devices.get(reading.device_id)
            if device is None:
                verdicts.append(_rejected(reading, "unknown_device",
                                          f"device {reading.device_id} is not registered"))
            elif device.status != DeviceStatus.ACTIVE:
                verdicts.append(_rejected(reading, "inactive_device",
                                          f"device {device.device_id} is {device.status}; it takes no readings"))
            else:
                to_judge.append(reading)
        if not to_judge:
            return verdicts
        twins = {d: twin_of(devices[d]) for d in {r.device_id for r in to_judge}}
        histories = {d: _history(states.get(d)) for d in twins}
        judgements = judge([ReadingToJudge(r.reading_id, r.device_id, parse_utc(r.period_start),
                                           parse_utc(r.period_end), int(r.energy_wh)) for r in to_judge],
                           twins, histories, now)
        for reading, judgement in zip(to_judge, judgements):
            verdicts.append(Verdict(reading, ReadingStatus(judgement.status), judgement.rule, judgement.reason,
                                    _numbers(judgement)))
        return verdicts
    def _device_writes(self, device_id: str, verdicts: list[Verdict], state: DeviceState | None,
                       now: datetime) -> DeviceWrites:
        ranges: list[Range] = list(state.ranges) if state else []
        history = _history(state)
        changed = False
        transitions: list[Transition] = []
        events: list[ev.NewEvent] = []
        judged_at = iso(now)
        for verdict in sorted(verdicts, key=lambda v: v.reading.period_start):
            reading = verdict.reading
            span = reading.span
            if verdict.status != ReadingStatus.REJECTED:
                clash = overlapping(ranges, span)
                if clash:
                    verdict.status, verdict.rule = ReadingStatus.REJECTED, "overlap"
                    verdict.reason = (f"the period overlaps an accepted period of device {device_id} "
                                      f"({iso(from_epoch(clash[0]))} to {iso(from_epoch(clash[1]))}); "
                                      "the same energy is never counted twice")
                else:
                    ranges = claim(ranges, span)
                    changed = True
            if verdict.status == ReadingStatus.ACCEPTED:
                clear_sky = verdict.numbers.get("clear_sky_wh", 0.0)
                history = update_history(history, int(reading.energy_wh), clear_sky)
            # The verdict holds only for the energy judged: the write is pinned to it, and the issuer
            # pools `judged_energy_wh`, never a value the twin did not see.
            judged_wh = int(reading.energy_wh)
            transitions.append(Transition(
                reading.reading_id, ReadingStatus.QUEUED, verdict.status,
                Stage.POOLING if verdict.status == ReadingStatus.ACCEPTED else None,
                judged_energy_wh=judged_wh, judged_at=judged_at, rule=verdict.rule, reason=verdict.reason,
                numbers=verdict.numbers))
            if verdict.status == ReadingStatus.ACCEPTED:
                events.append(ev.NewEvent(ev.READING_ACCEPTED, reading.reading_id, reading.source_id, judged_at,
                                          _accepted_body(reading, verdict), related_ids=(device_id,)))
        change = None
        if changed or events:
            change = StateChange(device_id, state.version if state else 0, tuple(ranges), asdict(history))
        return DeviceWrites(device_id, change, transitions, events)


def _numbers(judgement: Judgement) -> dict[str, float]:
    return {"expected_wh": round(float(judgement.expected_wh), 1), "sigma_wh": round(float(judgement.sigma_wh), 1),
            "ceiling_wh": round(float(judgement.ceiling_wh), 1),
            "clear_sky_wh": round(float(judgement.clear_sky_wh), 1)}


def _accepted_body(reading: ReceivedReading, verdict: Verdict) -> dict[str, Any]:
    body = {"device_id": reading.device_id, "period_start": reading.period_start, "period_end": reading.period_end,
            "energy_wh": reading.energy_wh, "signer": reading.signer, "signature": reading.signature,
            "derived": reading.derived}
    body.update({"reading_id": reading.reading_id, "rule": verdict.rule, **verdict.numbers})
    return {k: v for k, v in body.items() if v is not None}
