"""Registering sources, accounts and devices; each registration appends its event."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..adapters.dynamo import Page
from ..adapters.registry_store import DynamoRegistry, ExternalIdTaken
from ..api.schemas import AccountIn, DeviceIn, SourceIn
from ..domain.errors import Forbidden, NotFound, RuleBroken
from ..domain.ledger import events as ev
from ..domain.model import Principal, check_country, check_device_rules, new_api_key, new_id
from ..domain.privacy import location_commitment, new_location_salt, round_coordinate
from ..domain.time import iso, now_utc
from .access import hash_key, may_act_for, require_acting_for, require_operator

# (latitude, longitude) -> site constants stored with the device (altitude, Linke turbidity).
SiteLookup = Callable[[float, float], dict[str, Any]]


@dataclass(frozen=True)
class Registered:
    record: dict[str, Any]
    created: bool
    api_key: str | None = None


def _public(record: dict[str, Any], id_field: str) -> dict[str, Any]:
    out = {k: v for k, v in record.items() if k not in ("id", "entity")}
    out[id_field] = record["id"]
    return out


def _account_view(record: dict[str, Any], viewer: Principal | None) -> dict[str, Any]:
    """Contact data is for the account, the sources that may act for it and the operator only."""
    out = _public(record, "account_id")
    if viewer is None or not may_act_for(viewer, record):
        out.pop("contact", None)
    return out


def _device_view(record: dict[str, Any], exact: bool) -> dict[str, Any]:
    """A household's exact location is personal data: others see it rounded to 0.01°, and no salt."""
    out = _public(record, "device_id")
    if not exact:
        out.pop("location_salt", None)
        out["latitude"] = round_coordinate(record["latitude"])
        out["longitude"] = round_coordinate(record["longitude"])
    return out


class _DeviceViews:
    """Device views for one viewer; each owner account is looked up once (only for a signed-in viewer)."""

    def __init__(self, store: DynamoRegistry, viewer: Principal | None) -> None:
        self.store = store
        self.viewer = viewer
        self.owners: dict[str, bool] = {}

    def may_see_exact(self, owner_account_id: str) -> bool:
        if self.viewer is None:
            return False
        if owner_account_id not in self.owners:
            owner = self.store.record("accounts", owner_account_id)
            self.owners[owner_account_id] = owner is not None and may_act_for(self.viewer, owner)
        return self.owners[owner_account_id]

    def __call__(self, record: dict[str, Any]) -> dict[str, Any]:
        return _device_view(record, self.may_see_exact(record["owner_account_id"]))


def dedupe_key(principal: Principal, kind: str, external_id: str | None,
               idempotency_key: str | None) -> tuple[str, str, str] | None:
    """What makes a registration a replay: the caller's external id, else its Idempotency-Key."""
    if external_id:
        return principal.id, kind, external_id
    if idempotency_key:
        return principal.id, f"{kind}-request", idempotency_key
    return None


def register_source(store: DynamoRegistry, principal: Principal, command: SourceIn,
                    idempotency_key: str | None = None) -> Registered:
    """A replay (same Idempotency-Key) answers with the source, without its key: keys are shown once."""
    require_operator(principal, "register sources")
    external = dedupe_key(principal, "source", None, idempotency_key)
    if external and (existing := store.find_external(*external)):
        return Registered(get_source(store, existing), False)
    source_id, api_key = new_id("src"), new_api_key()
    record = {
        "entity": "source",
        "name": command.name,
        "kind": command.kind.value,
        "signing_address": command.signing_address.lower() if command.signing_address else None,
        "registered_at": iso(now_utc()),
        "registered_by": principal.id,
    }
    event = ev.NewEvent(ev.SOURCE_REGISTERED, source_id, principal.id, str(record["registered_at"]),
                        {k: v for k, v in record.items() if k != "entity" and v is not None})
    try:
        store.register("sources", record, source_id, event, hash_key(api_key), ("source", source_id), external)
    except ExternalIdTaken as taken:
        return Registered(get_source(store, taken.existing_id), False)
    return Registered(_public({"id": source_id, **record}, "source_id"), True, api_key)


def register_account(store: DynamoRegistry, principal: Principal, command: AccountIn,
                     idempotency_key: str | None = None) -> Registered:
    if principal.kind == "account":
        raise Forbidden(f"account {principal.id} may not register accounts: only the operator or a source may")
    check_country(command.country)
    external = dedupe_key(principal, "account", command.external_id, idempotency_key)
    if external:
        existing = store.find_external(*external)
        if existing:
            return Registered(get_account(store, existing, principal), False)
    account_id, api_key = new_id("acc"), new_api_key()
    record = {
        "entity": "account",
        "name": command.name,
        "kind": command.kind.value,
        "country": command.country,
        "external_id": command.external_id,
        "contact": command.contact,
        "registered_at": iso(now_utc()),
        "registered_by": principal.id,
    }
    body = {k: v for k, v in record.items() if k not in ("entity", "contact") and v is not None}
    event = ev.NewEvent(ev.ACCOUNT_REGISTERED, account_id, principal.id, str(record["registered_at"]), body)
    try:
        store.register("accounts", record, account_id, event, hash_key(api_key), ("account", account_id), external)
    except ExternalIdTaken as taken:
        return Registered(get_account(store, taken.existing_id, principal), False)
    return Registered(_public({"id": account_id, **record}, "account_id"), True, api_key)


def register_device(store: DynamoRegistry, principal: Principal, command: DeviceIn,
                    site_lookup: SiteLookup | None = None, idempotency_key: str | None = None) -> Registered:
    owner = store.record("accounts", command.owner_account_id)
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
    record: dict[str, Any] = {
        "entity": "device",
        **command.model_dump(mode="json"),
        "registered_at": iso(now_utc()),
        "registered_by": principal.id,
        "status": "active",
    }
    # The salt stays in the record (shown to the owner's side only) so the owner can open the
    # commitment later; the commitment itself is public.
    record["location_salt"] = new_location_salt()
    record["location_commitment"] = location_commitment(record["latitude"], record["longitude"],
                                                        record["location_salt"])
    if command.signing_address:  # stored as the signer recovery returns it
        record["signing_address"] = command.signing_address.lower()
    if site_lookup:
        record.update(site_lookup(command.latitude, command.longitude))
    body = {k: v for k, v in record.items()
            if k not in ("entity", "linke_turbidity", "altitude_m", "location_salt") and v is not None}
    # The body is anchored for ever: only rounded coordinates go there (DESIGN.md, Trust model).
    body["latitude"], body["longitude"] = round_coordinate(record["latitude"]), round_coordinate(record["longitude"])
    event = ev.NewEvent(ev.DEVICE_REGISTERED, device_id, principal.id, record["registered_at"], body,
                        related_ids=(command.owner_account_id,))
    try:
        store.register("devices", record, device_id, event, external=external)
    except ExternalIdTaken as taken:
        return Registered(get_device(store, taken.existing_id, principal), False)
    return Registered(_public({"id": device_id, **record}, "device_id"), True)


def get_source(store: DynamoRegistry, source_id: str) -> dict[str, Any]:
    return _get(store, "sources", source_id, "source_id", "source")


def get_account(store: DynamoRegistry, account_id: str, viewer: Principal | None = None) -> dict[str, Any]:
    """The account as `viewer` (None: the public) may see it."""
    return _account_view(_found(store, "accounts", account_id, "account_id", "account"), viewer)


def get_device(store: DynamoRegistry, device_id: str, viewer: Principal | None = None) -> dict[str, Any]:
    """The device as `viewer` (None: the public) may see it."""
    return _DeviceViews(store, viewer)(_found(store, "devices", device_id, "device_id", "device"))


def _get(store: DynamoRegistry, logical: str, record_id: str, id_field: str, noun: str) -> dict[str, Any]:
    return _public(_found(store, logical, record_id, id_field, noun), id_field)


def _found(store: DynamoRegistry, logical: str, record_id: str, id_field: str, noun: str) -> dict[str, Any]:
    record = store.record(logical, record_id)
    if not record:
        raise NotFound(f"no {noun} {record_id!r}", field=id_field)
    return record


def list_sources(store: DynamoRegistry, limit: int, cursor: str | None) -> Page:
    # Sources are few (platforms, not devices): a paginated scan is the honest index.
    page = store.scan_page("sources", limit, cursor)
    return Page([_public(i, "source_id") for i in page.items], page.next_cursor)


def list_accounts(store: DynamoRegistry, limit: int, cursor: str | None, kind: str | None = None,
                  country: str | None = None, viewer: Principal | None = None) -> Page:
    page = store.list_records("accounts", "account", limit, cursor, {"kind": kind, "country": country})
    return Page([_account_view(i, viewer) for i in page.items], page.next_cursor)


def list_devices(store: DynamoRegistry, limit: int, cursor: str | None, owner_account_id: str | None = None,
                 country: str | None = None, device_type: str | None = None,
                 viewer: Principal | None = None) -> Page:
    filters = {"owner_account_id": owner_account_id, "country": country, "device_type": device_type}
    index = None
    for index_name, field_name in (("by_owner", "owner_account_id"), ("by_country", "country"),
                                   ("by_type", "device_type")):
        if filters[field_name] is not None:
            index = (index_name, field_name, filters.pop(field_name))
            break
    page = store.list_records("devices", "device", limit, cursor, filters, index)
    view = _DeviceViews(store, viewer)
    return Page([view(i) for i in page.items], page.next_cursor)
