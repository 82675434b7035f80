"""Plan a deploy: a pure function of the configuration, the package, the environment and the
observed :class:`~lambdaship.deploy.state.FunctionState`.

``plan()`` composes small sub-planners, in this order: the package's first steps (which
package type), the execution role, the upload, the function (create, or update code /
configuration / tags), the ``after_function`` extensions, publishing a version, the smoke test,
the ``before_alias`` extensions (the app's API, extra functions and triggers), the alias (the last
deploy step: nothing unverified ever serves traffic), then the ``after_alias`` extensions (what
points triggers at the alias: ``migrate``). Nothing here reads AWS, the registry or the clock, and no input is changed;
:mod:`lambdaship.deploy.execute` runs a plan.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from lambdaship.config import FunctionConfig
from lambdaship.deploy.env import Resolved, diff
from lambdaship.deploy.markers import history_description, parse_history
from lambdaship.deploy.packages import ImagePackage, Package, ZipPackage
from lambdaship.deploy.state import FunctionState, VersionRef
from lambdaship.deploy.steps import History, Later, Plan, Step, Target
from lambdaship.errors import LambdashipError, UsageError
from lambdaship.names import Names
from lambdaship.platform import Architecture

__all__ = ["Extension", "ImagePackage", "Options", "PlanInput", "Target", "ZipPackage", "plan", "plan_rollback"]


@dataclass(frozen=True)
class PlanInput:
    """What an extension sees: the same values the planner was given."""

    fn: FunctionConfig
    names: Names
    package: Package
    env: Resolved
    state: FunctionState


@dataclass(frozen=True)
class Extension:
    """Extra steps another part (migrate, API Gateway, event sources) adds to a deploy plan.

    ``phase``: ``after_function`` — once the function is created/updated, before a version is
    published; ``before_alias`` — once the new version is published and smoke-tested, before the
    alias moves (a failure there leaves the alias where it was: the app's API and extra functions);
    ``after_alias`` — once the alias serves the new version (wiring traffic to it).
    ``before_alias`` and ``after_alias`` steps run even when the function itself is up to date.
    ``steps`` must be pure, like the planner."""

    phase: Literal["after_function", "before_alias", "after_alias"]
    steps: Callable[[PlanInput], Sequence[Step]]


@dataclass(frozen=True)
class Options:
    create_role: bool = False
    skip_smoke: bool = False
    only_env: bool = False  # env sync: change nothing but the environment
    create_params: Mapping[str, Any] = field(default_factory=dict)  # added to CreateFunction
    create_note: str = ""
    extensions: tuple[Extension, ...] = ()
    kind: str = "deploy"
    artifacts: Mapping[str, Any] = field(default_factory=dict)


def desired_configuration(fn: FunctionConfig, env: Resolved) -> dict[str, Any]:
    return {
        "MemorySize": fn.memory,
        "Timeout": fn.timeout,
        "EphemeralStorage": {"Size": fn.ephemeral_storage},
        "Description": fn.description,
        "Environment": {"Variables": dict(env.values)},
    }


def desired_tags(fn: FunctionConfig, names: Names) -> dict[str, str]:
    return {**fn.tags, **names.tags}


def config_changes(current: Mapping[str, Any], desired: Mapping[str, Any]) -> dict[str, Any]:
    out = {}
    for key, want in desired.items():
        have = current.get(key)
        if key == "Environment":
            have = {"Variables": (have or {}).get("Variables", {})}
        elif key == "EphemeralStorage":
            have = {"Size": (have or {}).get("Size", 512)}
        elif key == "Description":
            have = have or ""
        if have != want:
            out[key] = want
    return out


def role_steps(fn: FunctionConfig, names: Names, state: FunctionState, opts: Options) -> tuple[Any, list[Step]]:
    """The role a new function gets: the configured one (it must exist), or one ``--create-role``
    makes (an ``iam:CreateRole`` step, unless a role of that name exists). Existing functions keep
    theirs (``fn.role``, possibly None)."""
    if state.exists:
        return fn.role, []
    if fn.role is not None:
        if state.role_exists is False:
            raise LambdashipError(
                f"the execution role {fn.role} does not exist",
                "create it, fix 'role' in the config, or remove 'role' and pass --create-role",
            )
        return fn.role, []
    if not opts.create_role:
        raise LambdashipError(
            f"no execution role configured for {names.function}",
            'set role = "arn:aws:iam::<account>:role/<name>" in the config, or pass --create-role',
        )
    if state.default_role_arn:
        return state.default_role_arn, []
    return Later("{role}"), [Step("iam:CreateRole", {"RoleName": names.role, "FunctionName": names.function},
                                  "trust lambda.amazonaws.com; attach AWSLambdaBasicExecutionRole only",
                                  output="role")]


def _wait(name: str, waiter: str) -> Step:
    return Step("lambda:Wait", {"FunctionName": name, "Waiter": waiter}, output="revision")


def create_steps(fn: FunctionConfig, names: Names, package: Package, env: Resolved, role: Any,
                 opts: Options) -> list[Step]:
    params: dict[str, Any] = {
        "FunctionName": names.function, **package.create_params(fn), "Role": role,
        "Architectures": [Architecture.parse(fn.architecture).lambda_name], **desired_configuration(fn, env),
        "Tags": desired_tags(fn, names), **opts.create_params,
    }
    return [Step("lambda:CreateFunction", params, opts.create_note, output="revision"),
            _wait(names.function, "function_active_v2")]


def update_steps(fn: FunctionConfig, names: Names, package: Package, env: Resolved, state: FunctionState,
                 opts: Options) -> list[Step]:
    """Update only what differs: code (and architecture), configuration, tags."""
    name, cfg, steps = names.function, state.configuration, []
    package.check_type(name, cfg)
    arch = [Architecture.parse(fn.architecture).lambda_name]
    revision: Any = cfg.get("RevisionId")
    if package.code_changed(state) or (cfg.get("Architectures") or [Architecture.x86_64.value]) != arch:
        if isinstance(package, ZipPackage):
            steps += package.upload_steps(state)
        steps.append(Step("lambda:UpdateFunctionCode", {"FunctionName": name, **package.update_code_params(),
                                                        "Architectures": arch, "RevisionId": revision},
                          output="revision"))
        steps.append(_wait(name, "function_updated_v2"))
        revision = Later("{revision}")
    desired = desired_configuration(fn, env)
    if opts.only_env:
        desired = {"Environment": desired["Environment"]}
    changes = config_changes(cfg, desired)
    if not opts.only_env:
        changes.update(package.config_params(fn, cfg))
        if fn.role and cfg.get("Role") != fn.role:
            changes["Role"] = fn.role
    if changes:
        steps.append(Step("lambda:UpdateFunctionConfiguration", {"FunctionName": name, **changes,
                                                                 "RevisionId": revision}, output="revision"))
        steps.append(_wait(name, "function_updated_v2"))
    tags = (state.function or {}).get("Tags") or {}
    missing = {k: v for k, v in desired_tags(fn, names).items() if tags.get(k) != v}
    if missing and not opts.only_env:
        steps.append(Step("lambda:TagResource", {"Resource": cfg["FunctionArn"], "Tags": missing}))
    return steps


def smoke_and_alias_steps(fn: FunctionConfig, state: FunctionState, *, skip_smoke: bool) -> list[Step]:
    """The tail of every deploy plan: smoke-test the new version, then move the alias to it."""
    name, steps = fn.function_name, []
    if fn.smoke is not None and not skip_smoke:
        steps.append(Step("smoke:Invoke", {"FunctionName": name, "Qualifier": Later("{version}"),
                                           **smoke_params(fn)}, "the alias moves only if this passes", output="smoke"))
    if state.alias is None:
        steps.append(Step("lambda:CreateAlias", {"FunctionName": name, "Name": fn.alias,
                                                 "FunctionVersion": Later("{version}"),
                                                 "Description": history_description([])}, output="alias_version"))
    else:
        previous = tuple(v for v in (state.alias_version, *parse_history(state.alias.get("Description"))) if v)
        steps.append(Step("lambda:UpdateAlias", {
            "FunctionName": name, "Name": fn.alias, "FunctionVersion": Later("{version}"),
            "Description": History(previous), "RevisionId": state.alias.get("RevisionId"),
        }, f"was version {state.alias_version}", output="alias_version"))
    return steps


def smoke_params(fn: FunctionConfig) -> dict[str, Any]:
    smoke = fn.smoke
    if smoke is None:
        return {}
    return {"event": smoke.event} if smoke.event is not None else {"path": smoke.path, "method": smoke.method}


def plan(fn: FunctionConfig, package: Package, env: Resolved, state: FunctionState,
         options: Options | None = None) -> Plan:
    """The calls a deploy of ``package`` makes, given ``state``. Pure: raises on a plan that cannot
    work (wrong package type, missing role, missing bucket) before anything is changed."""
    opts = options or Options()
    names = Names(fn.function_name, fn.repository)
    if isinstance(package, ZipPackage):
        _check_bucket(package, state)
    steps = list(package.first_steps())
    role, more = role_steps(fn, names, state, opts)
    steps += more
    if isinstance(package, ImagePackage):
        steps += package.upload_steps(state)
    if not state.exists:
        if isinstance(package, ZipPackage):
            steps += package.upload_steps(state)
        steps += create_steps(fn, names, package, env, role, opts)
        env_changes = diff({}, env)
    else:
        steps += update_steps(fn, names, package, env, state, opts)
        env_changes = diff(state.configuration.get("Environment", {}).get("Variables", {}), env)
    inp = PlanInput(fn, names, package, env, state)
    steps += _extend(opts, "after_function", inp)
    alias_digest = package.alias_digest(state) if state.alias_version not in (None, "$LATEST") else None
    result = Plan(
        function_name=names.function, alias=fn.alias, target=package.target, exists=state.exists,
        current_digest=package.current_digest(state) if state.exists else None,
        alias_version=state.alias_version, alias_digest=alias_digest, env_changes=tuple(env_changes),
        history=tuple(parse_history((state.alias or {}).get("Description"))), kind=opts.kind,
        artifacts={"image": package.target.image, "fn": fn, **opts.artifacts,
                   **({"zip": package.zplan} if isinstance(package, ZipPackage) else {})},
    )
    if not any(s.action.startswith("lambda:") for s in steps) and alias_digest == package.digest:
        # the alias already serves this package with this configuration: only the extensions' steps
        return _with(result, steps + _extend(opts, "before_alias", inp) + _extend(opts, "after_alias", inp))
    steps += package.publish_steps(fn, names)
    tail = smoke_and_alias_steps(fn, state, skip_smoke=opts.skip_smoke)
    steps += tail[:-1] + _extend(opts, "before_alias", inp) + tail[-1:]  # the alias step is last
    steps += _extend(opts, "after_alias", inp)
    return _with(result, steps)


def _with(p: Plan, steps: list[Step]) -> Plan:
    from dataclasses import replace

    return replace(p, steps=tuple(steps))


def _extend(opts: Options, phase: str, inp: PlanInput) -> list[Step]:
    return [s for e in opts.extensions if e.phase == phase for s in e.steps(inp)]


def _check_bucket(package: ZipPackage, state: FunctionState) -> None:
    zplan = package.zplan
    if zplan.decision.upload == "s3" and not package.create_bucket and state.bucket_exists is False:
        raise LambdashipError(
            f"S3 bucket {zplan.bucket!r} does not exist (needed for a zip over 50 MiB)",
            "create it, or pass --create-bucket",
        )


# -- rollback -------------------------------------------------------------------------------------
def rollback_target(fn: FunctionConfig, state: FunctionState, to: str | None) -> str:
    """The version a rollback moves the alias to (the previous one, or the one ``to`` names)."""
    name = fn.function_name
    if state.alias is None:
        if state.function is None:
            raise LambdashipError(f"function {name} does not exist", "deploy it first with `lambdaship deploy`")
        raise LambdashipError(f"{name} has no alias {fn.alias!r}", "deploy it first with `lambdaship deploy`")
    current = state.alias["FunctionVersion"]
    numbers = sorted((v.version for v in state.versions), key=int, reverse=True)
    if to is None:
        candidates = [v for v in _history(state) if v != current]
        if not candidates and current.isdigit():
            candidates = [v for v in numbers if int(v) < int(current)]
        if not candidates:
            raise LambdashipError(f"{name}: no version before {current} to roll back to", "name one with --to VERSION")
        return candidates[0]
    if re.fullmatch(r"\d+", to):
        if to not in numbers:
            raise UsageError(f"{name} has no version {to}",
                             f"published versions: {', '.join(reversed(numbers)) or 'none'}")
        return to
    if re.fullmatch(r"(sha256:)?[0-9a-f]{7,64}", to):
        want = to if to.startswith("sha256:") else f"sha256:{to}"
        matches = [v for v in numbers if (state.version(v).digest or "").startswith(want)]  # type: ignore[union-attr]
        if not matches:
            raise LambdashipError(f"{name} has no published version running {to}",
                                  "deploy that image with `lambdaship deploy --image <ecr-uri>@<digest>`")
        return matches[0]
    raise UsageError(f"--to {to!r} is neither a version number nor an image digest",
                     "use --to 7 or --to sha256:<digest>")


def _history(state: FunctionState) -> list[str]:
    known = {v.version for v in state.versions}
    return [v for v in parse_history((state.alias or {}).get("Description")) if v in known]


def plan_rollback(fn: FunctionConfig, state: FunctionState, to: str | None = None) -> Plan:
    """One step: move the alias to :func:`rollback_target`, if that version's image still exists."""
    name, target = fn.function_name, rollback_target(fn, state, to)
    alias = state.alias or {}
    current = alias["FunctionVersion"]
    if target == current:
        raise LambdashipError(f"alias {fn.alias} of {name} already points at version {target}")
    ref = state.version(target)
    repository, digest = (ref.repository, ref.digest) if ref else (None, None)
    if repository and digest and (repository, digest) in state.missing_images:
        raise LambdashipError(
            f"the image of version {target} ({repository}@{digest}) no longer exists in the registry, "
            "so Lambda cannot run it",
            "roll back to another version with --to, or deploy a new image",
        )
    history = _history(state)
    remaining = [v for v in history if v not in (target, current)]
    if to is not None:  # an explicit target keeps the way back to where we were
        remaining = [current, *remaining]
    step = Step("lambda:UpdateAlias", {
        "FunctionName": name, "Name": fn.alias, "FunctionVersion": target,
        "Description": history_description(remaining), "RevisionId": alias.get("RevisionId"),
    }, f"was version {current}", output="alias_version")
    extras = tuple(_rollback_extra(fn, x, ref) for x in state.extras) if ref else ()
    return Plan(function_name=name, alias=fn.alias, target=None, steps=(*(e for e in extras if e), step),
                exists=True, alias_version=current, history=tuple(history), kind="rollback")


def _rollback_extra(fn: FunctionConfig, extra: FunctionState, target: VersionRef) -> Step | None:
    """The extra function's alias to its newest version on the same code as ``target`` (None: it is
    there already, or no version of it runs that code, e.g. it was added after)."""
    same = [v for v in extra.versions if v.runs_same_code(target)]
    if not same or extra.alias is None:
        return None
    version = max(same, key=lambda v: int(v.version)).version
    if extra.alias_version == version:
        return None
    return Step("lambda:UpdateAlias", {"FunctionName": extra.name, "Name": fn.alias, "FunctionVersion": version,
                                       "RevisionId": extra.alias.get("RevisionId")},
                f"extra function on the same code, was version {extra.alias_version}")
