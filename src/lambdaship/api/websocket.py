"""A Chalice app's WebSocket API (``on_ws_connect`` / ``on_ws_message`` / ``on_ws_disconnect``):
an API Gateway v2 WEBSOCKET API whose routes ($connect, $default, $disconnect) call the
handler functions ``<function>-<name>`` (same image, the handler as the command) through their
aliases. Observe (read-only) and a pure plan; the steps run with the rest of the app's.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from lambdaship.api.observe import Observed
from lambdaship.api.plan import ApiStep, alias_arn, has_permission, var_ref
from lambdaship.apigateway.model import AppModel
from lambdaship.config import FunctionConfig
from lambdaship.deploy.steps import Later
from lambdaship.names import MANAGED_TAG

WS_VAR = "websocket_api_id"


@dataclass(frozen=True)
class WebsocketState:
    api_id: str | None = None
    routes: Mapping[str, str] = field(default_factory=dict)  # route key -> integration id
    integrations: Mapping[str, str] = field(default_factory=dict)  # integration id -> uri
    stages: tuple[str, ...] = ()


def api_name(model: AppModel) -> str:
    return f"{model.app_name}-websocket-api"


def observe_websocket(fn: FunctionConfig, model: AppModel) -> WebsocketState:
    """The WEBSOCKET API lambdaship tagged for this function, if any."""
    from lambdaship.aws import apigw, events

    if not model.websocket_handlers:
        return WebsocketState()
    apis = [a for a in events.call("apigatewayv2", "GetApis").get("Items", [])
            if a.get("ProtocolType") == "WEBSOCKET" and (a.get("Tags") or {}).get(MANAGED_TAG) == fn.function_name]
    if not apis:
        return WebsocketState()
    api_id = apis[0]["ApiId"]
    routes = {r["RouteKey"]: str(r.get("Target", "")).removeprefix("integrations/")
              for r in apigw.list_routes_v2(api_id)}
    integrations = {i["IntegrationId"]: i.get("IntegrationUri", "") for i in apigw.list_integrations_v2(api_id)}
    return WebsocketState(api_id, routes, integrations, tuple(s["StageName"] for s in apigw.list_stages_v2(api_id)))


def plan_websocket(fn: FunctionConfig, model: AppModel, obs: Observed, ws: WebsocketState) -> list[ApiStep]:
    if not model.websocket_handlers:
        return []
    steps: list[ApiStep] = []
    api_ref: Any = ws.api_id or var_ref(WS_VAR)
    if ws.api_id is None:
        steps.append(ApiStep("apigatewayv2:CreateApi", {
            "Name": api_name(model), "ProtocolType": "WEBSOCKET",
            "RouteSelectionExpression": "$request.body.action", "Tags": {MANAGED_TAG: fn.function_name}},
            "the app's WebSocket API", output=WS_VAR))
    changed = ws.api_id is None
    for i, h in enumerate(model.websocket_handlers):
        name = f"{fn.function_name}-{h['name']}"
        arn = alias_arn(obs, name, fn.alias)
        uri = f"arn:aws:apigateway:{obs.region}:lambda:path/2015-03-31/functions/{arn}/invocations"
        key = h["route_key"]
        have = ws.routes.get(key)
        if have is not None and ws.integrations.get(have) != uri:
            steps.append(ApiStep("apigatewayv2:UpdateIntegration", {"ApiId": api_ref, "IntegrationId": have,
                                                                    "IntegrationUri": uri}, key))
            changed = True
        elif have is None:
            var = f"ws_integration_{i}"
            steps.append(ApiStep("apigatewayv2:CreateIntegration", {
                "ApiId": api_ref, "IntegrationType": "AWS_PROXY", "IntegrationUri": uri}, key, output=var))
            steps.append(ApiStep("apigatewayv2:CreateRoute", {"ApiId": api_ref, "RouteKey": key,
                                                              "Target": Later("integrations/{" + var + "}")}))
            changed = True
        base = f"arn:aws:execute-api:{obs.region}:{obs.account}:"
        source = f"{base}{ws.api_id}/*" if ws.api_id else Later(base + "{" + WS_VAR + "}/*")
        state = obs.functions.get(name)
        if state is None or not has_permission(state.policy, "apigateway.amazonaws.com", source):
            steps.append(ApiStep("lambda:AddPermission", {
                "FunctionName": name, "Qualifier": fn.alias, "StatementId": f"lambdaship-ws-{ws.api_id or 'new'}",
                "Action": "lambda:InvokeFunction", "Principal": "apigateway.amazonaws.com", "SourceArn": source},
                "only the WebSocket API may invoke it"))
    if model.stage not in ws.stages:
        steps.append(ApiStep("apigatewayv2:CreateStage", {"ApiId": api_ref, "StageName": model.stage}))
        changed = True
    if changed:
        steps.append(ApiStep("apigatewayv2:CreateDeployment", {"ApiId": api_ref, "StageName": model.stage}))
    return steps


def ws_url(api_id: str, region: str, stage: str) -> str:
    return f"wss://{api_id}.execute-api.{region}.amazonaws.com/{stage}/"
