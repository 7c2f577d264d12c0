"""A fault-injecting wrapper for any port: crash tests without monkeypatching private methods.

    store = Faults(DynamoReadings(...))
    store.fail("commit_verdicts", TransactionRefused([None]), on_call=2)   # the 2nd call raises, before running
    store.fail("store_new", RuntimeError("lost"), on_call=1, after=True)  # the 1st call runs, then raises
    store.hook("readings", competitor, on_call=1, after=True)            # run a callable around a call
    store.before("apply", 3)    # the 3rd `apply` raises Crash without applying (the process stopped there)
    store.after("finish", 1)    # the 1st `finish` is written, then Crash
    store.always("lock")        # every `lock` raises Crash

Every other attribute reaches the wrapped object unchanged; `calls[name]` counts the calls of each method.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


class Crash(Exception):
    """The process running a use case stopped here."""


@dataclass
class _Fault:
    on_call: int  # 0: every call
    after: bool
    action: Callable[[], None]
    fired: bool = False


def _crash(method: str) -> Callable[[], None]:
    def stop() -> None:
        raise Crash(f"crashed in a call of {method}")
    return stop


class Faults:
    def __init__(self, inner: Any) -> None:
        self.__dict__["_inner"] = inner
        self.__dict__["_faults"] = {}
        self.__dict__["calls"] = Counter()

    def fail(self, method: str, error: BaseException, on_call: int = 1, after: bool = False) -> Faults:
        """Raise `error` on the `on_call`-th call of `method` (before it runs, or after it ran)."""
        def throw() -> None:
            raise error
        return self.hook(method, throw, on_call, after)

    def hook(self, method: str, action: Callable[[], None], on_call: int = 1, after: bool = False) -> Faults:
        """Run `action` once, on the `on_call`-th call of `method`, before or after the call itself."""
        if not callable(getattr(self._inner, method, None)):
            raise AttributeError(f"{type(self._inner).__name__} has no method {method!r}")
        self._faults.setdefault(method, []).append(_Fault(on_call, after, action))
        return self

    def before(self, method: str, nth: int = 1, hook: Callable[[], None] | None = None) -> Faults:
        """Before the `nth` call of `method`: run `hook`, or crash (the call never happens)."""
        return self.hook(method, hook or _crash(method), nth)

    def after(self, method: str, nth: int = 1, hook: Callable[[], None] | None = None) -> Faults:
        """After the `nth` call of `method` took effect: run `hook`, or crash (its answer is lost)."""
        return self.hook(method, hook or _crash(method), nth, after=True)

    def always(self, method: str) -> Faults:
        """Every call of `method` crashes before it runs."""
        return self.hook(method, _crash(method), 0)

    @property
    def inner(self) -> Any:
        return self._inner

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._inner, name)
        if not callable(attribute) or isinstance(attribute, type):
            return attribute

        def wrapped(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] += 1
            due = [f for f in self._faults.get(name, [])
                   if f.on_call == 0 or (not f.fired and f.on_call == self.calls[name])]
            for fault in (f for f in due if not f.after):
                fault.fired = True
                fault.action()
            result = attribute(*args, **kwargs)
            for fault in (f for f in due if f.after):
                fault.fired = True
                fault.action()
            return result

        return wrapped

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._inner, name, value)


class CrashAtWrite:
    """One crash at the `at`-th write across several ports (before it, or after it took effect).

        plan = CrashAtWrite(3, after=False)
        store = plan.arm(trades, ("start", "lock", "apply", "finish", "record_event"))
        ...                       # the third of those calls, whichever it is, never happens: Crash
        plan.crashed_in           # "apply", or None when the use case made fewer writes

    The writes of a use case are counted in the order it makes them, whatever port they go to, so
    a hypothesis-drawn index puts the crash between any two writes of it.
    """

    def __init__(self, at: int, after: bool) -> None:
        self.at = at
        self.after = after
        self.writes = 0
        self.crashed_in: str | None = None

    def arm(self, port: Any, writes: tuple[str, ...]) -> Faults:
        wrapped = port if isinstance(port, Faults) else Faults(port)
        for method in writes:
            wrapped.hook(method, self._count(method), on_call=0, after=self.after)
        return wrapped

    def _count(self, method: str) -> Callable[[], None]:
        def tick() -> None:
            self.writes += 1
            if self.writes == self.at and self.crashed_in is None:
                self.crashed_in = method
                raise Crash(f"crashed {'after' if self.after else 'before'} write {self.at} ({method})")
        return tick
