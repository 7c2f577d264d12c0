"""Pages as the DynamoDB stores read them: at most `read_budget(limit)` items evaluated per request."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from chalicelib.domain.index_keys import INDEX_SHARDS
from chalicelib.domain.stores import read_budget

T = TypeVar("T")


def budgeted(ordered: Sequence[T], matches: Callable[[T], bool], limit: int,
             start: int = 0) -> tuple[list[T], int | None]:
    """(up to `limit` matches from position `start`, the position to resume at or None at the end)."""
    budget = read_budget(limit)
    found: list[T] = []
    position = start
    while position < len(ordered) and budget > 0 and len(found) < limit:
        item = ordered[position]
        position, budget = position + 1, budget - 1
        if matches(item):
            found.append(item)
    return found, (position if position < len(ordered) else None)


def offset_page(items: Sequence[T], limit: int, cursor: str | None,
                matches: Callable[[T], bool] = lambda _: True) -> tuple[list[T], str | None]:
    """`budgeted` with the position as the cursor."""
    found, position = budgeted(items, matches, limit, int(cursor or 0))
    return found, (None if position is None else str(position))


def every_shard(ordered: Sequence[T], shard: Callable[[T], int], limit: int) -> list[T]:
    """As `DynamoBase.query_every_shard` reads: the first ceil(limit / INDEX_SHARDS) of each shard of `ordered`."""
    per_shard = -(-limit // INDEX_SHARDS)
    taken: dict[int, int] = {}
    found = []
    for item in ordered:
        n = shard(item)
        if taken.get(n, 0) < per_shard:
            taken[n] = taken.get(n, 0) + 1
            found.append(item)
    return found
