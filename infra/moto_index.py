"""Queries that cost what they return: moto answers a Query by sorting and walking the whole table.

moto's `Table.query` starts from `all_items()`, which lists and sorts every item of the table, then
keeps those whose key matches: each query costs the size of the table (a sweep's 384 index queries on
a 24,000-reading table took the emulator 36 s; at 1,000,000 readings one query takes seconds). Here:

- a query on the table's own key starts from the items under that partition key (`Table.items`);
- a query on an index starts from the items whose index partition key has the value asked, found in a
  map per index (value → item keys) built at the first query and kept current by the keys each write
  request names (`written`, called by the emulator for every DynamoDB write it serves).

Everything after that choice is moto's own code (range conditions, sorting, paging, filters,
projections), so answers are moto's; `tests/unit/test_moto_index.py` compares them query by query.
A candidate whose key no longer matches is dropped at the lookup, so a stale map entry costs a check,
never a wrong answer; writes that bypass the requests (journal replay at start) call `forget()`.
"""

from __future__ import annotations

import contextvars
import threading
import weakref
from collections.abc import Iterable
from typing import Any

from moto.dynamodb.models.dynamo_type import DynamoType, Item
from moto.dynamodb.models.table import Table

from .journal import DYNAMODB_READS

_ONLY: contextvars.ContextVar[list[Item] | None] = contextvars.ContextVar("drec_query_candidates", default=None)
_ORIGINAL_QUERY = Table.query
_ORIGINAL_ALL_ITEMS = Table.all_items
_KEY_WRITES = {"PutItem": "Item", "UpdateItem": "Key", "DeleteItem": "Key"}

Key = tuple[DynamoType, DynamoType | None]


class _TableMaps:
    """For one table: per index, item keys by the index's partition key value, and each key's value."""

    def __init__(self, table: Table) -> None:
        self.attrs = {index.name: _hash_attribute(index) for index in table.all_indexes()}
        self.by_value: dict[str, dict[DynamoType, set[Key]]] = {name: {} for name in self.attrs}
        self.value_of: dict[str, dict[Key, DynamoType]] = {name: {} for name in self.attrs}
        for item in _stored(table):
            self._place(_key_of(item), item)

    def _place(self, key: Key, item: Item | None) -> None:
        for name, attr in self.attrs.items():
            if attr is None:
                continue
            old = self.value_of[name].pop(key, None)
            if old is not None:
                members = self.by_value[name].get(old)
                if members is not None:
                    members.discard(key)
                    if not members:
                        del self.by_value[name][old]
            value = item.attrs.get(attr) if item is not None else None
            if value is not None:
                self.value_of[name][key] = value
                self.by_value[name].setdefault(value, set()).add(key)

    def refresh(self, table: Table, keys: Iterable[dict[str, Any]]) -> None:
        for raw in keys:
            try:
                hash_value = DynamoType(raw[table.hash_key_attr])
                range_value = DynamoType(raw[table.range_key_attr]) if table.range_key_attr else None
            except (KeyError, TypeError, AttributeError):
                continue  # a malformed request: moto refused it and changed nothing
            key = (hash_value, range_value)
            self._place(key, _item(table, key))


class IndexMaps:
    """The maps of every table, and the keys written since they were last brought up to date."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.maps: weakref.WeakKeyDictionary[Table, _TableMaps] = weakref.WeakKeyDictionary()
        self.dirty: dict[str, list[dict[str, Any]]] = {}  # table name → raw keys or items written
        self.stale: set[str] = set()  # table names whose maps must be built again

    def forget(self) -> None:
        with self.lock:
            self.maps = weakref.WeakKeyDictionary()
            self.dirty.clear()
            self.stale.clear()

    def written(self, operation: str, request: dict[str, Any]) -> None:
        """A write request (its JSON body) was served or refused: note the keys it names, whatever became of it."""
        if operation in DYNAMODB_READS:
            return
        with self.lock:
            for table_name, raw in _keys_named(operation, request):
                if table_name == "*":
                    self.maps = weakref.WeakKeyDictionary()
                elif raw is None:
                    self.stale.add(table_name)
                else:
                    self.dirty.setdefault(table_name, []).append(raw)

    def candidates(self, table: Table, index_name: str, value: DynamoType) -> list[Item] | None:
        """The items whose `index_name` partition key is `value`; None when this index is not mapped."""
        with self.lock:
            maps = self.maps.get(table)
            if maps is None or table.name in self.stale:
                self.stale.discard(table.name)
                self.dirty.pop(table.name, None)
                maps = self.maps[table] = _TableMaps(table)
            else:
                maps.refresh(table, self.dirty.pop(table.name, ()))
            attr = maps.attrs.get(index_name)
            if attr is None:
                return None
            found = []
            for key in maps.by_value[index_name].get(value, ()):
                item = _item(table, key)
                if item is not None and item.attrs.get(attr) == value:
                    found.append(item)
            return found


MAPS = IndexMaps()


def _keys_named(operation: str, request: dict[str, Any]) -> list[tuple[str, dict[str, Any] | None]]:
    """(table name, raw key or item) of each item a write request names; (table, None): the whole table."""
    named: list[tuple[str, dict[str, Any] | None]] = []
    if operation in _KEY_WRITES:
        raw = request.get(_KEY_WRITES[operation])
        named.append((str(request.get("TableName")), raw if isinstance(raw, dict) else None))
    elif operation == "BatchWriteItem":
        for table_name, writes in (request.get("RequestItems") or {}).items():
            for write in writes if isinstance(writes, list) else []:
                put, delete = (write or {}).get("PutRequest"), (write or {}).get("DeleteRequest")
                raw = (put or {}).get("Item") if put else (delete or {}).get("Key")
                named.append((table_name, raw if isinstance(raw, dict) else None))
    elif operation == "TransactWriteItems":
        for entry in request.get("TransactItems") or []:
            for kind, field in (("Put", "Item"), ("Update", "Key"), ("Delete", "Key")):
                part = (entry or {}).get(kind)
                if isinstance(part, dict):
                    raw = part.get(field)
                    named.append((str(part.get("TableName")), raw if isinstance(raw, dict) else None))
    elif "TableName" in request:  # CreateTable, UpdateTable, DeleteTable, PartiQL...: map the table afresh
        named.append((str(request["TableName"]), None))
    else:  # a write naming no table (ExecuteTransaction...): every table afresh
        named.append(("*", None))
    return named


def _hash_attribute(index: Any) -> str | None:
    hashes = [k["AttributeName"] for k in index.schema if k["KeyType"] == "HASH"]
    return hashes[0] if len(hashes) == 1 else None


def _stored(table: Table) -> Iterable[Item]:
    held: Any  # moto's items: [hash] → item, or [hash][range] → item
    for held in table.items.values():
        if table.range_key_attr:
            yield from held.values()
        else:
            yield held


def _key_of(item: Item) -> Key:
    return item.hash_key, item.range_key


def _item(table: Table, key: Key) -> Item | None:
    held: Any = table.items.get(key[0])
    if held is None:
        return None
    if table.range_key_attr:
        return held.get(key[1])  # type: ignore[no-any-return]
    return held  # type: ignore[no-any-return]


def query(self: Table, hash_key: DynamoType | None, range_comparison: str | None, range_objs: list[DynamoType],
          limit: int, exclusive_start_key: dict[str, Any], scan_index_forward: bool,
          projection_expressions: list[list[str]] | None, index_name: str | None = None,
          consistent_read: bool = False, filter_expression: Any = None,
          hash_key_conditions: list[tuple[str, DynamoType]] | None = None, **kwargs: Any) -> Any:
    candidates: list[Item] | None = None
    if index_name is None and hash_key is not None:
        held: Any = self.items.get(hash_key)
        candidates = [] if held is None else (list(held.values()) if self.range_key_attr else [held])
    elif index_name is not None:
        wanted = dict(hash_key_conditions or [])
        index = {i.name: i for i in self.all_indexes()}.get(index_name)
        attr = _hash_attribute(index) if index is not None else None
        value = wanted.get(attr) if attr else None
        if value is None and attr and hash_key is not None and not wanted:
            value = hash_key
        if value is not None and set(wanted) <= {attr}:
            candidates = MAPS.candidates(self, index_name, value)
    token = _ONLY.set(candidates)
    try:
        return _ORIGINAL_QUERY(self, hash_key, range_comparison, range_objs, limit, exclusive_start_key,
                               scan_index_forward, projection_expressions, index_name, consistent_read,
                               filter_expression, hash_key_conditions=hash_key_conditions, **kwargs)
    finally:
        _ONLY.reset(token)


def all_items(self: Table) -> list[Item]:
    only = _ONLY.get()
    if only is None:
        return _ORIGINAL_ALL_ITEMS(self)  # type: ignore[no-any-return]
    _ONLY.set(None)  # once: the query's own starting set
    return sorted(only, key=lambda x: (x.hash_key, x.range_key) if x.range_key else x.hash_key)


def install() -> None:
    Table.query = query  # type: ignore[method-assign,assignment]
    Table.all_items = all_items  # type: ignore[method-assign]
