"""API Gateway's rules for a REST API, as plain functions the local gateway applies.

Each rule is one documented behaviour of API Gateway (see LAMBDA_FACTS.md, "API Gateway
behaviour a local gateway must copy"): the answers for unknown resources and methods, API keys,
Lambda (TOKEN) authorizers and their policies, CORS preflight from a route's ``CORSConfig``, and
when a base64 body from the integration is decoded.
"""

from __future__ import annotations

import base64
import fnmatch
import json
from typing import Any

MISSING_TOKEN = {"message": "Missing Authentication Token"}
FORBIDDEN = {"message": "Forbidden"}
UNAUTHORIZED = {"message": "Unauthorized"}
NOT_AUTHORIZED = {"Message": "User is not authorized to access this resource"}
EXPLICIT_DENY = {"Message": "User is not authorized to access this resource with an explicit deny"}
# CORSConfig() with no arguments (what ``cors=True`` means), Chalice 1.x.
DEFAULT_CORS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Headers": "Authorization,Content-Type,X-Amz-Date,X-Amz-Security-Token,X-Api-Key",
}


def preflight_headers(cors: dict[str, str], methods: list[str]) -> list[tuple[str, str]]:
    """The OPTIONS mock integration Chalice's swagger defines: Allow-Methods = the CORS methods +
    OPTIONS (in the route's order), then exactly the route's ``get_access_control_headers()``."""
    allowed = ",".join([m for m in methods if m != "OPTIONS"] + ["OPTIONS"])
    return [("Content-Type", "application/json"), ("Access-Control-Allow-Methods", allowed), *cors.items()]


def first_accept(headers: list[tuple[str, str]]) -> str:
    accept = next((v for k, v in headers if k.lower() == "accept"), "")
    return accept.split(",")[0].split(";")[0].strip().lower()


def is_binary_accept(accept: str, binary_types: tuple[str, ...] | list[str]) -> bool:
    """API Gateway decodes an ``isBase64Encoded`` body only when the request's first ``Accept``
    type matches one of the API's binary media types (which may hold wildcards)."""
    return bool(accept) and any(fnmatch.fnmatchcase(accept, t.lower()) for t in binary_types)


def method_arn(region: str, account: str, api_id: str, stage: str, method: str, path: str) -> str:
    return f"arn:aws:execute-api:{region}:{account}:{api_id}/{stage}/{method}/{path.lstrip('/')}"


def token_event(token: str, arn: str) -> dict[str, Any]:
    return {"type": "TOKEN", "authorizationToken": token, "methodArn": arn}


def _matches(resource: str, arn: str) -> bool:
    # IAM-style wildcards: '*' any run of characters, '?' one character.
    return fnmatch.fnmatchcase(arn, resource)


def evaluate_policy(result: dict[str, Any], arn: str) -> tuple[int, dict[str, Any] | None]:
    """(0, context) when the authorizer's policy allows ``arn``; else (403, body)."""
    doc = result.get("policyDocument") if isinstance(result, dict) else None
    statements = (doc or {}).get("Statement") if isinstance(doc, dict) else None
    if not isinstance(statements, list) or "principalId" not in result:
        return 500, {"message": None}
    allowed = False
    for st in statements:
        if not isinstance(st, dict):
            continue
        resources = st.get("Resource")
        resources = [resources] if isinstance(resources, str) else resources or []
        actions = st.get("Action")
        actions = [actions] if isinstance(actions, str) else actions or []
        if not any(a in ("execute-api:Invoke", "execute-api:*", "*") for a in actions):
            continue
        if any(isinstance(r, str) and _matches(r, arn) for r in resources):
            if str(st.get("Effect", "")).lower() == "deny":
                return 403, EXPLICIT_DENY
            allowed = allowed or str(st.get("Effect", "")).lower() == "allow"
    if not allowed:
        return 403, NOT_AUTHORIZED
    context = {k: v for k, v in (result.get("context") or {}).items() if isinstance(v, str | int | float | bool)}
    return 0, {**context, "principalId": result["principalId"]}


def jwt_claims(token: str) -> dict[str, Any] | None:
    """The (unverified) claims of a JWT, as a Cognito authorizer puts them in
    ``requestContext.authorizer.claims``. Locally nothing can verify the signature."""
    parts = token.removeprefix("Bearer ").split(".")
    if len(parts) != 3:
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, TypeError):
        return None
    return {k: str(v) for k, v in data.items()} if isinstance(data, dict) else None
