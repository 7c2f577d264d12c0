"""Gas and speed of anchoring events on the chain, against the naive baselines.

Run: `python -m tests.bench.bench_chain` (starts and stops its own Anvil).

Prints, all measured in the same run on one fresh chain:
- gas per event of one `DrecLedger.anchorBatch` over Merkle batches of 1 .. 10,000 events,
  with the off-chain leaf + tree build time;
- gas per event of `EventLogger.logEvent` (one transaction per event);
- gas per certificate of `CertificateToken.mint` (one token per D-REC);
- events anchored per second end to end (leaves, tree, sign, send, receipt).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from eth_hash.auto import keccak
from web3 import Web3

from chalicelib.adapters.chain import ChainLedger, load_artifact
from chalicelib.domain.ledger.canonical import canonical_json
from chalicelib.domain.ledger.merkle import MerkleTree, leaf_hash
from infra.anvil import (
    DEV_ADDRESS,
    DEV_PRIVATE_KEY,
    free_port,
    rpc_url,
    start_anvil,
    stop_anvil,
)

BATCH_SIZES = (1, 100, 1_000, 10_000)
THROUGHPUT_SIZES = (1_000, 10_000)
THROUGHPUT_REPEATS = 3
BASELINE_TXS = 20


def event_bodies(first_seq: int, count: int) -> list[bytes]:
    """Canonical bodies shaped like the platform's ReadingAccepted events."""
    return [
        canonical_json(
            {
                "seq": seq,
                "type": "ReadingAccepted",
                "subject_id": f"rdg-{seq:08d}",
                "source_id": "src-bench",
                "occurred_at": "2026-11-01T10:00:00Z",
                "body": {
                    "device_id": f"dev-{seq % 997:05d}",
                    "period_start": "2026-11-01T09:00:00Z",
                    "period_end": "2026-11-01T10:00:00Z",
                    "energy_wh": 40 + seq % 200,
                },
            }
        )
        for seq in range(first_seq, first_seq + count)
    ]


class AnchorRun:
    """Anchors batches on one ledger, keeping the sequence consecutive."""

    def __init__(self, ledger: ChainLedger) -> None:
        self.ledger = ledger
        self.next_seq = 1

    def anchor(self, count: int) -> dict[str, float]:
        bodies = event_bodies(self.next_seq, count)
        started = time.perf_counter()
        tree = MerkleTree([leaf_hash(body) for body in bodies])
        built = time.perf_counter()
        receipt = self.ledger.anchor_batch(
            0, tree.root, self.next_seq, count, keccak(b"".join(bodies))
        )
        done = time.perf_counter()
        self.next_seq += count
        return {
            "gas": receipt.gas_used,
            "build_s": built - started,
            "tx_s": done - built,
            "total_s": done - started,
        }


def deploy(w3: Web3, name: str) -> Any:
    artifact = load_artifact(name)
    factory = w3.eth.contract(abi=artifact["abi"], bytecode=artifact["bytecode"])
    receipt = w3.eth.wait_for_transaction_receipt(
        factory.constructor().transact({"from": DEV_ADDRESS})
    )
    return w3.eth.contract(address=receipt["contractAddress"], abi=artifact["abi"])


def mean_gas(w3: Web3, calls: list[Any]) -> float:
    gas = []
    for call in calls:
        tx_hash = call.transact({"from": DEV_ADDRESS})
        gas.append(w3.eth.wait_for_transaction_receipt(tx_hash)["gasUsed"])
    return statistics.fmean(gas)


def main() -> None:
    port = free_port()
    with tempfile.TemporaryDirectory() as workdir:
        log_path = str(Path(workdir) / "anvil.log")
        proc = start_anvil(port, log_path=log_path)
        try:
            run(rpc_url(port))
        finally:
            stop_anvil(proc)


def run(url: str) -> None:
    w3 = Web3(Web3.HTTPProvider(url))
    ledger = ChainLedger(url, DEV_PRIVATE_KEY)
    ledger.deploy()
    anchors = AnchorRun(ledger)

    # The first anchor also pays one-off client costs (chain id, contract objects):
    # keep it out of the figures.
    anchors.anchor(1)
    batches = {size: anchors.anchor(size) for size in BATCH_SIZES}

    logger = deploy(w3, "EventLogger")
    log_gas = mean_gas(
        w3,
        [
            logger.functions.logEvent(seq, keccak(str(seq).encode()))
            for seq in range(1, BASELINE_TXS + 1)
        ],
    )
    token = deploy(w3, "CertificateToken")
    mint_gas = mean_gas(
        w3,
        [
            token.functions.mint(DEV_ADDRESS, serial, keccak(str(serial).encode()))
            for serial in range(1, BASELINE_TXS + 1)
        ],
    )

    throughput = {}
    for size in THROUGHPUT_SIZES:
        runs = [anchors.anchor(size) for _ in range(THROUGHPUT_REPEATS)]
        throughput[size] = {
            key: statistics.median(r[key] for r in runs) for key in runs[0]
        }

    client = w3.client_version
    print(
        f"chain: {client} at {url}, chain id {w3.eth.chain_id}; contracts: solc 0.8.37, evm prague, optimizer 200"
    )
    print()
    print("gas per event")
    print(
        f"{'approach':<44}{'events/tx':>10}{'gas/tx':>10}{'gas/event':>12}{'leaves+tree [ms]':>18}"
    )
    for size, figures in batches.items():
        print(
            f"{'DrecLedger.anchorBatch (Merkle batch)':<44}{size:>10,}{figures['gas']:>10,.0f}"
            f"{figures['gas'] / size:>12,.1f}{figures['build_s'] * 1000:>18.1f}"
        )
    print(
        f"{'EventLogger.logEvent (1 tx per event)':<44}{1:>10}{log_gas:>10,.0f}{log_gas:>12,.1f}{'-':>18}"
    )
    print(
        f"{'CertificateToken.mint (1 token per D-REC)':<44}{'1 D-REC':>10}{mint_gas:>10,.0f}"
        f"{'per D-REC':>12}{'-':>18}"
    )
    print()
    print(
        "anchor path end to end (canonical bodies -> leaves -> tree -> sign -> send -> receipt)"
    )
    print(f"median of {THROUGHPUT_REPEATS} runs")
    print(
        f"{'events':>8}{'leaves+tree [ms]':>18}{'tx+receipt [ms]':>17}{'total [ms]':>12}{'events/s':>12}"
    )
    for size, figures in throughput.items():
        print(
            f"{size:>8,}{figures['build_s'] * 1000:>18.1f}{figures['tx_s'] * 1000:>17.1f}"
            f"{figures['total_s'] * 1000:>12.1f}{size / figures['total_s']:>12,.0f}"
        )
    print()
    at_1k, at_10k = batches[1_000]["gas"] / 1_000, batches[10_000]["gas"] / 10_000
    print(
        f"targets: < 60 gas/event at 1,000 -> {at_1k:.1f}; < 10 gas/event at 10,000 -> {at_10k:.2f}; "
        f"one tx per event costs {log_gas / at_10k:,.0f}x the 10,000-event batch per event"
    )


if __name__ == "__main__":
    main()
