"""What the registry's use cases need from storage: sources, accounts, devices, keys, announced uploads.

Implemented by `adapters.registry_store.DynamoRegistry`, `adapters.key_store.DynamoKeys`,
`adapters.upload_store.DynamoUploads`, and by the in-memory fakes in `tests/fakes/registry.py`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from ...domain.ledger.events import Event, NewEvent
from ...domain.registry import Account, Device, Source
from ...domain.stores import KeyRing


class KeyLookup(Protocol):
    def principal_for_key_hash(self, key_hash: str) -> tuple[str, str] | None: ...
    def account(self, account_id: str) -> Account | None: ...


class RegistryStore(KeyLookup, Protocol):
    def source(self, source_id: str) -> Source | None: ...
    def device(self, device_id: str) -> Device | None: ...
    def accounts(self, account_ids: Iterable[str]) -> dict[str, Account]: ...
    def device_records(self, device_ids: Iterable[str]) -> dict[str, Device]: ...
    def find_external(self, source_id: str, kind: str, external_id: str) -> str | None: ...

    def register(self, record: Source | Account | Device, event: NewEvent, key_hash: str | None = None,
                 external: tuple[str, str, str] | None = None) -> Event:
        """Store a new record with its event, external id guard and key (sources and accounts);
        raises ExternalIdTaken when `external` already names a record."""

    def list_sources(self, limit: int, cursor: str | None) -> tuple[list[Source], str | None]: ...
    def list_accounts(self, limit: int, cursor: str | None, kind: str | None = None,
                      country: str | None = None) -> tuple[list[Account], str | None]: ...
    def list_devices(self, limit: int, cursor: str | None, owner_account_id: str | None = None,
                     country: str | None = None,
                     device_type: str | None = None) -> tuple[list[Device], str | None]: ...

    def decide_review(self, before: Device, after: Device, event: NewEvent,
                      replay: tuple[tuple[str, str, str], Mapping[str, Any]] | None = None) -> Event:
        """Write `after`'s status, review and review_epoch with `event`, only if the device is still in
        `before`'s status and epoch; with `replay` (external-id triple, record), store the record under that
        id, only if none is there. Raises TransactionRefused otherwise."""

    def replay_of(self, source_id: str, kind: str, external_id: str) -> Mapping[str, Any] | None:
        """The record `decide_review` stored under that external id, if any."""


class KeyStore(Protocol):
    def ring(self, principal_id: str) -> KeyRing: ...

    def rotate(self, kind: str, principal_id: str, ring: KeyRing, old_hash: str, new_hash: str,
               event: NewEvent) -> Event:
        """Replace `old_hash` by `new_hash` and append `event`, atomically; raises KeyGone when the old key
        or the principal is gone (revoked), KeysChanged when the ring changed since it was read."""

    def revoke(self, kind: str, principal_id: str, ring: KeyRing, revoked_at: str, revoked_by: str,
               event: NewEvent) -> Event:
        """Mark the principal revoked, delete every key of `ring` and append `event`, atomically; raises
        KeysChanged when it was revoked meanwhile or the ring changed."""


class UploadAnnouncements(Protocol):
    def announce(self, object_key: str, source_id: str, announced_at: str, expires_at: str) -> dict[str, Any]: ...
    def announcement(self, object_key: str) -> dict[str, Any] | None: ...
