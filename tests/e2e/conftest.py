"""The real stack of `make up` (python -m infra.stack up), on free loopback ports, driven over HTTP."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests

from infra.anvil import free_port

REPO = Path(__file__).resolve().parents[2]


@dataclass
class RunningStack:
    data_dir: Path
    api_port: int
    proc: subprocess.Popen[bytes] | None = None
    env: dict[str, str] = field(default_factory=dict)  # settings of this stack over the tests' defaults
    code_dir: Path = REPO  # whose code runs (the pipeline bench starts the previous release's too)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def operator_key(self) -> str:
        return (self.data_dir / "operator-key").read_text().strip()

    @property
    def endpoints(self) -> dict[str, Any]:
        return json.loads((self.data_dir / "endpoints.json").read_text())

    def start(self, timeout_s: float = 120) -> None:
        env = dict(os.environ, DREC_STACK_DIR=str(self.data_dir), DREC_API_PORT=str(self.api_port),
                   DREC_ANVIL_PORT=str(free_port()), DREC_MOTO_PORT=str(free_port()),
                   DREC_SCHEDULE_INTERVAL_S="1", DREC_STALE_AFTER_S="20",
                   # Most e2e devices stand at one spot: their readings are judged at once (the fleet test,
                   # on a stack of its own, waits for neighbours).
                   DREC_PEER_WAIT_S="0")
        env.update(self.env)
        env.pop("DREC_OPERATOR_KEY", None)
        log = open(self.data_dir / "stack-output.log", "ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "infra.stack", "up"], cwd=self.code_dir, env=env,
                                     stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"stack exited: {(self.data_dir / 'stack-output.log').read_text()[-3000:]}")
            if "is up" in (self.data_dir / "stack-output.log").read_text(errors="replace"):
                return
            time.sleep(0.5)
        raise RuntimeError("stack did not come up in time")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        # The output log is appended across restarts: mark where the next start begins.
        with open(self.data_dir / "stack-output.log", "a") as log:
            log.write("\n--- stopped ---\n")
        text = (self.data_dir / "stack-output.log").read_text()
        (self.data_dir / "stack-output.log").write_text(text.replace("is up", "was up"))

    def post(self, path: str, body: Any, key: str | None = None) -> requests.Response:
        return requests.post(self.url + path, json=body, headers={"X-Api-Key": key or self.operator_key},
                             timeout=60)

    def get(self, path: str, **params: Any) -> requests.Response:
        return requests.get(self.url + path, params=params, timeout=60)

    def get_with_key(self, path: str, key: str | None = None, **params: Any) -> requests.Response:
        """A read only the operator or the principal of `key` may make."""
        return requests.get(self.url + path, params=params, headers={"X-Api-Key": key or self.operator_key},
                            timeout=60)


def wait_for(what: str, probe: Callable[[], Any], timeout_s: float = 120) -> Any:
    """Poll `probe` until it returns something true; the stack works asynchronously."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    with started_stack(tmp_path_factory.mktemp("stack")) as running:
        yield running


@contextmanager
def started_stack(data_dir: Path, **env: str) -> Iterator[RunningStack]:
    """A stack of its own in `data_dir`, with `env` over the tests' settings; stopped on the way out."""
    running = RunningStack(data_dir, free_port(), env=env)
    running.start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def own_stack(tmp_path: Path) -> Iterator[RunningStack]:
    """A stack of the test's own (kill tests must not break the session's shared one)."""
    with started_stack(tmp_path) as running:
        yield running
