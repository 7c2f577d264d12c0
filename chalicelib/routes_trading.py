"""Routes for transfers, redemptions and holdings."""

from __future__ import annotations

from chalice import Blueprint, Response

from . import bootstrap, schemas, trade_schemas
from . import request as edge
from .openapi import PAGED, Operation, register
from .services import holdings, transfers
from .services import redemptions as redemption
from .services.ports.trading import Trades
from .web import api, json_response, paging

trading = Blueprint(__name__)

register(
    Operation("post", "/transfers", "Transfer D-RECs by serial or by quantity (header Idempotency-Key optional)",
              trade_schemas.TransferOut, 201, trade_schemas.TransferIn, write=True),
    Operation("get", "/transfers", "An account's transfers, out and in", None, query=PAGED + ("account_id",)),
    Operation("post", "/redemptions", "Redeem D-RECs; returns the retirement statement and its ledger link",
              trade_schemas.RedemptionOut, 201, trade_schemas.RedemptionIn, write=True),
    Operation("get", "/redemptions", "An account's redemptions", None, query=PAGED + ("account_id",)),
    Operation("get", "/redemptions/{redemption_id}", "One retirement statement", trade_schemas.RedemptionOut),
    Operation("get", "/redemptions/{redemption_id}/ledger.csv", "The ledger (text/csv) for a link's token", None,
              query=("token",)),
    Operation("post", "/redemptions/{redemption_id}/ledger-link",
              "A fresh shareable ledger link (with its token) for whoever may act for the redeeming account",
              None, 201, write=True),
    Operation("get", "/accounts/{account_id}/holdings", "D-RECs held, by status, country, device type, vintage",
              trade_schemas.HoldingsOut),
    list_items={"/transfers": trade_schemas.TransferOut, "/redemptions": trade_schemas.RedemptionOut},
)


def _store() -> Trades:
    return bootstrap.container().trades


def _query() -> dict[str, str]:
    return dict(trading.current_request.query_params or {})


def _principal():  # type: ignore[no-untyped-def]
    return edge.principal(trading.current_request)


def _idempotency_key() -> str | None:
    return edge.idempotency_key(trading.current_request)


@trading.route("/transfers", methods=["POST"], cors=True)
@api
def post_transfer():  # type: ignore[no-untyped-def]
    command = schemas.parse(trade_schemas.TransferIn, trading.current_request.raw_body).to_command()
    c = bootstrap.container()
    return json_response(transfers.transfer(c.registry, _store(), _principal(), command, _idempotency_key()),
                         201)


@trading.route("/transfers", methods=["GET"], cors=True)
@api
def get_transfers():  # type: ignore[no-untyped-def]
    q = _query()
    items, cursor = transfers.list_transfers(_store(), q.get("account_id"), *paging(q))
    return json_response({"items": items, "next_cursor": cursor})


@trading.route("/redemptions", methods=["POST"], cors=True)
@api
def post_redemption():  # type: ignore[no-untyped-def]
    command = schemas.parse(trade_schemas.RedemptionIn, trading.current_request.raw_body).to_command()
    c = bootstrap.container()
    return json_response(redemption.redeem(c.registry, _store(), c.ledger_bucket, _principal(), command,
                                           c.settings.public_url, _idempotency_key()), 201)


@trading.route("/redemptions", methods=["GET"], cors=True)
@api
def get_redemptions():  # type: ignore[no-untyped-def]
    q = _query()
    items, cursor = redemption.list_redemptions(_store(), q.get("account_id"), *paging(q),
                                                bootstrap.container().settings.public_url)
    return json_response({"items": items, "next_cursor": cursor})


@trading.route("/redemptions/{redemption_id}", methods=["GET"], cors=True)
@api
def get_redemption(redemption_id: str):  # type: ignore[no-untyped-def]
    return json_response(redemption.get_redemption(_store(), redemption_id, bootstrap.container().settings.public_url))


@trading.route("/redemptions/{redemption_id}/ledger.csv", methods=["GET"], cors=True)
@api
def get_ledger_csv(redemption_id: str):  # type: ignore[no-untyped-def]
    c = bootstrap.container()
    data = redemption.ledger_csv(_store(), c.ledger_bucket, redemption_id, _query().get("token"))
    return Response(body=data.decode("utf-8"), status_code=200,
                    headers={"Content-Type": "text/csv; charset=utf-8", "Cache-Control": "private, no-store"})


@trading.route("/redemptions/{redemption_id}/ledger-link", methods=["POST"], cors=True)
@api
def post_ledger_link(redemption_id: str):  # type: ignore[no-untyped-def]
    c = bootstrap.container()
    return json_response(redemption.new_ledger_link(c.registry, _store(), _principal(), redemption_id,
                                                    c.settings.public_url), 201)


@trading.route("/accounts/{account_id}/holdings", methods=["GET"], cors=True)
@api
def get_holdings(account_id: str):  # type: ignore[no-untyped-def]
    return json_response(holdings.holdings(bootstrap.container().registry, _store(), account_id))

