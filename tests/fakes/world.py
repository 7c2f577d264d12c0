"""A registry, readings, queues and buckets in memory, wired as `bootstrap.Container` wires the real ones."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from chalicelib.api.reading_input import parse_reading
from chalicelib.domain.model import AccountKind, DeviceType, OfftakerType, Principal, SourceKind
from chalicelib.domain.registry import RegisterAccount, RegisterDevice, RegisterSource
from chalicelib.services import registry
from chalicelib.services.intake import Intake
from chalicelib.services.validation import Validator

from .buckets import FakeBucket
from .events import FakeEventLog
from .queues import FakeQueue
from .readings import FakeReadings
from .registry import FakeKeys, FakeRegistry, FakeUploads

OPERATOR = Principal("operator", "operator")
# Site constants as the registry stores them (altitude [m], monthly Linke turbidity), so no lookup runs.
SITE = {"altitude_m": 1650.0, "linke_turbidity": [3.0] * 12}


@dataclass
class World:
    events: FakeEventLog = field(default_factory=FakeEventLog)
    readings_queue: FakeQueue = field(default_factory=FakeQueue)
    accepted_queue: FakeQueue = field(default_factory=FakeQueue)
    uploads_bucket: FakeBucket = field(default_factory=FakeBucket)
    announcements: FakeUploads = field(default_factory=FakeUploads)

    def __post_init__(self) -> None:
        self.registry = FakeRegistry(self.events)
        self.keys = FakeKeys(self.registry)
        self.readings = FakeReadings(self.events, self.registry)

    def intake(self) -> Intake:
        return Intake(self.registry, self.readings, self.readings_queue, parse_reading)

    def validator(self) -> Validator:
        return Validator(self.registry, self.readings, self.accepted_queue)

    def source(self, signing_address: str | None = None) -> tuple[Principal, str]:
        done = registry.register_source(self.registry, OPERATOR,
                                        RegisterSource("Agg", SourceKind.AGGREGATOR, signing_address))
        return Principal("source", done.record["source_id"]), str(done.api_key)

    def account(self, by: Principal, **fields: Any) -> dict[str, Any]:
        command = RegisterAccount(**{"name": "Dev", "kind": AccountKind.DEVELOPER, "country": "KE", **fields})
        return registry.register_account(self.registry, by, command).record

    def device(self, by: Principal, owner_account_id: str, **fields: Any) -> dict[str, Any]:
        command = RegisterDevice(**{
            "owner_account_id": owner_account_id, "device_type": DeviceType.SOLAR_HOME_SYSTEM, "capacity_w": 100.0,
            "latitude": -1.29, "longitude": 36.82, "country": "KE", "commissioning_date": date(2025, 1, 15),
            "offtaker_type": OfftakerType.HOUSEHOLD, **fields})
        return registry.register_device(self.registry, by, command, lambda lat, lon: SITE).record

    def registered_device(self, **fields: Any) -> tuple[Principal, dict[str, Any], dict[str, Any]]:
        source, _ = self.source()
        account = self.account(source)
        return source, account, self.device(source, account["account_id"], **fields)
