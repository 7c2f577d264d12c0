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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from ..errors import BadInput, Conflict
from .drafts import DREC_WH, DrecDraft, draft_drec
from .serials import DEVICE_TYPE_CODES, MIXED, MIXED_COUNTRY
from .serials import serial as format_serial
from .slices import Slice

ANY = "*"
PARTITIONS = ("country", "device_type", "offtaker_type")
PERIOD_FORMATS = {"month": "%Y%m", "day": "%Y%m%d", "hour": "%Y%m%d%H"}
POOL_CODE_CHARS = 8
_COUNTRY = re.compile(r"^[A-Z]{2}$")
_SHARD = re.compile(r"^s(\d+)of(\d+)$")


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
