"""Routes for transfers, redemptions and holdings."""

from __future__ import annotations

from chalice import Blueprint, Response

from .. import bootstrap
from ..services import holdings, redemptions, transfers
from . import trade_schemas
from .errors import json_response
from .openapi import PAGED, route, text
from .request import incoming

trading = Blueprint(__name__)

ACCOUNT = text("account_id", "The account whose moves are listed", required=True)


@route(trading, "post", "/transfers", "Transfer D-RECs by serial or by quantity (header Idempotency-Key optional)",
       trade_schemas.TransferOut, 201, request=trade_schemas.TransferIn, write=True,
       example={"from_account_id": "acc-example-seller", "to_account_id": "acc-example-buyer", "quantity": 1})
def post_transfer() -> Response:
    rq = incoming(trading)
    command = rq.parse(trade_schemas.TransferIn).to_command()
    c = bootstrap.container()
    return json_response(transfers.transfer(c.registry, c.trades, rq.principal(), command, rq.idempotency_key()),
                         201)


@route(trading, "get", "/transfers", "An account's transfers, out and in", query=PAGED + (ACCOUNT,),
       items=trade_schemas.TransferOut)
def get_transfers() -> Response:
    rq = incoming(trading)
    items, cursor = transfers.list_transfers(bootstrap.container().trades, rq.query.get("account_id"), *rq.paging())
    return json_response({"items": items, "next_cursor": cursor})


@route(trading, "post", "/redemptions", "Redeem D-RECs; returns the retirement statement and its ledger link",
       trade_schemas.RedemptionOut, 201, request=trade_schemas.RedemptionIn, write=True,
       example={"account_id": "acc-example", "quantity": 1, "beneficiary": "Example Ltd",
                "purpose": "Scope 2 claim", "claim_period_start": "2026-01-01", "claim_period_end": "2026-12-31"})
def post_redemption() -> Response:
    rq, c = incoming(trading), bootstrap.container()
    command = rq.parse(trade_schemas.RedemptionIn).to_command()
    return json_response(redemptions.redeem(c.registry, c.trades, c.ledger_bucket, rq.principal(), command,
                                           c.settings.public_url, rq.idempotency_key()), 201)


@route(trading, "get", "/redemptions", "An account's redemptions", query=PAGED + (ACCOUNT,),
       items=trade_schemas.RedemptionOut)
def get_redemptions() -> Response:
    rq = incoming(trading)
    c = bootstrap.container()
    items, cursor = redemptions.list_redemptions(c.trades, rq.query.get("account_id"), *rq.paging(),
                                                c.settings.public_url)
    return json_response({"items": items, "next_cursor": cursor})


@route(trading, "get", "/redemptions/{redemption_id}", "One retirement statement", trade_schemas.RedemptionOut)
def get_redemption(redemption_id: str) -> Response:
    c = bootstrap.container()
    return json_response(redemptions.get_redemption(c.trades, redemption_id, c.settings.public_url))


@route(trading, "get", "/redemptions/{redemption_id}/ledger.csv", "The ledger (text/csv) for a link's token",
       query=(text("token", "The token of a ledger link", required=True),), response_media="text/csv")
def get_ledger_csv(redemption_id: str) -> Response:
    c = bootstrap.container()
    data = redemptions.ledger_csv(c.trades, c.ledger_bucket, redemption_id, incoming(trading).query.get("token"))
    return Response(body=data.decode("utf-8"), status_code=200,
                    headers={"Content-Type": "text/csv; charset=utf-8", "Cache-Control": "private, no-store"})


@route(trading, "post", "/redemptions/{redemption_id}/ledger-link",
       "A fresh shareable ledger link (with its token) for whoever may act for the redeeming account", None, 201,
       write=True)
def post_ledger_link(redemption_id: str) -> Response:
    c = bootstrap.container()
    return json_response(redemptions.new_ledger_link(c.registry, c.trades, incoming(trading).principal(),
                                                    redemption_id, c.settings.public_url), 201)


@route(trading, "get", "/accounts/{account_id}/holdings", "D-RECs held, by status, country, device type, vintage",
       trade_schemas.HoldingsOut)
def get_holdings(account_id: str) -> Response:
    c = bootstrap.container()
    return json_response(holdings.holdings(c.registry, c.trades, account_id))
