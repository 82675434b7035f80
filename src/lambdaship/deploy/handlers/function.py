"""Handlers of the function's own calls: role, create/update, wait, publish, alias, permissions."""

from __future__ import annotations

import contextlib
import time
from typing import Any

from lambdaship.aws.errors import aws_error_message
from lambdaship.aws.lambda_ import ConcurrentDeployError
from lambdaship.deploy.markers import digest_of_uri, parse_marker
from lambdaship.deploy.steps import Step
from lambdaship.errors import LambdashipError


def create_role(step: Step, p: dict[str, Any], run: Any) -> str:
    from lambdaship.aws import iam

    # IAM is eventually consistent: Lambda may not be able to assume a brand-new role for a few
    # seconds; CreateFunction retries below when this plan created the role.
    return iam.create_execution_role(p["RoleName"], p["FunctionName"])


def create_function(step: Step, p: dict[str, Any], run: Any) -> str | None:
    from lambdaship.aws.errors import client_error_type

    ClientError = client_error_type()

    from lambdaship.aws import lambda_

    new_role = run.did("iam:CreateRole")
    for attempt in range(10 if new_role else 1):
        try:
            resp = lambda_.create_function(**p)
            break
        except ClientError as exc:
            if attempt < 9 and new_role and "cannot be assumed" in (aws_error_message(exc) or ""):
                time.sleep(2)
                continue
            raise
    run.on_undo(lambda: lambda_.delete_function(p["FunctionName"]))  # versions, alias and policy go with it
    return _wrote_code(run, p["FunctionName"], resp)


def update_code(step: Step, p: dict[str, Any], run: Any) -> str | None:
    from lambdaship.aws import lambda_

    return _wrote_code(run, p["FunctionName"], lambda_.update_function_code(**p))


def _wrote_code(run: Any, name: str, resp: dict[str, Any]) -> str | None:
    """Keep Lambda's answer to this run's code write (the next wait and the publish use it)."""
    run.written = resp
    run.code_written = (name, resp["CodeSha256"]) if resp.get("CodeSha256") else None
    return resp.get("RevisionId")


def update_config(step: Step, p: dict[str, Any], run: Any) -> str | None:
    from lambdaship.aws import lambda_

    run.written = lambda_.update_function_configuration(**p)
    return run.written.get("RevisionId")


def tag_resource(step: Step, p: dict[str, Any], run: Any) -> None:
    from lambdaship.aws import lambda_

    lambda_.tag_resource(p["Resource"], p["Tags"])


def wait(step: Step, p: dict[str, Any], run: Any) -> str | None:
    from lambdaship.aws import lambda_

    name, written = p["FunctionName"], run.written
    run.written = None
    known = written if written is not None and written.get("FunctionName") == name else None
    cfg = (lambda_.wait_active(name, known=known) if p["Waiter"] == "function_active_v2"
           else lambda_.wait_updated(name, known=known))
    run.settled = cfg
    return cfg.get("RevisionId")


def publish_image(step: Step, p: dict[str, Any], run: Any) -> str | None:
    """Publish only if $LATEST still runs the plan's image; check what was published.

    Returns None when Lambda handed back another deploy's version while $LATEST runs this image
    (this deploy is then the latest writer): the plan's next steps re-apply the image and publish
    again (``unless="version"``); the second attempt (``step.unless`` set) is the last."""
    from lambdaship.aws import lambda_

    target = run.plan.target
    if target is None:
        raise LambdashipError("lambda:PublishVersion of an image needs the plan's target image")
    name, uri, digest, last = run.plan.function_name, target.image_uri, target.digest, step.unless is not None
    code = run.code_written[1] if run.code_written is not None and run.code_written[0] == name else None
    settled = run.settled if run.settled is not None and run.settled.get("FunctionName") == name else None
    if code is not None and settled is not None and settled.get("CodeSha256") == code:
        # This run wrote the code and waited for it: Lambda (and the local stack) refuse with
        # PreconditionFailed if $LATEST changed since, so nothing needs reading first.
        cfg = settled
    else:  # code this run did not write (a configuration-only change): check what $LATEST runs
        latest = lambda_.get_function(name)
        if latest is None:
            raise ConcurrentDeployError(name, "the function was deleted")
        if latest.get("Code", {}).get("ImageUri") != uri:
            other = digest_of_uri(latest.get("Code", {}).get("ImageUri"))
            raise ConcurrentDeployError(name, f"$LATEST now runs {other or 'another image'}")
        cfg = latest["Configuration"]
    # Lambda refuses with PreconditionFailed if $LATEST changed since this read.
    params = {**p, "RevisionId": cfg.get("RevisionId"), "CodeSha256": cfg.get("CodeSha256")}
    answer = lambda_.publish_version(**{k: v for k, v in params.items() if v is not None})
    version = answer["Version"]
    if code is not None and answer.get("CodeSha256") == code and \
            parse_marker(answer.get("Description")) == (target.repository, digest):
        return version  # the version runs the code this run wrote, with this deploy's marker: no read back
    published = lambda_.get_function(name, version)
    got_uri = (published or {}).get("Code", {}).get("ImageUri")
    _, marked = parse_marker((published or {}).get("Configuration", {}).get("Description"))
    if got_uri == uri and marked in (None, digest):
        return version
    if marked == digest:
        # A version with this deploy's marker that does not run its image: published while another
        # deploy changed $LATEST (possible only where Lambda does not enforce the preconditions).
        # Remove it so no version carries a wrong marker; Lambda refuses if an alias serves it.
        with contextlib.suppress(Exception):
            lambda_.delete_version(name, version)
        raise ConcurrentDeployError(name, f"version {version} does not run {digest}")
    if last or got_uri != uri:
        raise ConcurrentDeployError(name, f"version {version} does not run {digest}")
    return None


def alias(step: Step, p: dict[str, Any], run: Any) -> str:
    from lambdaship.aws import lambda_

    version = p["FunctionVersion"]
    if step.action == "lambda:CreateAlias":
        lambda_.create_alias(**p)
    elif version != run.plan.alias_version:  # Lambda handed back the version the alias serves: nothing moves
        lambda_.update_alias(**p)
    return version


def concurrency(step: Step, p: dict[str, Any], run: Any) -> None:
    from lambdaship.aws import lambda_

    lambda_.put_concurrency(p["FunctionName"], p["ReservedConcurrentExecutions"])


def add_permission(step: Step, p: dict[str, Any], run: Any) -> None:
    from lambdaship.aws import lambda_

    lambda_.add_permission(**p)
    run.on_undo(lambda: lambda_.remove_permission(p["FunctionName"], p["StatementId"], p.get("Qualifier")))


def delete_function(step: Step, p: dict[str, Any], run: Any) -> None:
    from lambdaship.aws import lambda_

    lambda_.delete_function(p["FunctionName"])


HANDLERS = {
    "iam:CreateRole": create_role,
    "lambda:CreateFunction": create_function,
    "lambda:UpdateFunctionCode": update_code,
    "lambda:UpdateFunctionConfiguration": update_config,
    "lambda:TagResource": tag_resource,
    "lambda:Wait": wait,
    "lambda:PublishVersion": publish_image,
    "lambda:CreateAlias": alias,
    "lambda:UpdateAlias": alias,
    "lambda:PutFunctionConcurrency": concurrency,
    "lambda:AddPermission": add_permission,
    "lambda:DeleteFunction": delete_function,
}
