"""ChainLedger against real and absent Anvil nodes: failures, restarts, read-only use."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from eth_hash.auto import keccak
from web3 import Web3
from web3.types import RPCEndpoint

from chalicelib.adapters.chain import ChainLedger, ChainReverted, ChainUnavailable, load_artifact
from chalicelib.adapters.chain import ledger as chain
from chalicelib.domain.stores import ChainError
from infra.anvil import DEV_ADDRESS, DEV_PRIVATE_KEY, free_port, rpc_url
from tests.support.chain_fixtures import AnvilNode, running_anvil

DATA_HASH = keccak(b"batch data")


@pytest.fixture(scope="module")
def anvil() -> Iterator[AnvilNode]:
    with running_anvil() as node:
        yield node


def test_nothing_listening_raises_chain_unavailable() -> None:
    silent = rpc_url(free_port())
    ledger = ChainLedger(
        silent,
        DEV_PRIVATE_KEY,
        "0x5FbDB2315678afecb367f032d93F642f64180aa3",
        receipt_timeout_s=2,
    )

    with pytest.raises(ChainUnavailable, match="refused"):
        ledger.next_seq(0)
    with pytest.raises(ChainUnavailable):
        ledger.anchor_batch(0, keccak(b"root"), 1, 1, DATA_HASH)
    with pytest.raises(ChainUnavailable):
        ChainLedger(silent, DEV_PRIVATE_KEY).deploy()
    with pytest.raises(ChainUnavailable):
        _ = ledger.chain_id
    with pytest.raises(ChainUnavailable):
        ledger.has_code()


def test_anchor_receipt_describes_the_mined_transaction(anvil: AnvilNode) -> None:
    ledger = ChainLedger(anvil.rpc_url, DEV_PRIVATE_KEY)
    ledger.deploy()

    # a shard's first batch also creates its counter's storage slot, once (a new slot: 20k gas more)
    opening = ledger.anchor_batch(0, keccak(b"opening"), 1, 1, DATA_HASH)
    first = ledger.anchor_batch(0, keccak(b"one"), 2, 10, DATA_HASH)
    second = ledger.anchor_batch(0, keccak(b"two"), 12, 10_000, DATA_HASH)

    assert (opening.batch_id, first.batch_id, second.batch_id) == (1, 2, 3)
    assert second.block_number > first.block_number
    assert second.tx_hash.startswith("0x") and len(second.tx_hash) == 66
    assert 60_000 < opening.gas_used < 80_000
    # one transaction's gas whatever the batch size: under 60k at 10 and at 10,000 events
    assert 21_000 < first.gas_used < 60_000
    assert abs(second.gas_used - first.gas_used) < 100
    assert ledger.chain_id == 31337


def test_reader_reads_but_cannot_anchor(anvil: AnvilNode) -> None:
    writer = ChainLedger(anvil.rpc_url, DEV_PRIVATE_KEY)
    address = writer.deploy()
    writer.anchor_batch(0, keccak(b"root"), 1, 3, DATA_HASH)

    reader = ChainLedger.reader(anvil.rpc_url, address)

    assert reader.next_seq(0) == 4
    anchored = reader.root_info(keccak(b"root"))
    assert anchored is not None
    assert (anchored.batch_id, anchored.first_seq, anchored.event_count) == (1, 1, 3)
    assert reader.has_code()
    assert reader.account_address is None
    with pytest.raises(ChainError, match="read-only"):
        reader.anchor_batch(0, keccak(b"next"), 4, 1, DATA_HASH)
    with pytest.raises(ChainError, match="read-only"):
        reader.deploy()


def test_a_ledger_without_a_contract_says_to_deploy(anvil: AnvilNode) -> None:
    ledger = ChainLedger(anvil.rpc_url, DEV_PRIVATE_KEY)

    assert ledger.contract_address is None
    assert not ledger.has_code()
    with pytest.raises(ChainError, match="deploy"):
        ledger.next_seq(0)


def test_has_code_is_false_at_an_address_without_a_contract(anvil: AnvilNode) -> None:
    deployed = ChainLedger(anvil.rpc_url, DEV_PRIVATE_KEY)
    deployed.deploy()
    # an account with no code, e.g. a fresh chain's address before anything is deployed
    empty = ChainLedger.reader(anvil.rpc_url, "0x" + "ab" * 20)

    assert deployed.has_code()
    assert not empty.has_code()


def test_missing_artifact_names_the_compile_command(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(chain, "PACKAGED_ARTIFACT_DIR", tmp_path / "packaged")
    monkeypatch.setattr(chain, "ARTIFACT_DIR", tmp_path / "build")

    with pytest.raises(ChainError, match=r"node contracts/compile\.js"):
        load_artifact("DrecLedger")


def test_the_packaged_artifact_comes_first_and_the_build_is_the_fallback(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    packaged, build = tmp_path / "packaged", tmp_path / "build"
    packaged.mkdir()
    build.mkdir()
    (packaged / "DrecLedger.json").write_text(json.dumps({"from": "packaged"}))
    (build / "DrecLedger.json").write_text(json.dumps({"from": "build"}))
    (build / "EventLogger.json").write_text(json.dumps({"from": "build"}))
    monkeypatch.setattr(chain, "PACKAGED_ARTIFACT_DIR", packaged)
    monkeypatch.setattr(chain, "ARTIFACT_DIR", build)

    assert load_artifact("DrecLedger") == {"from": "packaged"}
    assert load_artifact("EventLogger") == {"from": "build"}


def test_anchoring_survives_an_anvil_restart_with_state(tmp_path: Path) -> None:
    state_file = str(tmp_path / "chain-state.json")
    log_path = str(tmp_path / "anvil.log")
    with running_anvil(state_file=state_file, log_path=log_path) as node:
        ledger = ChainLedger(node.rpc_url, DEV_PRIVATE_KEY)
        address = ledger.deploy()
        ledger.anchor_batch(0, keccak(b"before 1"), 1, 5, DATA_HASH)
        ledger.anchor_batch(0, keccak(b"before 2"), 6, 5, DATA_HASH)
    # leaving the block sent SIGTERM: Anvil wrote its state file on the way out
    assert Path(state_file).stat().st_size > 0

    with running_anvil(state_file=state_file, log_path=log_path) as node:
        restarted = ChainLedger(node.rpc_url, DEV_PRIVATE_KEY, address)
        preserved = (
            restarted.next_seq(0),
            restarted.batch_count(),
            restarted.root_info(keccak(b"before 2")),
        )
        receipt = restarted.anchor_batch(0, keccak(b"after"), 11, 5, DATA_HASH)

        assert preserved[:2] == (11, 2)
        assert preserved[2] is not None
        assert (preserved[2].batch_id, preserved[2].first_seq) == (2, 6)
        assert receipt.batch_id == 3
        assert restarted.next_seq(0) == 16


def test_a_batch_overtaken_in_the_same_block_reports_the_named_revert() -> None:
    with running_anvil() as node:
        ledger = ChainLedger(node.rpc_url, DEV_PRIVATE_KEY)
        address = Web3.to_checksum_address(ledger.deploy())
        w3 = Web3(Web3.HTTPProvider(node.rpc_url))
        contract = w3.eth.contract(
            address=address, abi=load_artifact("DrecLedger")["abi"]
        )
        # Interval mining leaves both transactions pending together, so the estimate of
        # the second one passes and the mined transaction is the one that fails.
        w3.provider.make_request(RPCEndpoint("evm_setIntervalMining"), [1])
        contract.functions.anchorBatch(0, keccak(b"first"), 1, 5, DATA_HASH).transact(
            {"from": DEV_ADDRESS, "gas": 200_000}
        )

        with pytest.raises(ChainReverted) as raised:
            ledger.anchor_batch(0, keccak(b"second"), 1, 5, DATA_HASH)

        assert raised.value.error_name == "DrecLedgerSequenceMismatch"
        assert raised.value.error_args == {"shard": 0, "expected": 6, "given": 1}
        assert ledger.batch_count() == 1
