"""Routes for API keys: rotation by their holder, revocation by the operator."""

from __future__ import annotations

from chalice import Blueprint

from . import bootstrap, key_schemas, schemas
from . import request as edge
from .adapters.key_store import DynamoKeys
from .openapi import Operation, register
from .services import keys as key_service
from .web import api, json_response

keys = Blueprint(__name__)

register(
    Operation("post", "/keys/rotate", "A new API key for the caller (a source or an account); the old key answers "
              "401 at once. The operator's key is the DREC_OPERATOR_KEY setting: 422 here",
              key_schemas.KeyRotated, 201, write=True),
    Operation("post", "/sources/{source_id}/revoke", "Revoke a source (operator): its keys answer 401, its records "
              "stay readable; revoking again answers with the same record", schemas.SourceOut, 200, write=True),
    Operation("post", "/accounts/{account_id}/revoke", "Revoke an account (operator): its keys answer 401, its "
              "records and D-RECs stay readable; revoking again answers with the same record",
              schemas.AccountOut, 200, write=True),
)


def _keys() -> DynamoKeys:
    c = bootstrap.container()
    return DynamoKeys(c.client("dynamodb"), c.settings.name)


@keys.route("/keys/rotate", methods=["POST"], cors=True)
@api
def post_rotate():  # type: ignore[no-untyped-def]
    request = keys.current_request
    principal = edge.principal(request)
    return json_response(key_service.rotate_key(_keys(), principal, edge.api_key(request) or ""), 201)


@keys.route("/sources/{source_id}/revoke", methods=["POST"], cors=True)
@api
def post_revoke_source(source_id: str):  # type: ignore[no-untyped-def]
    c = bootstrap.container()
    return json_response(key_service.revoke(c.registry, _keys(), edge.principal(keys.current_request), "source",
                                            source_id))


@keys.route("/accounts/{account_id}/revoke", methods=["POST"], cors=True)
@api
def post_revoke_account(account_id: str):  # type: ignore[no-untyped-def]
    c = bootstrap.container()
    return json_response(key_service.revoke(c.registry, _keys(), edge.principal(keys.current_request), "account",
                                            account_id))
