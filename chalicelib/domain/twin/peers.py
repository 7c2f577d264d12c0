"""Neighbours as a reference: devices near each other see the same clouds.

Each judged reading is reduced to its *ratio* k = energy_wh / clear_sky_wh: the device's output over its
own clear-sky plane-of-array expectation, so size, tilt, azimuth and age cancel and only the sky (and the
device's health) is left. The ratios of all devices that reported the same period in the same geohash
cell are kept as a fixed-bin histogram — an item of at most `BINS` small counters that a transaction can
add to, so the reference costs the same with ten devices in a cell or ten thousand, and nobody scans.

A reading is compared with the robust centre of its neighbours' histogram (median, MAD spread) with
floors for what honest neighbours never share exactly: orientation and losses under diffuse light, and
meter resolution.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

#: Ratio bins: k in [0, 2) by 0.02; the last bin holds every k from 1.98 up.
BIN_WIDTH = 0.02
BINS = 100
#: MAD × this is σ for a normal distribution.
MAD_TO_SIGMA = 1.4826


def ratio_bin(ratio: float) -> int:
    """The histogram bin of a ratio k = energy / clear-sky energy."""
    if not math.isfinite(ratio) or ratio <= 0.0:
        return 0
    return min(int(ratio / BIN_WIDTH), BINS - 1)


def ratio_bins(ratios: np.ndarray) -> np.ndarray:
    """`ratio_bin` of many ratios at once."""
    values = np.nan_to_num(np.asarray(ratios, dtype=float), nan=0.0, posinf=2.0 * BINS * BIN_WIDTH)
    return np.clip((np.maximum(values, 0.0) / BIN_WIDTH).astype(np.int64), 0, BINS - 1)


@dataclass(frozen=True)
class PeerReference:
    """What the neighbours of one reading reported: how many, their median ratio and robust spread, the highest."""

    count: int
    median: float
    spread: float  # MAD × 1.4826 [ratio]
    highest: float


@dataclass(frozen=True)
class PeerHistogram:
    """Counts of neighbours' ratios by bin (bins with no count left out): over the clear-sky energy on each
    device's plane, apart for devices that declared their orientation (`counts`) and devices whose plane the
    twin assumes (`unknown`: their ratio carries the assumption's error); and over each device's energy under
    an all-diffuse sky (`diffuse`). Under cloud, light comes from the whole sky and a plane's orientation
    hardly matters: the diffuse ratios compare better there."""

    counts: Mapping[int, int] = field(default_factory=dict)
    diffuse: Mapping[int, int] = field(default_factory=dict)
    unknown: Mapping[int, int] = field(default_factory=dict)

    @classmethod
    def from_ratios(cls, ratios: Iterable[float], diffuse_ratios: Iterable[float] = (),
                    unknown_ratios: Iterable[float] = ()) -> PeerHistogram:
        """`ratios` of devices with a declared orientation, `unknown_ratios` of the others; `diffuse_ratios` of all."""
        return cls(_count(ratios), _count(diffuse_ratios), _count(unknown_ratios))

    @property
    def count(self) -> int:
        return sum(self.counts.values()) + sum(self.unknown.values())

    @property
    def declared(self) -> int:
        return sum(self.counts.values())

    def merged(self, *others: PeerHistogram) -> PeerHistogram:
        return PeerHistogram(_add(self.counts, *(o.counts for o in others)),
                             _add(self.diffuse, *(o.diffuse for o in others)),
                             _add(self.unknown, *(o.unknown for o in others)))

    def without(self, ratio: float, diffuse_ratio: float | None = None, known: bool = True) -> PeerHistogram:
        """The histogram less one reading (a device is never its own neighbour)."""
        plane = self.counts if known else self.unknown
        if plane.get(ratio_bin(ratio), 0) <= 0:
            return self
        less = _add(plane, {ratio_bin(ratio): -1})
        diffuse = self.diffuse
        if diffuse_ratio is not None and diffuse.get(ratio_bin(diffuse_ratio), 0) > 0:
            diffuse = _add(diffuse, {ratio_bin(diffuse_ratio): -1})
        return PeerHistogram(less if known else self.counts, diffuse, self.unknown if known else less)

    def reference(self, diffuse: bool = False, declared_only: bool = False) -> PeerReference:
        """Median (interpolated inside its bin), MAD-based spread and the highest ratio, from the bins: of the
        diffuse ratios, of the declared planes' ratios, or of every plane's."""
        counted = (self.diffuse if diffuse else self.counts if declared_only
                   else _add(self.counts, self.unknown) if self.unknown else self.counts)
        return _reference(counted)


def _reference(counted: Mapping[int, int]) -> PeerReference:
    """Plain Python: a histogram has at most `BINS` bins, where numpy's call overhead dominates."""
    total = sum(counted.values())
    if total <= 0:
        return PeerReference(0, 0.0, 0.0, 0.0)
    bins = sorted(counted)
    median = _median([b * BIN_WIDTH for b in bins], [counted[b] for b in bins], BIN_WIDTH, total)
    deviations = sorted((abs((b + 0.5) * BIN_WIDTH - median), counted[b]) for b in bins)
    mad = _median([d for d, _ in deviations], [n for _, n in deviations], 0.0, total)
    return PeerReference(total, median, MAD_TO_SIGMA * mad, (bins[-1] + 1) * BIN_WIDTH)


def _median(lower_edges: list[float], counts: list[int], width: float, total: int) -> float:
    """Median of values spread evenly inside bins [edge, edge + width) with `counts` (edges ascending)."""
    half = total / 2.0
    seen = 0
    for edge, n in zip(lower_edges, counts, strict=True):
        if seen + n >= half:
            return edge + width * ((half - seen) / n if n else 0.5)
        seen += n
    return lower_edges[-1] + width


def _count(ratios: Iterable[float]) -> dict[int, int]:
    counts: dict[int, int] = {}
    for ratio in ratios:
        b = ratio_bin(float(ratio))
        counts[b] = counts.get(b, 0) + 1
    return counts


def _add(first: Mapping[int, int], *others: Mapping[int, int]) -> dict[int, int]:
    counts = dict(first)
    for other in others:
        for b, n in other.items():
            counts[b] = counts.get(b, 0) + n
    return {b: n for b, n in counts.items() if n > 0}


# --- geohash cells -------------------------------------------------------------------------------------

_BASE32 = "0123456789bcdefghjkmnpqrstuvwxyz"
#: Cells of this many characters (≈ 39 km × 20 km at the equator) hold the per-period histograms.
CELL_PRECISION = 4
EARTH_RADIUS_KM = 6371.0


def geohash(latitude: float, longitude: float, precision: int = CELL_PRECISION) -> str:
    """The standard geohash of a point (Niemeyer 2008): interleaved longitude/latitude bisections, base 32."""
    lat_range, lon_range = [-90.0, 90.0], [-180.0, 180.0]
    chars: list[str] = []
    bits, value, even = 0, 0, True
    while len(chars) < precision:
        span = lon_range if even else lat_range
        target = longitude if even else latitude
        middle = (span[0] + span[1]) / 2.0
        value <<= 1
        if target >= middle:
            value |= 1
            span[0] = middle
        else:
            span[1] = middle
        even = not even
        bits += 1
        if bits == 5:
            chars.append(_BASE32[value])
            bits, value = 0, 0
    return "".join(chars)


def cell_size_deg(precision: int = CELL_PRECISION) -> tuple[float, float]:
    """Height and width [°] of a geohash cell of `precision` characters."""
    bits = 5 * precision
    lon_bits = (bits + 1) // 2
    lat_bits = bits // 2
    return 180.0 / 2**lat_bits, 360.0 / 2**lon_bits


@lru_cache(maxsize=65536)  # devices do not move: the validator asks again for each batch of a device
def cells_within(latitude: float, longitude: float, radius_km: float,
                 precision: int = CELL_PRECISION) -> tuple[str, ...]:
    """The cells whose area comes within `radius_km` of a point, its own first (a grid walk over cell centres).

    A neighbour found this way may be up to one cell farther than the radius: cells are the unit of
    storage, the radius chooses how many of them make a neighbourhood.
    """
    height, width = cell_size_deg(precision)
    radius_lat = math.degrees(radius_km / EARTH_RADIUS_KM)
    cos_lat = max(math.cos(math.radians(latitude)), 0.01)
    radius_lon = min(radius_lat / cos_lat, 180.0)
    own = geohash(latitude, longitude, precision)
    # The own cell's lower-left corner, then every cell centre whose cell meets the radius's box.
    row0 = math.floor((latitude + 90.0) / height)
    col0 = math.floor((longitude + 180.0) / width)
    rows = math.ceil(radius_lat / height)
    cols = min(math.ceil(radius_lon / width), int(360.0 / width) // 2)
    found = [own]
    for dr in range(-rows, rows + 1):
        for dc in range(-cols, cols + 1):
            row, col = row0 + dr, col0 + dc
            lat_c = -90.0 + (row + 0.5) * height
            if not -90.0 < lat_c < 90.0:
                continue
            lon_c = (-180.0 + (col + 0.5) * width + 180.0) % 360.0 - 180.0
            # Nearest point of the cell to the device, in km on a local plane.
            near_lat = min(max(latitude, lat_c - height / 2), lat_c + height / 2)
            d_lon = (longitude - lon_c + 180.0) % 360.0 - 180.0
            near_dlon = max(abs(d_lon) - width / 2, 0.0)
            dy = math.radians(near_lat - latitude) * EARTH_RADIUS_KM
            dx = math.radians(near_dlon) * EARTH_RADIUS_KM * cos_lat
            if math.hypot(dx, dy) <= radius_km:
                cell = geohash(lat_c, lon_c, precision)
                if cell not in found:
                    found.append(cell)
    return tuple(found)
