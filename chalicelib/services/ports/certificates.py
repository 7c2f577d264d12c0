"""The port of the D-REC store: pools, issuing steps, D-RECs and their links.

`issue` is one atomic step that holds only on its conditions and raises
`TransactionRefused` otherwise: the pool still at `from_version` (absent when 0), each
reading still pooling at exactly `from_wh` of pooled energy, no D-REC of those serials
yet; its events are appended with gap-free sequence numbers in the same step.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

from ...domain.certificates import Drec, Issuance, PoolableReading
from ...domain.ledger.events import Event


class Drecs(Protocol):
    # -- issuing
    def pool(self, pool_id: str) -> tuple[dict[str, Any] | None, int]: ...

    def poolable(self, reading_ids: Sequence[str]) -> list[PoolableReading]: ...

    def issue(self, step: Issuance) -> list[Event]: ...

    def link_drecs(self, drecs: Sequence[Mapping[str, Any]]) -> None: ...

    def pending_links(self, limit: int = 200) -> list[dict[str, Any]]: ...

    def issued_from(self, device_ids: Sequence[str]) -> dict[str, tuple[int, int]]: ...

    # -- reading
    def drec(self, serial: str) -> Drec | None: ...

    def serials_of(self, subject_id: str, limit: int = 1000) -> list[str]: ...

    def list_drecs(self, limit: int, cursor: str | None, filters: dict[str, Any],
                   vintage: tuple[str | None, str | None]) -> Any: ...

    # -- totals
    def pool_totals(self) -> list[tuple[str, int, int]]: ...

    def totals(self) -> dict[str, int]:
        """The registry's counters (`adapters/counters.py` names them), kept by the writes they count."""


class Devices(Protocol):
    """What issuance reads of the registry: each device's characteristics, by id."""

    def devices(self, device_ids: Iterable[str]) -> Mapping[str, Mapping[str, Any]]: ...
