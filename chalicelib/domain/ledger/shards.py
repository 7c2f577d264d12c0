"""Which event shard a write's events go to: the one routing rule of the sharded event sequence.

The platform numbers events per shard (`event_seq#<shard>` counters), so writers on different
shards never touch the same item: one DynamoDB item takes at most ~1,000 writes a second and
concurrent transactions on it conflict, which capped a single global counter near a million
devices. Within a shard numbers are gap-free and each shard is anchored as its own batches.

Ordering is only guaranteed inside a shard, so each history that needs an order lives in one:

- everything about a device (registration, its readings' verdicts, reviews, suspension) goes
  to shard(device_id): the validator's transactions hold devices of one shard only;
- an issuance goes to shard(pool_id): a pool's D-RECs and their serials are numbered in order;
- sources, accounts, keys, transfers and redemptions (ownership, everything about a D-REC after
  its issuance) go to the registry shard 0. A D-REC's issuance (its pool's shard) causally
  precedes its moves (shard 0) because a move's transaction requires the D-REC item that the
  issuance wrote: the cross-shard order that matters is enforced by the data, not by numbers.

The shard is sha256(key) mod the shard count: stable across processes and releases. The count
(`DREC_EVENT_SHARDS`) is fixed for a deployment: changing it re-routes devices and pools, so
their later events would land in another shard than their earlier ones.
"""

from __future__ import annotations

import hashlib

REGISTRY_SHARD = 0
MAX_SHARDS = 1024  # far below the contract's uint16; a shard's counter and watermark are one item each


def shard_of(shard_key: str | None, shards: int) -> int:
    """The shard of `shard_key` among `shards` (None: the registry shard)."""
    if shard_key is None or shards <= 1:
        return REGISTRY_SHARD
    digest = hashlib.sha256(shard_key.encode()).digest()
    return int.from_bytes(digest[:8], "big") % shards


def device_key(device_id: str) -> str:
    """Everything about a device: its registration, verdicts on its readings, reviews, suspension."""
    return f"device:{device_id}"


def pool_key(pool_id: str) -> str:
    """An issuance: the pool's D-RECs."""
    return f"pool:{pool_id}"


# Sources, accounts, keys, transfers, redemptions.
REGISTRY_KEY: str | None = None
