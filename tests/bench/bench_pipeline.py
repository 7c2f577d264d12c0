"""End to end through the local stack, beside the previous release, with what it consumed and would cost on AWS.

    python -m tests.bench.bench_pipeline [--devices 1000] [--hours 24] [--baseline ec401e1|none]
                                         [--preload 1000000] [--preload-baseline]

Each measurement starts a stack of its own (`python -m infra.stack up` in the release's folder, a
fresh data folder, free ports), registers the devices over HTTP, and pushes one day of hourly
readings per device (honest figures: the twin's clear-sky energy under one cloud factor per hour
shared by the fleet, ±2 % per device; night hours are sent as 0 Wh readings), 1000 per POST
/readings, hour by hour as an aggregator would. The clock runs from the first push until every
reading is judged, every accepted Wh pooled and every event anchored on the chain.

Measured, in the same run: this release on empty tables; this release with `--preload` readings
already stored (`tests.bench.preload`); the previous release (`--baseline`, checked out with
`git worktree add --detach` into a temporary folder, its own stack from its own code) on empty
tables (and preloaded with `--preload-baseline`). Then, for this release's empty-table run: the
share of handler time per stage (the dispatcher's Lambda handler durations and the API's
POST /readings durations; stages overlap in time, so shares are of their sum, not of the elapsed
time), what it consumed per 1,000 readings (`infra.usage`), and its price with
`infra/aws_prices.json`. The measured items and write units per reading are written to
`.stack/bench-pipeline.json` for `make capacity`.

The timed runs count no request units (`DREC_USAGE=calls`: only the handlers' calls and durations,
for the stage shares), since counting costs the emulator about a fifth of its busy time, inside
its lock. What a run consumes is counted in one more run of this release on empty tables
(`DREC_USAGE=1`, same workload, its own fresh stack), whose time is printed beside the others.
While the queues still hold messages the watch reads only their depths; the event counters (a scan)
are read once they are empty.
A preloaded million readings are loaded by the emulator at start (129 s on 2026-11-28, this machine).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import requests
from botocore.config import Config

from chalicelib.domain.registry import Device
from chalicelib.domain.twin.physics import clear_sky_energy
from chalicelib.services.twins import twin_of
from infra.anvil import free_port
from infra.usage import USAGE_PATH, read_invocations
from tests.bench import pipeline_cost as cost
from tests.bench.preload import write_preload
from tests.conftest import device_body
from tests.e2e.conftest import REPO, RunningStack

# The last landed release before this one (`make bench-pipeline` measures it in the same run).
BASELINE = "ec401e1"
DAY = datetime(2026, 10, 10, tzinfo=UTC)
IDLE_S = 10.0  # the quiet window measured before the push: what the schedules use with nothing to do
LOCAL_SCHEDULE_S = 1.0  # RunningStack's DREC_SCHEDULE_INTERVAL_S
STAGE_ORDER = ["intake (POST /readings)", "judge (validator, readings queue)", "issue (issuer, accepted queue)",
               "anchor (schedule)", "upkeep sweep (schedule)"]


@dataclass
class Run:
    label: str
    readings: int
    stored_before: int
    elapsed_s: float = 0.0
    pushed_s: float = 0.0
    drecs: int = 0
    accepted: int = 0
    daylight: int = 0
    usage: dict[str, Any] = field(default_factory=dict)  # emulator, lambda, api differences over the run
    idle: dict[str, Any] = field(default_factory=dict)  # the same over IDLE_S before the push
    gas: dict[str, int] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.readings / self.elapsed_s if self.elapsed_s else 0.0


def _say(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)


def _clients(stack: RunningStack) -> tuple[Any, Any]:
    """DynamoDB and SQS clients whose requests the emulator serves but does not count (the bench watching)."""
    kwargs: dict[str, Any] = {"endpoint_url": stack.endpoints["aws_endpoint_url"], "region_name": "us-east-1",
                              "aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    out = []
    for service in ("dynamodb", "sqs"):
        # The D-REC count at the end scans a table that may hold a preloaded million readings' D-RECs.
        client = boto3.client(service, config=Config(read_timeout=900, retries={"max_attempts": 2}), **kwargs)
        client.meta.events.register("before-sign.*.*", lambda request, **_: request.headers.__setitem__(
            "X-Drec-Usage", "skip"))
        out.append(client)
    return out[0], out[1]


def _register(stack: RunningStack, devices: int) -> tuple[str, list[dict[str, Any]]]:
    source = stack.post("/sources", {"name": "Bench", "kind": "aggregator"}).json()
    key = source["api_key"]
    account = stack.post("/accounts", {"name": "Bench Dev", "kind": "developer", "country": "KE"}, key=key).json()
    session = requests.Session()

    def one(i: int) -> dict[str, Any]:
        body = device_body(account["account_id"], capacity_w=100, latitude=round(-1.29 + (i % 50) * 0.01, 4))
        response = session.post(stack.url + "/devices", json=body, headers={"X-Api-Key": key}, timeout=120)
        assert response.status_code == 201, response.text
        result: dict[str, Any] = response.json()
        return result

    with ThreadPoolExecutor(4) as pool:
        return key, list(pool.map(one, range(devices)))


def _readings(devices: list[dict[str, Any]], hours: int) -> list[dict[str, Any]]:
    """One day of hourly readings per device, honest: clear-sky energy × the hour's clouds × (1 ± 2 %)."""
    rng = np.random.default_rng(7)
    starts = [DAY + timedelta(hours=h) for h in range(hours)]
    ends = [s + timedelta(hours=1) for s in starts]
    clouds = rng.uniform(0.4, 0.95, hours)
    out = []
    for record in devices:
        fields: dict[str, Any] = {k: tuple(v) if k == "linke_turbidity" else v for k, v in record.items()
                                  if k in Device.__dataclass_fields__}
        twin = twin_of(Device(**fields))
        clear = clear_sky_energy([twin] * hours, starts, ends).clear_sky_wh
        energy = clear * clouds * (1 + rng.uniform(-0.02, 0.02, hours))
        for n, start in enumerate(starts):
            out.append({"device_id": record["device_id"], "period_start": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
                        "period_end": ends[n].strftime("%Y-%m-%dT%H:%M:%SZ"), "energy_wh": int(energy[n])})
    return sorted(out, key=lambda r: (r["period_start"], r["device_id"]))


class Watch:
    """Reads the store without being counted: queues, event counters (any shards), waiting readings."""

    def __init__(self, stack: RunningStack) -> None:
        self.stack = stack
        self.dynamodb, self.sqs = _clients(stack)
        self.prefix = stack.endpoints["prefix"]
        self.queues = [self.sqs.get_queue_url(QueueName=f"{self.prefix}-{q}")["QueueUrl"]
                       for q in ("readings", "accepted")]

    def in_queues(self) -> int:
        total = 0
        for url in self.queues:
            attributes = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[
                "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
            total += sum(int(v) for v in attributes.values())
        return total

    def events(self) -> tuple[int, int]:
        """(events recorded, events anchored), summed over every `event_seq*` / `anchored_seq*` counter."""
        recorded = anchored = 0
        pages = self.dynamodb.get_paginator("scan").paginate(TableName=f"{self.prefix}-counters",
                                                             ConsistentRead=True)
        for page in pages:
            for item in page["Items"]:
                name, value = item["name"]["S"], int(item.get("value", {}).get("N", "0"))
                if name.startswith("event_seq"):
                    recorded += value
                elif name.startswith("anchored_seq"):
                    anchored += value
        return recorded, anchored

    def waiting(self, reading_ids: list[str]) -> int:
        """How many of the pushed readings still wait for the validator or the issuer (`pipeline` queued or
        pooling, in both releases), read by id: a cost that does not grow with the readings stored
        before (an index scan did, and moto's timed out at 1,000,000)."""
        return sum(1 for item in self.readings(reading_ids)
                   if item.get("pipeline", {}).get("S") in ("queued", "pooling"))

    def accepted(self, reading_ids: list[str]) -> int:
        return sum(1 for item in self.readings(reading_ids) if item.get("status", {}).get("S") == "accepted")

    def readings(self, reading_ids: list[str]) -> Iterator[dict[str, Any]]:
        table = f"{self.prefix}-readings"
        for start in range(0, len(reading_ids), 100):
            pending: dict[str, Any] = {table: {"Keys": [{"id": {"S": i}} for i in reading_ids[start:start + 100]],
                                               "ProjectionExpression": "#s, pipeline",
                                               "ExpressionAttributeNames": {"#s": "status"}, "ConsistentRead": True}}
            while pending:
                answer = self.dynamodb.batch_get_item(RequestItems=pending)
                yield from answer["Responses"].get(table, [])
                pending = answer.get("UnprocessedKeys") or {}

    def count(self, table: str, event_type: str | None = None) -> int:
        """Items of a table (of events: of one type), by scan: moto answers an index query by a scan anyway."""
        request: dict[str, Any] = {"TableName": f"{self.prefix}-{table}", "Select": "COUNT"}
        if event_type:
            request.update(FilterExpression="#t = :t", ExpressionAttributeNames={"#t": "type"},
                           ExpressionAttributeValues={":t": {"S": event_type}})
        total = 0
        for page in self.dynamodb.get_paginator("scan").paginate(**request):
            total += page["Count"]
        return total

    def reset(self) -> None:
        requests.post(self.stack.endpoints["aws_endpoint_url"] + USAGE_PATH, timeout=60)

    def usage(self) -> dict[str, Any]:
        """The emulator's tally and the dispatcher's and API's, as they stand (None parts on a release without)."""
        answer = requests.get(self.stack.endpoints["aws_endpoint_url"] + USAGE_PATH, timeout=60)
        try:
            emulator = answer.json() if answer.status_code == 200 else {}
        except ValueError:
            emulator = {}
        return {"emulator": emulator if isinstance(emulator, dict) and "requests" in emulator else {},
                "lambda": read_invocations(self.stack.data_dir, "lambda"),
                "api": read_invocations(self.stack.data_dir, "api")}


def _chain_gas(stack: RunningStack, first_block: int) -> dict[str, int]:
    from web3 import Web3

    w3 = Web3(Web3.HTTPProvider(stack.endpoints["chain_rpc"]))
    ledger = stack.endpoints["ledger_address"].lower()
    gas = batches = 0
    for number in range(first_block + 1, w3.eth.block_number + 1):
        transactions: list[Any] = list(w3.eth.get_block(number, full_transactions=True)["transactions"])
        for tx in transactions:
            if (tx.get("to") or "").lower() == ledger:
                gas += w3.eth.get_transaction_receipt(tx["hash"])["gasUsed"]
                batches += 1
    return {"gas": gas, "anchor_transactions": batches}


def _block_number(stack: RunningStack) -> int:
    from web3 import Web3

    return int(Web3(Web3.HTTPProvider(stack.endpoints["chain_rpc"])).eth.block_number)


def measure(label: str, code_dir: Path, devices: int, hours: int, preload: int, counted: bool = False) -> Run:
    folder = Path(tempfile.mkdtemp(prefix="drec-bench-"))
    _say(f"{label}: stack data and logs in {folder}")
    stored = 0
    if preload:
        started = time.perf_counter()
        held = write_preload(folder / "store", "drec-local", preload)
        stored = held["readings"]
        _say(f"{label}: preloaded {held['readings']:,} accepted, pooled readings of {held['devices']:,} other "
             f"devices into the snapshot in {time.perf_counter() - started:.0f} s (the emulator loads them at start)")
    # A million stored readings take the emulator minutes to load (see tests.bench.preload): a generous timeout.
    stack = RunningStack(folder, free_port(), env={"DREC_STORE_LOAD_S": "7200",
                                                         "DREC_USAGE": "1" if counted else "calls"}, code_dir=code_dir)
    started = time.perf_counter()
    stack.start(timeout_s=7200)
    _say(f"{label}: stack up in {time.perf_counter() - started:.0f} s")
    try:
        key, registered = _register(stack, devices)
        readings = _readings(registered, hours)
        run = Run(label, len(readings), stored, daylight=sum(1 for r in readings if r["energy_wh"] > 0))
        watch = Watch(stack)
        _say(f"{label}: {devices} devices registered; {len(readings):,} readings to push")
        time.sleep(2.0)
        quiet = watch.usage()
        time.sleep(IDLE_S)
        before = watch.usage()
        run.idle = cost.difference(before, quiet)
        watch.reset()  # the emulator's tally starts again at the push (its hot keys are of the run alone)
        first_block = _block_number(stack)
        started = time.perf_counter()
        reading_ids: list[str] = []
        for i in range(0, len(readings), 1000):
            response = stack.post("/readings", {"readings": readings[i:i + 1000]}, key=key)
            assert response.status_code == 202, response.text
            reading_ids += [a["reading_id"] for a in response.json()["accepted"]]
        run.pushed_s = time.perf_counter() - started
        _say(f"{label}: pushed in {run.pushed_s:.1f} s")
        shown = time.perf_counter()
        while True:
            time.sleep(1)
            queued = watch.in_queues()
            if time.perf_counter() - shown > 15:
                shown = time.perf_counter()
                _say(f"{label}: {time.perf_counter() - started:.0f} s: {queued} messages in the queues")
            if queued:
                continue
            recorded, anchored = watch.events()
            if recorded != anchored:
                continue
            if not watch.waiting(reading_ids):
                break
        run.elapsed_s = time.perf_counter() - started
        time.sleep(1.5)  # the dispatcher and API write their tallies every second
        after = watch.usage()
        run.usage = {"emulator": after["emulator"], "lambda": cost.difference(after["lambda"], before["lambda"]),
                     "api": cost.difference(after["api"], before["api"])}
        run.gas = _chain_gas(stack, first_block)
        run.drecs = watch.count("drecs")
        run.accepted = watch.accepted(reading_ids)
        _say(f"{label}: {run.readings:,} readings in {run.elapsed_s:.1f} s = {run.rate:,.1f} readings/s; "
             f"{run.accepted:,} accepted, {run.drecs:,} D-RECs issued")
        return run
    finally:
        stack.stop()
        if os.environ.get("DREC_BENCH_KEEP"):
            _say(f"{label}: kept {folder} (DREC_BENCH_KEEP)")
        else:
            shutil.rmtree(folder, ignore_errors=True)


def checkout(ref: str) -> Path:
    folder = Path(tempfile.mkdtemp(prefix="drec-baseline-")) / "release"
    subprocess.run(["git", "worktree", "add", "--detach", str(folder), ref], cwd=REPO, check=True,
                   capture_output=True)
    for link in (".venv", "node_modules"):
        (folder / link).symlink_to((REPO / link).resolve())
    return folder


def remove_checkout(folder: Path) -> None:
    subprocess.run(["git", "worktree", "remove", "--force", str(folder)], cwd=REPO, check=False, capture_output=True)
    shutil.rmtree(folder.parent, ignore_errors=True)


def _memory_mb() -> int:
    config = json.loads((REPO / ".chalice" / "config.json").read_text())
    return int(config["stages"]["aws"].get("lambda_memory_size", 128))


def report_speed(runs: list[Run]) -> None:
    print("\n== End to end (pushed → judged → pooled → issued → anchored) ==")
    print(f"{'release':<34} {'stored before':>14} {'readings':>9} {'seconds':>8} {'readings/s':>11}")
    for run in runs:
        print(f"{run.label:<34} {run.stored_before:>14,} {run.readings:>9,} {run.elapsed_s:>8.1f} {run.rate:>11.1f}")
    now = next((r for r in runs if r.label.startswith("this release") and not r.stored_before), None)
    loaded = next((r for r in runs if r.label.startswith("this release") and r.stored_before), None)
    before = next((r for r in runs if r.label.startswith("previous") and not r.stored_before), None)
    if now and before:
        print(f"this release / previous release (empty tables): {now.rate / before.rate:.2f}×")
    if now:
        print(f"target ≥ 250 readings/s on empty tables: {'met' if now.rate >= 250 else 'missed'} ({now.rate:.1f})")
    if now and loaded:
        ratio = loaded.rate / now.rate
        print(f"with {loaded.stored_before:,} readings stored: {ratio:.0%} of the empty-table rate "
              f"(target ≥ 80 % of 250 = 200 readings/s: {'met' if loaded.rate >= 200 else 'missed'})")


def report_stages(run: Run) -> None:
    every = cost.stage_seconds(run.usage.get("lambda", {}), run.usage.get("api", {}))
    seconds = {stage: s for stage, s in every.items() if s >= 0.05}
    total = sum(seconds.values())
    if not total:
        print("\n(no stage durations: this release's dispatcher and API do not tally them)")
        return
    print(f"\n== Share of handler time per stage ({run.label}; stages overlap, so of their sum: {total:.1f} s) ==")
    for stage in sorted(seconds, key=lambda s: STAGE_ORDER.index(s) if s in STAGE_ORDER else 99):
        print(f"  {stage:<40} {seconds[stage]:>8.1f} s {seconds[stage] / total:>6.1%}")


def corrected(run: Run) -> tuple[dict[str, Any], float]:
    """The run's usage with the anchoring schedule at AWS's rate (every minute) instead of the local 1 s tick.

    Each tick beyond one a minute is taken off at what an idle tick used (measured over IDLE_S before
    the push: the schedules' reads and their Lambda calls); the ticks that anchored work keep theirs.
    Returns the usage and the number of ticks taken off.
    """
    idle_ticks = run.idle.get("lambda", {}).get("anchor_events", {}).get("invocations", 0.0)
    run_ticks = run.usage.get("lambda", {}).get("anchor_events", {}).get("invocations", 0.0)
    extra = max(0.0, run_ticks - run.elapsed_s / cost.AWS_SCHEDULE_S)
    if not idle_ticks or not extra:
        return run.usage, 0.0
    idle = {"emulator": run.idle.get("emulator", {}),
            "lambda": {k: v for k, v in run.idle.get("lambda", {}).items() if k == "anchor_events"}}
    return cost.difference(run.usage, cost.scaled(idle, extra / idle_ticks)), extra


def report_cost(run: Run, devices: int) -> dict[str, Any]:
    usage, ticks = corrected(run)
    used = cost.Consumption.of(run.readings, run.drecs, usage.get("emulator", {}), usage.get("lambda", {}),
                               usage.get("api", {}))
    prices = cost.load_prices()
    memory = _memory_mb()
    per_k = 1000 / run.readings
    print(f"\n== Consumed per 1,000 readings ({run.label}; anchoring ticks at AWS's 1-minute rate: "
          f"{ticks:,.0f} idle ticks of the local {LOCAL_SCHEDULE_S:.0f} s schedule taken off) ==")
    print(f"  DynamoDB write request units {used.write_units * per_k:>10,.1f}   (of which to indexes: "
          f"{sum(t.get('index_write_units', 0) for t in used.tables.values()) * per_k:,.1f})")
    print(f"  DynamoDB read request units  {used.read_units * per_k:>10,.1f}")
    print(f"  DynamoDB storage added       {used.storage_bytes * per_k / 1024:>10,.1f} KB")
    print(f"  SQS requests                 {used.sqs_requests * per_k:>10,.1f}   (idle empty receives left out)")
    print(f"  S3 requests                  {(used.s3_put + used.s3_get) * per_k:>10,.1f}")
    print(f"  Lambda invocations           {used.lambda_invocations * per_k:>10,.1f}   "
          f"({used.lambda_billed_ms * per_k / 1000:,.1f} s billed at {memory} MB: local wall-clock durations, "
          "waiting for the emulator included)")
    print(f"  API requests                 {used.api_requests * per_k:>10,.1f}")
    busy = run.usage.get("emulator", {}).get("extra", {})
    if "accounting_s" in busy:
        print(f"  (counting them took the emulator {busy['accounting_s']:.1f} s inside its DynamoDB lock, "
              f"in a run of {run.elapsed_s:.1f} s)")
    print("  per table (items written, write units incl. indexes, read units) per 1,000 readings:")
    for table, t in sorted(used.tables.items()):
        print(f"    {table:<32} {t.get('items_written', 0) * per_k:>9,.1f} "
              f"{(t.get('write_units', 0) + t.get('index_write_units', 0)) * per_k:>9,.1f} "
              f"{t.get('read_units', 0) * per_k:>9,.1f}")
    priced = cost.costs(used, prices, memory)
    total = sum(priced.values())
    year = cost.per_device_year(used, prices, memory)
    print(f"\n== Cost at AWS on-demand prices ({prices['region']}, recorded {prices['recorded_on']}, "
          "not re-checked online; free tiers left out) ==")
    for item, usd in priced.items():
        print(f"  {item:<36} ${usd / run.readings * 1e6:>9.4f} per million readings")
    print(f"  {'total':<36} ${total / run.readings * 1e6:>9.4f} per million readings")
    if run.drecs:
        print(f"  per issued D-REC (1 kWh): ${total / run.drecs:.6f}  ({run.drecs:,} issued)")
    print(f"  per device-year, a 100 W device reporting hourly ({cost.HOURS_A_YEAR:,} readings, "
          f"{run.daylight / run.readings:.0%} of them daylight in this workload):")
    for item, usd in year.items():
        print(f"    {item:<30} ${usd:.5f}")
    verdict = "met" if year["total (year one)"] < cost.TARGET_PER_DEVICE_YEAR else "missed"
    print(f"  target under ${cost.TARGET_PER_DEVICE_YEAR} per device-year: {verdict}")
    print(f"  monthly bill for 1,000,000 such devices: ${year['requests'] * 1e6 / 12:,.0f} in requests "
          f"+ storage growing ${year['each further year kept adds'] * 1e6 / 12 / 12:,.2f} a month, every month")
    if run.gas.get("anchor_transactions"):
        print(f"  chain (not AWS, not priced): {run.gas['anchor_transactions']} anchoring transactions, "
              f"{run.gas['gas'] / run.gas['anchor_transactions']:,.0f} gas each, "
              f"{run.gas['gas'] / run.readings:,.1f} gas per reading")
    return {"readings": run.readings, "devices": devices, "drecs": run.drecs, "tables": used.tables,
            "hot_keys": usage.get("emulator", {}).get("hot_keys", {}), "label": run.label,
            "anchor_batches": run.gas.get("anchor_transactions", 0),
            "write_units": used.write_units, "read_units": used.read_units, "storage_bytes": used.storage_bytes}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--hours", type=int, default=24, help="hourly readings per device (one day: 24)")
    parser.add_argument("--baseline", default=BASELINE, help="git ref of the previous release, or 'none'")
    parser.add_argument("--preload", type=int, default=1_000_000,
                        help="readings stored before the second run (0: none)")
    parser.add_argument("--preload-baseline", action="store_true", help="measure the previous release preloaded too")
    args = parser.parse_args()
    runs = [measure("this release", REPO, args.devices, args.hours, 0)]
    counted = measure("this release, counting usage", REPO, args.devices, args.hours, 0, counted=True)
    if args.preload:
        runs.append(measure("this release, preloaded", REPO, args.devices, args.hours, args.preload))
    if args.baseline != "none":
        folder = checkout(args.baseline)
        try:
            runs.append(measure(f"previous release {args.baseline}", folder, args.devices, args.hours, 0))
            if args.preload and args.preload_baseline:
                runs.append(measure(f"previous release {args.baseline}, preloaded", folder, args.devices,
                                    args.hours, args.preload))
        finally:
            remove_checkout(folder)
    report_speed([*runs, counted])
    report_stages(runs[0])
    measured = report_cost(counted, args.devices)
    out = REPO / ".stack" / "bench-pipeline.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), **measured},
                              indent=2))
    print(f"\nmeasured items and units per reading written to {out} (read by `make capacity`)")


if __name__ == "__main__":
    main()
