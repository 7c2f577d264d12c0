"""Chaos on the running stack: readings keep flowing while each part is killed (kill -9) in turn
and the chain stops answering for a minute; afterwards nothing is lost or counted twice.

Its own stack (parts are killed here). Afterwards:
- every reading the API acknowledged is stored and judged exactly once (an accepted one has
  exactly one `ReadingAccepted` event, the others none);
- every whole kWh is issued once: per pool, accepted Wh = 1000 x D-RECs issued + a remainder
  under 1000, and the pools together hold exactly the accepted readings' judged Wh;
- every event is anchored once: the contract's count equals the store's highest event and the
  whole-ledger audit (`python -m chalicelib.audit`) recomputes every batch root and passes;
- writes work.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
import requests

from chalicelib.adapters.chain import ChainLedger
from tests.conftest import device_body

from .conftest import REPO, RunningStack, wait_for

DEVICES = 12
BATCH = 10
HOURS = range(5, 12)  # UTC daylight hours in Nairobi, where device_body puts devices
FINAL_STATUSES = {"accepted", "rejected", "flagged"}


def _pids(stack: RunningStack) -> dict[str, int | None]:
    return json.loads((stack.data_dir / "parts.json").read_text())


class Pusher:
    """An aggregator that keeps sending readings, retrying each batch until it is acknowledged."""

    def __init__(self, stack: RunningStack, key: str, devices: list[str]) -> None:
        self.stack, self.key, self.devices = stack, key, devices
        self.acknowledged: dict[str, int] = {}  # reading_id -> energy_wh
        self.retries = 0
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def readings(self) -> Any:
        day = datetime(2026, 9, 1, tzinfo=UTC)
        while True:
            for hour in HOURS:
                start = day + timedelta(hours=hour)
                for n, device in enumerate(self.devices):
                    yield {"device_id": device, "period_start": start.isoformat().replace("+00:00", "Z"),
                           "period_end": (start + timedelta(hours=1)).isoformat().replace("+00:00", "Z"),
                           "energy_wh": 30 + (n + hour) % 7}
            day += timedelta(days=1)

    def send(self, batch: list[dict[str, Any]]) -> None:
        while True:
            try:
                answer = requests.post(self.stack.url + "/readings", json={"readings": batch},
                                       headers={"X-Api-Key": self.key}, timeout=30)
                if answer.status_code == 202 and not answer.json()["errors"]:
                    for item in answer.json()["accepted"]:
                        self.acknowledged[item["reading_id"]] = batch[item["index"]]["energy_wh"]
                    return
                assert answer.status_code >= 500 or answer.status_code == 409, answer.text  # never a 4xx
            except requests.RequestException:
                pass  # a part is down: send the same batch again, as an aggregator would
            self.retries += 1
            time.sleep(0.5)

    def run(self) -> None:
        source = self.readings()
        while not self.stopping.is_set():
            self.send([next(source) for _ in range(BATCH)])
            time.sleep(0.5)  # about what the pipeline drains here, so the backlog stays short


def _settled(stack: RunningStack, pusher: Pusher, dynamodb: Any, ledger: ChainLedger) -> dict[str, Any] | None:
    prefix = stack.endpoints["prefix"]
    statuses = {}
    for reading_id in pusher.acknowledged:
        item = dynamodb.get_item(TableName=f"{prefix}-readings", Key={"id": {"S": reading_id}}).get("Item")
        statuses[reading_id] = item["status"]["S"] if item else "missing"
        if statuses[reading_id] not in FINAL_STATUSES:
            return None
    waiting = dynamodb.scan(TableName=f"{prefix}-readings", IndexName="by_pipeline", Select="COUNT")["Count"]
    shards = int(stack.get("/ledger").json()["event_shards"])
    counters = [dynamodb.get_item(TableName=f"{prefix}-counters", Key={"name": {"S": f"event_seq#{s}"}}).get("Item")
                for s in range(shards)]
    highest = [int(c["value"]["N"]) if c else 0 for c in counters]
    if waiting or [n - 1 for n in ledger.next_seqs(shards)] != highest:
        return None
    return {"statuses": statuses, "highest": sum(highest), "shards": shards}


@pytest.mark.timeout(900)
def test_nothing_is_lost_or_counted_twice_when_parts_die_and_the_chain_stalls(own_stack: RunningStack) -> None:
    stack = own_stack
    endpoints = stack.endpoints
    dynamodb = boto3.client("dynamodb", endpoint_url=endpoints["aws_endpoint_url"], region_name="us-east-1",
                            aws_access_key_id="testing", aws_secret_access_key="testing")
    ledger = ChainLedger.reader(endpoints["chain_rpc"], endpoints["ledger_address"])
    source = stack.post("/sources", {"name": "Chaos Agg", "kind": "aggregator"}).json()
    key = source["api_key"]
    account = stack.post("/accounts", {"name": "Chaos Dev", "kind": "developer", "country": "KE"}, key=key).json()
    devices = [stack.post("/devices", device_body(account["account_id"]), key=key).json()["device_id"]
               for _ in range(DEVICES)]

    # GIVEN readings flowing
    pusher = Pusher(stack, key, devices)
    pusher.thread.start()
    faults: list[str] = []
    try:
        wait_for("first readings acknowledged", lambda: len(pusher.acknowledged) >= 2 * BATCH, timeout_s=60)
        # WHEN each part is killed in turn, the next only once the last one is back and readings flow again
        for part in ("moto", "chalice", "dispatcher", "anvil"):
            killed = _pids(stack)[part]
            assert killed
            os.kill(killed, signal.SIGKILL)
            faults.append(f"kill -9 {part}")
            wait_for(f"{part} restarted", lambda p=part, k=killed: _pids(stack)[p] not in (None, k),  # type: ignore
                     timeout_s=120)
            flowing = len(pusher.acknowledged)
            wait_for(f"readings flowing after {part}", lambda n=flowing: len(pusher.acknowledged) > n,  # type: ignore
                     timeout_s=120)
        # AND the chain stops answering for a minute while events wait to be anchored
        anvil = _pids(stack)["anvil"]
        assert anvil
        os.kill(anvil, signal.SIGSTOP)
        faults.append("anvil stopped (SIGSTOP) for 60 s")
        try:
            time.sleep(60)
        finally:
            os.kill(anvil, signal.SIGCONT)
        time.sleep(5)
    finally:
        pusher.stopping.set()
        pusher.thread.join(60)
    assert own_stack.proc is not None and own_stack.proc.poll() is None

    # THEN, once the pipeline has drained, every acknowledged reading was judged and is final
    settled = wait_for("pipeline drained and anchored", lambda: _settled(stack, pusher, dynamodb, ledger),
                       timeout_s=400)
    statuses = settled["statuses"]
    assert "missing" not in statuses.values()
    # AND judged exactly once: one ReadingAccepted per accepted reading, none for the others
    verdicts: Counter[str] = Counter()
    for shard in range(settled["shards"]):
        cursor = None
        while True:
            page = stack.get("/events", limit=1000, shard=shard, **({"cursor": cursor} if cursor else {})).json()
            verdicts.update(e["subject_id"] for e in page["items"] if e["type"] == "ReadingAccepted")
            cursor = page.get("next_cursor")
            if not cursor:
                break
    assert {r: verdicts[r] for r, status in statuses.items() if verdicts[r] != (status == "accepted")} == {}
    # AND every whole kWh issued once: the pools hold exactly the accepted Wh, each under 1000 left over
    prefix = endpoints["prefix"]
    accepted_wh = 0
    for reading_id, status in statuses.items():
        if status == "accepted":
            item = dynamodb.get_item(TableName=f"{prefix}-readings", Key={"id": {"S": reading_id}})["Item"]
            accepted_wh += int(item.get("judged_energy_wh", item["energy_wh"])["N"])
    pools = dynamodb.scan(TableName=f"{prefix}-pools")["Items"]
    pooled = sum(int(p.get("accepted_wh", {"N": "0"})["N"]) for p in pools)
    issued = sum(int(p.get("issued_count", {"N": "0"})["N"]) for p in pools)
    assert pooled == accepted_wh
    assert all(0 <= int(p["accepted_wh"]["N"]) - 1000 * int(p["issued_count"]["N"]) < 1000 for p in pools
               if "accepted_wh" in p)
    drecs = dynamodb.scan(TableName=f"{prefix}-drecs", Select="COUNT")["Count"]
    assert drecs == issued and issued >= 1
    # AND every event anchored once, every batch root recomputed from the events by the audit
    audit = subprocess.run([sys.executable, "-m", "chalicelib.audit", "--api", stack.url, "--rpc",
                            endpoints["chain_rpc"]], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert audit.returncode == 0, audit.stdout[-3000:] + audit.stderr[-3000:]
    # AND writes work
    after = stack.post("/devices", device_body(account["account_id"]), key=key)
    assert after.status_code == 201, after.text
    print(f"\nchaos: {len(pusher.acknowledged)} readings acknowledged, {pusher.retries} batch retries, "
          f"faults: {', '.join(faults)}; {Counter(statuses.values())}; {issued} D-RECs; "
          f"{settled['highest']} events anchored; audit: {audit.stdout.strip().splitlines()[-1]}")
