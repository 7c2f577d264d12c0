"""The emulator's durability: a write-ahead journal of mutating requests and consistent snapshots.

moto keeps everything in memory. The emulator (`infra.emulator`) makes what it
acknowledged survive a `kill -9`:

- **Journal.** Every DynamoDB, S3 or SSM parameter request that changes state and succeeded is appended
  to `journal-<generation>.log` (one JSON line: method, path, query, headers, body) and
  written to the operating system *before* the answer leaves. A process killed at any
  point has either not answered (the client retries) or has the line on disk.
  `DREC_JOURNAL_FSYNC=1` also fsyncs each line, for a machine that loses power.
- **Snapshot.** A compaction writes every table (DynamoDB JSON, one item a line), every
  object (content-addressed blobs, an index per generation) and every SSM parameter's latest
  version (`parameters.jsonl`) while no write is served, so
  it is one consistent cut, then starts the next generation's empty journal and only then
  points `CURRENT` at the new generation. A crash in the middle leaves the previous
  generation and its journal whole.
- **Recovery.** On start: load the snapshot `CURRENT` names, replay its journal in order
  through moto itself (a torn last line, impossible for a whole `write`, is skipped),
  compact, and only then serve.

SSM parameters keep their name, type, value, key id, description, data type, tier, version
number, labels and tags; earlier versions are not kept (`GetParameterHistory` starts again at
the latest), nor is SSM state other than parameters (documents, commands: the project has none).
**The snapshot and the journal hold SecureString values in plain text** on the developer's disk
(files mode 0600): moto's "KMS" only prefixes the value, so there is nothing to keep encrypted
locally. On AWS the value is encrypted with KMS and none of this runs.

SQS messages are not journaled: every stage of the pipeline is recorded in DynamoDB and
the scheduled upkeep (`chalicelib.services.maintenance`) sends again what waits with no
message, and every handler is idempotent.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import shutil
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from moto.core.models import DEFAULT_ACCOUNT_ID

# DynamoDB operations that change nothing: everything else is journaled.
DYNAMODB_READS = frozenset({
    "GetItem", "BatchGetItem", "Query", "Scan", "TransactGetItems", "DescribeTable", "ListTables",
    "DescribeTimeToLive", "ListTagsOfResource", "DescribeContinuousBackups", "DescribeEndpoints",
    "DescribeLimits", "ListGlobalTables", "ListBackups", "DescribeKinesisStreamingDestination",
})
S3_WRITES = frozenset({"PUT", "POST", "DELETE"})
# SSM operations that change a parameter: the rest of SSM's hundred-odd operations read, or touch
# state this project neither uses nor snapshots.
SSM_WRITES = frozenset({
    "PutParameter", "DeleteParameter", "DeleteParameters", "LabelParameterVersion", "UnlabelParameterVersion",
    "AddTagsToResource", "RemoveTagsFromResource",
})
PARAMETERS = "parameters.jsonl"
# Headers that describe the connection, not the request.
HOP_BY_HOP = frozenset({"HTTP_CONNECTION", "HTTP_TRANSFER_ENCODING", "HTTP_CONTENT_LENGTH", "HTTP_EXPECT",
                        "HTTP_KEEP_ALIVE"})

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def service_of(environ: dict[str, Any]) -> str:
    """Which AWS service a request is for, from its target header or its SigV4 credential scope."""
    target = environ.get("HTTP_X_AMZ_TARGET", "")
    if target.startswith("DynamoDB"):
        return "dynamodb"
    if target.startswith("AmazonSQS"):
        return "sqs"
    if target.startswith("AmazonSSM"):
        return "ssm"
    scope = environ.get("HTTP_AUTHORIZATION", "") or environ.get("QUERY_STRING", "")
    for service in ("s3", "sqs", "dynamodb"):
        if f"/{service}/aws4_request" in scope or f"%2F{service}%2Faws4_request" in scope:
            return service
    return "other"


def changes_state(environ: dict[str, Any], service: str) -> bool:
    """Whether a request may change what a snapshot holds: from its target header or method, never its body."""
    if service == "dynamodb":
        return environ.get("HTTP_X_AMZ_TARGET", "").rpartition(".")[2] not in DYNAMODB_READS
    if service == "ssm":
        return environ.get("HTTP_X_AMZ_TARGET", "").rpartition(".")[2] in SSM_WRITES
    return service == "s3" and environ.get("REQUEST_METHOD", "GET") in S3_WRITES


def read_body(environ: dict[str, Any]) -> bytes:
    """The whole request body, left readable again for the application."""
    stream = environ["wsgi.input"]
    length = environ.get("CONTENT_LENGTH")
    body = stream.read(int(length)) if length else (stream.read() if environ.get("wsgi.input_terminated") else b"")
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))
    return body


def request_json(environ: dict[str, Any], body: bytes) -> dict[str, Any]:
    """A JSON request body as a dict ({} when it is not one), parsed once per request for whoever
    reads it (the journal's neighbours: index maps, usage tally)."""
    cached = environ.get("drec.request_json")
    if cached is None:
        try:
            cached = json.loads(body) if body else {}
        except ValueError:
            cached = {}
        if not isinstance(cached, dict):
            cached = {}
        environ["drec.request_json"] = cached
    return cached  # type: ignore[no-any-return]


def entry(environ: dict[str, Any], body: bytes) -> bytes:
    headers = {k: v for k, v in environ.items() if k.startswith("HTTP_") and k not in HOP_BY_HOP}
    if environ.get("CONTENT_TYPE"):
        headers["CONTENT_TYPE"] = environ["CONTENT_TYPE"]
    record = {"method": environ.get("REQUEST_METHOD", "GET"), "path": environ.get("PATH_INFO", "/"),
              "query": environ.get("QUERY_STRING", ""), "headers": headers,
              "body": base64.b64encode(body).decode()}
    return (json.dumps(record, separators=(",", ":")) + "\n").encode()


def replay_one(app: WsgiApp, line: bytes) -> int:
    """Apply one journaled request to moto; its HTTP status."""
    record = json.loads(line)
    body = base64.b64decode(record["body"])
    environ: dict[str, Any] = {
        "REQUEST_METHOD": record["method"], "PATH_INFO": record["path"], "QUERY_STRING": record["query"],
        "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "0", "SERVER_PROTOCOL": "HTTP/1.1", "SCRIPT_NAME": "",
        "wsgi.version": (1, 0), "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(body),
        "wsgi.errors": io.StringIO(), "wsgi.multithread": False, "wsgi.multiprocess": False,
        "wsgi.run_once": False, "CONTENT_LENGTH": str(len(body)),
    }
    headers = dict(record["headers"])
    if "CONTENT_TYPE" in headers:
        environ["CONTENT_TYPE"] = headers.pop("CONTENT_TYPE")
    environ.update(headers)
    status: list[str] = []

    def start_response(line: str, _headers: Any, _exc: Any = None) -> Callable[[bytes], None]:
        status.append(line)
        return lambda _data: None

    for _ in app(environ, start_response):
        pass
    return int(status[0].split()[0]) if status else 500


class Journal:
    """One data folder: `CURRENT`, `gen-<n>/` snapshots, `journal-<n>.log`, `blobs/` of objects."""

    def __init__(self, folder: Path, fsync: bool = False) -> None:
        self.folder = folder
        self.fsync = fsync
        self.folder.mkdir(parents=True, exist_ok=True)
        self.generation = int((folder / "CURRENT").read_text()) if (folder / "CURRENT").exists() else 0
        self.fd: int | None = None
        self.appended = 0
        self.bytes = 0
        self.append_lock = threading.Lock()

    @property
    def path(self) -> Path:
        return self.folder / f"journal-{self.generation}.log"

    def open(self) -> None:
        self.fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        self.bytes = os.fstat(self.fd).st_size

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def append(self, line: bytes) -> None:
        """Hand one line to the operating system (one `write`: whole or not at all)."""
        assert self.fd is not None, "journal not open"
        with self.append_lock:
            view = memoryview(line)
            while view:
                view = view[os.write(self.fd, view):]
            if self.fsync:
                os.fsync(self.fd)
            self.appended += 1
            self.bytes += len(line)

    def lines(self) -> Iterator[bytes]:
        if not self.path.exists():
            return
        with open(self.path, "rb") as journal:
            for line in journal:
                if line.endswith(b"\n"):
                    yield line

    # --- snapshots -------------------------------------------------------------------

    def load(self, region: str, prefix: str) -> dict[str, int]:
        """Put the CURRENT snapshot's items and objects into moto (the tables and buckets exist)."""
        gen = self.folder / f"gen-{self.generation}"
        if (self.folder / "CURRENT").exists():
            return _load_generation(gen, self.folder / "blobs", region)
        legacy = self.folder.parent / "snapshot"  # the table-by-table snapshots of earlier releases
        return _load_legacy(legacy, region, prefix) if legacy.exists() else {}

    def compact(self, region: str) -> dict[str, int]:
        """Write a snapshot of everything (the caller holds every write lock) and start a new journal."""
        following = self.generation + 1
        gen = self.folder / f"gen-{following}"
        shutil.rmtree(gen, ignore_errors=True)
        counts = _dump(gen, self.folder / "blobs", region)
        old_journal, old_gen = self.path, self.folder / f"gen-{self.generation}"
        self.close()
        self.generation = following
        self.open()
        _write_atomic(self.folder / "CURRENT", str(following).encode())
        old_journal.unlink(missing_ok=True)
        shutil.rmtree(old_gen, ignore_errors=True)
        self.appended = 0
        _collect_blobs(self.folder / "blobs", gen)
        return counts


def _backends(region: str) -> tuple[Any, Any]:
    from moto.dynamodb.models import dynamodb_backends
    from moto.s3.models import s3_backends

    return dynamodb_backends[DEFAULT_ACCOUNT_ID][region], s3_backends[DEFAULT_ACCOUNT_ID]["aws"]


def _write_atomic(path: Path, data: bytes, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.unlink(missing_ok=True)  # a leftover of a crash would keep its own mode
    with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode), "wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, path)


def _dump(gen: Path, blobs: Path, region: str) -> dict[str, int]:
    dynamodb, s3 = _backends(region)
    counts: dict[str, int] = {}
    (gen / "tables").mkdir(parents=True, exist_ok=True)
    for name, table in list(dynamodb.tables.items()):
        lines = [json.dumps(item.to_json()["Attributes"], sort_keys=True) for item in table.all_items()]
        _write_atomic(gen / "tables" / f"{name}.jsonl", ("\n".join(lines) + "\n" if lines else "").encode())
        counts[name] = len(lines)
    blobs.mkdir(parents=True, exist_ok=True)
    for name, bucket in list(s3.buckets.items()):
        index = {}
        for key in bucket.keys.values():
            if not hasattr(key, "value"):
                continue  # a delete marker
            value = key.value
            digest = hashlib.sha256(value).hexdigest()
            if not (blobs / digest).exists():
                _write_atomic(blobs / digest, value)
            index[key.name] = {"blob": digest, "metadata": dict(key.metadata)}
        _write_atomic(gen / "objects" / f"{name}.json", json.dumps(index, sort_keys=True).encode())
        counts[f"s3:{name}"] = len(index)
    counts["ssm:parameters"] = _dump_parameters(gen / PARAMETERS, region)
    return counts


def _collect_blobs(blobs: Path, gen: Path) -> None:
    """Remove object bodies no longer named by the current snapshot."""
    kept: set[str] = set()
    for index in (gen / "objects").glob("*.json"):
        kept |= {obj["blob"] for obj in json.loads(index.read_text()).values()}
    for blob in blobs.iterdir():
        if blob.name not in kept:
            blob.unlink(missing_ok=True)


def _load_generation(gen: Path, blobs: Path, region: str) -> dict[str, int]:
    dynamodb, s3 = _backends(region)
    counts: dict[str, int] = {}
    for path in sorted((gen / "tables").glob("*.jsonl")):
        name = path.name[: -len(".jsonl")]
        if name not in dynamodb.tables:
            continue  # a table this release no longer has
        counts[name] = _put_items(dynamodb, name, path)
    for path in sorted((gen / "objects").glob("*.json")):
        name = path.name[: -len(".json")]
        if name not in s3.buckets:
            continue
        index = json.loads(path.read_text())
        for key, obj in index.items():
            stored = s3.put_object(name, key, (blobs / obj["blob"]).read_bytes(), disable_notification=True)
            stored.set_metadata(obj["metadata"])
        counts[f"s3:{name}"] = len(index)
    if (gen / PARAMETERS).exists():  # generations written before parameters were kept have none
        counts["ssm:parameters"] = _load_parameters(gen / PARAMETERS, region)
    return counts


def _load_legacy(folder: Path, region: str, prefix: str) -> dict[str, int]:
    """Snapshots of earlier releases: `tables/<logical>.jsonl`, `objects/<logical>.index.json`."""
    from .resources import physical

    dynamodb, s3 = _backends(region)
    counts: dict[str, int] = {}
    for path in sorted((folder / "tables").glob("*.jsonl")):
        name = physical(prefix, path.name[: -len(".jsonl")])
        if name in dynamodb.tables:
            counts[name] = _put_items(dynamodb, name, path)
    for index_path in sorted((folder / "objects").glob("*.index.json")):
        logical = index_path.name[: -len(".index.json")]
        name = physical(prefix, logical)
        if name not in s3.buckets:
            continue
        keys = json.loads(index_path.read_text())
        for key in keys:
            body = folder / "objects" / logical / key
            if body.exists():
                s3.put_object(name, key, body.read_bytes(), disable_notification=True)
        counts[f"s3:{name}"] = len(keys)
    return counts


def _put_items(dynamodb: Any, name: str, path: Path) -> int:
    count = 0
    with open(path) as lines:
        for line in lines:
            if line.strip():
                dynamodb.put_item(name, json.loads(line))
                count += 1
    return count


def _ssm_backend(region: str) -> Any:
    from moto.ssm.models import ssm_backends

    return ssm_backends[DEFAULT_ACCOUNT_ID][region]


def _dump_parameters(path: Path, region: str) -> int:
    """Each parameter's latest version, value decrypted, one JSON line each; readable by the owner only."""
    ssm = _ssm_backend(region)
    tags = ssm._resource_tags.get("Parameter", {})
    lines = []
    for name, versions in list(ssm._parameters.items()):
        if not versions or name.startswith("/aws/"):
            continue  # an empty slot of moto's defaultdict, or moto's built-in public parameters
        latest = versions[-1]
        value = latest.decrypt(latest.value)
        lines.append(json.dumps({
            "name": name, "type": latest.parameter_type, "value": latest.value if value is None else value,
            "key_id": latest.keyid, "description": latest.description, "allowed_pattern": latest.allowed_pattern,
            "data_type": latest.data_type, "tier": latest.tier, "policies": latest.policies,
            "version": latest.version, "labels": list(latest.labels),
            "last_modified": latest.last_modified_date.isoformat(), "tags": dict(tags.get(name, {})),
        }, sort_keys=True))
    _write_atomic(path, "".join(line + "\n" for line in lines).encode(), mode=0o600)
    return len(lines)


def _load_parameters(path: Path, region: str) -> int:
    import datetime

    from moto.ssm.models import Parameter

    ssm = _ssm_backend(region)
    count = 0
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        saved = json.loads(line)
        # Built directly rather than through put_parameter, so the version number carries on.
        ssm._parameters[saved["name"]] = [Parameter(  # type: ignore[abstract]
            account_id=DEFAULT_ACCOUNT_ID, name=saved["name"], value=saved["value"], parameter_type=saved["type"],
            description=saved["description"], allowed_pattern=saved["allowed_pattern"], keyid=saved["key_id"],
            last_modified_date=datetime.datetime.fromisoformat(saved["last_modified"]), version=saved["version"],
            data_type=saved["data_type"], labels=saved["labels"], tier=saved["tier"], policies=saved["policies"])]
        if saved["tags"]:
            ssm._resource_tags["Parameter"][saved["name"]] = dict(saved["tags"])
        count += 1
    return count
