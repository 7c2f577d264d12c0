"""The stack's supervisor (infra.supervisor): a part that exits is restarted with backoff."""

from __future__ import annotations

from typing import Any

import pytest

from infra.recovery import StoreInconsistent
from infra.supervisor import Supervisor


class FakeProc:
    count = 0

    def __init__(self) -> None:
        FakeProc.count += 1
        self.pid = 1000 + FakeProc.count
        self.returncode: int | None = None

    def poll(self) -> int | None:
        return self.returncode

    def die(self, code: int = -9) -> None:
        self.returncode = code


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _supervisor(clock: Clock, **kw: Any) -> tuple[Supervisor, list[str]]:
    said: list[str] = []
    return Supervisor(said.append, clock=clock, base_delay_s=0.5, max_delay_s=4, stable_s=60, **kw), said


def test_a_dead_part_is_restarted_after_a_growing_delay_and_the_others_keep_running() -> None:
    clock = Clock()
    supervisor, said = _supervisor(clock)
    api: Any = supervisor.add("chalice", FakeProc)
    other: Any = supervisor.add("dispatcher", FakeProc)

    delays = []
    for _ in range(5):  # it keeps dying at once: 0.5, 1, 2, 4, 4 s
        supervisor.proc("chalice").die()  # type: ignore[union-attr]
        supervisor.poll()
        due = supervisor.parts["chalice"].restart_at
        assert due is not None and supervisor.proc("chalice").poll() is not None  # type: ignore[union-attr]
        delays.append(due - clock.now)
        clock.now = due - 0.01
        supervisor.poll()
        assert supervisor.parts["chalice"].restart_at == due  # not before its time
        clock.now = due
        supervisor.poll()
        assert supervisor.proc("chalice").poll() is None  # type: ignore[union-attr]

    assert delays == [0.5, 1, 2, 4, 4]
    assert supervisor.proc("chalice") is not api
    assert supervisor.proc("dispatcher") is other and other.poll() is None
    assert "chalice exited with code -9; restarting in 0.5 s" in said[0]
    assert said[1].startswith("chalice restarted (pid")


def test_a_part_that_stayed_up_restarts_from_the_shortest_delay() -> None:
    clock = Clock()
    supervisor, _ = _supervisor(clock)
    supervisor.add("anvil", FakeProc)
    for _ in range(3):
        supervisor.proc("anvil").die()  # type: ignore[union-attr]
        supervisor.poll()
        clock.now += 10
        supervisor.poll()
    clock.now += 120  # up for two minutes
    supervisor.proc("anvil").die()  # type: ignore[union-attr]
    supervisor.poll()
    assert supervisor.parts["anvil"].restart_at == clock.now + 0.5


def test_a_part_that_fails_to_start_is_retried_and_a_fatal_refusal_propagates() -> None:
    clock = Clock()
    outcomes: list[Any] = []

    def start() -> Any:
        outcome = outcomes.pop(0) if outcomes else FakeProc()
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    supervisor, said = _supervisor(clock, fatal=(StoreInconsistent,))
    supervisor.add("moto", start)
    outcomes += [RuntimeError("port busy")]
    supervisor.proc("moto").die()  # type: ignore[union-attr]
    supervisor.poll()
    clock.now += 0.5
    supervisor.poll()
    assert "moto did not start (port busy); trying again in 1.0 s" in said[-1]
    clock.now += 1
    supervisor.poll()
    assert supervisor.proc("moto").poll() is None  # type: ignore[union-attr]

    outcomes += [StoreInconsistent("chain ahead")]
    supervisor.proc("moto").die()  # type: ignore[union-attr]
    supervisor.poll()
    clock.now += 60
    with pytest.raises(StoreInconsistent):
        supervisor.poll()


def test_the_pids_of_live_parts_are_reported_on_every_start() -> None:
    seen: list[dict[str, int | None]] = []
    supervisor = Supervisor(lambda _m: None, clock=Clock(), on_start=lambda _p: seen.append(supervisor.pids()))
    first: Any = supervisor.add("dispatcher", FakeProc)
    first.die()
    supervisor.poll()
    supervisor.parts["dispatcher"].restart_at = 0
    supervisor.poll()
    assert seen[0] == {"dispatcher": first.pid}
    assert seen[-1] == {"dispatcher": supervisor.proc("dispatcher").pid}  # type: ignore[union-attr]
    assert seen[-1] != seen[0]
