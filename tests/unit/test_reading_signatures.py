"""Per-reading EIP-712 signatures: required by the device's or its source's key, verified, or absent."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from eth_account import Account

from chalicelib.api.reading_input import parse_reading
from chalicelib.domain.errors import BadInput, Unauthorized
from chalicelib.domain.model import Principal
from chalicelib.domain.signing import canonical_time, payment_message, reading_message
from chalicelib.services.signatures import (
    recover_payment,
    recover_reading,
    required_signer,
    sign_payment,
    sign_reading,
)
from tests.conftest import Api, device_body, pump, registered_device

DAY = "2026-10-14"


def _reading(device_id: str, start: str, end: str, energy_wh: int, key: Any = None, **extra: Any) -> dict[str, Any]:
    body = {"device_id": device_id, "period_start": start, "period_end": end, "energy_wh": energy_wh, **extra}
    if key is not None:
        body["signature"] = sign_reading(key, device_id, start, end, energy_wh)
    return body


def _signing_fleet(api: Api, n: int = 1, **device: Any) -> tuple[Any, dict[str, Any], dict[str, Any], list[str]]:
    """(source key, source, account, device ids): a source that registered a signing address."""
    key = Account.create()
    _, source = api.post("/sources", {"name": "Signer", "kind": "aggregator", "signing_address": key.address})
    _, account = api.post("/accounts", {"name": "Dev", "kind": "developer", "country": "KE"}, key=source["api_key"])
    ids = []
    for _ in range(n):
        status, created = api.post("/devices", device_body(account["account_id"], **device), key=source["api_key"])
        assert status == 201, created
        ids.append(created["device_id"])
    return key, source, account, ids


# -- the pure parts -------------------------------------------------------------------------------
def test_typed_data_is_the_published_contract() -> None:
    message = reading_message("dev-1", datetime(2026, 10, 14, 9, tzinfo=UTC), "2026-10-14T13:00:00+03:00", 60)
    assert message["domain"] == {"name": "D-REC Registry", "version": "1"}
    assert message["primaryType"] == "Reading"
    assert [f"{f['type']} {f['name']}" for f in message["types"]["Reading"]] == [
        "string device_id", "string period_start", "string period_end", "uint256 energy_wh"]
    assert message["message"] == {"device_id": "dev-1", "period_start": "2026-10-14T09:00:00Z",
                                  "period_end": "2026-10-14T10:00:00Z", "energy_wh": 60}
    assert payment_message("dev-1", "2026-10-20T00:00:00Z", "2026-10-23T00:00:00Z")["types"]["Payment"] == [
        {"name": "device_id", "type": "string"}, {"name": "paid_from", "type": "string"},
        {"name": "paid_until", "type": "string"}]
    with pytest.raises(BadInput):
        canonical_time("2026-10-14T09:00:00.5Z")  # two periods would share one signature
    with pytest.raises(BadInput):
        canonical_time("2026-10-14T09:00:00")


def test_signature_recovers_its_signer_and_nothing_else() -> None:
    key = Account.create()
    signature = sign_reading(key.key, "dev-1", "2026-10-14T09:00:00Z", "2026-10-14T10:00:00Z", 60)
    assert recover_reading("dev-1", "2026-10-14T09:00:00Z", "2026-10-14T10:00:00Z", 60, signature) == \
        key.address.lower()
    assert recover_reading("dev-1", "2026-10-14T09:00:00Z", "2026-10-14T10:00:00Z", 61, signature) != \
        key.address.lower()
    paid = sign_payment(key.key, "dev-1", "2026-10-20T00:00:00Z", "2026-10-23T00:00:00Z")
    assert recover_payment("dev-1", "2026-10-20T00:00:00Z", "2026-10-23T00:00:00Z", paid) == key.address.lower()
    with pytest.raises(Unauthorized):
        recover_reading("dev-1", "2026-10-14T09:00:00Z", "2026-10-14T10:00:00Z", 60, "0x1234")
    with pytest.raises(Unauthorized):
        recover_reading("dev-1", "2026-10-14T09:00:00Z", "2026-10-14T10:00:00Z", 60, "0x" + "ff" * 65)


@pytest.mark.parametrize(("device", "account", "sources", "expected"), [
    ({"signing_address": "0xDEV", "registered_by": "src-a"}, {}, {"src-a": "0xSRC"}, "0xdev"),
    ({"registered_by": "src-a"}, {"registered_by": "src-b"}, {"src-a": "0xA", "src-b": "0xB"}, "0xa"),
    ({"registered_by": "acc-1"}, {"registered_by": "src-b"}, {"src-b": "0xB"}, "0xb"),
    ({"registered_by": "operator"}, {"registered_by": "operator"}, {}, None),
    ({"registered_by": "src-a"}, {"registered_by": "src-b"}, {"src-a": None, "src-b": "0xB"}, None),
])
def test_required_signer_rule(device: dict[str, Any], account: dict[str, Any], sources: dict[str, Any],
                              expected: str | None) -> None:
    from chalicelib.domain.registry import Source

    def source_of(source_id: str) -> Source | None:
        return Source(source_id, "S", "aggregator", "t", "operator", signing_address=sources[source_id]) \
            if source_id in sources else None

    assert required_signer(_device(**device), _account(**account) if account else None, source_of) == expected


def _device(**fields: Any) -> Any:
    from chalicelib.domain.registry import Device

    return Device(**{"device_id": "dev-1", "owner_account_id": "acc-1", "device_type": "solar_home_system",
                     "capacity_w": 100.0, "latitude": 0.0, "longitude": 37.0, "country": "KE",
                     "commissioning_date": "2026-01-01", "offtaker_type": "household", "registered_at": "t",
                     "registered_by": "operator", **fields})


def _account(**fields: Any) -> Any:
    from chalicelib.domain.registry import Account

    return Account(**{"account_id": "acc-1", "name": "A", "kind": "developer", "country": "KE",
                      "registered_at": "t", "registered_by": "operator", **fields})


# -- through the API ------------------------------------------------------------------------------
def test_unsigned_wrong_key_and_other_values_refused_by_index_rest_proceed(api: Api, aws: Any) -> None:
    # GIVEN a source with a signing key and its device
    key, source, _, (d,) = _signing_fleet(api)
    other = _reading(d, f"{DAY}T10:00:00Z", f"{DAY}T11:00:00Z", 50, key.key)
    other["energy_wh"] = 55  # signed over 50 Wh
    # WHEN a batch holds an unsigned, a wrongly keyed, a tampered and a good reading
    status, body = api.post("/readings", {"readings": [
        _reading(d, f"{DAY}T08:00:00Z", f"{DAY}T09:00:00Z", 40),
        _reading(d, f"{DAY}T09:00:00Z", f"{DAY}T10:00:00Z", 50, Account.create().key),
        other,
        _reading(d, f"{DAY}T11:00:00Z", f"{DAY}T12:00:00Z", 60, key.key),
    ]}, key=source["api_key"])
    # THEN the first three are refused with their index and field, the last is stored and queued alone
    assert status == 202
    assert {e["index"]: (e["error"]["code"], e["error"]["field"]) for e in body["errors"]} == {
        i: ("unauthorized", f"readings.{i}.signature") for i in range(3)}
    assert [a["index"] for a in body["accepted"]] == [3]
    assert [r["reading_id"] for r in api.get(f"/devices/{d}/readings")[1]["items"]] == \
        [body["accepted"][0]["reading_id"]]


@pytest.mark.parametrize("caller", ["operator", "account", "source"])
def test_every_caller_must_sign_for_a_signing_source(api: Api, aws: Any, caller: str) -> None:
    # GIVEN a signing source's device, and a key of the operator, the owner account or the source
    key, source, account, (d,) = _signing_fleet(api)
    api_key = {"operator": None, "account": account["api_key"], "source": source["api_key"]}[caller]
    kwargs = {"key": api_key} if api_key else {}
    # WHEN each sends one unsigned and one signed reading
    _, body = api.post("/readings", {"readings": [_reading(d, f"{DAY}T08:00:00Z", f"{DAY}T09:00:00Z", 40),
                                                  _reading(d, f"{DAY}T09:00:00Z", f"{DAY}T10:00:00Z", 50, key.key)]},
                       **kwargs)
    # THEN no key exempts the unsigned one
    assert [e["index"] for e in body["errors"]] == [0] and body["errors"][0]["error"]["code"] == "unauthorized"
    assert api.get(f"/readings/{body['accepted'][0]['reading_id']}")[1]["signer"] == key.address.lower()


def test_device_key_takes_precedence_over_the_source_key(api: Api, aws: Any) -> None:
    # GIVEN a signing source's device that registered its own meter key
    meter = Account.create()
    source_key, source, _, (d,) = _signing_fleet(api, signing_address=meter.address)
    assert api.get(f"/devices/{d}")[1]["signing_address"] == meter.address.lower()
    # WHEN one reading is signed by the source's key and one by the meter's
    _, body = api.post("/readings", {"readings": [
        _reading(d, f"{DAY}T08:00:00Z", f"{DAY}T09:00:00Z", 40, source_key.key),
        _reading(d, f"{DAY}T09:00:00Z", f"{DAY}T10:00:00Z", 50, meter.key)]}, key=source["api_key"])
    # THEN only the meter's counts, and its key is in the device's registration event
    assert [e["index"] for e in body["errors"]] == [0] and meter.address.lower() in body["errors"][0]["error"][
        "message"]
    assert api.get(f"/readings/{body['accepted'][0]['reading_id']}")[1]["signer"] == meter.address.lower()
    (registered,) = api.get(f"/events?subject_id={d}&type=DeviceRegistered")[1]["items"]
    assert registered["body"]["signing_address"] == meter.address.lower()


def test_device_signing_address_must_be_eip55(api: Api) -> None:
    _, account, _ = registered_device(api)
    address = Account.create().address
    typo = address[:-1] + (address[-1].swapcase() if address[-1].isalpha() else "a")
    status, body = api.post("/devices", device_body(account["account_id"], signing_address=typo))
    assert status == 422 and body["error"]["field"] == "signing_address", body


def test_signer_and_signature_follow_the_reading_into_events_and_drecs(api: Api, aws: Any) -> None:
    # GIVEN three devices of a signing source
    key, source, account, devices = _signing_fleet(api, 3)
    readings = [_reading(d, f"{DAY}T05:00:00Z", f"{DAY}T13:00:00Z", 400, key.key) for d in devices]
    # WHEN their signed readings are accepted and issued
    _, body = api.post("/readings", {"readings": readings}, key=source["api_key"])
    pump(aws)
    signer = key.address.lower()
    # THEN the reading, its ReadingAccepted body and the D-REC's contributions all carry signer and signature
    by_id = {a["reading_id"]: readings[a["index"]]["signature"] for a in body["accepted"]}
    for reading_id, signature in by_id.items():
        view = api.get(f"/readings/{reading_id}")[1]
        assert view["status"] == "accepted" and (view["signer"], view["signature"]) == (signer, signature)
        (accepted,) = api.get(f"/events?subject_id={reading_id}&type=ReadingAccepted")[1]["items"]
        assert (accepted["body"]["signer"], accepted["body"]["signature"]) == (signer, signature)
    (summary,) = api.get(f"/drecs?owner_account_id={account['account_id']}")[1]["items"]
    drec = api.get(f"/drecs/{summary['serial']}")[1]
    assert {(c["reading_id"], c["signer"], c["signature"]) for c in drec["contributions"]} == \
        {(r, signer, s) for r, s in by_id.items()}
    (issued,) = [e for e in drec["events"] if e["type"] == "DrecIssued"]
    assert [row[3:] for row in issued["body"]["contributions"]] == [[signer, by_id[row[1]]]
                                                                    for row in issued["body"]["contributions"]]
    assert [row[:3] for row in issued["body"]["contributions"]] == [
        [c["device_id"], c["reading_id"], c["energy_wh"]] for c in drec["contributions"]]


def test_signature_for_a_device_without_key_is_stored_nowhere(api: Api, aws: Any) -> None:
    # GIVEN three devices whose source registered no signing key
    source, account, device = registered_device(api)
    devices = [device["device_id"]] + [api.post("/devices", device_body(account["account_id"]),
                                                key=source["api_key"])[1]["device_id"] for _ in range(2)]
    stranger = Account.create()
    # WHEN their readings arrive with signatures nobody asked for
    _, body = api.post("/readings", {"readings": [
        _reading(d, f"{DAY}T05:00:00Z", f"{DAY}T13:00:00Z", 400, stranger.key) for d in devices]},
        key=source["api_key"])
    pump(aws)
    # THEN they are accepted, and no signature or signer is kept or published
    ids = [a["reading_id"] for a in body["accepted"]]
    assert len(ids) == 3
    for reading_id in ids:
        assert "signature" not in aws.readings.get("readings", id=reading_id)
        view = api.get(f"/readings/{reading_id}")[1]
        assert view["status"] == "accepted" and "signer" not in view and "signature" not in view
        (accepted,) = api.get(f"/events?subject_id={reading_id}&type=ReadingAccepted")[1]["items"]
        assert "signature" not in accepted["body"] and "signer" not in accepted["body"]
    (summary,) = api.get(f"/drecs?owner_account_id={account['account_id']}")[1]["items"]
    drec = api.get(f"/drecs/{summary['serial']}")[1]
    assert all(c["signature"] is None and c["signer"] is None for c in drec["contributions"])
    assert all(row[3:] == [None, None] for row in drec["events"][0]["body"]["contributions"])


def test_payments_signed_over_the_payment_window(api: Api, aws: Any) -> None:
    # GIVEN a signing source's device with a battery
    key, source, _, (d,) = _signing_fleet(api, capacity_w=50, battery_wh=100)
    window = {"device_id": d, "paid_from": "2026-10-20T00:00:00Z", "paid_until": "2026-10-23T00:00:00Z"}
    as_reading = sign_reading(key.key, d, window["paid_from"], window["paid_until"], 150)
    # WHEN payments come unsigned, signed by another key, signed as a Reading, and signed right
    refused = [api.post("/payments", {**window, **extra}, key=source["api_key"]) for extra in (
        {}, {"signature": sign_payment(Account.create().key, d, window["paid_from"], window["paid_until"])},
        {"signature": as_reading})]
    signature = sign_payment(key.key, d, window["paid_from"], window["paid_until"])
    status, body = api.post("/payments", {**window, "signature": signature})  # the operator's key, no exemption
    # THEN the first three are refused whole, the last is a derived reading carrying its signer
    assert [(s, b["error"]["field"]) for s, b in refused] == [(401, "signature")] * 3
    assert status == 202, body
    pump(aws)
    view = api.get(f"/readings/{body['reading_id']}")[1]
    assert (view["signer"], view["signature"], view["derived"]) == (key.address.lower(), signature, True)
    if view["status"] == "flagged":  # a long window may be held for review; accepting it publishes the same
        assert api.post(f"/readings/{body['reading_id']}/review", {"decision": "accept"})[0] == 200
    (accepted,) = api.get(f"/events?subject_id={body['reading_id']}&type=ReadingAccepted")[1]["items"]
    event = accepted["body"]
    assert (event["period_start"], event["period_end"]) == (window["paid_from"], window["paid_until"])
    assert event["derived"] is True and event["signer"] == key.address.lower()
    assert recover_payment(d, event["period_start"], event["period_end"], event["signature"]) == event["signer"]


def test_payment_signature_for_a_device_without_key_is_dropped(api: Api, aws: Any) -> None:
    source, _, device = registered_device(api, capacity_w=50, battery_wh=100)
    d = device["device_id"]
    signature = sign_payment(Account.create().key, d, "2026-10-20T00:00:00Z", "2026-10-23T00:00:00Z")
    status, body = api.post("/payments", {"device_id": d, "paid_from": "2026-10-20T00:00:00Z",
                                          "paid_until": "2026-10-23T00:00:00Z", "signature": signature},
                            key=source["api_key"])
    assert status == 202, body
    assert "signature" not in aws.readings.get("readings", id=body["reading_id"])
    assert "signer" not in api.get(f"/readings/{body['reading_id']}")[1]


def test_raw_items_with_a_signature_column_are_verified_by_line(api: Api, aws: Any) -> None:
    # GIVEN rows as the CSV reader hands them to the intake, with a `signature` cell
    key, source, _, (d,) = _signing_fleet(api)
    rows = [(2, {"device_id": d, "period_start": f"{DAY}T08:00:00Z", "period_end": f"{DAY}T09:00:00Z",
                 "energy_wh": 40, "signature": sign_reading(key.key, d, f"{DAY}T08:00:00Z", f"{DAY}T09:00:00Z", 40)}),
            (3, {"device_id": d, "period_start": f"{DAY}T09:00:00Z", "period_end": f"{DAY}T10:00:00Z",
                 "energy_wh": 50, "signature": ""}),
            (4, {"device_id": d, "period_start": f"{DAY}T10:00:00Z", "period_end": f"{DAY}T11:00:00Z",
                 "energy_wh": 50, "signature": sign_reading(key.key, d, f"{DAY}T10:00:00Z", f"{DAY}T11:00:00Z", 5)})]
    # WHEN the intake takes them
    result = aws.intake(parse_reading).submit(Principal("source", source["source_id"]), rows, field_prefix="")
    # THEN the signed row is stored with its signer, the others are refused by line
    assert [(line, e.code, e.field) for line, e in result.errors] == [(3, "unauthorized", "signature"),
                                                                       (4, "unauthorized", "signature")]
    ((line, reading_id),) = result.accepted
    assert line == 2 and api.get(f"/readings/{reading_id}")[1]["signer"] == key.address.lower()


def test_a_thousand_signed_readings_recover_to_their_signer() -> None:
    # Speed is measured by `make bench-signatures`, not asserted here.
    key = Account.create()
    start = datetime(2026, 10, 14, tzinfo=UTC)
    items = [(f"dev-{i}", start, 10 + i) for i in range(1000)]
    signatures = [sign_reading(key.key, d, s, s.replace(hour=1), e) for d, s, e in items]
    assert {recover_reading(d, s, s.replace(hour=1), e, sig) for (d, s, e), sig in zip(items, signatures)} == \
        {key.address.lower()}
