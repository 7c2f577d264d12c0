"""Events anchored on a real chain (Anvil): proofs, chain outages, crashes between send and record."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from chalicelib.adapters.chain import ChainLedger, ChainUnavailable
from chalicelib.domain.ledger.merkle import from_hex
from chalicelib.services.anchoring import anchor_pending
from infra.anvil import DEV_PRIVATE_KEY, free_port, rpc_url, start_anvil, stop_anvil
from tests.conftest import Api, registered_device
from tests.fakes.faults import Crash, Faults


def _anchor(aws: Any, chain: ChainLedger) -> dict[str, int]:
    return anchor_pending(aws.events, aws.batches, chain, aws.ledger_bucket, batch_size=2)


def test_events_anchored_once_across_chain_outage_and_crash(api: Api, aws: Any, tmp_path: Path) -> None:
    port = free_port()
    state = str(tmp_path / "chain.json")
    node = start_anvil(port, state_file=state, state_interval_s=1)
    try:
        chain = ChainLedger(rpc_url(port), DEV_PRIVATE_KEY)
        address = chain.deploy()
        chain = ChainLedger(rpc_url(port), DEV_PRIVATE_KEY, address)
        # GIVEN three registration events, anchored in batches of two
        registered_device(api)
        assert _anchor(aws, chain) == {"batches": 2, "events": 3}
        _, events = api.get("/events")
        assert all(e["anchor"] and e["anchor"]["tx_hash"].startswith("0x") for e in events["items"])
        status, proof = api.get("/events/ev-000000000002/proof")
        assert status == 200, proof
        assert chain.verify_event(from_hex(proof["root"]), 2, from_hex(proof["leaf"]),
                                  [from_hex(p) for p in proof["proof"]])
        # WHEN the chain goes away while more events arrive
        registered_device(api)
        stop_anvil(node)
        with pytest.raises(ChainUnavailable):
            _anchor(aws, chain)
        assert aws.batches.anchored_through() == 3
        assert aws.batches.backoff().failures == 1
        # THEN after it returns (with its state), the backlog is anchored exactly once
        node = start_anvil(port, state_file=state, state_interval_s=1)
        aws.batches.clear_backoff()
        assert _anchor(aws, chain)["events"] == 3
        assert chain.next_seq() == aws.events.current_seq() + 1 == 7
        # AND a crash between sending and recording is healed without sending twice
        registered_device(api)
        first = aws.batches.anchored_through() + 1
        with pytest.raises(Crash):
            anchor_pending(aws.events, Faults(aws.batches).always("record_anchored"), chain, aws.ledger_bucket,
                           batch_size=2)
        assert aws.batches.batch(first).status.value == "prepared"
        sent_before = chain.batch_count()
        _anchor(aws, chain)
        assert chain.batch_count() == sent_before + 1  # only the next batch was new
        assert aws.batches.anchored_through() == aws.events.current_seq() == chain.next_seq() - 1
    finally:
        stop_anvil(node)
