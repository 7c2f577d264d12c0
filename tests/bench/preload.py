"""Fill a stack's tables before it starts: readings of other devices, written as the emulator's snapshot.

The emulator (`infra.emulator --data`) loads `store/CURRENT`'s generation on start
(`infra.journal`: `gen-<n>/tables/<table>.jsonl`, DynamoDB JSON, one item a line), so a million
readings go in as one file, in the time moto takes to load them, instead of a million requests.

What it holds: readings only — accepted, judged and pooled, as the pipeline leaves them, hourly
daylight readings of `readings // 240` other devices (08:00-18:00 in Nairobi for 24 days each; night
hours left out). Their devices, events and D-RECs are not stored, so the preloaded readings
make the readings table (and its indexes: each item holds its write-sharded index keys) large, not
the others. The counters table gets only the markers that say records were counted and index keys
written, so the stack neither recounts the preload nor scans it for keys at start (the registry's
statistics leave the preloaded readings out).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from chalicelib.adapters.counters import COUNTED
from chalicelib.adapters.dynamo import from_item, to_item
from chalicelib.domain.index_keys import index_keys
from chalicelib.domain.readings import reading_id
from infra.index_backfill import MARKER

PER_DEVICE = 240
FIRST_DAY = datetime(2026, 6, 1, tzinfo=UTC)


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _item(device: str, start: datetime, n: int) -> dict[str, dict[str, object]]:
    end = start + timedelta(hours=1)
    energy = 40 + (n * 7) % 30
    return {
        "id": {"S": reading_id(device, start, end)}, "device_id": {"S": device},
        "owner_account_id": {"S": "acc-preload"}, "period_start": {"S": _stamp(start)},
        "period_end": {"S": _stamp(end)}, "energy_wh": {"N": str(energy)}, "status": {"S": "accepted"},
        "source_id": {"S": "src-preload"}, "derived": {"BOOL": False},
        "received_at": {"S": _stamp(end + timedelta(hours=1))}, "judged_at": {"S": _stamp(end + timedelta(hours=1))},
        "judged_energy_wh": {"N": str(energy)}, "rule": {"S": "ok"},
        "expected_wh": {"N": "55.2"}, "sigma_wh": {"N": "14.1"}, "ceiling_wh": {"N": "92.7"},
        "clear_sky_wh": {"N": "81.3"}, "pooled_wh": {"N": str(energy)},
        "accepted_event_id": {"S": f"ev-0-{n + 1:012d}"},
        "drec_serials": {"SS": [f"DREC-KE-SHS-202606-preload-{n // 20:08d}"]},
    }


def write_preload(store: Path, prefix: str, readings: int) -> dict[str, int]:
    """Write `readings` stored readings into the (not yet started) emulator's data folder `store`."""
    if (store / "CURRENT").exists():
        raise RuntimeError(f"{store} already holds a store: preload only into a new one")
    tables = store / "gen-1" / "tables"
    tables.mkdir(parents=True, exist_ok=True)
    devices = max(1, readings // PER_DEVICE)
    written = 0
    with open(tables / f"{prefix}-readings.jsonl", "w") as out:
        for n in range(readings):
            device, k = f"dev-preload-{n % devices:06d}", n // devices
            start = FIRST_DAY + timedelta(days=k // 10, hours=5 + k % 10)  # 08:00-18:00 in Nairobi
            item = _item(device, start, n)
            item.update(to_item(index_keys("readings", from_item(item))))  # as the stores write them
            out.write(json.dumps(item, separators=(",", ":")) + "\n")
            written += 1
    # The marker of a store whose items hold their index keys (they do, above): the stack's start-up
    # backfill (infra.index_backfill) would otherwise scan the million readings for keys they have.
    (tables / f"{prefix}-counters.jsonl").write_text(
        "".join(json.dumps({"name": {"S": name}}) + "\n" for name in (COUNTED, MARKER)))
    (store / "CURRENT").write_text("1")
    return {"readings": written, "devices": devices}
