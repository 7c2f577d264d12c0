"""In-memory trade store (the `Trades` port) with the adapter's conditions, and a fault-injecting wrapper."""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from chalicelib.adapters.drec_store import drec_from_item
from chalicelib.domain.certificates import Drec, DrecSelection, DrecStatus
from chalicelib.domain.counts import group
from chalicelib.domain.ledger.events import Event, NewEvent
from chalicelib.domain.moves import UNFINISHED, DrecChange, Move, MoveKind, MoveStatus
from chalicelib.domain.stores import TransactionRefused
from tests.fakes.ledger import FakeEvents

FAILED_CONDITION = "ConditionalCheckFailed"
# The attributes the drecs table's by_owner_status index holds (infra/resources.py), as active_holdings reads them.
OWNER_INDEX_FIELDS = ("serial", "owner_account_id", "status", "country", "device_type", "offtaker_type", "vintage",
                      "period_start", "locked_by")


class FakeTrades:
    """Moves and the D-RECs they move, in dicts; each pass checks what the DynamoDB transaction checks."""

    def __init__(self, drecs: dict[str, dict[str, Any]] | None = None, events: FakeEvents | None = None) -> None:
        self.drecs_by_serial: dict[str, dict[str, Any]] = drecs if drecs is not None else {}
        self.events = events or FakeEvents()
        self.stored: dict[tuple[MoveKind, str], Move] = {}
        self.lookups: dict[tuple[MoveKind, str, str], str] = {}
        # (kind, account, entry id) -> move id: the `by_account` index, mirrors included.
        self.listing: dict[tuple[MoveKind, str, str], str] = {}

    # -- move records
    def move(self, kind: MoveKind, move_id: str) -> Move | None:
        return self.stored.get((kind, move_id))

    def moves(self, kind: MoveKind, move_ids: Sequence[str]) -> list[Move]:
        return [self.stored[(kind, i)] for i in dict.fromkeys(move_ids) if (kind, i) in self.stored]

    def idempotent_target(self, kind: MoveKind, principal_id: str, idempotency_key: str) -> str | None:
        return self.lookups.get((kind, principal_id, idempotency_key))

    def start(self, move: Move) -> None:
        guard = (move.kind, move.principal_id, move.idempotency_key) if move.idempotency_key else None
        reasons = [FAILED_CONDITION if (move.kind, move.id) in self.stored else None]
        if guard:
            reasons.append(FAILED_CONDITION if guard in self.lookups else None)
        if any(reasons):
            raise TransactionRefused(reasons)
        self.stored[(move.kind, move.id)] = move
        self.listing[(move.kind, move.account_id, move.id)] = move.id
        if guard:
            self.lookups[guard] = move.id

    def set_status(self, move: Move, old: MoveStatus, new: MoveStatus,
                   failure: Mapping[str, str] | None = None) -> bool:
        current = self.stored[(move.kind, move.id)]
        if current.status is not old:
            return False
        extra: dict[str, Any] = {"failure": dict(failure)} if failure is not None else {}
        self._save(dataclasses.replace(current, status=new, **extra))
        return True

    def unfinished(self, kind: MoveKind, started_before: str) -> Iterator[Move]:
        yield from [m for (k, _), m in self.stored.items()
                    if k is kind and m.status in UNFINISHED and m.created_at < started_before]

    def by_account(self, kind: MoveKind, account_id: str, limit: int, cursor: str | None,
                   ) -> tuple[list[Move], str | None]:
        entries = sorted((entry, target) for (k, account, entry), target in self.listing.items()
                         if k is kind and account == account_id)
        start = int(cursor) if cursor else 0
        page = entries[start:start + limit]
        more = str(start + limit) if start + limit < len(entries) else None
        return [self.stored[(kind, target)] for _, target in page], more

    def add_token_hash(self, redemption_id: str, token_hash: str) -> None:
        current = self.stored[(MoveKind.REDEMPTIONS, redemption_id)]
        self._save(dataclasses.replace(current, token_hashes=current.token_hashes | {token_hash}))  # type: ignore

    # -- the passes
    def lock(self, move: Move, serials: Sequence[str], locked_before: int, last: bool) -> None:
        reasons: list[str | None] = [None if self._lockable(s, move.account_id) else FAILED_CONDITION
                                     for s in serials]
        current = self.stored[(move.kind, move.id)]
        ok = current.status is MoveStatus.LOCKING and current.locked == locked_before
        reasons.append(None if ok else FAILED_CONDITION)
        if any(reasons):
            raise TransactionRefused(reasons)
        for serial in serials:
            self.drecs_by_serial[serial]["locked_by"] = move.id
        self._save(dataclasses.replace(current, locked=locked_before + len(serials),
                                       status=MoveStatus.APPLYING if last else current.status))

    def release(self, move: Move, serials: Sequence[str], locked_before: int,
                status: MoveStatus = MoveStatus.RELEASING) -> None:
        current = self.stored[(move.kind, move.id)]
        reasons: list[str | None] = [None if self._locked_by(s, move.id) else FAILED_CONDITION for s in serials]
        ok = current.status is status and current.locked == locked_before
        reasons.append(None if ok else FAILED_CONDITION)
        if any(reasons):
            raise TransactionRefused(reasons)
        for serial in serials:
            del self.drecs_by_serial[serial]["locked_by"]
        self._save(dataclasses.replace(current, locked=locked_before - len(serials)))

    def apply(self, move: Move, changes: Sequence[DrecChange], applied_before: int) -> None:
        current = self.stored[(move.kind, move.id)]
        reasons: list[str | None] = [None if self._locked_by(c.serial, move.id) else FAILED_CONDITION
                                     for c in changes]
        ok = current.status is MoveStatus.APPLYING and current.applied == applied_before
        reasons.append(None if ok else FAILED_CONDITION)
        if any(reasons):
            raise TransactionRefused(reasons)
        for change in changes:
            drec = self.drecs_by_serial[change.serial]
            drec.update({"owner_account_id": change.owner_account_id, "status": change.status.value,
                         "owner_status": f"{change.owner_account_id}#{change.status.value}", **change.marks})
        self._save(dataclasses.replace(current, applied=applied_before + len(changes)))

    def finish(self, move: Move, completed_at: str, mirror_for: str | None, event: NewEvent) -> Event:
        current = self.stored[(move.kind, move.id)]
        if current.status is not MoveStatus.APPLYING or current.applied != len(current.serials):
            raise TransactionRefused([FAILED_CONDITION])
        self._save(dataclasses.replace(current, status=MoveStatus.UNLOCKING, completed_at=completed_at))
        if mirror_for:
            self.listing[(move.kind, mirror_for, f"{move.id}:{mirror_for}")] = move.id
        (stored,) = self.events.append([event])
        return stored

    def record_event(self, move: Move, event: Event) -> None:
        self._save(dataclasses.replace(self.stored[(move.kind, move.id)], event_id=event.event_id))

    def link_event(self, subjects: Sequence[str], event: Event) -> None:
        for subject in subjects:
            self.events.link(subject, event)

    # -- D-RECs
    def drecs(self, serials: Sequence[str]) -> list[Drec]:
        return [drec_from_item(self.drecs_by_serial[s]) for s in dict.fromkeys(serials) if s in self.drecs_by_serial]

    def active_holdings(self, owner: str, selection: DrecSelection) -> Iterator[Drec]:
        for item in list(self.drecs_by_serial.values()):
            drec = drec_from_item(item)
            if drec.owner_account_id == owner and drec.status is DrecStatus.ACTIVE and selection.admits(drec):
                # What the owner index projects: no devices, no document.
                yield drec_from_item({k: item[k] for k in OWNER_INDEX_FIELDS if k in item})

    def holdings(self, owner: str) -> Iterator[Drec]:
        yield from [drec_from_item(i) for i in self.drecs_by_serial.values() if i["owner_account_id"] == owner]

    def holding_counts(self, owner: str) -> dict[str, int]:
        counts: Counter[str] = Counter()
        for drec in self.drecs_by_serial.values():
            if drec["owner_account_id"] == owner:
                counts[drec["status"]] += 1
                counts[group(drec["status"], drec.get("country", ""), drec.get("device_type", ""),
                             drec.get("vintage", ""))] += 1
        return dict(counts)

    # -- helpers
    def _save(self, move: Move) -> None:
        self.stored[(move.kind, move.id)] = move

    def _lockable(self, serial: str, owner: str) -> bool:
        drec = self.drecs_by_serial.get(serial)
        return (drec is not None and drec["owner_account_id"] == owner and drec["status"] == "active"
                and "locked_by" not in drec)

    def _locked_by(self, serial: str, move_id: str) -> bool:
        drec = self.drecs_by_serial.get(serial)
        return drec is not None and drec.get("locked_by") == move_id
