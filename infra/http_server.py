"""A small threaded HTTP/1.1 server for the emulator's WSGI app, with keep-alive connections.

Werkzeug's development server closes every connection after one response (its docs: keep-alive is
not handled well by `http.server`), so each AWS call the stack makes opened a TCP connection and a
server thread, and a third of the emulator's time went to that plumbing. Here a connection serves
requests until the client closes it: the whole request body is read before the application runs
(`Content-Length`, or `Transfer-Encoding: chunked` decoded), and every response carries its
`Content-Length`, so the next request line is always where the server reads it.

    serve(app, "127.0.0.1", 5005)   # blocks; one thread per open connection
"""

from __future__ import annotations

import io
import sys
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
NO_BODY = {204, 304}
DROPPED = {"content-length", "connection", "transfer-encoding", "keep-alive"}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], app: WsgiApp) -> None:
        self.app = app
        super().__init__(address, _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        exc = sys.exc_info()[1]
        if not isinstance(exc, (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        pass  # errors surface as 4xx/5xx answers; a line per request cost a tenth of the emulator's time

    def handle_one_request(self) -> None:
        try:
            self.raw_requestline = self.rfile.readline(65537)
            if len(self.raw_requestline) > 65536:
                self.send_error(414)
                return
            if not self.raw_requestline:
                self.close_connection = True
                return
            if not self.parse_request():
                return
            try:
                self._serve()
            except (ConnectionError, TimeoutError):
                raise
            except Exception as exc:  # the application failed: a 500 that says so, and a fresh connection
                self.close_connection = True
                message = f"emulator error: {type(exc).__name__}: {exc}".encode()
                self.wfile.write(b"HTTP/1.1 500 Internal Server Error\r\nContent-Type: text/plain\r\n"
                                 b"Connection: close\r\nContent-Length: " + str(len(message)).encode() + b"\r\n\r\n"
                                 + message)
                print(f"emulator: {self.command} {self.path}: {exc!r}", file=sys.stderr, flush=True)
            self.wfile.flush()
        except (ConnectionError, TimeoutError):
            self.close_connection = True

    def _body(self) -> bytes:
        if self.headers.get("Expect", "").lower() == "100-continue":
            self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            self.wfile.flush()
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return _dechunked(self.rfile)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _environ(self, body: bytes) -> dict[str, Any]:
        path, _, query = self.path.partition("?")
        if "://" in path:  # an absolute request target
            path = "/" + path.split("://", 1)[1].partition("/")[2]
        host, port = self.server.server_address[:2]
        environ: dict[str, Any] = {
            "wsgi.version": (1, 0), "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(body),
            "wsgi.errors": sys.stderr, "wsgi.multithread": True, "wsgi.multiprocess": False,
            "wsgi.run_once": False, "REQUEST_METHOD": self.command, "SCRIPT_NAME": "",
            "PATH_INFO": unquote(path).encode("utf-8").decode("latin-1"), "QUERY_STRING": query,
            "REQUEST_URI": self.path, "RAW_URI": self.path, "SERVER_NAME": str(host), "SERVER_PORT": str(port),
            "SERVER_PROTOCOL": self.request_version, "REMOTE_ADDR": self.client_address[0],
            "REMOTE_PORT": self.client_address[1], "CONTENT_LENGTH": str(len(body)),
        }
        for name, value in self.headers.items():
            key = name.upper().replace("-", "_")
            if key == "CONTENT_LENGTH" or key == "TRANSFER_ENCODING":
                continue
            if key != "CONTENT_TYPE":
                key = f"HTTP_{key}"
            environ[key] = f"{environ[key]},{value}" if key in environ else value
        return environ

    def _serve(self) -> None:
        environ = self._environ(self._body())
        started: list[Any] = []

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[..., Any]:
            started[:] = [status, headers]
            return lambda data: chunks.append(data)

        chunks: list[bytes] = []
        result = self.server.app(environ, start_response)
        try:
            chunks += list(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        status, headers = started
        code = int(status.split(None, 1)[0])
        data = b"" if code in NO_BODY or (100 <= code < 200) else b"".join(chunks)
        lines = [f"HTTP/1.1 {status}\r\n"]
        given_length = None
        for name, value in headers:
            if name.lower() == "content-length":
                given_length = value
            if name.lower() not in DROPPED:
                lines.append(f"{name}: {value}\r\n")
        if self.command == "HEAD":
            data = b""
            lines.append(f"Content-Length: {given_length if given_length is not None else 0}\r\n")
        elif code not in NO_BODY:
            lines.append(f"Content-Length: {len(data)}\r\n")
        if self.close_connection:
            lines.append("Connection: close\r\n")
        lines.append("\r\n")
        self.wfile.write("".join(lines).encode("latin-1") + data)


def _dechunked(stream: Any) -> bytes:
    body = bytearray()
    while True:
        size = int(stream.readline(65537).split(b";", 1)[0].strip() or b"0", 16)
        if size == 0:
            while stream.readline(65537) not in (b"\r\n", b"\n", b""):
                pass  # trailers
            return bytes(body)
        body += stream.read(size)
        stream.readline(65537)  # the chunk's CRLF


def serve(app: WsgiApp, host: str, port: int) -> None:
    _Server((host, port), app).serve_forever()
