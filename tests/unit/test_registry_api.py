"""Sources, accounts and devices through the HTTP routes, on an in-memory AWS."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chalicelib.config import event_shards
from chalicelib.domain.ledger.shards import device_key, shard_of
from tests.conftest import OPERATOR_KEY, Api, device_body


def _source(api: Api) -> dict[str, Any]:
    status, body = api.post("/sources", {"name": "Agg One", "kind": "aggregator"})
    assert status == 201, body
    return body


def _account(api: Api, key: str, **overrides: Any) -> dict[str, Any]:
    payload = {"name": "Solar Dev Ltd", "kind": "developer", "country": "KE", **overrides}
    status, body = api.post("/accounts", payload, key=key)
    assert status in (200, 201), body
    return body


def test_source_account_device_registered_and_read_back(api: Api) -> None:
    # GIVEN a source registered by the operator, and an account registered by that source
    source = _source(api)
    assert source["api_key"].startswith("drec_")
    account = _account(api, source["api_key"])
    assert account["registered_by"] == source["source_id"]
    # WHEN the source registers a device for the account
    status, device = api.post("/devices", device_body(account["account_id"]), key=source["api_key"])
    # THEN it reads back, and its registration is an event naming the source
    assert status == 201, device
    status, fetched = api.get(f"/devices/{device['device_id']}")
    assert status == 200 and fetched["capacity_w"] == 100 and fetched["country"] == "KE"
    status, events = api.get(f"/events?subject_id={device['device_id']}")
    assert [e["type"] for e in events["items"]] == ["DeviceRegistered"]
    assert events["items"][0]["source_id"] == source["source_id"]


def test_event_sequences_are_gap_free_per_shard_and_a_device_has_its_own(api: Api) -> None:
    source = _source(api)
    account = _account(api, source["api_key"])
    device = api.post("/devices", device_body(account["account_id"]), key=source["api_key"])[1]
    status, events = api.get("/events?limit=10")  # the registry shard (0): sources and accounts
    assert status == 200
    shard = shard_of(device_key(device["device_id"]), event_shards())  # (a random id: shard 0 too, 1 time in 8)
    assert [(e["shard"], e["seq"], e["type"]) for e in events["items"]] == [
        (0, 1, "SourceRegistered"), (0, 2, "AccountRegistered"), *([(0, 3, "DeviceRegistered")] if shard == 0 else [])]
    _, in_shard = api.get(f"/events?limit=10&shard={shard}")
    registered = [e for e in in_shard["items"] if e["type"] == "DeviceRegistered"]
    assert [(e["subject_id"], e["event_id"]) for e in registered] == [(device["device_id"],
                                                                        f"ev-{shard}-{registered[0]['seq']:012d}")]
    assert [e["seq"] for e in in_shard["items"]] == list(range(1, len(in_shard["items"]) + 1))
    _, of_account = api.get(f"/events?subject_id={account['account_id']}")  # a subject's events span shards
    assert [e["type"] for e in of_account["items"]] == ["AccountRegistered", "DeviceRegistered"]


def test_a_shard_that_is_not_one_of_the_registrys_is_a_400_naming_it(api: Api) -> None:
    for bad in ("8", "-1", "x", "99999999"):
        status, body = api.get(f"/events?shard={bad}")
        assert status == 400 and body["error"]["field"] == "shard", bad


def test_api_key_stored_only_as_hash(api: Api, aws: Any) -> None:
    source = _source(api)
    raw = aws.client("dynamodb").scan(TableName="drec-test-lookups")["Items"]
    assert source["api_key"] not in str(raw)
    assert source["api_key"] not in str(aws.client("dynamodb").scan(TableName="drec-test-sources")["Items"])


def test_same_external_id_from_same_source_returns_first_record(api: Api) -> None:
    source = _source(api)
    first = _account(api, source["api_key"], external_id="crm-42")
    status, again = api.post("/accounts", {"name": "Other name", "kind": "developer", "country": "KE",
                                           "external_id": "crm-42"}, key=source["api_key"])
    assert status == 200 and again["account_id"] == first["account_id"] and "api_key" not in again
    body = device_body(first["account_id"], external_id="meter-7")
    status, d1 = api.post("/devices", body, key=source["api_key"])
    status2, d2 = api.post("/devices", body, key=source["api_key"])
    assert (status, status2) == (201, 200) and d1["device_id"] == d2["device_id"]
    _, devices = api.get(f"/devices?owner_account_id={first['account_id']}")
    assert len(devices["items"]) == 1


@pytest.mark.parametrize(
    ("overrides", "status", "field"),
    [
        ({"latitude": 91}, 400, "latitude"),
        ({"capacity_w": 0}, 400, "capacity_w"),
        ({"capacity_w": "100"}, 400, "capacity_w"),
        ({"capacity_w": 5_000_000}, 422, "capacity_w"),
        ({"country": "XZ"}, 422, "country"),
        ({"commissioning_date": "2999-01-01"}, 422, "commissioning_date"),
        ({"device_type": "nuclear"}, 400, "device_type"),
        ({"owner_account_id": "acc-missing"}, 422, "owner_account_id"),
        ({"colour": "red"}, 400, "colour"),
    ],
)
def test_bad_device_input_names_the_field_and_writes_nothing(api: Api, overrides: dict[str, Any], status: int,
                                                             field: str) -> None:
    source = _source(api)
    account = _account(api, source["api_key"])
    got_status, body = api.post("/devices", device_body(account["account_id"], **overrides), key=source["api_key"])
    assert got_status == status, body
    assert body["error"]["field"] == field
    _, devices = api.get("/devices")
    assert devices["items"] == []
    _, events = api.get("/events?type=DeviceRegistered")
    assert events["items"] == []


def test_missing_field_and_malformed_json(api: Api) -> None:
    status, body = api.post("/accounts", {"name": "x", "kind": "buyer"})
    assert status == 400 and body["error"]["field"] == "country"
    status, body = api.post("/accounts", raw="{not json")
    assert status == 400 and "JSON" in body["error"]["message"]


def test_keys_and_who_may_act(api: Api) -> None:
    # no key, unknown key
    assert api.post("/sources", {"name": "a", "kind": "aggregator"}, key=None)[0] == 401
    assert api.post("/sources", {"name": "a", "kind": "aggregator"}, key="drec_nobody")[0] == 401
    source = _source(api)
    other = _source(api)
    # a source may not register sources
    status, body = api.post("/sources", {"name": "b", "kind": "aggregator"}, key=source["api_key"])
    assert status == 403 and "operator" in body["error"]["message"]
    account = _account(api, source["api_key"])
    # another source may not act for this account; the message says who may
    status, body = api.post("/devices", device_body(account["account_id"]), key=other["api_key"])
    assert status == 403 and source["source_id"] in body["error"]["message"]
    # the account acts for itself
    status, _ = api.post("/devices", device_body(account["account_id"]), key=account["api_key"])
    assert status == 201
    # reads are public
    assert api.get(f"/accounts/{account['account_id']}")[0] == 200


def test_lists_filter_and_paginate(api: Api) -> None:
    source = _source(api)
    account = _account(api, source["api_key"])
    for i in range(5):
        api.post("/devices", device_body(account["account_id"], country="KE" if i % 2 else "NG",
                                         device_type="mini_grid" if i == 4 else "solar_home_system",
                                         capacity_w=1000 + i), key=source["api_key"])
    seen, cursor = [], None
    while True:
        _, page = api.get("/devices?limit=2" + (f"&cursor={cursor}" if cursor else ""))
        seen += [d["device_id"] for d in page["items"]]
        assert len(page["items"]) <= 2
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert len(seen) == 5 == len(set(seen))
    _, ng = api.get("/devices?country=NG")
    assert len(ng["items"]) == 3
    _, ng_grid = api.get("/devices?country=NG&device_type=mini_grid")
    assert [d["capacity_w"] for d in ng_grid["items"]] == [1004]
    assert api.get("/devices?limit=0")[0] == 400
    assert api.get("/devices?cursor=%%%")[0] == 400


def test_openapi_document_is_valid_and_lists_routes(api: Api) -> None:
    from openapi_spec_validator import validate

    status, doc = api.get("/openapi.json")
    assert status == 200
    validate(doc)
    assert {"/sources", "/accounts", "/devices", "/events", "/readings", "/payments", "/uploads", "/drecs",
            "/drecs/{serial}", "/events/{event_id}/proof", "/ledger", "/transfers", "/redemptions"} <= set(doc["paths"])
    assert "capacity_w" in doc["components"]["schemas"]["DeviceIn"]["properties"]


def test_replayed_registration_with_idempotency_key_changes_nothing(api: Api) -> None:
    def post(path: str, body: dict[str, Any], key: str, token: str) -> tuple[int, Any]:
        response = api.client.http.post(path, headers={"Content-Type": "application/json", "X-Api-Key": key,
                                                       "Idempotency-Key": token}, body=json.dumps(body))
        return response.status_code, json.loads(response.body)

    status, source = post("/sources", {"name": "Agg", "kind": "aggregator"}, OPERATOR_KEY, "req-1")
    again_status, again = post("/sources", {"name": "Agg", "kind": "aggregator"}, OPERATOR_KEY, "req-1")
    assert (status, again_status) == (201, 200)
    assert again["source_id"] == source["source_id"] and "api_key" not in again
    body = {"name": "Dev", "kind": "developer", "country": "KE"}
    first = post("/accounts", body, source["api_key"], "req-2")[1]
    replay = post("/accounts", body, source["api_key"], "req-2")
    assert replay[0] == 200 and replay[1]["account_id"] == first["account_id"]
    device = post("/devices", device_body(first["account_id"]), source["api_key"], "req-3")[1]
    assert post("/devices", device_body(first["account_id"]), source["api_key"], "req-3")[1]["device_id"] == \
        device["device_id"]
    _, events = api.get("/events?limit=100")  # the registry shard (and the device's, 1 time in 8)
    assert [e["type"] for e in events["items"] if e["type"] != "DeviceRegistered"] == ["SourceRegistered",
                                                                                      "AccountRegistered"]
    _, of_device = api.get(f"/events?subject_id={device['device_id']}")
    assert [e["type"] for e in of_device["items"]] == ["DeviceRegistered"]
