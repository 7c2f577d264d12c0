"""Local chain for development and tests: Anvil (npm `@foundry-rs/anvil`), one process.

The binary is started directly, never through `npx`: stopping npx would leave Anvil running.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO

REPO_ROOT = Path(__file__).resolve().parent.parent
ANVIL_BIN = (
    REPO_ROOT / "node_modules" / "@foundry-rs" / "anvil-linux-amd64" / "bin" / "anvil"
)

# Anvil's first dev account (from its public default mnemonic "test test ... junk"). Every
# Foundry user knows this key: it is for local chains only and must never hold real funds.
DEV_PRIVATE_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
DEV_ADDRESS = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"

START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 10.0


class AnvilStartError(RuntimeError):
    """Anvil exited or did not answer in time; the message carries the end of its log."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def rpc_url(port: int) -> str:
    return f"http://127.0.0.1:{port}"


def start_anvil(
    port: int,
    state_file: str | None = None,
    state_interval_s: int = 5,
    log_path: str | None = None,
) -> subprocess.Popen[bytes]:
    """Start Anvil on 127.0.0.1:`port` and return once it answers `eth_chainId`.

    With `state_file`, the chain is loaded from it when it exists and written back on
    SIGTERM and every `state_interval_s` seconds (so it also survives SIGKILL, minus the
    last interval). Output goes to `log_path` (discarded without one).
    """
    if not ANVIL_BIN.exists():
        raise AnvilStartError(f"no Anvil binary at {ANVIL_BIN}: run `npm install`")
    command = [str(ANVIL_BIN), "--host", "127.0.0.1", "--port", str(port), "--silent"]
    if state_file is not None:
        command += [
            "--state", state_file,
            "--state-interval", str(state_interval_s),
            "--preserve-historical-states",
        ]  # fmt: skip
    log: IO[bytes] | int = open(log_path, "ab") if log_path else subprocess.DEVNULL
    try:
        proc = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
    finally:
        if not isinstance(log, int):
            log.close()  # the child holds its own descriptor
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AnvilStartError(
                f"anvil exited with code {proc.returncode}{_log_tail(log_path)}"
            )
        if _answers_chain_id(rpc_url(port)):
            return proc
        time.sleep(0.05)
    stop_anvil(proc)
    raise AnvilStartError(
        f"anvil did not answer on port {port} within {START_TIMEOUT_S:.0f} s{_log_tail(log_path)}"
    )


def stop_anvil(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM (Anvil then writes its state file), wait, and SIGKILL if it hangs."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _answers_chain_id(url: str) -> bool:
    request = urllib.request.Request(
        url,
        data=json.dumps(
            {"jsonrpc": "2.0", "id": 1, "method": "eth_chainId", "params": []}
        ).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=1) as response:
            return "result" in json.loads(response.read())
    except (OSError, ValueError):
        return False


def _log_tail(log_path: str | None, lines: int = 20) -> str:
    if not log_path:
        return " (no log kept: pass log_path to see Anvil's output)"
    try:
        text = Path(log_path).read_text(errors="replace")
    except OSError:
        return ""
    return "; log tail:\n" + "\n".join(text.splitlines()[-lines:])
