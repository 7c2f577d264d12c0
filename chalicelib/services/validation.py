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

from ..adapters.dynamo import TransactionRefused
from ..adapters.reading_store import DynamoReadings
from ..adapters.registry_store import DynamoRegistry
from ..adapters.sqs import SqsQueue
from ..domain.ledger import events as ev
from ..domain.readings import Range, claim, epoch, from_epoch, id_messages, overlapping
from ..domain.time import iso, now_utc, parse_utc
from ..domain.twin.judging import DeviceHistory, Judgement, ReadingToJudge, judge, update_history
from .twins import twin_of

# Items per transaction stay under DynamoDB's 100 (state + verdict + event + links):
# a device's readings are judged at most PER_DEVICE at a time, in period order.
MAX_ITEMS_PER_COMMIT = 90
PER_DEVICE = 20
ATTEMPTS = 5


@dataclass
class Verdict:
    reading: dict[str, Any]
    status: str
    rule: str
    reason: str
    numbers: dict[str, float]


def _history(state: dict[str, Any] | None) -> DeviceHistory:
    data = (state or {}).get("history") or {}
    return DeviceHistory(**data) if data else DeviceHistory()


def _rejected(reading: dict[str, Any], rule: str, reason: str) -> Verdict:
    return Verdict(reading, "rejected", rule, reason, {})


class Validator:
    def __init__(self, registry: DynamoRegistry, readings: DynamoReadings, accepted_queue: SqsQueue) -> None:
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
        queued = sorted((r for r in self.store.readings(reading_ids).values() if r["status"] == "queued"),
                        key=lambda r: (r["device_id"], r["period_start"]))
        readings, deferred, per_device = [], [], defaultdict(int)  # type: ignore[var-annotated]
        for reading in queued:
            per_device[reading["device_id"]] += 1
            (readings if per_device[reading["device_id"]] <= PER_DEVICE else deferred).append(reading)
        if not readings:
            return [], False
        device_ids = list(dict.fromkeys(r["device_id"] for r in readings))
        devices = self.registry.devices(device_ids)
        states = self.store.device_states(device_ids)
        verdicts = self._judge(readings, devices, states, now)
        by_device: dict[str, list[Verdict]] = defaultdict(list)
        for verdict in verdicts:
            by_device[verdict.reading["device_id"]].append(verdict)
        groups = [self._device_writes(d, vs, states.get(d), now) for d, vs in by_device.items()]
        retry: list[str] = []
        accepted: list[str] = []
        for batch in _pack(groups):
            items = [i for g in batch for i in g[0]]
            events = [e for g in batch for e in g[1]]
            try:
                self.store.commit(items, events)
            except TransactionRefused:
                retry += [v.reading["id"] for g in batch for v in g[2]]
                continue
            for _, _, group_verdicts in batch:
                for v in group_verdicts:
                    counts[v.status] += 1
                    if v.status == "accepted":
                        accepted.append(v.reading["id"])
        if accepted:
            self.accepted_queue.send_json(id_messages(accepted))
        return retry + [r["id"] for r in deferred], bool(retry)

    def _judge(self, readings: list[dict[str, Any]], devices: dict[str, dict[str, Any]],
               states: dict[str, dict[str, Any]], now: datetime) -> list[Verdict]:
        verdicts: list[Verdict] = []
        to_judge: list[dict[str, Any]] = []
        for reading in readings:
            device = devices.get(reading["device_id"])
            if device is None:
                verdicts.append(_rejected(reading, "unknown_device",
                                          f"device {reading['device_id']} is not registered"))
            elif device.get("status", "active") != "active":
                verdicts.append(_rejected(reading, "inactive_device",
                                          f"device {device['id']} is {device['status']}; it takes no readings"))
            else:
                to_judge.append(reading)
        if not to_judge:
            return verdicts
        twins = {d: twin_of(devices[d]) for d in {r["device_id"] for r in to_judge}}
        histories = {d: _history(states.get(d)) for d in twins}
        judgements = judge([ReadingToJudge(r["id"], r["device_id"], parse_utc(r["period_start"]),
                                           parse_utc(r["period_end"]), int(r["energy_wh"])) for r in to_judge],
                           twins, histories, now)
        for reading, judgement in zip(to_judge, judgements):
            verdicts.append(Verdict(reading, judgement.status, judgement.rule, judgement.reason, _numbers(judgement)))
        return verdicts

    def _device_writes(self, device_id: str, verdicts: list[Verdict], state: dict[str, Any] | None,
                       now: datetime) -> tuple[list[dict[str, Any]], list[ev.NewEvent], list[Verdict]]:
        ranges: list[Range] = [tuple(r) for r in (state or {}).get("ranges", [])]  # type: ignore[misc]
        history = _history(state)
        changed = False
        items: list[dict[str, Any]] = []
        events: list[ev.NewEvent] = []
        judged_at = iso(now)
        for verdict in sorted(verdicts, key=lambda v: v.reading["period_start"]):
            reading = verdict.reading
            span = (epoch(parse_utc(reading["period_start"])), epoch(parse_utc(reading["period_end"])))
            if verdict.status != "rejected":
                clash = overlapping(ranges, span)
                if clash:
                    verdict.status, verdict.rule = "rejected", "overlap"
                    verdict.reason = (f"the period overlaps an accepted period of device {device_id} "
                                      f"({iso(from_epoch(clash[0]))} to {iso(from_epoch(clash[1]))}); "
                                      "the same energy is never counted twice")
                else:
                    ranges = claim(ranges, span)
                    changed = True
            if verdict.status == "accepted":
                clear_sky = verdict.numbers.get("clear_sky_wh", 0.0)
                history = update_history(history, int(reading["energy_wh"]), clear_sky)
            # The verdict holds only for the energy judged: the write is pinned to it, and the issuer
            # pools `judged_energy_wh`, never a value the twin did not see.
            judged_wh = int(reading["energy_wh"])
            fields = {"status": verdict.status, "rule": verdict.rule, "reason": verdict.reason,
                      "judged_at": judged_at, "judged_energy_wh": judged_wh, **verdict.numbers}
            items.append(self.store.judgement_update(reading["id"], fields, "queued",
                                                     "pooling" if verdict.status == "accepted" else None,
                                                     energy_wh=judged_wh))
            if verdict.status == "accepted":
                events.append(ev.NewEvent(ev.READING_ACCEPTED, reading["id"], reading["source_id"], judged_at,
                                          _accepted_body(reading, verdict), related_ids=(device_id,)))
        if changed or events:
            version = int((state or {}).get("version", 0))
            items.insert(0, self.store.state_update(device_id, version, [list(r) for r in ranges],
                                                    asdict(history)))
        return items, events, verdicts


def _numbers(judgement: Judgement) -> dict[str, float]:
    return {"expected_wh": round(float(judgement.expected_wh), 1), "sigma_wh": round(float(judgement.sigma_wh), 1),
            "ceiling_wh": round(float(judgement.ceiling_wh), 1),
            "clear_sky_wh": round(float(judgement.clear_sky_wh), 1)}


def _accepted_body(reading: dict[str, Any], verdict: Verdict) -> dict[str, Any]:
    body = {k: reading.get(k) for k in ("device_id", "period_start", "period_end", "energy_wh", "signer",
                                        "signature", "derived")}
    body.update({"reading_id": reading["id"], "rule": verdict.rule, **verdict.numbers})
    return {k: v for k, v in body.items() if v is not None}


def _pack(groups: list[tuple[list[dict[str, Any]], list[ev.NewEvent], list[Verdict]]]) -> list[list[Any]]:
    """Device groups packed into transactions of at most MAX_ITEMS_PER_COMMIT items."""
    def size(group: Any) -> int:
        return len(group[0]) + sum(2 + len(e.related_ids) for e in group[1]) + 1

    batches: list[list[Any]] = []
    current: list[Any] = []
    used = 0
    for group in groups:
        if current and used + size(group) > MAX_ITEMS_PER_COMMIT:
            batches.append(current)
            current, used = [], 0
        current.append(group)
        used += size(group)
    if current:
        batches.append(current)
    return batches

