"""The dependency layer cache: one compressed layer per (dependency set, media type, mtime, gzip
settings) in ``<home>/layers``, its blob verified (size, digest, diff_id) whenever it is reused."""

from __future__ import annotations

import json
import os
from pathlib import Path

from lambdaship.cacheverify import blob_ok, discard
from lambdaship.errors import LambdashipError
from lambdaship.fsutil import tmp_sibling
from lambdaship.image import layer as layer_mod
from lambdaship.image.base import blob_cache, cached_blob
from lambdaship.image.model import Descriptor, Layer, sha256_digest
from lambdaship.image.mutate import TASK_ROOT
from lambdaship.paths import home
from lambdaship.patterns import DIGEST_RE

LAYER_CACHE_VERSION = "1"


def deps_layer(tree: Path, deps_hash: str, media_type: str, mtime: int) -> tuple[Layer, bool]:
    """The dependency layer, from the layer cache when this exact set was compressed before."""
    key = sha256_digest(json.dumps(
        {"v": LAYER_CACHE_VERSION, "deps": deps_hash, "mt": media_type, "mtime": mtime,
         "level": layer_mod.LEVEL, "chunk": layer_mod.CHUNK},
        sort_keys=True,
    ).encode()).split(":", 1)[1]
    index = home() / "layers" / f"{key}.json"
    if index.is_file():
        cached = _verified_layer(index, media_type)
        if cached is not None:
            return cached, True
    lay = layer_mod.write_layer(
        layer_mod.tree_entries(tree, TASK_ROOT), blob_cache() / "sha256", media_type=media_type, mtime=mtime
    )
    index.parent.mkdir(parents=True, exist_ok=True)
    tmp = tmp_sibling(index)
    tmp.write_text(json.dumps({"digest": lay.digest, "diff_id": lay.diff_id, "size": lay.size,
                               "uncompressed_size": lay.uncompressed_size}))
    os.replace(tmp, index)
    return lay, False


def _verified_layer(index: Path, media_type: str) -> Layer | None:
    """The cached deps layer of ``index`` when its blob has the recorded size, digest and diff_id;
    else the entry (index and blob) is discarded and None returned (the layer is written again)."""
    from lambdaship.cacheverify import gzip_diff_id_ok

    try:
        info = json.loads(index.read_text())
        digest, diff_id, size = str(info["digest"]), str(info["diff_id"]), int(info["size"])
        if not (DIGEST_RE.fullmatch(digest) and DIGEST_RE.fullmatch(diff_id)):
            raise ValueError("not a sha256 digest")
        path = cached_blob(digest)
        if blob_ok(path, digest, size) and gzip_diff_id_ok(path, diff_id):
            return Layer(Descriptor(media_type, digest, size), diff_id, path=path,
                         uncompressed_size=info["uncompressed_size"])
        discard(path, "dependency layer")
    except (OSError, ValueError, KeyError, TypeError, LambdashipError):
        pass
    index.unlink(missing_ok=True)
    return None
