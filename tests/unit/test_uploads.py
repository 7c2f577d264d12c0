"""CSV files of readings: dropped in the bucket, or posted; bad rows reported by line."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

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


def _announce(api: Api, source: dict[str, Any], name: str) -> dict[str, Any]:
    status, announced = api.post(f"/uploads/url?name={name}", key=source["api_key"])
    assert status == 201, announced
    return announced


def _drop(api: Api, source: dict[str, Any], name: str, body: bytes) -> dict[str, Any]:
    """Announce `name`, then PUT the file to the presigned URL (moto answers in process)."""
    announced = _announce(api, source, name)
    assert requests.put(announced["url"], data=body, timeout=10).status_code == 200
    return announced


def test_dropped_csv_yields_report_and_queues_good_rows(api: Api, aws: Any) -> None:
    source, _, device = registered_device(api)
    s3 = aws.client("s3")
    # GIVEN a file with a BOM, a blank line and one fractional Wh, PUT to an announced URL
    _drop(api, source, "day-one.csv", ("\ufeff" + _csv(device["device_id"])).encode())
    pump(aws)
    report = _report(aws, source["source_id"], "day-one")
    assert (report["rows"], report["queued"], report["error_count"]) == (3, 2, 1)
    assert report["errors"][0]["line"] == 4 and report["errors"][0]["error"]["field"] == "energy_wh"
    # the original file is kept
    assert s3.get_object(Bucket=BUCKET, Key=f"incoming/{source['source_id']}/day-one.csv")["Body"].read()
    _, listed = api.get(f"/devices/{device['device_id']}/readings")
    assert len(listed["items"]) == 2
    # WHEN the same file is dropped again THEN nothing new is queued
    _drop(api, source, "again.csv", _csv(device["device_id"]).encode())
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
        _drop(api, source, f"{name}.csv", text.encode())
    pump(aws)
    assert "';'" in _report(aws, source["source_id"], "semicolons")["errors"][0]["error"]["message"]
    missing = _report(aws, source["source_id"], "missing")["errors"][0]["error"]["message"]
    assert "period_end" in missing and "[,signature]" in missing
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


# -- announced uploads (POST /uploads/url) ---------------------------------------------------
def test_announce_gives_a_presigned_url_for_own_prefix_valid_at_most_15_minutes(
        api: Api, aws: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from chalicelib import bootstrap

    source, _, _ = registered_device(api)
    # GIVEN a deployment that asks for hour-long URLs
    monkeypatch.setenv("DREC_UPLOAD_URL_TTL_S", "3600")
    bootstrap.reset()
    before = datetime.now(UTC).replace(microsecond=0)
    # WHEN the source asks for a URL for day.csv
    announced = _announce(api, source, "day.csv")
    # THEN the URL writes its own prefix, for no more than 15 minutes
    assert announced["key"] == f"incoming/{source['source_id']}/day.csv"
    url = urlsplit(announced["url"])
    assert url.path.endswith(f"/incoming/{source['source_id']}/day.csv")
    assert parse_qs(url.query)["X-Amz-Expires"] == ["900"]
    expires_at = datetime.fromisoformat(announced["expires_at"].replace("Z", "+00:00"))
    assert timedelta(0) < expires_at - before <= timedelta(seconds=901)
    assert announced["report_key"] == f"reports/{source['source_id']}/day.json"
    # AND the announcement is stored with who and until when
    stored = bootstrap.container().upload_announcements.announcement(announced["key"])
    assert stored["source_id"] == source["source_id"] and stored["expires_at"] == announced["expires_at"]
    assert stored["announced_at"] <= announced["expires_at"]


def test_only_sources_get_upload_urls_and_names_are_checked(api: Api, aws: Any) -> None:
    source, account, _ = registered_device(api)
    # WHEN the operator or an account asks THEN 403 says only sources drop files
    for key in (None, account["api_key"]):
        status, body = (api.post("/uploads/url?name=day.csv") if key is None
                        else api.post("/uploads/url?name=day.csv", key=key))
        assert status == 403, body
        assert "only a source" in body["error"]["message"]
    # WHEN the name is missing or could escape the prefix THEN 400 names `name`
    for query in ("", "?name=", "?name=../x.csv", "?name=.csv", "?name=a%2Fb.csv"):
        status, body = api.post(f"/uploads/url{query}", key=source["api_key"])
        assert (status, body["error"]["field"]) == (400, "name"), (query, body)


def test_unannounced_object_gets_a_refusal_report_and_queues_nothing(api: Api, aws: Any) -> None:
    source, _, device = registered_device(api)
    # GIVEN a file written straight into the source's prefix, without an announced URL
    aws.client("s3").put_object(Bucket=BUCKET, Key=f"incoming/{source['source_id']}/sneaky.csv",
                                Body=_csv(device["device_id"]).encode())
    pump(aws)  # raises if the handler raises: a refused file must not go round to the DLQ
    report = _report(aws, source["source_id"], "sneaky")
    assert report["queued"] == 0 and "not announced with POST /uploads/url" in report["refused"]
    assert report["errors"][0]["error"]["code"] == "forbidden"
    _, listed = api.get(f"/devices/{device['device_id']}/readings")
    assert listed["items"] == []
    # WHEN the source then announces that name and PUTs the very same bytes (same etag)
    _drop(api, source, "sneaky.csv", _csv(device["device_id"]).encode())
    pump(aws)
    # THEN this upload is ingested: the refusal did not mark the content as done
    assert _report(aws, source["source_id"], "sneaky")["queued"] == 2
    _, listed = api.get(f"/devices/{device['device_id']}/readings")
    assert len(listed["items"]) == 2


def test_object_arriving_after_the_announcement_expired_is_refused(api: Api, aws: Any) -> None:
    from chalicelib import bootstrap
    from chalicelib.domain.model import Principal
    from chalicelib.services.uploads import announce_upload

    source, _, device = registered_device(api)
    c = bootstrap.container()
    # GIVEN an announcement made two hours ago (URL valid 15 minutes)
    announced = announce_upload(c.upload_announcements, c.uploads_bucket, Principal("source", source["source_id"]),
                                "late.csv", 900, now=datetime.now(UTC) - timedelta(hours=2))
    # WHEN the object arrives now
    aws.client("s3").put_object(Bucket=BUCKET, Key=announced["key"], Body=_csv(device["device_id"]).encode())
    pump(aws)
    # THEN the report names the expiry and nothing is queued
    report = _report(aws, source["source_id"], "late")
    assert f"announced URL expired at {announced['expires_at']}" in report["refused"]
    assert report["queued"] == 0
    _, listed = api.get(f"/devices/{device['device_id']}/readings")
    assert listed["items"] == []


def test_announcement_covers_only_the_announcing_sources_prefix(api: Api, aws: Any) -> None:
    victim, _, device = registered_device(api)
    intruder, _, _ = registered_device(api)
    # GIVEN the intruder announced day.csv for itself
    _announce(api, intruder, "day.csv")
    # WHEN a file lands under the victim's prefix with that name
    aws.client("s3").put_object(Bucket=BUCKET, Key=f"incoming/{victim['source_id']}/day.csv",
                                Body=_csv(device["device_id"]).encode())
    pump(aws)
    # THEN it is refused as unannounced for the victim, and none of the victim's devices got readings
    report = _report(aws, victim["source_id"], "day")
    assert report["queued"] == 0 and f"by source {victim['source_id']}" in report["refused"]
    _, listed = api.get(f"/devices/{device['device_id']}/readings")
    assert listed["items"] == []


def test_notifications_for_other_keys_or_shapes_do_not_crash(api: Api, aws: Any) -> None:
    from chalicelib.api import handlers
    from infra.dispatcher import LambdaContext, sqs_event

    source, _, _ = registered_device(api)
    records = [{"eventTime": "not a time", "s3": {"object": {"key": k, "eTag": "x"}}}
               for k in ("incoming/x.csv", "incoming/a/b/c.csv", "reports/a/b.json", "", "incoming%2Fa%2F.csv",
                         f"incoming/{source['source_id']}/deleted-since.csv")]
    bodies = [{"Records": records}, {"Service": "Amazon S3", "Event": "s3:TestEvent"}, {"Records": "x"}, [1],
              {"Records": [1, {"s3": "x"}, {"s3": {"bucket": 1, "object": {"key": 5}}}]}]
    messages = [{"MessageId": str(i), "ReceiptHandle": str(i), "Body": json.dumps(b)} for i, b in enumerate(bodies)]
    # WHEN the uploads handler gets them THEN it returns normally and writes no report
    for message in messages:
        handlers.ingest_upload(sqs_event([message], "arn:aws:sqs:us-east-1:123:q", "us-east-1"), LambdaContext("t"))
    assert list(aws.uploads_bucket.keys("reports/")) == []


def test_signature_column_reaches_the_raw_readings(api: Api, aws: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from chalicelib.services.intake import Intake

    seen: list[dict[str, Any]] = []
    submit = Intake.submit

    def spy(self: Intake, principal: Any, items: Any, *args: Any, **kwargs: Any) -> Any:
        seen.extend(raw for _, raw in items)
        return submit(self, principal, items, *args, **kwargs)

    monkeypatch.setattr(Intake, "submit", spy)
    source, _, device = registered_device(api)
    d = device["device_id"]
    # GIVEN a CSV with a signature column (a well-formed signature no key asked for, and an empty
    # cell), and no signing key registered anywhere
    sig = "0x" + "11" * 65
    text = ("device_id,period_start,period_end,energy_wh,signature\n"
            f"{d},2026-10-14T08:00:00Z,2026-10-14T09:00:00Z,40,{sig}\n"
            f"{d},2026-10-14T09:00:00Z,2026-10-14T10:00:00Z,42,\n")
    # WHEN it is dropped through an announced URL
    _drop(api, source, "signed.csv", text.encode())
    pump(aws)
    # THEN the signature travels in the raw reading only where the cell held one, and both rows queue
    assert [r.get("signature") for r in seen] == [sig, None]
    assert "signature" not in seen[1]
    assert _report(aws, source["source_id"], "signed")["queued"] == 2
    # AND the signature nobody's key asked for is stored nowhere
    _, readings = api.get(f"/devices/{d}/readings")
    assert len(readings["items"]) == 2 and not any("signature" in r or "signer" in r for r in readings["items"])
