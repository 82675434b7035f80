"""The base image: a reference resolved to the target architecture's manifest and config (its layers stay
remote), and base blobs fetched into the verified content-addressed cache (``<home>/blobs``) when a
local copy is needed. (A previously pushed image's dependency layers are found in ``image.cache``.)"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from lambdaship.cacheverify import blob_ok, discard
from lambdaship.errors import LambdashipError
from lambdaship.image.model import INDEX_TYPES, MANIFEST_TYPES, BlobSource, Descriptor, Image, Layer, blob_file
from lambdaship.paths import home
from lambdaship.platform import Architecture
from lambdaship.shared import Shared


def blob_cache() -> Path:
    """Content-addressed blob cache: ``<home>/blobs/sha256/<hex>``."""
    return home() / "blobs"


def cached_blob(digest: str) -> Path:
    return blob_file(home(), digest)  # <home>/blobs/sha256/<hex>


def _platform_str(p: dict[str, Any]) -> str:
    s = f"{p.get('os', '?')}/{p.get('architecture', '?')}"
    return s + (f"/{p['variant']}" if p.get("variant") else "")


def _choose(index: dict[str, Any], ref: str, architecture: str) -> str:
    want = Architecture.parse(architecture).oci
    entries = [m for m in index.get("manifests", []) if m.get("platform")]
    real = [m for m in entries if m["platform"].get("os") != "unknown"]  # skip attestations
    for m in real:
        p = m["platform"]
        if p.get("os") == "linux" and p.get("architecture") == want and p.get("variant") in (None, "", "v8"):
            return m["digest"]
    available = ", ".join(sorted({_platform_str(m["platform"]) for m in real})) or "none"
    raise LambdashipError(
        f"base image {ref} has no linux/{want} image (available: {available})",
        "choose another --architecture or a base image built for it",
    )


# A fleet's functions name the same base: within :func:`shared_bases` its tag is resolved once,
# so every function of the run gets the same digest (a tag moved mid-run cannot split the fleet)
# and the registry is asked once. Images are immutable: callers share one.
_bases: Shared[Image] = Shared("lambdaship_base_images")
shared_bases = _bases.scope


def resolve_base(ref: str, architecture: str) -> Image:
    """The base image for ``architecture`` ("x86_64"/"arm64"); its layers stay remote."""
    goarch = Architecture.parse(architecture).oci  # one-line error for an unknown architecture
    return _bases.get((ref, goarch), lambda: _resolve_base(ref, architecture, goarch))


def _resolve_base(ref: str, architecture: str, goarch: str) -> Image:
    from lambdaship.oci.reference import Reference
    from lambdaship.registries import registry_client

    r = Reference.parse(ref)
    client = registry_client(r.registry)
    raw, media_type, _digest = client.get_manifest(r.repository, r.ref)
    doc = json.loads(raw)
    if media_type in INDEX_TYPES or (doc.get("manifests") and "layers" not in doc):
        chosen = _choose(doc, ref, architecture)
        raw, media_type, _digest = client.get_manifest(r.repository, chosen)
        doc = json.loads(raw)
    media_type = doc.get("mediaType") or media_type
    if media_type not in MANIFEST_TYPES or "config" not in doc:
        raise LambdashipError(
            f"base image {ref} has an unsupported manifest type {media_type!r}",
            "use a Docker v2 schema 2 or OCI image (e.g. public.ecr.aws/lambda/python:3.12)",
        )
    config = client.get_blob(r.repository, doc["config"]["digest"], doc["config"].get("size"))
    cfg = json.loads(config)
    arch = cfg.get("architecture")
    if arch and arch != goarch:
        raise LambdashipError(
            f"base image {ref} is linux/{arch}, not linux/{goarch}",
            "choose a base image for the target architecture or change --architecture",
        )
    diff_ids = cfg.get("rootfs", {}).get("diff_ids", [])
    layer_descs = doc.get("layers", [])
    if len(diff_ids) != len(layer_descs):
        raise LambdashipError(f"base image {ref}: {len(layer_descs)} layers but {len(diff_ids)} diff_ids in config")
    source = BlobSource(registry=r.registry, repository=r.repository)
    layers = tuple(
        Layer(descriptor=Descriptor.from_json(d), diff_id=diff_ids[i], source=source)
        for i, d in enumerate(layer_descs)
    )
    return Image(manifest=raw, config=config, layers=layers)


def fetch_base_blobs(image: Image) -> Image:
    """The image with every remote layer downloaded into the blob cache (once, verified)."""
    from lambdaship.registries import registry_client

    out = []
    for lay in image.layers:
        if lay.path is not None and lay.path.exists():
            out.append(lay)
            continue
        dest = cached_blob(lay.digest)
        if dest.exists() and not blob_ok(dest, lay.digest, lay.size):
            discard(dest, "base layer")
        if not dest.exists():
            if lay.source is None:
                raise LambdashipError(f"layer {lay.digest} has no local blob and no source")
            registry_client(lay.source.registry).download_blob(lay.source.repository, lay.digest, dest,
                                                                size=lay.size)
        out.append(replace(lay, path=dest))
    return replace(image, layers=tuple(out))
