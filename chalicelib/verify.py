"""Verify D-RECs, events and redemptions trusting only the chain.

    python -m chalicelib.verify SERIAL_OR_EVENT_ID_OR_REDEMPTION_ID --api URL --rpc URL [--contract ADDRESS]

Fetches the events and their Merkle proofs from the API, recomputes every leaf from
the event documents and checks each proof against a root that the ledger contract on
the chain says it anchored. On top of inclusion it re-checks what the events claim:

- conservation: no reading behind a D-REC is spent, across every D-REC whose issuance
  names it, beyond the energy it was judged for (`ReadingAccepted`);
- signatures: each reading's signature recovers to its signer, and that signer is the
  key registered for the device (`DeviceRegistered`) or for its source
  (`SourceRegistered`); a reading with no registered key carries no signature;
- ownership: the D-REC's transfers form one chain from the issued owner to the current
  owner, nothing moves after redemption, and the redemption statement's ledger hash is
  the one anchored in `DrecRedeemed`.

Prints the provenance trail; exits 1 naming the first mismatch.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import requests

from .adapters.chain import ChainLedger
from .domain.errors import BadInput
from .domain.issuance.serials import RANGE_SEPARATOR, parse_serial
from .domain.ledger.canonical import canonical_json
from .domain.ledger.events import DOCUMENT_FIELDS, event_id_for, history_key, parse_event_id, position_of
from .domain.ledger.merkle import from_hex, leaf_hash, to_hex, verify_proof
from .domain.stores import ChainError

# Events of one subject are read in pages of this size.
PAGE = 100


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


def events_path(subject_id: str, event_type: str | None = None) -> str:
    """The first page of a subject's events (of one type), as the verifier asks for it."""
    return f"/events?subject_id={quote(subject_id)}&limit={PAGE}" + (f"&type={event_type}" if event_type else "")


def in_ranges(serial: str, ranges: Any) -> bool:
    """Whether `serial` falls in one of an event's `first..last` ranges (a malformed range holds nothing)."""
    try:
        wanted = parse_serial(serial)
        for text in ranges if isinstance(ranges, list) else []:
            first, _, last = str(text).partition(RANGE_SEPARATOR)
            low, high = parse_serial(first), parse_serial(last or first)
            if low.prefix == wanted.prefix == high.prefix and low.sequence <= wanted.sequence <= high.sequence:
                return True
    except BadInput:
        return False
    return False


def expected_signer(device: dict[str, Any] | None, source: dict[str, Any] | None) -> str | None:
    """The key a device's readings must be signed with, from registration event bodies.

    The device's own `signing_address`, else that of the device's source: the source that
    registered the device, else the one that registered its owner account.
    """
    if device and device.get("signing_address"):
        return str(device["signing_address"]).lower()
    if source and source.get("signing_address"):
        return str(source["signing_address"]).lower()
    return None


def signing_source_id(device: dict[str, Any] | None, account: dict[str, Any] | None) -> str | None:
    for registrant in ((device or {}).get("registered_by"), (account or {}).get("registered_by")):
        if isinstance(registrant, str) and registrant.startswith("src-"):
            return registrant
    return None


def canonical_event_id(event_id: str) -> str | None:
    """`ev-<shard>-<seq>` for any id spelling the API takes (the unsharded `ev-<seq>` is shard 0)."""
    found = parse_event_id(event_id)
    return event_id_for(*found) if found else None


def recovered_signer(accepted: dict[str, Any]) -> str:
    """Who signed the values a `ReadingAccepted` body publishes (a reading's, or its payment's)."""
    from .services.signatures import recover_payment, recover_reading

    try:
        if accepted.get("derived"):
            payment = accepted.get("payment") or {}
            return recover_payment(accepted["device_id"], payment.get("paid_from", accepted["period_start"]),
                                   payment.get("paid_until", accepted["period_end"]), str(accepted["signature"]))
        return recover_reading(accepted["device_id"], accepted["period_start"], accepted["period_end"],
                               int(accepted["energy_wh"]), str(accepted["signature"]))
    except Exception as exc:  # a malformed signature is a mismatch, not a crash
        return f"nothing ({exc})"


class Verifier:
    def __init__(self, api_url: str, rpc_url: str, contract_address: str | None = None,
                 get: Callable[[str], Any] | None = None, ledger_url: str | None = None,
                 chain: Any | None = None) -> None:
        self.api = api_url.rstrip("/")
        self.ledger_url = ledger_url
        self._get = get or self._http_get
        if chain is None:
            address = contract_address or self.get("/ledger")["contract_address"]
            if not address:
                raise SystemExit("the API names no ledger contract; pass --contract")
            chain = ChainLedger.reader(rpc_url, address)
        self.chain = chain
        self.result: Verification | None = None
        self._events: dict[str, dict[str, Any] | None] = {}
        self._readings: dict[str, dict[str, Any] | None] = {}
        self._registrations: dict[tuple[str, str], dict[str, Any] | None] = {}
        self._views: dict[str, dict[str, Any] | None] = {}
        self._view_errors: dict[str, str] = {}
        self._roots: dict[bytes, Any] = {}

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

    def prefetch(self, paths: list[str]) -> None:
        """Let a reader that can (`get.many`, the in-process one) fetch these paths together, ahead of use."""
        many = getattr(self._get, "many", None)
        if many is not None:
            many(paths)

    def events_of(self, subject_id: str, event_type: str | None = None) -> list[dict[str, Any]]:
        """Every event of a subject (all pages, every shard), by position: time, then shard and seq."""
        query = events_path(subject_id, event_type)
        items: list[dict[str, Any]] = []
        cursor = None
        while True:
            page = self.get(query + (f"&cursor={quote(cursor)}" if cursor else ""))
            items += page["items"]
            cursor = page.get("next_cursor")
            if not cursor:
                return sorted(items, key=lambda e: position_of(e["occurred_at"], int(e["shard"]), int(e["seq"])))

    def anchored_over(self, root: bytes, shard: int, seq: int) -> bool:
        """The contract anchored `root` for a range of `shard`'s events that includes `seq`.

        Asked once per root (`rootInfo`), not once per event: every event of a batch shares its
        root, and the proof leading to the root is checked here, as the contract's `verifyEvent`
        would. A D-REC of 1000 contributions costs a few chain calls, not a thousand.
        """
        if root not in self._roots:
            self._roots[root] = self.chain.root_info(root)
        batch = self._roots[root]
        return (batch is not None and int(batch.shard) == shard
                and int(batch.first_seq) <= seq < int(batch.first_seq) + int(batch.event_count))

    # -- one event ------------------------------------------------------------------------
    def verify_event(self, event_id: str) -> dict[str, Any] | None:
        """The event, once its leaf, proof and anchor have been checked (each event once per run)."""
        if event_id in self._events:
            return self._events[event_id]
        event = self.get(f"/events/{event_id}")
        document = {k: event[k] for k in DOCUMENT_FIELDS}
        leaf = leaf_hash(canonical_json(document))
        self.check(event_id, "event id names its shard and seq",
                   canonical_event_id(event_id) == event["event_id"] == event_id_for(int(event["shard"]),
                                                                                      int(event["seq"])),
                   f"{event['event_id']} is shard {event['shard']} seq {event['seq']}")
        try:
            proof = self.get(f"/events/{event_id}/proof")
        except LookupError as exc:
            self.check(event_id, "anchored", False, str(exc))
            self._events[event_id] = None
            return None
        self.check(event_id, "leaf recomputed from the event body", to_hex(leaf) == proof["leaf"],
                   f"recomputed {to_hex(leaf)}, API says {proof['leaf']}")
        siblings = [from_hex(p) for p in proof["proof"]]
        root = from_hex(proof["root"])
        self.check(event_id, "Merkle proof leads to the root", verify_proof(leaf, siblings, root))
        try:
            on_chain = self.anchored_over(root, int(event["shard"]), int(event["seq"]))
        except ChainError as exc:
            on_chain = False
            proof["tx_hash"] = f"{proof['tx_hash']} ({exc})"
        self.check(event_id, f"root anchored on chain covering shard {event['shard']} seq {event['seq']}", on_chain,
                   f"root {proof['root']} tx {proof['tx_hash']}")
        self._events[event_id] = event
        return event

    def registration(self, subject_id: str, event_type: str) -> dict[str, Any] | None:
        """The verified body of a subject's one registration event."""
        if (subject_id, event_type) not in self._registrations:
            # A subject's registration is its first event, so the first page of its events of that type
            # holds it: reading further would grow with the subject's history (every reading of a device,
            # every D-REC of an account), and this check must stay bounded per contribution.
            found = self.get(events_path(subject_id, event_type))["items"]
            body = None
            if self.check(subject_id, f"has one {event_type} event", len(found) == 1, f"{len(found)} found"):
                event = self.verify_event(found[0]["event_id"])
                body = event["body"] if event else None
            self._registrations[(subject_id, event_type)] = body
        return self._registrations[(subject_id, event_type)]

    # -- a D-REC --------------------------------------------------------------------------
    def verify_drec(self, serial: str) -> None:
        drec = self.get(f"/drecs/{serial}")
        self.check(serial, "D-REC is exactly 1000 Wh", sum(c["energy_wh"] for c in drec["contributions"]) == 1000
                   == drec["energy_wh"])
        events = self.events_of(serial)
        issued = [e for e in events if e["type"] == "DrecIssued" and e["subject_id"] == serial]
        if not self.check(serial, "has its one DrecIssued event", len(issued) == 1, f"{len(issued)} found"):
            return
        body = issued[0]["body"]
        # Rows of [device_id, reading_id, energy_wh, signer, signature] (older events: the first three).
        served = [[c["device_id"], c["reading_id"], c["energy_wh"], c.get("signer"), c.get("signature")]
                  for c in drec["contributions"]]
        anchored = [[*c, *[None] * (5 - len(c))] for c in body["contributions"]]
        self.check(serial, "contributions match the issuance event", served == anchored)
        readings = list(dict.fromkeys(c[1] for c in body["contributions"]))
        self.prefetch_readings(readings, list(dict.fromkeys(c[0] for c in body["contributions"])))
        for event in events:
            self.verify_event(event["event_id"])
        self.verify_ownership(serial, drec, events)
        for device_id, reading_id, *_ in body["contributions"]:
            self.verify_reading(reading_id, device_id, serial)

    def prefetch_readings(self, readings: list[str], devices: list[str]) -> None:
        """Ahead of use, in a few rounds whatever the number of contributions: the readings, then their
        accepted events with proofs (by id where the reading names it, else its events' first page), the
        issuances of every D-REC that names them, and the devices' registrations."""
        self.prefetch([f"/readings/{quote(r)}" for r in readings])
        views = {r: self.reading_view(r) for r in readings}
        pointed = [str(v["accepted_event_id"]) for v in views.values() if v and v.get("accepted_event_id")]
        spenders = dict.fromkeys(str(s) for v in views.values() if v for s in v.get("serials") or [])
        self.prefetch([f"/events/{quote(e)}" for e in pointed] + [f"/events/{quote(e)}/proof" for e in pointed]
                      + [events_path(r, "ReadingAccepted") for r, v in views.items()
                         if not (v and v.get("accepted_event_id"))]
                      + [events_path(s, "DrecIssued") for s in spenders]
                      + [events_path(d, "DeviceRegistered") for d in devices])

    def reading_view(self, reading_id: str) -> dict[str, Any] | None:
        """`GET /readings/{id}`, asked once per run (None when it does not answer)."""
        if reading_id not in self._views:
            try:
                self._views[reading_id] = self.get(f"/readings/{quote(reading_id)}")
            except LookupError as exc:
                self._views[reading_id] = None
                self._view_errors[reading_id] = str(exc)
        return self._views[reading_id]

    def verify_ownership(self, serial: str, drec: dict[str, Any], events: list[dict[str, Any]]) -> None:
        """Issued owner → each transfer's sender is the holder → redeemed once, never moved after."""
        owner: str | None = None
        redeemed: dict[str, Any] | None = None
        for event in sorted(events, key=lambda e: history_key(e["type"], int(e["shard"]), int(e["seq"]))):
            body, event_id = event["body"], event["event_id"]
            if event["type"] == "DrecIssued":
                owner = body.get("owner_account_id")
            elif event["type"] == "DrecTransferred":
                if not self.check(event_id, f"transfer's serial ranges include {serial}",
                                  in_ranges(serial, body.get("serial_ranges", []))):
                    continue
                self.check(event_id, f"nothing moves {serial} after its redemption", redeemed is None,
                           f"redeemed by {redeemed['event_id'] if redeemed else ''}")
                self.check(event_id, f"transfer of {serial} is from its holder",
                           body.get("from_account_id") == owner,
                           f"transfer from {body.get('from_account_id')}, but {owner} held it")
                owner = body.get("to_account_id")
            elif event["type"] == "DrecRedeemed":
                if not self.check(event_id, f"redemption's serial ranges include {serial}",
                                  in_ranges(serial, body.get("serial_ranges", []))):
                    continue
                self.check(event_id, f"{serial} is redeemed once", redeemed is None)
                self.check(event_id, f"redemption of {serial} is by its holder", body.get("account_id") == owner,
                           f"redeemed by {body.get('account_id')}, but {owner} held it")
                redeemed = event
        self.check(serial, "current owner is the end of the chain of transfers",
                   drec.get("owner_account_id") == owner,
                   f"API says {drec.get('owner_account_id')}, events say {owner}")
        self.check(serial, "status agrees with the events",
                   (drec.get("status") == "redeemed") == (redeemed is not None), f"API says {drec.get('status')}")
        if redeemed is not None:
            redemption_id = redeemed["body"].get("redemption_id", "")
            statement = self.get(f"/redemptions/{redemption_id}")
            self.check(redemption_id, "statement's ledger SHA-256 is the anchored one",
                       statement.get("ledger_sha256") == redeemed["body"].get("ledger_sha256"),
                       f"statement {statement.get('ledger_sha256')}, event {redeemed['body'].get('ledger_sha256')}")

    # -- a reading behind a D-REC ----------------------------------------------------------
    def verify_reading(self, reading_id: str, device_id: str, serial: str) -> None:
        if reading_id in self._readings:
            accepted = self._readings[reading_id]
        else:
            accepted = self.accepted_event(reading_id, device_id)
            self._readings[reading_id] = accepted
            if accepted is not None:
                self.check(reading_id, "accepted event names the device", accepted.get("device_id") == device_id)
                self.verify_signature(reading_id, device_id, accepted)
        if accepted is not None:
            self.verify_conservation(reading_id, int(accepted["energy_wh"]), serial)

    def accepted_event(self, reading_id: str, device_id: str) -> dict[str, Any] | None:
        """The verified body of the reading's `ReadingAccepted` event.

        A reading names its event (`accepted_event_id`): that event must be an anchored
        `ReadingAccepted` of this reading. An older reading does not: its events are listed, and
        exactly one must be its `ReadingAccepted`. Either way the registry's index says which events
        exist; only the whole-ledger audit (`python -m chalicelib.audit`) sees one that no index shows.
        """
        view = self.reading_view(reading_id) or {}
        pointed = view.get("accepted_event_id")
        if pointed:
            try:
                event = self.verify_event(str(pointed))
            except LookupError as exc:
                self.check(reading_id, f"reading accepted by {pointed} (device {device_id})", False, str(exc))
                return None
            named = event is not None and event["type"] == "ReadingAccepted" and event["subject_id"] == reading_id
            self.check(reading_id, f"reading accepted by {pointed} (device {device_id})", named,
                       f"{event['type']} of {event['subject_id']}" if event else "not anchored")
            return event["body"] if named and event else None
        found = self.events_of(reading_id, "ReadingAccepted")
        if self.check(reading_id, f"reading accepted once (device {device_id})", len(found) == 1,
                      f"{len(found)} ReadingAccepted events"):
            event = self.verify_event(found[0]["event_id"])
            return event["body"] if event else None
        return None

    def verify_signature(self, reading_id: str, device_id: str, accepted: dict[str, Any]) -> None:
        device = self.registration(device_id, "DeviceRegistered")
        account = self.registration(device["owner_account_id"], "AccountRegistered") if device else None
        source_id = signing_source_id(device, account)
        source = self.registration(source_id, "SourceRegistered") if source_id else None
        expected = expected_signer(device, source)
        signature, signer = accepted.get("signature"), accepted.get("signer")
        if expected is None:
            self.check(reading_id, "no key was registered, so no signature is published",
                       signature is None and signer is None, f"signature {signature} by {signer}")
            return
        if not self.check(reading_id, f"signed by the registered key {expected}", bool(signature) and
                          str(signer).lower() == expected, f"signer {signer}"):
            return
        recovered = recovered_signer(accepted)
        self.check(reading_id, "signature recovers to the registered key from the anchored values",
                   str(recovered).lower() == expected, f"recovers to {recovered}, registered {expected}")

    def verify_conservation(self, reading_id: str, judged_wh: int, serial: str) -> None:
        """Every D-REC that names this reading, together, spends at most its judged energy."""
        view = self.reading_view(reading_id)
        if view is None:
            raise LookupError(self._view_errors[reading_id])
        linked = view.get("serials") or []
        spent: dict[str, int] = {}
        for other in dict.fromkeys([serial, *linked]):
            for event in self.events_of(other, "DrecIssued"):
                if event["subject_id"] != other or self.verify_event(event["event_id"]) is None:
                    continue
                spent[other] = spent.get(other, 0) + sum(int(c[2]) for c in event["body"]["contributions"]
                                                         if c[1] == reading_id)
        total = sum(spent.values())
        self.check(reading_id, f"spent at most its judged {judged_wh} Wh across D-RECs", total <= judged_wh,
                   f"{total} Wh spent by " + ", ".join(f"{s} ({wh} Wh)" for s, wh in spent.items() if wh))

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
        redeemed = self.events_of(redemption_id, "DrecRedeemed")
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
