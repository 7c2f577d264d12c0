"""How long recovering per-reading EIP-712 signatures takes (the intake does it for every signed item).

    make bench-signatures        # or: python -m tests.bench.bench_signatures [--readings N]

Prints recoveries per second for N signed readings (default 1,000, a full `POST /readings`
batch), best of three runs, and which secp256k1 backend eth-keys used.
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime, timedelta

from eth_account import Account

from chalicelib.services.signatures import recover_reading, sign_reading


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--readings", type=int, default=1000)
    args = parser.parse_args()
    key = Account.create()
    start = datetime(2026, 10, 14, tzinfo=UTC)
    items = [(f"dev-{i:06d}", start + timedelta(hours=i), start + timedelta(hours=i + 1), 10 + i % 90)
             for i in range(args.readings)]
    signatures = [sign_reading(key.key, *item) for item in items]
    best = float("inf")
    for _ in range(3):
        began = time.perf_counter()
        signers = {recover_reading(*item, signature) for item, signature in zip(items, signatures)}
        best = min(best, time.perf_counter() - began)
    assert signers == {key.address.lower()}
    from eth_keys.backends import get_backend

    print(f"{args.readings} EIP-712 recoveries: {best:.3f} s (best of 3) = {args.readings / best:,.0f}/s; "
          f"backend {type(get_backend()).__name__}")


if __name__ == "__main__":
    main()
