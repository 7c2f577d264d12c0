"""API keys: a rotated key stops at once, a revoked principal's keys all stop, its data stays."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from tests.conftest import OPERATOR_KEY, Api, device_body


def _principals(api: Api) -> tuple[dict[str, Any], dict[str, Any]]:
    """GIVEN a source and an account it registered, each with its key."""
    status, source = api.post("/sources", {"name": "Agg", "kind": "aggregator"})
    assert status == 201, source
    status, account = api.post("/accounts", {"name": "Dev", "kind": "developer", "country": "KE"},
                               key=source["api_key"])
    assert status == 201, account
    return source, account


def _events(api: Api, event_type: str) -> list[dict[str, Any]]:
    return api.get(f"/events?type={event_type}&limit=1000")[1]["items"]


def _whoami(api: Api, key: str) -> int:
    return api.call("get", "/whoami", key=key)[0]


def _no_key_material(event: dict[str, Any], *keys: str) -> None:
    text = json.dumps(event)
    for key in keys:
        assert key not in text and hashlib.sha256(key.encode()).hexdigest() not in text


@pytest.mark.parametrize("who", ["source", "account"])
def test_a_rotated_key_is_refused_at_once_and_the_new_one_works(api: Api, aws: Any, who: str) -> None:
    source, account = _principals(api)
    holder = source if who == "source" else account
    old = holder["api_key"]
    # WHEN the holder rotates its key
    status, rotated = api.post("/keys/rotate", key=old)
    # THEN it gets a new key, the old one answers 401 on the very next request, the new one works
    assert status == 201, rotated
    new = rotated["api_key"]
    assert new != old and rotated["principal_id"] == holder[f"{who}_id"]
    status, refused = api.post("/keys/rotate", key=old)
    assert status == 401 and refused["error"]["field"] == "X-Api-Key"
    assert _whoami(api, old) == 401 and _whoami(api, new) == 200
    status, device = api.post("/devices", device_body(account["account_id"]), key=new)
    assert status == 201, device
    # AND the event names the holder and carries no key, nor any key's hash
    (event,) = _events(api, "ApiKeyRotated")
    assert event["subject_id"] == holder[f"{who}_id"] and event["body"]["principal_kind"] == who
    _no_key_material(event, old, new)
    # AND no record or lookup stores a key itself
    dynamo = aws.client("dynamodb")
    for table in ("drec-test-lookups", "drec-test-sources", "drec-test-accounts"):
        assert new not in str(dynamo.scan(TableName=table)["Items"])
    # AND the public record shows no hash of any key
    for path in (f"/sources/{source['source_id']}", f"/accounts/{account['account_id']}"):
        _no_key_material(api.get(path)[1], old, new)


def test_the_operator_key_is_rotated_by_its_setting_not_the_api(api: Api) -> None:
    status, body = api.post("/keys/rotate", key=OPERATOR_KEY)
    assert status == 422 and "DREC_OPERATOR_KEY" in body["error"]["message"]
    assert _whoami(api, OPERATOR_KEY) == 200 and _events(api, "ApiKeyRotated") == []


def test_rotation_needs_a_known_key(api: Api) -> None:
    assert api.post("/keys/rotate", key=None)[0] == 401
    assert api.post("/keys/rotate", key="drec_nobody")[0] == 401


@pytest.mark.parametrize("who", ["source", "account"])
def test_a_revoked_principal_is_refused_and_its_data_stays_readable(api: Api, who: str) -> None:
    source, account = _principals(api)
    holder = source if who == "source" else account
    holder_id = holder[f"{who}_id"]
    # GIVEN the holder rotated once, so it has had two keys
    _, rotated = api.post("/keys/rotate", key=holder["api_key"])
    # WHEN someone other than the operator tries to revoke it THEN 403, and nothing changes
    other_key = account["api_key"] if who == "source" else source["api_key"]
    status, body = api.post(f"/{who}s/{holder_id}/revoke", key=other_key)
    assert status == 403, body
    assert _whoami(api, rotated["api_key"]) == 200
    # WHEN the operator revokes it
    status, record = api.post(f"/{who}s/{holder_id}/revoke")
    # THEN the record shows when and by whom, every key of it answers 401, its data stays readable
    assert status == 200, record
    assert record[f"{who}_id"] == holder_id and record["revoked_at"] and record["revoked_by"] == "operator"
    for key in (holder["api_key"], rotated["api_key"]):
        assert _whoami(api, key) == 401
    assert api.post("/keys/rotate", key=rotated["api_key"])[0] == 401
    status, read = api.get(f"/{who}s/{holder_id}")
    assert status == 200 and read["revoked_at"] == record["revoked_at"] and read["name"] == holder["name"]
    # AND the other principal keeps working
    assert _whoami(api, other_key) == 200
    # AND the event is there, without key material
    (event,) = _events(api, "SourceRevoked" if who == "source" else "AccountRevoked")
    assert event["subject_id"] == holder_id and event["source_id"] == "operator"
    _no_key_material(event, holder["api_key"], rotated["api_key"])
    # WHEN it is revoked again THEN the same record, and no second event
    again = api.post(f"/{who}s/{holder_id}/revoke")
    assert again == (200, record)
    assert len(_events(api, "SourceRevoked" if who == "source" else "AccountRevoked")) == 1


def test_revoking_an_unknown_principal_is_404_and_needs_a_key(api: Api) -> None:
    assert api.post("/sources/src-nobody/revoke")[0] == 404
    assert api.post("/accounts/acc-nobody/revoke")[0] == 404
    assert api.post("/accounts/acc-nobody/revoke", key=None)[0] == 401


def test_a_principal_registered_before_keys_were_tracked_is_still_revoked_whole(api: Api, aws: Any) -> None:
    from chalicelib.adapters.registry_store import keys_of_lookup

    source, account = _principals(api)
    # GIVEN an account whose key ring item is missing (registered before the registry kept one)
    aws.client("dynamodb").delete_item(TableName="drec-test-lookups",
                                       Key={"k": {"S": keys_of_lookup(account["account_id"])}})
    # WHEN the operator revokes it THEN its key answers 401 all the same
    assert api.post(f"/accounts/{account['account_id']}/revoke")[0] == 200
    assert _whoami(api, account["api_key"]) == 401 and _whoami(api, source["api_key"]) == 200


def test_a_rotation_losing_the_race_to_a_revocation_leaves_no_key_alive(api: Api, aws: Any) -> None:
    from chalicelib.adapters.key_store import DynamoKeys
    from chalicelib.domain.errors import Unauthorized
    from chalicelib.domain.model import Principal
    from chalicelib.services import keys

    _, account = _principals(api)
    store = DynamoKeys(aws.client("dynamodb"), aws.settings.name)
    # GIVEN a rotation that read the key ring just before the operator revoked the account
    ring = store.ring(account["account_id"])
    stale_ring = store.ring
    store.ring = lambda principal_id: ring  # type: ignore[method-assign]
    assert api.post(f"/accounts/{account['account_id']}/revoke")[0] == 200
    # WHEN the rotation commits THEN it is refused, and no key of the account works
    with pytest.raises(Unauthorized):
        keys.rotate_key(store, Principal("account", account["account_id"]), account["api_key"])
    store.ring = stale_ring  # type: ignore[method-assign]
    assert store.ring(account["account_id"]).key_hashes == frozenset()
    assert _events(api, "ApiKeyRotated") == []


def test_keys_are_looked_up_with_a_consistent_read() -> None:
    from chalicelib.adapters.registry_store import DynamoRegistry

    # GIVEN a DynamoDB client that records what it is asked
    asked: list[dict[str, Any]] = []

    class Recording:
        def get_item(self, **request: Any) -> dict[str, Any]:
            asked.append(request)
            return {}

    # WHEN a key is looked up THEN the read is strongly consistent: a key rotated or revoked a
    # moment ago is not served from a stale replica
    assert DynamoRegistry(Recording(), lambda logical: logical).principal_for_key_hash("abc") is None
    assert asked and all(r["ConsistentRead"] is True for r in asked)
