"""CSV files of readings: dropped in the uploads bucket or posted to `POST /uploads`.

The file is streamed line by line and checked row by row: a bad row is reported with
its line number and field, and every good row is still queued. Rows go to the intake
in chunks, so a file of a million rows never sits whole in memory.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Iterator
from typing import Any
from urllib.parse import unquote_plus

from ..adapters.s3 import S3Bucket
from ..domain.errors import BadInput, DomainError
from ..domain.model import Principal
from .intake import Intake

REQUIRED = ("device_id", "period_start", "period_end", "energy_wh")
OPTIONAL = ("external_id",)
CHUNK_ROWS = 1000
# A report lists this many row errors in full; `error_count` counts them all.
MAX_LISTED_ERRORS = 100_000
INCOMING = re.compile(r"^incoming/(?P<source_id>[^/]+)/(?P<name>[^/]+)\.csv$")


def _file_error(message: str) -> dict[str, Any]:
    return {"rows": 0, "queued": 0, "duplicates": 0, "error_count": 1,
            "errors": [{"line": 1, "error": BadInput(message, field="header").to_dict()}]}


def _energy(text: str) -> Any:
    text = text.strip()
    if re.fullmatch(r"[+-]?\d+", text):
        return int(text)
    return text  # left for the schema to refuse with a precise message


def ingest_lines(intake: Intake, principal: Principal, lines: Iterable[str]) -> dict[str, Any]:
    reader = csv.reader(iter(lines))
    header = next((row for row in reader if any(cell.strip() for cell in row)), None)
    if header is None:
        return _file_error("the file is empty; the first line must be the header "
                           "device_id,period_start,period_end,energy_wh[,external_id]")
    columns = [c.strip().lower() for c in header]
    if len(columns) == 1 and any(d in columns[0] for d in (";", "\t", "|")):
        delimiter = next(d for d in (";", "\t", "|") if d in columns[0])
        return _file_error(f"the file is delimited by {delimiter!r}; use commas (',') between columns")
    missing = [c for c in REQUIRED if c not in columns]
    if missing:
        return _file_error(f"the header lacks column(s) {', '.join(missing)}; expected "
                           "device_id,period_start,period_end,energy_wh[,external_id]")
    unknown = [c for c in columns if c not in REQUIRED + OPTIONAL]
    if unknown:
        return _file_error(f"unknown column(s) {', '.join(unknown)}; the columns are "
                           "device_id,period_start,period_end,energy_wh[,external_id]")
    report: dict[str, Any] = {"rows": 0, "queued": 0, "duplicates": 0, "error_count": 0, "errors": []}

    def record_error(line: int, error: DomainError) -> None:
        report["error_count"] += 1
        if len(report["errors"]) < MAX_LISTED_ERRORS:
            report["errors"].append({"line": line, "error": error.to_dict()})

    chunk: list[tuple[int, Any]] = []
    for row in _rows(reader):
        line, cells = row
        report["rows"] += 1
        if len(cells) != len(columns):
            record_error(line, BadInput(f"the row has {len(cells)} fields; the header has {len(columns)}"))
            continue
        raw = dict(zip(columns, (c.strip() for c in cells)))
        raw["energy_wh"] = _energy(raw["energy_wh"])
        if not raw.get("external_id"):
            raw.pop("external_id", None)
        chunk.append((line, raw))
        if len(chunk) >= CHUNK_ROWS:
            _submit(intake, principal, chunk, report, record_error)
            chunk = []
    if chunk:
        _submit(intake, principal, chunk, report, record_error)
    report["errors"].sort(key=lambda e: e["line"])
    return report


def _rows(reader: Any) -> Iterator[tuple[int, list[str]]]:
    for cells in reader:
        if not any(cell.strip() for cell in cells):
            continue  # blank lines carry nothing
        yield reader.line_num, cells


def _submit(intake: Intake, principal: Principal, chunk: list[tuple[int, Any]], report: dict[str, Any],
            record_error: Any) -> None:
    result = intake.submit(principal, chunk, field_prefix="")
    for line, error in result.errors:
        record_error(line, error)
    report["queued"] += result.queued
    report["duplicates"] += len(result.accepted) - result.queued


def report_key(owner_id: str, name: str) -> str:
    return f"reports/{owner_id}/{name}.json"


def ingest_object(intake: Intake, registry: Any, bucket: S3Bucket, key: str, etag: str | None) -> dict[str, Any] | None:
    """Handle one S3 notification of `incoming/<source_id>/<name>.csv`; None when not ours or done."""
    import json

    match = INCOMING.match(key)
    if not match:
        return None
    source_id, name = match["source_id"], match["name"]
    target = report_key(source_id, name)
    previous = bucket.get(target)
    if previous is not None and json.loads(previous).get("etag") == etag:
        return None  # this very file was already reported: a redelivered notification
    if registry.record("sources", source_id) is None:
        report = _file_error(f"no source {source_id!r}: drop files under incoming/<your source_id>/")
    else:
        try:
            report = ingest_lines(intake, Principal("source", source_id), bucket.lines(key))
        except UnicodeDecodeError as exc:
            report = _file_error(f"the file is not UTF-8 text (byte {exc.start}); save it as UTF-8 CSV")
    report.update({"object": key, "etag": etag})
    bucket.put(target, json.dumps(report).encode(), "application/json")
    return report


def s3_records(body: dict[str, Any]) -> Iterator[tuple[str, str, str | None]]:
    """(bucket, key, etag) of each object-created record in an S3 notification message."""
    for record in body.get("Records", []):
        s3 = record.get("s3", {})
        yield (s3.get("bucket", {}).get("name", ""), unquote_plus(s3.get("object", {}).get("key", "")),
               s3.get("object", {}).get("eTag"))


def ingest_posted(intake: Intake, principal: Principal, bucket: S3Bucket, name: str, body: bytes) -> dict[str, Any]:
    """`POST /uploads`: the same checks, answered at once; file and report kept in the bucket."""
    import json

    if not re.fullmatch(r"[A-Za-z0-9._-]{1,120}", name):
        raise BadInput("name may hold letters, digits, '.', '_' and '-' (at most 120)", field="name")
    stem = name[:-4] if name.lower().endswith(".csv") else name
    bucket.put(f"api/{principal.id}/{stem}.csv", body, "text/csv")
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        report = _file_error(f"the file is not UTF-8 text (byte {exc.start}); save it as UTF-8 CSV")
    else:
        report = ingest_lines(intake, principal, text.splitlines(keepends=True))
    report["object"] = f"api/{principal.id}/{stem}.csv"
    bucket.put(report_key(principal.id, stem), json.dumps(report).encode(), "application/json")
    return report
