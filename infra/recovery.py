"""Start-up checks of the store against itself and the chain, with the repairs that are safe.

The event outbox (`chalicelib.adapters.dynamo`) numbers each shard's events 1, 2, 3, ...
with the shard's `event_seq#<shard>` counter, advanced in the same transaction as the events, so in a live store
the counter always equals the highest stored event. A restored store need not: a
snapshot is scanned table by table (`infra.snapshot`), so the counter can be older or
newer than the events beside it. Either way every later write is refused (the next
number is taken, or the events in between can never be read), the registry answers 409
to every write and anchoring stalls. So before serving, for every shard:

- counter BELOW the highest stored event: raise it. The stored events are recorded
  writes; a higher counter can never hand out a number twice, while lowering the
  events to the counter would delete history.
- counter ABOVE the highest stored event: lower it. The missing events were lost with
  the snapshot; leaving the counter ahead leaves a gap that `in_order` and anchoring
  wait on forever. Reusing those numbers is safe only because nobody outside the store
  has seen them, which is what the chain check establishes first.
- the chain anchored MORE events than the store holds: refuse to start. The anchored
  Merkle roots cover events this store no longer has, so new events would take numbers
  the chain already commits to something else; only the operator can choose between
  restoring the data that matches the chain and starting afresh.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .resources import physical

EVENT_SEQ = "event_seq"  # the counters' prefix in `counters` (chalicelib.adapters.dynamo.seq_counter)


def seq_counter(shard: int) -> str:
    return f"{EVENT_SEQ}#{shard}"


class StoreInconsistent(RuntimeError):
    """The store cannot be repaired from itself and the chain; the message says what to do."""


@dataclass
class Findings:
    counter: int
    highest_event: int
    anchored_through: int | None
    repairs: list[str] = field(default_factory=list)


def highest_stored_seq(exists: Callable[[int], bool], hint: int) -> int:
    """The highest seq H with events 1..H stored, found with O(log H) point reads from `hint`.

    Sequence numbers are gap-free by construction, so "seq n is stored" holds for a prefix
    of 1, 2, 3, ...: gallop from the hint to a bound, then bisect.
    """
    if hint > 0 and not exists(hint):
        low, high = 0, hint  # exists(low) (0: vacuously), not exists(high)
    else:
        low, step = max(hint, 0), 1
        while exists(low + step):
            low, step = low + step, step * 2
        high = low + step
    while high - low > 1:
        middle = (low + high) // 2
        if exists(middle):
            low = middle
        else:
            high = middle
    return low


def check_shards(dynamodb: Any, prefix: str, anchored_through: list[int] | None, shards: int) -> list[Findings]:
    """`check_store` of every shard; `anchored_through` is the chain's per shard (`next_seqs - 1`)."""
    return [check_store(dynamodb, prefix, anchored_through[shard] if anchored_through else None, shard)
            for shard in range(shards)]


def check_store(dynamodb: Any, prefix: str, anchored_through: int | None, shard: int = 0) -> Findings:
    """Check a shard's event counter against its stored events and the chain; repair or refuse.

    `anchored_through` is the chain's last anchored seq of the shard (`ChainLedger.next_seq(shard) - 1`),
    or None when there is no chain to check against. Raises StoreInconsistent when the chain is
    ahead of the store; otherwise returns what it found and repaired.
    """
    events, counters = physical(prefix, "events"), physical(prefix, "counters")

    def exists(seq: int) -> bool:
        found = dynamodb.get_item(TableName=events, Key={"id": {"S": f"ev-{shard}-{seq:012d}"}},
                                  ProjectionExpression="id", ConsistentRead=True)
        return "Item" in found

    item = dynamodb.get_item(TableName=counters, Key={"name": {"S": seq_counter(shard)}},
                             ConsistentRead=True).get("Item")
    counter = int(item["value"]["N"]) if item and "value" in item else 0
    highest = highest_stored_seq(exists, counter)
    findings = Findings(counter, highest, anchored_through)
    if anchored_through is not None and anchored_through > highest:
        raise StoreInconsistent(
            f"the chain's ledger has anchored events 1..{anchored_through} of shard {shard}, but the store "
            f"holds events 1..{highest} only (event counter {counter}): the data folder is older than "
            "the chain, so new events would take numbers the chain already commits to. Restore "
            "the data folder (snapshot) that was saved with this chain state, or start afresh "
            "with `make clean` (deletes the local data and the chain state together).")
    if counter != highest:
        dynamodb.put_item(TableName=counters, Item={"name": {"S": seq_counter(shard)},
                                                    "value": {"N": str(highest)}})
        direction, why = (("raised", "events beyond the counter were stored") if highest > counter else
                          ("lowered", "events beyond the highest stored one were lost with the snapshot"))
        findings.repairs.append(f"shard {shard}'s event counter {direction} from {counter} to {highest}, "
                                f"the highest stored event ({why})")
    return findings
