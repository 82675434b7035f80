"""Plain HTTP requests as API Gateway proxy events: REST API payload v1 and HTTP API payload v2.

Chalice apps get the per-route shape Chalice's own deployment produces (``resource`` and
``requestContext.resourcePath`` hold the matched route template, ``pathParameters`` filled in);
other functions the ``/{proxy+}`` shape. Bodies are base64 as API Gateway decides it.
"""

from __future__ import annotations

import base64
import time
import uuid
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from lambdaship.apigateway import rules
from lambdaship.names import LOCAL_ACCOUNT as ACCOUNT_ID

TEXT_TYPES = ("text/", "application/json", "application/xml", "application/javascript",
              "application/x-www-form-urlencoded", "+json", "+xml")
STAGE = "api"
API_ID = "local"


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
