"""Weather the twin was fitted on, and weather held out from it.

Fit set (the twin's constants — low-sun bound, all-diffuse bound, noon-plane choice, ceiling
margins — and the neighbour/CUSUM constants were fitted on these): the three files pvlib
0.16.1 ships, TMY3 Greensboro `723170TYA.CSV`, TMY3 Sand Point `703165TY.csv`, TMY2 Miami
`12839.tm2`. The benchmark reports on none of them.

Held-out set: real weather files shipped inside the pvlib 0.9.5 wheel, fetched once from PyPI by
`make bench-twin` into `.stack/bench-data/` and checked against a pinned sha256; only the files
below are read out of it with `zipfile`. No network at benchmark time.
"""

from __future__ import annotations

import hashlib
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from pvlib import iotools, solarposition

WHEEL = Path(".stack/bench-data/pvlib-0.9.5-py3-none-any.whl")
WHEEL_SHA256 = "e0932ba280e999284f0cdec4def09bdf7a79b8f681ce5262ad857facac92b92e"
FETCH = "python -m pip download pvlib==0.9.5 --no-deps --only-binary :all: -d .stack/bench-data"
#: Dropped: `test_psm3_2017.csv` (NSRDB PSM3 2017, satellite-derived) — pvlib 0.16.1 removed
#: `read_psm3`, and its `read_nsrdb_psm4` fails on the PSM3 header ("Duplicate names are not allowed").
DROPPED = {
    "test_psm3_2017.csv": "pvlib 0.16.1 has no read_psm3 and read_nsrdb_psm4 rejects the PSM3 "
    "header (duplicate column names)",
}
#: BSRN has no wind: the honest cell temperature uses this fixed wind [m s-1].
FIXED_WIND_MS = 1.0


@dataclass(frozen=True)
class Station:
    """One weather file: rows of measured weather, each row the mean over [start, start + step)."""

    name: str
    source: str
    latitude: float
    longitude: float
    altitude_m: float
    utc_offset_h: float  # local standard time − UTC [h]
    step_min: int  # 1 (BSRN) or 60
    start: pd.DatetimeIndex  # UTC start of each row
    weather: pd.DataFrame  # ghi, dni, dhi [W m-2], temp_air [°C], wind_speed [m s-1]; RangeIndex


def _wheel() -> zipfile.ZipFile:
    if not WHEEL.exists():
        raise SystemExit(f"{WHEEL} is missing: run `make bench-twin` (it runs `{FETCH}`)")
    digest = hashlib.sha256(WHEEL.read_bytes()).hexdigest()
    if digest != WHEEL_SHA256:
        raise SystemExit(f"{WHEEL} has sha256 {digest}, expected {WHEEL_SHA256}: delete it and rerun")
    return zipfile.ZipFile(WHEEL)


def _extract(archive: zipfile.ZipFile, name: str, target: Path) -> Path:
    path = target / name
    if not path.exists():
        path.write_bytes(archive.read(f"pvlib/data/{name}"))
    return path


def _one_year(index: pd.Index) -> pd.DatetimeIndex:
    """Typical years mix calendar years month by month: put every row in 2021, then to UTC."""
    local = pd.DatetimeIndex(index)
    return pd.DatetimeIndex([t.replace(year=2021) for t in local]).tz_convert("UTC")


def _frame(data: pd.DataFrame, wind: bool = True) -> pd.DataFrame:
    out = pd.DataFrame(
        {
            "ghi": data["ghi"].to_numpy(float),
            "dni": data["dni"].to_numpy(float),
            "dhi": data["dhi"].to_numpy(float),
            "temp_air": data["temp_air"].to_numpy(float),
            "wind_speed": data["wind_speed"].to_numpy(float) if wind else FIXED_WIND_MS,
        }
    )
    return out


def _fill(station: Station) -> Station:
    """Gaps: GHI/DHI missing → 0, DNI missing → closure (GHI − DHI) / cos z; negatives → 0."""
    w = station.weather.copy()
    middle = station.start + pd.Timedelta(minutes=station.step_min / 2)
    zenith = solarposition.get_solarposition(
        middle, station.latitude, station.longitude, station.altitude_m
    )["apparent_zenith"].to_numpy()
    cos_z = np.cos(np.radians(zenith))
    w["ghi"] = w["ghi"].fillna(0.0).clip(lower=0.0)
    w["dhi"] = np.minimum(w["dhi"].fillna(w["ghi"]).clip(lower=0.0), w["ghi"])
    closure = np.where(cos_z > 0.05, (w["ghi"] - w["dhi"]) / np.maximum(cos_z, 0.05), 0.0)
    w["dni"] = w["dni"].fillna(pd.Series(closure)).clip(lower=0.0)
    w["temp_air"] = w["temp_air"].interpolate().bfill().ffill()
    w["wind_speed"] = w["wind_speed"].fillna(FIXED_WIND_MS)
    return Station(**{**station.__dict__, "weather": w})


def fit_set_stations() -> list[Station]:
    """The files the constants were fitted on (pvlib 0.16.1's own data): only for `--fit-set`, labelled so."""
    import pvlib

    data_dir = Path(pvlib.__file__).parent / "data"
    stations = []
    for name, filename in (("Greensboro TMY3 (FIT)", "723170TYA.CSV"), ("Sand Point TMY3 (FIT)", "703165TY.csv")):
        data, meta = iotools.read_tmy3(str(data_dir / filename), coerce_year=2021, map_variables=True)
        # TMY3 labels each hour at its end, in local standard time.
        start = pd.DatetimeIndex(data.index).tz_convert("UTC") - pd.Timedelta(hours=1)
        stations.append(
            Station(name, "TMY3, hourly", meta["latitude"], meta["longitude"], float(meta["altitude"]),
                    float(meta["TZ"]), 60, start, _frame(data))
        )  # fmt: skip
    data, meta = iotools.read_tmy2(str(data_dir / "12839.tm2"))
    # pvlib labels TMY2 hour h (ending at h:00 local standard time) as (h − 1):00: the hour's start.
    local = pd.to_datetime(
        {"year": 2021, "month": data["month"].astype(int), "day": data["day"].astype(int)}
    ) + pd.to_timedelta(data["hour"].astype(int) - 1, unit="h")
    start = (pd.DatetimeIndex(local) - pd.Timedelta(hours=float(meta["TZ"]))).tz_localize("UTC")
    weather = pd.DataFrame(
        {"ghi": data["GHI"].to_numpy(float), "dni": data["DNI"].to_numpy(float), "dhi": data["DHI"].to_numpy(float),
         "temp_air": data["DryBulb"].to_numpy(float) / 10.0,  # TMY2 stores tenths of °C
         "wind_speed": data["Wspd"].to_numpy(float) / 10.0}  # and tenths of m/s
    )  # fmt: skip
    stations.append(
        Station("Miami TMY2 (FIT)", "TMY2, hourly", meta["latitude"], meta["longitude"], float(meta["altitude"]),
                float(meta["TZ"]), 60, start, weather)
    )  # fmt: skip
    return [_fill(s) for s in stations]


def held_out_stations(cache: Path = WHEEL.parent / "pvlib-0.9.5") -> list[Station]:
    """The held-out weather files that pvlib 0.16.1's readers read."""
    cache.mkdir(parents=True, exist_ok=True)
    archive = _wheel()
    stations = []

    data, meta = iotools.read_bsrn(str(_extract(archive, "bsrn-pay0616.dat.gz", cache)))
    stations.append(
        Station(
            "Payerne BSRN 2016-06", "measured, 1-min", meta["latitude"], meta["longitude"],
            float(meta["altitude"]), 1.0, 1, pd.DatetimeIndex(data.index).tz_convert("UTC"),
            _frame(data, wind=False),
        )
    )  # fmt: skip

    # pvlib's read_epw labels each row with its hour's start, in local standard time.
    data, meta = iotools.read_epw(str(_extract(archive, "NLD_Amsterdam062400_IWEC.epw", cache)))
    stations.append(
        Station(
            "Amsterdam IWEC", "measured-derived typical year, hourly", meta["latitude"],
            meta["longitude"], float(meta["altitude"]), float(meta["TZ"]), 60,
            _one_year(data.index), _frame(data),
        )
    )  # fmt: skip

    # PVGIS TMY rows are labelled HH:00 UTC; their GHI tracks clear sky best when the row is taken
    # as centred on its label (correlation 0.918 at HH:00, 0.913 at HH:30): start = label − 30 min.
    data, meta, *_ = iotools.read_pvgis_tmy(
        str(_extract(archive, "tmy_45.000_8.000_2005_2016.json", cache)), map_variables=True
    )
    where = meta["inputs"]["location"]
    stations.append(
        Station(
            "N. Italy PVGIS TMY", "satellite-derived typical year, hourly", where["latitude"],
            where["longitude"], float(where["elevation"]), 1.0, 60,
            _one_year(data.index) - pd.Timedelta(minutes=30), _frame(data),
        )
    )  # fmt: skip
    return [_fill(s) for s in stations]
