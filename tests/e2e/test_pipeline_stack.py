"""The whole pipeline on the running stack: readings → validator → issuance → anchoring → verifier."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import boto3

from tests.conftest import device_body
from tests.e2e.conftest import REPO, RunningStack, wait_for


def _verify(stack: RunningStack, target: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "chalicelib.verify", target, "--api", stack.url,
                           "--rpc", stack.endpoints["chain_rpc"]], cwd=REPO, capture_output=True, text=True,
                          timeout=120)


def test_readings_become_an_anchored_verifiable_drec(stack: RunningStack) -> None:
    source = stack.post("/sources", {"name": "Pipeline Agg", "kind": "aggregator"}).json()
    key = source["api_key"]
    account = stack.post("/accounts", {"name": "Pipeline Dev", "kind": "developer", "country": "KE"}, key=key).json()
    devices = [stack.post("/devices", device_body(account["account_id"], capacity_w=100), key=key).json()["device_id"]
               for _ in range(3)]
    # registrations are anchored within seconds
    wait_for("registration anchored", lambda: stack.get("/events", subject_id=devices[0]).json()["items"][0]["anchor"])

    readings = [{"device_id": d, "period_start": "2026-10-14T05:00:00Z", "period_end": "2026-10-14T13:00:00Z",
                 "energy_wh": 400} for d in devices]
    # noon reading at 3x clear sky and a midnight reading are rejected with their rule
    readings += [{"device_id": devices[0], "period_start": "2026-10-15T09:00:00Z",
                  "period_end": "2026-10-15T10:00:00Z", "energy_wh": 300},
                 {"device_id": devices[1], "period_start": "2026-10-15T21:00:00Z",
                  "period_end": "2026-10-15T22:00:00Z", "energy_wh": 30}]
    accepted = stack.post("/readings", {"readings": readings}, key=key).json()["accepted"]
    ids = [a["reading_id"] for a in accepted]

    def judged() -> list[dict[str, Any]] | None:
        views = [stack.get(f"/readings/{i}").json() for i in ids]
        return views if all(v["status"] != "queued" for v in views) else None

    views = wait_for("readings judged", judged)
    assert [v["status"] for v in views[:3]] == ["accepted"] * 3, views
    assert all(v["expected_wh"] > 0 and v["sigma_wh"] > 0 for v in views[:3])
    assert views[3]["status"] == "rejected" and views[3]["rule"] in ("above_ceiling", "above_capacity")
    assert views[4]["status"] == "rejected" and views[4]["rule"] == "night"

    drecs = wait_for("D-REC issued",
                     lambda: stack.get("/drecs", owner_account_id=account["account_id"]).json()["items"])
    assert len(drecs) == 1
    serial = drecs[0]["serial"]
    drec = stack.get(f"/drecs/{serial}").json()
    assert {c["device_id"] for c in drec["contributions"]} == set(devices)
    assert sum(c["energy_wh"] for c in drec["contributions"]) == 1000

    wait_for("issuance anchored", lambda: stack.get(f"/drecs/{serial}").json()["events"][0]["anchor"])
    outcome = _verify(stack, serial)
    assert outcome.returncode == 0, outcome.stdout + outcome.stderr
    assert "VALID" in outcome.stdout
    assert stack.get(f"/drecs/{serial}/verify").json()["ok"] is True

    # Tampering with an anchored event in the database is caught, naming the event.
    issued_id = drec["events"][0]["event_id"]
    dynamodb = boto3.client("dynamodb", endpoint_url=stack.endpoints["aws_endpoint_url"], region_name="us-east-1",
                            aws_access_key_id="testing", aws_secret_access_key="testing")
    table = f"{stack.endpoints['prefix']}-events"
    item = dynamodb.get_item(TableName=table, Key={"id": {"S": issued_id}})["Item"]
    body = json.loads(item["body_json"]["S"])
    body["owner_account_id"] = "acc-someone-else"
    item["body_json"] = {"S": json.dumps(body)}
    dynamodb.put_item(TableName=table, Item=item)
    tampered = _verify(stack, serial)
    assert tampered.returncode == 1
    assert issued_id in tampered.stdout and "INVALID" in tampered.stdout


def test_signing_source_readings_show_their_signer_unsigned_ones_are_refused(stack: RunningStack) -> None:
    from eth_account import Account

    from chalicelib.services.signatures import sign_reading

    # GIVEN a source that registered a signing key, and its device
    signer = Account.create()
    source = stack.post("/sources", {"name": "Signing Agg", "kind": "aggregator",
                                     "signing_address": signer.address}).json()
    key = source["api_key"]
    account = stack.post("/accounts", {"name": "Signed Dev", "kind": "developer", "country": "KE"}, key=key).json()
    device = stack.post("/devices", device_body(account["account_id"], capacity_w=100), key=key).json()["device_id"]
    signed = {"device_id": device, "period_start": "2026-10-16T05:00:00Z", "period_end": "2026-10-16T13:00:00Z",
              "energy_wh": 400}
    signed["signature"] = sign_reading(signer.key, device, signed["period_start"], signed["period_end"], 400)
    unsigned = {"device_id": device, "period_start": "2026-10-17T05:00:00Z", "period_end": "2026-10-17T13:00:00Z",
                "energy_wh": 400}
    # WHEN both are pushed in one request
    body = stack.post("/readings", {"readings": [signed, unsigned]}, key=key).json()
    # THEN the unsigned one is refused by index; the signed one shows its signer, and so does its event
    assert [(e["index"], e["error"]["field"]) for e in body["errors"]] == [(1, "readings.1.signature")], body
    (accepted,) = body["accepted"]
    view = wait_for("signed reading judged",
                    lambda: (v := stack.get(f"/readings/{accepted['reading_id']}").json())["status"] != "queued" and v)
    assert view["status"] == "accepted" and view["signer"] == signer.address.lower(), view
    (event,) = stack.get("/events", subject_id=accepted["reading_id"], type="ReadingAccepted").json()["items"]
    assert (event["body"]["signer"], event["body"]["signature"]) == (signer.address.lower(), signed["signature"])


def test_csv_drop_needs_an_announced_url(stack: RunningStack) -> None:
    import requests

    source = stack.post("/sources", {"name": "Drop Agg", "kind": "developer_backend"}).json()
    key = source["api_key"]
    account = stack.post("/accounts", {"name": "Drop Dev", "kind": "developer", "country": "KE"}, key=key).json()
    device = stack.post("/devices", device_body(account["account_id"], capacity_w=100), key=key).json()["device_id"]
    csv = ("device_id,period_start,period_end,energy_wh\n"
           f"{device},2026-10-16T06:00:00Z,2026-10-16T07:00:00Z,20\n"
           f"{device},2026-10-16T07:00:00Z,2026-10-16T08:00:00Z,35\n")
    # GIVEN a URL from POST /uploads/url
    response = requests.post(f"{stack.url}/uploads/url", params={"name": "day.csv"}, headers={"X-Api-Key": key},
                             timeout=60)
    assert response.status_code == 201, response.text
    announced = response.json()
    # WHEN the file is PUT to it, as `curl -X PUT --upload-file day.csv "$URL"` would
    assert requests.put(announced["url"], data=csv.encode(), timeout=60).status_code == 200

    def report_at(url: str) -> dict[str, Any] | None:
        got = requests.get(url, timeout=60)
        return got.json() if got.status_code == 200 else None

    # THEN the dispatcher's uploads handler writes the report, with both rows queued
    report = wait_for("report of the announced file", lambda: report_at(announced["report_url"]))
    assert (report["rows"], report["queued"], report["error_count"]) == (2, 2, 0), report
    assert len(stack.get(f"/devices/{device}/readings").json()["items"]) == 2

    # WHEN another file is written straight into the source's prefix, without announcing it
    s3 = boto3.client("s3", endpoint_url=stack.endpoints["aws_endpoint_url"], region_name="us-east-1",
                      aws_access_key_id="testing", aws_secret_access_key="testing")
    bucket = f"{stack.endpoints['prefix']}-uploads"
    s3.put_object(Bucket=bucket, Key=f"incoming/{source['source_id']}/direct.csv",
                  Body=csv.replace("2026-10-16", "2026-10-17").encode())

    def refusal() -> dict[str, Any] | None:
        try:
            body = s3.get_object(Bucket=bucket, Key=f"reports/{source['source_id']}/direct.json")["Body"].read()
        except s3.exceptions.NoSuchKey:
            return None
        return json.loads(body)

    # THEN its report says why it was refused, and nothing of it was queued
    refused = wait_for("report of the unannounced file", refusal)
    assert refused["queued"] == 0 and "not announced with POST /uploads/url" in refused["refused"]
    assert len(stack.get(f"/devices/{device}/readings").json()["items"]) == 2
