"""Taking readings in: API push, payment events. Each valid reading is stored and queued once."""

from __future__ import annotations

from collections import ChainMap
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from ..domain.errors import BadInput, Conflict, DomainError, Forbidden, NotFound, RuleBroken, Unauthorized
from ..domain.model import Principal
from ..domain.readings import (
    Reading,
    ReadingContent,
    ReadingStatus,
    ReceivedReading,
    Stage,
    check_period,
    id_messages,
)
from ..domain.registry import Account, Device, DeviceStatus, Source, may_act_for
from ..domain.time import iso, now_utc
from ..telemetry import logger, publish
from .ports.queues import Queue
from .ports.readings import ReadingStore
from .ports.registry import RegistryStore
from .signatures import recover_payment, recover_reading, required_signer

# Reading ids per message on the readings queue (SQS bodies stay far below 256 KB).

# A raw reading (a JSON item, a CSV row as a mapping) and its field prefix → a domain Reading, or BadInput.
ReadingParser = Callable[[Any, str], Reading]


@dataclass
class IntakeResult:
    accepted: list[tuple[int, str]] = field(default_factory=list)  # (index, reading_id)
    errors: list[tuple[int, DomainError]] = field(default_factory=list)
    queued: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"accepted": [{"index": i, "reading_id": r} for i, r in self.accepted],
                "errors": [{"index": i, "error": e.to_dict()} for i, e in self.errors]}


class Intake:
    """Checks readings against the registry and queues the new ones for the validator."""

    def __init__(self, registry: RegistryStore, readings: ReadingStore, queue: Queue, parse: ReadingParser,
                 correlation_id: str | None = None) -> None:
        self.registry = registry
        self.store = readings
        self.queue = queue
        self.parse = parse
        # Stored on every reading this intake writes and sent with their messages (telemetry.py).
        self.correlation_id = correlation_id
        self._devices: dict[str, Device | None] = {}
        self._accounts: dict[str, Account | None] = {}
        self._sources: dict[str, Source | None] = {}

    def load_devices(self, device_ids: Iterable[str]) -> None:
        missing = [d for d in dict.fromkeys(device_ids) if d not in self._devices]
        if not missing:
            return
        found = self.registry.device_records(missing)
        owners = [d.owner_account_id for d in found.values() if d.owner_account_id not in self._accounts]
        accounts = self.registry.accounts(owners)
        self._accounts.update({o: accounts.get(o) for o in owners})
        self._devices.update({d: found.get(d) for d in missing})

    def source(self, source_id: str) -> Source | None:
        if source_id not in self._sources:
            self._sources[source_id] = self.registry.source(source_id)
        return self._sources[source_id]

    def check_device(self, principal: Principal, device_id: str, prefix: str) -> Device:
        device = self._devices.get(device_id)
        if device is None:
            raise RuleBroken(f"device {device_id!r} is not registered", field=f"{prefix}device_id")
        if device.status not in (DeviceStatus.ACTIVE, DeviceStatus.UNDER_REVIEW):  # under review: judged, then held
            raise RuleBroken(f"device {device_id} is {device.status}; it takes no readings",
                             field=f"{prefix}device_id")
        owner = self._accounts.get(device.owner_account_id)
        if owner is None or not may_act_for(principal, owner):
            raise Forbidden(f"device {device_id} belongs to account {device.owner_account_id}, which "
                            f"{principal.kind} {principal.id} may not act for", field=f"{prefix}device_id")
        return device

    def check_signature(self, reading: Reading, device: Device, prefix: str,
                        payment: bool = False) -> tuple[str, str] | None:
        """(signer, signature) once verified; None when the device needs no signature, whatever was sent,
        so that nothing unverified is ever stored or published."""
        required = required_signer(device, self._accounts.get(device.owner_account_id), self.source)
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
                parsed.append((index, raw if isinstance(raw, Reading) else self.parse(raw, prefix)))
            except DomainError as error:
                result.errors.append((index, error))
        self.load_devices(r.device_id for _, r in parsed)
        valid: list[tuple[int, Reading, ReceivedReading]] = []
        for index, reading in parsed:
            prefix = f"{field_prefix}{index}." if field_prefix else ""
            try:
                device = self.check_device(principal, reading.device_id, prefix)
                signed = self.check_signature(reading, device, prefix, payment=bool(derived))
            except DomainError as error:
                result.errors.append((index, error))
                continue
            record = ReceivedReading(
                reading.reading_id, reading.device_id, device.owner_account_id, iso(reading.period_start),
                iso(reading.period_end), reading.energy_wh, principal.id, ReadingStatus.QUEUED, Stage.VALIDATION,
                external_id=reading.external_id, signer=signed[0] if signed else None,
                signature=signed[1] if signed else None, derived=bool(derived), payment=derived,
                correlation_id=self.correlation_id)
            valid.append((index, reading, record))
        written = self._store(principal, valid, result, field_prefix)
        place = {record.reading_id: (record.device_id, record.period_start) for _, _, record in valid}
        written.sort(key=lambda reading_id: place.get(reading_id, ("", reading_id)))
        if written:
            self.queue_ids(written, [place[i][0] if i in place else "" for i in written])
        result.queued = len(written)
        result.accepted.sort()
        result.errors.sort(key=lambda e: e[0])
        logger.info("readings received", extra={
            "correlation_id": self.correlation_id or "none", "source_id": principal.id, "submitted": len(items),
            "queued": result.queued, "repeated": len(result.accepted) - result.queued, "refused": len(result.errors),
            "reading_ids": written})
        publish({"ReadingsReceived": result.queued, "ReadingsRefused": len(result.errors)})
        return result

    def _store(self, principal: Principal, valid: list[tuple[int, Reading, ReceivedReading]], result: IntakeResult,
               field_prefix: str) -> list[str]:
        """Store what is new, never over what is there: the same content again is the same reading, other
        content for a stored device+period (or external id) is refused naming the stored reading."""
        received_at = iso(now_utc())
        written: list[str] = []
        pending = valid
        for _ in range(3):
            externals = self.store.external_targets(principal.id, [r.external_id for _, r, _ in pending
                                                                   if r.external_id])
            stored = self.store.contents([rec.reading_id for _, _, rec in pending] + list(externals.values()))
            new: dict[str, tuple[int, ReceivedReading]] = {}
            new_records: dict[str, ReceivedReading | ReadingContent] = {}
            repeats: list[tuple[int, str]] = []  # the same reading again within this request
            for index, reading, record in pending:
                prefix = f"{field_prefix}{index}." if field_prefix else ""
                try:
                    existing = _existing(reading, record, externals, ChainMap(new_records, stored),  # type: ignore[arg-type]
                                         prefix)
                except DomainError as error:
                    result.errors.append((index, error))
                    continue
                if existing in new:
                    repeats.append((index, existing))
                elif existing:
                    result.accepted.append((index, existing))
                else:
                    new[record.reading_id] = (index, record)
                    new_records[record.reading_id] = record
                    if reading.external_id:
                        externals[reading.external_id] = record.reading_id
            refused = set(self.store.store_new([replace(rec, received_at=received_at) for _, rec in new.values()],
                                               principal.id))
            for reading_id, (index, _) in new.items():
                if reading_id not in refused:
                    written.append(reading_id)
                    result.accepted.append((index, reading_id))
            result.accepted += [(index, reading_id) for index, reading_id in repeats if reading_id not in refused]
            # Lost a race to another writer: re-read and compare in the next round, never overwrite.
            waiting = {i for i, _ in new.values()} | {i for i, _ in repeats}
            pending = [v for v in pending if v[0] in waiting and v[2].reading_id in refused]
            if not pending:
                return written
        for index, _, _ in pending:
            result.errors.append((index, Conflict("the reading is being written concurrently; send it again")))
        return written

    def queue_ids(self, reading_ids: Sequence[str], devices: Sequence[str] | None = None) -> None:
        """Queued in the order given: `submit` puts a device's readings next to each other and names
        each one's device, so that one message holds whole devices and validators running at once do
        not share a device."""
        self.queue.send_json(id_messages(reading_ids, self.correlation_id, devices))


def _existing(reading: Reading, record: ReceivedReading, externals: dict[str, str],
              stored: Mapping[str, ReceivedReading | ReadingContent], prefix: str) -> str | None:
    """The stored reading this submission repeats, None when it is new; Conflict when it contradicts one."""
    target = externals.get(reading.external_id or "")
    if target is not None and target != record.reading_id:
        raise Conflict(f"external_id {reading.external_id!r} already names reading {target} "
                       f"({_describe(stored.get(target))}); a received reading never changes",
                       field=f"{prefix}external_id")
    found = stored.get(record.reading_id)
    if found is None:
        return None
    if found.content != record.content:
        raise Conflict(f"reading {found.reading_id} of device {found.device_id} for this period is already received "
                       f"({_describe(found)}); a received reading never changes", field=f"{prefix}energy_wh")
    return found.reading_id


def _describe(record: ReceivedReading | ReadingContent | None) -> str:
    if record is None:
        return "being written"
    return f"{record.period_start} to {record.period_end}, {record.energy_wh} Wh"


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


def reading_view(reading: ReceivedReading) -> dict[str, Any]:
    """A reading as the API shows it: what was received and how it was judged, absent values left out."""
    view = {"reading_id": reading.reading_id, "device_id": reading.device_id, "period_start": reading.period_start,
            "period_end": reading.period_end, "energy_wh": reading.energy_wh, "status": reading.status.value,
            "rule": reading.rule, "reason": reading.reason, **reading.numbers, "derived": reading.derived,
            "payment": reading.payment, "source_id": reading.source_id or None, "signer": reading.signer,
            "external_id": reading.external_id, "received_at": reading.received_at, "judged_at": reading.judged_at,
            "review": reading.review, "signature": reading.signature}
    return {k: v for k, v in view.items() if v is not None}


def get_reading(store: ReadingStore, reading_id: str) -> dict[str, Any]:
    found = store.readings([reading_id]).get(reading_id)
    if not found:
        raise NotFound(f"no reading {reading_id!r}", field="reading_id")
    view = reading_view(found)
    if found.status == ReadingStatus.ACCEPTED:
        # A reading accepted since it keeps its event's seq also keeps the serials that spend it (no query);
        # an older one is found through its links.
        if found.accepted_event_id is not None:
            view["accepted_event_id"] = found.accepted_event_id
            view["serials"] = sorted(found.drec_serials)
        else:
            view["serials"] = store.serials_of(reading_id)
        view["pooled_wh"] = found.pooled_wh
    return view


def list_readings(store: ReadingStore, status: ReadingStatus, limit: int, cursor: str | None) -> dict[str, Any]:
    readings, next_cursor = store.by_status(status, limit, cursor)
    return {"items": [reading_view(r) for r in readings], "next_cursor": next_cursor}


def list_device_readings(store: ReadingStore, device_id: str, limit: int, cursor: str | None,
                         status: ReadingStatus | None) -> dict[str, Any]:
    readings, next_cursor = store.device_readings(device_id, limit, cursor, status)
    return {"items": [reading_view(r) for r in readings], "next_cursor": next_cursor}
