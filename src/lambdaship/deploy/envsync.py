"""``env show`` / ``env sync``: compare the merged environment with the deployed one; apply it.

Applying is a deploy of the image the function already runs with only the environment
changed: update configuration → wait → publish a version → smoke test → move the alias. So
live traffic gets the new values only through a new version, exactly like a code change.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lambdaship.config import FunctionConfig
from lambdaship.deploy import env as envmod
from lambdaship.deploy.plan import Plan, Target, digest_of_uri, plan_deploy, version_image
from lambdaship.errors import LambdashipError


@dataclass
class EnvReport:
    function_name: str
    exists: bool
    changes: list[envmod.Change]
    size: int
    plan: Plan | None = None
    applied: bool = False
    version: str | None = None
    alias_version: str | None = None
    steps: list[str] = field(default_factory=list)

    @property
    def changed(self) -> list[envmod.Change]:
        return [c for c in self.changes if c.kind != "unchanged"]

    def to_json(self) -> dict[str, Any]:
        return {
            "function": self.function_name,
            "exists": self.exists,
            "size_bytes": self.size,
            "limit_bytes": envmod.MAX_ENV_BYTES,
            "variables": [c.to_json() for c in self.changes],
            "in_sync": not self.changed,
            "applied": self.applied,
            "version": self.version,
            "alias_version": self.alias_version,
            "plan": self.plan.to_json() if self.plan else None,
        }


def _live(fn: FunctionConfig) -> dict[str, Any] | None:
    """What serves traffic: the alias's version, else $LATEST; None if there is no function."""
    from lambdaship.aws import lambda_

    return lambda_.get_function(fn.function_name, fn.alias) or lambda_.get_function(fn.function_name)


def _variables(fn_info: dict[str, Any] | None) -> dict[str, str]:
    return (fn_info or {}).get("Configuration", {}).get("Environment", {}).get("Variables", {})


def show(fn: FunctionConfig, env_file: Path | str | None = None) -> EnvReport:
    resolved = envmod.resolve(fn, env_file)
    live = _live(fn)
    return EnvReport(fn.function_name, live is not None, envmod.diff(_variables(live), resolved), resolved.size)


def plan_sync(fn: FunctionConfig, env_file: Path | str | None = None) -> EnvReport:
    from lambdaship.aws import lambda_

    resolved = envmod.resolve(fn, env_file)  # names and the 4 KB limit are checked before any call
    latest = lambda_.get_function(fn.function_name)
    if latest is None:
        raise LambdashipError(f"function {fn.function_name} does not exist",
                              "deploy it first with `lambdaship deploy` (it applies the same environment)")
    uri = latest.get("Code", {}).get("ImageUri") or ""
    digest = digest_of_uri(uri)
    if not digest:
        raise LambdashipError(f"{fn.function_name} does not run an image by digest ({uri or 'no image'})",
                              "deploy it with `lambdaship deploy` first")
    registry, path = uri.split("/", 1)
    repository = path.split("@", 1)[0]
    # Keep serving the image the alias serves (after a rollback that is not $LATEST's).
    alias = lambda_.get_alias(fn.function_name, fn.alias)
    if alias is not None and alias["FunctionVersion"] != "$LATEST":
        repo, live_digest = version_image(fn.function_name, alias["FunctionVersion"])
        if live_digest:
            digest, repository = live_digest, repo or repository
    target = Target(image_uri=f"{registry}/{repository}@{digest}", digest=digest, repository=repository)
    plan = plan_deploy(fn, target, resolved, only_env=True)
    live = _live(fn)
    return EnvReport(fn.function_name, True, envmod.diff(_variables(live), resolved), resolved.size, plan=plan)


def apply(report: EnvReport) -> EnvReport:
    """Execute the sync plan (a no-op when nothing changed)."""
    from lambdaship.deploy.execute import execute
    from lambdaship.deploy.pipeline import _describe_error

    plan = report.plan
    assert plan is not None
    if plan.up_to_date:
        return report
    ctx: dict[str, Any] = {}
    try:
        outcome = execute(plan, ctx=ctx)
    except Exception as exc:
        message, hint = _describe_error(exc)
        if message is None:
            raise
        raise LambdashipError(
            f"env sync of {plan.function_name} failed at {ctx.get('failed_step', '?')}: {message}",
            f"alias {plan.alias} still points at version {plan.alias_version or 'none'}"
            + (f"; {hint}" if hint else ""),
        ) from exc
    report.applied = True
    report.version = outcome.ctx.get("version")
    report.alias_version = outcome.ctx.get("alias_version", plan.alias_version)
    report.steps = [s.action for s in outcome.done]
    return report
