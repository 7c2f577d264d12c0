"""The fault-injecting wrapper: raises (or runs) exactly where asked, passes everything else through."""

from __future__ import annotations

import pytest

from tests.fakes.faults import Faults


class Counter:
    def __init__(self) -> None:
        self.total = 0

    def add(self, n: int) -> int:
        self.total += n
        return self.total


def test_a_fault_before_the_nth_call_stops_that_call_only() -> None:
    store = Faults(Counter()).fail("add", RuntimeError("crash"), on_call=2)
    assert store.add(1) == 1
    with pytest.raises(RuntimeError, match="crash"):
        store.add(10)
    assert store.total == 1 and store.add(5) == 6 and store.calls["add"] == 3


def test_a_fault_after_the_call_lets_it_land_first() -> None:
    store = Faults(Counter()).fail("add", RuntimeError("lost reply"), after=True)
    with pytest.raises(RuntimeError):
        store.add(3)
    assert store.total == 3


def test_a_hook_runs_around_a_call_and_unknown_methods_are_refused() -> None:
    seen: list[int] = []
    inner = Counter()
    store = Faults(inner).hook("add", lambda: seen.append(inner.total), after=True)
    store.add(4)
    store.add(1)
    assert seen == [4]
    with pytest.raises(AttributeError):
        Faults(inner).fail("nope", RuntimeError())
