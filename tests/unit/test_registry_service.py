"""Registering sources, accounts and devices, on the in-memory registry: who may, replays, what others see."""

from __future__ import annotations

from datetime import date

import pytest

from chalicelib.domain.errors import Forbidden, NotFound, RuleBroken
from chalicelib.domain.model import AccountKind, DeviceType, OfftakerType, Principal, SourceKind
from chalicelib.domain.registry import RegisterAccount, RegisterSource
from chalicelib.services import access, registry
from tests.fakes.world import OPERATOR, World


def test_a_source_is_registered_once_per_idempotency_key_and_its_key_shown_once() -> None:
    world = World()
    command = RegisterSource("Agg", SourceKind.AGGREGATOR, "0x" + "Ab" * 20)
    first = registry.register_source(world.registry, OPERATOR, command, "req-1")
    again = registry.register_source(world.registry, OPERATOR, command, "req-1")
    assert first.created and first.api_key and first.record["signing_address"] == "0x" + "ab" * 20
    assert not again.created and again.api_key is None and again.record == first.record
    assert access.authenticate(world.registry, None, first.api_key) == Principal("source",
                                                                                 first.record["source_id"])
    (event,) = world.events.of_type("SourceRegistered")
    assert event.subject_id == first.record["source_id"] and "api_key" not in event.body


def test_only_the_operator_registers_sources_and_accounts_do_not_register_accounts() -> None:
    world = World()
    source, _ = world.source()
    with pytest.raises(Forbidden):
        registry.register_source(world.registry, source, RegisterSource("X", SourceKind.AGGREGATOR))
    account = world.account(source)
    with pytest.raises(Forbidden):
        registry.register_account(world.registry, Principal("account", account["account_id"]),
                                  RegisterAccount("Y", AccountKind.BUYER, "KE"))


def test_an_external_id_names_one_account_per_source_and_contact_stays_private() -> None:
    world = World()
    source, _ = world.source()
    first = world.account(source, external_id="crm-1", contact="dev@example.org")
    again = world.account(source, external_id="crm-1", name="Other name")
    assert again == first and first["contact"] == "dev@example.org"
    assert "contact" not in registry.get_account(world.registry, first["account_id"])
    assert registry.get_account(world.registry, first["account_id"], source)["contact"] == "dev@example.org"
    (event,) = world.events.of_type("AccountRegistered")
    assert "contact" not in event.body
    with pytest.raises(RuleBroken):
        world.account(source, country="XX")


def test_devices_obey_capacity_and_commissioning_rules_and_their_owner() -> None:
    world = World()
    source, account, device = world.registered_device()
    owner = account["account_id"]
    with pytest.raises(RuleBroken, match="capacity is in W"):
        world.device(source, owner, capacity_w=50_000.0)
    with pytest.raises(RuleBroken, match="in the future"):
        world.device(source, owner, commissioning_date=date(2999, 1, 1))
    with pytest.raises(RuleBroken, match="register the account first"):
        world.device(source, "acc-nobody")
    stranger, _ = world.source()
    with pytest.raises(Forbidden):
        world.device(stranger, owner)
    # The public sees the location rounded and no salt; the owner's side sees both; the event is rounded
    public = registry.get_device(world.registry, device["device_id"])
    assert (public["latitude"], public["longitude"]) == (-1.29, 36.82) and "location_salt" not in public
    assert registry.get_device(world.registry, device["device_id"], source)["location_salt"]
    (event,) = world.events.of_type("DeviceRegistered")
    assert "location_salt" not in event.body and "linke_turbidity" not in event.body
    assert event.body["location_commitment"] == device["location_commitment"]


def test_a_fresh_registration_answers_with_every_field_of_its_command() -> None:
    world = World()
    source, _, device = world.registered_device()
    assert device["tilt_deg"] is None and device["external_id"] is None and device["status"] == "active"
    stored = registry.get_device(world.registry, device["device_id"], source)
    assert "tilt_deg" not in stored and stored["linke_turbidity"] == [3.0] * 12


def test_listings_page_and_filter_and_unknown_ids_are_404() -> None:
    world = World()
    source, account, _ = world.registered_device()
    world.device(source, account["account_id"], device_type=DeviceType.MINI_GRID, capacity_w=10_000.0,
                 offtaker_type=OfftakerType.BUSINESS)
    page = registry.list_devices(world.registry, 1, None, owner_account_id=account["account_id"])
    assert len(page.items) == 1 and page.next_cursor
    rest = registry.list_devices(world.registry, 10, page.next_cursor, owner_account_id=account["account_id"])
    assert len(rest.items) == 1 and rest.next_cursor is None
    assert [d["device_type"] for d in registry.list_devices(world.registry, 10, None,
                                                            device_type="mini_grid").items] == ["mini_grid"]
    for get in (registry.get_source, registry.get_account, registry.get_device):
        with pytest.raises(NotFound):
            get(world.registry, "nobody")
