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

    def name(self, logical: str) -> str:
        return _resource(self.prefix, logical)

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
