"""Golden values: what is anchored must not change when the code moves.

Contribution roots, serials and the stored shape of drafts and pool states were recorded
from the code before it was split into `domain/issuance/`; any byte that differs here would
make published D-RECs fail verification.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

from chalicelib.domain.issuance.drafts import contributions_root
from chalicelib.domain.issuance.keys import PoolingConfig, pool_key
from chalicelib.domain.issuance.pools import PoolState, add_to_pool
from chalicelib.domain.issuance.slices import Slice
from chalicelib.domain.ledger.canonical import canonical_json

T0 = datetime(2026, 11, 1, 10, tzinfo=UTC)
ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "3a3b9d42cd6e2bc7f6d815555366ba6d57ee86aadd7ce5614920ac713de7ed73",
    "5619d183b6e6aa89c3db227fcd9d3ffc76973ca5d97b60269f2ab6fa7ed5f74b",
    "0105ff8e3134a7012d7f10d00da3596b5de06376c5d017bd0cc7fd2b14fb3624",
    "3a650636ff8f6b6bb42506a3382f1f368ae92c564e91f15ba2e32108c65aff26",
    "b338af14e62b885802c0e9c3de406fc50075e93abb85e1166dea98d6192b88f9",
    "23b2b9edcc843b13bb1ede3d65fd8d1577556f1deea2a411efaa0b6e3ea2c5a8",
    "735f0f3172b6efd58176ccd9b867796ef6952ece73f6c6b89577575e16c3b025",
]
SERIALS = [
    "DREC-KE-MIX-202611-7A57XZAD-00000001",
    "DREC-KE-MIX-202611-7A57XZAD-00000002",
    "DREC-KE-MIX-202611-7A57XZAD-00000003",
    "DREC-KE-MIX-202611-7A57XZAD-00000004",
    "DREC-KE-MIX-202611-7A57XZAD-00000005",
    "DREC-KE-MIX-202611-7A57XZAD-00000006",
    "DREC-KE-MIX-202611-7A57XZAD-00000007",
    "DREC-KE-MIX-202611-7A57XZAD-00000008",
    "DREC-KE-MIX-202611-7A57XZAD-00000009",
]
DRAFTS_SHA256 = "f7a1bedcd1da28dd319954ca30c1d28cac884696f90eb357bf8c85fbd0689f95"
STATE_SHA256 = "0d9a9edd639399e0c340688066210fd2c44d3cfdba05aaba3d25ff682aba82e7"


def _slice(n: int) -> Slice:
    return Slice(
        device_id=f"dev-{n % 3}",
        reading_id=f"r-{n}",
        energy_wh=137 * n + 50,
        period_start=T0 + timedelta(minutes=17 * n),
        period_end=T0 + timedelta(minutes=17 * n + 30 + 11 * n),
        country="KE",
        device_type=("solar_home_system", "mini_grid")[n % 2],
        offtaker_type="household",
        source_id="src-1",
        signature=f"sig-{n}" if n % 2 else None,
        grid_connected=n % 3 == 0,
    )


SLICES = [_slice(n) for n in range(12)]


def test_contribution_roots_are_unchanged():
    assert [contributions_root(SLICES[:n]) for n in range(len(ROOTS))] == ROOTS


def test_serials_drafts_and_pool_state_are_unchanged():
    config = PoolingConfig(partition_by=("country",), period="month", shards=1)
    key = pool_key("acc-1", SLICES[0], config)
    state, drafts = add_to_pool(PoolState.empty(key.pool_id), key, SLICES, "acc-1")
    assert [draft.serial for draft in drafts] == SERIALS
    assert hashlib.sha256(canonical_json([d.to_dict() for d in drafts])).hexdigest() == DRAFTS_SHA256
    assert hashlib.sha256(canonical_json(state.to_dict())).hexdigest() == STATE_SHA256
