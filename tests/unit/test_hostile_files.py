"""Hostile CSV files: every one yields a report naming the line, none raises, none is read whole."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.config import queue_name
from chalicelib.services import uploads
from chalicelib.services.text_lines import MAX_LINE_BYTES, FileStopped, text_lines
from tests.conftest import Api, pump, registered_device
from tests.fakes.world import World

BUCKET = "drec-test-uploads"
HEADER = "device_id,period_start,period_end,energy_wh\n"


def _row(device_id: str, hour: int, energy: str = "40") -> str:
    return f"{device_id},2026-10-14T{hour:02d}:00:00Z,2026-10-14T{hour + 1:02d}:00:00Z,{energy}\n"


def hostile_files(device_id: str) -> dict[str, tuple[bytes, int, str]]:
    """name -> (bytes, line the first error names, field it names)."""
    good = _row(device_id, 8)
    return {
        "no-newline-5mb": (b"x" * 5_000_000, 1, "file"),
        "quoted-200k": ((HEADER + good + f'{device_id},"' + "a" * 200_000 + '",x,1\n').encode(), 3, "file"),
        "quote-left-open": ((HEADER + good + f'{device_id},"' + ("a" * 99 + "\n") * 2_000).encode(), 3, "file"),
        "energy-5001-digits": ((HEADER + good + _row(device_id, 9, "9" * 5001)).encode(), 3, "energy_wh"),
        "not-utf8": ((HEADER + good).encode() + b"\xff\xfe,\x00\n", 3, "file"),
        "binary": (bytes(range(256)) * 64, 1, "header"),
        "empty": (b"", 1, "header"),
        "only-blank-lines": (b"\n\r\n\n", 1, "header"),
        "nul-in-header": (HEADER.replace(",", "\x00").encode(), 1, "header"),
        "malformed-quoting": ((HEADER + f'{device_id},"2026"x,y,1\n' + good).encode(), 2, "row"),
        "lone-carriage-returns": ((HEADER + good).replace("\n", "\r").encode(), 1, "header"),
        "header-of-30000-columns": (("c," * 30_000 + "\n").encode(), 1, "header"),
    }


# -- the line splitter -----------------------------------------------------------------------
@settings(max_examples=200, deadline=None)
@given(text=st.text(alphabet=st.sampled_from("ab,\"\n\r\u00e9\u20ac\U0001f600"), max_size=300),
       size=st.integers(1, 17), bom=st.booleans())
def test_lines_are_the_text_split_at_newlines_however_the_bytes_are_chunked(text: str, size: int, bom: bool) -> None:
    data = (b"\xef\xbb\xbf" if bom else b"") + text.encode()
    chunks = [data[i:i + size] for i in range(0, len(data), size)]
    lines = list(text_lines(chunks))
    assert "".join(lines) == text
    assert all(line.endswith("\n") for line in lines[:-1]) and all("\n" not in line[:-1] for line in lines)


def test_a_line_without_end_is_refused_after_the_limit_without_reading_further() -> None:
    read = 0

    def endless() -> Iterator[bytes]:
        nonlocal read
        for _ in range(100):  # 100 MB, were it all read
            read += 1
            yield b"y" * (1 << 20)

    with pytest.raises(FileStopped) as stopped:
        list(text_lines(endless()))
    # THEN it stopped inside the first chunk, naming the line and the limit
    assert read == 1 and stopped.value.line == 1 and f"{MAX_LINE_BYTES} bytes" in stopped.value.message


def test_the_over_long_line_is_named_after_good_lines() -> None:
    lines = text_lines([b"a\nb\n", b"c" * (MAX_LINE_BYTES + 1), b"\nd\n"])
    assert next(lines) == "a\n" and next(lines) == "b\n"
    with pytest.raises(FileStopped) as stopped:
        next(lines)
    assert stopped.value.line == 3


def test_bytes_that_are_not_utf8_name_their_line_and_offset() -> None:
    with pytest.raises(FileStopped) as stopped:
        list(text_lines([b"ok\n\xc3", b"(\n"]))
    assert stopped.value.line == 2 and "byte 3 " in stopped.value.message


# -- files through the services, on fakes ----------------------------------------------------
@pytest.mark.parametrize("name", list(hostile_files("d")))
def test_every_hostile_file_posted_gets_a_report_naming_line_and_field(name: str) -> None:
    world = World()
    source, _, device = world.registered_device()
    body, line, field = hostile_files(device["device_id"])[name]
    report = uploads.ingest_posted(world.intake(), source, world.uploads_bucket, f"{name}.csv", body)
    assert report["error_count"] >= 1
    first = report["errors"][0]
    assert (first["line"], first["error"]["field"], first["error"]["code"]) == (line, field, "bad_input"), first
    stored = json.loads(world.uploads_bucket.get(f"reports/{source.id}/{name}.json") or b"{}")
    assert stored["errors"] == report["errors"]
    # AND a good row before the trouble is still queued
    if body.startswith((HEADER + _row(device["device_id"], 8)).encode()):
        assert report["queued"] == 1


def test_an_over_long_line_stops_the_file_but_ordinary_bad_rows_reject_only_themselves() -> None:
    world = World()
    source, _, device = world.registered_device()
    d = device["device_id"]
    text = HEADER + _row(d, 6, "abc") + _row(d, 7) + _row(d, 8, "9" * 30) + "z" * (MAX_LINE_BYTES + 5) + "\n" + \
        _row(d, 9)
    report = uploads.ingest_lines(world.intake(), source, text_lines([text.encode()]))
    assert (report["rows"], report["queued"], report["error_count"]) == (3, 1, 3)
    assert [(e["line"], e["error"]["field"]) for e in report["errors"]] == [
        (2, "energy_wh"), (4, "energy_wh"), (5, "file")]
    assert "read up to this line" in report["errors"][-1]["error"]["message"]


def test_a_hostile_dropped_file_is_reported_once_and_never_redelivered() -> None:
    world = World()
    source, _, device = world.registered_device()
    bucket = world.uploads_bucket
    for name, (body, line, field) in hostile_files(device["device_id"]).items():
        key = f"incoming/{source.id}/{name}.csv"
        uploads.announce_upload(world.announcements, bucket, source, f"{name}.csv", 900)
        bucket.put(key, body)
        notified = uploads.Notified("b", key, bucket.etag(key), datetime.now(UTC))
        # WHEN the notification is handled THEN a report is written, no exception
        report = uploads.ingest_object(world.intake(), world.registry, world.announcements, bucket, notified)
        assert report is not None and report["errors"][0]["line"] == line, name
        assert report["errors"][0]["error"]["field"] == field, name
        assert json.loads(bucket.get(f"reports/{source.id}/{name}.json") or b"{}")["etag"] == bucket.etag(key)
        # AND the same notification again is done: nothing re-read, nothing re-reported
        assert uploads.ingest_object(world.intake(), world.registry, world.announcements, bucket, notified) is None


# -- through the handlers and the API (moto in process) ------------------------------------
def test_hostile_drops_through_the_uploads_handler_leave_reports_and_an_empty_queue(api: Api, aws: Any) -> None:
    source, _, device = registered_device(api)
    s3 = aws.client("s3")
    files = hostile_files(device["device_id"])
    for name, (body, _, _) in files.items():
        status, announced = api.post(f"/uploads/url?name={name}.csv", key=source["api_key"])
        assert status == 201, announced
        s3.put_object(Bucket=BUCKET, Key=announced["key"], Body=body)
    # WHEN the notifications are delivered THEN the handler returns normally for each (pump raises otherwise)
    pump(aws)
    for name, (_, line, field) in files.items():
        report = json.loads(aws.uploads_bucket.get(f"reports/{source['source_id']}/{name}.json") or b"{}")
        assert (report["errors"][0]["line"], report["errors"][0]["error"]["field"]) == (line, field), name
    sqs = aws.client("sqs")
    url = sqs.get_queue_url(QueueName=queue_name("uploads"))["QueueUrl"]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attributes["ApproximateNumberOfMessages"] == "0"
    assert attributes["ApproximateNumberOfMessagesNotVisible"] == "0"


def test_post_uploads_answers_every_hostile_file_with_a_report_never_5xx(api: Api, aws: Any) -> None:
    source, _, device = registered_device(api)
    for name, (body, line, field) in hostile_files(device["device_id"]).items():
        response = api.client.http.post(f"/uploads?name={name}.csv", body=body,
                                        headers={"Content-Type": "text/csv", "X-Api-Key": source["api_key"]})
        assert response.status_code == 200, (name, response.body[:300])
        report = json.loads(response.body)
        assert (report["errors"][0]["line"], report["errors"][0]["error"]["field"]) == (line, field), name
