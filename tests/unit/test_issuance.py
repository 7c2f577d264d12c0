"""Accepted Wh pooled into D-RECs of exactly 1000 Wh, exactly once, with exact provenance."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import Api, device_body, pump


def _fleet(api: Api, n: int, capacity_w: float = 200,
           **overrides: Any) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
    _, source = api.post("/sources", {"name": "Agg", "kind": "aggregator"})
    _, account = api.post("/accounts", {"name": "Dev", "kind": "developer", "country": "KE"}, key=source["api_key"])
    ids = []
    for _ in range(n):
        _, device = api.post("/devices", device_body(account["account_id"], capacity_w=capacity_w, **overrides),
                             key=source["api_key"])
        ids.append(device["device_id"])
    return source, account, ids


def _push(api: Api, key: str, device_ids: list[str], energy_wh: int, day: str = "2026-10-14") -> list[str]:
    readings = [{"device_id": d, "period_start": f"{day}T05:00:00Z", "period_end": f"{day}T13:00:00Z",
                 "energy_wh": energy_wh} for d in device_ids]
    status, body = api.post("/readings", {"readings": readings}, key=key)
    assert status == 202 and not body["errors"], body
    return [a["reading_id"] for a in body["accepted"]]


def test_three_devices_of_400_wh_make_one_drec_with_200_left(api: Api, aws: Any) -> None:
    source, account, devices = _fleet(api, 3, capacity_w=100)
    reading_ids = _push(api, source["api_key"], devices, 400)
    pump(aws)
    for reading_id in reading_ids:
        assert api.get(f"/readings/{reading_id}")[1]["status"] == "accepted"
    _, page = api.get(f"/drecs?owner_account_id={account['account_id']}")
    assert len(page["items"]) == 1
    serial = page["items"][0]["serial"]
    assert serial.startswith("DREC-KE-SHS-202610-") and serial.endswith("-00000001")
    _, drec = api.get(f"/drecs/{serial}")
    assert sum(c["energy_wh"] for c in drec["contributions"]) == 1000 == drec["energy_wh"]
    assert {c["device_id"] for c in drec["contributions"]} == set(devices)
    assert sum(drec["hourly_wh"].values()) == 1000 and drec["avoided_co2_kg"] > 0
    assert [e["type"] for e in drec["events"]] == ["DrecIssued"]
    pools = aws.client("dynamodb").scan(TableName="drec-test-pools")["Items"]
    assert [int(p["remainder_wh"]["N"]) for p in pools] == [200]
    # the third reading was split: 200 Wh issued, 200 Wh waiting in the pool
    assert api.get(f"/readings/{reading_ids[0]}")[1]["serials"] == [serial]
    _, by_device = api.get(f"/drecs?device_id={devices[2]}")
    assert [d["serial"] for d in by_device["items"]] == [serial]
    # each device's tally: the D-RECs its Wh went into, and those Wh (the split one's 200 waiting are not)
    tallies = {d["device_id"]: (d["drecs_issued"], d["drec_energy_wh"])
               for d in api.get(f"/devices?owner_account_id={account['account_id']}")[1]["items"]}
    assert sorted(tallies.values()) == [(1, 200), (1, 400), (1, 400)]


def test_device_lists_carry_the_readings_their_twin_accepted(api: Api, aws: Any) -> None:
    # GIVEN two devices, one with two accepted daylight readings, one never judged
    source, account, devices = _fleet(api, 2, capacity_w=100)
    _push(api, source["api_key"], devices[:1], 400)
    _push(api, source["api_key"], devices[:1], 400, day="2026-10-15")
    pump(aws)
    # WHEN the public lists the owner's devices, or reads one THEN each carries its count
    _, page = api.get(f"/devices?owner_account_id={account['account_id']}")
    assert {d["device_id"]: d["readings_accepted"] for d in page["items"]} == {devices[0]: 2, devices[1]: 0}
    assert api.get(f"/devices/{devices[0]}")[1]["readings_accepted"] == 2


def test_replaying_every_message_changes_nothing(api: Api, aws: Any) -> None:
    from chalicelib.api import handlers
    from infra.dispatcher import LambdaContext

    source, account, devices = _fleet(api, 4)
    reading_ids = _push(api, source["api_key"], devices, 777)
    pump(aws)
    before = api.get(f"/drecs?owner_account_id={account['account_id']}")[1]["items"]
    events_before = api.get("/events?type=DrecIssued")[1]["items"]
    body = json.dumps({"reading_ids": reading_ids})
    record = {"body": body, "messageId": "m", "receiptHandle": "r", "attributes": {}, "messageAttributes": {},
              "md5OfBody": "", "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:1:q",
              "awsRegion": "us-east-1"}
    handlers.validate_readings({"Records": [record]}, LambdaContext("v"))
    handlers.issue_drecs({"Records": [record, record]}, LambdaContext("i"))
    pump(aws)
    assert api.get(f"/drecs?owner_account_id={account['account_id']}")[1]["items"] == before
    assert api.get("/events?type=DrecIssued")[1]["items"] == events_before
    assert len(before) == 3  # 4 x 777 = 3108 Wh: three D-RECs, 108 Wh left
    devices_after = api.get(f"/devices?owner_account_id={account['account_id']}")[1]["items"]
    assert sum(d["drec_energy_wh"] for d in devices_after) == 3000


def test_big_reading_spans_many_transactions_without_loss(api: Api, aws: Any) -> None:
    source, account, devices = _fleet(api, 1, capacity_w=10_000, device_type="mini_grid")
    _push(api, source["api_key"], devices, 40_500)
    pump(aws)
    drecs = api.get(f"/drecs?owner_account_id={account['account_id']}&limit=100")[1]["items"]
    assert len(drecs) == 40
    assert [int(d["serial"][-8:]) for d in drecs] == list(range(1, 41))
    pools = aws.client("dynamodb").scan(TableName="drec-test-pools")["Items"]
    assert [int(p["remainder_wh"]["N"]) for p in pools] == [500]


def test_links_lost_in_a_crash_are_written_by_the_sweep(api: Api, aws: Any) -> None:
    from chalicelib.services.maintenance import finish_links
    from tests.fakes.faults import Crash, Faults

    source, account, devices = _fleet(api, 1, capacity_w=10_000, device_type="mini_grid")
    # GIVEN the handler dies right after the issuing transaction, before writing links
    healthy = aws.drecs
    aws.drecs = Faults(healthy).always("link_drecs")
    _push(api, source["api_key"], devices, 40_000)
    with pytest.raises(Crash):
        pump(aws)
    aws.drecs = healthy
    issued = api.get(f"/drecs?owner_account_id={account['account_id']}&limit=100")[1]["items"]
    assert len(issued) == 15  # the first transaction committed
    assert api.get(f"/drecs?device_id={devices[0]}")[1]["items"] == []
    # WHEN the sweep runs (each pass takes about 2 D-RECs from every shard of the index: 3 of the 15 may
    # share a shard and wait for the next pass) THEN the device finds its D-RECs, each linked once
    linked = [finish_links(aws.drecs) for _ in range(3)]
    assert sum(linked) == 15 and linked[-1] == 0
    assert len(api.get(f"/drecs?device_id={devices[0]}&limit=100")[1]["items"]) == 15
    device = api.get(f"/devices/{devices[0]}")[1]
    assert (device["drecs_issued"], device["drec_energy_wh"]) == (15, 15_000)


def test_a_device_tally_counts_each_link_once_across_chunks_and_replays(aws: Any) -> None:
    # GIVEN 120 D-RECs of three devices (more links than one transaction holds), the first 50 linked already
    drecs = [{"serial": f"DREC-KE-SHS-202610-TALLY-{i:08d}",
              "contributions": [{"device_id": f"dev-tally-{i % 3}", "reading_id": f"rdg-tally-{i}-{j}",
                                 "energy_wh": 500} for j in range(2)]} for i in range(120)]
    aws.drecs._link_devices(drecs[:50])
    # WHEN all 120 are linked, twice (a crash and the sweep)
    aws.drecs._link_devices(drecs)
    aws.drecs._link_devices(drecs)
    # THEN each device counts each of its D-RECs once, with the Wh it put in
    assert aws.drecs.issued_from(["dev-tally-0", "dev-tally-1", "dev-tally-2", "dev-none"]) == {
        f"dev-tally-{k}": (40, 40 * 1000) for k in range(3)}
