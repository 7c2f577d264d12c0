"""Verify D-RECs, events and redemptions trusting only the chain.

    python -m chalicelib.verify SERIAL_OR_EVENT_ID_OR_REDEMPTION_ID --api URL --rpc URL [--contract ADDRESS]

Fetches the events and their Merkle proofs from the API, recomputes every leaf from
the event documents, checks each proof against a root that the ledger contract on
the chain says it anchored, and cross-checks the D-REC's contributions against its
issuance event. Prints the provenance trail; exits 1 naming the first mismatch.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import requests

from .adapters.chain import ChainError, ChainLedger
from .domain.canonical import canonical_json
from .domain.merkle import from_hex, leaf_hash, to_hex, verify_proof


@dataclass
class Check:
    subject: str
    what: str
    ok: bool
    detail: str = ""


@dataclass
class Verification:
    target: str
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.checks) and all(c.ok for c in self.checks)

    @property
    def first_mismatch(self) -> Check | None:
        return next((c for c in self.checks if not c.ok), None)

    def to_dict(self) -> dict[str, Any]:
        mismatch = self.first_mismatch
        return {"target": self.target, "ok": self.ok,
                "checks": [c.__dict__ for c in self.checks],
                "first_mismatch": mismatch.__dict__ if mismatch else None}


class Verifier:
    def __init__(self, api_url: str, rpc_url: str, contract_address: str | None = None,
                 get: Callable[[str], Any] | None = None, ledger_url: str | None = None) -> None:
        self.api = api_url.rstrip("/")
        self.ledger_url = ledger_url
        self._get = get or self._http_get
        address = contract_address or self.get("/ledger")["contract_address"]
        if not address:
            raise SystemExit("the API names no ledger contract; pass --contract")
        self.chain = ChainLedger.reader(rpc_url, address)
        self.result: Verification | None = None

    def _http_get(self, path: str) -> Any:
        response = requests.get(self.api + path, timeout=30)
        if response.status_code != 200:
            raise LookupError(f"GET {path} answered {response.status_code}: {response.text[:300]}")
        return response.json()

    def get(self, path: str) -> Any:
        return self._get(path)

    def check(self, subject: str, what: str, ok: bool, detail: str = "") -> bool:
        assert self.result is not None
        self.result.checks.append(Check(subject, what, ok, detail))
        return ok

    # -- one event ------------------------------------------------------------------------
    def verify_event(self, event_id: str) -> dict[str, Any] | None:
        event = self.get(f"/events/{event_id}")
        document = {k: event[k] for k in ("seq", "event_id", "type", "subject_id", "source_id", "occurred_at",
                                          "body")}
        leaf = leaf_hash(canonical_json(document))
        try:
            proof = self.get(f"/events/{event_id}/proof")
        except LookupError as exc:
            self.check(event_id, "anchored", False, str(exc))
            return None
        self.check(event_id, "leaf recomputed from the event body", to_hex(leaf) == proof["leaf"],
                   f"recomputed {to_hex(leaf)}, API says {proof['leaf']}")
        siblings = [from_hex(p) for p in proof["proof"]]
        root = from_hex(proof["root"])
        self.check(event_id, "Merkle proof leads to the root", verify_proof(leaf, siblings, root))
        try:
            on_chain = self.chain.verify_event(root, int(event["seq"]), leaf, siblings)
        except ChainError as exc:
            on_chain = False
            proof["tx_hash"] = f"{proof['tx_hash']} ({exc})"
        self.check(event_id, f"root anchored on chain covering seq {event['seq']}", on_chain,
                   f"root {proof['root']} tx {proof['tx_hash']}")
        return event

    # -- a D-REC --------------------------------------------------------------------------
    def verify_drec(self, serial: str) -> None:
        drec = self.get(f"/drecs/{serial}")
        self.check(serial, "D-REC is exactly 1000 Wh", sum(c["energy_wh"] for c in drec["contributions"]) == 1000
                   == drec["energy_wh"])
        issued = [e for e in drec["events"] if e["type"] == "DrecIssued"]
        if not self.check(serial, "has its DrecIssued event", len(issued) == 1):
            return
        body = issued[0]["body"]
        served = [[c["device_id"], c["reading_id"], c["energy_wh"], c.get("signer"), c.get("signature")]
                  for c in drec["contributions"]]
        self.check(serial, "contributions match the issuance event", served == body["contributions"])
        for event in drec["events"]:
            self.verify_event(event["event_id"])
        for device_id, reading_id, *_ in body["contributions"]:
            accepted = self.get(f"/events?subject_id={reading_id}&type=ReadingAccepted")["items"]
            if self.check(reading_id, f"reading accepted (device {device_id})", len(accepted) >= 1):
                event = self.verify_event(accepted[0]["event_id"])
                if event:
                    self.check(reading_id, "accepted event names the device",
                               event["body"].get("device_id") == device_id)
        for device_id in sorted({c[0] for c in body["contributions"]}):
            registered = self.get(f"/events?subject_id={device_id}&type=DeviceRegistered")["items"]
            if self.check(device_id, "device registered", len(registered) == 1):
                self.verify_event(registered[0]["event_id"])

    # -- a redemption -----------------------------------------------------------------------
    def verify_redemption(self, redemption_id: str) -> None:
        statement = self.get(f"/redemptions/{redemption_id}")
        # The public statement omits the ledger's token; whoever holds the shared link passes it.
        ledger = requests.get(self.ledger_url or statement["ledger_url"], timeout=60)
        if not self.check(redemption_id, "ledger file downloaded", ledger.status_code == 200,
                          f"HTTP {ledger.status_code}: pass the shared link with --ledger-url"):
            return
        digest = hashlib.sha256(ledger.content).hexdigest()
        self.check(redemption_id, "ledger file SHA-256 matches the statement", digest == statement["ledger_sha256"],
                   f"file {digest}, statement {statement['ledger_sha256']}")
        redeemed = self.get(f"/events?subject_id={redemption_id}&type=DrecRedeemed")["items"]
        if self.check(redemption_id, "has its DrecRedeemed event", len(redeemed) == 1):
            self.check(redemption_id, "on-chain event carries the ledger SHA-256",
                       redeemed[0]["body"].get("ledger_sha256") == digest)
            self.verify_event(redeemed[0]["event_id"])
        for serial in statement["serials"]:
            self.verify_drec(serial)

    def verify(self, target: str) -> Verification:
        self.result = Verification(target)
        try:
            if target.startswith("ev-"):
                self.verify_event(target)
            elif target.startswith("DREC-"):
                self.verify_drec(target)
            else:
                self.verify_redemption(target)
        except LookupError as exc:
            self.check(target, "found", False, str(exc))
        return self.result


def render(result: Verification) -> str:
    lines = [f"Provenance of {result.target}:"]
    for c in result.checks:
        lines.append(f"  [{'ok' if c.ok else 'MISMATCH'}] {c.subject}: {c.what}" + (f" — {c.detail}" if c.detail
                                                                                     else ""))
    mismatch = result.first_mismatch
    lines.append("VALID: every check passed against the chain." if result.ok else
                 f"INVALID: first mismatch at {mismatch.subject if mismatch else result.target}: "
                 f"{mismatch.what if mismatch else 'nothing to check'}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chalicelib.verify", description=__doc__.split("\n\n")[0])
    parser.add_argument("target", help="a D-REC serial, an event id (ev-...) or a redemption id")
    parser.add_argument("--api", required=True, help="the registry's API URL")
    parser.add_argument("--rpc", required=True, help="a JSON-RPC URL of the chain")
    parser.add_argument("--contract", help="ledger contract address (default: the one the API names)")
    parser.add_argument("--ledger-url", help="for a redemption: the shared ledger link (with its token)")
    args = parser.parse_args(argv)
    result = Verifier(args.api, args.rpc, args.contract, ledger_url=args.ledger_url).verify(args.target)
    print(render(result))
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
