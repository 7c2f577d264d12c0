"""Files a client reads: readings (CSV or JSON, streamed with their line numbers) and signing keys.

A CSV is read by the registry's own reader (`services.uploads.csv_rows`), so a row is refused
with the same message and field on the client as on the server. A JSON file — a list of reading
objects, or `{"readings": [...]}` — is decoded one reading at a time from chunks of the file:
neither kind is ever held whole in memory, and each reading keeps the line it starts on.
"""

from __future__ import annotations

import codecs
import getpass
import json
import os
import re
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, Literal

from eth_account import Account as EthAccount
from eth_account.signers.local import LocalAccount

from ..domain.errors import BadInput
from ..services.text_lines import MAX_LINE_BYTES, READ_CHUNK_BYTES, FileStopped, text_lines
from ..services.uploads import FileRefused, csv_rows

Row = tuple[int, Any]  # (line, a raw reading or the BadInput that refuses it)
Format = Literal["csv", "json"]
PASSWORD_ENV = "DREC_KEY_PASSWORD"
# One reading object: as long as one CSV row may be.
MAX_ITEM_CHARS = MAX_LINE_BYTES
WHITESPACE = " \t\r\n"
WRAPPED = re.compile(r'\{\s*"readings"\s*:\s*\[')


class KeyFileError(Exception):
    """A key file that gives no key; the message never holds the file's content."""


def byte_chunks(path: Path, on_read: Callable[[int], None] | None = None) -> Iterator[bytes]:
    """The file in chunks, reporting each chunk's size (a progress bar's feed)."""
    with open(path, "rb") as file:
        while chunk := file.read(READ_CHUNK_BYTES):
            if on_read:
                on_read(len(chunk))
            yield chunk


def file_format(path: Path) -> Format:
    """`json` for a .json file or one that starts with `[` or `{`; else `csv`."""
    if path.suffix.lower() == ".json":
        return "json"
    with open(path, "rb") as file:
        start = file.read(4096).lstrip(b"\xef\xbb\xbf" + WHITESPACE.encode())
    return "json" if start[:1] in (b"[", b"{") else "csv"


def read_rows(path: Path, fmt: Format | None = None, on_read: Callable[[int], None] | None = None) -> Iterator[Row]:
    """(line, raw reading | BadInput) of every reading in the file, streamed.

    Raises `FileRefused` when nothing in the file can be read (no header, not a list). A file that
    cannot be read past some line yields the rows before it and then a `BadInput` at that line.
    """
    chunks = byte_chunks(path, on_read)
    try:
        if (fmt or file_format(path)) == "json":
            yield from json_rows(_text_chunks(chunks))
        else:
            yield from csv_rows(text_lines(chunks))
    except FileRefused:
        raise
    except FileStopped as stopped:
        yield stopped.line, BadInput(f"{stopped.message}; the file was read up to this line", field="file")


def _text_chunks(chunks: Iterable[bytes]) -> Iterator[str]:
    decoder = codecs.getincrementaldecoder("utf-8-sig")()
    read = 0
    for chunk in chunks:
        try:
            yield decoder.decode(chunk)
        except UnicodeDecodeError as exc:
            raise FileStopped(0, f"the file is not UTF-8 text (byte {read + exc.start}); save it as UTF-8 JSON") \
                from exc
        read += len(chunk)
    yield decoder.decode(b"", final=True)


class _JsonText:
    """A window on the file's text that knows the line of its position; it grows by chunks as asked."""

    def __init__(self, chunks: Iterable[str]) -> None:
        self.chunks = iter(chunks)
        self.text = ""
        self.pos = 0
        self.line = 1

    def more(self) -> bool:
        for chunk in self.chunks:
            if chunk:
                self.text = self.text[self.pos:] + chunk  # what is read is dropped: memory stays one window
                self.pos = 0
                return True
        return False

    def advance(self, to: int) -> None:
        self.line += self.text.count("\n", self.pos, to)
        self.pos = to

    def peek(self) -> str | None:
        """The next character that is not whitespace, None at the end of the file."""
        while True:
            while self.pos < len(self.text) and self.text[self.pos] in WHITESPACE:
                self.advance(self.pos + 1)
            if self.pos < len(self.text):
                return self.text[self.pos]
            if not self.more():
                return None

    def stop(self, message: str) -> FileStopped:
        return FileStopped(self.line, f"line {self.line}: {message}")

    def value(self, decoder: json.JSONDecoder) -> Any:
        """The JSON value at the position, reading more of the file until it is whole."""
        while True:
            try:
                value, end = decoder.raw_decode(self.text, self.pos)
            except json.JSONDecodeError as exc:
                # Perhaps only cut off by the window's end: read on, but never past one item's limit.
                if len(self.text) - self.pos <= MAX_ITEM_CHARS and self.more():
                    continue
                if exc.pos - self.pos > MAX_ITEM_CHARS:
                    raise self.stop(f"a reading runs past {MAX_ITEM_CHARS} characters: is a brace left "
                                    "open?") from exc
                line = self.line + self.text.count("\n", self.pos, exc.pos)
                raise FileStopped(line, f"line {line}: not JSON ({exc.msg})") from exc
            # A number or a literal may go on in the next chunk: only a value that ends before the
            # window does is surely whole.
            if end < len(self.text) or not self.more():
                self.advance(end)
                return value


def json_rows(chunks: Iterable[str]) -> Iterator[Row]:
    """(line, reading object) for each item of `[...]` or `{"readings": [...]}`, line = where the item starts."""
    text = _JsonText(chunks)
    decoder = json.JSONDecoder()
    first = text.peek()
    if first is None:
        raise FileRefused(1, 'the file is empty; a JSON file of readings is a list, or {"readings": [...]}', "file")
    wrapped = first == "{"
    if wrapped:
        while len(text.text) - text.pos < 4096 and text.more():
            pass
        match = WRAPPED.match(text.text, text.pos)
        if not match:
            raise FileRefused(text.line, 'a JSON object of readings is {"readings": [...]} and holds nothing else',
                              "file")
        text.advance(match.end())
    elif first == "[":
        text.advance(text.pos + 1)
    else:
        raise FileRefused(text.line, 'a JSON file of readings is a list, or {"readings": [...]}', "file")
    if text.peek() == "]":
        text.advance(text.pos + 1)
    else:
        while True:
            if text.peek() is None:
                raise text.stop("the file ends inside the list of readings: is a ']' missing?")
            line = text.line
            yield line, text.value(decoder)
            after = text.peek()
            if after == "]":
                text.advance(text.pos + 1)
                break
            if after != ",":
                raise text.stop("expected ',' or ']' after a reading")
            text.advance(text.pos + 1)
    if wrapped:
        if text.peek() != "}":
            raise text.stop('{"readings": [...]} holds nothing after its list')
        text.advance(text.pos + 1)
    if text.peek() is not None:
        raise text.stop("text after the end of the readings")


def load_signing_key(path: Path | str, password: str | None = None,
                     prompt: Callable[[str], str] | None = None) -> LocalAccount:
    """The key of a key file: a 0x-hex private key, or an Ethereum keystore JSON.

    A keystore's password is `password`, else `$DREC_KEY_PASSWORD`, else asked at the terminal.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise KeyFileError(f"cannot read key file {path}: {type(exc).__name__}") from exc
    if text.startswith("{"):
        try:
            keystore = json.loads(text)
        except ValueError:
            raise KeyFileError(f"key file {path} starts like a keystore JSON but is not JSON") from None
        if password is None:
            password = os.environ.get(PASSWORD_ENV)
        if password is None:
            if prompt is None and not sys.stdin.isatty():
                raise KeyFileError(f"key file {path} is a keystore: set {PASSWORD_ENV} to its password")
            password = (prompt or getpass.getpass)(f"password of {path}: ")
        try:
            return EthAccount.from_key(EthAccount.decrypt(keystore, password))
        except (ValueError, KeyError, TypeError):
            raise KeyFileError(f"key file {path}: wrong password, or not an Ethereum keystore") from None
    if not re.fullmatch(r"(0x)?[0-9a-fA-F]{64}", text):
        raise KeyFileError(f"key file {path} holds neither a 0x-hex private key (64 hex digits) nor an "
                           "Ethereum keystore JSON")
    return EthAccount.from_key(text if text.startswith("0x") else "0x" + text)
