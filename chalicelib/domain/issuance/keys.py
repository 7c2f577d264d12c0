"""Which pool a slice goes to: the pooling setting (`DREC_POOLING`) and pool keys.

A pool is keyed by the owner account and by the characteristics buyers ask for
(country, device type, off-taker type) and the generation period, optionally split
into shards by a stable hash of the device id; see `pools.py` for why.
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime

from ..errors import BadInput
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
