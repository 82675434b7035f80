"""Pure values for planner tests: configurations, packages and observed states, no server."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lambdaship.config import FunctionConfig
from lambdaship.deploy.env import Resolved
from lambdaship.deploy.markers import history_description, version_marker
from lambdaship.deploy.packages import ImagePackage, ZipPackage
from lambdaship.deploy.state import FunctionState, VersionRef
from lambdaship.deploy.steps import Plan, Target

ROLE = "arn:aws:iam::123456789012:role/app-role"
REGISTRY = "123456789012.dkr.ecr.us-east-1.amazonaws.com"
D1, D2 = "sha256:" + "1" * 64, "sha256:" + "2" * 64


def fn(name: str = "app", **kw: Any) -> FunctionConfig:
    data: dict[str, Any] = {"key": kw.pop("key", name), "function_name": name, "source": Path("/nonexistent/app"),
                            "handler": "app.handler", "role": ROLE, "smoke": {"event": {"ping": True}}}
    data.update(kw)
    return FunctionConfig.model_validate(data)


def env(**values: str) -> Resolved:
    return Resolved(values=dict(values), sources=dict.fromkeys(values, "config"))


def image(digest: str = D1, repository: str = "app", *, pushed: bool = True) -> ImagePackage:
    target = Target(f"{REGISTRY}/{repository}@{digest}", digest, repository, image=None if pushed else object())
    return ImagePackage(target)


def zip_package(sha: str = "ab" * 32, *, upload: str = "direct", bucket: str | None = None) -> ZipPackage:
    from lambdaship.package.archive import ZipArtifact
    from lambdaship.package.zipplan import Decision, ZipPlan

    art = ZipArtifact(path=Path("/nonexistent/app.zip"), sha256=sha, size=1000, unzipped_size=4000)
    zplan = ZipPlan(Decision("zip", upload, "fits a direct zip upload"), art, bucket)
    return ZipPackage(zplan, s3_key=f"lambdaship/app/{sha}.zip" if upload == "s3" else None)


def deployed(f: FunctionConfig, digest: str = D1, *, version: str = "3", variables: dict[str, str] | None = None,
             history: tuple[str, ...] = ("2", "1"), tags: dict[str, str] | None = None,
             package_type: str = "Image", **cfg: Any) -> FunctionState:
    """The state after a deploy of ``digest`` as version ``version``, alias on it."""
    name = f.function_name
    configuration = {
        "FunctionName": name, "FunctionArn": f"arn:aws:lambda:us-east-1:123456789012:function:{name}",
        "PackageType": package_type, "Role": f.role, "MemorySize": f.memory, "Timeout": f.timeout,
        "EphemeralStorage": {"Size": f.ephemeral_storage}, "Description": f.description,
        "Environment": {"Variables": dict(variables or {})}, "Architectures": [f.architecture],
        "RevisionId": "rev-1", **cfg,
    }
    code = {"ImageUri": f"{REGISTRY}/{name}@{digest}"} if package_type == "Image" else {}
    alias = {"FunctionVersion": version, "Description": history_description(list(history)), "RevisionId": "a-rev"}
    ref = VersionRef(version, name, digest) if package_type == "Image" else VersionRef(version, None, digest, digest)
    return FunctionState(name=name, function={"Configuration": configuration, "Code": code,
                                              "Tags": {"lambdaship:function": name} if tags is None else tags},
                         alias=alias, alias_ref=ref)


def marker(name: str, digest: str) -> str:
    return version_marker(name, digest)


def actions(p: Plan) -> list[str]:
    return [s.action for s in p.steps]


def step(p: Plan, action: str, n: int = 0) -> Any:
    return [s for s in p.steps if s.action == action][n]
