"""The local URLs of everything callable over HTTP on the stack (served at
``/_lambdaship/endpoints``; ``local.stack`` asks for them, for ``local status`` and deploy)."""

from __future__ import annotations

from typing import Any


def endpoints(endpoint: str, function: str | None = None) -> list[dict[str, Any]]:
    """REST API stages, HTTP API stages and Function URLs, with the function each one calls.

    ``function``: only the entry points that call it (any qualifier).
    """
    from lambdaship.aws import apigw, lambda_
    from lambdaship.local.dataplane.apis import target_of

    out: list[dict[str, Any]] = []
    for api in apigw.list_rest_apis():
        fns = sorted({t[0] for r in apigw.list_resources(api["id"]) for m in (r.get("resourceMethods") or {}).values()
                      if (t := target_of((m.get("methodIntegration") or {}).get("uri", "")))})
        for st in apigw.list_stages(api["id"]):
            out.append({"kind": "rest", "api_id": api["id"], "name": api.get("name"), "stage": st["stageName"],
                        "functions": fns,
                        "url": f"{endpoint}/restapis/{api['id']}/{st['stageName']}/_user_request_/"})
    for api in apigw.list_http_apis():
        fns = sorted({t[0] for i in apigw.list_integrations_v2(api["ApiId"])
                      if (t := target_of(i.get("IntegrationUri", "")))})
        for st in apigw.list_stages_v2(api["ApiId"]):
            out.append({"kind": "http", "api_id": api["ApiId"], "name": api.get("Name"), "stage": st["StageName"],
                        "functions": fns,
                        "url": f"{endpoint}/httpapis/{api['ApiId']}/{st['StageName']}/_user_request_/"})
    for name in lambda_.list_function_names():
        for cfg in lambda_.list_url_configs(name):
            url_id = str(cfg.get("FunctionUrl", "")).split("//", 1)[-1].split(".", 1)[0]
            out.append({"kind": "function-url", "functions": [name], "auth": cfg.get("AuthType"),
                        "url": f"{endpoint}/lambda-url/{url_id}/"})
    if function is not None:
        out = [e for e in out if function in e["functions"]]
    return out
