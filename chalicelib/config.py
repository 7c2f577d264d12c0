"""The one module that reads the environment."""

from __future__ import annotations

import os
from dataclasses import dataclass


def _resource(prefix: str, logical: str) -> str:
    # Same rule as infra.resources.physical; kept here so the Lambda package needs no infra/.
    return f"{prefix}-{logical}".replace("_", "-")


@dataclass(frozen=True)
class Settings:
    prefix: str
    operator_key: str | None
    chain_rpc: str | None
    chain_private_key: str | None
    ledger_address: str | None
    public_url: str
    anchor_batch_size: int
    pooling: str
    # What `GET /ledger` may publish as the chain endpoint; unset, DREC_CHAIN_RPC stripped to scheme://host[:port].
    chain_rpc_public: str | None = None
    upload_url_ttl_s: int = 900  # presigned upload URLs: seconds, at most 900
    # A reading waiting this long for a stage, its queue empty, lost its message and is sent again.
    stale_after_s: float = 120
    # Neighbours: how many make a reference, within what radius [km], how long a reading waits for them [s],
    # and histogram shards per cell and period.
    peer_min: int = 5
    peer_radius_km: float = 25.0
    peer_wait_s: float = 21600.0
    peer_shards: int = 4
    # Event sequences (`domain.ledger.shards`): fixed for a deployment.
    event_shards: int = 8
    # Pulling from partners: private, loopback and link-local addresses only when allowed (local stacks,
    # tests); a run's budget (pages, seconds); a lease [s]; partner timeouts [s] and answer size [bytes].
    pull_allow_private: bool = False
    pull_max_pages: int = 50
    pull_run_s: float = 120.0
    pull_lease_s: float = 300.0
    pull_connect_timeout_s: float = 5.0
    pull_read_timeout_s: float = 30.0
    pull_max_response_bytes: int = 8 * 1024 * 1024
    # Test-only fault: the puller process exits right after this page's readings are queued, before its
    # cursor is saved (DREC_TEST_PULL_EXIT_AFTER_QUEUED_PAGE). Unset (always, outside tests): inert.
    test_pull_exit_after_queued_page: int | None = None

    def name(self, logical: str) -> str:
        return _resource(self.prefix, logical)

    def parameter(self, logical: str, *parts: str) -> str:
        """An SSM parameter's name: `/<prefix>/<logical>/<parts...>` (infra.resources.parameter_path)."""
        return "/".join((f"/{self.prefix}/{logical}", *parts))

    @property
    def uploads_bucket(self) -> str:
        return os.environ.get("DREC_UPLOADS_BUCKET") or self.name("uploads")

    @property
    def ledger_bucket(self) -> str:
        return os.environ.get("DREC_LEDGER_BUCKET") or self.name("ledger")


def load() -> Settings:
    return Settings(
        prefix=prefix(),
        operator_key=os.environ.get("DREC_OPERATOR_KEY") or None,
        chain_rpc=os.environ.get("DREC_CHAIN_RPC") or None,
        chain_private_key=os.environ.get("DREC_CHAIN_PRIVATE_KEY") or None,
        ledger_address=os.environ.get("DREC_LEDGER_ADDRESS") or None,
        public_url=os.environ.get("DREC_PUBLIC_URL", "http://127.0.0.1:8000"),
        anchor_batch_size=int(os.environ.get("DREC_ANCHOR_BATCH_SIZE", "1000")),
        pooling=os.environ.get("DREC_POOLING", "country,device_type,offtaker_type;month"),
        chain_rpc_public=os.environ.get("DREC_CHAIN_RPC_PUBLIC") or None,
        upload_url_ttl_s=min(900, int(os.environ.get("DREC_UPLOAD_URL_TTL_S", "900"))),
        stale_after_s=float(os.environ.get("DREC_STALE_AFTER_S", "120")),
        peer_min=max(1, int(os.environ.get("DREC_PEER_MIN", "5"))),
        peer_radius_km=min(200.0, max(0.0, float(os.environ.get("DREC_PEER_RADIUS_KM", "25")))),
        peer_wait_s=max(0.0, float(os.environ.get("DREC_PEER_WAIT_S", "21600"))),
        peer_shards=min(32, max(1, int(os.environ.get("DREC_PEER_SHARDS", "4")))),
        event_shards=event_shards(),
        pull_allow_private=os.environ.get("DREC_PULL_ALLOW_PRIVATE", "") in ("1", "true", "yes"),
        pull_max_pages=max(1, int(os.environ.get("DREC_PULL_MAX_PAGES", "50"))),
        pull_run_s=max(1.0, float(os.environ.get("DREC_PULL_RUN_S", "120"))),
        pull_lease_s=max(1.0, float(os.environ.get("DREC_PULL_LEASE_S", "300"))),
        pull_connect_timeout_s=float(os.environ.get("DREC_PULL_CONNECT_TIMEOUT_S", "5")),
        pull_read_timeout_s=float(os.environ.get("DREC_PULL_READ_TIMEOUT_S", "30")),
        pull_max_response_bytes=int(os.environ.get("DREC_PULL_MAX_RESPONSE_BYTES", str(8 * 1024 * 1024))),
        test_pull_exit_after_queued_page=int(os.environ["DREC_TEST_PULL_EXIT_AFTER_QUEUED_PAGE"])
        if os.environ.get("DREC_TEST_PULL_EXIT_AFTER_QUEUED_PAGE") else None,
    )


def event_shards() -> int:
    """How many event sequences (DREC_EVENT_SHARDS, default 8): each has its own counter and batches.

    Fixed for a deployment: a device's or pool's events stay in the shard its id hashes to.
    """
    from .domain.ledger.shards import MAX_SHARDS

    return min(MAX_SHARDS, max(1, int(os.environ.get("DREC_EVENT_SHARDS", "8"))))


def cursor_key() -> bytes:
    """The HMAC key list cursors are signed with: DREC_CURSOR_KEY, else derived from the operator key.

    A cursor the server did not issue is then refused (400) instead of steering a query. Without
    either setting (a local stack) it is derived from the prefix: stable, but not a secret.
    """
    import hashlib

    explicit = os.environ.get("DREC_CURSOR_KEY")
    if explicit:
        return explicit.encode()
    seed = os.environ.get("DREC_OPERATOR_KEY") or os.environ.get("DREC_PREFIX", "drec-local")
    return hashlib.sha256(b"drec-cursor\0" + seed.encode()).digest()


def prefix() -> str:
    """The stack's prefix (DREC_PREFIX): names its resources and is the metrics' `prefix` dimension."""
    return os.environ.get("DREC_PREFIX", "drec-local")


def queue_name(logical: str) -> str:
    """Queue names are needed when app.py is imported (event source decorators)."""
    return _resource(prefix(), logical)
