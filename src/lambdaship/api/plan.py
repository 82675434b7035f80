"""Plan the REST API of a Chalice app (pure): the app's swagger (Chalice's own, targeting the
alias) + the observed API → the calls that make the API match it, and only those.

The swagger is applied as explicit resource/method/integration/authorizer calls rather than
one ``PutRestApi``: a redeploy then changes only what differs (an unchanged app plans
nothing, not even a deployment), a removed route is deleted, and the same plan runs on moto,
whose ``PutRestApi`` accepts only OpenAPI 3 and ignores authorizers, API keys and binary types.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lambdaship.api.observe import ApiState, MethodState, Observed
from lambdaship.apigateway.model import AppModel
from lambdaship.config import FunctionConfig
from lambdaship.deploy.steps import Later, Step
from lambdaship.names import MANAGED_TAG

# The deploy's plan vocabulary: a step's result field (``OUTPUTS[action]``) is stored in ``output``.
ApiStep = Step


# The result field an output variable takes, per action.
OUTPUTS = {"apigateway:CreateRestApi": "id", "apigateway:CreateResource": "id", "apigateway:CreateAuthorizer": "id",
           "apigateway:CreateDeployment": "id", "apigateway:CreateUsagePlan": "id", "apigateway:CreateApiKey": "id",
           "lambda:PublishVersion": "Version", "events:PutRule": "RuleArn",
           "lambda:CreateFunctionUrlConfig": "FunctionUrl", "apigatewayv2:CreateApi": "ApiId",
           "apigatewayv2:CreateIntegration": "IntegrationId"}
API_VAR = "rest_api_id"


@dataclass
class ApiPlan:
    steps: list[ApiStep] = field(default_factory=list)
    api_id: str | None = None
    adopted: str | None = None
    stage: str = "api"
    url: str | None = None  # None until the API exists
    routes: list[str] = field(default_factory=list)
    triggers: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"api_id": self.api_id, "adopted": self.adopted, "stage": self.stage, "url": self.url,
                "routes": self.routes, "triggers": self.triggers, "steps": [s.to_json() for s in self.steps]}


def alias_arn(obs: Observed, name: str, alias: str) -> str:
    return f"arn:aws:lambda:{obs.region}:{obs.account}:function:{name}:{alias}"


def api_url(api_id: str, region: str, stage: str) -> str:
    return f"https://{api_id}.execute-api.{region}.amazonaws.com/{stage}/"


# ---- what the swagger asks for ----------------------------------------------------------------
@dataclass(frozen=True)
class DesiredMethod:
    authorization_type: str
    authorizer: str | None
    api_key_required: bool
    integration: dict[str, Any]
    response_values: tuple[tuple[str, str], ...] = ()  # the mock OPTIONS integration's CORS headers

    @property
    def response_parameters(self) -> dict[str, bool]:
        return {k: False for k, _ in self.response_values}


def _integration(x: dict[str, Any]) -> dict[str, Any]:
    kind = str(x.get("type", "")).upper()
    out: dict[str, Any] = {"type": kind,
                           "passthroughBehavior": str(x.get("passthroughBehavior", "WHEN_NO_MATCH")).upper()}
    if kind == "AWS_PROXY":
        out.update(uri=x["uri"], integrationHttpMethod="POST")
    if x.get("requestTemplates"):
        out["requestTemplates"] = x["requestTemplates"]
    if x.get("contentHandling"):
        out["contentHandling"] = x["contentHandling"]
    return out


def desired_methods(swagger: dict[str, Any]) -> dict[str, dict[str, DesiredMethod]]:
    defs = swagger.get("securityDefinitions") or {}
    out: dict[str, dict[str, DesiredMethod]] = {}
    for path, ops in (swagger.get("paths") or {}).items():
        for verb, op in ops.items():
            names = [n for sec in op.get("security") or [] for n in sec]
            auth = next((n for n in names if n != "api_key"), None)
            authtype = "NONE"
            if auth is not None:
                kind = defs.get(auth, {}).get("x-amazon-apigateway-authtype")
                authtype = {"awsSigv4": "AWS_IAM", "cognito_user_pools": "COGNITO_USER_POOLS"}.get(kind, "CUSTOM")
            x = op.get("x-amazon-apigateway-integration") or {}
            params = (x.get("responses", {}).get("default", {}) or {}).get("responseParameters") or {}
            out.setdefault(path, {})[verb.upper()] = DesiredMethod(
                authtype, auth if authtype != "AWS_IAM" else None, "api_key" in names, _integration(x),
                tuple(sorted(params.items())))
    return out


def desired_authorizers(swagger: dict[str, Any]) -> dict[str, dict[str, Any]]:
    out = {}
    for name, d in (swagger.get("securityDefinitions") or {}).items():
        a = d.get("x-amazon-apigateway-authorizer")
        if not a:
            continue
        spec: dict[str, Any] = {"name": name, "identitySource": f"method.request.header.{d.get('name')}"}
        if a.get("type") == "cognito_user_pools":
            spec.update(type="COGNITO_USER_POOLS", providerARNs=list(a.get("providerARNs") or []))
        else:
            spec.update(type="TOKEN", authorizerUri=a["authorizerUri"],
                        authorizerResultTtlInSeconds=int(a.get("authorizerResultTtlInSeconds", 300)))
            if a.get("authorizerCredentials"):
                spec["authorizerCredentials"] = a["authorizerCredentials"]
        out[name] = spec
    return out


# ---- planning ---------------------------------------------------------------------------------
def var_ref(name: str) -> Later:
    return Later("{" + name + "}")


def _api_ref(api: ApiState) -> Any:
    return api.api_id or var_ref(API_VAR)


def _authorizer_steps(want: dict[str, dict[str, Any]], api: ApiState, steps: list[ApiStep]) -> dict[str, Any]:
    ids: dict[str, Any] = {}
    for name, spec in want.items():
        have = api.authorizers.get(name)
        if have is None:
            var = f"authorizer_{len(ids)}"
            steps.append(ApiStep("apigateway:CreateAuthorizer", {"restApiId": _api_ref(api), **spec},
                                 f"authorizer {name}", output=var))
            ids[name] = var_ref(var)
            continue
        ids[name] = have["id"]
        ops = [{"op": "replace", "path": f"/{k}", "value": str(v) if not isinstance(v, list) else ",".join(v)}
               for k, v in spec.items() if k not in ("name", "type") and have.get(k) != v]
        if ops:
            steps.append(ApiStep("apigateway:UpdateAuthorizer", {"restApiId": api.api_id, "authorizerId": have["id"],
                                                                 "patchOperations": ops}, f"authorizer {name}"))
    return ids


def _method_steps(api: ApiState, path: str, res_id: Any, verb: str, want: DesiredMethod, have: MethodState | None,
                  auth_ids: dict[str, Any], steps: list[ApiStep]) -> None:
    auth_id = auth_ids.get(want.authorizer) if want.authorizer else None
    same_method = have is not None and (have.authorization_type, have.api_key_required) == (
        want.authorization_type, want.api_key_required) and (auth_id is None or have.authorizer_id == auth_id)
    same_integ = have is not None and have.integration_type == want.integration["type"] and (
        have.integration_uri == want.integration.get("uri"))
    if same_method and same_integ and want.integration["type"] != "MOCK":
        return
    if same_method and same_integ and have is not None and have.response_values == want.response_values:
        return
    ref = {"restApiId": _api_ref(api), "resourceId": res_id, "httpMethod": verb}
    where = f"{verb} {path}"
    if not same_method:
        if have is not None:
            steps.append(ApiStep("apigateway:DeleteMethod", dict(ref), f"{where}: authorization changed"))
        put: dict[str, Any] = {**ref, "authorizationType": want.authorization_type,
                               "apiKeyRequired": want.api_key_required}
        if auth_id is not None:
            put["authorizerId"] = auth_id
        steps.append(ApiStep("apigateway:PutMethod", put, where))
        steps.append(ApiStep("apigateway:PutMethodResponse", {**ref, "statusCode": "200",
                                                              "responseParameters": want.response_parameters}))
    steps.append(ApiStep("apigateway:PutIntegration", {**ref, **want.integration},
                         f"{where} → {'the alias' if want.integration['type'] == 'AWS_PROXY' else 'CORS preflight'}"))
    if want.integration["type"] == "MOCK":
        steps.append(ApiStep("apigateway:PutIntegrationResponse", {
            **ref, "statusCode": "200", "responseParameters": dict(want.response_values)}))


def plan_rest_api(fn: FunctionConfig, model: AppModel, obs: Observed) -> ApiPlan:
    """Every call that makes the observed API match the app's swagger."""
    api = obs.api
    out = ApiPlan(api_id=api.api_id, adopted=api.adopted, stage=model.stage,
                  url=api_url(api.api_id, obs.region, model.stage) if api.api_id else None)
    if not model.routes or model.swagger is None:
        return out
    swagger = model.swagger
    out.routes = [f"{r.method} {r.path}" for r in model.routes]
    steps = out.steps
    if api.api_id is None:
        steps.append(ApiStep("apigateway:CreateRestApi", {
            "name": model.app_name, "endpointConfiguration": {"types": ["EDGE"]},
            "tags": {MANAGED_TAG: fn.function_name}}, "the app's REST API", output=API_VAR))
    # Binary media types as patch operations for a new API too (moto's CreateRestApi drops them).
    ops = [{"op": "add", "path": f"/binaryMediaTypes/{t.replace('/', '~1')}", "value": t}
           for t in model.binary_types if t not in api.binary_types]
    ops += [{"op": "remove", "path": f"/binaryMediaTypes/{t.replace('/', '~1')}", "value": t}
            for t in api.binary_types if t not in model.binary_types]
    if ops:
        steps.append(ApiStep("apigateway:UpdateRestApi", {"restApiId": _api_ref(api), "patchOperations": ops},
                             "binary media types"))
    # An adopted API is not tagged: the rule that found it (deployed.json, integrations) finds it again.
    auth_ids = _authorizer_steps(desired_authorizers(swagger), api, steps)
    want = desired_methods(swagger)
    _resource_steps(api, want, auth_ids, steps)
    for name, have in api.authorizers.items():
        if name not in auth_ids:
            steps.append(ApiStep("apigateway:DeleteAuthorizer", {"restApiId": api.api_id, "authorizerId": have["id"]},
                                 f"authorizer {name}: no route uses it"))
    changed = bool(steps) or model.stage not in api.stages
    _permission_steps(fn, model, obs, steps)
    if changed:
        steps.append(ApiStep("apigateway:CreateDeployment", {"restApiId": _api_ref(api), "stageName": model.stage},
                             "clients see the changes from here on"))
    _usage_plan_steps(fn, model, api, steps)  # names the stage: after it exists
    _domain_steps(model, api, steps)
    return out


def _domain_steps(model: AppModel, api: ApiState, steps: list[ApiStep]) -> None:
    """The custom domain of ``api_gateway_custom_domain`` and its base path mapping to the stage."""
    d = model.domain
    if d is None:
        return
    if api.domain is None:
        params: dict[str, Any] = {"domainName": d.domain_name, "endpointConfiguration": {"types": ["EDGE"]}}
        if d.certificate_arn:
            params["certificateArn"] = d.certificate_arn
        if d.tls_version:
            params["securityPolicy"] = d.tls_version.replace(".", "_")
        steps.append(ApiStep("apigateway:CreateDomainName", params, "custom domain"))
    base = d.url_prefix.strip("/") or "(none)"
    if not any(m.get("restApiId") == api.api_id and m.get("stage") == model.stage
               and (m.get("basePath") or "(none)") == base for m in api.base_paths):
        mapping: dict[str, Any] = {"domainName": d.domain_name, "restApiId": _api_ref(api), "stage": model.stage}
        if base != "(none)":
            mapping["basePath"] = base
        steps.append(ApiStep("apigateway:CreateBasePathMapping", mapping, f"https://{d.domain_name}/{base}"
                             if base != "(none)" else f"https://{d.domain_name}/"))


def _resource_steps(api: ApiState, want: dict[str, dict[str, DesiredMethod]], auth_ids: dict[str, Any],
                    steps: list[ApiStep]) -> None:
    paths = set(want)
    for p in list(paths):
        parts = p.strip("/").split("/")
        paths.update("/" + "/".join(parts[:i]) for i in range(1, len(parts)))
    paths.add("/")
    ids: dict[str, Any] = {p: rid for p, (rid, _) in api.resources.items()}
    if api.api_id is None:
        ids["/"] = Later("{root_resource_id}")
    for p in sorted(paths, key=lambda x: (x.count("/"), x)):
        if p in ids:
            continue
        parent = p.rsplit("/", 1)[0] or "/"
        var = f"resource_{len([s for s in steps if s.action == 'apigateway:CreateResource'])}"
        steps.append(ApiStep("apigateway:CreateResource", {"restApiId": _api_ref(api), "parentId": ids[parent],
                                                           "pathPart": p.rsplit("/", 1)[1]}, p, output=var))
        ids[p] = var_ref(var)
    for p, methods in want.items():
        have = api.resources.get(p, ("", {}))[1]
        for verb, m in methods.items():
            _method_steps(api, p, ids[p], verb, m, have.get(verb), auth_ids, steps)
        for verb in sorted(set(have) - set(methods)):
            steps.append(ApiStep("apigateway:DeleteMethod", {"restApiId": api.api_id, "resourceId": ids[p],
                                                             "httpMethod": verb}, f"{verb} {p}: removed"))
    gone = sorted((p for p in api.resources if p not in paths), key=len)
    for p in gone:
        if not any(p.startswith(g + "/") for g in gone if g != p):
            steps.append(ApiStep("apigateway:DeleteResource", {"restApiId": api.api_id, "resourceId": ids[p]},
                                 f"{p}: removed"))


def source_arn(obs: Observed, api: ApiState) -> Any:
    base = f"arn:aws:execute-api:{obs.region}:{obs.account}:"
    return f"{base}{api.api_id}/*" if api.api_id else Later(base + "{" + API_VAR + "}/*")


def has_permission(policy: Any, principal: str, arn: Any) -> bool:
    for st in policy:
        cond = json_str(st.get("Condition"))
        svc = st.get("Principal", {})
        svc = svc.get("Service") if isinstance(svc, dict) else svc
        if svc == principal and isinstance(arn, str) and arn in cond:
            return True
    return False


def json_str(value: Any) -> str:
    import json

    return json.dumps(value or {})


def _permission_steps(fn: FunctionConfig, model: AppModel, obs: Observed, steps: list[ApiStep]) -> None:
    api = obs.api
    arn = source_arn(obs, api)
    names = [fn.function_name] + [f"{fn.function_name}-{a.suffix}" for a in model.builtin_authorizers]
    for name in names:
        state = obs.functions.get(name)
        if state is not None and has_permission(state.policy, "apigateway.amazonaws.com", arn):
            continue
        steps.append(ApiStep("lambda:AddPermission", {
            "FunctionName": name, "Qualifier": fn.alias, "StatementId": f"lambdaship-apigw-{api.api_id or 'new'}",
            "Action": "lambda:InvokeFunction", "Principal": "apigateway.amazonaws.com", "SourceArn": arn},
            "only this API may invoke the alias"))


def _usage_plan_steps(fn: FunctionConfig, model: AppModel, api: ApiState, steps: list[ApiStep]) -> None:
    if not any(r.api_key_required for r in model.routes):
        return
    if any(any(s.get("apiId") == api.api_id and s.get("stage") == model.stage for s in p.get("apiStages") or [])
           for p in api.usage_plans):
        return
    name = f"{fn.function_name}-{model.stage}"
    # The stage must exist before a usage plan can name it: these run after CreateDeployment.
    steps.append(ApiStep("apigateway:CreateUsagePlan", {
        "name": name, "apiStages": [{"apiId": _api_ref(api), "stage": model.stage}],
        "tags": {MANAGED_TAG: fn.function_name}}, "api_key_required routes", output="usage_plan_id"))
    steps.append(ApiStep("apigateway:CreateApiKey", {"name": name, "enabled": True,
                                                     "tags": {MANAGED_TAG: fn.function_name}},
                         "its value is never printed: `aws apigateway get-api-key --include-value`",
                         output="api_key_id"))
    steps.append(ApiStep("apigateway:CreateUsagePlanKey", {"usagePlanId": Later("{usage_plan_id}"),
                                                           "keyId": Later("{api_key_id}"), "keyType": "API_KEY"}))
