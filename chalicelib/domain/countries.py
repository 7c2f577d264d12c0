"""ISO 3166-1 alpha-2 country codes, from the public-domain table shipped with tzdata."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

_TABLE = Path(__file__).parent / "data" / "iso3166.tab"


@lru_cache(maxsize=1)
def country_names() -> dict[str, str]:
    names: dict[str, str] = {}
    for line in _TABLE.read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            code, name = line.split("\t", 1)
            names[code] = name
    return names


def is_country(code: str) -> bool:
    return code in country_names()
