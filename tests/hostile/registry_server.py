"""A scriptable hostile HTTP server on 127.0.0.1 for the registry tests (``test_registry_*.py``).

``HostileServer(app)``: ``app(req)`` gets every request (``req.method``, ``req.path``,
``req.query``, ``req.headers`` lower-cased, ``req.body``) and answers with ``req.send(...)``
(a body with Content-Length) or ``req.stream(...)`` (chunks until the connection closes, no
Content-Length, or a lying one). Every request is recorded in ``server.seen``.
"""

from __future__ import annotations

import http.server
import threading
import urllib.parse
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes = b""
    handler: http.server.BaseHTTPRequestHandler | None = field(default=None, repr=False)

    def send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        h = self.handler
        assert h is not None
        h.send_response(status)
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        if self.method != "HEAD":
            h.wfile.write(body)

    def stream(self, status: int, chunks: Iterable[bytes], headers: dict[str, str] | None = None) -> None:
        """Write ``chunks`` then close the connection (the body ends at close)."""
        h = self.handler
        assert h is not None
        h.close_connection = True
        h.send_response(status)
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.send_header("Connection", "close")
        h.end_headers()
        try:
            for c in chunks:
                h.wfile.write(c)
            h.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass


class HostileServer:
    def __init__(self, app: Callable[[Request], None]) -> None:
        self.app = app
        self.seen: list[Request] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _any(self) -> None:
                url = urllib.parse.urlsplit(self.path)
                n = int(self.headers.get("Content-Length") or 0)
                req = Request(self.command, url.path, urllib.parse.parse_qs(url.query),
                              {k.lower(): v for k, v in self.headers.items()}, self.rfile.read(n) if n else b"")
                outer.seen.append(req)
                req.handler = self
                outer.app(req)

            do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = _any

        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self.host = f"127.0.0.1:{self.port}"
        self.url = f"http://{self.host}"
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def __enter__(self) -> HostileServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def everything_sent(self) -> str:
        """Every header value, path and query string the server received, as one text."""
        parts = []
        for r in self.seen:
            parts.append(r.path)
            parts.extend(f"{k}={v}" for k, vs in r.query.items() for v in vs)
            parts.extend(r.headers.values())
            parts.append(r.body.decode("latin-1"))
        return "\n".join(parts)
