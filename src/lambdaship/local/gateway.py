"""Plain HTTP ↔ API Gateway proxy events, and the local HTTP server of ``serve`` / ``run``.

* REST API proxy integration, payload v1 (default), or HTTP API payload v2.
* Chalice apps get the per-route shape Chalice's own deployment produces: ``resource`` and
  ``requestContext.resourcePath`` hold the matched route template (``/items/{item_id}``) and
  ``pathParameters`` are filled in. Routes are read statically (``ast``) from ``@app.route``
  decorators in ``app.py``, so this works for images too. Other functions get the
  ``/{proxy+}`` shape.
* A path that matches no route answers 404 ``{"message": "Not Found"}`` (real API Gateway
  answers 403 ``Missing Authentication Token`` for an unknown resource; locally a 404 is what
  a developer expects). A function error answers 502 ``{"message": "Internal server error"}``,
  a timeout 504 ``{"message": "Endpoint request timed out"}``, as API Gateway does.
* ``POST /2015-03-31/functions/function/invocations`` is the Runtime Interface Emulator's
  endpoint (what ``curl`` against ``docker run -p 9000:8080`` uses): the raw payload in, the
  function's raw result out (errors with ``X-Amz-Function-Error: Unhandled``).
"""

from __future__ import annotations

import ast
import base64
import json
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from lambdaship.local.runtime_api import ACCOUNT_ID, InvokeResult, read_body

RIE_PATH = re.compile(r"^/2015-03-31/functions/[^/]+/invocations/?$")
TEXT_TYPES = ("text/", "application/json", "application/xml", "application/javascript",
              "application/x-www-form-urlencoded", "+json", "+xml")
STAGE = "api"
API_ID = "local"

Invoker = Callable[[bytes], InvokeResult]


@dataclass(frozen=True)
class Route:
    """One route template with the methods it accepts (``ANY`` = all)."""

    path: str
    methods: tuple[str, ...]
    cors: bool = False

    @property
    def regex(self) -> re.Pattern[str]:
        parts = []
        for seg in self.path.strip("/").split("/") if self.path.strip("/") else []:
            m = re.fullmatch(r"\{([^}+]+)(\+?)\}", seg)
            if m and m.group(2):
                parts.append("(.+)")
            elif m:
                parts.append("([^/]+)")
            else:
                parts.append(re.escape(seg))
        return re.compile("^/" + "/".join(parts) + "/?$" if parts else "^/$")

    @property
    def specificity(self) -> tuple[int, int, int]:
        segs = [s for s in self.path.split("/") if s]
        literal = sum(1 for s in segs if not s.startswith("{"))
        greedy = sum(1 for s in segs if s.endswith("+}"))
        return (-greedy, literal, len(segs))


def _parse(path: Path) -> ast.Module | None:
    try:
        return ast.parse(path.read_text(encoding="utf-8"), str(path))
    except (OSError, SyntaxError, ValueError):
        return None


def _app_names(tree: ast.Module, kinds: tuple[str, ...]) -> set[str]:
    return {
        t.id
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call) and _call_name(node.value.func) in kinds
        for t in node.targets if isinstance(t, ast.Name)
    }


def _decorated_routes(tree: ast.Module, names: set[str]) -> dict[str, set[str]]:
    routes: dict[str, set[str]] = {}
    for node in ast.walk(tree):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for dec in node.decorator_list:
            if not (isinstance(dec, ast.Call) and isinstance(dec.func, ast.Attribute) and dec.func.attr == "route"
                    and isinstance(dec.func.value, ast.Name) and dec.func.value.id in names):
                continue
            if not dec.args or not isinstance(dec.args[0], ast.Constant) or not isinstance(dec.args[0].value, str):
                continue
            methods: set[str] = {"GET"}
            cors = False
            for kw in dec.keywords:
                if kw.arg == "methods" and isinstance(kw.value, ast.List | ast.Tuple):
                    methods = {e.value.upper() for e in kw.value.elts
                               if isinstance(e, ast.Constant) and isinstance(e.value, str)}
                elif kw.arg == "cors":
                    cors = not (isinstance(kw.value, ast.Constant) and not kw.value.value)
            if cors:
                methods.add(_CORS)
            routes.setdefault(dec.args[0].value, set()).update(methods)
    return routes


def _module_file(app_dir: Path, module: str) -> Path | None:
    base = app_dir.joinpath(*module.split("."))
    for cand in (base.with_suffix(".py"), base / "__init__.py"):
        if cand.is_file():
            return cand
    return None


def _blueprint_routes(app_dir: Path, tree: ast.Module) -> dict[str, set[str]]:
    """Routes of blueprints registered with ``app.register_blueprint(bp, url_prefix=...)``."""
    imported: dict[str, tuple[str, str]] = {}  # local name -> (module, name in module)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                imported[alias.asname or alias.name] = (node.module, alias.name)
    routes: dict[str, set[str]] = {}
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr == "register_blueprint" and node.args):
            continue
        prefix = ""
        for kw in node.keywords:
            if kw.arg == "url_prefix" and isinstance(kw.value, ast.Constant) and isinstance(kw.value.value, str):
                prefix = kw.value.value
        if len(node.args) > 1 and isinstance(node.args[1], ast.Constant) and isinstance(node.args[1].value, str):
            prefix = node.args[1].value
        target = node.args[0]
        if isinstance(target, ast.Name) and target.id in imported:
            module, name = imported[target.id]
            path = _module_file(app_dir, module)
            sub = _parse(path) if path else None
            names = {name} & _app_names(sub, ("Blueprint",)) if sub else set()
        elif isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name) and target.value.id in imported:
            module, name = imported[target.value.id]
            path = _module_file(app_dir, f"{module}.{name}")
            sub = _parse(path) if path else None
            names = {target.attr} & _app_names(sub, ("Blueprint",)) if sub else set()
        elif isinstance(target, ast.Name):
            sub, names = tree, {target.id}
        else:
            continue
        if not sub or not names:
            continue
        for route, methods in _decorated_routes(sub, names).items():
            full = (prefix.rstrip("/") + route) if route != "/" or not prefix else prefix
            routes.setdefault(full or "/", set()).update(methods)
    return routes


def chalice_routes(app_dir: Path) -> list[Route] | None:
    """The routes of the Chalice app in ``app_dir`` (None when it is not a Chalice app).

    Read statically from ``@app.route`` decorators in ``app.py`` and from blueprints
    registered there (``app.register_blueprint(bp, url_prefix=...)``, imported from the app's
    own modules); nothing of the app is imported.
    """
    tree = _parse(app_dir / "app.py")
    if tree is None:
        return None
    app_names = _app_names(tree, ("Chalice",))
    if not app_names:
        return None
    routes = _decorated_routes(tree, app_names)
    for path, methods in _blueprint_routes(app_dir, tree).items():
        routes.setdefault(path, set()).update(methods)
    # app.api.cors = True turns CORS on for every route
    global_cors = any(
        isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) and node.value.value is True
        and any(isinstance(t, ast.Attribute) and t.attr == "cors" and isinstance(t.value, ast.Attribute)
                and t.value.attr == "api" for t in node.targets)
        for node in ast.walk(tree)
    )
    out = [Route(p, tuple(sorted(m - {_CORS})), cors=global_cors or _CORS in m) for p, m in routes.items()]
    return sorted(out, key=lambda r: r.specificity, reverse=True)


_CORS = "<cors>"
CORS_ALLOW_HEADERS = "Authorization,Content-Type,X-Amz-Date,X-Amz-Security-Token,X-Api-Key"


def cors_preflight(route: Route) -> HttpResponse:
    """What the OPTIONS mock integration Chalice deploys for a ``cors=True`` route answers."""
    methods = ",".join(sorted({*route.methods, "OPTIONS"}))
    return HttpResponse(200, [("Content-Type", "application/json"), ("Access-Control-Allow-Origin", "*"),
                              ("Access-Control-Allow-Methods", methods),
                              ("Access-Control-Allow-Headers", CORS_ALLOW_HEADERS),
                              ("Access-Control-Max-Age", "600")], b"{}")


def _call_name(func: ast.expr) -> str:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return ""


def match_route(routes: list[Route], path: str) -> tuple[Route, dict[str, str]] | None:
    for route in routes:
        m = route.regex.match(path)
        if m:
            names = re.findall(r"\{([^}+]+)\+?\}", route.path)
            return route, {n: unquote(v) for n, v in zip(names, m.groups(), strict=True)}
    return None


# ---- events ---------------------------------------------------------------------------------
def _is_text(content_type: str) -> bool:
    ct = content_type.lower()
    return any(t in ct for t in TEXT_TYPES)


def _body(raw: bytes, content_type: str) -> tuple[str | None, bool]:
    if not raw:
        return None, False
    if _is_text(content_type) or not content_type:
        try:
            return raw.decode("utf-8"), False
        except UnicodeDecodeError:
            pass
    return base64.b64encode(raw).decode(), True


def build_event_v1(method: str, target: str, headers: list[tuple[str, str]], body: bytes, *,
                   resource: str, path_params: dict[str, str] | None, source_ip: str = "127.0.0.1",
                   host: str = "localhost") -> dict[str, Any]:
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
    text, b64 = _body(body, ctype)
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


def response_from_result(result: InvokeResult, *, v2: bool = False) -> HttpResponse:
    """Turn the function's answer into an HTTP response, as API Gateway does."""
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
class Gateway:
    """Translates HTTP requests for one function; thread-safe."""

    def __init__(self, invoke: Invoker, *, routes: list[Route] | None = None, http_api_v2: bool = False) -> None:
        self.invoke = invoke
        self.routes = routes
        self.v2 = http_api_v2
        self.lock = threading.Lock()

    def set_routes(self, routes: list[Route] | None) -> None:
        with self.lock:
            self.routes = routes

    def handle(self, method: str, target: str, headers: list[tuple[str, str]], body: bytes,
               source_ip: str = "127.0.0.1") -> HttpResponse:
        path = urlsplit(target).path
        if method == "POST" and RIE_PATH.match(path):
            result = self.invoke(body or b"{}")
            extra = [] if result.ok else [("X-Amz-Function-Error", "Unhandled")]
            return HttpResponse(200, [("Content-Type", "application/json"), *extra], result.payload)
        host = next((v for k, v in headers if k.lower() == "host"), "localhost")
        routes = self.routes
        decoded = unquote(path) or "/"
        if routes is not None:
            matched = match_route(routes, decoded)
            if matched is None:
                return _json_response(404, {"message": "Not Found"})
            route, params = matched
            if method == "OPTIONS" and route.cors and "OPTIONS" not in route.methods:
                return cors_preflight(route)
            resource, route_key = route.path, f"{method} {route.path}"
        else:
            resource, route_key = "/{proxy+}", "$default"
            params = {"proxy": decoded.lstrip("/")} if decoded != "/" else {}
        if self.v2:
            event = build_event_v2(method, target, headers, body, route_key=route_key, path_params=params,
                                   source_ip=source_ip, host=host)
        else:
            event = build_event_v1(method, target, headers, body, resource=resource, path_params=params,
                                   source_ip=source_ip, host=host)
        result = self.invoke(json.dumps(event).encode())
        return response_from_result(result, v2=self.v2)


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
