"""Time and peak memory of the CSV reader on hostile line structures, from 1 MB to 100 MB.

    python -m tests.bench.bench_hostile_csv [--sizes 1,10,100] [--full-sizes 0.1,0.2,0.4]

Each file is written to a temporary file and read back in 1 MiB chunks, as `S3Bucket.chunks`
reads an object, through `text_lines` and `ingest_lines` (the intake counts instead of writing,
as in `bench_csv`). Peak memory is what Python allocated while reading (tracemalloc), the chunk
included. Files refused at their first over-long line (no newline at all, a quote left open)
run at `--sizes`: their time and memory must not grow with the size. Files read to the end
(a line per byte, lines just under the limit, ordinary rows) run at `--full-sizes`: their
throughput [MB/s] must not fall as the size grows (linear time), their memory must stay flat.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path

from chalicelib.domain.model import Principal
from chalicelib.services.uploads import MAX_LINE_BYTES, READ_CHUNK_BYTES, ingest_lines, text_lines
from tests.bench.bench_csv import CountingIntake

MB = 1_000_000
HEADER = b"device_id,period_start,period_end,energy_wh\n"


def _fill(out: Path, size: int, head: bytes, unit: bytes) -> None:
    """`head`, then `unit` repeated up to `size` bytes."""
    block = unit * max(1, (1 << 20) // len(unit))
    with out.open("wb") as f:
        f.write(head)
        written = len(head)
        while written < size:
            piece = block[:size - written]
            f.write(piece)
            written += len(piece)


def _row(i: int) -> bytes:
    day, hour = 1 + i % 28, i % 24
    start, end = f"2026-10-{day:02d}T{hour:02d}:00:00Z", f"2026-10-{day:02d}T{hour:02d}:59:59Z"
    return f"dev-{i % 1000},{start},{end},{40 + i % 9}\n".encode()


SHAPES: dict[str, tuple[bytes, bytes]] = {
    "no newline": (b"", b"x"),
    "quote left open": (HEADER + b'dev-1,"', b"a" * 99 + b"\n"),
    "blank lines": (HEADER, b"\n"),
    "lines of 64 KiB - 1": (HEADER, b"z" * (MAX_LINE_BYTES - 2) + b"\n"),
    "ordinary rows": (HEADER, b"".join(_row(i) for i in range(997))),
}
REFUSED = ("no newline", "quote left open")


def _chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as f:
        while chunk := f.read(READ_CHUNK_BYTES):
            yield chunk


def _measure(path: Path, run: Callable[[Path], dict[str, object]]) -> tuple[float, int, dict[str, object]]:
    """Seconds (a run without tracemalloc, which slows every allocation) and peak bytes (a second run)."""
    started = time.perf_counter()
    run(path)
    elapsed = time.perf_counter() - started
    tracemalloc.start()
    report = run(path)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return elapsed, peak, report


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1,10,100", help="MB, for files refused at an over-long line")
    parser.add_argument("--full-sizes", default="0.1,0.2,0.4", help="MB, for files read to the end")
    args = parser.parse_args()
    principal = Principal("source", "bench")

    def run(path: Path) -> dict[str, object]:
        return ingest_lines(CountingIntake(), principal, text_lines(_chunks(path)))

    print(f"{'shape':<22}{'MB':>6}{'seconds':>10}{'MB/s':>9}{'peak MiB':>10}  report")
    with tempfile.TemporaryDirectory() as folder:
        for shape, (head, unit) in SHAPES.items():
            sizes = args.sizes if shape in REFUSED else args.full_sizes
            for mb in (float(s) for s in sizes.split(",")):
                path = Path(folder) / "file.csv"
                _fill(path, int(mb * MB), head, unit)
                elapsed, peak, report = _measure(path, run)
                errors = report["errors"]
                first = errors[0] if isinstance(errors, list) and errors else {}
                summary = f"rows={report['rows']} errors={report['error_count']} first at line {first.get('line')}"
                print(f"{shape:<22}{mb:>6g}{elapsed:>10.3f}{mb / elapsed:>9.1f}{peak / (1 << 20):>10.2f}  {summary}",
                      flush=True)
                path.unlink()


if __name__ == "__main__":
    main()
