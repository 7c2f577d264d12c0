"""An operator's decision on a device under review: clear it (its held readings are judged again) or suspend it.

The validator opens a review when a device is steadily above its reference (CUSUM over its log
ratio) and holds the device's new readings meanwhile (flagged, rule `HELD_RULE`). Clearing bumps
`review_epoch`, which tells the validator to start the device's CUSUM afresh.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any, Literal

from .errors import Conflict, RuleBroken
from .registry import Device, DeviceStatus

DeviceDecision = Literal["clear", "suspend"]
#: The rule of a reading the validator holds while its device is under review.
HELD_RULE = "device_under_review"
#: The rule of a held reading rejected when its device is suspended.
SUSPENDED_RULE = "device_suspended"
MAX_NOTE = 1000


def check_decidable(device: Device, decision: DeviceDecision) -> None:
    """Only a device under review is cleared; a suspended device is not suspended again (409)."""
    if decision == "clear" and device.status != DeviceStatus.UNDER_REVIEW:
        raise Conflict(f"device {device.device_id} is {device.status}; only a device under review is cleared",
                       field="decision")
    if decision == "suspend" and device.status == DeviceStatus.SUSPENDED:
        raise Conflict(f"device {device.device_id} is already suspended", field="decision")


def check_note(note: str) -> str:
    text = note.strip()
    if not text:
        raise RuleBroken("note must say why (1 to 1000 characters, not only spaces)", field="note")
    return text


def decided(device: Device, decision: DeviceDecision, note: str, by: str, at: str) -> Device:
    """The device after the decision: its status, its review's state and who decided what, when and why."""
    review: dict[str, Any] = dict(device.review or {})
    review.update(state="cleared" if decision == "clear" else "suspended", decision=decision, decided_at=at,
                  decided_by=by, note=note)
    if decision == "clear":
        return replace(device, status=DeviceStatus.ACTIVE, review=review, review_epoch=device.review_epoch + 1)
    return replace(device, status=DeviceStatus.SUSPENDED, review=review)


def decision_body(device: Device, before: Device) -> dict[str, Any]:
    """What the anchored event says: the decision and the figures that opened the review (no personal data)."""
    review: Mapping[str, Any] = device.review or {}
    body = {"device_id": device.device_id, "decision": review.get("decision"), "note": review.get("note"),
            "decided_by": review.get("decided_by"), "from_status": str(before.status), "status": str(device.status),
            "review_epoch": device.review_epoch,
            **{k: review.get(k) for k in ("opened_at", "reason", "reference", "cusum", "days", "last_day_ratio")}}
    return {k: v for k, v in body.items() if v is not None}


def suspended_reason(device_id: str, note: str) -> str:
    return f"device {device_id} was suspended by the operator after its review: {note}"
