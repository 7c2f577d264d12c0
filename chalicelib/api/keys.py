"""Routes for API keys: rotation by their holder, revocation by the operator."""

from __future__ import annotations

from chalice import Blueprint, Response

from .. import bootstrap
from ..services import keys as key_service
from . import key_schemas, schemas
from .errors import json_response
from .openapi import route
from .request import incoming

keys = Blueprint(__name__)


@route(keys, "post", "/keys/rotate", "A new API key for the caller (a source or an account); the old key answers "
       "401 at once. The operator's key is the DREC_OPERATOR_KEY setting: 422 here", key_schemas.KeyRotated, 201,
       write=True)
def post_rotate() -> Response:
    rq = incoming(keys)
    principal = rq.principal()
    return json_response(key_service.rotate_key(bootstrap.container().keys, principal, rq.api_key or ""), 201)


@route(keys, "post", "/sources/{source_id}/revoke", "Revoke a source (operator): its keys answer 401, its records "
       "stay readable; revoking again answers with the same record", schemas.SourceOut, 200, write=True)
def post_revoke_source(source_id: str) -> Response:
    c = bootstrap.container()
    return json_response(key_service.revoke(c.registry, c.keys, incoming(keys).principal(), "source", source_id))


@route(keys, "post", "/accounts/{account_id}/revoke", "Revoke an account (operator): its keys answer 401, its "
       "records and D-RECs stay readable; revoking again answers with the same record", schemas.AccountOut, 200,
       write=True)
def post_revoke_account(account_id: str) -> Response:
    c = bootstrap.container()
    return json_response(key_service.revoke(c.registry, c.keys, incoming(keys).principal(), "account", account_id))
