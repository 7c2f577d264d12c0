"""Time of `GET /drecs/{serial}/verify` for a D-REC of 200 contributions, against the 2 s target.

    python -m tests.bench.bench_verify [--runs N] [--devices D]

Builds, on the in-process emulator (moto) plus its own local Anvil: one account, D devices,
200 hourly readings of 5 Wh spread over them (one POST /readings), judged and issued by the
queue handlers into one D-REC of exactly 200 contributions, every event anchored on the
chain. Then calls the verify route N times through the Chalice test client and prints the
median and worst time, the checks made, and the DynamoDB and chain calls of one run. The
route must answer in process: `requests.get` (the verifier's HTTP reader) raises while it runs.
Then N times more with moto writing its read answers as plain JSON, which separates what the
emulator's response serializer costs from what the verification costs.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import statistics
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from unittest import mock

TARGET_S = 2.0
CONTRIBUTIONS = 200
ENERGY_WH = 5
PREFIX = "drec-bench-verify"
OPERATOR_KEY = "drec_test_operator_key"  # the key tests.conftest.Api sends


def _readings(device_ids: list[str]) -> list[dict[str, Any]]:
    """200 daytime hours in October 2026 (Nairobi), round-robin over the devices, 5 Wh each."""
    hours = [(day, hour) for day in range(1, 29) for hour in range(6, 14)]
    out = []
    for n in range(CONTRIBUTIONS):
        device = device_ids[n % len(device_ids)]
        day, hour = hours[n // len(device_ids)]
        out.append({"device_id": device, "period_start": f"2026-10-{day:02d}T{hour:02d}:00:00Z",
                    "period_end": f"2026-10-{day:02d}T{hour + 1:02d}:00:00Z", "energy_wh": ENERGY_WH})
    return out


@contextmanager
def counting_calls(client: Any) -> Iterator[Counter[str]]:
    """Operations a boto3 client makes while the block runs, and the seconds spent in them (`seconds`)."""
    calls: Counter[str] = Counter()
    spent: Counter[str] = Counter()
    original = client._make_api_call

    def counted(operation: str, params: dict[str, Any]) -> Any:
        calls[operation] += 1
        started = time.perf_counter()
        try:
            return original(operation, params)
        finally:
            spent["seconds"] += time.perf_counter() - started

    client._make_api_call = counted
    try:
        yield calls
    finally:
        calls["_seconds_x1000"] = int(spent["seconds"] * 1000)
        client._make_api_call = original


@contextmanager
def plain_json_reads() -> Iterator[None]:
    """moto answering GetItem, BatchGetItem and Query with its result as JSON, not through its response
    serializer, which checks every member of every attribute value against the service model and costs
    about 0.2 ms per value read: most of a verification's time in process, and none of it on DynamoDB."""
    from moto.core.responses import ActionResult
    from moto.dynamodb.responses import DynamoResult

    def plain(result: Any, context: Any) -> Any:
        if str(context.operation_model.name) not in ("GetItem", "BatchGetItem", "Query"):
            return ActionResult.execute_result(result, context)
        text = json.dumps(result.result, default=lambda v: base64.b64encode(v).decode() if isinstance(v, bytes)
                          else str(v))
        return 200, {"Content-Type": "application/x-amz-json-1.0"}, text

    with mock.patch.object(DynamoResult, "execute_result", plain):
        yield


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench.bench_verify")
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--devices", type=int, default=5)
    parser.add_argument("--workers", type=int, default=8, help="threads the in-process reader fetches with")
    args = parser.parse_args(argv)

    from chalice.test import Client
    from moto import mock_aws

    from chalicelib.adapters.chain import ChainLedger
    from chalicelib.services.anchoring import anchor_pending
    from infra.anvil import DEV_PRIVATE_KEY
    from infra.moto_transactions import install
    from infra.provision import provision
    from tests.conftest import Api, device_body, pump
    from tests.support.chain_fixtures import running_anvil

    with running_anvil() as node:
        address = ChainLedger(node.rpc_url, DEV_PRIVATE_KEY).deploy()
        os.environ.update({"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                           "AWS_DEFAULT_REGION": "us-east-1", "DREC_PREFIX": PREFIX, "DREC_OPERATOR_KEY": OPERATOR_KEY,
                           "DREC_CHAIN_RPC": node.rpc_url, "DREC_CHAIN_PRIVATE_KEY": DEV_PRIVATE_KEY,
                           "DREC_LEDGER_ADDRESS": address})
        os.environ.pop("AWS_ENDPOINT_URL", None)
        install()
        with mock_aws():
            provision(PREFIX)
            from chalicelib import bootstrap

            bootstrap.reset()
            import app
            from chalicelib.api.drecs import InProcessReads

            InProcessReads.WORKERS = args.workers
            with Client(app.app) as client:
                api = Api(client)
                c = bootstrap.container()
                serial = _build(api, c, args.devices, device_body, pump)
                anchored = anchor_pending(c.events, c.batches, c.chain, c.ledger_bucket, batch_size=1000)
                print(f"D-REC {serial}: {CONTRIBUTIONS} contributions of {ENERGY_WH} Wh from {args.devices} devices; "
                      f"{anchored['events']} events anchored in {anchored['batches']} batch(es)")
                times, checks, calls = [], 0, Counter[str]()
                plain: list[float] = []
                with mock.patch("chalicelib.verify.requests.get", side_effect=AssertionError("HTTP from verify")):
                    for run in range(args.runs):
                        with counting_calls(c.client("dynamodb")) as counted:
                            started = time.perf_counter()
                            response = client.http.get(f"/drecs/{serial}/verify")
                            times.append(time.perf_counter() - started)
                        body = json.loads(response.body)
                        assert response.status_code == 200 and body["ok"], body
                        checks, calls = len(body["checks"]), counted if run == 0 else calls
                    with plain_json_reads():
                        for _ in range(args.runs):
                            started = time.perf_counter()
                            response = client.http.get(f"/drecs/{serial}/verify")
                            plain.append(time.perf_counter() - started)
                            assert json.loads(response.body) == body  # the same answer, only faster reads
    median, worst = statistics.median(times), max(times)
    inside = calls.pop("_seconds_x1000") / 1000
    print(f"verify: {checks} checks, all ok; no HTTP to the API; DynamoDB calls per run: {sum(calls.values())} "
          f"({', '.join(f'{k} {v}' for k, v in sorted(calls.items()))}), {inside:.2f} s inside them "
          f"(summed over {args.workers} reader thread(s); {1000 * inside / max(1, sum(calls.values())):.1f} ms a call)")
    print(f"first run: {times[0]:.3f} s wall, of which at least {max(0.0, times[0] - inside):.3f} s outside DynamoDB "
          "(verifier, chain, JSON)" if args.workers == 1 else f"first run: {times[0]:.3f} s wall")
    print(f"verify time over {args.runs} runs: median {median:.3f} s, worst {worst:.3f} s "
          f"(target {TARGET_S:.1f} s: {'met' if worst < TARGET_S else 'MISSED'})")
    print(f"the same, with moto's read answers written as plain JSON (what its response serializer costs): "
          f"median {statistics.median(plain):.3f} s, worst {max(plain):.3f} s")
    return 0


def _build(api: Any, c: Any, devices: int, device_body: Any, pump: Any) -> str:
    _, source = api.post("/sources", {"name": "Bench", "kind": "aggregator"})
    key = source["api_key"]
    _, account = api.post("/accounts", {"name": "Bench Dev", "kind": "developer", "country": "KE"}, key=key)
    device_ids = [api.post("/devices", device_body(account["account_id"], capacity_w=11), key=key)[1]["device_id"]
                  for _ in range(devices)]
    status, body = api.post("/readings", {"readings": _readings(device_ids)}, key=key)
    assert status == 202 and not body["errors"], body
    pump(c, rounds=50)
    _, page = api.get(f"/drecs?owner_account_id={account['account_id']}")
    (listed,) = page["items"]
    _, drec = api.get(f"/drecs/{listed['serial']}")
    assert len(drec["contributions"]) == CONTRIBUTIONS, len(drec["contributions"])
    return str(drec["serial"])


if __name__ == "__main__":
    raise SystemExit(main())
