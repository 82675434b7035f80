"""Loading the image a local run executes: an OCI layout directory or a registry reference.

The config blob must hash to the digest the manifest names (its diff_ids decide what is
trusted in the rootfs cache); layers are verified while they are unpacked (``rootfs``).
"""

from __future__ import annotations

import json
from pathlib import Path

from lambdaship.errors import LambdashipError
from lambdaship.image.model import INDEX_TYPES, BlobSource, Descriptor, Image, Layer, read_layout, sha256_digest
from lambdaship.platform import Architecture


def _check_config(image: Image, spec: str) -> Image:
    want = (image.manifest_json.get("config") or {}).get("digest")
    if want != sha256_digest(image.config):
        raise LambdashipError(f"{spec}: the image config does not match the digest its manifest names",
                              "the image is corrupt or was tampered with; rebuild it")
    diff_ids = (image.config_json.get("rootfs") or {}).get("diff_ids") or []
    if len(diff_ids) != len(image.layers):
        raise LambdashipError(f"{spec}: the config lists {len(diff_ids)} diff_ids for {len(image.layers)} layers",
                              "rebuild the image; every layer needs its diff_id")
    return image


def load_image(spec: str) -> Image:
    """An OCI layout directory, or a registry reference (tag or digest)."""
    if not spec.strip():
        raise LambdashipError("no image given", "pass an OCI layout directory or an image reference")
    path = Path(spec)
    if path.is_dir():
        if not (path / "index.json").is_file():
            raise LambdashipError(f"{spec} is a directory but not an OCI image layout (no index.json)",
                                  "pass a layout written by 'lambdaship build --out DIR', or an image reference")
        try:
            image = read_layout(path)
        except (ValueError, KeyError, OSError) as exc:
            raise LambdashipError(f"cannot read the OCI layout {spec}: {exc}") from None
        return _check_config(image, spec)
    from lambdaship.oci.reference import Reference
    from lambdaship.registries import registry_client

    ref = Reference.parse(spec)
    client = registry_client(ref.registry)
    manifest, media_type, _digest = client.get_manifest(ref.repository, ref.ref)
    mj = json.loads(manifest)
    if media_type in INDEX_TYPES or "manifests" in mj:
        arch = (Architecture.host() or Architecture.x86_64).oci
        chosen = next((m for m in mj.get("manifests", [])
                       if (m.get("platform") or {}).get("os") == "linux"
                       and (m.get("platform") or {}).get("architecture") == arch), None)
        if chosen is None:
            raise LambdashipError(f"{spec} has no linux/{arch} image",
                                  "build the image for this machine's architecture")
        manifest, media_type, _digest = client.get_manifest(ref.repository, chosen["digest"])
        mj = json.loads(manifest)
    config = client.get_blob(ref.repository, mj["config"]["digest"], mj["config"].get("size"))
    diff_ids = json.loads(config).get("rootfs", {}).get("diff_ids", [])
    source = BlobSource(ref.registry, ref.repository)
    layers = tuple(
        Layer(Descriptor.from_json(d), diff_ids[i] if i < len(diff_ids) else "", source=source)
        for i, d in enumerate(mj.get("layers", []))
    )
    return _check_config(Image(manifest=manifest, config=config, layers=layers), spec)
