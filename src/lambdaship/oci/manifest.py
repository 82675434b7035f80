"""Validating readers for what a registry sends: image manifests, indexes, image configs.

Input is untrusted: any bytes, any JSON. ``read_manifest`` and ``read_config`` either return a
checked value or raise ``MalformedImage`` (a ``LambdashipError``, one line) — never ``KeyError``,
``TypeError`` or ``ValueError``. Property-tested with hypothesis
(``tests/hostile/test_registry_readers.py``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from lambdaship.errors import LambdashipError
from lambdaship.oci.media import DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_INDEX, OCI_MANIFEST
from lambdaship.oci.transport import MANIFEST_MAX
from lambdaship.patterns import DIGEST_RE

INDEX_TYPES = (OCI_INDEX, DOCKER_MANIFEST_LIST)
MANIFEST_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)
MAX_SIZE = 2**63 - 1


class MalformedImage(LambdashipError):
    """A manifest, index or config that is not what it claims to be."""


@dataclass(frozen=True)
class BlobRef:
    """A content descriptor: what to fetch, and how many bytes it may have."""

    media_type: str
    digest: str
    size: int
    platform: tuple[str, str] | None = None  # (os, architecture) of an index entry


@dataclass(frozen=True)
class ImageManifest:
    media_type: str
    config: BlobRef
    layers: tuple[BlobRef, ...]


@dataclass(frozen=True)
class ImageIndex:
    media_type: str
    manifests: tuple[BlobRef, ...]

    def for_platform(self, os: str, architecture: str) -> BlobRef | None:
        return next((m for m in self.manifests if m.platform == (os, architecture)), None)


@dataclass(frozen=True)
class ImageConfig:
    os: str
    architecture: str
    diff_ids: tuple[str, ...]
    config: dict[str, Any]  # the runtime config (Env, Entrypoint, Cmd, WorkingDir, Labels, ...)


def _bad(what: str, problem: str) -> MalformedImage:
    return MalformedImage(f"malformed {what}: {problem}", "the image is broken or the registry is hostile; "
                                                          "rebuild or re-push it")


def _json(data: bytes, what: str) -> dict[str, Any]:
    if not isinstance(data, bytes | bytearray):
        raise _bad(what, "not bytes")
    if len(data) > MANIFEST_MAX:
        raise _bad(what, f"more than {MANIFEST_MAX:,} bytes")
    try:
        doc = json.loads(bytes(data).decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise _bad(what, "not UTF-8 JSON") from None
    if not isinstance(doc, dict):
        raise _bad(what, f"a JSON {type(doc).__name__}, not an object")
    return doc


def _str(doc: dict[str, Any], key: str, what: str, *, required: bool = True) -> str:
    value = doc.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or not value or len(value) > 255:
        raise _bad(what, f"{key!r} is missing or not a short string")
    return value


def _descriptor(d: Any, what: str, *, index: bool = False) -> BlobRef:
    if not isinstance(d, dict):
        raise _bad(what, "a descriptor is not an object")
    digest = d.get("digest")
    if not isinstance(digest, str) or not DIGEST_RE.match(digest):
        raise _bad(what, "a descriptor's digest is not sha256:<64 hex digits>")
    size = d.get("size")
    if not isinstance(size, int) or isinstance(size, bool) or not 0 <= size <= MAX_SIZE:
        raise _bad(what, f"descriptor {digest[:19]} has no valid size")
    platform = None
    if index:
        p = d.get("platform")
        if p is not None:
            if not isinstance(p, dict) or not isinstance(p.get("os"), str) or not isinstance(
                    p.get("architecture"), str):
                raise _bad(what, f"entry {digest[:19]} has an invalid platform")
            platform = (p["os"], p["architecture"])
    return BlobRef(_str(d, "mediaType", what, required=False), digest, size, platform)


def read_manifest(data: bytes, media_type: str = "") -> ImageManifest | ImageIndex:
    """An image manifest or an index (by the document's ``mediaType``, else the answer's
    ``Content-Type``, else its shape)."""
    doc = _json(data, "image manifest")
    declared = doc.get("mediaType")
    if declared is not None and not isinstance(declared, str):
        raise _bad("image manifest", "'mediaType' is not a string")
    kind = declared or media_type or ""
    if doc.get("schemaVersion") != 2:
        raise _bad("image manifest", "schemaVersion is not 2 (schema 1 is not supported)")
    if kind in INDEX_TYPES or (not kind and "manifests" in doc and "layers" not in doc):
        entries = doc.get("manifests")
        if not isinstance(entries, list):
            raise _bad("image index", "'manifests' is not a list")
        return ImageIndex(kind or OCI_INDEX, tuple(_descriptor(m, "image index", index=True) for m in entries))
    if kind and kind not in MANIFEST_TYPES:
        raise _bad("image manifest", f"unsupported media type {kind[:80]!r}")
    layers = doc.get("layers")
    if not isinstance(layers, list):
        raise _bad("image manifest", "'layers' is not a list")
    return ImageManifest(kind or OCI_MANIFEST, _descriptor(doc.get("config"), "image manifest"),
                         tuple(_descriptor(x, "image manifest") for x in layers))


def read_config(data: bytes) -> ImageConfig:
    """An image config: os, architecture, the layers' diff_ids and the runtime config."""
    doc = _json(data, "image config")
    rootfs = doc.get("rootfs")
    if not isinstance(rootfs, dict) or not isinstance(rootfs.get("diff_ids"), list):
        raise _bad("image config", "'rootfs.diff_ids' is missing")
    diff_ids = rootfs["diff_ids"]
    if not all(isinstance(x, str) and DIGEST_RE.match(x) for x in diff_ids):
        raise _bad("image config", "a diff_id is not sha256:<64 hex digits>")
    config = doc.get("config")
    if config is None:
        config = {}
    if not isinstance(config, dict):
        raise _bad("image config", "'config' is not an object")
    return ImageConfig(_str(doc, "os", "image config", required=False),
                       _str(doc, "architecture", "image config", required=False), tuple(diff_ids), config)
