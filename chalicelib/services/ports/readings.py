"""What the readings' use cases need from storage: received readings and per-device state.

Implemented by `adapters.reading_store.DynamoReadings` and by `tests/fakes/readings.py`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from ...domain.readings import DeviceState, DeviceWrites, ReadingContent, ReadingStatus, ReceivedReading
from ...domain.twin.peers import PeerHistogram


class ReadingStore(Protocol):
    def readings(self, reading_ids: Sequence[str]) -> dict[str, ReceivedReading]: ...

    def contents(self, reading_ids: Sequence[str]) -> dict[str, ReadingContent]:
        """Only what makes a reading the same reading, read strongly consistently."""

    def external_targets(self, source_id: str, external_ids: Sequence[str]) -> dict[str, str]:
        """The reading each of the source's external ids names, for those that name one."""

    def store_new(self, readings: Sequence[ReceivedReading], source_id: str) -> list[str]:
        """Write readings not there yet, each with its external-id guard; never over a stored reading.
        Returns the ids refused because a reading (or the external id) was already there."""

    def device_states(self, device_ids: Sequence[str]) -> dict[str, DeviceState]: ...

    def commit_verdicts(self, groups: Sequence[DeviceWrites]) -> list[DeviceWrites]:
        """Write each group whole or not at all: a state change only from its `old_version`, a transition
        only from its `from_status` (and energy), with the events. Returns the refused groups (whole
        packs: the groups written in one transaction stand or fall together)."""

    def peer_histograms(self, periods: Sequence[tuple[str, int, int]],
                        shards: int) -> dict[tuple[str, int, int], PeerHistogram]:
        """The neighbours' ratio histogram of each (cell, period start [s], duration [s]), shards merged."""

    def reporting_devices(self, cells: Sequence[str]) -> dict[str, int]:
        """How many devices have reported in each cell (cells with none are absent)."""

    def waiting(self, stage: str, received_before: str, limit: int = 500) -> list[dict[str, Any]]:
        """Items of readings waiting at `stage` since before `received_before` (the sweep re-queues them)."""

    def serials_of(self, reading_id: str, limit: int = 1000) -> list[str]: ...
    def device_readings(self, device_id: str, limit: int, cursor: str | None,
                        status: ReadingStatus | None) -> tuple[list[ReceivedReading], str | None]: ...
    def by_status(self, status: ReadingStatus, limit: int,
                  cursor: str | None) -> tuple[list[ReceivedReading], str | None]: ...
