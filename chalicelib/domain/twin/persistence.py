"""What a device's history says: its usual ratio, whether it stays above its reference, whether it stays low.

One reading can be a cloud; a week cannot. Each judged reading's energy and its reference energy (the
neighbours' median ratio × the reading's clear-sky energy, else the month's climatological ratio × it)
are summed per UTC day. When a day closes, its log ratio X = ln(Σ energy / Σ reference) feeds:

- a one-sided **CUSUM** (Page 1954): S ← max(0, S + X / σ − κ). σ is the day's spread of honest log
  ratios for that reference (neighbours: tight; climatology: the weather's own spread), κ the allowance.
  S ≥ h opens a review: the device has been steadily above what its neighbours (or its climate)
  explain. Against neighbours a device ×1.3 crosses h in a few days; honest devices drift down.
- an exponentially weighted mean of X: below `LOW_NOTE_LOG_RATIO` for `LOW_NOTE_MIN_DAYS` days gives the
  owner a maintenance note (soiling, shading, a failing module or battery); nothing is held for it.

The state is a few numbers per device, kept with its accepted periods in `device_state` and written in
the validator's transaction.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .judging import Judgement

#: Energy [Wh] below which a period's clear sky says nothing (night, dawn).
NO_SUN_WH = 5.0
#: σ of a day's log ratio for an honest device against neighbours (orientation and losses under changing
#: skies) and the floor of the climatological σ; fitted on the fit set (bench_twin).
PEER_DAY_SIGMA = 0.10
MIN_CLIMATE_DAY_SIGMA = 0.25
#: CUSUM allowance κ [σ] and decision threshold h [σ·days] (fit set: ×1.3 found within 7 days in 70 % of
#: starts; 5 of 39 honest device-years reviewed once, mostly devices whose orientation the twin misjudges).
CUSUM_ALLOWANCE = 1.5
CUSUM_THRESHOLD = 5.0
#: A single day moves the CUSUM by at most this much [σ]: one freak day never opens a review alone.
CUSUM_DAY_CAP = 3.0
#: A day needs this much reference energy [Wh] and this share of it against neighbours to count as "peers".
MIN_DAY_REFERENCE_WH = 20.0
#: Maintenance note: the weighted mean of daily log ratios (weight of a new day) below ln 0.75, after
#: at least a few days; it goes away above ln 0.85.
LOW_WEIGHT = 0.25
LOW_NOTE_LOG_RATIO = math.log(0.75)
LOW_CLEAR_LOG_RATIO = math.log(0.85)
LOW_NOTE_MIN_DAYS = 5


@dataclass(frozen=True)
class DeviceHistory:
    """A device's running statistics (population σ of accepted ratios) and its sequential tests."""

    accepted_count: int = 0
    mean_ratio: float = 0.0
    sigma_ratio: float = 0.0
    # The UTC day being summed: energy and reference energy, split by reference kind.
    day: str = ""
    day_energy_wh: float = 0.0
    day_peer_energy_wh: float = 0.0
    day_peer_reference_wh: float = 0.0
    day_climate_reference_wh: float = 0.0
    day_climate_sigma: float = 0.0  # reference-weighted mean climatological σ of the day's readings [log]
    # The tests over closed days.
    cusum: float = 0.0
    cusum_days: int = 0  # days since the CUSUM last stood at zero
    days: int = 0
    low_level: float = 0.0
    last_day_log_ratio: float = 0.0
    last_day_reference: str = ""
    review_epoch: int = 0  # the registry's review epoch this CUSUM belongs to
    review_open: bool = False  # the validator opened a review in this epoch
    cell: str = ""  # the geohash cell the device reports in (counted once in the cell's reporting devices)

    def as_item(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}

    @classmethod
    def from_item(cls, item: Any) -> DeviceHistory:
        """A stored history (fields of earlier releases kept, unknown ones ignored)."""
        if not item:
            return cls()
        defaults = cls()
        return cls(**{name: type(getattr(defaults, name))(item[name]) for name in cls.__dataclass_fields__
                      if item.get(name) is not None})


def update_history(history: DeviceHistory, energy_wh: int, clear_sky_wh: float) -> DeviceHistory:
    """Fold one accepted reading into the running mean and σ (Welford); night readings say nothing."""
    if clear_sky_wh <= NO_SUN_WH:
        return history
    ratio = energy_wh / clear_sky_wh
    count = history.accepted_count + 1
    delta = ratio - history.mean_ratio
    mean = history.mean_ratio + delta / count
    squares = history.sigma_ratio**2 * history.accepted_count + delta * (ratio - mean)
    return replace(history, accepted_count=count, mean_ratio=mean,
                   sigma_ratio=math.sqrt(max(squares, 0.0) / count))


def fold(history: DeviceHistory, judgement: Judgement, energy_wh: float) -> DeviceHistory:
    """Add a judged reading (accepted or held, in period order) to the device's day sums; close earlier days."""
    if judgement.clear_sky_wh <= NO_SUN_WH or judgement.period_start is None:
        return history
    day = judgement.period_start.date().isoformat()
    if history.day and day != history.day:
        history = close_day(history)
    if history.day != day:
        history = replace(history, day=day, day_energy_wh=0.0, day_peer_energy_wh=0.0,
                          day_peer_reference_wh=0.0, day_climate_reference_wh=0.0, day_climate_sigma=0.0)
    clear = judgement.clear_sky_wh
    if judgement.reference == "peers":
        basis = judgement.diffuse_wh if judgement.regime == "overcast" else clear
        return replace(history, day_energy_wh=history.day_energy_wh + energy_wh,
                       day_peer_energy_wh=history.day_peer_energy_wh + energy_wh,
                       day_peer_reference_wh=history.day_peer_reference_wh + judgement.peer_median * basis)
    reference = judgement.climate_ratio * clear
    total = history.day_climate_reference_wh + reference
    sigma = judgement.climate_spread / judgement.climate_ratio if judgement.climate_ratio > 0 else 0.0
    mean_sigma = ((history.day_climate_sigma * history.day_climate_reference_wh + sigma * reference) / total
                  if total > 0 else 0.0)
    return replace(history, day_energy_wh=history.day_energy_wh + energy_wh,
                   day_climate_reference_wh=total, day_climate_sigma=mean_sigma)


def close_day(history: DeviceHistory) -> DeviceHistory:
    """The open day's log ratio into the CUSUM and the low-output level; the day sums are emptied."""
    peer_reference, climate_reference = history.day_peer_reference_wh, history.day_climate_reference_wh
    emptied = replace(history, day="", day_energy_wh=0.0, day_peer_energy_wh=0.0, day_peer_reference_wh=0.0,
                      day_climate_reference_wh=0.0, day_climate_sigma=0.0)
    if peer_reference + climate_reference < MIN_DAY_REFERENCE_WH:
        return emptied
    if peer_reference >= climate_reference:
        kind, energy, reference = "peers", history.day_peer_energy_wh, peer_reference
        sigma = PEER_DAY_SIGMA
    else:
        kind, energy, reference = "climatology", history.day_energy_wh - history.day_peer_energy_wh, climate_reference
        # A daily σ from hourly climatology overstates a day's spread less than it understates it: floor it.
        sigma = max(history.day_climate_sigma / math.sqrt(3.0), MIN_CLIMATE_DAY_SIGMA)
    log_ratio = math.log(max(energy, 1.0) / reference)
    step = min(log_ratio / sigma, CUSUM_DAY_CAP) - CUSUM_ALLOWANCE
    cusum = max(0.0, history.cusum + step)
    level = log_ratio if history.days == 0 else (1 - LOW_WEIGHT) * history.low_level + LOW_WEIGHT * log_ratio
    return replace(emptied, cusum=cusum, cusum_days=history.cusum_days + 1 if cusum > 0 else 0,
                   days=history.days + 1, low_level=level, last_day_log_ratio=log_ratio, last_day_reference=kind)


def restart(history: DeviceHistory, review_epoch: int) -> DeviceHistory:
    """A cleared review: the CUSUM starts afresh under the registry's new epoch."""
    return replace(history, cusum=0.0, cusum_days=0, review_epoch=review_epoch, review_open=False)


def review_due(history: DeviceHistory) -> str | None:
    """Why the device should go under review, or None."""
    if history.cusum < CUSUM_THRESHOLD:
        return None
    against = "its neighbours" if history.last_day_reference == "peers" else "its climatology"
    return (f"output has stayed above {against} for {history.cusum_days} days "
            f"(CUSUM {history.cusum:.1f} ≥ {CUSUM_THRESHOLD:g}; last day ×{math.exp(history.last_day_log_ratio):.2f})")


def low_output(history: DeviceHistory, noted: bool) -> str | None:
    """A maintenance note when output stays low (hysteresis: a note stays until output recovers)."""
    if history.days < LOW_NOTE_MIN_DAYS:
        return None
    threshold = LOW_CLEAR_LOG_RATIO if noted else LOW_NOTE_LOG_RATIO
    if history.low_level >= threshold:
        return None
    against = "its neighbours" if history.last_day_reference == "peers" else "the weather of its place"
    return (f"output has been about {math.exp(history.low_level):.0%} of what {against} suggest over recent days: "
            "check for shading, soiling, a failing module, battery or meter. Nothing is held; readings are accepted.")
