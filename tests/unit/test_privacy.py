"""Privacy: what the public, the owner's side and the chain may see of accounts, devices and the RPC URL."""

from __future__ import annotations

import json
from dataclasses import replace
from types import SimpleNamespace
from typing import Any

import pytest

from chalicelib import config
from chalicelib.domain.privacy import (
    location_commitment,
    main,
    new_location_salt,
    opens,
    public_rpc_hint,
    round_coordinate,
)
from tests.conftest import OPERATOR_KEY, Api, device_body, pump

# A household's exact place: more digits than the public may see.
LATITUDE, LONGITUDE = -1.294567, 36.817891
PUBLIC_LATITUDE, PUBLIC_LONGITUDE = -1.29, 36.82
CONTACT = "wanjiru@example.org +254 700 000000"


# -- the domain rules ----------------------------------------------------------------------
@pytest.mark.parametrize(("value", "public"), [(-1.294567, -1.29), (36.817891, 36.82), (-0.004, 0.0),
                                               (89.999, 90.0), (-179.996, -180.0), (12.0, 12.0)])
def test_round_coordinate_keeps_two_decimals(value: float, public: float) -> None:
    assert round_coordinate(value) == public
    assert str(round_coordinate(value)) != "-0.0"


def test_commitment_opens_only_with_its_coordinates_and_salt() -> None:
    # GIVEN a commitment to an exact location with a fresh 32-byte salt
    salt = new_location_salt()
    assert len(bytes.fromhex(salt)) == 32 and salt != new_location_salt()
    commitment = location_commitment(LATITUDE, LONGITUDE, salt)
    # THEN it is the SHA-256 of the documented canonical JSON, and opens with exactly that opening
    import hashlib
    document = f'{{"latitude":{LATITUDE},"longitude":{LONGITUDE},"salt":"{salt}"}}'.encode()
    assert commitment == hashlib.sha256(document).hexdigest()
    assert opens(commitment, LATITUDE, LONGITUDE, salt)
    assert opens(commitment.upper(), LATITUDE, LONGITUDE, salt)
    assert not opens(commitment, LATITUDE, LONGITUDE, new_location_salt())
    assert not opens(commitment, PUBLIC_LATITUDE, PUBLIC_LONGITUDE, salt)
    assert not opens("not hex ü", LATITUDE, LONGITUDE, salt)
    # an integer degree commits as the same float the registry stores
    assert location_commitment(-1, 36, salt) == location_commitment(-1.0, 36.0, salt)


def test_opening_checked_from_the_command_line(capsys: pytest.CaptureFixture[str]) -> None:
    salt = new_location_salt()
    commitment = location_commitment(LATITUDE, LONGITUDE, salt)
    assert main([str(LATITUDE), str(LONGITUDE), salt, commitment]) == 0
    assert "OPENS" in capsys.readouterr().out
    assert main([str(LATITUDE), str(LONGITUDE), new_location_salt(), commitment]) == 1
    assert "DOES NOT OPEN" in capsys.readouterr().out
    assert main([str(LATITUDE), str(LONGITUDE), salt]) == 0
    assert capsys.readouterr().out.strip() == commitment
    assert main(["north", "east", salt]) == 2
    assert main([]) == 2


@pytest.mark.parametrize(("rpc", "hint"), [
    ("https://user:pass@host/v3/abcdef?key=x", "https://host"),
    ("https://mainnet.infura.io/v3/0123456789abcdef", "https://mainnet.infura.io"),
    ("https://eth.example.com:8443/rpc?apikey=SECRET#frag", "https://eth.example.com:8443"),
    ("wss://:token@node.example.com/ws", "wss://node.example.com"),
    ("http://127.0.0.1:8545", "http://127.0.0.1:8545"),
    ("http://[::1]:8545/key", "http://[::1]:8545"),
    ("HTTPS://User@Host.Example.com", "https://host.example.com"),
    ("127.0.0.1:8545", None),
    ("http://host:notaport/x", None),
    ("file:///etc/passwd", None),
    ("", None),
    (None, None),
])
def test_rpc_hint_never_carries_credentials(rpc: str | None, hint: str | None) -> None:
    assert public_rpc_hint(rpc) == hint
    for secret in ("pass", "abcdef", "key=", "SECRET", "token", "frag", "User"):
        assert secret not in (public_rpc_hint(rpc) or "")


def test_public_rpc_setting_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN both settings in the environment WHEN loaded THEN the public one is what the ledger shows
    monkeypatch.setenv("DREC_CHAIN_RPC", "https://user:pass@host/v3/abcdef?key=x")
    monkeypatch.setenv("DREC_CHAIN_RPC_PUBLIC", "https://rpc.example.org/public")
    settings = config.load()
    assert settings.chain_rpc_public == "https://rpc.example.org/public"
    assert public_rpc_hint(settings.chain_rpc, settings.chain_rpc_public) == "https://rpc.example.org/public"


# -- through the API -----------------------------------------------------------------------
def _parties(api: Api) -> dict[str, Any]:
    """A source S with its account A (with a contact) and A's household device; another source with its account."""
    _, source = api.post("/sources", {"name": "Agg", "kind": "aggregator"})
    _, other_source = api.post("/sources", {"name": "Other agg", "kind": "aggregator"})
    status, account = api.post("/accounts", {"name": "Household Dev", "kind": "developer", "country": "KE",
                                             "contact": CONTACT}, key=source["api_key"])
    assert status == 201 and account["contact"] == CONTACT
    _, stranger = api.post("/accounts", {"name": "Stranger", "kind": "buyer", "country": "KE"},
                           key=other_source["api_key"])
    status, device = api.post("/devices", device_body(account["account_id"], latitude=LATITUDE,
                                                      longitude=LONGITUDE), key=source["api_key"])
    assert status == 201, device
    return {"source": source, "other_source": other_source, "account": account, "stranger": stranger,
            "device": device}


def _reads(api: Api, p: dict[str, Any], key: str | None) -> tuple[dict[str, Any], dict[str, Any]]:
    """(account, device) as seen with `key`, each from its single read and from its list; both must agree."""
    account_id, device_id = p["account"]["account_id"], p["device"]["device_id"]
    status, account = api.get(f"/accounts/{account_id}", key=key)
    assert status == 200, account
    status, accounts = api.get("/accounts", key=key)
    assert status == 200
    assert next(a for a in accounts["items"] if a["account_id"] == account_id) == account
    status, device = api.get(f"/devices/{device_id}", key=key)
    assert status == 200, device
    for query in ("", f"?owner_account_id={account_id}", "?country=KE"):
        status, devices = api.get(f"/devices{query}", key=key)
        assert status == 200
        assert next(d for d in devices["items"] if d["device_id"] == device_id) == device
    return account, device


def test_registration_answers_the_registering_principal_with_exact_values(api: Api) -> None:
    p = _parties(api)
    device = p["device"]
    assert (device["latitude"], device["longitude"]) == (LATITUDE, LONGITUDE)
    assert opens(device["location_commitment"], LATITUDE, LONGITUDE, device["location_salt"])


def test_public_reads_omit_contact_and_round_coordinates(api: Api) -> None:
    # GIVEN an account with a contact and a household device at an exact location
    p = _parties(api)
    # WHEN anyone reads them without a key
    account, device = _reads(api, p, None)
    # THEN the contact is gone, the coordinates are rounded to 0.01° and the salt is not shown
    assert "contact" not in account and account["name"] == "Household Dev"
    assert (device["latitude"], device["longitude"]) == (PUBLIC_LATITUDE, PUBLIC_LONGITUDE)
    assert "location_salt" not in device
    assert device["location_commitment"] == p["device"]["location_commitment"]
    assert CONTACT not in json.dumps(account) and str(LATITUDE) not in json.dumps(device)


@pytest.mark.parametrize("who", ["account", "source", "operator"])
def test_owner_its_source_and_the_operator_see_exact_values(api: Api, who: str) -> None:
    # GIVEN the registered parties
    p = _parties(api)
    key = OPERATOR_KEY if who == "operator" else p[who]["api_key"]
    # WHEN the owner account, the source that registered it, or the operator reads
    account, device = _reads(api, p, key)
    # THEN the contact, the exact coordinates and the salt are there, and the salt opens the commitment
    assert account["contact"] == CONTACT
    assert (device["latitude"], device["longitude"]) == (LATITUDE, LONGITUDE)
    assert opens(device["location_commitment"], LATITUDE, LONGITUDE, device["location_salt"])


@pytest.mark.parametrize("who", ["stranger", "other_source"])
def test_an_unrelated_key_sees_public_values(api: Api, who: str) -> None:
    # GIVEN an account registered by another source, and that other source
    p = _parties(api)
    # WHEN either reads with its own valid key
    account, device = _reads(api, p, p[who]["api_key"])
    # THEN it sees what the public sees
    assert "contact" not in account
    assert (device["latitude"], device["longitude"]) == (PUBLIC_LATITUDE, PUBLIC_LONGITUDE)
    assert "location_salt" not in device


def test_an_unknown_key_on_a_read_is_refused(api: Api) -> None:
    p = _parties(api)
    for path in ("/accounts", f"/accounts/{p['account']['account_id']}", "/devices",
                 f"/devices/{p['device']['device_id']}"):
        status, body = api.get(path, key="drec_nobody")
        assert status == 401, (path, body)
        assert body["error"]["field"] == "X-Api-Key"


def test_anchored_bodies_hold_rounded_coordinates_a_commitment_and_no_contact(api: Api) -> None:
    # GIVEN the registrations, each recorded as an event
    p = _parties(api)
    events = api.every_event()
    everything = json.dumps(events)
    # THEN no event carries the contact or an exact coordinate
    assert CONTACT not in everything and "wanjiru" not in everything
    assert str(LATITUDE) not in everything and str(LONGITUDE) not in everything
    assert "location_salt" not in everything
    (registered,) = [e for e in events["items"] if e["type"] == "AccountRegistered"
                     and e["subject_id"] == p["account"]["account_id"]]
    assert "contact" not in registered["body"] and registered["body"]["name"] == "Household Dev"
    # AND DeviceRegistered keeps its fields, with rounded coordinates and the commitment
    (device_event,) = [e for e in events["items"] if e["type"] == "DeviceRegistered"]
    body = device_event["body"]
    assert (body["latitude"], body["longitude"]) == (PUBLIC_LATITUDE, PUBLIC_LONGITUDE)
    assert body["registered_by"] == p["source"]["source_id"]
    assert body["owner_account_id"] == p["account"]["account_id"]
    assert body["capacity_w"] == 100 and body["offtaker_type"] == "household"
    # AND the owner's salt opens the anchored commitment; another salt does not
    _, owned = api.get(f"/devices/{p['device']['device_id']}", key=p["account"]["api_key"])
    assert opens(body["location_commitment"], LATITUDE, LONGITUDE, owned["location_salt"])
    assert not opens(body["location_commitment"], LATITUDE, LONGITUDE, new_location_salt())
    assert not opens(body["location_commitment"], PUBLIC_LATITUDE, PUBLIC_LONGITUDE, owned["location_salt"])


def test_no_event_of_the_lifecycle_carries_contact_or_exact_coordinates(api: Api, aws: Any) -> None:
    # GIVEN a household device whose readings are accepted, issued and partly transferred
    p = _parties(api)
    key = p["source"]["api_key"]
    readings = [{"device_id": p["device"]["device_id"], "period_start": f"{day}T05:00:00Z",
                 "period_end": f"{day}T13:00:00Z", "energy_wh": 400} for day in ("2026-10-13", "2026-10-14",
                                                                                "2026-10-15")]
    status, body = api.post("/readings", {"readings": readings}, key=key)
    assert status == 202 and not body["errors"], body
    pump(aws)
    status, moved = api.post("/transfers", {"from_account_id": p["account"]["account_id"],
                                            "to_account_id": p["stranger"]["account_id"], "quantity": 1}, key=key)
    assert status == 201, moved
    # WHEN every event is read
    events = api.every_event()
    types = {e["type"] for e in events["items"]}
    assert {"ReadingAccepted", "DrecIssued", "DrecTransferred"} <= types
    # THEN none holds the contact or an exact coordinate
    everything = json.dumps(events)
    assert CONTACT not in everything
    assert all(str(v) not in everything for v in (LATITUDE, LONGITUDE, "1.29456", "36.81789"))


def test_two_devices_at_one_place_commit_differently(api: Api) -> None:
    # The salt is per device: equal commitments would tell the public that two devices share a roof.
    p = _parties(api)
    _, second = api.post("/devices", device_body(p["account"]["account_id"], latitude=LATITUDE,
                                                 longitude=LONGITUDE), key=p["source"]["api_key"])
    assert second["location_commitment"] != p["device"]["location_commitment"]


def test_ledger_shows_a_credential_free_rpc_hint(api: Api, aws: Any) -> None:
    # GIVEN a chain reached through a provider URL carrying a key in user info, path and query
    aws.settings = replace(aws.settings, chain_rpc="https://user:pass@host/v3/abcdef?key=x")
    aws.__dict__["chain"] = SimpleNamespace(chain_id=31337, contract_address="0x" + "ab" * 20)
    # WHEN anyone asks GET /ledger THEN only scheme and host are shown
    status, ledger = api.get("/ledger")
    assert status == 200 and ledger["rpc_hint"] == "https://host"
    assert "pass" not in json.dumps(ledger) and "abcdef" not in json.dumps(ledger)
    # AND the operator's public endpoint is shown when it is set
    aws.settings = replace(aws.settings, chain_rpc_public="https://rpc.example.org")
    assert api.get("/ledger")[1]["rpc_hint"] == "https://rpc.example.org"


def test_chain_errors_do_not_repeat_the_rpc_key() -> None:
    # A dead node's message reaches API answers (verify): it names the host, never the key.
    from chalicelib.adapters.chain import ChainLedger, ChainUnavailable
    from infra.anvil import free_port

    port = free_port()
    reader = ChainLedger.reader(f"http://user:pass@127.0.0.1:{port}/v3/abcdef?key=x", "0x" + "ab" * 20,
                                receipt_timeout_s=2)
    with pytest.raises(ChainUnavailable) as failure:
        _ = reader.chain_id
    assert f"127.0.0.1:{port}" in str(failure.value)
    assert all(secret not in str(failure.value) for secret in ("pass", "abcdef", "key=x"))


def test_answers_vary_by_key(api: Api) -> None:
    # A cache in front of the API must keep the owner's exact answer apart from the public one.
    response = api.client.http.get("/devices")
    assert response.status_code == 200 and response.headers["Vary"] == "X-Api-Key"


def test_openapi_documents_who_sees_what(api: Api) -> None:
    _, doc = api.get("/openapi.json")
    schemas = doc["components"]["schemas"]
    assert "operator" in schemas["AccountOut"]["properties"]["contact"]["description"]
    assert {"location_commitment", "location_salt"} <= set(schemas["DeviceOut"]["properties"])
    assert "0.01" in schemas["DeviceOut"]["properties"]["latitude"]["description"]
    assert "DREC_CHAIN_RPC_PUBLIC" in schemas["LedgerOut"]["properties"]["rpc_hint"]["description"]
    device_read = doc["paths"]["/devices/{device_id}"]["get"]
    assert device_read["security"] == [{}, {"ApiKey": []}] and "401" in device_read["responses"]
