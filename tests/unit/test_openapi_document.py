"""The published document says what the server enforces, so a schema-driven client is not refused for a
request the schema allows (400 means "does not match the document"; rules beyond it are 422)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from chalicelib.api.schemas import NO_CONTROL_CHARACTERS, TINY, ReadingIn, SourceIn
from chalicelib.api.trade_schemas import RedemptionIn, TransferIn
from chalicelib.domain.errors import BadInput, RuleBroken
from tests.conftest import PREFIX


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    from chalicelib.api.openapi import openapi_document

    # The app's queue names are fixed when it is first imported: with the tests' prefix, as under `aws`,
    # so a later test that delivers queued messages (tests.conftest.pump) finds its queues.
    with pytest.MonkeyPatch.context() as env:
        env.setenv("DREC_PREFIX", PREFIX)
        import app  # noqa: F401  (the blueprints declare the operations)
    return openapi_document()


def _params(doc: dict[str, Any], path: str, method: str = "get") -> dict[str, dict[str, Any]]:
    return {p["name"]: p for p in doc["paths"][path][method].get("parameters", [])}


def test_the_document_is_valid_openapi(doc: dict[str, Any]) -> None:
    from openapi_spec_validator import validate

    validate(doc)


def test_every_list_publishes_its_limit_and_a_cursor_of_the_issued_shape(doc: dict[str, Any]) -> None:
    from chalicelib.adapters.dynamo import sign_cursor

    lists = [path for path, ops in doc["paths"].items() if "get" in ops and "limit" in _params(doc, path)]
    assert {"/sources", "/accounts", "/devices", "/drecs", "/events", "/readings", "/transfers"} <= set(lists)
    issued = sign_cursor('{"id": {"S": "src-1"}}', "sources")
    for path in lists:
        params = _params(doc, path)
        assert params["limit"]["schema"] == {"type": "integer", "minimum": 1, "maximum": 1000, "default": 50}
        assert re.fullmatch(params["cursor"]["schema"]["pattern"].strip("^$"), issued)


def test_an_account_filter_is_required_where_the_server_requires_it(doc: dict[str, Any]) -> None:
    for path in ("/transfers", "/redemptions"):
        assert _params(doc, path)["account_id"]["required"] is True
    assert _params(doc, "/devices")["owner_account_id"]["schema"]["minLength"] == 1


def test_enumerated_filters_are_enums(doc: dict[str, Any]) -> None:
    assert _params(doc, "/drecs")["status"]["schema"]["enum"] == ["active", "redeemed"]
    assert "flagged" in _params(doc, "/readings")["status"]["schema"]["enum"]
    assert "DrecIssued" in _params(doc, "/events")["type"]["schema"]["enum"]


def test_the_event_listing_publishes_its_shards(doc: dict[str, Any]) -> None:
    from chalicelib.config import event_shards

    shard = _params(doc, "/events")["shard"]["schema"]
    assert shard == {"type": "integer", "minimum": 0, "maximum": event_shards() - 1, "default": 0}
    event = doc["components"]["schemas"]["EventOut"]
    assert {"event_id", "shard", "seq"} <= set(event["required"])
    assert "event_shards" in doc["components"]["schemas"]["LedgerOut"]["properties"]


def test_every_body_route_documents_413_and_415_and_every_write_its_auth_errors(doc: dict[str, Any]) -> None:
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            codes = set(op["responses"])
            if method == "post":
                assert {"413", "415"} <= codes, (path, method)
            if op.get("security") == [{"ApiKey": []}]:
                assert {"401", "403", "409", "422"} <= codes, (path, method)
            assert "400" in codes


@pytest.mark.parametrize("model", [TransferIn, RedemptionIn])
def test_serials_or_quantity_is_one_of_the_two(model: Any) -> None:
    from jsonschema import Draft202012Validator

    schema = model.model_json_schema()
    validator = Draft202012Validator(schema)
    base = {"from_account_id": "a", "to_account_id": "b"} if model is TransferIn else {
        "account_id": "a", "beneficiary": "b", "purpose": "p", "claim_period_start": "2026-01-01",
        "claim_period_end": "2026-12-31"}
    assert validator.is_valid({**base, "quantity": 3})
    assert validator.is_valid({**base, "serials": ["S-1"]})
    assert not validator.is_valid({**base, "quantity": 3, "serials": ["S-1"]})
    assert not validator.is_valid(base)
    assert not validator.is_valid({**base, "serials": ["S-1"], "filter": {"country": "KE"}})
    assert not validator.is_valid({**base, "serials": ["S-1", "S-1"]})
    assert not validator.is_valid({**base, "quantity": 5001})


def test_strict_strings_and_numbers_publish_what_clean_refuses() -> None:
    source = SourceIn.model_json_schema()["properties"]["name"]
    assert source["pattern"] == NO_CONTROL_CHARACTERS
    assert re.fullmatch(NO_CONTROL_CHARACTERS.strip("^$"), "Aggregator Ω") and \
        not re.fullmatch(NO_CONTROL_CHARACTERS.strip("^$"), "a\u0085b")
    from chalicelib.api.schemas import DeviceIn

    latitude = DeviceIn.model_json_schema()["properties"]["latitude"]
    assert latitude["not"]["exclusiveMaximum"] == TINY
    assert "KE" in DeviceIn.model_json_schema()["properties"]["country"]["enum"]


def test_an_integer_written_as_2_0_is_an_integer_and_2_5_is_not() -> None:
    reading = {"device_id": "d", "period_start": "2026-01-01T00:00:00Z", "period_end": "2026-01-01T01:00:00Z"}
    assert ReadingIn.model_validate_json(json.dumps({**reading, "energy_wh": 60.0})).energy_wh == 60
    assert TransferIn.model_validate_json('{"from_account_id": "a", "to_account_id": "b", "quantity": 2.0}'
                                          ).quantity == 2
    with pytest.raises(ValueError):
        TransferIn.model_validate_json('{"from_account_id": "a", "to_account_id": "b", "quantity": 2.5}')


def test_a_number_below_1e_100_is_refused_before_it_reaches_the_store() -> None:
    from chalicelib.api.schemas import DeviceIn, parse

    body = ('{"owner_account_id": "a", "device_type": "other", "capacity_w": 10, "latitude": 0, '
            '"longitude": 2.225073858507202e-308, "country": "KE", "commissioning_date": "2025-01-01", '
            '"offtaker_type": "other"}')
    with pytest.raises(BadInput) as refused:
        parse(DeviceIn, body)
    assert refused.value.field == "longitude"


def test_a_wrong_eip55_checksum_is_a_rule_broken_naming_the_field() -> None:
    from chalicelib.api.schemas import parse

    with pytest.raises(RuleBroken) as refused:
        parse(SourceIn, '{"name": "S", "kind": "aggregator", '
                        '"signing_address": "0xC7f35d91fec030CBFB5fE10C1c7B65100E0B1bF6"}')
    assert refused.value.field == "signing_address"


def test_device_reviews_and_their_statuses_are_documented(doc: dict[str, Any]) -> None:
    components = doc["components"]["schemas"]
    review = doc["paths"]["/devices/{device_id}/review"]["post"]
    assert review["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/DeviceReviewIn")
    assert components["DeviceReviewIn"]["properties"]["decision"]["enum"] == ["clear", "suspend"]
    assert {"401", "403", "404", "409"} <= set(review["responses"])
    assert components["DeviceOut"]["properties"]["status"]["enum"] == ["active", "under_review", "suspended"]
    assert {"review", "maintenance"} <= set(components["DeviceOut"]["properties"])
    assert "awaiting_peers" in components["ReadingOut"]["properties"]["status"]["enum"]
    assert "awaiting_peers" in _params(doc, "/readings")["status"]["schema"]["enum"]
