"""CSV rows through the intake, on fakes: bad rows reported by line, good rows queued, files tied to sources."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from chalicelib.services import uploads
from tests.fakes.world import World


def _csv(device_id: str) -> str:
    return ("device_id,period_start,period_end,energy_wh,external_id\n"
            f"{device_id},2026-10-14T08:00:00Z,2026-10-14T09:00:00Z,40,r1\n"
            "\n"
            f"{device_id},2026-10-14T09:00:00Z,2026-10-14T10:00:00Z,12.5,r2\n"
            f"{device_id},2026-10-14T10:00:00Z,2026-10-14T11:00:00Z,45,r3\n")


def test_rows_are_checked_one_by_one_and_a_repeat_queues_nothing() -> None:
    world = World()
    source, _, device = world.registered_device()
    report = uploads.ingest_lines(world.intake(), source, _csv(device["device_id"]).splitlines(True))
    assert (report["rows"], report["queued"], report["error_count"]) == (3, 2, 1)
    assert report["errors"][0]["line"] == 4 and report["errors"][0]["error"]["field"] == "energy_wh"
    again = uploads.ingest_lines(world.intake(), source, _csv(device["device_id"]).splitlines(True))
    assert (again["queued"], again["duplicates"]) == (0, 2)
    assert len(world.readings_queue.reading_ids()) == 2


def test_file_level_problems_are_named() -> None:
    world = World()
    source, _, _ = world.registered_device()
    semicolons = uploads.ingest_lines(world.intake(), source, ["device_id;period_start;period_end;energy_wh\n"])
    assert "';'" in semicolons["errors"][0]["error"]["message"]
    missing = uploads.ingest_lines(world.intake(), source, ["device_id,period_start,energy_wh\n"])
    assert "period_end" in missing["errors"][0]["error"]["message"]
    assert "empty" in uploads.ingest_lines(world.intake(), source, [])["errors"][0]["error"]["message"]


def test_a_dropped_file_counts_only_when_its_source_announced_it_in_time() -> None:
    world = World()
    source, _, device = world.registered_device()
    bucket = world.uploads_bucket
    key = f"incoming/{source.id}/day.csv"
    # GIVEN an object written without an announcement
    bucket.put(key, _csv(device["device_id"]).encode())
    notified = uploads.Notified("b", key, bucket.etag(key), datetime.now(UTC))
    refused = uploads.ingest_object(world.intake(), world.registry, world.announcements, bucket, notified)
    assert refused is not None and "not announced" in refused["refused"] and refused["queued"] == 0
    # WHEN the source announces it and the same bytes arrive in time THEN they are ingested
    uploads.announce_upload(world.announcements, bucket, source, "day.csv", 900)
    done = uploads.ingest_object(world.intake(), world.registry, world.announcements, bucket, notified)
    assert done is not None and done["queued"] == 2
    assert json.loads(bucket.get(f"reports/{source.id}/day.json") or b"{}")["queued"] == 2
    # AND the same notification again changes nothing
    assert uploads.ingest_object(world.intake(), world.registry, world.announcements, bucket, notified) is None
    # AND an object arriving long after its announcement expired is refused
    late = uploads.Notified("b", key, bucket.etag(key), datetime.now(UTC) + timedelta(hours=2))
    bucket.put(f"reports/{source.id}/day.json", b"{}")
    report = uploads.ingest_object(world.intake(), world.registry, world.announcements, bucket, late)
    assert report is not None and "expired" in report["refused"]
