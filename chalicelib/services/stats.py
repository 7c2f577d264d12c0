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

from ..domain.certificates import DrecStatus
from ..domain.issuance.keys import PoolKey
from .ports.certificates import Drecs


def registry_stats(store: Drecs) -> dict[str, Any]:
    accepted_wh = 0
    by_month: dict[str, int] = defaultdict(int)
    for pool_id, pool_accepted_wh, issued_count in store.pool_totals():
        accepted_wh += pool_accepted_wh
        label = PoolKey.from_pool_id(pool_id).period_label
        by_month[f"{label[:4]}-{label[4:6]}"] += issued_count
    return {
        "devices": store.count_registered("device"),
        "accounts": store.count_registered("account"),
        "accepted_wh": accepted_wh,
        "drecs_active": store.count_drecs(DrecStatus.ACTIVE),
        "drecs_redeemed": store.count_drecs(DrecStatus.REDEEMED),
        "issuance_by_month": [{"month": m, "count": n} for m, n in sorted(by_month.items())],
    }
