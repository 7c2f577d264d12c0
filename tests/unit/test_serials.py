"""Serial numbers: format, parsing, and contiguous ranges."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.domain.errors import BadInput
from chalicelib.domain.issuance.serials import (
    DEVICE_TYPE_CODES,
    compress_ranges,
    expand_range,
    parse_serial,
    serial,
)

PREFIX = "DREC-KE-SHS-202611-AB23CDEF"


def test_a_serial_names_country_type_period_pool_and_sequence():
    text = serial("KE", "SHS", "202611", "AB23CDEF", 1)
    assert text == f"{PREFIX}-00000001"
    parts = parse_serial(text)
    assert (parts.country, parts.device_type_code, parts.period_label) == (
        "KE",
        "SHS",
        "202611",
    )
    assert (parts.pool_code, parts.sequence, parts.prefix) == ("AB23CDEF", 1, PREFIX)


def test_device_type_names_map_to_their_codes():
    assert (
        serial("NG", "mini_grid", "20261105", "ZZ2345", 12)
        == "DREC-NG-MGR-20261105-ZZ2345-00000012"
    )
    assert DEVICE_TYPE_CODES["mixed"] == "MIX"
    assert len(set(DEVICE_TYPE_CODES.values())) == len(DEVICE_TYPE_CODES)


@pytest.mark.parametrize(
    "text",
    [
        "DREC-KE-SHS-202611-AB23CDEF-0000001",  # 7 digits
        "DREC-KE-SHS-202611-AB23CDEF-00000000",  # sequences start at 1
        "DREC-ke-SHS-202611-AB23CDEF-00000001",
        "DREC-KE-SHS-2026-AB23CDEF-00000001",
        "REC-KE-SHS-202611-AB23CDEF-00000001",
    ],
)
def test_malformed_serials_are_refused(text):
    with pytest.raises(BadInput) as raised:
        parse_serial(text)
    assert raised.value.field == "serial"


def test_sequence_out_of_range_is_refused():
    with pytest.raises(BadInput):
        serial("KE", "SHS", "202611", "AB23CDEF", 0)
    with pytest.raises(BadInput):
        serial("KE", "SHS", "202611", "AB23CDEF", 100_000_000)


def test_serials_sort_in_issue_order():
    texts = [serial("KE", "SHS", "202611", "AB23CDEF", n) for n in (10, 9, 100, 1)]
    assert sorted(texts) == [
        serial("KE", "SHS", "202611", "AB23CDEF", n) for n in (1, 9, 10, 100)
    ]


def test_contiguous_runs_compress_per_prefix_and_singletons_stay_alone():
    # GIVEN sequences 1-3, 5, and 7-8 of one pool, plus 2 of another
    other = "DREC-NG-SHS-202611-QQQQ2222"
    serials = [f"{PREFIX}-{n:08d}" for n in (3, 1, 2, 5, 8, 7)] + [f"{other}-00000002"]
    # WHEN compressed
    ranges = compress_ranges(serials)
    # THEN runs read first..last, sorted by prefix
    assert ranges == [
        f"{PREFIX}-00000001..{PREFIX}-00000003",
        f"{PREFIX}-00000005",
        f"{PREFIX}-00000007..{PREFIX}-00000008",
        f"{other}-00000002",
    ]


def test_a_range_must_stay_in_one_pool_and_run_upwards():
    with pytest.raises(BadInput):
        expand_range(f"{PREFIX}-00000001..DREC-KE-SHS-202611-OTHER222-00000002")
    with pytest.raises(BadInput):
        expand_range(f"{PREFIX}-00000005..{PREFIX}-00000001")


@given(st.sets(st.integers(1, 300), min_size=1, max_size=60))
@settings(max_examples=100, deadline=None)
def test_expanding_compressed_ranges_gives_back_the_serials(sequences):
    serials = {f"{PREFIX}-{n:08d}" for n in sequences}
    ranges = compress_ranges(sorted(serials))
    expanded = [s for r in ranges for s in expand_range(r)]
    assert expanded == sorted(serials)
    # runs are maximal: no two consecutive ranges touch
    ends = [parse_serial(r.split("..")[-1]).sequence for r in ranges]
    starts = [parse_serial(r.split("..")[0]).sequence for r in ranges]
    assert all(start > end + 1 for end, start in zip(ends, starts[1:], strict=False))
