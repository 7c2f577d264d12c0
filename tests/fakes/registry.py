"""Sources, accounts, devices, API keys and upload announcements in memory.

Implements services.ports.registry's RegistryStore (FakeRegistry), KeyStore (FakeKeys) and
UploadAnnouncements (FakeUploads) with the conditions of the DynamoDB adapters: a record id, an
external id and a key hash are each taken once; a key ring changes only from the version it was
read at; a revoked principal takes no new key.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import Any

from chalicelib.domain.ledger.events import Event, NewEvent
from chalicelib.domain.ledger.shards import REGISTRY_KEY, device_key
from chalicelib.domain.registry import Account, Device, Source
from chalicelib.domain.stores import ExternalIdTaken, KeyGone, KeyRing, KeysChanged, TransactionRefused

from .events import FakeEventLog
from .paging import offset_page

Record = Source | Account | Device


class FakeRegistry:
    def __init__(self, events: FakeEventLog | None = None) -> None:
        self.events = events or FakeEventLog()
        self.sources: dict[str, Source] = {}
        self.accounts_by_id: dict[str, Account] = {}
        self.devices_by_id: dict[str, Device] = {}
        self.externals: dict[tuple[str, str, str], str] = {}
        self.keys: dict[str, tuple[str, str]] = {}  # key hash -> (principal kind, principal id)
        self.rings: dict[str, tuple[frozenset[str], int]] = {}  # principal id -> (hashes, version)
        self.replays: dict[tuple[str, str, str], dict[str, Any]] = {}  # decisions stored under an Idempotency-Key

    # -- reads --------------------------------------------------------------------------------
    def source(self, source_id: str) -> Source | None:
        return self.sources.get(source_id)

    def account(self, account_id: str) -> Account | None:
        return self.accounts_by_id.get(account_id)

    def device(self, device_id: str) -> Device | None:
        return self.devices_by_id.get(device_id)

    def accounts(self, account_ids: Iterable[str]) -> dict[str, Account]:
        return {a: self.accounts_by_id[a] for a in dict.fromkeys(account_ids) if a in self.accounts_by_id}

    def device_records(self, device_ids: Iterable[str]) -> dict[str, Device]:
        return {d: self.devices_by_id[d] for d in dict.fromkeys(device_ids) if d in self.devices_by_id}

    def find_external(self, source_id: str, kind: str, external_id: str) -> str | None:
        return self.externals.get((source_id, kind, external_id))

    def principal_for_key_hash(self, key_hash: str) -> tuple[str, str] | None:
        return self.keys.get(key_hash)

    def list_sources(self, limit: int, cursor: str | None) -> tuple[list[Source], str | None]:
        return offset_page(list(self.sources.values()), limit, cursor)

    def list_accounts(self, limit: int, cursor: str | None, kind: str | None = None,
                      country: str | None = None) -> tuple[list[Account], str | None]:
        return offset_page(list(self.accounts_by_id.values()), limit, cursor,
                           lambda a: kind in (None, a.kind) and country in (None, a.country))

    def list_devices(self, limit: int, cursor: str | None, owner_account_id: str | None = None,
                     country: str | None = None, device_type: str | None = None) -> tuple[list[Device], str | None]:
        return offset_page(list(self.devices_by_id.values()), limit, cursor,
                           lambda d: owner_account_id in (None, d.owner_account_id)
                           and country in (None, d.country) and device_type in (None, d.device_type))

    # -- writes -------------------------------------------------------------------------------
    def register(self, record: Record, event: NewEvent, key_hash: str | None = None,
                 external: tuple[str, str, str] | None = None) -> Event:
        table, record_id = self._table(record)
        if record_id in table:
            raise RuntimeError(f"record {record_id} exists")  # ids are fresh: DynamoDB refuses it too
        if external and external in self.externals:
            raise ExternalIdTaken(self.externals[external])
        keyed = key_hash is not None and not isinstance(record, Device)
        if keyed and (key_hash in self.keys or record_id in self.rings):
            raise RuntimeError("key hash taken")
        table[record_id] = record
        if external:
            self.externals[external] = record_id
        if keyed and key_hash is not None:
            kind = "source" if isinstance(record, Source) else "account"
            self.keys[key_hash] = (kind, record_id)
            self.rings[record_id] = (frozenset({key_hash}), 0)
        shard_key = device_key(record_id) if isinstance(record, Device) else REGISTRY_KEY
        (stored,) = self.events.append([event], shard_key)
        return stored

    def decide_review(self, before: Device, after: Device, event: NewEvent,
                      replay: tuple[tuple[str, str, str], Mapping[str, Any]] | None = None) -> Event:
        current = self.devices_by_id.get(after.device_id)
        if current is None or (current.status, current.review_epoch) != (before.status, before.review_epoch):
            raise TransactionRefused(["ConditionalCheckFailed", None])
        if replay and replay[0] in self.replays:
            raise TransactionRefused([None, "ConditionalCheckFailed"])
        self.devices_by_id[after.device_id] = replace(current, status=after.status, review=after.review,
                                                      review_epoch=after.review_epoch)
        if replay:
            self.replays[replay[0]] = {"target_id": after.device_id, **replay[1]}
        (stored,) = self.events.append([event], device_key(after.device_id))
        return stored

    def replay_of(self, source_id: str, kind: str, external_id: str) -> Mapping[str, Any] | None:
        return self.replays.get((source_id, kind, external_id))

    def _table(self, record: Record) -> tuple[dict[str, Any], str]:
        if isinstance(record, Source):
            return self.sources, record.source_id
        if isinstance(record, Account):
            return self.accounts_by_id, record.account_id
        return self.devices_by_id, record.device_id

    def principal(self, kind: str, principal_id: str) -> Source | Account | None:
        return self.sources.get(principal_id) if kind == "source" else self.accounts_by_id.get(principal_id)


class FakeKeys:
    """Key rotation and revocation over a FakeRegistry's keys and records."""

    def __init__(self, registry: FakeRegistry) -> None:
        self.registry = registry

    def ring(self, principal_id: str) -> KeyRing:
        if principal_id in self.registry.rings:
            hashes, version = self.registry.rings[principal_id]
            return KeyRing(hashes, version)
        # A principal registered before rings were kept: its hashes are found by looking at every key.
        return KeyRing(frozenset(h for h, (_, p) in self.registry.keys.items() if p == principal_id), None)

    def _ring_holds(self, principal_id: str, ring: KeyRing) -> bool:
        current = self.registry.rings.get(principal_id)
        return current is None if ring.version is None else current is not None and current[1] == ring.version

    def rotate(self, kind: str, principal_id: str, ring: KeyRing, old_hash: str, new_hash: str,
               event: NewEvent) -> Event:
        record = self.registry.principal(kind, principal_id)
        if self.registry.keys.get(old_hash, ("", ""))[1] != principal_id or record is None or record.revoked_at:
            raise KeyGone(principal_id)
        if new_hash in self.registry.keys or not self._ring_holds(principal_id, ring):
            raise KeysChanged(principal_id)
        del self.registry.keys[old_hash]
        self.registry.keys[new_hash] = (kind, principal_id)
        self.registry.rings[principal_id] = ((ring.key_hashes - {old_hash}) | {new_hash}, (ring.version or 0) + 1)
        (stored,) = self.registry.events.append([event])
        return stored

    def revoke(self, kind: str, principal_id: str, ring: KeyRing, revoked_at: str, revoked_by: str,
               event: NewEvent) -> Event:
        record = self.registry.principal(kind, principal_id)
        if record is None or record.revoked_at or not self._ring_holds(principal_id, ring):
            raise KeysChanged(principal_id)
        revoked = replace(record, revoked_at=revoked_at, revoked_by=revoked_by)
        if isinstance(revoked, Source):
            self.registry.sources[principal_id] = revoked
        else:
            self.registry.accounts_by_id[principal_id] = revoked
        self.registry.rings[principal_id] = (frozenset(), (ring.version or 0) + 1)
        for key_hash in ring.key_hashes:
            self.registry.keys.pop(key_hash, None)
        (stored,) = self.registry.events.append([event])
        return stored


class FakeUploads:
    def __init__(self) -> None:
        self.items: dict[str, dict[str, Any]] = {}

    def announce(self, object_key: str, source_id: str, announced_at: str, expires_at: str) -> dict[str, Any]:
        found = self.items.get(object_key)
        if found is not None and found["source_id"] != source_id:
            raise RuntimeError(f"{object_key} belongs to source {found['source_id']}")  # a refused condition
        item = {"k": f"upload#{object_key}", "source_id": source_id, "object_key": object_key,
                "announced_at": found["announced_at"] if found else announced_at,
                "last_announced_at": announced_at, "expires_at": expires_at}
        self.items[object_key] = item
        return dict(item)

    def announcement(self, object_key: str) -> dict[str, Any] | None:
        found = self.items.get(object_key)
        return dict(found) if found else None

