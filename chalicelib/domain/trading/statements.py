"""Retirement statements: sponsor allocation, the ledger, its hash and the memo.

A redemption publishes a CSV ledger (one row per D-REC, hourly metadata
included) and a plain-language memo that names the serial ranges, the
ledger's link and its SHA-256, so anyone holding the file can check it is
the one the memo certified. With several sponsors, D-RECs are dealt out in
small contiguous batches, always to the sponsor furthest behind its share,
so each sponsor's D-RECs spread across the whole generation period (and so
share its avoided emissions evenly) while its serials still form short runs.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any

from ..errors import BadInput, RuleBroken
from ..issuance.serials import compress_ranges
from ..time import iso, parse_utc

SHARE_TOLERANCE = 1e-9
DEFAULT_BATCH_SIZE = 10
LEDGER_COLUMNS = (
    "serial",
    "devices",
    "period_start",
    "period_end",
    "wh_per_hour",
    "country",
    "device_type",
    "offtaker_type",
    "avoided_co2_kg",
    "sponsor",
    "beneficiary",
)


def allocate_sponsors(
    serials_sorted: Sequence[str],
    sponsors: Sequence[tuple[str, Decimal | float]],
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> dict[str, str]:
    """Map each serial to a sponsor name.

    Counts are exact by largest remainder (ties to the sponsor listed first).
    Serials go out in order, a batch of up to `batch_size` at a time, each
    batch to the sponsor with quota left that is furthest behind its
    pro-rata share of what has been dealt so far.
    """
    if not sponsors:
        raise BadInput("at least one sponsor is needed", field="sponsors")
    if batch_size < 1:
        raise BadInput("batch_size must be at least 1", field="batch_size")
    names = [name for name, _share in sponsors]
    if any(not name for name in names) or len(set(names)) != len(names):
        raise BadInput("sponsor names must be present and distinct", field="sponsors")
    shares = [Fraction(Decimal(str(share))) for _name, share in sponsors]
    if any(share <= 0 for share in shares):
        raise BadInput("every sponsor share must be above 0", field="sponsors")
    if abs(float(sum(shares)) - 1.0) > SHARE_TOLERANCE:
        raise BadInput(
            f"sponsor shares must sum to 1, not {float(sum(shares))}", field="sponsors"
        )
    total = sum(shares)
    shares = [share / total for share in shares]
    quotas = _largest_remainder(len(serials_sorted), shares)

    allocation: dict[str, str] = {}
    dealt = [0] * len(names)
    position = 0
    while position < len(serials_sorted):
        behind = [
            (shares[i] * (position + 1) - dealt[i], -i)
            for i in range(len(names))
            if dealt[i] < quotas[i]
        ]
        chosen = -max(behind)[1]
        count = min(batch_size, quotas[chosen] - dealt[chosen])
        for serial in serials_sorted[position : position + count]:
            allocation[serial] = names[chosen]
        dealt[chosen] += count
        position += count
    return allocation


def _largest_remainder(count: int, shares: Sequence[Fraction]) -> list[int]:
    quotas = [share * count for share in shares]
    floors = [int(quota) for quota in quotas]
    leftover = count - sum(floors)
    by_fraction = sorted(
        range(len(shares)), key=lambda i: (-(quotas[i] - floors[i]), i)
    )
    for index in by_fraction[:leftover]:
        floors[index] += 1
    return floors


@dataclass(frozen=True)
class LedgerRow:
    """One redeemed D-REC as the ledger prints it."""

    serial: str
    devices: tuple[str, ...]
    period_start: datetime
    period_end: datetime
    hourly_wh: Mapping[str, int]  # UTC hour start -> Wh
    country: str
    device_type: str
    offtaker_type: str
    avoided_co2_kg: float
    sponsor: str | None
    beneficiary: str

    @classmethod
    def from_drec(
        cls, drec: Mapping[str, Any], beneficiary: str, sponsor: str | None = None
    ) -> LedgerRow:
        """From a stored D-REC (`DrecDraft.to_dict()` shape)."""
        return cls(
            serial=drec["serial"],
            devices=tuple(sorted({row["device_id"] for row in drec["contributions"]})),
            period_start=parse_utc(drec["period_start"]),
            period_end=parse_utc(drec["period_end"]),
            hourly_wh={hour: int(wh) for hour, wh in drec["hourly_wh"].items()},
            country=drec["country"],
            device_type=drec["device_type"],
            offtaker_type=drec["offtaker_type"],
            avoided_co2_kg=float(drec["avoided_co2_kg"]),
            sponsor=sponsor,
            beneficiary=beneficiary,
        )

    def cells(self) -> list[str]:
        return [
            self.serial,
            ";".join(self.devices),
            _iso(self.period_start),
            _iso(self.period_end),
            ";".join(f"{hour}={wh}" for hour, wh in sorted(self.hourly_wh.items())),
            self.country,
            self.device_type,
            self.offtaker_type,
            f"{self.avoided_co2_kg:.6f}",
            self.sponsor or "",
            self.beneficiary,
        ]


# A spreadsheet reads a cell starting with one of these as a formula (OWASP "CSV injection"):
# a beneficiary or sponsor named `=HYPERLINK(...)` would run in the auditor's spreadsheet.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(cell: str) -> str:
    """The cell with a leading `'` when a spreadsheet would read it as a formula (OWASP practice)."""
    return "'" + cell if cell.startswith(FORMULA_STARTS) else cell


def ledger_csv(rows: Sequence[LedgerRow]) -> bytes:
    """Header, then one row per D-REC in serial order; UTF-8, `\\n` line ends.

    Sorting makes the bytes, and so the SHA-256, depend on the D-RECs alone. Cells are
    escaped before the file is hashed, so the anchored SHA-256 is of the file people open.
    """
    lines = [_csv_line(LEDGER_COLUMNS)]
    lines += [_csv_line([spreadsheet_safe(cell) for cell in row.cells()])
              for row in sorted(rows, key=lambda r: r.serial)]
    return "".join(lines).encode("utf-8")


def _csv_line(cells: Sequence[str]) -> str:
    return ",".join(_csv_cell(c) for c in cells) + "\n"


def _csv_cell(cell: str) -> str:
    """RFC 4180, quoted only when needed. By hand because the csv module (with `\\n` line ends)
    leaves a bare `\\r` unquoted, and spreadsheets read that as the end of the row."""
    if any(ch in cell for ch in ',"\r\n'):
        return '"' + cell.replace('"', '""') + '"'
    return cell


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def memo(
    beneficiary: str,
    n: int,
    devices_count: int,
    countries: Sequence[str],
    start: date | datetime,
    end: date | datetime,
    ranges: Sequence[str],
    link: str,
    sha: str,
) -> str:
    """The plain-language memo printed with a retirement.

    `end` as a datetime is the exclusive end of generation, so it prints as
    the last day it covers (a period ending 2026-12-01T00:00Z reads 2026-11-30).
    """
    return (
        f"Redeemed on behalf of {beneficiary}: {_count(n, 'D-REC')} generated by "
        f"{_count(devices_count, 'device')} in {_and_list(sorted(countries))} "
        f"between {_first_day(start)} and {_last_day(end)}. "
        f"Serial number ranges: {', '.join(ranges)}. "
        f"Full ledger: {link}. SHA-256 of the ledger: {sha}."
    )


def check_claim_period(
    claim_start: date | datetime,
    claim_end: date | datetime,
    generation_start: datetime,
    generation_end: datetime,
) -> None:
    """Rule: the claim period must contain every redeemed D-REC's generation period.

    Pass the earliest generation start and the latest generation end of the
    D-RECs. A date as `claim_start` means that day's 00:00 UTC; a date as
    `claim_end` includes that whole day.
    """
    start = _as_start(claim_start)
    end = _as_end(claim_end)
    if end <= start:
        raise BadInput(
            "claim_period_end must be after claim_period_start",
            field="claim_period_end",
        )
    if start > generation_start:
        raise RuleBroken(
            f"the claim period starts after generation began, {_iso(generation_start)}",
            field="claim_period_start",
        )
    if end < generation_end:
        raise RuleBroken(
            f"the claim period ends before generation ended ({_iso(generation_end)})",
            field="claim_period_end",
        )


@dataclass(frozen=True)
class RetirementStatement:
    beneficiary: str
    purpose: str
    claim_period_start: date | datetime
    claim_period_end: date | datetime
    serials: tuple[str, ...]
    serial_ranges: tuple[str, ...]
    total_kwh: int
    devices_count: int
    countries: tuple[str, ...]
    generation_start: datetime
    generation_end: datetime
    avoided_co2_kg: float
    ledger_url: str
    ledger_sha256: str
    memo: str
    sponsors: dict[str, str] = field(
        default_factory=dict, hash=False
    )  # serial -> sponsor

    def to_dict(self) -> dict[str, Any]:
        return {
            "beneficiary": self.beneficiary,
            "purpose": self.purpose,
            "claim_period_start": _iso(self.claim_period_start),
            "claim_period_end": _iso(self.claim_period_end),
            "serials": list(self.serials),
            "serial_ranges": list(self.serial_ranges),
            "total_kwh": self.total_kwh,
            "devices_count": self.devices_count,
            "countries": list(self.countries),
            "generation_start": _iso(self.generation_start),
            "generation_end": _iso(self.generation_end),
            "avoided_co2_kg": self.avoided_co2_kg,
            "ledger_url": self.ledger_url,
            "ledger_sha256": self.ledger_sha256,
            "memo": self.memo,
            "sponsors": dict(self.sponsors),
        }


def retirement_statement(
    rows: Sequence[LedgerRow],
    *,
    purpose: str,
    claim_period_start: date | datetime,
    claim_period_end: date | datetime,
    ledger_url: str,
) -> tuple[RetirementStatement, bytes]:
    """The statement and ledger bytes for `rows` of one beneficiary.

    Checks the claim period first (`check_claim_period`).
    """
    if not rows:
        raise BadInput("a retirement redeems at least one D-REC", field="serials")
    beneficiaries = {row.beneficiary for row in rows}
    if len(beneficiaries) != 1:
        raise BadInput("one retirement names one beneficiary", field="beneficiary")
    generation_start = min(row.period_start for row in rows)
    generation_end = max(row.period_end for row in rows)
    check_claim_period(
        claim_period_start, claim_period_end, generation_start, generation_end
    )
    ledger = ledger_csv(rows)
    sha = sha256_hex(ledger)
    serials = tuple(sorted(row.serial for row in rows))
    if len(set(serials)) != len(serials):
        raise BadInput("a D-REC is redeemed once", field="serials")
    ranges = tuple(compress_ranges(serials))
    devices = {device for row in rows for device in row.devices}
    countries = tuple(sorted({row.country for row in rows}))
    beneficiary = beneficiaries.pop()
    avoided = sum((Decimal(str(row.avoided_co2_kg)) for row in rows), Decimal(0))
    statement = RetirementStatement(
        beneficiary=beneficiary,
        purpose=purpose,
        claim_period_start=claim_period_start,
        claim_period_end=claim_period_end,
        serials=serials,
        serial_ranges=ranges,
        total_kwh=len(serials),
        devices_count=len(devices),
        countries=countries,
        generation_start=generation_start,
        generation_end=generation_end,
        avoided_co2_kg=float(avoided),
        ledger_url=ledger_url,
        ledger_sha256=sha,
        memo=memo(
            beneficiary,
            len(serials),
            len(devices),
            countries,
            generation_start,
            generation_end,
            ranges,
            ledger_url,
            sha,
        ),
        sponsors={row.serial: row.sponsor for row in rows if row.sponsor is not None},
    )
    return statement, ledger


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}" if n == 1 else f"{n:,} {noun}s"


def _and_list(items: Sequence[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return f"{', '.join(items[:-1])} and {items[-1]}"


def _first_day(moment: date | datetime) -> str:
    if isinstance(moment, datetime):
        return moment.astimezone(UTC).date().isoformat()
    return moment.isoformat()


def _last_day(moment: date | datetime) -> str:
    if isinstance(moment, datetime):
        return (moment.astimezone(UTC) - timedelta(microseconds=1)).date().isoformat()
    return moment.isoformat()


def _as_start(moment: date | datetime) -> datetime:
    if isinstance(moment, datetime):
        return _aware(moment, "claim_period_start")
    return datetime.combine(moment, time(), tzinfo=UTC)


def _as_end(moment: date | datetime) -> datetime:
    if isinstance(moment, datetime):
        return _aware(moment, "claim_period_end")
    return datetime.combine(moment + timedelta(days=1), time(), tzinfo=UTC)


def _aware(moment: datetime, name: str) -> datetime:
    if moment.tzinfo is None:
        raise BadInput(f"{name} must carry a time zone", field=name)
    return moment.astimezone(UTC)


def _iso(moment: date | datetime) -> str:
    return iso(moment) if isinstance(moment, datetime) else moment.isoformat()
