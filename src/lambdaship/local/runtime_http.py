"""The Runtime API's HTTP side (``/2018-06-01/runtime/...``): one small server per runtime
process on 127.0.0.1, handing it the next invocation and taking its response or error."""

from __future__ import annotations

import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lambdaship.local.runtime_api import Worker

API_PREFIX = "/2018-06-01/runtime"


def read_body(handler: BaseHTTPRequestHandler) -> bytes:
    """The request body: Content-Length or chunked transfer encoding."""
    if handler.headers.get("Transfer-Encoding", "").lower() == "chunked":
        chunks = []
        while True:
            line = handler.rfile.readline()
            size = int(line.split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while handler.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                break
            chunks.append(handler.rfile.read(size))
            handler.rfile.readline()
        return b"".join(chunks)
    n = int(handler.headers.get("Content-Length") or 0)
    return handler.rfile.read(n) if n else b""


class RuntimeServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        super().__init__(("127.0.0.1", 0), RuntimeHandler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a runtime killed mid-request resets its connection: expected, not worth a traceback


class RuntimeHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # small request/response pairs: Nagle + delayed ACK costs 40 ms
    server: RuntimeServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _reply(self, code: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response_only(code)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self._headers_buffer.append(b"\r\n" + body)  # one write: headers and body together
        self.flush_headers()

    def _body(self) -> bytes:
        return read_body(self)

    def do_GET(self) -> None:
        if self.path != f"{API_PREFIX}/invocation/next":
            self._reply(404, b'{"errorMessage":"not found"}')
            return
        inv = self.server.worker.next_invocation()
        if inv is None:  # shutting down: leave the runtime waiting; it is about to be killed
            self.close_connection = True
            return
        headers = {
            "Content-Type": "application/json",
            "Lambda-Runtime-Aws-Request-Id": inv.request_id,
            "Lambda-Runtime-Deadline-Ms": str(inv.deadline_ms),
            "Lambda-Runtime-Invoked-Function-Arn": self.server.worker.pool.function_arn,
            "Lambda-Runtime-Trace-Id": f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]};Sampled=0",
        }
        if inv.client_context:
            headers["Lambda-Runtime-Client-Context"] = inv.client_context
        self._reply(200, inv.payload, headers)

    def do_POST(self) -> None:
        body = self._body()
        worker = self.server.worker
        path = self.path
        if path == f"{API_PREFIX}/init/error":
            worker.init_error(body)
            self._reply(202, b'{"status":"OK"}')
            return
        prefix = f"{API_PREFIX}/invocation/"
        if path.startswith(prefix):
            request_id, _, kind = path[len(prefix):].partition("/")
            if kind == "response":
                ok = worker.complete(request_id, body, None)
            elif kind == "error":
                ok = worker.complete(request_id, body, "Unhandled")
            else:
                ok = None
            if ok is None:
                self._reply(404, b'{"errorMessage":"not found"}')
            elif ok:
                self._reply(202, b'{"status":"OK"}')
            else:
                self._reply(400, b'{"errorMessage":"unknown or finished request id","errorType":"InvalidRequestID"}')
            return
        self._reply(404, b'{"errorMessage":"not found"}')
