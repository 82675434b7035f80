"""``lambdaship migrate``: move a zip function's traffic to a new image function, undoably.

Lambda cannot change a function's package type, so a migration creates a second function and
moves every trigger to its alias:

1. prepare (read-only + local build): read the old function, discover what invokes it, merge
   the environment, build the image, and plan. The new function's create/publish/alias steps
   come from :func:`lambdaship.deploy.plan.plan_deploy` (the same steps ``deploy`` runs);
   migration steps (permissions, re-pointing, stage deployments, verification) are appended
   as :class:`~lambdaship.deploy.plan.Step` s of the same kind, so ``--dry-run`` renders one plan.
2. run: execute the steps in order; deploy actions go to
   :data:`lambdaship.deploy.execute.HANDLERS`, migration actions to :data:`HANDLERS` here. Every
   step that changes something returns its undo; when a step fails, the undos run in reverse
   order and the command fails naming that step.

The old function itself is never modified; it is deleted only with ``--delete-old``, last,
after the new alias has answered the smoke request through the switched wiring.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lambdaship.config import FunctionConfig, SmokeTest
from lambdaship.deploy.env import Resolved, check_size
from lambdaship.deploy.plan import Plan, Step, Target, resolve_params
from lambdaship.errors import LambdashipError, UsageError
from lambdaship.migrate.discover import Inventory, arn_pattern

Undo = Callable[[], None]
Reporter = Callable[[int, int, Step, str], None]  # (index, total, step, "start"|"done"|"undo")

MIGRATED_FROM_TAG = "lambdaship:migrated-from"


class MigrationFailed(LambdashipError):
    pass


@dataclass
class Migration:
    old: Inventory
    fn: FunctionConfig  # the new function's configuration
    alias_arn: str
    plan: Plan  # the deploy plan of the new function (its handlers need it)
    steps: list[Step]
    env: Resolved
    warnings: list[str]
    delete_old: bool
    dry_run: bool = False
    done: list[str] = field(default_factory=list)
    undone: list[str] = field(default_factory=list)

    @property
    def new_name(self) -> str:
        return self.fn.function_name

    def to_json(self) -> dict[str, Any]:
        target = self.plan.target
        return {
            "from": self.old.name,
            "from_arn": self.old.arn,
            "to": self.new_name,
            "alias": self.fn.alias,
            "alias_arn": self.alias_arn,
            "image_uri": target.image_uri if target else None,
            "digest": target.digest if target else None,
            "dry_run": self.dry_run,
            "delete_old": self.delete_old,
            "environment": [{"name": k, "source": self.env.sources[k], "value": "****"}
                            for k in sorted(self.env.values)],
            "triggers": self.old.triggers_json(),
            "warnings": self.warnings,
            "steps": [s.to_json() for s in self.steps],
            "done": self.done,
        }

    def render(self) -> list[str]:
        lines = [f"migrate {self.old.name} (zip) -> {self.new_name} (image), alias {self.fn.alias}:"]
        for i, s in enumerate(self.steps, 1):
            lines.append(f"  {i:>2}. {s.render()}")
        if self.env.values:
            lines.append("  environment (values hidden):")
            lines.extend(f"      {k}=****  ({self.env.sources[k]})" for k in sorted(self.env.values))
        return lines


# -- prepare (no remote changes) ------------------------------------------------------------------
def _old_env(inv: Inventory, fn: FunctionConfig, stage: str | None, env_file: Path | None,
             warnings: list[str]) -> Resolved:
    from lambdaship.deploy import env as envmod
    from lambdaship.migrate import chalice

    values: dict[str, str] = {}
    sources: dict[str, str] = {}

    def put(data: dict[str, str], source: str) -> None:
        for k, v in data.items():
            values[k] = v
            sources[k] = source

    put((inv.configuration.get("Environment") or {}).get("Variables") or {}, f"function:{inv.name}")
    staged = chalice.stage_env(fn.source, stage)
    if staged is not None:
        put(staged.values, f"chalice:{staged.stage}")
        for name in staged.placeholders:
            warnings.append(f"{staged.path}: {name} is a ${{...}} placeholder in stage {staged.stage}; "
                            "kept the old function's value (if any)")
    project = envmod.resolve(fn, env_file)
    for k, v in project.values.items():
        values[k] = v
        sources[k] = project.sources[k]
    check_size(values, fn.function_name)
    return Resolved(values=values, sources=sources)


def _image_warnings(inv: Inventory, fn: FunctionConfig) -> list[str]:
    cfg = inv.configuration
    out = []
    for layer in cfg.get("Layers") or []:
        out.append(f"layer {layer.get('Arn')} cannot be used by an image function: "
                   "its content must come from the requirements")
    runtime, handler = cfg.get("Runtime"), cfg.get("Handler")
    out.append(f"Runtime {runtime} and Handler {handler} do not apply to an image: the base image "
               f"(python {fn.python}) and its CMD ({fn.resolved_handler}) replace them")
    if runtime and runtime.startswith("python") and runtime.removeprefix("python") != fn.python:
        out.append(f"the old function runs {runtime}, the image is built for python {fn.python} "
                   "(set 'python' in the config to keep the same version)")
    if (cfg.get("SnapStart") or {}).get("ApplyOn", "None") != "None":
        out.append("SnapStart is not carried over (not available for image functions)")
    if inv.url:
        out.append(f"function URL {inv.url.get('FunctionUrl')} belongs to the old function and cannot move; "
                   "create one on the new alias and update its callers")
    out.append(f"callers that invoke {inv.name} directly (SDK code, Step Functions, other functions) cannot be "
               "discovered: point them at the new alias")
    if inv.reserved_concurrency is not None:
        out.append(f"reserved concurrency {inv.reserved_concurrency} is reserved for both functions "
                   "until the old one is deleted")
    return out


def _create_extras(cfg: dict[str, Any]) -> dict[str, Any]:
    """CreateFunction parameters copied verbatim from the old configuration."""
    extra: dict[str, Any] = {}
    vpc = cfg.get("VpcConfig") or {}
    if vpc.get("SubnetIds"):
        extra["VpcConfig"] = {"SubnetIds": vpc["SubnetIds"], "SecurityGroupIds": vpc.get("SecurityGroupIds", [])}
        if vpc.get("Ipv6AllowedForDualStack"):
            extra["VpcConfig"]["Ipv6AllowedForDualStack"] = True
    if (cfg.get("TracingConfig") or {}).get("Mode") == "Active":
        extra["TracingConfig"] = {"Mode": "Active"}
    if (cfg.get("DeadLetterConfig") or {}).get("TargetArn"):
        extra["DeadLetterConfig"] = {"TargetArn": cfg["DeadLetterConfig"]["TargetArn"]}
    if cfg.get("KMSKeyArn"):
        extra["KMSKeyArn"] = cfg["KMSKeyArn"]
    if cfg.get("FileSystemConfigs"):
        extra["FileSystemConfigs"] = [{"Arn": f["Arn"], "LocalMountPath": f["LocalMountPath"]}
                                      for f in cfg["FileSystemConfigs"]]
    if cfg.get("LoggingConfig"):
        extra["LoggingConfig"] = dict(cfg["LoggingConfig"])
    return extra


def _default_smoke(inv: Inventory) -> SmokeTest | None:
    paths = sorted({i.path for i in inv.rest if i.method in ("GET", "ANY") and "{" not in i.path},
                   key=lambda p: (p.count("/"), p))
    return SmokeTest(path=paths[0]) if paths else None


def _note_rest(i: Any) -> str:
    return f"{i.method} {i.path} of REST API {i.api_name or i.api_id} ({i.api_id})"


def prepare(
    old_name: str,
    fn: FunctionConfig,
    *,
    to: str | None = None,
    stage: str | None = None,
    image: str | None = None,
    delete_old: bool = False,
    env_file: Path | None = None,
    progress: bool = False,
) -> Migration:
    """Validate, discover and plan. Builds the image locally (unless ``image`` is given); no remote change."""
    from lambdaship.aws import lambda_
    from lambdaship.config import FUNCTION_NAME_RE
    from lambdaship.deploy.pipeline import target_from_build, target_from_ref
    from lambdaship.deploy.plan import plan_deploy
    from lambdaship.migrate.discover import discover, read_function

    new_name = to or f"{old_name}-image"
    if not FUNCTION_NAME_RE.match(new_name):
        raise UsageError(f"--to {new_name!r} is not a valid Lambda function name", "1-64 letters, digits, '-' or '_'")
    if new_name == old_name:
        raise UsageError("--to must differ from --from", "Lambda cannot turn a zip function into an image in place")
    inv = read_function(old_name)
    cfg = inv.configuration
    if cfg.get("PackageType", "Zip") != "Zip":
        raise LambdashipError(f"{old_name} is already an image function", "use `lambdaship deploy` to update it")
    if lambda_.get_function(new_name) is not None:
        raise LambdashipError(f"function {new_name} already exists",
                              "choose another name with --to, or delete it if a previous migration left it")
    warnings: list[str] = []
    arch = (cfg.get("Architectures") or ["x86_64"])[0]
    if arch != fn.architecture:
        warnings.append(f"the old function runs on {arch}; building for {arch} (the config says {fn.architecture})")
    if fn.role and fn.role != cfg["Role"]:
        warnings.append(f"the new function uses the configured role {fn.role}, not the old function's {cfg['Role']}")
    tags = {k: v for k, v in inv.tags.items() if not k.startswith("aws:")}
    new_fn = fn.model_copy(update={
        "function_name": new_name,
        "package_type": "image",
        "architecture": arch,
        "memory": cfg.get("MemorySize", fn.memory),
        "timeout": cfg.get("Timeout", fn.timeout),
        "ephemeral_storage": (cfg.get("EphemeralStorage") or {}).get("Size", fn.ephemeral_storage),
        "role": fn.role or cfg["Role"],
        "description": cfg.get("Description") or fn.description,
        "tags": {**tags, **fn.tags, MIGRATED_FROM_TAG: old_name},
    })
    warnings.extend(_image_warnings(inv, new_fn))
    env = _old_env(inv, new_fn, stage, env_file, warnings)
    discover(inv)
    warnings.extend(inv.warnings)
    smoke = new_fn.smoke or _default_smoke(inv)
    if smoke is None:
        warnings.append("no smoke test: configure [smoke] (path or event); the new alias is not invoked "
                        "before traffic moves")
    new_fn = new_fn.model_copy(update={"smoke": smoke})

    target: Target = target_from_ref(image) if image else target_from_build(new_fn, progress=progress)
    plan = plan_deploy(new_fn, target, env)
    prefix = inv.arn.rsplit(":function:", 1)[0]
    alias_arn = f"{prefix}:function:{new_name}:{new_fn.alias}"
    steps = list(plan.steps)
    for s in steps:
        if s.action == "lambda:CreateFunction":
            s.params.update(_create_extras(cfg))
            s.note = f"same configuration as {old_name}"
    if inv.reserved_concurrency is not None:
        at = next(i for i, s in enumerate(steps) if s.action == "lambda:Wait") + 1
        steps.insert(at, Step("lambda:PutFunctionConcurrency", {
            "FunctionName": new_name, "ReservedConcurrentExecutions": inv.reserved_concurrency}))
    steps.extend(_migration_steps(inv, new_fn, alias_arn, delete_old))
    return Migration(old=inv, fn=new_fn, alias_arn=alias_arn, plan=plan, steps=steps, env=env,
                     warnings=warnings, delete_old=delete_old)


def _migration_steps(inv: Inventory, fn: FunctionConfig, alias_arn: str, delete_old: bool) -> list[Step]:
    new, alias = fn.function_name, fn.alias
    pattern = arn_pattern(inv.arn)
    steps: list[Step] = []
    used: set[str] = set()
    for p in inv.permissions:
        sid = p.sid
        n = 2
        while sid in used:
            sid, n = f"{p.sid}-{n}", n + 1
        used.add(sid)
        where = f" (was on {inv.name}:{p.qualifier})" if p.qualifier else ""
        steps.append(Step("lambda:AddPermission", p.add_params(new, alias, sid),
                          f"copy of {p.sid}{where}: {p.principal} {p.source_arn or ''}".rstrip()))
    for i in inv.rest:
        steps.append(Step("apigateway:PutIntegration", {
            "RestApiId": i.api_id, "ResourceId": i.resource_id, "HttpMethod": i.method,
            "uri": pattern.sub(alias_arn, i.uri, count=1), "ExpectedUri": i.uri,
        }, _note_rest(i)))
    for h in inv.http:
        steps.append(Step("apigatewayv2:UpdateIntegration", {
            "ApiId": h.api_id, "IntegrationId": h.integration_id,
            "IntegrationUri": pattern.sub(alias_arn, h.uri, count=1), "ExpectedUri": h.uri,
        }, f"HTTP API {h.api_name or h.api_id} routes {', '.join(h.routes) or '(none)'}"))
    for m in inv.mappings:
        steps.append(Step("lambda:UpdateEventSourceMapping", {
            "UUID": m.uuid, "FunctionName": alias_arn, "ExpectedFunctionArn": m.function_arn,
        }, f"from {m.source_arn}"))
    for b in inv.buckets:
        steps.append(Step("s3:PutBucketNotificationConfiguration", {
            "Bucket": b.bucket, "Ids": b.ids, "FunctionArn": alias_arn}, "re-point the Lambda notifications"))
    for sub in inv.subscriptions:
        steps.append(Step("sns:Subscribe", {"TopicArn": sub.topic_arn, "Endpoint": alias_arn,
                                            "Attributes": sub.attributes}, "same filter/delivery attributes"))
        steps.append(Step("sns:Unsubscribe", {"SubscriptionArn": sub.arn, "TopicArn": sub.topic_arn,
                                              "Endpoint": sub.endpoint, "Attributes": sub.attributes},
                          f"the old function's subscription to {sub.topic_arn}"))
    for t in inv.targets:
        steps.append(Step("events:PutTargets", {"Rule": t.rule, "EventBusName": t.bus,
                                                "Target": {**t.target, "Arn": alias_arn}, "Previous": t.target},
                          f"target {t.target.get('Id')} of rule {t.rule} on bus {t.bus}"))
    for st in inv.stages:
        if st.kind == "rest":
            steps.append(Step("apigateway:CreateDeployment", {
                "RestApiId": st.api_id, "StageName": st.name, "PreviousDeploymentId": st.deployment_id,
                "Description": f"lambdaship migrate {inv.name} -> {new}"}, f"stage {st.name} (publishes the API's "
                "current configuration)"))
        elif not st.auto_deploy:
            steps.append(Step("apigatewayv2:CreateDeployment", {
                "ApiId": st.api_id, "StageName": st.name, "PreviousDeploymentId": st.deployment_id,
                "Description": f"lambdaship migrate {inv.name} -> {new}"}, f"stage {st.name}"))
    steps.append(Step("migrate:Verify", {"FunctionName": new, "Alias": alias},
                      "re-read every re-pointed trigger"))
    if fn.smoke is not None:
        smoke = {"event": fn.smoke.event} if fn.smoke.event is not None else {
            "path": fn.smoke.path, "method": fn.smoke.method}
        steps.append(Step("smoke:Invoke", {"FunctionName": new, "Qualifier": alias, **smoke},
                          "the alias, after the switch"))
    if delete_old:
        steps.append(Step("lambda:DeleteFunction", {"FunctionName": inv.name}, "--delete-old; cannot be undone"))
    return steps


# -- run (the only mutating part) -----------------------------------------------------------------
def _retry_in_use(call: Callable[[], Any], timeout: float = 120) -> Any:
    """Event source mappings answer ResourceInUseException while a previous update settles."""
    from botocore.exceptions import ClientError

    deadline = time.monotonic() + timeout
    while True:
        try:
            return call()
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ResourceInUseException" or time.monotonic() > deadline:
                raise
            time.sleep(2)


def _changed(what: str, now: Any, planned: Any) -> LambdashipError:
    return LambdashipError(f"{what} changed since the plan was made (now {now!r}, planned {planned!r})",
                           "someone else is changing it; run migrate again")


def _h_permission(p: dict[str, Any], ctx: dict[str, Any], m: Migration) -> Undo:
    from lambdaship.aws import lambda_

    lambda_.add_permission(**p)
    return lambda: lambda_.remove_permission(p["FunctionName"], p["StatementId"], p["Qualifier"])


def _h_concurrency(p: dict[str, Any], ctx: dict[str, Any], m: Migration) -> None:
    from lambdaship.aws import lambda_

    lambda_.put_concurrency(p["FunctionName"], p["ReservedConcurrentExecutions"])


def _h_rest_integration(p: dict[str, Any], ctx: dict[str, Any], m: Migration) -> Undo:
    from lambdaship.aws import apigw

    api, res, method = p["RestApiId"], p["ResourceId"], p["HttpMethod"]
    before = apigw.get_integration(api, res, method)
    if before.get("uri") != p["ExpectedUri"]:
        raise _changed(f"integration {method} of resource {res} in API {api}", before.get("uri"), p["ExpectedUri"])
    apigw.put_integration(api, res, method, {**before, "uri": p["uri"]})
    return lambda: apigw.put_integration(api, res, method, before)


def _h_http_integration(p: dict[str, Any], ctx: dict[str, Any], m: Migration) -> Undo:
    from lambdaship.aws import apigw

    api, iid = p["ApiId"], p["IntegrationId"]
    before = apigw.get_integration_v2(api, iid).get("IntegrationUri")
    if before != p["ExpectedUri"]:
        raise _changed(f"integration {iid} of HTTP API {api}", before, p["ExpectedUri"])
    apigw.set_integration_uri_v2(api, iid, p["IntegrationUri"])
    return lambda: apigw.set_integration_uri_v2(api, iid, before)


def _h_mapping(p: dict[str, Any], ctx: dict[str, Any], m: Migration) -> Undo:
    from lambdaship.aws import events

    uuid = p["UUID"]
    before = events.get_event_source_mapping(uuid).get("FunctionArn")
    if before != p["ExpectedFunctionArn"]:
        raise _changed(f"event source mapping {uuid}", before, p["ExpectedFunctionArn"])
    _retry_in_use(lambda: events.set_event_source_mapping_function(uuid, p["FunctionName"]))
    return lambda: _retry_in_use(lambda: events.set_event_source_mapping_function(uuid, before))


def _h_bucket(p: dict[str, Any], ctx: dict[str, Any], m: Migration) -> Undo:
    from lambdaship.aws import events

    bucket = p["Bucket"]
    pattern = arn_pattern(m.old.arn)
    before = events.get_bucket_notification(bucket)
    after = copy.deepcopy(before)
    moved = 0
    for c in after.get("LambdaFunctionConfigurations", []):
        if c.get("Id") in p["Ids"] and pattern.fullmatch(c.get("LambdaFunctionArn", "")):
            c["LambdaFunctionArn"] = p["FunctionArn"]
            moved += 1
    if moved != len(p["Ids"]):
        raise _changed(f"notifications of bucket {bucket}", moved, len(p["Ids"]))
    events.put_bucket_notification(bucket, after)
    return lambda: events.put_bucket_notification(bucket, before)


def _h_subscribe(p: dict[str, Any], ctx: dict[str, Any], m: Migration) -> Undo:
    from lambdaship.aws import events

    arn = events.subscribe(p["TopicArn"], p["Endpoint"], p["Attributes"])
    return lambda: events.unsubscribe(arn)


def _h_unsubscribe(p: dict[str, Any], ctx: dict[str, Any], m: Migration) -> Undo:
    from lambdaship.aws import events

    events.unsubscribe(p["SubscriptionArn"])

    def undo() -> None:
        # SNS cannot restore a subscription: subscribe again (same attributes, a new ARN).
        events.subscribe(p["TopicArn"], p["Endpoint"], p["Attributes"])

    return undo


def _h_target(p: dict[str, Any], ctx: dict[str, Any], m: Migration) -> Undo:
    from lambdaship.aws import events

    rule, bus = p["Rule"], p["EventBusName"]
    current = {t.get("Id"): t for t in events.list_targets_by_rule(rule, bus)}
    if current.get(p["Previous"].get("Id")) != p["Previous"]:
        raise _changed(f"target {p['Previous'].get('Id')} of rule {rule}", current.get(p["Previous"].get("Id")),
                       p["Previous"])
    events.put_target(rule, bus, p["Target"])
    return lambda: events.put_target(rule, bus, p["Previous"])


def _h_rest_deploy(p: dict[str, Any], ctx: dict[str, Any], m: Migration) -> Undo:
    from lambdaship.aws import apigw

    api, stage, prev = p["RestApiId"], p["StageName"], p["PreviousDeploymentId"]
    now = apigw.get_stage(api, stage).get("deploymentId")
    if now != prev:
        raise _changed(f"stage {stage} of API {api}", now, prev)
    new_id = apigw.create_deployment(api, stage, p["Description"])

    def undo() -> None:
        if prev:
            apigw.set_stage_deployment(api, stage, prev)
        try:
            apigw.delete_deployment(api, new_id)
        except Exception:
            m.warnings.append(f"deployment {new_id} of API {api} could not be deleted (stage {stage} no longer "
                              "uses it)")

    return undo


def _h_http_deploy(p: dict[str, Any], ctx: dict[str, Any], m: Migration) -> Undo:
    from lambdaship.aws import apigw

    api, stage, prev = p["ApiId"], p["StageName"], p["PreviousDeploymentId"]
    apigw.create_deployment_v2(api, stage, p["Description"])
    return lambda: apigw.set_stage_deployment_v2(api, stage, prev) if prev else None


def _points_at_new(arn: str | None, m: Migration, version: str | None) -> bool:
    """The ARN names the new function's alias (or, as moto reports mappings, the alias's version)."""
    base = m.alias_arn.rsplit(":", 1)[0]
    return arn in (m.alias_arn, f"{base}:{version}")


def _h_verify(p: dict[str, Any], ctx: dict[str, Any], m: Migration) -> None:
    from lambdaship.aws import apigw, events

    version = ctx.get("version")
    wrong: list[str] = []
    for s in m.steps:
        q = s.params
        if s.action == "apigateway:PutIntegration":
            uri = apigw.get_integration(q["RestApiId"], q["ResourceId"], q["HttpMethod"]).get("uri")
            if uri != q["uri"]:
                wrong.append(f"{s.note}: {uri}")
        elif s.action == "apigatewayv2:UpdateIntegration":
            uri = apigw.get_integration_v2(q["ApiId"], q["IntegrationId"]).get("IntegrationUri")
            if uri != q["IntegrationUri"]:
                wrong.append(f"{s.note}: {uri}")
        elif s.action == "lambda:UpdateEventSourceMapping":
            arn = events.get_event_source_mapping(q["UUID"]).get("FunctionArn")
            if not _points_at_new(arn, m, version):
                wrong.append(f"mapping {q['UUID']}: {arn}")
        elif s.action == "s3:PutBucketNotificationConfiguration":
            conf = events.get_bucket_notification(q["Bucket"]).get("LambdaFunctionConfigurations", [])
            arns = {c.get("Id"): c.get("LambdaFunctionArn") for c in conf}
            if any(arns.get(i) != m.alias_arn for i in q["Ids"]):
                wrong.append(f"bucket {q['Bucket']}: {sorted(set(arns.values()))}")
        elif s.action == "sns:Subscribe":
            endpoints = {x.get("Endpoint") for x in events.list_subscriptions_by_topic(q["TopicArn"])}
            if m.alias_arn not in endpoints:
                wrong.append(f"topic {q['TopicArn']}: no subscription of the alias")
        elif s.action == "events:PutTargets":
            targets = {t.get("Id"): t.get("Arn") for t in events.list_targets_by_rule(q["Rule"], q["EventBusName"])}
            if targets.get(q["Target"].get("Id")) != m.alias_arn:
                wrong.append(f"rule {q['Rule']}: {targets.get(q['Target'].get('Id'))}")
    if wrong:
        raise LambdashipError(f"{len(wrong)} trigger(s) do not point at {m.alias_arn} after the switch: "
                              + "; ".join(wrong))


def _h_delete_old(p: dict[str, Any], ctx: dict[str, Any], m: Migration) -> None:
    from lambdaship.aws import lambda_

    lambda_.delete_function(p["FunctionName"])


HANDLERS: dict[str, Callable[[dict[str, Any], dict[str, Any], Migration], Undo | None]] = {
    "lambda:PutFunctionConcurrency": _h_concurrency,
    "lambda:AddPermission": _h_permission,
    "apigateway:PutIntegration": _h_rest_integration,
    "apigatewayv2:UpdateIntegration": _h_http_integration,
    "lambda:UpdateEventSourceMapping": _h_mapping,
    "s3:PutBucketNotificationConfiguration": _h_bucket,
    "sns:Subscribe": _h_subscribe,
    "sns:Unsubscribe": _h_unsubscribe,
    "events:PutTargets": _h_target,
    "apigateway:CreateDeployment": _h_rest_deploy,
    "apigatewayv2:CreateDeployment": _h_http_deploy,
    "migrate:Verify": _h_verify,
    "lambda:DeleteFunction": _h_delete_old,
}


def _deploy_undo(step: Step, p: dict[str, Any], ctx: dict[str, Any]) -> Undo | None:
    """Undo of the deploy actions: the new function goes away with its versions, alias and policy."""
    if step.action == "lambda:CreateFunction":
        from lambdaship.aws import lambda_

        return lambda: lambda_.delete_function(p["FunctionName"])
    return None  # registry pushes/tags are content-addressed and harmless; the rest dies with the function


def _describe(exc: BaseException) -> str:
    if isinstance(exc, LambdashipError):
        return exc.message
    from botocore.exceptions import ClientError

    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        return f"AWS {exc.operation_name}: {err.get('Code')}: {err.get('Message')}"
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted"
    return f"{type(exc).__name__}: {exc}"


def run(m: Migration, *, reporter: Reporter | None = None, progress: bool = False) -> Migration:
    """Execute the plan; on any failure undo every change in reverse order and raise MigrationFailed."""
    from lambdaship.deploy.execute import HANDLERS as DEPLOY_HANDLERS

    ctx: dict[str, Any] = {"revision": None, "code_sha256": None, "progress": progress}
    undos: list[tuple[int, Step, Undo]] = []
    total = len(m.steps)
    for i, step in enumerate(m.steps, 1):
        if reporter:
            reporter(i, total, step, "start")
        try:
            params = resolve_params(step.params, ctx)
            if step.action in HANDLERS:
                undo = HANDLERS[step.action](params, ctx, m)
            else:
                DEPLOY_HANDLERS[step.action](step, params, ctx, m.plan)
                undo = _deploy_undo(step, params, ctx)
        except (Exception, KeyboardInterrupt) as exc:
            failures = _undo(undos, m, reporter, total)
            what = f"step {i}/{total} {step.action}" + (f" ({step.note})" if step.note else "")
            if failures:
                hint = (f"undo FAILED for {len(failures)} change(s), fix them by hand: " + "; ".join(failures))
            else:
                hint = (f"all {len(undos)} change(s) made before it were undone; "
                        f"{m.old.name} and its triggers are as they were")
            raise MigrationFailed(f"migrate failed at {what}: {_describe(exc)}", hint) from exc
        if undo is not None:
            undos.append((i, step, undo))
        m.done.append(step.action)
        if reporter:
            reporter(i, total, step, "done")
    return m


def _undo(undos: list[tuple[int, Step, Undo]], m: Migration, reporter: Reporter | None, total: int) -> list[str]:
    failures: list[str] = []
    for i, step, undo in reversed(undos):
        if reporter:
            reporter(i, total, step, "undo")
        try:
            undo()
            m.undone.append(step.action)
        except Exception as exc:
            failures.append(f"step {i} {step.action} ({step.note}): {_describe(exc)}")
    return failures


__all__ = ["HANDLERS", "Migration", "MigrationFailed", "prepare", "run"]
