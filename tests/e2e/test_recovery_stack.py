"""`make up` checks the restored store before serving: it repairs the event counter, or refuses to start.

Its own stack: its saved data is edited here to stand for data that is not one cut (a store
restored from elsewhere, a data folder older than the chain).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from chalicelib.adapters.chain import ChainLedger
from infra.resources import physical
from infra.stack import PREFIX

from .conftest import REPO, RunningStack, wait_for
from .test_registry_stack import device_body


def _registered(stack: RunningStack, external_id: str) -> tuple[str, str, str]:
    source = stack.post("/sources", {"name": "Recovery", "kind": "aggregator"}).json()
    account = stack.post("/accounts", {"name": "Dev", "kind": "developer", "country": "KE"},
                         key=source["api_key"]).json()
    device = stack.post("/devices", device_body(account["account_id"], external_id=external_id), key=source["api_key"])
    assert device.status_code == 201, device.text
    return source["api_key"], account["account_id"], device.json()["device_id"]


def _snapshot(stack: RunningStack, table: str) -> Path:
    """The stopped stack's data as one snapshot (its journal folded in), and the table's file in it."""
    store = stack.data_dir / "store"
    subprocess.run([sys.executable, "-m", "infra.emulator", "--port", "0", "--data", str(store), "--prefix", PREFIX,
                    "--compact-only"], cwd=REPO, check=True, capture_output=True)
    generation = (store / "CURRENT").read_text().strip()
    return store / f"gen-{generation}" / "tables" / f"{physical(PREFIX, table)}.jsonl"


def _saved(stack: RunningStack, table: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in _snapshot(stack, table).read_text().splitlines() if line]


def _save(stack: RunningStack, table: str, items: list[dict[str, object]]) -> None:
    _snapshot(stack, table).write_text("".join(json.dumps(i) + "\n" for i in items))


def test_a_saved_counter_behind_the_events_is_raised_at_start_and_writes_work(own_stack: RunningStack) -> None:
    # GIVEN saved data whose event counter is older than its events (the wedge: every write 409)
    key, account_id, _ = _registered(own_stack, "first")
    own_stack.stop()
    highest = max(int(e["seq"]["N"]) for e in _saved(own_stack, "events")  # type: ignore[index]
                  if e["shard"]["N"] == "0")  # type: ignore[index]
    counters = [c for c in _saved(own_stack, "counters") if c["name"]["S"] != "event_seq#0"]  # type: ignore[index]
    _save(own_stack, "counters", [*counters, {"name": {"S": "event_seq#0"}, "value": {"N": "1"}}])

    # WHEN the stack starts
    own_stack.start()

    # THEN it says what it repaired, and writes work
    output = (own_stack.data_dir / "stack-output.log").read_text()
    assert f"repaired: shard 0's event counter raised from 1 to {highest}" in output
    answer = own_stack.post("/devices", device_body(account_id, external_id="second"), key=key)
    assert answer.status_code == 201, answer.text


def test_a_store_behind_the_chain_refuses_to_start_and_says_what_to_do(own_stack: RunningStack) -> None:
    # GIVEN events anchored on the chain
    _registered(own_stack, "anchored")
    endpoints = own_stack.endpoints
    ledger = ChainLedger.reader(endpoints["chain_rpc"], endpoints["ledger_address"])
    anchored = wait_for("events anchored", lambda: ledger.next_seq(0) - 1, timeout_s=120)
    own_stack.stop()
    # AND saved data that lost them (an older data folder beside a newer chain)
    _save(own_stack, "events", [])
    _save(own_stack, "counters", [])

    # WHEN the stack starts THEN it refuses, naming the mismatch and the way out
    with pytest.raises(RuntimeError) as refused:
        own_stack.start()
    message = str(refused.value)
    assert f"anchored events 1..{anchored}" in message and "events 1..0 only" in message
    assert "make clean" in message
    # AND it left the data folder as it was for the operator, and no chain of its own running
    assert _saved(own_stack, "events") == []
    assert _processes_naming(str(own_stack.data_dir / "chain-state.json")) == []


def _processes_naming(text: str, wait_s: float = 10) -> list[int]:
    """Processes whose command line holds `text`, once those on their way out have gone."""
    deadline = time.monotonic() + wait_s
    while True:
        found = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    if text in (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"):
                        found.append(int(entry.name))
                except OSError:
                    continue
        if not found or time.monotonic() > deadline:
            return found
        time.sleep(0.5)
