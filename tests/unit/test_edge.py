"""The HTTP edge's own helpers: every route is documented where it is declared; requests read one way."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from chalicelib.domain.errors import BadInput


def test_every_route_is_documented_and_every_operation_is_a_route(aws: Any) -> None:
    # Through the `aws` fixture: importing app names its queues from the test prefix.
    import app
    from chalicelib.api.openapi import openapi_document

    # The portal's pages and the document itself are not operations of the API.
    undocumented = {"/", "/openapi.json", "/portal/{name}", "/portal/{folder}/{name}"}
    routes = {(path, method.lower()) for path, methods in app.app.routes.items() for method in methods
              if path not in undocumented}
    documented = {(path, method) for path, ops in openapi_document()["paths"].items() for method in ops}
    assert routes == documented


def _request(headers: dict[str, str] | None = None, query: dict[str, str] | None = None,
             raw_body: bytes | str | None = None) -> SimpleNamespace:
    return SimpleNamespace(headers=headers or {}, query_params=query, raw_body=raw_body)


def test_a_request_reads_the_same_with_or_without_parts() -> None:
    from chalicelib.api.request import Incoming

    nothing = Incoming(None)
    assert (nothing.query, nothing.body, nothing.api_key, nothing.idempotency_key()) == ({}, b"", None, None)
    assert nothing.viewer() is None
    bare = Incoming(_request())
    assert (bare.query, bare.body, bare.paging()) == ({}, b"", (50, None))
    text = Incoming(_request(query={"limit": "7", "cursor": "c1"}, raw_body='{"a": 1}'))
    assert (text.body, text.paging()) == (b'{"a": 1}', (7, "c1"))


@pytest.mark.parametrize("value", ["", "   ", "k" * 201])
def test_a_blank_or_over_long_idempotency_key_is_refused(value: str) -> None:
    from chalicelib.api.request import Incoming

    with pytest.raises(BadInput) as refused:
        Incoming(_request({"idempotency-key": value})).idempotency_key()
    assert refused.value.field == "Idempotency-Key"
    assert Incoming(_request({"idempotency-key": " k-1 "})).idempotency_key() == "k-1"


@pytest.mark.parametrize("limit", ["0", "1001", "ten", "-1"])
def test_a_limit_out_of_range_is_refused(limit: str) -> None:
    from chalicelib.api.request import paging

    with pytest.raises(BadInput, match="limit"):
        paging({"limit": limit})
