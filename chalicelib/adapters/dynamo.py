"""DynamoDB plumbing shared by the stores: item conversion, cursors, the event outbox.

Every registry write that records an event goes through `DynamoBase.commit`, which
appends the events with gap-free sequence numbers in the SAME transaction as the
write: the shard's `event_seq#<shard>` counter is advanced with a condition on its old
value, so two writers never take the same number and a failed write leaves no event. Within one
process a shard's writers take turns and start from the number last written (`ShardGuard`).
Shards (`domain.ledger.shards`) keep writers of different devices and pools off each
other's counter; each event is its own partition of `events` (key `id`, the event id).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import threading
import weakref
from collections.abc import Callable, Sequence
from decimal import Decimal
from typing import Any, ClassVar

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from ..config import cursor_key, event_shards
from ..domain.errors import BadInput, Conflict
from ..domain.index_keys import INDEX_SHARDS, SHARDED, key_attribute, shard_value, with_index_keys
from ..domain.ledger.events import Event, NewEvent, position_of
from ..domain.ledger.shards import shard_of
from ..domain.stores import MAX_ATOMIC_ITEMS, Page, TransactionRefused, read_budget

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()

EVENT_SEQ = "event_seq"


def seq_counter(shard: int) -> str:
    """The counter item of a shard's sequence."""
    return f"{EVENT_SEQ}#{shard}"


class RaceCounter:
    """How many times `commit` lost the race for its shard's sequence numbers and tried again.

    Process-wide, for tests and benchmarks: writers on different shards should never lose one.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.lost: dict[int, int] = {}

    def note(self, shard: int) -> None:
        with self._lock:
            self.lost[shard] = self.lost.get(shard, 0) + 1

    def total(self) -> int:
        with self._lock:
            return sum(self.lost.values())

    def reset(self) -> None:
        with self._lock:
            self.lost.clear()


SEQUENCE_RACES = RaceCounter()


class _SequenceTaken(Exception):
    """None of the caller's own items was refused: another writer took the shard's numbers (or, on
    DynamoDB, a counter item was in another transaction); the attempt is made again."""


class ShardGuard:
    """One process's writers of one event shard take its numbers one at a time, starting from the
    number this process last wrote (read again after any refusal): threads of one process (the local
    dispatcher's pollers) then never race each other for a shard's counter, nor read it before each
    commit. Writers in other processes still can; the counter's condition keeps numbers gap-free."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.seq: int | None = None  # the counter as this process last wrote it; None: read it


_GUARDS: weakref.WeakKeyDictionary[Any, dict[tuple[str, int], ShardGuard]] = weakref.WeakKeyDictionary()
_GUARDS_LOCK = threading.Lock()


def shard_guard(client: Any, counters_table: str, shard: int) -> ShardGuard:
    """The guard of a shard's counter for all the stores sharing `client` (one per container)."""
    with _GUARDS_LOCK:
        guards = _GUARDS.setdefault(client, {})
        return guards.setdefault((counters_table, shard), ShardGuard())


def _to_dynamo(value: Any) -> Any:
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, dict):
        return {k: _to_dynamo(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return [_to_dynamo(v) for v in value]
    return value


def _from_dynamo(value: Any) -> Any:
    if isinstance(value, Decimal):
        exponent = value.as_tuple().exponent
        return int(value) if isinstance(exponent, int) and exponent >= 0 else float(value)
    if isinstance(value, dict):
        return {k: _from_dynamo(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_dynamo(v) for v in value]
    return value


def to_item(data: dict[str, Any]) -> dict[str, Any]:
    return {k: _serializer.serialize(v) for k, v in _to_dynamo(data).items()}


def from_item(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _from_dynamo(_deserializer.deserialize(v)) for k, v in item.items()}


def key(**values: Any) -> dict[str, Any]:
    return to_item(values)


CURSOR_REFUSED = "cursor is not one this API returned for this listing; pass next_cursor as given"
MAX_CURSOR = 4096  # far above any key this API issues; longer ones are refused before any work


def sign_cursor(payload: str, scope: str) -> str:
    """`payload.mac`: the HMAC binds the position to the listing (`scope`) it was issued for."""
    body = base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")
    return f"{body}.{_mac(body, scope)}"


def open_cursor(cursor: str, scope: str) -> str:
    """The payload of a cursor this server signed for `scope`; anything else is a 400 naming `cursor`."""
    body, _, mac = cursor.partition(".")
    if len(cursor) > MAX_CURSOR or not mac or not hmac.compare_digest(mac.encode(), _mac(body, scope).encode()):
        raise BadInput(CURSOR_REFUSED, "cursor")
    return base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode()


def _mac(body: str, scope: str) -> str:
    digest = hmac.new(cursor_key(), f"{scope}\0{body}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def encode_cursor(last_key: dict[str, Any] | None, scope: str) -> str | None:
    if not last_key:
        return None
    return sign_cursor(json.dumps(last_key, sort_keys=True), scope)


def decode_cursor(cursor: str | None, scope: str) -> dict[str, Any] | None:
    if not cursor:
        return None
    decoded = json.loads(open_cursor(cursor, scope))  # signed by us: the shape is ours
    if not isinstance(decoded, dict):
        raise BadInput(CURSOR_REFUSED, "cursor")
    return decoded


def _scope(request: dict[str, Any]) -> str:
    """A query's identity (table, index, key and filters), without its position or page size."""
    return json.dumps({k: v for k, v in request.items() if k not in ("ExclusiveStartKey", "Limit")},
                      sort_keys=True, default=str)


def _conditioned(request: dict[str, Any], condition: str | None, names: dict[str, str] | None,
                 values: dict[str, Any] | None) -> dict[str, Any]:
    """A write request with its condition and expression names and values, where given."""
    if condition:
        request["ConditionExpression"] = condition
    if names:
        request["ExpressionAttributeNames"] = names
    if values:
        request["ExpressionAttributeValues"] = to_item(values)
    return request


def put(table: str, data: dict[str, Any], condition: str | None = None,
        names: dict[str, str] | None = None, values: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"Put": _conditioned({"TableName": table, "Item": to_item(data)}, condition, names, values)}


def update(table: str, item_key: dict[str, Any], expression: str, condition: str | None = None,
           names: dict[str, str] | None = None, values: dict[str, Any] | None = None) -> dict[str, Any]:
    request = {"TableName": table, "Key": to_item(item_key), "UpdateExpression": expression}
    return {"Update": _conditioned(request, condition, names, values)}


def set_remove(values: dict[str, Any], remove: tuple[str, ...] = ()) -> tuple[str, dict[str, str], dict[str, Any]]:
    """(UpdateExpression, names, values) that sets `values` (a None value is removed) and removes `remove`."""
    names: dict[str, str] = {}
    bound: dict[str, Any] = {}
    sets: list[str] = []
    removes: list[str] = []
    for i, (name, value) in enumerate(values.items()):
        names[f"#a{i}"] = name
        if value is None:
            removes.append(f"#a{i}")
        else:
            bound[f":a{i}"] = value
            sets.append(f"#a{i} = :a{i}")
    for j, name in enumerate(remove):
        names[f"#r{j}"] = name
        removes.append(f"#r{j}")
    expression = ("SET " + ", ".join(sets) if sets else "") + (" REMOVE " + ", ".join(removes) if removes else "")
    return expression.strip(), names, bound


def check(table: str, item_key: dict[str, Any], condition: str,
          names: dict[str, str] | None = None, values: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"ConditionCheck": _conditioned({"TableName": table, "Key": to_item(item_key)}, condition, names, values)}


def counter_values(store: DynamoBase, names: list[str]) -> list[int]:
    """The `value` of counter items `names` (0 where absent), in that order: one batch read."""
    found = {i["name"]: int(i["value"]) for i in store.batch_get("counters", [{"name": n} for n in names])}
    return [found.get(n, 0) for n in names]


class DynamoBase:
    """A DynamoDB client with the platform's table names."""

    def __init__(self, client: Any, name: Callable[[str], str], shards: int | None = None) -> None:
        self.client = client
        self.name = name
        self.shards = event_shards() if shards is None else shards

    # -- reads -------------------------------------------------------------------
    def get(self, logical: str, consistent: bool = True, **item_key: Any) -> dict[str, Any] | None:
        response = self.client.get_item(
            TableName=self.name(logical), Key=key(**item_key), ConsistentRead=consistent
        )
        item = response.get("Item")
        return from_item(item) if item else None

    def batch_get(self, logical: str, keys: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        table = self.name(logical)
        found: list[dict[str, Any]] = []
        for start in range(0, len(keys), 100):
            pending: dict[str, Any] = {table: {"Keys": [to_item(k) for k in keys[start:start + 100]],
                                               "ConsistentRead": True}}
            while pending:
                response = self.client.batch_get_item(RequestItems=pending)
                found += [from_item(i) for i in response["Responses"].get(table, [])]
                pending = response.get("UnprocessedKeys") or {}
        return found

    def query_page(self, logical: str, index: str | None, key_name: str, key_value: Any,
                   limit: int, cursor: str | None, filters: dict[str, Any] | None = None,
                   forward: bool = True, range_condition: tuple[str, str, Any] | None = None,
                   between: tuple[str, Any, Any] | None = None) -> Page:
        names = {"#k": key_name}
        values: dict[str, Any] = {":k": key_value}
        expression = "#k = :k"
        if range_condition:
            range_name, op, operand = range_condition
            names["#r"] = range_name
            if op == "between":
                values[":r1"], values[":r2"] = operand
                expression += " AND #r BETWEEN :r1 AND :r2"
            else:
                values[":r"] = operand
                expression += f" AND #r {op} :r"
        request: dict[str, Any] = {
            "TableName": self.name(logical),
            "KeyConditionExpression": expression,
            "ScanIndexForward": forward,
        }
        if index:
            request["IndexName"] = index
        filter_parts = []
        for i, (field_name, field_value) in enumerate((filters or {}).items()):
            if field_value is None:
                continue
            names[f"#f{i}"] = field_name
            values[f":f{i}"] = field_value
            filter_parts.append(f"#f{i} = :f{i}")
        if between and (between[1] is not None or between[2] is not None):
            names["#bw"] = between[0]
            if between[1] is not None:
                values[":bw1"] = between[1]
                filter_parts.append("#bw >= :bw1")
            if between[2] is not None:
                values[":bw2"] = between[2]
                filter_parts.append("#bw <= :bw2")
        if filter_parts:
            request["FilterExpression"] = " AND ".join(filter_parts)
        request["ExpressionAttributeNames"] = names
        request["ExpressionAttributeValues"] = to_item(values)
        if index and key_name in SHARDED.get(logical, ("", ()))[1]:
            return self._paginate_shards(request, key_value, limit, cursor)
        return self._paginate(request, limit, cursor)

    def query_every_shard(self, logical: str, index: str, key_name: str, key_value: Any, limit: int,
                          range_condition: tuple[str, str, Any] | None = None) -> list[dict[str, Any]]:
        """About `limit` items of a write-sharded index's `key_value`, from every shard alike.

        For sweeps of a sparse index that must reach every item in the end: each shard gives its first
        ceil(limit / INDEX_SHARDS) (in index order), so no shard waits behind a full one; at most
        limit + INDEX_SHARDS items, INDEX_SHARDS queries (none when the index is empty).
        """
        per_shard = -(-limit // INDEX_SHARDS)
        # The swept indexes are sparse: usually empty when nothing is stuck. One read of one entry says
        # so (0.5 read units) and spares the INDEX_SHARDS queries (each a scan of the table in moto).
        probe = self.client.scan(TableName=self.name(logical), IndexName=index, Limit=1)
        if not probe.get("Items") and not probe.get("LastEvaluatedKey"):
            return []
        names = {"#k": key_attribute(key_name)}
        expression = "#k = :k"
        values: dict[str, Any] = {}
        if range_condition:
            range_name, op, operand = range_condition
            names["#r"], values[":r"] = range_name, operand
            expression += f" AND #r {op} :r"
        found: list[dict[str, Any]] = []
        for shard in range(INDEX_SHARDS):
            values[":k"] = shard_value(key_value, shard)
            query = {"TableName": self.name(logical), "IndexName": index, "KeyConditionExpression": expression,
                     "ExpressionAttributeNames": names, "ExpressionAttributeValues": to_item(values)}
            items, _, _ = self._read(query, per_shard, None, per_shard)
            found += items
        return found

    def scan_page(self, logical: str, limit: int, cursor: str | None) -> Page:
        request: dict[str, Any] = {"TableName": self.name(logical), "Limit": limit}
        scope = _scope(request)
        start = decode_cursor(cursor, scope)
        if start:
            request["ExclusiveStartKey"] = start
        response = self.client.scan(**request)
        return Page([from_item(i) for i in response.get("Items", [])],
                    encode_cursor(response.get("LastEvaluatedKey"), scope))

    def _paginate(self, request: dict[str, Any], limit: int, cursor: str | None) -> Page:
        """Up to `limit` matches, reading at most `read_budget(limit)` raw items.

        A filter evaluates items it then drops; DynamoDB's `Limit` counts evaluated items, so the
        budget bounds the work even when nothing matches. Stopping on the budget still returns the
        position reached as `next_cursor`: the page may be short, even empty, and the next resumes there.
        """
        scope = _scope(request)
        items, stop, _ = self._read(request, limit, decode_cursor(cursor, scope), read_budget(limit))
        return Page(items, encode_cursor(stop, scope))

    def _paginate_shards(self, request: dict[str, Any], value: Any, limit: int, cursor: str | None) -> Page:
        """`_paginate` over a write-sharded index (`domain.index_keys`): `value`'s shards one after the other.

        Order is the index's within a shard, shard after shard (0 to INDEX_SHARDS - 1), not one global
        order. The read budget is shared by all the shards a page reads; the cursor is the signed
        (shard, position in it) where reading stopped.
        """
        key_name = request["ExpressionAttributeNames"]["#k"]
        request["ExpressionAttributeNames"]["#k"] = key_attribute(key_name)
        scope = _scope(request)  # with the plain value: one listing whatever the shard
        position = decode_cursor(cursor, scope) or {"shard": 0, "key": None}
        shard, start = position.get("shard"), position.get("key")
        if not isinstance(shard, int) or not 0 <= shard < INDEX_SHARDS or not isinstance(start, (dict, type(None))):
            raise BadInput(CURSOR_REFUSED, "cursor")
        items: list[dict[str, Any]] = []
        budget = read_budget(limit)
        while shard < INDEX_SHARDS:
            request["ExpressionAttributeValues"][":k"] = to_item({"v": shard_value(value, shard)})["v"]
            found, stop, budget = self._read(request, limit - len(items), start, budget)
            items += found
            shard, start = (shard, stop) if stop else (shard + 1, None)
            if stop or len(items) >= limit or budget <= 0:
                break
        more = shard < INDEX_SHARDS
        return Page(items, sign_cursor(json.dumps({"shard": shard, "key": start}, sort_keys=True), scope)
                    if more else None)

    def _read(self, request: dict[str, Any], limit: int, start: dict[str, Any] | None,
              budget: int) -> tuple[list[dict[str, Any]], dict[str, Any] | None, int]:
        """(up to `limit` matches from `start`, the key to resume after or None at the end, budget left)."""
        items: list[dict[str, Any]] = []
        filtered = "FilterExpression" in request
        request.pop("ExclusiveStartKey", None)
        while True:
            if start:
                request["ExclusiveStartKey"] = start
            room = limit - len(items)
            request["Limit"] = budget if filtered else min(room, budget)
            response = self.client.query(**request)
            batch = response.get("Items", [])
            budget -= int(response.get("ScannedCount", len(batch)))
            if len(batch) > room:
                batch = batch[:room]
                items += [from_item(i) for i in batch]
                return items, self._key_of(request, batch[-1]), budget
            items += [from_item(i) for i in batch]
            start = response.get("LastEvaluatedKey")
            if not start or len(items) >= limit or budget <= 0:
                return items, start or None, budget

    def _key_of(self, request: dict[str, Any], item: dict[str, Any]) -> dict[str, Any]:
        """The ExclusiveStartKey for resuming after `item` (table key plus index key)."""
        names = self._key_names(request["TableName"], request.get("IndexName"))
        return {n: item[n] for n in names if n in item}

    _key_cache: ClassVar[dict[tuple[str, str | None], list[str]]] = {}

    def _key_names(self, table: str, index: str | None) -> list[str]:
        cache_key = (table, index)
        if cache_key not in self._key_cache:
            description = self.client.describe_table(TableName=table)["Table"]
            names = [k["AttributeName"] for k in description["KeySchema"]]
            for gsi in description.get("GlobalSecondaryIndexes", []):
                if gsi["IndexName"] == index:
                    names += [k["AttributeName"] for k in gsi["KeySchema"]]
            self._key_cache[cache_key] = names
        return self._key_cache[cache_key]

    # -- writes ------------------------------------------------------------------
    def batch_put(self, logical: str, records: Sequence[dict[str, Any]]) -> None:
        """Unconditional puts, 25 a call (idempotent writes of deterministic items only)."""
        table = self.name(logical)
        for start in range(0, len(records), 25):
            pending: Any = {table: [{"PutRequest": {"Item": to_item(with_index_keys(logical, r))}}
                                    for r in records[start:start + 25]]}
            while pending:
                pending = self.client.batch_write_item(RequestItems=pending).get("UnprocessedItems")

    def transact(self, items: list[dict[str, Any]], token: str | None = None) -> None:
        request: dict[str, Any] = {"TransactItems": items}
        if token:
            request["ClientRequestToken"] = token
        try:
            self.client.transact_write_items(**request)
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "TransactionCanceledException":
                reasons = [r.get("Code") if r.get("Code") not in (None, "None") else None
                           for r in exc.response.get("CancellationReasons", [])]
                raise TransactionRefused(reasons) from exc
            raise

    def current_seq(self, shard: int) -> int:
        counter = self.get("counters", name=seq_counter(shard))
        return int(counter["value"]) if counter else 0

    def current_seqs(self) -> list[int]:
        return counter_values(self, [seq_counter(s) for s in range(self.shards)])

    def shard_for(self, shard_key: str | None) -> int:
        return shard_of(shard_key, self.shards)

    def commit(self, items: list[dict[str, Any]] | Callable[[list[Event]], list[dict[str, Any]]],
               events: Sequence[NewEvent], attempts: int = 100, counts: Sequence[dict[str, Any]] = (),
               shard_key: str | None = None) -> list[Event]:
        """Write `items` and append `events` atomically; returns the events with their shard and seq.

        Every event of one transaction goes to the shard of `shard_key` (`domain.ledger.shards`; None:
        the registry shard), so a transaction advances one counter. `items` may be a function of the
        events as they will be stored (with their seq), for a write that records an event's id in the
        same transaction; it is called again on every attempt. `counts` are the unconditional counter
        updates of the write (`adapters.counters`), in the same transaction. Raises TransactionRefused
        (with indices into `items`) when one of the caller's conditions fails; losing the race for
        sequence numbers is retried here (and counted in `SEQUENCE_RACES`).
        """
        shard = self.shard_for(shard_key)
        guard = shard_guard(self.client, self.name("counters"), shard) if events else None
        with guard.lock if guard else contextlib.nullcontext():
            for _ in range(attempts):
                try:
                    return self._commit_events(shard, items, events, counts, guard)
                except _SequenceTaken:
                    SEQUENCE_RACES.note(shard)  # someone else took these numbers first: read the counter again
        raise Conflict("the event sequence is busy; retry the request")

    def _commit_events(self, shard: int, items: list[dict[str, Any]] | Callable[[list[Event]], list[dict[str, Any]]],
                       events: Sequence[NewEvent], counts: Sequence[dict[str, Any]],
                       guard: ShardGuard | None) -> list[Event]:
        """One attempt; raises _SequenceTaken when only the counter's condition failed."""
        seq0 = 0
        if guard is not None:
            seq0 = guard.seq if guard.seq is not None else self.current_seq(shard)
            guard.seq = None  # until this write is known to have landed
        stored = [
            Event(seq=seq0 + i + 1, type=e.type, subject_id=e.subject_id, source_id=e.source_id,
                  occurred_at=e.occurred_at, body=e.body, related_ids=e.related_ids,
                  correlation_ids=e.correlation_ids, shard=shard)
            for i, e in enumerate(events)
        ]
        own = items(stored) if callable(items) else list(items)
        if len(own) + len(counts) + 1 + sum(2 + len(e.related_ids) for e in events) > MAX_ATOMIC_ITEMS:
            raise ValueError("transaction too large: split the write")
        tx = list(own)
        if events:
            tx.append(self._advance_seq(shard, seq0, seq0 + len(events)))
            tx += [self._put_event(e) for e in stored]
            tx += [put(self.name("event_links"), link_item(subject, e))
                   for e in stored for subject in dict.fromkeys((e.subject_id, *e.related_ids))]
        tx += counts
        try:
            self.transact(tx)
        except TransactionRefused as refused:
            mine = refused.reasons[: len(own)]
            if any(mine):
                raise TransactionRefused(mine) from refused
            raise _SequenceTaken() from refused
        if guard is not None:
            guard.seq = seq0 + len(events)
        return stored

    def _advance_seq(self, shard: int, old: int, new: int) -> dict[str, Any]:
        if old == 0:
            condition = "attribute_not_exists(#v) OR #v = :old"
        else:
            condition = "#v = :old"
        return update(self.name("counters"), {"name": seq_counter(shard)}, "SET #v = :new", condition,
                      names={"#v": "value"}, values={":old": old, ":new": new})

    def _put_event(self, event: Event) -> dict[str, Any]:
        return put(
            self.name("events"),
            {
                "id": event.event_id,
                "shard": event.shard,
                "seq": event.seq,
                "position": event.position,
                "type": event.type,
                "type_shard": type_shard(event.type, event.shard),
                "subject_id": event.subject_id,
                "source_id": event.source_id,
                "occurred_at": event.occurred_at,
                "body_json": json.dumps(event.body, sort_keys=True, separators=(",", ":")),
                "related_ids": list(event.related_ids) or None,
                "correlation_ids": list(event.correlation_ids) or None,
            },
            condition="attribute_not_exists(id)",
        )


def type_shard(event_type: str, shard: int) -> str:
    """The `by_type` index's key: a type's events per shard, so no type is one hot partition."""
    return f"{event_type}#{shard}"


def link_item(subject_id: str, event: Event) -> dict[str, Any]:
    """A subject's link to an event, sorted among its others by `position` (time, shard, seq)."""
    return {"subject_id": subject_id, "position": position_of(event.occurred_at, event.shard, event.seq),
            "event_id": event.event_id}


def event_from_item(item: dict[str, Any]) -> Event:
    return Event(
        shard=int(item.get("shard", 0)),
        seq=int(item["seq"]),
        type=item["type"],
        subject_id=item["subject_id"],
        source_id=item["source_id"],
        occurred_at=item["occurred_at"],
        body=json.loads(item["body_json"]),
        related_ids=tuple(item.get("related_ids") or ()),
        correlation_ids=tuple(item.get("correlation_ids") or ()),
    )
