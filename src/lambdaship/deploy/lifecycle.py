"""Lifecycle of deployed functions: ``list`` (what lambdaship manages), ``delete``, ``diff``.

Read-only calls go through ``lambdaship.aws``; every destructive call is in
:func:`execute_delete`, after the plan was shown (and confirmed). A function is *managed* when it
carries the ``lambdaship:function`` tag naming it (set on every function lambdaship creates).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from lambdaship.errors import LambdashipError
from lambdaship.names import MANAGED_TAG, Names

if TYPE_CHECKING:
    from lambdaship.config import FunctionConfig

_MARKER = re.compile(r"lambdaship (?:image=(?:[a-z0-9][a-z0-9._/-]*@)?|zip=)(sha256:[0-9a-f]{64})")
_REPO_IN_MARKER = re.compile(r"lambdaship image=([a-z0-9][a-z0-9._/-]*)@sha256:")
MASK = "****"


def _lambda() -> Any:
    from lambdaship.aws.session import client

    return client("lambda")


def version_digest(cfg: dict[str, Any], code: dict[str, Any] | None = None) -> str | None:
    """The code a version runs: lambdaship's marker in its description, else the image digest in
    its ImageUri, else Lambda's CodeSha256 (zip functions not deployed by lambdaship)."""
    m = _MARKER.search(cfg.get("Description") or "")
    if m:
        return m.group(1)
    uri = (code or {}).get("ImageUri") or ""
    if "@sha256:" in uri:
        return uri.rsplit("@", 1)[1]
    sha = cfg.get("CodeSha256")
    return f"CodeSha256:{sha}" if sha else None


def _tags(arn: str) -> dict[str, str]:
    return dict(_lambda().list_tags(Resource=arn).get("Tags") or {})


# ---- list ------------------------------------------------------------------------------------
def managed_functions() -> list[dict[str, Any]]:
    """Every function tagged ``lambdaship:function`` in the account/region, with its aliases."""
    from lambdaship.aws import lambda_

    out = []
    for page in _lambda().get_paginator("list_functions").paginate():
        for cfg in page.get("Functions", []):
            name = cfg["FunctionName"]
            if _tags(cfg["FunctionArn"]).get(MANAGED_TAG) != name:
                continue
            aliases = []
            for alias in sorted(lambda_.list_aliases(name), key=lambda a: a["Name"]):
                version = alias["FunctionVersion"]
                got = lambda_.get_function(name, version) or {}
                aliases.append({"alias": alias["Name"], "version": version,
                                "digest": version_digest(got.get("Configuration") or {}, got.get("Code"))})
            out.append({"function": name, "package_type": cfg.get("PackageType"),
                        "architectures": cfg.get("Architectures"), "last_modified": cfg.get("LastModified"),
                        "aliases": aliases})
    return sorted(out, key=lambda f: f["function"])


def render_list(functions: list[dict[str, Any]]) -> list[str]:
    if not functions:
        return ["no functions managed by lambdaship in this account and region"]
    rows = [("FUNCTION", "ALIAS", "VERSION", "DIGEST", "TYPE")]
    for f in functions:
        for a in f["aliases"] or [{"alias": "-", "version": "-", "digest": None}]:
            rows.append((f["function"], a["alias"], a["version"], a["digest"] or "-", f["package_type"] or "-"))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    return ["  ".join([*(c.ljust(w) for c, w in zip(r, widths, strict=False)), r[-1]]).rstrip() for r in rows]


# ---- delete ----------------------------------------------------------------------------------
@dataclass
class DeletePlan:
    function: str
    managed: bool
    aliases: list[str]
    versions: list[str]
    repository: str
    images: list[str] = field(default_factory=list)  # digests to delete (with --images)
    kept_images: list[str] = field(default_factory=list)  # shared with another function: left alone
    delete_repository: bool = False
    deleted: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def describe(self) -> list[str]:
        lines = [f"function {self.function}"]
        if self.aliases:
            lines.append(f"  aliases: {', '.join(self.aliases)}")
        if self.versions:
            lines.append(f"  versions: {', '.join(self.versions)}")
        if self.images:
            lines.append(f"  {len(self.images)} image(s) in ECR repository {self.repository}")
        for digest in self.kept_images:
            lines.append(f"  kept: {digest} (another function's deployed image)")
        if self.delete_repository:
            lines.append(f"  ECR repository {self.repository} with every image in it")
        return lines


def plan_delete(name: str, repository: str | None = None, *, images: bool = False, repo: bool = False,
                force: bool = False) -> DeletePlan:
    """What deleting ``name`` removes; refuses (before anything is deleted) on what it must not."""
    from lambdaship.aws import lambda_

    info = lambda_.get_function(name)
    if info is None:
        raise LambdashipError(f"function {name} does not exist", "check the name, --region and --profile")
    names = Names(name, repository)
    managed = (info.get("Tags") or {}).get(MANAGED_TAG) == name
    if not managed and not force:
        raise LambdashipError(
            f"function {name} is not managed by lambdaship (no {MANAGED_TAG}={name} tag)",
            "pass --force to delete it anyway",
        )
    versions = [v["Version"] for v in lambda_.list_versions(name)]
    plan = DeletePlan(function=name, managed=managed, aliases=sorted(a["Name"] for a in lambda_.list_aliases(name)),
                      versions=versions, repository=names.repository)
    if repo:
        if not names.owns_repository and not force:
            raise LambdashipError(
                f"ECR repository {names.repository} is shared (configured 'repository'); not deleting it",
                "delete it yourself, or pass --force",
            )
        plan.delete_repository = True
    if images or repo:
        _plan_images(plan, info, names)
    return plan


def _plan_images(plan: DeletePlan, info: dict[str, Any], names: Names) -> None:
    from lambdaship.aws import ecr, lambda_

    ours = {version_digest(info["Configuration"], info.get("Code"))}
    for v in plan.versions:
        got = lambda_.get_function(plan.function, v) or {}
        ours.add(version_digest(got.get("Configuration") or {}, got.get("Code")))
    details = ecr.describe_images(names.repository) or []
    own_tag = re.compile(rf"^deployed-({re.escape(plan.function)}-)?\d+$" if not names.owns_repository
                         else r"^deployed-\d+$")
    for d in details:
        digest = d.get("imageDigest")
        if digest not in ours:
            continue
        foreign = [t for t in d.get("imageTags") or [] if t.startswith("deployed-") and not own_tag.match(t)]
        if foreign and not names.owns_repository:
            plan.kept_images.append(digest)
        else:
            plan.images.append(digest)


def execute_delete(plan: DeletePlan) -> DeletePlan:
    """The destructive calls, in an order that leaves nothing serving a deleted image."""
    from lambdaship.aws.session import client

    _lambda().delete_function(FunctionName=plan.function)  # with every version and alias
    plan.deleted.append(f"function {plan.function}")
    ecr = client("ecr")
    if plan.delete_repository:
        ecr.delete_repository(repositoryName=plan.repository, force=True)
        plan.deleted.append(f"repository {plan.repository}")
    elif plan.images:
        for i in range(0, len(plan.images), 100):
            chunk = plan.images[i:i + 100]
            ecr.batch_delete_image(repositoryName=plan.repository, imageIds=[{"imageDigest": d} for d in chunk])
        plan.deleted.extend(f"image {d}" for d in plan.images)
    return plan


# ---- diff ------------------------------------------------------------------------------------
_CONFIG_KEYS = ("MemorySize", "Timeout", "EphemeralStorage", "Description", "Role", "Architectures")


def _deployed_view(cfg: dict[str, Any]) -> dict[str, Any]:
    description = _MARKER.sub("", cfg.get("Description") or "").strip()
    return {
        "MemorySize": cfg.get("MemorySize"), "Timeout": cfg.get("Timeout"),
        "EphemeralStorage": (cfg.get("EphemeralStorage") or {}).get("Size", 512),
        "Description": description, "Role": cfg.get("Role"),
        "Architectures": list(cfg.get("Architectures") or ["x86_64"]),
    }


def _desired_view(fn: FunctionConfig) -> dict[str, Any]:
    return {
        "MemorySize": fn.memory, "Timeout": fn.timeout, "EphemeralStorage": fn.ephemeral_storage,
        "Description": fn.description, "Role": fn.role, "Architectures": [fn.architecture.value],
    }


def _env_changes(deployed: dict[str, str], desired: dict[str, str]) -> list[dict[str, Any]]:
    out = []
    for name in sorted(set(deployed) | set(desired)):
        if name not in deployed:
            out.append({"name": name, "change": "added", "old": None, "new": MASK})
        elif name not in desired:
            out.append({"name": name, "change": "removed", "old": MASK, "new": None})
        elif deployed[name] != desired[name]:
            out.append({"name": name, "change": "changed", "old": MASK, "new": MASK})
    return out


def diff(fn: FunctionConfig, *, code: bool = True, env_file: str | None = None) -> dict[str, Any]:
    """Deployed (what the alias serves) vs what ``deploy`` would set: configuration, environment
    (names only, values masked) and the code digest (``code``: build it, as deploy would)."""
    from lambdaship.aws import lambda_
    from lambdaship.deploy import env as envmod

    name = fn.function_name
    resolved = envmod.resolve(fn, env_file)
    alias = lambda_.get_alias(name, fn.alias)
    qualifier = alias["FunctionVersion"] if alias else None
    info = lambda_.get_function(name, qualifier)
    out: dict[str, Any] = {"function": name, "alias": fn.alias, "exists": info is not None,
                           "deployed_version": qualifier, "changes": [], "environment": []}
    desired = _desired_view(fn)
    deployed = _deployed_view(info["Configuration"]) if info else dict.fromkeys(desired)
    keys = list(_CONFIG_KEYS)
    if info and info["Configuration"].get("PackageType") == "Zip":  # a zip function: runtime and handler too
        keys += ["Runtime", "Handler"]
        desired.update(Runtime=fn.platform.lambda_runtime, Handler=fn.resolved_handler)
        deployed.update(Runtime=info["Configuration"].get("Runtime"), Handler=info["Configuration"].get("Handler"))
    for key in keys:
        if key == "Role" and desired[key] is None:
            continue  # deploy keeps the role it has (or creates one with --create-role)
        if deployed[key] != desired[key]:
            out["changes"].append({"key": key, "old": deployed[key], "new": desired[key]})
    current_env = ((info or {}).get("Configuration", {}).get("Environment") or {}).get("Variables") or {}
    out["environment"] = _env_changes(current_env, dict(resolved.values))
    if code:
        old = version_digest(info["Configuration"], info.get("Code")) if info else None
        new = _desired_digest(fn)
        out["code"] = {"old": old, "new": new, "changed": old != new}
    out["changed"] = bool(out["changes"] or out["environment"] or (out.get("code") or {}).get("changed"))
    return out


def _desired_digest(fn: FunctionConfig) -> str:
    """The digest a deploy would ship: the deterministic zip or image, built locally (nothing pushed)."""
    from lambdaship.deploy import zipdeploy

    if fn.package_type != "image":
        zplan = zipdeploy.choose(fn)
        if zplan.artifact is not None:
            return f"sha256:{zplan.artifact.sha256}"
    from lambdaship.deploy.pipeline import target_from_build

    return target_from_build(fn).digest


def render_diff(d: dict[str, Any]) -> list[str]:
    head = f"{d['function']} ({d['alias']} → version {d['deployed_version']})" if d["exists"] else (
        f"{d['function']} (not deployed: a deploy creates it)")
    lines = [head]
    for c in d["changes"]:
        lines.append(f"  ~ {c['key']}: {_fmt(c['old'])} → {_fmt(c['new'])}")
    sign = {"added": "+", "removed": "-", "changed": "~"}
    for e in d["environment"]:
        lines.append(f"  {sign[e['change']]} Environment.{e['name']}: {_fmt(e['old'])} → {_fmt(e['new'])}")
    code = d.get("code")
    if code and code["changed"]:
        lines.append(f"  ~ code: {code['old'] or '-'} → {code['new']}")
    if not d["changed"]:
        lines.append("  no changes")
    return lines


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, list):
        return ",".join(map(str, value))
    return repr(value) if isinstance(value, str) and value != MASK else str(value)
