"""Roll back: move the alias to the previous version, or to a named version or image digest.

"Previous" is the version the alias pointed at before the current one: every deploy records
the alias's earlier versions in the alias description (``lambdaship previous=5,4,2``);
without that record, the highest published version below the current one. A rollback
consumes the record, so rolling back twice walks two deploys back.

The target's image must still exist in the registry (a version whose image was deleted goes
``Failed`` in Lambda): checked with a HEAD request on the manifest before anything moves.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lambdaship.config import FunctionConfig
from lambdaship.deploy.pipeline import run_plan
from lambdaship.deploy.plan import plan_rollback
from lambdaship.deploy.state import observe_rollback
from lambdaship.deploy.steps import Plan


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
            "extra_functions": {s.params["FunctionName"]: s.params["FunctionVersion"] for s in self.plan.steps[:-1]},
            "plan": self.plan.to_json(),
        }


def rollback(fn: FunctionConfig, to: str | None = None, *, dry_run: bool = False) -> RollbackResult:
    """Observe the alias and versions, plan the alias move (pure), run it through the executor."""
    state = observe_rollback(fn, to)
    p = plan_rollback(fn, state, to)
    target = str(p.steps[-1].params["FunctionVersion"])
    ref = state.version(target)
    if not dry_run:
        run_plan(p, {}, "rollback")
    return RollbackResult(fn.function_name, fn.alias, p.alias_version or "", target, ref.digest if ref else None,
                          dry_run, p)
