"""A function's answer as API Gateway turns it into an HTTP response (502 for a malformed one,
504 for a timeout), and the CORS preflight answer of a Chalice route."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lambdaship.apigateway import rules

if TYPE_CHECKING:
    from lambdaship.apigateway.routes import Route
    from lambdaship.local.invocation import InvokeResult

CORS_ALLOW_HEADERS = rules.DEFAULT_CORS["Access-Control-Allow-Headers"]


@dataclass
class HttpResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


def json_response(status: int, data: Any, extra: list[tuple[str, str]] | None = None) -> HttpResponse:
    return HttpResponse(status, [("Content-Type", "application/json"), *(extra or [])], json.dumps(data).encode())


def response_from_result(result: InvokeResult, *, v2: bool = False, binary_types: tuple[str, ...] | None = None,
                         accept: str = "") -> HttpResponse:
    """Turn the function's answer into an HTTP response, as API Gateway does.

    ``binary_types`` (a REST API's binary media types): an ``isBase64Encoded`` body is decoded
    only when ``accept`` (the request's first Accept type) is one of them, else the client gets
    the base64 text. None: always decoded (HTTP APIs, Function URLs)."""
    if result.timed_out:
        return json_response(504, {"message": "Endpoint request timed out"})
    if not result.ok:
        return json_response(502, {"message": "Internal server error"})
    try:
        data = json.loads(result.payload) if result.payload else None
    except ValueError:
        data = None
        if not v2:
            return json_response(502, {"message": "Internal server error"})
    if v2 and not (isinstance(data, dict) and "statusCode" in data):
        # HTTP API v2 infers a 200 JSON response from any other value.
        body = result.payload if data is None or not isinstance(data, str) else data.encode()
        return HttpResponse(200, [("Content-Type", "application/json")], body)
    if not isinstance(data, dict) or "statusCode" not in data:
        return json_response(502, {"message": "Internal server error"})
    try:
        status = int(data["statusCode"])
    except (TypeError, ValueError):
        return json_response(502, {"message": "Internal server error"})
    headers: list[tuple[str, str]] = []
    single = data.get("headers") or {}
    multi = data.get("multiValueHeaders") or {}
    if not isinstance(single, dict) or not isinstance(multi, dict):
        return json_response(502, {"message": "Internal server error"})
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
            return json_response(502, {"message": "Internal server error"})
    else:
        body = (raw if isinstance(raw, str) else json.dumps(raw)).encode()
    if not any(k.lower() == "content-type" for k, _ in headers):
        headers.append(("Content-Type", "application/json"))  # API Gateway's default
    return HttpResponse(status, headers, body)


def cors_preflight(route: Route) -> HttpResponse:
    """What the OPTIONS mock integration Chalice deploys for a CORS route answers: built from
    that route's ``CORSConfig`` (``Max-Age`` only when configured)."""
    headers = dict(route.cors_headers) if route.cors_headers is not None else rules.DEFAULT_CORS
    methods = list(route.cors_methods or route.methods)
    return HttpResponse(200, rules.preflight_headers(headers, methods), b"")  # a MOCK without a response template
