"""What ``status`` shows of an app besides its function (read-only): the REST API's URL and
routes, the functions ``<function>-<name>`` on the same image and their triggers, the
Function URL. Found without importing the app: Chalice's deployed.json, then lambdaship's tag."""

from __future__ import annotations

from typing import Any

from lambdaship.api.plan import api_url
from lambdaship.config import FunctionConfig, is_chalice_app
from lambdaship.names import MANAGED_TAG


def _api(fn: FunctionConfig, region: str) -> dict[str, Any] | None:
    from lambdaship.api.observe import chalice_deployed_api
    from lambdaship.aws import apigw

    apis = {a["id"]: a for a in apigw.list_rest_apis()}
    api_id = chalice_deployed_api(fn.source, "dev")
    if api_id not in apis:
        api_id = next((i for i, a in apis.items() if (a.get("tags") or {}).get(MANAGED_TAG) == fn.function_name),
                      None)
    if api_id is None:
        return None
    stages = [s["stageName"] for s in apigw.list_stages(api_id)]
    routes = sorted(f"{m} {r['path']}" for r in apigw.list_resources(api_id)
                    for m in (r.get("resourceMethods") or {}) if m != "OPTIONS")
    return {"api_id": api_id, "stages": stages, "urls": [api_url(api_id, region, s) for s in stages],
            "routes": routes}


def _triggers(fn: FunctionConfig) -> tuple[list[str], list[str]]:
    from lambdaship.aws import events, lambda_

    prefix = f"{fn.function_name}-"
    extras = sorted(n for n in lambda_.list_function_names() if n.startswith(prefix))
    names = [fn.function_name, *extras]
    lines: list[str] = []
    for m in events.list_event_source_mappings():
        fname = str(m.get("FunctionArn", "")).split(":")[6] if m.get("FunctionArn") else ""
        if fname in names:
            lines.append(f"{m.get('EventSourceArn')} → {fname} ({m.get('State')})")
    for name in names:
        alias = lambda_.get_alias(name, fn.alias)
        if alias is None:
            continue
        for rule in events.list_rule_names_by_target(alias["AliasArn"], "default"):
            lines.append(f"rule {rule} → {name}")
    return extras, lines


def app_status(fn: FunctionConfig) -> dict[str, Any] | None:
    from lambdaship.aws import lambda_, session

    url = None
    try:
        url = lambda_.client().get_function_url_config(FunctionName=fn.function_name, Qualifier=fn.alias)
    except Exception as exc:
        if "ResourceNotFound" not in str(exc) and "ResourceNotFound" not in type(exc).__name__:
            raise
    if not is_chalice_app(fn.source) and url is None:
        return None
    region = session.region() or "us-east-1"
    functions, triggers = _triggers(fn) if is_chalice_app(fn.source) else ([], [])
    return {"api": _api(fn, region) if is_chalice_app(fn.source) else None, "functions": functions,
            "triggers": triggers, "function_url": url.get("FunctionUrl") if url else None,
            "websocket_urls": _websocket(fn, region) if is_chalice_app(fn.source) else []}


def _websocket(fn: FunctionConfig, region: str) -> list[str]:
    from lambdaship.api.websocket import ws_url
    from lambdaship.aws import apigw, events

    out = []
    for a in events.call("apigatewayv2", "GetApis").get("Items", []):
        if a.get("ProtocolType") == "WEBSOCKET" and (a.get("Tags") or {}).get(MANAGED_TAG) == fn.function_name:
            out += [ws_url(a["ApiId"], region, st["StageName"]) for st in apigw.list_stages_v2(a["ApiId"])]
    return out


def render(app: dict[str, Any] | None) -> list[str]:
    if not app:
        return []
    lines = []
    api = app.get("api")
    if api:
        lines.append(f"  API            {', '.join(api['urls']) or api['api_id'] + ' (no stage)'}")
        lines.extend(f"    {r}" for r in api["routes"])
    if app.get("function_url"):
        lines.append(f"  function URL   {app['function_url']}")
    lines.extend(f"  WebSocket      {u}" for u in app.get("websocket_urls") or [])
    if app.get("functions"):
        lines.append(f"  functions      {', '.join(app['functions'])}")
    lines.extend(f"  trigger        {t}" for t in app.get("triggers") or [])
    return lines
