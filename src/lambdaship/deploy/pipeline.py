"""``ship()``: build → push → deploy by digest → wait → publish → smoke test → move the alias.

Stages: resolve the environment and the image (local work and read-only calls) → plan
(describe-only) → execute (the only mutating stage). ``dry_run`` stops after planning.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lambdaship.config import FunctionConfig
from lambdaship.deploy import env as envmod
from lambdaship.deploy.execute import Reporter, execute
from lambdaship.deploy.plan import Plan, Target, plan_deploy
from lambdaship.errors import LambdashipError


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
    from lambdaship.registry import Reference, RegistryClient, is_ecr_host

    r = Reference.parse(ref)
    if not is_ecr_host(r.registry):
        raise LambdashipError(
            f"{ref} is not in Amazon ECR; Lambda only runs images from ECR",
            "push it to <account>.dkr.ecr.<region>.amazonaws.com/<repository> first",
        )
    client = RegistryClient.for_registry(r.registry)
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

    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=1) as pool:
        result = build_image(fn, progress=progress, reuse_deps_from=pool.submit(previous_image).result)
    registry = ecr.registry_for_account()
    registry = registry.split("://", 1)[-1].rstrip("/")
    image = result.image
    return Target(
        image_uri=f"{registry}/{fn.repository_name}@{image.digest}",
        digest=image.digest,
        repository=fn.repository_name,
        image=image,
    )


def ship(
    fn: FunctionConfig,
    *,
    dry_run: bool = False,
    image: str | None = None,
    create_role: bool = False,
    skip_smoke: bool = False,
    env_file: Path | str | None = None,
    progress: bool = False,
    reporter: Reporter | None = None,
    zip_bucket: str | None = None,
    create_bucket: bool = False,
) -> DeployResult:
    """Deploy ``fn``. ``image``: an ECR image reference to deploy instead of building.

    ``package_type`` zip/auto: :mod:`lambdaship.zipdeploy` builds the zip and decides (first plan
    step ``package:Choose``); ``zip_bucket`` (else the config's) for zips over 50 MiB."""
    resolved = envmod.resolve(fn, env_file)  # validates names and the 4 KB limit first
    zplan = None
    if fn.package_type != "image" and not image:
        from lambdaship import zipdeploy

        zplan = zipdeploy.choose(fn, bucket=zip_bucket)
    if zplan is not None and zplan.artifact is not None:
        plan = zipdeploy.plan_zip(fn, zplan, resolved, create_role=create_role, skip_smoke=skip_smoke,
                                  create_bucket=create_bucket)
        target = plan.target
        assert target is not None
    else:
        target = target_from_ref(image) if image else target_from_build(fn, progress=progress)
        plan = plan_deploy(fn, target, resolved, create_role=create_role, skip_smoke=skip_smoke)
        if zplan is not None:
            plan.steps.insert(0, zipdeploy.choice_step(zplan))
    result = DeployResult(
        function_name=fn.function_name, alias=fn.alias, dry_run=dry_run, plan=plan, digest=target.digest,
        image_uri=target.image_uri, previous_version=plan.alias_version, alias_version=plan.alias_version,
        up_to_date=plan.up_to_date,
    )
    if dry_run or plan.up_to_date:
        if plan.up_to_date:
            result.version = plan.alias_version
        return result
    ctx: dict[str, Any] = {"progress": progress}
    try:
        outcome = execute(plan, reporter=reporter, ctx=ctx)
    except Exception as exc:
        message, hint = _describe_error(exc)
        if message is None:
            raise
        where = ctx.get("failed_step", "?")
        kept = plan.alias_version or "none"
        version = f"; version {ctx['version']} was published but not aliased" if ctx.get("version") else ""
        raise DeployFailed(
            f"deploy of {fn.function_name} failed at {where}: {message}",
            f"alias {fn.alias} still points at version {kept}{version}" + (f"; {hint}" if hint else ""),
        ) from exc
    result.version = outcome.ctx.get("version")
    result.alias_version = outcome.ctx.get("alias_version", plan.alias_version)
    result.created = bool(outcome.ctx.get("created"))
    result.smoke = outcome.smoke
    result.steps = [s.action for s in outcome.done]
    return result


def _describe_error(exc: BaseException) -> tuple[str | None, str | None]:
    if isinstance(exc, LambdashipError):
        return exc.message, exc.hint
    try:
        from botocore.exceptions import BotoCoreError, ClientError
    except ImportError:  # pragma: no cover
        return None, None
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        return f"AWS {exc.operation_name}: {err.get('Code')}: {err.get('Message')}", None
    if isinstance(exc, BotoCoreError):
        return f"AWS error: {exc}", None
    return None, None
