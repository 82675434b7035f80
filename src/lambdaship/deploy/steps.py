"""The plan vocabulary: frozen :class:`Step` s (one API call each) and the :class:`Plan` that lists them.

A step names its call (``service:Action``), its parameters, and the variable its result is
stored in (``output``, like Chalice's ``APICall(..., output_var)``); later steps read such
variables through :class:`Later` placeholders (``Later("{version}")``). ``unless`` names a
variable that, when already set, makes the executor skip the step (a retry path that is part
of the plan, so ``--dry-run`` shows it). ``Plan.to_json()`` / ``render()`` mask environment values.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from lambdaship.deploy.env import MASK, Change


@dataclass(frozen=True)
class Later:
    """A value known only during execution: ``template`` formatted with the execution variables."""

    template: str

    def resolve(self, ctx: Mapping[str, Any]) -> Any:
        if re.fullmatch(r"\{(\w+)\}", self.template):
            return ctx[self.template[1:-1]]
        return self.template.format(**ctx)

    def __str__(self) -> str:
        return f"<{self.template}>"


@dataclass(frozen=True)
class History:
    """An alias description recording the versions it pointed at before; the version being
    deployed (``{version}``, known only after publishing) is left out of it."""

    versions: tuple[str, ...]

    def resolve(self, ctx: Mapping[str, Any]) -> str:
        from lambdaship.deploy.markers import history_description

        return history_description([v for v in self.versions if v != ctx.get("version")])

    def __str__(self) -> str:
        from lambdaship.deploy.markers import history_description

        return history_description(list(self.versions))


@dataclass(frozen=True)
class Step:
    action: str  # "lambda:UpdateFunctionCode", "registry:PushImage", "smoke:Invoke", ...
    params: Mapping[str, Any]
    note: str = ""
    output: str | None = None  # the variable the result is stored in
    unless: str | None = None  # skipped when this variable is already set (not None)

    def display_params(self) -> dict[str, Any]:
        return _display(dict(self.params))

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"action": self.action, "params": self.display_params(), "note": self.note}
        if self.output:
            out["output"] = self.output
        if self.unless:
            out["unless"] = self.unless
        return out

    def render(self) -> str:
        shown = ", ".join(f"{k}={_short(v)}" for k, v in self.display_params().items())
        text = f"{self.action}({shown})"
        if self.output:
            text += f" -> {self.output}"
        if self.unless:
            text += f"  [only if {self.unless} is not set yet]"
        return text + (f"  # {self.note}" if self.note else "")


def _display(value: Any, key: str = "") -> Any:
    if isinstance(value, Later | History):
        return str(value)
    if isinstance(value, Mapping):
        if key == "Variables":
            return {k: MASK for k in value}
        return {k: _display(v, k) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_display(v) for v in value]
    return value


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= 160 else text[:157] + "..."


def resolve_params(value: Any, ctx: Mapping[str, Any]) -> Any:
    """A step's parameters with every placeholder filled in; keys whose value is None are dropped."""
    if isinstance(value, Later | History):
        return value.resolve(ctx)
    if isinstance(value, Mapping):
        resolved = {k: resolve_params(v, ctx) for k, v in value.items()}
        return {k: v for k, v in resolved.items() if v is not None}
    if isinstance(value, list | tuple):
        return [resolve_params(v, ctx) for v in value]
    return value


@dataclass(frozen=True)
class Target:
    """The image to deploy. ``image`` (a :class:`lambdaship.image.model.Image`) is what the
    ``registry:PushImage`` step uploads when the registry does not have the digest yet."""

    image_uri: str  # <registry>/<repository>@sha256:...
    digest: str
    repository: str
    image: Any = None

    @property
    def registry(self) -> str:
        return self.image_uri.split("/", 1)[0]


MUTATING = ("lambda:", "iam:", "registry:", "smoke:", "zip:", "ecr:", "api:")


@dataclass(frozen=True)
class Plan:
    function_name: str
    alias: str
    target: Target | None
    steps: tuple[Step, ...] = ()
    exists: bool = False
    current_digest: str | None = None
    alias_version: str | None = None
    alias_digest: str | None = None
    env_changes: tuple[Change, ...] = ()
    history: tuple[str, ...] = ()
    kind: str = "deploy"
    # What the executor's handlers need besides the parameters (the image to push, the zip to
    # upload, the migration's inventory); never serialised.
    artifacts: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @property
    def up_to_date(self) -> bool:
        return not any(s.action.startswith(MUTATING) for s in self.steps)

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "function": self.function_name,
            "alias": self.alias,
            "exists": self.exists,
            "image_uri": self.target.image_uri if self.target else None,
            "digest": self.target.digest if self.target else None,
            "current_digest": self.current_digest,
            "alias_version": self.alias_version,
            "alias_digest": self.alias_digest,
            "environment": [c.to_json() for c in self.env_changes],
            "up_to_date": self.up_to_date,
            "steps": [s.to_json() for s in self.steps],
        }

    def render(self) -> list[str]:
        from lambdaship.deploy.execute import dry_run

        lines = [f"plan for {self.function_name} (alias {self.alias}):"]
        if not self.steps:
            lines.append("  nothing to do: up to date")
        lines.extend(dry_run(self))
        changed = [c for c in self.env_changes if c.kind != "unchanged"]
        if changed:
            from lambdaship.deploy.env import render_diff

            lines.append("  environment changes:")
            lines.extend("  " + line for line in render_diff(changed))
        return lines
