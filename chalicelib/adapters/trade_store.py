"""Transfers and redemptions in DynamoDB: move records, D-REC locks, chunked ownership moves.

A move (transfer or redemption) is one record in its table plus two passes over
its D-RECs, each pass a series of transactions of at most CHUNK D-RECs that also
advance a counter on the record from the value it read:

- lock: per D-REC `SET locked_by = <move id>` on condition that it is active, owned
  by the account giving it up and not locked by another move;
- apply: per D-REC the new owner / status on condition `locked_by = <move id>`,
  removing the lock. A locked D-REC is only ever changed by its lock holder, so
  once every lock is held the apply pass cannot fail and is always completed;
- release (when a lock is refused): `REMOVE locked_by` from the locks taken.

The counters make every step conditional on the previous one, so a retry resumes
where the last writer stopped and no chunk is applied twice.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from ..domain.ledger.events import Event, NewEvent
from .dynamo import DynamoBase, Page, TransactionRefused, from_item, put, to_item, update

CHUNK = 25

LOCKING = "locking"
APPLYING = "applying"
COMPLETED = "completed"
RELEASING = "releasing"
FAILED = "failed"


def idempotency_lookup(logical: str, principal_id: str, idempotency_key: str) -> str:
    return f"idem#{logical}#{principal_id}#{idempotency_key}"


class DynamoTrades(DynamoBase):
    # -- move records ---------------------------------------------------------------------
    def record(self, logical: str, record_id: str) -> dict[str, Any] | None:
        return self.get(logical, id=record_id)

    def records(self, logical: str, record_ids: Sequence[str]) -> list[dict[str, Any]]:
        return self.batch_get(logical, [{"id": i} for i in dict.fromkeys(record_ids)])

    def idempotent_target(self, lookup_key: str) -> str | None:
        found = self.get("lookups", k=lookup_key)
        return found["target_id"] if found else None

    def start(self, logical: str, record: dict[str, Any], lookup_key: str | None = None) -> None:
        """Store a new move record, with the guard of its Idempotency-Key when it has one.

        Raises TransactionRefused when the guard is already taken (a concurrent retry won).
        """
        items = [put(self.name(logical), record, "attribute_not_exists(id)")]
        if lookup_key:
            items.append(put(self.name("lookups"), {"k": lookup_key, "target_id": record["id"]},
                             "attribute_not_exists(k)"))
        self.transact(items)

    def set_status(self, logical: str, record_id: str, old: str, new: str, extra: dict[str, Any] | None = None) -> bool:
        """Move the record from status `old` to `new`; False when it was no longer `old`."""
        values: dict[str, Any] = {":old": old, ":new": new}
        sets = ["#st = :new"]
        for i, (name, value) in enumerate((extra or {}).items()):
            values[f":x{i}"] = value
            sets.append(f"{name} = :x{i}")
        try:
            self.transact([update(self.name(logical), {"id": record_id}, "SET " + ", ".join(sets), "#st = :old",
                                  names={"#st": "status"}, values=values)])
        except TransactionRefused:
            return False
        return True

    def unfinished(self, logical: str, started_before: str) -> Iterator[dict[str, Any]]:
        """Move records still locking, applying or releasing that started before `started_before` (ISO)."""
        request: dict[str, Any] = {
            "TableName": self.name(logical),
            "FilterExpression": "#st IN (:locking, :applying, :releasing) AND created_at < :before",
            "ExpressionAttributeNames": {"#st": "status"},
            "ExpressionAttributeValues": to_item({":locking": LOCKING, ":applying": APPLYING,
                                                  ":releasing": RELEASING, ":before": started_before}),
        }
        while True:
            response = self.client.scan(**request)
            yield from (from_item(i) for i in response.get("Items", []))
            if not response.get("LastEvaluatedKey"):
                return
            request["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    # -- the passes -------------------------------------------------------------------------
    def lock(self, logical: str, record_id: str, owner: str, serials: Sequence[str], locked_before: int,
             last: bool) -> None:
        """Lock one chunk; the last chunk also moves the record on to `applying`.

        Raises TransactionRefused: reasons[i] for D-REC i, reasons[-1] for the record.
        """
        items = [update(self.name("drecs"), {"serial": s}, "SET locked_by = :id",
                        "owner_account_id = :owner AND #st = :active AND attribute_not_exists(locked_by)",
                        names={"#st": "status"}, values={":id": record_id, ":owner": owner, ":active": "active"})
                 for s in serials]
        expression = "SET locked = :new" + (", #st = :applying" if last else "")
        values: dict[str, Any] = {":old": locked_before, ":new": locked_before + len(serials), ":locking": LOCKING}
        if last:
            values[":applying"] = APPLYING
        items.append(update(self.name(logical), {"id": record_id}, expression, "#st = :locking AND locked = :old",
                            names={"#st": "status"}, values=values))
        self.transact(items)

    def release(self, logical: str, record_id: str, serials: Sequence[str], locked_before: int) -> None:
        items = [update(self.name("drecs"), {"serial": s}, "REMOVE locked_by", "locked_by = :id",
                        values={":id": record_id}) for s in serials]
        items.append(update(self.name(logical), {"id": record_id}, "SET locked = :new",
                            "#st = :releasing AND locked = :old", names={"#st": "status"},
                            values={":old": locked_before, ":new": locked_before - len(serials),
                                    ":releasing": RELEASING}))
        self.transact(items)

    def apply(self, logical: str, record_id: str, changes: Sequence[tuple[str, dict[str, Any]]],
              applied_before: int) -> None:
        """Per D-REC `(serial, fields to set)`, each removing this move's lock."""
        items = []
        for serial, fields in changes:
            names = {f"#a{i}": name for i, name in enumerate(fields)}
            values: dict[str, Any] = {f":a{i}": value for i, value in enumerate(fields.values())}
            values[":id"] = record_id
            sets = ", ".join(f"#a{i} = :a{i}" for i in range(len(fields)))
            items.append(update(self.name("drecs"), {"serial": serial}, f"SET {sets} REMOVE locked_by",
                                "locked_by = :id", names=names, values=values))
        items.append(update(self.name(logical), {"id": record_id}, "SET applied = :new",
                            "#st = :applying AND applied = :old", names={"#st": "status"},
                            values={":old": applied_before, ":new": applied_before + len(changes),
                                    ":applying": APPLYING}))
        self.transact(items)

    def finish(self, logical: str, record_id: str, count: int, completed_at: str,
               extra_items: list[dict[str, Any]], event: NewEvent) -> Event:
        """Mark the record completed and append its event, once every D-REC is applied."""
        mark = update(self.name(logical), {"id": record_id}, "SET #st = :completed, completed_at = :at",
                      "#st = :applying AND applied = :count", names={"#st": "status"},
                      values={":completed": COMPLETED, ":at": completed_at, ":count": count,
                              ":applying": APPLYING})
        (stored,) = self.commit([mark, *extra_items], [event])
        return stored

    def add_token_hash(self, record_id: str, token_hash: str) -> None:
        """One more ledger link token; earlier ones keep working."""
        self.client.update_item(TableName=self.name("redemptions"), Key=to_item({"id": record_id}),
                                UpdateExpression="ADD token_hashes :t",
                                ExpressionAttributeValues=to_item({":t": {token_hash}}))

    def record_event(self, logical: str, record_id: str, seq: int) -> None:
        self.client.update_item(TableName=self.name(logical), Key=to_item({"id": record_id}),
                                UpdateExpression="SET event_seq = :seq", ExpressionAttributeValues=to_item(
                                    {":seq": seq}))

    def link_event(self, subjects: Sequence[str], seq: int) -> None:
        """Let each subject (a serial, a device) find an event its transaction had no room to link."""
        self.batch_put("event_links", [{"subject_id": s, "seq": seq} for s in dict.fromkeys(subjects)])

    def mirror(self, logical: str, record_id: str, account_id: str) -> dict[str, Any]:
        """An index entry so the other party's account also lists the move."""
        return put(self.name(logical), {"id": f"{record_id}:{account_id}", "account_id": account_id,
                                        "mirror_of": record_id})

    # -- reads of D-RECs ------------------------------------------------------------------------
    def drecs(self, serials: Sequence[str]) -> list[dict[str, Any]]:
        return self.batch_get("drecs", [{"serial": s} for s in dict.fromkeys(serials)])

    def active_holdings(self, owner: str, filters: dict[str, Any],
                        vintage: tuple[str | None, str | None]) -> Iterator[dict[str, Any]]:
        """serial, period_start, device_ids and locked_by of every active D-REC of `owner` matching `filters`."""
        names = {"#ps": "period_start", "#lb": "locked_by"}
        values: dict[str, Any] = {":k": f"{owner}#active"}
        parts = []
        for i, (name, value) in enumerate((k, v) for k, v in filters.items() if v is not None):
            names[f"#f{i}"], values[f":f{i}"] = name, value
            parts.append(f"#f{i} = :f{i}")
        for op, bound, value in ((">=", ":v1", vintage[0]), ("<=", ":v2", vintage[1])):
            if value is not None:
                names["#v"], values[bound] = "vintage", value
                parts.append(f"#v {op} {bound}")
        request: dict[str, Any] = {
            "TableName": self.name("drecs"), "IndexName": "by_owner_status",
            "KeyConditionExpression": "owner_status = :k",
            "ProjectionExpression": "serial, #ps, device_ids, #lb",
            "ExpressionAttributeNames": names, "ExpressionAttributeValues": to_item(values),
        }
        if parts:
            request["FilterExpression"] = " AND ".join(parts)
        return self._query_all(request)

    def holdings(self, owner: str) -> Iterator[dict[str, Any]]:
        """The summary fields of every D-REC `owner` holds, active or redeemed."""
        request: dict[str, Any] = {
            "TableName": self.name("drecs"), "IndexName": "by_owner",
            "KeyConditionExpression": "owner_account_id = :o",
            "ProjectionExpression": "serial, #st, country, device_type, vintage",
            "ExpressionAttributeNames": {"#st": "status"},
            "ExpressionAttributeValues": to_item({":o": owner}),
        }
        return self._query_all(request)

    def _query_all(self, request: dict[str, Any]) -> Iterator[dict[str, Any]]:
        while True:
            response = self.client.query(**request)
            yield from (from_item(i) for i in response.get("Items", []))
            if not response.get("LastEvaluatedKey"):
                return
            request["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def by_account(self, logical: str, account_id: str, limit: int, cursor: str | None) -> Page:
        """The account's moves, mirrors resolved to their records."""
        page = self.query_page(logical, "by_account", "account_id", account_id, limit, cursor)
        wanted = [i.get("mirror_of", i["id"]) for i in page.items]
        found = {r["id"]: r for r in self.records(logical, wanted)}
        return Page([found[i] for i in wanted if i in found], page.next_cursor)
