"""End-to-end throughput of the local stack: API → queue → validator → issuance → anchoring.

    python -m tests.bench.bench_pipeline [--devices N] [--readings-per-device K]

Starts its own stack (infra.stack, fresh data folder, free ports), registers N devices,
pushes K hourly readings each through POST /readings (1000 per request), waits until
every reading is judged, every accepted Wh pooled and every event anchored, and prints
readings per second end to end. In the same run it measures the emulator's raw ceiling
for the same writes (the DynamoDB transactions the pipeline issues, sent directly) and
prints the ratio. Defaults are sized for a few minutes on two cores; the issue's full
figure is --devices 10000 --readings-per-device 10.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import boto3
import requests

from chalicelib.config import event_shards
from infra.anvil import free_port
from tests.conftest import device_body
from tests.e2e.conftest import RunningStack


def _register(stack: RunningStack, devices: int) -> tuple[str, list[str]]:
    source = stack.post("/sources", {"name": "Bench", "kind": "aggregator"}).json()
    key = source["api_key"]
    account = stack.post("/accounts", {"name": "Bench Dev", "kind": "developer", "country": "KE"}, key=key).json()
    ids = []
    session = requests.Session()
    for i in range(devices):
        body = device_body(account["account_id"], capacity_w=100, latitude=-1.29 + (i % 50) * 0.01)
        ids.append(session.post(stack.url + "/devices", json=body, headers={"X-Api-Key": key}, timeout=60)
                   .json()["device_id"])
    return key, ids


def _readings(device_ids: list[str], per_device: int) -> list[dict[str, Any]]:
    out = []
    for hour in range(per_device):
        start = 5 + hour % 9  # 08:00-17:00 local in Nairobi, one day per 9 readings
        day = 10 + hour // 9
        for device_id in device_ids:
            out.append({"device_id": device_id, "period_start": f"2026-10-{day:02d}T{start:02d}:00:00Z",
                        "period_end": f"2026-10-{day:02d}T{start + 1:02d}:00:00Z", "energy_wh": 60})
    return out


def _raw_ceiling(stack: RunningStack, blocks: int, per_device: int) -> float:
    """Readings per second the emulator takes when sent only the pipeline's writes, nothing else.

    Per block of two devices × `per_device` readings, the same writes the pipeline makes, on
    the same (already filled) tables: the intake's conditional reading puts (transactions of up
    to 100); the validator's transaction (device states, verdicts, ReadingAccepted events and
    their links, the sequence counter); the issuer's transaction (pool, each reading's pooled
    Wh, the D-REC, its event and links); and the D-REC's device and reading links. Reads,
    queues, HTTP and the chain are left out.
    """
    dynamodb = boto3.client("dynamodb", endpoint_url=stack.endpoints["aws_endpoint_url"], region_name="us-east-1",
                            aws_access_key_id="testing", aws_secret_access_key="testing")
    prefix = stack.endpoints["prefix"]
    seq = 10_000_000

    def s(value: str) -> dict[str, str]:
        return {"S": value}

    def n(value: int) -> dict[str, str]:
        return {"N": str(value)}

    def event(subject: str, related: str) -> list[dict[str, Any]]:
        nonlocal seq
        seq += 1
        position = f"2026-11-01T00:00:00Z#00000#{seq:012d}"
        return [{"Put": {"TableName": f"{prefix}-events", "ConditionExpression": "attribute_not_exists(id)",
                         "Item": {"id": s(f"ev-0-{seq:012d}"), "shard": n(0), "seq": n(seq), "position": s(position),
                                  "type": s("Bench"), "type_shard": s("Bench#0"), "subject_id": s(subject),
                                  "body_json": s("{}")}}}] + [
            {"Put": {"TableName": f"{prefix}-event-links", "Item": {"subject_id": s(x), "position": s(position),
                                                                    "event_id": s(f"ev-0-{seq:012d}")}}}
            for x in (subject, related)]

    def counter() -> dict[str, Any]:
        return {"Update": {"TableName": f"{prefix}-counters", "Key": {"name": s("bench_seq")},
                           "UpdateExpression": "SET #v = :v", "ExpressionAttributeNames": {"#v": "value"},
                           "ExpressionAttributeValues": {":v": n(seq)}}}

    def batch_put(table: str, items: list[dict[str, Any]]) -> None:
        for start in range(0, len(items), 25):
            dynamodb.batch_write_item(RequestItems={f"{prefix}-{table}": [
                {"PutRequest": {"Item": item}} for item in items[start:start + 25]]})

    started = time.perf_counter()
    for b in range(blocks):
        devices = [f"bench-dev-{b}-{d}" for d in range(2)]
        readings = [(device, f"bench-rdg-{device}-{r}") for device in devices for r in range(per_device)]
        # The intake writes each new reading only if absent, in transactions of up to 100 puts.
        puts = [{"Put": {"TableName": f"{prefix}-readings", "ConditionExpression": "attribute_not_exists(id)",
                         "Item": {"id": s(r), "device_id": s(d), "status": s("queued"), "pipeline": s("queued"),
                                  "received_at": s("2026-01-01T00:00:00Z"), "energy_wh": n(60)}}}
                for d, r in readings]
        for start in range(0, len(puts), 100):
            dynamodb.transact_write_items(TransactItems=puts[start:start + 100])
        items: list[dict[str, Any]] = []
        for device in devices:
            items.append({"Update": {"TableName": f"{prefix}-device-state", "Key": {"device_id": s(device)},
                                     "UpdateExpression": "SET version = :v, ranges = :r",
                                     "ConditionExpression": "attribute_not_exists(version)",
                                     "ExpressionAttributeValues": {":v": n(1), ":r": {"L": []}}}})
        for device, reading in readings:
            items.append({"Update": {
                "TableName": f"{prefix}-readings", "Key": {"id": s(reading)},
                "UpdateExpression": "SET #s = :s, #r = :r, expected_wh = :e, #p = :p",
                "ConditionExpression": "#s = :q",
                "ExpressionAttributeNames": {"#s": "status", "#r": "rule", "#p": "pipeline"},
                "ExpressionAttributeValues": {":s": s("accepted"), ":r": s("ok"), ":e": n(60), ":p": s("pooling"),
                                              ":q": s("queued")}}})
            items += event(reading, device)
        dynamodb.transact_write_items(TransactItems=[*items, counter()])
        serial = f"BENCH-{b:08d}"
        items = [{"Update": {"TableName": f"{prefix}-pools", "Key": {"id": s(f"bench-pool-{b}")},
                             "UpdateExpression": "SET version = :v, state_json = :j",
                             "ExpressionAttributeValues": {":v": n(1), ":j": s("{}")}}}]
        items += [{"Update": {"TableName": f"{prefix}-readings", "Key": {"id": s(r)},
                              "UpdateExpression": "SET pooled_wh = :w REMOVE #p", "ConditionExpression": "#p = :p",
                              "ExpressionAttributeNames": {"#p": "pipeline"},
                              "ExpressionAttributeValues": {":w": n(60), ":p": s("pooling")}}} for _, r in readings]
        items.append({"Put": {"TableName": f"{prefix}-drecs", "ConditionExpression": "attribute_not_exists(serial)",
                              "Item": {"serial": s(serial), "status": s("active"), "owner_account_id": s("bench"),
                                       "country": s("KE"), "device_type": s("solar_home_system"),
                                       "offtaker_type": s("household"), "owner_status": s("bench#active"),
                                       "linking": s("pending")}}})
        items += event(serial, "bench")
        dynamodb.transact_write_items(TransactItems=[*items, counter()])
        subjects = list(dict.fromkeys(x for pair in readings for x in pair))
        batch_put("drec-links", [{"subject_id": s(x), "serial": s(serial)} for x in subjects])
        dynamodb.update_item(TableName=f"{prefix}-drecs", Key={"serial": s(serial)}, UpdateExpression="REMOVE linking")
    return blocks * 2 * per_device / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--devices", type=int, default=200)
    parser.add_argument("--readings-per-device", type=int, default=9)
    args = parser.parse_args()
    folder = tempfile.mkdtemp(prefix="drec-bench-")
    print(f"stack data and logs: {folder}")
    if True:
        stack = RunningStack(Path(folder), free_port())
        stack.start()
        try:
            key, device_ids = _register(stack, args.devices)
            readings = _readings(device_ids, args.readings_per_device)
            started = time.perf_counter()
            for i in range(0, len(readings), 1000):
                response = stack.post("/readings", {"readings": readings[i:i + 1000]}, key=key)
                assert response.status_code == 202, response.text
            pushed = time.perf_counter() - started
            dynamodb = boto3.client("dynamodb", endpoint_url=stack.endpoints["aws_endpoint_url"],
                                    region_name="us-east-1", aws_access_key_id="testing",
                                    aws_secret_access_key="testing")
            prefix = stack.endpoints["prefix"]

            def waiting() -> int:
                total = 0
                for stage in ("queued", "pooling"):
                    total += dynamodb.query(TableName=f"{prefix}-readings", IndexName="by_pipeline",
                                            KeyConditionExpression="pipeline = :p", Select="COUNT",
                                            ExpressionAttributeValues={":p": {"S": stage}})["Count"]
                return total

            def unanchored() -> int:
                def value(name: str) -> int:
                    item = dynamodb.get_item(TableName=f"{prefix}-counters", Key={"name": {"S": name}}).get("Item")
                    return int(item["value"]["N"]) if item else 0

                return sum(value(f"event_seq#{s}") - value(f"anchored_seq#{s}") for s in range(event_shards()))

            sqs = boto3.client("sqs", endpoint_url=stack.endpoints["aws_endpoint_url"], region_name="us-east-1",
                               aws_access_key_id="testing", aws_secret_access_key="testing")
            queue_urls = [sqs.get_queue_url(QueueName=f"{prefix}-{q}")["QueueUrl"] for q in ("readings", "accepted")]

            def in_queues() -> int:
                total = 0
                for url in queue_urls:
                    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[
                        "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
                    total += sum(int(v) for v in attributes.values())
                return total

            # Watch the queues (SQS is not behind the emulator's DynamoDB lock) and two counters;
            # the index count, a full scan in moto, is asked only to confirm the end.
            while True:
                time.sleep(1)
                if in_queues() or unanchored():
                    continue
                if not waiting():
                    break
            elapsed = time.perf_counter() - started
            drecs = dynamodb.scan(TableName=f"{prefix}-drecs", Select="COUNT")["Count"]
            rate = len(readings) / elapsed
            print(f"devices: {args.devices}, readings: {len(readings)} (hourly), D-RECs issued: {drecs}")
            print(f"push (HTTP, 1000 per request): {pushed:.1f} s")
            print(f"end to end (push → judged → pooled → anchored): {elapsed:.1f} s = {rate:,.0f} readings/s",
                  flush=True)
            per_device = min(args.readings_per_device, 9)
            ceiling = _raw_ceiling(stack, max(10, min(60, len(readings) // (2 * per_device))), per_device)
            print(f"emulator raw ceiling, the pipeline's writes sent alone: {ceiling:,.0f} readings/s")
            print(f"end to end / raw ceiling: {rate / ceiling:.2f}")
        finally:
            stack.stop()


if __name__ == "__main__":
    main()
