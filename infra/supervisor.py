"""Keep the parts of `make up` running: a part that exits is started again, with backoff.

A crashed part (the emulator, `chalice local`, the dispatcher, Anvil) is not a reason to
stop the others: the queues keep their messages, and the API and the dispatcher reconnect
to the same ports. Restarts back off exponentially (0.5 s, 1 s, 2 s, ... up to 30 s) so a
part that cannot start does not spin; a part that stayed up for a minute starts again
from the shortest delay. Every exit and restart is logged with the part's log file.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass

Starter = Callable[[], "subprocess.Popen[bytes]"]


@dataclass
class Part:
    name: str
    start: Starter
    proc: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    failures: int = 0
    restart_at: float | None = None
    restarts: int = 0


class Supervisor:
    def __init__(self, log: Callable[[str], None], *, fatal: tuple[type[BaseException], ...] = (),
                 clock: Callable[[], float] = time.monotonic, base_delay_s: float = 0.5,
                 max_delay_s: float = 30.0, stable_s: float = 60.0,
                 on_start: Callable[[Part], None] | None = None) -> None:
        self.log = log
        self.fatal = fatal  # a starter raising one of these stops the supervision (the caller decides)
        self.clock = clock
        self.base_delay_s, self.max_delay_s, self.stable_s = base_delay_s, max_delay_s, stable_s
        self.on_start = on_start
        self.parts: dict[str, Part] = {}

    def add(self, name: str, start: Starter) -> subprocess.Popen[bytes]:
        """Start a part now (errors propagate: the first start is the caller's) and supervise it."""
        part = Part(name, start)
        self.parts[name] = part
        self._started(part, start())
        assert part.proc is not None
        return part.proc

    def proc(self, name: str) -> subprocess.Popen[bytes] | None:
        part = self.parts.get(name)
        return part.proc if part else None

    def pids(self) -> dict[str, int | None]:
        return {name: (p.proc.pid if p.proc and p.proc.poll() is None else None) for name, p in self.parts.items()}

    def poll(self) -> None:
        """Notice parts that exited and start those whose backoff has passed."""
        now = self.clock()
        for part in self.parts.values():
            if part.restart_at is None and part.proc is not None and part.proc.poll() is not None:
                if now - part.started_at >= self.stable_s:
                    part.failures = 0
                delay = self._schedule(part, now)
                self.log(f"{part.name} exited with code {part.proc.returncode}; "
                         f"restarting in {delay:.1f} s (see logs/{part.name}.log)")
            if part.restart_at is not None and now >= part.restart_at:
                self._restart(part)

    def _schedule(self, part: Part, now: float) -> float:
        delay = min(self.max_delay_s, self.base_delay_s * 2 ** part.failures)
        part.failures += 1
        part.restart_at = now + delay
        return delay

    def _restart(self, part: Part) -> None:
        try:
            proc = part.start()
        except self.fatal:
            raise
        except Exception as exc:
            delay = self._schedule(part, self.clock())
            self.log(f"{part.name} did not start ({exc}); trying again in {delay:.1f} s")
            return
        part.restarts += 1
        self._started(part, proc)
        self.log(f"{part.name} restarted (pid {proc.pid}, restart #{part.restarts})")

    def _started(self, part: Part, proc: subprocess.Popen[bytes]) -> None:
        part.proc, part.started_at, part.restart_at = proc, self.clock(), None
        if self.on_start:
            self.on_start(part)
