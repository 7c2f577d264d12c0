"""The foundation's promise on the running stack: register, read back, restart, still there."""

from __future__ import annotations

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
