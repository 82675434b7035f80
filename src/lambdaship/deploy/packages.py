"""The two package strategies of the one planner: an image by digest, or a zip.

A strategy answers what differs between the two (the ``Code`` of CreateFunction, whether the
code changed, the upload before it, how a version is published and recognised); everything
else — role, configuration, tags, smoke test, alias — is :func:`lambdaship.deploy.plan.plan`'s.
Both are frozen values; nothing here reads AWS.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lambdaship.config import FunctionConfig
from lambdaship.deploy.markers import digest_of_uri, version_marker, zip_marker
from lambdaship.deploy.state import FunctionState
from lambdaship.deploy.steps import Later, Step, Target
from lambdaship.errors import LambdashipError
from lambdaship.names import Names


@dataclass(frozen=True)
class ImagePackage:
    target: Target
    choice: Step | None = None  # package:Choose, when package_type "auto" decided for an image

    package_type = "Image"

    @property
    def digest(self) -> str:
        return self.target.digest

    def first_steps(self) -> list[Step]:
        return [self.choice] if self.choice else []

    def check_type(self, name: str, cfg: dict[str, Any]) -> None:
        if cfg.get("PackageType") != "Image":
            raise LambdashipError(
                f"{name} is a {cfg.get('PackageType')} function; Lambda cannot change a function's package type",
                "use `lambdaship migrate` to move it to an image function",
            )

    def upload_steps(self, state: FunctionState) -> list[Step]:
        t = self.target
        if t.image is None or state.image_pushed:
            return []
        return [Step("registry:PushImage", {"Repository": t.repository, "Digest": t.digest, "Registry": t.registry},
                     "creates the ECR repository if missing; uploads only missing blobs", output="push")]

    def create_params(self, fn: FunctionConfig) -> dict[str, Any]:
        return {"PackageType": "Image", "Code": {"ImageUri": self.target.image_uri}}

    def code_changed(self, state: FunctionState) -> bool:
        return state.function is not None and state.function.get("Code", {}).get("ImageUri") != self.target.image_uri

    def update_code_params(self) -> dict[str, Any]:
        return {"ImageUri": self.target.image_uri}

    def config_params(self, fn: FunctionConfig, cfg: dict[str, Any]) -> dict[str, Any]:
        return {}

    def current_digest(self, state: FunctionState) -> str | None:
        return digest_of_uri((state.function or {}).get("Code", {}).get("ImageUri"))

    def alias_digest(self, state: FunctionState) -> str | None:
        return state.alias_ref.digest if state.alias_ref else None

    def publish_steps(self, fn: FunctionConfig, names: Names) -> list[Step]:
        t, name = self.target, names.function
        publish = {"FunctionName": name, "Description": version_marker(t.repository, t.digest, fn.description),
                   "RevisionId": Later("{revision}"), "CodeSha256": Later("{code_sha256}")}
        # In the function's own repository "deployed-<version>"; in a repository shared by several
        # functions the name is part of the tag, else each function's version 1 moved the others' tag.
        tag = Names(names.function, t.repository).deployed_tag("{version}")
        return [
            Step("lambda:PublishVersion", publish, "only if $LATEST still runs this image (else: concurrent deploy)",
                 output="version"),
            # Lambda may hand back another deploy's identical version while $LATEST runs this image:
            # this deploy is then the latest writer; it re-applies its image and publishes again.
            Step("lambda:UpdateFunctionCode", {"FunctionName": name, "ImageUri": t.image_uri},
                 "re-apply this image: Lambda answered with another deploy's version", output="revision",
                 unless="version"),
            Step("lambda:Wait", {"FunctionName": name, "Waiter": "function_updated_v2"}, output="revision",
                 unless="version"),
            Step("lambda:PublishVersion", publish, "second and last attempt", output="version", unless="version"),
            Step("registry:PutTag", {"Repository": t.repository, "Digest": t.digest, "Tag": Later(tag)},
                 "protects the image from the lifecycle rule"),
        ]


@dataclass(frozen=True)
class ZipPackage:
    """``zplan``: a :class:`lambdaship.package.zipplan.ZipPlan` with a built artifact and a zip decision."""

    zplan: Any
    s3_key: str | None = None
    create_bucket: bool = False

    package_type = "Zip"
    @property
    def artifact(self) -> Any:
        return self.zplan.artifact

    @property
    def digest(self) -> str:
        return f"sha256:{self.artifact.sha256}"

    @property
    def target(self) -> Target:
        return Target(image_uri=None, digest=self.digest, repository="")  # type: ignore[arg-type]

    def first_steps(self) -> list[Step]:
        return [choice_step(self.zplan)]

    def check_type(self, name: str, cfg: dict[str, Any]) -> None:
        if cfg.get("PackageType") != "Zip":
            raise LambdashipError(
                f"{name} is an {cfg.get('PackageType')} function; Lambda cannot change a function's package type",
                'set package_type = "image" (or "auto"), or deploy the zip under a new function_name',
            )

    def _code(self) -> dict[str, Any]:
        if self.zplan.decision.upload == "s3":
            return {"S3Bucket": self.zplan.bucket, "S3Key": self.s3_key}
        return {"ZipFile": Later("{zip_file}")}

    def upload_steps(self, state: FunctionState) -> list[Step]:
        art = self.artifact
        if self.zplan.decision.upload == "s3":
            return [Step("zip:Upload", {"Upload": "s3", "Bucket": self.zplan.bucket, "Key": self.s3_key,
                                        "Size": art.size, "CreateBucket": self.create_bucket},
                         "skipped when the object is already there", output="zip_file")]
        return [Step("zip:Upload", {"Upload": "direct", "Path": str(art.path), "Size": art.size},
                     "sent inline as ZipFile", output="zip_file")]

    def create_params(self, fn: FunctionConfig) -> dict[str, Any]:
        return {"PackageType": "Zip", "Code": self._code(), **runtime_params(fn)}

    def code_changed(self, state: FunctionState) -> bool:
        return state.configuration.get("CodeSha256") != self.artifact.code_sha256

    def update_code_params(self) -> dict[str, Any]:
        return self._code()

    def config_params(self, fn: FunctionConfig, cfg: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in runtime_params(fn).items() if cfg.get(k) != v}

    def current_digest(self, state: FunctionState) -> str | None:
        return None

    def alias_digest(self, state: FunctionState) -> str | None:
        return state.alias_ref.zip_digest if state.alias_ref else None

    def publish_steps(self, fn: FunctionConfig, names: Names) -> list[Step]:
        return [Step("zip:PublishVersion", {
            "FunctionName": names.function, "Description": zip_marker(self.artifact.sha256, fn.description),
            "CodeSha256": self.artifact.code_sha256,
        }, "only if $LATEST still has this CodeSha256 (else: concurrent deploy)", output="version")]


def runtime_params(fn: FunctionConfig) -> dict[str, Any]:
    """Create/update-configuration parameters only zip functions have."""
    return {"Runtime": fn.platform.lambda_runtime, "Handler": fn.resolved_handler}


def choice_step(zplan: Any) -> Step:
    """The plan's first step for package_type zip/auto: which package type, and why (one line)."""
    d = zplan.decision
    params: dict[str, Any] = {"PackageType": "Zip" if d.package_type == "zip" else "Image"}
    if zplan.artifact is not None:
        params.update({"Upload": d.upload, "ZipSize": zplan.artifact.size,
                       "UnzippedSize": zplan.artifact.unzipped_size, "Sha256": zplan.artifact.sha256})
    return Step("package:Choose", params, d.reason, output="package_type")


Package = ImagePackage | ZipPackage
