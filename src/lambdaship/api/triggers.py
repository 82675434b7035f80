"""Plan the app's other functions and triggers (pure): authorizers, event handlers and
``@app.lambda_function`` as functions on the same image with the handler as the command
(``<function>-<name>``, each with its own alias), their EventBridge rules, S3 notifications,
SNS subscriptions, event source mappings and permissions; a Function URL for non-Chalice apps.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lambdaship.api.observe import FunctionState, Observed
from lambdaship.api.plan import ApiStep, alias_arn, has_permission, var_ref
from lambdaship.apigateway.model import AppModel, EventSourceModel, ExtraFunction
from lambdaship.config import FunctionConfig
from lambdaship.deploy.steps import Later
from lambdaship.names import MANAGED_TAG


def extra_name(fn: FunctionConfig, x: ExtraFunction | EventSourceModel) -> str:
    return f"{fn.function_name}-{x.suffix if isinstance(x, ExtraFunction) else x.name}"


@dataclass(frozen=True)
class Code:
    """What the extra functions run: the app's image (handler = ``ImageConfig.Command``), or the
    app's zip (sent inline from the execution variable ``zip_bytes``; handler = ``Handler``)."""

    image_uri: str | None = None
    zip_sha256: str | None = None  # base64, as Lambda's CodeSha256
    runtime: str | None = None

    def create(self, handler: str) -> dict[str, Any]:
        if self.image_uri:
            return {"PackageType": "Image", "Code": {"ImageUri": self.image_uri},
                    "ImageConfig": {"Command": [handler]}}
        return {"PackageType": "Zip", "Code": {"ZipFile": Later("{zip_bytes}")}, "Runtime": self.runtime,
                "Handler": handler}

    def changed(self, st: FunctionState) -> dict[str, Any] | None:
        if self.image_uri:
            return {"ImageUri": self.image_uri} if st.image_uri != self.image_uri else None
        return {"ZipFile": Later("{zip_bytes}")} if st.code_sha256 != self.zip_sha256 else None

    def handler_update(self, st: FunctionState, handler: str) -> dict[str, Any] | None:
        if self.image_uri:
            return {"ImageConfig": {"Command": [handler]}} if list(st.command) != [handler] else None
        return {"Handler": handler} if st.handler != handler else None


def plan_functions(fn: FunctionConfig, model: AppModel, obs: Observed, *, code: Code,
                   config: Mapping[str, Any]) -> list[ApiStep]:
    """``config``: the main function's MemorySize/Timeout/Environment/Role/Architectures."""
    steps: list[ApiStep] = []
    for i, x in enumerate(model.extra_functions()):
        name = extra_name(fn, x)
        st = obs.functions.get(name) or FunctionState(name)
        changed = False
        if not st.exists:
            steps.append(ApiStep("lambda:CreateFunction", {
                "FunctionName": name, **code.create(x.handler), **config, "Tags": {MANAGED_TAG: fn.function_name}},
                f"{x.role} {x.handler} on the app's {'image' if code.image_uri else 'zip'}"))
            steps.append(ApiStep("lambda:Wait", {"FunctionName": name, "Waiter": "function_active_v2"}))
            changed = True
        else:
            new_code = code.changed(st)
            if new_code is not None:
                steps.append(ApiStep("lambda:UpdateFunctionCode", {"FunctionName": name, **new_code}))
                steps.append(ApiStep("lambda:Wait", {"FunctionName": name, "Waiter": "function_updated_v2"}))
                changed = True
            new_handler = code.handler_update(st, x.handler)
            if new_handler is not None:
                steps.append(ApiStep("lambda:UpdateFunctionConfiguration", {"FunctionName": name, **new_handler},
                                     "the handler changed"))
                steps.append(ApiStep("lambda:Wait", {"FunctionName": name, "Waiter": "function_updated_v2"}))
                changed = True
        if not changed and st.alias_version not in (None, "$LATEST"):
            continue
        var = f"version_{i}"
        steps.append(ApiStep("lambda:PublishVersion", {"FunctionName": name}, output=var))
        if st.alias_version is None:
            steps.append(ApiStep("lambda:CreateAlias", {"FunctionName": name, "Name": fn.alias,
                                                        "FunctionVersion": var_ref(var)}))
        else:
            steps.append(ApiStep("lambda:UpdateAlias", {"FunctionName": name, "Name": fn.alias,
                                                        "FunctionVersion": var_ref(var)},
                                 f"was version {st.alias_version}"))
    return steps


def _permission(obs: Observed, name: str, alias: str, principal: str, source: str, sid: str,
                account: bool = False) -> list[ApiStep]:
    st = obs.functions.get(name) or FunctionState(name)
    if has_permission(st.policy, principal, source):
        return []
    params = {"FunctionName": name, "Qualifier": alias, "StatementId": sid, "Action": "lambda:InvokeFunction",
              "Principal": principal, "SourceArn": source}
    if account:
        params["SourceAccount"] = obs.account
    return [ApiStep("lambda:AddPermission", params, f"only {source} may invoke it")]


def _mapping_steps(obs: Observed, src: EventSourceModel, target: str, source_arn: str) -> list[ApiStep]:
    want: dict[str, Any] = {"BatchSize": src.batch_size}
    if src.maximum_batching_window_in_seconds:
        want["MaximumBatchingWindowInSeconds"] = src.maximum_batching_window_in_seconds
    if src.maximum_concurrency:
        want["ScalingConfig"] = {"MaximumConcurrency": src.maximum_concurrency}
    # By source and function, whatever the qualifier: moto stores the alias's version instead.
    unqualified = target.rsplit(":", 1)[0]
    have = next((m for m in obs.mappings if m.get("EventSourceArn") == source_arn
                 and str(m.get("FunctionArn", "")).rsplit(":", 1)[0] == unqualified), None)
    if have is None:
        extra = {"StartingPosition": src.starting_position} if src.starting_position else {}
        return [ApiStep("lambda:CreateEventSourceMapping", {"EventSourceArn": source_arn, "FunctionName": target,
                                                            **want, **extra, "Enabled": True}, src.kind)]
    diff = {k: v for k, v in want.items() if have.get(k) != v}
    return [ApiStep("lambda:UpdateEventSourceMapping", {"UUID": have["UUID"], **diff}, src.kind)] if diff else []


def _rule_steps(fn: FunctionConfig, obs: Observed, src: EventSourceModel, name: str, target: str) -> list[ApiStep]:
    rule = name
    have = obs.rules.get(rule)
    rule_arn = f"arn:aws:events:{obs.region}:{obs.account}:rule/{rule}"
    want: dict[str, Any] = {"Name": rule, "State": "ENABLED", "Description": src.description or ""}
    if src.kind == "schedule":
        want["ScheduleExpression"] = src.expression
    else:
        want["EventPattern"] = json.dumps(src.event_pattern, sort_keys=True)
    steps: list[ApiStep] = []
    same = have is not None and all(
        (json.loads(have.get(k) or "null") == json.loads(v)) if k == "EventPattern" else have.get(k) == v
        for k, v in want.items() if k != "Description")
    if not same:
        steps.append(ApiStep("events:PutRule", {**want, "Tags": [{"Key": MANAGED_TAG, "Value": fn.function_name}]},
                             src.expression or "event pattern"))
    if not any(t.get("Arn") == target for t in (have or {}).get("Targets", [])):
        steps.append(ApiStep("events:PutTargets", {"Rule": rule, "Targets": [{"Id": "lambdaship", "Arn": target}]}))
    steps += _permission(obs, name, fn.alias, "events.amazonaws.com", rule_arn, f"lambdaship-events-{rule}"[:100])
    return steps


def _s3_steps(fn: FunctionConfig, obs: Observed, src: EventSourceModel, name: str, target: str) -> list[ApiStep]:
    assert src.bucket is not None
    current = dict(obs.notifications.get(src.bucket) or {})
    sid = f"lambdaship-{name}"[:255]
    entry: dict[str, Any] = {"Id": sid, "LambdaFunctionArn": target, "Events": list(src.events)}
    rules = [{"Name": k, "Value": v} for k, v in (("prefix", src.prefix), ("suffix", src.suffix)) if v]
    if rules:
        entry["Filter"] = {"Key": {"FilterRules": rules}}
    others = [c for c in current.get("LambdaFunctionConfigurations", []) if c.get("Id") != sid]
    mine = next((c for c in current.get("LambdaFunctionConfigurations", []) if c.get("Id") == sid), None)
    steps = _permission(obs, name, fn.alias, "s3.amazonaws.com", f"arn:aws:s3:::{src.bucket}",
                        f"lambdaship-s3-{src.bucket}"[:100], account=True)
    if mine is None or {k: mine.get(k) for k in entry} != entry:
        config = {**current, "LambdaFunctionConfigurations": [*others, entry]}
        steps.append(ApiStep("s3:PutBucketNotificationConfiguration", {
            "Bucket": src.bucket, "NotificationConfiguration": config},
            "the bucket's other notifications are kept"))
    return steps


def plan_triggers(fn: FunctionConfig, model: AppModel, obs: Observed) -> tuple[list[ApiStep], list[str]]:
    steps: list[ApiStep] = []
    shown: list[str] = []
    r, a = obs.region, obs.account
    for src in model.event_sources:
        name = f"{fn.function_name}-{src.name}"
        target = alias_arn(obs, name, fn.alias)
        if src.kind in ("schedule", "cw_event"):
            steps += _rule_steps(fn, obs, src, name, target)
            shown.append(f"{src.kind} {src.expression or 'pattern'} → {name}")
        elif src.kind == "sqs":
            arn = src.queue_arn or f"arn:aws:sqs:{r}:{a}:{src.queue}"
            steps += _mapping_steps(obs, src, target, arn)
            shown.append(f"sqs {arn} → {name}")
        elif src.kind == "kinesis":
            arn = f"arn:aws:kinesis:{r}:{a}:stream/{src.stream}"
            steps += _mapping_steps(obs, src, target, arn)
            shown.append(f"kinesis {arn} → {name}")
        elif src.kind == "dynamodb":
            assert src.stream_arn is not None
            steps += _mapping_steps(obs, src, target, src.stream_arn)
            shown.append(f"dynamodb {src.stream_arn} → {name}")
        elif src.kind == "s3":
            steps += _s3_steps(fn, obs, src, name, target)
            shown.append(f"s3 {src.bucket} {','.join(src.events)} → {name}")
        elif src.kind == "sns":
            topic = src.topic if (src.topic or "").startswith("arn:") else f"arn:aws:sns:{r}:{a}:{src.topic}"
            assert topic is not None
            steps += _permission(obs, name, fn.alias, "sns.amazonaws.com", topic, f"lambdaship-sns-{name}"[:100])
            if not any(s.get("TopicArn") == topic and s.get("Endpoint") == target for s in obs.subscriptions):
                steps.append(ApiStep("sns:Subscribe", {"TopicArn": topic, "Protocol": "lambda", "Endpoint": target}))
            shown.append(f"sns {topic} → {name}")
    return steps, shown


def plan_function_url(fn: FunctionConfig, obs: Observed) -> list[ApiStep]:
    """A Function URL on the alias (``function_url`` config; for apps that are not Chalice apps)."""
    url = getattr(fn, "function_url", None)
    if url is None:
        return []
    st = obs.functions.get(fn.function_name) or FunctionState(fn.function_name)
    want: dict[str, Any] = {"AuthType": url.auth}
    if url.cors is not None:
        want["Cors"] = url.cors
    steps: list[ApiStep] = []
    have = st.url_config
    ref = {"FunctionName": fn.function_name, "Qualifier": fn.alias}
    if have is None:
        steps.append(ApiStep("lambda:CreateFunctionUrlConfig", {**ref, **want}, "on the alias", output="function_url"))
    elif any(have.get(k) != v for k, v in want.items()) or ("Cors" in have and "Cors" not in want):
        steps.append(ApiStep("lambda:UpdateFunctionUrlConfig", {**ref, **want, **({"Cors": {}} if "Cors" not in want
                                                                                 else {})}))
    if url.auth == "NONE" and not any(st_.get("Action") == "lambda:InvokeFunctionUrl" for st_ in st.policy):
        steps.append(ApiStep("lambda:AddPermission", {**ref, "StatementId": "lambdaship-url-public",
                                                      "Action": "lambda:InvokeFunctionUrl", "Principal": "*",
                                                      "FunctionUrlAuthType": "NONE"},
                             "AuthType NONE: anyone with the URL may call it"))
    return steps


def plan_removals(obs: Observed) -> list[ApiStep]:
    """Functions made for handlers the app no longer declares: their rules' targets and rules,
    event source mappings and SNS subscriptions, then the function (its versions and alias)."""
    steps: list[ApiStep] = []
    for st in obs.stale:
        for rule in st.rules:
            steps.append(ApiStep("events:RemoveTargets", {"Rule": rule, "Ids": ["lambdaship"]}, f"{st.name}: removed"))
            steps.append(ApiStep("events:DeleteRule", {"Name": rule}))
        for m in obs.mappings:
            if str(m.get("FunctionArn", "")).split(":")[6:7] == [st.name]:
                steps.append(ApiStep("lambda:DeleteEventSourceMapping", {"UUID": m["UUID"]},
                                     f"{m.get('EventSourceArn')} → {st.name}"))
        for sub in obs.subscriptions:
            if str(sub.get("Endpoint", "")).split(":")[6:7] == [st.name]:
                steps.append(ApiStep("sns:Unsubscribe", {"SubscriptionArn": sub["SubscriptionArn"]}))
        steps.append(ApiStep("lambda:DeleteFunction", {"FunctionName": st.name},
                             "no handler of the app runs here any more"))
    return steps
