"""Read what exists remotely for an app's API and triggers (describe/get/list calls only) into
one frozen :class:`Observed` value; :mod:`lambdaship.api.plan` plans from it without any call.

Which REST API is the app's (never a second one beside it): the one in Chalice's
``.chalice/deployed/<stage>.json``; else the one lambdaship tagged for this function; else an
API named after the Chalice app whose integrations already call this function (what
``lambdaship migrate`` re-pointed). Else a new API is created (and tagged).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lambdaship.apigateway.model import AppModel
from lambdaship.config import FunctionConfig
from lambdaship.errors import LambdashipError
from lambdaship.names import MANAGED_TAG


@dataclass(frozen=True)
class MethodState:
    authorization_type: str = "NONE"
    authorizer_id: str | None = None
    api_key_required: bool = False
    integration_type: str | None = None
    integration_uri: str | None = None
    response_values: tuple[tuple[str, str], ...] = ()  # integration response 200's responseParameters


@dataclass(frozen=True)
class ApiState:
    api_id: str | None = None
    adopted: str | None = None  # chalice-deployed | tagged | migrated
    root_id: str | None = None
    resources: Mapping[str, tuple[str, Mapping[str, MethodState]]] = field(default_factory=dict)
    authorizers: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    binary_types: tuple[str, ...] = ()
    stages: tuple[str, ...] = ()
    tags: Mapping[str, str] = field(default_factory=dict)
    usage_plans: tuple[Mapping[str, Any], ...] = ()
    domain: Mapping[str, Any] | None = None  # the configured custom domain, when it exists
    base_paths: tuple[Mapping[str, Any], ...] = ()  # its base path mappings


@dataclass(frozen=True)
class FunctionState:
    name: str
    exists: bool = False
    image_uri: str | None = None
    command: tuple[str, ...] = ()
    role: str | None = None
    alias_version: str | None = None
    alias_revision: str | None = None
    policy: tuple[Mapping[str, Any], ...] = ()  # the alias's resource policy statements
    url_config: Mapping[str, Any] | None = None
    code_sha256: str | None = None  # zip functions
    handler: str | None = None  # zip functions


@dataclass(frozen=True)
class StaleFunction:
    name: str
    rules: tuple[str, ...] = ()


@dataclass(frozen=True)
class Observed:
    region: str
    account: str
    api: ApiState
    functions: Mapping[str, FunctionState]  # main + extra functions, by name
    rules: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # EventBridge rule -> rule + targets
    mappings: tuple[Mapping[str, Any], ...] = ()  # event source mappings of these functions
    notifications: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)  # bucket -> configuration
    subscriptions: tuple[Mapping[str, Any], ...] = ()  # SNS subscriptions to these functions
    stale: tuple[StaleFunction, ...] = ()  # functions made for handlers the app no longer has


def chalice_deployed_api(source: Path, stage: str) -> str | None:
    path = source / ".chalice" / "deployed" / f"{stage}.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    for res in (data.get("resources") or []) if isinstance(data, dict) else []:
        if isinstance(res, dict) and res.get("resource_type") == "rest_api" and res.get("rest_api_id"):
            return str(res["rest_api_id"])
    return None


def _targets_function(api_id: str, function_name: str) -> bool:
    from lambdaship.aws import apigw

    marker = f":function:{function_name}"
    for res in apigw.list_resources(api_id):
        for m in (res.get("resourceMethods") or {}).values():
            uri = (m.get("methodIntegration") or {}).get("uri") or ""
            if marker + "/" in uri or marker + ":" in uri:
                return True
    return False


def find_api(fn: FunctionConfig, model: AppModel, chalice_stage: str) -> tuple[str | None, str | None]:
    """(api id, how it was found) — or (None, None): create one."""
    from lambdaship.aws import apigw

    apis = {a["id"]: a for a in apigw.list_rest_apis()}
    deployed = chalice_deployed_api(fn.source, chalice_stage)
    if deployed and deployed in apis:
        return deployed, "chalice-deployed"
    tagged = [i for i, a in apis.items() if (a.get("tags") or {}).get(MANAGED_TAG) == fn.function_name]
    if len(tagged) > 1:
        raise LambdashipError(f"{len(tagged)} REST APIs are tagged {MANAGED_TAG}={fn.function_name}: "
                              f"{', '.join(sorted(tagged))}", "delete the extra ones; lambdaship updates one API")
    if tagged:
        return tagged[0], "tagged"
    # Chalice names every stage's API after the app: only one that calls this function is ours.
    named = [i for i, a in apis.items() if a.get("name") == model.app_name and MANAGED_TAG not in (a.get("tags") or {})]
    ours = [i for i in named if _targets_function(i, fn.function_name)]
    if len(ours) > 1:
        raise LambdashipError(f"REST APIs {', '.join(sorted(ours))} all call {fn.function_name}",
                              "delete the extra ones (or record the one to keep in .chalice/deployed/<stage>.json)")
    return (ours[0], "migrated") if ours else (None, None)


def observe_api(api_id: str | None, adopted: str | None) -> ApiState:
    from lambdaship.aws import apigw

    if api_id is None:
        return ApiState()
    api = apigw.call("GetRestApi", restApiId=api_id)
    resources: dict[str, tuple[str, dict[str, MethodState]]] = {}
    root = None
    for res in apigw.list_resources(api_id):
        if res.get("path") == "/":
            root = res["id"]
        methods = {}
        for verb, m in (res.get("resourceMethods") or {}).items():
            integ = m.get("methodIntegration") or {}
            values = ((integ.get("integrationResponses") or {}).get("200") or {}).get("responseParameters") or {}
            methods[verb] = MethodState(m.get("authorizationType") or "NONE", m.get("authorizerId"),
                                        bool(m.get("apiKeyRequired")), integ.get("type"), integ.get("uri"),
                                        tuple(sorted(values.items())))
        resources[res["path"]] = (res["id"], methods)
    auths = {a["name"]: a for a in apigw.call("GetAuthorizers", restApiId=api_id).get("items", [])}
    plans = tuple(p for p in apigw.call("GetUsagePlans").get("items", [])
                  if any(s.get("apiId") == api_id for s in p.get("apiStages") or []))
    return ApiState(api_id, adopted, root, resources, auths, tuple(api.get("binaryMediaTypes") or ()),
                    tuple(s["stageName"] for s in apigw.list_stages(api_id)), api.get("tags") or {}, plans)


def observe_function(name: str, alias: str) -> FunctionState:
    from lambdaship.aws import lambda_

    info = lambda_.get_function(name)
    if info is None:
        return FunctionState(name)
    cfg = info["Configuration"]
    command = tuple(((cfg.get("ImageConfigResponse") or {}).get("ImageConfig") or {}).get("Command") or ())
    a = lambda_.get_alias(name, alias)
    policy: tuple[Mapping[str, Any], ...] = ()
    url = None
    if a is not None:
        try:
            doc = lambda_.client().get_policy(FunctionName=name, Qualifier=alias)["Policy"]
            policy = tuple(json.loads(doc).get("Statement") or ())
        except Exception as exc:  # no policy yet: ResourceNotFoundException
            if "ResourceNotFound" not in type(exc).__name__ and "ResourceNotFound" not in str(exc):
                raise
        try:
            url = lambda_.client().get_function_url_config(FunctionName=name, Qualifier=alias)
        except Exception as exc:
            if "ResourceNotFound" not in type(exc).__name__ and "ResourceNotFound" not in str(exc):
                raise
    return FunctionState(name, True, info.get("Code", {}).get("ImageUri"), command, cfg.get("Role"),
                         a["FunctionVersion"] if a else None, a.get("RevisionId") if a else None, policy, url,
                         cfg.get("CodeSha256"), cfg.get("Handler"))


def observe(fn: FunctionConfig, model: AppModel, *, region: str, account: str,
            chalice_stage: str = "dev") -> Observed:
    from lambdaship.aws import events

    names = [fn.function_name] + [f"{fn.function_name}-{x.suffix}" for x in model.extra_functions()]
    functions = {n: observe_function(n, fn.alias) for n in names}
    api = observe_api(*find_api(fn, model, chalice_stage)) if model.routes else ApiState()
    if model.domain is not None and model.routes:
        api = _with_domain(api, model.domain.domain_name)
    rules: dict[str, Mapping[str, Any]] = {}
    for src in model.event_sources:
        if src.kind in ("schedule", "cw_event"):
            rule = f"{fn.function_name}-{src.name}"
            try:
                got = events.call("events", "DescribeRule", Name=rule)
            except Exception as exc:
                if "ResourceNotFound" not in str(exc):
                    raise
                continue
            rules[rule] = {**got, "Targets": events.list_targets_by_rule(rule, "default")}
    stale = _stale_functions(fn, set(names))
    ours = set(names) | {st.name for st in stale}
    mappings = tuple(m for m in events.list_event_source_mappings() if _fn_of(m.get("FunctionArn")) in ours)
    notifications = {s.bucket: events.get_bucket_notification(s.bucket)
                     for s in model.event_sources if s.kind == "s3" and s.bucket}
    subs = tuple(s for s in events.list_subscriptions() if _fn_of(s.get("Endpoint")) in ours) \
        if any(s.kind == "sns" for s in model.event_sources) or stale else ()
    return Observed(region, account, api, functions, rules, mappings, notifications, subs, stale)


def _fn_of(arn: Any) -> str:
    """The function name in a Lambda ARN (qualified or not); '' for anything else."""
    parts = str(arn or "").split(":")
    return parts[6] if len(parts) > 6 and parts[2] == "lambda" and parts[5] == "function" else ""


def _stale_functions(fn: FunctionConfig, wanted: set[str]) -> tuple[StaleFunction, ...]:
    """Functions ``<function>-<name>`` lambdaship made for this function that the app no longer
    declares, with the EventBridge rules that target them."""
    from lambdaship.aws import events, lambda_

    out = []
    for name in lambda_.list_function_names():
        if not name.startswith(f"{fn.function_name}-") or name in wanted:
            continue
        info = lambda_.get_function(name) or {}
        if (info.get("Tags") or {}).get(MANAGED_TAG) != fn.function_name:
            continue
        arn = info["Configuration"]["FunctionArn"]
        rules = {r for target in (arn, f"{arn}:{fn.alias}")
                 for r in events.list_rule_names_by_target(target, "default")}
        out.append(StaleFunction(name, tuple(sorted(rules))))
    return tuple(out)


def _with_domain(api: ApiState, domain: str) -> ApiState:
    from dataclasses import replace

    from lambdaship.aws import apigw

    try:
        got = apigw.call("GetDomainName", domainName=domain)
    except Exception as exc:
        if "NotFound" not in str(exc) and "NotFound" not in type(exc).__name__:
            raise
        return api
    paths = tuple(apigw.call("GetBasePathMappings", domainName=domain).get("items", []))
    return replace(api, domain=got, base_paths=paths)
