"""The capacity model's arithmetic (tests/bench/capacity_model.py) and the benchmark's pricing, on small known cases."""

from __future__ import annotations

import pytest

from tests.bench import pipeline_cost as cost
from tests.bench.capacity_model import Params, model, shards_needed, table_rates

# A run of 1,000 readings from 1,000 devices: 0.5 event-counter units, 2 units on `status = accepted`,
# 1.2 units on the one pool, and one unit per reading on each reading's own key.
MEASURED = {
    "readings": 1000, "devices": 1000, "anchor_batches": 10,
    "tables": {"t-readings": {"write_units": 1000.0, "index_write_units": 2000.0}},
    "hot_keys": {
        "t-counters": {"keys": 1, "write_units": 500.0, "top": [["event_seq", 500.0]], "all": [["event_seq", 500.0]]},
        "t-readings/by_status": {"keys": 2, "write_units": 2000.0, "top": [["accepted", 2000.0]],
                                 "all": [["accepted", 2000.0]]},
        "t-pools": {"keys": 1, "write_units": 1200.0, "top": [["acc|KE|shs|202610", 1200.0]]},
        "t-readings": {"keys": 1000, "write_units": 1000.0, "top": [["rdg-1", 1.0]]},
        "t-batches": {"keys": 1, "write_units": 30.0, "top": [["main", 30.0]], "all": [["main", 30.0]]},
    },
}


def _rows(params: Params) -> dict[str, object]:
    return {row.scope: row for row in model(MEASURED, params)}


def test_peak_is_the_fleet_within_the_burst() -> None:
    assert Params(devices=3_600_000, burst_s=3600).peak_readings_s == 1000
    assert Params(devices=10_000_000, burst_s=300).peak_readings_s == pytest.approx(33_333.3, abs=0.1)


def test_shards_needed_rounds_up_to_the_partition_limit() -> None:
    assert [shards_needed(u) for u in (0, 999, 1000, 1001, 6000)] == [1, 1, 1, 2, 6]


def test_event_counter_spreads_over_its_shards() -> None:
    # 12,000 readings/s × 0.5 units = 6,000 units/s: 6 shards needed; 4 give 1,500 each (too hot), 8 give 750
    hot = _rows(Params(devices=3_600_000, burst_s=300, event_shards=4))["t-counters"]
    assert (hot.kind, hot.peak_units_s, hot.shards_needed, hot.fits) == ("event counter", 1500, 6, False)
    cool = _rows(Params(devices=3_600_000, burst_s=300, event_shards=8))["t-counters"]
    assert (cool.peak_units_s, cool.fits) == (750, True)


def test_low_cardinality_index_key_takes_the_whole_fleet() -> None:
    row = _rows(Params(devices=3_600_000, burst_s=300))["t-readings/by_status"]
    assert (row.kind, row.peak_units_s, row.shards_needed) == ("fleet-wide", 24_000, 24)


def test_pool_takes_its_owner_share_over_its_shards() -> None:
    # 12,000 readings/s × 10 % × 1.2 units = 1,440 units/s over 2 pool shards
    row = _rows(Params(devices=3_600_000, burst_s=300, pool_shards=2, largest_pool_share=0.1))["t-pools"]
    assert (row.kind, row.peak_units_s, row.shards_needed, row.fits) == ("per owner", 720, 2, True)


def test_per_reading_keys_and_anchoring_batches_stay_cool() -> None:
    rows = _rows(Params(devices=10_000_000, burst_s=300))
    assert rows["t-readings"].kind == "per device or reading" and rows["t-readings"].peak_units_s < 1
    assert rows["t-batches"].kind == "per anchoring batch" and rows["t-batches"].peak_units_s == pytest.approx(0.05)


def test_table_rate_is_units_per_reading_at_the_peak() -> None:
    assert table_rates(MEASURED, Params(devices=3_600_000, burst_s=3600)) == {"t-readings": 3000.0}


def test_costs_price_each_counted_unit() -> None:
    used = cost.Consumption(readings=1_000_000, drecs=100, write_units=1e6, read_units=2e6, sqs_requests=1e6,
                            s3_put=1000, s3_get=1000, lambda_invocations=1e6, lambda_billed_ms=1e6,
                            api_requests=1e6)
    priced = cost.costs(used, cost.load_prices(), memory_mb=1024)
    assert priced["DynamoDB writes"] == pytest.approx(0.625)
    assert priced["DynamoDB reads"] == pytest.approx(0.25)
    assert priced["SQS requests"] == pytest.approx(0.40)
    assert priced["S3 requests"] == pytest.approx(0.0054)
    assert priced["Lambda duration (1024 MB, x86_64)"] == pytest.approx(1000 * 0.0000166667)
    assert priced["API Gateway (REST) requests"] == pytest.approx(3.50)


def test_a_device_year_is_8760_readings_plus_storage() -> None:
    used = cost.Consumption(readings=1000, drecs=1, write_units=1000 * 1.6)  # $0.000001 a reading
    year = cost.per_device_year(used, cost.load_prices(), memory_mb=1024)
    assert year["requests"] == pytest.approx(8760 * 1.6 * 0.625e-6)
    assert year["storage (year one)"] == 0
