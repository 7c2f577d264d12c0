"""`make up`: the whole platform on this machine, on 127.0.0.1.

Starts moto in server mode (DynamoDB, SQS, S3) with its write-ahead journal
(`infra.emulator`, `infra.journal`: it creates every resource from `infra.resources`
and brings back everything it ever acknowledged before it serves), starts Anvil with a
persistent state file and deploys the ledger contract once, then `chalice local` for the
routes and the dispatcher for the queues and schedules. Ctrl-C (or SIGTERM) stops
everything it started, in seconds: nothing needs saving, the journal already holds it.
A part that dies, `kill -9` included, is restarted with backoff (`infra.supervisor`),
and every start of the emulator checks the store against the chain before anything is
served (`infra.recovery`).

Environment: DREC_STACK_DIR (data folder, default .stack), DREC_API_PORT (8000),
DREC_MOTO_PORT (free port), DREC_ANVIL_PORT (8545 when free), DREC_JOURNAL_FSYNC (1: fsync
every journaled write, for power loss; default: written to the OS before answering, which
a killed process cannot lose), DREC_JOURNAL_COMPACT_MB (256), DREC_STORE_LOAD_S (900: seconds the
emulator may take to load its store before the start is given up), DREC_OPERATOR_KEY
(default: a dev key generated once and kept in the data folder).
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from .anvil import DEV_PRIVATE_KEY, free_port, rpc_url, start_anvil, stop_anvil
from .counters import ensure_counted
from .index_backfill import ensure_index_keys
from .provision import configure_notifications, provision
from .recovery import StoreInconsistent, check_shards
from .supervisor import Part, Supervisor

REPO = Path(__file__).resolve().parent.parent
# STACK=localstack uses a running LocalStack (Docker + auth token) instead of moto; it keeps
# its own data (PERSISTENCE=1), so no journal is kept here.
PROFILE = os.environ.get("STACK", "local")
PREFIX = {"local": "drec-local", "localstack": "drec-localstack"}.get(PROFILE, "")


def _port(name: str, default: int | None) -> int:
    value = os.environ.get(name)
    if value:
        return int(value)
    if default is not None and _is_free(default):
        return default
    return free_port()


def _is_free(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        # Connections of the previous run in TIME_WAIT do not make the port busy for a server.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def wait_http(url: str, timeout_s: float, proc: subprocess.Popen[bytes], log: Path | None = None) -> None:
    """Until `url` answers (any HTTP status), or `proc` exits, or the time is up (naming `log`)."""
    where = f"; see {log}:\n" if log else ""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited with {proc.returncode}{where}{_tail(log) if log else ''}")
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except OSError as exc:
            if getattr(exc, "code", None):  # an HTTP error status means the server answers
                return
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout_s:.0f} s{where}{_tail(log) if log else ''}")


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


class Stack:
    def __init__(self, data_dir: Path) -> None:
        self.data = data_dir
        self.logs = data_dir / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.api_port = _port("DREC_API_PORT", 8000)
        self.moto_port = _port("DREC_MOTO_PORT", None) if PROFILE == "local" else 0
        self.anvil_port = _port("DREC_ANVIL_PORT", 8545)
        self._anvil: subprocess.Popen[bytes] | None = None  # stopped by stop() even if a later part refuses
        self.operator_key = os.environ.get("DREC_OPERATOR_KEY") or self._dev_operator_key()
        self.supervisor = Supervisor(_say, fatal=(StoreInconsistent,), on_start=self._record_pids)
        self.restored: dict[str, Any] = {}
        self.env = self._environment()

    def _dev_operator_key(self) -> str:
        path = self.data / "operator-key"
        if not path.exists():
            path.write_text("drec_dev_operator_" + secrets.token_urlsafe(24))
        return path.read_text().strip()

    def _environment(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update({
            "AWS_ENDPOINT_URL": (f"http://127.0.0.1:{self.moto_port}" if PROFILE == "local"
                                 else env.get("AWS_ENDPOINT_URL", "http://localhost:4566")),
            "AWS_ACCESS_KEY_ID": env.get("AWS_ACCESS_KEY_ID", "testing"),
            "AWS_SECRET_ACCESS_KEY": env.get("AWS_SECRET_ACCESS_KEY", "testing"),
            "AWS_DEFAULT_REGION": env.get("AWS_DEFAULT_REGION", "us-east-1"),
            "DREC_PREFIX": PREFIX,
            "DREC_OPERATOR_KEY": self.operator_key,
            "DREC_CHAIN_RPC": rpc_url(self.anvil_port),
            "DREC_CHAIN_PRIVATE_KEY": env.get("DREC_CHAIN_PRIVATE_KEY", DEV_PRIVATE_KEY),
            "DREC_PUBLIC_URL": f"http://127.0.0.1:{self.api_port}",
            "PYTHONUNBUFFERED": "1",
            # Partners of a local stack run on this machine: let pulls reach loopback and private addresses.
            "DREC_PULL_ALLOW_PRIVATE": env.get("DREC_PULL_ALLOW_PRIVATE", "1"),
        })
        return env

    def _spawn(self, name: str, args: list[str]) -> subprocess.Popen[bytes]:
        with open(self.logs / f"{name}.log", "ab") as log:  # the child keeps its own descriptor
            return subprocess.Popen(args, cwd=REPO, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                    start_new_session=True)

    def _record_pids(self, _part: Part) -> None:
        # For operators and the chaos tests: which process is which part right now.
        _write_json(self.data / "parts.json", self.supervisor.pids())

    def start(self) -> None:
        os.environ.update(self.env)
        anvil = self._anvil = self._start_anvil()
        self.env["DREC_LEDGER_ADDRESS"] = self._ledger_address()
        os.environ.update(self.env)
        if PROFILE == "local":
            self.supervisor.add("moto", self._start_emulator)
        else:
            self._prepare_store()
        self.supervisor.add("anvil", lambda: anvil if anvil.poll() is None else self._start_anvil())
        self.supervisor.add("chalice", self._start_api)
        self.supervisor.add("dispatcher", lambda: self._spawn("dispatcher", [sys.executable, "-m",
                                                                             "infra.dispatcher"]))
        self._write_endpoints()
        print(self._banner(self.restored), flush=True)

    def _start_anvil(self) -> subprocess.Popen[bytes]:
        return start_anvil(self.anvil_port, str(self.data / "chain-state.json"), log_path=str(self.logs / "anvil.log"))

    def _start_emulator(self) -> subprocess.Popen[bytes]:
        """Start moto on its journal (it opens its port once it holds what it acknowledged), then check it."""
        store = self.data / "store"
        (store / "recovered.json").unlink(missing_ok=True)
        moto = self._spawn("moto", [sys.executable, "-m", "infra.emulator", "--host", "127.0.0.1", "--port",
                                    str(self.moto_port), "--data", str(store), "--prefix", PREFIX])
        try:
            wait_http(f"http://127.0.0.1:{self.moto_port}/moto-api/", float(os.environ.get("DREC_STORE_LOAD_S", "900")),
                      moto, self.logs / "moto.log")
            self.restored = json.loads((store / "recovered.json").read_text())
            _say(f"store recovered: {self.restored}")
            self._check_store()
        except BaseException:
            _terminate(moto)
            raise
        return moto

    def _prepare_store(self) -> None:
        import boto3

        session = boto3.session.Session()
        provision(PREFIX, session, notifications=False)
        configure_notifications(PREFIX, session)
        self._check_store()

    def _check_store(self) -> None:
        import boto3

        session = boto3.session.Session()
        from chalicelib.adapters.chain import ChainLedger
        from chalicelib.config import event_shards

        ledger = ChainLedger.reader(self.env["DREC_CHAIN_RPC"], self.env["DREC_LEDGER_ADDRESS"])

        shards = event_shards()
        found = check_shards(session.client("dynamodb"), PREFIX, [n - 1 for n in ledger.next_seqs(shards)], shards)
        for repair in (r for findings in found for r in findings.repairs):
            _say(f"repaired: {repair}")
        # Data of a release without counters: count its records once, before anything is served.
        if ensure_counted(session.client("dynamodb"), PREFIX):
            _say("counters recomputed from the records")
        # Data of a release without write-sharded indexes: give its items their index keys once.
        keyed = ensure_index_keys(session.client("dynamodb"), PREFIX)
        if keyed is not None:
            _say(f"index keys written: {keyed}")

    def _start_api(self) -> subprocess.Popen[bytes]:
        api = self._spawn("chalice", [sys.executable, "-m", "infra.api_local", "local", "--host", "127.0.0.1",
                                      "--port", str(self.api_port), "--no-autoreload", "--stage", PROFILE])
        try:
            wait_http(f"http://127.0.0.1:{self.api_port}/openapi.json", 60, api, self.logs / "chalice.log")
        except BaseException:
            _terminate(api)
            raise
        return api

    def _ledger_address(self) -> str:
        from chalicelib.adapters.chain import ChainLedger

        path = self.data / "ledger.json"
        rpc = rpc_url(self.anvil_port)
        if path.exists():
            address = json.loads(path.read_text())["contract_address"]
            from web3 import Web3

            if Web3(Web3.HTTPProvider(rpc)).eth.get_code(Web3.to_checksum_address(address)):
                return address
        address = ChainLedger(rpc, self.env["DREC_CHAIN_PRIVATE_KEY"]).deploy()
        path.write_text(json.dumps({"contract_address": address}))
        return address

    def _write_endpoints(self) -> None:
        endpoints = {"api_url": self.env["DREC_PUBLIC_URL"], "aws_endpoint_url": self.env["AWS_ENDPOINT_URL"],
                     "chain_rpc": self.env["DREC_CHAIN_RPC"], "ledger_address": self.env["DREC_LEDGER_ADDRESS"],
                     "prefix": PREFIX, "pid": os.getpid()}
        (self.data / "endpoints.json").write_text(json.dumps(endpoints, indent=2))

    def _banner(self, restored: dict[str, Any]) -> str:
        kept = restored.get("items", 0)
        return "\n".join([
            "D-REC platform is up.",
            f"  API and portal:   {self.env['DREC_PUBLIC_URL']}/",
            f"  OpenAPI:          {self.env['DREC_PUBLIC_URL']}/openapi.json",
            f"  operator key:     {self.operator_key}   (X-Api-Key; dev value, local only)",
            f"  chain RPC:        {self.env['DREC_CHAIN_RPC']}  ledger contract {self.env['DREC_LEDGER_ADDRESS']}",
            f"  AWS endpoint:     {self.env['AWS_ENDPOINT_URL']}  ({'moto server' if PROFILE == 'local' else PROFILE})",
            f"  data folder:      {self.data}  ({kept} items restored)",
            "Ctrl-C stops everything and keeps the data.",
        ])

    def stop(self) -> None:
        proc = self.supervisor.proc
        for name in ("dispatcher", "chalice", "moto"):
            _terminate(proc(name))
        anvil = proc("anvil") or self._anvil
        if anvil:
            stop_anvil(anvil)


def _say(message: str) -> None:
    print(f"[stack {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2))
    os.replace(tmp, path)


def _terminate(proc: subprocess.Popen[bytes] | None, timeout_s: float = 15) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def main() -> None:
    data = Path(os.environ.get("DREC_STACK_DIR", REPO / ".stack")).resolve()
    stack = Stack(data)
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    try:
        stack.start()
        while not stopping.wait(0.5):
            stack.supervisor.poll()
    except StoreInconsistent as exc:
        print(f"refusing to start: {exc}", file=sys.stderr, flush=True)
        sys.exit(2)
    finally:
        print("stopping...", flush=True)
        stack.stop()  # the data folder stays as it is, whatever happened
        print("stopped.", flush=True)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] != "up":
        sys.exit(f"usage: python -m infra.stack up (got {sys.argv[1]!r})")
    if not PREFIX:
        sys.exit(f"STACK={PROFILE!r}: the local stack runs the 'local' (moto) or 'localstack' profile; "
                 "AWS deploys with `chalice deploy --stage aws` (see README)")
    main()
