"""Smoke test a published version before the alias moves to it.

``event``: invoke with the event; the invocation must not fail (``FunctionError``, or a Lambda
error document ``{"errorType", "errorMessage"}`` as the whole answer).
``path``: invoke with an API Gateway REST proxy event for that path; the answer's
``statusCode`` must be 2xx.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from lambdaship.errors import LambdashipError


class SmokeTestFailed(LambdashipError):
    pass


def proxy_event(path: str, method: str = "GET") -> dict[str, Any]:
    """A REST API (v1) proxy event with the per-route shape Chalice routes by."""
    return {
        "resource": path,
        "path": path,
        "httpMethod": method,
        "headers": {"Accept": "*/*", "Host": "lambdaship.smoke", "User-Agent": "lambdaship-smoke"},
        "multiValueHeaders": {"Accept": ["*/*"], "Host": ["lambdaship.smoke"], "User-Agent": ["lambdaship-smoke"]},
        "queryStringParameters": None,
        "multiValueQueryStringParameters": None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "resourceId": "smoke",
            "resourcePath": path,
            "httpMethod": method,
            "path": path,
            "stage": "smoke",
            "requestId": str(uuid.uuid4()),
            "identity": {"sourceIp": "127.0.0.1", "userAgent": "lambdaship-smoke"},
            "protocol": "HTTP/1.1",
            "apiId": "lambdaship",
        },
        "body": None,
        "isBase64Encoded": False,
    }


def _short(data: bytes) -> str:
    text = data.decode("utf-8", "replace").replace("\n", " ")
    return text if len(text) <= 200 else text[:197] + "..."


def run(function_name: str, qualifier: str, *, event: dict[str, Any] | None = None, path: str | None = None,
        method: str = "GET") -> dict[str, Any]:
    """Invoke ``function_name:qualifier``; raise :class:`SmokeTestFailed` with the reason."""
    from lambdaship.aws import lambda_

    payload = proxy_event(path, method) if path is not None else (event or {})
    what = f"{method} {path}" if path is not None else "event"
    from lambdaship.aws.errors import streaming_error_type

    ResponseStreamingError = streaming_error_type()

    try:
        error, body = lambda_.invoke(function_name, qualifier, payload)
    except ResponseStreamingError:  # the answer was cut mid-body (boto3 does not retry that): ask once more
        error, body = lambda_.invoke(function_name, qualifier, payload)
    try:
        answer = json.loads(body) if body else None
    except ValueError:
        answer = None
    looks_failed = isinstance(answer, dict) and {"errorType", "errorMessage"} <= set(answer) and set(answer) <= {
        "errorType", "errorMessage", "stackTrace", "requestId", "cause"}
    if error or looks_failed:
        detail = answer.get("errorMessage") if isinstance(answer, dict) else _short(body)
        raise SmokeTestFailed(
            f"smoke test ({what}) failed on version {qualifier}: {error or answer.get('errorType')}: {detail}",
        )
    if path is not None:
        status = answer.get("statusCode") if isinstance(answer, dict) else None
        if not isinstance(status, int) or not 200 <= status < 300:
            raise SmokeTestFailed(
                f"smoke test ({what}) failed on version {qualifier}: expected a 2xx statusCode, got "
                f"{status if status is not None else 'no statusCode: ' + _short(body)}"
            )
        return {"kind": "path", "path": path, "method": method, "status": status}
    return {"kind": "event", "ok": True}
