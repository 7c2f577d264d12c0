"""Operator review of flagged readings: accept (hand on for issuance) or reject (free the period)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from ..adapters.dynamo import TransactionRefused
from ..adapters.reading_store import DynamoReadings
from ..adapters.sqs import SqsQueue
from ..domain.errors import Conflict, NotFound
from ..domain.ledger import events as ev
from ..domain.model import Principal
from ..domain.readings import epoch, release
from ..domain.time import iso, now_utc, parse_utc
from ..domain.twin.judging import DeviceHistory
from .access import require_operator


def review_reading(store: DynamoReadings, accepted_queue: SqsQueue, principal: Principal, reading_id: str,
                   decision: str, note: str | None) -> dict[str, Any]:
    require_operator(principal, "review flagged readings")
    reading = store.readings([reading_id]).get(reading_id)
    if not reading:
        raise NotFound(f"no reading {reading_id!r}", field="reading_id")
    if reading["status"] != "flagged":
        raise Conflict(f"reading {reading_id} is {reading['status']}; only flagged readings are reviewed",
                       field="reading_id")
    now = iso(now_utc())
    review = {"decision": decision, "note": note, "by": principal.id, "at": now}
    items: list[dict[str, Any]] = []
    events: list[ev.NewEvent] = []
    if decision == "accept":
        judged_wh = int(reading.get("judged_energy_wh", reading["energy_wh"]))
        items.append(store.judgement_update(reading_id, {"status": "accepted", "review": review,
                                                         "judged_energy_wh": judged_wh}, "flagged", "pooling",
                                            energy_wh=judged_wh))
        body = {k: reading.get(k) for k in ("device_id", "period_start", "period_end", "energy_wh", "expected_wh",
                                            "sigma_wh", "ceiling_wh", "rule", "signer", "signature", "derived")}
        body.update({"reading_id": reading_id, "review": {"decision": decision, "by": principal.id}})
        events.append(ev.NewEvent(ev.READING_ACCEPTED, reading_id, reading["source_id"], now,
                                  {k: v for k, v in body.items() if v is not None},
                                  related_ids=(reading["device_id"],)))
    else:
        state = store.device_states([reading["device_id"]]).get(reading["device_id"]) or {}
        span = (epoch(parse_utc(reading["period_start"])), epoch(parse_utc(reading["period_end"])))
        ranges = release([tuple(r) for r in state.get("ranges", [])], span)  # type: ignore[misc]
        history = state.get("history") or asdict(DeviceHistory())
        items.append(store.state_update(reading["device_id"], int(state.get("version", 0)),
                                        [list(r) for r in ranges], history))
        items.append(store.judgement_update(reading_id, {"status": "rejected", "review": review}, "flagged", None))
    try:
        store.commit(items, events)
    except TransactionRefused as refused:
        raise Conflict("the reading or its device changed while being reviewed; review again") from refused
    if decision == "accept":
        accepted_queue.send_json([{"reading_ids": [reading_id]}])
    return {"reading_id": reading_id, "status": "accepted" if decision == "accept" else "rejected", "review": review}
