"""Trading on the running stack: D-RECs move to a buyer, are redeemed with sponsors, and verify."""

from __future__ import annotations

import hashlib
import subprocess
import sys

import requests

from tests.conftest import device_body
from tests.e2e.conftest import REPO, RunningStack, wait_for


def test_transfer_redeem_with_sponsors_and_verify(stack: RunningStack) -> None:
    source = stack.post("/sources", {"name": "Trading Agg", "kind": "aggregator"}).json()
    key = source["api_key"]
    developer = stack.post("/accounts", {"name": "Grid Dev", "kind": "developer", "country": "NG"}, key=key).json()
    buyer = stack.post("/accounts", {"name": "Buyer", "kind": "buyer", "country": "GB"}, key=key).json()
    device = stack.post("/devices", device_body(developer["account_id"], device_type="mini_grid", capacity_w=2000,
                                                latitude=9.06, longitude=7.49, country="NG"), key=key).json()
    readings = [{"device_id": device["device_id"], "period_start": f"2026-10-{day:02d}T06:00:00Z",
                 "period_end": f"2026-10-{day:02d}T16:00:00Z", "energy_wh": 6000} for day in (12, 13)]
    assert stack.post("/readings", {"readings": readings}, key=key).status_code == 202
    drecs = wait_for("D-RECs issued", lambda: len(stack.get(
        "/drecs", owner_account_id=developer["account_id"]).json()["items"]) >= 10 and stack.get(
        "/drecs", owner_account_id=developer["account_id"], limit=100).json()["items"])
    assert len(drecs) >= 10

    moved = stack.post("/transfers", {"from_account_id": developer["account_id"],
                                      "to_account_id": buyer["account_id"], "quantity": 6}, key=key)
    assert moved.status_code == 201, moved.text
    serials = moved.json()["serials"]
    assert len(serials) == 6

    redeemed = stack.post("/redemptions", {
        "account_id": buyer["account_id"], "serials": serials[:4], "beneficiary": "Acme Ltd",
        "purpose": "Scope 2 claim", "claim_period_start": "2026-10-01", "claim_period_end": "2026-10-31",
        "sponsors": [{"name": "Sponsor A", "share": 0.5}, {"name": "Sponsor B", "share": 0.5}]}, key=key)
    assert redeemed.status_code == 201, redeemed.text
    statement = redeemed.json()
    assert statement["serial_ranges"] and "Acme Ltd" in statement["memo"]
    assert statement["ledger_sha256"] in statement["memo"]
    ledger = requests.get(statement["ledger_url"], timeout=30)
    assert ledger.status_code == 200
    assert hashlib.sha256(ledger.content).hexdigest() == statement["ledger_sha256"]

    refused = stack.post("/transfers", {"from_account_id": buyer["account_id"],
                                        "to_account_id": developer["account_id"], "serials": serials[:1]}, key=key)
    assert refused.status_code == 409, refused.text

    # Two identical orders without an Idempotency-Key are two moves; with one key, one move.
    one = {"from_account_id": developer["account_id"], "to_account_id": buyer["account_id"], "quantity": 1}
    twice = [stack.post("/transfers", one, key=key) for _ in range(2)]
    assert [r.status_code for r in twice] == [201, 201], [r.text for r in twice]
    assert twice[0].json()["transfer_id"] != twice[1].json()["transfer_id"]
    keyed = [requests.post(stack.url + "/transfers", json=one, timeout=60,
                           headers={"X-Api-Key": key, "Idempotency-Key": "e2e-order-1"}) for _ in range(2)]
    assert [r.status_code for r in keyed] == [201, 201] and keyed[0].json() == keyed[1].json()
    holdings = stack.get(f"/accounts/{buyer['account_id']}/holdings").json()
    assert holdings["active"] + holdings["redeemed"] == 6 + 3

    redemption_id = statement["redemption_id"]
    wait_for("redemption anchored", lambda: (stack.get("/events", subject_id=redemption_id).json()["items"] or [{}])[0]
          .get("anchor"))
    wait_for("issuance anchored", lambda: stack.get(f"/drecs/{serials[0]}").json()["events"][0]["anchor"])
    outcome = subprocess.run([sys.executable, "-m", "chalicelib.verify", redemption_id, "--api", stack.url,
                              "--rpc", stack.endpoints["chain_rpc"], "--ledger-url", statement["ledger_url"]],
                             cwd=REPO, capture_output=True, text=True, timeout=300)
    assert outcome.returncode == 0, outcome.stdout + outcome.stderr
    assert "ledger file SHA-256 matches the statement" in outcome.stdout


def test_a_rotated_key_is_refused(stack: RunningStack) -> None:
    source = stack.post("/sources", {"name": "Rotating Agg", "kind": "aggregator"}).json()
    rotated = stack.post("/keys/rotate", None, key=source["api_key"])
    assert rotated.status_code == 201, rotated.text
    account = {"name": "Dev", "kind": "developer", "country": "KE"}
    refused = stack.post("/accounts", account, key=source["api_key"])
    assert refused.status_code == 401 and refused.json()["error"]["field"] == "X-Api-Key"
    assert stack.post("/accounts", account, key=rotated.json()["api_key"]).status_code == 201
    events = stack.get("/events", subject_id=source["source_id"], type="ApiKeyRotated").json()["items"]
    assert len(events) == 1 and rotated.json()["api_key"] not in str(events)
