"""What a run consumed, counted where it is served: the emulator's requests, Lambda invocations, API calls.

- `Counting` wraps moto inside the emulator (`infra.emulator.Serialised`, so DynamoDB is counted
  under the emulator's lock, with the stored items as they were before and after each write). It
  tallies requests per service and operation, and DynamoDB request units by AWS's published rules
  from the sizes of the items involved — moto's own `ReturnConsumedCapacity` answers are constants
  (1 per item read or written, 2 per transaction item, 0.5 for eventually consistent reads), not
  sizes, so they are not used:
    * item size: UTF-8 bytes of each attribute name and string, (significant digits / 2) + 1 for a
      number, raw bytes of a binary, 1 for a boolean or null, 3 + 1 per element for a list or map;
    * write: ceil(KB) of the larger of the item before and after (PutItem, UpdateItem; DeleteItem the
      item deleted), at least 1 — a conditional write that fails still consumes; ×2 in
      TransactWriteItems (a ConditionCheck counted as a write); BatchWriteItem per item; each global
      secondary index the write touches costs ceil(KB of the projected item) more, twice when the
      index key changes (delete + put), not doubled in transactions;
    * read: ceil(size / 4 KB), at least 1, halved when eventually consistent, ×2 in
      TransactGetItems; BatchGetItem per item; Query and Scan by the total size evaluated — the items
      returned, or, when a filter, a projection or `Select=COUNT` hides them, `ScannedCount` × the
      table's mean item size seen in this run.
  Storage growth is tallied too: item bytes + 100 bytes per item (AWS's indexing overhead), per
  table and per index. SQS: one request per call, a batch send one per 64 KB chunk of its payload;
  empty receives (idle long polls, which depend on the poller and not on the work) are tallied
  apart. S3: PUT/POST/COPY/LIST class and GET/HEAD class, bytes put.
  `GET /_drec/usage` answers the tally as JSON, `POST /_drec/usage` resets it (both local only);
  a request carrying `X-Drec-Usage: skip` (a benchmark watching the store) is served but not
  counted. Counting costs the emulator time inside its lock (≈20 % of its busy time in a pipeline
  run, measured with py-spy), so it is on only with `DREC_USAGE=1`; the pipeline benchmark times its
  runs with `DREC_USAGE=calls` (handler calls only, below) and counts in a run of its own.
- `Invocations` tallies calls and their durations per handler in a process (the dispatcher's Lambda
  handlers, `chalice local`'s API calls) and writes them to `<stack dir>/usage/<name>.json`
  every second (with `DREC_USAGE=1` or `DREC_USAGE=calls`: a few dict updates per handler call).
"""

from __future__ import annotations

import json
import math
import os
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from moto.core.models import DEFAULT_ACCOUNT_ID

from .journal import read_body, request_json, service_of
from .request_units import (
    DynamoItem,
    index_write_units,
    item_size,
    projected,
    read_units,
    stored_bytes,
    write_cost,
)

USAGE_PATH = "/_drec/usage"
SKIP_HEADER = "HTTP_X_DREC_USAGE"
ENABLED = os.environ.get("DREC_USAGE") == "1"  # the emulator counts every request it serves
CALLS_ENABLED = os.environ.get("DREC_USAGE") in ("1", "calls")  # handler calls and durations, per process
SQS_CHUNK_BYTES = 64 * 1024


# --- the tally -------------------------------------------------------------------------------


def _named_groups(keys: dict[str, float], most: int = 100) -> dict[str, list[float]]:
    """Keys grouped by their name before `#` (`stats#7` → `stats`), [units, keys] each; {} unless that
    leaves at most `most` names (a table keyed per item groups nothing)."""
    groups: dict[str, list[float]] = {}
    for key, units in keys.items():
        group = groups.setdefault(key.split("#")[0], [0.0, 0])
        group[0] += units
        group[1] += 1
        if len(groups) > most:
            return {}
    return groups


class Tally:
    """Counts, thread-safe; `snapshot()` is plain JSON."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        self.requests: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        self.tables: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        self.sizes: dict[str, list[int]] = defaultdict(lambda: [0, 0])  # table: [bytes, items] seen
        self.extra: dict[str, float] = defaultdict(float)
        # Write units per partition key value, per table and per `table/index`: where partitions run hot.
        self.keys: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        self.started = time.time()

    def add_request(self, service: str, operation: str, count: int = 1) -> None:
        self.requests[service][operation] += count

    def add_table(self, table: str, **amounts: float) -> None:
        for name, amount in amounts.items():
            self.tables[table][name] += amount

    def saw(self, table: str, item: DynamoItem | None) -> None:
        if item:
            seen = self.sizes[table]
            seen[0] += item_size(item)
            seen[1] += 1

    def mean_size(self, table: str) -> float:
        total, count = self.sizes.get(table, [0, 0])
        return total / count if count else 0.0

    def hot_keys(self, top: int = 5) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for scope, keys in self.keys.items():
            ranked = sorted(keys.items(), key=lambda kv: -kv[1])[:top]
            out[scope] = {"write_units": sum(keys.values()), "keys": len(keys), "top": [[k, v] for k, v in ranked]}
            if len(keys) <= 100:  # counters and other few-key tables: every key (the shards of a counter)
                out[scope]["all"] = [[k, v] for k, v in keys.items()]
            else:
                groups = _named_groups(keys)
                if groups:  # too many to list, but a few names: each with its units and keys (a counter's shards)
                    out[scope]["groups"] = groups
            values = _sharded_values(keys)
            if values:  # a write-sharded index (`<value>#<nnn>` keys): each value's shards summed
                out[scope]["values"] = [[k, v] for k, v in values.items()]
        return out

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            tables = {t: dict(v) for t, v in self.tables.items()}
            return {"since": self.started, "at": time.time(),
                    "requests": {s: dict(ops) for s, ops in self.requests.items()},
                    "dynamodb": {"tables": tables,
                                 "read_units": sum(v.get("read_units", 0.0) for v in tables.values()),
                                 "write_units": sum(v.get("write_units", 0.0) + v.get("index_write_units", 0.0)
                                                    for v in tables.values()),
                                 "storage_bytes": sum(v.get("storage_bytes", 0.0) + v.get("index_storage_bytes", 0.0)
                                                      for v in tables.values())},
                    "hot_keys": self.hot_keys(), "extra": dict(self.extra)}


TALLY = Tally()


# --- the emulator's side ---------------------------------------------------------------------


class Store:
    """The emulator's DynamoDB, read in place (moto in this process): items and index definitions."""

    def __init__(self) -> None:
        self.region = os.environ.get("AWS_DEFAULT_REGION", "us-east-1")

    def backend(self) -> Any:
        from moto.dynamodb.models import dynamodb_backends

        return dynamodb_backends[DEFAULT_ACCOUNT_ID][self.region]

    def table(self, name: str) -> Any:
        return self.backend().tables.get(name)

    def key_of(self, name: str, item: DynamoItem) -> DynamoItem:
        table = self.table(name)
        if table is None:
            return {}
        keys = [table.hash_key_attr] + ([table.range_key_attr] if table.range_key_attr else [])
        return {k: item[k] for k in keys if k in item}

    def item(self, name: str, key: DynamoItem) -> DynamoItem | None:
        try:
            found = self.backend().get_item(name, key)
        except Exception:  # an unknown table or a malformed key: moto answers the client its error
            return None
        return found.to_json()["Attributes"] if found is not None else None

    def partition_key(self, name: str) -> str:
        table = self.table(name)
        return str(table.hash_key_attr) if table is not None else ""

    def indexes(self, name: str) -> list[dict[str, Any]]:
        table = self.table(name)
        if table is None:
            return []
        table_keys = [table.hash_key_attr] + ([table.range_key_attr] if table.range_key_attr else [])
        return [{"name": index.name, "keys": index.schema_key_attrs, "table_keys": table_keys,
                 "projection": (index.projection or {}).get("ProjectionType", "ALL"),
                 "include": (index.projection or {}).get("NonKeyAttributes", [])}
                for index in table.global_indexes]


def _sharded_values(keys: dict[str, float]) -> dict[str, float]:
    """Units per value when every key is `<value>#<3 digits>` (chalicelib/domain/index_keys.py), else none."""
    values: dict[str, float] = {}
    for key, units in keys.items():
        value, _, shard = key.rpartition("#")
        if not value or len(shard) != 3 or not shard.isdigit():
            return {}
        values[value] = values.get(value, 0.0) + units
    return values


def _writes_of(operation: str, body: dict[str, Any], store: Store) -> list[tuple[str, DynamoItem, DynamoItem | None]]:
    """(table, key, the item a put sends or None) of each item a write request touches."""
    if operation == "PutItem":
        return [(body["TableName"], store.key_of(body["TableName"], body["Item"]), body["Item"])]
    if operation in ("UpdateItem", "DeleteItem"):
        return [(body["TableName"], body["Key"], None)]
    if operation == "BatchWriteItem":
        out = []
        for table, requests in body.get("RequestItems", {}).items():
            for request in requests:
                if "PutRequest" in request:
                    item = request["PutRequest"]["Item"]
                    out.append((table, store.key_of(table, item), item))
                elif "DeleteRequest" in request:
                    out.append((table, request["DeleteRequest"]["Key"], None))
        return out
    if operation == "TransactWriteItems":
        out = []
        for entry in body.get("TransactItems", []):
            (kind, op), = entry.items()
            if kind == "Put":
                out.append((op["TableName"], store.key_of(op["TableName"], op["Item"]), op["Item"]))
            else:
                out.append((op["TableName"], op["Key"], None))
        return out
    return []


WRITES = frozenset({"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"})


def _key_value(item: DynamoItem | None, attribute: str) -> str:
    value = (item or {}).get(attribute)
    return str(next(iter(value.values()))) if value else ""


def _count_writes(operation: str, touched: list[tuple[str, DynamoItem, DynamoItem | None]],
                  befores: list[DynamoItem | None], store: Store) -> None:
    factor = 2 if operation == "TransactWriteItems" else 1
    for (table, key, _), before in zip(touched, befores, strict=True):
        after = store.item(table, key)
        TALLY.saw(table, after)
        units = factor * write_cost(before, after)
        TALLY.keys[table][_key_value(key, store.partition_key(table))] += units
        index_units = 0
        index_storage = 0
        for index in store.indexes(table):
            spent = index_write_units(before, after, index)
            if spent:
                index_units += spent
                scope = f"{table}/{index['name']}"
                TALLY.keys[scope][_key_value(projected(after, index) or before, index["keys"][0])] += spent
                TALLY.tables[table][f"index_write_units:{index['name']}"] += spent
            index_storage += stored_bytes(projected(after, index)) - stored_bytes(projected(before, index))
        TALLY.add_table(table, write_units=units, items_written=1, index_write_units=index_units,
                        storage_bytes=stored_bytes(after) - stored_bytes(before), index_storage_bytes=index_storage)


def _count_reads(operation: str, body: dict[str, Any], answer: dict[str, Any]) -> None:
    consistent = bool(body.get("ConsistentRead"))
    if operation == "GetItem":
        item = answer.get("Item")
        TALLY.add_table(body["TableName"], read_units=read_units(item_size(item), consistent), items_read=1)
    elif operation == "BatchGetItem":
        for table, request in body.get("RequestItems", {}).items():
            returned = answer.get("Responses", {}).get(table, [])
            unprocessed = len(answer.get("UnprocessedKeys", {}).get(table, {}).get("Keys", []))
            strong = bool(request.get("ConsistentRead"))
            units = sum(read_units(item_size(i), strong) for i in returned)
            units += max(0, len(request.get("Keys", [])) - len(returned) - unprocessed) * read_units(0, strong)
            TALLY.add_table(table, read_units=units, items_read=len(returned))
    elif operation == "TransactGetItems":
        for entry, got in zip(body.get("TransactItems", []), answer.get("Responses", []), strict=False):
            TALLY.add_table(entry["Get"]["TableName"], read_units=2 * read_units(item_size(got.get("Item")), True),
                            items_read=1)
    elif operation in ("Query", "Scan"):
        table = body["TableName"]
        items = answer.get("Items", [])
        scanned = int(answer.get("ScannedCount", len(items)))
        whole = not body.get("ProjectionExpression") and not body.get("AttributesToGet") and scanned == len(items)
        if whole and items:
            size = sum(item_size(i) for i in items)
        else:
            size = int(scanned * TALLY.mean_size(table))
        TALLY.add_table(table, read_units=read_units(size, consistent and "IndexName" not in body),
                        items_read=scanned)


def _count_dynamodb(operation: str, body: dict[str, Any], answer: dict[str, Any] | None,
                    touched: list[tuple[str, DynamoItem, DynamoItem | None]], befores: list[DynamoItem | None],
                    store: Store) -> None:
    if operation in WRITES:
        _count_writes(operation, touched, befores, store)
    elif answer is not None:
        _count_reads(operation, body, answer)


def _sqs_operation(environ: dict[str, Any], body: bytes) -> str:
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    if target:
        return target.rpartition(".")[2]
    from urllib.parse import parse_qs

    form = parse_qs(body.decode(errors="replace")) if body else {}
    query = parse_qs(environ.get("QUERY_STRING", ""))
    return (form.get("Action") or query.get("Action") or ["Unknown"])[0]


def _s3_class(environ: dict[str, Any]) -> str:
    method = environ.get("REQUEST_METHOD", "GET")
    if method == "DELETE":
        return "DELETE"
    if method in ("GET", "HEAD"):
        path = environ.get("PATH_INFO", "/").strip("/")
        return "LIST" if "/" not in path else "GET"
    return "PUT"


class Counting:
    """WSGI around moto: serves `/_drec/usage` and counts every other request it passes on."""

    def __init__(self, app: Callable[..., Iterable[bytes]]) -> None:
        self.app = app
        self.store = Store()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == USAGE_PATH:
            return self._answer(environ, start_response)
        if not ENABLED or environ.get(SKIP_HEADER) == "skip":
            return self.app(environ, start_response)
        service = service_of(environ)
        if service not in ("dynamodb", "sqs", "s3"):
            return self.app(environ, start_response)
        body = read_body(environ)
        status: list[str] = []

        def noting(line: str, headers: Any, exc_info: Any = None) -> Any:
            status.append(line)
            return start_response(line, headers, exc_info)

        if service == "dynamodb":
            return self._dynamodb(environ, body, noting, status)
        response = list(self.app(environ, noting))
        with TALLY.lock:
            if service == "sqs":
                self._sqs(environ, body, b"".join(response))
            else:
                kind = _s3_class(environ)
                TALLY.add_request("s3", kind)
                if kind == "PUT":
                    TALLY.extra["s3_bytes_put"] += len(body)
        return response

    def _dynamodb(self, environ: dict[str, Any], body: bytes, start_response: Callable[..., Any],
                  status: list[str]) -> Iterable[bytes]:
        started = time.perf_counter()
        operation = environ.get("HTTP_X_AMZ_TARGET", "").rpartition(".")[2]
        try:
            request = request_json(environ, body)
            touched = _writes_of(operation, request, self.store) if operation in WRITES else []
        except (ValueError, KeyError, TypeError, AttributeError):
            request, touched = {}, []
        befores = [self.store.item(table, key) for table, key, _ in touched]
        before_call = time.perf_counter()
        response = list(self.app(environ, start_response))
        after_call = time.perf_counter()
        ok = bool(status) and status[-1].startswith("2")
        text = b"".join(response)
        failed_condition = not ok and (b"ConditionalCheckFailed" in text or b"TransactionCanceled" in text)
        with TALLY.lock:
            TALLY.add_request("dynamodb", operation)
            if ok or failed_condition:
                try:
                    answer = json.loads(text) if ok and operation not in WRITES else None
                    _count_dynamodb(operation, request, answer, touched, befores, self.store)
                except (ValueError, KeyError, TypeError, AttributeError):
                    TALLY.add_request("dynamodb", f"{operation} (not measured)")
            TALLY.extra["accounting_s"] += (before_call - started) + (time.perf_counter() - after_call)
        return response

    def _sqs(self, environ: dict[str, Any], body: bytes, answer: bytes) -> None:
        operation = _sqs_operation(environ, body)
        if operation == "ReceiveMessage" and b"Message" not in answer.replace(b"Messages\": []", b""):
            TALLY.add_request("sqs", "ReceiveMessage (empty)")
            return
        chunks = max(1, math.ceil(len(body) / SQS_CHUNK_BYTES)) if operation.startswith("SendMessage") else 1
        TALLY.add_request("sqs", operation, chunks)

    def _answer(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("REQUEST_METHOD") == "POST":
            with TALLY.lock:
                TALLY.reset()
        payload = json.dumps({**TALLY.snapshot(), "counting": ENABLED}).encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))])
        return [payload]


# --- Lambda handlers and API calls, per process -------------------------------------------------


def usage_dir() -> Path:
    return Path(os.environ.get("DREC_STACK_DIR", ".stack")) / "usage"


class Invocations:
    """Calls and durations per handler, written to `<stack dir>/usage/<name>.json` every second."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.lock = threading.Lock()
        self.calls: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
        self.thread: threading.Thread | None = None

    def record(self, handler: str, seconds: float, items: int = 0) -> None:
        if not CALLS_ENABLED:
            return
        with self.lock:
            calls = self.calls[handler]
            calls["invocations"] += 1
            calls["seconds"] += seconds
            calls["billed_ms"] += max(1, math.ceil(seconds * 1000))  # Lambda bills each call by the ms
            calls["items"] += items
        if self.thread is None:
            self.start()

    def snapshot(self) -> dict[str, dict[str, float]]:
        with self.lock:
            return {h: dict(v) for h, v in self.calls.items()}

    def write(self) -> None:
        folder = usage_dir()
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f".{self.name}.json.tmp"
        tmp.write_text(json.dumps({"at": time.time(), "pid": os.getpid(), "handlers": self.snapshot()}))
        os.replace(tmp, folder / f"{self.name}.json")

    def start(self) -> None:
        with self.lock:
            if self.thread is not None:
                return
            self.thread = threading.Thread(target=self._keep_writing, name=f"usage:{self.name}", daemon=True)
        self.thread.start()

    def _keep_writing(self) -> None:
        while True:
            time.sleep(1.0)
            try:
                self.write()
            except OSError:
                pass  # the data folder went away (a stack being removed): nothing to keep


def read_invocations(stack_dir: Path, name: str) -> dict[str, dict[str, float]]:
    path = stack_dir / "usage" / f"{name}.json"
    if not path.exists():
        return {}
    handlers: dict[str, dict[str, float]] = json.loads(path.read_text())["handlers"]
    return handlers
