"""Events anchored on a real chain (Anvil): proofs, chain outages, crashes between send and record."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from web3 import Web3
from web3.types import RPCEndpoint

from chalicelib.adapters.chain import ChainLedger, ChainUnavailable
from chalicelib.domain.ledger.merkle import from_hex
from chalicelib.services.anchoring import anchor_pending
from infra.anvil import DEV_PRIVATE_KEY, free_port, rpc_url, start_anvil, stop_anvil
from tests.conftest import Api, registered_device
from tests.fakes.faults import Crash, Faults


def _anchor(aws: Any, chain: ChainLedger) -> dict[str, int]:
    return anchor_pending(aws.events, aws.batches, chain, aws.ledger_bucket, batch_size=2)


def _all_anchored(aws: Any, chain: ChainLedger) -> bool:
    """Every shard's events anchored: the store's counter, its watermark and the chain's counter agree."""
    on_chain = chain.next_seqs(aws.events.shards)
    return all(aws.batches.anchored_through(s) == aws.events.current_seq(s) == on_chain[s] - 1
               for s in range(aws.events.shards))


def test_events_anchored_once_across_chain_outage_and_crash(api: Api, aws: Any, tmp_path: Path) -> None:
    port = free_port()
    state = str(tmp_path / "chain.json")
    node = start_anvil(port, state_file=state, state_interval_s=1)
    try:
        chain = ChainLedger(rpc_url(port), DEV_PRIVATE_KEY)
        address = chain.deploy()
        chain = ChainLedger(rpc_url(port), DEV_PRIVATE_KEY, address)
        # GIVEN three registration events (two in the registry shard, one in the device's), anchored
        registered_device(api)
        assert _anchor(aws, chain)["events"] == 3 and _all_anchored(aws, chain)
        _, events = api.get("/events")
        assert all(e["anchor"] and e["anchor"]["tx_hash"].startswith("0x") for e in events["items"])
        status, proof = api.get("/events/ev-0-000000000002/proof")
        assert status == 200, proof
        assert chain.verify_event(from_hex(proof["root"]), 0, 2, from_hex(proof["leaf"]),
                                  [from_hex(p) for p in proof["proof"]])
        # WHEN the chain goes away while more events arrive
        anchored = [aws.batches.anchored_through(s) for s in range(aws.events.shards)]
        registered_device(api)
        stop_anvil(node)
        with pytest.raises(ChainUnavailable):
            _anchor(aws, chain)
        assert [aws.batches.anchored_through(s) for s in range(aws.events.shards)] == anchored
        assert aws.batches.backoff().failures == 1
        # THEN after it returns (with its state), the backlog is anchored exactly once
        node = start_anvil(port, state_file=state, state_interval_s=1)
        aws.batches.clear_backoff()
        assert _anchor(aws, chain)["events"] == 3
        assert _all_anchored(aws, chain)
        # AND a crash between sending and recording is healed without sending twice
        registered_device(api)
        first = aws.batches.anchored_through(0) + 1
        with pytest.raises(Crash):
            anchor_pending(aws.events, Faults(aws.batches).always("record_anchored"), chain, aws.ledger_bucket,
                           batch_size=2)
        assert aws.batches.batch(0, first).status.value == "prepared"
        sent_before = chain.batch_count()
        _anchor(aws, chain)
        assert chain.batch_count() == sent_before + 1  # only the next batch was new
        assert _all_anchored(aws, chain)
    finally:
        stop_anvil(node)


def test_a_chain_that_lost_anchors_is_anchored_again_with_the_same_roots(api: Api, aws: Any) -> None:
    port = free_port()
    node = start_anvil(port)
    try:
        chain = ChainLedger(rpc_url(port), DEV_PRIVATE_KEY)
        chain = ChainLedger(rpc_url(port), DEV_PRIVATE_KEY, chain.deploy())
        registered_device(api)
        _anchor(aws, chain)
        # GIVEN a chain state saved here (as a state dump), then more events anchored after it
        node_rpc = Web3(Web3.HTTPProvider(rpc_url(port))).provider
        snapshot = node_rpc.make_request(RPCEndpoint("evm_snapshot"), [])["result"]
        saved_next = chain.next_seqs(aws.events.shards)  # (the first device's shard is random: read, not assumed)
        registered_device(api)
        registered_device(api)
        _anchor(aws, chain)
        assert _all_anchored(aws, chain)
        _, proof = api.get("/events/ev-0-000000000005/proof")
        # WHEN the chain restarts from the older state: it lost the later anchors
        node_rpc.make_request(RPCEndpoint("evm_revert"), [snapshot])
        assert chain.next_seqs(aws.events.shards) == saved_next and not chain.is_root(from_hex(proof["root"]))
        assert _receipt(node_rpc, proof["tx_hash"]) is None  # the proof's transaction is gone with them
        # THEN the next run puts the watermarks back and anchors the same batches again: same roots
        done = _anchor(aws, chain)
        assert done["rewound"] >= 1 and done["events"] == 6
        assert _all_anchored(aws, chain) and chain.is_root(from_hex(proof["root"]))
        _, again = api.get("/events/ev-0-000000000005/proof")
        # (the same signed transaction may be sent again, nonce and all: its hash can repeat; what matters
        # is that the proof now names a transaction on this chain that anchored the root)
        assert again["root"] == proof["root"]
        receipt = _receipt(node_rpc, again["tx_hash"])
        assert receipt is not None and int(receipt["status"], 16) == 1
        assert chain.verify_event(from_hex(again["root"]), 0, 5, from_hex(again["leaf"]),
                                  [from_hex(p) for p in again["proof"]])
    finally:
        stop_anvil(node)


def _receipt(node_rpc: Any, tx_hash: str) -> dict[str, Any] | None:
    """The chain's receipt of a transaction, None when the chain holds no such transaction."""
    return node_rpc.make_request(RPCEndpoint("eth_getTransactionReceipt"), [tx_hash])["result"]  # type: ignore[no-any-return]
