"""Registry totals for the dashboard.

Pools already carry accepted Wh and issued counts per owner, characteristics and
month, so totals and issuance over time come from the pools (a few items per owner),
not from the readings. Counts of devices, accounts and D-RECs by status are COUNT
queries on their indexes: fine for a local or mid-size registry; at millions of
devices they belong in counters kept by the registration transactions.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from ..adapters.dynamo import DynamoBase, to_item
from ..domain.issuance.pools import PoolKey


def _count(store: DynamoBase, logical: str, index: str, key_name: str, key_value: str) -> int:
    request: dict[str, Any] = {"TableName": store.name(logical), "IndexName": index, "Select": "COUNT",
                               "KeyConditionExpression": "#k = :k", "ExpressionAttributeNames": {"#k": key_name},
                               "ExpressionAttributeValues": to_item({":k": key_value})}
    total = 0
    while True:
        response = store.client.query(**request)
        total += int(response["Count"])
        if "LastEvaluatedKey" not in response:
            return total
        request["ExclusiveStartKey"] = response["LastEvaluatedKey"]


def registry_stats(store: DynamoBase) -> dict[str, Any]:
    accepted_wh = 0
    by_month: dict[str, int] = defaultdict(int)
    for page_item in store.scan_page("pools", 1000, None).items:
        accepted_wh += int(page_item.get("accepted_wh", 0))
        label = PoolKey.from_pool_id(page_item["id"]).period_label
        by_month[f"{label[:4]}-{label[4:6]}"] += int(page_item.get("issued_count", 0))
    return {
        "devices": _count(store, "devices", "by_entity", "entity", "device"),
        "accounts": _count(store, "accounts", "by_entity", "entity", "account"),
        "accepted_wh": accepted_wh,
        "drecs_active": _count(store, "drecs", "by_status", "status", "active"),
        "drecs_redeemed": _count(store, "drecs", "by_status", "status", "redeemed"),
        "issuance_by_month": [{"month": m, "count": n} for m, n in sorted(by_month.items())],
    }
