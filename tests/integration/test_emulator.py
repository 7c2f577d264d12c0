"""The local stack's emulator (moto server, infra/emulator.py) on a free loopback port."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from infra.anvil import free_port
from infra.provision import provision
from infra.stack import wait_http

REPO = Path(__file__).resolve().parents[2]
PREFIX = "drec-emu"


@pytest.fixture
def emulator(monkeypatch: pytest.MonkeyPatch) -> Iterator[boto3.session.Session]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "infra.emulator", "--host", "127.0.0.1", "--port", str(port)],
                            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_http(f"http://127.0.0.1:{port}/moto-api/", 30, proc)
        for name, value in {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}", "AWS_ACCESS_KEY_ID": "testing",
                            "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}.items():
            monkeypatch.setenv(name, value)
        session = boto3.session.Session()
        provision(PREFIX, session)
        yield session
    finally:
        proc.terminate()
        proc.wait(10)


def test_dropped_file_is_announced_on_the_uploads_queue_with_its_key(emulator: Any) -> None:
    from chalicelib.services.uploads import s3_records

    emulator.client("s3").put_object(Bucket=f"{PREFIX}-uploads", Key="incoming/src-1/day one.csv", Body=b"x")
    sqs = emulator.client("sqs")
    url = sqs.get_queue_url(QueueName=f"{PREFIX}-uploads")["QueueUrl"]
    keys: list[str] = []
    deadline = time.monotonic() + 10
    while not keys and time.monotonic() < deadline:
        for message in sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get(
                "Messages", []):
            keys += [n.key for n in s3_records(json.loads(message["Body"]))]
    assert keys == ["incoming/src-1/day one.csv"]


def test_concurrent_transactions_neither_fail_nor_lose_writes(emulator: Any) -> None:
    table = f"{PREFIX}-counters"
    errors: list[Exception] = []

    def writer(worker: int) -> None:
        client = emulator.client("dynamodb")
        try:
            for i in range(40):
                client.transact_write_items(TransactItems=[
                    {"Put": {"TableName": table, "Item": {"name": {"S": f"w{worker}-{i}-{j}"}, "value": {"N": "1"}}}}
                    for j in range(10)])
        except Exception as exc:  # collected for the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    count = emulator.client("dynamodb").scan(TableName=table, Select="COUNT")["Count"]
    assert count == 4 * 40 * 10


def _handle_uploads(emulator: Any, reports: list[str]) -> None:
    """Hand the uploads queue's notifications to the app's handler, as the dispatcher does, until `reports` exist."""
    from chalicelib.api import handlers
    from infra.dispatcher import LambdaContext, sqs_event

    sqs, s3 = emulator.client("sqs"), emulator.client("s3")
    url = sqs.get_queue_url(QueueName=f"{PREFIX}-uploads")["QueueUrl"]
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        listed = s3.list_objects_v2(Bucket=f"{PREFIX}-uploads", Prefix="reports/").get("Contents", [])
        if set(reports) <= {o["Key"] for o in listed}:
            return
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1, WaitTimeSeconds=1).get("Messages", [])
        for message in messages:
            handlers.ingest_upload(sqs_event([message], "arn:aws:sqs:us-east-1:000000000000:uploads", "us-east-1"),
                              LambdaContext("ingest_upload"))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    raise AssertionError(f"no reports {reports} in time")


def test_presigned_upload_is_ingested_and_an_unannounced_one_refused(emulator: Any,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    import requests
    from chalice.test import Client

    import app
    from chalicelib import bootstrap
    from tests.conftest import device_body

    monkeypatch.setenv("DREC_PREFIX", PREFIX)
    monkeypatch.setenv("DREC_OPERATOR_KEY", "emu-operator")
    bootstrap.reset()
    s3 = emulator.client("s3")
    with Client(app.app) as client:
        def post(path: str, body: Any, key: str) -> Any:
            response = client.http.post(path, headers={"X-Api-Key": key, "Content-Type": "application/json"},
                                        body=json.dumps(body) if body is not None else None)
            assert response.status_code in (200, 201), response.body
            return json.loads(response.body)

        source = post("/sources", {"name": "Emu Agg", "kind": "aggregator"}, "emu-operator")
        account = post("/accounts", {"name": "Emu Dev", "kind": "developer", "country": "KE"}, source["api_key"])
        device = post("/devices", device_body(account["account_id"]), source["api_key"])
        # GIVEN a URL from POST /uploads/url, signed for the emulator's endpoint
        announced = post("/uploads/url?name=day.csv", None, source["api_key"])
    bootstrap.reset()
    assert announced["url"].startswith(emulator.client("s3").meta.endpoint_url)
    csv = ("device_id,period_start,period_end,energy_wh\n"
           f"{device['device_id']},2026-10-14T08:00:00Z,2026-10-14T09:00:00Z,40\n")
    # WHEN the file is PUT to it over HTTP, and another file is written straight into the prefix
    assert requests.put(announced["url"], data=csv.encode(), timeout=10).status_code == 200
    s3.put_object(Bucket=f"{PREFIX}-uploads", Key=f"incoming/{source['source_id']}/direct.csv", Body=csv.encode())
    _handle_uploads(emulator, [f"reports/{source['source_id']}/{n}.json" for n in ("day", "direct")])

    def report(name: str) -> dict[str, Any]:
        key = f"reports/{source['source_id']}/{name}.json"
        return json.loads(s3.get_object(Bucket=f"{PREFIX}-uploads", Key=key)["Body"].read())

    # THEN the announced file's rows are queued, and the direct one is refused with the reason
    assert (report("day")["rows"], report("day")["queued"]) == (1, 1)
    refused = report("direct")
    assert refused["queued"] == 0 and "not announced with POST /uploads/url" in refused["refused"]
