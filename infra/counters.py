"""Recompute the registry's counters from the records: once for a store written before counters existed.

Live writes keep the counters in their own transactions (`chalicelib/adapters/counters.py`);
this scans the records and writes what the counters must say, then a marker item
(`counted#stats`) so later start-ups skip it. It is not atomic with writes: run it before
anything is served (stack start-up), as `ensure_counted` does.

After restoring a snapshot the counters table may disagree with the records beside it
(tables are copied one after the other): delete the marker, or call `recount`, before serving.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterator
from typing import Any

from chalicelib.adapters.counters import COUNTED, HOLDINGS_PREFIX, STATS_PREFIX, holdings_item, stats_items
from chalicelib.domain.counts import group, issued_in, readings_in

from .resources import physical


def _scan(dynamodb: Any, table: str, attributes: tuple[str, ...]) -> Iterator[dict[str, Any]]:
    names = {f"#a{i}": a for i, a in enumerate(attributes)}
    request: dict[str, Any] = {"TableName": table, "ProjectionExpression": ", ".join(names),
                               "ExpressionAttributeNames": names, "ConsistentRead": True}
    while True:
        response = dynamodb.scan(**request)
        for item in response.get("Items", []):
            yield {k: next(iter(v.values())) for k, v in item.items()}
        if not response.get("LastEvaluatedKey"):
            return
        request["ExclusiveStartKey"] = response["LastEvaluatedKey"]


def count_records(dynamodb: Any, prefix: str) -> tuple[Counter[str], dict[str, Counter[str]]]:
    """(registry totals, holdings by account) as the records say, zeros left out."""
    totals: Counter[str] = Counter()
    for logical in ("sources", "accounts", "devices"):
        totals[logical] = sum(1 for _ in _scan(dynamodb, physical(prefix, logical), ("id",)))
    for reading in _scan(dynamodb, physical(prefix, "readings"), ("id", "status")):
        totals["readings"] += 1
        totals[readings_in(reading["status"])] += 1
    for pool in _scan(dynamodb, physical(prefix, "pools"), ("id", "accepted_wh")):
        totals["accepted_wh"] += int(pool.get("accepted_wh", 0))
    holdings: defaultdict[str, Counter[str]] = defaultdict(Counter)
    for drec in _scan(dynamodb, physical(prefix, "drecs"),
                      ("serial", "status", "owner_account_id", "country", "device_type", "vintage")):
        status = drec["status"]
        totals["drecs_issued"] += 1
        totals[f"drecs_{status}"] += 1
        totals[issued_in(drec.get("vintage", ""))] += 1
        held = holdings[drec["owner_account_id"]]
        held[status] += 1
        held[group(status, drec.get("country", ""), drec.get("device_type", ""), drec.get("vintage", ""))] += 1
    for logical in ("transfers", "redemptions"):
        totals[logical] = sum(1 for move in _scan(dynamodb, physical(prefix, logical), ("id", "status", "mirror_of"))
                              if "mirror_of" not in move and move.get("status") == "completed")
    return +totals, {account: +counts for account, counts in holdings.items()}


def _counter_item(name: str, counts: Counter[str]) -> dict[str, Any]:
    return {"name": {"S": name}, **{k: {"N": str(v)} for k, v in counts.items()}}


def recount(dynamodb: Any, prefix: str) -> tuple[Counter[str], dict[str, Counter[str]]]:
    """Replace every stats and holdings counter by what the records say; returns what was written."""
    table = physical(prefix, "counters")
    totals, holdings = count_records(dynamodb, prefix)
    stale = [item["name"] for item in _scan(dynamodb, table, ("name",))
             if item["name"].startswith((STATS_PREFIX, HOLDINGS_PREFIX))]
    writes: list[dict[str, Any]] = [{"DeleteRequest": {"Key": {"name": {"S": n}}}} for n in stale]
    # The totals go to the first shard; the others start empty (reads sum them all).
    writes = [w for w in writes if w["DeleteRequest"]["Key"]["name"]["S"] != stats_items()[0]]
    writes.append({"PutRequest": {"Item": _counter_item(stats_items()[0], totals)}})
    kept = {stats_items()[0]} | {holdings_item(a) for a in holdings}
    writes = [w for w in writes if "PutRequest" in w or w["DeleteRequest"]["Key"]["name"]["S"] not in kept]
    writes += [{"PutRequest": {"Item": _counter_item(holdings_item(a), c)}} for a, c in holdings.items()]
    for start in range(0, len(writes), 25):
        pending: Any = {table: writes[start:start + 25]}
        while pending:
            pending = dynamodb.batch_write_item(RequestItems=pending).get("UnprocessedItems")
    dynamodb.put_item(TableName=table, Item={"name": {"S": COUNTED}})
    return totals, holdings


def ensure_counted(dynamodb: Any, prefix: str) -> bool:
    """Recount once, when the marker says the counters were never computed for this store; True if it did."""
    found = dynamodb.get_item(TableName=physical(prefix, "counters"), Key={"name": {"S": COUNTED}},
                              ConsistentRead=True)
    if "Item" in found:
        return False
    recount(dynamodb, prefix)
    return True
