"""Plain HTTP ↔ API Gateway proxy events, and the local HTTP server of ``serve`` / ``run``.

* REST API proxy integration, payload v1 (default), or HTTP API payload v2.
* Chalice apps get the per-route shape Chalice's own deployment produces: ``resource`` and
  ``requestContext.resourcePath`` hold the matched route template (``/items/{item_id}``) and
  ``pathParameters`` are filled in. Routes are read statically (``ast``) from ``@app.route``
  decorators in ``app.py``, so this works for images too. Other functions get the
  ``/{proxy+}`` shape.
* API Gateway's answers (:mod:`lambdaship.api.rules`), driven by the app's
  :class:`~lambdaship.api.model.AppModel` (Chalice's own route table) when one is given:
  403 ``Missing Authentication Token`` for an unknown path or a method the resource lacks
  (OPTIONS included, unless the route has CORS: then the preflight from its ``CORSConfig``);
  403 ``Forbidden`` for an ``api_key_required`` route without a valid ``x-api-key``; built-in
  (TOKEN) authorizers run before the integration (401 ``Unauthorized`` without the identity
  header, their policy checked, their ``context`` in ``requestContext.authorizer``); an
  ``isBase64Encoded`` answer is decoded only when the first ``Accept`` type is one of the
  API's binary media types. A function error answers 502 ``{"message": "Internal server
  error"}``, a timeout 504 ``{"message": "Endpoint request timed out"}``, as API Gateway does.
* ``POST /2015-03-31/functions/function/invocations`` is the Runtime Interface Emulator's
  endpoint (what ``curl`` against ``docker run -p 9000:8080`` uses): the raw payload in, the
  function's raw result out (errors with ``X-Amz-Function-Error: Unhandled``).
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote, urlsplit

from lambdaship.api import rules
from lambdaship.api.routes import Route, chalice_routes, match_route, routes_from_model
from lambdaship.local.runtime_api import ACCOUNT_ID, InvokeResult, read_body

if TYPE_CHECKING:
    from lambdaship.api.model import AppModel, AuthorizerModel

__all__ = ["ApiSettings", "Gateway", "HttpResponse", "Route", "build_event_v1", "build_event_v2", "chalice_routes",
           "cors_preflight", "make_server", "match_route", "response_from_result", "routes_from_model"]

RIE_PATH = re.compile(r"^/2015-03-31/functions/[^/]+/invocations/?$")
TEXT_TYPES = ("text/", "application/json", "application/xml", "application/javascript",
              "application/x-www-form-urlencoded", "+json", "+xml")
STAGE = "api"
API_ID = "local"

Invoker = Callable[[bytes], InvokeResult]
HandlerInvoker = Callable[[str, bytes], InvokeResult]  # (handler string, payload) -> result

CORS_ALLOW_HEADERS = rules.DEFAULT_CORS["Access-Control-Allow-Headers"]


def cors_preflight(route: Route) -> HttpResponse:
    """What the OPTIONS mock integration Chalice deploys for a CORS route answers: built from
    that route's ``CORSConfig`` (``Max-Age`` only when configured)."""
    headers = dict(route.cors_headers) if route.cors_headers is not None else rules.DEFAULT_CORS
    methods = list(route.cors_methods or route.methods)
    return HttpResponse(200, rules.preflight_headers(headers, methods), b"")  # a MOCK without a response template


def _is_text(content_type: str) -> bool:
    ct = content_type.lower()
    return any(t in ct for t in TEXT_TYPES)


def _body(raw: bytes, content_type: str, binary_types: tuple[str, ...] | None = None) -> tuple[str | None, bool]:
    """The event's body: base64 when the request's Content-Type is one of the REST API's binary
    media types (``binary_types``, as API Gateway decides); without them, when it is not text."""
    if not raw:
        return None, False
    if binary_types is not None:
        ctype = content_type.split(";")[0].strip().lower()
        if ctype and rules.is_binary_accept(ctype, binary_types):
            return base64.b64encode(raw).decode(), True
        return raw.decode("utf-8", "replace"), False
    if _is_text(content_type) or not content_type:
        try:
            return raw.decode("utf-8"), False
        except UnicodeDecodeError:
            pass
    return base64.b64encode(raw).decode(), True


def build_event_v1(method: str, target: str, headers: list[tuple[str, str]], body: bytes, *,
                   resource: str, path_params: dict[str, str] | None, source_ip: str = "127.0.0.1",
                   host: str = "localhost", binary_types: tuple[str, ...] | None = None) -> dict[str, Any]:
    """An API Gateway REST API proxy event (payload format 1.0)."""
    parts = urlsplit(target)
    path = unquote(parts.path) or "/"
    mv_headers: dict[str, list[str]] = {}
    for k, v in headers:
        mv_headers.setdefault(k, []).append(v)
    single = {k: v[-1] for k, v in mv_headers.items()}
    mv_query: dict[str, list[str]] = {}
    for k, v in parse_qsl(parts.query, keep_blank_values=True):
        mv_query.setdefault(k, []).append(v)
    ctype = next((v for k, v in headers if k.lower() == "content-type"), "")
    text, b64 = _body(body, ctype, binary_types)
    now = time.time()
    return {
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "headers": single or None,
        "multiValueHeaders": mv_headers or None,
        "queryStringParameters": {k: v[-1] for k, v in mv_query.items()} or None,
        "multiValueQueryStringParameters": mv_query or None,
        "pathParameters": path_params or None,
        "stageVariables": None,
        "requestContext": {
            "resourceId": "local",
            "resourcePath": resource,
            "httpMethod": method,
            "extendedRequestId": uuid.uuid4().hex[:16],
            "requestTime": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "path": f"/{STAGE}{path}",
            "accountId": ACCOUNT_ID,
            "protocol": "HTTP/1.1",
            "stage": STAGE,
            "domainPrefix": host.split(".")[0].split(":")[0],
            "requestTimeEpoch": int(now * 1000),
            "requestId": str(uuid.uuid4()),
            "identity": {
                "sourceIp": source_ip,
                "userAgent": single.get("User-Agent") or single.get("user-agent"),
                "accountId": None, "caller": None, "user": None, "userArn": None,
                "cognitoIdentityPoolId": None, "cognitoIdentityId": None, "apiKey": None,
                "cognitoAuthenticationType": None, "cognitoAuthenticationProvider": None, "accessKey": None,
            },
            "domainName": host,
            "apiId": API_ID,
        },
        "body": text,
        "isBase64Encoded": b64,
    }


def build_event_v2(method: str, target: str, headers: list[tuple[str, str]], body: bytes, *,
                   route_key: str, path_params: dict[str, str] | None, source_ip: str = "127.0.0.1",
                   host: str = "localhost") -> dict[str, Any]:
    """An API Gateway HTTP API event (payload format 2.0)."""
    parts = urlsplit(target)
    path = unquote(parts.path) or "/"
    merged: dict[str, list[str]] = {}
    cookies: list[str] = []
    for k, v in headers:
        if k.lower() == "cookie":
            cookies.extend(c.strip() for c in v.split(";") if c.strip())
            continue
        merged.setdefault(k.lower(), []).append(v)
    query: dict[str, list[str]] = {}
    for k, v in parse_qsl(parts.query, keep_blank_values=True):
        query.setdefault(k, []).append(v)
    ctype = next((v for k, v in headers if k.lower() == "content-type"), "")
    text, b64 = _body(body, ctype)
    now = time.time()
    user_agent = next((v for k, v in headers if k.lower() == "user-agent"), "")
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": path,
        "rawQueryString": parts.query,
        "headers": {k: ",".join(v) for k, v in merged.items()},
        "requestContext": {
            "accountId": ACCOUNT_ID,
            "apiId": API_ID,
            "domainName": host,
            "domainPrefix": host.split(".")[0].split(":")[0],
            "http": {"method": method, "path": path, "protocol": "HTTP/1.1", "sourceIp": source_ip,
                     "userAgent": user_agent},
            "requestId": str(uuid.uuid4()),
            "routeKey": route_key,
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        },
        "isBase64Encoded": b64,
    }
    if cookies:
        event["cookies"] = cookies
    if query:
        event["queryStringParameters"] = {k: ",".join(v) for k, v in query.items()}
    if path_params:
        event["pathParameters"] = path_params
    if text is not None:
        event["body"] = text
    return event


@dataclass
class HttpResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


def _json_response(status: int, data: Any, extra: list[tuple[str, str]] | None = None) -> HttpResponse:
    return HttpResponse(status, [("Content-Type", "application/json"), *(extra or [])], json.dumps(data).encode())


def response_from_result(result: InvokeResult, *, v2: bool = False, binary_types: tuple[str, ...] | None = None,
                         accept: str = "") -> HttpResponse:
    """Turn the function's answer into an HTTP response, as API Gateway does.

    ``binary_types`` (a REST API's binary media types): an ``isBase64Encoded`` body is decoded
    only when ``accept`` (the request's first Accept type) is one of them, else the client gets
    the base64 text. None: always decoded (HTTP APIs, Function URLs)."""
    if result.timed_out:
        return _json_response(504, {"message": "Endpoint request timed out"})
    if not result.ok:
        return _json_response(502, {"message": "Internal server error"})
    try:
        data = json.loads(result.payload) if result.payload else None
    except ValueError:
        data = None
        if not v2:
            return _json_response(502, {"message": "Internal server error"})
    if v2 and not (isinstance(data, dict) and "statusCode" in data):
        # HTTP API v2 infers a 200 JSON response from any other value.
        body = result.payload if data is None or not isinstance(data, str) else data.encode()
        return HttpResponse(200, [("Content-Type", "application/json")], body)
    if not isinstance(data, dict) or "statusCode" not in data:
        return _json_response(502, {"message": "Internal server error"})
    try:
        status = int(data["statusCode"])
    except (TypeError, ValueError):
        return _json_response(502, {"message": "Internal server error"})
    headers: list[tuple[str, str]] = []
    single = data.get("headers") or {}
    multi = data.get("multiValueHeaders") or {}
    if not isinstance(single, dict) or not isinstance(multi, dict):
        return _json_response(502, {"message": "Internal server error"})
    multi_lower = {k.lower() for k in multi}
    for k, v in single.items():
        if k.lower() not in multi_lower:
            headers.append((str(k), str(v)))
    for k, values in multi.items():
        for v in values if isinstance(values, list) else [values]:
            headers.append((str(k), str(v)))
    for cookie in (data.get("cookies") or []) if v2 else []:
        headers.append(("Set-Cookie", str(cookie)))
    raw = data.get("body")
    if raw is None:
        body = b""
    elif data.get("isBase64Encoded") and binary_types is not None and not rules.is_binary_accept(
            accept, binary_types):
        body = str(raw).encode()
    elif data.get("isBase64Encoded"):
        try:
            body = base64.b64decode(raw)
        except (ValueError, TypeError):
            return _json_response(502, {"message": "Internal server error"})
    else:
        body = (raw if isinstance(raw, str) else json.dumps(raw)).encode()
    if not any(k.lower() == "content-type" for k, _ in headers):
        headers.append(("Content-Type", "application/json"))  # API Gateway's default
    return HttpResponse(status, headers, body)


# ---- server ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class ApiSettings:
    """What of a REST API the gateway needs besides its routes (all optional)."""

    binary_types: tuple[str, ...] | None = None
    authorizers: tuple[AuthorizerModel, ...] = ()
    # Valid x-api-key values; None = any non-empty key (``serve`` knows no keys).
    api_keys: Callable[[], Any] | None = None
    invoke_handler: HandlerInvoker | None = None  # runs an authorizer function (its handler string)
    api_id: str = API_ID
    stage: str = STAGE
    region: str = "us-east-1"

    @classmethod
    def from_model(cls, model: AppModel, **kw: Any) -> ApiSettings:
        return cls(binary_types=model.binary_types if model.is_chalice else None,
                   authorizers=model.authorizers, stage=model.stage, **kw)


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
                return _json_response(403, rules.MISSING_TOKEN)
            route, params = matched
            if method == "OPTIONS" and route.cors and "OPTIONS" not in route.methods:
                return cors_preflight(route)
            if method not in route.methods and "ANY" not in route.methods:
                return _json_response(403, rules.MISSING_TOKEN)
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


def check_access(api: ApiSettings, api_key_required: bool, auth: AuthorizerModel | None, method: str, path: str,
                 headers: list[tuple[str, str]], extra_ctx: dict[str, Any]) -> HttpResponse | None:
    """API keys, then the method's authorizer, as API Gateway checks them before the integration:
    None to go on (``extra_ctx`` gets ``apiKey`` / ``authorizer``), else the answer.

    A built-in (TOKEN) authorizer runs through ``api.invoke_handler(auth.handler, event)``: for
    ``serve`` the handler string, for the local stack the authorizer function's ARN."""
    lower = {k.lower(): v for k, v in headers}
    if api_key_required:
        key = lower.get("x-api-key", "")
        valid = api.api_keys() if api.api_keys is not None else None
        if not key or (valid is not None and key not in valid):
            return _json_response(403, rules.FORBIDDEN)
        extra_ctx["apiKey"] = key
    if auth is None:
        return None
    token = lower.get(auth.header.lower(), "")
    if auth.kind == "iam":
        if not token:
            return _json_response(403, rules.MISSING_TOKEN)
        return None  # a SigV4 signature cannot be checked locally
    if not token:
        return _json_response(401, rules.UNAUTHORIZED)
    if auth.kind == "cognito":
        claims = rules.jwt_claims(token)
        if claims is None:
            return _json_response(401, rules.UNAUTHORIZED)
        extra_ctx["authorizer"] = {"claims": claims}
        return None
    if auth.kind not in ("builtin", "custom") or not auth.handler or api.invoke_handler is None:
        return _json_response(500, {"message": None})
    arn = rules.method_arn(api.region, ACCOUNT_ID, api.api_id, api.stage, method, path)
    result = api.invoke_handler(auth.handler, json.dumps(rules.token_event(token, arn)).encode())
    try:
        data = json.loads(result.payload) if result.payload else None
    except ValueError:
        data = None
    if not result.ok:
        unauthorized = isinstance(data, dict) and data.get("errorMessage") == "Unauthorized"
        return _json_response(401, rules.UNAUTHORIZED) if unauthorized else _json_response(500, {"message": None})
    status, value = rules.evaluate_policy(data if isinstance(data, dict) else {}, arn)
    if status:
        return _json_response(status, value)
    extra_ctx["authorizer"] = value
    return None


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
            resp = _json_response(500, {"message": f"local gateway error: {exc}"})
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
