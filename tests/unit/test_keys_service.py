"""Rotating and revoking API keys on the in-memory registry: an old key stops at once, a race leaves none alive."""

from __future__ import annotations

import pytest

from chalicelib.domain.errors import Conflict, Forbidden, RuleBroken, Unauthorized
from chalicelib.domain.model import AccountKind, Principal
from chalicelib.domain.registry import RegisterAccount
from chalicelib.domain.stores import KeyRing
from chalicelib.services import access, keys, registry
from tests.fakes.faults import Faults
from tests.fakes.world import OPERATOR, World


def test_a_rotated_key_stops_at_once_and_the_new_one_works() -> None:
    world = World()
    source, old = world.source()
    rotated = keys.rotate_key(world.keys, source, old)
    with pytest.raises(Unauthorized):
        access.authenticate(world.registry, None, old)
    assert access.authenticate(world.registry, None, rotated["api_key"]) == source
    with pytest.raises(Unauthorized):
        keys.rotate_key(world.keys, source, old)
    (event,) = world.events.of_type("ApiKeyRotated")
    assert old not in str(event.body) and rotated["api_key"] not in str(event.body)
    with pytest.raises(RuleBroken):
        keys.rotate_key(world.keys, OPERATOR, "drec_operator")


def test_revoking_stops_every_key_keeps_the_record_and_is_idempotent() -> None:
    world = World()
    source, first = world.source()
    second = keys.rotate_key(world.keys, source, first)["api_key"]
    with pytest.raises(Forbidden):
        keys.revoke(world.registry, world.keys, source, "source", source.id)
    record = keys.revoke(world.registry, world.keys, OPERATOR, "source", source.id)
    assert record["revoked_by"] == "operator" and record["name"] == "Agg"
    for key in (first, second):
        with pytest.raises(Unauthorized):
            access.authenticate(world.registry, None, key)
    assert keys.revoke(world.registry, world.keys, OPERATOR, "source", source.id) == record
    assert len(world.events.of_type("SourceRevoked")) == 1


def test_a_rotation_that_read_the_ring_before_a_revocation_leaves_no_key_alive() -> None:
    world = World()
    source, _ = world.source()
    done = registry.register_account(world.registry, source, RegisterAccount("Dev", AccountKind.DEVELOPER, "KE"))
    holder, account_key = Principal("account", done.record["account_id"]), str(done.api_key)
    ring = world.keys.ring(holder.id)
    keys.revoke(world.registry, world.keys, OPERATOR, "account", holder.id)
    # GIVEN a key store that still hands out the ring read before the revocation
    stale = Faults(world.keys)
    stale.__dict__["ring"] = lambda principal_id: ring
    with pytest.raises(Unauthorized):
        keys.rotate_key(stale, holder, account_key)
    assert world.keys.ring(holder.id).key_hashes == frozenset() and world.events.of_type("ApiKeyRotated") == []


def test_a_ring_that_keeps_changing_ends_in_a_conflict() -> None:
    world = World()
    source, key = world.source()
    store = Faults(world.keys)
    store.__dict__["ring"] = lambda principal_id: KeyRing(frozenset(), 99)  # never the current version
    with pytest.raises(Conflict):
        keys.rotate_key(store, source, key)
    assert access.authenticate(world.registry, None, key) == source
