"""The local HTTP server of ``serve`` / ``run``: plain HTTP in, API Gateway's behaviour
(:mod:`lambdaship.apigateway`: events, access checks, responses) around one function.

* REST API proxy integration, payload v1 (default), or HTTP API payload v2.
* Driven by the app's :class:`~lambdaship.apigateway.model.AppModel` (Chalice's own route
  table) when one is given: 403 ``Missing Authentication Token`` for an unknown path or a
  method the resource lacks (OPTIONS included, unless the route has CORS: then the preflight
  from its ``CORSConfig``); API keys and authorizers before the integration; a function error
  answers 502, a timeout 504, as API Gateway does.
* ``POST /2015-03-31/functions/function/invocations`` is the Runtime Interface Emulator's
  endpoint (what ``curl`` against ``docker run -p 9000:8080`` uses): the raw payload in, the
  function's raw result out (errors with ``X-Amz-Function-Error: Unhandled``).
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from lambdaship.apigateway import rules
from lambdaship.apigateway.access import ApiSettings, check_access
from lambdaship.apigateway.events import build_event_v1, build_event_v2
from lambdaship.apigateway.responses import HttpResponse, cors_preflight, json_response, response_from_result
from lambdaship.apigateway.routes import Route, match_route, routes_from_model
from lambdaship.local.invocation import InvokeResult
from lambdaship.local.runtime_http import read_body

if TYPE_CHECKING:
    from lambdaship.apigateway.model import AppModel

RIE_PATH = re.compile(r"^/2015-03-31/functions/[^/]+/invocations/?$")

Invoker = Callable[[bytes], InvokeResult]


class Gateway:
    """Translates HTTP requests for one function; thread-safe."""

    def __init__(self, invoke: Invoker, *, routes: list[Route] | None = None, http_api_v2: bool = False,
                 api: ApiSettings | None = None) -> None:
        self.invoke = invoke
        self.routes = routes
        self.v2 = http_api_v2
        self.api = api or ApiSettings()
        self.lock = threading.Lock()

    @classmethod
    def from_model(cls, invoke: Invoker, model: AppModel, *, http_api_v2: bool = False, **settings: Any) -> Gateway:
        return cls(invoke, routes=routes_from_model(model), http_api_v2=http_api_v2,
                   api=ApiSettings.from_model(model, **settings))

    def set_routes(self, routes: list[Route] | None) -> None:
        with self.lock:
            self.routes = routes

    def set_model(self, model: AppModel) -> None:
        """Reload: the app's routes and API settings from a new model (same keys/invoker)."""
        import dataclasses

        with self.lock:
            self.routes = routes_from_model(model)
            self.api = dataclasses.replace(self.api, binary_types=model.binary_types if model.is_chalice else None,
                                           authorizers=model.authorizers, stage=model.stage)

    def handle(self, method: str, target: str, headers: list[tuple[str, str]], body: bytes,
               source_ip: str = "127.0.0.1") -> HttpResponse:
        path = urlsplit(target).path
        if method == "POST" and RIE_PATH.match(path):
            result = self.invoke(body or b"{}")
            extra = [] if result.ok else [("X-Amz-Function-Error", "Unhandled")]
            return HttpResponse(200, [("Content-Type", "application/json"), *extra], result.payload)
        host = next((v for k, v in headers if k.lower() == "host"), "localhost")
        routes, api = self.routes, self.api
        decoded = unquote(path) or "/"
        extra_ctx: dict[str, Any] = {}
        if routes is not None:
            matched = match_route(routes, decoded)
            if matched is None:
                return json_response(403, rules.MISSING_TOKEN)
            route, params = matched
            if method == "OPTIONS" and route.cors and "OPTIONS" not in route.methods:
                return cors_preflight(route)
            if method not in route.methods and "ANY" not in route.methods:
                return json_response(403, rules.MISSING_TOKEN)
            denied = self._check_access(route, method, decoded, headers, extra_ctx)
            if denied is not None:
                return denied
            resource, route_key = route.path, f"{method} {route.path}"
        else:
            resource, route_key = "/{proxy+}", "$default"
            params = {"proxy": decoded.lstrip("/")} if decoded != "/" else {}
        if self.v2:
            event = build_event_v2(method, target, headers, body, route_key=route_key, path_params=params,
                                   source_ip=source_ip, host=host)
        else:
            event = build_event_v1(method, target, headers, body, resource=resource, path_params=params,
                                   source_ip=source_ip, host=host, binary_types=api.binary_types)
            ctx = event["requestContext"]
            ctx["apiId"], ctx["stage"], ctx["path"] = api.api_id, api.stage, f"/{api.stage}{event['path']}"
            if "apiKey" in extra_ctx:
                ctx["identity"]["apiKey"] = extra_ctx["apiKey"]
            if "authorizer" in extra_ctx:
                ctx["authorizer"] = extra_ctx["authorizer"]
        result = self.invoke(json.dumps(event).encode())
        return response_from_result(result, v2=self.v2, binary_types=None if self.v2 else api.binary_types,
                                    accept=rules.first_accept(headers))

    def _check_access(self, route: Route, method: str, path: str, headers: list[tuple[str, str]],
                      extra_ctx: dict[str, Any]) -> HttpResponse | None:
        name = route.authorizer_for(method)
        auth = next((a for a in self.api.authorizers if a.name == name), None) if name else None
        return check_access(self.api, method in route.api_key, auth, method, path, headers, extra_ctx)


class _GatewayServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], gateway: Gateway) -> None:
        self.gateway = gateway
        super().__init__(address, _GatewayHandler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass


class _GatewayHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: _GatewayServer
    access_log: Callable[[str], None] | None = None

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _handle(self) -> None:
        body = read_body(self)
        t0 = time.perf_counter()
        try:
            resp = self.server.gateway.handle(self.command, self.path, list(self.headers.items()), body,
                                              self.client_address[0])
        except Exception as exc:  # never let one request kill the server
            resp = json_response(500, {"message": f"local gateway error: {exc}"})
        self.send_response_only(resp.status)
        skip = {"content-length", "transfer-encoding", "connection"}
        for k, v in resp.headers:
            if k.lower() not in skip:
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(resp.body)))
        self._headers_buffer.append(b"\r\n" + (resp.body if self.command != "HEAD" else b""))
        self.flush_headers()
        log = type(self).access_log
        if log is not None:
            log(f"{self.command} {self.path} -> {resp.status} ({(time.perf_counter() - t0) * 1000:.1f} ms)")

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _handle


def make_server(gateway: Gateway, host: str = "127.0.0.1", port: int = 9000,
                access_log: Callable[[str], None] | None = None) -> ThreadingHTTPServer:
    handler = type("GatewayHandler", (_GatewayHandler,), {"access_log": staticmethod(access_log)
                                                           if access_log else None})
    server = _GatewayServer((host, port), gateway)
    server.RequestHandlerClass = handler
    return server
