"""Transfers and redemptions: atomic, exactly-once moves; retirement statements with a checkable ledger."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import pytest

from chalicelib.domain.moves import MoveKind
from tests.conftest import OPERATOR_KEY, Api, device_body, pump
from tests.fakes.faults import Crash, Faults

CLAIM = {"claim_period_start": "2026-10-01", "claim_period_end": "2026-10-31"}


@dataclass
class Market:
    source_key: str
    developer: str
    developer_key: str
    buyer: str
    buyer_key: str
    serials: list[str]


def _market(api: Api, aws: Any, energy_wh: int = 8_000) -> Market:
    """GIVEN a developer holding energy_wh // 1000 D-RECs of one mini-grid, and a buyer with none."""
    _, source = api.post("/sources", {"name": "Agg", "kind": "aggregator"})
    key = source["api_key"]
    _, developer = api.post("/accounts", {"name": "Dev", "kind": "developer", "country": "KE"}, key=key)
    _, buyer = api.post("/accounts", {"name": "Buyer", "kind": "buyer", "country": "GB"}, key=key)
    # about 4 Wh per W of capacity is a typical October day in Nairobi, so the reading is accepted
    device = device_body(developer["account_id"], capacity_w=energy_wh / 4, device_type="mini_grid")
    _, device = api.post("/devices", device, key=key)
    reading = {"device_id": device["device_id"], "period_start": "2026-10-14T05:00:00Z",
               "period_end": "2026-10-14T13:00:00Z", "energy_wh": energy_wh}
    status, body = api.post("/readings", {"readings": [reading]}, key=key)
    assert status == 202 and not body["errors"], body
    pump(aws)
    _, page = api.get(f"/drecs?owner_account_id={developer['account_id']}&limit=1000")
    serials = sorted(d["serial"] for d in page["items"])
    assert len(serials) == energy_wh // 1000
    return Market(key, developer["account_id"], developer["api_key"], buyer["account_id"], buyer["api_key"], serials)


def _post(api: Api, path: str, body: Any, key: str = OPERATOR_KEY, idempotency_key: str | None = None,
          ) -> tuple[int, Any]:
    headers = {"Content-Type": "application/json", "X-Api-Key": key}
    if idempotency_key:
        headers["Idempotency-Key"] = idempotency_key
    response = api.client.http.post(path, headers=headers, body=json.dumps(body))
    return response.status_code, json.loads(response.body)


def _holdings(api: Api, account_id: str) -> tuple[int, int]:
    status, body = api.get(f"/accounts/{account_id}/holdings")
    assert status == 200, body
    return body["active"], body["redeemed"]


def _events(api: Api, event_type: str) -> list[dict[str, Any]]:
    return api.get(f"/events?type={event_type}&limit=1000")[1]["items"]


def _redemption(m: Market, serials: list[str], **extra: Any) -> dict[str, Any]:
    return {"account_id": m.buyer, "serials": serials, "beneficiary": "Acme Ltd", "purpose": "Scope 2, FY2026",
            **CLAIM, **extra}


def test_drecs_move_to_a_buyer_who_redeems_them_with_a_checkable_statement(api: Api, aws: Any) -> None:
    m = _market(api, aws)
    # WHEN the developer transfers six D-RECs by quantity
    status, moved = _post(api, "/transfers", {"from_account_id": m.developer, "to_account_id": m.buyer,
                                              "quantity": 6, "filter": {"country": "KE", "vintage": "2026-10"}},
                          key=m.developer_key)
    # THEN the oldest six change owner, and both accounts list the transfer
    assert status == 201, moved
    assert moved["serials"] == m.serials[:6] and moved["status"] == "completed"
    assert _holdings(api, m.buyer) == (6, 0) and _holdings(api, m.developer) == (2, 0)
    for account in (m.developer, m.buyer):
        listed = api.get(f"/transfers?account_id={account}")[1]["items"]
        assert [t["transfer_id"] for t in listed] == [moved["transfer_id"]]
    (event,) = _events(api, "DrecTransferred")
    assert event["body"]["from_account_id"] == m.developer and event["body"]["to_account_id"] == m.buyer
    assert event["body"]["device_ids"] and event["body"]["quantity"] == 6
    drec_events = api.get(f"/drecs/{m.serials[0]}")[1]["events"]
    assert [e["type"] for e in drec_events] == ["DrecIssued", "DrecTransferred"]

    # WHEN the buyer redeems five for a beneficiary with two sponsors
    sponsors = [{"name": "Sponsor A", "share": 0.6}, {"name": "Sponsor B", "share": 0.4}]
    status, statement = _post(api, "/redemptions", _redemption(m, m.serials[:5], sponsors=sponsors,
                                                               country_of_consumption="GB"), key=m.buyer_key)
    # THEN the statement names the ranges, the memo and the ledger's hash
    assert status == 201, statement
    assert statement["serials"] == m.serials[:5] and statement["total_kwh"] == 5
    assert statement["serial_ranges"] == [f"{m.serials[0]}..{m.serials[4]}"]
    assert statement["serial_ranges"][0] in statement["memo"] and statement["ledger_sha256"] in statement["memo"]
    assert "Acme Ltd" in statement["memo"]
    assert {s["name"]: s["count"] for s in statement["sponsors"]} == {"Sponsor A": 3, "Sponsor B": 2}
    # AND the ledger behind the link hashes to the statement's SHA-256
    path = statement["ledger_url"].split("://", 1)[1].split("/", 1)[1]
    response = api.client.http.get("/" + path)
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/csv")
    assert hashlib.sha256(response.body).hexdigest() == statement["ledger_sha256"]
    assert response.body.decode().count("\n") == 6  # header and five D-RECs
    # AND the kept statement, the on-chain event and each D-REC agree
    kept = api.get(f"/redemptions/{statement['redemption_id']}")[1]
    assert kept["memo"] == statement["memo"] and "token=" not in kept["ledger_url"]
    (redeemed,) = _events(api, "DrecRedeemed")
    assert redeemed["body"]["ledger_sha256"] == statement["ledger_sha256"]
    drec = api.get(f"/drecs/{m.serials[0]}")[1]
    assert drec["status"] == "redeemed" and drec["redemption_id"] == statement["redemption_id"]
    assert drec["sponsor"] == "Sponsor A"
    assert _holdings(api, m.buyer) == (1, 5)
    assert [r["redemption_id"] for r in api.get(f"/redemptions?account_id={m.buyer}")[1]["items"]] == [
        statement["redemption_id"]]

    # WHEN anyone tries to move or redeem them again THEN 409, naming the D-REC
    status, body = _post(api, "/transfers", {"from_account_id": m.buyer, "to_account_id": m.developer,
                                             "serials": [m.serials[0]]}, key=m.buyer_key)
    assert status == 409 and "already redeemed" in body["error"]["message"] and m.serials[0] in body["error"]["message"]
    status, body = _post(api, "/redemptions", _redemption(m, [m.serials[1]], purpose="again"), key=m.buyer_key)
    assert status == 409 and m.serials[1] in body["error"]["message"]


def test_the_ledger_refuses_a_wrong_or_missing_token(api: Api, aws: Any) -> None:
    m = _market(api, aws, 2_000)
    _post(api, "/transfers", {"from_account_id": m.developer, "to_account_id": m.buyer, "quantity": 2})
    status, statement = _post(api, "/redemptions", _redemption(m, m.serials))
    assert status == 201, statement
    base = f"/redemptions/{statement['redemption_id']}/ledger.csv"
    assert api.client.http.get(base + "?token=not-the-token").status_code == 403
    assert api.client.http.get(base).status_code == 403
    stored = aws.client("dynamodb").get_item(TableName="drec-test-redemptions",
                                             Key={"id": {"S": statement["redemption_id"]}})["Item"]
    token = statement["ledger_url"].split("token=", 1)[1]
    assert token not in json.dumps(stored)  # only its hash is kept
    # The holder can ask for a fresh link later; a stranger cannot.
    _, stranger = api.post("/accounts", {"name": "Stranger", "kind": "buyer", "country": "KE"})
    link_path = f"/redemptions/{statement['redemption_id']}/ledger-link"
    assert api.post(link_path, key=stranger["api_key"])[0] == 403
    status, link = api.post(link_path)
    assert status == 201 and link["ledger_url"] != statement["ledger_url"]
    fresh = api.client.http.get("/" + link["ledger_url"].split("://", 1)[1].split("/", 1)[1])
    assert fresh.status_code == 200
    assert hashlib.sha256(fresh.body).hexdigest() == statement["ledger_sha256"] == link["ledger_sha256"]


@pytest.mark.parametrize("case", ["unknown_account", "unknown_serial", "other_owner", "too_many", "zero",
                                  "negative", "both", "neither", "not_acting_for_sender", "same_account"])
def test_a_bad_transfer_is_refused_and_moves_nothing(api: Api, aws: Any, case: str) -> None:
    m = _market(api, aws, 3_000)
    _, stranger = api.post("/accounts", {"name": "Other", "kind": "developer", "country": "KE"}, key=m.source_key)
    body: dict[str, Any] = {"from_account_id": m.developer, "to_account_id": m.buyer}
    key, expected, field = OPERATOR_KEY, 400, "quantity"
    if case == "unknown_account":
        body["to_account_id"], body["quantity"], expected, field = "acc-nobody", 1, 404, "to_account_id"
    elif case == "unknown_serial":
        body["serials"], expected, field = [m.serials[0], m.serials[0][:-1] + "9"], 404, "serials"
    elif case == "other_owner":
        body["from_account_id"], body["serials"] = stranger["account_id"], [m.serials[0]]
        expected, field = 409, "serials"
    elif case == "too_many":
        body["quantity"], expected = 4, 422
    elif case in ("zero", "negative"):
        body["quantity"] = 0 if case == "zero" else -2
    elif case == "both":
        body["quantity"], body["serials"], field = 1, [m.serials[0]], "serials"
    elif case == "neither":
        field = "serials"
    elif case == "not_acting_for_sender":
        body["quantity"], key, expected, field = 1, m.buyer_key, 403, None
    elif case == "same_account":
        body["to_account_id"], body["quantity"], expected, field = m.developer, 1, 422, "to_account_id"
    # WHEN the transfer is posted THEN a clear 4xx names the problem
    status, answer = _post(api, "/transfers", body, key=key)
    assert status == expected, answer
    assert answer["error"]["field"] == field and answer["error"]["message"]
    # AND nothing moved
    assert _holdings(api, m.developer) == (3, 0) and _holdings(api, m.buyer) == (0, 0)
    assert _events(api, "DrecTransferred") == []


@pytest.mark.parametrize("case", ["shares", "claim_starts_late", "claim_ends_early", "claim_backwards"])
def test_a_bad_redemption_is_refused_and_redeems_nothing(api: Api, aws: Any, case: str) -> None:
    m = _market(api, aws, 2_000)
    _post(api, "/transfers", {"from_account_id": m.developer, "to_account_id": m.buyer, "quantity": 2})
    body = _redemption(m, m.serials)
    expected, field = 422, "claim_period_start"
    if case == "shares":
        body["sponsors"], expected, field = [{"name": "A", "share": 0.5}, {"name": "B", "share": 0.4}], 400, "sponsors"
    elif case == "claim_starts_late":
        body["claim_period_start"] = "2026-10-15"
    elif case == "claim_ends_early":
        body["claim_period_end"], field = "2026-10-14T12:00:00Z", "claim_period_end"
    else:
        body["claim_period_start"], body["claim_period_end"], expected, field = "2026-10-31", "2026-10-01", 400, \
            "claim_period_end"
    status, answer = _post(api, "/redemptions", body)
    assert status == expected, answer
    assert answer["error"]["field"] == field
    assert _holdings(api, m.buyer) == (2, 0) and _events(api, "DrecRedeemed") == []


def test_two_transfers_of_one_drec_only_the_first_wins(api: Api, aws: Any) -> None:
    from chalicelib.api.trade_schemas import TransferIn
    from chalicelib.domain.model import Principal
    from chalicelib.services import transfers

    m = _market(api, aws, 2_000)
    store = aws.trades
    # GIVEN a first transfer that holds its locks but has not applied them yet (it is mid-flight)
    first = TransferIn(from_account_id=m.developer, to_account_id=m.buyer, serials=[m.serials[0]]).to_command()
    with pytest.raises(Crash):
        transfers.transfer_run(Faults(store).always("apply")).run(_started(store, first))
    # WHEN a second transfer of the same D-REC arrives THEN it gets 409 naming the D-REC
    _, stranger = api.post("/accounts", {"name": "Other", "kind": "buyer", "country": "KE"}, key=m.source_key)
    status, body = _post(api, "/transfers", {"from_account_id": m.developer, "to_account_id": stranger["account_id"],
                                             "serials": [m.serials[0]]})
    assert status == 409 and m.serials[0] in body["error"]["message"]
    # AND the first completes; a later transfer from the old owner is refused too
    (record,) = list(store.unfinished(MoveKind.TRANSFERS, "9999"))
    assert transfers.transfer_run(store).run(record).status.value == "completed"
    assert api.get(f"/drecs/{m.serials[0]}")[1]["owner_account_id"] == m.buyer
    status, body = _post(api, "/transfers", {"from_account_id": m.developer, "to_account_id": stranger["account_id"],
                                             "serials": [m.serials[0]]})
    assert status == 409 and "held by another account" in body["error"]["message"]
    # AND the first request, retried with its Idempotency-Key, answers with its completed transfer
    again = transfers.transfer(aws.registry, store, Principal("operator", "operator"), first, STARTED_KEY)
    assert again["transfer_id"] == record.id and again["status"] == "completed"


STARTED_KEY = "first-order"


def _started(store: Any, command: Any) -> Any:
    """A transfer record stored as POST /transfers (Idempotency-Key: STARTED_KEY) stores it, before its passes run."""
    from chalicelib.domain.model import Principal
    from chalicelib.domain.moves import MoveStatus, Transfer
    from chalicelib.services import idempotency, moves

    sha = idempotency.request_hash(Principal("operator", "operator"), command.request)
    record = Transfer(id=moves.new_move_id("trf"), account_id=command.from_account_id,
                      from_account_id=command.from_account_id, to_account_id=command.to_account_id,
                      serials=command.serials, device_ids=(), status=MoveStatus.LOCKING,
                      created_at="2026-11-01T00:00:00Z", principal_id="operator", request_sha256=sha,
                      idempotency_key=STARTED_KEY)
    store.start(record)
    return record


def test_a_retried_transfer_moves_nothing_twice(api: Api, aws: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from chalicelib.services import moves

    m = _market(api, aws, 8_000)
    monkeypatch.setattr(moves, "CHUNK", 3)
    # GIVEN a transfer whose process dies before its third apply chunk
    healthy = aws.trades
    aws.trades = Faults(healthy).before("apply", 3)
    body = {"from_account_id": m.developer, "to_account_id": m.buyer, "quantity": 7}
    status, answer = _post(api, "/transfers", body, idempotency_key="order-42")
    aws.trades = healthy
    assert status == 500, answer
    assert _holdings(api, m.buyer) == (6, 0)  # two chunks of three applied, the rest still locked
    # WHEN the same request is retried with the same key, twice
    first = _post(api, "/transfers", body, idempotency_key="order-42")
    second = _post(api, "/transfers", body, idempotency_key="order-42")
    # THEN it completes once and answers the same
    assert first[0] == second[0] == 201 and first[1] == second[1]
    assert first[1]["quantity"] == 7 and _holdings(api, m.buyer) == (7, 0) and _holdings(api, m.developer) == (1, 0)
    assert len(_events(api, "DrecTransferred")) == 1
    # AND the key reused for another request is refused
    status, answer = _post(api, "/transfers", {**body, "quantity": 1}, idempotency_key="order-42")
    assert status == 422 and answer["error"]["field"] == "Idempotency-Key"


def test_a_transfer_abandoned_mid_way_is_finished_by_the_sweep(api: Api, aws: Any) -> None:
    from chalicelib.api.trade_schemas import TransferIn
    from chalicelib.services import moves, transfers

    m = _market(api, aws, 2_000)
    store = aws.trades
    command = TransferIn(from_account_id=m.developer, to_account_id=m.buyer, serials=m.serials).to_command()
    with pytest.raises(Crash):
        transfers.transfer_run(Faults(store).always("apply")).run(_started(store, command))
    # GIVEN its D-RECs locked and nobody retrying WHEN the sweep runs THEN the transfer completes
    assert moves.resume_stale(store, transfers.transfer_run(store), older_than_s=0) == {"completed": 1, "failed": 0}
    assert _holdings(api, m.buyer) == (2, 0)
    assert moves.resume_stale(store, transfers.transfer_run(store), older_than_s=0) == {"completed": 0, "failed": 0}


def test_a_drec_taken_part_way_undoes_the_whole_transfer(api: Api, aws: Any, monkeypatch: pytest.MonkeyPatch,
                                                          ) -> None:
    from chalicelib.services import moves

    m = _market(api, aws, 8_000)
    monkeypatch.setattr(moves, "CHUNK", 3)
    _, rival = api.post("/accounts", {"name": "Rival", "kind": "buyer", "country": "KE"}, key=m.source_key)
    healthy = aws.trades

    def rival_takes_the_seventh() -> None:
        aws.trades = healthy  # the rival's request runs on the plain store
        status, _ = _post(api, "/transfers", {"from_account_id": m.developer,
                                              "to_account_id": rival["account_id"], "serials": [m.serials[6]]})
        assert status == 201

    # between the first and second chunk, a rival takes the seventh D-REC
    aws.trades = Faults(healthy).before("lock", 2, rival_takes_the_seventh)
    # WHEN a transfer of all eight meets the taken D-REC in its third chunk
    status, body = _post(api, "/transfers", {"from_account_id": m.developer, "to_account_id": m.buyer,
                                             "serials": m.serials})
    aws.trades = healthy
    # THEN 409 names it, and nothing of the transfer moved or stays locked
    assert status == 409 and m.serials[6] in body["error"]["message"], body
    assert _holdings(api, m.buyer) == (0, 0) and _holdings(api, m.developer) == (7, 0)
    items = aws.client("dynamodb").scan(TableName="drec-test-drecs")["Items"]
    assert not [i for i in items if "locked_by" in i]
    (failed,) = [t for t in api.get(f"/transfers?account_id={m.developer}")[1]["items"] if t["status"] != "completed"]
    assert failed["status"] == "failed" and failed["failure"]["serial"] == m.serials[6]


def test_a_retried_redemption_redeems_once_and_each_link_opens_the_ledger(api: Api, aws: Any) -> None:
    m = _market(api, aws, 3_000)
    _post(api, "/transfers", {"from_account_id": m.developer, "to_account_id": m.buyer, "quantity": 3})
    body = _redemption(m, m.serials[:2])
    first = _post(api, "/redemptions", body, key=m.buyer_key, idempotency_key="claim-7")[1]
    status, again = _post(api, "/redemptions", body, key=m.buyer_key, idempotency_key="claim-7")
    assert status == 201 and again["redemption_id"] == first["redemption_id"]
    assert again["ledger_url"] != first["ledger_url"]
    for link in (first["ledger_url"], again["ledger_url"]):
        response = api.client.http.get("/" + link.split("://", 1)[1].split("/", 1)[1])
        assert hashlib.sha256(response.body).hexdigest() == first["ledger_sha256"]
    assert len(_events(api, "DrecRedeemed")) == 1 and _holdings(api, m.buyer) == (1, 2)


def test_events_relate_every_serial_only_when_the_transaction_has_room() -> None:
    from chalicelib.services.moves import related

    accounts = ("acc-a", "acc-b")
    small = related(accounts, ["dev-1", "s1", "s2"], 2)
    assert small == (("acc-a", "acc-b", "dev-1", "s1", "s2"), ())
    serials = [f"s{i}" for i in range(200)]
    ids, late = related(accounts, serials, 2)
    assert ids == accounts and late == tuple(serials)
