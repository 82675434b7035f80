"""Read-only: the old function and everything that invokes it.

Only describe/list/get calls. What is found:

- API Gateway REST integrations whose ``uri`` names the function (any qualifier), and the
  stages of those APIs; HTTP API (v2) integrations likewise;
- the statements of the function's resource policy (unqualified and per alias);
- event source mappings of the function or its aliases (all mappings listed, matched by ARN:
  Lambda's ``FunctionName`` filter only matches one exact qualifier);
- S3 bucket notifications (buckets named in the policy's S3 statements; every bucket when an S3
  statement has no SourceArn), SNS subscriptions, EventBridge targets (every bus).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import Any

from lambdaship.errors import LambdashipError
from lambdaship.patterns import arn_pattern

S3_ARN_RE = re.compile(r"^arn:aws[a-z-]*:s3:::(?P<bucket>[^/]+)$")


@dataclass
class Permission:
    """One statement of the old function's resource policy, as AddPermission parameters."""

    sid: str
    action: str
    principal: str
    qualifier: str | None = None  # where it sits on the old function
    source_arn: str | None = None
    source_account: str | None = None
    event_source_token: str | None = None
    principal_org_id: str | None = None
    url_auth_type: str | None = None

    def key(self) -> tuple[Any, ...]:
        return (self.action, self.principal, self.source_arn, self.source_account, self.event_source_token,
                self.principal_org_id, self.url_auth_type)

    def add_params(self, function_name: str, qualifier: str, sid: str) -> dict[str, Any]:
        p: dict[str, Any] = {
            "FunctionName": function_name, "Qualifier": qualifier, "StatementId": sid,
            "Action": self.action, "Principal": self.principal,
        }
        for name, value in (("SourceArn", self.source_arn), ("SourceAccount", self.source_account),
                            ("EventSourceToken", self.event_source_token),
                            ("PrincipalOrgID", self.principal_org_id), ("FunctionUrlAuthType", self.url_auth_type)):
            if value:
                p[name] = value
        return p


@dataclass
class RestIntegration:
    api_id: str
    api_name: str
    resource_id: str
    path: str
    method: str
    uri: str
    type: str
    credentials: str | None = None


@dataclass
class HttpIntegration:
    api_id: str
    api_name: str
    integration_id: str
    uri: str
    routes: list[str] = field(default_factory=list)


@dataclass
class Stage:
    kind: str  # "rest" | "http"
    api_id: str
    name: str
    deployment_id: str | None
    auto_deploy: bool = False


@dataclass
class Mapping:
    uuid: str
    source_arn: str
    function_arn: str
    state: str | None = None


@dataclass
class BucketNotification:
    bucket: str
    ids: list[str]
    configuration: dict[str, Any]


@dataclass
class Subscription:
    arn: str
    topic_arn: str
    endpoint: str
    attributes: dict[str, str]


@dataclass
class RuleTarget:
    bus: str
    rule: str
    target: dict[str, Any]


@dataclass
class Inventory:
    name: str
    arn: str
    configuration: dict[str, Any]
    tags: dict[str, str]
    reserved_concurrency: int | None
    aliases: list[str]
    url: dict[str, Any] | None
    permissions: list[Permission] = field(default_factory=list)
    rest: list[RestIntegration] = field(default_factory=list)
    http: list[HttpIntegration] = field(default_factory=list)
    stages: list[Stage] = field(default_factory=list)
    mappings: list[Mapping] = field(default_factory=list)
    buckets: list[BucketNotification] = field(default_factory=list)
    subscriptions: list[Subscription] = field(default_factory=list)
    targets: list[RuleTarget] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def triggers_json(self) -> dict[str, Any]:
        return {
            "rest_integrations": [asdict(i) for i in self.rest],
            "http_integrations": [asdict(i) for i in self.http],
            "stages": [asdict(s) for s in self.stages],
            "event_source_mappings": [asdict(m) for m in self.mappings],
            "s3_notifications": [{"bucket": b.bucket, "ids": b.ids} for b in self.buckets],
            "sns_subscriptions": [{"arn": s.arn, "topic_arn": s.topic_arn} for s in self.subscriptions],
            "eventbridge_targets": [{"bus": t.bus, "rule": t.rule, "id": t.target.get("Id")} for t in self.targets],
            "permissions": [asdict(p) for p in self.permissions],
        }


def _cond(statement: dict[str, Any], key: str) -> str | None:
    for table in (statement.get("Condition") or {}).values():
        if not isinstance(table, dict):
            continue
        for k, v in table.items():
            if k.lower() == key.lower():
                return v[0] if isinstance(v, list) and v else v
    return None


def parse_statement(st: dict[str, Any], qualifier: str | None) -> Permission | None:
    principal = st.get("Principal")
    if isinstance(principal, dict):
        principal = principal.get("Service") or principal.get("AWS")
    if isinstance(principal, list):
        principal = principal[0] if len(principal) == 1 else None
    if not isinstance(principal, str) or st.get("Effect", "Allow") != "Allow":
        return None
    action = st.get("Action")
    if isinstance(action, list):
        action = action[0] if len(action) == 1 else None
    if not isinstance(action, str):
        return None
    return Permission(
        sid=str(st.get("Sid") or "lambdaship-migrated"),
        action=action,
        principal=principal,
        qualifier=qualifier,
        source_arn=_cond(st, "AWS:SourceArn"),
        source_account=_cond(st, "AWS:SourceAccount"),
        event_source_token=_cond(st, "lambda:EventSourceToken"),
        principal_org_id=_cond(st, "aws:PrincipalOrgID"),
        url_auth_type=_cond(st, "lambda:FunctionUrlAuthType"),
    )


def read_function(name: str) -> Inventory:
    from lambdaship.aws import lambda_

    fn = lambda_.get_function(name)
    if fn is None:
        raise LambdashipError(f"function {name} does not exist", "check --from and the AWS region/account")
    cfg = fn["Configuration"]
    inv = Inventory(
        name=cfg["FunctionName"],
        arn=cfg["FunctionArn"],
        configuration=cfg,
        tags=dict(fn.get("Tags") or {}),
        reserved_concurrency=(fn.get("Concurrency") or {}).get("ReservedConcurrentExecutions"),
        aliases=[a["Name"] for a in lambda_.list_aliases(name)],
        url=lambda_.get_url_config(name),
    )
    return inv


def discover(inv: Inventory) -> Inventory:
    """Fill ``inv`` with every trigger found (read-only calls)."""
    _permissions(inv)
    _rest(inv)
    _http(inv)
    _mappings(inv)
    _s3(inv)
    _sns(inv)
    _eventbridge(inv)
    return inv


def _permissions(inv: Inventory) -> None:
    from lambdaship.aws import lambda_

    seen: set[tuple[Any, ...]] = set()
    for qualifier in [None, *inv.aliases]:
        for st in lambda_.get_policy(inv.name, qualifier):
            perm = parse_statement(st, qualifier)
            if perm is None:
                inv.warnings.append(f"policy statement {st.get('Sid')!r} of {inv.name} has a shape lambdaship "
                                    "cannot copy; add it to the new alias yourself")
                continue
            if perm.key() in seen:
                continue
            seen.add(perm.key())
            inv.permissions.append(perm)


def _rest(inv: Inventory) -> None:
    from lambdaship.aws import apigw

    pattern = arn_pattern(inv.arn)
    for api in apigw.list_rest_apis():
        found = []
        for res in apigw.list_resources(api["id"]):
            for method, m in sorted((res.get("resourceMethods") or {}).items()):
                integ = m.get("methodIntegration") or {}
                uri = integ.get("uri") or ""
                if pattern.search(uri):
                    found.append(RestIntegration(
                        api_id=api["id"], api_name=api.get("name", ""), resource_id=res["id"], path=res["path"],
                        method=method, uri=uri, type=integ.get("type", ""), credentials=integ.get("credentials"),
                    ))
        if not found:
            continue
        inv.rest.extend(found)
        deployments = apigw.list_deployments(api["id"])
        latest = max(deployments, key=lambda d: d.get("createdDate") or 0)["id"] if deployments else None
        for st in apigw.list_stages(api["id"]):
            inv.stages.append(Stage("rest", api["id"], st["stageName"], st.get("deploymentId")))
            if st.get("deploymentId") != latest:
                inv.warnings.append(f"stage {st['stageName']} of API {api['id']} serves an older deployment; "
                                    "redeploying it also publishes every API change made since")
        for i in found:
            if i.credentials:
                inv.warnings.append(f"{i.method} {i.path} of API {i.api_id} invokes with role {i.credentials}: "
                                    "allow that role to invoke the new function")


def _http(inv: Inventory) -> None:
    from lambdaship.aws import apigw

    pattern = arn_pattern(inv.arn)
    for api in apigw.list_http_apis():
        api_id = api["ApiId"]
        found = [
            HttpIntegration(api_id, api.get("Name", ""), i["IntegrationId"], i.get("IntegrationUri", ""))
            for i in apigw.list_integrations_v2(api_id)
            if pattern.search(i.get("IntegrationUri") or "")  # a plain ARN or the .../functions/ARN/invocations form
        ]
        if not found:
            continue
        by_id = {i.integration_id: i for i in found}
        for route in apigw.list_routes_v2(api_id):
            target = (route.get("Target") or "").removeprefix("integrations/")
            if target in by_id:
                by_id[target].routes.append(route.get("RouteKey", ""))
        inv.http.extend(found)
        for st in apigw.list_stages_v2(api_id):
            inv.stages.append(Stage("http", api_id, st["StageName"], st.get("DeploymentId"),
                                    bool(st.get("AutoDeploy"))))


def _mappings(inv: Inventory) -> None:
    from lambdaship.aws import events

    pattern = arn_pattern(inv.arn)
    for m in events.list_event_source_mappings():
        if pattern.fullmatch(m.get("FunctionArn") or ""):
            inv.mappings.append(Mapping(m["UUID"], m.get("EventSourceArn", ""), m["FunctionArn"], m.get("State")))


def _s3(inv: Inventory) -> None:
    from lambdaship.aws.errors import client_error_type

    ClientError = client_error_type()

    from lambdaship.aws import events

    s3_perms = [p for p in inv.permissions if p.principal == "s3.amazonaws.com"]
    if not s3_perms:
        return  # S3 cannot invoke the function without a policy statement
    named = [m.group("bucket") for p in s3_perms if p.source_arn and (m := S3_ARN_RE.match(p.source_arn))]
    buckets = events.list_buckets() if len(named) < len(s3_perms) else sorted(set(named))
    pattern = arn_pattern(inv.arn)
    for bucket in buckets:
        try:
            conf = events.get_bucket_notification(bucket)
        except ClientError as exc:
            inv.warnings.append(f"cannot read the notifications of bucket {bucket} "
                                f"({exc.response.get('Error', {}).get('Code')}); re-point them yourself")
            continue
        ids = [c.get("Id", "") for c in conf.get("LambdaFunctionConfigurations", [])
               if pattern.fullmatch(c.get("LambdaFunctionArn", ""))]
        if ids:
            inv.buckets.append(BucketNotification(bucket, ids, conf))


def _sns(inv: Inventory) -> None:
    from lambdaship.aws import events

    pattern = arn_pattern(inv.arn)
    for sub in events.list_subscriptions():
        if sub.get("Protocol") == "lambda" and pattern.fullmatch(sub.get("Endpoint", "")):
            if sub["SubscriptionArn"] in ("PendingConfirmation", "Deleted"):
                continue
            attrs = {k: v for k, v in events.get_subscription_attributes(sub["SubscriptionArn"]).items()
                     if k in events.SUBSCRIBE_ATTRIBUTES}
            inv.subscriptions.append(Subscription(sub["SubscriptionArn"], sub["TopicArn"], sub["Endpoint"], attrs))


def _eventbridge(inv: Inventory) -> None:
    from lambdaship.aws import events

    pattern = arn_pattern(inv.arn)
    arns = [inv.arn, *(f"{inv.arn}:{a}" for a in inv.aliases)]
    for bus in events.list_event_buses():
        rules = sorted({r for arn in arns for r in events.list_rule_names_by_target(arn, bus)})
        for rule in rules:
            for t in events.list_targets_by_rule(rule, bus):
                if pattern.fullmatch(t.get("Arn", "")):
                    inv.targets.append(RuleTarget(bus, rule, t))
