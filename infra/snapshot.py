"""Keep the emulator's data across restarts: tables and objects saved to disk, restored on start.

moto keeps everything in memory, so the stack saves every table (DynamoDB JSON, one item
a line) and every object to the stack's data folder when it stops and every
`interval` seconds while it runs, and loads them back before anything else starts.
Writes go to a temporary file first and are renamed, so a crash never leaves half a file.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path
from typing import Any

import boto3

from .resources import RESOURCES, physical


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


class Snapshots:
    def __init__(self, folder: Path, prefix: str, session: boto3.session.Session | None = None) -> None:
        self.folder = folder
        self.prefix = prefix
        session = session or boto3.session.Session()
        self.dynamodb = session.client("dynamodb")
        self.s3 = session.client("s3")
        self.lock = threading.Lock()

    def save(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        with self.lock:
            for table in RESOURCES.tables:
                lines = []
                for page in self.dynamodb.get_paginator("scan").paginate(
                        TableName=physical(self.prefix, table.logical)):
                    lines += [json.dumps(item, sort_keys=True) for item in page.get("Items", [])]
                _write_atomic(self.folder / "tables" / f"{table.logical}.jsonl",
                              ("\n".join(lines) + "\n" if lines else "").encode())
                counts[table.logical] = len(lines)
            for bucket in RESOURCES.buckets:
                counts[f"s3:{bucket.logical}"] = self._save_bucket(bucket.logical)
        return counts

    def _save_bucket(self, logical: str) -> int:
        root = self.folder / "objects" / logical
        index_path = root.parent / f"{logical}.index.json"
        index: dict[str, str] = json.loads(index_path.read_text()) if index_path.exists() else {}
        seen: dict[str, str] = {}
        name = physical(self.prefix, logical)
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=name):
            for obj in page.get("Contents", []):
                seen[obj["Key"]] = obj["ETag"]
                if index.get(obj["Key"]) != obj["ETag"]:
                    body = self.s3.get_object(Bucket=name, Key=obj["Key"])["Body"].read()
                    _write_atomic(root / obj["Key"], body)
        _write_atomic(index_path, json.dumps(seen, sort_keys=True).encode())
        return len(seen)

    def restore(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for table in RESOURCES.tables:
            path = self.folder / "tables" / f"{table.logical}.jsonl"
            if not path.exists():
                continue
            items = [json.loads(line) for line in path.read_text().splitlines() if line]
            name = physical(self.prefix, table.logical)
            for start in range(0, len(items), 25):
                pending: Any = {name: [{"PutRequest": {"Item": i}} for i in items[start:start + 25]]}
                while pending:
                    pending = self.dynamodb.batch_write_item(RequestItems=pending).get("UnprocessedItems")
            counts[table.logical] = len(items)
        for bucket in RESOURCES.buckets:
            index_path = self.folder / "objects" / f"{bucket.logical}.index.json"
            if not index_path.exists():
                continue
            name = physical(self.prefix, bucket.logical)
            for object_key in json.loads(index_path.read_text()):
                path = self.folder / "objects" / bucket.logical / object_key
                if path.exists():
                    self.s3.put_object(Bucket=name, Key=object_key, Body=path.read_bytes())
            counts[f"s3:{bucket.logical}"] = len(json.loads(index_path.read_text()))
        return counts
