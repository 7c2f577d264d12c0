"""DrecLedger on a local Anvil chain: consecutive batches, events, reverts, proofs."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from eth_hash.auto import keccak
from eth_typing import HexStr
from eth_utils import function_signature_to_4byte_selector
from web3 import Web3
from web3.exceptions import ContractCustomError
from web3.types import RPCEndpoint

from chalicelib.adapters.chain import (
    ChainLedger,
    ChainReverted,
    OnChainBatch,
    load_artifact,
)
from chalicelib.domain.ledger.canonical import canonical_json
from chalicelib.domain.ledger.merkle import MerkleTree, leaf_hash, verify_proof
from infra.anvil import DEV_ADDRESS, DEV_PRIVATE_KEY
from tests.support.chain_fixtures import (
    OTHER_DEV_ADDRESS,
    OTHER_DEV_PRIVATE_KEY,
    AnvilNode,
    running_anvil,
)


@pytest.fixture(scope="module")
def anvil() -> Iterator[AnvilNode]:
    with running_anvil() as node:
        yield node


@pytest.fixture
def ledger(anvil: AnvilNode) -> ChainLedger:
    """A freshly deployed ledger owned by the first dev account."""
    ledger = ChainLedger(anvil.rpc_url, DEV_PRIVATE_KEY)
    ledger.deploy()
    return ledger


def root_of(label: str) -> bytes:
    return keccak(label.encode())


DATA_HASH = keccak(b"batch data")


def web3_contract(anvil: AnvilNode, ledger: ChainLedger) -> tuple[Web3, Any]:
    """Plain web3 access to the ledger, to see what the adapter does not expose."""
    assert ledger.contract_address is not None
    w3 = Web3(Web3.HTTPProvider(anvil.rpc_url))
    address = Web3.to_checksum_address(ledger.contract_address)
    return w3, w3.eth.contract(address=address, abi=load_artifact("DrecLedger")["abi"])


def test_new_ledger_starts_at_seq_one_with_no_batches(ledger: ChainLedger) -> None:
    assert ledger.next_seq(0) == 1
    assert ledger.batch_count() == 0
    assert ledger.contract_address is not None
    assert not ledger.is_root(root_of("anything"))


def test_consecutive_batches_get_rising_ids_and_read_back(ledger: ChainLedger) -> None:
    sizes = [5, 1, 1000]

    receipts = []
    first_seq = 1
    for number, size in enumerate(sizes, start=1):
        receipts.append(
            ledger.anchor_batch(0, root_of(f"r{number}"), first_seq, size, DATA_HASH)
        )
        first_seq += size

    assert [r.batch_id for r in receipts] == [1, 2, 3]
    assert ledger.next_seq(0) == 1 + 5 + 1 + 1000
    assert ledger.batch_count() == 3
    second = ledger.root_info(root_of("r2"))
    assert second is not None
    assert (second.batch_id, second.root, second.first_seq, second.event_count) == (
        2,
        root_of("r2"),
        6,
        1,
    )
    third = ledger.root_info(root_of("r3"))
    assert third is not None
    assert (third.batch_id, third.first_seq, third.event_count) == (3, 7, 1000)
    assert all(ledger.is_root(root_of(f"r{n}")) for n in (1, 2, 3))


def test_anchoring_writes_one_new_storage_slot_and_costs_under_60k_gas(
    anvil: AnvilNode, ledger: ChainLedger
) -> None:
    ledger.anchor_batch(0, root_of("warm-up"), 1, 10, DATA_HASH)
    w3, _ = web3_contract(anvil, ledger)

    receipt = ledger.anchor_batch(0, root_of("measured"), 11, 1000, DATA_HASH)

    trace = w3.provider.make_request(
        RPCEndpoint("debug_traceTransaction"),
        [
            receipt.tx_hash,
            {"tracer": "prestateTracer", "tracerConfig": {"diffMode": True}},
        ],
    )["result"]
    address = str(ledger.contract_address).lower()
    before = trace["pre"].get(address, {}).get("storage", {})
    after = trace["post"][address]["storage"]
    created = [slot for slot in after if int(before.get(slot, "0x0"), 16) == 0]
    # The root's record lives at keccak256(root . 2): the roots mapping is the third slot, after the
    # owner's slot (with the batch counter) and the shards' counters at keccak256(shard . 1).
    record_slot = "0x" + keccak(root_of("measured") + (2).to_bytes(32, "big")).hex()
    shard_slot = "0x" + keccak((0).to_bytes(32, "big") + (1).to_bytes(32, "big")).hex()
    assert created == [record_slot]
    assert set(after) == {"0x" + "00" * 32, shard_slot, record_slot}
    assert receipt.gas_used < 60_000


def test_root_info_of_an_unknown_root_is_none_and_the_view_reverts(
    anvil: AnvilNode, ledger: ChainLedger
) -> None:
    ledger.anchor_batch(0, root_of("known"), 1, 3, DATA_HASH)
    _, contract = web3_contract(anvil, ledger)

    assert ledger.root_info(root_of("unknown")) is None
    with pytest.raises(ContractCustomError) as raised:
        contract.functions.rootInfo(root_of("unknown")).call()
    selector = function_signature_to_4byte_selector("DrecLedgerUnknownRoot(bytes32)")
    assert raised.value.data == "0x" + selector.hex() + root_of("unknown").hex()


def test_anchoring_emits_batch_anchored_with_its_arguments(
    anvil: AnvilNode, ledger: ChainLedger
) -> None:
    ledger.anchor_batch(0, root_of("first"), 1, 7, DATA_HASH)
    w3, contract = web3_contract(anvil, ledger)

    receipt = ledger.anchor_batch(0, root_of("second"), 8, 3, keccak(b"other data"))

    logs = contract.events.BatchAnchored().process_receipt(
        w3.eth.get_transaction_receipt(HexStr(receipt.tx_hash))
    )
    assert len(logs) == 1
    assert dict(logs[0]["args"]) == {
        "batchId": 2,
        "root": root_of("second"),
        "shard": 0,
        "firstSeq": 8,
        "eventCount": 3,
        "dataHash": keccak(b"other data"),
    }
    block = w3.eth.get_block(receipt.block_number)
    assert ledger.root_info(root_of("second")) == OnChainBatch(
        batch_id=2,
        root=root_of("second"),
        first_seq=8,
        event_count=3,
        anchored_at=block["timestamp"],
        shard=0,
    )
    assert receipt.gas_used > 21_000


@pytest.mark.parametrize(
    ("root", "first_seq", "event_count", "error", "args"),
    [
        ("gap", 12, 1, "DrecLedgerSequenceMismatch", {"shard": 0, "expected": 11, "given": 12}),
        ("overlap", 10, 5, "DrecLedgerSequenceMismatch", {"shard": 0, "expected": 11, "given": 10}),
        ("seed", 1, 10, "DrecLedgerSequenceMismatch", {"shard": 0, "expected": 11, "given": 1}),
        ("zero-count", 11, 0, "DrecLedgerEmptyBatch", {}),
        (None, 11, 5, "DrecLedgerZeroRoot", {}),
    ],
    ids=["gapped", "overlapping", "replayed", "zero-count", "zero-root"],
)
def test_bad_batches_revert_with_named_errors_and_change_nothing(
    ledger: ChainLedger,
    root: str | None,
    first_seq: int,
    event_count: int,
    error: str,
    args: dict[str, int],
) -> None:
    ledger.anchor_batch(0, root_of("seed"), 1, 10, DATA_HASH)
    bad_root = bytes(32) if root is None else root_of(root)

    with pytest.raises(ChainReverted) as raised:
        ledger.anchor_batch(0, bad_root, first_seq, event_count, DATA_HASH)

    assert raised.value.error_name == error
    assert raised.value.error_args == args
    assert raised.value.reason.startswith(error + "(")
    assert (ledger.next_seq(0), ledger.batch_count()) == (11, 1)


def test_a_root_cannot_be_anchored_twice(ledger: ChainLedger) -> None:
    ledger.anchor_batch(0, root_of("same"), 1, 2, DATA_HASH)

    with pytest.raises(ChainReverted) as raised:
        ledger.anchor_batch(0, root_of("same"), 3, 2, DATA_HASH)

    assert raised.value.error_name == "DrecLedgerRootAlreadyAnchored"
    assert raised.value.error_args == {
        "root": "0x" + root_of("same").hex(),
        "batchId": 1,
    }


def test_only_the_owner_anchors(anvil: AnvilNode, ledger: ChainLedger) -> None:
    assert ledger.contract_address is not None
    stranger = ChainLedger(
        anvil.rpc_url, OTHER_DEV_PRIVATE_KEY, ledger.contract_address
    )

    with pytest.raises(ChainReverted) as raised:
        stranger.anchor_batch(0, root_of("x"), 1, 1, DATA_HASH)

    assert raised.value.error_name == "DrecLedgerUnauthorizedAccount"
    assert raised.value.error_args == {"account": OTHER_DEV_ADDRESS}
    assert ledger.next_seq(0) == 1


def test_transferred_ownership_moves_the_right_to_anchor(
    anvil: AnvilNode, ledger: ChainLedger
) -> None:
    w3, contract = web3_contract(anvil, ledger)
    assert contract.functions.owner().call() == DEV_ADDRESS
    tx = contract.functions.transferOwnership(OTHER_DEV_ADDRESS).transact(
        {"from": DEV_ADDRESS}
    )
    transfer_logs = contract.events.OwnershipTransferred().process_receipt(
        w3.eth.wait_for_transaction_receipt(tx)
    )
    assert ledger.contract_address is not None
    new_owner = ChainLedger(
        anvil.rpc_url, OTHER_DEV_PRIVATE_KEY, ledger.contract_address
    )

    receipt = new_owner.anchor_batch(0, root_of("by new owner"), 1, 4, DATA_HASH)

    assert dict(transfer_logs[0]["args"]) == {
        "previousOwner": DEV_ADDRESS,
        "newOwner": OTHER_DEV_ADDRESS,
    }
    assert receipt.batch_id == 1
    with pytest.raises(ChainReverted, match="DrecLedgerUnauthorizedAccount"):
        ledger.anchor_batch(0, root_of("by old owner"), 5, 1, DATA_HASH)


def test_ownership_cannot_go_to_the_zero_address(
    anvil: AnvilNode, ledger: ChainLedger
) -> None:
    _, contract = web3_contract(anvil, ledger)

    with pytest.raises(ContractCustomError) as raised:
        contract.functions.transferOwnership("0x" + "00" * 20).call(
            {"from": DEV_ADDRESS}
        )

    selector = function_signature_to_4byte_selector("DrecLedgerInvalidOwner(address)")
    assert raised.value.data == "0x" + selector.hex() + "00" * 32


def test_python_merkle_proofs_verify_against_the_on_chain_root(
    ledger: ChainLedger,
) -> None:
    bodies = [
        canonical_json({"seq": seq, "type": "ReadingAccepted", "energy_wh": 100 + seq})
        for seq in range(1, 38)
    ]
    leaves = [leaf_hash(body) for body in bodies]
    tree = MerkleTree(leaves)
    receipt = ledger.anchor_batch(0, tree.root, 1, len(leaves), keccak(b"".join(bodies)))

    anchored = ledger.root_info(tree.root)
    assert anchored is not None
    on_chain_root = anchored.root

    assert anchored.batch_id == receipt.batch_id
    assert ledger.is_root(on_chain_root)
    for index in (0, 1, 17, 35, 36):
        proof = tree.proof(index)
        assert verify_proof(leaves[index], proof, on_chain_root)
        # The contract's own fold agrees with the Python one.
        assert ledger.verify_leaf(on_chain_root, leaves[index], proof)
    forged = leaf_hash(
        canonical_json({"seq": 5, "type": "ReadingAccepted", "energy_wh": 9999})
    )
    assert not ledger.verify_leaf(on_chain_root, forged, tree.proof(4))
    assert not ledger.verify_leaf(root_of("never anchored"), leaves[0], tree.proof(0))


def test_verify_event_checks_the_root_the_seq_range_and_the_proof(
    ledger: ChainLedger,
) -> None:
    ledger.anchor_batch(0, root_of("before"), 1, 9, DATA_HASH)
    bodies = [
        canonical_json({"seq": seq, "type": "Transferred", "quantity": 1})
        for seq in range(10, 15)
    ]
    leaves = [leaf_hash(body) for body in bodies]
    tree = MerkleTree(leaves)
    ledger.anchor_batch(0, tree.root, 10, len(leaves), keccak(b"".join(bodies)))
    ledger.anchor_batch(0, root_of("after"), 15, 3, DATA_HASH)

    # seq 10..14 are this batch's; 9 and 15 belong to its neighbours
    assert ledger.verify_event(tree.root, 0, 10, leaves[0], tree.proof(0))
    assert ledger.verify_event(tree.root, 0, 14, leaves[4], tree.proof(4))
    assert not ledger.verify_event(tree.root, 0, 9, leaves[0], tree.proof(0))
    assert not ledger.verify_event(tree.root, 0, 15, leaves[4], tree.proof(4))
    assert not ledger.verify_event(tree.root, 0, 0, leaves[0], tree.proof(0))
    assert not ledger.verify_event(tree.root, 0, 2**64 - 1, leaves[0], tree.proof(0))
    assert not ledger.verify_event(tree.root, 0, 12, leaves[2], tree.proof(1))
    assert not ledger.verify_event(root_of("never"), 0, 10, leaves[0], tree.proof(0))


def test_each_shard_has_its_own_sequence_and_batch_ids_count_every_shard(
    anvil: AnvilNode, ledger: ChainLedger
) -> None:
    # GIVEN batches of three shards, each starting at 1
    ledger.anchor_batch(0, root_of("s0-a"), 1, 4, DATA_HASH)
    ledger.anchor_batch(7, root_of("s7-a"), 1, 2, DATA_HASH)
    ledger.anchor_batch(0, root_of("s0-b"), 5, 1, DATA_HASH)
    receipt = ledger.anchor_batch(63, root_of("s63-a"), 1, 9, DATA_HASH)
    # THEN each shard moved on its own, and the batch ids rise across shards
    assert [ledger.next_seq(s) for s in (0, 1, 7, 63)] == [6, 1, 3, 10]
    assert ledger.next_seqs(8) == [6, 1, 1, 1, 1, 1, 1, 3]
    assert receipt.batch_id == 4 and ledger.batch_count() == 4
    info = ledger.root_info(root_of("s7-a"))
    assert info is not None and (info.shard, info.first_seq, info.event_count, info.batch_id) == (7, 1, 2, 2)
    # AND the log names the shard as an indexed topic, so a verifier can follow one shard's batches
    _, contract = web3_contract(anvil, ledger)
    logs = contract.events.BatchAnchored().get_logs(from_block=0, argument_filters={"shard": 7})
    assert [log["args"]["root"] for log in logs] == [root_of("s7-a")]


def test_a_gap_in_one_shard_is_refused_naming_the_shard_and_changes_no_other(ledger: ChainLedger) -> None:
    ledger.anchor_batch(3, root_of("s3"), 1, 14, DATA_HASH)
    with pytest.raises(ChainReverted) as raised:
        ledger.anchor_batch(3, root_of("s3-gap"), 35, 1, DATA_HASH)
    assert raised.value.error_args == {"shard": 3, "expected": 15, "given": 35}
    with pytest.raises(ChainReverted):
        ledger.anchor_batch(4, root_of("s4-not-first"), 15, 1, DATA_HASH)  # shard 4 starts at 1
    assert (ledger.next_seq(3), ledger.next_seq(4)) == (15, 1)


def test_verify_event_checks_the_shard_of_the_root(ledger: ChainLedger) -> None:
    bodies = [canonical_json({"shard": 2, "seq": n}) for n in (1, 2, 3)]
    leaves = [leaf_hash(b) for b in bodies]
    tree = MerkleTree(leaves)
    ledger.anchor_batch(2, tree.root, 1, 3, keccak(b"".join(bodies)))
    assert ledger.verify_event(tree.root, 2, 1, leaves[0], tree.proof(0))
    assert not ledger.verify_event(tree.root, 0, 1, leaves[0], tree.proof(0))  # same seq, another shard
