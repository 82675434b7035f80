"""The migration's own steps, composed into the new function's deploy plan as extensions.

Pure functions of the discovered :class:`~lambdaship.migrate.discover.Inventory`: the plan of a
migration is ``plan(new function, image, env, state, Options(extensions=...))`` — the deploy
plan of the new function, then these steps once its alias serves the first version.
"""

from __future__ import annotations

from typing import Any

from lambdaship.config import FunctionConfig
from lambdaship.deploy.plan import Extension, PlanInput, smoke_params
from lambdaship.deploy.steps import Step
from lambdaship.migrate.discover import Inventory
from lambdaship.patterns import arn_pattern

APIGATEWAY = "apigateway.amazonaws.com"


def extensions(inv: Inventory, alias_arn: str, delete_old: bool) -> tuple[Extension, ...]:
    def concurrency(inp: PlanInput) -> list[Step]:
        if inv.reserved_concurrency is None:
            return []
        return [Step("lambda:PutFunctionConcurrency", {
            "FunctionName": inp.names.function, "ReservedConcurrentExecutions": inv.reserved_concurrency})]

    def triggers(inp: PlanInput) -> list[Step]:
        return trigger_steps(inv, inp.fn, alias_arn, delete_old)

    return (Extension("after_function", concurrency), Extension("after_alias", triggers))


def _note_rest(i: Any) -> str:
    return f"{i.method} {i.path} of REST API {i.api_name or i.api_id} ({i.api_id})"


def trigger_steps(inv: Inventory, fn: FunctionConfig, alias_arn: str, delete_old: bool) -> list[Step]:
    """Permissions first (copied, and one per API whose integrations move), then re-point every
    trigger, redeploy the stages, verify, smoke the alias, delete the old function (opt-in)."""
    new, alias = fn.function_name, fn.alias
    steps = permission_steps(inv, new, alias)
    steps += repoint_steps(inv, alias_arn)
    steps += stage_steps(inv, new)
    steps.append(Step("migrate:Verify", {"FunctionName": new, "Alias": alias}, "re-read every re-pointed trigger"))
    if fn.smoke is not None:
        steps.append(Step("smoke:Invoke", {"FunctionName": new, "Qualifier": alias, **smoke_params(fn)},
                          "the alias, after the switch"))
    if delete_old:
        steps.append(Step("lambda:DeleteFunction", {"FunctionName": inv.name}, "--delete-old; cannot be undone"))
    return steps


def api_source_arn(function_arn: str, api_id: str) -> str:
    """``arn:<partition>:execute-api:<region>:<account>:<api>/*`` for the function's region/account."""
    _, partition, _, region, account, *_ = function_arn.split(":")
    return f"arn:{partition}:execute-api:{region}:{account}:{api_id}/*"


def permission_steps(inv: Inventory, new: str, alias: str) -> list[Step]:
    """Copies of the old function's statements on the new alias, plus, for every API whose
    integrations are re-pointed, ``lambda:InvokeFunction`` for API Gateway scoped to that API
    (without it API Gateway answers 500 once the integration names the alias)."""
    steps: list[Step] = []
    used: set[str] = set()
    for p in inv.permissions:
        sid, n = p.sid, 2
        while sid in used:
            sid, n = f"{p.sid}-{n}", n + 1
        used.add(sid)
        where = f" (was on {inv.name}:{p.qualifier})" if p.qualifier else ""
        steps.append(Step("lambda:AddPermission", p.add_params(new, alias, sid),
                          f"copy of {p.sid}{where}: {p.principal} {p.source_arn or ''}".rstrip()))
    granted = {p.source_arn for p in inv.permissions
               if p.principal == APIGATEWAY and p.action in ("lambda:InvokeFunction", "lambda:*")}
    apis = dict.fromkeys([*(i.api_id for i in inv.rest), *(h.api_id for h in inv.http)])
    for api in apis:
        source = api_source_arn(inv.arn, api)
        if source in granted or None in granted:
            continue
        sid, n = f"lambdaship-apigw-{api}", 2
        while sid in used:
            sid, n = f"lambdaship-apigw-{api}-{n}", n + 1
        used.add(sid)
        steps.append(Step("lambda:AddPermission", {
            "FunctionName": new, "Qualifier": alias, "StatementId": sid, "Action": "lambda:InvokeFunction",
            "Principal": APIGATEWAY, "SourceArn": source,
        }, f"API {api} invokes the alias (its integrations are re-pointed below)"))
    return steps


def repoint_steps(inv: Inventory, alias_arn: str) -> list[Step]:
    pattern = arn_pattern(inv.arn)
    steps = [Step("apigateway:PutIntegration", {
        "RestApiId": i.api_id, "ResourceId": i.resource_id, "HttpMethod": i.method,
        "uri": pattern.sub(alias_arn, i.uri, count=1), "ExpectedUri": i.uri}, _note_rest(i)) for i in inv.rest]
    steps += [Step("apigatewayv2:UpdateIntegration", {
        "ApiId": h.api_id, "IntegrationId": h.integration_id,
        "IntegrationUri": pattern.sub(alias_arn, h.uri, count=1), "ExpectedUri": h.uri,
    }, f"HTTP API {h.api_name or h.api_id} routes {', '.join(h.routes) or '(none)'}") for h in inv.http]
    steps += [Step("lambda:UpdateEventSourceMapping", {
        "UUID": m.uuid, "FunctionName": alias_arn, "ExpectedFunctionArn": m.function_arn,
    }, f"from {m.source_arn}") for m in inv.mappings]
    steps += [Step("s3:PutBucketNotificationConfiguration", {
        "Bucket": b.bucket, "Ids": b.ids, "FunctionArn": alias_arn}, "re-point the Lambda notifications")
        for b in inv.buckets]
    for sub in inv.subscriptions:
        steps.append(Step("sns:Subscribe", {"TopicArn": sub.topic_arn, "Endpoint": alias_arn,
                                            "Attributes": sub.attributes}, "same filter/delivery attributes"))
        steps.append(Step("sns:Unsubscribe", {"SubscriptionArn": sub.arn, "TopicArn": sub.topic_arn,
                                              "Endpoint": sub.endpoint, "Attributes": sub.attributes},
                          f"the old function's subscription to {sub.topic_arn}"))
    steps += [Step("events:PutTargets", {"Rule": t.rule, "EventBusName": t.bus,
                                         "Target": {**t.target, "Arn": alias_arn}, "Previous": t.target},
                   f"target {t.target.get('Id')} of rule {t.rule} on bus {t.bus}") for t in inv.targets]
    return steps


def stage_steps(inv: Inventory, new: str) -> list[Step]:
    steps: list[Step] = []
    for st in inv.stages:
        description = f"lambdaship migrate {inv.name} -> {new}"
        if st.kind == "rest":
            steps.append(Step("apigateway:CreateDeployment", {
                "RestApiId": st.api_id, "StageName": st.name, "PreviousDeploymentId": st.deployment_id,
                "Description": description}, f"stage {st.name} (publishes the API's current configuration)"))
        elif not st.auto_deploy:
            steps.append(Step("apigatewayv2:CreateDeployment", {
                "ApiId": st.api_id, "StageName": st.name, "PreviousDeploymentId": st.deployment_id,
                "Description": description}, f"stage {st.name}"))
    return steps
