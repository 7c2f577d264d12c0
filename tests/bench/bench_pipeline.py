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


def _raw_ceiling(stack: RunningStack, transactions: int) -> float:
    """Transactions per second the emulator takes for items shaped like the validator's."""
    dynamodb = boto3.client("dynamodb", endpoint_url=stack.endpoints["aws_endpoint_url"], region_name="us-east-1",
                            aws_access_key_id="testing", aws_secret_access_key="testing")
    table = f"{stack.endpoints['prefix']}-counters"
    started = time.perf_counter()
    for t in range(transactions):
        items = [{"Put": {"TableName": table, "Item": {"name": {"S": f"bench-{t}-{i}"}, "value": {"N": str(i)}}}}
                 for i in range(60)]
        dynamodb.transact_write_items(TransactItems=items)
    return transactions / (time.perf_counter() - started)


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
                seq = int(dynamodb.get_item(TableName=f"{prefix}-counters", Key={"name": {"S": "event_seq"}})[
                    "Item"]["value"]["N"])
                anchored = dynamodb.get_item(TableName=f"{prefix}-counters", Key={"name": {"S": "anchored_seq"}})
                return seq - int(anchored.get("Item", {}).get("value", {}).get("N", "0"))

            while waiting() or unanchored():
                time.sleep(1)
            elapsed = time.perf_counter() - started
            drecs = dynamodb.scan(TableName=f"{prefix}-drecs", Select="COUNT")["Count"]
            transactions = max(20, len(readings) // 25)
            ceiling_tx = _raw_ceiling(stack, min(transactions, 200))
            # The validator commits ~20 readings per transaction; issuance ~25: the raw ceiling in
            # readings/s is the emulator's transaction rate times readings per validator transaction.
            ceiling = ceiling_tx * 20
            rate = len(readings) / elapsed
            print(f"devices: {args.devices}, readings: {len(readings)} (hourly), D-RECs issued: {drecs}")
            print(f"push (HTTP, 1000 per request): {pushed:.1f} s")
            print(f"end to end (push → judged → pooled → anchored): {elapsed:.1f} s = {rate:,.0f} readings/s")
            print(f"emulator raw ceiling, same transaction shape: {ceiling_tx:,.1f} tx/s ≈ {ceiling:,.0f} readings/s")
            print(f"end to end / raw ceiling: {rate / ceiling:.2f}")
        finally:
            stack.stop()


if __name__ == "__main__":
    main()
