"""The port of the trade store: move records, D-REC locks and the passes of a move.

Each pass method is one atomic step that holds only on its conditions and raises
`TransactionRefused` otherwise (reasons[i] for D-REC i, reasons[-1] for the record):

- lock: each D-REC active, held by `move.account_id` and unlocked; the record still
  `locking` at `locked_before`. The last chunk also moves the record to `applying`.
- apply: each D-REC locked by this move (it stays locked); the record `applying` at `applied_before`.
- finish: the record `applying` with every D-REC applied; appends the event atomically and moves
  the record to `unlocking`.
- release: each D-REC locked by this move loses the lock; the record `status` (`releasing` after a
  refusal, `unlocking` after finish) at `locked_before`.
- start: no record of that id and, with an Idempotency-Key, no guard for it yet.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Protocol

from ...domain.certificates import Drec, DrecSelection
from ...domain.ledger.events import Event, NewEvent
from ...domain.moves import DrecChange, Move, MoveKind, MoveStatus


class Trades(Protocol):
    # -- move records
    def move(self, kind: MoveKind, move_id: str) -> Move | None: ...

    def moves(self, kind: MoveKind, move_ids: Sequence[str]) -> list[Move]: ...

    def idempotent_target(self, kind: MoveKind, principal_id: str, idempotency_key: str) -> str | None: ...

    def start(self, move: Move) -> None: ...

    def set_status(self, move: Move, old: MoveStatus, new: MoveStatus,
                   failure: Mapping[str, str] | None = None) -> bool: ...

    def unfinished(self, kind: MoveKind, started_before: str) -> Iterator[Move]: ...

    def by_account(self, kind: MoveKind, account_id: str, limit: int, cursor: str | None,
                   ) -> tuple[list[Move], str | None]: ...

    def add_token_hash(self, redemption_id: str, token_hash: str) -> None: ...

    # -- the passes
    def lock(self, move: Move, serials: Sequence[str], locked_before: int, last: bool) -> None: ...

    def release(self, move: Move, serials: Sequence[str], locked_before: int,
                status: MoveStatus = MoveStatus.RELEASING) -> None: ...

    def apply(self, move: Move, changes: Sequence[DrecChange], applied_before: int) -> None: ...

    def finish(self, move: Move, completed_at: str, mirror_for: str | None, event: NewEvent) -> Event: ...

    def record_event(self, move: Move, event: Event) -> None: ...

    def link_event(self, subjects: Sequence[str], event: Event) -> None: ...

    # -- D-RECs as the trading rules read them
    def drecs(self, serials: Sequence[str]) -> list[Drec]: ...

    def active_holdings(self, owner: str, selection: DrecSelection) -> Iterator[Drec]: ...

    def holdings(self, owner: str) -> Iterator[Drec]: ...

    def holding_counts(self, owner: str) -> dict[str, int]:
        """The account's holdings counters: `active`, `redeemed`, and `g|status|country|device_type|vintage`
        per group, kept by the issuing and moving transactions."""
