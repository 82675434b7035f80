"""Thin wrappers over API Gateway: REST APIs (``apigateway``, v1) and HTTP APIs (``apigatewayv2``).

Only what ``lambdaship migrate`` needs: list the integrations that call a Lambda function,
re-point one, and redeploy a stage. Integrations are re-pointed one route at a time; nothing
here ever creates a ``{proxy+}`` resource.

REST integrations are re-pointed with ``PutIntegration`` carrying every field that
``GetIntegration`` returned (plus its integration responses, put back afterwards), because
``UpdateIntegration`` is not implemented by moto. A REST change only takes effect when a
deployment is created for a stage, so the put-then-restore-responses sequence is never visible
to callers.
"""

from __future__ import annotations

import functools
import os
from typing import Any

from lambdaship.aws.session import client as _client

# GetIntegration output key -> PutIntegration parameter.
_PUT_KEYS = {
    "type": "type",
    "httpMethod": "integrationHttpMethod",
    "uri": "uri",
    "connectionType": "connectionType",
    "connectionId": "connectionId",
    "credentials": "credentials",
    "requestParameters": "requestParameters",
    "requestTemplates": "requestTemplates",
    "passthroughBehavior": "passthroughBehavior",
    "cacheNamespace": "cacheNamespace",
    "cacheKeyParameters": "cacheKeyParameters",
    "contentHandling": "contentHandling",
    "timeoutInMillis": "timeoutInMillis",
    "tlsConfig": "tlsConfig",
}
_RESPONSE_KEYS = ("selectionPattern", "responseParameters", "responseTemplates", "contentHandling")


def _strip(resp: dict[str, Any]) -> dict[str, Any]:
    resp = dict(resp)
    resp.pop("ResponseMetadata", None)
    return resp


@functools.cache
def _cached(service: str, endpoint: str | None, region: str | None) -> Any:
    from botocore.config import Config

    # API Gateway's control plane throttles hard (a few requests per second per account);
    # a Chalice app with many routes makes one Get+Put per route: adaptive retries pace them.
    return _client(service, config=Config(retries={"max_attempts": 8, "mode": "adaptive"}))


def _c(service: str) -> Any:
    """One client per service (and endpoint/region): creating a boto3 client costs ~0.1-0.4 s."""
    return _cached(service, os.environ.get("AWS_ENDPOINT_URL"), os.environ.get("AWS_REGION"))


def rest() -> Any:
    return _c("apigateway")


def http() -> Any:
    return _c("apigatewayv2")


# ---- REST APIs (v1) ---------------------------------------------------------------------------
def list_rest_apis() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for page in rest().get_paginator("get_rest_apis").paginate():
        out.extend(page.get("items", []))
    return out


def list_resources(api_id: str) -> list[dict[str, Any]]:
    """Every resource of the API with its methods and their integrations embedded."""
    out: list[dict[str, Any]] = []
    for page in rest().get_paginator("get_resources").paginate(restApiId=api_id, embed=["methods"]):
        out.extend(page.get("items", []))
    return out


def get_integration(api_id: str, resource_id: str, method: str) -> dict[str, Any]:
    return _strip(rest().get_integration(restApiId=api_id, resourceId=resource_id, httpMethod=method))


def put_integration(api_id: str, resource_id: str, method: str, integration: dict[str, Any]) -> dict[str, Any]:
    """Write ``integration`` (a GetIntegration result, possibly with another uri) back, responses included."""
    c = rest()
    params = {put: integration[get] for get, put in _PUT_KEYS.items() if integration.get(get) not in (None, "", [], {})}
    out = _strip(c.put_integration(restApiId=api_id, resourceId=resource_id, httpMethod=method, **params))
    for status, resp in (integration.get("integrationResponses") or {}).items():
        extra = {k: resp[k] for k in _RESPONSE_KEYS if resp.get(k) not in (None, "", {})}
        c.put_integration_response(
            restApiId=api_id, resourceId=resource_id, httpMethod=method, statusCode=status, **extra
        )
    return out


def list_stages(api_id: str) -> list[dict[str, Any]]:
    return list(rest().get_stages(restApiId=api_id).get("item", []))


def get_stage(api_id: str, stage: str) -> dict[str, Any]:
    return _strip(rest().get_stage(restApiId=api_id, stageName=stage))


def list_deployments(api_id: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for page in rest().get_paginator("get_deployments").paginate(restApiId=api_id):
        out.extend(page.get("items", []))
    return out


def create_deployment(api_id: str, stage: str, description: str = "") -> str:
    """Deploy the API's current configuration to ``stage``; the new deployment's id."""
    return str(rest().create_deployment(restApiId=api_id, stageName=stage, description=description)["id"])


def set_stage_deployment(api_id: str, stage: str, deployment_id: str) -> None:
    """Point ``stage`` back at an existing deployment (how a redeploy is undone)."""
    rest().update_stage(
        restApiId=api_id,
        stageName=stage,
        patchOperations=[{"op": "replace", "path": "/deploymentId", "value": deployment_id}],
    )


def delete_deployment(api_id: str, deployment_id: str) -> None:
    rest().delete_deployment(restApiId=api_id, deploymentId=deployment_id)


def execute_api_arn(region: str, account: str, api_id: str) -> str:
    return f"arn:aws:execute-api:{region}:{account}:{api_id}"


# ---- HTTP APIs (v2) ---------------------------------------------------------------------------
def _pages_v2(method: str, key: str, **params: Any) -> list[dict[str, Any]]:
    fn = getattr(http(), method)
    out: list[dict[str, Any]] = []
    token: str | None = None
    while True:
        resp = fn(**params, **({"NextToken": token} if token else {}))
        out.extend(resp.get(key, []))
        token = resp.get("NextToken")
        if not token:
            return out


def list_http_apis() -> list[dict[str, Any]]:
    return [a for a in _pages_v2("get_apis", "Items") if a.get("ProtocolType", "HTTP") == "HTTP"]


def list_integrations_v2(api_id: str) -> list[dict[str, Any]]:
    return _pages_v2("get_integrations", "Items", ApiId=api_id)


def list_routes_v2(api_id: str) -> list[dict[str, Any]]:
    return _pages_v2("get_routes", "Items", ApiId=api_id)


def set_integration_uri_v2(api_id: str, integration_id: str, uri: str) -> dict[str, Any]:
    return _strip(http().update_integration(ApiId=api_id, IntegrationId=integration_id, IntegrationUri=uri))


def list_stages_v2(api_id: str) -> list[dict[str, Any]]:
    return _pages_v2("get_stages", "Items", ApiId=api_id)


def create_deployment_v2(api_id: str, stage: str, description: str = "") -> str:
    return str(http().create_deployment(ApiId=api_id, StageName=stage, Description=description)["DeploymentId"])


def set_stage_deployment_v2(api_id: str, stage: str, deployment_id: str) -> None:
    http().update_stage(ApiId=api_id, StageName=stage, DeploymentId=deployment_id)


def get_integration_v2(api_id: str, integration_id: str) -> dict[str, Any]:
    return _strip(http().get_integration(ApiId=api_id, IntegrationId=integration_id))


def get_stage_v2(api_id: str, stage: str) -> dict[str, Any]:
    return _strip(http().get_stage(ApiId=api_id, StageName=stage))


# ---- generic (the API deploy's steps, lambdaship.api) ------------------------------------------
def call(operation: str, **params: Any) -> dict[str, Any]:
    """One REST API (``apigateway``) call by its AWS name (``CreateResource``), result without metadata."""
    import re

    return _strip(getattr(rest(), re.sub(r"(?<!^)(?=[A-Z])", "_", operation).lower())(**params))
