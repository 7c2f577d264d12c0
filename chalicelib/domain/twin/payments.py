"""Pay-as-you-go payments as generation: the Wh a paid window credits, capped by the twin."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np

from ..errors import BadInput
from ..time import MAX_PERIOD
from .climatology import month_index, monthly_clear_sky_index, monthly_ghi
from .physics import DeviceTwin, clear_sky_energy, to_epoch_seconds

#: Share of nameplate × peak-sun hours a pay-as-you-go system turns into delivered energy.
PAYG_PERFORMANCE_RATIO = 0.75


def derived_energy_for_payment(
    twin: DeviceTwin, paid_from: dt.datetime, paid_until: dt.datetime
) -> int:
    """Generation [Wh] credited for a pay-as-you-go window, rounded down.

    E = min(capacity_w × PSH × PR, kc̄ × E_clear, battery_wh × days), where
    PSH is the window's peak-sun hours from the month's climatological daily
    GHI [kWh m-2 per day], PR = 0.75, kc̄ × E_clear is the twin's expected
    (not ceiling) energy for the window, and the battery term (when known)
    caps what a system can store and deliver per day.
    """
    start_s, end_s = to_epoch_seconds([paid_from, paid_until])
    if end_s <= start_s:
        raise BadInput("paid_until must be later than paid_from", field="paid_until")
    hour_mid = np.arange(start_s, end_s, 3600.0) + 1800.0
    hours = np.minimum(3600.0, end_s - (hour_mid - 1800.0)) / 3600.0
    ghi_mean, _ = monthly_ghi(twin.latitude, twin.longitude)
    peak_sun_hours = float(
        np.sum(np.nan_to_num(ghi_mean)[month_index(hour_mid)] / 1000.0 * hours)
    )
    candidates = [twin.capacity_w * peak_sun_hours * PAYG_PERFORMANCE_RATIO]

    window_starts = np.arange(start_s, end_s, MAX_PERIOD.total_seconds())
    window_ends = np.minimum(window_starts + MAX_PERIOD.total_seconds(), end_s)
    sky = clear_sky_energy(
        [twin] * len(window_starts),
        window_starts.astype("datetime64[s]"),
        window_ends.astype("datetime64[s]"),
    )
    climate = monthly_clear_sky_index(twin.latitude, twin.longitude)
    kc = np.array(climate.mean)[month_index((window_starts + window_ends) / 2.0)]
    candidates.append(float(np.sum(kc * sky.clear_sky_wh)))
    if twin.battery_wh is not None:
        candidates.append(twin.battery_wh * (end_s - start_s) / 86400.0)
    return int(max(0.0, math.floor(min(candidates))))
