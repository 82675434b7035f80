"""The only network a sandboxed build has: Unix sockets on the host, listening for the sandbox.

The build sandbox (:mod:`lambdaship.package.buildbox`) has a network namespace of its own
(loopback only): no route to the host's loopback services, a cloud metadata endpoint
(169.254.169.254: instance credentials) or the network. Inside it,
:mod:`lambdaship.package.egress_forward` forwards loopback ports to these sockets:

* ``proxy.sock``: an HTTP ``CONNECT`` proxy (uv's ``HTTPS_PROXY``) that opens a tunnel only to
  an allowed ``(host, port)`` (the package indexes; TLS stays end to end, verified by uv);
  anything else is answered ``403`` and remembered in :attr:`Egress.refused`;
* ``direct-<port>.sock``: a plain TCP forward to ``127.0.0.1:<port>``, for a plain-http index on
  loopback (the only plain http a requirements file may name).
"""

from __future__ import annotations

import contextlib
import socket
import threading
from pathlib import Path

from lambdaship.package.egress_forward import pump as _pump

MAX_HEAD = 8192
CONNECT_TIMEOUT = 30.0


def _splice(a: socket.socket, b: socket.socket) -> None:
    """Bytes both ways until either side closes; both closed after."""
    t = threading.Thread(target=_pump, args=(b, a), daemon=True)
    t.start()
    _pump(a, b)
    t.join(timeout=CONNECT_TIMEOUT)
    a.close()
    b.close()


def _head(conn: socket.socket) -> tuple[bytes, bytes] | None:
    """(request head, bytes after it), None when the client sent no complete head."""
    buf = b""
    conn.settimeout(CONNECT_TIMEOUT)
    while b"\r\n\r\n" not in buf:
        if len(buf) > MAX_HEAD:
            return None
        data = conn.recv(4096)
        if not data:
            return None
        buf += data
    conn.settimeout(None)
    head, rest = buf.split(b"\r\n\r\n", 1)
    return head, rest


def _target(head: bytes) -> tuple[str, int] | None:
    """(host, port) of ``CONNECT host:port HTTP/1.1``; None for anything else."""
    try:
        method, target, _ = head.split(b"\r\n", 1)[0].decode("ascii").split(" ", 2)
        host, port = target.rsplit(":", 1)
        return (host.strip("[]").lower(), int(port)) if method == "CONNECT" else None
    except ValueError:
        return None


class Egress:
    """The sockets of one sandboxed run; :meth:`close` stops them."""

    def __init__(self, directory: Path, allow: set[tuple[str, int]], direct: set[int]) -> None:
        self.directory = directory
        self.allow = {(h.lower(), p) for h, p in allow}
        self.direct = sorted(direct)
        self.refused: list[str] = []  # "host:port" the sandbox asked for and did not get
        self._listeners: list[socket.socket] = []
        directory.mkdir(parents=True, exist_ok=True)
        self._listen("proxy.sock", self._connect)
        for port in self.direct:
            self._listen(f"direct-{port}.sock", lambda conn, port=port: self._forward(conn, port))

    def config(self, inside: str) -> dict[str, object]:
        """What the forwarder inside needs: socket paths as seen at ``inside``."""
        return {"proxy": f"{inside}/proxy.sock", "direct": {str(p): f"{inside}/direct-{p}.sock" for p in self.direct}}

    def _listen(self, name: str, handle: object) -> None:
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind(str(self.directory / name))
        server.listen(64)
        self._listeners.append(server)
        threading.Thread(target=self._accept, args=(server, handle), daemon=True).start()

    @staticmethod
    def _accept(server: socket.socket, handle: object) -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:  # closed
                return
            threading.Thread(target=handle, args=(conn,), daemon=True).start()  # type: ignore[arg-type]

    def _connect(self, conn: socket.socket) -> None:
        try:
            got = _head(conn)
            target = _target(got[0]) if got else None
            if target is None or target not in self.allow:
                if target is not None:
                    self.refused.append(f"{target[0]}:{target[1]}")
                conn.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                conn.close()
                return
            upstream = socket.create_connection(target, timeout=CONNECT_TIMEOUT)
            upstream.settimeout(None)
        except OSError:
            with contextlib.suppress(OSError):
                conn.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            conn.close()
            return
        conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        if got and got[1]:
            upstream.sendall(got[1])
        _splice(conn, upstream)

    @staticmethod
    def _forward(conn: socket.socket, port: int) -> None:
        try:
            upstream = socket.create_connection(("127.0.0.1", port), timeout=CONNECT_TIMEOUT)
            upstream.settimeout(None)
        except OSError:
            conn.close()
            return
        _splice(conn, upstream)

    def close(self) -> None:
        for server in self._listeners:
            with contextlib.suppress(OSError):
                server.shutdown(socket.SHUT_RDWR)
            server.close()
        self._listeners.clear()
