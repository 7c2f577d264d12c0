"""Retirement statements: sponsor allocation, ledger CSV, memo and claim period."""

from __future__ import annotations

import csv
import hashlib
import io
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.domain.errors import BadInput, RuleBroken
from chalicelib.domain.issuance.keys import PoolingConfig, pool_key
from chalicelib.domain.issuance.pools import PoolState, add_to_pool
from chalicelib.domain.issuance.slices import Slice
from chalicelib.domain.trading.statements import (
    LEDGER_COLUMNS,
    LedgerRow,
    allocate_sponsors,
    check_claim_period,
    ledger_csv,
    memo,
    retirement_statement,
    sha256_hex,
)

PREFIX = "DREC-KE-SHS-202611-JSBGITFF"
SERIALS = [f"{PREFIX}-{n:08d}" for n in range(1, 101)]
T0 = datetime(2026, 11, 1, 10, tzinfo=UTC)


def test_two_equal_sponsors_alternate_in_batches_across_the_whole_period():
    # GIVEN 100 D-RECs and two sponsors of half each, batches of 10
    allocation = allocate_sponsors(
        SERIALS, [("Acme", 0.5), ("Globex", 0.5)], batch_size=10
    )
    # THEN each gets 50, in alternating runs of 10, from the first to the last tenth
    assert Counter(allocation.values()) == {"Acme": 50, "Globex": 50}
    owners = [allocation[s] for s in SERIALS]
    assert owners[:10] == ["Acme"] * 10
    assert owners[10:20] == ["Globex"] * 10
    assert owners[90:] == ["Globex"] * 10


def test_unequal_shares_get_exact_counts_by_largest_remainder():
    # GIVEN 10 D-RECs shared 1/3 each: 3.33 each, one left over, to the first listed
    shares = [("A", Decimal(1) / 3), ("B", Decimal(1) / 3), ("C", Decimal(1) / 3)]
    allocation = allocate_sponsors(SERIALS[:10], shares, batch_size=1)
    assert Counter(allocation.values()) == {"A": 4, "B": 3, "C": 3}


@given(
    count=st.integers(0, 400),
    weights=st.lists(st.integers(1, 20), min_size=1, max_size=6),
    batch_size=st.integers(1, 12),
)
@settings(max_examples=100, deadline=None)
def test_every_sponsor_gets_its_share_spread_over_the_period(
    count, weights, batch_size
):
    total = sum(weights)
    sponsors = [(f"S{i}", Decimal(w) / Decimal(total)) for i, w in enumerate(weights)]
    serials = [f"{PREFIX}-{n:08d}" for n in range(1, count + 1)]
    allocation = allocate_sponsors(serials, sponsors, batch_size=batch_size)
    # every D-REC allocated once, counts within one of the exact quota
    assert list(allocation) == serials
    counts = Counter(allocation.values())
    assert sum(counts.values()) == count
    for name, share in sponsors:
        assert abs(counts[name] - share * count) < 1
    # spread: at every point, no sponsor is more than a few batches off its pro-rata
    dealt: Counter[str] = Counter()
    slack = batch_size * len(sponsors) + 1
    for position, serial in enumerate(serials, start=1):
        dealt[allocation[serial]] += 1
        for name, share in sponsors:
            assert abs(dealt[name] - float(share) * position) <= slack


@pytest.mark.parametrize(
    "sponsors",
    [
        [("A", 0.5), ("B", 0.4)],
        [("A", 0.5), ("A", 0.5)],
        [("A", 1.0), ("B", 0.0)],
        [],
    ],
)
def test_bad_sponsor_lists_are_refused(sponsors):
    with pytest.raises(BadInput) as raised:
        allocate_sponsors(SERIALS, sponsors)
    assert raised.value.field == "sponsors"


def test_shares_within_a_billionth_of_one_are_accepted():
    allocation = allocate_sponsors(SERIALS[:3], [("A", 0.1), ("B", 0.2), ("C", 0.7)])
    assert len(allocation) == 3


def row(sequence: int, sponsor: str | None = "Acme", hours: int = 1) -> LedgerRow:
    start = T0 + timedelta(hours=sequence)
    return LedgerRow(
        serial=f"{PREFIX}-{sequence:08d}",
        devices=("dev-1", "dev-2"),
        period_start=start,
        period_end=start + timedelta(hours=hours),
        hourly_wh={"2026-11-01T11:00:00Z": 600, "2026-11-01T10:00:00Z": 400},
        country="KE",
        device_type="solar_home_system",
        offtaker_type="household",
        avoided_co2_kg=0.8,
        sponsor=sponsor,
        beneficiary="Acme Inc",
    )


def test_the_ledger_has_stable_columns_serial_order_and_unix_line_ends():
    data = ledger_csv([row(2), row(1, sponsor=None)])
    text = data.decode("utf-8")
    assert "\r" not in text
    lines = text.split("\n")
    assert lines[0] == ",".join(LEDGER_COLUMNS)
    assert lines[-1] == ""
    parsed = list(csv.DictReader(io.StringIO(text)))
    assert [r["serial"] for r in parsed] == [f"{PREFIX}-00000001", f"{PREFIX}-00000002"]
    assert (
        parsed[0]["wh_per_hour"] == "2026-11-01T10:00:00Z=400;2026-11-01T11:00:00Z=600"
    )
    assert parsed[0]["devices"] == "dev-1;dev-2"
    assert parsed[0]["sponsor"] == ""
    assert parsed[1]["avoided_co2_kg"] == "0.800000"
    assert parsed[1]["period_start"] == "2026-11-01T12:00:00Z"


def test_the_ledger_hash_is_the_sha256_of_its_bytes_and_independent_of_row_order():
    forwards = ledger_csv([row(1), row(2)])
    assert ledger_csv([row(2), row(1)]) == forwards
    assert sha256_hex(forwards) == hashlib.sha256(forwards).hexdigest()


def test_the_memo_reads_as_plain_language():
    text = memo(
        "Acme Inc",
        1234,
        57,
        ["NG", "KE"],
        datetime(2026, 11, 1, 6, tzinfo=UTC),
        datetime(2026, 12, 1, tzinfo=UTC),
        [
            f"{PREFIX}-00000001..{PREFIX}-00001233",
            "DREC-NG-SHS-202611-QQQQ2222-00000007",
        ],
        "https://registry.example/ledgers/abc.csv",
        "3e0c72",
    )
    assert text == (
        "Redeemed on behalf of Acme Inc: 1,234 D-RECs generated by 57 devices in KE and NG "
        "between 2026-11-01 and 2026-11-30. Serial number ranges: "
        f"{PREFIX}-00000001..{PREFIX}-00001233, DREC-NG-SHS-202611-QQQQ2222-00000007. "
        "Full ledger: https://registry.example/ledgers/abc.csv. SHA-256 of the ledger: 3e0c72."
    )


def test_the_claim_period_must_contain_the_generation_period():
    start, end = T0, T0 + timedelta(days=3)
    check_claim_period(date(2026, 11, 1), date(2026, 11, 4), start, end)
    with pytest.raises(RuleBroken) as early:
        check_claim_period(date(2026, 11, 2), date(2026, 12, 31), start, end)
    assert early.value.field == "claim_period_start"
    with pytest.raises(RuleBroken) as late:
        check_claim_period(date(2026, 1, 1), date(2026, 11, 3), start, end)
    assert late.value.field == "claim_period_end"
    with pytest.raises(BadInput):
        check_claim_period(date(2026, 11, 5), date(2026, 11, 1), start, end)


def test_a_statement_from_pooled_drecs_ties_memo_ledger_and_hash_together():
    # GIVEN five D-RECs issued from one pool and allocated to two sponsors
    slices = [
        Slice(
            f"dev-{i % 3}",
            f"r-{i}",
            500,
            T0 + timedelta(hours=i),
            T0 + timedelta(hours=i + 1),
            "KE",
            "solar_home_system",
            "household",
            "src-1",
        )
        for i in range(10)
    ]
    key = pool_key("acc-1", slices[0], PoolingConfig())
    _, drecs = add_to_pool(PoolState.empty(key.pool_id), key, slices, "acc-1")
    serials = [d.serial for d in drecs]
    allocation = allocate_sponsors(
        serials, [("Acme", 0.6), ("Globex", 0.4)], batch_size=1
    )
    rows = [
        LedgerRow.from_drec(d.to_dict(), "Initech", allocation[d.serial]) for d in drecs
    ]
    # WHEN the retirement statement is produced
    statement, ledger = retirement_statement(
        rows,
        purpose="Scope 2 claim",
        claim_period_start=date(2026, 11, 1),
        claim_period_end=date(2026, 11, 30),
        ledger_url="https://registry.example/l/1.csv",
    )
    # THEN everything agrees
    assert statement.ledger_sha256 == hashlib.sha256(ledger).hexdigest()
    assert statement.serial_ranges == (f"{serials[0]}..{serials[-1]}",)
    assert statement.total_kwh == 5
    assert statement.devices_count == 3
    assert statement.avoided_co2_kg == pytest.approx(4.0)
    assert Counter(statement.sponsors.values()) == {"Acme": 3, "Globex": 2}
    assert statement.memo.startswith(
        "Redeemed on behalf of Initech: 5 D-RECs generated by 3 devices in KE "
        "between 2026-11-01 and 2026-11-01."
    )
    assert statement.ledger_sha256 in statement.memo
    assert statement.to_dict()["claim_period_end"] == "2026-11-30"
    assert len(ledger.decode().splitlines()) == 6


def test_a_statement_refuses_a_claim_period_that_misses_generation():
    with pytest.raises(RuleBroken):
        retirement_statement(
            [row(1)],
            purpose="claim",
            claim_period_start=date(2026, 12, 1),
            claim_period_end=date(2026, 12, 31),
            ledger_url="https://registry.example/l/2.csv",
        )


@pytest.mark.parametrize(
    ("beneficiary", "written"),
    [
        ('=HYPERLINK("http://x","y")', '\'=HYPERLINK("http://x","y")'),
        ("+1", "'+1"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("Acme Ltd (=1)", "Acme Ltd (=1)"),
        ("Acme\rLtd", "Acme\rLtd"),  # quoted, so it stays one row
    ],
)
def test_a_cell_a_spreadsheet_would_run_as_a_formula_is_escaped_before_hashing(
    beneficiary, written
):
    # GIVEN a beneficiary and a sponsor named by a user, perhaps as a formula
    rows = [
        LedgerRow(**{**row(1).__dict__, "beneficiary": beneficiary, "sponsor": beneficiary})
    ]
    # WHEN the statement and its ledger are made
    statement, ledger = retirement_statement(
        rows,
        purpose="claim",
        claim_period_start=date(2026, 11, 1),
        claim_period_end=date(2026, 11, 30),
        ledger_url="https://registry.example/l/3.csv",
    )
    # THEN such cells start with a quote (others are left alone), and the hash is of that file
    (parsed,) = csv.DictReader(io.StringIO(ledger.decode("utf-8"), newline=""))
    assert parsed["beneficiary"] == written and parsed["sponsor"] == written
    assert parsed["serial"] == f"{PREFIX}-00000001"
    assert statement.ledger_sha256 == hashlib.sha256(ledger).hexdigest()
    assert statement.beneficiary == beneficiary  # the statement itself names the beneficiary as given
