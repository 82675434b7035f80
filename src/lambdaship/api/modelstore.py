"""Where an extracted app model is kept, by its :mod:`fingerprint <lambdaship.api.fingerprint>`:
the local cache (``<home>/models/<fingerprint>.json``: the fingerprint and the model) and, for image deploys, the
function's own registry repository (a fresh CI runner has no local cache).

In the registry a model is an OCI artifact (``artifactType``
``application/vnd.lambdaship.app-model.v1+json``: the empty config, one layer holding the
extraction's JSON) tagged ``lambdaship-model-<fingerprint>``. Nothing runs it; Lambda never sees
it; ECR's lifecycle rule never selects it (only ``git-``/``build-`` tags and untagged images).

Both places are untrusted: what is read back must be the JSON the extraction writes (checked by
:func:`valid`) and, in the registry, carry the fingerprint it is tagged with; anything else is a
miss and the model is extracted again. Nothing secret is in a model (routes, docstrings, handler
names, trigger settings); the variables the extraction ran with only count as a hash.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from lambdaship.names import MODEL_TAG_PREFIX as TAG_PREFIX

ARTIFACT_TYPE = "application/vnd.lambdaship.app-model.v1+json"
EMPTY_TYPE = "application/vnd.oci.empty.v1+json"
ANNOTATION = "dev.lambdaship.app-model.fingerprint"
MAX_BYTES = 4 << 20
_LISTS = ("routes", "binary_types", "authorizers", "builtin_authorizers", "event_sources", "lambda_functions",
          "websocket_handlers")


def valid(data: object) -> bool:
    """The shape :mod:`lambdaship.api._extract` prints (the model's fields are checked again when
    :func:`lambdaship.api.model.from_json` builds it)."""
    if not isinstance(data, dict) or "error" in data or not isinstance(data.get("app_name"), str):
        return False
    return all(isinstance(data.get(k, []), list) and all(isinstance(x, dict | str) for x in data.get(k, []))
               for k in _LISTS)


def encode(data: dict[str, Any]) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":"), default=str).encode()


def _digest(raw: bytes) -> str:
    return "sha256:" + hashlib.sha256(raw).hexdigest()


# ---- local cache -----------------------------------------------------------------------------
def _local_path(fingerprint: str) -> Path:
    from lambdaship import paths

    return paths.cache("models") / f"{fingerprint}.json"


def load_local(fingerprint: str) -> dict[str, Any] | None:
    path = _local_path(fingerprint)
    try:
        if path.is_symlink() or not path.is_file() or path.stat().st_size > MAX_BYTES:
            return None
        entry = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None
    if not isinstance(entry, dict) or entry.get("fingerprint") != fingerprint:
        return None
    data = entry.get("model")
    return data if valid(data) else None


def save_local(fingerprint: str, data: dict[str, Any]) -> None:
    import os

    from lambdaship.fsutil import tmp_sibling

    path = _local_path(fingerprint)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = tmp_sibling(path)
        tmp.write_bytes(encode({"fingerprint": fingerprint, "model": data}))
        os.replace(tmp, path)
    except OSError:
        pass  # a cache: the next run extracts again


# ---- registry --------------------------------------------------------------------------------
def split_image_uri(image_uri: str) -> tuple[str, str]:
    """(registry host, repository) of ``host/repo[:tag|@digest]``."""
    host, _, rest = image_uri.partition("/")
    repo = rest.split("@", 1)[0]
    if ":" in repo.rsplit("/", 1)[-1]:
        repo = repo.rsplit(":", 1)[0]
    return host, repo


def tag(fingerprint: str) -> str:
    return TAG_PREFIX + fingerprint


def load_remote(image_uri: str, fingerprint: str) -> dict[str, Any] | None:
    """The model stored next to the function's images, or None (absent, unreadable, or not
    what was stored under that tag)."""
    from lambdaship.errors import LambdashipError
    from lambdaship.registries import registry_client

    host, repo = split_image_uri(image_uri)
    try:
        client = registry_client(host)
        if client.head_manifest(repo, tag(fingerprint)) is None:
            return None
        raw, _, _ = client.get_manifest(repo, tag(fingerprint))
        manifest = json.loads(raw)
        if not isinstance(manifest, dict) or manifest.get("artifactType") != ARTIFACT_TYPE:
            return None
        if (manifest.get("annotations") or {}).get(ANNOTATION) != fingerprint:
            return None
        layers = manifest.get("layers")
        if not isinstance(layers, list) or len(layers) != 1 or not isinstance(layers[0], dict) \
                or layers[0].get("mediaType") != ARTIFACT_TYPE:
            return None
        blob = client.get_blob(repo, str(layers[0].get("digest")), layers[0].get("size"), cap=MAX_BYTES)
        data = json.loads(blob)
    except (LambdashipError, ValueError, OSError):
        return None
    return data if valid(data) else None


def save_remote(image_uri: str, fingerprint: str, data: dict[str, Any]) -> str | None:
    """Store the model under its tag; the manifest digest, or None when the registry refused
    (a cache: the next deploy extracts again)."""
    from lambdaship.errors import LambdashipError
    from lambdaship.oci.media import OCI_MANIFEST
    from lambdaship.registries import registry_client

    host, repo = split_image_uri(image_uri)
    body, empty = encode(data), b"{}"
    manifest = {
        "schemaVersion": 2, "mediaType": OCI_MANIFEST, "artifactType": ARTIFACT_TYPE,
        "config": {"mediaType": EMPTY_TYPE, "digest": _digest(empty), "size": len(empty)},
        "layers": [{"mediaType": ARTIFACT_TYPE, "digest": _digest(body), "size": len(body)}],
        "annotations": {ANNOTATION: fingerprint},
    }
    try:
        client = registry_client(host)
        for blob in (empty, body):
            if not client.blob_exists(repo, _digest(blob)):
                client.upload_blob(repo, _digest(blob), len(blob), blob)
        return client.put_manifest(repo, tag(fingerprint), encode(manifest), OCI_MANIFEST)
    except (LambdashipError, OSError):
        return None
