"""Taking readings in: API push, payment events. Each valid reading is stored and queued once."""

from __future__ import annotations

import json
from collections import ChainMap
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from ..adapters.reading_store import DynamoReadings
from ..adapters.registry_store import DynamoRegistry
from ..adapters.sqs import SqsQueue
from ..api.schemas import ReadingIn, bad_input_from
from ..domain.errors import BadInput, Conflict, DomainError, Forbidden, NotFound, RuleBroken, Unauthorized
from ..domain.model import Principal
from ..domain.readings import Reading, check_period, id_messages
from ..domain.time import iso, now_utc
from .access import may_act_for
from .signatures import recover_payment, recover_reading, required_signer

# Reading ids per message on the readings queue (SQS bodies stay far below 256 KB).


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
    if raw.get("signature") == "":
        raw = {k: v for k, v in raw.items() if k != "signature"}  # an empty CSV cell is no signature
    try:
        # JSON mode: strict types, ISO timestamps parsed as in a request body.
        parsed = ReadingIn.model_validate_json(json.dumps(raw))
    except ValidationError as exc:
        raise bad_input_from(exc, field_prefix) from exc
    check_period(parsed.period_start, parsed.period_end, field_prefix)
    return Reading(parsed.device_id, parsed.period_start, parsed.period_end, parsed.energy_wh, parsed.external_id,
                   parsed.signature)


def _content(device_id: str, period_start: str, period_end: str, energy_wh: Any) -> tuple[str, str, str, int]:
    """What makes two submissions the same reading (external id and signature are not content)."""
    return device_id, period_start, period_end, int(energy_wh)


def _content_of(record: dict[str, Any]) -> tuple[str, str, str, int]:
    return _content(record["device_id"], record["period_start"], record["period_end"], record["energy_wh"])


class Intake:
    """Checks readings against the registry and queues the new ones for the validator."""

    def __init__(self, registry: DynamoRegistry, readings: DynamoReadings, queue: SqsQueue) -> None:
        self.registry = registry
        self.store = readings
        self.queue = queue
        self._devices: dict[str, dict[str, Any] | None] = {}
        self._accounts: dict[str, dict[str, Any] | None] = {}
        self._sources: dict[str, dict[str, Any] | None] = {}

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

    def source(self, source_id: str) -> dict[str, Any] | None:
        if source_id not in self._sources:
            self._sources[source_id] = self.registry.record("sources", source_id)
        return self._sources[source_id]

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

    def check_signature(self, reading: Reading, device: dict[str, Any], prefix: str,
                        payment: bool = False) -> tuple[str, str] | None:
        """(signer, signature) once verified; None when the device needs no signature, whatever was sent,
        so that nothing unverified is ever stored or published."""
        required = required_signer(device, self._accounts.get(device["owner_account_id"]), self.source)
        if required is None:
            return None
        field = f"{prefix}signature"
        what = "Payment(device_id, paid_from, paid_until)" if payment else \
            "Reading(device_id, period_start, period_end, energy_wh)"
        if not reading.signature:
            raise Unauthorized(f"device {reading.device_id}'s readings must be signed by {required}: send "
                               f"`signature`, its EIP-712 signature of {what}", field=field)
        try:
            if payment:
                signer = recover_payment(reading.device_id, reading.period_start, reading.period_end,
                                         reading.signature, field)
            else:
                signer = recover_reading(reading.device_id, reading.period_start, reading.period_end,
                                         reading.energy_wh, reading.signature, field)
        except BadInput as error:  # e.g. a sub-second time, which has no canonical signed form
            raise BadInput(error.message, field=f"{prefix}{error.field}" if error.field else field) from error
        if signer != required:
            raise Unauthorized(f"signature was made by {signer} (or over other values), not by {required}, the key "
                               f"device {reading.device_id}'s readings must be signed with", field=field)
        return signer, reading.signature

    def submit(self, principal: Principal, items: Sequence[tuple[int, Any]], field_prefix: str = "readings.",
               derived: dict[str, Any] | None = None) -> IntakeResult:
        """Check, store and queue readings; `items` pairs an index (or CSV line) with a raw reading.

        A raw reading may carry its own `signature`; it is verified here, on every path.
        """
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
                device = self.check_device(principal, reading.device_id, prefix)
                signed = self.check_signature(reading, device, prefix, payment=bool(derived))
            except DomainError as error:
                result.errors.append((index, error))
                continue
            record = {
                "id": reading.reading_id, "device_id": reading.device_id,
                "owner_account_id": device["owner_account_id"], "period_start": iso(reading.period_start),
                "period_end": iso(reading.period_end), "energy_wh": reading.energy_wh,
                "external_id": reading.external_id, "status": "queued", "pipeline": "queued",
                "source_id": principal.id, "signer": signed[0] if signed else None,
                "signature": signed[1] if signed else None, "derived": bool(derived), "payment": derived,
            }
            valid.append((index, reading, record))
        written = self._store(principal, valid, result, field_prefix)
        if written:
            self.queue_ids(written)
        result.queued = len(written)
        result.accepted.sort()
        result.errors.sort(key=lambda e: e[0])
        return result

    def _store(self, principal: Principal, valid: list[tuple[int, Reading, dict[str, Any]]], result: IntakeResult,
               field_prefix: str) -> list[str]:
        """Store what is new, never over what is there: the same content again is the same reading, other
        content for a stored device+period (or external id) is refused naming the stored reading."""
        received_at = iso(now_utc())
        written: list[str] = []
        pending = valid
        for _ in range(3):
            externals = self.store.external_targets(principal.id, [r.external_id for _, r, _ in pending
                                                                   if r.external_id])
            stored = self.store.contents([rec["id"] for _, _, rec in pending] + list(externals.values()))
            new: dict[str, tuple[int, dict[str, Any]]] = {}
            new_records: dict[str, dict[str, Any]] = {}
            repeats: list[tuple[int, str]] = []  # the same reading again within this request
            for index, reading, record in pending:
                prefix = f"{field_prefix}{index}." if field_prefix else ""
                try:
                    existing = _existing(reading, record, externals, ChainMap(new_records, stored), prefix)
                except DomainError as error:
                    result.errors.append((index, error))
                    continue
                if existing in new:
                    repeats.append((index, existing))
                elif existing:
                    result.accepted.append((index, existing))
                else:
                    new[record["id"]] = (index, record)
                    new_records[record["id"]] = record
                    if reading.external_id:
                        externals[reading.external_id] = record["id"]
            refused = set(self.store.store_new([{**rec, "received_at": received_at} for _, rec in new.values()],
                                               principal.id))
            for reading_id, (index, _) in new.items():
                if reading_id not in refused:
                    written.append(reading_id)
                    result.accepted.append((index, reading_id))
            result.accepted += [(index, reading_id) for index, reading_id in repeats if reading_id not in refused]
            # Lost a race to another writer: re-read and compare in the next round, never overwrite.
            waiting = {i for i, _ in new.values()} | {i for i, _ in repeats}
            pending = [v for v in pending if v[0] in waiting and v[2]["id"] in refused]
            if not pending:
                return written
        for index, _, _ in pending:
            result.errors.append((index, Conflict("the reading is being written concurrently; send it again")))
        return written

    def queue_ids(self, reading_ids: Sequence[str]) -> None:
        self.queue.send_json(id_messages(reading_ids))


def _existing(reading: Reading, record: dict[str, Any], externals: dict[str, str],
              stored: Mapping[str, dict[str, Any]], prefix: str) -> str | None:
    """The stored reading this submission repeats, None when it is new; Conflict when it contradicts one."""
    content = _content_of(record)
    target = externals.get(reading.external_id or "")
    if target is not None and target != record["id"]:
        raise Conflict(f"external_id {reading.external_id!r} already names reading {target} "
                       f"({_describe(stored.get(target))}); a received reading never changes",
                       field=f"{prefix}external_id")
    found = stored.get(record["id"])
    if found is None:
        return None
    if _content_of(found) != content:
        raise Conflict(f"reading {found['id']} of device {found['device_id']} for this period is already received "
                       f"({_describe(found)}); a received reading never changes", field=f"{prefix}energy_wh")
    return str(found["id"])


def _describe(record: dict[str, Any] | None) -> str:
    if record is None:
        return "being written"
    return f"{record['period_start']} to {record['period_end']}, {record['energy_wh']} Wh"


def submit_payment(intake: Intake, principal: Principal, device_id: str, paid_from: datetime,
                   paid_until: datetime, external_id: str | None, signature: str | None = None) -> str:
    """A pay-as-you-go window becomes a derived reading, capped by the twin (and battery).

    Its signature, if the device needs one, is over the Payment (device_id, paid_from, paid_until),
    which the derived reading's period repeats for anyone checking it later.
    """
    from ..domain.twin.payments import derived_energy_for_payment
    from .twins import twin_of

    check_period(paid_from, paid_until)
    intake.load_devices([device_id])
    device = intake.check_device(principal, device_id, "")
    energy_wh = derived_energy_for_payment(twin_of(device), paid_from, paid_until)
    reading = Reading(device_id, paid_from, paid_until, energy_wh, external_id, signature)
    payment = {"paid_from": iso(paid_from), "paid_until": iso(paid_until), "rule": "capacity x solar hours"}
    result = intake.submit(principal, [(0, reading)], field_prefix="", derived=payment)
    if result.errors:
        raise result.errors[0][1]
    return result.accepted[0][1]


def reading_view(item: dict[str, Any]) -> dict[str, Any]:
    keep = ("device_id", "period_start", "period_end", "energy_wh", "status", "rule", "reason", "expected_wh",
            "sigma_wh", "ceiling_wh", "clear_sky_wh", "derived", "payment", "source_id", "signer", "serials",
            "external_id", "received_at", "judged_at", "review", "signature")
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
