"""The validator: judges queued readings in whole batches against their devices' twins and neighbours.

Per device, the accepted periods (merged ranges) and the history of accepted readings
live in one `device_state` item with a version. A batch reads them, judges every
reading vectorised, and writes the new state conditioned on the version it read,
in the same transaction as the readings' verdicts and their `ReadingAccepted`
events: two validators on one device never both accept overlapping periods, and a
redelivered batch finds its readings already judged and changes nothing.

Neighbours: each judged reading's ratio goes into its geohash cell's histogram for its
period, in the same transaction; a reading is judged against the histograms of the cells
within `PeerSettings.radius_km`. While fewer than `minimum` neighbours have reported and
enough devices report nearby, a reading awaits them (`awaiting_peers`, holding its period)
for at most `wait_s`; the sweep sends it back here until it is judged. The device's
history runs a CUSUM over daily log ratios to its reference (`twin.persistence`): crossing
it opens a review on the device record (status under_review, a `DeviceReviewOpened` event),
after which the device's readings are judged and held until an operator decides.
"""

from __future__ import annotations

import hashlib
import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from ..domain.ledger import events as ev
from ..domain.readings import (
    DeviceState,
    DeviceUpdate,
    DeviceWrites,
    PeerContribution,
    Range,
    ReadingStatus,
    ReceivedReading,
    Stage,
    StateChange,
    Transition,
    claim,
    from_epoch,
    id_messages,
    overlapping,
)
from ..domain.registry import Device, DeviceStatus
from ..domain.time import iso, now_utc, parse_utc
from ..domain.twin.judging import PEER_MIN, Judgement, ReadingToJudge, judge
from ..domain.twin.peers import PeerHistogram, cells_within, ratio_bin
from ..domain.twin.persistence import DeviceHistory, fold, low_output, restart, review_due, update_history
from ..telemetry import log_by_correlation
from .ports.queues import Queue
from .ports.readings import ReadingStore
from .ports.registry import RegistryStore
from .twins import twin_of

# A device's readings are judged at most PER_DEVICE at a time, in period order (its transaction
# stays small: see the store's MAX_ITEMS_PER_COMMIT).
PER_DEVICE = 15
ATTEMPTS = 5
JUDGED = (ReadingStatus.QUEUED, ReadingStatus.AWAITING_PEERS)
HELD_BY_REVIEW = "device_under_review"


@dataclass(frozen=True)
class PeerSettings:
    """How neighbours are found and waited for (DREC_PEER_MIN, _RADIUS_KM, _WAIT_S, _SHARDS)."""

    minimum: int = PEER_MIN
    radius_km: float = 25.0
    wait_s: float = 6 * 3600.0
    shards: int = 4  # histogram items per cell and period: concurrent validators rarely meet on one


@dataclass
class Verdict:
    reading: ReceivedReading
    status: ReadingStatus
    rule: str
    reason: str
    numbers: dict[str, float]
    judgement: Judgement | None = None
    held: bool = False  # judged, then held because its device is under review
    extra: dict[str, Any] = field(default_factory=dict)


def _history(state: DeviceState | None) -> DeviceHistory:
    return DeviceHistory.from_item(state.history if state else None)


def _rejected(reading: ReceivedReading, rule: str, reason: str) -> Verdict:
    return Verdict(reading, ReadingStatus.REJECTED, rule, reason, {})


def _shard(device_id: str, shards: int) -> int:
    return int.from_bytes(hashlib.sha256(device_id.encode()).digest()[:4], "big") % max(shards, 1)


def _period(reading: ReceivedReading) -> tuple[int, int]:
    start, end = reading.span
    return int(start), int(end - start)


class Validator:
    def __init__(self, registry: RegistryStore, readings: ReadingStore, accepted_queue: Queue,
                 peers: PeerSettings | None = None, readings_queue: Queue | None = None) -> None:
        self.registry = registry
        self.store = readings
        self.accepted_queue = accepted_queue
        self.peers = peers or PeerSettings()
        self.readings_queue = readings_queue  # where a device's readings go back after ATTEMPTS lost races

    def validate(self, reading_ids: Sequence[str], now: datetime | None = None) -> dict[str, int]:
        """Judge what is still to judge; a device whose state another validator keeps changing is read
        again up to ATTEMPTS times, then its readings are sent back to the queue (a message of their
        own, judged afresh) instead of holding the whole batch until a redelivery."""
        counts: dict[str, int] = defaultdict(int)
        pending = list(dict.fromkeys(reading_ids))
        lost: dict[str, int] = defaultdict(int)  # races lost, by device
        given_up: list[tuple[str, str]] = []  # (device, reading id)
        while pending:
            pending, refused = self._attempt(pending, now or now_utc(), counts)
            for device_id in refused:
                lost[device_id] += 1
            out = {d for d in refused if lost[d] >= ATTEMPTS}
            if out:
                given_up += [(d, i) for d in sorted(out) for i in refused[d]]
                dropped = {i for d in out for i in refused[d]}
                pending = [i for i in pending if i not in dropped]
        if given_up:
            if self.readings_queue is None:
                raise RuntimeError(f"{len(given_up)} readings lost every race for their device state; redeliver")
            given_up.sort()
            self.readings_queue.send_json(id_messages([i for _, i in given_up], None, [d for d, _ in given_up]))
            counts["sent_again"] += len(given_up)
        return dict(counts)

    def _attempt(self, reading_ids: list[str], now: datetime,
                 counts: dict[str, int]) -> tuple[list[str], dict[str, list[str]]]:
        """Judge and commit what fits; returns the ids left for another round and, by device, the ids of
        the devices whose commit was refused (another writer changed their state or readings first)."""
        queued = sorted((r for r in self.store.readings(reading_ids).values() if r.status in JUDGED),
                        key=lambda r: (r.device_id, r.period_start))
        readings: list[ReceivedReading] = []
        deferred: list[ReceivedReading] = []
        per_device: dict[str, int] = defaultdict(int)
        for reading in queued:
            per_device[reading.device_id] += 1
            (readings if per_device[reading.device_id] <= PER_DEVICE else deferred).append(reading)
        if not readings:
            return [], {}
        device_ids = list(dict.fromkeys(r.device_id for r in readings))
        devices = self.registry.device_records(device_ids)
        states = self.store.device_states(device_ids)
        for device_id, state in states.items():  # a review may have been decided since the cache read it
            if _history(state).review_open and device_id in devices:
                fresh = self.registry.device(device_id)
                if fresh is not None:
                    devices[device_id] = fresh
        verdicts = self._judge(readings, devices, states, now)
        by_device: dict[str, list[Verdict]] = defaultdict(list)
        for verdict in verdicts:
            by_device[verdict.reading.device_id].append(verdict)
        groups = {d: self._device_writes(d, vs, states.get(d), now, devices.get(d)) for d, vs in by_device.items()}
        refused = {g.device_id for g in self.store.commit_verdicts(list(groups.values()))}
        retry = {d: [v.reading.reading_id for v in by_device[d]] for d in refused}
        to_pool = {t.reading_id for d, g in groups.items() if d not in refused for t in g.transitions
                   if t.stage == Stage.POOLING}  # what the issuer is sent is what the verdicts left for it
        accepted: dict[str | None, list[str]] = defaultdict(list)  # by correlation id
        judged: dict[str | None, dict[str, Any]] = {}
        for device_id, group_verdicts in by_device.items():
            if device_id in refused:
                continue
            for v in group_verdicts:
                if v.reading.status == v.status == ReadingStatus.AWAITING_PEERS:
                    counts["still_waiting"] += 1  # sent round again, nothing decided: not counted twice
                    continue
                counts[v.status.value] += 1
                line = judged.setdefault(v.reading.correlation_id, {"reading_ids": []})
                line[v.status.value] = line.get(v.status.value, 0) + 1
                line["reading_ids"].append(v.reading.reading_id)
                if v.held:
                    line["held_by_review"] = line.get("held_by_review", 0) + 1
                if v.reading.reading_id in to_pool:
                    accepted[v.reading.correlation_id].append(v.reading.reading_id)
        log_by_correlation("readings judged", judged)
        messages = [body for cid, ids in accepted.items() for body in id_messages(ids, cid)]
        if messages:
            self.accepted_queue.send_json(messages)
        return [i for ids in retry.values() for i in ids] + [r.reading_id for r in deferred], retry

    def _judge(self, readings: list[ReceivedReading], devices: dict[str, Device], states: dict[str, DeviceState],
               now: datetime) -> list[Verdict]:
        verdicts: list[Verdict] = []
        to_judge: list[ReceivedReading] = []
        for reading in readings:
            device = devices.get(reading.device_id)
            if device is None:
                verdicts.append(_rejected(reading, "unknown_device",
                                          f"device {reading.device_id} is not registered"))
            elif device.status not in (DeviceStatus.ACTIVE, DeviceStatus.UNDER_REVIEW):
                verdicts.append(_rejected(reading, "inactive_device",
                                          f"device {device.device_id} is {device.status}; it takes no readings"))
            else:
                to_judge.append(reading)
        if not to_judge:
            return verdicts
        twins = {d: twin_of(devices[d]) for d in {r.device_id for r in to_judge}}
        histories = {d: _history(states.get(d)) for d in twins}
        under_review = {d for d in twins if _under_review(devices[d], histories[d])}
        peers, may_wait, cells = self._neighbours(to_judge, devices, histories, under_review, now)
        counted = {r.reading_id for r in to_judge if "peer_bin" in r.numbers}
        asked = [ReadingToJudge(r.reading_id, r.device_id, parse_utc(r.period_start), parse_utc(r.period_end),
                                int(r.energy_wh)) for r in to_judge]
        judgements = judge(asked, twins, histories, now, peers=peers, counted=counted, may_wait=may_wait,
                           peer_min=self.peers.minimum)
        judgements = self._with_batch_peers(to_judge, asked, judgements, cells, peers, counted, under_review,
                                            (twins, histories, now, may_wait))
        for reading, judgement in zip(to_judge, judgements):
            verdict = Verdict(reading, ReadingStatus(judgement.status), judgement.rule, judgement.reason,
                              _numbers(judgement), judgement)
            if reading.device_id in under_review and verdict.status != ReadingStatus.REJECTED:
                review = devices[reading.device_id].review or {}
                verdict.status, verdict.rule, verdict.held = ReadingStatus.FLAGGED, HELD_BY_REVIEW, True
                verdict.reason = (f"held: device {reading.device_id} is under review "
                                  f"({review.get('reason', 'opened by the validator')}); an operator clears or "
                                  f"suspends it. The twin alone said: {judgement.reason}")
            verdicts.append(verdict)
        return verdicts

    def _with_batch_peers(self, readings: list[ReceivedReading], asked: list[ReadingToJudge],
                          first: list[Judgement], cells: dict[str, tuple[str, ...]], peers: dict[str, PeerHistogram],
                          counted: set[str], under_review: set[str], context: tuple[Any, ...]) -> list[Judgement]:
        """Readings of one push are each other's neighbours too: their ratios go into the histograms in this
        very transaction. Add the batch's own (first judgement) to each reading's reference and judge again
        the readings whose reference grew; a reading never counts itself."""
        twins = context[0]
        known = {d: twin.orientation_known for d, twin in twins.items()}
        batch: dict[tuple[str, int, int], list[tuple[float, float, bool]]] = defaultdict(list)
        def adds(reading: ReceivedReading, judgement: Judgement) -> bool:
            """Its ratio goes into the histograms with this batch (judged, not counted before, not held)."""
            return (judgement.reference != "none" and reading.reading_id not in counted
                    and reading.device_id not in under_review)

        for reading, judgement in zip(readings, first):
            if adds(reading, judgement):
                batch[(cells[reading.device_id][0], *_period(reading))].append(
                    (judgement.ratio, judgement.diffuse_ratio, known[reading.device_id]))
        if not batch:
            return first
        grown: dict[str, PeerHistogram] = {}
        also_counted: set[str] = set()
        merged: dict[tuple[tuple[str, ...], int, int], PeerHistogram] = {}
        for reading, judgement in zip(readings, first):
            start, duration = _period(reading)
            key = (cells[reading.device_id], start, duration)
            if key not in merged:
                found = [ratio for c in key[0] for ratio in batch.get((c, start, duration), [])]
                merged[key] = PeerHistogram.from_ratios([r for r, _, k in found if k], [d for _, d, _ in found],
                                                        [r for r, _, k in found if not k])
            own = adds(reading, judgement)
            if merged[key].count - own <= 0:
                continue
            grown[reading.reading_id] = peers[reading.reading_id].merged(merged[key])
            if own:
                also_counted.add(reading.reading_id)
        if not grown:
            return first
        twins, histories, now, may_wait = context
        again = [a for a in asked if a.reading_id in grown]
        second = judge(again, twins, histories, now, peers=grown, counted=counted | also_counted,
                       may_wait=may_wait, peer_min=self.peers.minimum)
        redone = {j.reading_id: j for j in second}
        return [redone.get(j.reading_id, j) for j in first]

    def _neighbours(self, readings: list[ReceivedReading], devices: dict[str, Device],
                    histories: dict[str, DeviceHistory], under_review: set[str],
                    now: datetime) -> tuple[dict[str, PeerHistogram], set[str], dict[str, tuple[str, ...]]]:
        """Each reading's neighbours' histogram for its period, and the readings that may still wait for more."""
        settings = self.peers
        cells = {d: cells_within(float(devices[d].latitude), float(devices[d].longitude), settings.radius_km)
                 for d in {r.device_id for r in readings}}
        wanted = {(cell, *_period(r)) for r in readings for cell in cells[r.device_id]}
        histograms = self.store.peer_histograms(sorted(wanted), settings.shards)
        reporting = self.store.reporting_devices(sorted({c for found in cells.values() for c in found}))
        merged: dict[tuple[tuple[str, ...], int, int], PeerHistogram] = {}
        peers: dict[str, PeerHistogram] = {}
        may_wait: set[str] = set()
        wait = timedelta(seconds=settings.wait_s)
        for reading in readings:
            neighbourhood = cells[reading.device_id]
            start, duration = _period(reading)
            key = (neighbourhood, start, duration)
            if key not in merged:
                merged[key] = PeerHistogram().merged(
                    *(histograms[(c, start, duration)] for c in neighbourhood if (c, start, duration) in histograms))
            peers[reading.reading_id] = merged[key]
            others = sum(reporting.get(c, 0) for c in neighbourhood) - bool(histories[reading.device_id].cell)
            received = parse_utc(reading.received_at) if reading.received_at else now
            if reading.device_id not in under_review and others >= settings.minimum and now < received + wait:
                may_wait.add(reading.reading_id)
        return peers, may_wait, cells

    def _device_writes(self, device_id: str, verdicts: list[Verdict], state: DeviceState | None,
                       now: datetime, device: Device | None) -> DeviceWrites:
        ranges: list[Range] = list(state.ranges) if state else []
        history = _history(state)
        before = history
        if device is not None and device.review_epoch != history.review_epoch:
            history = restart(history, device.review_epoch)
        changed = False
        transitions: list[Transition] = []
        events: list[ev.NewEvent] = []
        contributions: list[PeerContribution] = []
        judged_at = iso(now)
        cell = ""
        if device is not None:
            cell = cells_within(float(device.latitude), float(device.longitude), self.peers.radius_km)[0]
        for verdict in sorted(verdicts, key=lambda v: v.reading.period_start):
            reading = verdict.reading
            span = reading.span
            waited = reading.status == ReadingStatus.AWAITING_PEERS
            if waited and verdict.status == ReadingStatus.AWAITING_PEERS:
                continue  # still waiting: nothing to write
            if verdict.status != ReadingStatus.REJECTED and not waited:
                clash = overlapping(ranges, span)
                if clash:
                    verdict.status, verdict.rule = ReadingStatus.REJECTED, "overlap"
                    verdict.reason = (f"the period overlaps an accepted period of device {device_id} "
                                      f"({iso(from_epoch(clash[0]))} to {iso(from_epoch(clash[1]))}); "
                                      "the same energy is never counted twice")
                else:
                    ranges = claim(ranges, span)
                    changed = True
            judgement = verdict.judgement
            numbers = dict(verdict.numbers)
            if "peer_bin" in reading.numbers:
                kept = ("peer_bin", "peer_diffuse_bin")  # counted when it first waited: never twice
                numbers.update({k: reading.numbers[k] for k in kept if k in reading.numbers})
            elif (judgement is not None and cell and verdict.status != ReadingStatus.REJECTED and not verdict.held
                  and judgement.reference in ("peers", "climatology")):
                start, duration = _period(reading)
                bins = ratio_bin(judgement.ratio), ratio_bin(judgement.diffuse_ratio)
                declared = device is None or (device.tilt_deg is not None and device.azimuth_deg is not None)
                contributions.append(PeerContribution(cell, start, duration, _shard(device_id, self.peers.shards),
                                                      *bins, declared))
                numbers["peer_bin"], numbers["peer_diffuse_bin"] = bins
            if (judgement is not None and not verdict.held and judgement.reference in ("peers", "climatology")
                    and verdict.status in (ReadingStatus.ACCEPTED, ReadingStatus.FLAGGED)):
                history = fold(history, judgement, float(reading.energy_wh))
            if verdict.status == ReadingStatus.ACCEPTED:
                history = update_history(history, int(reading.energy_wh), numbers.get("clear_sky_wh", 0.0))
            # The verdict holds only for the energy judged: the write is pinned to it, and the issuer
            # pools `judged_energy_wh`, never a value the twin did not see.
            # An accepted 0 Wh reading (a night hour) has nothing to pool: it waits for nobody.
            judged_wh = int(reading.energy_wh)
            stage = (Stage.POOLING if verdict.status == ReadingStatus.ACCEPTED and judged_wh > 0
                     else Stage.PEERS if verdict.status == ReadingStatus.AWAITING_PEERS else None)
            transitions.append(Transition(
                reading.reading_id, reading.status, verdict.status, stage,
                judged_energy_wh=judged_wh, judged_at=judged_at, rule=verdict.rule, reason=verdict.reason,
                numbers=numbers))
            if verdict.status == ReadingStatus.ACCEPTED:
                events.append(ev.NewEvent(ev.READING_ACCEPTED, reading.reading_id, reading.source_id, judged_at,
                                          _accepted_body(reading, verdict), related_ids=(device_id,),
                                          correlation_ids=(reading.correlation_id,) if reading.correlation_id else ()))
        new_cell = None
        if contributions and not history.cell:
            new_cell, history = cell, replace(history, cell=cell)
        update = self._device_update(device, history, judged_at, events)
        if update is not None and update.review is not None:
            history = replace(history, review_open=True)
        if any(v.held for v in verdicts):
            update = replace(update or DeviceUpdate(device_id), still_under_review=True)
        change = None
        if changed or events or history != before:
            change = StateChange(device_id, state.version if state else 0, tuple(ranges), history.as_item())
        return DeviceWrites(device_id, change, transitions, events, tuple(contributions), new_cell, update)

    def _device_update(self, device: Device | None, history: DeviceHistory, judged_at: str,
                       events: list[ev.NewEvent]) -> DeviceUpdate | None:
        """A review to open (with its event, appended to `events`) and a maintenance note to set or lift."""
        if device is None:
            return None
        review = None
        reason = review_due(history)
        if reason and device.status == DeviceStatus.ACTIVE and not history.review_open:
            review = {"state": "open", "opened_at": judged_at, "reason": reason,
                      "reference": history.last_day_reference, "cusum": round(history.cusum, 3),
                      "days": history.cusum_days, "last_day_ratio": round(math.exp(history.last_day_log_ratio), 3),
                      "review_epoch": history.review_epoch}
            events.append(ev.NewEvent(ev.DEVICE_REVIEW_OPENED, device.device_id, device.registered_by, judged_at,
                                      {"device_id": device.device_id, **review}))
        note = low_output(history, device.maintenance is not None)
        maintenance_changed = (note is None) != (device.maintenance is None)
        maintenance = ({"since": judged_at, "reason": note, "ratio": round(math.exp(history.low_level), 3)}
                       if note else None)
        if review is None and not maintenance_changed:
            return None
        return DeviceUpdate(device.device_id, review, maintenance_changed, maintenance)


def _under_review(device: Device, history: DeviceHistory) -> bool:
    """Under review by the registry's record, or by a review this validator opened that nobody cleared yet."""
    return device.status == DeviceStatus.UNDER_REVIEW or (
        history.review_open and history.review_epoch == device.review_epoch)


def _numbers(judgement: Judgement) -> dict[str, float]:
    numbers = {"expected_wh": round(float(judgement.expected_wh), 1), "sigma_wh": round(float(judgement.sigma_wh), 1),
               "ceiling_wh": round(float(judgement.ceiling_wh), 1),
               "clear_sky_wh": round(float(judgement.clear_sky_wh), 1)}
    if judgement.reference in ("peers", "climatology"):
        numbers["ratio"] = judgement.ratio
    if judgement.peer_count:
        numbers.update({"peer_count": judgement.peer_count, "peer_median": judgement.peer_median,
                        "peer_spread": judgement.peer_spread})
    return numbers


def _accepted_body(reading: ReceivedReading, verdict: Verdict) -> dict[str, Any]:
    body = {"device_id": reading.device_id, "period_start": reading.period_start, "period_end": reading.period_end,
            "energy_wh": reading.energy_wh, "signer": reading.signer, "signature": reading.signature,
            "derived": reading.derived}
    body.update({"reading_id": reading.reading_id, "rule": verdict.rule, **verdict.numbers})
    return {k: v for k, v in body.items() if v is not None}
