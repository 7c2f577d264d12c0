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

from ..adapters.s3 import S3Bucket
from ..adapters.trade_store import COMPLETED, LOCKING, DynamoTrades
from ..api.trade_schemas import RedemptionIn
from ..domain.errors import BadInput, Conflict, Forbidden, NotFound
from ..domain.issuance.serials import compress_ranges, expand_range
from ..domain.ledger import events as ev
from ..domain.model import Principal
from ..domain.time import iso, now_utc
from ..domain.trading.statements import LedgerRow, allocate_sponsors, retirement_statement
from .access import KeyLookup, account_or_404, require_acting_for
from .trading import (
    Ending,
    MoveRun,
    new_move_id,
    related,
    replay,
    request_hash,
    select_drecs,
    start_or_join,
)

# The statement fields kept on the record; serials and the per-D-REC sponsors are kept compactly.
STATEMENT_FIELDS = ("serial_ranges", "total_kwh", "devices_count", "countries", "generation_start",
                    "generation_end", "avoided_co2_kg", "ledger_sha256", "memo")


def ledger_key(redemption_id: str) -> str:
    return f"redemptions/{redemption_id}/ledger.csv"


def ledger_link(public_url: str, redemption_id: str) -> str:
    return f"{public_url.rstrip('/')}/redemptions/{redemption_id}/ledger.csv"


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def sponsor_of(record: dict[str, Any]) -> dict[str, str]:
    return {serial: s["name"] for s in record.get("sponsors", []) for r in s["serial_ranges"]
            for serial in expand_range(r)}


def _changes(record: dict[str, Any], chunk: list[str]) -> list[tuple[str, dict[str, Any]]]:
    owner, sponsors = record["account_id"], sponsor_of(record)
    out = []
    for serial in chunk:
        fields: dict[str, Any] = {"status": "redeemed", "owner_status": f"{owner}#redeemed",
                                  "redemption_id": record["id"], "beneficiary": record["beneficiary"],
                                  "redeemed_at": record["created_at"]}
        if serial in sponsors:
            fields["sponsor"] = sponsors[serial]
        out.append((serial, fields))
    return out


def _ending(record: dict[str, Any]) -> Ending:
    ids, late = related((record["account_id"],), [*record["device_ids"], *record["serials"]], 1)
    statement = record["statement"]
    body = {"redemption_id": record["id"], "account_id": record["account_id"],
            "beneficiary": record["beneficiary"], "purpose": record["purpose"],
            "claim_period_start": record["claim_period_start"], "claim_period_end": record["claim_period_end"],
            "country_of_consumption": record.get("country_of_consumption"),
            "quantity": len(record["serials"]), "serial_ranges": statement["serial_ranges"],
            "device_ids": record["device_ids"], "ledger_sha256": statement["ledger_sha256"],
            "sponsors": [{"name": s["name"], "share": s["share"], "serial_ranges": s["serial_ranges"]}
                         for s in record.get("sponsors", [])]}
    event = ev.NewEvent(ev.DREC_REDEEMED, record["id"], record["principal_id"], iso(now_utc()), body,
                        related_ids=ids)
    return Ending([], event, late)


def redemption_run(store: DynamoTrades) -> MoveRun:
    return MoveRun(store, "redemptions", _changes, _ending)


def redeem(registry: KeyLookup, store: DynamoTrades, ledger_bucket: S3Bucket, principal: Principal,
           command: RedemptionIn, public_url: str, idempotency_key: str | None = None) -> dict[str, Any]:
    """Redeem D-RECs and return the retirement statement, its ledger link carrying a fresh token."""
    request_sha = request_hash(principal, command.model_dump(mode="json"))
    record = replay(store, "redemptions", principal, idempotency_key, request_sha)
    token = secrets.token_urlsafe(32)
    if record is None:
        record = start_or_join(store, "redemptions", _prepare(registry, store, ledger_bucket, principal, command,
                                                               public_url, _token_hash(token), request_sha,
                                                               idempotency_key), principal, idempotency_key)
    if _token_hash(token) not in record.get("token_hashes", set()):
        store.add_token_hash(record["id"], _token_hash(token))
    done = redemption_run(store).run(record)
    view = redemption_view(done, public_url)
    view["ledger_url"] += f"?token={token}"
    return view


def _prepare(registry: KeyLookup, store: DynamoTrades, ledger_bucket: S3Bucket, principal: Principal,
             command: RedemptionIn, public_url: str, token_hash: str, request_sha: str,
             idempotency_key: str | None) -> dict[str, Any]:
    """Check everything, write the ledger, and return the new record; nothing else is written."""
    account = account_or_404(registry, command.account_id)
    require_acting_for(principal, account, "redeem D-RECs")
    serials = [d["serial"] for d in select_drecs(store, command.account_id, command.serials, command.quantity,
                                                 command.filter)]
    drecs = sorted(store.drecs(serials), key=lambda d: d["serial"])  # whole, for the ledger rows
    sponsors = [(s.name, s.share) for s in command.sponsors or []]
    allocation = allocate_sponsors(serials, sponsors) if sponsors else {}
    redemption_id = new_move_id("red")
    rows = [LedgerRow.from_drec(d, command.beneficiary, allocation.get(d["serial"])) for d in drecs]
    statement, ledger = retirement_statement(rows, purpose=command.purpose,
                                             claim_period_start=command.claim_period_start,
                                             claim_period_end=command.claim_period_end,
                                             ledger_url=ledger_link(public_url, redemption_id))
    ledger_bucket.put(ledger_key(redemption_id), ledger, "text/csv")
    kept = statement.to_dict()
    return {
        "id": redemption_id, "account_id": command.account_id, "serials": serials,
        "device_ids": sorted({i for d in drecs for i in d.get("device_ids", [])}),
        "beneficiary": command.beneficiary, "purpose": command.purpose,
        "claim_period_start": kept["claim_period_start"], "claim_period_end": kept["claim_period_end"],
        "country_of_consumption": command.country_of_consumption,
        "sponsors": [{"name": name, "share": share,
                      "serial_ranges": compress_ranges([s for s in serials if allocation[s] == name])}
                     for name, share in sponsors],
        "statement": {k: kept[k] for k in STATEMENT_FIELDS}, "ledger_key": ledger_key(redemption_id),
        "token_hashes": {token_hash}, "status": LOCKING, "locked": 0, "applied": 0,
        "created_at": iso(now_utc()), "principal_id": principal.id, "request_sha256": request_sha,
        "idempotency_key": idempotency_key,
    }


def redemption_view(record: dict[str, Any], public_url: str) -> dict[str, Any]:
    """The retirement statement as kept: the ledger link without a token."""
    statement = record["statement"]
    out: dict[str, Any] = {
        "redemption_id": record["id"], "account_id": record["account_id"], "status": record["status"],
        "serials": record["serials"], **statement, "ledger_url": ledger_link(public_url, record["id"]),
        "beneficiary": record["beneficiary"], "purpose": record["purpose"],
        "claim_period_start": record["claim_period_start"], "claim_period_end": record["claim_period_end"],
        "country_of_consumption": record.get("country_of_consumption"),
        "sponsors": [{**s, "count": sum(len(expand_range(r)) for r in s["serial_ranges"])}
                     for s in record.get("sponsors", [])],
        "created_at": record["created_at"], "completed_at": record.get("completed_at"),
    }
    if record.get("failure"):
        out["failure"] = record["failure"]
    return out


def get_redemption(store: DynamoTrades, redemption_id: str, public_url: str) -> dict[str, Any]:
    record = store.record("redemptions", redemption_id)
    if record is None or "mirror_of" in record:
        raise NotFound(f"no redemption {redemption_id!r}", field="redemption_id")
    return redemption_view(record, public_url)


def list_redemptions(store: DynamoTrades, account_id: str | None, limit: int, cursor: str | None,
                     public_url: str) -> tuple[list[dict[str, Any]], str | None]:
    if not account_id:
        raise BadInput("account_id is required: the redemptions of which account?", field="account_id")
    page = store.by_account("redemptions", account_id, limit, cursor)
    return [redemption_view(r, public_url) for r in page.items], page.next_cursor


def ledger_csv(store: DynamoTrades, ledger_bucket: S3Bucket, redemption_id: str, token: str | None) -> bytes:
    """The ledger's bytes, for the holder of a link token."""
    record = store.record("redemptions", redemption_id)
    if record is None or "mirror_of" in record:
        raise NotFound(f"no redemption {redemption_id!r}", field="redemption_id")
    if not token:
        raise Forbidden("the ledger needs the token of its link: ?token=...", field="token")
    offered = _token_hash(token)
    if not any(hmac.compare_digest(offered, known) for known in record.get("token_hashes", set())):
        raise Forbidden("this token does not open this ledger", field="token")
    if record["status"] != COMPLETED:
        raise Conflict(f"redemption {redemption_id} is {record['status']}, so it has no ledger", field="redemption_id")
    data = ledger_bucket.get(record["ledger_key"])
    if data is None:
        raise NotFound(f"the ledger of redemption {redemption_id} is missing from storage", field="redemption_id")
    return data



def new_ledger_link(registry: KeyLookup, store: DynamoTrades, principal: Principal, redemption_id: str,
                    public_url: str) -> dict[str, str]:
    """A fresh shareable ledger link for whoever may act for the redeeming account."""
    record = store.record("redemptions", redemption_id)
    if record is None or "mirror_of" in record:
        raise NotFound(f"no redemption {redemption_id!r}", field="redemption_id")
    account = account_or_404(registry, record["account_id"])
    require_acting_for(principal, account, "share the ledger of its redemptions")
    token = secrets.token_urlsafe(32)
    store.add_token_hash(redemption_id, _token_hash(token))
    return {"redemption_id": redemption_id, "ledger_url": f"{ledger_link(public_url, redemption_id)}?token={token}",
            "ledger_sha256": record["statement"]["ledger_sha256"]}
