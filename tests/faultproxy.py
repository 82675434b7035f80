"""A fault-injecting HTTP/1.1 proxy for tests (registry, moto, anything plain-HTTP on 127.0.0.1).

It forwards requests to ``upstream`` and, with probability ``rate`` (seeded RNG), injects one
fault instead:

* ``500``          answer 500 without forwarding;
* ``500-after``    forward (the upstream does the work), then answer 500 — the lost answer;
* ``reset``        close the connection without an answer, without forwarding;
* ``reset-after``  forward, then close without an answer;
* ``cut``          forward, send the status line, headers and half the body, then close;
* ``cut-request``  forward only half of the request body to the upstream, then close both;
* ``429``          answer 429 with ``Retry-After: <retry_after>`` without forwarding;
* ``slow``         forward, but wait ``slow_seconds`` before answering.

``rule(method, path, n)`` (``n`` = request number) may force a fault (or ``"pass"``) for a
request, for deterministic scenarios. Every request is recorded in ``log`` (time, method,
path, fault, status); ``counts`` tallies the faults injected.

For a peer that does not answer at all: ``closed_port()`` (connection refused) and
``blackholed()`` (SYNs dropped).
"""

from __future__ import annotations

import collections
import contextlib
import random
import socket
import socketserver
import struct
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

ALL_FAULTS = ("500", "500-after", "reset", "reset-after", "cut", "cut-request", "429", "slow")
DEFAULT_FAULTS = ("500", "500-after", "reset", "reset-after", "cut", "cut-request")
# The faults the proxy plays itself, as (status, body) of its answer (None: it resets the connection):
# before the request reaches the registry, or (-after) in place of the registry's answer.
INJECTED: dict[str, tuple[int | None, bytes]] = {
    "500": (500, b'{"errors":[{"code":"UNKNOWN","message":"injected"}]}'),
    "429": (429, b'{"errors":[{"code":"TOOMANYREQUESTS","message":"injected"}]}'),
    "reset": (None, b""),
    "500-after": (500, b'{"errors":[{"code":"UNKNOWN","message":"injected after"}]}'),
    "reset-after": (None, b""),
}
HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "upgrade", "te", "trailer"}


@dataclass
class Record:
    time: float
    method: str
    path: str
    fault: str | None
    status: int | None


class _Closed(Exception):
    pass


def _read_line(f) -> bytes:
    line = f.readline(65537)
    if not line:
        raise _Closed
    return line


def _read_message_head(f) -> tuple[str, list[tuple[str, str]]]:
    start = _read_line(f).decode("latin-1").rstrip("\r\n")
    while start == "":
        start = _read_line(f).decode("latin-1").rstrip("\r\n")
    headers = []
    while True:
        line = _read_line(f).decode("latin-1").rstrip("\r\n")
        if not line:
            break
        k, _, v = line.partition(":")
        headers.append((k.strip(), v.strip()))
    return start, headers


def _get(headers: list[tuple[str, str]], name: str) -> str | None:
    for k, v in headers:
        if k.lower() == name:
            return v
    return None


def _read_body(f, headers: list[tuple[str, str]], *, no_body: bool = False) -> bytes:
    if no_body:
        return b""
    if (_get(headers, "transfer-encoding") or "").lower() == "chunked":
        out = bytearray()
        while True:
            size = int(_read_line(f).split(b";")[0].strip(), 16)
            if size == 0:
                while _read_line(f) not in (b"\r\n", b"\n"):
                    pass
                return bytes(out)
            out += f.read(size)
            f.readline()
    n = int(_get(headers, "content-length") or 0)
    data = f.read(n) if n else b""
    if len(data) != n:
        raise _Closed
    return data


class FaultProxy:
    def __init__(
        self,
        upstream: str,
        *,
        rate: float = 0.2,
        seed: int = 0,
        faults: Sequence[str] = DEFAULT_FAULTS,
        rule: Callable[[str, str, int], str | None] | None = None,
        retry_after: float = 1.0,
        slow_seconds: float = 0.5,
    ) -> None:
        u = urllib.parse.urlsplit(upstream)
        self.upstream = (u.hostname or "127.0.0.1", u.port or 80)
        self.rate = rate
        self.faults = tuple(faults)
        self.rule = rule
        self.retry_after = retry_after
        self.slow_seconds = slow_seconds
        self._rng = random.Random(seed)
        self._lock = threading.Lock()
        self._n = 0
        self.log: list[Record] = []
        self.counts: collections.Counter[str] = collections.Counter()
        self.enabled = True
        proxy = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                proxy._serve(self.connection, self.rfile)

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

            def handle_error(self, request, client_address) -> None:  # connections we cut on purpose
                pass

        self._server = Server(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread: threading.Thread | None = None

    # -- lifecycle -----------------------------------------------------------------------
    def start(self) -> FaultProxy:
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FaultProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- decisions -----------------------------------------------------------------------
    def _decide(self, method: str, path: str) -> str | None:
        with self._lock:
            self._n += 1
            n = self._n
            roll = self._rng.random()
            pick = self._rng.choice(self.faults) if self.faults else None
        if self.rule is not None:
            forced = self.rule(method, path, n)
            if forced == "pass":
                return None
            if forced:
                return forced
        if not self.enabled or roll >= self.rate:
            return None
        return pick

    def _record(self, method: str, path: str, fault: str | None, status: int | None) -> None:
        with self._lock:
            self.log.append(Record(time.monotonic(), method, path, fault, status))
            if fault:
                self.counts[fault] += 1

    # -- serving -------------------------------------------------------------------------
    def _serve(self, conn: socket.socket, rfile) -> None:
        upstream: socket.socket | None = None
        up_file = None
        try:
            while True:
                try:
                    start, headers = _read_message_head(rfile)
                except (_Closed, OSError, ValueError):
                    return
                method, target, _ = start.split(" ", 2)
                try:
                    body = _read_body(rfile, headers)
                except (_Closed, OSError, ValueError):
                    return
                fault = self._decide(method, target)
                if fault in ("500", "429", "reset"):
                    if self._inject(conn, method, target, fault):
                        continue
                    return
                if upstream is None:
                    upstream = socket.create_connection(self.upstream, timeout=60)
                    up_file = upstream.makefile("rb")
                fwd_headers = [(k, v) for k, v in headers
                               if k.lower() not in HOP_HEADERS and k.lower() != "content-length"]
                if fault == "cut-request" and body:
                    head = _head(f"{method} {target} HTTP/1.1", [*fwd_headers, ("Content-Length", str(len(body)))])
                    upstream.sendall(head + body[: len(body) // 2])
                    time.sleep(0.05)
                    self._record(method, target, fault, None)
                    _reset(upstream)
                    _reset(conn)
                    return
                head = _head(f"{method} {target} HTTP/1.1", [*fwd_headers, ("Content-Length", str(len(body)))])
                upstream.sendall(head + body)
                status_line, rheaders = _read_message_head(up_file)
                status = int(status_line.split(" ", 2)[1])
                no_body = method == "HEAD" or status in (204, 304) or 100 <= status < 200
                rbody = _read_body(up_file, rheaders, no_body=no_body)
                if (_get(rheaders, "connection") or "").lower() == "close":
                    up_file.close()
                    upstream.close()
                    upstream, up_file = None, None
                if fault in ("500-after", "reset-after"):
                    if self._inject(conn, method, target, fault):
                        continue
                    return
                if fault == "slow":
                    time.sleep(self.slow_seconds)
                out_headers = [(k, v) for k, v in rheaders if k.lower() not in HOP_HEADERS]
                if not no_body:
                    out_headers = [(k, v) for k, v in out_headers if k.lower() != "content-length"]
                    out_headers.append(("Content-Length", str(len(rbody))))
                data = _head(status_line, out_headers) + rbody
                if fault == "cut":
                    cut_at = len(data) - max(1, len(rbody) // 2) if rbody else len(data) // 2
                    self._record(method, target, fault, status)
                    conn.sendall(data[:cut_at])
                    time.sleep(0.02)
                    _reset(conn)
                    return
                # Recorded before the answer leaves: a client that has read it may look at the log.
                self._record(method, target, fault, status)
                conn.sendall(data)
        except OSError:
            return
        finally:
            if upstream is not None:
                upstream.close()

    def _inject(self, conn: socket.socket, method: str, target: str, fault: str) -> bool:
        """Play ``fault`` (one of INJECTED): its error answer (True: the connection stays open) or
        a reset (False)."""
        status, body = INJECTED[fault]
        self._record(method, target, fault, status)
        if status is None:
            _reset(conn)
            return False
        extra = [("Retry-After", f"{self.retry_after:g}")] if status == 429 else None
        self._answer(conn, status, body, extra, head=method == "HEAD")
        return True

    @staticmethod
    def _answer(conn: socket.socket, status: int, body: bytes, extra: list[tuple[str, str]] | None = None,
                *, head: bool = False) -> None:
        """An injected answer; a HEAD answer has no body (like a real server's), else the client
        would read the body as the next response on the kept-alive connection."""
        reason = {500: "Internal Server Error", 429: "Too Many Requests"}.get(status, "Error")
        headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body))), *(extra or [])]
        conn.sendall(_head(f"HTTP/1.1 {status} {reason}", headers) + (b"" if head else body))


def _head(start: str, headers: list[tuple[str, str]]) -> bytes:
    return (start + "\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers) + "\r\n").encode("latin-1")


def _reset(sock: socket.socket) -> None:
    """Close abruptly (RST), as a crashed server or a dropped connection would."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with contextlib.suppress(OSError):
        sock.close()


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on: connection refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def blackholed() -> Iterator[int]:
    """A port that never answers a SYN: a listener with a full accept queue (Linux drops the
    SYNs), as a firewall that drops packets would."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    port = server.getsockname()[1]
    fill = []
    for _ in range(3):
        c = socket.socket()
        c.setblocking(False)
        with contextlib.suppress(BlockingIOError):
            c.connect(("127.0.0.1", port))
        fill.append(c)
    try:
        yield port
    finally:
        for c in [*fill, server]:
            c.close()
