"""The local stack's data plane: one AWS endpoint that is moto, plus the parts moto lacks.

``lambdaship local up`` runs this in its own process (``python -m lambdaship.local.dataplane``)
in front of moto; its URL is the stack's ``AWS_ENDPOINT_URL``. It answers Lambda ``Invoke``
with the function's real code (``invoke``), serves the local API URLs (``apis``), writes
Lambda's logs to moto's CloudWatch Logs (``logs``), and passes every other request to moto
unchanged (``proxy``). Function code runs through the local execution engine, warm per
(function, version) (``workers``, ``backend``).
"""

from __future__ import annotations

import os
import re
import threading
from pathlib import Path
from typing import Any

from lambdaship.local.dataplane.apis import Apis
from lambdaship.local.dataplane.functions import CodeStore, Functions, record_code
from lambdaship.local.dataplane.invoke import Invoker
from lambdaship.local.dataplane.logs import LogWriter
from lambdaship.local.dataplane.proxy import Request, Response, Route, Server, Upstream, serve
from lambdaship.local.dataplane.workers import Workers

_ALL = frozenset({"*"})
_AUTH = frozenset({"authorization", "x-amz-date", "x-amz-security-token", "host"})
_FN = r"/2015-03-31/functions/(?P<name>[^/]+)"


class DataPlane:
    def __init__(self, moto_url: str, state_dir: Path, *, region: str = "us-east-1",
                 account: str = "123456789012", host: str = "127.0.0.1", port: int = 0,
                 backend: Any = None) -> None:
        from lambdaship.local.dataplane.backend import EngineBackend

        self.upstream = Upstream(moto_url)
        self.functions = Functions(CodeStore(state_dir / "code"), region=region, account=account)
        self.logs = LogWriter()
        routes = self._routes()
        self.server = Server((host, port), self.upstream, routes)
        self.url = f"http://{host}:{self.server.server_address[1]}"
        self.workers = Workers(backend or EngineBackend())
        self.invoker = Invoker(self.functions, self.workers, self.logs)
        self.apis = Apis(self.functions, self.invoker, self.url)
        self.upstream.on_write = self._on_write
        self._locks: dict[str, threading.Lock] = {}
        self._locks_lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def _routes(self) -> list[Route]:
        def r(methods: set[str] | frozenset[str], pattern: str, handler: Any) -> Route:
            return Route(frozenset(methods), re.compile(pattern), handler)

        return [
            r({"POST"}, rf"^{_FN}/invocations/?$", lambda req: self.invoker.handle(req)),
            r({"POST"}, r"^/2015-03-31/functions/?$", lambda req: self._record(req, nested=True)),
            r({"PUT"}, rf"^{_FN}/code/?$", lambda req: self._update_code(req)),
            r({"POST"}, rf"^{_FN}/versions/?$", lambda req: self._publish(req)),
            r(_ALL, r"^/restapis/(?P<api>[^/]+)/(?P<stage>[^/]+)/_user_request_(?P<path>/.*)?$",
              lambda req: self.apis.rest(req)),
            r(_ALL, r"^/httpapis/(?P<api>[^/]+)/(?P<stage>[^/]+)/_user_request_(?P<path>/.*)?$",
              lambda req: self.apis.http(req)),
            r(_ALL, r"^/lambda-url/(?P<url_id>[^/]+)(?P<path>/.*)?$", lambda req: self.apis.function_url(req)),
            r({"GET"}, r"^/_lambdaship/dataplane/?$", lambda req: self._info()),
            r({"GET"}, r"^/_lambdaship/endpoints/?$", lambda req: self._endpoints()),
            r({"POST"}, r"^/_lambdaship/flush/?$", lambda req: self._flush()),
        ]

    # ---- internal routes -------------------------------------------------------------------
    def _record(self, req: Request, *, nested: bool) -> None:
        record_code(self.functions.store, req.body, nested)
        return None  # moto answers

    # moto publishes whatever $LATEST runs: it ignores PublishVersion's CodeSha256 (and its
    # RevisionId never changes). Lambda refuses when $LATEST's code is no longer the one named;
    # so does the data plane: the check and the publish hold the function's lock, which every
    # UpdateFunctionCode takes too, so no code change lands in between.
    def _function_lock(self, name: str) -> threading.Lock:
        from urllib.parse import unquote

        name = unquote(name)  # a name, a partial ARN or an ARN (its ":" %-encoded in the path)
        name = name.split(":")[6] if name.startswith("arn:") and name.count(":") >= 6 else name.split(":")[0]
        with self._locks_lock:
            return self._locks.setdefault(name, threading.Lock())

    def _update_code(self, req: Request) -> Response:
        record_code(self.functions.store, req.body, False)
        with self._function_lock(req.match["name"]):
            return self._forward(req)

    def _publish(self, req: Request) -> Response:
        import json

        try:
            wanted = json.loads(req.body or b"{}").get("CodeSha256")
        except (ValueError, AttributeError):
            wanted = None
        name = req.match["name"]
        with self._function_lock(name):
            if isinstance(wanted, str) and wanted:
                current = self.upstream.client.get(f"/2015-03-31/functions/{name}/configuration",
                                                   headers=[(k, v) for k, v in req.headers if k.lower() in _AUTH])
                latest = current.json().get("CodeSha256") if current.status_code == 200 else wanted
                if latest != wanted:
                    msg = (f"CodeSha256 {wanted} does not match the function's current code "
                           f"({latest}); publish the code you updated")
                    return Response(412, [("Content-Type", "application/json"),
                                          ("X-Amzn-ErrorType", "PreconditionFailedException")],
                                    json.dumps({"Type": "User", "message": msg}).encode())
            return self._forward(req)

    def _forward(self, req: Request) -> Response:
        """``req`` sent to moto, its whole answer read (small JSON), as the answer to give."""
        from lambdaship.local.dataplane.proxy import HOP_BY_HOP

        headers = [(k, v) for k, v in req.headers if k.lower() not in HOP_BY_HOP and k.lower() != "content-length"]
        resp = self.upstream.send(req.method, req.target, headers, req.body)
        try:
            body = resp.read()
        finally:
            resp.close()
        return Response(resp.status_code, [(k, v) for k, v in resp.headers.items()
                                           if k.lower() not in HOP_BY_HOP and k.lower() != "content-length"], body)

    def _on_write(self, method: str, target: str) -> None:
        self.functions.invalidate()
        m = re.match(rf"^{_FN}/?(\?.*)?$", target)
        if method == "DELETE" and m and "Qualifier=" not in target:
            self.workers.drop_function(m.group("name"))

    def _info(self) -> Response:
        import json

        data = {"pid": os.getpid(), "url": self.url, "moto": self.upstream.url, "invocations": self.invoker.count,
                "log_errors": self.logs.errors, "backend": type(self.workers.backend).__name__,
                **self.workers.stats()}
        return Response(200, [("Content-Type", "application/json")], json.dumps(data).encode())

    def _endpoints(self) -> Response:
        import json

        from lambdaship.local.dataplane.urls import endpoints

        return Response(200, [("Content-Type", "application/json")], json.dumps(endpoints(self.url)).encode())

    def _flush(self) -> Response:
        ok = self.logs.flush(10)
        return Response(200 if ok else 504, [("Content-Type", "application/json")], b'{"flushed": %s}' % (
            b"true" if ok else b"false"))

    # ---- lifecycle -------------------------------------------------------------------------
    def start(self) -> DataPlane:
        self._thread = serve(self.server)
        return self

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.invoker.close()
        self.workers.close()
        self.logs.close()
        self.upstream.close()
