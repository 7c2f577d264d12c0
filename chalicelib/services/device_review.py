"""The operator decides on a device under review: clear it or suspend it, with the readings its review held.

The decision is one transaction (the device's status, review and epoch, and its event), conditioned on
the status it was made on. Then the readings the review held (flagged, rule `device_under_review`) are
settled in small transactions: on clear they go back to the validator (their periods released, so it
judges them afresh) and their ids onto the readings queue; on suspend they are rejected. A retry with
the same Idempotency-Key answers as the first request did and settles what is left.
"""

from __future__ import annotations

from typing import Any

from ..domain.device_review import (
    HELD_RULE,
    SUSPENDED_RULE,
    DeviceDecision,
    check_decidable,
    check_note,
    decided,
    decision_body,
    suspended_reason,
)
from ..domain.errors import Conflict, NotFound, RuleBroken
from ..domain.ledger import events as ev
from ..domain.model import Principal
from ..domain.readings import (
    DeviceWrites,
    ReadingStatus,
    ReceivedReading,
    StateChange,
    Transition,
    id_messages,
    release,
)
from ..domain.registry import Device
from ..domain.stores import TransactionRefused
from ..domain.time import iso, now_utc
from .access import require_operator
from .idempotency import request_hash
from .ports.queues import Queue
from .ports.readings import ReadingStore
from .ports.registry import RegistryStore

# Held readings settled per transaction (each adds one item; the device state one more).
PER_COMMIT = 80
# Rounds lost to the validator writing the device's state meanwhile before the caller is asked to retry.
ATTEMPTS = 5
REPLAY_KIND = "device-review"


def decide_device_review(registry: RegistryStore, readings: ReadingStore, readings_queue: Queue,
                         principal: Principal, device_id: str, decision: DeviceDecision, note: str,
                         idempotency_key: str | None = None) -> dict[str, Any]:
    require_operator(principal, "decide on device reviews")
    device = registry.device(device_id)
    if device is None:
        raise NotFound(f"no device {device_id!r}", field="device_id")
    note = check_note(note)
    request_sha = request_hash(principal, {"device_id": device_id, "decision": decision, "note": note})
    guard = (principal.id, REPLAY_KIND, idempotency_key) if idempotency_key else None
    if guard:
        replayed = _replayed(registry, readings, readings_queue, guard, request_sha, device_id)
        if replayed is not None:
            return replayed
    check_decidable(device, decision)
    at = iso(now_utc())
    after = decided(device, decision, note, principal.id, at)
    event_type = ev.DEVICE_REVIEW_CLEARED if decision == "clear" else ev.DEVICE_SUSPENDED
    event = ev.NewEvent(event_type, device_id, principal.id, at, decision_body(after, device),
                        related_ids=(device.owner_account_id,))
    answer = {"device_id": device_id, "status": str(after.status), "review_epoch": after.review_epoch,
              "review": dict(after.review or {})}
    try:
        registry.decide_review(device, after, event, (guard, {"request_sha256": request_sha, "answer": answer})
                               if guard else None)
    except TransactionRefused as refused:
        if guard and registry.replay_of(*guard):  # the same request, sent twice at once: the other one won
            return decide_device_review(registry, readings, readings_queue, principal, device_id, decision, note,
                                        idempotency_key)
        raise Conflict(f"device {device_id} changed while its review was being decided; read it and decide again",
                       field="device_id") from refused
    return {**answer, "held_readings": _settle(readings, readings_queue, after, principal.id, at)}


def _replayed(registry: RegistryStore, readings: ReadingStore, readings_queue: Queue, guard: tuple[str, str, str],
              request_sha: str, device_id: str) -> dict[str, Any] | None:
    """The first answer to this Idempotency-Key, after settling what its request left; None for a new key."""
    found = registry.replay_of(*guard)
    if not found:
        return None
    if found.get("request_sha256") != request_sha or found.get("target_id") != device_id:
        raise RuleBroken("this Idempotency-Key was used for another request; send that request again to get "
                         "its answer, or use a new key for a new request", field="Idempotency-Key")
    answer = dict(found["answer"])
    device = registry.device(device_id)
    moved = 0
    # Only while the device is still as that decision left it: a later review holds its own readings.
    if device is not None and (device.review or {}).get("decided_at") == answer["review"].get("decided_at"):
        moved = _settle(readings, readings_queue, device, str(answer["review"].get("decided_by")),
                        str(answer["review"].get("decided_at")))
    return {**answer, "held_readings": moved}


def _held(store: ReadingStore, device_id: str, limit: int) -> list[ReceivedReading]:
    """Up to `limit` of the device's readings its review holds, in period order."""
    found: list[ReceivedReading] = []
    cursor: str | None = None
    while len(found) < limit:
        page, cursor = store.device_readings(device_id, 500, cursor, ReadingStatus.FLAGGED)
        found += [r for r in page if r.rule == HELD_RULE]
        if not cursor:
            break
    return found[:limit]


def _settle(store: ReadingStore, readings_queue: Queue, device: Device, by: str, at: str) -> int:
    """Move the readings the device's review held on, as its decision says; the number moved."""
    review = device.review or {}
    decision = str(review.get("decision"))
    reading_review = {"decision": decision, "note": review.get("note"), "by": by, "at": at, "device_review": True}
    moved, refusals = 0, 0
    while held := _held(store, device.device_id, PER_COMMIT):
        state = store.device_states([device.device_id]).get(device.device_id)
        change = None
        if state is not None:
            ranges = list(state.ranges)
            for reading in held:
                ranges = release(ranges, reading.span)
            change = StateChange(device.device_id, state.version, tuple(ranges), dict(state.history))
        ids = [r.reading_id for r in held]
        if decision == "clear":
            done = store.return_to_validation(change, ids, HELD_RULE, reading_review)
        else:
            reason = suspended_reason(device.device_id, str(review.get("note")))
            done = not store.commit_verdicts([DeviceWrites(device.device_id, change, [
                Transition(i, ReadingStatus.FLAGGED, ReadingStatus.REJECTED, None, judged_at=at,
                           rule=SUSPENDED_RULE, reason=reason, review=reading_review) for i in ids], [])])
        if not done:
            refusals += 1
            if refusals >= ATTEMPTS:
                raise Conflict(f"the readings held by device {device.device_id}'s review kept changing while they "
                               "were moved on; send the same request again with the same Idempotency-Key",
                               field="device_id")
            continue
        if decision == "clear":
            readings_queue.send_json(id_messages(ids))
        moved += len(ids)
    return moved
