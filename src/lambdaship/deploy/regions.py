"""One build deployed to several regions (``regions = [...]``): Lambda pulls only from its own
region's ECR, so every region gets the image in its own repository, by the same digest.

Order (docs/design-regions.md):

1. In the first region: resolve the package once — build the image (or resolve ``--image``, or
   build the zip) — and push the image to that region's repository.
2. Every region on its own thread, inside :func:`lambdaship.aws.session.in_region` (its own
   boto3 clients, its own ECR token): a region whose registry lacks the image gets a
   registry-to-registry copy of the blobs it lacks (:mod:`lambdaship.oci.copy`; same manifest
   bytes, so the same digest), then the region's own deploy — observe, plan, execute: update by
   digest, publish, smoke test, move the alias (:func:`lambdaship.deploy.pipeline.ship`).
3. One :class:`RegionsResult`: a row per region.

A failure in one region stops no other. Each region's alias only ever moves to a version whose
smoke test passed there, so every alias stays consistent; regions that deployed are **not**
rolled back (their new version passed its own smoke test; moving them back would put older
code live everywhere because one region failed). Running the deploy again finishes the job:
the deployed regions are up to date, the failed one is retried.
"""

from __future__ import annotations

import contextvars
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

from lambdaship.config import FunctionConfig
from lambdaship.deploy.packages import ImagePackage
from lambdaship.deploy.pipeline import AppHook, DeployResult, resolve_package, ship
from lambdaship.deploy.steps import Step, Target
from lambdaship.errors import LambdashipError

RegionReporter = Callable[[str, Step, dict[str, Any]], None]
RegionPushSink = Callable[[str, Any], None]
RegionDone = Callable[[str, "RegionOutcome"], None]


@dataclass
class RegionOutcome:
    region: str
    result: DeployResult | None = None
    error: LambdashipError | None = None
    push: Any = None  # oci PushResult: the first region's push, or this region's copy
    copied_from: str | None = None  # the image reference the copy read from
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None and self.result is not None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"region": self.region, "ok": self.ok, "seconds": round(self.seconds, 3)}
        if self.result is not None:
            out.update(self.result.to_json())
        if self.push is not None:
            out["push"] = {k: v for k, v in self.push.to_json().items() if k != "blobs"}
            out["push"]["copied_from"] = self.copied_from
        if self.error is not None:
            out["error"] = {"message": self.error.message, "hint": self.error.hint}
        return out


@dataclass
class RegionsResult:
    function_name: str
    alias: str
    dry_run: bool
    digest: str | None
    regions: list[RegionOutcome] = field(default_factory=list)

    @property
    def failed(self) -> list[RegionOutcome]:
        return [r for r in self.regions if not r.ok]

    @property
    def deployed(self) -> list[RegionOutcome]:
        return [r for r in self.regions if r.ok]

    def to_json(self) -> dict[str, Any]:
        return {"function": self.function_name, "alias": self.alias, "dry_run": self.dry_run, "digest": self.digest,
                "ok": not self.failed, "regions": [r.to_json() for r in self.regions]}

    def failure(self) -> LambdashipError:
        """One line: which regions failed and why, where their aliases are, which regions deployed."""
        bad, good = self.failed, self.deployed
        why = "; ".join(f"{r.region}: {r.error.one_line() if r.error else 'no result'}" for r in bad)
        n = len(self.regions)
        if good:
            done = ", ".join(f"{r.region} (alias {self.alias} → version {_alias_version(r)})" for r in good)
            rest = f"deployed in {done}, left as they are"
        else:
            rest = "no region was deployed"
        return LambdashipError(
            f"deploy of {self.function_name} failed in {len(bad)} of {n} regions ({', '.join(r.region for r in bad)}): "
            f"{why}; {rest}",
            "fix the cause and deploy again: the deployed regions are up to date, the failed ones are retried")


def _alias_version(r: RegionOutcome) -> str | None:
    res = r.result
    return (res.alias_version or res.version) if res is not None else None


def check_regions(fn: FunctionConfig, regions: list[str]) -> list[str]:
    if not regions:
        raise LambdashipError(f"no regions to deploy {fn.function_name} to", 'set regions = ["us-east-1", ...]')
    return list(dict.fromkeys(regions))


def ship_regions(
    fn: FunctionConfig,
    regions: list[str],
    *,
    dry_run: bool = False,
    image: str | None = None,
    create_role: bool = False,
    skip_smoke: bool = False,
    env_file: Any = None,
    progress: bool = False,
    reporter: RegionReporter | None = None,
    on_push_event: RegionPushSink | None = None,
    zip_bucket: str | None = None,
    create_bucket: bool = False,
    app: AppHook | None = None,
    workers: int | None = None,
    on_done: RegionDone | None = None,
) -> RegionsResult:
    """Deploy ``fn`` to every region in ``regions`` (the first one builds and pushes); never
    raises for one region's failure: see :attr:`RegionsResult.failed` / :meth:`RegionsResult.failure`.
    Raises before anything is deployed when the package cannot be resolved (a build error).
    ``on_done(region, outcome)`` is called as each region finishes (from its thread)."""
    from lambdaship.aws.session import in_region

    regions = check_regions(fn, regions)
    first = regions[0]
    with in_region(first):
        package = resolve_package(fn, image=image, progress=progress, zip_bucket=zip_bucket,
                                  create_bucket=create_bucket)
    if not isinstance(package, ImagePackage):
        zplan = package.zplan  # type: ignore[attr-defined]
        if zplan.decision.upload == "s3" and len(regions) > 1:
            raise LambdashipError(
                f"{fn.function_name}: a zip over 50 MiB goes through an S3 bucket, and buckets are regional; "
                "a deploy to several regions ships inline zips and images",
                'set package_type = "image" (or deploy each region with --regions R and a bucket there)')
    result = RegionsResult(fn.function_name, fn.alias, dry_run, package.target.digest if package.target else None)
    outcomes = {r: RegionOutcome(r) for r in regions}
    result.regions = [outcomes[r] for r in regions]
    source: tuple[str, str] | None = None  # (registry host, repository) every other region copies from

    if isinstance(package, ImagePackage) and not dry_run:
        target = package.target
        if target.image is not None:  # built here: push it to the first region
            t0 = time.monotonic()
            try:
                with in_region(first):
                    outcomes[first].push = _push_first(target, on_push_event and _bind(on_push_event, first))
                    package = replace(package, target=_target_in(first, target, image=None))
            except LambdashipError as exc:
                outcomes[first].error = exc
                outcomes[first].seconds = time.monotonic() - t0
                for r in regions[1:]:
                    outcomes[r].error = LambdashipError(f"not deployed: the push to {first} failed")
                return result
            outcomes[first].seconds = time.monotonic() - t0
        source = (package.target.registry, package.target.repository)

    role_ready = threading.Event()
    wait_for_role = create_role and fn.role is None and len(regions) > 1
    if not wait_for_role:
        role_ready.set()

    def one(region: str) -> None:
        out = outcomes[region]
        t0 = time.monotonic() - out.seconds
        try:
            with in_region(region):
                if region != first and not role_ready.wait(600):  # IAM is global: the first region creates it
                    raise LambdashipError(f"the first region ({first}) did not get past creating the role")
                pkg = package
                if isinstance(pkg, ImagePackage):
                    pkg = _image_in(region, pkg, source, out, dry_run=dry_run,
                                    on_event=on_push_event and _bind(on_push_event, region))
                report = _role_watch(reporter, region, role_ready) if region == first else (
                    reporter and _bind(reporter, region))
                out.result = ship(fn, dry_run=dry_run, create_role=create_role, skip_smoke=skip_smoke,
                                  env_file=env_file, progress=False, reporter=report, zip_bucket=zip_bucket,
                                  create_bucket=create_bucket, app=app, package=pkg,
                                  on_push_event=on_push_event and _bind(on_push_event, region))
        except LambdashipError as exc:
            out.error = exc
        except Exception as exc:  # one region's unexpected failure is reported, never another region's
            from lambdaship.translate import translate

            out.error = translate(exc)
        finally:
            if region == first:
                role_ready.set()
            out.seconds = time.monotonic() - t0
            if on_done is not None:
                on_done(region, out)

    with ThreadPoolExecutor(max_workers=workers or len(regions), thread_name_prefix="lambdaship-region") as pool:
        futures = [pool.submit(contextvars.copy_context().run, one, r) for r in regions]
        for f in futures:
            f.result()
    return result


def _bind(fn: Callable[..., None], region: str) -> Callable[..., None]:
    return lambda *args: fn(region, *args)


def _role_watch(reporter: RegionReporter | None, region: str, ready: threading.Event) -> Callable[..., None]:
    """The first region's reporter: the other regions may start once its plan is past creating the
    execution role (the first step after ``lambda:CreateFunction``, or the first step when the plan
    creates no role), so that IAM, which is global, gets one CreateRole."""
    state = {"role": False, "created": False}

    def report(step: Step, ctx: dict[str, Any]) -> None:
        action = step.action
        if action == "iam:CreateRole":
            state["role"] = True
        elif action == "lambda:CreateFunction":
            state["created"] = True
        elif action != "package:Choose" and (not state["role"] or state["created"]):
            ready.set()
        if reporter is not None:
            reporter(region, step, ctx)

    return report


def _registry(region: str) -> str:
    from lambdaship.aws import ecr

    return ecr.registry_for_account(region)


def _target_in(region: str, target: Target, *, image: Any) -> Target:
    host = _registry(region)
    return Target(image_uri=f"{host}/{target.repository}@{target.digest}", digest=target.digest,
                  repository=target.repository, image=image)


def _push_first(target: Target, on_event: Any) -> Any:
    """The build's push to the first region (what ``registry:PushImage`` does, done before the
    regions fork so that they can copy from it)."""
    from lambdaship.aws import ecr
    from lambdaship.deploy.handlers.artifacts import KEEP_IMAGES
    from lambdaship.registries import push_image

    where = ecr.ensure_repository(target.repository, keep_images=KEEP_IMAGES)
    pushed = push_image(target.image, where, on_event=on_event)
    if pushed.digest != target.digest:
        raise LambdashipError(f"the registry stored {pushed.digest}, expected {target.digest}")
    return pushed


def _image_in(region: str, package: ImagePackage, source: tuple[str, str] | None, out: RegionOutcome, *,
              dry_run: bool, on_event: Any) -> ImagePackage:
    """The package as this region deploys it: the image in the region's own repository, copied
    there first (only the blobs it lacks) when it is somewhere else."""
    target = package.target
    host = _registry(region)
    if source is None or source[0] == host:
        if dry_run and target.image is not None:  # the plan shows the push this region would get
            return replace(package, target=_target_in(region, target, image=target.image))
        return replace(package, target=_target_in(region, target, image=None))
    out.push, out.copied_from = copy_image(source, host, target.repository, target.digest, on_event), \
        f"{source[0]}/{source[1]}@{target.digest}"
    return replace(package, target=Target(image_uri=f"{host}/{target.repository}@{target.digest}",
                                          digest=target.digest, repository=target.repository))


def copy_image(source: tuple[str, str], host: str, repository: str, digest: str, on_event: Any = None) -> Any:
    """``source`` (registry host, repository) ``@digest`` into ``host/repository`` (created if
    missing, with lambdaship's lifecycle policy), blob by blob, only the blobs it lacks; the
    manifest last. Returns the push result (``streamed_blobs`` / ``uploaded_bytes``: what was copied)."""
    from lambdaship.aws import ecr
    from lambdaship.deploy.handlers.artifacts import KEEP_IMAGES
    from lambdaship.oci.copy import remote_image
    from lambdaship.registries import push_image, registry_client

    image = remote_image(registry_client(source[0]), source[1], digest)
    where = ecr.ensure_repository(repository, keep_images=KEEP_IMAGES)
    pushed = push_image(image, where, on_event=on_event)
    if pushed.digest != digest:
        raise LambdashipError(f"the copy to {host}/{repository} stored {pushed.digest}, expected {digest}")
    return pushed
