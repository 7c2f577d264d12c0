"""DynamoDB request units and stored bytes by AWS's published rules, from item sizes (DynamoDB JSON).

Item size: UTF-8 bytes of each attribute name and string, (significant digits / 2) + 1 for a number,
raw bytes of a binary, 1 for a boolean or null, 3 + 1 per element for a list or map. A write costs
ceil(KB) of the larger of the item before and after, at least 1; a read ceil(size / 4 KB), at least
1, halved when eventually consistent. A global secondary index costs a write per projected item it
gains, loses or sees change (two when its key changes). Sources:
https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/CapacityUnitCalculations.html,
https://docs.aws.amazon.com/amazondynamodb/latest/developerguide/GSI.html#GSI.ThroughputConsiderations
"""

from __future__ import annotations

import base64
import math
from typing import Any

ITEM_OVERHEAD_BYTES = 100  # what DynamoDB adds to each stored item (and index entry) for indexing
READ_UNIT_BYTES = 4 * 1024
WRITE_UNIT_BYTES = 1024
DynamoItem = dict[str, dict[str, Any]]


def number_size(text: str) -> int:
    """Bytes of a DynamoDB number: (significant digits / 2) + 1, rounded up (up to 38 digits, no rounding)."""
    mantissa = text.strip().lstrip("+-").lower().partition("e")[0]
    digits = mantissa.replace(".", "").lstrip("0").rstrip("0")
    return math.ceil(max(1, len(digits)) / 2) + 1


def _binary_size(value: Any) -> int:
    if isinstance(value, bytes | bytearray):
        return len(value)
    try:
        return len(base64.b64decode(value, validate=True))
    except (ValueError, TypeError):
        return len(str(value).encode())


def value_size(value: dict[str, Any]) -> int:
    """Bytes of one attribute value in DynamoDB JSON (`{"S": "x"}`)."""
    (kind, v), = value.items()
    if kind == "S":
        return len(v.encode())
    if kind == "N":
        return number_size(v)
    if kind == "B":
        return _binary_size(v)
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":
        return sum(len(x.encode()) for x in v)
    if kind == "NS":
        return sum(number_size(x) for x in v)
    if kind == "BS":
        return sum(_binary_size(x) for x in v)
    if kind == "L":
        return 3 + sum(1 + value_size(x) for x in v)
    if kind == "M":
        return 3 + sum(1 + len(k.encode()) + value_size(x) for k, x in v.items())
    raise ValueError(f"unknown DynamoDB type {kind!r}")


def item_size(item: DynamoItem | None) -> int:
    """Bytes of an item: attribute names plus values (0 for no item)."""
    if not item:
        return 0
    return sum(len(name.encode()) + value_size(value) for name, value in item.items())


def write_units(size_bytes: int) -> int:
    return max(1, math.ceil(size_bytes / WRITE_UNIT_BYTES))


def read_units(size_bytes: int, consistent: bool) -> float:
    units = max(1, math.ceil(size_bytes / READ_UNIT_BYTES))
    return float(units) if consistent else units / 2


def write_cost(before: DynamoItem | None, after: DynamoItem | None) -> int:
    """Write units of one item write (put, update, delete, or a conditional write that failed)."""
    return write_units(max(item_size(before), item_size(after)))


def projected(item: DynamoItem | None, index: dict[str, Any]) -> DynamoItem | None:
    """The item as the index holds it, or None when it lacks the index's key attributes."""
    if not item or any(k not in item for k in index["keys"]):
        return None
    kind = index["projection"]
    if kind == "ALL":
        return item
    wanted = set(index["keys"]) | set(index["table_keys"]) | (set(index["include"]) if kind == "INCLUDE" else set())
    return {k: v for k, v in item.items() if k in wanted}


def index_write_units(before: DynamoItem | None, after: DynamoItem | None, index: dict[str, Any]) -> int:
    """Write units a table write costs in one global secondary index."""
    old, new = projected(before, index), projected(after, index)
    if old is None and new is None:
        return 0
    if old is None or new is None:
        return write_units(item_size(old or new))
    if any(old[k] != new[k] for k in index["keys"]):
        return write_units(item_size(old)) + write_units(item_size(new))
    return write_units(item_size(new)) if old != new else 0


def stored_bytes(item: DynamoItem | None) -> int:
    return item_size(item) + ITEM_OVERHEAD_BYTES if item else 0
