"""A partner's page over HTTP(S): the standard library's client, guarded against SSRF and slow or huge answers.

The host name is resolved and every address checked before connecting, and the address actually
connected to is checked again (a DNS answer that changes between the two cannot reach an internal
address). Redirects are not followed. Timeouts: connecting `connect_timeout_s`, each read and the whole
body `read_timeout_s`; the body stops at `max_bytes`.
"""

from __future__ import annotations

import http.client
import json
import socket
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from ..domain.errors import DomainError, RuleBroken
from ..domain.pull import PartnerFailed, check_url, refused_addresses

Resolve = Callable[[str, int], list[str]]


def resolve(host: str, port: int) -> list[str]:
    """Every address `host` resolves to (an IP literal resolves to itself)."""
    return sorted({str(info[4][0]) for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)})


def check_destination(url: str, allow_private: bool, resolver: Resolve = resolve) -> None:
    """RuleBroken (field `url`, a 422) when the URL is malformed, does not resolve, reaches an internal address,
    or is not https (except where private addresses are allowed: a local stack)."""
    scheme, host, port = check_url(url)
    if allow_private:
        return
    try:
        addresses = resolver(host, port)
    except (OSError, UnicodeError) as error:
        raise RuleBroken(f"url's host {host!r} does not resolve ({error})", field="url") from error
    refused = refused_addresses(addresses)
    if refused or not addresses:
        raise RuleBroken(f"url's host {host!r} is an internal address ({', '.join(refused) or 'none'}): loopback, "
                       "link-local, private and reserved ranges are not pulled from", field="url")
    if scheme != "https":
        # The registry takes what the page says as the source's own word: over plain HTTP anyone on the
        # way could add or change readings of devices that have no signing key.
        raise RuleBroken("url must be https:// (plain http is pulled from only on a local stack, "
                         "DREC_PULL_ALLOW_PRIVATE=1)", field="url")


class _Guard:
    """The peer check of a connection: the address actually connected to must be public."""

    allow_private = False
    read_timeout_s = 30.0

    def _check_peer(self, sock: socket.socket) -> None:
        peer = str(sock.getpeername()[0])
        if not self.allow_private and refused_addresses([peer]):
            sock.close()
            raise PartnerFailed(f"connected to internal address {peer}: refused")
        sock.settimeout(self.read_timeout_s)


class _HTTP(_Guard, http.client.HTTPConnection):
    def connect(self) -> None:
        super().connect()
        self._check_peer(self.sock)


class _HTTPS(_Guard, http.client.HTTPSConnection):
    def connect(self) -> None:
        super().connect()  # the TLS handshake happens here; no request has been sent yet
        self._check_peer(self.sock)


@dataclass(frozen=True)
class PartnerClient:
    allow_private: bool = False
    connect_timeout_s: float = 5.0
    read_timeout_s: float = 30.0
    max_bytes: int = 8 * 1024 * 1024

    def __call__(self, url: str, auth: tuple[str, str] | None) -> Any:
        """The partner's decoded JSON answer to a GET of `url`; PartnerFailed when there is none to read."""
        try:
            check_destination(url, self.allow_private)
        except DomainError as error:
            raise PartnerFailed(error.message) from error
        parts = urlsplit(url)
        connection_type = _HTTPS if parts.scheme == "https" else _HTTP
        extra: dict[str, Any] = {"context": ssl.create_default_context()} if parts.scheme == "https" else {}
        connection = connection_type(parts.hostname or "", parts.port, timeout=self.connect_timeout_s, **extra)
        connection.allow_private = self.allow_private
        connection.read_timeout_s = self.read_timeout_s
        target = parts.path or "/"
        if parts.query:
            target += "?" + parts.query
        headers = {"Accept": "application/json", "User-Agent": "drec-registry-puller/1"}
        if auth:
            headers[auth[0]] = auth[1]
        started = time.monotonic()
        try:
            connection.request("GET", target, headers=headers)
            response = connection.getresponse()
            body = self._body(response, started)
        except PartnerFailed:
            raise
        except TimeoutError as error:
            raise PartnerFailed(f"timed out after {time.monotonic() - started:.1f} s") from error
        except (OSError, http.client.HTTPException) as error:
            raise PartnerFailed(f"HTTP request failed: {type(error).__name__}: {error}") from error
        finally:
            connection.close()
        if not 200 <= response.status < 300:
            raise PartnerFailed(f"HTTP {response.status} {response.reason}: {body[:200].decode('utf-8', 'replace')}")
        try:
            return json.loads(body)
        except ValueError as error:
            raise PartnerFailed(f"the answer is not JSON: {error}") from error

    def _body(self, response: http.client.HTTPResponse, started: float) -> bytes:
        declared = response.getheader("Content-Length")
        if declared and declared.isdigit() and int(declared) > self.max_bytes:
            raise PartnerFailed(f"the answer holds {declared} bytes; at most {self.max_bytes}")
        chunks: list[bytes] = []
        size = 0
        while True:
            if time.monotonic() - started > self.read_timeout_s:
                raise PartnerFailed(f"the answer took over {self.read_timeout_s:.0f} s")
            chunk = response.read1(65536) if hasattr(response, "read1") else response.read(65536)
            if not chunk:
                return b"".join(chunks)
            size += len(chunk)
            if size > self.max_bytes:
                raise PartnerFailed(f"the answer is over {self.max_bytes} bytes")
            chunks.append(chunk)
