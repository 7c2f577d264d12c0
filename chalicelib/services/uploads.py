"""CSV files of readings: dropped in the uploads bucket or posted to `POST /uploads`.

The file is streamed line by line and checked row by row: a bad row is reported with
its line number and field, and every good row is still queued. Rows go to the intake
in chunks, so a file of a million rows never sits whole in memory.

Whatever the bytes, reading is linear in the file's size and bounded in memory: the file is
split into lines chunk by chunk (`text_lines`), a line longer than `MAX_LINE_BYTES` or a row
(a quoted field may span lines) longer than `MAX_ROW_CHARS` stops the file at that line
without ever being held whole, and every such file gets a report instead of an exception, so
its notification is never redelivered.

A dropped file counts as its source's only if the source announced that exact key with
`POST /uploads/url` (which hands out a presigned PUT URL) and the object arrived while the
announcement held: the prefix `incoming/<source_id>/` names a source but proves nothing,
since source ids are public.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple
from urllib.parse import unquote_plus

from ..domain.errors import BadInput, DomainError, Forbidden
from ..domain.model import Principal, PrincipalKind
from ..domain.stores import ObjectGone
from ..domain.time import iso, now_utc
from ..telemetry import logger
from .intake import Intake
from .ports.buckets import Bucket
from .ports.registry import RegistryStore, UploadAnnouncements
from .text_lines import MAX_LINE_BYTES, READ_CHUNK_BYTES, FileStopped, byte_chunks, text_lines

log = logger

REQUIRED = ("device_id", "period_start", "period_end", "energy_wh")
OPTIONAL = ("external_id", "signature")
HEADER = "device_id,period_start,period_end,energy_wh[,external_id][,signature]"
EXPECTED = f"a CSV of {HEADER}"
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
# One row, however many lines its quoted fields span.
MAX_ROW_CHARS = MAX_LINE_BYTES
# energy_wh is at most 10**12 Wh: a longer cell is refused before int() spends time on it.
MAX_ENERGY_DIGITS = 20


def _file_error(message: str, line: int = 1, field: str = "header") -> dict[str, Any]:
    return {"rows": 0, "queued": 0, "duplicates": 0, "error_count": 1,
            "errors": [{"line": line, "error": BadInput(message, field=field).to_dict()}]}


def _energy(text: str) -> Any:
    text = text.strip()
    if len(text) > MAX_ENERGY_DIGITS:
        raise BadInput(f"energy_wh has {len(text)} characters; it is an integer of at most {MAX_ENERGY_DIGITS} "
                       "digits [Wh]", field="energy_wh")
    if re.fullmatch(r"[+-]?\d+", text):
        return int(text)
    return text  # left for the schema to refuse with a precise message


class _RowGuard:
    """Feeds lines to csv.reader, stopping the file at a line or a row over the limits.

    csv.reader joins the lines of a quoted field that spans lines; counting the characters fed
    since the last row came out bounds a row however its quotes fall.
    """

    def __init__(self, lines: Iterable[str]) -> None:
        self.lines = iter(lines)
        self.line = 0
        self.row_start = 1
        self.row_chars = 0

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        text = next(self.lines)
        self.line += 1
        if not self.row_chars:
            self.row_start = self.line
        self.row_chars += len(text)
        if len(text) > MAX_LINE_BYTES:
            raise FileStopped(self.line, f"line {self.line} is longer than the limit of {MAX_LINE_BYTES} "
                                         f"characters; is this a CSV of {HEADER}?")
        if self.row_chars > MAX_ROW_CHARS:
            raise FileStopped(self.row_start, f"the row starting at line {self.row_start} runs past the limit of "
                                              f"{MAX_ROW_CHARS} characters (at line {self.line}): is a quote (\") "
                                              "left open?")
        return text


class FileRefused(FileStopped):
    """The file is refused before its first row (no header, a header of other columns): nothing in it is read."""

    def __init__(self, line: int, message: str, field: str) -> None:
        super().__init__(line, message)
        self.field = field


def csv_rows(lines: Iterable[str]) -> Iterator[tuple[int, dict[str, Any] | BadInput]]:
    """(line, raw reading) for each non-blank row after the header, or (line, why the row is refused).

    The one reader of a CSV of readings, for the registry and for clients that check a file before
    sending it. Raises `FileRefused` when the header is missing or wrong, `FileStopped` where the file
    cannot be read further (the rows before it stand).
    """
    guard = _RowGuard(lines)
    reader = csv.reader(guard, strict=True)
    rows = _rows(guard, reader)
    try:
        header = next(rows, (0, None))[1]
    except FileStopped as stopped:
        raise FileRefused(stopped.line, stopped.message, "file") from stopped
    if isinstance(header, BadInput):
        raise FileRefused(1, f"the header cannot be read: {header.message}", "header")
    if header is None:
        raise FileRefused(1, f"the file is empty; the first line must be the header {HEADER}", "header")
    columns = [c.strip().lower() for c in header]
    if len(columns) == 1 and any(d in columns[0] for d in (";", "\t", "|")):
        delimiter = next(d for d in (";", "\t", "|") if d in columns[0])
        raise FileRefused(1, f"the file is delimited by {delimiter!r}; use commas (',') between columns", "header")
    missing = [c for c in REQUIRED if c not in columns]
    if missing:
        raise FileRefused(1, f"the header lacks column(s) {', '.join(missing)}; expected {HEADER}", "header")
    unknown = [c[:40] for c in columns if c not in REQUIRED + OPTIONAL]
    if unknown:
        more = f" and {len(unknown) - 10} more" if len(unknown) > 10 else ""
        raise FileRefused(1, f"unknown column(s) {', '.join(unknown[:10])}{more}; the columns are {HEADER}",
                          "header")
    for line, cells in rows:
        if isinstance(cells, BadInput):
            yield line, cells
            continue
        if len(cells) != len(columns):
            yield line, BadInput(f"the row has {len(cells)} fields; the header has {len(columns)}")
            continue
        raw = dict(zip(columns, (c.strip() for c in cells)))
        try:
            raw["energy_wh"] = _energy(raw["energy_wh"])
        except BadInput as error:
            yield line, error
            continue
        for optional in OPTIONAL:  # an empty cell means "none", not an empty value
            if not raw.get(optional):
                raw.pop(optional, None)
        yield line, raw


def ingest_lines(intake: Intake, principal: Principal, lines: Iterable[str]) -> dict[str, Any]:
    """Check and queue the rows of a CSV file; never raises for what the file holds."""
    report: dict[str, Any] = {"rows": 0, "queued": 0, "duplicates": 0, "error_count": 0, "errors": []}

    def record_error(line: int, error: DomainError) -> None:
        report["error_count"] += 1
        if len(report["errors"]) < MAX_LISTED_ERRORS:
            report["errors"].append({"line": line, "error": error.to_dict()})

    chunk: list[tuple[int, Any]] = []
    try:
        for line, raw in csv_rows(lines):
            report["rows"] += 1
            if isinstance(raw, BadInput):
                record_error(line, raw)
                continue
            chunk.append((line, raw))
            if len(chunk) >= CHUNK_ROWS:
                _submit(intake, principal, chunk, report, record_error)
                chunk = []
    except FileRefused as refused:
        return _file_error(refused.message, refused.line, refused.field)
    except FileStopped as stopped:
        # The rows before the stop are still checked and queued: they were read whole.
        record_error(stopped.line, BadInput(f"{stopped.message}; the file was read up to this line",
                                            field="file"))
    if chunk:
        _submit(intake, principal, chunk, report, record_error)
    report["errors"].sort(key=lambda e: e["line"])
    return report


def _rows(guard: _RowGuard, reader: Any) -> Iterator[tuple[int, list[str] | BadInput]]:
    """(line, cells) of each non-blank row, or (line, error) for a row csv cannot read."""
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            # csv.reader starts afresh on the next line: only this row is lost.
            guard.row_chars = 0
            if "new-line character" in str(exc):
                hint = "lines end with a lone carriage return (\\r): end them with \\n or \\r\\n"
            else:
                hint = f"{exc}; quote a field that holds a comma, a quote or a line break, and double its quotes"
            yield guard.line, BadInput(f"the row cannot be read as CSV: {hint}", field="row")
            continue
        guard.row_chars = 0
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
            report = ingest_lines(intake, Principal(PrincipalKind.SOURCE, source_id),
                                  text_lines(bucket.chunks(key, READ_CHUNK_BYTES, etag=etag), expected=EXPECTED))
        except ObjectGone:
            return None  # replaced since: the new version's own notification reports it
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
    report = ingest_lines(intake, principal, text_lines(byte_chunks(body), expected=EXPECTED))
    report["object"] = f"api/{principal.id}/{stem}.csv"
    bucket.put(report_key(principal.id, stem), json.dumps(report).encode(), "application/json")
    return report
