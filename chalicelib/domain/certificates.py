"""D-RECs as records: their status, what the rules read of one, and which of a holder's D-RECs a quantity takes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any


class DrecStatus(str, Enum):
    """An active D-REC can move; a redeemed one never moves again."""

    ACTIVE = "active"
    REDEEMED = "redeemed"


@dataclass(frozen=True)
class Drec:
    """One issued D-REC (1 kWh = 1000 Wh) as it stands now.

    `document` is the whole certificate as published (contributions, hourly Wh, …);
    the fields above it are the ones the trading rules read.
    """

    serial: str
    owner_account_id: str
    status: DrecStatus
    period_start: str
    country: str = ""
    device_type: str = ""
    offtaker_type: str = ""
    vintage: str = ""
    device_ids: tuple[str, ...] = ()
    locked_by: str | None = None
    document: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True)
class DrecSelection:
    """Which of an account's active D-RECs a quantity is taken from (all when every field is None)."""

    country: str | None = None
    device_type: str | None = None
    offtaker_type: str | None = None
    vintage: str | None = None
    vintage_from: str | None = None
    vintage_to: str | None = None

    def characteristics(self) -> dict[str, str | None]:
        return {"country": self.country, "device_type": self.device_type, "offtaker_type": self.offtaker_type}

    def vintages(self) -> tuple[str | None, str | None]:
        """(first, last) generation month, inclusive; None is open."""
        return self.vintage or self.vintage_from, self.vintage or self.vintage_to

    def admits(self, drec: Drec) -> bool:
        wanted = {k: v for k, v in self.characteristics().items() if v is not None}
        first, last = self.vintages()
        return (all(getattr(drec, k) == v for k, v in wanted.items())
                and (first is None or drec.vintage >= first) and (last is None or drec.vintage <= last))


# -- issuance ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PoolableReading:
    """An accepted reading waiting to be pooled: its judged energy and how much of it is pooled already [Wh]."""

    id: str
    device_id: str
    owner_account_id: str
    period_start: str
    period_end: str
    source_id: str
    judged_energy_wh: int
    pooled_wh: int = 0
    signature: str | None = None
    signer: str | None = None
    correlation_id: str | None = None  # the request that brought it (telemetry)


@dataclass(frozen=True)
class ReadingPooled:
    """A reading's pooled Wh moved forward, only from where it was: a replay changes nothing."""

    reading_id: str
    from_wh: int
    to_wh: int
    done: bool


@dataclass(frozen=True)
class Issuance:
    """One issuing step, all or nothing: the pool from `from_version` to the next with its new state and
    totals, each reading's pooled Wh, the D-RECs cut (as published, status active) and their events."""

    pool_id: str
    from_version: int
    state: Mapping[str, Any]
    totals: Mapping[str, Any]
    readings: tuple[ReadingPooled, ...]
    drecs: tuple[Mapping[str, Any], ...]
    events: tuple[Any, ...]  # NewEvent
