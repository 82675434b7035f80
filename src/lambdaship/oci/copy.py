"""An image already in a registry, as a value :func:`lambdaship.oci.push.push_image` can push
elsewhere: registry-to-registry copy of the blobs the target lacks, same manifest bytes, same digest.

``remote_image(client, repository, digest)`` reads the manifest and the config; every layer is
named by its source (``registry`` + ``repository``) and has no local file, so the push checks
each blob in the target (``HEAD``), skips what is there, and streams the rest from the source
(``PushResult.streamed_blobs``); the manifest goes last. Used by multi-region deploys
(:mod:`lambdaship.deploy.regions`): Lambda pulls only from its own region's ECR.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lambdaship.errors import LambdashipError
from lambdaship.oci.client import RegistryClient
from lambdaship.oci.media import sha256_digest


@dataclass(frozen=True)
class Source:
    registry: str
    repository: str


@dataclass(frozen=True)
class _Descriptor:
    digest: str
    size: int


@dataclass(frozen=True)
class RemoteLayer:
    digest: str
    size: int
    source: Source
    path: Path | None = None


@dataclass(frozen=True)
class RemoteImage:
    """A single-architecture image in ``source``: the exact manifest and config bytes."""

    manifest: bytes
    config: bytes
    layers: tuple[RemoteLayer, ...]
    source: Source
    manifest_media_type: str = ""

    @property
    def manifest_json(self) -> dict[str, Any]:
        return json.loads(self.manifest)

    @property
    def media_type(self) -> str:
        return str(self.manifest_json.get("mediaType") or self.manifest_media_type
                   or "application/vnd.oci.image.manifest.v1+json")

    @property
    def digest(self) -> str:
        return sha256_digest(self.manifest)

    @property
    def config_descriptor(self) -> _Descriptor:
        cfg = self.manifest_json["config"]
        return _Descriptor(cfg["digest"], int(cfg["size"]))


def remote_image(client: RegistryClient, repository: str, digest: str) -> RemoteImage:
    """The image ``repository@digest`` of ``client``'s registry (an image index is refused:
    Lambda runs single-architecture manifests only)."""
    raw, media_type, _ = client.get_manifest(repository, digest)  # verified against the digest
    doc = json.loads(raw)
    if "config" not in doc or "layers" not in doc:
        raise LambdashipError(f"{repository}@{digest} is not a single-architecture image manifest ({media_type})",
                              "Lambda runs single-architecture images only")
    config = client.get_blob(repository, doc["config"]["digest"], doc["config"].get("size"))
    source = Source(client.registry, repository)
    layers = tuple(RemoteLayer(d["digest"], int(d["size"]), source) for d in doc["layers"])
    return RemoteImage(manifest=raw, config=config, layers=layers, source=source, manifest_media_type=media_type)
