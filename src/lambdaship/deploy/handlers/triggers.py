"""Handlers that wire triggers to a function's alias (API Gateway, event sources, S3, SNS, EventBridge).

Each handler first checks that the resource still looks as planned (else someone else is changing
it), changes it, and registers the undo that restores it. ``migrate:Verify`` re-reads them all.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from typing import Any

from lambdaship.aws.errors import aws_error_code
from lambdaship.deploy.steps import Step
from lambdaship.errors import LambdashipError


def retry_in_use(call: Callable[[], Any], timeout: float = 120) -> Any:
    """Event source mappings answer ResourceInUseException while a previous update settles."""
    from lambdaship.aws.errors import client_error_type

    ClientError = client_error_type()

    deadline = time.monotonic() + timeout
    while True:
        try:
            return call()
        except ClientError as exc:
            if aws_error_code(exc) != "ResourceInUseException" or time.monotonic() > deadline:
                raise
            time.sleep(2)


def _changed(what: str, now: Any, planned: Any) -> LambdashipError:
    return LambdashipError(f"{what} changed since the plan was made (now {now!r}, planned {planned!r})",
                           "someone else is changing it; run migrate again")


def rest_integration(step: Step, p: dict[str, Any], run: Any) -> None:
    from lambdaship.aws import apigw

    api, res, method = p["RestApiId"], p["ResourceId"], p["HttpMethod"]
    before = apigw.get_integration(api, res, method)
    if before.get("uri") != p["ExpectedUri"]:
        raise _changed(f"integration {method} of resource {res} in API {api}", before.get("uri"), p["ExpectedUri"])
    apigw.put_integration(api, res, method, {**before, "uri": p["uri"]})
    run.on_undo(lambda: apigw.put_integration(api, res, method, before))


def http_integration(step: Step, p: dict[str, Any], run: Any) -> None:
    from lambdaship.aws import apigw

    api, iid = p["ApiId"], p["IntegrationId"]
    before = apigw.get_integration_v2(api, iid).get("IntegrationUri")
    if before != p["ExpectedUri"]:
        raise _changed(f"integration {iid} of HTTP API {api}", before, p["ExpectedUri"])
    apigw.set_integration_uri_v2(api, iid, p["IntegrationUri"])
    run.on_undo(lambda: apigw.set_integration_uri_v2(api, iid, before))


def mapping(step: Step, p: dict[str, Any], run: Any) -> None:
    from lambdaship.aws import events

    uuid = p["UUID"]
    before = events.get_event_source_mapping(uuid).get("FunctionArn")
    if before != p["ExpectedFunctionArn"]:
        raise _changed(f"event source mapping {uuid}", before, p["ExpectedFunctionArn"])
    retry_in_use(lambda: events.set_event_source_mapping_function(uuid, p["FunctionName"]))
    run.on_undo(lambda: retry_in_use(lambda: events.set_event_source_mapping_function(uuid, before)))


def bucket(step: Step, p: dict[str, Any], run: Any) -> None:
    from lambdaship.aws import events
    from lambdaship.patterns import arn_pattern

    name = p["Bucket"]
    pattern = arn_pattern(run.plan.artifacts["old_arn"])
    before = events.get_bucket_notification(name)
    after = copy.deepcopy(before)
    moved = 0
    for c in after.get("LambdaFunctionConfigurations", []):
        if c.get("Id") in p["Ids"] and pattern.fullmatch(c.get("LambdaFunctionArn", "")):
            c["LambdaFunctionArn"] = p["FunctionArn"]
            moved += 1
    if moved != len(p["Ids"]):
        raise _changed(f"notifications of bucket {name}", moved, len(p["Ids"]))
    events.put_bucket_notification(name, after)
    run.on_undo(lambda: events.put_bucket_notification(name, before))


def subscribe(step: Step, p: dict[str, Any], run: Any) -> str:
    from lambdaship.aws import events

    arn = events.subscribe(p["TopicArn"], p["Endpoint"], p["Attributes"])
    run.on_undo(lambda: events.unsubscribe(arn))
    return arn


def unsubscribe(step: Step, p: dict[str, Any], run: Any) -> None:
    from lambdaship.aws import events

    events.unsubscribe(p["SubscriptionArn"])
    # SNS cannot restore a subscription: the undo subscribes again (same attributes, a new ARN).
    run.on_undo(lambda: events.subscribe(p["TopicArn"], p["Endpoint"], p["Attributes"]))


def target(step: Step, p: dict[str, Any], run: Any) -> None:
    from lambdaship.aws import events

    rule, bus, previous = p["Rule"], p["EventBusName"], p["Previous"]
    current = {t.get("Id"): t for t in events.list_targets_by_rule(rule, bus)}
    if current.get(previous.get("Id")) != previous:
        raise _changed(f"target {previous.get('Id')} of rule {rule}", current.get(previous.get("Id")), previous)
    events.put_target(rule, bus, p["Target"])
    run.on_undo(lambda: events.put_target(rule, bus, previous))


def rest_deploy(step: Step, p: dict[str, Any], run: Any) -> str:
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
            run.warnings.append(f"deployment {new_id} of API {api} could not be deleted (stage {stage} no longer "
                                "uses it)")

    run.on_undo(undo)
    return new_id


def http_deploy(step: Step, p: dict[str, Any], run: Any) -> str:
    from lambdaship.aws import apigw

    api, stage, prev = p["ApiId"], p["StageName"], p["PreviousDeploymentId"]
    new_id = apigw.create_deployment_v2(api, stage, p["Description"])
    if prev:
        run.on_undo(lambda: apigw.set_stage_deployment_v2(api, stage, prev))
    return new_id


def _points_at(arn: str | None, alias_arn: str, version: str | None) -> bool:
    """The ARN names the alias (or, as moto reports mappings, the alias's version)."""
    return arn in (alias_arn, f"{alias_arn.rsplit(':', 1)[0]}:{version}")


def _check(s: Step, alias_arn: str, version: str | None) -> str | None:
    """What is wrong with the trigger step ``s`` configured (None: it points at the alias)."""
    from lambdaship.aws import apigw, events

    q = s.params
    if s.action == "apigateway:PutIntegration":
        uri = apigw.get_integration(q["RestApiId"], q["ResourceId"], q["HttpMethod"]).get("uri")
        return None if uri == q["uri"] else f"{s.note}: {uri}"
    if s.action == "apigatewayv2:UpdateIntegration":
        uri = apigw.get_integration_v2(q["ApiId"], q["IntegrationId"]).get("IntegrationUri")
        return None if uri == q["IntegrationUri"] else f"{s.note}: {uri}"
    if s.action == "lambda:UpdateEventSourceMapping":
        arn = events.get_event_source_mapping(q["UUID"]).get("FunctionArn")
        return None if _points_at(arn, alias_arn, version) else f"mapping {q['UUID']}: {arn}"
    if s.action == "s3:PutBucketNotificationConfiguration":
        conf = events.get_bucket_notification(q["Bucket"]).get("LambdaFunctionConfigurations", [])
        arns = {c.get("Id"): c.get("LambdaFunctionArn") for c in conf}
        ok = all(arns.get(i) == alias_arn for i in q["Ids"])
        return None if ok else f"bucket {q['Bucket']}: {sorted(set(arns.values()))}"
    if s.action == "sns:Subscribe":
        endpoints = {x.get("Endpoint") for x in events.list_subscriptions_by_topic(q["TopicArn"])}
        return None if alias_arn in endpoints else f"topic {q['TopicArn']}: no subscription of the alias"
    if s.action == "events:PutTargets":
        targets = {t.get("Id"): t.get("Arn") for t in events.list_targets_by_rule(q["Rule"], q["EventBusName"])}
        got = targets.get(q["Target"].get("Id"))
        return None if got == alias_arn else f"rule {q['Rule']}: {got}"
    return None


def verify(step: Step, p: dict[str, Any], run: Any) -> None:
    """Re-read every trigger the plan re-pointed: all must name the alias."""
    alias_arn = run.plan.artifacts["alias_arn"]
    wrong = [w for s in run.plan.steps if (w := _check(s, alias_arn, run.vars.get("version")))]
    if wrong:
        raise LambdashipError(f"{len(wrong)} trigger(s) do not point at {alias_arn} after the switch: "
                              + "; ".join(wrong))


HANDLERS = {
    "apigateway:PutIntegration": rest_integration,
    "apigatewayv2:UpdateIntegration": http_integration,
    "lambda:UpdateEventSourceMapping": mapping,
    "s3:PutBucketNotificationConfiguration": bucket,
    "sns:Subscribe": subscribe,
    "sns:Unsubscribe": unsubscribe,
    "events:PutTargets": target,
    "apigateway:CreateDeployment": rest_deploy,
    "apigatewayv2:CreateDeployment": http_deploy,
    "migrate:Verify": verify,
}
