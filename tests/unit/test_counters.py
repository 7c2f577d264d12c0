"""Counters kept by the writes agree with a recount of the records (moto in process, the real stores)."""

from __future__ import annotations

import json
import threading
from collections import Counter
from typing import Any

from chalicelib.adapters.counters import STATS_SHARDS, Tally, stats_shard
from infra.counters import count_records, ensure_counted, recount
from tests.conftest import PREFIX, Api, device_body, pump
from tests.unit.test_trading import CLAIM, _market, _post


def _kept(aws: Any, accounts: list[str]) -> tuple[Counter[str], dict[str, Counter[str]]]:
    """What the counters say (zeros left out, as a recount leaves them out)."""
    totals = +Counter(aws.drecs.totals())
    holdings = {a: c for a in accounts if (c := +Counter(aws.trades.holding_counts(a)))}
    return totals, holdings


def test_counters_equal_a_recount_after_a_mixed_workload(api: Api, aws: Any) -> None:
    # GIVEN a developer holding eight D-RECs, and a buyer
    m = _market(api, aws)
    # AND a reading rejected at night, a second device, and readings queued but not yet judged
    _, device = api.post("/devices", device_body(m.developer), key=m.source_key)
    night = {"device_id": device["device_id"], "period_start": "2026-10-14T20:00:00Z",
             "period_end": "2026-10-14T21:00:00Z", "energy_wh": 50}
    assert api.post("/readings", {"readings": [night]}, key=m.source_key)[0] == 202
    pump(aws)
    queued = {**night, "period_start": "2026-10-15T08:00:00Z", "period_end": "2026-10-15T09:00:00Z"}
    assert api.post("/readings", {"readings": [queued]}, key=m.source_key)[0] == 202
    # WHEN some D-RECs are transferred, some redeemed, and a transfer fails
    assert _post(api, "/transfers", {"from_account_id": m.developer, "to_account_id": m.buyer, "quantity": 5},
                 key=m.developer_key)[0] == 201
    assert _post(api, "/redemptions", {"account_id": m.buyer, "serials": m.serials[:2], "beneficiary": "Acme Ltd",
                                       "purpose": "Scope 2", **CLAIM}, key=m.buyer_key)[0] == 201
    assert _post(api, "/transfers", {"from_account_id": m.developer, "to_account_id": m.buyer, "quantity": 50},
                 key=m.developer_key)[0] == 422

    # THEN the counters say what a recount of the records says
    accounts = [m.developer, m.buyer]
    totals, holdings = _kept(aws, accounts)
    assert (totals, holdings) == count_records(aws.client("dynamodb"), PREFIX)
    assert totals["drecs_active"] == 6 and totals["drecs_redeemed"] == 2 and totals["readings_rejected"] == 1
    assert totals["readings_queued"] == 1 and totals["transfers"] == 1 and totals["redemptions"] == 1
    # AND the routes answer from them
    status, stats = api.get("/stats")
    assert status == 200 and (stats["devices"], stats["accounts"], stats["readings"]) == (2, 2, 3)
    assert (stats["drecs_active"], stats["drecs_redeemed"], stats["accepted_wh"]) == (6, 2, 8000)
    assert stats["issuance_by_month"] == [{"month": "2026-10", "count": 8}]
    _, held = api.get(f"/accounts/{m.buyer}/holdings")
    assert (held["active"], held["redeemed"]) == (3, 2)
    assert {(g["status"], g["count"]) for g in held["groups"]} == {("active", 3), ("redeemed", 2)}


def test_counters_spread_over_shards_and_stats_reads_no_table(api: Api, aws: Any) -> None:
    # GIVEN forty devices registered
    _, source = api.post("/sources", {"name": "Agg", "kind": "aggregator"})
    _, account = api.post("/accounts", {"name": "Dev", "kind": "developer", "country": "KE"}, key=source["api_key"])
    for _ in range(40):
        assert api.post("/devices", device_body(account["account_id"]), key=source["api_key"])[0] == 201
    # THEN their counts landed on more than one shard, and add up
    dynamodb = aws.client("dynamodb")
    shards = [dynamodb.get_item(TableName=f"{PREFIX}-counters", Key={"name": {"S": f"stats#{n}"}}).get("Item", {})
              for n in range(STATS_SHARDS)]
    per_shard = [int(s["devices"]["N"]) for s in shards if "devices" in s]
    assert len(per_shard) > 1 and sum(per_shard) == 40
    # WHEN the stats are read THEN no table is scanned or queried: only items read by key
    calls: list[str] = []
    client = aws.drecs.client
    original = client._make_api_call

    def watched(operation: str, params: dict[str, Any]) -> Any:
        calls.append(f"{operation}:{params.get('TableName') or ','.join(params.get('RequestItems', {}))}")
        return original(operation, params)

    client._make_api_call = watched
    try:
        assert api.get("/stats")[1]["devices"] == 40
    finally:
        client._make_api_call = original
    # the registry's counters in one batch get; the operations block: every event shard's sequence, every
    # shard's anchored watermark (counter items, one batch get each) and the oldest unanchored events
    assert calls == [f"BatchGetItem:{PREFIX}-counters"] * 3 + [f"BatchGetItem:{PREFIX}-events"]


def test_a_tally_touches_each_counter_item_once_and_drops_what_cancels() -> None:
    tally = Tally().add("stats#1", "drecs_active", -1).add("stats#1", "drecs_redeemed").add("stats#1", "drecs_active")
    tally.hold("acc-a", {"country": "KE"}, "active", -1).hold("acc-a", {"country": "KE"}, "active", 1)
    (only,) = tally.updates("t-counters")
    assert only["Update"]["UpdateExpression"] == "ADD #c0 :c0"
    assert only["Update"]["ExpressionAttributeNames"] == {"#c0": "drecs_redeemed"}
    assert stats_shard("dev-1") == stats_shard("dev-1") and len({stats_shard(f"d{n}") for n in range(64)}) > 4


def test_counters_stay_exact_under_concurrent_writers(api: Api, aws: Any) -> None:
    from chalicelib.api.schemas import DeviceIn
    from chalicelib.domain.model import OPERATOR_ID, Principal, PrincipalKind
    from chalicelib.domain.registry import RegisterDevice
    from chalicelib.services import registry as registering

    # GIVEN two accounts with D-RECs to trade
    m = _market(api, aws, energy_wh=12_000)
    errors: list[BaseException] = []

    def register_devices() -> None:
        try:
            for _ in range(8):
                body = DeviceIn.model_validate_json(json.dumps(device_body(m.developer)))
                command = RegisterDevice(**body.model_dump())
                registering.register_device(aws.registry, Principal(PrincipalKind.OPERATOR, OPERATOR_ID), command,
                                            site_lookup=aws.site_lookup)
        except BaseException as exc:
            errors.append(exc)

    def trade(serials: list[str], to: str) -> None:
        from chalicelib.domain.moves import TransferDrecs
        from chalicelib.services import transfers

        try:
            principal = Principal(PrincipalKind.ACCOUNT, m.developer)
            transfers.transfer(aws.registry, aws.trades, principal,
                               TransferDrecs(m.developer, to, serials=tuple(serials)), None)
        except BaseException as exc:
            errors.append(exc)

    # WHEN devices are registered and D-RECs moved by several threads at once
    threads = [threading.Thread(target=register_devices) for _ in range(3)]
    threads += [threading.Thread(target=trade, args=(m.serials[i::3], m.buyer)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    # THEN the counters still equal a recount
    totals, holdings = _kept(aws, [m.developer, m.buyer])
    assert (totals, holdings) == count_records(aws.client("dynamodb"), PREFIX)
    assert totals["devices"] == 1 + 24 and totals["transfers"] == 3 and holdings[m.buyer]["active"] == 12


def test_recount_restores_counters_once_when_the_marker_is_missing(api: Api, aws: Any) -> None:
    m = _market(api, aws, energy_wh=3_000)
    dynamodb = aws.client("dynamodb")
    right = count_records(dynamodb, PREFIX)
    # GIVEN counters that are wrong (a store written before counters existed, or a restored snapshot)
    for name in ("stats#0", "stats#3", f"holdings#{m.developer}"):
        dynamodb.put_item(TableName=f"{PREFIX}-counters", Item={"name": {"S": name}, "devices": {"N": "99"}})
    assert _kept(aws, [m.developer, m.buyer]) != right
    # WHEN the stack starts THEN they are recounted once, and left alone afterwards
    assert ensure_counted(dynamodb, PREFIX) is True
    assert _kept(aws, [m.developer, m.buyer]) == right
    assert ensure_counted(dynamodb, PREFIX) is False
    assert recount(dynamodb, PREFIX) == right
