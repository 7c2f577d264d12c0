"""Registry records and their rules: sources, accounts, devices; the commands that register them.

Records are what the registry stores; commands are what a use case takes (the HTTP edge builds
them from its schemas). Who may act for an account is a rule of the registry too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from enum import Enum, StrEnum
from typing import Any

from .countries import is_country
from .errors import RuleBroken
from .model import AccountKind, DeviceType, OfftakerType, Principal, PrincipalKind, SourceKind


class DeviceStatus(StrEnum):
    """active → under_review (the validator: steadily above its reference) → active (cleared) | suspended."""

    ACTIVE = "active"
    UNDER_REVIEW = "under_review"
    SUSPENDED = "suspended"


@dataclass(frozen=True)
class RegisterSource:
    name: str
    kind: SourceKind
    signing_address: str | None = None


@dataclass(frozen=True)
class RegisterAccount:
    name: str
    kind: AccountKind
    country: str
    external_id: str | None = None
    contact: str | None = None


@dataclass(frozen=True)
class RegisterDevice:
    owner_account_id: str
    device_type: DeviceType
    capacity_w: float
    latitude: float
    longitude: float
    country: str
    commissioning_date: date
    offtaker_type: OfftakerType
    grid_connected: bool = False
    external_id: str | None = None
    tilt_deg: float | None = None
    azimuth_deg: float | None = None
    battery_wh: float | None = None
    signing_address: str | None = None


@dataclass(frozen=True)
class Source:
    source_id: str
    name: str
    kind: str
    registered_at: str
    registered_by: str
    signing_address: str | None = None  # lowercase, as signer recovery returns it
    revoked_at: str | None = None
    revoked_by: str | None = None


@dataclass(frozen=True)
class Account:
    account_id: str
    name: str
    kind: str
    country: str
    registered_at: str
    registered_by: str
    external_id: str | None = None
    contact: str | None = None  # personal data: never in an event, shown to those who may act for it only
    revoked_at: str | None = None
    revoked_by: str | None = None


@dataclass(frozen=True)
class Device:
    device_id: str
    owner_account_id: str
    device_type: str
    capacity_w: float  # [W]
    latitude: float
    longitude: float
    country: str
    commissioning_date: str  # YYYY-MM-DD
    offtaker_type: str
    registered_at: str
    registered_by: str
    grid_connected: bool = False
    external_id: str | None = None
    tilt_deg: float | None = None
    azimuth_deg: float | None = None
    battery_wh: float | None = None  # [Wh]
    signing_address: str | None = None  # lowercase
    status: str = DeviceStatus.ACTIVE
    location_salt: str | None = None  # opens the public commitment: the owner's side only
    location_commitment: str | None = None
    altitude_m: float | None = None
    linke_turbidity: tuple[float, ...] | None = None  # 12 monthly values
    # Why the device went under review and what was decided (reason, figures, opened_at, decision, note...).
    review: Mapping[str, Any] | None = None
    # Bumped when an operator clears a review: the validator starts the device's CUSUM afresh.
    review_epoch: int = 0
    # A note for the owner when output stays below its reference (nothing is held for it).
    maintenance: Mapping[str, Any] | None = None


# The fields a registration sets from its command: a fresh registration answers with each of
# them, null when not given (a stored record leaves absent fields out).
SOURCE_INPUT = ("signing_address",)
ACCOUNT_INPUT = ("external_id", "contact")
DEVICE_INPUT = ("external_id", "tilt_deg", "azimuth_deg", "battery_wh", "signing_address")


def fields_of(record: Any, keep_null: tuple[str, ...] = ()) -> dict[str, Any]:
    """A record as a plain mapping, absent values left out (except those named in `keep_null`)."""
    out: dict[str, Any] = {}
    for name in record.__dataclass_fields__:
        value = getattr(record, name)
        if isinstance(value, tuple):
            value = list(value)
        elif isinstance(value, Enum):
            value = value.value
        if value is not None or name in keep_null:
            out[name] = value
    return out


def may_act_for(principal: Principal, account: Account) -> bool:
    """The operator, the account itself, or the source that registered it."""
    if principal.is_operator:
        return True
    if principal.kind == PrincipalKind.ACCOUNT:
        return principal.id == account.account_id
    return principal.kind == PrincipalKind.SOURCE and account.registered_by == principal.id


def signing_source_id(device: Device, owner: Account | None) -> str | None:
    """The source whose signing address a device's readings fall back to: the device's registering
    source, else its owner account's."""
    return next((by for by in (device.registered_by, owner.registered_by if owner else None)
                 if isinstance(by, str) and by.startswith("src-")), None)


# Largest nameplate capacity [W] the registry accepts per device type. A solar home
# system is tens to a few hundred W; a "5 MW SHS" is a unit slip, not a device.
MAX_CAPACITY_W: dict[DeviceType, float] = {
    DeviceType.SOLAR_HOME_SYSTEM: 5_000,
    DeviceType.ROOFTOP_PV: 1_000_000,
    DeviceType.MINI_GRID: 5_000_000,
    DeviceType.MICROGRID: 5_000_000,
    DeviceType.OTHER: 5_000_000,
}


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
