"""An image is an immutable value: manifest bytes, config bytes and layers.

Building produces an ``Image`` (pure: base + layers → new image); pushing is a separate
transport that consumes one. Base layers usually stay remote: a ``Layer`` either has a local
compressed blob file (``path``) or says where it can be fetched (``source``), so building
never downloads the base's layers and pushing can mount or stream them.

On disk an image is an OCI image layout directory (readable by skopeo, umoci, podman).
Layers whose blobs are not in the layout are recorded in ``index.json`` under the
annotation ``dev.lambdaship.remote-blobs`` so the layout can be read back as the same value.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lambdaship.cacheverify import blob_ok
from lambdaship.fsutil import tmp_sibling
from lambdaship.oci.media import (  # the distribution spec's manifest types and digest: one definition
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    OCI_INDEX,
    OCI_MANIFEST,
    sha256_digest,
)

DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_FOREIGN_LAYER = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_TAR = "application/vnd.oci.image.layer.v1.tar"

MANIFEST_TYPES = (DOCKER_MANIFEST, OCI_MANIFEST)
INDEX_TYPES = (DOCKER_MANIFEST_LIST, OCI_INDEX)
LAYER_TYPES = {DOCKER_MANIFEST: DOCKER_LAYER_GZIP, OCI_MANIFEST: OCI_LAYER_GZIP}
CONFIG_TYPES = {DOCKER_MANIFEST: DOCKER_CONFIG, OCI_MANIFEST: OCI_CONFIG}

REMOTE_BLOBS_ANNOTATION = "dev.lambdaship.remote-blobs"
REF_NAME_ANNOTATION = "org.opencontainers.image.ref.name"

# Lambda's limits for container images.
MAX_UNCOMPRESSED_BYTES = 10 * 1024**3
MAX_MANIFEST_BYTES = 25_400


def canonical_json(obj: Any) -> bytes:
    """Deterministic JSON: sorted keys, no whitespace (what we hash and push)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: str
    size: int
    annotations: dict[str, str] | None = None
    platform: dict[str, str] | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"mediaType": self.media_type, "digest": self.digest, "size": self.size}
        if self.annotations:
            out["annotations"] = dict(self.annotations)
        if self.platform:
            out["platform"] = dict(self.platform)
        return out

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Descriptor:
        return cls(
            media_type=d["mediaType"],
            digest=d["digest"],
            size=int(d["size"]),
            annotations=d.get("annotations"),
            platform=d.get("platform"),
        )


@dataclass(frozen=True)
class BlobSource:
    """Where a blob that is not on local disk can be fetched: a registry and a repository.

    ``registry`` is a host (``public.ecr.aws``) or a base URL (``http://127.0.0.1:5000``).
    """

    registry: str
    repository: str

    def to_json(self) -> dict[str, str]:
        return {"registry": self.registry, "repository": self.repository}


@dataclass(frozen=True)
class Held:
    """Blobs a repository is known to hold: read from its current image's manifest moments ago."""

    source: BlobSource
    digests: frozenset[str]


@dataclass(frozen=True)
class Layer:
    descriptor: Descriptor
    diff_id: str  # sha256 of the uncompressed tar
    path: Path | None = None  # local compressed blob, if we have it
    source: BlobSource | None = None  # else where to fetch it from
    uncompressed_size: int | None = None  # when known (our own layers)

    @property
    def digest(self) -> str:
        return self.descriptor.digest

    @property
    def size(self) -> int:
        return self.descriptor.size


@dataclass(frozen=True)
class Image:
    """A single-architecture image. ``manifest`` and ``config`` are the exact bytes pushed."""

    manifest: bytes
    config: bytes
    layers: tuple[Layer, ...]
    annotations: dict[str, str] = field(default_factory=dict)
    # What the push target's repository already holds (its current image's layers), when the build
    # read it: the push presumes those blobs are there and asks only if the manifest is refused.
    held: Held | None = field(default=None, compare=False)

    @property
    def manifest_json(self) -> dict[str, Any]:
        return json.loads(self.manifest)

    @property
    def config_json(self) -> dict[str, Any]:
        return json.loads(self.config)

    @property
    def media_type(self) -> str:
        return self.manifest_json.get("mediaType", OCI_MANIFEST)

    @property
    def digest(self) -> str:
        return sha256_digest(self.manifest)

    @property
    def config_descriptor(self) -> Descriptor:
        return Descriptor.from_json(self.manifest_json["config"])

    def blob_path(self, digest: str) -> Path | None:
        for layer in self.layers:
            if layer.digest == digest:
                return layer.path
        return None


def blob_file(layout: Path, digest: str) -> Path:
    algo, hexd = digest.split(":", 1)
    return layout / "blobs" / algo / hexd


def _put_blob(layout: Path, digest: str, data: bytes | None = None, src: Path | None = None) -> Path:
    dest = blob_file(layout, digest)
    if dest.exists() and blob_ok(dest, digest):  # a blob left there is reused only when it is intact
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = tmp_sibling(dest)
    if data is not None:
        tmp.write_bytes(data)
    elif src is not None:
        try:
            os.link(src, tmp)
        except OSError:
            shutil.copyfile(src, tmp)
    os.replace(tmp, dest)
    return dest


def write_layout(image: Image, out: Path, ref: str = "latest") -> Path:
    """Write ``image`` as an OCI image layout at ``out`` (created or updated in place).

    Layers without a local ``path`` are recorded as remote in ``index.json``; fetch them into
    the layout first (see ``lambdaship.image.build``) when a complete layout is needed.
    """
    out.mkdir(parents=True, exist_ok=True)
    (out / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    _put_blob(out, image.digest, data=image.manifest)
    _put_blob(out, image.config_descriptor.digest, data=image.config)
    remote: dict[str, dict[str, str]] = {}
    for layer in image.layers:
        if layer.path is not None and layer.path.exists():
            _put_blob(out, layer.digest, src=layer.path)
        elif blob_file(out, layer.digest).exists():
            continue
        elif layer.source is not None:
            remote[layer.digest] = layer.source.to_json()
        else:
            raise ValueError(f"layer {layer.digest} has neither a local blob nor a source")
    annotations = {REF_NAME_ANNOTATION: ref, **image.annotations}
    if remote:
        annotations[REMOTE_BLOBS_ANNOTATION] = json.dumps(remote, sort_keys=True)
    desc = Descriptor(image.media_type, image.digest, len(image.manifest), annotations)
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [desc.to_json()]}
    (out / "index.json").write_text(json.dumps(index, indent=2, sort_keys=True))
    return out


def read_layout(layout: Path, ref: str | None = None) -> Image:
    """Read back the image of an OCI layout (the one named ``ref``, or the only one)."""
    index = json.loads((layout / "index.json").read_text())
    manifests = index.get("manifests", [])
    if ref is not None:
        manifests = [m for m in manifests if (m.get("annotations") or {}).get(REF_NAME_ANNOTATION) == ref]
    if len(manifests) != 1:
        raise ValueError(f"{layout}: expected one image{f' named {ref!r}' if ref else ''}, found {len(manifests)}")
    desc = Descriptor.from_json(manifests[0])
    manifest = blob_file(layout, desc.digest).read_bytes()
    mj = json.loads(manifest)
    if mj.get("mediaType") in INDEX_TYPES or "manifests" in mj:
        raise ValueError(f"{layout}: the layout holds an image index, not a single-architecture image")
    config = blob_file(layout, mj["config"]["digest"]).read_bytes()
    cj = json.loads(config)
    diff_ids = cj.get("rootfs", {}).get("diff_ids", [])
    ann = dict(desc.annotations or {})
    remote = json.loads(ann.pop(REMOTE_BLOBS_ANNOTATION, "{}"))
    ann.pop(REF_NAME_ANNOTATION, None)
    layers = []
    for i, ld in enumerate(mj.get("layers", [])):
        d = Descriptor.from_json(ld)
        path = blob_file(layout, d.digest)
        src = remote.get(d.digest)
        layers.append(
            Layer(
                descriptor=d,
                diff_id=diff_ids[i] if i < len(diff_ids) else "",
                path=path if path.exists() else None,
                source=BlobSource(**src) if src else None,
            )
        )
    return Image(manifest=manifest, config=config, layers=tuple(layers), annotations=ann)
