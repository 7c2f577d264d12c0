"""Memory and speed of the CSV path on a 1,000,000-row file.

    python -m tests.bench.bench_csv [--rows N]

Writes a CSV of N rows to a temporary file, streams it line by line through
`uploads.ingest_lines` as the S3 handler does (it splits `S3Bucket.chunks` into lines the same
way), and prints rows per second and the peak memory Python allocated (tracemalloc) while
doing it. The intake's DynamoDB and SQS writes are replaced by a counter that still parses
and checks every row (`parse_reading`), so the figure is the cost of the file path itself.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

from chalicelib.api.reading_input import parse_reading
from chalicelib.domain.errors import DomainError
from chalicelib.domain.model import Principal
from chalicelib.services.intake import IntakeResult
from chalicelib.services.uploads import ingest_lines


class CountingIntake:
    """Parses and checks each row like the intake, and counts instead of writing."""

    def __init__(self) -> None:
        self.queued = 0

    def submit(self, principal: Principal, items: list[tuple[int, Any]], field_prefix: str = "") -> IntakeResult:
        result = IntakeResult()
        for line, raw in items:
            try:
                reading = parse_reading(raw, field_prefix)
            except DomainError as error:
                result.errors.append((line, error))
                continue
            result.accepted.append((line, reading.reading_id))
        result.queued = len(result.accepted)
        self.queued += result.queued
        return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "big.csv"
        with path.open("w") as out:
            out.write("device_id,period_start,period_end,energy_wh\n")
            for i in range(args.rows):
                hour = i % 24
                day = 1 + (i // 24) % 28
                bad = "12.5" if i % 1000 == 0 else str(40 + i % 20)
                out.write(f"dev-{i % 10_000},2026-10-{day:02d}T{hour:02d}:00:00Z,"
                          f"2026-10-{day:02d}T{hour:02d}:59:59Z,{bad}\n")
        size_mb = path.stat().st_size / 1e6
        intake = CountingIntake()
        tracemalloc.start()
        started = time.perf_counter()
        with path.open(encoding="utf-8-sig", newline="") as lines:
            report = ingest_lines(intake, Principal("source", "src-bench"), lines)  # type: ignore[arg-type]
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    print(f"file: {args.rows:,} rows, {size_mb:.0f} MB")
    print(f"rows checked: {report['rows']:,}, valid: {intake.queued:,}, errors: {report['error_count']:,}")
    print(f"time: {elapsed:.1f} s = {report['rows'] / elapsed:,.0f} rows/s (one core, tracemalloc on)")
    print(f"peak Python memory while streaming: {peak / 1e6:.1f} MB (the report's error list included)")


if __name__ == "__main__":
    main()
