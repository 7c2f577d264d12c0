"""API keys of sources and accounts in DynamoDB: rotation and revocation.

Keys are stored only as SHA-256 hashes, each a `key#<hash>` lookup item naming its
principal (read strongly consistently by `DynamoRegistry.principal_for_key_hash`).
`keys_of#<principal_id>` lists the principal's current hashes with a version number;
every change of a principal's keys is one transaction conditioned on that version
(so a rotation and a revocation racing each other cannot leave a key alive) that
deletes and writes the `key#` items and appends the event. Principals registered
before `keys_of` existed have no such item: their hashes are found by a scan, once.
"""

from __future__ import annotations

from typing import Any

from ..domain.ledger.events import Event, NewEvent
from ..domain.stores import KeyGone, KeyRing, KeysChanged, TransactionRefused
from .dynamo import DynamoBase, check, from_item, put, to_item, update
from .registry_store import key_lookup, keys_of_lookup

RECORD_TABLE = {"source": "sources", "account": "accounts"}


def delete(table: str, item_key: dict[str, Any], condition: str | None = None,
           values: dict[str, Any] | None = None) -> dict[str, Any]:
    request: dict[str, Any] = {"TableName": table, "Key": to_item(item_key)}
    if condition:
        request["ConditionExpression"] = condition
    if values:
        request["ExpressionAttributeValues"] = to_item(values)
    return {"Delete": request}


class DynamoKeys(DynamoBase):
    def ring(self, principal_id: str) -> KeyRing:
        found = self.get("lookups", k=keys_of_lookup(principal_id))
        if found is not None:
            return KeyRing(frozenset(found.get("key_hashes", ())), int(found["version"]))
        return KeyRing(frozenset(self._legacy_hashes(principal_id)), None)

    def _legacy_hashes(self, principal_id: str) -> list[str]:
        request: dict[str, Any] = {
            "TableName": self.name("lookups"), "ConsistentRead": True,
            "FilterExpression": "begins_with(k, :prefix) AND principal_id = :id",
            "ExpressionAttributeValues": to_item({":prefix": key_lookup(""), ":id": principal_id}),
        }
        hashes: list[str] = []
        while True:
            response = self.client.scan(**request)
            hashes += [from_item(i)["k"][len(key_lookup("")):] for i in response.get("Items", [])]
            if not response.get("LastEvaluatedKey"):
                return hashes
            request["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def _ring_item(self, kind: str, principal_id: str, ring: KeyRing, hashes: set[str]) -> dict[str, Any]:
        """The next `keys_of` item, on condition nobody changed the ring since it was read."""
        data = {"k": keys_of_lookup(principal_id), "principal_kind": kind, "principal_id": principal_id,
                "key_hashes": hashes or None, "version": (ring.version or 0) + 1}
        if ring.version is None:
            return put(self.name("lookups"), data, "attribute_not_exists(k)")
        return put(self.name("lookups"), data, "version = :v", values={":v": ring.version})

    def rotate(self, kind: str, principal_id: str, ring: KeyRing, old_hash: str, new_hash: str,
               event: NewEvent) -> Event:
        """Replace `old_hash` by `new_hash` and append `event`, atomically.

        Raises KeyGone when the old key is gone or the principal was revoked, KeysChanged when the
        ring changed since it was read.
        """
        items = [
            delete(self.name("lookups"), {"k": key_lookup(old_hash)}, "principal_id = :id", {":id": principal_id}),
            put(self.name("lookups"), {"k": key_lookup(new_hash), "principal_kind": kind,
                                       "principal_id": principal_id}, "attribute_not_exists(k)"),
            self._ring_item(kind, principal_id, ring, (set(ring.key_hashes) - {old_hash}) | {new_hash}),
            check(self.name(RECORD_TABLE[kind]), {"id": principal_id},
                  "attribute_exists(id) AND attribute_not_exists(revoked_at)"),
        ]
        try:
            (stored,) = self.commit(items, [event])
        except TransactionRefused as refused:
            if refused.reasons[0] or refused.reasons[3]:
                raise KeyGone(principal_id) from refused
            raise KeysChanged(principal_id) from refused
        return stored

    def revoke(self, kind: str, principal_id: str, ring: KeyRing, revoked_at: str, revoked_by: str,
               event: NewEvent) -> Event:
        """Mark the record revoked, delete every key of the ring and append `event`, atomically.

        Raises KeysChanged when it was revoked meanwhile (or is gone), or the ring changed.
        """
        items = [
            update(self.name(RECORD_TABLE[kind]), {"id": principal_id}, "SET revoked_at = :at, revoked_by = :by",
                   "attribute_exists(id) AND attribute_not_exists(revoked_at)",
                   values={":at": revoked_at, ":by": revoked_by}),
            self._ring_item(kind, principal_id, ring, set()),
            *[delete(self.name("lookups"), {"k": key_lookup(h)}) for h in sorted(ring.key_hashes)],
        ]
        try:
            (stored,) = self.commit(items, [event])
        except TransactionRefused as refused:
            raise KeysChanged(principal_id) from refused
        return stored
