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

from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import BadInput, Conflict
from .drafts import DREC_WH, DrecDraft, draft_drec
from .keys import PoolKey
from .slices import Slice


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
