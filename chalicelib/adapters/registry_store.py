"""Sources, accounts, devices and API keys in DynamoDB."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from ..domain.ledger.events import Event, NewEvent
from .dynamo import DynamoBase, Page, TransactionRefused, put


def key_lookup(key_hash: str) -> str:
    return f"key#{key_hash}"


def keys_of_lookup(principal_id: str) -> str:
    """The item listing a principal's current key hashes, so revoking it can delete every one."""
    return f"keys_of#{principal_id}"


def external_lookup(source_id: str, kind: str, external_id: str) -> str:
    return f"ext#{source_id}#{kind}#{external_id}"


class ExternalIdTaken(Exception):
    """The (source, external_id) pair names a record that already exists."""

    def __init__(self, existing_id: str) -> None:
        super().__init__(existing_id)
        self.existing_id = existing_id


class DynamoRegistry(DynamoBase):
    """Registry records, each written with its API key hash, external id guard and event."""

    # Devices are read by every batch of the pipeline and change only at registration (their
    # records are never edited here), so a process keeps them for a minute.
    DEVICE_TTL_S = 60.0

    def devices(self, device_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        cache: dict[str, tuple[float, dict[str, Any]]] = self.__dict__.setdefault("_device_cache", {})
        now = time.monotonic()
        wanted = list(dict.fromkeys(device_ids))
        missing = [d for d in wanted if d not in cache or cache[d][0] < now]
        for item in self.batch_get("devices", [{"id": d} for d in missing]) if missing else []:
            cache[item["id"]] = (now + self.DEVICE_TTL_S, item)
        return {d: cache[d][1] for d in wanted if d in cache}

    def register(self, logical: str, record: dict[str, Any], record_id: str,
                 event: NewEvent, key_hash: str | None = None,
                 principal: tuple[str, str] | None = None,
                 external: tuple[str, str, str] | None = None) -> Event:
        items = [put(self.name(logical), {"id": record_id, **record}, "attribute_not_exists(id)")]
        if external:
            items.append(put(self.name("lookups"), {"k": external_lookup(*external), "target_id": record_id},
                             "attribute_not_exists(k)"))
        if key_hash and principal:
            items.append(put(self.name("lookups"), {"k": key_lookup(key_hash), "principal_kind": principal[0],
                                                    "principal_id": principal[1]}, "attribute_not_exists(k)"))
            items.append(put(self.name("lookups"), {"k": keys_of_lookup(principal[1]), "principal_kind": principal[0],
                                                    "principal_id": principal[1], "key_hashes": {key_hash},
                                                    "version": 0}, "attribute_not_exists(k)"))
        try:
            (stored,) = self.commit(items, [event])
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

    def record(self, logical: str, record_id: str) -> dict[str, Any] | None:
        return self.get(logical, id=record_id)

    def list_records(self, logical: str, entity: str, limit: int, cursor: str | None,
                     filters: dict[str, Any] | None = None, index: tuple[str, str, Any] | None = None) -> Page:
        """List by the most selective index given, remaining filters applied server-side."""
        if index:
            index_name, key_name, key_value = index
            return self.query_page(logical, index_name, key_name, key_value, limit, cursor, filters)
        return self.query_page(logical, "by_entity", "entity", entity, limit, cursor, filters)
