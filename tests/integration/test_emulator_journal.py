"""The emulator's write-ahead journal: what it acknowledged survives `kill -9`, and only that."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from infra.anvil import free_port
from infra.resources import RESOURCES, physical
from infra.stack import wait_http

REPO = Path(__file__).resolve().parents[2]
PREFIX = "drec-wal"
ENV = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


class Emulator:
    def __init__(self, data: Path) -> None:
        self.data = data
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = dict(os.environ, **ENV)
        env.pop("AWS_ENDPOINT_URL", None)
        self.proc = subprocess.Popen([sys.executable, "-m", "infra.emulator", "--port", str(self.port), "--data",
                                      str(self.data), "--prefix", PREFIX], cwd=REPO, env=env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_http(f"http://127.0.0.1:{self.port}/moto-api/", 60, self.proc)

    def kill(self) -> None:
        assert self.proc
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def client(self, service: str) -> Any:
        return boto3.session.Session(**{k.lower(): v for k, v in ENV.items() if k != "AWS_DEFAULT_REGION"},
                                     region_name="us-east-1").client(
            service, endpoint_url=f"http://127.0.0.1:{self.port}")

    def state(self) -> dict[str, Any]:
        """Every item of every table and every object with its body and content type."""
        dynamodb, s3 = self.client("dynamodb"), self.client("s3")
        state: dict[str, Any] = {}
        for table in RESOURCES.tables:
            name = physical(PREFIX, table.logical)
            items = [i for page in dynamodb.get_paginator("scan").paginate(TableName=name) for i in page["Items"]]
            state[name] = sorted(json.dumps(i, sort_keys=True) for i in items)
        for bucket in RESOURCES.buckets:
            name = physical(PREFIX, bucket.logical)
            objects = {}
            for obj in s3.list_objects_v2(Bucket=name).get("Contents", []):
                got = s3.get_object(Bucket=name, Key=obj["Key"])
                objects[obj["Key"]] = (got["Body"].read(), got["ContentType"])
            state[name] = objects
        return state


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[Emulator]:
    running = Emulator(tmp_path / "store")
    running.start()
    try:
        yield running
    finally:
        if running.proc and running.proc.poll() is None:
            running.proc.kill()
            running.proc.wait(10)


def _write_everything_once(emulator: Emulator) -> None:
    dynamodb, s3 = emulator.client("dynamodb"), emulator.client("s3")
    counters, readings = physical(PREFIX, "counters"), physical(PREFIX, "readings")
    dynamodb.put_item(TableName=counters, Item={"name": {"S": "a"}, "value": {"N": "1"}})
    for _ in range(3):
        dynamodb.update_item(TableName=counters, Key={"name": {"S": "a"}}, UpdateExpression="ADD #v :one",
                             ExpressionAttributeNames={"#v": "value"}, ExpressionAttributeValues={":one": {"N": "1"}})
    dynamodb.transact_write_items(TransactItems=[
        {"Put": {"TableName": readings, "Item": {"id": {"S": "r1"}, "energy_wh": {"N": "5"}},
                 "ConditionExpression": "attribute_not_exists(id)"}},
        {"Update": {"TableName": counters, "Key": {"name": {"S": "b"}}, "UpdateExpression": "SET #v = :v",
                    "ExpressionAttributeNames": {"#v": "value"}, "ExpressionAttributeValues": {":v": {"N": "9"}}}},
    ])
    with pytest.raises(ClientError):  # refused: not applied, so not journaled either
        dynamodb.put_item(TableName=readings, Item={"id": {"S": "r1"}, "energy_wh": {"N": "999"}},
                          ConditionExpression="attribute_not_exists(id)")
    dynamodb.batch_write_item(RequestItems={readings: [
        {"PutRequest": {"Item": {"id": {"S": f"b{i}"}, "energy_wh": {"N": str(i)}}}} for i in range(25)]})
    dynamodb.delete_item(TableName=readings, Key={"id": {"S": "b3"}})
    uploads = physical(PREFIX, "uploads")
    s3.put_object(Bucket=uploads, Key="incoming/src-1/a day.csv", Body=b"device_id,energy_wh\n", ContentType="text/csv")
    s3.put_object(Bucket=uploads, Key="incoming/src-1/gone.csv", Body=b"x")
    s3.delete_object(Bucket=uploads, Key="incoming/src-1/gone.csv")
    s3.put_object(Bucket=uploads, Key="big.bin", Body=os.urandom(3 * 1024 * 1024))


def test_every_acknowledged_write_survives_kill_9_and_nothing_refused_comes_back(emulator: Emulator) -> None:
    # GIVEN writes of every kind acknowledged by the emulator (and one refused)
    _write_everything_once(emulator)
    acknowledged = emulator.state()

    # WHEN it is killed without warning and started again, twice (replay, then snapshot + replay)
    emulator.kill()
    emulator.start()
    assert emulator.state() == acknowledged
    emulator.client("dynamodb").update_item(
        TableName=physical(PREFIX, "counters"), Key={"name": {"S": "a"}}, UpdateExpression="ADD #v :one",
        ExpressionAttributeNames={"#v": "value"}, ExpressionAttributeValues={":one": {"N": "1"}})
    after = emulator.state()
    emulator.kill()
    emulator.start()

    # THEN the state is exactly what was acknowledged, the refused write absent
    assert emulator.state() == after
    item = emulator.client("dynamodb").get_item(TableName=physical(PREFIX, "readings"), Key={"id": {"S": "r1"}})
    assert item["Item"]["energy_wh"] == {"N": "5"}
    counter = emulator.client("dynamodb").get_item(TableName=physical(PREFIX, "counters"), Key={"name": {"S": "a"}})
    assert counter["Item"]["value"] == {"N": "5"}
    report = json.loads((emulator.data / "recovered.json").read_text())
    assert report["replayed"] == 1 and report["replay_refused"] == 0


def test_a_torn_last_line_is_skipped_and_the_rest_replayed(emulator: Emulator) -> None:
    _write_everything_once(emulator)
    acknowledged = emulator.state()
    emulator.kill()
    journal = emulator.data / f"journal-{(emulator.data / 'CURRENT').read_text().strip()}.log"
    with open(journal, "ab") as torn:
        torn.write(b'{"method": "POST", "path": "/", "que')

    emulator.start()

    assert emulator.state() == acknowledged


def test_data_saved_by_earlier_releases_is_loaded(tmp_path: Path) -> None:
    # GIVEN the table-by-table snapshot folder of an earlier release beside the store folder
    legacy = tmp_path / "snapshot"
    (legacy / "tables").mkdir(parents=True)
    (legacy / "tables" / "counters.jsonl").write_text(json.dumps({"name": {"S": "event_seq"}, "value": {"N": "7"}}))
    (legacy / "objects" / "uploads" / "incoming").mkdir(parents=True)
    (legacy / "objects" / "uploads" / "incoming" / "a.csv").write_bytes(b"x,y\n")
    (legacy / "objects" / "uploads.index.json").write_text(json.dumps({"incoming/a.csv": "etag"}))
    emulator = Emulator(tmp_path / "store")

    # WHEN the emulator starts on the store folder
    emulator.start()
    try:
        # THEN the old data is there
        state = emulator.state()
        assert state[physical(PREFIX, "counters")] == [json.dumps({"name": {"S": "event_seq"}, "value": {"N": "7"}},
                                                                 sort_keys=True)]
        assert state[physical(PREFIX, "uploads")]["incoming/a.csv"][0] == b"x,y\n"
    finally:
        emulator.kill()


def _secret(emulator: Emulator, name: str) -> dict[str, Any]:
    return dict(emulator.client("ssm").get_parameter(Name=name, WithDecryption=True)["Parameter"])


def _gone(emulator: Emulator, name: str) -> bool:
    try:
        emulator.client("ssm").get_parameter(Name=name, WithDecryption=True)
    except ClientError as exc:
        return exc.response["Error"]["Code"] == "ParameterNotFound"
    return False


def test_ssm_secure_strings_survive_kill_9_before_and_after_a_compaction(emulator: Emulator) -> None:
    ssm = emulator.client("ssm")
    compacted, journaled = f"/{PREFIX}/pull/src-1/auth", f"/{PREFIX}/pull/src-2/auth"
    dropped_early, dropped_late = f"/{PREFIX}/pull/src-3/auth", f"/{PREFIX}/pull/src-4/auth"
    # GIVEN SecureStrings put (one overwritten, one deleted) and then compacted by a kill -9 and restart
    ssm.put_parameter(Name=compacted, Value="Bearer first", Type="SecureString", Description="pull auth")
    ssm.put_parameter(Name=compacted, Value="Bearer one", Type="SecureString", Overwrite=True)
    ssm.put_parameter(Name=dropped_early, Value="x", Type="SecureString")
    ssm.delete_parameter(Name=dropped_early)
    ssm.put_parameter(Name=dropped_late, Value="y", Type="SecureString")
    emulator.kill()
    emulator.start()
    generation = (emulator.data / "CURRENT").read_text().strip()
    saved = emulator.data / f"gen-{generation}" / "parameters.jsonl"
    assert {json.loads(line)["name"] for line in saved.read_text().splitlines()} == {compacted, dropped_late}
    assert saved.stat().st_mode & 0o077 == 0  # secrets in plain text: the owner's alone

    # WHEN more is put and deleted after the compaction (journal only), one put refused, and it is killed again
    ssm.put_parameter(Name=journaled, Value="Basic dXNlcjpwdw==", Type="SecureString", KeyId="alias/drec-pull")
    with pytest.raises(ClientError):  # refused: exists, no Overwrite; not journaled
        ssm.put_parameter(Name=journaled, Value="Basic other", Type="SecureString")
    ssm.delete_parameters(Names=[dropped_late])
    emulator.kill()
    emulator.start()

    # THEN both values are back, decrypted, with their type, key, description and version; deleted stay deleted
    first, second = _secret(emulator, compacted), _secret(emulator, journaled)
    assert (first["Value"], first["Type"], first["Version"]) == ("Bearer one", "SecureString", 2)
    assert (second["Value"], second["Type"], second["Version"]) == ("Basic dXNlcjpwdw==", "SecureString", 1)
    described = ssm.describe_parameters(ParameterFilters=[{"Key": "Name", "Values": [compacted]}])["Parameters"]
    assert (described[0]["Description"], described[0]["KeyId"]) == ("pull auth", "alias/aws/ssm")
    assert _gone(emulator, dropped_early) and _gone(emulator, dropped_late)
    assert json.loads((emulator.data / "recovered.json").read_text())["parameters"] == 2

    # AND once more from the snapshot alone, a next write carrying the version on
    emulator.kill()
    emulator.start()
    assert _secret(emulator, journaled)["Value"] == "Basic dXNlcjpwdw=="
    described = ssm.describe_parameters(ParameterFilters=[{"Key": "Name", "Values": [journaled]}])["Parameters"]
    assert described[0]["KeyId"] == "alias/drec-pull"
    assert ssm.put_parameter(Name=compacted, Value="Bearer two", Type="SecureString", Overwrite=True)["Version"] == 3
    assert _gone(emulator, dropped_late)
