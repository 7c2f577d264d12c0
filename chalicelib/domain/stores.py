"""What any store answers besides records: a page of results and the refusals of its writes.

Ports (`services/ports/`), adapters and in-memory fakes all speak these, so services
catch a refusal without knowing which technology refused it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# Items one atomic write may touch (DynamoDB's TransactWriteItems limit); services size
# their steps by it so that every step stays one atomic write.
MAX_ATOMIC_ITEMS = 100
# Raw items one list request reads at most (max(limit, READ_BUDGET) when the page is larger): a
# filter that matches little stops there with a short or empty page and a `next_cursor` that
# resumes exactly after the last item read, so no request's work grows with the table.
READ_BUDGET = 1000


@dataclass(frozen=True)
class Page:
    """Up to `limit` matches; `next_cursor` whenever reading stopped before the end (even with few or no items)."""

    items: list[dict[str, Any]]
    next_cursor: str | None


def read_budget(limit: int) -> int:
    """Raw items a list request with page size `limit` may read."""
    return max(limit, READ_BUDGET)


class TransactionRefused(Exception):
    """A condition of an atomic write failed; `reasons[i]` is the code of item i (or None)."""

    def __init__(self, reasons: list[str | None]) -> None:
        super().__init__(f"transaction refused: {reasons}")
        self.reasons = reasons


class ExternalIdTaken(Exception):
    """The (source, external_id) pair names a record that already exists."""

    def __init__(self, existing_id: str) -> None:
        super().__init__(existing_id)
        self.existing_id = existing_id


class KeyGone(Exception):
    """The key presented was rotated or revoked meanwhile, or its principal was revoked."""


class KeysChanged(Exception):
    """The principal's key ring (or its revocation) changed since it was read: read it again."""


@dataclass(frozen=True)
class KeyRing:
    """A principal's current key hashes; `version` None when no ring was ever written for it."""

    key_hashes: frozenset[str]
    version: int | None


class ObjectGone(Exception):
    """The object was deleted, or replaced by another version, since it was notified."""


class ChainError(Exception):
    """Something went wrong talking to the chain."""
