"""The names of the registry's counters: what `GET /stats` and an account's holdings are read from.

Stores keep them in the same transactions as the writes they count (`adapters/counters.py`);
`infra/counters.py` recomputes them from the records.
"""

from __future__ import annotations

from collections.abc import Mapping

ISSUED_PREFIX = "issued#"
GROUP_PREFIX = "g|"


def issued_in(vintage: str) -> str:
    """The total counting D-RECs issued for generation month `vintage` (YYYY-MM)."""
    return f"{ISSUED_PREFIX}{vintage}"


def readings_in(status: str) -> str:
    """The total counting readings now in `status` (queued, accepted, rejected, flagged)."""
    return f"readings_{status}"


def group(status: str, country: str, device_type: str, vintage: str) -> str:
    """The holdings counter of one (status, country, device type, vintage) group."""
    return GROUP_PREFIX + "|".join((status, country, device_type, vintage))


def groups_of(counts: Mapping[str, int]) -> dict[tuple[str, str, str, str], int]:
    """The non-empty groups of an account's holdings counters."""
    found: dict[tuple[str, str, str, str], int] = {}
    for name, count in counts.items():
        parts = name[len(GROUP_PREFIX):].split("|")
        if name.startswith(GROUP_PREFIX) and len(parts) == 4 and count:
            found[(parts[0], parts[1], parts[2], parts[3])] = count
    return found


def issued_by_month(totals: Mapping[str, int]) -> list[tuple[str, int]]:
    return sorted((name[len(ISSUED_PREFIX):], count) for name, count in totals.items()
                  if name.startswith(ISSUED_PREFIX) and count)
