"""Roll back: move the alias to the previous version, or to a named version or image digest.

"Previous" is the version the alias pointed at before the current one: every deploy records
the alias's earlier versions in the alias description (``lambdaship previous=5,4,2``);
without that record, the highest published version below the current one. A rollback
consumes the record, so rolling back twice walks two deploys back.

The target's image must still exist in the registry (a version whose image was deleted goes
``Failed`` in Lambda): checked with a HEAD request on the manifest before anything moves.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from lambdaship.config import FunctionConfig
from lambdaship.deploy.plan import Plan, Step, history_description, parse_history, version_image
from lambdaship.errors import LambdashipError, UsageError


@dataclass
class RollbackResult:
    function_name: str
    alias: str
    from_version: str
    to_version: str
    digest: str | None
    dry_run: bool
    plan: Plan

    def to_json(self) -> dict[str, Any]:
        return {
            "function": self.function_name,
            "alias": self.alias,
            "from_version": self.from_version,
            "to_version": self.to_version,
            "digest": self.digest,
            "dry_run": self.dry_run,
            "plan": self.plan.to_json(),
        }


def plan_rollback(fn: FunctionConfig, to: str | None = None) -> tuple[Plan, str, str, str | None]:
    """Describe-only: (plan, from_version, to_version, digest)."""
    from lambdaship.aws import lambda_

    name = fn.function_name
    alias = lambda_.get_alias(name, fn.alias)
    if alias is None:
        if lambda_.get_function(name) is None:
            raise LambdashipError(f"function {name} does not exist", "deploy it first with `lambdaship deploy`")
        raise LambdashipError(f"{name} has no alias {fn.alias!r}", "deploy it first with `lambdaship deploy`")
    current = alias["FunctionVersion"]
    versions = {v["Version"]: v for v in lambda_.list_versions(name)}
    history = [v for v in parse_history(alias.get("Description")) if v in versions]

    if to is None:
        candidates = [v for v in history if v != current]
        if not candidates and current.isdigit():
            candidates = [v for v in sorted(versions, key=int, reverse=True) if int(v) < int(current)]
        if not candidates:
            raise LambdashipError(f"{name}: no version before {current} to roll back to",
                                  "name one with --to VERSION")
        target = candidates[0]
    elif re.fullmatch(r"\d+", to):
        if to not in versions:
            raise UsageError(f"{name} has no version {to}",
                             f"published versions: {', '.join(sorted(versions, key=int)) or 'none'}")
        target = to
    elif re.fullmatch(r"(sha256:)?[0-9a-f]{7,64}", to):
        want = to if to.startswith("sha256:") else f"sha256:{to}"
        matches = [v for v in sorted(versions, key=int, reverse=True)
                   if (version_image(name, v, versions[v])[1] or "").startswith(want)]
        if not matches:
            raise LambdashipError(f"{name} has no published version running {to}",
                                  "deploy that image with `lambdaship deploy --image <ecr-uri>@<digest>`")
        target = matches[0]
    else:
        raise UsageError(f"--to {to!r} is neither a version number nor an image digest",
                         "use --to 7 or --to sha256:<digest>")

    if target == current:
        raise LambdashipError(f"alias {fn.alias} of {name} already points at version {target}")
    from lambdaship.aws import ecr

    repository, digest = version_image(name, target, versions[target])
    if digest and repository and not ecr.image_exists(repository, digest):
        raise LambdashipError(
            f"the image of version {target} ({repository}@{digest}) no longer exists in the registry, "
            "so Lambda cannot run it",
            "roll back to another version with --to, or deploy a new image",
        )
    remaining = [v for v in history if v not in (target, current)]
    if to is not None:  # an explicit target keeps the way back to where we were
        remaining = [current, *remaining]
    plan = Plan(function_name=name, alias=fn.alias, target=None, exists=True, alias_version=current,
                history=history, kind="rollback")
    plan.steps.append(Step("lambda:UpdateAlias", {
        "FunctionName": name, "Name": fn.alias, "FunctionVersion": target,
        "Description": history_description(remaining), "RevisionId": alias.get("RevisionId"),
    }, f"was version {current}"))
    return plan, current, target, digest


def rollback(fn: FunctionConfig, to: str | None = None, *, dry_run: bool = False) -> RollbackResult:
    from lambdaship.aws import lambda_
    from lambdaship.deploy.plan import resolve_params

    plan, current, target, digest = plan_rollback(fn, to)
    if not dry_run:
        lambda_.update_alias(**resolve_params(plan.steps[0].params, {}))
    return RollbackResult(fn.function_name, fn.alias, current, target, digest, dry_run, plan)
