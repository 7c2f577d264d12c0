"""Taking readings in: API push, payment events. Each valid reading is stored and queued once."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from ..adapters.reading_store import DynamoReadings
from ..adapters.registry_store import DynamoRegistry
from ..adapters.sqs import SqsQueue
from ..domain.errors import BadInput, DomainError, Forbidden, NotFound, RuleBroken
from ..domain.model import Principal, iso, now_utc
from ..domain.readings import Reading, check_period
from ..schemas import ReadingIn, bad_input_from
from .access import may_act_for

# Reading ids per message on the readings queue (SQS bodies stay far below 256 KB).
IDS_PER_MESSAGE = 100


@dataclass
class IntakeResult:
    accepted: list[tuple[int, str]] = field(default_factory=list)  # (index, reading_id)
    errors: list[tuple[int, DomainError]] = field(default_factory=list)
    queued: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"accepted": [{"index": i, "reading_id": r} for i, r in self.accepted],
                "errors": [{"index": i, "error": e.to_dict()} for i, e in self.errors]}


def parse_reading(raw: Any, field_prefix: str = "") -> Reading:
    if not isinstance(raw, dict):
        raise BadInput("each reading is an object with device_id, period_start, period_end, energy_wh",
                       field=field_prefix.rstrip(".") or None)
    try:
        # JSON mode: strict types, ISO timestamps parsed as in a request body.
        parsed = ReadingIn.model_validate_json(json.dumps(raw))
    except ValidationError as exc:
        raise bad_input_from(exc, field_prefix) from exc
    check_period(parsed.period_start, parsed.period_end, field_prefix)
    return Reading(parsed.device_id, parsed.period_start, parsed.period_end, parsed.energy_wh, parsed.external_id)


class Intake:
    """Checks readings against the registry and queues the new ones for the validator."""

    def __init__(self, registry: DynamoRegistry, readings: DynamoReadings, queue: SqsQueue) -> None:
        self.registry = registry
        self.store = readings
        self.queue = queue
        self._devices: dict[str, dict[str, Any] | None] = {}
        self._accounts: dict[str, dict[str, Any] | None] = {}

    def load_devices(self, device_ids: Iterable[str]) -> None:
        missing = [d for d in dict.fromkeys(device_ids) if d not in self._devices]
        if not missing:
            return
        found = self.registry.devices(missing)
        owners = [i["owner_account_id"] for i in found.values() if i["owner_account_id"] not in self._accounts]
        accounts = {a["id"]: a for a in self.registry.batch_get("accounts", [{"id": o} for o in
                                                                             dict.fromkeys(owners)])}
        self._accounts.update({o: accounts.get(o) for o in owners})
        self._devices.update({d: found.get(d) for d in missing})

    def check_device(self, principal: Principal, device_id: str, prefix: str) -> dict[str, Any]:
        device = self._devices.get(device_id)
        if device is None:
            raise RuleBroken(f"device {device_id!r} is not registered", field=f"{prefix}device_id")
        if device.get("status", "active") != "active":
            raise RuleBroken(f"device {device_id} is {device['status']}; it takes no readings",
                             field=f"{prefix}device_id")
        owner = self._accounts.get(device["owner_account_id"])
        if owner is None or not may_act_for(principal, owner):
            raise Forbidden(f"device {device_id} belongs to account {device['owner_account_id']}, which "
                            f"{principal.kind} {principal.id} may not act for", field=f"{prefix}device_id")
        return device

    def submit(self, principal: Principal, items: Sequence[tuple[int, Any]], signer: str | None,
               signature: str | None, field_prefix: str = "readings.", derived: dict[str, Any] | None = None,
               ) -> IntakeResult:
        """Check, store and queue readings; `items` pairs an index (or CSV line) with a raw reading."""
        result = IntakeResult()
        parsed: list[tuple[int, Reading]] = []
        for index, raw in items:
            prefix = f"{field_prefix}{index}." if field_prefix else ""
            try:
                parsed.append((index, raw if isinstance(raw, Reading) else parse_reading(raw, prefix)))
            except DomainError as error:
                result.errors.append((index, error))
        self.load_devices(r.device_id for _, r in parsed)
        valid: list[tuple[int, Reading, dict[str, Any]]] = []
        for index, reading in parsed:
            prefix = f"{field_prefix}{index}." if field_prefix else ""
            try:
                valid.append((index, reading, self.check_device(principal, reading.device_id, prefix)))
            except DomainError as error:
                result.errors.append((index, error))
        externals = self.store.external_targets(principal.id, [r.external_id for _, r, _ in valid if r.external_id])
        ids = {index: externals.get(r.external_id or "", r.reading_id) for index, r, _ in valid}
        existing = self.store.readings(list(ids.values()))
        received_at = iso(now_utc())
        new: dict[str, dict[str, Any]] = {}
        for index, reading, device in valid:
            reading_id = ids[index]
            result.accepted.append((index, reading_id))
            if reading_id in existing or reading_id in new:
                continue
            new[reading_id] = {
                "id": reading_id, "device_id": reading.device_id, "owner_account_id": device["owner_account_id"],
                "period_start": iso(reading.period_start), "period_end": iso(reading.period_end),
                "energy_wh": reading.energy_wh, "external_id": reading.external_id, "status": "queued",
                "pipeline": "queued", "source_id": principal.id, "signer": signer, "signature": signature,
                "received_at": received_at, "derived": bool(derived), "payment": derived,
            }
        if new:
            self.store.store_new(list(new.values()), principal.id)
            self.queue_ids(list(new))
        result.queued = len(new)
        result.accepted.sort()
        result.errors.sort(key=lambda e: e[0])
        return result

    def queue_ids(self, reading_ids: Sequence[str]) -> None:
        self.queue.send_json([{"reading_ids": list(reading_ids[i:i + IDS_PER_MESSAGE])}
                              for i in range(0, len(reading_ids), IDS_PER_MESSAGE)])


def submit_payment(intake: Intake, principal: Principal, device_id: str, paid_from: datetime,
                   paid_until: datetime, external_id: str | None) -> str:
    """A pay-as-you-go window becomes a derived reading, capped by the twin (and battery)."""
    from ..domain.judging import derived_energy_for_payment
    from .twins import twin_of

    check_period(paid_from, paid_until)
    intake.load_devices([device_id])
    device = intake.check_device(principal, device_id, "")
    energy_wh = derived_energy_for_payment(twin_of(device), paid_from, paid_until)
    reading = Reading(device_id, paid_from, paid_until, energy_wh, external_id)
    payment = {"paid_from": iso(paid_from), "paid_until": iso(paid_until), "rule": "capacity x solar hours"}
    result = intake.submit(principal, [(0, reading)], None, None, field_prefix="", derived=payment)
    if result.errors:
        raise result.errors[0][1]
    return result.accepted[0][1]


def reading_view(item: dict[str, Any]) -> dict[str, Any]:
    keep = ("device_id", "period_start", "period_end", "energy_wh", "status", "rule", "reason", "expected_wh",
            "sigma_wh", "ceiling_wh", "clear_sky_wh", "derived", "payment", "source_id", "signer", "serials",
            "external_id", "received_at", "judged_at", "review")
    return {"reading_id": item["id"], **{k: item.get(k) for k in keep if k in item}}


def get_reading(store: DynamoReadings, reading_id: str) -> dict[str, Any]:
    found = store.readings([reading_id]).get(reading_id)
    if not found:
        raise NotFound(f"no reading {reading_id!r}", field="reading_id")
    view = reading_view(found)
    if found["status"] == "accepted":
        view["serials"] = [i["serial"] for i in store.query_page("drec_links", None, "subject_id", reading_id,
                                                                   1000, None).items]
        view["pooled_wh"] = found.get("pooled_wh", 0)
    return view
