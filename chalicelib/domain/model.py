"""Registry records: sources, accounts, devices, and the events that record them."""

from __future__ import annotations

import secrets
from dataclasses import asdict, dataclass, field
from datetime import date
from enum import Enum
from typing import Any
from uuid import uuid4

from .countries import is_country
from .errors import RuleBroken


class SourceKind(str, Enum):
    AGGREGATOR = "aggregator"
    DEVELOPER_BACKEND = "developer_backend"
    WEB_PORTAL = "web_portal"


class AccountKind(str, Enum):
    DEVELOPER = "developer"
    BUYER = "buyer"
    INTERMEDIARY = "intermediary"
    BROKER = "broker"


class DeviceType(str, Enum):
    SOLAR_HOME_SYSTEM = "solar_home_system"
    MINI_GRID = "mini_grid"
    MICROGRID = "microgrid"
    ROOFTOP_PV = "rooftop_pv"
    OTHER = "other"


class OfftakerType(str, Enum):
    HOUSEHOLD = "household"
    BUSINESS = "business"
    PUBLIC_SERVICE = "public_service"
    INDUSTRIAL = "industrial"
    OTHER = "other"


# Largest nameplate capacity [W] the registry accepts per device type. A solar home
# system is tens to a few hundred W; a "5 MW SHS" is a unit slip, not a device.
MAX_CAPACITY_W: dict[DeviceType, float] = {
    DeviceType.SOLAR_HOME_SYSTEM: 5_000,
    DeviceType.ROOFTOP_PV: 1_000_000,
    DeviceType.MINI_GRID: 5_000_000,
    DeviceType.MICROGRID: 5_000_000,
    DeviceType.OTHER: 5_000_000,
}

OPERATOR_ID = "operator"


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid4().hex[:20]}"


def new_api_key() -> str:
    return "drec_" + secrets.token_urlsafe(32)


@dataclass(frozen=True)
class Principal:
    """Who is calling: the operator, a source, or an account."""

    kind: str  # "operator" | "source" | "account"
    id: str

    @property
    def is_operator(self) -> bool:
        return self.kind == "operator"


@dataclass(frozen=True)
class Source:
    source_id: str
    name: str
    kind: str
    signing_address: str | None
    registered_at: str
    registered_by: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Account:
    account_id: str
    name: str
    kind: str
    country: str
    registered_at: str
    registered_by: str
    external_id: str | None = None
    contact: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Device:
    device_id: str
    owner_account_id: str
    device_type: str
    capacity_w: float
    latitude: float
    longitude: float
    country: str
    commissioning_date: str
    offtaker_type: str
    registered_at: str
    registered_by: str
    grid_connected: bool = False
    external_id: str | None = None
    tilt_deg: float | None = None
    azimuth_deg: float | None = None
    battery_wh: float | None = None
    altitude_m: float | None = None
    linke_turbidity: tuple[float, ...] = field(default_factory=tuple)
    status: str = "active"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["linke_turbidity"] = list(self.linke_turbidity)
        return data


def check_country(country: str, field_name: str = "country") -> None:
    if not is_country(country):
        raise RuleBroken(
            f"{country!r} is not an ISO 3166-1 alpha-2 country code (e.g. 'KE', 'NG', 'IN')",
            field=field_name,
        )


def check_device_rules(
    device_type: DeviceType, capacity_w: float, commissioning_date: date, today: date
) -> None:
    """Rules beyond the schema: plausible capacity, commissioned in the past."""
    ceiling = MAX_CAPACITY_W[device_type]
    if capacity_w > ceiling:
        raise RuleBroken(
            f"capacity_w {capacity_w:g} W is above {ceiling:g} W, the most a "
            f"{device_type.value} may have; capacity is in W, not kW or Wh",
            field="capacity_w",
        )
    if commissioning_date > today:
        raise RuleBroken(
            f"commissioning_date {commissioning_date.isoformat()} is in the future "
            f"(today is {today.isoformat()} UTC); register the device once it is commissioned",
            field="commissioning_date",
        )
