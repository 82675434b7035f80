"""Run a :class:`~lambdaship.deploy.steps.Plan`: the one executor of every plan (deploy, zip
deploy, fleet, env sync, rollback, migrate).

A small interpreter: for each step, fill in its :class:`~lambdaship.deploy.steps.Later`
placeholders from the variables, call the step's handler (:data:`lambdaship.deploy.handlers.HANDLERS`),
store its result in the step's ``output`` variable. A step whose ``unless`` variable is set is
skipped. Handlers that change something may register an undo; with ``undo=True`` (migrate) a
failure runs them in reverse order. The deploy plans move the alias last, so a failed deploy
needs no undo: the alias still points where it did. :func:`dry_run` is the print-only executor.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from lambdaship.deploy.steps import Plan, Step, resolve_params
from lambdaship.errors import LambdashipError

Undo = Callable[[], None]
# (index, total, step, "start" | "done" | "skip" | "undo")
Reporter = Callable[[int, int, Step, str], None]


@dataclass
class Run:
    """What a handler sees besides its parameters."""

    plan: Plan
    vars: dict[str, Any]
    progress: bool = False
    done: list[Step] = field(default_factory=list)
    undos: list[tuple[int, Step, Undo]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    index: int = 0
    step: Step | None = None
    # The configuration Lambda answered the last create/update with: the next wait needs no poll
    # when it already says the change is done.
    written: dict[str, Any] | None = None
    settled: dict[str, Any] | None = None  # $LATEST's configuration as the last wait saw it
    # (function name, CodeSha256) Lambda answered this run's code write (create, update) with:
    # whatever Lambda hashes for an image, that value names the code this run put there.
    code_written: tuple[str, str] | None = None

    def on_undo(self, undo: Undo) -> None:
        if self.step is None:
            raise RuntimeError("on_undo() outside a step")
        self.undos.append((self.index, self.step, undo))

    def did(self, action: str) -> bool:
        return any(s.action == action for s in self.done)


@dataclass
class Outcome:
    ctx: dict[str, Any]
    done: list[Step] = field(default_factory=list)
    smoke: dict[str, Any] | None = None
    undone: list[Step] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


class StepFailed(LambdashipError):
    """Step ``index`` of ``total`` failed with ``cause``; ``undo_failures`` lists undos that failed."""

    def __init__(self, index: int, total: int, step: Step, cause: BaseException, outcome: Outcome,
                 undo_failures: list[str]) -> None:
        super().__init__(f"step {index}/{total} {step.action} failed: {cause}")
        self.index, self.total, self.step, self.cause = index, total, step, cause
        self.outcome, self.undo_failures = outcome, undo_failures


def execute(plan: Plan, *, reporter: Reporter | None = None, ctx: dict[str, Any] | None = None,
            undo: bool = False, progress: bool = False,
            handlers: Mapping[str, Callable[..., Any]] | None = None) -> Outcome:
    """Run every step in order. On failure: with ``undo`` the registered undos run (newest first);
    :class:`StepFailed` is raised with the original exception as ``cause``. ``handlers``: the
    action table (default :data:`lambdaship.deploy.handlers.HANDLERS`)."""
    if handlers is None:
        from lambdaship.deploy.handlers import HANDLERS as handlers

    run = Run(plan=plan, vars=ctx if ctx is not None else {}, progress=progress)
    run.vars.setdefault("revision", None)
    run.vars.setdefault("code_sha256", None)
    out = Outcome(ctx=run.vars, done=run.done, warnings=run.warnings)
    total = len(plan.steps)
    for i, step in enumerate(plan.steps, 1):
        if step.unless and run.vars.get(step.unless) is not None:
            if reporter:
                reporter(i, total, step, "skip")
            continue
        if reporter:
            reporter(i, total, step, "start")
        run.index, run.step = i, step
        run.vars["failed_step"] = step.action
        try:
            # an extension's namespace ("api:apigateway:PutIntegration") has one handler, "api:*"
            handler = handlers.get(step.action) or handlers.get(step.action.split(":", 1)[0] + ":*")
            if handler is None:
                raise LambdashipError(f"no handler for plan step {step.action}")
            result = handler(step, resolve_params(step.params, run.vars), run)
        except (Exception, KeyboardInterrupt) as exc:
            failures = _undo(run, out, reporter, total) if undo else []
            raise StepFailed(i, total, step, exc, out, failures) from exc
        if step.output:
            run.vars[step.output] = result
        run.done.append(step)
        if reporter:
            reporter(i, total, step, "done")
    run.vars.pop("failed_step", None)
    out.smoke = run.vars.get("smoke")
    return out


def _undo(run: Run, out: Outcome, reporter: Reporter | None, total: int) -> list[str]:
    from lambdaship.translate import translate

    failures: list[str] = []
    for i, step, undo in reversed(run.undos):
        if reporter:
            reporter(i, total, step, "undo")
        try:
            undo()
            out.undone.append(step)
        except Exception as exc:
            failures.append(f"step {i} {step.action} ({step.note}): {translate(exc).message}")
    return failures


def dry_run(plan: Plan) -> list[str]:
    """The print-only executor: one line per call the plan would make, in order."""
    return [f"  {i:>2}. {s.render()}" for i, s in enumerate(plan.steps, 1)]
