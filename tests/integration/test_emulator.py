"""The local stack's emulator (moto server, infra/emulator.py) on a free loopback port."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from infra.anvil import free_port
from infra.provision import provision

REPO = Path(__file__).resolve().parents[2]
PREFIX = "drec-emu"


@pytest.fixture
def emulator(monkeypatch: pytest.MonkeyPatch) -> Iterator[boto3.session.Session]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "infra.emulator", "--host", "127.0.0.1", "--port", str(port)],
                            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/moto-api/", timeout=1)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
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
            keys += [key for _, key, _ in s3_records(json.loads(message["Body"]))]
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
