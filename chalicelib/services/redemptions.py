"""Redemptions: D-RECs retired for ever on behalf of a beneficiary, with a retirement statement.

The statement and its CSV ledger are made before anything moves (a claim period
that does not cover the generation, or sponsor shares that do not sum to 1, change
nothing); the ledger is stored in the ledger bucket and its SHA-256 goes into the
statement and the `DrecRedeemed` event, so the chain anchors it. The ledger is
served to whoever holds a link token; only the tokens' SHA-256 are stored, and a
retried request is given a fresh token of its own.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Any

from ..domain.errors import BadInput, Conflict, Forbidden, NotFound
from ..domain.issuance.serials import compress_ranges, expand_range
from ..domain.ledger import events as ev
from ..domain.model import Principal
from ..domain.moves import (
    DrecChange,
    Move,
    MoveKind,
    MoveStatus,
    RedeemDrecs,
    Redemption,
    SponsorRanges,
    redemption_changes,
)
from ..domain.time import iso, now_utc
from ..domain.trading.statements import LedgerRow, allocate_sponsors, retirement_statement
from .access import KeyLookup, account_or_404, require_acting_for
from .holdings import select_drecs
from .idempotency import replay, request_hash, start_or_join
from .moves import Ending, MoveRun, new_move_id, related
from .ports.ledger import Files
from .ports.trading import Trades

# The statement fields kept on the record; serials and the per-D-REC sponsors are kept compactly.
STATEMENT_FIELDS = ("serial_ranges", "total_kwh", "devices_count", "countries", "generation_start",
                    "generation_end", "avoided_co2_kg", "ledger_sha256", "memo")


def ledger_key(redemption_id: str) -> str:
    return f"redemptions/{redemption_id}/ledger.csv"


def ledger_link(public_url: str, redemption_id: str) -> str:
    return f"{public_url.rstrip('/')}/redemptions/{redemption_id}/ledger.csv"


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def sponsor_of(move: Redemption) -> dict[str, str]:
    return {serial: s.name for s in move.sponsors for r in s.serial_ranges for serial in expand_range(r)}


def _changes(move: Move, chunk: list[str]) -> list[DrecChange]:
    assert isinstance(move, Redemption)
    return redemption_changes(move, chunk, sponsor_of(move))


def _ending(move: Move) -> Ending:
    assert isinstance(move, Redemption)
    ids, late = related((move.account_id,), [*move.device_ids, *move.serials], 1)
    statement = move.statement
    body = {"redemption_id": move.id, "account_id": move.account_id,
            "beneficiary": move.beneficiary, "purpose": move.purpose,
            "claim_period_start": move.claim_period_start, "claim_period_end": move.claim_period_end,
            "country_of_consumption": move.country_of_consumption,
            "quantity": len(move.serials), "serial_ranges": statement["serial_ranges"],
            "device_ids": list(move.device_ids), "ledger_sha256": statement["ledger_sha256"],
            "sponsors": [{"name": s.name, "share": s.share, "serial_ranges": list(s.serial_ranges)}
                         for s in move.sponsors]}
    event = ev.NewEvent(ev.DREC_REDEEMED, move.id, move.principal_id, iso(now_utc()), body, related_ids=ids)
    return Ending(event, late_links=late)


def redemption_run(store: Trades) -> MoveRun:
    return MoveRun(store, MoveKind.REDEMPTIONS, _changes, _ending)


def redeem(registry: KeyLookup, store: Trades, ledger_bucket: Files, principal: Principal,
           command: RedeemDrecs, public_url: str, idempotency_key: str | None = None) -> dict[str, Any]:
    """Redeem D-RECs and return the retirement statement, its ledger link carrying a fresh token."""
    request_sha = request_hash(principal, command.request)
    move = replay(store, MoveKind.REDEMPTIONS, principal, idempotency_key, request_sha)
    token = secrets.token_urlsafe(32)
    if move is None:
        move = start_or_join(store, _prepare(registry, store, ledger_bucket, principal, command, public_url,
                                             _token_hash(token), request_sha, idempotency_key))
    assert isinstance(move, Redemption)
    if _token_hash(token) not in move.token_hashes:
        store.add_token_hash(move.id, _token_hash(token))
    done = redemption_run(store).run(move)
    view = redemption_view(done, public_url)
    view["ledger_url"] += f"?token={token}"
    return view


def _prepare(registry: KeyLookup, store: Trades, ledger_bucket: Files, principal: Principal,
             command: RedeemDrecs, public_url: str, token_hash: str, request_sha: str,
             idempotency_key: str | None) -> Redemption:
    """Check everything, write the ledger, and return the new record; nothing else is written."""
    account = account_or_404(registry, command.account_id)
    require_acting_for(principal, account, "redeem D-RECs")
    serials = [d.serial for d in select_drecs(store, command.account_id, command.serials, command.quantity,
                                              command.selection)]
    drecs = sorted(store.drecs(serials), key=lambda d: d.serial)  # whole, for the ledger rows
    sponsors = [(s.name, s.share) for s in command.sponsors]
    allocation = allocate_sponsors(serials, sponsors) if sponsors else {}
    redemption_id = new_move_id("red")
    rows = [LedgerRow.from_drec(d.document, command.beneficiary, allocation.get(d.serial)) for d in drecs]
    statement, ledger = retirement_statement(rows, purpose=command.purpose,
                                             claim_period_start=command.claim_period_start,
                                             claim_period_end=command.claim_period_end,
                                             ledger_url=ledger_link(public_url, redemption_id))
    ledger_bucket.put(ledger_key(redemption_id), ledger, "text/csv")
    kept = statement.to_dict()
    return Redemption(
        id=redemption_id, account_id=command.account_id, serials=tuple(serials),
        device_ids=tuple(sorted({i for d in drecs for i in d.device_ids})),
        beneficiary=command.beneficiary, purpose=command.purpose,
        claim_period_start=kept["claim_period_start"], claim_period_end=kept["claim_period_end"],
        country_of_consumption=command.country_of_consumption,
        sponsors=tuple(SponsorRanges(name, share, tuple(compress_ranges([s for s in serials
                                                                         if allocation[s] == name])))
                       for name, share in sponsors),
        statement={k: kept[k] for k in STATEMENT_FIELDS}, ledger_key=ledger_key(redemption_id),
        token_hashes=frozenset({token_hash}), status=MoveStatus.LOCKING, created_at=iso(now_utc()),
        principal_id=principal.id, request_sha256=request_sha, idempotency_key=idempotency_key)


def redemption_view(move: Move, public_url: str) -> dict[str, Any]:
    """The retirement statement as kept: the ledger link without a token."""
    assert isinstance(move, Redemption)
    out: dict[str, Any] = {
        "redemption_id": move.id, "account_id": move.account_id, "status": move.status.value,
        "serials": list(move.serials), **move.statement, "ledger_url": ledger_link(public_url, move.id),
        "beneficiary": move.beneficiary, "purpose": move.purpose,
        "claim_period_start": move.claim_period_start, "claim_period_end": move.claim_period_end,
        "country_of_consumption": move.country_of_consumption,
        "sponsors": [{"name": s.name, "share": s.share, "serial_ranges": list(s.serial_ranges),
                      "count": sum(len(expand_range(r)) for r in s.serial_ranges)} for s in move.sponsors],
        "created_at": move.created_at, "completed_at": move.completed_at,
    }
    if move.failure:
        out["failure"] = dict(move.failure)
    return out


def _redemption(store: Trades, redemption_id: str) -> Redemption:
    move = store.move(MoveKind.REDEMPTIONS, redemption_id)
    if not isinstance(move, Redemption):
        raise NotFound(f"no redemption {redemption_id!r}", field="redemption_id")
    return move


def get_redemption(store: Trades, redemption_id: str, public_url: str) -> dict[str, Any]:
    return redemption_view(_redemption(store, redemption_id), public_url)


def list_redemptions(store: Trades, account_id: str | None, limit: int, cursor: str | None,
                     public_url: str) -> tuple[list[dict[str, Any]], str | None]:
    if not account_id:
        raise BadInput("account_id is required: the redemptions of which account?", field="account_id")
    moves, next_cursor = store.by_account(MoveKind.REDEMPTIONS, account_id, limit, cursor)
    return [redemption_view(m, public_url) for m in moves], next_cursor


def ledger_csv(store: Trades, ledger_bucket: Files, redemption_id: str, token: str | None) -> bytes:
    """The ledger's bytes, for the holder of a link token."""
    move = _redemption(store, redemption_id)
    if not token:
        raise Forbidden("the ledger needs the token of its link: ?token=...", field="token")
    offered = _token_hash(token)
    if not any(hmac.compare_digest(offered, known) for known in move.token_hashes):
        raise Forbidden("this token does not open this ledger", field="token")
    if move.status is not MoveStatus.COMPLETED:
        raise Conflict(f"redemption {redemption_id} is {move.status.value}, so it has no ledger",
                       field="redemption_id")
    data = ledger_bucket.get(move.ledger_key)
    if data is None:
        raise NotFound(f"the ledger of redemption {redemption_id} is missing from storage", field="redemption_id")
    return data


def new_ledger_link(registry: KeyLookup, store: Trades, principal: Principal, redemption_id: str,
                    public_url: str) -> dict[str, str]:
    """A fresh shareable ledger link for whoever may act for the redeeming account."""
    move = _redemption(store, redemption_id)
    account = account_or_404(registry, move.account_id)
    require_acting_for(principal, account, "share the ledger of its redemptions")
    token = secrets.token_urlsafe(32)
    store.add_token_hash(redemption_id, _token_hash(token))
    return {"redemption_id": redemption_id, "ledger_url": f"{ledger_link(public_url, redemption_id)}?token={token}",
            "ledger_sha256": move.statement["ledger_sha256"]}
