"""Transfers and redemptions as records: commands, move states, and what a move does to each D-REC.

A move passes locking → applying → unlocking → completed, or locking → releasing → failed
when a D-REC it needs was taken by someone else (see services/moves.py for the passes). Its
D-RECs stay locked until its event is in the outbox (`unlocking`): a recipient cannot move a
D-REC on before the move that gave it to them is recorded, so the events always chain.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import Enum
from typing import Any, ClassVar

from .certificates import DrecSelection, DrecStatus


class MoveStatus(str, Enum):
    LOCKING = "locking"
    APPLYING = "applying"
    RELEASING = "releasing"
    UNLOCKING = "unlocking"
    COMPLETED = "completed"
    FAILED = "failed"


UNFINISHED = (MoveStatus.LOCKING, MoveStatus.APPLYING, MoveStatus.RELEASING, MoveStatus.UNLOCKING)


class MoveKind(str, Enum):
    """Which table of moves: the value names it as storage and events do."""

    TRANSFERS = "transfers"
    REDEMPTIONS = "redemptions"


# -- commands: what a use case takes, built by the edge from its schemas ------------------------
@dataclass(frozen=True)
class TransferDrecs:
    from_account_id: str
    to_account_id: str
    serials: tuple[str, ...] | None = None
    quantity: int | None = None
    selection: DrecSelection | None = None
    # The request as the caller sent it, normalised: what an Idempotency-Key is bound to.
    request: Mapping[str, Any] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class SponsorShare:
    name: str
    share: float


@dataclass(frozen=True)
class RedeemDrecs:
    account_id: str
    beneficiary: str
    purpose: str
    claim_period_start: date | datetime
    claim_period_end: date | datetime
    serials: tuple[str, ...] | None = None
    quantity: int | None = None
    selection: DrecSelection | None = None
    country_of_consumption: str | None = None
    sponsors: tuple[SponsorShare, ...] = ()
    request: Mapping[str, Any] = field(default_factory=dict, compare=False)


# -- records ------------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class Move:
    """A stored move; `locked` and `applied` count the D-RECs each pass has done, in serial order."""

    id: str
    account_id: str  # the account giving the D-RECs up
    serials: tuple[str, ...]
    device_ids: tuple[str, ...]
    status: MoveStatus
    created_at: str
    principal_id: str
    request_sha256: str
    locked: int = 0
    applied: int = 0
    idempotency_key: str | None = None
    completed_at: str | None = None
    failure: Mapping[str, str] | None = None
    event_id: str | None = None  # of its DrecTransferred / DrecRedeemed event, once recorded

    kind: ClassVar[MoveKind]


@dataclass(frozen=True, kw_only=True)
class Transfer(Move):
    from_account_id: str
    to_account_id: str

    kind: ClassVar[MoveKind] = MoveKind.TRANSFERS


@dataclass(frozen=True)
class SponsorRanges:
    name: str
    share: float
    serial_ranges: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class Redemption(Move):
    beneficiary: str
    purpose: str
    claim_period_start: str
    claim_period_end: str
    statement: Mapping[str, Any]
    ledger_key: str
    country_of_consumption: str | None = None
    sponsors: tuple[SponsorRanges, ...] = ()
    token_hashes: frozenset[str] = frozenset()

    kind: ClassVar[MoveKind] = MoveKind.REDEMPTIONS


@dataclass(frozen=True)
class DrecChange:
    """What applying a move does to one D-REC: its holder and status after, and what the move records on it."""

    serial: str
    owner_account_id: str
    status: DrecStatus
    marks: Mapping[str, str] = field(default_factory=dict)


def transfer_changes(move: Transfer, chunk: list[str]) -> list[DrecChange]:
    return [DrecChange(s, move.to_account_id, DrecStatus.ACTIVE, {"last_transfer_id": move.id}) for s in chunk]


def redemption_changes(move: Redemption, chunk: list[str], sponsor_of: Mapping[str, str]) -> list[DrecChange]:
    out = []
    for serial in chunk:
        marks = {"redemption_id": move.id, "beneficiary": move.beneficiary, "redeemed_at": move.created_at}
        if serial in sponsor_of:
            marks["sponsor"] = sponsor_of[serial]
        out.append(DrecChange(serial, move.account_id, DrecStatus.REDEEMED, marks))
    return out
