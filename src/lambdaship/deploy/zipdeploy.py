"""Deploying a zip package: build the zip and decide the package type (``package:Choose``).

The rest of a zip deploy is the one planner's :class:`~lambdaship.deploy.packages.ZipPackage`
strategy: upload (``zip:Upload``: inline ``ZipFile`` up to 50 MiB, else a content-addressed S3
object) → create/update the function (``PackageType Zip``, ``Runtime python3.X``, ``Handler``)
→ wait → publish a version only if ``$LATEST`` still has our ``CodeSha256``
(``zip:PublishVersion``) → smoke test → move the alias. A version's description carries
``lambdaship zip=sha256:<hex>``, so an unchanged zip is recognised and nothing is redeployed.
"""

from __future__ import annotations

from collections.abc import Callable

from lambdaship.config import FunctionConfig
from lambdaship.deploy.packages import ZipPackage
from lambdaship.package import zipplan as zippkg


def choose(fn: FunctionConfig, *, bucket: str | None = None,
           progress: Callable[..., None] | None = None) -> zippkg.ZipPlan:
    """Build the zip (for zip/auto) and decide, knowing the deployed package type (one GetFunction).
    ``progress``: the dependency install's stages (``package.deps.install``)."""
    from lambdaship.aws import lambda_

    current = lambda_.get_function(fn.function_name) if fn.package_type != "image" else None
    existing = current["Configuration"].get("PackageType") if current else None
    return zippkg.plan(fn, bucket=bucket, existing=existing, progress=progress)


def package(fn: FunctionConfig, zplan: zippkg.ZipPlan, *, create_bucket: bool = False) -> ZipPackage:
    """The zip strategy for a zip decision (``zplan.artifact`` built)."""
    if zplan.artifact is None or zplan.decision.package_type != "zip":
        raise ValueError("a zip package needs a zip decision")
    key = zippkg.s3_key(fn, zplan.artifact) if zplan.decision.upload == "s3" else None
    return ZipPackage(zplan, s3_key=key, create_bucket=create_bucket)
