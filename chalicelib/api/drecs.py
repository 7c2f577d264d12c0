"""Routes of D-RECs: listed by buyer characteristics, one with its trail, and its trail checked against the chain.

The check (`chalicelib.verify`) reads the API's answers; here it reads them in process from the
same services the routes call, so verifying never calls this API back over HTTP.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from chalice import Blueprint, Response

from .. import bootstrap
from ..domain.errors import BadInput, DomainError
from ..services import certificates, intake, provenance, redemptions
from ..verify import Verifier
from . import schemas
from .errors import INTERNAL, json_response, json_text, page_body, status_of
from .ledger import event_proof, events_page
from .openapi import PAGED, route
from .request import PAGING, incoming, paging

log = logging.getLogger("drec.api")

drecs = Blueprint(__name__)


def drec_detail(c: bootstrap.Container, serial: str) -> dict[str, Any]:
    item = certificates.get_drec(c.drecs, serial)
    events = provenance.list_events(c.events, c.batches, 100, None, subject_id=serial).items
    return certificates.detail(item, events)


@route(drecs, "get", "/drecs", "D-RECs by owner, status and characteristics; "
       + PAGING,
       query=PAGED + ("owner_account_id", "status", "country", "device_type", "offtaker_type", "device_id",
                      "vintage_from", "vintage_to"), items=schemas.DrecOut)
def get_drecs() -> Response:
    q = incoming(drecs).query
    return json_response(page_body(certificates.list_drecs(bootstrap.container().drecs, *paging(q), q)))


@route(drecs, "get", "/drecs/{serial}", "One D-REC: contributions, hourly Wh, events", schemas.DrecOut)
def get_drec(serial: str) -> Response:
    return json_response(drec_detail(bootstrap.container(), serial))


@route(drecs, "get", "/drecs/{serial}/verify", "Check a D-REC's trail against the chain")
def verify_drec(serial: str) -> Response:
    c = bootstrap.container()
    certificates.get_drec(c.drecs, serial)
    if c.chain is None:
        raise BadInput("no chain is configured to verify against", field="serial")
    verifier = Verifier(c.settings.public_url, "", get=in_process_get(c), chain=c.chain)
    return json_response(verifier.verify(serial).to_dict())


def _answer(c: bootstrap.Container, path: str, query: dict[str, str]) -> Any:
    match [unquote(part) for part in path.strip("/").split("/")]:
        case ["drecs", serial]:
            return drec_detail(c, serial)
        case ["events"]:
            return events_page(c, query)
        case ["events", event_id]:
            return provenance.get_event(c.events, c.batches, event_id)
        case ["events", event_id, "proof"]:
            return event_proof(c, event_id)
        case ["readings", reading_id]:
            return intake.get_reading(c.readings, reading_id)
        case ["redemptions", redemption_id]:
            return redemptions.get_redemption(c.trades, redemption_id, c.settings.public_url)
        case ["ledger"]:
            return provenance.ledger_info(c.chain, c.settings)
    raise LookupError(f"GET {path} is not one of the reads a verification makes")


def in_process_get(c: bootstrap.Container) -> Callable[[str], Any]:
    """The verifier's `get`: path → the JSON the route answers; a non-200 answer is a LookupError, as over HTTP."""

    def get(target: str) -> Any:
        url = urlsplit(target)
        try:
            body = _answer(c, url.path, dict(parse_qsl(url.query)))
        except DomainError as error:
            raise LookupError(f"GET {target} answered {status_of(error)}: "
                              f"{json_text({'error': error.to_dict()})[:300]}") from error
        except LookupError:
            raise
        except Exception as exc:
            log.exception("unhandled error reading %s in process", target)
            raise LookupError(f"GET {target} answered 500: {json_text(INTERNAL)}") from exc
        return json.loads(json_text(body))

    return get
