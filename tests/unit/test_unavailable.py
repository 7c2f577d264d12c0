"""A store or chain that does not answer is a 503 with Retry-After in the error schema, not a 500."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError

from chalicelib.api.errors import api
from chalicelib.domain.stores import ChainError


@pytest.mark.parametrize("error", [
    EndpointConnectionError(endpoint_url="http://127.0.0.1:1"),
    ClientError({"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow down"}}, "PutItem"),
    ChainError("anvil did not answer"),
])
def test_a_dependency_down_or_busy_is_a_503_to_retry(error: Exception) -> None:
    def route() -> None:
        raise error

    answer = api(route)()  # type: ignore[arg-type]

    assert answer.status_code == 503 and answer.headers["Retry-After"] == "2"
    assert json.loads(answer.body)["error"]["code"] == "unavailable"


def test_any_other_failure_stays_a_logged_500() -> None:
    def route() -> None:
        raise ClientError({"Error": {"Code": "ValidationException", "Message": "bad"}}, "PutItem")

    assert api(route)().status_code == 500  # type: ignore[arg-type]
