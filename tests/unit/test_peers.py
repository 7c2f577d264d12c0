"""Neighbours' histograms and cells: the robust centre is right, a device is never its own neighbour."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.domain.twin.peers import (
    BIN_WIDTH,
    PeerHistogram,
    cell_size_deg,
    cells_within,
    geohash,
    ratio_bin,
)


def test_geohash_matches_the_published_examples() -> None:
    assert geohash(57.64911, 10.40744, 11) == "u4pruydqqvj"  # Niemeyer's example
    assert geohash(-1.29, 36.82, 4) == "kzf0"
    assert cell_size_deg(4) == (0.17578125, 0.3515625)


def test_the_neighbourhood_covers_the_radius_and_no_more() -> None:
    near = cells_within(46.81, 6.94, 25.0)
    assert near[0] == geohash(46.81, 6.94)
    assert geohash(46.81 + 0.2, 6.94) in near  # 22 km north
    assert geohash(46.81, 6.94 + 0.3) in near  # 23 km east
    assert geohash(46.81 + 0.6, 6.94) not in near  # 67 km north
    assert len(cells_within(46.81, 6.94, 0.0)) == 1
    assert len(cells_within(-89.99, 179.99, 25.0)) >= 1  # poles and the antimeridian do not break it


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(0.0, 1.9), min_size=1, max_size=200))
def test_median_and_spread_come_within_a_bin_of_the_exact_figures(ratios: list[float]) -> None:
    ratios = ratios[: len(ratios) - (len(ratios) + 1) % 2]  # an odd count: one middle value
    found = PeerHistogram.from_ratios(ratios).reference()
    values = np.array(ratios)
    assert found.count == len(ratios)
    assert found.median == pytest.approx(float(np.median(values)), abs=BIN_WIDTH)
    deviations = np.sort(np.abs(values - np.median(values)))
    low, high = deviations[(len(deviations) - 1) // 2], deviations[len(deviations) // 2]
    assert 1.4826 * (low - 2 * BIN_WIDTH) <= found.spread <= 1.4826 * (high + 2 * BIN_WIDTH)
    assert found.highest >= max(ratios)


def test_a_device_is_taken_out_of_its_own_reference() -> None:
    histogram = PeerHistogram.from_ratios([0.5] * 6 + [1.4])
    alone = histogram.without(1.4)
    assert (histogram.count, alone.count) == (7, 6)
    assert alone.reference().highest == pytest.approx(0.52)
    assert histogram.without(0.9) is histogram  # a ratio not in it changes nothing
    assert PeerHistogram().reference().count == 0


def test_merging_adds_counts_and_bins_clamp_hostile_ratios() -> None:
    merged = PeerHistogram.from_ratios([0.3, 0.3]).merged(PeerHistogram.from_ratios([0.3, 5.0]))
    assert merged.count == 4 and merged.counts[ratio_bin(0.3)] == 3
    assert ratio_bin(float("nan")) == 0 and ratio_bin(-1.0) == 0 and ratio_bin(1e300) == 99
