"""Pooling accepted Wh into D-RECs of exactly 1000 Wh.

Accepted readings become `Slice`s (integer Wh with their provenance). Slices
accumulate, first in first out, in a pool keyed by the owner account and by
the characteristics buyers ask for; which ones is configuration
(`PoolingConfig`), so a buyer who wants "any device type in Kenya" gets
D-RECs that mix device types and record the mix. Whenever a pool holds
1000 Wh a D-REC is cut from the head of the queue; a reading that does not
fit is split, its first part closing this D-REC and its rest opening the
next (or waiting in the remainder). Nothing is rounded: every Wh of every
reading ends up in exactly one D-REC or in the remainder.

A split reading keeps its whole period on both parts: which minutes produced
which Wh is unknown, so both parts are taken to span the reading in
parallel, as the Wh of a shared hour do in hourly REC retirements.

Hot pools. Every issuance is a conditional write on the pool's item (its
`version`), so the writes to one pool serialise. Two levers, both supported:

1. Batching (always on): `add_to_pool` takes many slices, so the service
   applies a whole queue batch of one pool's readings in one transaction;
   a pool's write rate is then batches per second, not readings per second.
2. Sharding (`PoolingConfig.shards = N`, default 1): each pool splits into N
   sub-pools by a stable hash of the device id. Each shard has its own pool
   id, pool code and serial block, so N writers proceed in parallel and each
   shard's serials stay contiguous and gap-free. A device always lands in the
   same shard, so its readings stay in order within one queue. The price is
   up to N remainders (each under 1000 Wh) waiting instead of one, and N
   serial prefixes per period; it is worth paying only for a developer whose
   thousands of devices make one pool item a hot spot.

Batching comes first because it costs nothing in serial layout; sharding is
the escape hatch when one item's conditional writes still collide. A
DynamoDB transaction holds at most 100 items: the caller bounds the slices
per call so that the D-RECs due, ``(remainder_wh + new Wh) // 1000``, fit.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from .canonical import canonical_json
from .emissions import avoided_co2_kg_exact
from .errors import BadInput, Conflict
from .serials import DEVICE_TYPE_CODES, MIXED_COUNTRY
from .serials import serial as format_serial

DREC_WH = 1000
MIXED = "mixed"
ANY = "*"
PARTITIONS = ("country", "device_type", "offtaker_type")
PERIOD_FORMATS = {"month": "%Y%m", "day": "%Y%m%d", "hour": "%Y%m%d%H"}
POOL_CODE_CHARS = 8
_COUNTRY = re.compile(r"^[A-Z]{2}$")
_SHARD = re.compile(r"^s(\d+)of(\d+)$")
_HOUR = timedelta(hours=1)


def iso_utc(moment: datetime) -> str:
    """ISO 8601 in UTC with a `Z`, as the API speaks: ``2026-11-01T10:00:00Z``."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def parse_utc(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise BadInput(f"time without a zone: {text!r}", field="period_start")
    return moment.astimezone(UTC)


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
            "period_start": iso_utc(self.period_start),
            "period_end": iso_utc(self.period_end),
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


@dataclass(frozen=True)
class PoolingConfig:
    """What partitions the pools, the period length, and the shards per pool."""

    partition_by: tuple[str, ...] = PARTITIONS
    period: str = "month"  # "month" | "day" | "hour"
    shards: int = 1

    def __post_init__(self) -> None:
        unknown = [name for name in self.partition_by if name not in PARTITIONS]
        if unknown:
            raise BadInput(
                f"cannot partition pools by {unknown}; use {PARTITIONS}",
                field="partition_by",
            )
        if self.period not in PERIOD_FORMATS:
            raise BadInput(
                f"period must be one of {sorted(PERIOD_FORMATS)}", field="period"
            )
        if (
            isinstance(self.shards, bool)
            or not isinstance(self.shards, int)
            or self.shards < 1
        ):
            raise BadInput("shards must be a positive integer", field="shards")

    @classmethod
    def from_env_value(cls, value: str) -> PoolingConfig:
        """Parse ``"country,device_type,offtaker_type;month[;shards=4]"``.

        An empty first part pools by owner account (and period) alone.
        """
        parts = [part.strip() for part in value.split(";")]
        partition_by = tuple(
            name.strip() for name in parts[0].split(",") if name.strip()
        )
        period = parts[1] if len(parts) > 1 and parts[1] else "month"
        shards = 1
        for extra in parts[2:]:
            name, _, number = extra.partition("=")
            if name.strip() != "shards" or not number.strip().isdigit():
                raise BadInput(
                    f"unknown pooling option {extra!r}; expected shards=N",
                    field="shards",
                )
            shards = int(number)
        return cls(partition_by=partition_by, period=period, shards=shards)

    def to_env_value(self) -> str:
        return f"{','.join(self.partition_by)};{self.period};shards={self.shards}"


@dataclass(frozen=True)
class PoolKey:
    """One pool: owner, partitioned characteristics (None = mixed), period, shard."""

    owner_account_id: str
    country: str | None
    device_type: str | None
    offtaker_type: str | None
    period_label: str
    shard: int | None = None
    shards: int = 1

    def __post_init__(self) -> None:
        for name in ("owner_account_id", "offtaker_type"):
            value = getattr(self, name)
            if value is not None and ("|" in value or value in ("", ANY)):
                raise BadInput(
                    f"{name} may not be empty, '*' or contain '|'", field=name
                )
        if self.country is not None and not _COUNTRY.match(self.country):
            raise BadInput("country must be an ISO 3166 alpha-2 code", field="country")
        if self.device_type is not None and self.device_type not in DEVICE_TYPE_CODES:
            raise BadInput(
                f"unknown device type {self.device_type!r}", field="device_type"
            )
        if len(self.period_label) not in (6, 8, 10) or not self.period_label.isdigit():
            raise BadInput(
                "period_label must be YYYYMM, YYYYMMDD or YYYYMMDDHH",
                field="period_label",
            )
        sharded = self.shards > 1
        if sharded != (self.shard is not None) or (
            self.shard is not None and not 0 <= self.shard < self.shards
        ):
            raise BadInput(
                "shard must be in 0..shards-1 when shards > 1, else None", field="shard"
            )

    @property
    def period(self) -> str:
        return {6: "month", 8: "day", 10: "hour"}[len(self.period_label)]

    @property
    def pool_id(self) -> str:
        """Stable id, e.g. ``acc-1|KE|solar_home_system|household|202611``.

        ``*`` stands for a characteristic that does not partition the pool.
        """
        parts = [
            self.owner_account_id,
            self.country,
            self.device_type,
            self.offtaker_type,
        ]
        text = (
            "|".join(ANY if part is None else part for part in parts)
            + f"|{self.period_label}"
        )
        return text if self.shard is None else f"{text}|s{self.shard}of{self.shards}"

    @property
    def pool_code(self) -> str:
        """8 base32 characters of the pool id's SHA-256.

        40 bits, so pools that share a serial prefix do not collide in practice.
        """
        digest = hashlib.sha256(self.pool_id.encode("utf-8")).digest()
        return base64.b32encode(digest).decode("ascii")[:POOL_CODE_CHARS]

    def serial(self, sequence: int) -> str:
        country = self.country or MIXED_COUNTRY
        device_type = self.device_type or MIXED
        return format_serial(
            country,
            DEVICE_TYPE_CODES[device_type],
            self.period_label,
            self.pool_code,
            sequence,
        )

    def admits(self, item: Slice) -> bool:
        """Whether `item` belongs in this pool."""
        return (
            (self.country is None or item.country == self.country)
            and (self.device_type is None or item.device_type == self.device_type)
            and (self.offtaker_type is None or item.offtaker_type == self.offtaker_type)
            and period_label(item.period_start, self.period) == self.period_label
            and (
                self.shard is None
                or shard_of(item.device_id, self.shards) == self.shard
            )
        )

    @classmethod
    def from_pool_id(cls, pool_id: str) -> PoolKey:
        parts = pool_id.split("|")
        if len(parts) not in (5, 6):
            raise BadInput(f"not a pool id: {pool_id!r}", field="pool_id")
        shard, shards = None, 1
        if len(parts) == 6:
            match = _SHARD.match(parts[5])
            if match is None:
                raise BadInput(f"not a pool id: {pool_id!r}", field="pool_id")
            shard, shards = int(match[1]), int(match[2])
        owner, country, device_type, offtaker_type, label = (
            None if part == ANY else part for part in parts[:5]
        )
        if owner is None or label is None:
            raise BadInput(f"not a pool id: {pool_id!r}", field="pool_id")
        return cls(owner, country, device_type, offtaker_type, label, shard, shards)


def period_label(moment: datetime, period: str) -> str:
    """``202611`` / ``20261105`` / ``2026110510`` of `moment` in UTC."""
    return moment.astimezone(UTC).strftime(PERIOD_FORMATS[period])


def shard_of(device_id: str, shards: int) -> int:
    digest = hashlib.sha256(device_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % shards


def pool_key(owner_account_id: str, item: Slice, config: PoolingConfig) -> PoolKey:
    """The pool that `item` of `owner_account_id` goes to (period of its start)."""
    return PoolKey(
        owner_account_id=owner_account_id,
        country=item.country if "country" in config.partition_by else None,
        device_type=item.device_type if "device_type" in config.partition_by else None,
        offtaker_type=item.offtaker_type
        if "offtaker_type" in config.partition_by
        else None,
        period_label=period_label(item.period_start, config.period),
        shard=shard_of(item.device_id, config.shards) if config.shards > 1 else None,
        shards=config.shards,
    )


def split_by_hour(
    energy_wh: int, period_start: datetime, period_end: datetime
) -> dict[datetime, int]:
    """Spread `energy_wh` [Wh] over the UTC hours the period overlaps, by overlap.

    Integer Wh by largest remainder (ties to the earlier hour), so the parts
    sum exactly to `energy_wh`. Uniform in time is good enough because
    readings are usually hourly or shorter; hours given 0 Wh are left out.
    """
    total = _microseconds(period_end - period_start)
    hour = period_start.replace(minute=0, second=0, microsecond=0)
    hours: list[datetime] = []
    floors: list[int] = []
    remainders: list[int] = []
    while hour < period_end:
        overlap = _microseconds(min(period_end, hour + _HOUR) - max(period_start, hour))
        share, rest = divmod(energy_wh * overlap, total)
        hours.append(hour)
        floors.append(share)
        remainders.append(rest)
        hour += _HOUR
    leftover = energy_wh - sum(floors)
    for index in sorted(range(len(hours)), key=lambda i: (-remainders[i], i))[
        :leftover
    ]:
        floors[index] += 1
    return {moment: wh for moment, wh in zip(hours, floors, strict=True) if wh}


def _microseconds(span: timedelta) -> int:
    return (span.days * 86_400 + span.seconds) * 1_000_000 + span.microseconds


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
    level = list(leaves)
    while len(level) > 1:
        paired = [
            hashlib.sha256(b"\x01" + level[i] + level[i + 1]).digest()
            for i in range(0, len(level) - 1, 2)
        ]
        level = paired + ([level[-1]] if len(level) % 2 else [])
    return level[0]


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
            "period_start": iso_utc(self.period_start),
            "period_end": iso_utc(self.period_end),
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
        hourly_wh={iso_utc(hour): wh for hour, wh in sorted(hourly.items())},
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


@dataclass(frozen=True)
class PoolState:
    """What a pool's item holds.

    Invariant: accepted_wh == 1000 * issued_count + remainder_wh.
    """

    pool_id: str
    version: int
    next_sequence: int
    remainder: tuple[Slice, ...]
    accepted_wh: int
    issued_count: int

    @property
    def remainder_wh(self) -> int:
        return sum(item.energy_wh for item in self.remainder)

    @classmethod
    def empty(cls, pool_id: str) -> PoolState:
        return cls(
            pool_id=pool_id,
            version=0,
            next_sequence=1,
            remainder=(),
            accepted_wh=0,
            issued_count=0,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "pool_id": self.pool_id,
            "version": self.version,
            "next_sequence": self.next_sequence,
            "remainder": [item.to_dict() for item in self.remainder],
            "accepted_wh": self.accepted_wh,
            "issued_count": self.issued_count,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PoolState:
        return cls(
            pool_id=data["pool_id"],
            version=int(data["version"]),
            next_sequence=int(data["next_sequence"]),
            remainder=tuple(Slice.from_dict(row) for row in data["remainder"]),
            accepted_wh=int(data["accepted_wh"]),
            issued_count=int(data["issued_count"]),
        )


def add_to_pool(
    state: PoolState, key: PoolKey, slices: Sequence[Slice], owner_account_id: str
) -> tuple[PoolState, list[DrecDraft]]:
    """Append `slices` to the pool and cut every whole D-REC it now holds.

    Returns the next state (version + 1, once per call) and the D-RECs, in
    sequence order. Zero-Wh slices add nothing and are not kept. Raises
    Conflict if a slice's reading is already in the remainder or appears
    twice in `slices`; BadInput if a slice does not belong to `key`.
    Deduplicating readings that were already issued in full is the
    service's job: it knows every reading_id the pool has taken.
    """
    if state.pool_id != key.pool_id:
        raise BadInput(
            f"state of pool {state.pool_id!r} given for pool {key.pool_id!r}",
            field="pool_id",
        )
    if owner_account_id != key.owner_account_id:
        raise BadInput(
            "the pool belongs to another owner account", field="owner_account_id"
        )
    held = {item.reading_id for item in state.remainder}
    for item in slices:
        if not key.admits(item):
            raise BadInput(
                f"reading {item.reading_id} does not belong to pool {key.pool_id}",
                field="pool_id",
            )
        if item.reading_id in held:
            raise Conflict(
                f"reading {item.reading_id} is already in pool {key.pool_id}",
                field="reading_id",
            )
        held.add(item.reading_id)

    queue = deque(state.remainder)
    queue.extend(item for item in slices if item.energy_wh)
    added_wh = sum(item.energy_wh for item in slices)
    pooled_wh = state.remainder_wh + added_wh
    drafts: list[DrecDraft] = []
    sequence = state.next_sequence
    while pooled_wh >= DREC_WH:
        drafts.append(draft_drec(key, sequence, _take(queue, DREC_WH)))
        sequence += 1
        pooled_wh -= DREC_WH
    next_state = PoolState(
        pool_id=state.pool_id,
        version=state.version + 1,
        next_sequence=sequence,
        remainder=tuple(queue),
        accepted_wh=state.accepted_wh + added_wh,
        issued_count=state.issued_count + len(drafts),
    )
    return next_state, drafts


def _take(queue: deque[Slice], energy_wh: int) -> list[Slice]:
    """Pop exactly `energy_wh` from the head of `queue`, splitting the last slice."""
    taken: list[Slice] = []
    needed = energy_wh
    while needed:
        head = queue.popleft()
        if head.energy_wh <= needed:
            taken.append(head)
            needed -= head.energy_wh
        else:
            taken.append(head.with_energy(needed))
            queue.appendleft(head.with_energy(head.energy_wh - needed))
            needed = 0
    return taken
