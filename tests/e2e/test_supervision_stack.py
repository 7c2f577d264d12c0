"""`make up` keeps running when a part is killed (kill -9): the part is restarted and writes work.

Its own stack (the session one is shared with other files): parts are killed here.
"""

from __future__ import annotations

import json
import os
import signal

import pytest

from .conftest import RunningStack, wait_for
from .test_registry_stack import device_body


def _pids(stack: RunningStack) -> dict[str, int | None]:
    return json.loads((stack.data_dir / "parts.json").read_text())


def _register_device(stack: RunningStack, key: str, account_id: str, external_id: str) -> str:
    def attempt() -> str | None:
        try:
            answer = stack.post("/devices", device_body(account_id, external_id=external_id), key=key)
        except OSError:
            return None  # the API is still coming back
        return answer.json()["device_id"] if answer.status_code == 201 else None

    device_id: str = wait_for(f"device {external_id} registered", attempt, timeout_s=90)
    return device_id


@pytest.mark.parametrize("part", ["dispatcher", "chalice", "anvil"])
def test_a_killed_part_is_restarted_and_writes_work_afterwards(own_stack: RunningStack, part: str) -> None:
    # GIVEN a running stack with a source and an account
    source = own_stack.post("/sources", {"name": f"Supervised {part}", "kind": "aggregator"}).json()
    account = own_stack.post("/accounts", {"name": "Dev", "kind": "developer", "country": "KE"},
                             key=source["api_key"]).json()
    before = _register_device(own_stack, source["api_key"], account["account_id"], "before")
    killed = _pids(own_stack)[part]
    assert killed

    # WHEN the part is killed without warning
    os.kill(killed, signal.SIGKILL)

    # THEN the stack restarts it under a new pid, says so, and keeps running
    wait_for(f"{part} restarted", lambda: _pids(own_stack)[part] not in (None, killed), timeout_s=90)
    assert own_stack.proc is not None and own_stack.proc.poll() is None
    output = (own_stack.data_dir / "stack-output.log").read_text()
    assert f"{part} exited with code -9; restarting" in output and f"{part} restarted (pid" in output
    # AND writes work, and what was written before is still there
    after = _register_device(own_stack, source["api_key"], account["account_id"], "after")
    assert own_stack.get(f"/devices/{before}").status_code == 200
    events = own_stack.get("/events", subject_id=after).json()["items"]
    assert [e["type"] for e in events] == ["DeviceRegistered"]


def test_a_killed_emulator_comes_back_with_every_acknowledged_write_and_writes_work(own_stack: RunningStack) -> None:
    # GIVEN a device whose registration was just acknowledged (201), with no stop or snapshot since
    source = own_stack.post("/sources", {"name": "Supervised moto", "kind": "aggregator"}).json()
    account = own_stack.post("/accounts", {"name": "Dev", "kind": "developer", "country": "KE"},
                             key=source["api_key"]).json()
    before = _register_device(own_stack, source["api_key"], account["account_id"], "before")
    killed = _pids(own_stack)["moto"]
    assert killed

    # WHEN the emulator is killed at once
    os.kill(killed, signal.SIGKILL)

    # THEN it is restarted from its journal, the store is checked, the device and its event are there
    wait_for("moto restarted", lambda: _pids(own_stack)["moto"] not in (None, killed), timeout_s=90)
    assert own_stack.proc is not None and own_stack.proc.poll() is None
    assert own_stack.get(f"/devices/{before}").status_code == 200
    assert [e["type"] for e in own_stack.get("/events", subject_id=before).json()["items"]] == ["DeviceRegistered"]
    # AND writes work
    after = _register_device(own_stack, source["api_key"], account["account_id"], "after")
    events = own_stack.get("/events", subject_id=after).json()["items"]
    assert [e["type"] for e in events] == ["DeviceRegistered"]
