"""Routes for pulling readings from partners that cannot push (the operator, or the source itself).

The partner protocol is in `pull_schemas`' docstring and the operations' summaries below.
"""

from __future__ import annotations

from chalice import Blueprint, Response

from .. import bootstrap
from ..config import cursor_key
from ..domain.pull import ConfigurePull
from ..services import pull_config
from . import pull_schemas
from .errors import json_response
from .openapi import PAGED, route
from .request import incoming

pull = Blueprint(__name__)

PROTOCOL = ("Every every_minutes the registry sends GET <url>?<cursor_param>=<cursor>&limit=<page_size> with "
            "auth_header and reads a JSON object: the items at items_field, the next cursor at next_cursor_field "
            "(null or absent: caught up). Timeouts 5 s to connect and 30 s to answer, at most 8 MiB, no redirects; "
            "a failing page is retried with backoff (every_minutes x 2^failures, at most a day). Each item goes "
            "through the same checks as POST /readings, with the source as the sender")


@route(pull, "post", "/sources/{source_id}/pull", "Pull readings from a partner (operator or that source): "
       "201 created; the same again 200 unchanged; another 200 replaced. " + PROTOCOL, pull_schemas.PullOut, 201,
       request=pull_schemas.PullIn, write=True, replayed=pull_schemas.PullOut,
       example={"url": "https://partner.example/api/readings", "every_minutes": 15,
                "auth_header": {"name": "Authorization", "value": "Bearer partner-token"},
                "mapping": {"device_id": "meter.registry_id", "period_start": "from", "period_end": "to",
                            "energy_wh": "wh"}, "signed": False})
def post_pull(source_id: str) -> Response:
    rq = incoming(pull)
    principal = rq.principal()
    body = rq.parse(pull_schemas.PullIn)
    c = bootstrap.container()
    command = ConfigurePull(
        **body.model_dump(exclude={"auth_header", "mapping"}), mapping=body.mapping.model_dump(exclude_none=True),
        auth_header=(body.auth_header.name, body.auth_header.value) if body.auth_header else None)
    view = pull_config.configure_pull(
        c.pulls, c.secrets, c.registry, principal, source_id, command, fingerprint_key=cursor_key(),
        parameter_name=lambda source, token: c.settings.parameter("pull", source, f"auth-{token}"),
        check_destination=c.pull_destination_check)
    return json_response(view, 201 if view["change"] == "created" else 200)


@route(pull, "get", "/sources/{source_id}/pull", "The source's pull configuration and where it is (operator or "
       "that source); the auth header's value is never shown", pull_schemas.PullOut, write=True)
def get_pull(source_id: str) -> Response:
    rq = incoming(pull)
    c = bootstrap.container()
    return json_response(pull_config.get_pull(c.pulls, c.registry, rq.principal(), source_id))


@route(pull, "delete", "/sources/{source_id}/pull", "Stop pulling and delete the auth secret (operator or that "
       "source); again: removed false", pull_schemas.PullRemoved, write=True)
def delete_pull(source_id: str) -> Response:
    rq = incoming(pull)
    c = bootstrap.container()
    return json_response(pull_config.remove_pull(c.pulls, c.secrets, c.registry, rq.principal(), source_id))


@route(pull, "get", "/sources/{source_id}/pull/runs", "The source's pull runs, newest first (operator or that "
       "source)", query=PAGED, write=True, items=pull_schemas.PullRunOut)
def get_pull_runs(source_id: str) -> Response:
    rq = incoming(pull)
    c = bootstrap.container()
    limit, cursor = rq.paging()
    return json_response(pull_config.list_runs(c.pulls, c.registry, rq.principal(), source_id, limit, cursor))


@route(pull, "post", "/sources/{source_id}/pull/runs", "Pull now (operator or that source): due at once; a run in "
       "progress is followed by another", pull_schemas.PullDue, 202, write=True)
def post_pull_run(source_id: str) -> Response:
    rq = incoming(pull)
    c = bootstrap.container()
    return json_response(pull_config.pull_now(c.pulls, c.registry, rq.principal(), source_id), 202)
