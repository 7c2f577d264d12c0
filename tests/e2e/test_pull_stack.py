"""Pulling on the running stack: a partner that cannot push is configured, its readings are pulled by the
schedule, taken in and judged, with nothing of its token in any answer or event."""

from __future__ import annotations

import json

from tests.conftest import device_body
from tests.e2e.conftest import RunningStack, wait_for
from tests.support.partner import Partner, hourly_rows, pull_body, serving

DEVICES = 10
HOURS = 20  # 200 readings, pages of 50


def test_a_configured_partner_is_pulled_and_its_readings_judged(stack: RunningStack) -> None:
    source = stack.post("/sources", {"name": "Pull Agg", "kind": "aggregator"}).json()
    key = source["api_key"]
    account = stack.post("/accounts", {"name": "Pull Dev", "kind": "developer", "country": "KE"}, key=key).json()
    devices = [stack.post("/devices", device_body(account["account_id"]), key=key).json()["device_id"]
               for _ in range(DEVICES)]
    with serving(Partner(hourly_rows(devices, HOURS), token="e2e-partner-token")) as partner:
        answer = stack.post(f"/sources/{source['source_id']}/pull", pull_body(partner, page_size=50), key=key)
        assert answer.status_code == 201, answer.text
        path = f"/sources/{source['source_id']}/pull/runs"
        runs = wait_for("a pull run", lambda: stack.get_with_key(path, key).json()["items"], timeout_s=120)
    (run,) = runs
    assert (run["status"], run["pages"], run["queued"], run["refused"], run["caught_up"]) == ("ok", 4, 200, 0, True)

    def judged() -> bool:
        pending = [stack.get(f"/devices/{d}/readings", status="queued", limit=100).json()["items"] for d in devices]
        return not any(pending)

    wait_for("pulled readings judged", judged, timeout_s=180)
    views = [v for d in devices for v in stack.get(f"/devices/{d}/readings", limit=100).json()["items"]]
    assert len(views) == 200 and all(v["source_id"] == source["source_id"] for v in views)
    assert {v["status"] for v in views} <= {"accepted", "rejected", "flagged"}
    events = stack.get("/events", subject_id=source["source_id"]).json()["items"]
    assert [e["type"] for e in events] == ["SourceRegistered", "PullConfigured"]
    assert "e2e-partner-token" not in json.dumps(events) + answer.text
