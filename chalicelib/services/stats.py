"""Registry totals for the dashboard, from counters only (no scan, no count query).

The stores keep the counters in the same transactions as the writes they count
(`adapters/counters.py`), so the totals are as exact as the records and reading them
costs a few items however large the registry grows.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..domain.counts import issued_by_month
from .ports.certificates import Drecs


def registry_stats(store: Drecs, totals: Mapping[str, int] | None = None) -> dict[str, Any]:
    """The dashboard's totals; `totals` when the caller has read the counters already."""
    totals = store.totals() if totals is None else totals
    by_month = issued_by_month(totals)
    return {
        "devices": totals.get("devices", 0),
        "accounts": totals.get("accounts", 0),
        "readings": totals.get("readings", 0),
        "accepted_wh": totals.get("accepted_wh", 0),
        "drecs_active": totals.get("drecs_active", 0),
        "drecs_redeemed": totals.get("drecs_redeemed", 0),
        "transfers": totals.get("transfers", 0),
        "redemptions": totals.get("redemptions", 0),
        "issuance_by_month": [{"month": month, "count": count} for month, count in by_month],
    }
