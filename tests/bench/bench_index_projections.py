"""Write units of one reading's life in each readings index, with ALL and with KEYS_ONLY projections.

    python -m tests.bench.bench_index_projections

The real store adapters on in-process moto write one reading through its life (received; judged and
accepted; pooled in two issuing steps; named by its D-RECs); after each write the stored item is read
back, and `infra.request_units` prices what each index pays for the change (AWS's published rules:
ceil(KB) of the projected entry, twice when the index key changes). Only sizes decide, so no timing.
"""

from __future__ import annotations

import os
from typing import Any
from unittest import mock

from chalicelib.domain.readings import DeviceWrites, ReadingStatus, ReceivedReading, Stage, Transition
from infra.request_units import DynamoItem, index_write_units, write_cost
from infra.resources import RESOURCES

PREFIX = "drec-units"
ENVIRONMENT = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
               "DREC_PREFIX": PREFIX, "DREC_OPERATOR_KEY": "drec_units_operator"}
READING = ReceivedReading(
    "rdg-2b0d6f8e4a1c4e7f9d3b5a2c8e6f1a09", "dev-6971bf363bbf4d45a4ce0f1e2d3c4b5a",
    "acc-cc7ed9a0ac4a494fa6bf1c2d3e4f5a6b",
    "2026-10-14T08:00:00Z", "2026-10-14T09:00:00Z", 412, "src-0a1b2c3d4e5f60718293a4b5c6d7e8f9",
    received_at="2026-10-14T09:00:41.123456Z", external_id="meter-7-2026101408", signer="0x" + "ab" * 20,
    signature="0x" + "cd" * 65)
NUMBERS = {"expected_wh": 398.25, "sigma_wh": 41.5, "ceiling_wh": 612.0, "clear_sky_wh": 655.5, "ratio": 1.0345,
           "peer_count": 14, "peer_median": 0.98, "peer_spread": 0.07, "peer_bin": 21, "diffuse_ratio": 0.41}


def _indexes() -> list[dict[str, Any]]:
    table = next(t for t in RESOURCES.tables if t.logical == "readings")
    return [{"name": i.name, "keys": [a.name for a in (i.hash_key, i.range_key) if a], "table_keys": ["id"],
             "projection": i.projection, "include": list(i.include)} for i in table.indexes]


def life(container: Any) -> list[tuple[str, DynamoItem | None, DynamoItem | None]]:
    """(step, item before, item after) of each write of the reading's life, as the stores write it."""
    readings, drecs = container.readings, container.drecs
    table = f"{PREFIX}-readings"

    def item() -> DynamoItem | None:
        return readings.client.get_item(TableName=table, Key={"id": {"S": READING.reading_id}}).get("Item")

    steps: list[tuple[str, DynamoItem | None, DynamoItem | None]] = []

    def step(name: str, write: Any) -> None:
        before = item()
        write()
        steps.append((name, before, item()))

    step("received (queued)", lambda: readings.store_new([READING], READING.source_id))
    accept = Transition(READING.reading_id, ReadingStatus.QUEUED, ReadingStatus.ACCEPTED, Stage.POOLING,
                        judged_energy_wh=412, judged_at="2026-10-14T09:01:02Z", rule="ok", reason="", numbers=NUMBERS)
    step("judged: accepted, pooling", lambda: readings.commit_verdicts([DeviceWrites(READING.device_id, None,
                                                                                      [accept], [])]))
    step("pooled in part", lambda: drecs.transact([drecs.reading_pooled(READING.reading_id, 0, 300, False)]))
    step("pooled whole (leaves the pipeline)",
         lambda: drecs.transact([drecs.reading_pooled(READING.reading_id, 300, 412, True)]))
    step("named by its D-RECs", lambda: drecs.add_spenders({READING.reading_id: {
        "DREC-KE-SHS-202610-WK6JNPZT-00000001", "DREC-KE-SHS-202610-WK6JNPZT-00000002"}}))
    return steps


def main() -> None:
    from moto import mock_aws

    from chalicelib import bootstrap
    from infra.moto_transactions import install
    from infra.provision import provision

    install()
    with mock.patch.dict(os.environ, ENVIRONMENT), mock_aws():
        for name in ("AWS_ENDPOINT_URL", "DREC_CHAIN_RPC", "DREC_LEDGER_ADDRESS"):
            os.environ.pop(name, None)
        provision(PREFIX)
        bootstrap.reset()
        steps = life(bootstrap.container())
        bootstrap.reset()
    indexes = _indexes()
    print(f"{'step':<38} {'table':>5} " + " ".join(f"{i['name'] + ' ALL/' + i['projection']:>26}" for i in indexes))
    totals = {"table": 0, **{(i["name"], p): 0 for i in indexes for p in ("ALL", i["projection"])}}
    for name, before, after in steps:
        units = write_cost(before, after)
        totals["table"] += units
        cells = []
        for index in indexes:
            each = [index_write_units(before, after, {**index, "projection": p}) for p in ("ALL", index["projection"])]
            totals[(index["name"], "ALL")] += each[0]
            totals[(index["name"], index["projection"])] += each[1]
            cells.append(f"{each[0]:>12} / {each[1]:<11}")
        print(f"{name:<38} {units:>5} " + " ".join(f"{c:>26}" for c in cells))
    all_units = totals["table"] + sum(totals[(i["name"], "ALL")] for i in indexes)
    now_units = totals["table"] + sum(totals[(i["name"], i["projection"])] for i in indexes)
    print(f"{'a reading (write units, table + indexes)':<38} {totals['table']:>5} "
          + " ".join(f"{totals[(i['name'], 'ALL')]:>12} / {totals[(i['name'], i['projection'])]:<11}" for i in indexes))
    saved = all_units - now_units
    print(f"\nall indexes ALL: {all_units} write units a reading; as declared now: {now_units} "
          f"({saved} saved, {saved / all_units:.0%} of the writes of the readings table and its indexes)")


if __name__ == "__main__":
    main()
