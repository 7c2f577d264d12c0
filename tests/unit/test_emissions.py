"""Avoided emissions from the documented factor table."""

from __future__ import annotations

import csv
from decimal import Decimal

import pytest

from chalicelib.domain.errors import BadInput
from chalicelib.domain.issuance.emissions import FACTOR_TABLE, avoided_co2_kg, factor_for

REQUIRED = [
    "KE",
    "NG",
    "TZ",
    "UG",
    "RW",
    "ET",
    "GH",
    "ZM",
    "MW",
    "MZ",
    "SN",
    "CI",
    "CM",
    "CD",
    "SL",
    "LR",
    "BJ",
    "TG",
    "BF",
    "ML",
    "NE",
    "IN",
    "BD",
    "MM",
    "PK",
    "NP",
    "PH",
    "ID",
    "KH",
    "HT",
    "US",
    "DE",
    "GB",
    "ZA",
    "BR",
]


def rows():
    with FACTOR_TABLE.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def test_the_table_covers_the_usual_d_rec_countries_with_sources():
    grid = {row["key"]: row for row in rows() if row["scope"] == "grid"}
    assert set(REQUIRED) <= set(grid)
    for row in rows():
        assert row["source"].strip(), row
        assert 0 <= Decimal(row["kg_co2e_per_kwh"]) < 2


def test_every_scope_has_a_clearly_marked_default():
    defaults = [row for row in rows() if row["key"] == "*"]
    assert {row["scope"] for row in defaults} == {"grid", "off_grid"}
    assert all("DEFAULT" in row["name"] for row in defaults)


def test_grid_connected_devices_use_the_country_combined_margin():
    factor = factor_for("KE", grid_connected=True, device_type="rooftop_pv")
    assert factor.kg_per_kwh == Decimal("0.462")
    assert factor.basis == "grid_combined_margin"
    assert "IFI" in factor.source
    assert avoided_co2_kg(1000, "KE", True, "rooftop_pv") == pytest.approx(0.462)
    assert avoided_co2_kg(1000, "ke", True, "rooftop_pv") == pytest.approx(0.462)


def test_unknown_countries_on_the_grid_claim_nothing():
    factor = factor_for("FR", grid_connected=True, device_type="rooftop_pv")
    assert factor.basis == "default_none"
    assert avoided_co2_kg(1000, "FR", True, "rooftop_pv") == 0.0


def test_off_grid_devices_use_the_fossil_baseline_whatever_the_country():
    # GIVEN an off-grid solar home system in Ethiopia, whose grid factor is 0
    assert factor_for("ET", True, "solar_home_system").kg_per_kwh == 0
    factor = factor_for("ET", False, "solar_home_system")
    # THEN the diesel baseline applies
    assert factor.kg_per_kwh == Decimal("0.8")
    assert "CDM" in factor.source
    assert avoided_co2_kg(1000, "ET", False, "solar_home_system") == pytest.approx(0.8)
    assert factor_for("ET", False, "some_new_type").basis == "off_grid_diesel_baseline"


def test_avoided_emissions_scale_with_wh_to_the_milligram():
    assert avoided_co2_kg(1, "KE", True, "rooftop_pv") == pytest.approx(0.000462)
    assert avoided_co2_kg(0, "KE", False, "mini_grid") == 0.0
    with pytest.raises(BadInput):
        avoided_co2_kg(-1, "KE", False, "mini_grid")
