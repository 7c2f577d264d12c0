"""The move engine: a stored move (transfer or redemption) is driven to `completed`, or undone to `failed`.

`MoveRun` drives a move record through the lock and apply passes of the trade store
(see `ports/trading.py` for each pass's conditions) to `completed`, or, when a D-REC was
taken by someone else, releases the locks it holds and ends `failed`: never half done.
Every pass advances a counter on the record from the value it read, so a retry (the
same Idempotency-Key, see `idempotency.py`) or the sweep (`resume_stale`) resumes where
the last writer stopped.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from uuid import uuid4

from ..domain.certificates import DrecStatus
from ..domain.errors import Conflict, NotFound
from ..domain.ledger import events as ev
from ..domain.moves import DrecChange, Move, MoveKind, MoveStatus
from ..domain.stores import MAX_ATOMIC_ITEMS, TransactionRefused
from ..domain.time import iso, now_utc
from .ports.trading import Trades

# D-RECs per transaction of a pass.
CHUNK = 25
ATTEMPTS = 50
CONDITION_FAILED = "ConditionalCheckFailed"


@dataclass(frozen=True)
class Ending:
    """What the final transaction writes besides the record: the event, and who else lists the move."""

    event: ev.NewEvent
    mirror_for: str | None = None
    # Subjects the event's transaction had no room to relate; linked right after it.
    late_links: tuple[str, ...] = ()


def new_move_id(prefix: str) -> str:
    """Time-ordered, so an account's moves list oldest first."""
    return f"{prefix}-{now_utc():%Y%m%d%H%M%S}-{uuid4().hex[:12]}"


def related(fixed: Sequence[str], extra: Sequence[str], items: int) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Related ids for an event committed with `items` other items: all when they fit, else `fixed` only."""
    room = MAX_ATOMIC_ITEMS - items - 4  # the seq counter, the event, its own link, the stats counter
    everything = tuple(dict.fromkeys([*fixed, *extra]))
    if len(everything) <= room:
        return everything, ()
    return tuple(fixed), tuple(s for s in everything if s not in fixed)


class MoveRun:
    """Drives one move record to `completed` (returned) or `failed` (raised as Conflict)."""

    def __init__(self, store: Trades, kind: MoveKind, changes: Callable[[Move, list[str]], list[DrecChange]],
                 ending: Callable[[Move], Ending]) -> None:
        self.store = store
        self.kind = kind
        self.changes = changes
        self.ending = ending

    def run(self, move: Move) -> Move:
        for _ in range(ATTEMPTS):
            if move.status is MoveStatus.COMPLETED:
                return move
            if move.status is MoveStatus.FAILED:
                failure = move.failure or {}
                raise Conflict(failure.get("message", f"{move.id} failed; nothing was moved"),
                               field=failure.get("field"))
            if move.status is MoveStatus.LOCKING:
                self._lock(move)
            elif move.status is MoveStatus.RELEASING:
                self._release(move, MoveStatus.RELEASING, MoveStatus.FAILED)
            elif move.status is MoveStatus.UNLOCKING:
                self._release(move, MoveStatus.UNLOCKING, MoveStatus.COMPLETED)
            elif move.status is MoveStatus.APPLYING:
                self._apply(move)
            fresh = self.store.move(self.kind, move.id)
            if fresh is None:
                raise NotFound(f"no {self.kind.value[:-1]} {move.id!r}")
            move = fresh
        raise Conflict(f"{move.id} is busy with another writer; it will be finished by a retry with the "
                       "same Idempotency-Key or, without one, by the sweep within minutes")

    def _lock(self, move: Move) -> None:
        serials, locked = move.serials, move.locked
        while locked < len(serials):
            chunk = serials[locked:locked + CHUNK]
            try:
                self.store.lock(move, chunk, locked, locked + len(chunk) == len(serials))
            except TransactionRefused as refused:
                if refused.reasons[-1]:
                    return  # another writer of this record moved it on: re-read it
                taken = [s for s, reason in zip(chunk, refused.reasons) if reason == CONDITION_FAILED]
                if taken:
                    failure = refusal(self.store, taken[0], move.account_id, self.kind)
                    self.store.set_status(move, MoveStatus.LOCKING, MoveStatus.RELEASING, failure)
                return
            locked += len(chunk)

    def _release(self, move: Move, status: MoveStatus, then: MoveStatus) -> None:
        """Unlock the move's D-RECs, last locked first: after a refusal (nothing moved) or after its
        event was recorded (everything moved)."""
        serials, locked = move.serials, move.locked
        while locked > 0:
            chunk = serials[max(0, locked - CHUNK):locked]
            try:
                self.store.release(move, chunk, locked, status)
            except TransactionRefused:
                return
            locked -= len(chunk)
        self.store.set_status(move, status, then)

    def _apply(self, move: Move) -> None:
        serials, applied = move.serials, move.applied
        while applied < len(serials):
            chunk = list(serials[applied:applied + CHUNK])
            try:
                self.store.apply(move, self.changes(move, chunk), applied)
            except TransactionRefused:
                return
            applied += len(chunk)
        ending = self.ending(move)
        try:
            stored = self.store.finish(move, iso(now_utc()), ending.mirror_for, ending.event)
        except TransactionRefused:
            return
        if ending.late_links:
            self.store.link_event(ending.late_links, stored)
        self.store.record_event(move, stored)


def resume_stale(store: Trades, run: MoveRun, older_than_s: float = 300) -> dict[str, int]:
    """Finish moves whose request died and was never retried, so their D-RECs do not stay locked."""
    before = iso(now_utc() - timedelta(seconds=older_than_s))
    counts = {"completed": 0, "failed": 0}
    for move in store.unfinished(run.kind, before):
        try:
            run.run(move)
            counts["completed"] += 1
        except Conflict:
            counts["failed"] += 1
    return counts


def refusal(store: Trades, serial: str, owner: str, kind: MoveKind) -> dict[str, str]:
    """Why `serial` could not be locked for a move out of `owner`, as the failure the caller sees."""
    drec = store.drecs([serial])
    verb = "transferred" if kind is MoveKind.TRANSFERS else "redeemed"
    if not drec:
        message = f"no D-REC {serial!r}"
    elif drec[0].status is DrecStatus.REDEEMED:
        message = f"D-REC {serial} is already redeemed and can never move again"
    elif drec[0].owner_account_id != owner:
        message = f"D-REC {serial} is no longer held by account {owner}"
    else:
        message = f"D-REC {serial} is being moved by {drec[0].locked_by}"
    return {"message": f"{message}; nothing was {verb}", "field": "serials", "serial": serial}
