"""A zip function's package side: Lambda's size limits, zip or image (the decision), the zip plan, and
what a deploy sends: the ``Code`` location (direct or S3), the zip-only parameters, the CodeSha256 check."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from lambdaship.errors import LambdashipError
from lambdaship.package.archive import READ_SIZE, ZipArtifact, build_zip, tree_files

if TYPE_CHECKING:
    from lambdaship.config import FunctionConfig

# Lambda quotas (https://docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html):
# "50 MB (zipped, when uploaded directly)": the API limit is a 69,905,067-byte request, i.e. the
# base64 of 50 MiB; "250 MB unzipped (including layers)": the API error says
# "Unzipped size must be smaller than 262144000 bytes" (250 MiB); images: 10 GB uncompressed.
ZIP_DIRECT_LIMIT = 50 * 1024 * 1024
ZIP_UNZIPPED_LIMIT = 250 * 1024 * 1024
IMAGE_LIMIT = 10 * 1024**3


def mib(n: int) -> str:
    """Binary units, as Lambda's limits are (50 MiB = 52,428,800 bytes)."""
    for unit, scale in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{int(n)} B"


@dataclass(frozen=True)
class Decision:
    """``package_type``: "zip" or "image"; ``upload``: "direct" or "s3" for zip; ``reason``: one line."""

    package_type: str
    upload: str
    reason: str

    def to_json(self) -> dict:
        return {"package_type": self.package_type, "upload": self.upload, "reason": self.reason}


def decide(zip_size: int | None, unzipped_size: int, bucket: str | None, requested: str = "auto",
           existing: str | None = None) -> Decision:
    """Pick zip (direct or through S3) or image from measured sizes; explain it in one line.

    ``requested``: the config's package_type; ``existing``: the deployed function's PackageType
    ("Zip"/"Image"), which Lambda cannot change in place. ``requested="zip"`` that cannot work
    raises LambdashipError (before anything is changed remotely).
    """
    if requested == "image":
        return Decision("image", "", "package_type = \"image\" in the config")
    if existing == "Image":
        if requested == "zip":
            raise LambdashipError(
                "the function already exists as a container image; Lambda cannot change a function's package type",
                "set package_type = \"image\" (or \"auto\"), or deploy the zip under a new function_name",
            )
        return Decision("image", "", "the function already exists as a container image (package type is fixed)")
    sizes = f"{mib(zip_size)} zipped, {mib(unzipped_size)} unzipped" if zip_size is not None else (
        f"{mib(unzipped_size)} unzipped")
    if unzipped_size > ZIP_UNZIPPED_LIMIT:
        if requested == "zip" or existing == "Zip":
            raise LambdashipError(
                f"the zip package is {mib(unzipped_size)} unzipped, over Lambda's 250 MiB zip limit",
                "use package_type = \"image\" (a new function: the package type of an existing one is fixed)"
                if existing == "Zip" else "use package_type = \"image\" or \"auto\"",
            )
        return Decision("image", "", f"{mib(unzipped_size)} unzipped is over the 250 MiB zip limit")
    if zip_size is None:
        raise ValueError("decide() needs the zipped size when the unzipped size fits")
    if zip_size <= ZIP_DIRECT_LIMIT:
        return Decision("zip", "direct", f"{sizes}: fits a direct zip upload (50 MiB zipped, 250 MiB unzipped)")
    if bucket:
        return Decision("zip", "s3", f"{sizes}: over the 50 MiB direct upload, so through s3://{bucket} "
                                      "(fits 250 MiB unzipped)")
    if requested == "zip" or existing == "Zip":
        raise LambdashipError(
            f"the zip package is {mib(zip_size)} zipped, over the 50 MiB direct-upload limit, and no S3 bucket is set",
            "set zip_bucket in the config or pass --zip-bucket (add --create-bucket to create it)",
        )
    return Decision("image", "", f"{sizes}: over the 50 MiB direct zip upload and no zip_bucket is set for S3")


@dataclass(frozen=True)
class ZipPlan:
    """What a zip/auto deploy will do: the decision and, for zip, the built artifact."""

    decision: Decision
    artifact: ZipArtifact | None
    bucket: str | None = None

    def to_json(self) -> dict:
        return {**self.decision.to_json(), "bucket": self.bucket,
                "artifact": self.artifact.to_json() if self.artifact else None}


def plan(fn: FunctionConfig, *, bucket: str | None = None, existing: str | None = None,
         progress: Callable[..., None] | None = None) -> ZipPlan:
    """Build the zip (local work only, no AWS calls) and decide zip vs image for ``fn``.

    ``bucket`` overrides ``fn.zip_bucket``; ``existing`` is the deployed function's PackageType.
    For ``package_type = "image"`` nothing is built. ``progress``: the dependency install's
    stages (``deps.install``'s ``progress``).
    """
    bucket = bucket or fn.zip_bucket
    if fn.package_type == "image":
        return ZipPlan(decide(0, 0, bucket, "image"), None, bucket)
    if existing == "Image" and fn.package_type == "auto":
        return ZipPlan(decide(0, 0, bucket, "auto", existing), None, bucket)
    if fn.package_type == "auto":
        # Over 250 MiB unzipped the answer is "image" whatever the zipped size: skip compressing.
        from lambdaship import project
        from lambdaship.package import deps

        installed = deps.install(fn, target="lambda", progress=progress)
        unzipped = sum(p.stat().st_size for _, p in tree_files(Path(installed.path)))
        unzipped += sum(p.stat().st_size for _, p in project.app_files(fn))
        if unzipped > ZIP_UNZIPPED_LIMIT:
            return ZipPlan(decide(None, unzipped, bucket, "auto", existing), None, bucket)
        if fn.base_image and existing != "Zip":
            return ZipPlan(Decision("image", "", f"base_image is set ({fn.base_image}); a zip function would run on "
                                                  f"the managed python{fn.python} runtime instead"), None, bucket)
    art = build_zip(fn)
    decision = decide(art.size, art.unzipped_size, bucket, fn.package_type, existing)
    return ZipPlan(decision, art if decision.package_type == "zip" else None, bucket)


def s3_key(fn: FunctionConfig, art: ZipArtifact) -> str:
    return f"lambdaship/{fn.function_name}/{art.sha256}.zip"


def check_bucket(zplan: ZipPlan, *, create_bucket: bool = False) -> None:
    """Before any mutation: the S3 bucket of an S3 upload exists (or may be created)."""
    if zplan.decision.upload != "s3" or not zplan.bucket:
        return
    from lambdaship.aws import s3

    if not create_bucket and not s3.bucket_exists(zplan.bucket):
        raise LambdashipError(
            f"S3 bucket {zplan.bucket!r} does not exist (needed for a zip over 50 MiB)",
            "create it, or pass --create-bucket",
        )


def upload(fn: FunctionConfig, zplan: ZipPlan, *, create_bucket: bool = False) -> dict:
    """The ``Code`` location for Lambda: ``{"ZipFile": bytes}`` or ``{"S3Bucket", "S3Key"}``.

    For S3 the object is content-addressed and only uploaded when it is not there yet.
    """
    art = zplan.artifact
    if art is None or zplan.decision.package_type != "zip":
        raise ValueError("upload() needs a zip plan")
    if zplan.decision.upload == "direct":
        return {"ZipFile": art.path.read_bytes()}
    from lambdaship.aws import s3

    assert zplan.bucket
    if create_bucket:
        s3.ensure_bucket(zplan.bucket)
    key = s3_key(fn, art)
    s3.put_file(zplan.bucket, key, art.path, sha256_hex=art.sha256)
    return {"S3Bucket": zplan.bucket, "S3Key": key}


def function_params(fn: FunctionConfig) -> dict:
    """Create/update-configuration parameters that differ between zip and image functions."""
    return {"Runtime": fn.platform.lambda_runtime, "Handler": fn.resolved_handler}


def create_params(fn: FunctionConfig, code: dict) -> dict:
    """``CreateFunction`` parameters specific to a zip function (merge with the common ones)."""
    return {"PackageType": "Zip", "Code": code, "Architectures": [fn.platform.architecture.lambda_name],
            **function_params(fn)}


def check_code_sha256(response: dict, art: ZipArtifact) -> None:
    """Lambda's ``CodeSha256`` must be the artifact's (base64 SHA-256): we deployed these bytes."""
    got = response.get("CodeSha256")
    if got != art.code_sha256:
        raise LambdashipError(
            f"Lambda reports CodeSha256 {got} but the zip built here has {art.code_sha256}",
            "another deploy may have changed the function; check `lambdaship status` and deploy again",
        )


def code_sha256_of(path: Path) -> str:
    """Lambda's ``CodeSha256`` (base64 of the SHA-256) of a file."""
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(READ_SIZE):
            h.update(chunk)
    return base64.b64encode(h.digest()).decode()
