"""What is deployed: function state, last update, alias → version → digest, versions, ECR images.

Read-only. ``function_status`` is also what a fleet view (``status --all``) builds on.
"""

from __future__ import annotations

from typing import Any

from lambdaship.config import FunctionConfig
from lambdaship.deploy.markers import digest_of_uri, parse_history, repository_of_uri
from lambdaship.deploy.state import version_image
from lambdaship.names import MODEL_TAG_PREFIX, Names

RECENT_VERSIONS = 10


def function_status(fn: FunctionConfig, *, versions: int = RECENT_VERSIONS, images: bool = True) -> dict[str, Any]:
    from lambdaship.aws import lambda_

    name = fn.function_name
    info = lambda_.get_function(name)
    out: dict[str, Any] = {"function": name, "alias": fn.alias, "exists": info is not None}
    if info is None:
        return out
    cfg = info["Configuration"]
    uri = info.get("Code", {}).get("ImageUri")
    out.update({
        "state": cfg.get("State"),
        "state_reason": cfg.get("StateReason"),
        "last_update_status": cfg.get("LastUpdateStatus"),
        "last_update_reason": cfg.get("LastUpdateStatusReason"),
        "package_type": cfg.get("PackageType"),
        "latest_image_uri": uri,
        "latest_digest": digest_of_uri(uri),
        "memory": cfg.get("MemorySize"),
        "timeout": cfg.get("Timeout"),
        "architectures": cfg.get("Architectures"),
        "last_modified": cfg.get("LastModified"),
    })
    published = lambda_.list_versions(name)
    by_version = {v["Version"]: v for v in published}
    alias = lambda_.get_alias(name, fn.alias)
    deployed = None
    if alias is not None:
        av = alias["FunctionVersion"]
        repo, digest = version_image(name, av, by_version.get(av)) if av != "$LATEST" else (None, out["latest_digest"])
        deployed = {"version": av, "digest": digest, "repository": repo,
                    "previous": parse_history(alias.get("Description")),
                    "deployed_at": (by_version.get(av) or {}).get("LastModified")}
    out["alias_target"] = deployed
    out["deployed_digest"] = deployed["digest"] if deployed else None
    # The image the alias serves, as Lambda names it (`lambdaship run` accepts it as is).
    host = uri.split("/", 1)[0] if uri and "/" in uri else None
    out["deployed_image"] = (
        f"{host}/{deployed['repository']}@{deployed['digest']}"
        if host and deployed and deployed["repository"] and deployed["digest"] else None
    )
    out["versions"] = []
    for v in reversed(published[-versions:] if versions else published):
        repo, digest = version_image(name, v["Version"], v)
        out["versions"].append({"version": v["Version"], "digest": digest, "repository": repo,
                                "last_modified": v.get("LastModified"),
                                "live": bool(deployed and deployed["version"] == v["Version"])})
    out["images"] = None
    if cfg.get("PackageType") == "Zip":
        out["latest_code_sha256"] = cfg.get("CodeSha256")
    elif images:
        _images(out, fn, deployed, uri)
        out["deps_layers"] = _deps_layers(out["deployed_image"], fn.architecture)
    return out


def _deps_layers(image: str | None, architecture: str) -> list[dict[str, Any]] | None:
    """The dependency layers of the image the alias serves (its ``dev.lambdaship.deps-layers``
    label): name, packages, compressed size; None when unknown (no image, an older image)."""
    from lambdaship.image.reuse import previous_layers

    found = previous_layers(image, architecture) if image else None
    if found is None:
        return None
    return [{"name": d.name, "packages": list(d.packages), "size": d.layer.size, "digest": d.layer.digest}
            for d in found.layers]


def render(status: dict[str, Any]) -> list[str]:
    if not status["exists"]:
        return [f"{status['function']}: not deployed"]
    lines = [f"{status['function']}"]
    last = status.get("last_update_status") or "-"
    if status.get("last_update_reason"):
        last += f" ({status['last_update_reason']})"
    lines.append(f"  state          {status.get('state') or '-'}   last update: {last}")
    if status.get("state_reason") and status.get("state") != "Active":
        lines.append(f"  state reason   {status['state_reason']}")
    t = status.get("alias_target")
    if t:
        lines.append(f"  alias          {status['alias']} → version {t['version']}  {t['digest'] or '?'}")
    else:
        lines.append(f"  alias          {status['alias']}: none")
    if status.get("package_type") == "Zip":
        lines.append(f"  $LATEST        zip, CodeSha256 {status.get('latest_code_sha256') or '-'}")
    else:
        lines.append(f"  $LATEST        {status.get('latest_digest') or status.get('latest_image_uri') or '-'}")
    if status["versions"]:
        lines.append("  versions:")
        for v in status["versions"]:
            mark = "*" if v["live"] else " "
            lines.append(f"   {mark}{v['version']:>4}  {v['digest'] or '?'}  {v['last_modified'] or ''}")
    for d in status.get("deps_layers") or []:
        what = ", ".join(d["packages"]) if len(d["packages"]) <= 3 else f"{len(d['packages'])} packages"
        lines.append(f"  deps layer     {d['name']}: {what}, {d['size'] / 1e6:.1f} MB  {d['digest'][:19]}")
    if status.get("images") is not None:
        lines.append(f"  images in {status.get('repository')}:")
        for img in status["images"][:RECENT_VERSIONS]:
            tags = ",".join(img["tags"]) or "<untagged>"
            lines.append(f"    {img['digest']}  {tags}  scan: {img['scan_status'] or '-'}")
    return lines


def _model_only(tags: list[str]) -> bool:
    """An app model stored next to the images (lambdaship.api.modelstore), not an image."""
    return bool(tags) and all(t.startswith(MODEL_TAG_PREFIX) for t in tags)


def _images(out: dict[str, Any], fn: FunctionConfig, deployed: dict[str, Any] | None, uri: str | None) -> None:
    """The ECR images of the repository the alias's image lives in (scan status included)."""
    from lambdaship.aws import ecr

    repository = (deployed or {}).get("repository") or (
        repository_of_uri(uri) if uri and "/" in uri else Names(fn.function_name, fn.repository).repository)
    details = ecr.describe_images(repository)
    out["repository"] = repository
    if details is not None:
        out["images"] = [{
            "digest": d.get("imageDigest"),
            "tags": sorted(d.get("imageTags") or []),
            "pushed_at": d.get("imagePushedAt"),
            "size": d.get("imageSizeInBytes"),
            "scan_status": (d.get("imageScanStatus") or {}).get("status"),
            "findings": (d.get("imageScanFindingsSummary") or {}).get("findingSeverityCounts"),
        } for d in details if not _model_only(d.get("imageTags") or [])]
