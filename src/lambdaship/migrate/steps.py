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
from lambdaship.migrate.discover import Inventory, arn_pattern


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
    """Copy the permissions, re-point every trigger, redeploy the stages, verify, smoke the alias."""
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
        steps.append(Step("smoke:Invoke", {"FunctionName": new, "Qualifier": alias, **smoke_params(fn)},
                          "the alias, after the switch"))
    if delete_old:
        steps.append(Step("lambda:DeleteFunction", {"FunctionName": inv.name}, "--delete-old; cannot be undone"))
    return steps
