"""Exactly-once, proven on the real services and stores (moto in process): a hypothesis state machine
drives readings through intake, the validator and issuer handlers (their SQS entry points), review,
transfers (by quantity and by serials) and redemptions, replays with and without an Idempotency-Key,
and two issuers racing on one pool. Messages are duplicated in a batch, reordered and redelivered; a
crash (`CrashAtWrite`) is injected before or after any write of any of those use cases, at an index
hypothesis draws, and the message is redelivered or the request retried until it is done, once.

After every step: accepted Wh = 1000 × D-RECs + pool remainders + Wh still waiting to be pooled (per
owner; nothing waits once the queues and the sweep have run); no serial twice; every D-REC has exactly
one owner, the one the completed moves say, and the holdings service reports exactly those; a redeemed
D-REC never moves; events once each and consistent with the state.

`test_every_rule_ran_often` proves the coverage: across the run every rule ran and succeeded at least
a fixed number of times, with crashes in every service, so this cannot silently stop testing them.
"""

from __future__ import annotations

import inspect
import json
import os
from collections import Counter
from collections.abc import Callable
from datetime import date, timedelta
from typing import Any
from unittest import mock

from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from chalicelib.api.reading_input import parse_reading
from chalicelib.config import event_shards
from chalicelib.domain.errors import Conflict, RuleBroken
from chalicelib.domain.issuance.keys import PoolingConfig
from chalicelib.domain.ledger import events as ev
from chalicelib.domain.ledger.shards import device_key, pool_key, shard_of
from chalicelib.domain.model import AccountKind, DeviceType, OfftakerType, Principal, SourceKind
from chalicelib.domain.moves import RedeemDrecs, TransferDrecs
from chalicelib.domain.registry import RegisterAccount, RegisterDevice, RegisterSource
from chalicelib.services import maintenance, moves, registry, review
from chalicelib.services.holdings import holdings
from chalicelib.services.issuance import Issuer
from chalicelib.services.redemptions import redeem, redemption_run
from chalicelib.services.transfers import transfer, transfer_run
from chalicelib.services.validation import Validator
from tests.fakes.faults import Crash, CrashAtWrite, Faults
from tests.fakes.pipeline_rig import Rig, reading_ids
from tests.fakes.world import OPERATOR, SITE

PUBLIC = "https://registry.example"
DEVICES_EACH, DAYS = 2, 28
# For a 500 W system over 8 daylight hours in Nairobi: 3400 and 3600 Wh are flagged high (then reviewed), the rest
# accepted; one to three D-RECs a reading, with remainders.
ENERGY_WH = st.sampled_from([3600, 1370, 3400, 1743, 2033])
UNFINISHED = ("locking", "applying", "releasing", "unlocking")
# The writes of each use case, in the stores it writes to.
INTAKE_WRITES = {"readings": ("store_new",), "queue": ("send_json",)}
VALIDATOR_WRITES = {"readings": ("commit_verdicts",), "queue": ("send_json",)}
ISSUER_WRITES = ("issue", "link_drecs")
MOVE_WRITES = ("start", "set_status", "lock", "release", "apply", "finish", "record_event", "link_event",
               "add_token_hash")
# What the invariants read of each table.
STATE = {"readings": ("id", "device_id", "status", "owner_account_id", "judged_energy_wh", "pipeline", "pooled_wh"),
         "pools": ("id", "owner_account_id", "remainder_wh"),
         "drecs": ("serial", "pool_id", "owner_account_id", "status", "owner_status", "locked_by", "linking",
                   "energy_wh"),
         "events": ("id", "shard", "seq", "type", "subject_id")}
MOVE = ("id", "status", "serials", "account_id", "to_account_id", "completed_at", "mirror_of")
# What the run did, over every example: the coverage test's evidence and the README's figures.
TALLY: Counter[str] = Counter()


def action(weight: int, when: Callable[[Any], bool] | None, **arguments: st.SearchStrategy[Any],
           ) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """A step the machine may take (`when` it applies), `weight` times as often as a step of weight 1.

    Hypothesis switches whole rules off for an example (swarm testing); with a dozen rules and the
    time this emulator takes per step, that left delivery and racing issuers unrun in most examples.
    So there is one rule, `step`, which draws among the actions that apply.
    """
    def mark(function: Callable[..., None]) -> Callable[..., None]:
        ACTIONS[function.__name__] = (weight, when, arguments)
        return function
    return mark


RARELY = st.sampled_from([False, False, False, True])


def holds_some(machine: Any) -> bool:
    return any(machine._held(a) for a in machine.accounts)


ACTIONS: dict[str, tuple[int, Callable[[Any], bool] | None, dict[str, st.SearchStrategy[Any]]]] = {}


def crash_plans(writes: int) -> st.SearchStrategy[CrashAtWrite | None]:
    """No crash, or one before or after the n-th write (n up to `writes`, the most a step makes)."""
    plan = st.builds(CrashAtWrite, st.integers(1, writes), st.booleans())
    return st.one_of(st.none(), plan, plan, plan)


class ExactlyOnce(RuleBasedStateMachine):
    rig: Rig | None = None

    @initialize()
    def build(self) -> None:
        self.rig = Rig()
        TALLY["examples"] += 1
        reg = self.rig.c.registry
        done = registry.register_source(reg, OPERATOR, RegisterSource("Agg", SourceKind.AGGREGATOR))
        self.source = Principal("source", done.record["source_id"])
        self.owners = [registry.register_account(reg, self.source, RegisterAccount(
            f"Dev {i}", AccountKind.DEVELOPER, "KE")).record["account_id"] for i in range(2)]
        self.buyer = registry.register_account(reg, OPERATOR, RegisterAccount(
            "Buyer", AccountKind.BUYER, "DE")).record["account_id"]
        self.accounts = [*self.owners, self.buyer]
        self.devices = [registry.register_device(reg, self.source, RegisterDevice(
            owner_account_id=o, device_type=DeviceType.SOLAR_HOME_SYSTEM, capacity_w=500.0, latitude=-1.29,
            longitude=36.82, country="KE", commissioning_date=date(2025, 1, 15),
            offtaker_type=OfftakerType.HOUSEHOLD), lambda lat, lon: SITE).record["device_id"]
            for o in self.owners for _ in range(DEVICES_EACH)]
        self.next_day: Counter[str] = Counter()
        self.submitted: dict[str, dict[str, Any]] = {}  # reading id -> the item sent
        self.in_flight: dict[str, list[str]] = {"readings": [], "accepted": []}
        self.owner_of: dict[str, str] = {}  # serial -> owner, as the completed moves say
        self.redeemed: dict[str, str] = {}  # serial -> the account that redeemed it
        self.seen_moves: set[str] = set()
        self.requests = 0
        self.given: Counter[str] = Counter()  # reading id -> Wh it gave to D-RECs
        self.holders_checked: list[tuple[str, str]] = []
        self.answers: dict[str, tuple[str, Any, str, dict[str, Any]]] = {}  # move id -> (kind, command, key, answer)
        self.retries: list[tuple[str, Any, str]] = []  # (kind, command, key) of requests that crashed
        # D-RECs from the first step on: one reading per device, delivered without faults.
        self._submit(range(len(self.devices)), 2033)
        self._settle()
        # And messages in flight from the first step on, so delivery, review and racing issuers run in
        # every example (hypothesis may switch the submitting rule off for a whole example).
        for device, energy_wh in enumerate([1000, 1370, 1666, 1743]):
            self._submit([device], energy_wh)
        self._collect()
        for message in self.in_flight["readings"][:2]:  # judged: their issuing messages in flight too
            self.rig.deliver("readings", [message])
            self.in_flight["readings"].remove(message)
        self._collect()

    def teardown(self) -> None:
        """Everything delivered and swept: every accepted Wh is in a D-REC or a pool remainder."""
        if self.rig is None:
            return
        try:
            self._settle()
            self._collect()
            state = self.state
            self._check(state)
            assert all(r.get("pipeline") is None for r in state["readings"] if r["status"] == "accepted"), \
                "an accepted reading still waits to be pooled"
            assert not [d for d in state["drecs"] if d.get("linking")], "D-REC links never written"
            assert not [m for m in state["moves"] if m["status"] in UNFINISHED], "a move left unfinished"
        finally:
            self.rig.stop()
            self.rig = None

    @rule(data=st.data())
    def step(self, data: st.DataObject) -> None:
        names = [n for n, (w, when, _) in ACTIONS.items() if when is None or when(self) for _ in range(w)]
        name = data.draw(st.sampled_from(names), label="action")
        _, _, arguments = ACTIONS[name]
        drawn = {k: data.draw(v, label=k) for k, v in arguments.items()}
        function = getattr(self, name)
        if "data" in inspect.signature(function).parameters:
            drawn["data"] = data
        TALLY["steps"] += 1
        function(**drawn)

    # -- plumbing ------------------------------------------------------------------------------
    @property
    def c(self) -> Any:
        assert self.rig is not None
        return self.rig.c

    def _collect(self) -> None:
        """What the services sent is now in flight; the state as stored; who owns what, as the completed
        moves say (in the order they completed)."""
        assert self.rig is not None
        for queue, bodies in self.in_flight.items():
            bodies += self.rig.drain(queue)
        self.state = {t: self.rig.scan(t, only) for t, only in STATE.items()}
        # A D-REC's contributions never change: read whole once, checked once (`_check`).
        self.state["drecs"] = self.rig.scan("drecs", STATE["drecs"], lambda d: d["serial"] not in self.owner_of)
        self.state["moves"] = [m for t in ("transfers", "redemptions") for m in self.rig.scan(t, MOVE)
                               if "mirror_of" not in m]
        pools = {p["id"]: p["owner_account_id"] for p in self.state["pools"]}
        for item in self.state["drecs"]:
            if item["serial"] not in self.owner_of:  # new, so read whole: its contributions, once
                assert sum(c["energy_wh"] for c in item["contributions"]) == 1000, item["serial"]
                for c in item["contributions"]:
                    self.given[c["reading_id"]] += c["energy_wh"]
            self.owner_of.setdefault(item["serial"], pools[item["pool_id"]])
        done = sorted((m["completed_at"], m["id"], m) for m in self.state["moves"] if m["status"] == "completed"
                      and m["id"] not in self.seen_moves)
        for _, move_id, move in done:
            self.seen_moves.add(move_id)
            for serial in move["serials"]:
                assert serial not in self.redeemed, f"{serial} was redeemed, then moved by {move_id}"
                self.owner_of[serial] = move.get("to_account_id", move["account_id"])
                if move_id.startswith("red-"):
                    self.redeemed[serial] = move["account_id"]
        self.locked = {s for m in self.state["moves"] if m["status"] in UNFINISHED for s in m["serials"]}
        self.flagged = sorted(r["id"] for r in self.state["readings"] if r["status"] == "flagged")

    def _run(self, service: str, action: Callable[[], Any], plan: CrashAtWrite | None) -> bool:
        """Run a use case with its crash plan armed; True when it finished."""
        TALLY[f"{service} runs"] += 1
        try:
            action()
            TALLY[f"{service} completed"] += 1
            return True
        except Crash:
            assert plan is not None and plan.crashed_in is not None
            TALLY[f"{service} crashes"] += 1
            TALLY["crashes injected"] += 1
            return False
        finally:
            for built in ("validator", "issuer"):
                self.c.__dict__.pop(built, None)  # the handlers' next container is healthy again

    def _settle(self) -> None:
        """Deliver everything in flight (in batches of 10, as the event source mapping does), review what
        was flagged, run the sweep, until the pipeline is quiet."""
        assert self.rig is not None
        for _ in range(6):
            self.sweep()
            self._collect()
            for queue in ("readings", "accepted"):
                while self.in_flight[queue]:
                    batch, self.in_flight[queue] = self.in_flight[queue][:10], self.in_flight[queue][10:]
                    self.rig.deliver(queue, batch)
                    self._collect()
            for reading_id in self.flagged:
                self._run("review", lambda r=reading_id: review.review_reading(
                    self.c.readings, self.c.queue("accepted"), OPERATOR, r, "accept", None), None)
            self._collect()
            if not (self.in_flight["readings"] or self.in_flight["accepted"] or self._sweep_has_work()):
                return

    # -- readings --------------------------------------------------------------------------------
    def _items(self, devices: Any, energy_wh: int) -> list[dict[str, Any]]:
        items = []
        for device_id in (self.devices[d] for d in devices if self.next_day[self.devices[d]] < DAYS):
            self.next_day[device_id] += 1
            day = f"2026-10-{self.next_day[device_id]:02d}"
            items.append({"device_id": device_id, "period_start": f"{day}T05:00:00Z",
                          "period_end": f"{day}T13:00:00Z", "energy_wh": energy_wh})
        return items

    def _submit(self, devices: Any, energy_wh: int, plan: CrashAtWrite | None = None) -> list[dict[str, Any]]:
        items = self._items(devices, energy_wh)
        readings, queue = self.c.readings, self.c.queue("readings")
        if plan is not None:
            readings = plan.arm(readings, INTAKE_WRITES["readings"])
            queue = plan.arm(queue, INTAKE_WRITES["queue"])
        from chalicelib.services.intake import Intake

        def submit() -> None:
            result = Intake(self.c.registry, readings, queue, parse_reading).submit(self.source, list(enumerate(items)))
            assert not result.errors, result.errors
            for i, reading_id in result.accepted:
                self.submitted[reading_id] = items[i]
        self._run("intake", submit, plan)
        return items

    @action(3, None, devices=st.lists(st.integers(0, 2 * DEVICES_EACH - 1), min_size=1, max_size=4, unique=True),
          energy_wh=ENERGY_WH, plan=crash_plans(2), retry_now=st.booleans())
    def submit(self, devices: list[int], energy_wh: int, plan: CrashAtWrite | None, retry_now: bool) -> None:
        items = self._submit(devices, energy_wh, plan)
        if plan and plan.crashed_in and retry_now:
            self._resubmit(items)

    def _resubmit(self, items: list[dict[str, Any]]) -> None:
        """A client retrying a request: the same readings, the same ids."""
        result = self.c.intake(parse_reading).submit(self.source, list(enumerate(items)))
        assert not result.errors, result.errors
        for i, reading_id in result.accepted:
            assert self.submitted.setdefault(reading_id, items[i]) == items[i]
        TALLY["requests retried"] += 1

    @action(1, lambda self: bool(self.submitted))
    def submit_again(self, data: st.DataObject) -> None:
        reading_id = data.draw(st.sampled_from(sorted(self.submitted)))
        result = self.c.intake(parse_reading).submit(self.source, [(0, self.submitted[reading_id])])
        assert result.accepted == [(0, reading_id)] and result.queued == 0
        TALLY["requests retried"] += 1

    def _deliver(self, queue: str, data: st.DataObject, twice: bool, keep: bool, plan: CrashAtWrite | None) -> None:
        """Any message in flight (reordered), maybe twice in its batch; kept for a later duplicate delivery,
        or, after a crash, left in flight to be delivered again."""
        assert self.rig is not None
        message = self.in_flight[queue][data.draw(st.integers(0, len(self.in_flight[queue]) - 1))]
        if plan is not None:
            if queue == "readings":
                self.c.validator = Validator(self.c.registry, plan.arm(self.c.readings, VALIDATOR_WRITES["readings"]),
                                             plan.arm(self.c.queue("accepted"), VALIDATOR_WRITES["queue"]))
            else:
                self.c.issuer = Issuer(self.c.registry, plan.arm(self.c.drecs, ISSUER_WRITES), PoolingConfig())
        TALLY["messages duplicated or redelivered"] += twice + keep + (plan is not None)
        service = "validator" if queue == "readings" else "issuer"
        rig = self.rig
        if self._run(service, lambda: rig.deliver(queue, [message, message] if twice else [message]), plan) \
                and not keep:
            self.in_flight[queue].remove(message)

    @action(3, lambda self: bool(self.in_flight["readings"]), twice=st.booleans(), keep=RARELY,
            plan=crash_plans(2))
    def deliver_readings(self, data: st.DataObject, twice: bool, keep: bool, plan: CrashAtWrite | None) -> None:
        self._deliver("readings", data, twice, keep, plan)

    @action(5, lambda self: bool(self.in_flight["accepted"]), twice=st.booleans(), keep=RARELY,
            plan=crash_plans(2))
    def deliver_accepted(self, data: st.DataObject, twice: bool, keep: bool, plan: CrashAtWrite | None) -> None:
        self._deliver("accepted", data, twice, keep, plan)

    @action(2, lambda self: bool(self.in_flight["accepted"]), between=st.sampled_from(["pool", "poolable", "issue"]),
            nth=st.integers(1, 2))
    def race_issuers(self, data: st.DataObject, between: str, nth: int) -> None:
        """Issuer A reads; issuer B handles another (or the same) message and commits; A goes on."""
        first, second = (self.in_flight["accepted"][data.draw(st.integers(0, len(self.in_flight["accepted"]) - 1))]
                         for _ in range(2))
        rival = Issuer(self.c.registry, self.c.drecs, PoolingConfig())
        store = Faults(self.c.drecs)
        issuer = Issuer(self.c.registry, store, PoolingConfig())
        store.hook(between, lambda: rival.issue(reading_ids(second)), on_call=nth, after=between != "issue")
        self._run("issuer race", lambda: issuer.issue(reading_ids(first)), None)
        TALLY["issuer races"] += store.calls[between] >= nth
        for message in {first, second}:
            self.in_flight["accepted"].remove(message)

    @action(2, lambda self: bool(self.flagged), plan=crash_plans(2))
    def review_flagged(self, data: st.DataObject, plan: CrashAtWrite | None) -> None:
        reading_id = data.draw(st.sampled_from(self.flagged))
        readings, queue = self.c.readings, self.c.queue("accepted")
        if plan is not None:
            readings, queue = plan.arm(readings, VALIDATOR_WRITES["readings"]), plan.arm(queue, ("send_json",))
        self._run("review", lambda: review.review_reading(readings, queue, OPERATOR, reading_id, "accept", None),
                  plan)

    # -- moves -----------------------------------------------------------------------------------
    def _held(self, account: str) -> list[str]:
        return sorted(s for s, o in self.owner_of.items() if o == account and s not in self.redeemed
                      and s not in self.locked)

    def _move(self, kind: str, command: Any, key: str | None, plan: CrashAtWrite | None) -> None:
        trades, bucket = self.c.trades, self.c.ledger_bucket
        if plan is not None:
            trades, bucket = plan.arm(trades, MOVE_WRITES), plan.arm(bucket, ("put",))
        answer: dict[str, Any] = {}

        def act() -> None:
            try:
                if kind == "transfer":
                    answer.update(transfer(self.c.registry, trades, OPERATOR, command, key))
                else:
                    answer.update(redeem(self.c.registry, trades, bucket, OPERATOR, command, PUBLIC, key))
            except Conflict:
                TALLY[f"{kind} refused"] += 1  # a D-REC was taken by a move still unfinished: nothing moved
            except RuleBroken as refused:  # a retried request that never started, and the D-RECs went since
                assert refused.field == "quantity", refused
                TALLY[f"{kind} refused"] += 1
        if not self._run(kind, act, plan) and key:
            self.retries.append((kind, command, key))
        if answer and key:
            self.answers[answer[f"{kind}_id"]] = (kind, command, key, answer)

    def _command(self, kind: str, frm: str, to: str, serials: tuple[str, ...] | None, quantity: int | None) -> Any:
        request = {"from": frm, "to": to, "serials": serials, "quantity": quantity}
        if kind == "transfer":
            return TransferDrecs(frm, to, serials, quantity, None, request)
        return RedeemDrecs(frm, "Acme Ltd", "Scope 2", date(2026, 10, 1), date(2026, 10, 31), serials=serials,
                           quantity=quantity, request=request)

    @action(2, holds_some,
            key=st.booleans(), plan=crash_plans(5), retry_now=st.booleans())
    def transfer_serials(self, data: st.DataObject, key: bool, plan: CrashAtWrite | None, retry_now: bool) -> None:
        self._transfer(data, False, key, plan, retry_now)

    @action(2, holds_some,
            key=st.booleans(), plan=crash_plans(5), retry_now=st.booleans())
    def transfer_quantity(self, data: st.DataObject, key: bool, plan: CrashAtWrite | None, retry_now: bool) -> None:
        self._transfer(data, True, key, plan, retry_now)

    def _transfer(self, data: st.DataObject, by_quantity: bool, key: bool, plan: CrashAtWrite | None,
                  retry_now: bool) -> None:
        frm = data.draw(st.sampled_from([a for a in self.accounts if self._held(a)]))
        to = data.draw(st.sampled_from([a for a in self.accounts if a != frm]))
        self._trade("transfer", data, frm, to, by_quantity, key, plan, retry_now)

    @action(3, holds_some,
            key=st.booleans(), plan=crash_plans(6), retry_now=st.booleans())
    def redeem_serials(self, data: st.DataObject, key: bool, plan: CrashAtWrite | None, retry_now: bool) -> None:
        self._redeem(data, False, key, plan, retry_now)

    @action(3, holds_some,
            key=st.booleans(), plan=crash_plans(6), retry_now=st.booleans())
    def redeem_quantity(self, data: st.DataObject, key: bool, plan: CrashAtWrite | None, retry_now: bool) -> None:
        self._redeem(data, True, key, plan, retry_now)

    def _redeem(self, data: st.DataObject, by_quantity: bool, key: bool, plan: CrashAtWrite | None,
                retry_now: bool) -> None:
        frm = data.draw(st.sampled_from([a for a in self.accounts if self._held(a)]))
        self._trade("redemption", data, frm, frm, by_quantity, key, plan, retry_now)

    def _trade(self, kind: str, data: st.DataObject, frm: str, to: str, by_quantity: bool, key: bool,
               plan: CrashAtWrite | None, retry_now: bool) -> None:
        held = self._held(frm)
        if by_quantity:
            command = self._command(kind, frm, to, None, data.draw(st.integers(1, min(3, len(held)))))
        else:
            serials = data.draw(st.lists(st.sampled_from(held), min_size=1, max_size=3, unique=True))
            command = self._command(kind, frm, to, tuple(sorted(serials)), None)
        self.requests += 1
        idempotency_key = f"{kind}-{self.requests}" if key else None
        self._move(kind, command, idempotency_key, plan)
        if retry_now and self.retries and plan is not None and plan.crashed_in:
            self.retries.insert(0, self.retries.pop())  # this request, now
            self.retry_with_the_same_key()

    @action(1, lambda self: bool(self.retries))
    def retry_with_the_same_key(self) -> None:
        """The client retries a request that died: it completes (or is refused) once, as if it never died."""
        kind, command, key = self.retries.pop(0)
        TALLY["requests retried"] += 1
        self._move(kind, command, key, None)

    @action(3, lambda self: bool(self.answers), other_body=RARELY)
    def replay(self, data: st.DataObject, other_body: bool) -> None:
        """The same Idempotency-Key again: the same answer, nothing moves twice; with another body: 422."""
        move_id = data.draw(st.sampled_from(sorted(self.answers)))
        kind, command, key, first = self.answers[move_id]
        if other_body:
            command = self._command(kind, *("x", "y") if kind == "transfer" else ("x", "x"), None, 1)
        try:
            if kind == "transfer":
                again = transfer(self.c.registry, self.c.trades, OPERATOR, command, key)
            else:
                again = redeem(self.c.registry, self.c.trades, self.c.ledger_bucket, OPERATOR, command, PUBLIC, key)
        except RuleBroken as refused:
            assert other_body and refused.field == "Idempotency-Key"
            TALLY["replays refused (other body)"] += 1
            return
        assert not other_body, "a key reused for another request was not refused"
        again.pop("ledger_url", None), first.pop("ledger_url", None)  # each answer carries its own token
        assert again == first
        TALLY["replays answered"] += 1

    @action(1, lambda self: bool(self.redeemed), by_transfer=st.booleans())
    def moving_a_redeemed_drec_is_refused(self, data: st.DataObject, by_transfer: bool) -> None:
        serial = data.draw(st.sampled_from(sorted(self.redeemed)))
        frm = self.redeemed[serial]
        to = next(o for o in self.accounts if o != frm)
        command = self._command("transfer" if by_transfer else "redemption", frm, to, (serial,), None)
        try:
            if by_transfer:
                transfer(self.c.registry, self.c.trades, OPERATOR, command, None)
            else:
                redeem(self.c.registry, self.c.trades, self.c.ledger_bucket, OPERATOR, command, PUBLIC, None)
            raise AssertionError(f"redeemed {serial} was moved again")
        except Conflict as refused:
            assert refused.field == "serials"
            TALLY["redeemed D-REC moves refused"] += 1

    # -- the sweep -------------------------------------------------------------------------------
    def _sweep_has_work(self) -> bool:
        readings_waiting = any(r.get("pipeline") for r in self.state["readings"])
        return readings_waiting or bool(self.locked) or any(d.get("linking") for d in self.state["drecs"])

    @action(1, lambda self: self._sweep_has_work())
    def sweep(self) -> None:
        """The scheduled upkeep, once its delays have passed: lost messages resent, links and moves finished."""
        with mock.patch.object(maintenance, "STALE_AFTER", timedelta(seconds=-60)):
            maintenance.requeue_waiting(self.c.readings, self.c.queue)
        maintenance.finish_links(self.c.drecs)
        moves.resume_stale(self.c.trades, transfer_run(self.c.trades), older_than_s=-60)
        moves.resume_stale(self.c.trades, redemption_run(self.c.trades), older_than_s=-60)
        TALLY["sweeps"] += 1

    # -- invariants ------------------------------------------------------------------------------
    @invariant()
    def exactly_once(self) -> None:
        if self.rig is not None:
            self._collect()
            self._check(self.state)

    def _check(self, state: dict[str, list[dict[str, Any]]]) -> None:
        TALLY["invariant checks"] += 1
        readings = {r["id"]: r for r in state["readings"]}
        drecs = {d["serial"]: d for d in state["drecs"]}
        pools = {p["id"]: p for p in state["pools"]}
        # Conservation, per owner: accepted Wh = 1000 × D-RECs + pool remainders + Wh not yet pooled.
        accepted, issued, remainder, waiting = Counter[str](), Counter[str](), Counter[str](), Counter[str]()
        for r in readings.values():
            if r["status"] == "accepted":
                accepted[r["owner_account_id"]] += r["judged_energy_wh"]
                if r.get("pipeline") == "pooling":
                    waiting[r["owner_account_id"]] += r["judged_energy_wh"] - r.get("pooled_wh", 0)
                else:
                    assert r.get("pooled_wh", 0) == r["judged_energy_wh"], r
        for d in drecs.values():
            issued[pools[d["pool_id"]]["owner_account_id"]] += 1
            assert d["energy_wh"] == 1000, d["serial"]
        for p in pools.values():
            remainder[p["owner_account_id"]] += p["remainder_wh"]
        for owner in self.owners:
            assert accepted[owner] == 1000 * issued[owner] + remainder[owner] + waiting[owner], (
                owner, accepted[owner], issued[owner], remainder[owner], waiting[owner])
        for reading_id, wh in self.given.items():
            assert wh <= readings[reading_id].get("pooled_wh", 0) <= readings[reading_id]["judged_energy_wh"]
        # Events: gap-free in each shard, each once, in the shard the routing rule gives them, and what they
        # say is what happened.
        by_shard: dict[int, list[int]] = {}
        for e in state["events"]:
            by_shard.setdefault(e["shard"], []).append(e["seq"])
            assert e["id"] == f"ev-{e['shard']}-{e['seq']:012d}"
        for shard, seqs in by_shard.items():
            assert sorted(seqs) == list(range(1, len(seqs) + 1)), f"shard {shard}'s numbers gap-free, each once"
        shards = event_shards()
        for e in state["events"]:
            routed = {ev.READING_ACCEPTED: lambda s: device_key(readings[s]["device_id"]),
                      ev.DEVICE_REGISTERED: device_key, ev.DEVICE_REVIEW_OPENED: device_key,
                      ev.DEVICE_REVIEW_CLEARED: device_key, ev.DEVICE_SUSPENDED: device_key,
                      ev.DREC_ISSUED: lambda s: pool_key(drecs[s]["pool_id"])}.get(e["type"], lambda s: None)
            assert e["shard"] == shard_of(routed(e["subject_id"]), shards), f"{e['id']} in the wrong shard"
        of_type: dict[str, list[str]] = {}
        for e in state["events"]:
            of_type.setdefault(e["type"], []).append(e["subject_id"])
        assert sorted(of_type.get(ev.DREC_ISSUED, [])) == sorted(drecs), "each D-REC issued once, with one event"
        accepted_ids = of_type.get(ev.READING_ACCEPTED, [])
        assert sorted(accepted_ids) == sorted(i for i, r in readings.items() if r["status"] == "accepted")
        moves_by_id = {m["id"]: m for m in state["moves"]}
        # A move's event is written when its D-RECs are applied (then it unlocks them and completes).
        done = sorted(i for i, m in moves_by_id.items() if m["status"] in ("unlocking", "completed"))
        assert sorted(of_type.get(ev.DREC_TRANSFERRED, []) + of_type.get(ev.DREC_REDEEMED, [])) == done
        # Owners: exactly one each, the one the completed moves say; redeemed ones stay redeemed.
        moving = {s for m in state["moves"] if m["status"] in UNFINISHED for s in m["serials"]}
        assert sorted(self.owner_of) == sorted(drecs), "a D-REC appeared or vanished"
        for serial, d in drecs.items():
            assert d["owner_account_id"] in self.accounts
            assert d["owner_status"] == f"{d['owner_account_id']}#{d['status']}", serial
            if serial not in moving:
                assert d["owner_account_id"] == self.owner_of[serial], serial
                assert "locked_by" not in d, f"{serial} locked by a finished move"
            if serial in self.redeemed:
                assert d["status"] == "redeemed" and d["owner_account_id"] == self.redeemed[serial], serial
            elif serial not in moving:
                assert d["status"] == "active", f"{serial} redeemed by no completed redemption"
        # Holdings, as the holdings service reports them (it reads the trade store's holdings): asked
        # again whenever what it reads (each D-REC's holder and status) changed since it was last asked.
        holders = sorted((s, d["owner_status"]) for s, d in drecs.items())
        if holders == self.holders_checked:
            return
        self.holders_checked = holders
        TALLY["holdings checks"] += 1
        for account in self.accounts:
            view = holdings(self.c.registry, self.c.trades, account)
            statuses = Counter(d["status"] for d in drecs.values() if d["owner_account_id"] == account)
            assert (view["active"], view["redeemed"]) == (statuses["active"], statuses["redeemed"]), account
            assert sum(g["count"] for g in view["groups"]) == sum(statuses.values()), account


# 10 examples of 20 steps: about 85 s here (2 shared cores). DREC_ONCE_EXAMPLES=30 runs three times as
# many, and the coverage floors below scale with it.
EXAMPLES = int(os.environ.get("DREC_ONCE_EXAMPLES", "10"))
SETTINGS = settings(max_examples=EXAMPLES, stateful_step_count=20, derandomize=True, deadline=None, database=None,
                    phases=[Phase.explicit, Phase.generate],
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


# Found by this test: (1) earlier, on the in-memory fakes, an issuer race (B commits right after A read
# the pool; add_to_pool's Conflict escaped A), fixed in services/issuance.py, replayed deterministically in
# test_issuance_service.py; (2) here, a D-REC applied by a transfer not yet finished moved on before that
# transfer's event: fixed by keeping the locks until the event is recorded (`unlocking`), replayed in
# test_moves_order.py.
def test_exactly_once() -> None:
    run_state_machine_as_test(ExactlyOnce, settings=SETTINGS)


# What the run must have done at least, across 10 examples: floors under what three runs did (the
# derandomised choices meet random ids, so the counts move from run to run; see the report figures).
# Floors well under what a run does (service ids are random, so counts vary run to run: intake
# crashes were 3 to 12 in the runs seen): they fail when a rule stops running, not when a run is unlucky.
AT_LEAST = {"transfer completed": 8, "redemption completed": 8, "intake crashes": 2, "validator crashes": 2,
            "issuer crashes": 2, "transfer crashes": 4, "redemption crashes": 4, "review completed": 1,
            "issuer races": 2, "requests retried": 10, "replays answered": 1, "replays refused (other body)": 1,
            "redeemed D-REC moves refused": 2, "messages duplicated or redelivered": 20}


def test_every_rule_ran_often() -> None:
    if not TALLY["examples"]:
        test_exactly_once()  # run alone: the state machine's run is the evidence
    figures = json.dumps(dict(sorted(TALLY.items())), indent=1)
    print(f"\nexactly-once run: {figures}")
    short = {k: (TALLY[k], n * EXAMPLES // 10) for k, n in AT_LEAST.items() if TALLY[k] < n * EXAMPLES // 10}
    assert not short, f"rules that ran too rarely (done, needed): {short}; the run: {figures}"
