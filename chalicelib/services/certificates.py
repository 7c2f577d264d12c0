"""Reading D-RECs: lists by buyer characteristics, one D-REC with contributions and events."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ..domain.certificates import Drec, DrecStatus
from ..domain.errors import BadInput, NotFound
from ..domain.stores import Page
from .ports.certificates import Drecs

VINTAGE = re.compile(r"^\d{4}-\d{2}$")
PUBLIC_FIELDS = ("serial", "owner_account_id", "status", "energy_wh", "period_start", "period_end", "vintage",
                 "country", "countries", "device_type", "device_types", "offtaker_type", "offtaker_types",
                 "avoided_co2_kg", "contributions_root", "device_ids", "source_ids", "issued_at", "pool_id",
                 "sequence", "redemption_id", "sponsor")


def summary(item: Mapping[str, Any]) -> dict[str, Any]:
    return {k: item.get(k) for k in PUBLIC_FIELDS if k in item}


def detail(drec: Drec, events: list[dict[str, Any]]) -> dict[str, Any]:
    item = drec.document
    out = summary(item)
    out["hourly_wh"] = item.get("hourly_wh", {})
    out["contributions"] = [{k: c.get(k) for k in ("device_id", "reading_id", "energy_wh", "period_start",
                                                   "period_end", "source_id", "signer", "signature")}
                            for c in item.get("contributions", [])]
    out["events"] = events
    return out


def list_drecs(store: Drecs, limit: int, cursor: str | None, query: dict[str, str]) -> Page:
    status = query.get("status")
    if status and status not in {s.value for s in DrecStatus}:
        raise BadInput("status must be active or redeemed", field="status")
    vintage = (query.get("vintage_from"), query.get("vintage_to"))
    for name, value in zip(("vintage_from", "vintage_to"), vintage):
        if value and not VINTAGE.match(value):
            raise BadInput(f"{name} is a month like 2026-11", field=name)
    filters = {k: query.get(k) for k in ("owner_account_id", "status", "country", "device_type", "offtaker_type",
                                         "device_id")}
    page = store.list_drecs(limit, cursor, filters, vintage)
    return Page([summary(i) for i in page.items], page.next_cursor)


def get_drec(store: Drecs, serial: str) -> Drec:
    drec = store.drec(serial)
    if drec is None:
        raise NotFound(f"no D-REC {serial!r}", field="serial")
    return drec
