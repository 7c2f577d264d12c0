"""The verifier re-checks conservation, ownership and signatures, not only Merkle inclusion.

Each test publishes a small event history through a fake registry API (the same JSON the
real API serves, every event anchored under one Merkle root that a fake chain accepts),
then tampers the way a dishonest participant or operator could, and expects the verifier
to name what is wrong.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

from chalicelib.audit import Auditor
from chalicelib.domain.ledger.canonical import canonical_json
from chalicelib.domain.ledger.merkle import MerkleTree, leaf_hash, to_hex
from chalicelib.domain.ledger.shards import device_key, shard_of
from chalicelib.verify import Verifier, render

SERIAL = "DREC-KE-SHS-202610-ABCD2345-00000001"
SECOND = "DREC-KE-SHS-202610-ABCD2345-00000002"
PERIOD = {"period_start": "2026-10-14T05:00:00Z", "period_end": "2026-10-14T13:00:00Z"}


SHARDS = 8
DEVICE_SHARD = shard_of(device_key("dev-1"), SHARDS)
POOL_SHARD = 5  # an issuance's shard (its pool's): not in its document, so any shard the registry chose


def route(event_type: str, body: dict[str, Any]) -> int:
    """The registry's routing rule (`domain.ledger.shards`), for the events these tests publish."""
    if event_type in ("DeviceRegistered", "ReadingAccepted"):
        return DEVICE_SHARD if body.get("device_id", "dev-1") == "dev-1" else 0
    return POOL_SHARD if event_type == "DrecIssued" else 0


@dataclass
class FakeChain:
    """Batches anchored as (root, shard, first_seq, event_count), consecutively per shard as the contract keeps them."""

    batches: list[tuple[bytes, int, int, int]] = field(default_factory=list)

    @property
    def roots(self) -> set[bytes]:
        return {b[0] for b in self.batches}

    def root_info(self, root: bytes) -> Any:
        found = [SimpleNamespace(shard=shard, first_seq=first, event_count=count)
                 for r, shard, first, count in self.batches if r == root]
        return found[0] if found else None

    def next_seq(self, shard: int) -> int:
        return sum(count for _, s, _, count in self.batches if s == shard) + 1


@dataclass
class FakeRegistry:
    """Serves events (numbered per shard), proofs, D-RECs, readings and statements as the API does."""

    chain: FakeChain
    events: list[dict[str, Any]] = field(default_factory=list)
    links: dict[str, list[str]] = field(default_factory=dict)
    drecs: dict[str, dict[str, Any]] = field(default_factory=dict)
    readings: dict[str, dict[str, Any]] = field(default_factory=dict)
    statements: dict[str, dict[str, Any]] = field(default_factory=dict)
    trees: dict[int, MerkleTree] = field(default_factory=dict)
    roots: dict[str, bytes] = field(default_factory=dict)

    def append(self, event_type: str, subject_id: str, body: dict[str, Any], *related: str) -> dict[str, Any]:
        shard = route(event_type, body)
        seq = len(self.in_shard(shard)) + 1
        event = {"shard": shard, "seq": seq, "event_id": f"ev-{shard}-{seq:012d}", "type": event_type,
                 "subject_id": subject_id, "source_id": "operator",
                 "occurred_at": f"2026-10-20T00:00:{len(self.events):02d}Z", "body": body}
        self.events.append(event)
        for subject in (subject_id, *related):
            self.links.setdefault(subject, []).append(event["event_id"])
        return event

    def in_shard(self, shard: int) -> list[dict[str, Any]]:
        return [e for e in self.events if e["shard"] == shard]

    def by_id(self, event_id: str) -> dict[str, Any]:
        found = [e for e in self.events if e["event_id"] == event_id]
        if not found:
            raise LookupError(f"GET /events/{event_id} answered 404")
        return found[0]

    def anchor(self) -> None:
        """One batch of everything of each shard."""
        self.chain.batches = []
        for shard in sorted({e["shard"] for e in self.events}):
            events = self.in_shard(shard)
            self.trees[shard] = MerkleTree([leaf_hash(canonical_json(e)) for e in events])
            self.chain.batches.append((self.trees[shard].root, shard, 1, len(events)))
            self.roots.update((e["event_id"], self.trees[shard].root) for e in events)

    def get(self, path: str) -> Any:
        url = urlparse(path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        parts = url.path.strip("/").split("/")
        if parts == ["ledger"]:
            return {"event_shards": SHARDS}
        if parts == ["events"] and "subject_id" not in query:
            return {"items": [{**e, "anchor": {"root": to_hex(self.roots[e["event_id"]])}
                               if e["event_id"] in self.roots else None}
                              for e in self.in_shard(int(query.get("shard", "0")))], "next_cursor": None}
        if parts == ["events"]:
            found = [self.by_id(i) for i in self.links.get(query["subject_id"], [])]
            return {"items": [e for e in found if e["type"] == query.get("type", e["type"])], "next_cursor": None}
        if parts[0] == "events" and len(parts) == 2:
            return self.by_id(parts[1])
        if parts[0] == "events" and parts[2] == "proof":
            event = self.by_id(parts[1])
            tree, index = self.trees.get(event["shard"]), event["seq"] - 1
            if tree is None or index >= len(tree):
                raise LookupError(f"GET {path} answered 404")
            return {"leaf": to_hex(tree.leaves[index]), "proof": [to_hex(p) for p in tree.proof(index)],
                    "root": to_hex(tree.root), "tx_hash": "0xfeed"}
        table = {"drecs": self.drecs, "readings": self.readings, "redemptions": self.statements}[parts[0]]
        if parts[1] not in table:
            raise LookupError(f"GET {path} answered 404")
        return table[parts[1]]


def issue(registry: FakeRegistry, serial: str, owner: str, reading_id: str, energy_wh: int = 1000) -> None:
    registry.append("DrecIssued", serial, {"serial": serial, "owner_account_id": owner, "energy_wh": 1000,
                                           "contributions": [["dev-1", reading_id, energy_wh]]}, owner)
    registry.drecs[serial] = {"serial": serial, "owner_account_id": owner, "status": "active", "energy_wh": 1000,
                              "contributions": [{"device_id": "dev-1", "reading_id": reading_id,
                                                 "energy_wh": energy_wh}]}
    registry.readings.setdefault(reading_id, {"reading_id": reading_id, "serials": []})["serials"].append(serial)


def honest_history(source_signing_address: str | None = None, reading_body: dict[str, Any] | None = None,
                   energy_wh: int = 1000) -> FakeRegistry:
    """A source, account and device; one reading of `energy_wh` accepted; one D-REC issued to acc-dev."""
    registry = FakeRegistry(FakeChain())
    source = {"name": "Agg", "registered_by": "operator"}
    if source_signing_address:
        source["signing_address"] = source_signing_address
    registry.append("SourceRegistered", "src-1", source)
    registry.append("AccountRegistered", "acc-dev", {"name": "Dev", "registered_by": "src-1"})
    registry.append("AccountRegistered", "acc-buyer", {"name": "Buyer", "registered_by": "src-1"})
    registry.append("DeviceRegistered", "dev-1", {"owner_account_id": "acc-dev", "registered_by": "src-1"},
                    "acc-dev")
    registry.append("ReadingAccepted", "rdg-1", reading_body or {"reading_id": "rdg-1", "device_id": "dev-1",
                                                                 "energy_wh": energy_wh, **PERIOD}, "dev-1")
    issue(registry, SERIAL, "acc-dev", "rdg-1")
    return registry


def verify(registry: FakeRegistry, target: str = SERIAL) -> tuple[bool, str]:
    registry.anchor()
    result = Verifier("http://registry.invalid", "", get=registry.get, chain=registry.chain).verify(target)
    return result.ok, render(result)


def transfer(registry: FakeRegistry, transfer_id: str, sender: str, receiver: str, *serials: str) -> None:
    registry.append("DrecTransferred", transfer_id, {"transfer_id": transfer_id, "from_account_id": sender,
                                                     "to_account_id": receiver, "serial_ranges": list(serials)},
                    *serials)
    for serial in serials:
        registry.drecs[serial]["owner_account_id"] = receiver


def redeem(registry: FakeRegistry, redemption_id: str, account: str, serial: str, ledger_sha256: str) -> None:
    registry.append("DrecRedeemed", redemption_id, {"redemption_id": redemption_id, "account_id": account,
                                                    "serial_ranges": [serial], "ledger_sha256": ledger_sha256},
                    serial)
    registry.drecs[serial]["status"] = "redeemed"
    registry.statements[redemption_id] = {"redemption_id": redemption_id, "serials": [serial],
                                          "ledger_sha256": ledger_sha256}


def test_an_honest_drec_transferred_and_redeemed_is_valid() -> None:
    # GIVEN a D-REC issued, transferred once and redeemed by its holder
    registry = honest_history()
    transfer(registry, "trf-1", "acc-dev", "acc-buyer", SERIAL)
    redeem(registry, "red-1", "acc-buyer", SERIAL, "ab" * 32)
    # WHEN it is verified THEN every check passes
    ok, report = verify(registry)
    assert ok, report
    assert "transfer of DREC-KE-SHS-202610-ABCD2345-00000001 is from its holder" in report


def test_a_forged_second_issuance_spending_the_same_reading_is_named() -> None:
    # GIVEN a reading of 1000 Wh already spent by one D-REC, and a second, anchored, DrecIssued
    # spending 600 Wh of it again
    registry = honest_history()
    issue(registry, SECOND, "acc-dev", "rdg-1", energy_wh=600)
    # WHEN either D-REC is verified THEN the reading is named as spent beyond its judged energy
    for serial in (SERIAL, SECOND):
        ok, report = verify(registry, serial)
        assert not ok
        assert "rdg-1: spent at most its judged 1000 Wh across D-RECs — 1600 Wh spent by" in report
        assert "INVALID" in report


def test_a_second_issuance_that_the_links_hide_is_still_named_from_the_forged_side() -> None:
    # GIVEN the forger did not link the forged D-REC to the reading
    registry = honest_history()
    issue(registry, SECOND, "acc-dev", "rdg-1", energy_wh=600)
    registry.readings["rdg-1"]["serials"] = [SERIAL]
    # WHEN the forged D-REC is verified THEN it still counts itself with the linked ones
    ok, report = verify(registry, SECOND)
    assert not ok and "1600 Wh spent" in report


def test_a_transfer_from_someone_who_did_not_hold_the_drec_is_named() -> None:
    # GIVEN a transfer event inserted in the store, from an account that never held the D-REC
    registry = honest_history()
    transfer(registry, "trf-forged", "acc-buyer", "acc-buyer", SERIAL)
    # WHEN it is verified THEN that event is named
    ok, report = verify(registry)
    assert not ok
    forged = next(e["event_id"] for e in registry.events if e["subject_id"] == "trf-forged")
    assert f"[MISMATCH] {forged}: transfer of {SERIAL} is from its holder" in report


def test_a_move_after_redemption_is_named() -> None:
    registry = honest_history()
    redeem(registry, "red-1", "acc-dev", SERIAL, "cd" * 32)
    transfer(registry, "trf-late", "acc-dev", "acc-buyer", SERIAL)
    registry.drecs[SERIAL]["status"] = "redeemed"
    ok, report = verify(registry)
    assert not ok and f"nothing moves {SERIAL} after its redemption" in report


def test_a_statement_whose_ledger_hash_differs_from_the_anchored_one_is_named() -> None:
    registry = honest_history()
    redeem(registry, "red-1", "acc-dev", SERIAL, "ef" * 32)
    registry.statements["red-1"]["ledger_sha256"] = "00" * 32
    ok, report = verify(registry)
    assert not ok and "red-1: statement's ledger SHA-256 is the anchored one" in report


def test_an_owner_the_events_do_not_explain_is_named() -> None:
    registry = honest_history()
    registry.drecs[SERIAL]["owner_account_id"] = "acc-buyer"  # changed in the store, no transfer event
    ok, report = verify(registry)
    assert not ok and "current owner is the end of the chain of transfers" in report


def test_a_transfer_event_that_does_not_name_the_drec_in_its_ranges_is_named() -> None:
    registry = honest_history()
    registry.append("DrecTransferred", "trf-x", {"transfer_id": "trf-x", "from_account_id": "acc-dev",
                                                 "to_account_id": "acc-buyer", "serial_ranges": [SECOND]}, SERIAL)
    ok, report = verify(registry)
    assert not ok and f"transfer's serial ranges include {SERIAL}" in report


@pytest.mark.parametrize("published", [{"signature": "0x" + "11" * 65}, {"signer": "0x" + "22" * 20}])
def test_a_signature_published_where_no_key_was_registered_is_named(published: dict[str, str]) -> None:
    registry = honest_history(reading_body={"reading_id": "rdg-1", "device_id": "dev-1", "energy_wh": 1000,
                                            **PERIOD, **published})
    ok, report = verify(registry)
    assert not ok and "no key was registered, so no signature is published" in report


def audit(registry: FakeRegistry) -> tuple[bool, str]:
    registry.anchor()
    result = Auditor(registry.get, registry.chain).run()
    return result.ok, render(result)


def test_the_audit_passes_an_honest_ledger_and_names_a_double_spend_no_index_points_to() -> None:
    # GIVEN an honest history, transferred and redeemed
    registry = honest_history()
    transfer(registry, "trf-1", "acc-dev", "acc-buyer", SERIAL)
    redeem(registry, "red-1", "acc-buyer", SERIAL, "ab" * 32)
    ok, report = audit(registry)
    assert ok, report
    # WHEN a second D-REC spends the reading again and the forger links it to nothing
    registry.append("DrecIssued", SECOND, {"serial": SECOND, "owner_account_id": "acc-dev",
                                           "contributions": [["dev-1", "rdg-1", 1]]})
    ok, report = audit(registry)
    # THEN the audit, reading every event, names the reading
    assert not ok
    assert "rdg-1: spent at most its judged 1000 Wh across D-RECs — 1001 Wh spent by" in report


def test_the_audit_names_a_batch_whose_root_the_chain_did_not_anchor_for_its_range() -> None:
    registry = honest_history()
    registry.anchor()
    root, shard, _, count = registry.chain.batches[0]
    registry.chain.batches[0] = (root, shard, 2, count)
    result = Auditor(registry.get, registry.chain).run()
    assert not result.ok and "the chain anchored this root for exactly shard 0 seq 1.." in render(result)


def test_the_audit_names_a_batch_the_chain_anchored_for_another_shard() -> None:
    registry = honest_history()
    registry.anchor()
    root, _, first, count = registry.chain.batches[0]
    registry.chain.batches[0] = (root, 7, first, count)
    result = Auditor(registry.get, registry.chain).run()
    assert not result.ok and "the chain anchored this root for exactly shard 0 seq 1.." in render(result)


def test_the_audit_names_an_event_outside_the_shard_its_device_is_routed_to() -> None:
    registry = honest_history()
    moved = next(e for e in registry.events if e["type"] == "DeviceRegistered")
    registry.events.remove(moved)
    registry.events.insert(0, {**moved, "shard": 0, "seq": 0})  # published in the registry shard instead
    for shard in (0, DEVICE_SHARD):  # renumbered so that each shard stays gap-free
        for seq, event in enumerate(registry.in_shard(shard), start=1):
            event.update(seq=seq, event_id=f"ev-{shard}-{seq:012d}")
    ok, report = audit(registry)
    assert not ok and f"is in the shard its subject is routed to — in shard 0, routed to {DEVICE_SHARD}" in report


def test_the_audit_names_an_event_body_changed_after_anchoring() -> None:
    registry = honest_history()
    registry.anchor()
    registry.events[4]["body"]["energy_wh"] = 5000  # the reading's judged energy, raised in the store
    result = Auditor(registry.get, registry.chain).run()
    assert not result.ok and f"batch root recomputed from the events of shard {DEVICE_SHARD} seq 1.." in render(result)


def test_the_audit_names_moves_from_non_holders_and_after_redemption() -> None:
    registry = honest_history()
    transfer(registry, "trf-x", "acc-buyer", "acc-buyer", SERIAL)
    redeem(registry, "red-1", "acc-buyer", SERIAL, "ab" * 32)
    transfer(registry, "trf-y", "acc-buyer", "acc-dev", SERIAL)
    ok, report = audit(registry)
    assert not ok
    assert f"{SERIAL} moves from its holder — from acc-buyer, but acc-dev held it" in report
    assert f"nothing moves {SERIAL} after its redemption" in report


def named_accepted_event(registry: FakeRegistry, reading_id: str = "rdg-1") -> str:
    """The reading names its ReadingAccepted event, as a reading accepted since readings keep it does."""
    (event,) = [e for e in registry.events if e["type"] == "ReadingAccepted" and e["subject_id"] == reading_id]
    registry.readings[reading_id]["accepted_event_id"] = event["event_id"]
    return str(event["event_id"])


class NoSubjectListing(FakeRegistry):
    """A registry whose readings name their events: listing a reading's events is never needed."""

    def get(self, path: str) -> Any:
        assert not path.startswith("/events?subject_id=rdg-"), path
        return super().get(path)


def test_a_reading_that_names_its_accepted_event_is_checked_by_that_event_without_listing_its_events() -> None:
    # GIVEN an honest history whose reading names its ReadingAccepted event
    registry = honest_history()
    registry.__class__ = NoSubjectListing
    event_id = named_accepted_event(registry)
    # WHEN it is verified THEN every check passes, from the named event
    ok, report = verify(registry)
    assert ok, report
    assert f"rdg-1: reading accepted by {event_id} (device dev-1)" in report


@pytest.mark.parametrize("pointing_at", ["DeviceRegistered", "another reading's ReadingAccepted"])
def test_a_reading_naming_an_event_that_is_not_its_acceptance_is_named(pointing_at: str) -> None:
    # GIVEN a reading whose accepted event id names some other anchored event
    registry = honest_history()
    if pointing_at == "DeviceRegistered":
        other = next(e for e in registry.events if e["type"] == "DeviceRegistered")
    else:
        other = registry.append("ReadingAccepted", "rdg-2", {"reading_id": "rdg-2", "device_id": "dev-1",
                                                              "energy_wh": 5000, **PERIOD}, "dev-1")
    registry.readings["rdg-1"]["accepted_event_id"] = other["event_id"]
    # WHEN it is verified THEN that reading is named, and nothing is judged against the wrong energy
    ok, report = verify(registry)
    assert not ok
    assert f"[MISMATCH] rdg-1: reading accepted by {other['event_id']} (device dev-1)" in report
    assert "spent at most its judged" not in report


def test_a_reading_naming_an_event_that_does_not_exist_is_named_not_a_crash() -> None:
    registry = honest_history()
    registry.readings["rdg-1"]["accepted_event_id"] = "ev-3-000000009999"
    ok, report = verify(registry)
    assert not ok and "[MISMATCH] rdg-1: reading accepted by ev-3-000000009999 (device dev-1)" in report


def test_a_double_spend_is_named_through_the_serials_a_reading_keeps() -> None:
    # GIVEN a reading naming its event, spent by two D-RECs that its serials name
    registry = honest_history()
    named_accepted_event(registry)
    issue(registry, SECOND, "acc-dev", "rdg-1", energy_wh=600)
    # WHEN the first D-REC is verified THEN the reading is named as spent beyond its judged energy
    ok, report = verify(registry, SERIAL)
    assert not ok and "rdg-1: spent at most its judged 1000 Wh across D-RECs — 1600 Wh spent by" in report
