"""A D-REC ready to be written (`DrecDraft`), cut from 1000 Wh of slices, and its contributions root.

The contributions root is published with every D-REC and anchored with its event, so its
convention never changes: leaf = SHA-256(0x00 + canonical JSON of the contribution row),
node = SHA-256(0x01 + left + right) in order (unlike the event tree's sorted keccak pairs),
an odd node moves up unchanged, and no contributions hash to SHA-256 of nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from ..errors import BadInput
from ..ledger.canonical import canonical_json
from ..ledger.merkle import merkle_levels
from ..time import iso, parse_utc
from .emissions import avoided_co2_kg_exact
from .hours import split_by_hour
from .serials import MIXED
from .slices import Slice

if TYPE_CHECKING:
    from .keys import PoolKey

DREC_WH = 1000


def contribution_leaf(item: Slice) -> bytes:
    """SHA-256 of 0x00 + canonical JSON of the contribution row.

    The prefixes keep leaves and inner nodes from being confused.
    """
    return hashlib.sha256(b"\x00" + canonical_json(item.contribution_row())).digest()


def merkle_root(leaves: Sequence[bytes]) -> bytes:
    """Binary SHA-256 tree over `leaves` in order; node = SHA-256(0x01 + left + right).

    An odd node at the end of a level moves up unchanged.
    """
    if not leaves:
        return hashlib.sha256(b"").digest()
    return merkle_levels(leaves, _contribution_node)[-1][0]


def _contribution_node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def contributions_root(contributions: Iterable[Slice]) -> str:
    """Hex Merkle root that a verifier recomputes from published contributions."""
    return merkle_root([contribution_leaf(item) for item in contributions]).hex()


@dataclass(frozen=True, kw_only=True)
class DrecDraft:
    """A D-REC ready to be written: exactly 1000 Wh and its provenance."""

    serial: str
    pool_id: str
    sequence: int
    owner_account_id: str
    contributions: tuple[Slice, ...]
    energy_wh: int = DREC_WH
    period_start: datetime
    period_end: datetime
    hourly_wh: dict[str, int] = field(hash=False)  # UTC hour start -> Wh, sums to 1000
    country: str  # single country, or "mixed"
    countries: tuple[str, ...]
    device_type: str  # single device type, or "mixed"
    device_types: tuple[str, ...]
    offtaker_type: str  # single off-taker type, or "mixed"
    offtaker_types: tuple[str, ...]
    avoided_co2_kg: float
    contributions_root: str
    source_ids: tuple[str, ...]
    signatures: tuple[str, ...]

    @property
    def device_ids(self) -> tuple[str, ...]:
        return tuple(sorted({item.device_id for item in self.contributions}))

    def to_dict(self) -> dict[str, Any]:
        return {
            "serial": self.serial,
            "pool_id": self.pool_id,
            "sequence": self.sequence,
            "owner_account_id": self.owner_account_id,
            "energy_wh": self.energy_wh,
            "period_start": iso(self.period_start),
            "period_end": iso(self.period_end),
            "hourly_wh": dict(self.hourly_wh),
            "country": self.country,
            "countries": list(self.countries),
            "device_type": self.device_type,
            "device_types": list(self.device_types),
            "offtaker_type": self.offtaker_type,
            "offtaker_types": list(self.offtaker_types),
            "avoided_co2_kg": self.avoided_co2_kg,
            "contributions_root": self.contributions_root,
            "source_ids": list(self.source_ids),
            "signatures": list(self.signatures),
            "contributions": [item.to_dict() for item in self.contributions],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DrecDraft:
        return cls(
            serial=data["serial"],
            pool_id=data["pool_id"],
            sequence=int(data["sequence"]),
            owner_account_id=data["owner_account_id"],
            contributions=tuple(Slice.from_dict(row) for row in data["contributions"]),
            energy_wh=int(data["energy_wh"]),
            period_start=parse_utc(data["period_start"]),
            period_end=parse_utc(data["period_end"]),
            hourly_wh={hour: int(wh) for hour, wh in data["hourly_wh"].items()},
            country=data["country"],
            countries=tuple(data["countries"]),
            device_type=data["device_type"],
            device_types=tuple(data["device_types"]),
            offtaker_type=data["offtaker_type"],
            offtaker_types=tuple(data["offtaker_types"]),
            avoided_co2_kg=float(data["avoided_co2_kg"]),
            contributions_root=data["contributions_root"],
            source_ids=tuple(data["source_ids"]),
            signatures=tuple(data["signatures"]),
        )


def draft_drec(
    key: PoolKey, sequence: int, contributions: Sequence[Slice]
) -> DrecDraft:
    """D-REC number `sequence` of `key`, made of `contributions` (1000 Wh in all)."""
    if sum(item.energy_wh for item in contributions) != DREC_WH:
        raise BadInput(
            "a D-REC's contributions sum to exactly 1000 Wh", field="contributions"
        )
    hourly: dict[datetime, int] = {}
    for item in contributions:
        for hour, wh in split_by_hour(
            item.energy_wh, item.period_start, item.period_end
        ).items():
            hourly[hour] = hourly.get(hour, 0) + wh
    countries = tuple(sorted({item.country for item in contributions}))
    device_types = tuple(sorted({item.device_type for item in contributions}))
    offtaker_types = tuple(sorted({item.offtaker_type for item in contributions}))
    avoided = sum(
        (
            avoided_co2_kg_exact(
                i.energy_wh, i.country, i.grid_connected, i.device_type
            )
            for i in contributions
        ),
        Decimal(0),
    )
    return DrecDraft(
        serial=key.serial(sequence),
        pool_id=key.pool_id,
        sequence=sequence,
        owner_account_id=key.owner_account_id,
        contributions=tuple(contributions),
        period_start=min(item.period_start for item in contributions),
        period_end=max(item.period_end for item in contributions),
        hourly_wh={iso(hour): wh for hour, wh in sorted(hourly.items())},
        country=_single_or_mixed(countries),
        countries=countries,
        device_type=_single_or_mixed(device_types),
        device_types=device_types,
        offtaker_type=_single_or_mixed(offtaker_types),
        offtaker_types=offtaker_types,
        avoided_co2_kg=float(avoided),
        contributions_root=contributions_root(contributions),
        source_ids=tuple(sorted({item.source_id for item in contributions})),
        signatures=tuple(
            dict.fromkeys(i.signature for i in contributions if i.signature is not None)
        ),
    )


def _single_or_mixed(values: tuple[str, ...]) -> str:
    return values[0] if len(values) == 1 else MIXED
