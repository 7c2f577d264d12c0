"""The ledger contract on an EVM chain, through web3: deploy, anchor batches, read them back.

No domain logic lives here: callers bring the Merkle root and sequence range, this module
signs, sends, waits and translates chain failures into `ChainError`s.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import requests
from eth_account import Account
from eth_utils import to_checksum_address
from web3 import Web3
from web3.contract import Contract
from web3.exceptions import (
    ContractLogicError,
    ProviderConnectionError,
    RequestTimedOut,
    TimeExhausted,
)
from web3.logs import DISCARD
from web3.types import TxParams

from ...domain.privacy import public_rpc_hint
from ...domain.stores import ChainError
from .reverts import ChainReverted, ChainUnavailable, RevertDecoder

REPO_ROOT = Path(__file__).resolve().parents[3]
# The deployed functions ship chalicelib/ only, so the ledger's artifact has a packaged copy
# there; a checkout falls back to the compiler's own output.
PACKAGED_ARTIFACT_DIR = Path(__file__).resolve().parents[2] / "contracts_build"
ARTIFACT_DIR = REPO_ROOT / "contracts" / "build"
LEDGER_CONTRACT = "DrecLedger"

# Headroom over eth_estimateGas, which Anvil computes exactly for the current state.
_GAS_MARGIN = 1.2

T = TypeVar("T")


@dataclass(frozen=True)
class OnChainBatch:
    """One anchored batch as the contract stores it; `anchored_at` in [s since the epoch].

    The batch's data hash is not stored on the chain: it is in its `BatchAnchored` log.
    """

    batch_id: int
    root: bytes
    first_seq: int
    event_count: int
    anchored_at: int
    shard: int = 0


@dataclass(frozen=True)
class AnchorReceipt:
    batch_id: int
    tx_hash: str
    block_number: int
    gas_used: int


def load_artifact(name: str) -> dict[str, Any]:
    """The compiled artifact `<name>.json` (abi, bytecode, ...).

    Read from `chalicelib/contracts_build/` when packaged there, else `contracts/build/`.
    """
    searched = [PACKAGED_ARTIFACT_DIR / f"{name}.json", ARTIFACT_DIR / f"{name}.json"]
    for path in searched:
        try:
            artifact: dict[str, Any] = json.loads(path.read_text())
        except FileNotFoundError:
            continue
        return artifact
    raise ChainError(
        f"no artifact {name} in {', '.join(str(p.parent) for p in searched)}: "
        "run `node contracts/compile.js`"
    )


class ChainLedger:
    """The `DrecLedger` contract at `contract_address` (or deployed by `deploy`).

    Writes are signed locally with `private_key`; the anchoring is a single writer, so the
    nonce is simply the account's pending transaction count at each call.
    """

    def __init__(
        self,
        rpc_url: str,
        private_key: str,
        contract_address: str | None = None,
        *,
        receipt_timeout_s: float = 30,
    ) -> None:
        self._setup(rpc_url, private_key, contract_address, receipt_timeout_s)

    @classmethod
    def reader(
        cls, rpc_url: str, contract_address: str, *, receipt_timeout_s: float = 30
    ) -> ChainLedger:
        """A read-only ledger, with no key: for verifiers and the public API."""
        ledger = cls.__new__(cls)
        ledger._setup(rpc_url, None, contract_address, receipt_timeout_s)
        return ledger

    def _setup(
        self,
        rpc_url: str,
        private_key: str | None,
        contract_address: str | None,
        receipt_timeout_s: float,
    ) -> None:
        # No retries inside web3: a dead node should fail fast as ChainUnavailable, and the
        # caller (a redelivered queue message) is where retrying belongs.
        provider = Web3.HTTPProvider(
            rpc_url,
            request_kwargs={"timeout": receipt_timeout_s},
            exception_retry_configuration=None,
        )
        self._w3 = Web3(provider)
        # Messages reach API answers (/drecs/{serial}/verify): name the node without the key a
        # provider URL carries in its user info, path or query; the chained exception keeps the rest.
        self._rpc_label = public_rpc_hint(rpc_url) or "the configured RPC URL"
        self._account = (
            Account.from_key(private_key) if private_key is not None else None
        )
        self._receipt_timeout_s = receipt_timeout_s
        self._chain_id: int | None = None
        artifact = load_artifact(LEDGER_CONTRACT)
        self._abi: list[dict[str, Any]] = artifact["abi"]
        self._bytecode: str = artifact["bytecode"]
        self._reverts = RevertDecoder(self._abi)
        self._contract: Contract | None = None
        if contract_address is not None:
            self._contract = self._w3.eth.contract(
                address=to_checksum_address(contract_address), abi=self._abi
            )

    @property
    def chain_id(self) -> int:
        if self._chain_id is None:
            self._chain_id = self._guard(lambda: int(self._w3.eth.chain_id))
        return self._chain_id

    @property
    def contract_address(self) -> str | None:
        return None if self._contract is None else str(self._contract.address)

    @property
    def account_address(self) -> str | None:
        return None if self._account is None else str(self._account.address)

    def deploy(self) -> str:
        """Deploy a new ledger owned by this key; it becomes this adapter's contract."""
        factory = self._w3.eth.contract(abi=self._abi, bytecode=self._bytecode)
        receipt = self._transact(factory.constructor())
        address = to_checksum_address(receipt["contractAddress"])
        self._contract = self._w3.eth.contract(address=address, abi=self._abi)
        return str(address)

    def next_seq(self, shard: int) -> int:
        return int(self._call("nextSeq", shard))

    def next_seqs(self, shards: int) -> list[int]:
        """`next_seq` of shards 0 .. shards - 1, in one call."""
        return [int(n) for n in self._call("nextSeqs", shards)]

    def batch_count(self) -> int:
        return int(self._call("batchCount"))

    def has_code(self) -> bool:
        """Whether contract code is deployed at the address (False when there is none)."""
        if self._contract is None:
            return False
        address = self._contract.address
        return len(self._guard(lambda: self._w3.eth.get_code(address))) > 0

    def root_info(self, root: bytes) -> OnChainBatch | None:
        """The batch anchored under `root`, or None if `root` was never anchored."""
        try:
            batch_id, first_seq, event_count, anchored_at, shard = self._call("rootInfo", root)
        except ChainReverted as exc:
            if exc.error_name == "DrecLedgerUnknownRoot":
                return None
            raise
        return OnChainBatch(
            batch_id=int(batch_id),
            root=bytes(root),
            first_seq=int(first_seq),
            event_count=int(event_count),
            anchored_at=int(anchored_at),
            shard=int(shard),
        )

    def is_root(self, root: bytes) -> bool:
        return bool(self._call("isRoot", root))

    def verify_leaf(self, root: bytes, leaf: bytes, proof: Sequence[bytes]) -> bool:
        """The contract's own check that `leaf` is under the anchored `root`."""
        return bool(self._call("verifyLeaf", root, leaf, list(proof)))

    def verify_event(
        self, root: bytes, shard: int, seq: int, leaf: bytes, proof: Sequence[bytes]
    ) -> bool:
        """The contract's check that event (`shard`, `seq`) (hashed to `leaf`) is anchored under
        `root`: the root is anchored for that shard, `seq` is in its batch's range and `proof` leads to it."""
        return bool(self._call("verifyEvent", root, shard, seq, leaf, list(proof)))

    def anchor_batch(
        self, shard: int, root: bytes, first_seq: int, event_count: int, data_hash: bytes
    ) -> AnchorReceipt:
        """Anchor events `first_seq .. first_seq + event_count - 1` of `shard` under `root`."""
        contract = self._require_contract()
        receipt = self._transact(
            contract.functions.anchorBatch(shard, root, first_seq, event_count, data_hash)
        )
        events = contract.events.BatchAnchored().process_receipt(
            receipt, errors=DISCARD
        )
        if not events:
            raise ChainError(
                f"transaction {receipt['transactionHash'].to_0x_hex()} emitted no BatchAnchored"
            )
        return AnchorReceipt(
            batch_id=int(events[0]["args"]["batchId"]),
            tx_hash=receipt["transactionHash"].to_0x_hex(),
            block_number=int(receipt["blockNumber"]),
            gas_used=int(receipt["gasUsed"]),
        )

    def find_anchor(self, root: bytes) -> AnchorReceipt | None:
        """The transaction that anchored `root`, from the contract's logs (after a crash between
        sending and recording, this is how the sender learns what the chain already holds)."""
        info = self.root_info(root)
        if info is None:
            return None
        contract = self._require_contract()

        def lookup() -> AnchorReceipt | None:
            logs = contract.events.BatchAnchored().get_logs(
                from_block=0, argument_filters={"root": root}
            )
            if not logs:
                return None
            log = logs[-1]
            receipt = self._w3.eth.get_transaction_receipt(log["transactionHash"])
            return AnchorReceipt(
                batch_id=int(log["args"]["batchId"]),
                tx_hash=log["transactionHash"].to_0x_hex(),
                block_number=int(log["blockNumber"]),
                gas_used=int(receipt["gasUsed"]),
            )

        return self._guard(lookup)

    def _require_contract(self) -> Contract:
        if self._contract is None:
            raise ChainError(
                "no ledger contract: pass contract_address or call deploy()"
            )
        return self._contract

    def _call(self, function: str, *args: Any) -> Any:
        contract = self._require_contract()
        return self._guard(lambda: contract.functions[function](*args).call())

    def _transact(self, call: Any) -> Any:
        if self._account is None:
            raise ChainError(
                "this ledger is read-only: it was opened without a private key"
            )
        account = self._account

        def send() -> Any:
            sender = account.address
            nonce = self._w3.eth.get_transaction_count(sender, "pending")
            tx = call.build_transaction(
                {"from": sender, "nonce": nonce, "chainId": self.chain_id}
            )
            tx["gas"] = int(tx["gas"] * _GAS_MARGIN)
            signed = account.sign_transaction(tx)
            tx_hash = self._w3.eth.send_raw_transaction(signed.raw_transaction)
            receipt = self._w3.eth.wait_for_transaction_receipt(
                tx_hash, timeout=self._receipt_timeout_s, poll_latency=0.05
            )
            if receipt["status"] != 1:
                self._explain_failed(tx, receipt)
            return receipt

        return self._guard(send)

    def _explain_failed(self, tx: Any, receipt: Any) -> None:
        # The estimate passed but the mined transaction reverted: another transaction moved
        # the state first. Replaying on the state after its block usually names the reason.
        replay: TxParams = {"from": tx["from"], "data": tx["data"]}
        if "to" in tx:
            replay["to"] = tx["to"]
        self._w3.eth.call(replay, receipt["blockNumber"])
        raise ChainReverted(
            f"transaction {receipt['transactionHash'].to_0x_hex()} reverted (status 0)"
        )

    def _guard(self, action: Callable[[], T]) -> T:
        with self._translated_errors():
            return action()

    @contextmanager
    def _translated_errors(self) -> Iterator[None]:
        try:
            yield
        except ContractLogicError as exc:
            raise self._reverts.reverted(exc) from exc
        except (requests.ConnectionError, ProviderConnectionError) as exc:
            raise ChainUnavailable(
                f"chain node at {self._rpc_label} refused the connection ({type(exc).__name__})"
            ) from exc
        except (requests.Timeout, RequestTimedOut) as exc:
            raise ChainUnavailable(
                f"chain node at {self._rpc_label} timed out ({type(exc).__name__})"
            ) from exc
        except TimeExhausted as exc:
            raise ChainUnavailable(
                f"no receipt from {self._rpc_label} within {self._receipt_timeout_s} s ({type(exc).__name__})"
            ) from exc
