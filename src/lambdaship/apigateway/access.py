"""API Gateway's checks before the integration: API keys, then the method's authorizer (TOKEN /
REQUEST functions, Cognito JWTs, IAM), with the answers API Gateway gives (401, 403, 500)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lambdaship.apigateway import rules
from lambdaship.apigateway.events import API_ID, STAGE
from lambdaship.apigateway.responses import HttpResponse, json_response
from lambdaship.names import LOCAL_ACCOUNT as ACCOUNT_ID

if TYPE_CHECKING:
    from lambdaship.apigateway.model import AppModel, AuthorizerModel
    from lambdaship.local.invocation import InvokeResult

HandlerInvoker = Callable[[str, bytes], "InvokeResult"]  # (handler string, payload) -> result


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
            return json_response(403, rules.FORBIDDEN)
        extra_ctx["apiKey"] = key
    if auth is None:
        return None
    token = lower.get(auth.header.lower(), "")
    if auth.kind == "iam":
        if not token:
            return json_response(403, rules.MISSING_TOKEN)
        return None  # a SigV4 signature cannot be checked locally
    if not token:
        return json_response(401, rules.UNAUTHORIZED)
    if auth.kind == "cognito":
        claims = rules.jwt_claims(token)
        if claims is None:
            return json_response(401, rules.UNAUTHORIZED)
        extra_ctx["authorizer"] = {"claims": claims}
        return None
    if auth.kind not in ("builtin", "custom") or not auth.handler or api.invoke_handler is None:
        return json_response(500, {"message": None})
    arn = rules.method_arn(api.region, ACCOUNT_ID, api.api_id, api.stage, method, path)
    result = api.invoke_handler(auth.handler, json.dumps(rules.token_event(token, arn)).encode())
    try:
        data = json.loads(result.payload) if result.payload else None
    except ValueError:
        data = None
    if not result.ok:
        unauthorized = isinstance(data, dict) and data.get("errorMessage") == "Unauthorized"
        return json_response(401, rules.UNAUTHORIZED) if unauthorized else json_response(500, {"message": None})
    status, value = rules.evaluate_policy(data if isinstance(data, dict) else {}, arn)
    if status:
        return json_response(status, value)
    extra_ctx["authorizer"] = value
    return None
