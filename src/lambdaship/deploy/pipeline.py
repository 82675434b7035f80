"""``ship()``: build → push → deploy by digest → wait → publish → smoke test → move the alias.

Stages: resolve the environment and the package (local work) → observe (read-only calls,
:mod:`lambdaship.deploy.state`) → plan (pure, :mod:`lambdaship.deploy.plan`) → execute (the only
mutating stage, :mod:`lambdaship.deploy.execute`). ``dry_run`` stops after planning.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lambdaship.config import FunctionConfig
from lambdaship.deploy import env as envmod
from lambdaship.deploy.execute import Outcome, StepFailed, execute
from lambdaship.deploy.packages import ImagePackage, Package, choice_step
from lambdaship.deploy.plan import Options, plan
from lambdaship.deploy.state import observe
from lambdaship.deploy.steps import Plan, Step, Target
from lambdaship.errors import LambdashipError
from lambdaship.names import Names
from lambdaship.translate import describe

# (fn, PlanInput, image_uri=, zip_path=) -> ((Extension, ...), app plan) | None
AppHook = Callable[..., Any]


@dataclass
class DeployResult:
    function_name: str
    alias: str
    dry_run: bool
    plan: Plan
    digest: str | None = None
    image_uri: str | None = None
    version: str | None = None
    previous_version: str | None = None
    alias_version: str | None = None
    created: bool = False
    up_to_date: bool = False
    smoke: dict[str, Any] | None = None
    steps: list[str] = field(default_factory=list)
    app: Any = None  # the app's AppPlan (lambdaship.api.deploy), with ship(app=True)

    @property
    def function_up_to_date(self) -> bool:
        """The function's own steps changed nothing: only the app's API/triggers did (or nothing did)."""
        from lambdaship.deploy.steps import MUTATING

        own = [a for a in self.steps if a.startswith(MUTATING) and not a.startswith("api:")]
        return self.up_to_date or (not self.dry_run and not own)

    def to_json(self) -> dict[str, Any]:
        return {
            "function": self.function_name,
            "alias": self.alias,
            "dry_run": self.dry_run,
            "digest": self.digest,
            "image_uri": self.image_uri,
            "version": self.version,
            "previous_version": self.previous_version,
            "alias_version": self.alias_version,
            "created": self.created,
            "up_to_date": self.up_to_date,
            "smoke": self.smoke,
            "steps": self.steps if not self.dry_run else [s["action"] for s in self.plan.to_json()["steps"]],
            "plan": self.plan.to_json(),
        }


class DeployFailed(LambdashipError):
    pass


def target_from_ref(ref: str) -> Target:
    """An already-pushed image: must be in ECR (Lambda runs nothing else); a tag is resolved to
    its digest with a HEAD request."""
    from lambdaship.oci.reference import Reference, is_ecr_host
    from lambdaship.registries import registry_client

    r = Reference.parse(ref)
    if not is_ecr_host(r.registry):
        raise LambdashipError(
            f"{ref} is not in Amazon ECR; Lambda only runs images from ECR",
            "push it to <account>.dkr.ecr.<region>.amazonaws.com/<repository> first",
        )
    client = registry_client(r.registry)
    found = client.head_manifest(r.repository, r.digest or r.tag or "latest")
    if found is None or (r.digest and found != r.digest):
        raise LambdashipError(f"image {ref} does not exist in the registry", "push it first, or check the reference")
    digest = r.digest or found
    return Target(image_uri=f"{r.host}/{r.repository}@{digest}", digest=digest, repository=r.repository)


def target_from_build(fn: FunctionConfig, *, progress: bool = False) -> Target:
    from lambdaship.aws import ecr, lambda_
    from lambdaship.image.build import build_image

    # A fresh CI runner reuses the running image's dependency layer when the deps are unchanged.
    # The Lambda lookup (boto3 import + client) runs while the build does its local checks.
    def previous_image() -> str | None:
        current = lambda_.get_function(fn.function_name)
        previous = (current or {}).get("Code", {}).get("ImageUri")
        return previous if previous and "@" in previous else None

    import contextvars
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=1) as pool:  # the lookup in the caller's region (aws.session.in_region)
        lookup = pool.submit(contextvars.copy_context().run, previous_image)
        result = build_image(fn, progress=progress, reuse_deps_from=lookup.result)
    registry = ecr.registry_for_account()  # a host, without the scheme
    image = result.image
    repository = Names(fn.function_name, fn.repository).repository
    return Target(
        image_uri=f"{registry}/{repository}@{image.digest}",
        digest=image.digest,
        repository=repository,
        image=image,
    )


def resolve_package(fn: FunctionConfig, *, image: str | None = None, progress: bool = False,
                    zip_bucket: str | None = None, create_bucket: bool = False) -> Package:
    """What is deployed: the zip (``package_type`` zip, or auto when it fits), else the image
    (``image``: an ECR reference; else built, not pushed yet)."""
    from lambdaship.deploy import zipdeploy

    zplan = None
    if fn.package_type != "image" and not image:
        from lambdaship.image.events import adapter, sink_for  # the install's stages, as the build's

        zplan = zipdeploy.choose(fn, bucket=zip_bucket, progress=adapter(sink_for(progress)) if progress else None)
    if zplan is not None and zplan.artifact is not None:
        return zipdeploy.package(fn, zplan, create_bucket=create_bucket)
    target = target_from_ref(image) if image else target_from_build(fn, progress=progress)
    return ImagePackage(target, choice_step(zplan) if zplan is not None else None)


def prepare(
    fn: FunctionConfig,
    *,
    image: str | None = None,
    create_role: bool = False,
    skip_smoke: bool = False,
    env_file: Path | str | None = None,
    progress: bool = False,
    zip_bucket: str | None = None,
    create_bucket: bool = False,
    app: AppHook | None = None,
    package: Package | None = None,
) -> Plan:
    """Resolve the environment and the package (local work, read-only calls), observe, plan.
    ``package``: already resolved (:func:`resolve_package`; a multi-region deploy resolves it once).
    ``app``: a hook adding the app's API, extra functions and triggers as extensions
    (:func:`lambdaship.api.deploy.extension`, passed in by the CLI so ``deploy`` does not import
    ``api``); its :class:`~lambdaship.api.deploy.AppPlan` goes to ``artifacts["app"]``."""
    from lambdaship.aws import lambda_

    with lambda_.shared_reads():  # the function is read once for the build, the choice and observe
        return _prepare(fn, image=image, create_role=create_role, skip_smoke=skip_smoke, env_file=env_file,
                        progress=progress, zip_bucket=zip_bucket, create_bucket=create_bucket, app=app,
                        package=package)


def _prepare(fn: FunctionConfig, *, image: str | None, create_role: bool, skip_smoke: bool,
             env_file: Path | str | None, progress: bool, zip_bucket: str | None, create_bucket: bool,
             app: AppHook | None, package: Package | None) -> Plan:
    import contextvars
    from concurrent.futures import ThreadPoolExecutor

    resolved = envmod.resolve(fn, env_file)  # validates names and the 4 KB limit first
    early = getattr(app, "prefetch", None)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="app-observe") as pool:
        # The app's model and its resources as they are do not depend on the build: read them meanwhile.
        observed = pool.submit(contextvars.copy_context().run, early, fn) if early is not None else None
        if package is None:
            package = resolve_package(fn, image=image, progress=progress, zip_bucket=zip_bucket,
                                      create_bucket=create_bucket)
        if isinstance(package, ImagePackage):
            state = observe(fn, target=package.target, create_role=create_role)
        else:
            zplan = package.zplan  # type: ignore[attr-defined]
            bucket = zplan.bucket if zplan.decision.upload == "s3" else None
            state = observe(fn, create_role=create_role, bucket=bucket)
        opts = Options(create_role=create_role, skip_smoke=skip_smoke)
        if app is not None:
            opts = _with_app(app, fn, package, resolved, state, opts,
                             observed=observed.result() if observed is not None else None)
    return plan(fn, package, resolved, state, opts)


def _with_app(hook: AppHook, fn: FunctionConfig, package: Package, resolved: envmod.Resolved, state: Any,
              opts: Options, observed: Any = None) -> Options:
    from dataclasses import replace

    from lambdaship.deploy.plan import PlanInput

    art = getattr(getattr(package, "zplan", None), "artifact", None)
    found = hook(fn, PlanInput(fn, Names(fn.function_name, fn.repository), package, resolved, state),
                      image_uri=package.target.image_uri if package.target else None,
                      zip_path=Path(art.path) if art is not None else None,
                      **({"observed": observed} if observed is not None else {}))
    if found is None:
        return opts
    exts, app_plan = found
    return replace(opts, extensions=(*opts.extensions, *exts), artifacts={**opts.artifacts, "app": app_plan})


def ship(
    fn: FunctionConfig,
    *,
    dry_run: bool = False,
    image: str | None = None,
    create_role: bool = False,
    skip_smoke: bool = False,
    env_file: Path | str | None = None,
    progress: bool = False,
    reporter: Callable[[Step, dict[str, Any]], None] | None = None,
    zip_bucket: str | None = None,
    create_bucket: bool = False,
    on_push_event: Callable[[Any], None] | None = None,
    app: AppHook | None = None,
    package: Package | None = None,
) -> DeployResult:
    """Deploy ``fn``. ``image``: an ECR image reference to deploy instead of building.

    ``package_type`` zip/auto: :mod:`lambdaship.deploy.zipdeploy` builds the zip and decides (first
    plan step ``package:Choose``); ``zip_bucket`` (else the config's) for zips over 50 MiB.
    ``reporter(step, variables)`` is called before each step runs; ``on_push_event`` receives the
    image push's events (:class:`lambdaship.oci` ``PushEvent``). ``app`` (see :func:`prepare`): the
    app's API, extra functions and triggers are part of the plan (``result.app``: their
    :class:`~lambdaship.api.deploy.AppPlan`)."""
    p = prepare(fn, image=image, create_role=create_role, skip_smoke=skip_smoke, env_file=env_file,
                progress=progress, zip_bucket=zip_bucket, create_bucket=create_bucket, app=app, package=package)
    app_plan = p.artifacts.get("app")
    target = p.target
    result = DeployResult(
        function_name=fn.function_name, alias=fn.alias, dry_run=dry_run, plan=p,
        digest=target.digest if target else None, image_uri=target.image_uri if target else None,
        previous_version=p.alias_version, alias_version=p.alias_version, up_to_date=p.up_to_date,
        app=app_plan,
    )
    if dry_run or p.up_to_date:
        if p.up_to_date:
            result.version = p.alias_version
        return result
    ctx: dict[str, Any] = {"on_push_event": on_push_event, **(app_plan.variables() if app_plan else {})}
    outcome = run_plan(p, ctx, "deploy", reporter=reporter, progress=progress)
    if app_plan is not None:
        app_plan.finish(outcome.ctx)
    result.steps = [s.action for s in outcome.done]
    result.version = outcome.ctx.get("version") or (p.alias_version if result.function_up_to_date else None)
    result.alias_version = outcome.ctx.get("alias_version", p.alias_version)
    result.created = any(s.action == "lambda:CreateFunction" for s in outcome.done)
    result.smoke = outcome.smoke
    result.steps = [s.action for s in outcome.done]
    return result


def run_plan(p: Plan, ctx: dict[str, Any], what: str, *,
             reporter: Callable[[Step, dict[str, Any]], None] | None = None, progress: bool = False) -> Outcome:
    """Execute a deploy-shaped plan (the alias moves last); a failure becomes one line naming the
    step and where the alias still points."""
    def report(i: int, total: int, step: Step, phase: str) -> None:
        if reporter is not None and phase == "start":
            reporter(step, ctx)

    try:
        return execute(p, reporter=report, ctx=ctx, progress=progress)
    except StepFailed as failed:
        known = describe(failed.cause)
        if known is None:
            raise failed.cause from None
        hint = f"; {known.hint}" if known.hint else ""
        if any(s.action in ("lambda:CreateAlias", "lambda:UpdateAlias") for s in failed.outcome.done):
            where = f"alias {p.alias} already points at version {ctx.get('alias_version')}"  # an after_alias step
        else:
            version = f"; version {ctx['version']} was published but not aliased" if ctx.get("version") else ""
            where = f"alias {p.alias} still points at version {p.alias_version or 'none'}{version}"
        raise DeployFailed(f"{what} of {p.function_name} failed at {failed.step.action}: {known.message}",
                           where + hint) from failed.cause
