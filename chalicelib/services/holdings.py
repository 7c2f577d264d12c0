"""What an account holds: counts for the holdings view, and the D-RECs a move names or selects."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

from ..domain.certificates import Drec, DrecSelection, DrecStatus
from ..domain.counts import groups_of
from ..domain.errors import BadInput, Conflict, NotFound, RuleBroken
from .access import KeyLookup, account_or_404
from .ports.trading import Trades

# One request moves at most this many D-RECs: the move record (its serial list) stays
# well under DynamoDB's 400 KB item limit.
MAX_DRECS_PER_REQUEST = 5000


def holdings(registry: KeyLookup, store: Trades, account_id: str) -> dict[str, Any]:
    """Counts of the account's D-RECs (1 kWh each) by status, country, device type and vintage: one counter
    item, however many D-RECs the account holds."""
    account_or_404(registry, account_id)
    counts = store.holding_counts(account_id)
    groups = groups_of(counts)
    return {"account_id": account_id, "active": counts.get(DrecStatus.ACTIVE.value, 0),
            "redeemed": counts.get(DrecStatus.REDEEMED.value, 0),
            "groups": [{"status": s, "country": c, "device_type": t, "vintage": v, "count": n}
                       for (s, c, t, v), n in sorted(groups.items())]}


def select_drecs(store: Trades, owner: str, serials: Sequence[str] | None, quantity: int | None,
                 selection: DrecSelection | None) -> list[Drec]:
    """The D-RECs a request names (or the oldest `quantity` the selection admits), in serial order.

    Raises on any problem before anything is written.
    """
    if (serials is None) == (quantity is None):
        raise BadInput("give either serials or quantity, not both or neither", field="serials")
    if serials is not None:
        if selection is not None:
            raise BadInput("filter selects D-RECs for a quantity; with explicit serials leave it out", field="filter")
        return _named(store, owner, list(serials))
    assert quantity is not None
    if quantity > MAX_DRECS_PER_REQUEST:
        raise BadInput(f"at most {MAX_DRECS_PER_REQUEST} D-RECs per request", field="quantity")
    free = [d for d in store.active_holdings(owner, selection or DrecSelection()) if d.locked_by is None]
    if len(free) < quantity:
        raise RuleBroken(f"quantity {quantity} is more than the {len(free)} active D-RECs account {owner} holds "
                         "that match the filter; nothing was moved", field="quantity")
    oldest = sorted(free, key=lambda d: (d.period_start, d.serial))[:quantity]
    # The owner index holds what the selection reads, not the D-RECs' devices: those come with the
    # D-RECs themselves, read again by serial (and checked again, as named ones are).
    return _named(store, owner, [d.serial for d in oldest])


def _named(store: Trades, owner: str, serials: list[str]) -> list[Drec]:
    if len(set(serials)) != len(serials):
        twice = next(s for s, n in Counter(serials).items() if n > 1)
        raise BadInput(f"D-REC {twice} is named twice", field="serials")
    if len(serials) > MAX_DRECS_PER_REQUEST:
        raise BadInput(f"at most {MAX_DRECS_PER_REQUEST} D-RECs per request", field="serials")
    found = {d.serial: d for d in store.drecs(serials)}
    for serial in serials:
        drec = found.get(serial)
        if drec is None:
            raise NotFound(f"no D-REC {serial!r}", field="serials")
        if drec.status is DrecStatus.REDEEMED:
            raise Conflict(f"D-REC {serial} is already redeemed and can never move again", field="serials")
        if drec.owner_account_id != owner:
            raise Conflict(f"D-REC {serial} is held by another account, not {owner}", field="serials")
        if drec.locked_by:
            raise Conflict(f"D-REC {serial} is being moved by {drec.locked_by}; try again later", field="serials")
    return [found[s] for s in sorted(serials)]
