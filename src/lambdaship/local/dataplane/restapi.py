"""API Gateway's checks for a REST API as deployed (read from the stack's API Gateway), for the
local stack's REST URLs: the same :func:`lambdaship.apigateway.access.check_access` rules that
``serve`` applies from the app's model — API keys of the stage's usage plans, TOKEN/REQUEST
and Cognito authorizers, the API's binary media types."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lambdaship.apigateway.access import ApiSettings
from lambdaship.apigateway.model import AuthorizerModel
from lambdaship.local.invocation import InvokeResult
from lambdaship.patterns import INTEGRATION_URI_RE


def _authorizer(a: dict[str, Any]) -> AuthorizerModel:
    header = str(a.get("identitySource") or "method.request.header.Authorization").rsplit(".", 1)[-1]
    if a.get("type") == "COGNITO_USER_POOLS":
        return AuthorizerModel(name=a["name"], kind="cognito", header=header,
                               provider_arns=tuple(a.get("providerARNs") or ()))
    m = INTEGRATION_URI_RE.search(a.get("authorizerUri") or "")
    return AuthorizerModel(name=a["name"], kind="custom", header=header, handler=m.group("arn") if m else None,
                           ttl_seconds=a.get("authorizerResultTtlInSeconds"))


def _keys(api_id: str, stage: str) -> frozenset[str]:
    from lambdaship.aws import apigw

    values: set[str] = set()
    for plan in apigw.call("GetUsagePlans").get("items", []):
        if not any(s.get("apiId") == api_id and s.get("stage") == stage for s in plan.get("apiStages") or []):
            continue
        for k in apigw.call("GetUsagePlanKeys", usagePlanId=plan["id"]).get("items", []):
            key = apigw.call("GetApiKey", apiKey=k["id"], includeValue=True)
            if key.get("enabled", True) and key.get("value"):
                values.add(key["value"])
    return frozenset(values)


def rest_settings(api_id: str, stage: str, invoke_arn: Callable[[str, bytes], InvokeResult], *,
                  region: str) -> tuple[ApiSettings, dict[str, AuthorizerModel]]:
    """The stage's settings for :func:`check_access` and its authorizers by id; ``invoke_arn``
    runs an authorizer function (its qualified ARN) with a payload."""
    from lambdaship.aws import apigw

    api = apigw.call("GetRestApi", restApiId=api_id)
    by_id = {a["id"]: _authorizer(a) for a in apigw.call("GetAuthorizers", restApiId=api_id).get("items", [])}
    keys = _keys(api_id, stage)
    settings = ApiSettings(binary_types=tuple(api.get("binaryMediaTypes") or ()), authorizers=tuple(by_id.values()),
                           api_keys=lambda: keys, invoke_handler=invoke_arn, api_id=api_id, stage=stage,
                           region=region)
    return settings, by_id
