"""A dishonest operator with write access to the store, on the running stack: the verifier names each forgery.

Three D-RECs are issued from three signed readings; then the store is tampered with the
way an insider could (through the platform's own store code, so forged events get real
sequence numbers and are anchored like any other): a second `DrecIssued` spending a
reading again, a `DrecTransferred` from an account that never held the D-REC, and one
byte of a reading's signature flipped in its `ReadingAccepted` event.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import boto3
from eth_account import Account

from chalicelib.adapters.dynamo import DynamoBase
from chalicelib.domain.ledger import events as ev
from chalicelib.services.signatures import sign_reading
from infra.resources import physical
from tests.conftest import device_body
from tests.e2e.conftest import REPO, RunningStack, wait_for

DAYS = ("14", "15", "16")


def _verify(stack: RunningStack, target: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "chalicelib.verify", target, "--api", stack.url,
                           "--rpc", stack.endpoints["chain_rpc"]], cwd=REPO, capture_output=True, text=True,
                          timeout=300)


def _store(stack: RunningStack) -> DynamoBase:
    client = boto3.client("dynamodb", endpoint_url=stack.endpoints["aws_endpoint_url"], region_name="us-east-1",
                          aws_access_key_id="testing", aws_secret_access_key="testing")
    prefix = stack.endpoints["prefix"]
    return DynamoBase(client, lambda logical: physical(prefix, logical))


def _anchored(stack: RunningStack, subject_id: str) -> Any:
    return wait_for(f"events of {subject_id} anchored", lambda: all(
        e["anchor"] for e in stack.get("/events", subject_id=subject_id).json()["items"]) and stack.get(
        "/events", subject_id=subject_id).json()["items"])


def _issued(stack: RunningStack) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Three D-RECs, each from one signed reading of 1000 Wh; and the account that holds them."""
    signer = Account.create()
    source = stack.post("/sources", {"name": "Tamper Agg", "kind": "aggregator",
                                     "signing_address": signer.address}).json()
    key = source["api_key"]
    account = stack.post("/accounts", {"name": "Tamper Dev", "kind": "developer", "country": "KE"}, key=key).json()
    device = stack.post("/devices", device_body(account["account_id"], capacity_w=250), key=key).json()["device_id"]
    readings = []
    for day in DAYS:
        reading = {"device_id": device, "period_start": f"2026-10-{day}T05:00:00Z",
                   "period_end": f"2026-10-{day}T13:00:00Z", "energy_wh": 1000}
        reading["signature"] = sign_reading(signer.key.hex(), **reading)
        readings.append(reading)
    answer = stack.post("/readings", {"readings": readings}, key=key).json()
    assert not answer["errors"], answer
    drecs = wait_for("three D-RECs", lambda: (lambda items: items if len(items) == 3 else None)(
        stack.get("/drecs", owner_account_id=account["account_id"]).json()["items"]))
    details = [stack.get(f"/drecs/{d['serial']}").json() for d in sorted(drecs, key=lambda d: d["serial"])]
    for drec in details:
        _anchored(stack, drec["serial"])
        _anchored(stack, drec["contributions"][0]["reading_id"])
    return details, account


def test_the_verifier_names_a_double_spend_a_foreign_transfer_and_a_flipped_signature(stack: RunningStack) -> None:
    # GIVEN three honest D-RECs that verify
    drecs, account = _issued(stack)
    for drec in drecs:
        honest = _verify(stack, drec["serial"])
        assert honest.returncode == 0, honest.stdout + honest.stderr
        assert "signature recovers to the registered key" in honest.stdout
    store = _store(stack)
    spent, moved, signed = drecs
    now = "2026-10-20T00:00:00Z"

    # WHEN an insider issues a second D-REC from the first one's reading ...
    reading_id = spent["contributions"][0]["reading_id"]
    forged_serial = spent["serial"][:-8] + "99999999"
    store.commit([], [ev.NewEvent(ev.DREC_ISSUED, forged_serial, "operator", now, {
        "serial": forged_serial, "owner_account_id": account["account_id"], "energy_wh": 1000,
        "contributions": [[spent["contributions"][0]["device_id"], reading_id, 600]]}, related_ids=(reading_id,))])
    store.client.put_item(TableName=store.name("drec_links"),
                          Item={"subject_id": {"S": reading_id}, "serial": {"S": forged_serial}})
    store.client.update_item(TableName=store.name("readings"), Key={"id": {"S": reading_id}},
                             UpdateExpression="ADD drec_serials :s", ExpressionAttributeValues={
                                 ":s": {"SS": [forged_serial]}})  # linked where the reading keeps its D-RECs
    # ... moves the second D-REC out of an account that never held it ...
    store.commit([], [ev.NewEvent(ev.DREC_TRANSFERRED, "trf-forged", "operator", now, {
        "transfer_id": "trf-forged", "from_account_id": "acc-never-held-it", "to_account_id": "acc-never-held-it",
        "quantity": 1, "serial_ranges": [moved["serial"]], "device_ids": []}, related_ids=(moved["serial"],))])
    # ... and flips one byte of the third reading's signature in its accepted event
    signed_reading = signed["contributions"][0]["reading_id"]
    accepted = stack.get("/events", subject_id=signed_reading, type="ReadingAccepted").json()["items"][0]
    table = store.name("events")
    item = store.client.get_item(TableName=table, Key={"id": {"S": accepted["event_id"]}})["Item"]
    body = json.loads(item["body_json"]["S"])
    body["signature"] = body["signature"][:-4] + ("00" if body["signature"][-4:-2] != "00" else "11") + \
        body["signature"][-2:]
    item["body_json"] = {"S": json.dumps(body)}
    store.client.put_item(TableName=table, Item=item)
    _anchored(stack, forged_serial)
    _anchored(stack, "trf-forged")

    # THEN the verifier names each forgery
    double = _verify(stack, spent["serial"])
    assert double.returncode == 1 and "INVALID" in double.stdout
    assert f"[MISMATCH] {reading_id}: spent at most its judged 1000 Wh across D-RECs — 1600 Wh spent by" in \
        double.stdout, double.stdout
    assert forged_serial in double.stdout

    foreign = _verify(stack, moved["serial"])
    assert foreign.returncode == 1
    assert f": transfer of {moved['serial']} is from its holder — transfer from acc-never-held-it" in \
        foreign.stdout, foreign.stdout

    flipped = _verify(stack, signed["serial"])
    assert flipped.returncode == 1
    assert f"[MISMATCH] {signed_reading}: signature recovers to the registered key" in flipped.stdout, \
        flipped.stdout

    # AND the audit of the whole ledger, which reads every event rather than the registry's
    # indexes, names them too: the changed event no longer hashes to its anchored root
    audit = subprocess.run([sys.executable, "-m", "chalicelib.audit", "--api", stack.url, "--rpc",
                            stack.endpoints["chain_rpc"]], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert audit.returncode == 1, audit.stdout + audit.stderr
    assert f"{reading_id}: spent at most its judged 1000 Wh across D-RECs" in audit.stdout
    assert f"{moved['serial']} moves from its holder — from acc-never-held-it" in audit.stdout
    assert "batch root recomputed from the events of shard" in audit.stdout
    assert f"{accepted['event_id']}: signature recovers to the registered key" in audit.stdout
