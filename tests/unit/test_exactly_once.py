"""Exactly-once, proven on the real services: a hypothesis state machine drives readings through intake,
validation, review, issuance, transfers and redemptions on the in-memory fakes, with messages duplicated,
reordered and redelivered, a crash before or after any store or queue call (then the message redelivered or
the request retried, as SQS and clients do), and two issuers racing on one pool.

After every step: accepted Wh = 1000 × D-RECs + pool remainders + Wh still waiting to be pooled (per owner,
and nothing waits once the queues and the sweep have run); no serial twice; every D-REC has exactly one
owner, the one the completed moves say; a redeemed D-REC never moves; every event sequence number once.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any
from unittest import mock

from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from chalicelib.domain.certificates import PoolableReading
from chalicelib.domain.errors import Conflict
from chalicelib.domain.issuance.keys import PoolingConfig
from chalicelib.domain.ledger import events as ev
from chalicelib.domain.moves import UNFINISHED, MoveKind, MoveStatus, RedeemDrecs, TransferDrecs
from chalicelib.domain.readings import ReadingStatus
from chalicelib.services import maintenance, moves, review
from chalicelib.services.issuance import Issuer
from chalicelib.services.redemptions import redeem, redemption_run
from chalicelib.services.transfers import transfer, transfer_run
from chalicelib.services.validation import Validator
from tests.fakes.certificates import FakeDrecs
from tests.fakes.faults import Crash, Faults
from tests.fakes.ledger import FakeBucket, FakeEvents
from tests.fakes.readings import FakeReadings
from tests.fakes.trading import FakeTrades
from tests.fakes.world import OPERATOR, World

NOW = datetime(2026, 11, 1, tzinfo=UTC)
PUBLIC = "https://registry.example"
OWNERS, DEVICES_EACH, DAYS = 2, 2, 28
ENERGY_WH = st.sampled_from([360, 750, 999, 1200, 1230])  # honest for a 300 W system over 8 daylight hours
# (where, method, nth call, after the call took effect?) or no crash
Crash_ = tuple[str, str, int, bool]


def crashes(methods: Sequence[tuple[str, str]]) -> st.SearchStrategy[Crash_ | None]:
    return st.one_of(st.none(), st.tuples(st.sampled_from(methods), st.integers(1, 3), st.booleans())
                     .map(lambda t: (t[0][0], t[0][1], t[1], t[2])))


def armed(ports: Mapping[str, Any], crash: Crash_ | None) -> dict[str, Any]:
    """Each port wrapped in Faults; the one named by `crash` crashes at its nth call of that method."""
    wrapped = {name: Faults(port) for name, port in ports.items()}
    if crash is not None:
        where, method, nth, after = crash
        (wrapped[where].after if after else wrapped[where].before)(method, nth)
    return wrapped


class PipelineDrecs(FakeDrecs):
    """The D-REC store over the readings store: in DynamoDB an accepted reading is the item issuance pools."""

    def __init__(self, readings: FakeReadings, events: FakeEvents) -> None:
        super().__init__(events)
        self.source = readings

    def poolable(self, reading_ids: Sequence[str]) -> list[PoolableReading]:
        for r in self.source.readings(reading_ids).values():
            if r.status == ReadingStatus.ACCEPTED and r.reading_id not in self.readings:
                assert r.judged_energy_wh is not None
                self.accept(PoolableReading(r.reading_id, r.device_id, r.owner_account_id, r.period_start,
                                            r.period_end, r.source_id, r.judged_energy_wh, 0, r.signature, r.signer))
        return super().poolable(reading_ids)


class DevicesOf:
    """The issuer's view of the registry: devices as records."""

    def __init__(self, world: World) -> None:
        self.world = world

    def devices(self, device_ids: Iterable[str]) -> dict[str, Mapping[str, Any]]:
        return {d: dataclasses.asdict(r) for d, r in self.world.registry.device_records(device_ids).items()}


class ExactlyOnce(RuleBasedStateMachine):
    @initialize()
    def build(self) -> None:
        self.events = FakeEvents()
        self.world = World(events=self.events)  # type: ignore[arg-type]  # one outbox for every store
        self.drecs = PipelineDrecs(self.world.readings, self.events)
        self.trades = FakeTrades(self.drecs.drecs, self.events)
        self.bucket = FakeBucket()
        self.issuer_devices = DevicesOf(self.world)
        source, _ = self.world.source()
        self.source = source
        self.owners = [self.world.account(source, name=f"Dev {i}")["account_id"] for i in range(OWNERS)]
        self.devices = [self.world.device(source, o, capacity_w=300.0)["device_id"]
                        for o in self.owners for _ in range(DEVICES_EACH)]
        self.next_day = Counter[str]()
        self.submitted: dict[str, dict[str, Any]] = {}  # reading id -> the item sent
        self.to_validate: list[list[str]] = []  # messages in flight, delivered in any order
        self.to_issue: list[list[str]] = []
        self.owner_of: dict[str, str] = {}  # serial -> owner, as the completed moves say
        self.redeemed: dict[str, str] = {}  # serial -> the account that redeemed it
        self.seen_moves: set[tuple[MoveKind, str]] = set()
        self.retries: list[tuple[str, Any, str]] = []  # (kind, command, key) of requests that crashed

    # -- plumbing ------------------------------------------------------------------------------
    def _collect(self) -> None:
        """What the services sent is now in flight; and the owners the D-RECs were issued to."""
        self.to_validate += [list(m["reading_ids"]) for m in self.world.readings_queue.messages]
        self.to_issue += [list(m["reading_ids"]) for m in self.world.accepted_queue.messages]
        self.world.readings_queue.messages.clear()
        self.world.accepted_queue.messages.clear()
        for serial, item in self.drecs.drecs.items():
            self.owner_of.setdefault(serial, item["pool_id"] and self._pool_owner(item["pool_id"]))
        for (kind, move_id), move in self.trades.stored.items():
            if move.status is MoveStatus.COMPLETED and (kind, move_id) not in self.seen_moves:
                self.seen_moves.add((kind, move_id))
                to = getattr(move, "to_account_id", move.account_id)
                for serial in move.serials:
                    assert serial not in self.redeemed, f"{serial} was redeemed, then moved by {move_id}"
                    self.owner_of[serial] = to
                    if kind is MoveKind.REDEMPTIONS:
                        self.redeemed[serial] = move.account_id

    def _pool_owner(self, pool_id: str) -> str:
        return str(self.drecs.pools[pool_id][2]["owner_account_id"])

    def _validator(self, crash: Crash_ | None) -> Validator:
        ports = armed({"readings": self.world.readings, "queue": self.world.accepted_queue}, crash)
        return Validator(self.world.registry, ports["readings"], ports["queue"])

    def _issuer(self, crash: Crash_ | None) -> tuple[Issuer, Faults]:
        store = armed({"drecs": self.drecs}, crash)["drecs"]
        return Issuer(self.issuer_devices, store, PoolingConfig()), store

    def _run(self, action: Callable[[], Any]) -> bool:
        try:
            action()
            return True
        except Crash:
            return False
        finally:
            self._collect()

    # -- readings --------------------------------------------------------------------------------
    @rule(devices=st.lists(st.integers(0, OWNERS * DEVICES_EACH - 1), min_size=1, max_size=4, unique=True),
          energy_wh=ENERGY_WH)
    def submit(self, devices: list[int], energy_wh: int) -> None:
        items = []
        for device_id in (self.devices[d] for d in devices if self.next_day[self.devices[d]] < DAYS):
            self.next_day[device_id] += 1
            day = f"2026-10-{self.next_day[device_id]:02d}"
            items.append({"device_id": device_id, "period_start": f"{day}T05:00:00Z",
                          "period_end": f"{day}T13:00:00Z", "energy_wh": energy_wh})
        result = self.world.intake().submit(self.source, list(enumerate(items)))
        assert not result.errors, result.errors
        for i, reading_id in result.accepted:
            self.submitted[reading_id] = items[i]
        self._collect()

    @precondition(lambda self: bool(self.submitted))
    @rule(data=st.data())
    def submit_again(self, data: st.DataObject) -> None:
        """A client retrying a request: the same reading, the same id, nothing queued twice."""
        reading_id = data.draw(st.sampled_from(sorted(self.submitted)))
        result = self.world.intake().submit(self.source, [(0, self.submitted[reading_id])])
        assert result.accepted == [(0, reading_id)] and result.queued == 0
        self._collect()

    @precondition(lambda self: bool(self.to_validate))
    @rule(data=st.data(), keep=st.booleans(),
          crash=crashes([("readings", "readings"), ("readings", "device_states"), ("readings", "commit_verdicts"),
                         ("queue", "send_json")]))
    def validate(self, data: st.DataObject, keep: bool, crash: Crash_ | None) -> None:
        """Any message in flight (reordered); kept for a duplicate delivery, or redelivered after a crash."""
        i = data.draw(st.integers(0, len(self.to_validate) - 1))
        message = self.to_validate[i]
        if self._run(lambda: self._validator(crash).validate(message, now=NOW)) and not keep:
            self.to_validate.remove(message)

    @precondition(lambda self: any(r.status == ReadingStatus.FLAGGED for r in self.world.readings.items.values()))
    @rule(data=st.data(), crash=crashes([("queue", "send_json"), ("readings", "commit_verdicts")]))
    def review_flagged(self, data: st.DataObject, crash: Crash_ | None) -> None:
        flagged = sorted(i for i, r in self.world.readings.items.items() if r.status == ReadingStatus.FLAGGED)
        reading_id = data.draw(st.sampled_from(flagged))
        ports = armed({"readings": self.world.readings, "queue": self.world.accepted_queue}, crash)
        self._run(lambda: review.review_reading(ports["readings"], ports["queue"], OPERATOR, reading_id,
                                                "accept", None))

    # -- issuance ------------------------------------------------------------------------------
    @precondition(lambda self: bool(self.to_issue))
    @rule(data=st.data(), keep=st.booleans(),
          crash=crashes([("drecs", "poolable"), ("drecs", "pool"), ("drecs", "issue"), ("drecs", "link_drecs")]))
    def issue(self, data: st.DataObject, keep: bool, crash: Crash_ | None) -> None:
        i = data.draw(st.integers(0, len(self.to_issue) - 1))
        message = self.to_issue[i]
        if self._run(lambda: self._issuer(crash)[0].issue(message)) and not keep:
            self.to_issue.remove(message)

    @precondition(lambda self: bool(self.to_issue))
    @rule(data=st.data(), between=st.sampled_from(["pool", "poolable", "issue"]), nth=st.integers(1, 2))
    def race_issuers(self, data: st.DataObject, between: str, nth: int) -> None:
        """Issuer A reads; issuer B handles another (or the same) message and commits; A goes on."""
        a = data.draw(st.integers(0, len(self.to_issue) - 1))
        b = data.draw(st.integers(0, len(self.to_issue) - 1))
        first, second = self.to_issue[a], self.to_issue[b]
        rival, _ = self._issuer(None)
        issuer, store = self._issuer(None)
        store.hook(between, lambda: rival.issue(second), on_call=nth, after=between != "issue")
        self._run(lambda: issuer.issue(first))
        for message in (first, second):
            if message in self.to_issue:
                self.to_issue.remove(message)

    # -- moves -----------------------------------------------------------------------------------
    def _held(self, account: str) -> list[str]:
        locked = {s for m in self.trades.stored.values() if m.status in UNFINISHED for s in m.serials}
        return sorted(s for s, o in self.owner_of.items()
                      if o == account and s not in self.redeemed and s not in locked)

    def _move(self, kind: str, command: Any, key: str | None, crash: Crash_ | None) -> None:
        store = armed({"trades": self.trades}, crash)["trades"]
        try:
            if kind == "transfer":
                transfer(self.world.registry, store, OPERATOR, command, key)
            else:
                redeem(self.world.registry, store, self.bucket, OPERATOR, command, PUBLIC, key)
        except Crash:
            if key:
                self.retries.append((kind, command, key))
        except Conflict:
            pass  # a D-REC was taken by a move still unfinished: refused whole, nothing moved
        finally:
            self._collect()

    @rule(data=st.data(), giver=st.integers(0, OWNERS - 1), taker=st.integers(0, OWNERS - 1),
          key=st.one_of(st.none(), st.sampled_from(["k1", "k2", "k3"])),
          crash=crashes([("trades", m) for m in ("start", "lock", "apply", "finish", "record_event", "link_event")]))
    def transfer(self, data: st.DataObject, giver: int, taker: int, key: str | None, crash: Crash_ | None) -> None:
        held = self._held(self.owners[giver])
        if not held or giver == taker:
            return
        serials = data.draw(st.lists(st.sampled_from(held), min_size=1, max_size=3, unique=True))
        frm, to = self.owners[giver], self.owners[taker]
        request = {"from_account_id": frm, "to_account_id": to, "serials": sorted(serials)}
        command = TransferDrecs(frm, to, tuple(sorted(serials)), None, None, request)
        self._move("transfer", command, key and f"{key}-{len(self.trades.stored)}", crash)

    @rule(data=st.data(), owner=st.integers(0, OWNERS - 1), key=st.booleans(),
          crash=crashes([("trades", m) for m in ("start", "lock", "apply", "finish", "add_token_hash")]))
    def redeem(self, data: st.DataObject, owner: int, key: bool, crash: Crash_ | None) -> None:
        held = self._held(self.owners[owner])
        if not held:
            return
        serials = tuple(sorted(data.draw(st.lists(st.sampled_from(held), min_size=1, max_size=2, unique=True))))
        command = RedeemDrecs(self.owners[owner], "Acme Ltd", "Scope 2", date(2026, 10, 1), date(2026, 10, 31),
                              serials=serials, request={"beneficiary": "Acme Ltd", "serials": list(serials)})
        self._move("redeem", command, f"red-{len(self.trades.stored)}" if key else None, crash)

    @precondition(lambda self: bool(self.retries))
    @rule()
    def retry_with_the_same_key(self) -> None:
        kind, command, key = self.retries.pop(0)
        self._move(kind, command, key, None)

    @precondition(lambda self: any(r.status is not MoveStatus.FAILED for r in self.trades.stored.values()))
    @rule(data=st.data())
    def moving_a_redeemed_drec_is_refused(self, data: st.DataObject) -> None:
        if not self.redeemed:
            return
        serial = data.draw(st.sampled_from(sorted(self.redeemed)))
        frm = self.redeemed[serial]
        to = next(o for o in self.owners if o != frm)
        command = TransferDrecs(frm, to, (serial,), None, None, {"serials": [serial], "to": to})
        try:
            transfer(self.world.registry, self.trades, OPERATOR, command, None)
            raise AssertionError(f"redeemed {serial} was transferred")
        except Conflict:
            pass
        finally:
            self._collect()

    # -- the sweep -------------------------------------------------------------------------------
    @rule()
    def sweep(self) -> None:
        """The scheduled upkeep, once its delays have passed: lost messages resent, links and moves finished."""
        queues = {"readings": self.world.readings_queue, "accepted": self.world.accepted_queue}
        with mock.patch.object(maintenance, "STALE_AFTER", timedelta(seconds=-60)):
            maintenance.requeue_waiting(self.world.readings, queues.__getitem__)
        maintenance.finish_links(self.drecs)
        moves.resume_stale(self.trades, transfer_run(self.trades), older_than_s=-60)
        moves.resume_stale(self.trades, redemption_run(self.trades), older_than_s=-60)
        self._collect()

    def teardown(self) -> None:
        """Everything delivered and swept: every accepted Wh is in a D-REC or a pool remainder."""
        if not hasattr(self, "world"):
            return
        for _ in range(3):
            self.sweep()
            while self.to_validate:
                self._validator(None).validate(self.to_validate.pop(), now=NOW)
                self._collect()
            for reading_id in sorted(i for i, r in self.world.readings.items.items()
                                     if r.status == ReadingStatus.FLAGGED):
                review.review_reading(self.world.readings, self.world.accepted_queue, OPERATOR, reading_id,
                                      "accept", None)
            self._collect()
            while self.to_issue:
                self._issuer(None)[0].issue(self.to_issue.pop())
                self._collect()
        self.conservation()
        assert not self.to_validate and not self.to_issue
        assert all(w == 0 for w in self._waiting().values()), self._waiting()
        assert not self.drecs.pending_links()
        assert all(m.status not in UNFINISHED for m in self.trades.stored.values())

    # -- invariants ------------------------------------------------------------------------------
    def _waiting(self) -> Counter[str]:
        """Accepted Wh not yet in a pool, per owner."""
        waiting = Counter[str]()
        for r in self.world.readings.items.values():
            if r.status == ReadingStatus.ACCEPTED:
                pooled = self.drecs.readings.get(r.reading_id)
                waiting[r.owner_account_id] += (r.judged_energy_wh or 0) - (pooled[0].pooled_wh if pooled else 0)
        return waiting

    @invariant()
    def conservation(self) -> None:
        if not hasattr(self, "world"):
            return
        accepted, issued, remainder = Counter[str](), Counter[str](), Counter[str]()
        for r in self.world.readings.items.values():
            if r.status == ReadingStatus.ACCEPTED:
                accepted[r.owner_account_id] += r.judged_energy_wh or 0
        for item in self.drecs.drecs.values():
            issued[self._pool_owner(item["pool_id"])] += 1
            assert item["energy_wh"] == 1000 == sum(c["energy_wh"] for c in item["contributions"])
        for _, _, totals in self.drecs.pools.values():
            remainder[totals["owner_account_id"]] += int(totals["remainder_wh"])
        waiting = self._waiting()
        for owner in self.owners:
            assert accepted[owner] == 1000 * issued[owner] + remainder[owner] + waiting[owner], owner
        # No reading gives more than it had.
        given = Counter[str]()
        for item in self.drecs.drecs.values():
            for c in item["contributions"]:
                given[c["reading_id"]] += c["energy_wh"]
        for reading_id, wh in given.items():
            reading = self.world.readings.items[reading_id]
            assert wh <= self.drecs.readings[reading_id][0].pooled_wh <= (reading.judged_energy_wh or 0)

    @invariant()
    def serials_owners_and_events(self) -> None:
        if not hasattr(self, "world"):
            return
        seqs = sorted(self.events.stored)
        assert seqs == list(range(1, len(seqs) + 1)), "event sequence numbers gap-free, each once"
        issued = [e.subject_id for e in self.events.of_type(ev.DREC_ISSUED)]
        assert sorted(issued) == sorted(self.drecs.drecs), "each D-REC issued once, with one event"
        accepted = [e.subject_id for e in self.events.of_type(ev.READING_ACCEPTED)]
        assert len(accepted) == len(set(accepted)), "a reading accepted twice"
        for kind in (ev.DREC_TRANSFERRED, ev.DREC_REDEEMED):
            subjects = [e.subject_id for e in self.events.of_type(kind)]
            assert len(subjects) == len(set(subjects)), f"a move with two {kind} events"
        done = {m.id for m in self.trades.stored.values() if m.status is MoveStatus.COMPLETED}
        assert {e.subject_id for e in self.events.of_type(ev.DREC_TRANSFERRED)} | {
            e.subject_id for e in self.events.of_type(ev.DREC_REDEEMED)} == done
        moving = {s for m in self.trades.stored.values() if m.status in UNFINISHED for s in m.serials}
        for serial, item in self.drecs.drecs.items():
            assert item["owner_account_id"] in self.owners
            if serial not in moving:
                assert item["owner_account_id"] == self.owner_of[serial], serial
                assert "locked_by" not in item, f"{serial} locked by a finished move"
            if serial in self.redeemed:
                assert item["status"] == "redeemed" and item["owner_account_id"] == self.redeemed[serial]
            elif serial not in moving:
                assert item["status"] == "active", f"{serial} redeemed by no completed redemption"
        holdings = [s for o in self.owners for s in (d.serial for d in self.trades.holdings(o))]
        assert sorted(holdings) == sorted(self.drecs.drecs), "every D-REC held by exactly one account"


ExactlyOnce.TestCase.settings = settings(
    max_examples=20, stateful_step_count=50, derandomize=True, deadline=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],  # the shrunk failure is quoted below
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
# Found by this test and fixed in services/issuance.py: three readings of 999 Wh validated, then two
# issuers race (B commits right after A read the pool); A's next pool was read after B had pooled the
# readings A still held as unpooled, and add_to_pool's Conflict escaped the issuer. A stale read now
# reads again; `test_issuance_service.py` replays that race deterministically.
test_exactly_once = ExactlyOnce.TestCase
