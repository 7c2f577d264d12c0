"""Avoided emissions of renewable Wh, from `data/emission_factors.csv`.

Which factor applies [kg CO2e/kWh]:

- grid-connected devices displace grid electricity: the country's combined
  margin for intermittent renewables (solar, wind) from the IFI TWG
  *Harmonized IFI Default Grid Factors 2021 v3.1* (UNFCCC). Combined margin
  is the factor that dataset recommends for new renewable generation.
  Countries absent from the table get the row keyed ``*``: 0, so nothing is
  claimed that no published factor supports.
- off-grid devices displace fossil generation at the point of use: 0.8 kg/kWh,
  the CDM default for off-grid diesel generating systems (TOOL33 *Default
  values for common parameters*, section 5.1; AMS-I.F). Kerosene lighting
  displaced by the first few tens of kWh a household uses each year has a
  much higher factor under AMS-I.L's tiers, but tiering needs each
  household's annual consumption, which pooled readings do not carry; the
  diesel figure is the conservative floor for every off-grid device type.

Each row names its basis and source, and every factor returned carries both.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from decimal import ROUND_HALF_EVEN, Decimal
from functools import lru_cache
from pathlib import Path

from ..errors import BadInput

FACTOR_TABLE = Path(__file__).parents[1] / "data" / "emission_factors.csv"
DEFAULT_KEY = "*"
KG_PRECISION = Decimal("0.000001")


@dataclass(frozen=True)
class EmissionFactor:
    kg_per_kwh: Decimal
    basis: str
    source: str


@lru_cache(maxsize=1)
def _table() -> dict[tuple[str, str], EmissionFactor]:
    with FACTOR_TABLE.open(newline="", encoding="utf-8") as handle:
        return {
            (row["scope"], row["key"]): EmissionFactor(
                kg_per_kwh=Decimal(row["kg_co2e_per_kwh"]),
                basis=row["basis"],
                source=row["source"],
            )
            for row in csv.DictReader(handle)
        }


def factor_for(country: str, grid_connected: bool, device_type: str) -> EmissionFactor:
    """Grid factor by country, off-grid baseline by device type; else the `*` row."""
    table = _table()
    if grid_connected:
        return table.get(("grid", country.upper()), table[("grid", DEFAULT_KEY)])
    return table.get(("off_grid", device_type), table[("off_grid", DEFAULT_KEY)])


def avoided_co2_kg(
    energy_wh: int, country: str, grid_connected: bool, device_type: str
) -> float:
    """Avoided emissions [kg CO2e] of `energy_wh` [Wh], to the milligram."""
    if isinstance(energy_wh, bool) or not isinstance(energy_wh, int) or energy_wh < 0:
        raise BadInput("energy_wh must be a non-negative integer", field="energy_wh")
    return float(avoided_co2_kg_exact(energy_wh, country, grid_connected, device_type))


def avoided_co2_kg_exact(
    energy_wh: int, country: str, grid_connected: bool, device_type: str
) -> Decimal:
    """As `avoided_co2_kg`, as an exact Decimal (Wh and factors have 3 decimals)."""
    factor = factor_for(country, grid_connected, device_type)
    kg = Decimal(energy_wh) / Decimal(1000) * factor.kg_per_kwh
    return kg.quantize(KG_PRECISION, rounding=ROUND_HALF_EVEN)
