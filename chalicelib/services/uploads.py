"""CSV files of readings: dropped in the uploads bucket or posted to `POST /uploads`.

The file is streamed line by line and checked row by row: a bad row is reported with
its line number and field, and every good row is still queued. Rows go to the intake
in chunks, so a file of a million rows never sits whole in memory.

A dropped file counts as its source's only if the source announced that exact key with
`POST /uploads/url` (which hands out a presigned PUT URL) and the object arrived while the
announcement held: the prefix `incoming/<source_id>/` names a source but proves nothing,
since source ids are public.
"""

from __future__ import annotations

import csv
import json
import logging
import re
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple
from urllib.parse import unquote_plus

from ..domain.errors import BadInput, DomainError, Forbidden
from ..domain.model import Principal, PrincipalKind
from ..domain.stores import ObjectGone
from ..domain.time import iso, now_utc
from .intake import Intake
from .ports.buckets import Bucket
from .ports.registry import RegistryStore, UploadAnnouncements

log = logging.getLogger("drec.uploads")

REQUIRED = ("device_id", "period_start", "period_end", "energy_wh")
OPTIONAL = ("external_id", "signature")
HEADER = "device_id,period_start,period_end,energy_wh[,external_id][,signature]"
CHUNK_ROWS = 1000
# A report lists this many row errors in full; `error_count` counts them all.
MAX_LISTED_ERRORS = 100_000
INCOMING = re.compile(r"^incoming/(?P<source_id>[^/]+)/(?P<name>[^/]+)\.csv$")
NAME = re.compile(r"[A-Za-z0-9._-]{1,120}")
# Presigned URLs live at most this long: a leaked URL is a write permission for its lifetime.
MAX_URL_TTL_S = 900
# S3 checks a presigned URL when the PUT starts; eventTime is when it completed, so a large
# file started in time may complete a little after the announcement expired.
COMPLETION_GRACE_S = 300
# The API (announced_at) and S3 (eventTime) read different clocks; announced_at is also
# rounded down to the second, which adds up to one more second of slack.
CLOCK_SKEW_S = 2
REPORT_URL_TTL_S = 3600


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
        return _file_error(f"the file is empty; the first line must be the header {HEADER}")
    columns = [c.strip().lower() for c in header]
    if len(columns) == 1 and any(d in columns[0] for d in (";", "\t", "|")):
        delimiter = next(d for d in (";", "\t", "|") if d in columns[0])
        return _file_error(f"the file is delimited by {delimiter!r}; use commas (',') between columns")
    missing = [c for c in REQUIRED if c not in columns]
    if missing:
        return _file_error(f"the header lacks column(s) {', '.join(missing)}; expected {HEADER}")
    unknown = [c for c in columns if c not in REQUIRED + OPTIONAL]
    if unknown:
        return _file_error(f"unknown column(s) {', '.join(unknown)}; the columns are {HEADER}")
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
        for optional in OPTIONAL:  # an empty cell means "none", not an empty value
            if not raw.get(optional):
                raw.pop(optional, None)
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


class Notified(NamedTuple):
    """One object-created record of an S3 notification."""

    bucket: str
    key: str
    etag: str | None
    event_time: datetime | None


def _parse_time(text: Any) -> datetime | None:
    try:
        moment = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _previous_report(bucket: Bucket, target: str) -> dict[str, Any]:
    try:
        previous = json.loads(bucket.get(target) or b"{}")
    except ValueError:
        return {}  # not a report this handler wrote: overwrite it
    return previous if isinstance(previous, dict) else {}


def refusal(announcement: dict[str, Any] | None, key: str, source_id: str, arrived_at: datetime) -> str | None:
    """Why an object that arrived at `arrived_at` is not its source's upload, or None when it is."""
    if announcement is None or announcement.get("source_id") != source_id:
        return (f"{key} was not announced with POST /uploads/url by source {source_id}; ask for an upload URL "
                "with that source's API key and PUT the file to it")
    announced_at = _parse_time(announcement["announced_at"])
    expires_at = _parse_time(announcement["expires_at"])
    if announced_at and arrived_at < announced_at - timedelta(seconds=CLOCK_SKEW_S):
        return (f"{key} arrived at {iso(arrived_at)}, before it was announced at {announcement['announced_at']}; "
                "ask for a new upload URL and PUT the file again")
    if expires_at is None or arrived_at > expires_at + timedelta(seconds=COMPLETION_GRACE_S):
        return (f"the announced URL expired at {announcement['expires_at']}; {key} arrived at {iso(arrived_at)}: "
                "ask for a new upload URL and PUT the file again")
    return None


def _refused_report(message: str) -> dict[str, Any]:
    return {"rows": 0, "queued": 0, "duplicates": 0, "error_count": 1, "refused": message,
            "errors": [{"line": 0, "error": Forbidden(message, field="key").to_dict()}]}


def ingest_object(intake: Intake, registry: RegistryStore, announcements: UploadAnnouncements, bucket: Bucket,
                  notified: Notified) -> dict[str, Any] | None:
    """Handle one S3 notification of `incoming/<source_id>/<name>.csv`; None when not ours or done.

    Never raises for what is in the bucket: a refused or unreadable file gets a report, so its
    notification is deleted instead of cycling to the dead-letter queue.
    """
    key, etag = notified.key, notified.etag
    match = INCOMING.match(key)
    if not match:
        log.info("ignored %r: not incoming/<source_id>/<name>.csv", key)
        return None
    source_id, name = match["source_id"], match["name"]
    # eventTime is S3's own record of when this version was written, carried in the notification
    # (which only S3 may send to the queue). The object's LastModified is read only when the event
    # has none: it costs a request and describes whatever version is there now.
    arrived_at = notified.event_time or bucket.last_modified(key)
    if arrived_at is None:
        return None  # deleted before we got to it: there is nothing to read or report
    target = report_key(source_id, name)
    previous = _previous_report(bucket, target)
    if previous.get("etag") == etag and not previous.get("refused"):
        return None  # this very file was already ingested: a redelivered notification
    reported_arrival = _parse_time(previous.get("arrived_at", ""))
    if reported_arrival and reported_arrival > arrived_at:
        return None  # a later version is already reported; notifications may come out of order
    reason = refusal(announcements.announcement(key), key, source_id, arrived_at)
    if reason is not None:
        report = _refused_report(reason)
    elif registry.source(source_id) is None:
        report = _file_error(f"no source {source_id!r}: drop files under incoming/<your source_id>/")
    else:
        try:
            report = ingest_lines(intake, Principal(PrincipalKind.SOURCE, source_id), bucket.lines(key, etag=etag))
        except ObjectGone:
            return None  # replaced since: the new version's own notification reports it
        except UnicodeDecodeError as exc:
            report = _file_error(f"the file is not UTF-8 text (byte {exc.start}); save it as UTF-8 CSV")
    report.update({"object": key, "etag": etag, "arrived_at": iso(arrived_at)})
    bucket.put(target, json.dumps(report).encode(), "application/json")
    return report


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def s3_records(body: Any) -> Iterator[Notified]:
    """Each object-created record in an S3 notification message (keys arrive URL-encoded).

    Whatever the message holds, this yields records or nothing: a message that cannot be read
    must not make the handler raise and cycle to the dead-letter queue.
    """
    records = _mapping(body).get("Records")
    for record in records if isinstance(records, list) else []:
        s3 = _mapping(_mapping(record).get("s3"))
        obj = _mapping(s3.get("object"))
        yield Notified(str(_mapping(s3.get("bucket")).get("name", "")), unquote_plus(str(obj.get("key", ""))),
                       obj.get("eTag"), _parse_time(_mapping(record).get("eventTime", "")))


def upload_stem(name: str | None) -> str:
    """The file name without `.csv`, checked: it becomes part of an object key."""
    if not name or not NAME.fullmatch(name):
        raise BadInput("name may hold letters, digits, '.', '_' and '-' (at most 120)", field="name")
    stem = name[:-4] if name.lower().endswith(".csv") else name
    if not stem:
        raise BadInput("name needs more than the extension, e.g. day.csv", field="name")
    return stem


def announce_upload(announcements: UploadAnnouncements, bucket: Bucket, principal: Principal, name: str | None,
                    ttl_s: int, now: datetime | None = None) -> dict[str, Any]:
    """`POST /uploads/url`: a presigned PUT URL for `incoming/<source_id>/<name>.csv`, announced first."""
    if principal.kind != PrincipalKind.SOURCE:
        raise Forbidden("only a source drops files in the uploads bucket: ask for the URL with the source's "
                        "API key (accounts and the operator can send a CSV to POST /uploads)", field="X-Api-Key")
    stem = upload_stem(name)
    ttl_s = max(1, min(ttl_s, MAX_URL_TTL_S))
    # Whole seconds, so the stored times compare with the ones shown to the caller.
    announced = (now or now_utc()).astimezone(UTC).replace(microsecond=0)
    expires = announced + timedelta(seconds=ttl_s)
    key = f"incoming/{principal.id}/{stem}.csv"
    # Recorded before the URL exists: no object can arrive at this key before its announcement.
    announcements.announce(key, principal.id, iso(announced), iso(expires))
    return {"url": bucket.presigned_put(key, ttl_s), "key": key, "expires_at": iso(expires), "method": "PUT",
            "report_key": report_key(principal.id, stem),
            "report_url": bucket.presigned_get(report_key(principal.id, stem), REPORT_URL_TTL_S)}


def ingest_posted(intake: Intake, principal: Principal, bucket: Bucket, name: str, body: bytes) -> dict[str, Any]:
    """`POST /uploads`: the same checks, answered at once; file and report kept in the bucket."""
    stem = upload_stem(name)
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
