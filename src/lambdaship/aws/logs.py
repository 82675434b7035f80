"""CloudWatch Logs: read a function's log group."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from lambdaship.aws.session import client as _client


def client() -> Any:
    return _client("logs")


def group_for(function_name: str) -> str:
    from lambdaship.names import Names

    return Names(function_name).log_group


def group_exists(group: str) -> bool:
    resp = client().describe_log_groups(logGroupNamePrefix=group)
    return any(g["logGroupName"] == group for g in resp.get("logGroups", []))


def filter_events(
    group: str, *, start_ms: int | None = None, pattern: str | None = None, end_ms: int | None = None
) -> Iterator[dict[str, Any]]:
    """Events of ``group`` (all streams) from ``start_ms``, oldest first, following pagination."""
    kw: dict[str, Any] = {"logGroupName": group}
    if start_ms is not None:
        kw["startTime"] = start_ms
    if end_ms is not None:
        kw["endTime"] = end_ms
    if pattern:
        kw["filterPattern"] = pattern
    while True:
        resp = client().filter_log_events(**kw)
        yield from resp.get("events", [])
        token = resp.get("nextToken")
        if not token or token == kw.get("nextToken"):
            return
        kw["nextToken"] = token


def put_events(group: str, stream: str, events: list[dict[str, Any]]) -> None:
    """Append ``events`` ({timestamp, message}) to ``group``/``stream``, creating both if missing."""
    c = client()
    for create in (lambda: c.create_log_group(logGroupName=group),
                   lambda: c.create_log_stream(logGroupName=group, logStreamName=stream)):
        with contextlib.suppress(c.exceptions.ResourceAlreadyExistsException):
            create()
    c.put_log_events(logGroupName=group, logStreamName=stream, logEvents=events)
