"""Run a :class:`~lambdaship.deploy.plan.Plan`: the only module of the deploy that mutates anything.

Each step is dispatched to a handler; handlers record what later steps need (the new
version, the RevisionId) in the execution context. The alias step is always last, so when any
step fails the alias still points at the version it pointed at before.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from lambdaship.aws.lambda_ import ConcurrentDeployError
from lambdaship.deploy.plan import Plan, Step, digest_of_uri, history_description, parse_marker, resolve_params
from lambdaship.errors import LambdashipError

# ECR lifecycle rule installed with a new repository (deployed-* tags are never expired).
KEEP_IMAGES = 50

Reporter = Callable[[Step, dict[str, Any]], None]


@dataclass
class Outcome:
    ctx: dict[str, Any]
    done: list[Step] = field(default_factory=list)
    smoke: dict[str, Any] | None = None


class StepFailed(LambdashipError):
    pass


def _h_create_role(step: Step, p: dict[str, Any], ctx: dict[str, Any], plan: Plan) -> None:
    from lambdaship.aws import iam

    ctx["role"] = iam.create_execution_role(p["RoleName"], p["FunctionName"])
    # IAM is eventually consistent: Lambda may not be able to assume a brand-new role for a few
    # seconds; CreateFunction retries InvalidParameterValueException about the role below.
    ctx["new_role"] = True


def _h_push(step: Step, p: dict[str, Any], ctx: dict[str, Any], plan: Plan) -> None:
    from lambdaship.aws import ecr
    from lambdaship.push import push_image

    assert plan.target is not None and plan.target.image is not None
    target = ecr.ensure_repository(p["Repository"], keep_images=KEEP_IMAGES)
    result = push_image(plan.target.image, target, progress=ctx.get("progress", False))
    if result.digest != plan.target.digest:
        raise StepFailed(f"the registry stored {result.digest}, expected {plan.target.digest}")
    ctx["push"] = result


def _h_create_function(step: Step, p: dict[str, Any], ctx: dict[str, Any], plan: Plan) -> None:
    import time

    from botocore.exceptions import ClientError

    from lambdaship.aws import lambda_

    for attempt in range(10 if ctx.get("new_role") else 1):
        try:
            resp = lambda_.create_function(**p)
            break
        except ClientError as exc:
            msg = exc.response.get("Error", {}).get("Message", "")
            if attempt < 9 and ctx.get("new_role") and "cannot be assumed" in msg:
                time.sleep(2)
                continue
            raise
    ctx["revision"] = resp.get("RevisionId")
    ctx["created"] = True


def _h_update_code(step: Step, p: dict[str, Any], ctx: dict[str, Any], plan: Plan) -> None:
    from lambdaship.aws import lambda_

    ctx["revision"] = lambda_.update_function_code(**p).get("RevisionId")


def _h_update_config(step: Step, p: dict[str, Any], ctx: dict[str, Any], plan: Plan) -> None:
    from lambdaship.aws import lambda_

    ctx["revision"] = lambda_.update_function_configuration(**p).get("RevisionId")


def _h_tag_resource(step: Step, p: dict[str, Any], ctx: dict[str, Any], plan: Plan) -> None:
    from lambdaship.aws import lambda_

    lambda_.client().tag_resource(**p)


def _h_wait(step: Step, p: dict[str, Any], ctx: dict[str, Any], plan: Plan) -> None:
    from lambdaship.aws import lambda_

    waiter = p["Waiter"]
    cfg = lambda_.wait_active(p["FunctionName"]) if waiter == "function_active_v2" else lambda_.wait_updated(
        p["FunctionName"])
    ctx["revision"] = cfg.get("RevisionId")


def _h_publish(step: Step, p: dict[str, Any], ctx: dict[str, Any], plan: Plan) -> None:
    from lambdaship.aws import lambda_

    assert plan.target is not None
    name, uri, digest = plan.function_name, plan.target.image_uri, plan.target.digest
    existing = [int(v["Version"]) for v in lambda_.list_versions(name)]
    newest_before = max(existing, default=0)
    for attempt in (1, 2):
        latest = lambda_.get_function(name)
        if latest is None:
            raise ConcurrentDeployError(name, "the function was deleted")
        if latest.get("Code", {}).get("ImageUri") != uri:
            other = digest_of_uri(latest.get("Code", {}).get("ImageUri"))
            raise ConcurrentDeployError(name, f"$LATEST now runs {other or 'another image'}")
        cfg = latest["Configuration"]
        # Lambda refuses with PreconditionFailed if $LATEST changed since this read.
        params = {**p, "RevisionId": cfg.get("RevisionId"), "CodeSha256": cfg.get("CodeSha256")}
        version = lambda_.publish_version(**{k: v for k, v in params.items() if v is not None})["Version"]
        # Check what was published: the version must run our image and carry our marker.
        published = lambda_.get_function(name, version)
        got_uri = (published or {}).get("Code", {}).get("ImageUri")
        _, marked = parse_marker((published or {}).get("Configuration", {}).get("Description"))
        if got_uri == uri and marked in (None, digest):
            ctx["version"] = version
            return
        if marked == digest and int(version) > newest_before:
            # We published while another deploy changed $LATEST (possible only where Lambda does
            # not enforce the preconditions): remove the version so none carries a wrong marker.
            # Nothing points at it: we have not moved the alias, others reject our marker.
            with contextlib.suppress(Exception):
                lambda_.delete_version(name, version)
            raise ConcurrentDeployError(name, f"version {version} does not run {digest}")
        if attempt == 2 or got_uri != uri:
            raise ConcurrentDeployError(name, f"version {version} does not run {digest}")
        # Lambda handed back another deploy's version (nothing changed since it published) while
        # $LATEST runs our image: we are the latest writer; re-apply our code and publish again.
        lambda_.update_function_code(FunctionName=name, ImageUri=uri)
        lambda_.wait_updated(name)


def _h_put_tag(step: Step, p: dict[str, Any], ctx: dict[str, Any], plan: Plan) -> None:
    from lambdaship.aws import ecr

    ecr.tag_image(p["Repository"], p["Digest"], p["Tag"])


def _h_smoke(step: Step, p: dict[str, Any], ctx: dict[str, Any], plan: Plan) -> None:
    from lambdaship.deploy import smoke

    ctx["smoke"] = smoke.run(p["FunctionName"], p["Qualifier"], event=p.get("event"), path=p.get("path"),
                             method=p.get("method", "GET"))


def _h_alias(step: Step, p: dict[str, Any], ctx: dict[str, Any], plan: Plan) -> None:
    from lambdaship.aws import lambda_

    version = p["FunctionVersion"]
    if step.action == "lambda:CreateAlias":
        lambda_.create_alias(**p)
    else:
        if version == plan.alias_version:
            ctx["alias_unchanged"] = True
            return
        history = [v for v in [plan.alias_version, *plan.history] if v and v != version]
        lambda_.update_alias(**{**p, "Description": history_description(history)})
    ctx["alias_version"] = version


HANDLERS: dict[str, Callable[[Step, dict[str, Any], dict[str, Any], Plan], None]] = {
    "iam:CreateRole": _h_create_role,
    "registry:PushImage": _h_push,
    "lambda:CreateFunction": _h_create_function,
    "lambda:UpdateFunctionCode": _h_update_code,
    "lambda:UpdateFunctionConfiguration": _h_update_config,
    "lambda:TagResource": _h_tag_resource,
    "lambda:Wait": _h_wait,
    "lambda:PublishVersion": _h_publish,
    "registry:PutTag": _h_put_tag,
    "smoke:Invoke": _h_smoke,
    "lambda:CreateAlias": _h_alias,
    "lambda:UpdateAlias": _h_alias,
}


def execute(plan: Plan, *, reporter: Reporter | None = None, ctx: dict[str, Any] | None = None) -> Outcome:
    """Run every step in order. On failure the exception propagates (the alias is the last step,
    so it is untouched); ``ctx['failed_step']`` names the step."""
    ctx = ctx if ctx is not None else {}
    ctx.setdefault("revision", None)
    ctx.setdefault("code_sha256", None)
    out = Outcome(ctx=ctx)
    for step in plan.steps:
        if reporter:
            reporter(step, ctx)
        params = resolve_params(step.params, ctx)
        ctx["failed_step"] = step.action
        HANDLERS[step.action](step, params, ctx, plan)
        out.done.append(step)
    ctx.pop("failed_step", None)
    out.smoke = ctx.get("smoke")
    return out
