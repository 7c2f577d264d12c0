"""Operator review of flagged readings: accept (hand on for issuance) or reject (free the period)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any, Literal

from ..domain.errors import Conflict, NotFound
from ..domain.ledger import events as ev
from ..domain.model import Principal
from ..domain.readings import DeviceWrites, ReadingStatus, Stage, StateChange, Transition, release
from ..domain.time import iso, now_utc
from ..domain.twin.persistence import DeviceHistory
from .access import require_operator
from .ports.queues import Queue
from .ports.readings import ReadingStore

Decision = Literal["accept", "reject"]


def review_reading(store: ReadingStore, accepted_queue: Queue, principal: Principal, reading_id: str,
                   decision: Decision, note: str | None) -> dict[str, Any]:
    require_operator(principal, "review flagged readings")
    reading = store.readings([reading_id]).get(reading_id)
    if not reading:
        raise NotFound(f"no reading {reading_id!r}", field="reading_id")
    if reading.status != ReadingStatus.FLAGGED:
        raise Conflict(f"reading {reading_id} is {reading.status}; only flagged readings are reviewed",
                       field="reading_id")
    now = iso(now_utc())
    review = {"decision": decision, "note": note, "by": principal.id, "at": now}
    if decision == "accept":
        judged_wh = reading.judged_energy_wh if reading.judged_energy_wh is not None else reading.energy_wh
        body = {"device_id": reading.device_id, "period_start": reading.period_start,
                "period_end": reading.period_end, "energy_wh": reading.energy_wh,
                "expected_wh": reading.numbers.get("expected_wh"), "sigma_wh": reading.numbers.get("sigma_wh"),
                "ceiling_wh": reading.numbers.get("ceiling_wh"), "rule": reading.rule, "signer": reading.signer,
                "signature": reading.signature, "derived": reading.derived,
                "reading_id": reading_id, "review": {"decision": decision, "by": principal.id}}
        event = ev.NewEvent(ev.READING_ACCEPTED, reading_id, reading.source_id, now,
                            {k: v for k, v in body.items() if v is not None}, related_ids=(reading.device_id,))
        writes = DeviceWrites(reading.device_id, None, [Transition(
            reading_id, ReadingStatus.FLAGGED, ReadingStatus.ACCEPTED, Stage.POOLING, judged_energy_wh=int(judged_wh),
            review=review)], [event])
    else:
        state = store.device_states([reading.device_id]).get(reading.device_id)
        ranges = release(list(state.ranges) if state else [], reading.span)
        history = dict(state.history) if state and state.history else asdict(DeviceHistory())
        change = StateChange(reading.device_id, state.version if state else 0, tuple(ranges), history)
        writes = DeviceWrites(reading.device_id, change, [Transition(
            reading_id, ReadingStatus.FLAGGED, ReadingStatus.REJECTED, None, review=review)], [])
    if store.commit_verdicts([writes]):
        raise Conflict("the reading or its device changed while being reviewed; review again")
    if decision == "accept":
        accepted_queue.send_json([{"reading_ids": [reading_id]}])
    status = ReadingStatus.ACCEPTED if decision == "accept" else ReadingStatus.REJECTED
    return {"reading_id": reading_id, "status": status.value, "review": review}
