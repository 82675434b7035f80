"""Deploying a zip package: the zip branch of :func:`lambdaship.deploy.pipeline.ship`.

Same stages and guarantees as an image deploy, with the deploy's own Plan/Step/execute:
choose the package type (``package:Choose``, describe-only) → upload (``zip:Upload``: inline
``ZipFile`` up to 50 MiB, else a content-addressed S3 object) → create/update the function
(``PackageType Zip``, ``Runtime python3.X``, ``Handler``) → wait → publish a version only if
``$LATEST`` still has our ``CodeSha256`` (``zip:PublishVersion``) → smoke test → move the alias
(last, so a failure leaves it where it was). Rollback needs nothing special: it moves the alias.

A version's description carries ``lambdaship zip=sha256:<hex>`` (the zip's SHA-256), as image
versions carry their digest, so an unchanged zip is recognised and nothing is redeployed.
"""

from __future__ import annotations

import re
from typing import Any

from lambdaship.config import FunctionConfig
from lambdaship.deploy import execute as _execute
from lambdaship.deploy.env import Resolved, diff
from lambdaship.deploy.plan import (
    Later,
    Plan,
    Step,
    Target,
    _config_changes,
    desired_configuration,
    desired_tags,
    execution_role,
    parse_history,
    smoke_and_alias_steps,
)
from lambdaship.errors import LambdashipError
from lambdaship.package import zipplan as zippkg

ZIP_MARKER_RE = re.compile(r"lambdaship zip=(?P<digest>sha256:[0-9a-f]{64})")


def zip_marker(sha256_hex: str, description: str = "") -> str:
    return f"lambdaship zip=sha256:{sha256_hex}{' ' + description if description else ''}"[:256]


def zip_digest_of(description: str | None) -> str | None:
    m = ZIP_MARKER_RE.search(description or "")
    return m.group("digest") if m else None


def choose(fn: FunctionConfig, *, bucket: str | None = None) -> zippkg.ZipPlan:
    """Describe-only: build the zip (for zip/auto) and decide, knowing the deployed package type."""
    from lambdaship.aws import lambda_

    current = lambda_.get_function(fn.function_name) if fn.package_type != "image" else None
    existing = current["Configuration"].get("PackageType") if current else None
    return zippkg.plan(fn, bucket=bucket, existing=existing)


def choice_step(zplan: zippkg.ZipPlan) -> Step:
    """The plan's first step: which package type, and why (one line)."""
    d = zplan.decision
    params: dict[str, Any] = {"PackageType": "Zip" if d.package_type == "zip" else "Image"}
    if zplan.artifact is not None:
        params.update({"Upload": d.upload, "ZipSize": zplan.artifact.size,
                       "UnzippedSize": zplan.artifact.unzipped_size, "Sha256": zplan.artifact.sha256})
    return Step("package:Choose", params, d.reason)


def plan_zip(
    fn: FunctionConfig,
    zplan: zippkg.ZipPlan,
    env: Resolved,
    *,
    create_role: bool = False,
    skip_smoke: bool = False,
    create_bucket: bool = False,
) -> Plan:
    """Describe the function and list the calls of a zip deploy (nothing is changed here)."""
    from lambdaship.aws import lambda_

    art = zplan.artifact
    if art is None or zplan.decision.package_type != "zip":
        raise ValueError("plan_zip() needs a zip decision")
    zippkg.check_bucket(zplan, create_bucket=create_bucket)
    name = fn.function_name
    digest = f"sha256:{art.sha256}"
    current = lambda_.get_function(name)
    plan = Plan(function_name=name, alias=fn.alias, target=Target(image_uri=None, digest=digest,  # type: ignore[arg-type]
                                                                   repository=""),
                exists=current is not None)
    plan.zip_plan = zplan  # type: ignore[attr-defined]  # the artifact travels with the plan to zip:Upload
    plan.zip_function = fn  # type: ignore[attr-defined]
    steps = plan.steps
    steps.append(choice_step(zplan))

    role = execution_role(fn, current, create_role=create_role, steps=steps)

    if zplan.decision.upload == "s3":
        assert zplan.bucket
        code: dict[str, Any] = {"S3Bucket": zplan.bucket, "S3Key": zippkg.s3_key(fn, art)}
        upload = Step("zip:Upload", {"Upload": "s3", "Bucket": zplan.bucket, "Key": code["S3Key"], "Size": art.size,
                                     "CreateBucket": create_bucket}, "skipped when the object is already there")
    else:
        code = {"ZipFile": Later("{zip_file}")}
        upload = Step("zip:Upload", {"Upload": "direct", "Path": str(art.path), "Size": art.size},
                      "sent inline as ZipFile")
    runtime = zippkg.function_params(fn)
    desired = desired_configuration(fn, env)
    arch = [fn.architecture]
    if current is None:
        steps.append(upload)
        steps.append(Step("lambda:CreateFunction", {
            "FunctionName": name, "PackageType": "Zip", "Code": code, **runtime, "Role": role,
            "Architectures": arch, **desired, "Tags": desired_tags(fn),
        }))
        steps.append(Step("lambda:Wait", {"FunctionName": name, "Waiter": "function_active_v2"}))
        plan.env_changes = diff({}, env)
    else:
        cfg = current["Configuration"]
        if cfg.get("PackageType") != "Zip":
            raise LambdashipError(
                f"{name} is an {cfg.get('PackageType')} function; Lambda cannot change a function's package type",
                'set package_type = "image" (or "auto"), or deploy the zip under a new function_name',
            )
        plan.current_digest = None
        plan.env_changes = diff(cfg.get("Environment", {}).get("Variables", {}), env)
        revision: Any = cfg.get("RevisionId")
        if cfg.get("CodeSha256") != art.code_sha256 or (cfg.get("Architectures") or ["x86_64"]) != arch:
            steps.append(upload)
            steps.append(Step("lambda:UpdateFunctionCode", {
                "FunctionName": name, **code, "Architectures": arch, "RevisionId": revision,
            }))
            steps.append(Step("lambda:Wait", {"FunctionName": name, "Waiter": "function_updated_v2"}))
            revision = Later("{revision}")
        changes = _config_changes(cfg, desired)
        changes.update({k: v for k, v in runtime.items() if cfg.get(k) != v})
        if fn.role and cfg.get("Role") != fn.role:
            changes["Role"] = fn.role
        if changes:
            steps.append(Step("lambda:UpdateFunctionConfiguration", {"FunctionName": name, **changes,
                                                                     "RevisionId": revision}))
            steps.append(Step("lambda:Wait", {"FunctionName": name, "Waiter": "function_updated_v2"}))
        tags = current.get("Tags") or {}
        missing = {k: v for k, v in desired_tags(fn).items() if tags.get(k) != v}
        if missing:
            steps.append(Step("lambda:TagResource", {"Resource": cfg["FunctionArn"], "Tags": missing}))

    alias = lambda_.get_alias(name, fn.alias) if current is not None else None
    if alias is not None:
        plan.alias_version = alias["FunctionVersion"]
        plan.history = parse_history(alias.get("Description"))
        if plan.alias_version != "$LATEST":
            published = lambda_.get_function(name, plan.alias_version)
            plan.alias_digest = zip_digest_of((published or {}).get("Configuration", {}).get("Description"))

    if not [s for s in steps if s.action.startswith("lambda:")] and plan.alias_digest == digest:
        return plan  # the alias already serves this zip with this configuration

    steps.append(Step("zip:PublishVersion", {
        "FunctionName": name, "Description": zip_marker(art.sha256, fn.description),
        "CodeSha256": art.code_sha256,
    }, "only if $LATEST still has this CodeSha256 (else: concurrent deploy)"))
    steps.extend(smoke_and_alias_steps(fn, plan, alias, skip_smoke=skip_smoke))
    return plan


# ---- execution handlers (registered in lambdaship.deploy.execute.HANDLERS) ----------------------
def _h_choose(step: Step, p: dict[str, Any], ctx: dict[str, Any], plan: Plan) -> None:
    ctx["package_type"] = p.get("PackageType")


def _h_upload(step: Step, p: dict[str, Any], ctx: dict[str, Any], plan: Plan) -> None:
    zplan: zippkg.ZipPlan = plan.zip_plan  # type: ignore[attr-defined]
    fn: FunctionConfig = plan.zip_function  # type: ignore[attr-defined]
    assert zplan.artifact is not None
    if zippkg.code_sha256_of(zplan.artifact.path) != zplan.artifact.code_sha256:
        raise LambdashipError(f"{zplan.artifact.path} changed since it was built", "run the deploy again")
    code = zippkg.upload(fn, zplan, create_bucket=bool(p.get("CreateBucket")))
    if "ZipFile" in code:
        ctx["zip_file"] = code["ZipFile"]


def _h_publish(step: Step, p: dict[str, Any], ctx: dict[str, Any], plan: Plan) -> None:
    from lambdaship.aws import lambda_
    from lambdaship.aws.lambda_ import ConcurrentDeployError

    name, want = plan.function_name, p["CodeSha256"]
    latest = lambda_.get_function(name)
    if latest is None:
        raise ConcurrentDeployError(name, "the function was deleted")
    cfg = latest["Configuration"]
    if cfg.get("CodeSha256") != want:
        raise ConcurrentDeployError(name, f"$LATEST now has CodeSha256 {cfg.get('CodeSha256')}, not {want}")
    params = {"FunctionName": name, "Description": p["Description"], "CodeSha256": want,
              "RevisionId": cfg.get("RevisionId")}
    resp = lambda_.publish_version(**{k: v for k, v in params.items() if v is not None})
    if resp.get("CodeSha256") != want:
        raise ConcurrentDeployError(name, f"version {resp.get('Version')} has CodeSha256 {resp.get('CodeSha256')}")
    ctx["version"] = resp["Version"]
    ctx["code_sha256"] = want


HANDLERS = {"package:Choose": _h_choose, "zip:Upload": _h_upload, "zip:PublishVersion": _h_publish}
for _action, _handler in HANDLERS.items():
    _execute.HANDLERS.setdefault(_action, _handler)
