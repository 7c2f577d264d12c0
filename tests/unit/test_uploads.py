"""CSV files of readings: dropped in the bucket, or posted; bad rows reported by line."""

from __future__ import annotations

import json
from typing import Any

from tests.conftest import Api, pump, registered_device

BUCKET = "drec-test-uploads"


def _csv(device_id: str, extra_rows: str = "") -> str:
    return ("device_id,period_start,period_end,energy_wh,external_id\n"
            f"{device_id},2026-10-14T08:00:00Z,2026-10-14T09:00:00Z,40,r1\n"
            "\n"
            f"{device_id},2026-10-14T09:00:00Z,2026-10-14T10:00:00Z,12.5,r2\n"
            f"{device_id},2026-10-14T10:00:00Z,2026-10-14T11:00:00Z,45,r3\n" + extra_rows)


def _report(aws: Any, source_id: str, name: str) -> dict[str, Any]:
    body = aws.client("s3").get_object(Bucket=BUCKET, Key=f"reports/{source_id}/{name}.json")["Body"].read()
    return json.loads(body)


def test_dropped_csv_yields_report_and_queues_good_rows(api: Api, aws: Any) -> None:
    source, _, device = registered_device(api)
    s3 = aws.client("s3")
    # GIVEN a file with a BOM, a blank line and one fractional Wh
    s3.put_object(Bucket=BUCKET, Key=f"incoming/{source['source_id']}/day one.csv",
                  Body=("\ufeff" + _csv(device["device_id"])).encode())
    pump(aws)
    report = _report(aws, source["source_id"], "day one")
    assert (report["rows"], report["queued"], report["error_count"]) == (3, 2, 1)
    assert report["errors"][0]["line"] == 4 and report["errors"][0]["error"]["field"] == "energy_wh"
    # the original file is kept
    assert s3.get_object(Bucket=BUCKET, Key=f"incoming/{source['source_id']}/day one.csv")["Body"].read()
    _, listed = api.get(f"/devices/{device['device_id']}/readings")
    assert len(listed["items"]) == 2
    # WHEN the same file is dropped again THEN nothing new is queued
    s3.put_object(Bucket=BUCKET, Key=f"incoming/{source['source_id']}/again.csv",
                  Body=_csv(device["device_id"]).encode())
    pump(aws)
    again = _report(aws, source["source_id"], "again")
    assert (again["queued"], again["duplicates"]) == (0, 2)


def test_file_level_problems_are_named(api: Api, aws: Any) -> None:
    source, _, _ = registered_device(api)
    cases = {
        "semicolons": "device_id;period_start;period_end;energy_wh\nx;y;z;1\n",
        "missing": "device_id,period_start,energy_wh\nx,y,1\n",
        "empty": "",
    }
    for name, text in cases.items():
        aws.client("s3").put_object(Bucket=BUCKET, Key=f"incoming/{source['source_id']}/{name}.csv",
                                    Body=text.encode())
    pump(aws)
    assert "';'" in _report(aws, source["source_id"], "semicolons")["errors"][0]["error"]["message"]
    assert "period_end" in _report(aws, source["source_id"], "missing")["errors"][0]["error"]["message"]
    assert "empty" in _report(aws, source["source_id"], "empty")["errors"][0]["error"]["message"]


def test_many_bad_rows_each_reported(api: Api, aws: Any) -> None:
    source, _, device = registered_device(api)
    rows = "".join(f"{device['device_id']},2026-10-14T08:00:00Z,2026-10-14T09:00:00Z,abc\n" for _ in range(10_000))
    text = "device_id,period_start,period_end,energy_wh\n" + rows
    status, report = api.call("post", "/uploads?name=bad.csv", raw=text, key=source["api_key"])
    assert status == 200, report
    assert report["rows"] == 10_000 and report["error_count"] == 10_000 and report["queued"] == 0
    assert report["errors"][-1]["line"] == 10_001


def test_posted_csv_answers_with_report(api: Api, aws: Any) -> None:
    source, _, device = registered_device(api)
    status, report = api.call("post", "/uploads?name=portal.csv", raw=_csv(device["device_id"]),
                              key=source["api_key"])
    assert status == 200 and report["queued"] == 2 and report["error_count"] == 1
    assert _report(aws, source["source_id"], "portal")["queued"] == 2
