"""Transfers: D-RECs change hands atomically and exactly once, whatever the retries (engine: moves.py)."""

from __future__ import annotations

from typing import Any

from ..domain.errors import BadInput, RuleBroken
from ..domain.issuance.serials import compress_ranges
from ..domain.ledger import events as ev
from ..domain.model import Principal
from ..domain.moves import DrecChange, Move, MoveKind, MoveStatus, Transfer, TransferDrecs, transfer_changes
from ..domain.time import iso, now_utc
from .access import KeyLookup, account_or_404, require_acting_for
from .holdings import select_drecs
from .idempotency import replay, request_hash, start_or_join
from .moves import Ending, MoveRun, new_move_id, related
from .ports.trading import Trades


def _changes(move: Move, chunk: list[str]) -> list[DrecChange]:
    assert isinstance(move, Transfer)
    return transfer_changes(move, chunk)


def _ending(move: Move) -> Ending:
    assert isinstance(move, Transfer)
    ids, late = related((move.from_account_id, move.to_account_id), [*move.device_ids, *move.serials], 2)
    body = {"transfer_id": move.id, "from_account_id": move.from_account_id, "to_account_id": move.to_account_id,
            "quantity": len(move.serials), "serial_ranges": compress_ranges(list(move.serials)),
            "device_ids": list(move.device_ids)}
    event = ev.NewEvent(ev.DREC_TRANSFERRED, move.id, move.principal_id, iso(now_utc()), body, related_ids=ids)
    return Ending(event, mirror_for=move.to_account_id, late_links=late)


def transfer_run(store: Trades) -> MoveRun:
    return MoveRun(store, MoveKind.TRANSFERS, _changes, _ending)


def transfer(registry: KeyLookup, store: Trades, principal: Principal, command: TransferDrecs,
             idempotency_key: str | None = None) -> dict[str, Any]:
    """Move D-RECs from one account to another; the same Idempotency-Key again returns the same transfer."""
    request_sha = request_hash(principal, command.request)
    move = replay(store, MoveKind.TRANSFERS, principal, idempotency_key, request_sha)
    if move is None:
        sender = account_or_404(registry, command.from_account_id, "from_account_id")
        account_or_404(registry, command.to_account_id, "to_account_id")
        require_acting_for(principal, sender, "transfer D-RECs")
        if command.from_account_id == command.to_account_id:
            raise RuleBroken("from_account_id and to_account_id are the same account", field="to_account_id")
        drecs = select_drecs(store, command.from_account_id, command.serials, command.quantity, command.selection)
        move = start_or_join(store, Transfer(
            id=new_move_id("trf"), account_id=command.from_account_id,
            from_account_id=command.from_account_id, to_account_id=command.to_account_id,
            serials=tuple(d.serial for d in drecs), device_ids=tuple(sorted({i for d in drecs for i in d.device_ids})),
            status=MoveStatus.LOCKING, created_at=iso(now_utc()), principal_id=principal.id,
            request_sha256=request_sha, idempotency_key=idempotency_key))
    return transfer_view(transfer_run(store).run(move))


def transfer_view(move: Move) -> dict[str, Any]:
    assert isinstance(move, Transfer)
    out: dict[str, Any] = {
        "transfer_id": move.id, "from_account_id": move.from_account_id, "to_account_id": move.to_account_id,
        "status": move.status.value, "quantity": len(move.serials), "serials": list(move.serials),
        "serial_ranges": compress_ranges(list(move.serials)), "created_at": move.created_at,
        "completed_at": move.completed_at}
    if move.failure:
        out["failure"] = dict(move.failure)
    return out


def list_transfers(store: Trades, account_id: str | None, limit: int, cursor: str | None,
                   ) -> tuple[list[dict[str, Any]], str | None]:
    if not account_id:
        raise BadInput("account_id is required: the transfers of which account?", field="account_id")
    moves, next_cursor = store.by_account(MoveKind.TRANSFERS, account_id, limit, cursor)
    return [transfer_view(m) for m in moves], next_cursor
