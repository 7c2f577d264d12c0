"""What pulling from partners needs: the configurations and their state, their runs, secrets, the partner.

Implemented by `adapters.pull_store.DynamoPulls`, `adapters.ssm.SsmSecrets` and
`adapters.partner_http.fetch_page`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

from ...domain.ledger.events import NewEvent
from ...domain.pull import Lease, PullConfig, PullState, RunRecord


class PullStore(Protocol):
    def config(self, source_id: str) -> tuple[PullConfig, PullState] | None: ...

    def save_config(self, config: PullConfig, event: NewEvent, previous_generation: int | None,
                    reset_cursor: bool, due_at: str) -> None:
        """Store `config` (with its event), only if the stored generation is still `previous_generation`
        (None: none stored); the source is due at `due_at` and any lease is dropped. Raises
        TransactionRefused when another request changed it first."""

    def remove_config(self, source_id: str, generation: int, event: NewEvent) -> None:
        """Delete the configuration (with its event) if it is still that generation; TransactionRefused if not."""

    def due(self, now: str, limit: int) -> list[str]:
        """Ids of up to `limit` sources due at `now` (an index read, never a scan of every source)."""

    def take_lease(self, source_id: str, owner: str, now: str, until: str) -> Lease | None:
        """Hold the source until `until` if it is due at `now` and nobody holds it; None when another puller
        was first. The source is due again at `until`, so a crashed puller's source is pulled again."""

    def save_cursor(self, lease: Lease, cursor: str | None) -> bool:
        """Move the cursor if the lease is still ours and the configuration unchanged; False otherwise."""

    def release(self, lease: Lease, next_due_at: str, failures: int, run: RunRecord) -> bool:
        """Give the lease back: due at `next_due_at`, `failures` in a row, the run recorded."""

    def park(self, source_id: str, reason: str) -> None:
        """Take the source off the due index (its source was revoked), with the reason."""

    def mark_due(self, source_id: str, now: str) -> bool:
        """Due now; False when a run holds it (it is then pulled when that run ends)."""

    def runs(self, source_id: str, limit: int, cursor: str | None) -> tuple[list[dict[str, Any]], str | None]: ...


class Secrets(Protocol):
    def put(self, name: str, value: str) -> None: ...
    def get(self, name: str) -> str: ...
    def delete(self, names: Sequence[str]) -> None: ...


# A partner's answer: (url with the cursor and limit, auth header or None) → its decoded JSON; raises
# domain.pull.PartnerFailed when there is none to read (HTTP error, timeout, not JSON, too big, refused address).
Fetch = Callable[[str, "tuple[str, str] | None"], Any]
