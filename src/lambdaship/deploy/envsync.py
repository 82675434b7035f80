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
from lambdaship.deploy.markers import digest_of_uri
from lambdaship.deploy.packages import ImagePackage
from lambdaship.deploy.plan import Options, plan
from lambdaship.deploy.state import observe
from lambdaship.deploy.steps import Plan, Target
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
    resolved = envmod.resolve(fn, env_file)  # names and the 4 KB limit are checked before any call
    state = observe(fn)
    if state.function is None:
        raise LambdashipError(f"function {fn.function_name} does not exist",
                              "deploy it first with `lambdaship deploy` (it applies the same environment)")
    uri = state.function.get("Code", {}).get("ImageUri") or ""
    digest = digest_of_uri(uri)
    if not digest:
        raise LambdashipError(f"{fn.function_name} does not run an image by digest ({uri or 'no image'})",
                              "deploy it with `lambdaship deploy` first")
    registry, path = uri.split("/", 1)
    repository = path.split("@", 1)[0]
    # Keep serving the image the alias serves (after a rollback that is not $LATEST's).
    if state.alias_ref is not None and state.alias_ref.digest:
        digest, repository = state.alias_ref.digest, state.alias_ref.repository or repository
    target = Target(image_uri=f"{registry}/{repository}@{digest}", digest=digest, repository=repository)
    p = plan(fn, ImagePackage(target), resolved, state, Options(only_env=True))
    live = _live(fn)
    return EnvReport(fn.function_name, True, envmod.diff(_variables(live), resolved), resolved.size, plan=p)


def apply(report: EnvReport) -> EnvReport:
    """Execute the sync plan (a no-op when nothing changed)."""
    from lambdaship.deploy.pipeline import run_plan

    p = report.plan
    if p is None:
        raise LambdashipError(f"env sync of {report.function_name}: nothing was planned", "run `env sync` again")
    if p.up_to_date:
        return report
    outcome = run_plan(p, {}, "env sync")
    report.applied = True
    report.version = outcome.ctx.get("version")
    report.alias_version = outcome.ctx.get("alias_version", p.alias_version)
    report.steps = [s.action for s in outcome.done]
    return report
