"""Trading against a careless or dishonest caller: moves replay only when asked, ledgers are spreadsheet-safe."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from tests.conftest import OPERATOR_KEY, Api
from tests.fakes.faults import Faults
from tests.unit.test_trading import _events, _holdings, _market, _post, _redemption


def _post_raw_key(api: Api, path: str, body: Any, idempotency_key: str) -> tuple[int, Any]:
    """POST with the header sent exactly as given, even when blank (the helper in test_trading drops blanks)."""
    headers = {"Content-Type": "application/json", "X-Api-Key": OPERATOR_KEY, "Idempotency-Key": idempotency_key}
    response = api.client.http.post(path, headers=headers, body=json.dumps(body))
    return response.status_code, json.loads(response.body)


def test_two_identical_transfers_without_a_key_are_two_moves(api: Api, aws: Any) -> None:
    m = _market(api, aws, 3_000)
    body = {"from_account_id": m.developer, "to_account_id": m.buyer, "quantity": 1}
    # WHEN the same order is sent twice without an Idempotency-Key
    first = _post(api, "/transfers", body, key=m.developer_key)
    second = _post(api, "/transfers", body, key=m.developer_key)
    # THEN both are moves of their own: two transfers, two D-RECs, two events
    assert first[0] == second[0] == 201, (first, second)
    assert first[1]["transfer_id"] != second[1]["transfer_id"]
    assert first[1]["serials"] != second[1]["serials"]
    assert _holdings(api, m.buyer) == (2, 0) and _holdings(api, m.developer) == (1, 0)
    assert len(_events(api, "DrecTransferred")) == 2


def test_the_same_key_replays_a_transfer_and_refuses_another_body(api: Api, aws: Any) -> None:
    m = _market(api, aws, 3_000)
    body = {"from_account_id": m.developer, "to_account_id": m.buyer, "quantity": 1}
    # WHEN one order is sent twice with the same key
    first = _post(api, "/transfers", body, key=m.developer_key, idempotency_key="po-1")
    again = _post(api, "/transfers", body, key=m.developer_key, idempotency_key="po-1")
    # THEN it moved once and answers the same
    assert first == again and first[0] == 201
    assert _holdings(api, m.buyer) == (1, 0) and len(_events(api, "DrecTransferred")) == 1
    # WHEN the key is reused for another order THEN 422 names the header and nothing moves
    status, answer = _post(api, "/transfers", {**body, "quantity": 2}, key=m.developer_key, idempotency_key="po-1")
    assert status == 422 and answer["error"]["field"] == "Idempotency-Key", answer
    assert first[1]["transfer_id"] in answer["error"]["message"]
    assert _holdings(api, m.buyer) == (1, 0)
    # AND the same key from another caller is that caller's own key
    status, other = _post(api, "/transfers", body, idempotency_key="po-1")
    assert status == 201 and other["transfer_id"] != first[1]["transfer_id"]


def test_a_transfer_without_a_key_abandoned_mid_way_is_finished_by_the_sweep(api: Api, aws: Any) -> None:
    from chalicelib.services import moves, transfers

    m = _market(api, aws, 2_000)
    healthy = aws.trades
    # GIVEN a transfer without a key whose process died once its D-RECs were locked
    aws.trades = Faults(healthy).always("apply")
    status, _ = _post(api, "/transfers", {"from_account_id": m.developer, "to_account_id": m.buyer,
                                          "quantity": 2})
    aws.trades = healthy
    assert status == 500 and _holdings(api, m.buyer) == (0, 0)
    # WHEN the sweep runs THEN the transfer completes
    assert moves.resume_stale(healthy, transfers.transfer_run(healthy), older_than_s=0) == {"completed": 1,
                                                                                           "failed": 0}
    assert _holdings(api, m.buyer) == (2, 0) and len(_events(api, "DrecTransferred")) == 1


def test_redemptions_replay_only_with_the_same_key(api: Api, aws: Any) -> None:
    m = _market(api, aws, 4_000)
    _post(api, "/transfers", {"from_account_id": m.developer, "to_account_id": m.buyer, "quantity": 4})
    body = _redemption(m, [], quantity=1)
    del body["serials"]
    # WHEN the same redemption is sent twice without a key THEN two D-RECs are redeemed
    first = _post(api, "/redemptions", body, key=m.buyer_key)
    second = _post(api, "/redemptions", body, key=m.buyer_key)
    assert first[0] == second[0] == 201 and first[1]["redemption_id"] != second[1]["redemption_id"]
    assert _holdings(api, m.buyer) == (2, 2)
    # WHEN sent twice with one key THEN one more is redeemed and the answers name the same redemption
    keyed = _post(api, "/redemptions", body, key=m.buyer_key, idempotency_key="claim-1")
    replayed = _post(api, "/redemptions", body, key=m.buyer_key, idempotency_key="claim-1")
    assert keyed[0] == replayed[0] == 201 and keyed[1]["redemption_id"] == replayed[1]["redemption_id"]
    assert keyed[1]["ledger_sha256"] == replayed[1]["ledger_sha256"]
    assert _holdings(api, m.buyer) == (1, 3) and len(_events(api, "DrecRedeemed")) == 3
    # WHEN the key comes with another body THEN 422 names the header and nothing is redeemed
    status, answer = _post(api, "/redemptions", {**body, "beneficiary": "Other Ltd"}, key=m.buyer_key,
                           idempotency_key="claim-1")
    assert status == 422 and answer["error"]["field"] == "Idempotency-Key"
    assert _holdings(api, m.buyer) == (1, 3)


@pytest.mark.parametrize("value", ["", "   ", "k" * 201])
@pytest.mark.parametrize("path", ["/transfers", "/redemptions", "/accounts"])
def test_a_blank_or_over_long_key_is_refused_the_same_on_every_route(api: Api, value: str, path: str) -> None:
    # GIVEN a well-formed body
    body = {
        "/accounts": {"name": "Buyer", "kind": "buyer", "country": "GB"},
        "/transfers": {"from_account_id": "acc-a", "to_account_id": "acc-b", "quantity": 1},
        "/redemptions": {"account_id": "acc-a", "quantity": 1, "beneficiary": "Acme", "purpose": "Scope 2",
                         "claim_period_start": "2026-10-01", "claim_period_end": "2026-10-31"},
    }[path]
    # WHEN the Idempotency-Key header is present but blank or too long
    status, answer = _post_raw_key(api, path, body, value)
    # THEN 400 names the header
    assert status == 400 and answer["error"]["field"] == "Idempotency-Key", answer
    assert api.get("/accounts")[1]["items"] == []


def test_a_redemption_named_as_a_formula_publishes_an_escaped_ledger_whose_hash_is_anchored(
        api: Api, aws: Any) -> None:
    m = _market(api, aws, 2_000)
    _post(api, "/transfers", {"from_account_id": m.developer, "to_account_id": m.buyer, "quantity": 2})
    # WHEN a buyer redeems for a beneficiary and sponsors named as spreadsheet formulas
    body = _redemption(m, m.serials, beneficiary='=HYPERLINK("http://x","y")',
                       sponsors=[{"name": "+1", "share": 0.5}, {"name": "@SUM(A1)", "share": 0.5}])
    status, statement = _post(api, "/redemptions", body, key=m.buyer_key)
    assert status == 201, statement
    # THEN the ledger served holds the escaped cells
    response = api.client.http.get("/" + statement["ledger_url"].split("://", 1)[1].split("/", 1)[1])
    text = response.body.decode()
    assert '\'=HYPERLINK(""http://x"",""y"")' in text and ",'+1," in text and ",'@SUM(A1)," in text
    assert "\n=" not in text and ",=" not in text
    # AND the statement, the kept record and the anchored event all carry the SHA-256 of that file
    digest = hashlib.sha256(response.body).hexdigest()
    assert statement["ledger_sha256"] == digest
    assert api.get(f"/redemptions/{statement['redemption_id']}")[1]["ledger_sha256"] == digest
    (event,) = _events(api, "DrecRedeemed")
    assert event["body"]["ledger_sha256"] == digest
