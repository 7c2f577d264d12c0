"""Registering sources, accounts and devices; each registration appends its event."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from ..domain.errors import Forbidden, NotFound, RuleBroken
from ..domain.ledger import events as ev
from ..domain.model import Principal, PrincipalKind, new_api_key, new_id
from ..domain.privacy import location_commitment, new_location_salt, round_coordinate
from ..domain.registry import (
    ACCOUNT_INPUT,
    DEVICE_INPUT,
    SOURCE_INPUT,
    Account,
    Device,
    DeviceStatus,
    RegisterAccount,
    RegisterDevice,
    RegisterSource,
    Source,
    check_country,
    check_device_rules,
    fields_of,
    may_act_for,
)
from ..domain.stores import ExternalIdTaken
from ..domain.time import iso, now_utc
from .access import hash_key, require_acting_for, require_operator
from .ports.certificates import Drecs
from .ports.readings import ReadingStore
from .ports.registry import RegistryStore

# (latitude, longitude) -> site constants stored with the device (altitude, Linke turbidity).
SiteLookup = Callable[[float, float], dict[str, Any]]


@dataclass(frozen=True)
class Registered:
    record: dict[str, Any]
    created: bool
    api_key: str | None = None


@dataclass(frozen=True)
class Listed:
    """One page of a listing, as the caller may see it."""

    items: list[dict[str, Any]]
    next_cursor: str | None


def source_view(source: Source, keep_null: tuple[str, ...] = ()) -> dict[str, Any]:
    return fields_of(source, keep_null)


def account_view(account: Account, viewer: Principal | None, keep_null: tuple[str, ...] = ()) -> dict[str, Any]:
    """Contact data is for the account, the sources that may act for it and the operator only."""
    out = fields_of(account, keep_null)
    if viewer is None or not may_act_for(viewer, account):
        out.pop("contact", None)
    return out


def device_view(device: Device, exact: bool, keep_null: tuple[str, ...] = ()) -> dict[str, Any]:
    """A household's exact location is personal data: others see it rounded to 0.01°, and no salt. Its
    review and maintenance note are for its owner's side too; everyone sees its status."""
    out = fields_of(device, keep_null)
    if not exact:
        for private in ("location_salt", "review", "review_epoch", "maintenance"):
            out.pop(private, None)
        out["latitude"] = round_coordinate(device.latitude)
        out["longitude"] = round_coordinate(device.longitude)
    return out


class _DeviceViews:
    """Device views for one viewer; each owner account is looked up once (only for a signed-in viewer)."""

    def __init__(self, store: RegistryStore, viewer: Principal | None) -> None:
        self.store = store
        self.viewer = viewer
        self.owners: dict[str, bool] = {}

    def may_see_exact(self, owner_account_id: str) -> bool:
        if self.viewer is None:
            return False
        if owner_account_id not in self.owners:
            owner = self.store.account(owner_account_id)
            self.owners[owner_account_id] = owner is not None and may_act_for(self.viewer, owner)
        return self.owners[owner_account_id]

    def __call__(self, device: Device) -> dict[str, Any]:
        return device_view(device, self.may_see_exact(device.owner_account_id))


def dedupe_key(principal: Principal, kind: str, external_id: str | None,
               idempotency_key: str | None) -> tuple[str, str, str] | None:
    """What makes a registration a replay: the caller's external id, else its Idempotency-Key."""
    if external_id:
        return principal.id, kind, external_id
    if idempotency_key:
        return principal.id, f"{kind}-request", idempotency_key
    return None


def _body(view: dict[str, Any], *leave_out: str) -> dict[str, Any]:
    """An event body: the record's fields with a value, without the id and what must stay private."""
    return {k: v for k, v in view.items() if k not in leave_out and v is not None}


def register_source(store: RegistryStore, principal: Principal, command: RegisterSource,
                    idempotency_key: str | None = None) -> Registered:
    """A replay (same Idempotency-Key) answers with the source, without its key: keys are shown once."""
    require_operator(principal, "register sources")
    external = dedupe_key(principal, "source", None, idempotency_key)
    if external and (existing := store.find_external(*external)):
        return Registered(get_source(store, existing), False)
    source_id, api_key = new_id("src"), new_api_key()
    source = Source(source_id, command.name, command.kind.value, iso(now_utc()), principal.id,
                    signing_address=command.signing_address.lower() if command.signing_address else None)
    event = ev.NewEvent(ev.SOURCE_REGISTERED, source_id, principal.id, source.registered_at,
                        _body(source_view(source), "source_id"))
    try:
        store.register(source, event, hash_key(api_key), external)
    except ExternalIdTaken as taken:
        return Registered(get_source(store, taken.existing_id), False)
    return Registered(source_view(source, SOURCE_INPUT), True, api_key)


def register_account(store: RegistryStore, principal: Principal, command: RegisterAccount,
                     idempotency_key: str | None = None) -> Registered:
    if principal.kind == PrincipalKind.ACCOUNT:
        raise Forbidden(f"account {principal.id} may not register accounts: only the operator or a source may")
    check_country(command.country)
    external = dedupe_key(principal, "account", command.external_id, idempotency_key)
    if external:
        existing = store.find_external(*external)
        if existing:
            return Registered(get_account(store, existing, principal), False)
    account_id, api_key = new_id("acc"), new_api_key()
    account = Account(account_id, command.name, command.kind.value, command.country, iso(now_utc()), principal.id,
                      external_id=command.external_id, contact=command.contact)
    event = ev.NewEvent(ev.ACCOUNT_REGISTERED, account_id, principal.id, account.registered_at,
                        _body(fields_of(account), "account_id", "contact"))
    try:
        store.register(account, event, hash_key(api_key), external)
    except ExternalIdTaken as taken:
        return Registered(get_account(store, taken.existing_id, principal), False)
    return Registered(fields_of(account, ACCOUNT_INPUT), True, api_key)


def register_device(store: RegistryStore, principal: Principal, command: RegisterDevice,
                    site_lookup: SiteLookup | None = None, idempotency_key: str | None = None) -> Registered:
    owner = store.account(command.owner_account_id)
    if not owner:
        raise RuleBroken(f"owner_account_id {command.owner_account_id!r} is not a registered account; "
                         "register the account first", field="owner_account_id")
    require_acting_for(principal, owner, "register devices")
    check_country(command.country)
    today = now_utc().date()
    check_device_rules(command.device_type, command.capacity_w, command.commissioning_date, today)
    external = dedupe_key(principal, "device", command.external_id, idempotency_key)
    if external:
        existing = store.find_external(*external)
        if existing:
            return Registered(get_device(store, existing, principal), False)
    device_id = new_id("dev")
    # The salt stays in the record (shown to the owner's side only) so the owner can open the
    # commitment later; the commitment itself is public.
    salt = new_location_salt()
    device = Device(
        device_id, command.owner_account_id, command.device_type.value, command.capacity_w, command.latitude,
        command.longitude, command.country, command.commissioning_date.isoformat(), command.offtaker_type.value,
        iso(now_utc()), principal.id, grid_connected=command.grid_connected, external_id=command.external_id,
        tilt_deg=command.tilt_deg, azimuth_deg=command.azimuth_deg, battery_wh=command.battery_wh,
        # stored as the signer recovery returns it
        signing_address=command.signing_address.lower() if command.signing_address else None,
        status=DeviceStatus.ACTIVE, location_salt=salt,
        location_commitment=location_commitment(command.latitude, command.longitude, salt))
    if site_lookup:
        site = site_lookup(command.latitude, command.longitude)
        device = replace(device, altitude_m=site["altitude_m"], linke_turbidity=tuple(site["linke_turbidity"]))
    body = _body(fields_of(device), "device_id", "linke_turbidity", "altitude_m", "location_salt")
    # The body is anchored for ever: only rounded coordinates go there (DESIGN.md, Trust model).
    body["latitude"], body["longitude"] = round_coordinate(device.latitude), round_coordinate(device.longitude)
    event = ev.NewEvent(ev.DEVICE_REGISTERED, device_id, principal.id, device.registered_at, body,
                        related_ids=(command.owner_account_id,))
    try:
        store.register(device, event, external=external)
    except ExternalIdTaken as taken:
        return Registered(get_device(store, taken.existing_id, principal), False)
    return Registered(device_view(device, True, DEVICE_INPUT), True)


def get_source(store: RegistryStore, source_id: str) -> dict[str, Any]:
    source = store.source(source_id)
    if not source:
        raise NotFound(f"no source {source_id!r}", field="source_id")
    return source_view(source)


def get_account(store: RegistryStore, account_id: str, viewer: Principal | None = None) -> dict[str, Any]:
    """The account as `viewer` (None: the public) may see it."""
    account = store.account(account_id)
    if not account:
        raise NotFound(f"no account {account_id!r}", field="account_id")
    return account_view(account, viewer)


def get_device(store: RegistryStore, device_id: str, viewer: Principal | None = None,
               figures: DeviceFigures | None = None) -> dict[str, Any]:
    """The device as `viewer` (None: the public) may see it."""
    device = store.device(device_id)
    if not device:
        raise NotFound(f"no device {device_id!r}", field="device_id")
    view = _DeviceViews(store, viewer)(device)
    return figures.add([view])[0] if figures is not None else view


@dataclass(frozen=True)
class DeviceFigures:
    """What a device's listing shows beside its registration, each from a count kept as it happened."""

    readings: ReadingStore
    drecs: Drecs

    def add(self, views: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """`readings_accepted` (the count the device's twin keeps with every verdict) and `drecs_issued` /
        `drec_energy_wh` (its tally, kept as its D-RECs are linked): two batch reads for the page."""
        if not views:
            return views
        ids = [v["device_id"] for v in views]
        states, issued = self.readings.device_states(ids), self.drecs.issued_from(ids)
        for view in views:
            state = states.get(view["device_id"])
            view["readings_accepted"] = int((state.history or {}).get("accepted_count", 0)) if state else 0
            view["drecs_issued"], view["drec_energy_wh"] = issued.get(view["device_id"], (0, 0))
        return views


def list_sources(store: RegistryStore, limit: int, cursor: str | None) -> Listed:
    sources, next_cursor = store.list_sources(limit, cursor)
    return Listed([source_view(s) for s in sources], next_cursor)


def list_accounts(store: RegistryStore, limit: int, cursor: str | None, kind: str | None = None,
                  country: str | None = None, viewer: Principal | None = None) -> Listed:
    accounts, next_cursor = store.list_accounts(limit, cursor, kind, country)
    return Listed([account_view(a, viewer) for a in accounts], next_cursor)


def list_devices(store: RegistryStore, limit: int, cursor: str | None, owner_account_id: str | None = None,
                 country: str | None = None, device_type: str | None = None,
                 viewer: Principal | None = None, figures: DeviceFigures | None = None) -> Listed:
    devices, next_cursor = store.list_devices(limit, cursor, owner_account_id, country, device_type)
    view = _DeviceViews(store, viewer)
    views = [view(d) for d in devices]
    return Listed(figures.add(views) if figures is not None else views, next_cursor)
