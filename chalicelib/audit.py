"""Audit the whole anchored ledger: every event, every batch root, every kWh.

    python -m chalicelib.audit --api URL --rpc URL [--contract ADDRESS]

Where `chalicelib.verify` follows one D-REC through the registry's indexes, the audit
reads every shard's entire event sequence in order and trusts nothing but the chain: each
batch's Merkle root is recomputed from its events and must be the root the contract
anchored for exactly that shard and range of sequence numbers, and together the batches
must cover every sequence number the contract has seen in every shard. Each event must be
in the shard the routing rule (`domain.ledger.shards`) gives it. The shards' streams are
then replayed in causal order (registrations of sources and accounts, then every device's
history, then issuances, then the registry shard's moves; `domain.ledger.shards` says why
that order holds), and over that it checks what no index can hide: each reading is
accepted once, the D-RECs that name it spend at most its judged energy, its signature
recovers to the key registered for its device or source, each serial is issued once,
and each D-REC moves only from its holder and never after its
redemption. Exits 1 naming every mismatch.
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote

from .domain.errors import BadInput
from .domain.issuance.serials import expand_range
from .domain.ledger.canonical import canonical_json
from .domain.ledger.events import DOCUMENT_FIELDS
from .domain.ledger.merkle import MerkleTree, from_hex, leaf_hash
from .domain.ledger.shards import REGISTRY_SHARD, device_key, shard_of
from .verify import PAGE, Check, Verification, expected_signer, recovered_signer, render, signing_source_id


class Auditor:
    def __init__(self, get: Callable[[str], Any], chain: Any) -> None:
        self.get = get
        self.chain = chain
        self.result = Verification("the whole ledger")
        self.registered: dict[tuple[str, str], dict[str, Any]] = {}
        self.judged_wh: dict[str, int] = {}
        self.spent_wh: dict[str, dict[str, int]] = defaultdict(dict)
        self.owner: dict[str, str] = {}
        self.redeemed_by: dict[str, str] = {}
        self.passed = 0

    def check(self, subject: str, what: str, ok: bool, detail: str = "") -> bool:
        if not ok:  # the audit lists mismatches; passing checks are counted, not listed
            self.result.checks.append(Check(subject, what, ok, detail))
        self.passed += ok
        return ok

    def events(self, shard: int) -> Iterator[dict[str, Any]]:
        cursor: str | None = None
        while True:
            page = self.get(f"/events?limit={PAGE}&shard={shard}" + (f"&cursor={quote(cursor)}" if cursor else ""))
            yield from page["items"]
            cursor = page.get("next_cursor")
            if not cursor:
                return

    def read_shard(self, shard: int, shards: int) -> list[dict[str, Any]]:
        """A shard's events, checked for gaps, routing and their batches against the chain."""
        batch: list[dict[str, Any]] = []
        events: list[dict[str, Any]] = []
        expected_seq = 1
        for event in self.events(shard):
            self.check(event["event_id"], f"shard {shard}'s sequence has no gap",
                       int(event["shard"]) == shard and int(event["seq"]) == expected_seq,
                       f"expected shard {shard} seq {expected_seq}")
            routed = routed_shard(event, shards)
            self.check(event["event_id"], "is in the shard its subject is routed to", routed in (None, shard),
                       f"in shard {shard}, routed to {routed}")
            expected_seq = int(event["seq"]) + 1
            if batch and (event.get("anchor") or {}).get("root") != (batch[0].get("anchor") or {}).get("root"):
                self.check_batch(batch)
                batch = []
            batch.append(event)
            events.append(event)
        if batch:
            self.check_batch(batch)
        anchored_through = int(self.chain.next_seq(shard)) - 1
        self.check(f"chain shard {shard}",
                   f"every anchored sequence number of shard {shard} (1..{anchored_through}) is in the ledger",
                   expected_seq - 1 >= anchored_through, f"the ledger's shard {shard} ends at {expected_seq - 1}")
        return events

    def run(self) -> Verification:
        shards = int(self.get("/ledger").get("event_shards") or 1)
        streams = [self.read_shard(shard, shards) for shard in range(shards)]
        replay = sorted((e for stream in streams for e in stream),
                        key=lambda e: (causal_phase(e["type"]), int(e["shard"]), int(e["seq"])))
        for event in replay:
            self.apply(event)
        total = len(replay)
        for reading_id, spent in self.spent_wh.items():
            total, judged = sum(spent.values()), self.judged_wh.get(reading_id)
            self.check(reading_id, "spent only after it was accepted", judged is not None)
            self.check(reading_id, f"spent at most its judged {judged} Wh across D-RECs",
                       judged is None or total <= judged,
                       f"{total} Wh spent by " + ", ".join(f"{s} ({wh} Wh)" for s, wh in spent.items()))
        if not self.result.checks:
            self.result.checks.append(Check("ledger", f"{self.passed} checks over {total} events in {shards} shards",
                                            True))
        return self.result

    def check_batch(self, batch: list[dict[str, Any]]) -> None:
        first = batch[0]
        anchor = first.get("anchor")
        if not anchor:
            return  # the newest events wait for their batch: nothing is claimed for them yet
        root = MerkleTree([leaf_hash(canonical_json({k: e[k] for k in DOCUMENT_FIELDS})) for e in batch]).root
        on_chain = self.chain.root_info(from_hex(anchor["root"]))
        span = f"shard {first['shard']} seq {first['seq']}..{batch[-1]['seq']}"
        self.check(first["event_id"], f"batch root recomputed from the events of {span}",
                   root == from_hex(anchor["root"]), f"API names root {anchor['root']}")
        self.check(first["event_id"], f"the chain anchored this root for exactly {span}",
                   on_chain is not None and (on_chain.shard, on_chain.first_seq, on_chain.event_count)
                   == (int(first["shard"]), int(first["seq"]), len(batch)),
                   f"chain says {on_chain}")

    # -- what the events claim ----------------------------------------------------------------
    def apply(self, event: dict[str, Any]) -> None:
        kind, body, event_id = event["type"], event["body"], event["event_id"]
        if kind in ("SourceRegistered", "AccountRegistered", "DeviceRegistered"):
            self.registered[(kind, event["subject_id"])] = body
        elif kind == "ReadingAccepted":
            reading_id = event["subject_id"]
            self.check(event_id, f"reading {reading_id} is accepted once", reading_id not in self.judged_wh)
            self.judged_wh[reading_id] = int(body.get("energy_wh", 0))
            self.check_signature(event_id, body)
        elif kind == "DrecIssued":
            serial = event["subject_id"]
            self.check(event_id, f"{serial} is issued once", serial not in self.owner)
            self.owner[serial] = body.get("owner_account_id", "")
            for contribution in body.get("contributions", []):
                spent = self.spent_wh[contribution[1]]
                spent[serial] = spent.get(serial, 0) + int(contribution[2])
        elif kind in ("DrecTransferred", "DrecRedeemed"):
            sender = body.get("from_account_id") if kind == "DrecTransferred" else body.get("account_id")
            for serial in self.serials(event_id, body.get("serial_ranges", [])):
                self.check(event_id, f"{serial} was issued before it moved", serial in self.owner)
                self.check(event_id, f"nothing moves {serial} after its redemption", serial not in self.redeemed_by,
                           f"redeemed by {self.redeemed_by.get(serial)}")
                self.check(event_id, f"{serial} moves from its holder", self.owner.get(serial) == sender,
                           f"from {sender}, but {self.owner.get(serial)} held it")
                if kind == "DrecTransferred":
                    self.owner[serial] = body.get("to_account_id", "")
                else:
                    self.redeemed_by[serial] = event_id

    def serials(self, event_id: str, ranges: Any) -> list[str]:
        try:
            return [s for r in ranges for s in expand_range(str(r))] if isinstance(ranges, list) else []
        except BadInput as exc:
            self.check(event_id, "serial ranges are well formed", False, str(exc))
            return []

    def check_signature(self, event_id: str, body: dict[str, Any]) -> None:
        device = self.registered.get(("DeviceRegistered", str(body.get("device_id"))))
        if not self.check(event_id, f"device {body.get('device_id')} was registered before its reading",
                          device is not None):
            return
        account = self.registered.get(("AccountRegistered", str((device or {}).get("owner_account_id"))))
        source_id = signing_source_id(device, account)
        source = self.registered.get(("SourceRegistered", source_id)) if source_id else None
        expected = expected_signer(device, source)
        if expected is None:
            self.check(event_id, "no key was registered, so no signature is published",
                       body.get("signature") is None and body.get("signer") is None)
        elif self.check(event_id, f"signed by the registered key {expected}", bool(body.get("signature")) and
                        str(body.get("signer")).lower() == expected, f"signer {body.get('signer')}"):
            recovered = recovered_signer(body)
            self.check(event_id, "signature recovers to the registered key", recovered.lower() == expected,
                       f"recovers to {recovered}")


# Replay order across shards: what each step needs was written by an earlier phase (`domain.ledger.shards`).
_PHASES = {"SourceRegistered": 0, "AccountRegistered": 0, "DrecIssued": 2, "DrecTransferred": 3, "DrecRedeemed": 3}
_DEVICE_EVENTS = ("DeviceRegistered", "DeviceReviewOpened", "DeviceReviewCleared", "DeviceSuspended")


def causal_phase(event_type: str) -> int:
    """Sources and accounts, then devices' histories (each in its shard's order), issuances, moves."""
    return _PHASES.get(event_type, 1)


def routed_shard(event: dict[str, Any], shards: int) -> int | None:
    """The shard the routing rule gives `event`, where its document alone says (None: it does not)."""
    kind, body = event["type"], event["body"]
    if kind in _DEVICE_EVENTS:
        return shard_of(device_key(str(event["subject_id"])), shards)
    if kind == "ReadingAccepted":
        return shard_of(device_key(str(body.get("device_id"))), shards)
    if kind in ("SourceRegistered", "AccountRegistered", "DrecTransferred", "DrecRedeemed", "ApiKeyRotated",
                "SourceRevoked", "AccountRevoked", "PullConfigured", "PullReconfigured", "PullRemoved"):
        return REGISTRY_SHARD
    return None  # an issuance: its pool id is not in its document


def main(argv: list[str] | None = None) -> int:
    import requests

    from .adapters.chain import ChainLedger

    parser = argparse.ArgumentParser(prog="python -m chalicelib.audit", description=__doc__.split("\n\n")[0])
    parser.add_argument("--api", required=True, help="the registry's API URL")
    parser.add_argument("--rpc", required=True, help="a JSON-RPC URL of the chain")
    parser.add_argument("--contract", help="ledger contract address (default: the one the API names)")
    args = parser.parse_args(argv)
    api = args.api.rstrip("/")

    def get(path: str) -> Any:
        response = requests.get(api + path, timeout=60)
        if response.status_code != 200:
            raise LookupError(f"GET {path} answered {response.status_code}: {response.text[:300]}")
        return response.json()

    address = args.contract or get("/ledger")["contract_address"]
    result = Auditor(get, ChainLedger.reader(args.rpc, address)).run()
    print(render(result))
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
