"""What a device's site gives the twin: monthly Linke turbidity, altitude, an assumed orientation.

Looked up once at registration from the data bundled with pvlib and stored with the device,
so judging never opens pvlib's files.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from pvlib import clearsky, location


@dataclass(frozen=True)
class SiteConstants:
    """What a registration looks up once and stores with the device."""

    linke_turbidity: tuple[float, ...]
    altitude_m: float


def site_constants(latitude: float, longitude: float) -> SiteConstants:
    """Monthly Linke turbidity and altitude [m] from the data bundled with pvlib.

    Costs a few milliseconds (pvlib reopens its HDF5 files): call it at
    registration, never while judging.
    """
    mid_months = pd.DatetimeIndex(
        [f"2020-{month:02d}-15" for month in range(1, 13)], tz="UTC"
    )
    turbidity = clearsky.lookup_linke_turbidity(
        mid_months, latitude, longitude, interp_turbidity=False
    )
    altitude = location.lookup_altitude(latitude, longitude)
    return SiteConstants(
        linke_turbidity=tuple(round(float(value), 3) for value in turbidity),
        altitude_m=float(altitude),
    )


def assumed_orientation(latitude: float) -> tuple[float, float]:
    """Tilt and azimuth [°] assumed when a device did not declare them: equator-facing, tilt ≈ latitude."""
    tilt = float(np.clip(abs(latitude), 10.0, 40.0))
    return tilt, (180.0 if latitude >= 0 else 0.0)


def turbidity_for_day(monthly: np.ndarray, day_of_year: np.ndarray) -> np.ndarray:
    """Linke turbidity interpolated linearly between mid-month values, as pvlib does."""
    position = (day_of_year - 15.0) / (365.25 / 12.0)
    lower = np.floor(position).astype(np.int64)
    weight = position - lower
    rows = np.arange(len(monthly))
    return (
        monthly[rows, lower % 12] * (1.0 - weight)
        + monthly[rows, (lower + 1) % 12] * weight
    )
