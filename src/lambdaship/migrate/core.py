"""``lambdaship migrate``: move a zip function's traffic to a new image function, undoably.

Lambda cannot change a function's package type, so a migration creates a second function and
moves every trigger to its alias:

1. prepare (read-only + local build): read the old function, discover what invokes it, merge
   the environment, build the image, observe, and plan: the new function's deploy plan
   (:func:`lambdaship.deploy.plan.plan`, the same steps ``deploy`` runs) composed with the
   migration's steps (:mod:`lambdaship.migrate.steps`: permissions, re-pointing, stage
   deployments, verification) as plan extensions, so ``--dry-run`` renders one plan.
2. run: the one executor (:func:`lambdaship.deploy.execute.execute`) with ``undo=True``: every
   step that changes something registers its undo; when a step fails, the undos run in reverse
   order and the command fails naming that step.

The old function itself is never modified; it is deleted only with ``--delete-old``, last,
after the new alias has answered the smoke request through the switched wiring.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lambdaship.config import FunctionConfig, SmokeTest
from lambdaship.deploy.env import Resolved, check_size
from lambdaship.deploy.execute import Reporter, StepFailed, execute
from lambdaship.deploy.packages import ImagePackage
from lambdaship.deploy.plan import Options, plan
from lambdaship.deploy.state import FunctionState, observe
from lambdaship.deploy.steps import Plan, Step, Target
from lambdaship.errors import LambdashipError, UsageError
from lambdaship.migrate.discover import Inventory
from lambdaship.migrate.steps import extensions
from lambdaship.platform import DEFAULT_ARCHITECTURE, Architecture
from lambdaship.translate import translate

MIGRATED_FROM_TAG = "lambdaship:migrated-from"


class MigrationFailed(LambdashipError):
    pass


@dataclass
class Migration:
    old: Inventory
    fn: FunctionConfig  # the new function's configuration
    alias_arn: str
    plan: Plan  # the new function's deploy plan with the migration's steps after its alias
    env: Resolved
    warnings: list[str]
    delete_old: bool
    dry_run: bool = False
    env_overridden: dict[str, list[str]] = field(default_factory=dict)  # key -> sources whose value lost
    done: list[str] = field(default_factory=list)
    undone: list[str] = field(default_factory=list)

    @property
    def steps(self) -> tuple[Step, ...]:
        return self.plan.steps

    @property
    def new_name(self) -> str:
        return self.fn.function_name

    def to_json(self) -> dict[str, Any]:
        target = self.plan.target
        return {
            "from": self.old.name,
            "from_arn": self.old.arn,
            "to": self.new_name,
            "alias": self.fn.alias,
            "alias_arn": self.alias_arn,
            "image_uri": target.image_uri if target else None,
            "digest": target.digest if target else None,
            "dry_run": self.dry_run,
            "delete_old": self.delete_old,
            "environment": [{"name": k, "source": self.env.sources[k], "value": "****",
                             "overrides": self.env_overridden.get(k, [])} for k in sorted(self.env.values)],
            "triggers": self.old.triggers_json(),
            "warnings": self.warnings,
            "steps": [s.to_json() for s in self.steps],
            "done": self.done,
        }

    def render(self) -> list[str]:
        lines = [f"migrate {self.old.name} (zip) -> {self.new_name} (image), alias {self.fn.alias}:"]
        for i, s in enumerate(self.steps, 1):
            lines.append(f"  {i:>2}. {s.render()}")
        if self.env.values:
            lines.append("  environment (values hidden; the source named first wins):")
            for k in sorted(self.env.values):
                lost = self.env_overridden.get(k)
                over = f", over {', '.join(reversed(lost))}" if lost else ""
                lines.append(f"      {k}=****  ({self.env.sources[k]}{over})")
        return lines


# -- prepare (no remote changes) ------------------------------------------------------------------
def _old_env(inv: Inventory, fn: FunctionConfig, stage: str | None, env_file: Path | None,
             warnings: list[str]) -> tuple[Resolved, dict[str, list[str]]]:
    """The new function's environment: the old function's (kept) < the Chalice stage named with
    ``--stage`` (never a default one) < the project's configured environment. Also, per key, the
    sources whose different value lost."""
    from lambdaship import chalice_config as chalice
    from lambdaship.deploy import env as envmod

    values: dict[str, str] = {}
    sources: dict[str, str] = {}
    overridden: dict[str, list[str]] = {}

    def put(data: dict[str, str], source: str | dict[str, str]) -> None:
        for k, v in data.items():
            if k in values and values[k] != v:
                overridden.setdefault(k, []).append(sources[k])
            values[k] = v
            sources[k] = source if isinstance(source, str) else source[k]

    put((inv.configuration.get("Environment") or {}).get("Variables") or {}, f"function:{inv.name}")
    if stage is None:
        defined = chalice.stage_names(fn.source)
        if defined:
            warnings.append(f"{chalice.config_path(fn.source)} defines Chalice stage(s) {', '.join(defined)}; none "
                            "imported: the old function's environment is kept (pass --stage NAME to import one)")
    staged = chalice.stage_env(fn.source, stage)
    if staged is not None:
        put(staged.values, f"chalice:{staged.stage}")
        for name in staged.placeholders:
            warnings.append(f"{staged.path}: {name} is a ${{...}} placeholder in stage {staged.stage}; "
                            "kept the old function's value (if any)")
    project = envmod.resolve(fn, env_file)
    put(project.values, project.sources)
    check_size(values, fn.function_name)
    return Resolved(values=values, sources=sources), overridden


def _image_warnings(inv: Inventory, fn: FunctionConfig) -> list[str]:
    cfg = inv.configuration
    out = []
    for layer in cfg.get("Layers") or []:
        out.append(f"layer {layer.get('Arn')} cannot be used by an image function: "
                   "its content must come from the requirements")
    runtime, handler = cfg.get("Runtime"), cfg.get("Handler")
    out.append(f"Runtime {runtime} and Handler {handler} do not apply to an image: the base image "
               f"(python {fn.python}) and its CMD ({fn.resolved_handler}) replace them")
    if runtime and runtime.startswith("python") and runtime.removeprefix("python") != fn.python:
        out.append(f"the old function runs {runtime}, the image is built for python {fn.python} "
                   "(set 'python' in the config to keep the same version)")
    if (cfg.get("SnapStart") or {}).get("ApplyOn", "None") != "None":
        out.append("SnapStart is not carried over (not available for image functions)")
    if inv.url:
        out.append(f"function URL {inv.url.get('FunctionUrl')} belongs to the old function and cannot move; "
                   "create one on the new alias and update its callers")
    out.append(f"callers that invoke {inv.name} directly (SDK code, Step Functions, other functions) cannot be "
               "discovered: point them at the new alias")
    if inv.reserved_concurrency is not None:
        out.append(f"reserved concurrency {inv.reserved_concurrency} is reserved for both functions "
                   "until the old one is deleted")
    return out


def _create_extras(cfg: dict[str, Any]) -> dict[str, Any]:
    """CreateFunction parameters copied verbatim from the old configuration."""
    extra: dict[str, Any] = {}
    vpc = cfg.get("VpcConfig") or {}
    if vpc.get("SubnetIds"):
        extra["VpcConfig"] = {"SubnetIds": vpc["SubnetIds"], "SecurityGroupIds": vpc.get("SecurityGroupIds", [])}
        if vpc.get("Ipv6AllowedForDualStack"):
            extra["VpcConfig"]["Ipv6AllowedForDualStack"] = True
    if (cfg.get("TracingConfig") or {}).get("Mode") == "Active":
        extra["TracingConfig"] = {"Mode": "Active"}
    if (cfg.get("DeadLetterConfig") or {}).get("TargetArn"):
        extra["DeadLetterConfig"] = {"TargetArn": cfg["DeadLetterConfig"]["TargetArn"]}
    if cfg.get("KMSKeyArn"):
        extra["KMSKeyArn"] = cfg["KMSKeyArn"]
    if cfg.get("FileSystemConfigs"):
        extra["FileSystemConfigs"] = [{"Arn": f["Arn"], "LocalMountPath": f["LocalMountPath"]}
                                      for f in cfg["FileSystemConfigs"]]
    if cfg.get("LoggingConfig"):
        extra["LoggingConfig"] = dict(cfg["LoggingConfig"])
    return extra


def _default_smoke(inv: Inventory) -> SmokeTest | None:
    paths = sorted({i.path for i in inv.rest if i.method in ("GET", "ANY") and "{" not in i.path},
                   key=lambda p: (p.count("/"), p))
    return SmokeTest(path=paths[0]) if paths else None


def prepare(
    old_name: str,
    fn: FunctionConfig,
    *,
    to: str | None = None,
    stage: str | None = None,
    image: str | None = None,
    delete_old: bool = False,
    env_file: Path | None = None,
    progress: bool = False,
) -> Migration:
    """Validate, discover and plan. Builds the image locally (unless ``image`` is given); no remote change."""
    from lambdaship.deploy.pipeline import target_from_build, target_from_ref
    from lambdaship.migrate.discover import discover

    inv, new_name = _read_old(old_name, to)
    warnings: list[str] = []
    new_fn = _new_config(inv, fn, new_name, warnings)
    warnings.extend(_image_warnings(inv, new_fn))
    env, overridden = _old_env(inv, new_fn, stage, env_file, warnings)
    discover(inv)
    warnings.extend(inv.warnings)
    smoke = new_fn.smoke or _default_smoke(inv)
    if smoke is None:
        warnings.append("no smoke test: configure [smoke] (path or event); the new alias is not invoked "
                        "before traffic moves")
    new_fn = new_fn.model_copy(update={"smoke": smoke})

    target: Target = target_from_ref(image) if image else target_from_build(new_fn, progress=progress)
    state = observe(new_fn, target=target)
    if state.exists:
        raise LambdashipError(f"function {new_name} already exists",
                              "choose another name with --to, or delete it if a previous migration left it")
    p = plan_migration(inv, new_fn, target, env, state, delete_old=delete_old)
    return Migration(old=inv, fn=new_fn, alias_arn=alias_arn_of(inv, new_fn), plan=p, env=env, warnings=warnings,
                     delete_old=delete_old, env_overridden=overridden)


def _read_old(old_name: str, to: str | None) -> tuple[Inventory, str]:
    """The old function (a zip function) and the new function's name (free, valid, different)."""
    from lambdaship.aws import lambda_
    from lambdaship.migrate.discover import read_function
    from lambdaship.patterns import FUNCTION_NAME_RE

    new_name = to or f"{old_name}-image"
    if not FUNCTION_NAME_RE.match(new_name):
        raise UsageError(f"--to {new_name!r} is not a valid Lambda function name", "1-64 letters, digits, '-' or '_'")
    if new_name == old_name:
        raise UsageError("--to must differ from --from", "Lambda cannot turn a zip function into an image in place")
    inv = read_function(old_name)
    if inv.configuration.get("PackageType", "Zip") != "Zip":
        raise LambdashipError(f"{old_name} is already an image function", "use `lambdaship deploy` to update it")
    if lambda_.get_function(new_name) is not None:  # before the build: fail fast
        raise LambdashipError(f"function {new_name} already exists",
                              "choose another name with --to, or delete it if a previous migration left it")
    return inv, new_name


def _new_config(inv: Inventory, fn: FunctionConfig, new_name: str, warnings: list[str]) -> FunctionConfig:
    """The new function's configuration: the project's, with the old function's settings."""
    cfg = inv.configuration
    arch = Architecture.parse((cfg.get("Architectures") or [DEFAULT_ARCHITECTURE.value])[0])
    if arch != Architecture.parse(fn.architecture):
        warnings.append(f"the old function runs on {arch}; building for {arch} (the config says {fn.architecture})")
    if fn.role and fn.role != cfg["Role"]:
        warnings.append(f"the new function uses the configured role {fn.role}, not the old function's {cfg['Role']}")
    tags = {k: v for k, v in inv.tags.items() if not k.startswith("aws:")}
    return fn.model_copy(update={
        "function_name": new_name,
        "package_type": "image",
        "architecture": arch,
        "memory": cfg.get("MemorySize", fn.memory),
        "timeout": cfg.get("Timeout", fn.timeout),
        "ephemeral_storage": (cfg.get("EphemeralStorage") or {}).get("Size", fn.ephemeral_storage),
        "role": fn.role or cfg["Role"],
        "description": cfg.get("Description") or fn.description,
        "tags": {**tags, **fn.tags, MIGRATED_FROM_TAG: inv.name},
    })


def alias_arn_of(inv: Inventory, fn: FunctionConfig) -> str:
    return f"{inv.arn.rsplit(':function:', 1)[0]}:function:{fn.function_name}:{fn.alias}"


def plan_migration(inv: Inventory, new_fn: FunctionConfig, target: Target, env: Resolved, state: FunctionState,
                   *, delete_old: bool = False) -> Plan:
    """Pure: the new function's deploy plan (configuration copied from the old one) composed with
    the migration's steps (:func:`lambdaship.migrate.steps.extensions`)."""
    alias_arn = alias_arn_of(inv, new_fn)
    opts = Options(create_params=_create_extras(inv.configuration), create_note=f"same configuration as {inv.name}",
                   extensions=extensions(inv, alias_arn, delete_old), kind="migrate",
                   artifacts={"old_arn": inv.arn, "alias_arn": alias_arn})
    return plan(new_fn, ImagePackage(target), env, state, opts)


def run(m: Migration, *, reporter: Reporter | None = None, progress: bool = False) -> Migration:
    """Execute the plan; on any failure undo every change in reverse order and raise MigrationFailed."""
    try:
        outcome = execute(m.plan, reporter=reporter, undo=True, progress=progress)
    except StepFailed as failed:
        out = failed.outcome
        m.done.extend(s.action for s in out.done)
        m.undone.extend(s.action for s in out.undone)
        m.warnings.extend(out.warnings)
        step = failed.step
        what = f"step {failed.index}/{failed.total} {step.action}" + (f" ({step.note})" if step.note else "")
        if failed.undo_failures:
            hint = (f"undo FAILED for {len(failed.undo_failures)} change(s), fix them by hand: "
                    + "; ".join(failed.undo_failures))
        else:
            hint = (f"all {len(out.undone)} change(s) made before it were undone; "
                    f"{m.old.name} and its triggers are as they were")
        raise MigrationFailed(f"migrate failed at {what}: {translate(failed.cause).message}", hint) from failed.cause
    m.done.extend(s.action for s in outcome.done)
    m.warnings.extend(outcome.warnings)
    return m


__all__ = ["Migration", "MigrationFailed", "prepare", "run"]
