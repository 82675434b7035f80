"""What ``build_image`` returns: the image, where its copies went, its dependency layers and timings."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lambdaship.image.cache import DepsLayer
from lambdaship.image.model import Image, Layer


@dataclass(frozen=True)
class BuildResult:
    image: Image
    layout: Path | None
    deps_hash: str
    tar: Path | None = None
    deps_layer: Layer | None = None  # the last dependency layer (the shared one when there is one)
    app_layer: Layer | None = None
    base_ref: str = ""
    timings: dict[str, float] = field(default_factory=dict)
    deps_cached: bool = False
    deps_layer_cached: bool = False  # every dependency layer came from the cache (or a previous image)
    bytecode: bool = False
    layout_digest: str | None = None  # the OCI-format manifest written to ``layout``
    deps_reused: bool = False  # the deps layers came from a previously pushed image
    deps_layers: tuple[DepsLayer, ...] = ()  # in image order: split layers by name, then the shared one
    split: tuple[int, int] = (0, 0)  # (threshold bytes, most split layers) the dependency layers were made with
    deps_layers_reused: int = 0  # a bump: layers of large distributions taken from the previous image

    def to_json(self) -> dict[str, Any]:
        img = self.image
        cfg = img.config_descriptor
        return {
            "manifest_digest": img.digest,
            "media_type": img.media_type,
            "manifest_size": len(img.manifest),
            "config_digest": cfg.digest,
            "base": self.base_ref,
            "deps_hash": self.deps_hash,
            "layers": [self._layer_json(layer) for layer in img.layers],
            "layout": str(self.layout) if self.layout else None,
            "layout_digest": self.layout_digest,
            "tar": str(self.tar) if self.tar else None,
            "deps_cached": self.deps_cached,
            "deps_layer_cached": self.deps_layer_cached,
            "deps_reused": self.deps_reused,
            "deps_split": {"threshold_bytes": self.split[0], "max_layers": self.split[1]},
            "deps_layers_reused": self.deps_layers_reused,
            "bytecode": self.bytecode,
            "timings": {k: round(v, 3) for k, v in self.timings.items()},
        }

    def _layer_json(self, layer: Layer) -> dict[str, Any]:
        out: dict[str, Any] = {
            "digest": layer.digest,
            "diff_id": layer.diff_id,
            "size": layer.size,
            "uncompressed_size": layer.uncompressed_size,
            "media_type": layer.descriptor.media_type,
            "role": self._role(layer),
        }
        deps = next((d for d in self.deps_layers if d.layer.digest == layer.digest), None)
        if deps is not None:  # which distributions it holds, and whether it was written by this build
            out.update(name=deps.name, packages=list(deps.packages), cached=deps.cached)
        else:
            out["name"] = out["role"]
        return out

    def _role(self, layer: Layer) -> str:
        if any(d.layer.digest == layer.digest for d in self.deps_layers):
            return "deps"
        if self.app_layer is not None and layer.digest == self.app_layer.digest:
            return "app"
        return "base"
