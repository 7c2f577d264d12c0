"""The verify route reads the API's answers in process: the same JSON as over HTTP, errors as LookupErrors."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import Api, device_body, pump


def _issued(api: Api, aws: Any) -> tuple[str, str]:
    """(serial, reading id) of a D-REC issued from three 400 Wh readings."""
    _, source = api.post("/sources", {"name": "Agg", "kind": "aggregator"})
    _, account = api.post("/accounts", {"name": "Dev", "kind": "developer", "country": "KE"}, key=source["api_key"])
    readings = []
    for _ in range(3):
        _, device = api.post("/devices", device_body(account["account_id"]), key=source["api_key"])
        readings.append({"device_id": device["device_id"], "period_start": "2026-10-14T05:00:00Z",
                         "period_end": "2026-10-14T13:00:00Z", "energy_wh": 400})
    _, accepted = api.post("/readings", {"readings": readings}, key=source["api_key"])
    pump(aws)
    _, page = api.get(f"/drecs?owner_account_id={account['account_id']}")
    return page["items"][0]["serial"], accepted["accepted"][0]["reading_id"]


def test_in_process_reads_answer_what_the_routes_answer(api: Api, aws: Any) -> None:
    from chalicelib.api.drecs import in_process_get

    # GIVEN an issued D-REC
    serial, reading_id = _issued(api, aws)
    event_id = api.get(f"/events?subject_id={serial}")[1]["items"][0]["event_id"]
    get = in_process_get(aws)
    # WHEN the verifier reads each path in process THEN it gets the JSON the route answers
    for path in (f"/drecs/{serial}", f"/events?subject_id={serial}&limit=100", f"/events?subject_id={serial}"
                 "&type=DrecIssued&limit=1", f"/events/{event_id}", f"/readings/{reading_id}", "/ledger"):
        status, body = api.get(path)
        assert status == 200 and get(path) == body, path


def test_in_process_errors_are_lookup_errors_naming_the_status(api: Api, aws: Any) -> None:
    from chalicelib.api.drecs import in_process_get

    serial, _ = _issued(api, aws)
    event_id = api.get(f"/events?subject_id={serial}")[1]["items"][0]["event_id"]
    get = in_process_get(aws)
    # An event not yet anchored has no proof: 404, as over HTTP
    assert api.get(f"/events/{event_id}/proof")[0] == 404
    with pytest.raises(LookupError, match=r"answered 404: .*not anchored yet"):
        get(f"/events/{event_id}/proof")
    with pytest.raises(LookupError, match=r"answered 400: .*limit"):
        get(f"/events?subject_id={serial}&limit=0")
    with pytest.raises(LookupError, match="answered 404"):
        get("/redemptions/red-nothing")
    with pytest.raises(LookupError, match="not one of the reads"):
        get("/accounts")


def test_verifying_without_a_chain_is_refused(api: Api, aws: Any) -> None:
    serial, _ = _issued(api, aws)
    status, body = api.get(f"/drecs/{serial}/verify")
    assert status == 400 and "no chain" in body["error"]["message"]
    assert api.get("/drecs/DREC-KE-SHS-202610-x-00000001/verify")[0] == 404


def test_paths_fetched_ahead_are_answered_again_without_reading_the_store(api: Api, aws: Any) -> None:
    from chalicelib.api.drecs import in_process_get

    # GIVEN an issued D-REC, and the paths a verification reads per contribution
    serial, reading_id = _issued(api, aws)
    paths = [f"/events?subject_id={reading_id}&limit=100&type=ReadingAccepted", f"/readings/{reading_id}",
             f"/drecs/{serial}"]
    get = in_process_get(aws)
    # WHEN they are fetched ahead together
    get.many(paths)  # type: ignore[attr-defined]
    # THEN reading them costs no call to the store, and answers what the routes answer
    calls: list[str] = []
    client = aws.client("dynamodb")
    original = client._make_api_call
    client._make_api_call = lambda operation, params: calls.append(operation) or original(operation, params)
    try:
        answers = [get(p) for p in paths]
        assert calls == []
        get(f"/events?subject_id={serial}&limit=5")  # a path not fetched ahead is read from the store
        assert calls
    finally:
        client._make_api_call = original
    assert answers == [api.get(p)[1] for p in paths]


def test_a_reading_names_its_accepted_event_and_spending_drecs_and_many_reads_them_without_queries(
        api: Api, aws: Any) -> None:
    from chalicelib.api.drecs import in_process_get

    # GIVEN a D-REC issued from three readings
    serial, _ = _issued(api, aws)
    reading_ids = [c["reading_id"] for c in api.get(f"/drecs/{serial}")[1]["contributions"]]
    # THEN each reading names the ReadingAccepted event its subject's events list, and the D-REC that spends it
    views = {r: api.get(f"/readings/{r}")[1] for r in reading_ids}
    for reading_id, view in views.items():
        (listed,) = api.get(f"/events?subject_id={reading_id}&type=ReadingAccepted")[1]["items"]
        assert view["accepted_event_id"] == listed["event_id"] and view["serials"] == [serial]
    # WHEN a verification fetches the readings, then their accepted events, ahead
    get = in_process_get(aws)
    calls: list[tuple[str, str]] = []
    client = aws.client("dynamodb")
    original = client._make_api_call

    def counted(operation: str, params: dict[str, Any]) -> Any:
        calls.append((operation, params.get("TableName") or ",".join(params.get("RequestItems", {}))))
        return original(operation, params)

    client._make_api_call = counted
    try:
        get.many([f"/readings/{r}" for r in reading_ids])  # type: ignore[attr-defined]
        get.many([f"/events/{v['accepted_event_id']}" for v in views.values()])  # type: ignore[attr-defined]
        answers = [get(f"/readings/{r}") for r in reading_ids]
    finally:
        client._make_api_call = original
    # THEN the readings and the events each took one batched read, no link was queried (only the
    # batches, for the events' anchors), and the answers are the routes'
    assert [table.rsplit("-", 1)[-1] for op, table in calls if op == "BatchGetItem"] == ["readings", "events"]
    assert {table.rsplit("-", 1)[-1] for op, table in calls if op != "BatchGetItem"} <= {"batches"}, calls
    assert answers == list(views.values())
