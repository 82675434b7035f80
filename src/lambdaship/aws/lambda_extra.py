"""Lambda wrappers used by ``migrate`` (resource policies, concurrency, deletion, URLs).

Thin, like :mod:`lambdaship.aws.lambda_`: "not found" is ``None`` / empty.
"""

from __future__ import annotations

import json
from typing import Any

from lambdaship.aws.session import client as _client


def _code(exc: Exception) -> str | None:
    resp = getattr(exc, "response", None)
    return resp.get("Error", {}).get("Code") if isinstance(resp, dict) else None


def get_policy(function_name: str, qualifier: str | None = None) -> list[dict[str, Any]]:
    """The statements of the function's (or alias's) resource policy; [] when it has none."""
    from botocore.exceptions import ClientError

    kw: dict[str, Any] = {"FunctionName": function_name}
    if qualifier:
        kw["Qualifier"] = qualifier
    try:
        policy = _client("lambda").get_policy(**kw)["Policy"]
    except ClientError as exc:
        if _code(exc) == "ResourceNotFoundException":
            return []
        raise
    return list(json.loads(policy).get("Statement", []))


def add_permission(**params: Any) -> None:
    _client("lambda").add_permission(**params)


def remove_permission(function_name: str, statement_id: str, qualifier: str | None = None) -> None:
    kw: dict[str, Any] = {"FunctionName": function_name, "StatementId": statement_id}
    if qualifier:
        kw["Qualifier"] = qualifier
    _client("lambda").remove_permission(**kw)


def put_concurrency(function_name: str, reserved: int) -> None:
    _client("lambda").put_function_concurrency(FunctionName=function_name, ReservedConcurrentExecutions=reserved)


def get_url_config(function_name: str) -> dict[str, Any] | None:
    from botocore.exceptions import ClientError

    try:
        resp = dict(_client("lambda").get_function_url_config(FunctionName=function_name))
    except ClientError as exc:
        if _code(exc) == "ResourceNotFoundException":
            return None
        raise
    resp.pop("ResponseMetadata", None)
    return resp


def delete_function(function_name: str) -> None:
    """Delete the function with all its versions and aliases."""
    _client("lambda").delete_function(FunctionName=function_name)
