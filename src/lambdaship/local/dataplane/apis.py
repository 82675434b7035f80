"""The local HTTP entry points: REST API stages, HTTP APIs and Function URLs.

URLs (on the stack's endpoint, see docs/cli/local.md):

* REST API stage:  ``{endpoint}/restapis/{api_id}/{stage}/_user_request_/{path}``  → v1 proxy events
* HTTP API:        ``{endpoint}/httpapis/{api_id}/{stage}/_user_request_/{path}``  → v2 events
  (``$default`` is a stage name like any other here)
* Function URL:    ``{endpoint}/lambda-url/{url_id}/{path}``  → v2 events
  (``url_id`` is the first label of the function URL moto reports)

Routing is read from moto's API Gateway: a REST request matches the API's resources (most
specific first, ``{param}`` and ``{proxy+}``) and the resource's method (or ``ANY``); the
integration's URI names the function and qualifier. The event has the shape Chalice's own
deployment gets (``resource`` / ``requestContext.resourcePath`` = the matched resource). The
Lambda resource policy is enforced as API Gateway experiences it: without an ``Allow`` of
``lambda:InvokeFunction`` to ``apigateway.amazonaws.com`` whose ``AWS:SourceArn`` matches
``arn:aws:execute-api:{region}:{account}:{api_id}/{stage}/{METHOD}/{resource}`` on the exact
(qualified) function ARN the integration calls, the request answers 500
``{"message": "Internal server error"}``. An unknown path or method answers 403 ``Missing
Authentication Token``, an unknown API or stage 403 ``Forbidden``.
"""

from __future__ import annotations

import fnmatch
import json
from typing import Any
from urllib.parse import unquote

from lambdaship.apigateway import rules
from lambdaship.apigateway.events import build_event_v1, build_event_v2
from lambdaship.apigateway.responses import response_from_result
from lambdaship.apigateway.routes import Route, match_route
from lambdaship.local.dataplane.functions import CodeMissing, Functions, NotFound
from lambdaship.local.dataplane.invoke import Invoker
from lambdaship.local.dataplane.proxy import Request, Response
from lambdaship.local.invocation import InvokeResult
from lambdaship.patterns import INTEGRATION_URI_RE


def _json(status: int, data: Any, extra: list[tuple[str, str]] | None = None) -> Response:
    return Response(status, [("Content-Type", "application/json"), *(extra or [])], json.dumps(data).encode())


FORBIDDEN = {"message": "Forbidden"}
MISSING_TOKEN = {"message": "Missing Authentication Token"}
INTERNAL = {"message": "Internal server error"}


def allowed(statements: list[dict[str, Any]], function_arn: str, source_arn: str,
            principal: str = "apigateway.amazonaws.com", action: str = "lambda:InvokeFunction") -> bool:
    """Does the resource policy let ``principal`` call ``function_arn`` from ``source_arn``?"""
    for st in statements:
        if st.get("Effect") != "Allow":
            continue
        actions = st.get("Action") or []
        actions = [actions] if isinstance(actions, str) else actions
        if not any(fnmatch.fnmatchcase(action, a) for a in actions):
            continue
        who = st.get("Principal")
        services = (who.get("Service") if isinstance(who, dict) else who) or []
        services = [services] if isinstance(services, str) else services
        if principal not in services and "*" not in services:
            continue
        resource = str(st.get("Resource") or "")
        if resource.endswith(":$LATEST"):
            resource = resource[: -len(":$LATEST")]
        if not fnmatch.fnmatchcase(function_arn, resource):
            continue
        cond = st.get("Condition") or {}
        arns = [v for op in ("ArnLike", "ArnEquals", "StringLike", "StringEquals")
                for k, v in (cond.get(op) or {}).items() if k.lower() == "aws:sourcearn"]
        flat = [a for v in arns for a in ([v] if isinstance(v, str) else v)]
        if not flat or any(fnmatch.fnmatchcase(source_arn, a) for a in flat):
            return True
    return False


def target_of(uri: str) -> tuple[str, str | None] | None:
    """(function name, qualifier) an integration URI calls, or None when it is not a Lambda one."""
    m = INTEGRATION_URI_RE.search(uri or "")
    arn = m.group("arn") if m else (uri if (uri or "").startswith("arn:aws:lambda:") else None)
    if arn is None:
        return None
    parts = arn.split(":")
    if len(parts) < 7:
        return None
    return parts[6], (parts[7] if len(parts) > 7 and parts[7] else None)


class Apis:
    def __init__(self, functions: Functions, invoker: Invoker, endpoint: str) -> None:
        self.functions = functions
        self.invoker = invoker
        self.endpoint = endpoint

    # ---- shared ---------------------------------------------------------------------------
    def _call(self, name: str, qualifier: str | None, source_arn: str, event: dict[str, Any], *,
              v2: bool, principal: str | None = "apigateway.amazonaws.com", action: str = "lambda:InvokeFunction",
              denied: Response | None = None, binary: tuple[tuple[str, ...] | None, str] = (None, "")) -> Response:
        """Check the resource policy, then run the function with ``event`` (``principal=None``: no check)."""
        if principal is not None:
            try:
                statements = self.functions.policy(name)
            except Exception:
                statements = []
            if not allowed(statements, self.functions.arn(name, qualifier), source_arn, principal, action):
                return denied or _json(500, INTERNAL)
        try:
            target = self.functions.resolve(name, qualifier)
        except (NotFound, CodeMissing):
            return _json(500, INTERNAL)
        out, _ = self.invoker.run(target, json.dumps(event).encode())
        result = InvokeResult(out.request_id, out.payload, out.function_error, out.duration_ms, out.timed_out)
        r = response_from_result(result, v2=v2, binary_types=binary[0], accept=binary[1])
        return Response(r.status, list(r.headers), r.body)

    # ---- REST APIs -------------------------------------------------------------------------
    def _rest(self, api: str) -> tuple[list[Route], dict[str, dict[str, Any]]]:
        from lambdaship.aws import apigw

        def load() -> tuple[list[Route], dict[str, dict[str, Any]]]:
            resources = apigw.list_resources(api)
            by_path = {r["path"]: r for r in resources}
            routes = [Route(r["path"], tuple(sorted((r.get("resourceMethods") or {}).keys()))) for r in resources]
            return sorted(routes, key=lambda r: r.specificity, reverse=True), by_path
        return self.functions.cached(("rest", api), load)

    def _stage(self, api: str, stage: str, v2: bool) -> dict[str, Any] | None:
        from lambdaship.aws import apigw

        def load() -> dict[str, Any] | None:
            try:
                return apigw.get_stage_v2(api, stage) if v2 else apigw.get_stage(api, stage)
            except Exception:
                return None
        return self.functions.cached(("stage", "v2" if v2 else "v1", api, stage), load)

    def rest(self, req: Request) -> Response:
        assert req.match is not None
        api, stage = req.match.group("api"), unquote(req.match.group("stage"))
        rest_path = req.match.group("path") or "/"
        query = req.target.split("?", 1)[1] if "?" in req.target else ""
        stage_info = self._stage(api, stage, v2=False)
        if stage_info is None:
            return _json(403, FORBIDDEN)
        routes, by_path = self._rest(api)
        matched = match_route(routes, unquote(rest_path))
        if matched is None:
            return _json(403, MISSING_TOKEN)
        route, params = matched
        methods = by_path[route.path].get("resourceMethods") or {}
        method_key = req.method if req.method in methods else ("ANY" if "ANY" in methods else None)
        if method_key is None:
            return _json(403, MISSING_TOKEN)
        integration = methods[method_key].get("methodIntegration") or {}
        checked = self._checks(api, stage, methods[method_key], req, unquote(rest_path))  # issue 18 (API's hook)
        if isinstance(checked[0], Response):
            return checked[0]
        if integration.get("type") == "MOCK":
            return self._mock(integration)
        target = target_of(integration.get("uri", ""))
        if integration.get("type") != "AWS_PROXY" or target is None:
            return _json(500, INTERNAL)
        host = req.header("Host", "localhost")
        event = build_event_v1(req.method, rest_path + (f"?{query}" if query else ""), req.headers, req.body,
                               resource=route.path, path_params=params, source_ip=req.client_ip, host=host,
                               binary_types=checked[2])
        ctx = event["requestContext"]
        ctx.update({"stage": stage, "apiId": api, "resourceId": by_path[route.path]["id"],
                    "path": f"/{stage}{unquote(rest_path)}"})
        event["stageVariables"] = stage_info.get("variables") or None
        ctx["identity"]["apiKey"] = checked[1].get("apiKey")
        if "authorizer" in checked[1]:
            ctx["authorizer"] = checked[1]["authorizer"]
        source = (f"arn:aws:execute-api:{self.functions.region}:{self.functions.account}:{api}/{stage}/"
                  f"{req.method}{route.path}")
        return self._call(target[0], target[1], source, event, v2=False,
                          binary=(checked[2], rules.first_accept(req.headers)))

    def _checks(self, api: str, stage: str, method: dict[str, Any], req: Request, path: str
                ) -> tuple[Response | None, dict[str, Any], tuple[str, ...] | None]:
        """API Gateway's checks before the integration (lambdaship.local.dataplane.restapi): (answer or None,
        context for the event, the API's binary media types)."""
        from lambdaship.apigateway.access import check_access
        from lambdaship.local.dataplane.restapi import rest_settings

        def invoke_arn(arn: str, payload: bytes) -> InvokeResult:
            parts = arn.split(":")
            out, _ = self.invoker.run(self.functions.resolve(parts[6], parts[7] if len(parts) > 7 else None), payload)
            return InvokeResult(out.request_id, out.payload, out.function_error, out.duration_ms, out.timed_out)

        settings, by_id = self.functions.cached(("rest-settings", api, stage), lambda: rest_settings(
            api, stage, invoke_arn, region=self.functions.region))
        extra: dict[str, Any] = {}
        denied = check_access(settings, bool(method.get("apiKeyRequired")), by_id.get(method.get("authorizerId", "")),
                              req.method, path, req.headers, extra)
        answer = Response(denied.status, list(denied.headers), denied.body) if denied is not None else None
        return answer, extra, settings.binary_types

    @staticmethod
    def _mock(integration: dict[str, Any]) -> Response:
        resp = (integration.get("integrationResponses") or {}).get("200") or {}
        headers = [(k.rsplit(".", 1)[1], str(v).strip("'"))
                   for k, v in (resp.get("responseParameters") or {}).items()
                   if k.startswith("method.response.header.")]
        return Response(200, [("Content-Type", "application/json"), *headers], b"")

    # ---- HTTP APIs -------------------------------------------------------------------------
    def _http(self, api: str) -> tuple[list[Route], dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
        from lambdaship.aws import apigw

        def load() -> tuple[list[Route], dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
            by_key = {r["RouteKey"]: r for r in apigw.list_routes_v2(api)}
            methods: dict[str, set[str]] = {}
            for key in by_key:
                if " " in key:
                    method, path = key.split(" ", 1)
                    methods.setdefault(path, set()).add(method)
            routes = sorted((Route(p, tuple(sorted(m))) for p, m in methods.items()),
                            key=lambda r: r.specificity, reverse=True)
            integrations = {i["IntegrationId"]: i for i in apigw.list_integrations_v2(api)}
            return routes, by_key, integrations
        return self.functions.cached(("http", api), load)

    def http(self, req: Request) -> Response:
        assert req.match is not None
        api, stage = req.match.group("api"), unquote(req.match.group("stage"))
        path = req.match.group("path") or "/"
        query = req.target.split("?", 1)[1] if "?" in req.target else ""
        if self._stage(api, stage, v2=True) is None:
            return _json(404, {"message": "Not Found"})
        routes, by_key, integrations = self._http(api)
        matched = match_route(routes, unquote(path))
        route_key, params = "$default", None
        if matched is not None:
            route, params = matched
            for key in (f"{req.method} {route.path}", f"ANY {route.path}"):
                if key in by_key:
                    route_key = key
                    break
        entry = by_key.get(route_key)
        if entry is None:
            return _json(404, {"message": "Not Found"})
        integration = integrations.get(str(entry.get("Target", "")).removeprefix("integrations/")) or {}
        target = target_of(integration.get("IntegrationUri", ""))
        if target is None:
            return _json(500, INTERNAL)
        host = req.header("Host", "localhost")
        target_path = path + (f"?{query}" if query else "")
        v2 = str(integration.get("PayloadFormatVersion") or "2.0") == "2.0"
        if v2:
            event = build_event_v2(req.method, target_path, req.headers, req.body, route_key=route_key,
                                   path_params=params, source_ip=req.client_ip, host=host)
        else:
            event = build_event_v1(req.method, target_path, req.headers, req.body,
                                   resource=route_key.split(" ", 1)[-1], path_params=params,
                                   source_ip=req.client_ip, host=host)
        event["requestContext"].update({"stage": stage, "apiId": api})
        resource = route_key.split(" ", 1)[1] if " " in route_key else "$default"
        source = (f"arn:aws:execute-api:{self.functions.region}:{self.functions.account}:{api}/{stage}/"
                  + (f"{req.method}{resource}" if resource != "$default" else "$default"))
        return self._call(target[0], target[1], source, event, v2=v2)

    # ---- Function URLs ---------------------------------------------------------------------
    def _urls(self) -> dict[str, dict[str, Any]]:
        from lambdaship.aws import lambda_

        def load() -> dict[str, dict[str, Any]]:
            out: dict[str, dict[str, Any]] = {}
            for name in lambda_.list_function_names():
                for cfg in lambda_.list_url_configs(name):
                    url_id = str(cfg.get("FunctionUrl", "")).split("//", 1)[-1].split(".", 1)[0]
                    out[url_id] = cfg
            return out
        return self.functions.cached(("urls",), load)

    def function_url(self, req: Request) -> Response:
        assert req.match is not None
        cfg = self._urls().get(req.match.group("url_id"))
        if cfg is None:
            return _json(403, {"Message": "Forbidden"})
        target = target_of(cfg.get("FunctionArn", ""))
        if target is None:
            return _json(500, INTERNAL)
        path = req.match.group("path") or "/"
        query = req.target.split("?", 1)[1] if "?" in req.target else ""
        host = str(cfg.get("FunctionUrl", "")).split("//", 1)[-1].rstrip("/")
        event = build_event_v2(req.method, path + (f"?{query}" if query else ""), req.headers, req.body,
                               route_key="$default", path_params=None, source_ip=req.client_ip, host=host)
        event["requestContext"].update({"apiId": req.match.group("url_id"), "domainName": host,
                                        "domainPrefix": req.match.group("url_id")})
        forbidden = _json(403, {"Message": "Forbidden"})
        if cfg.get("AuthType") == "AWS_IAM":  # signed requests are not verified locally, only required
            if not req.header("Authorization"):
                return forbidden
            return self._call(target[0], target[1], "", event, v2=True, principal=None)
        return self._call(target[0], target[1], "", event, v2=True, principal="*",
                          action="lambda:InvokeFunctionUrl", denied=forbidden)
