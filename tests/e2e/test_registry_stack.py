"""The foundation's promise on the running stack: register, read back, restart, still there."""

from __future__ import annotations

import requests

from tests.conftest import device_body
from tests.e2e.conftest import RunningStack


def test_register_read_back_and_survive_restart(stack: RunningStack) -> None:
    assert stack.get("/openapi.json").json()["openapi"].startswith("3.")
    source = stack.post("/sources", {"name": "Aggregator E2E", "kind": "aggregator"})
    assert source.status_code == 201, source.text
    source_key = source.json()["api_key"]
    account = stack.post("/accounts", {"name": "Dev E2E", "kind": "developer", "country": "KE"}, key=source_key)
    assert account.status_code == 201, account.text
    device = stack.post("/devices", device_body(account.json()["account_id"]), key=source_key)
    assert device.status_code == 201, device.text
    device_id = device.json()["device_id"]

    events = stack.get("/events", subject_id=device_id).json()["items"]
    assert [(e["type"], e["source_id"]) for e in events] == [("DeviceRegistered", source.json()["source_id"])]

    stack.stop()
    stack.start()

    again = stack.get(f"/devices/{device_id}")
    assert again.status_code == 200 and again.json()["owner_account_id"] == account.json()["account_id"]
    events = stack.get("/events", subject_id=device_id).json()["items"]
    assert [e["type"] for e in events] == ["DeviceRegistered"]
    # The source's key still works after the restart.
    assert stack.post("/devices", device_body(account.json()["account_id"], external_id="after-restart"),
                      key=source_key).status_code == 201


def test_public_reads_hide_contact_and_exact_location(stack: RunningStack) -> None:
    # GIVEN an account with a contact and a device at an exact place, registered by a source
    source = stack.post("/sources", {"name": "Privacy E2E", "kind": "aggregator"}).json()
    account = stack.post("/accounts", {"name": "Household E2E", "kind": "developer", "country": "KE",
                                       "contact": "owner@example.org"}, key=source["api_key"]).json()
    device = stack.post("/devices", device_body(account["account_id"], latitude=-1.294567, longitude=36.817891),
                        key=source["api_key"])
    assert device.status_code == 201, device.text
    device_id = device.json()["device_id"]
    # WHEN anyone reads them without a key THEN no contact, and coordinates rounded to 0.01°
    public_account = stack.get(f"/accounts/{account['account_id']}").json()
    assert "contact" not in public_account and public_account["name"] == "Household E2E"
    public_device = stack.get(f"/devices/{device_id}").json()
    assert (public_device["latitude"], public_device["longitude"]) == (-1.29, 36.82)
    assert "location_salt" not in public_device
    listed = stack.get("/devices", owner_account_id=account["account_id"]).json()["items"]
    assert [(d["latitude"], d["longitude"]) for d in listed] == [(-1.29, 36.82)]
    # AND the anchored event holds the rounded place only
    (event,) = stack.get("/events", subject_id=device_id).json()["items"]
    assert (event["body"]["latitude"], event["body"]["longitude"]) == (-1.29, 36.82)
    assert "-1.294567" not in str(event)
    # AND the owner's key sees the exact values
    owned = requests.get(f"{stack.url}/devices/{device_id}", headers={"X-Api-Key": account["api_key"]}, timeout=60)
    assert owned.json()["latitude"] == -1.294567
    # AND the ledger's RPC hint is scheme://host:port only
    assert stack.get("/ledger").json()["rpc_hint"] == stack.endpoints["chain_rpc"]
