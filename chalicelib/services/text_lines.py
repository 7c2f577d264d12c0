"""Text lines from byte chunks, bounded: a hostile file costs time linear in its bytes and the memory of one line."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import count

# A row of this format is a few hundred bytes (a signature is 132 characters): 64 KiB is far
# more than an honest line needs and little enough to refuse before holding a hostile one.
MAX_LINE_BYTES = 64 * 1024
READ_CHUNK_BYTES = 1 << 20


class FileStopped(Exception):
    """The file cannot be read past `line`: the report says why, the rows before it stand."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


def text_lines(chunks: Iterable[bytes], max_line_bytes: int = MAX_LINE_BYTES,
               expected: str = "a CSV of readings") -> Iterator[str]:
    """UTF-8 text lines (ends kept) from byte chunks, in time linear in the bytes and memory of one line.

    A byte-order mark at the start is dropped. Raises `FileStopped` at the first line longer than
    `max_line_bytes` (once that many bytes are seen: the rest of the line is never kept) and at
    the first line that is not UTF-8. Splitting bytes at a newline is safe: in UTF-8 that byte is
    never part of another character.
    """
    pending: list[bytes] = []  # pieces of the current line: joined once, when it ends
    pending_bytes = 0
    offset = 0  # byte offset of the current line's start in the file
    lines = count(1)
    line = next(lines)

    def finish(piece: bytes) -> str:
        nonlocal offset, line, pending_bytes
        data = b"".join(pending) + piece if pending else bytes(piece)
        pending.clear()
        pending_bytes = 0
        if offset == 0 and data.startswith(b"\xef\xbb\xbf"):
            data, start = data[3:], 3
        else:
            start = 0
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise FileStopped(line, f"line {line} is not UTF-8 text (byte {offset + start + exc.start} of the "
                                    "file); save the file as UTF-8 CSV") from exc
        offset += start + len(data)
        line = next(lines)
        return text

    for chunk in chunks:
        view = memoryview(chunk)
        begin = 0
        while begin < len(view):
            end = chunk.find(b"\n", begin)
            stop = len(view) if end < 0 else end + 1
            if pending_bytes + stop - begin > max_line_bytes:
                raise FileStopped(line, f"line {line} is longer than the limit of {max_line_bytes} bytes; a row "
                                        f"of readings is a few hundred: is this {expected}?")
            if end < 0:
                pending.append(bytes(view[begin:]))
                pending_bytes += len(view) - begin
            else:
                yield finish(bytes(view[begin:stop]))
            begin = stop
    if pending:
        yield finish(b"")


def byte_chunks(body: bytes, size: int = READ_CHUNK_BYTES) -> Iterator[bytes]:
    view = memoryview(body)
    for start in range(0, len(view), size):
        yield bytes(view[start:start + size])
