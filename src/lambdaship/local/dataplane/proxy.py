"""The data plane's HTTP server: a threaded reverse proxy in front of moto.

A few requests are answered here (Lambda Invoke, the local API URLs, ``/_lambdaship/``); every
other request goes to moto unchanged — method, path, query, headers (``Host`` included, so
URLs moto builds from it point back at this endpoint) and body are forwarded as received, and
moto's status, reason, headers and body come back as moto sent them. Bodies are streamed both
ways (request bodies over 1 MiB and chunked ones are not buffered; responses never are). Only
hop-by-hop headers are rewritten: ``Connection``/``Keep-Alive`` are this hop's, ``Expect`` is
answered here, and a response moto ends by closing the connection is re-framed as chunked.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx

from lambdaship.local.runtime_http import read_body

HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade",
              "expect", "proxy-authenticate", "proxy-authorization"}
BUFFER_LIMIT = 1 << 20
CHUNK = 64 * 1024
# Requests that change what the data plane resolves (functions, aliases, policies, URLs, APIs).
_WRITES = re.compile(r"^/(20\d\d-\d\d-\d\d/|restapis|v2/apis|moto-api/reset)")


@dataclass
class Request:
    method: str
    target: str  # path + query, as received
    headers: list[tuple[str, str]]
    body: bytes
    client_ip: str = "127.0.0.1"
    match: re.Match[str] | None = None

    def header(self, name: str, default: str = "") -> str:
        name = name.lower()
        return next((v for k, v in self.headers if k.lower() == name), default)


@dataclass
class Response:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""


Handler = Callable[[Request], "Response | None"]  # None: not mine after all, pass it through


@dataclass
class Route:
    methods: frozenset[str]
    pattern: re.Pattern[str]
    handler: Handler


class Upstream:
    """moto, over one pooled httpx client."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")
        self.client = httpx.Client(base_url=self.url, timeout=httpx.Timeout(300.0, connect=10.0),
                                   limits=httpx.Limits(max_connections=64, max_keepalive_connections=32))
        self.on_write: Callable[[str, str], None] | None = None

    def send(self, method: str, target: str, headers: list[tuple[str, str]], content: Any) -> httpx.Response:
        req = self.client.build_request(method, target, headers=headers, content=content)
        resp = self.client.send(req, stream=True)
        if method not in ("GET", "HEAD") and _WRITES.match(target) and self.on_write is not None:
            self.on_write(method, target)
        return resp

    def close(self) -> None:
        self.client.close()


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def __init__(self, address: tuple[str, int], upstream: Upstream, routes: list[Route]) -> None:
        self.upstream = upstream
        self.routes = routes
        super().__init__(address, _ProxyHandler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that hangs up mid-answer is not worth a traceback

    def find(self, method: str, path: str) -> tuple[Route, re.Match[str]] | None:
        for route in self.routes:
            if method in route.methods or "*" in route.methods:
                m = route.pattern.match(path)
                if m:
                    return route, m
        return None


class _ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _dispatch(self) -> None:
        path = self.path.split("?", 1)[0]
        found = self.server.find(self.command, path)
        if found is None:
            self._pass_through(None)
            return
        route, match = found
        body = read_body(self)
        req = Request(self.command, self.path, list(self.headers.items()), body, self.client_address[0], match)
        try:
            resp = route.handler(req)
        except Exception as exc:  # one request must never take the data plane down
            msg = f"lambdaship data plane error: {type(exc).__name__}: {exc}"
            resp = Response(500, [("Content-Type", "application/json"),
                                  ("X-Amzn-ErrorType", "ServiceException")],
                            json.dumps({"Type": "Service", "message": msg}).encode())
        if resp is None:
            self._pass_through(body)
            return
        self._send(resp)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _dispatch

    def _send(self, resp: Response) -> None:
        self.send_response_only(resp.status)
        for k, v in resp.headers:
            if k.lower() not in HOP_BY_HOP and k.lower() != "content-length":
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(resp.body)))
        self._headers_buffer.append(b"\r\n" + (resp.body if self.command != "HEAD" else b""))
        self.flush_headers()

    # ---- pass-through -------------------------------------------------------------------
    def _request_body(self) -> bytes | Iterator[bytes]:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            return self._chunked_in()
        n = int(self.headers.get("Content-Length") or 0)
        if n <= BUFFER_LIMIT:
            return self.rfile.read(n) if n else b""
        return self._counted_in(n)

    def _counted_in(self, n: int) -> Iterator[bytes]:
        while n > 0:
            chunk = self.rfile.read(min(CHUNK, n))
            if not chunk:
                return
            n -= len(chunk)
            yield chunk

    def _chunked_in(self) -> Iterator[bytes]:
        while True:
            size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                return
            yield self.rfile.read(size)
            self.rfile.readline()

    def _pass_through(self, body: bytes | None) -> None:
        headers = [(k, v) for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP]
        if body is not None:  # already read (a route declined it): send it with its real length
            headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
            headers.append(("Content-Length", str(len(body))))
        content = body if body is not None else self._request_body()
        try:
            upstream = self.server.upstream.send(self.command, self.path, headers, content)
        except httpx.HTTPError as exc:
            self.close_connection = True
            self._send(Response(502, [("Content-Type", "text/plain")], f"moto is not answering: {exc}\n".encode()))
            return
        try:
            self._relay(upstream)
        finally:
            upstream.close()

    def _relay(self, upstream: httpx.Response) -> None:
        raw = upstream.headers.raw
        length = upstream.headers.get("content-length")
        no_body = self.command == "HEAD" or upstream.status_code in (204, 304) or upstream.status_code < 200
        chunked = length is None and not no_body
        self.send_response_only(upstream.status_code, upstream.reason_phrase or None)
        for k, v in raw:
            if k.decode("latin-1").lower() not in HOP_BY_HOP:
                self._headers_buffer.append(k + b": " + v + b"\r\n")
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        if upstream.headers.get("connection", "").lower() == "close" and length is None and not chunked:
            self.close_connection = True
        self.end_headers()
        if no_body:
            return
        w = self.wfile
        for chunk in upstream.iter_raw(CHUNK):
            if not chunk:
                continue
            w.write(b"%x\r\n%s\r\n" % (len(chunk), chunk) if chunked else chunk)
        if chunked:
            w.write(b"0\r\n\r\n")
        w.flush()


def serve(server: Server) -> threading.Thread:
    t = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True,
                         name="dataplane-http")
    t.start()
    return t
