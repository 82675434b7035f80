"""Handlers for packages and checks: push and tag the image, choose/upload/publish a zip, smoke test."""

from __future__ import annotations

from typing import Any

from lambdaship.aws.lambda_ import ConcurrentDeployError
from lambdaship.deploy.steps import Step
from lambdaship.errors import LambdashipError

# ECR lifecycle rule installed with a new repository (deployed-* tags are never expired).
KEEP_IMAGES = 50


def push(step: Step, p: dict[str, Any], run: Any) -> Any:
    from lambdaship.aws import ecr
    from lambdaship.registries import push_image

    image, target = run.plan.artifacts.get("image"), run.plan.target
    if image is None or target is None:
        raise LambdashipError("registry:PushImage: the plan carries no image to push")
    where = ecr.ensure_repository(p["Repository"], keep_images=KEEP_IMAGES)
    result = push_image(image, where, on_event=run.vars.get("on_push_event"))
    if result.digest != p["Digest"]:
        raise LambdashipError(f"the registry stored {result.digest}, expected {p['Digest']}")
    return result


def put_tag(step: Step, p: dict[str, Any], run: Any) -> None:
    from lambdaship.aws import ecr

    image = run.plan.artifacts.get("image")  # this deploy's image: its manifest need not be read back
    known = (image.manifest, image.media_type) if image is not None and image.digest == p["Digest"] else None
    ecr.tag_image(p["Repository"], p["Digest"], p["Tag"], known)


def smoke(step: Step, p: dict[str, Any], run: Any) -> dict[str, Any]:
    from lambdaship.deploy import smoke as smoke_test

    return smoke_test.run(p["FunctionName"], p["Qualifier"], event=p.get("event"), path=p.get("path"),
                          method=p.get("method", "GET"))


def choose(step: Step, p: dict[str, Any], run: Any) -> str | None:
    return p.get("PackageType")  # decided while planning; the step records the decision


def zip_upload(step: Step, p: dict[str, Any], run: Any) -> bytes | None:
    """Upload the zip (S3) or read it for ``ZipFile``; refuse a zip that changed since it was built."""
    from lambdaship.package import zipplan as zippkg

    zplan, fn = run.plan.artifacts.get("zip"), run.plan.artifacts.get("fn")
    if zplan is None or zplan.artifact is None or fn is None:
        raise LambdashipError("zip:Upload: the plan carries no zip")
    if zippkg.code_sha256_of(zplan.artifact.path) != zplan.artifact.code_sha256:
        raise LambdashipError(f"{zplan.artifact.path} changed since it was built", "run the deploy again")
    code = zippkg.upload(fn, zplan, create_bucket=bool(p.get("CreateBucket")))
    return code.get("ZipFile")


def zip_publish(step: Step, p: dict[str, Any], run: Any) -> str:
    """Publish only if $LATEST still has the zip's CodeSha256."""
    from lambdaship.aws import lambda_

    name, want = p["FunctionName"], p["CodeSha256"]
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
    return resp["Version"]


HANDLERS = {
    "registry:PushImage": push,
    "registry:PutTag": put_tag,
    "smoke:Invoke": smoke,
    "package:Choose": choose,
    "zip:Upload": zip_upload,
    "zip:PublishVersion": zip_publish,
}
