"""D-REC serial numbers and their ranges.

A serial is ``DREC-<country>-<device type code>-<period label>-<pool code>-<sequence>``,
e.g. ``DREC-KE-SHS-202611-JSBGITFF-00000001``. Everything before the last
hyphen (the *prefix*) names one pool and one generation period; the 8-digit
sequence counts that pool's D-RECs from 1 without gaps, so serials sort in
issue order and a pool's D-RECs form contiguous runs that a statement can
print as ranges (``first..last``).

``country`` is ``XX`` (ISO 3166 user-assigned) when pools do not partition
by country; the device type code is ``MIX`` when they do not partition by
device type.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from itertools import groupby

from ..errors import BadInput

DEVICE_TYPE_CODES: dict[str, str] = {
    "solar_home_system": "SHS",
    "mini_grid": "MGR",
    "microgrid": "MCG",
    "rooftop_pv": "RPV",
    "other": "OTH",
    "mixed": "MIX",
}

#: A characteristic shared by no single value (device type, country, off-taker type) of a D-REC.
MIXED = "mixed"
MIXED_COUNTRY = "XX"
SEQUENCE_DIGITS = 8
MAX_SEQUENCE = 10**SEQUENCE_DIGITS - 1
RANGE_SEPARATOR = ".."

_SERIAL = re.compile(
    r"^DREC-(?P<country>[A-Z]{2})-(?P<device_type_code>[A-Z]{3})-(?P<period_label>\d{6}|\d{8}|\d{10})"
    r"-(?P<pool_code>[A-Z2-7]+)-(?P<sequence>\d{8})$"
)


@dataclass(frozen=True)
class SerialParts:
    country: str
    device_type_code: str
    period_label: str
    pool_code: str
    sequence: int

    @property
    def prefix(self) -> str:
        """The serial without its sequence: one pool, one period."""
        return (
            f"DREC-{self.country}-{self.device_type_code}"
            f"-{self.period_label}-{self.pool_code}"
        )


def serial(
    country: str,
    device_type_code: str,
    period_label: str,
    pool_code: str,
    sequence: int,
) -> str:
    """Format a serial; `device_type_code` may also be a name (`solar_home_system`)."""
    code = DEVICE_TYPE_CODES.get(device_type_code, device_type_code)
    if isinstance(sequence, bool) or not isinstance(sequence, int):
        raise BadInput("sequence must be an integer", field="sequence")
    if not 1 <= sequence <= MAX_SEQUENCE:
        raise BadInput(
            f"sequence must be between 1 and {MAX_SEQUENCE}", field="sequence"
        )
    text = f"DREC-{country}-{code}-{period_label}-{pool_code}-{_digits(sequence)}"
    parse_serial(text)
    return text


def parse_serial(text: str) -> SerialParts:
    """Split a serial into its parts; BadInput (field `serial`) if it is not one."""
    match = _SERIAL.match(text)
    if match is None:
        raise BadInput(f"not a D-REC serial number: {text!r}", field="serial")
    sequence = int(match["sequence"])
    if sequence == 0:
        raise BadInput(f"serial sequences start at 1: {text!r}", field="serial")
    return SerialParts(
        country=match["country"],
        device_type_code=match["device_type_code"],
        period_label=match["period_label"],
        pool_code=match["pool_code"],
        sequence=sequence,
    )


def compress_ranges(serials: list[str] | tuple[str, ...]) -> list[str]:
    """Contiguous runs within one prefix as ``first..last``, singletons as themselves.

    Output is sorted by prefix then sequence; duplicates count once.
    """
    parsed = sorted(
        {parse_serial(s) for s in serials}, key=lambda p: (p.prefix, p.sequence)
    )
    ranges: list[str] = []
    for _prefix, group in groupby(parsed, key=lambda p: p.prefix):
        run: list[SerialParts] = []
        for parts in group:
            if run and parts.sequence != run[-1].sequence + 1:
                ranges.append(_run_text(run))
                run = []
            run.append(parts)
        ranges.append(_run_text(run))
    return ranges


def expand_range(text: str) -> list[str]:
    """The serials of one ``first..last`` range (or of a single serial), in order."""
    if RANGE_SEPARATOR not in text:
        parse_serial(text)
        return [text]
    first_text, last_text = text.split(RANGE_SEPARATOR, 1)
    first, last = parse_serial(first_text), parse_serial(last_text)
    if first.prefix != last.prefix:
        raise BadInput(
            f"a range stays within one pool and period: {text!r}", field="serials"
        )
    if first.sequence > last.sequence:
        raise BadInput(
            f"a range runs from the lower sequence up: {text!r}", field="serials"
        )
    return [
        f"{first.prefix}-{sequence:0{SEQUENCE_DIGITS}d}"
        for sequence in range(first.sequence, last.sequence + 1)
    ]


def _run_text(run: list[SerialParts]) -> str:
    first, last = run[0], run[-1]
    first_text = f"{first.prefix}-{first.sequence:0{SEQUENCE_DIGITS}d}"
    if len(run) == 1:
        return first_text
    return f"{first_text}{RANGE_SEPARATOR}{last.prefix}-{_digits(last.sequence)}"


def _digits(sequence: int) -> str:
    return f"{sequence:0{SEQUENCE_DIGITS}d}"
