"""Each in-memory fake and its DynamoDB adapter (on in-process moto) agree: same inputs, same records, same refusals.

The service tests trust the fakes; this is what earns that trust. Each scenario runs on both and
records what it observes; the observations must be equal, and must be the ones expected.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from chalicelib.config import event_shards
from chalicelib.domain.ledger.events import NewEvent
from chalicelib.domain.ledger.shards import device_key, shard_of
from chalicelib.domain.readings import (
    DeviceUpdate,
    DeviceWrites,
    PeerContribution,
    ReadingStatus,
    ReceivedReading,
    Stage,
    StateChange,
    Transition,
)
from chalicelib.domain.registry import Account, Device, Source
from chalicelib.domain.stores import ExternalIdTaken, KeyGone, KeysChanged
from chalicelib.domain.twin.peers import PeerHistogram
from chalicelib.services.access import hash_key
from tests.fakes.ledger import FakeEvents
from tests.fakes.readings import FakeReadings
from tests.fakes.registry import FakeKeys, FakeRegistry

READING = ReceivedReading("rdg-1", "dev-1", "acc-1", "2026-10-14T08:00:00Z", "2026-10-14T09:00:00Z", 40, "src-1",
                          received_at="2026-10-14T09:05:00Z", external_id="r1", derived=False,
                          payment={"paid_from": "a", "paid_until": "b"})
OTHER = replace(READING, reading_id="rdg-2", period_start="2026-10-14T09:00:00Z", period_end="2026-10-14T10:00:00Z",
                external_id=None, payment=None, signer="0xabc", signature="0x" + "11" * 65)


def _event(subject: str) -> NewEvent:
    return NewEvent("ReadingAccepted", subject, "src-1", "2026-10-14T10:00:00Z", {"reading_id": subject},
                    related_ids=("dev-1",))


def _accept(reading_id: str, energy_wh: int, from_status: ReadingStatus = ReadingStatus.QUEUED) -> Transition:
    return Transition(reading_id, from_status, ReadingStatus.ACCEPTED, Stage.POOLING, judged_energy_wh=energy_wh,
                      judged_at="2026-10-14T10:00:00Z", rule="ok", reason="", numbers={"expected_wh": 41.5})


def readings_scenario(store: Any) -> list[Any]:
    seen: list[Any] = []
    seen.append(store.store_new([READING, OTHER], "src-1"))
    seen.append(store.store_new([replace(READING, energy_wh=99)], "src-1"))  # the id is taken
    seen.append(store.store_new([replace(OTHER, reading_id="rdg-3", external_id="r1")], "src-1"))  # r1 is taken
    seen.append(store.readings(["rdg-1", "rdg-2", "rdg-3"]))
    seen.append(store.contents(["rdg-1", "nobody"]))
    seen.append(store.external_targets("src-1", ["r1", "r9"]))
    claim = StateChange("dev-1", 0, ((100, 200),), {"accepted_count": 1, "mean_ratio": 0.5, "sigma_ratio": 0.0})
    # One pack: a good group and a group whose energy no longer matches: the bad one set aside, the good one written
    bad = DeviceWrites("dev-2", None, [_accept("rdg-2", 41)], [_event("rdg-2")])
    good = DeviceWrites("dev-1", claim, [_accept("rdg-1", 40)], [_event("rdg-1")])
    seen.append([g.device_id for g in store.commit_verdicts([good, bad])])
    seen.append((store.readings(["rdg-1"])["rdg-1"].status, store.device_states(["dev-1"])))
    seen.append([g.device_id for g in store.commit_verdicts([good])])  # the state it read has moved on
    seen.append((store.readings(["rdg-1"]), store.device_states(["dev-1"])))
    # The same state version again, and a transition from a status the reading has left: refused
    seen.append([g.device_id for g in store.commit_verdicts([good])])
    stale = DeviceWrites("dev-1", None, [_accept("rdg-1", 40)], [])
    seen.append([g.device_id for g in store.commit_verdicts([stale])])
    rejected = DeviceWrites("dev-1", None, [Transition("rdg-2", ReadingStatus.QUEUED, ReadingStatus.REJECTED, None,
                                                       review={"decision": "reject", "note": None})], [])
    seen.append([g.device_id for g in store.commit_verdicts([rejected])])
    seen.append(store.readings(["rdg-2"]))
    seen.append([r.reading_id for r in store.by_status(ReadingStatus.ACCEPTED, 10, None)[0]])
    seen.append([r.reading_id for r in store.device_readings("dev-1", 10, None, ReadingStatus.REJECTED)[0]])
    return seen


def test_fake_and_dynamo_readings_agree(aws: Any) -> None:
    fake, dynamo = readings_scenario(FakeReadings()), readings_scenario(aws.readings)
    assert fake == dynamo
    assert fake[0] == [] and fake[1] == ["rdg-1"] and fake[2] == ["rdg-3"]
    assert fake[6] == ["dev-2"] and fake[7][0] == ReadingStatus.ACCEPTED and fake[7][1]["dev-1"].version == 1
    assert fake[8] == ["dev-1"] and fake[9][1]["dev-1"].version == 1
    # The accepted reading keeps the id of the ReadingAccepted event its verdict wrote (its device shard's first)
    shard = shard_of(device_key("dev-1"), event_shards())
    assert fake[9][0]["rdg-1"].accepted_event_id == f"ev-{shard}-000000000001"
    assert fake[9][0]["rdg-1"].drec_serials == frozenset()
    assert fake[13]["rdg-2"].accepted_event_id is None  # rejected: no event
    assert fake[10] == ["dev-1"] and fake[11] == ["dev-1"] and fake[12] == []
    assert fake[13]["rdg-2"].review == {"decision": "reject"} and fake[13]["rdg-2"].stage is None


SOURCE = Source("src-1", "Agg", "aggregator", "2026-10-01T00:00:00Z", "operator", signing_address="0xabc")
ACCOUNT = Account("acc-1", "Dev", "developer", "KE", "2026-10-01T00:00:00Z", "src-1", external_id="crm-1",
                  contact="dev@example.org")
DEVICE = Device("dev-1", "acc-1", "solar_home_system", 100.0, -1.29, 36.82, "KE", "2025-01-15", "household",
                "2026-10-01T00:00:00Z", "src-1", tilt_deg=10.5, location_salt="salt", location_commitment="c",
                altitude_m=1650.0, linke_turbidity=(3.0,) * 12)


def _event_of(subject: str) -> NewEvent:
    return NewEvent("Registered", subject, "operator", "2026-10-01T00:00:00Z", {"id": subject})


def _outcome(call: Callable[[], Any]) -> Any:
    try:
        call()
        return "ok"
    except (ExternalIdTaken, KeyGone, KeysChanged) as refused:
        return type(refused).__name__, str(refused)


def registry_scenario(registry: Any, keys: Any) -> list[Any]:
    seen: list[Any] = []
    registry.register(SOURCE, _event_of("src-1"), hash_key("k1"))
    registry.register(ACCOUNT, _event_of("acc-1"), hash_key("k2"), ("src-1", "account", "crm-1"))
    registry.register(DEVICE, _event_of("dev-1"), external=("src-1", "device", "m-1"))
    seen.append(_outcome(lambda: registry.register(replace(ACCOUNT, account_id="acc-2"), _event_of("acc-2"),
                                                   hash_key("k3"), ("src-1", "account", "crm-1"))))
    seen.append((registry.source("src-1"), registry.account("acc-1"), registry.device("dev-1"),
                 registry.account("acc-2")))
    seen.append((registry.accounts(["acc-1", "acc-9"]), registry.device_records(["dev-1", "dev-9"])))
    seen.append((registry.find_external("src-1", "device", "m-1"), registry.principal_for_key_hash(hash_key("k2"))))
    seen.append(registry.list_devices(10, None, owner_account_id="acc-1")[0])
    ring = keys.ring("acc-1")
    seen.append(_outcome(lambda: keys.rotate("account", "acc-1", ring, hash_key("k2"), hash_key("k4"),
                                             _event_of("acc-1"))))
    seen.append(_outcome(lambda: keys.rotate("account", "acc-1", keys.ring("acc-1"), hash_key("k2"),
                                             hash_key("k5"), _event_of("acc-1"))))  # the old key is gone
    seen.append(_outcome(lambda: keys.rotate("account", "acc-1", ring, hash_key("k4"), hash_key("k5"),
                                             _event_of("acc-1"))))  # a stale ring
    seen.append(_outcome(lambda: keys.revoke("account", "acc-1", ring, "t", "operator", _event_of("acc-1"))))
    seen.append(_outcome(lambda: keys.revoke("account", "acc-1", keys.ring("acc-1"), "t", "operator",
                                             _event_of("acc-1"))))
    seen.append(_outcome(lambda: keys.rotate("account", "acc-1", keys.ring("acc-1"), hash_key("k4"),
                                             hash_key("k6"), _event_of("acc-1"))))  # revoked
    seen.append((keys.ring("acc-1").key_hashes, registry.principal_for_key_hash(hash_key("k4")),
                 registry.account("acc-1")))
    return seen


def test_fake_and_dynamo_registries_agree(aws: Any) -> None:
    fake_registry = FakeRegistry()
    fake = registry_scenario(fake_registry, FakeKeys(fake_registry))
    dynamo = registry_scenario(aws.registry, aws.keys)
    assert fake == dynamo
    assert fake[0] == ("ExternalIdTaken", "acc-1")
    assert fake[1] == (SOURCE, ACCOUNT, DEVICE, None)
    assert fake[5:10] == ["ok", ("KeyGone", "acc-1"), ("KeysChanged", "acc-1"), ("KeysChanged", "acc-1"), "ok"]
    assert fake[10] == ("KeyGone", "acc-1")
    assert fake[11][0] == frozenset() and fake[11][1] is None and fake[11][2].revoked_by == "operator"


def test_the_fake_leaves_out_what_dynamodb_would_not_store() -> None:
    store = FakeReadings()
    store.store_new([replace(READING, payment={"paid_from": "a", "note": None})], "src-1")
    assert store.readings(["rdg-1"])["rdg-1"].payment == {"paid_from": "a"}


def neighbours_scenario(registry: Any, store: Any) -> list[Any]:
    """Histograms merged within a pack (one item named once), counted per shard, a cell's reporting devices,
    a review opened only on an active device, a maintenance note set and lifted."""
    registry.register(DEVICE, _event_of("dev-1"))
    seen: list[Any] = []
    one = PeerContribution("kzf0", 1_700_000_000, 3600, 0, 25, 30)
    groups = [DeviceWrites("dev-1", None, [], [], (one, replace(one, ratio_bin=26)), "kzf0",
                           DeviceUpdate("dev-1", {"state": "open", "reason": "steadily high"})),
              DeviceWrites("dev-2", None, [], [], (one, replace(one, shard=1, diffuse_bin=None,
                                                                orientation_known=False)), "kzf0")]
    seen.append([g.device_id for g in store.commit_verdicts(groups)])
    periods = [("kzf0", 1_700_000_000, 3600), ("kzf1", 1_700_000_000, 3600)]
    seen.append(store.peer_histograms(periods, 2))
    seen.append(store.peer_histograms(periods, 1))
    seen.append(store.reporting_devices(["kzf0", "kzf1"]))
    device = registry.device("dev-1")
    seen.append((device.status, dict(device.review or {})))
    # The device is under review now: opening another is refused, with everything else in its pack.
    again = DeviceWrites("dev-1", None, [], [], (one,), None, DeviceUpdate("dev-1", {"state": "open"}))
    seen.append([g.device_id for g in store.commit_verdicts([again])])
    seen.append(store.peer_histograms(periods[:1], 2))
    note = {"since": "2026-10-20T00:00:00Z", "reason": "low", "ratio": 0.6}
    store.commit_verdicts([DeviceWrites("dev-1", None, [], [], (), None, DeviceUpdate("dev-1", None, True, note))])
    seen.append(dict(registry.device("dev-1").maintenance or {}))
    store.commit_verdicts([DeviceWrites("dev-1", None, [], [], (), None, DeviceUpdate("dev-1", None, True, None))])
    seen.append(registry.device("dev-1").maintenance)
    return seen


def test_readings_store_neighbours_and_device_updates_agree(aws: Any) -> None:
    fake_registry = FakeRegistry()
    fake = neighbours_scenario(fake_registry, FakeReadings(registry=fake_registry))
    dynamo = neighbours_scenario(aws.registry, aws.readings)
    assert fake == dynamo
    assert fake[0] == [] and fake[3] == {"kzf0": 2}
    assert fake[1] == {("kzf0", 1_700_000_000, 3600): PeerHistogram({25: 2, 26: 1}, {30: 3}, {25: 1})}
    assert fake[2] == {("kzf0", 1_700_000_000, 3600): PeerHistogram({25: 2, 26: 1}, {30: 3})}
    assert fake[4] == ("under_review", {"state": "open", "reason": "steadily high"})
    assert fake[5] == ["dev-1"] and fake[6] == fake[1]
    assert fake[7] == {"since": "2026-10-20T00:00:00Z", "reason": "low", "ratio": 0.6} and fake[8] is None


def events_scenario(events: Any, append: Any) -> list[Any]:
    """Events of the registry shard and of two devices' shards, read back every way the ports read them."""
    dev_a, dev_b = "dev-1", next(f"dev-{i}" for i in range(2, 99)
                                 if shard_of(device_key(f"dev-{i}"), 8) != shard_of(device_key("dev-1"), 8))
    at = "2026-11-01T00:00:0{}Z"
    stored = append([NewEvent("AccountRegistered", "acc-1", "op", at.format(1), {"n": 1})], None)
    stored += append([NewEvent("DeviceRegistered", dev_a, "op", at.format(2), {"n": 2}, ("acc-1",))], device_key(dev_a))
    stored += append([NewEvent("DeviceRegistered", dev_b, "op", at.format(3), {"n": 3}, ("acc-1",))], device_key(dev_b))
    stored += append([NewEvent("ReadingAccepted", "rdg-1", "op", at.format(4), {"device_id": dev_a}, (dev_a,)),
                      NewEvent("ReadingAccepted", "rdg-2", "op", at.format(4), {"device_id": dev_a}, (dev_a,))],
                     device_key(dev_a))
    shards = sorted({e.shard for e in stored})
    seen: list[Any] = [[(e.shard, e.seq, e.event_id) for e in stored]]
    seen.append([events.current_seq(s) for s in range(8)])
    seen.append([e.event_id for e in events.list_events(10, None, subject_id="acc-1")[0]])
    seen.append([e.event_id for e in events.list_events(10, None, subject_id=dev_a)[0]])
    seen.append({s: [e.event_id for e in events.list_events(10, None, shard=s)[0]] for s in shards})
    seen.append({s: [e.event_id for e in events.list_events(10, None, event_type="DeviceRegistered", shard=s)[0]]
                 for s in shards})
    seen.append([e.event_id for e in events.events_by_id([stored[2].event_id, "ev-9-000000000009",
                                                          stored[0].event_id])])
    seen.append(events.event(stored[0].event_id.replace("ev-0-", "ev-")))  # the unsharded spelling is shard 0
    return seen


def test_fake_and_dynamo_events_agree_per_shard(aws: Any) -> None:
    fake_events = FakeEvents(shards=8)
    dynamo = aws.events
    fake = events_scenario(fake_events, fake_events.append)
    real = events_scenario(dynamo, lambda evs, key: dynamo.commit([], evs, shard_key=key))
    assert fake == real
    ids = fake[0]
    # every shard numbers its own events from 1; the registry shard is 0
    assert ids[0][:2] == (0, 1) and ids[1][1] == 1 and ids[2][1] == 1 and ids[3][1:] == (2, f"ev-{ids[3][0]}-"
                                                                                         f"{2:012d}")
    assert ids[4][1] == 3 and ids[3][0] == ids[4][0] == ids[1][0] != ids[2][0]
    assert fake[2] == [ids[0][2], ids[1][2], ids[2][2]]  # acc-1's events by time, across shards
    assert fake[3] == [ids[1][2], ids[3][2], ids[4][2]]
    assert fake[7] is not None and fake[7].event_id == ids[0][2]
