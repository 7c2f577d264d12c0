"""A throw-away Anvil chain for tests: started on a free port, stopped by its PID."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from infra.anvil import free_port, rpc_url, start_anvil, stop_anvil

# Anvil's second dev account (public default mnemonic): a funded key that does not own
# contracts deployed with DEV_PRIVATE_KEY. Local chains only.
OTHER_DEV_PRIVATE_KEY = (
    "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d"
)
OTHER_DEV_ADDRESS = "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"


@dataclass(frozen=True)
class AnvilNode:
    port: int
    rpc_url: str
    proc: subprocess.Popen[bytes]


@contextmanager
def running_anvil(
    state_file: str | None = None, log_path: str | None = None
) -> Iterator[AnvilNode]:
    """An Anvil node for the length of the block; SIGTERM (then SIGKILL) at the end."""
    port = free_port()
    proc = start_anvil(port, state_file=state_file, log_path=log_path)
    try:
        yield AnvilNode(port=port, rpc_url=rpc_url(port), proc=proc)
    finally:
        stop_anvil(proc)
