"""Sources, accounts, devices and API keys in DynamoDB."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any

from ..domain.index_keys import with_index_keys
from ..domain.ledger.events import Event, NewEvent
from ..domain.ledger.shards import REGISTRY_KEY, device_key
from ..domain.registry import Account, Device, Source, fields_of
from ..domain.stores import ExternalIdTaken, TransactionRefused
from .counters import Tally, stats_shard
from .dynamo import DynamoBase, put, update


def key_lookup(key_hash: str) -> str:
    return f"key#{key_hash}"


def keys_of_lookup(principal_id: str) -> str:
    """The item listing a principal's current key hashes, so revoking it can delete every one."""
    return f"keys_of#{principal_id}"


def external_lookup(source_id: str, kind: str, external_id: str) -> str:
    return f"ext#{source_id}#{kind}#{external_id}"


def _known(cls: Any, item: dict[str, Any], id_field: str) -> dict[str, Any]:
    """The item's attributes the record knows (the table key becomes the record's id field)."""
    fields = {k: v for k, v in item.items() if k in cls.__dataclass_fields__}
    fields[id_field] = item["id"]
    return fields


def source_from_item(item: dict[str, Any]) -> Source:
    return Source(**_known(Source, item, "source_id"))


def account_from_item(item: dict[str, Any]) -> Account:
    return Account(**_known(Account, item, "account_id"))


def device_from_item(item: dict[str, Any]) -> Device:
    fields = _known(Device, item, "device_id")
    if fields.get("linke_turbidity") is not None:
        fields["linke_turbidity"] = tuple(fields["linke_turbidity"])
    return Device(**fields)


def to_registry_item(record: Source | Account | Device) -> dict[str, Any]:
    entity, id_field = ENTITY[type(record)]
    data = fields_of(record)
    return {"id": data.pop(id_field), "entity": entity, **data}


ENTITY: dict[type, tuple[str, str]] = {Source: ("source", "source_id"), Account: ("account", "account_id"),
                                       Device: ("device", "device_id")}
TABLE = {"source": "sources", "account": "accounts", "device": "devices"}
# The first filter given picks the index a device listing reads; the others filter it.
DEVICE_INDEXES = (("by_owner", "owner_account_id"), ("by_country", "country"), ("by_type", "device_type"))


class DynamoRegistry(DynamoBase):
    """Registry records, each written with its API key hash, external id guard and event."""

    # Devices are read by every batch of the pipeline and rarely change (registration, a review), so a
    # process keeps them for a minute; a device not active is read afresh, so an operator's decision on
    # its review holds at once for the readings it sends back to the validator.
    DEVICE_TTL_S = 60.0

    def devices(self, device_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """Device items by id (kept a minute per process); `device_records` for the records."""
        cache: dict[str, tuple[float, dict[str, Any]]] = self.__dict__.setdefault("_device_cache", {})
        now = time.monotonic()
        wanted = list(dict.fromkeys(device_ids))
        missing = [d for d in wanted if d not in cache or cache[d][0] < now]
        for item in self.batch_get("devices", [{"id": d} for d in missing]) if missing else []:
            active = item.get("status", "active") == "active"
            cache[item["id"]] = (now + self.DEVICE_TTL_S if active else 0.0, item)
        return {d: cache[d][1] for d in wanted if d in cache}

    def device_records(self, device_ids: Iterable[str]) -> dict[str, Device]:
        return {d: device_from_item(item) for d, item in self.devices(device_ids).items()}

    def source(self, source_id: str) -> Source | None:
        item = self.get("sources", id=source_id)
        return source_from_item(item) if item else None

    def account(self, account_id: str) -> Account | None:
        item = self.get("accounts", id=account_id)
        return account_from_item(item) if item else None

    def device(self, device_id: str) -> Device | None:
        item = self.get("devices", id=device_id)
        return device_from_item(item) if item else None

    def accounts(self, account_ids: Iterable[str]) -> dict[str, Account]:
        keys = [{"id": a} for a in dict.fromkeys(account_ids)]
        return {item["id"]: account_from_item(item) for item in (self.batch_get("accounts", keys) if keys else [])}

    def register(self, record: Source | Account | Device, event: NewEvent, key_hash: str | None = None,
                 external: tuple[str, str, str] | None = None) -> Event:
        """Store a new record with its event, its external id guard and (for sources and accounts) its key.

        Raises ExternalIdTaken when the caller's external id already names another record.
        """
        item = to_registry_item(record)
        record_id, entity = item["id"], item["entity"]
        item = with_index_keys(TABLE[entity], item)
        items = [put(self.name(TABLE[entity]), item, "attribute_not_exists(id)")]
        if external:
            items.append(put(self.name("lookups"), {"k": external_lookup(*external), "target_id": record_id},
                             "attribute_not_exists(k)"))
        if key_hash and entity in ("source", "account"):
            items.append(put(self.name("lookups"), {"k": key_lookup(key_hash), "principal_kind": entity,
                                                    "principal_id": record_id}, "attribute_not_exists(k)"))
            items.append(put(self.name("lookups"), {"k": keys_of_lookup(record_id), "principal_kind": entity,
                                                    "principal_id": record_id, "key_hashes": {key_hash},
                                                    "version": 0}, "attribute_not_exists(k)"))
        try:
            counts = Tally().add(stats_shard(record_id), f"{entity}s").updates(self.name("counters"))
            # A device's history lives in its own shard; sources and accounts in the registry shard.
            shard_key = device_key(record_id) if entity == "device" else REGISTRY_KEY
            (stored,) = self.commit(items, [event], counts=counts, shard_key=shard_key)
        except TransactionRefused as refused:
            if external and refused.reasons[1] == "ConditionalCheckFailed":
                existing = self.find_external(*external)
                if existing:
                    raise ExternalIdTaken(existing) from refused
            raise
        return stored

    def find_external(self, source_id: str, kind: str, external_id: str) -> str | None:
        found = self.get("lookups", k=external_lookup(source_id, kind, external_id))
        return found["target_id"] if found else None

    def principal_for_key_hash(self, key_hash: str) -> tuple[str, str] | None:
        # Strongly consistent: a key rotated or revoked a moment ago must already answer 401.
        found = self.get("lookups", k=key_lookup(key_hash))
        return (found["principal_kind"], found["principal_id"]) if found else None

    def list_sources(self, limit: int, cursor: str | None) -> tuple[list[Source], str | None]:
        # Sources are few (platforms, not devices): a paginated scan is the honest index.
        page = self.scan_page("sources", limit, cursor)
        return [source_from_item(i) for i in page.items], page.next_cursor

    def list_accounts(self, limit: int, cursor: str | None, kind: str | None = None,
                      country: str | None = None) -> tuple[list[Account], str | None]:
        page = self.query_page("accounts", "by_entity", "entity", "account", limit, cursor,
                               {"kind": kind, "country": country})
        return [account_from_item(i) for i in page.items], page.next_cursor

    def list_devices(self, limit: int, cursor: str | None, owner_account_id: str | None = None,
                     country: str | None = None, device_type: str | None = None) -> tuple[list[Device], str | None]:
        """List by the most selective index given, remaining filters applied server-side."""
        filters = {"owner_account_id": owner_account_id, "country": country, "device_type": device_type}
        for index_name, field_name in DEVICE_INDEXES:
            if filters[field_name] is not None:
                value = filters.pop(field_name)
                page = self.query_page("devices", index_name, field_name, value, limit, cursor, filters)
                break
        else:
            page = self.query_page("devices", "by_entity", "entity", "device", limit, cursor, filters)
        return [device_from_item(i) for i in page.items], page.next_cursor

    def decide_review(self, before: Device, after: Device, event: NewEvent,
                      replay: tuple[tuple[str, str, str], Mapping[str, Any]] | None = None) -> Event:
        """The operator's decision on a device's review, written only from the status and epoch it was made on."""
        condition = "#status = :from AND " + ("(attribute_not_exists(review_epoch) OR review_epoch = :old)"
                                             if before.review_epoch == 0 else "review_epoch = :old")
        items = [update(self.name("devices"), {"id": after.device_id},
                        "SET #status = :status, #review = :review, review_epoch = :epoch", condition,
                        names={"#status": "status", "#review": "review"},
                        values={":status": str(after.status), ":review": dict(after.review or {}),
                                ":epoch": after.review_epoch, ":from": str(before.status),
                                ":old": before.review_epoch})]
        if replay:
            (source_id, kind, external_id), record = replay
            items.append(put(self.name("lookups"), {"k": external_lookup(source_id, kind, external_id),
                                                    "target_id": after.device_id, **record},
                             "attribute_not_exists(k)"))
        try:
            (stored,) = self.commit(items, [event], shard_key=device_key(after.device_id))
        finally:
            self.__dict__.get("_device_cache", {}).pop(after.device_id, None)
        return stored

    def replay_of(self, source_id: str, kind: str, external_id: str) -> Mapping[str, Any] | None:
        return self.get("lookups", k=external_lookup(source_id, kind, external_id))
