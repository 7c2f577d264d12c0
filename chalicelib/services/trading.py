"""Transfers: D-RECs change hands atomically and exactly once, whatever the retries.

`MoveRun` drives a stored move record (transfer or redemption) through the lock and
apply passes of `adapters.trade_store` to `completed`, or, when a D-REC was taken by
someone else, releases the locks it holds and ends `failed`: never half done. A
request with an `Idempotency-Key` header stores a guard naming its record; the same
key finds the same record, so a retry resumes the move where it stopped and answers
as the first request did. Without the header every request is a new move: two equal
orders are two orders (a body is not an identity). A move nobody retries is finished
by the sweep (`resume_stale`), key or no key.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any
from uuid import uuid4

from ..adapters.dynamo import MAX_TRANSACTION_ITEMS, Page, TransactionRefused
from ..adapters.trade_store import (
    APPLYING,
    CHUNK,
    COMPLETED,
    FAILED,
    LOCKING,
    RELEASING,
    DynamoTrades,
    idempotency_lookup,
)
from ..api.trade_schemas import DrecFilter, TransferIn
from ..domain.errors import BadInput, Conflict, NotFound, RuleBroken
from ..domain.issuance.serials import compress_ranges
from ..domain.ledger import events as ev
from ..domain.ledger.canonical import canonical_json
from ..domain.model import Principal
from ..domain.time import iso, now_utc
from .access import KeyLookup, account_or_404, require_acting_for

# One request moves at most this many D-RECs: the move record (its serial list) stays
# well under DynamoDB's 400 KB item limit.
MAX_DRECS_PER_REQUEST = 5000
ATTEMPTS = 50
CONDITION_FAILED = "ConditionalCheckFailed"

Changes = Callable[[dict[str, Any], list[str]], list[tuple[str, dict[str, Any]]]]


@dataclass(frozen=True)
class Ending:
    """What the final transaction writes besides the record: extra items and the event."""

    items: list[dict[str, Any]]
    event: ev.NewEvent
    # Subjects the event's transaction had no room to relate; linked right after it.
    late_links: tuple[str, ...] = ()


def new_move_id(prefix: str) -> str:
    """Time-ordered, so an account's moves list oldest first."""
    return f"{prefix}-{now_utc():%Y%m%d%H%M%S}-{uuid4().hex[:12]}"


def request_hash(principal: Principal, body: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_json({"principal": principal.id, "body": body})).hexdigest()


def related(fixed: Sequence[str], extra: Sequence[str], items: int) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Related ids for an event committed with `items` other items: all when they fit, else `fixed` only."""
    room = MAX_TRANSACTION_ITEMS - items - 3  # the seq counter, the event, its own link
    everything = tuple(dict.fromkeys([*fixed, *extra]))
    if len(everything) <= room:
        return everything, ()
    return tuple(fixed), tuple(s for s in everything if s not in fixed)


class MoveRun:
    """Drives one move record to `completed` (returned) or `failed` (raised as Conflict)."""

    def __init__(self, store: DynamoTrades, logical: str, changes: Changes,
                 ending: Callable[[dict[str, Any]], Ending]) -> None:
        self.store = store
        self.logical = logical
        self.changes = changes
        self.ending = ending

    def run(self, record: dict[str, Any]) -> dict[str, Any]:
        for _ in range(ATTEMPTS):
            status = record["status"]
            if status == COMPLETED:
                return record
            if status == FAILED:
                failure = record.get("failure") or {}
                raise Conflict(failure.get("message", f"{record['id']} failed; nothing was moved"),
                               field=failure.get("field"))
            if status == LOCKING:
                self._lock(record)
            elif status == RELEASING:
                self._release(record)
            elif status == APPLYING:
                self._apply(record)
            fresh = self.store.record(self.logical, record["id"])
            if fresh is None:
                raise NotFound(f"no {self.logical[:-1]} {record['id']!r}")
            record = fresh
        raise Conflict(f"{record['id']} is busy with another writer; it will be finished by a retry with the "
                       "same Idempotency-Key or, without one, by the sweep within minutes")

    def _lock(self, record: dict[str, Any]) -> None:
        serials, locked = record["serials"], int(record["locked"])
        while locked < len(serials):
            chunk = serials[locked:locked + CHUNK]
            try:
                self.store.lock(self.logical, record["id"], record["account_id"], chunk, locked,
                                locked + len(chunk) == len(serials))
            except TransactionRefused as refused:
                if refused.reasons[-1]:
                    return  # another writer of this record moved it on: re-read it
                taken = [s for s, reason in zip(chunk, refused.reasons) if reason == CONDITION_FAILED]
                if taken:
                    failure = refusal(self.store, taken[0], record["account_id"], self.logical)
                    self.store.set_status(self.logical, record["id"], LOCKING, RELEASING, {"failure": failure})
                return
            locked += len(chunk)

    def _release(self, record: dict[str, Any]) -> None:
        serials, locked = record["serials"], int(record["locked"])
        while locked > 0:
            chunk = serials[max(0, locked - CHUNK):locked]
            try:
                self.store.release(self.logical, record["id"], chunk, locked)
            except TransactionRefused:
                return
            locked -= len(chunk)
        self.store.set_status(self.logical, record["id"], RELEASING, FAILED)

    def _apply(self, record: dict[str, Any]) -> None:
        serials, applied = record["serials"], int(record["applied"])
        while applied < len(serials):
            chunk = serials[applied:applied + CHUNK]
            try:
                self.store.apply(self.logical, record["id"], self.changes(record, chunk), applied)
            except TransactionRefused:
                return
            applied += len(chunk)
        ending = self.ending(record)
        try:
            stored = self.store.finish(self.logical, record["id"], len(serials), iso(now_utc()), ending.items,
                                       ending.event)
        except TransactionRefused:
            return
        if ending.late_links:
            self.store.link_event(ending.late_links, stored.seq)
        self.store.record_event(self.logical, record["id"], stored.seq)


def resume_stale(store: DynamoTrades, run: MoveRun, older_than_s: float = 300) -> dict[str, int]:
    """Finish moves whose request died and was never retried, so their D-RECs do not stay locked."""
    before = iso(now_utc() - timedelta(seconds=older_than_s))
    counts = {"completed": 0, "failed": 0}
    for record in store.unfinished(run.logical, before):
        try:
            run.run(record)
            counts["completed"] += 1
        except Conflict:
            counts["failed"] += 1
    return counts


def refusal(store: DynamoTrades, serial: str, owner: str, logical: str) -> dict[str, str]:
    """Why `serial` could not be locked for a move out of `owner`, as the failure the caller sees."""
    drec = store.drecs([serial])
    verb = "transferred" if logical == "transfers" else "redeemed"
    if not drec:
        message = f"no D-REC {serial!r}"
    elif drec[0]["status"] == "redeemed":
        message = f"D-REC {serial} is already redeemed and can never move again"
    elif drec[0]["owner_account_id"] != owner:
        message = f"D-REC {serial} is no longer held by account {owner}"
    else:
        message = f"D-REC {serial} is being moved by {drec[0].get('locked_by')}"
    return {"message": f"{message}; nothing was {verb}", "field": "serials", "serial": serial}


def select_drecs(store: DynamoTrades, owner: str, serials: list[str] | None, quantity: int | None,
                 drec_filter: DrecFilter | None) -> list[dict[str, Any]]:
    """The D-RECs a request names (or the oldest `quantity` matching `drec_filter`), in serial order.

    Raises on any problem before anything is written.
    """
    if (serials is None) == (quantity is None):
        raise BadInput("give either serials or quantity, not both or neither", field="serials")
    if serials is not None:
        if drec_filter is not None:
            raise BadInput("filter selects D-RECs for a quantity; with explicit serials leave it out", field="filter")
        return _named(store, owner, serials)
    assert quantity is not None
    if quantity > MAX_DRECS_PER_REQUEST:
        raise BadInput(f"at most {MAX_DRECS_PER_REQUEST} D-RECs per request", field="quantity")
    f = drec_filter or DrecFilter()
    filters = {"country": f.country, "device_type": f.device_type, "offtaker_type": f.offtaker_type}
    vintage = (f.vintage or f.vintage_from, f.vintage or f.vintage_to)
    free = [d for d in store.active_holdings(owner, filters, vintage) if "locked_by" not in d]
    if len(free) < quantity:
        raise RuleBroken(f"quantity {quantity} is more than the {len(free)} active D-RECs account {owner} holds "
                         "that match the filter; nothing was moved", field="quantity")
    oldest = sorted(free, key=lambda d: (d["period_start"], d["serial"]))[:quantity]
    return sorted(oldest, key=lambda d: d["serial"])


def _named(store: DynamoTrades, owner: str, serials: list[str]) -> list[dict[str, Any]]:
    if len(set(serials)) != len(serials):
        twice = next(s for s, n in Counter(serials).items() if n > 1)
        raise BadInput(f"D-REC {twice} is named twice", field="serials")
    if len(serials) > MAX_DRECS_PER_REQUEST:
        raise BadInput(f"at most {MAX_DRECS_PER_REQUEST} D-RECs per request", field="serials")
    found = {d["serial"]: d for d in store.drecs(serials)}
    for serial in serials:
        drec = found.get(serial)
        if drec is None:
            raise NotFound(f"no D-REC {serial!r}", field="serials")
        if drec["status"] == "redeemed":
            raise Conflict(f"D-REC {serial} is already redeemed and can never move again", field="serials")
        if drec["owner_account_id"] != owner:
            raise Conflict(f"D-REC {serial} is held by another account, not {owner}", field="serials")
        if drec.get("locked_by"):
            raise Conflict(f"D-REC {serial} is being moved by {drec['locked_by']}; try again later", field="serials")
    return [found[s] for s in sorted(serials)]


def replay(store: DynamoTrades, logical: str, principal: Principal, idempotency_key: str | None,
           request_sha: str) -> dict[str, Any] | None:
    """The move this caller's `idempotency_key` already started (to resume, or to answer again), or None."""
    if idempotency_key is None:
        return None
    existing = store.idempotent_target(idempotency_lookup(logical, principal.id, idempotency_key))
    if not existing:
        return None
    record = store.record(logical, existing)
    if record is None:
        raise Conflict("the Idempotency-Key names a request that was never stored; use a new key",
                       field="Idempotency-Key")
    _same_request(record, request_sha)
    return record


def _same_request(record: dict[str, Any], request_sha: str) -> None:
    if record["request_sha256"] != request_sha:
        raise RuleBroken(f"this Idempotency-Key was used for another request ({record['id']}); send that "
                         "request again to get its answer, or use a new key for a new request",
                         field="Idempotency-Key")


def start_or_join(store: DynamoTrades, logical: str, record: dict[str, Any], principal: Principal,
                  idempotency_key: str | None) -> dict[str, Any]:
    """Store a new move record; when a concurrent request with the same key won, its record."""
    lookup_key = idempotency_lookup(logical, principal.id, idempotency_key) if idempotency_key else None
    try:
        store.start(logical, record, lookup_key)
        return record
    except TransactionRefused as refused:
        winner = store.idempotent_target(lookup_key) if lookup_key else None
        found = store.record(logical, winner) if winner else None
        if found is None:
            raise Conflict("a request with this Idempotency-Key is in progress; retry it",
                           field="Idempotency-Key") from refused
        _same_request(found, record["request_sha256"])
        return found


# -- transfers --------------------------------------------------------------------------------
def _transfer_changes(record: dict[str, Any], chunk: list[str]) -> list[tuple[str, dict[str, Any]]]:
    to = record["to_account_id"]
    return [(s, {"owner_account_id": to, "owner_status": f"{to}#active", "last_transfer_id": record["id"]})
            for s in chunk]


def _transfer_ending(store: DynamoTrades) -> Callable[[dict[str, Any]], Ending]:
    def ending(record: dict[str, Any]) -> Ending:
        items = [store.mirror("transfers", record["id"], record["to_account_id"])]
        ids, late = related((record["from_account_id"], record["to_account_id"]),
                            [*record["device_ids"], *record["serials"]], len(items) + 1)
        body = {"transfer_id": record["id"], "from_account_id": record["from_account_id"],
                "to_account_id": record["to_account_id"], "quantity": len(record["serials"]),
                "serial_ranges": compress_ranges(record["serials"]), "device_ids": record["device_ids"]}
        event = ev.NewEvent(ev.DREC_TRANSFERRED, record["id"], record["principal_id"], iso(now_utc()), body,
                            related_ids=ids)
        return Ending(items, event, late)

    return ending


def transfer_run(store: DynamoTrades) -> MoveRun:
    return MoveRun(store, "transfers", _transfer_changes, _transfer_ending(store))


def transfer(registry: KeyLookup, store: DynamoTrades, principal: Principal, command: TransferIn,
             idempotency_key: str | None = None) -> dict[str, Any]:
    """Move D-RECs from one account to another; the same Idempotency-Key again returns the same transfer."""
    request_sha = request_hash(principal, command.model_dump(mode="json"))
    record = replay(store, "transfers", principal, idempotency_key, request_sha)
    if record is None:
        sender = account_or_404(registry, command.from_account_id, "from_account_id")
        account_or_404(registry, command.to_account_id, "to_account_id")
        require_acting_for(principal, sender, "transfer D-RECs")
        if command.from_account_id == command.to_account_id:
            raise BadInput("from_account_id and to_account_id are the same account", field="to_account_id")
        drecs = select_drecs(store, command.from_account_id, command.serials, command.quantity, command.filter)
        record = start_or_join(store, "transfers", {
            "id": new_move_id("trf"), "account_id": command.from_account_id,
            "from_account_id": command.from_account_id, "to_account_id": command.to_account_id,
            "serials": [d["serial"] for d in drecs],
            "device_ids": sorted({i for d in drecs for i in d.get("device_ids", [])}),
            "status": LOCKING, "locked": 0, "applied": 0, "created_at": iso(now_utc()),
            "principal_id": principal.id, "request_sha256": request_sha, "idempotency_key": idempotency_key,
        }, principal, idempotency_key)
    return transfer_view(transfer_run(store).run(record))


def transfer_view(record: dict[str, Any]) -> dict[str, Any]:
    out = {"transfer_id": record["id"], "from_account_id": record["from_account_id"],
           "to_account_id": record["to_account_id"], "status": record["status"],
           "quantity": len(record["serials"]), "serials": record["serials"],
           "serial_ranges": compress_ranges(record["serials"]), "created_at": record["created_at"],
           "completed_at": record.get("completed_at")}
    if record.get("failure"):
        out["failure"] = record["failure"]
    return out


def list_transfers(store: DynamoTrades, account_id: str | None, limit: int, cursor: str | None) -> Page:
    if not account_id:
        raise BadInput("account_id is required: the transfers of which account?", field="account_id")
    page = store.by_account("transfers", account_id, limit, cursor)
    return Page([transfer_view(r) for r in page.items], page.next_cursor)


# -- holdings -----------------------------------------------------------------------------------
def holdings(registry: KeyLookup, store: DynamoTrades, account_id: str) -> dict[str, Any]:
    """Counts of the account's D-RECs (1 kWh each) by status, country, device type and vintage."""
    account_or_404(registry, account_id)
    groups: Counter[tuple[str, str, str, str]] = Counter()
    for drec in store.holdings(account_id):
        groups[(drec["status"], drec["country"], drec["device_type"], drec["vintage"])] += 1
    totals: Counter[str] = Counter()
    for (status, *_), count in groups.items():
        totals[status] += count
    return {"account_id": account_id, "active": totals["active"], "redeemed": totals["redeemed"],
            "groups": [{"status": s, "country": c, "device_type": t, "vintage": v, "count": n}
                       for (s, c, t, v), n in sorted(groups.items())]}
