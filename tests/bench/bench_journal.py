"""What the emulator's write-ahead journal costs and how fast a stopped or killed store comes back.

    python -m tests.bench.bench_journal [--items 130000] [--transactions 3000]

On loopback, one client: the same workload against the emulator without a journal (memory
only, the previous release's run-time behaviour), with the journal (written to the OS before
each answer: survives kill -9), and with DREC_JOURNAL_FSYNC=1 (survives power loss). The
workload: `--transactions` TransactWriteItems of 3 items each (a reading's shape: item,
counter, event), timed, then `--items` items by BatchWriteItem to grow the store. Then, with
the journal: the time SIGTERM takes to stop the process, the start after `kill -9` (load the
snapshot, replay the journal, compact into one cut) and the start after that (snapshot only).
The previous release stopped by scanning every table through the emulator (about 8 minutes at
127,375 items, measured in an earlier session; not re-run here).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import boto3

from infra.anvil import free_port
from infra.provision import provision
from infra.resources import physical
from infra.stack import wait_http

REPO = Path(__file__).resolve().parents[2]
PREFIX = "drec-bench"
CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing", "region_name": "us-east-1"}


def _start(port: int, data: Path | None, fsync: bool = False) -> tuple[subprocess.Popen[bytes], float]:
    env = dict(os.environ, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
               AWS_DEFAULT_REGION="us-east-1", DREC_JOURNAL_FSYNC="1" if fsync else "0")
    env.pop("AWS_ENDPOINT_URL", None)
    args = [sys.executable, "-m", "infra.emulator", "--port", str(port)]
    if data:
        args += ["--data", str(data), "--prefix", PREFIX]
    started = time.monotonic()
    proc = subprocess.Popen(args, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_http(f"http://127.0.0.1:{port}/moto-api/", 900, proc)
    return proc, time.monotonic() - started


def _client(port: int) -> Any:
    return boto3.session.Session(**CREDENTIALS).client("dynamodb", endpoint_url=f"http://127.0.0.1:{port}")


def _transactions(dynamodb: Any, count: int) -> float:
    readings, counters, events = (physical(PREFIX, t) for t in ("readings", "counters", "events"))
    started = time.perf_counter()
    for n in range(count):
        dynamodb.transact_write_items(TransactItems=[
            {"Put": {"TableName": readings, "Item": {"id": {"S": f"r{n}"}, "energy_wh": {"N": "42"},
                                                     "status": {"S": "queued"}},
                     "ConditionExpression": "attribute_not_exists(id)"}},
            {"Update": {"TableName": counters, "Key": {"name": {"S": "event_seq#0"}},
                        "UpdateExpression": "ADD #v :one", "ExpressionAttributeNames": {"#v": "value"},
                        "ExpressionAttributeValues": {":one": {"N": "1"}}}},
            {"Put": {"TableName": events, "Item": {"id": {"S": f"ev-0-{n + 1:012d}"}, "seq": {"N": str(n + 1)},
                                                   "type": {"S": "ReadingAccepted"},
                                                   "body_json": {"S": "{}" * 40}}}},
        ])
    return count / (time.perf_counter() - started)


def _grow(dynamodb: Any, items: int) -> None:
    readings = physical(PREFIX, "readings")
    for start in range(0, items, 25):
        batch = [{"PutRequest": {"Item": {"id": {"S": f"g{n}"}, "energy_wh": {"N": "42"}, "status": {"S": "accepted"},
                                          "device_id": {"S": f"dev-{n % 1000}"}}}}
                 for n in range(start, min(items, start + 25))]
        dynamodb.batch_write_item(RequestItems={readings: batch})


def _stop(proc: subprocess.Popen[bytes], sig: int) -> float:
    started = time.monotonic()
    proc.send_signal(sig)
    proc.wait(600)
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=130_000)
    parser.add_argument("--transactions", type=int, default=3000)
    args = parser.parse_args()
    print(f"emulator write path, {args.transactions} transactions of 3 items, one client on loopback:")
    with tempfile.TemporaryDirectory() as folder:
        for label, data, fsync in (("memory only (previous release)", None, False),
                                   ("journal, written before answering", Path(folder) / "a", False),
                                   ("journal + fsync per write", Path(folder) / "b", True)):
            port = free_port()
            proc, _ = _start(port, data, fsync)
            if data is None:
                os.environ.update(AWS_ENDPOINT_URL=f"http://127.0.0.1:{port}", AWS_ACCESS_KEY_ID="testing",
                                  AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1")
                provision(PREFIX, boto3.session.Session(), notifications=False)
            rate = _transactions(_client(port), args.transactions)
            print(f"  {label:36s} {rate:8.0f} transactions/s")
            _stop(proc, signal.SIGKILL)

        data = Path(folder) / "c"
        port = free_port()
        proc, _ = _start(port, data)
        dynamodb = _client(port)
        _transactions(dynamodb, args.transactions)
        grow_started = time.monotonic()
        _grow(dynamodb, args.items)
        grow_s = time.monotonic() - grow_started
        stored = args.items + 3 * args.transactions
        journal = sum(p.stat().st_size for p in data.glob("journal-*.log")) / 1e6
        print(f"\nstore of {stored:,} items ({args.items:,} by BatchWriteItem in {grow_s:.0f} s), "
              f"journal {journal:.0f} MB:")
        print(f"  stop (SIGTERM)                        {_stop(proc, signal.SIGTERM):6.2f} s")
        proc, replay_s = _start(port, data)
        print(f"  start after the stop: replay + compact {replay_s:6.2f} s")
        print(f"  kill -9                               {_stop(proc, signal.SIGKILL):6.2f} s")
        proc, load_s = _start(port, data)
        print(f"  start from the snapshot               {load_s:6.2f} s")
        pages = _client(port).get_paginator("scan").paginate(TableName=physical(PREFIX, "readings"), Select="COUNT")
        count = sum(page["Count"] for page in pages)
        print(f"  readings after both restarts: {count:,} of {args.items + args.transactions:,} written")
        _stop(proc, signal.SIGTERM)


if __name__ == "__main__":
    main()
