"""Thin wrappers over what can invoke a Lambda function besides API Gateway.

Event source mappings (SQS, Kinesis, DynamoDB streams, MSK… — Lambda polls them), S3 bucket
notifications, SNS subscriptions and EventBridge rule targets. Used by ``lambdaship migrate``
to find and re-point triggers; each function is one API call (or one paginated listing).
"""

from __future__ import annotations

import functools
import os
from typing import Any

from lambdaship.aws.session import client as _new_client
from lambdaship.errors import LambdashipError


@functools.cache
def _cached(service: str, endpoint: str | None, region: str | None) -> Any:
    return _new_client(service)


def _client(service: str) -> Any:
    """One client per service (and endpoint/region): creating a boto3 client costs ~0.1-0.4 s."""
    return _cached(service, os.environ.get("AWS_ENDPOINT_URL"), os.environ.get("AWS_REGION"))


def _strip(resp: dict[str, Any]) -> dict[str, Any]:
    resp = dict(resp)
    resp.pop("ResponseMetadata", None)
    return resp


# ---- event source mappings (lambda) -----------------------------------------------------------
def list_event_source_mappings(function_name: str | None = None) -> list[dict[str, Any]]:
    """All mappings of the account/region, or those Lambda files under ``function_name``.

    Lambda filters by the exact (qualified or not) function it was given, so callers that want
    every mapping of a function *and its aliases/versions* list all and match ARNs themselves.
    """
    params = {"FunctionName": function_name} if function_name else {}
    out: list[dict[str, Any]] = []
    for page in _client("lambda").get_paginator("list_event_source_mappings").paginate(**params):
        out.extend(page.get("EventSourceMappings", []))
    return out


def get_event_source_mapping(uuid: str) -> dict[str, Any]:
    return _strip(_client("lambda").get_event_source_mapping(UUID=uuid))


def set_event_source_mapping_function(uuid: str, function: str) -> dict[str, Any]:
    """Point the mapping at another function (name or ARN, qualified or not)."""
    return _strip(_client("lambda").update_event_source_mapping(UUID=uuid, FunctionName=function))


# ---- S3 bucket notifications ------------------------------------------------------------------
def list_buckets() -> list[str]:
    return [b["Name"] for b in _client("s3").list_buckets().get("Buckets", [])]


def get_bucket_notification(bucket: str) -> dict[str, Any]:
    resp = _strip(_client("s3").get_bucket_notification_configuration(Bucket=bucket))
    return {k: v for k, v in resp.items() if k.endswith("Configurations") or k == "EventBridgeConfiguration"}


def put_bucket_notification(bucket: str, configuration: dict[str, Any]) -> None:
    """Replace the bucket's whole notification configuration (S3 has no per-entry update)."""
    _client("s3").put_bucket_notification_configuration(
        Bucket=bucket, NotificationConfiguration=configuration, SkipDestinationValidation=False
    )


# ---- SNS subscriptions ------------------------------------------------------------------------
def list_subscriptions() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for page in _client("sns").get_paginator("list_subscriptions").paginate():
        out.extend(page.get("Subscriptions", []))
    return out


def list_subscriptions_by_topic(topic_arn: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for page in _client("sns").get_paginator("list_subscriptions_by_topic").paginate(TopicArn=topic_arn):
        out.extend(page.get("Subscriptions", []))
    return out


def get_subscription_attributes(subscription_arn: str) -> dict[str, str]:
    return dict(_client("sns").get_subscription_attributes(SubscriptionArn=subscription_arn).get("Attributes", {}))


# Attributes a subscriber may set at subscribe time (the rest are read-only).
SUBSCRIBE_ATTRIBUTES = ("DeliveryPolicy", "FilterPolicy", "FilterPolicyScope", "RawMessageDelivery", "RedrivePolicy")


def subscribe(topic_arn: str, endpoint: str, attributes: dict[str, str] | None = None) -> str:
    """Subscribe a Lambda endpoint; the subscription's ARN (Lambda subscriptions need no confirmation)."""
    attrs = {k: v for k, v in (attributes or {}).items() if k in SUBSCRIBE_ATTRIBUTES and v not in (None, "")}
    resp = _client("sns").subscribe(
        TopicArn=topic_arn, Protocol="lambda", Endpoint=endpoint, Attributes=attrs, ReturnSubscriptionArn=True
    )
    return str(resp["SubscriptionArn"])


def unsubscribe(subscription_arn: str) -> None:
    _client("sns").unsubscribe(SubscriptionArn=subscription_arn)


# ---- EventBridge ------------------------------------------------------------------------------
def list_event_buses() -> list[str]:
    out: list[str] = []
    c = _client("events")
    token: str | None = None
    while True:
        resp = c.list_event_buses(**({"NextToken": token} if token else {}))
        out.extend(b["Name"] for b in resp.get("EventBuses", []))
        token = resp.get("NextToken")
        if not token:
            return out


def list_rule_names_by_target(target_arn: str, bus: str) -> list[str]:
    out: list[str] = []
    for page in _client("events").get_paginator("list_rule_names_by_target").paginate(
        TargetArn=target_arn, EventBusName=bus
    ):
        out.extend(page.get("RuleNames", []))
    return out


def list_targets_by_rule(rule: str, bus: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for page in _client("events").get_paginator("list_targets_by_rule").paginate(Rule=rule, EventBusName=bus):
        out.extend(page.get("Targets", []))
    return out


def put_target(rule: str, bus: str, target: dict[str, Any]) -> None:
    """Create or replace (same ``Id``) one target of a rule."""
    resp = _client("events").put_targets(Rule=rule, EventBusName=bus, Targets=[target])
    if resp.get("FailedEntryCount"):
        entry = resp.get("FailedEntries", [{}])[0]
        raise LambdashipError(
            f"EventBridge PutTargets failed for target {target.get('Id')} of rule {rule}: "
            f"{entry.get('ErrorCode')}: {entry.get('ErrorMessage')}"
        )


# ---- generic (the API deploy's trigger steps, lambdaship.api) ----------------------------------
def call(service: str, operation: str, **params: Any) -> dict[str, Any]:
    """One call by its AWS name (``events``, ``PutRule``), result without metadata."""
    import re

    return _strip(getattr(_client(service), re.sub(r"(?<!^)(?=[A-Z])", "_", operation).lower())(**params))
