"""From a base image and our layers to the new image, as pure functions: the config (Cmd, WorkingDir,
Env, labels, rootfs, history), the manifest, Docker <-> OCI conversion, and Lambda's limits checked
before any layer is written."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from lambdaship.errors import LambdashipError
from lambdaship.image.model import (
    CONFIG_TYPES,
    DOCKER_LAYER_GZIP,
    DOCKER_MANIFEST,
    LAYER_TYPES,
    MAX_MANIFEST_BYTES,
    MAX_UNCOMPRESSED_BYTES,
    OCI_LAYER_GZIP,
    OCI_MANIFEST,
    Descriptor,
    Image,
    Layer,
    canonical_json,
    sha256_digest,
)

if TYPE_CHECKING:
    from lambdaship.config import FunctionConfig


TASK_ROOT = "var/task"
LABEL_DEPS_HASH = "dev.lambdaship.deps-hash"
LABEL_FUNCTION = "dev.lambdaship.function"
# {"digest", "diff_id", "size", "uncompressed_size"}: written only when the image has one deps layer
LABEL_DEPS_LAYER = "dev.lambdaship.deps-layer"
LABEL_DEPS_LAYERS = "dev.lambdaship.deps-layers"  # {"split": [...], "layers": [{name, packages, digest, ...}]}


def _created(mtime: int) -> str:
    return datetime.fromtimestamp(mtime, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def derive_config(base_config: bytes, fn: FunctionConfig, layers: list[Layer], deps_hash: str,
                  mtime: int, roles: list[str], labels_extra: dict[str, str] | None = None,
                  names: list[str] | None = None) -> bytes:
    """``labels_extra``: more labels; ``names``: per layer, what its history entry says it holds."""
    cfg = json.loads(base_config)
    created = _created(mtime)
    c = dict(cfg.get("config") or {})
    c["Cmd"] = [fn.resolved_handler]
    c["WorkingDir"] = f"/{TASK_ROOT}"
    labels = dict(c.get("Labels") or {})
    labels[LABEL_DEPS_HASH] = deps_hash
    labels[LABEL_FUNCTION] = fn.function_name
    labels.pop(LABEL_DEPS_LAYER, None)
    labels.pop(LABEL_DEPS_LAYERS, None)
    deps = [lay for lay, role in zip(layers, roles, strict=True) if role == "deps"]
    if len(deps) == 1:  # what earlier versions read: written only when it describes every deps layer
        labels[LABEL_DEPS_LAYER] = json.dumps(
            {"digest": deps[0].digest, "diff_id": deps[0].diff_id, "size": deps[0].size,
             "uncompressed_size": deps[0].uncompressed_size},
            sort_keys=True, separators=(",", ":"),
        )
    labels.update(labels_extra or {})
    c["Labels"] = labels
    env = list(c.get("Env") or [])
    if not any(e.startswith("LAMBDA_TASK_ROOT=") for e in env):
        env.append(f"LAMBDA_TASK_ROOT=/{TASK_ROOT}")
    c["Env"] = env
    cfg["config"] = c
    cfg["architecture"] = fn.platform.architecture.oci
    cfg["os"] = "linux"
    cfg["created"] = created
    rootfs = dict(cfg.get("rootfs") or {"type": "layers"})
    rootfs["type"] = "layers"
    rootfs["diff_ids"] = [*rootfs.get("diff_ids", []), *(lay.diff_id for lay in layers)]
    cfg["rootfs"] = rootfs
    history = list(cfg.get("history") or [])
    for i, (lay, role) in enumerate(zip(layers, roles, strict=True)):
        what = f"dependencies {deps_hash[:12]}" if role == "deps" else f"app {fn.function_name}"
        if names is not None and role == "deps":
            what += f" {names[i]}"
        history.append({"created": created, "created_by": f"lambdaship build: {what} -> /{TASK_ROOT}",
                        "comment": lay.diff_id})
    history.append({"created": created, "created_by": f"lambdaship build: CMD [{fn.resolved_handler!r}]",
                    "empty_layer": True})
    cfg["history"] = history
    for stale in ("container", "container_config", "docker_version"):
        cfg.pop(stale, None)
    return canonical_json(cfg)


_LAYER_CONVERT = {
    OCI_MANIFEST: {DOCKER_LAYER_GZIP: OCI_LAYER_GZIP},
    DOCKER_MANIFEST: {OCI_LAYER_GZIP: DOCKER_LAYER_GZIP},
}


def convert(image: Image, media_type: str) -> Image:
    """The same image (same config and layer blobs) under a manifest of ``media_type``.

    Docker v2s2 ↔ OCI: only media types change, so diff_ids, layer digests and the config
    digest stay; the manifest digest changes.
    """
    if image.media_type == media_type:
        return image
    mapping = _LAYER_CONVERT[media_type]
    layers = []
    for lay in image.layers:
        mt = lay.descriptor.media_type
        if mt not in mapping and mt != LAYER_TYPES[media_type]:
            raise LambdashipError(f"layer {lay.digest} ({mt}) cannot be expressed in a {media_type} manifest")
        layers.append(replace(lay, descriptor=replace(lay.descriptor, media_type=mapping.get(mt, mt))))
    manifest = make_manifest(media_type, image.config, layers)
    return Image(manifest=manifest, config=image.config, layers=tuple(layers), annotations=dict(image.annotations))


def make_manifest(media_type: str, config: bytes, layers: list[Layer]) -> bytes:
    return canonical_json({
        "schemaVersion": 2,
        "mediaType": media_type,
        "config": {"mediaType": CONFIG_TYPES[media_type], "digest": sha256_digest(config), "size": len(config)},
        "layers": [lay.descriptor.to_json() for lay in layers],
    })


def check_limits(base: Image, extra_uncompressed: int, extra_layers: int, config_size: int, ref: str) -> None:
    """Lambda's limits, checked before any layer is written: manifest size and 10 GB total.

    Base layers' uncompressed sizes are unknown without downloading them: their compressed
    sizes (as the manifest declares them) are a lower bound.
    """
    base_bytes = sum(lay.uncompressed_size or lay.size for lay in base.layers)
    total = base_bytes + extra_uncompressed
    if total > MAX_UNCOMPRESSED_BYTES:
        raise LambdashipError(
            f"the image would be at least {total / 1024**3:.1f} GiB uncompressed (base {ref}: "
            f"{base_bytes / 1024**3:.1f} GiB, dependencies and app: {extra_uncompressed / 1024**3:.2f} GiB), "
            "over Lambda's 10 GiB limit",
            "use a smaller base image or fewer/lighter dependencies (see 'lambdaship size')",
        )
    fake = Layer(Descriptor(LAYER_TYPES.get(base.media_type, ""), "sha256:" + "0" * 64, 10**12), "")
    fake_cfg = b"x" * config_size
    estimate = len(make_manifest(base.media_type, fake_cfg, [*base.layers, *([fake] * extra_layers)]))
    if estimate > MAX_MANIFEST_BYTES:
        raise LambdashipError(
            f"the image manifest would be {estimate} bytes, over Lambda's {MAX_MANIFEST_BYTES}-byte limit "
            f"({len(base.layers) + extra_layers} layers)",
            "use a base image with fewer layers",
        )


def tar_estimate(content: int, entries: int) -> int:
    # content rounded to blocks + one header per entry (+ a PAX header now and then) + the end
    return content + entries * 1024 + 1024
