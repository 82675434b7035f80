"""Thin wrappers over the Lambda API (boto3 ``lambda``).

Conventions: "not found" is ``None``, not an exception; ``ResourceConflictException`` (an update
still in progress) is retried after waiting; ``PreconditionFailedException`` (a RevisionId that
no longer matches) becomes :class:`ConcurrentDeployError`, one line for the user.
"""

from __future__ import annotations

import contextlib
import copy
import json
from collections.abc import Callable
from typing import Any, TypeVar

from lambdaship.aws.errors import aws_error_code
from lambdaship.aws.session import client as _client
from lambdaship.errors import LambdashipError
from lambdaship.shared import Shared

T = TypeVar("T")


class ConcurrentDeployError(LambdashipError):
    """Somebody else changed the function between our read and our write."""

    def __init__(self, function_name: str, detail: str = "") -> None:
        super().__init__(
            f"{function_name} was changed by another deploy while this one ran" + (f" ({detail})" if detail else ""),
            "nothing was moved; check `lambdaship status` and run the deploy again",
        )


class UpdateFailedError(LambdashipError):
    pass


def client() -> Any:
    return _client("lambda")


def _code(exc: Exception) -> str | None:
    return aws_error_code(exc)


def _call(name: str, fn: Callable[..., T], function_name: str, **params: Any) -> T:
    """Call ``fn(**params)``; retry ResourceConflictException, translate PreconditionFailed."""
    import stamina
    from botocore.exceptions import ClientError

    class _Conflict(Exception):
        pass

    @stamina.retry(on=_Conflict, attempts=8, wait_initial=0.5, wait_max=10.0, timeout=300)
    def attempt() -> T:
        try:
            return fn(**params)
        except ClientError as exc:
            code = _code(exc)
            if code == "ResourceConflictException":
                # An update is in progress: wait for it (cheap when it is already done), then retry.
                with contextlib.suppress(LambdashipError):
                    wait_updated(function_name)
                raise _Conflict(str(exc)) from exc
            if code == "PreconditionFailedException":
                detail = f"{name}: $LATEST is not what this deploy read or wrote"
                raise ConcurrentDeployError(function_name, detail) from None
            raise

    try:
        return attempt()
    except _Conflict as exc:
        raise LambdashipError(
            f"{function_name}: {name} kept failing with ResourceConflictException (an update is in progress)",
            "wait for the running update to finish and try again",
        ) from exc


def _strip(resp: dict[str, Any]) -> dict[str, Any]:
    resp = dict(resp)
    resp.pop("ResponseMetadata", None)
    return resp


# One deploy's planning asks for the same function several times before it changes anything
# (the previous image for the build, zip or image, the observed state, the app's functions): in
# :func:`shared_reads` each ``GetFunction`` is made once and its answer shared (threads that copy
# the context share it too); each caller gets its own copy.
_reads: Shared[dict[str, Any] | None] = Shared("lambdaship_lambda_reads", copy=copy.deepcopy)
shared_reads = _reads.scope  # planning only: read-only, before any change


def get_function(name: str, qualifier: str | None = None) -> dict[str, Any] | None:
    """``GetFunction`` (Configuration, Code, Tags) or None when the function does not exist."""
    from lambdaship.aws.session import resolved_region

    return _reads.get((name, qualifier, resolved_region()), lambda: _get_function(name, qualifier))


def _get_function(name: str, qualifier: str | None) -> dict[str, Any] | None:
    from botocore.exceptions import ClientError

    kw: dict[str, Any] = {"FunctionName": name}
    if qualifier:
        kw["Qualifier"] = qualifier
    try:
        return _strip(client().get_function(**kw))
    except ClientError as exc:
        if _code(exc) == "ResourceNotFoundException":
            return None
        raise


def create_function(**params: Any) -> dict[str, Any]:
    return _strip(_call("CreateFunction", client().create_function, params["FunctionName"], **params))


def update_function_code(**params: Any) -> dict[str, Any]:
    return _strip(_call("UpdateFunctionCode", client().update_function_code, params["FunctionName"], **params))


def update_function_configuration(**params: Any) -> dict[str, Any]:
    return _strip(
        _call("UpdateFunctionConfiguration", client().update_function_configuration, params["FunctionName"], **params)
    )


def publish_version(**params: Any) -> dict[str, Any]:
    return _strip(_call("PublishVersion", client().publish_version, params["FunctionName"], **params))


def tag_resource(arn: str, tags: dict[str, str]) -> None:
    client().tag_resource(Resource=arn, Tags=tags)


def delete_version(function_name: str, version: str) -> None:
    """Delete one published version (never $LATEST)."""
    if not version.isdigit():
        raise ValueError(f"not a published version: {version!r}")
    client().delete_function(FunctionName=function_name, Qualifier=version)


def get_alias(function_name: str, alias: str) -> dict[str, Any] | None:
    from botocore.exceptions import ClientError

    try:
        return _strip(client().get_alias(FunctionName=function_name, Name=alias))
    except ClientError as exc:
        if _code(exc) == "ResourceNotFoundException":
            return None
        raise


def create_alias(**params: Any) -> dict[str, Any]:
    return _strip(_call("CreateAlias", client().create_alias, params["FunctionName"], **params))


def update_alias(**params: Any) -> dict[str, Any]:
    return _strip(_call("UpdateAlias", client().update_alias, params["FunctionName"], **params))


def list_versions(function_name: str) -> list[dict[str, Any]]:
    """Published versions (not $LATEST), oldest first."""
    out: list[dict[str, Any]] = []
    for page in client().get_paginator("list_versions_by_function").paginate(FunctionName=function_name):
        out.extend(v for v in page.get("Versions", []) if v.get("Version") != "$LATEST")
    return sorted(out, key=lambda v: int(v["Version"]))


def list_aliases(function_name: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for page in client().get_paginator("list_aliases").paginate(FunctionName=function_name):
        out.extend(page.get("Aliases", []))
    return out


def invoke(function_name: str, qualifier: str | None, payload: Any) -> tuple[str | None, bytes]:
    """Synchronous invoke: (FunctionError or None, response payload)."""
    kw: dict[str, Any] = {
        "FunctionName": function_name,
        "InvocationType": "RequestResponse",
        "Payload": json.dumps(payload).encode(),
    }
    if qualifier:
        kw["Qualifier"] = qualifier
    resp = client().invoke(**kw)
    return resp.get("FunctionError"), resp["Payload"].read()


# What each waiter waits for (its success acceptor); a "Failed" State or LastUpdateStatus ends any.
_SETTLED = {"function_active_v2": ("State", "Active"), "function_updated_v2": ("LastUpdateStatus", "Successful"),
            "published_version_active": ("State", "Active")}


def _wait(waiter_name: str, function_name: str, qualifier: str | None, timeout: float,
          known: dict[str, Any] | None = None) -> dict[str, Any]:
    """Wait with ``waiter_name``, then read the state (and raise with Lambda's reason). ``known``:
    the configuration Lambda answered the write with; when it is already settled (or failed),
    nothing is polled: Lambda said so itself."""
    from botocore.exceptions import WaiterError

    if known is not None:
        field, done = _SETTLED[waiter_name]
        if known.get(field) == done or "Failed" in (known.get("State"), known.get("LastUpdateStatus")):
            return _settled(_strip(known), function_name, timeout)
    delay = 2
    kw: dict[str, Any] = {
        "FunctionName": function_name,
        "WaiterConfig": {"Delay": delay, "MaxAttempts": max(1, int(timeout / delay))},
    }
    if qualifier:
        kw["Qualifier"] = qualifier
    with contextlib.suppress(WaiterError):  # read the state below and report Lambda's reason
        client().get_waiter(waiter_name).wait(**kw)
    cfg = client().get_function_configuration(**{k: v for k, v in kw.items() if k != "WaiterConfig"})
    return _settled(_strip(cfg), function_name, timeout)


def _settled(cfg: dict[str, Any], function_name: str, timeout: float) -> dict[str, Any]:
    state, last = cfg.get("State"), cfg.get("LastUpdateStatus")
    if state == "Failed" or last == "Failed":
        reason = cfg.get("LastUpdateStatusReason") or cfg.get("StateReason") or "no reason given"
        code = cfg.get("LastUpdateStatusReasonCode") or cfg.get("StateReasonCode") or ""
        raise UpdateFailedError(
            f"Lambda reports the update of {function_name} Failed: {reason}" + (f" ({code})" if code else ""),
            "fix the cause and deploy again; the alias was not moved",
        )
    if state not in (None, "Active") or last not in (None, "Successful"):
        raise UpdateFailedError(
            f"{function_name} is still {state}/{last} after {timeout:.0f}s",
            "wait and check `lambdaship status`; the alias was not moved",
        )
    return cfg


def wait_active(function_name: str, timeout: float = 600, known: dict[str, Any] | None = None) -> dict[str, Any]:
    """Wait until a new function is Active (``function_active_v2``); raise with Lambda's reason if
    Failed. ``known``: CreateFunction's answer (no wait when it is already Active)."""
    return _wait("function_active_v2", function_name, None, timeout, known)


def wait_updated(function_name: str, timeout: float = 600, known: dict[str, Any] | None = None) -> dict[str, Any]:
    """Wait until LastUpdateStatus is Successful (``function_updated_v2``); raise if Failed.
    ``known``: the update's answer (no wait when it already says Successful)."""
    return _wait("function_updated_v2", function_name, None, timeout, known)


def wait_version(function_name: str, version: str, timeout: float = 600) -> dict[str, Any]:
    return _wait("published_version_active", function_name, version, timeout)


def account_region() -> tuple[str, str]:
    from lambdaship.aws.session import client as c
    from lambdaship.aws.session import region

    ident = c("sts").get_caller_identity()
    return ident["Account"], region() or "us-east-1"


# ---- resource policies, concurrency, URLs, deletion (used by migrate) ----------------------------
def get_policy(function_name: str, qualifier: str | None = None) -> list[dict[str, Any]]:
    """The statements of the function's (or alias's) resource policy; [] when it has none."""
    from botocore.exceptions import ClientError

    kw: dict[str, Any] = {"FunctionName": function_name}
    if qualifier:
        kw["Qualifier"] = qualifier
    try:
        policy = client().get_policy(**kw)["Policy"]
    except ClientError as exc:
        if _code(exc) == "ResourceNotFoundException":
            return []
        raise
    return list(json.loads(policy).get("Statement", []))


def add_permission(**params: Any) -> None:
    client().add_permission(**params)


def remove_permission(function_name: str, statement_id: str, qualifier: str | None = None) -> None:
    kw: dict[str, Any] = {"FunctionName": function_name, "StatementId": statement_id}
    if qualifier:
        kw["Qualifier"] = qualifier
    client().remove_permission(**kw)


def put_concurrency(function_name: str, reserved: int) -> None:
    client().put_function_concurrency(FunctionName=function_name, ReservedConcurrentExecutions=reserved)


def get_url_config(function_name: str) -> dict[str, Any] | None:
    from botocore.exceptions import ClientError

    try:
        resp = dict(client().get_function_url_config(FunctionName=function_name))
    except ClientError as exc:
        if _code(exc) == "ResourceNotFoundException":
            return None
        raise
    resp.pop("ResponseMetadata", None)
    return resp


def delete_function(function_name: str) -> None:
    """Delete the function with all its versions and aliases."""
    client().delete_function(FunctionName=function_name)


def list_function_names() -> list[str]:
    out: list[str] = []
    for page in client().get_paginator("list_functions").paginate():
        out.extend(f["FunctionName"] for f in page.get("Functions", []))
    return out


def list_url_configs(function_name: str) -> list[dict[str, Any]]:
    """The function's URL configurations (unqualified and per alias); [] when it has none.

    One ``GetFunctionUrlConfig`` per qualifier (moto has no ``ListFunctionUrlConfigs``)."""
    from botocore.exceptions import ClientError

    out: dict[str, dict[str, Any]] = {}
    for qualifier in [None, *(a["Name"] for a in list_aliases(function_name))]:
        kw: dict[str, Any] = {"FunctionName": function_name, **({"Qualifier": qualifier} if qualifier else {})}
        try:
            cfg = _strip(client().get_function_url_config(**kw))
        except ClientError as exc:
            if _code(exc) == "ResourceNotFoundException":
                continue
            raise
        out.setdefault(str(cfg.get("FunctionUrl")), cfg)
    return list(out.values())
