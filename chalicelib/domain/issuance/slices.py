"""A slice: integer Wh of one accepted reading, with the provenance a D-REC records.

Slices are what pools hold and D-RECs are cut from; a reading split across two D-RECs
becomes two slices that keep the reading's whole period (see `pools`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from ..errors import BadInput
from ..time import iso, parse_utc


@dataclass(frozen=True)
class Slice:
    """Integer Wh of one reading, with the provenance a D-REC records."""

    device_id: str
    reading_id: str
    energy_wh: int
    period_start: datetime
    period_end: datetime
    country: str
    device_type: str
    offtaker_type: str
    source_id: str
    signature: str | None = None
    grid_connected: bool = False
    signer: str | None = None  # recovered from `signature` at intake; None when unsigned

    def __post_init__(self) -> None:
        if isinstance(self.energy_wh, bool) or not isinstance(self.energy_wh, int):
            raise BadInput(
                "energy_wh must be an integer number of Wh", field="energy_wh"
            )
        if self.energy_wh < 0:
            raise BadInput("energy_wh must not be negative", field="energy_wh")
        for name in ("period_start", "period_end"):
            moment = getattr(self, name)
            if moment.tzinfo is None:
                raise BadInput(f"{name} must carry a time zone", field=name)
            object.__setattr__(self, name, moment.astimezone(UTC))
        if self.period_end <= self.period_start:
            raise BadInput("period_end must be after period_start", field="period_end")

    def with_energy(self, energy_wh: int) -> Slice:
        return replace(self, energy_wh=energy_wh)

    def contribution_row(self) -> dict[str, Any]:
        """The row the API publishes and the contributions root hashes."""
        return {
            "device_id": self.device_id,
            "reading_id": self.reading_id,
            "energy_wh": self.energy_wh,
            "period_start": iso(self.period_start),
            "period_end": iso(self.period_end),
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.contribution_row(),
            "country": self.country,
            "device_type": self.device_type,
            "offtaker_type": self.offtaker_type,
            "source_id": self.source_id,
            "signature": self.signature,
            "signer": self.signer,
            "grid_connected": self.grid_connected,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Slice:
        return cls(
            device_id=data["device_id"],
            reading_id=data["reading_id"],
            energy_wh=int(data["energy_wh"]),
            period_start=parse_utc(data["period_start"]),
            period_end=parse_utc(data["period_end"]),
            country=data["country"],
            device_type=data["device_type"],
            offtaker_type=data["offtaker_type"],
            source_id=data["source_id"],
            signature=data.get("signature"),
            grid_connected=bool(data.get("grid_connected", False)),
            signer=data.get("signer"),
        )
