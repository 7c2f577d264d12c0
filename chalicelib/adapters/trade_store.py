"""Transfers and redemptions in DynamoDB: move records, D-REC locks, chunked ownership moves.

A move (transfer or redemption) is one record in its table plus two passes over
its D-RECs, each pass a series of transactions of a chunk of D-RECs that also
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

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from ..domain.certificates import Drec, DrecSelection, DrecStatus
from ..domain.index_keys import index_key, key_attribute
from ..domain.ledger.events import Event, NewEvent, event_id_for
from ..domain.moves import (
    DrecChange,
    Move,
    MoveKind,
    MoveStatus,
    Redemption,
    SponsorRanges,
    Transfer,
)
from ..domain.stores import TransactionRefused
from .counters import CounterReads, Tally, stats_shard
from .drec_store import drec_from_item
from .dynamo import from_item, link_item, put, to_item, update

LOCKING = MoveStatus.LOCKING.value
APPLYING = MoveStatus.APPLYING.value
RELEASING = MoveStatus.RELEASING.value
UNLOCKING = MoveStatus.UNLOCKING.value
FAILED = MoveStatus.FAILED.value
ACTIVE = DrecStatus.ACTIVE.value


def idempotency_lookup(logical: str, principal_id: str, idempotency_key: str) -> str:
    return f"idem#{logical}#{principal_id}#{idempotency_key}"


# -- items <-> records ------------------------------------------------------------------------
def move_item(move: Move) -> dict[str, Any]:
    """The stored item of a move record, exactly as the routes have always written it."""
    item: dict[str, Any] = {"id": move.id, "account_id": move.account_id}
    if isinstance(move, Transfer):
        item |= {"from_account_id": move.from_account_id, "to_account_id": move.to_account_id}
    item |= {"serials": list(move.serials), "device_ids": list(move.device_ids)}
    if isinstance(move, Redemption):
        item |= {"beneficiary": move.beneficiary, "purpose": move.purpose,
                 "claim_period_start": move.claim_period_start, "claim_period_end": move.claim_period_end,
                 "country_of_consumption": move.country_of_consumption,
                 "sponsors": [{"name": s.name, "share": s.share, "serial_ranges": list(s.serial_ranges)}
                              for s in move.sponsors],
                 "statement": dict(move.statement), "ledger_key": move.ledger_key,
                 "token_hashes": set(move.token_hashes) or None}
    item |= {"status": move.status.value, "locked": move.locked, "applied": move.applied,
             "created_at": move.created_at, "principal_id": move.principal_id,
             "request_sha256": move.request_sha256, "idempotency_key": move.idempotency_key,
             "completed_at": move.completed_at, "failure": dict(move.failure) if move.failure else None,
             "event_id": move.event_id}
    return {k: v for k, v in item.items() if v is not None}


def move_from_item(kind: MoveKind, item: Mapping[str, Any]) -> Move:
    common: dict[str, Any] = {
        "id": item["id"], "account_id": item["account_id"], "serials": tuple(item["serials"]),
        "device_ids": tuple(item.get("device_ids", ())), "status": MoveStatus(item["status"]),
        "created_at": item["created_at"], "principal_id": item["principal_id"],
        "request_sha256": item["request_sha256"], "locked": int(item.get("locked", 0)),
        "applied": int(item.get("applied", 0)), "idempotency_key": item.get("idempotency_key"),
        "completed_at": item.get("completed_at"), "failure": item.get("failure"),
        "event_id": item.get("event_id") or (event_id_for(0, int(item["event_seq"]))  # before shards: shard 0
                                             if item.get("event_seq") is not None else None),
    }
    if kind is MoveKind.TRANSFERS:
        return Transfer(**common, from_account_id=item["from_account_id"], to_account_id=item["to_account_id"])
    return Redemption(
        **common, beneficiary=item["beneficiary"], purpose=item["purpose"],
        claim_period_start=item["claim_period_start"], claim_period_end=item["claim_period_end"],
        country_of_consumption=item.get("country_of_consumption"),
        sponsors=tuple(SponsorRanges(s["name"], s["share"], tuple(s["serial_ranges"]))
                       for s in item.get("sponsors", [])),
        statement=item["statement"], ledger_key=item["ledger_key"],
        token_hashes=frozenset(item.get("token_hashes") or ()))


class DynamoTrades(CounterReads):
    # -- move records ---------------------------------------------------------------------
    def move(self, kind: MoveKind, move_id: str) -> Move | None:
        """The move record `move_id`; None when there is none (an account's mirror entry is not one)."""
        item = self.get(kind.value, id=move_id)
        return move_from_item(kind, item) if item and "mirror_of" not in item else None

    def moves(self, kind: MoveKind, move_ids: Sequence[str]) -> list[Move]:
        items = self.batch_get(kind.value, [{"id": i} for i in dict.fromkeys(move_ids)])
        return [move_from_item(kind, i) for i in items if "mirror_of" not in i]

    def idempotent_target(self, kind: MoveKind, principal_id: str, idempotency_key: str) -> str | None:
        found = self.get("lookups", k=idempotency_lookup(kind.value, principal_id, idempotency_key))
        return found["target_id"] if found else None

    def start(self, move: Move) -> None:
        """Store a new move record, with the guard of its Idempotency-Key when it has one.

        Raises TransactionRefused when the guard is already taken (a concurrent retry won).
        """
        logical = move.kind.value
        items = [put(self.name(logical), move_item(move), "attribute_not_exists(id)")]
        if move.idempotency_key:
            lookup_key = idempotency_lookup(logical, move.principal_id, move.idempotency_key)
            items.append(put(self.name("lookups"), {"k": lookup_key, "target_id": move.id},
                             "attribute_not_exists(k)"))
        self.transact(items)

    def set_status(self, move: Move, old: MoveStatus, new: MoveStatus,
                   failure: Mapping[str, str] | None = None) -> bool:
        """Move the record from status `old` to `new`; False when it was no longer `old`."""
        values: dict[str, Any] = {":old": old.value, ":new": new.value}
        sets = ["#st = :new"]
        if failure is not None:
            values[":x0"] = dict(failure)
            sets.append("failure = :x0")
        try:
            self.transact([update(self.name(move.kind.value), {"id": move.id}, "SET " + ", ".join(sets),
                                  "#st = :old", names={"#st": "status"}, values=values)])
        except TransactionRefused:
            return False
        return True

    def unfinished(self, kind: MoveKind, started_before: str) -> Iterator[Move]:
        """Move records not yet completed or failed that started before `started_before` (ISO)."""
        request: dict[str, Any] = {
            "TableName": self.name(kind.value),
            "FilterExpression": "#st IN (:locking, :applying, :releasing, :unlocking) AND created_at < :before",
            "ExpressionAttributeNames": {"#st": "status"},
            "ExpressionAttributeValues": to_item({":locking": LOCKING, ":applying": APPLYING,
                                                  ":releasing": RELEASING, ":unlocking": UNLOCKING,
                                                  ":before": started_before}),
        }
        while True:
            response = self.client.scan(**request)
            yield from (move_from_item(kind, from_item(i)) for i in response.get("Items", []))
            if not response.get("LastEvaluatedKey"):
                return
            request["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    # -- the passes -------------------------------------------------------------------------
    def lock(self, move: Move, serials: Sequence[str], locked_before: int, last: bool) -> None:
        """Lock one chunk; the last chunk also moves the record on to `applying`.

        Raises TransactionRefused: reasons[i] for D-REC i, reasons[-1] for the record.
        """
        items = [update(self.name("drecs"), {"serial": s}, "SET locked_by = :id",
                        "owner_account_id = :owner AND #st = :active AND attribute_not_exists(locked_by)",
                        names={"#st": "status"}, values={":id": move.id, ":owner": move.account_id,
                                                         ":active": ACTIVE})
                 for s in serials]
        expression = "SET locked = :new" + (", #st = :applying" if last else "")
        values: dict[str, Any] = {":old": locked_before, ":new": locked_before + len(serials), ":locking": LOCKING}
        if last:
            values[":applying"] = APPLYING
        items.append(update(self.name(move.kind.value), {"id": move.id}, expression,
                            "#st = :locking AND locked = :old", names={"#st": "status"}, values=values))
        self.transact(items)

    def release(self, move: Move, serials: Sequence[str], locked_before: int,
                status: MoveStatus = MoveStatus.RELEASING) -> None:
        items = [update(self.name("drecs"), {"serial": s}, "REMOVE locked_by", "locked_by = :id",
                        values={":id": move.id}) for s in serials]
        items.append(update(self.name(move.kind.value), {"id": move.id}, "SET locked = :new",
                            "#st = :status AND locked = :old", names={"#st": "status"},
                            values={":old": locked_before, ":new": locked_before - len(serials),
                                    ":status": status.value}))
        self.transact(items)

    def apply(self, move: Move, changes: Sequence[DrecChange], applied_before: int) -> None:
        """Per D-REC its new holder, status and marks; the lock stays until the move's event is recorded."""
        items = []
        for change in changes:
            fields = {"owner_account_id": change.owner_account_id, "status": change.status.value,
                      key_attribute("status"): index_key(change.status.value, change.serial),
                      "owner_status": f"{change.owner_account_id}#{change.status.value}", **change.marks}
            names = {f"#a{i}": name for i, name in enumerate(fields)}
            values: dict[str, Any] = {f":a{i}": value for i, value in enumerate(fields.values())}
            values[":id"] = move.id
            sets = ", ".join(f"#a{i} = :a{i}" for i in range(len(fields)))
            items.append(update(self.name("drecs"), {"serial": change.serial}, f"SET {sets}",
                                "locked_by = :id", names=names, values=values))
        items.append(update(self.name(move.kind.value), {"id": move.id}, "SET applied = :new",
                            "#st = :applying AND applied = :old", names={"#st": "status"},
                            values={":old": applied_before, ":new": applied_before + len(changes),
                                    ":applying": APPLYING}))
        self.transact(items + self.tally(self._moved(move, changes)))

    def _moved(self, move: Move, changes: Sequence[DrecChange]) -> Tally:
        """The counters' side of applying `changes`: each D-REC leaves its holder's active holdings for
        its new holder and status. A locked D-REC is active and held by the move's account (the lock's
        condition), and country, device type and vintage never change, so reading those first is exact."""
        found = {i["serial"]: i for i in self._characteristics([c.serial for c in changes])}
        shard = stats_shard(move.id)
        counts = Tally()
        for change in changes:
            drec = found.get(change.serial, {})
            counts.hold(move.account_id, drec, ACTIVE, -1)
            counts.hold(change.owner_account_id, drec, change.status.value, 1)
            if change.status.value != ACTIVE:
                counts.add(shard, "drecs_active", -1).add(shard, f"drecs_{change.status.value}")
        return counts

    def _characteristics(self, serials: Sequence[str]) -> list[dict[str, Any]]:
        table = self.name("drecs")
        names = {"#s": "serial", "#c": "country", "#t": "device_type", "#v": "vintage"}
        pending: dict[str, Any] = {table: {"Keys": [to_item({"serial": s}) for s in dict.fromkeys(serials)],
                                           "ProjectionExpression": ", ".join(names), "ExpressionAttributeNames": names}}
        found: list[dict[str, Any]] = []
        while pending:
            response = self.client.batch_get_item(RequestItems=pending)
            found += [from_item(i) for i in response["Responses"].get(table, [])]
            pending = response.get("UnprocessedKeys") or {}
        return found

    def finish(self, move: Move, completed_at: str, mirror_for: str | None, event: NewEvent) -> Event:
        """Append the move's event and move the record on to unlocking, once every D-REC is applied;
        `mirror_for` is another account that should list the move too."""
        logical = move.kind.value
        mark = update(self.name(logical), {"id": move.id}, "SET #st = :unlocking, completed_at = :at",
                      "#st = :applying AND applied = :count", names={"#st": "status"},
                      values={":unlocking": UNLOCKING, ":at": completed_at, ":count": len(move.serials),
                              ":applying": APPLYING})
        mirror = [put(self.name(logical), {"id": f"{move.id}:{mirror_for}", "account_id": mirror_for,
                                           "mirror_of": move.id})] if mirror_for else []
        counts = Tally().add(stats_shard(move.id), logical)
        (stored,) = self.commit([mark, *mirror], [event], counts=self.tally(counts))
        return stored

    def add_token_hash(self, redemption_id: str, token_hash: str) -> None:
        """One more ledger link token; earlier ones keep working."""
        self.client.update_item(TableName=self.name("redemptions"), Key=to_item({"id": redemption_id}),
                                UpdateExpression="ADD token_hashes :t",
                                ExpressionAttributeValues=to_item({":t": {token_hash}}))

    def record_event(self, move: Move, event: Event) -> None:
        self.client.update_item(TableName=self.name(move.kind.value), Key=to_item({"id": move.id}),
                                UpdateExpression="SET event_id = :id", ExpressionAttributeValues=to_item(
                                    {":id": event.event_id}))

    def link_event(self, subjects: Sequence[str], event: Event) -> None:
        """Let each subject (a serial, a device) find an event its transaction had no room to link."""
        self.batch_put("event_links", [link_item(s, event) for s in dict.fromkeys(subjects)])

    # -- reads of D-RECs ------------------------------------------------------------------------
    def drecs(self, serials: Sequence[str]) -> list[Drec]:
        return [drec_from_item(i) for i in self.batch_get("drecs", [{"serial": s} for s in dict.fromkeys(serials)])]

    def active_holdings(self, owner: str, selection: DrecSelection) -> Iterator[Drec]:
        """Serial, period_start and locked_by of every active D-REC of `owner` the selection admits (what the
        owner index projects; the chosen D-RECs are read whole afterwards)."""
        names = {"#ps": "period_start", "#lb": "locked_by"}
        values: dict[str, Any] = {":k": f"{owner}#{ACTIVE}"}
        parts = []
        for i, (name, value) in enumerate((k, v) for k, v in selection.characteristics().items() if v is not None):
            names[f"#f{i}"], values[f":f{i}"] = name, value
            parts.append(f"#f{i} = :f{i}")
        first, last = selection.vintages()
        for op, bound, month in ((">=", ":v1", first), ("<=", ":v2", last)):
            if month is not None:
                names["#v"], values[bound] = "vintage", month
                parts.append(f"#v {op} {bound}")
        request: dict[str, Any] = {
            "TableName": self.name("drecs"), "IndexName": "by_owner_status",
            "KeyConditionExpression": "owner_status = :k",
            "ProjectionExpression": "serial, #ps, #lb",
            "ExpressionAttributeNames": names, "ExpressionAttributeValues": to_item(values),
        }
        if parts:
            request["FilterExpression"] = " AND ".join(parts)
        for item in self._query_all(request):
            yield drec_from_item({**item, "owner_account_id": owner, "status": ACTIVE})

    def holdings(self, owner: str) -> Iterator[Drec]:
        """The summary fields of every D-REC `owner` holds, active or redeemed."""
        request: dict[str, Any] = {
            "TableName": self.name("drecs"), "IndexName": "by_owner",
            "KeyConditionExpression": "owner_account_id = :o",
            "ProjectionExpression": "serial, #st, country, device_type, vintage",
            "ExpressionAttributeNames": {"#st": "status"},
            "ExpressionAttributeValues": to_item({":o": owner}),
        }
        for item in self._query_all(request):
            yield drec_from_item({**item, "owner_account_id": owner})

    def _query_all(self, request: dict[str, Any]) -> Iterator[dict[str, Any]]:
        while True:
            response = self.client.query(**request)
            yield from (from_item(i) for i in response.get("Items", []))
            if not response.get("LastEvaluatedKey"):
                return
            request["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def by_account(self, kind: MoveKind, account_id: str, limit: int, cursor: str | None,
                   ) -> tuple[list[Move], str | None]:
        """The account's moves, mirrors resolved to their records."""
        page = self.query_page(kind.value, "by_account", "account_id", account_id, limit, cursor)
        wanted = [i.get("mirror_of", i["id"]) for i in page.items]
        found = {m.id: m for m in self.moves(kind, wanted)}
        return [found[i] for i in wanted if i in found], page.next_cursor
