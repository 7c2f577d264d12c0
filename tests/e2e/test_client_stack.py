"""The aggregators' client (`python -m chalicelib.client`) against the running stack: a CSV signed by the
client, its summary by line, following the readings until judged, listing them, verifying the D-REC."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from eth_account import Account

from tests.conftest import device_body
from tests.e2e.conftest import REPO, RunningStack, wait_for

BAD_LINE = 20


def _client(stack: RunningStack, key: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, DREC_API_URL=stack.url, DREC_API_KEY=key)
    return subprocess.run([sys.executable, "-m", "chalicelib.client", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=180)


def test_client_submits_a_signed_csv_follows_lists_and_verifies(stack: RunningStack, tmp_path: Path) -> None:
    # GIVEN a source with a signing key, its account and 7 devices
    signer = Account.create()
    source = stack.post("/sources", {"name": "Client Agg", "kind": "aggregator",
                                     "signing_address": signer.address}).json()
    key = source["api_key"]
    account = stack.post("/accounts", {"name": "Client Dev", "kind": "developer", "country": "KE"}, key=key).json()
    devices = [stack.post("/devices", device_body(account["account_id"], capacity_w=100), key=key).json()["device_id"]
               for _ in range(7)]
    # AND a CSV of 49 unsigned hourly readings (25 Wh around midday) and one of an unknown device at line 20
    rows = [f"{d},2026-10-20T{h:02}:00:00Z,2026-10-20T{h + 1:02}:00:00Z,25" for d in devices for h in range(6, 13)]
    rows.insert(BAD_LINE - 2, "dev-not-registered,2026-10-20T06:00:00Z,2026-10-20T07:00:00Z,25")
    readings_csv = tmp_path / "readings.csv"
    readings_csv.write_text("device_id,period_start,period_end,energy_wh\n" + "\n".join(rows) + "\n")
    key_file = tmp_path / "key.txt"
    key_file.write_text(signer.key.hex())
    report = tmp_path / "result.json"

    # WHEN the client signs and submits it (in batches of 20)
    submitted = _client(stack, key, "submit", str(readings_csv), "--sign-key", str(key_file), "--batch-size", "20",
                        "--report", str(report))
    # THEN the summary counts 49 accepted and names the refused line; the exit code says some were refused
    assert submitted.returncode == 1, submitted.stdout + submitted.stderr
    assert "50 rows: 49 accepted, 1 refused (3 batches)" in submitted.stdout, submitted.stdout
    assert f"line {BAD_LINE}: rule_broken [device_id]" in submitted.stdout, submitted.stdout
    assert signer.key.hex()[2:] not in submitted.stdout + submitted.stderr
    assert len(json.loads(report.read_text())["accepted_lines"]) == 49

    # WHEN it follows the submitted readings THEN each is printed once judged, signed by the source's key
    followed = _client(stack, key, "follow", "readings", "--report", str(report), "--interval", "1",
                       "--deadline", "150")
    assert followed.returncode == 0, followed.stdout + followed.stderr
    judged = [json.loads(line) for line in followed.stdout.splitlines()]
    assert len(judged) == 49 and all(v["status"] != "queued" for v in judged)
    assert {v["signer"] for v in judged} == {signer.address.lower()}
    assert {v["status"] for v in judged} == {"accepted"}, judged

    # AND `list readings --device` shows a device's 7, paged through
    listed = _client(stack, key, "list", "readings", "--device", devices[0])
    assert listed.returncode == 0, listed.stderr
    assert sorted(json.loads(line)["period_start"] for line in listed.stdout.splitlines()) == \
        [f"2026-10-20T{h:02}:00:00Z" for h in range(6, 13)]

    # AND the 1225 Wh make one D-REC, which `list drecs` finds and `verify` checks against the chain
    def one_drec() -> list[dict[str, object]] | None:
        out = _client(stack, key, "list", "drecs", "--owner", account["account_id"], "--status", "active").stdout
        return [json.loads(line) for line in out.splitlines()] or None

    (drec,) = wait_for("the D-REC", one_drec)
    serial = str(drec["serial"])
    wait_for("issuance anchored", lambda: stack.get(f"/drecs/{serial}").json()["events"][0]["anchor"])
    verified = _client(stack, key, "verify", serial, "--rpc", stack.endpoints["chain_rpc"])
    assert verified.returncode == 0 and "VALID" in verified.stdout, verified.stdout + verified.stderr
