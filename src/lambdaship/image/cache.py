"""The dependency layers: their cache, and the label that describes them in an image.

Cache: one compressed layer per (content of its entries, media type, mtime, gzip settings) in
``<home>/layers/<key>.json``. The key is a digest of the layer's entries (path, kind, content
sha256 — the records that verified the installed tree, so nothing is hashed twice), not of the
dependency set: when one package is bumped, the layers of the packages that did not change are
found again, only the layer holding the bumped one is written. A cached blob is verified (size,
digest, diff_id) whenever it is reused. An entry has one writer at a time (a lock per key in the
process, an ``flock`` between processes): builds that need the same layer at once — the
functions of one ``deploy --all`` — compress it once, the others wait and reuse it.

Registry: a pushed image's ``dev.lambdaship.deps-layers`` label (:func:`deps_label`) lists its
dependency layers; ``image.reuse`` decides which of them a build reuses as remote layers.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lambdaship.cacheverify import blob_ok, discard, entry_record, records_digest
from lambdaship.errors import LambdashipError
from lambdaship.fsutil import entry_lock, tmp_sibling
from lambdaship.image import layer as layer_mod
from lambdaship.image.base import blob_cache, cached_blob
from lambdaship.image.model import Descriptor, Layer, canonical_json, sha256_digest
from lambdaship.image.mutate import TASK_ROOT
from lambdaship.package.layers import Group
from lambdaship.paths import home

LAYER_CACHE_VERSION = "2"  # 2: keyed by the layer's content (1: by the whole dependency set)
DIGEST_RE = re.compile(r"sha256:[0-9a-f]{64}")


@dataclass(frozen=True)
class DepsLayer:
    """One dependency layer of an image and what it holds."""

    layer: Layer
    name: str  # the distribution's name, or package.layers.SHARED
    packages: tuple[str, ...]  # "name==version", sorted
    cached: bool = False  # from the layer cache or a previous image: nothing was compressed

    def label_json(self) -> dict[str, Any]:
        lay = self.layer
        return {"name": self.name, "packages": list(self.packages), "digest": lay.digest, "diff_id": lay.diff_id,
                "size": lay.size, "uncompressed_size": lay.uncompressed_size}


def deps_label(split: tuple[int, int], layers: list[DepsLayer], env: str) -> str:
    """The ``dev.lambdaship.deps-layers`` label: the split (threshold, cap), every deps layer and the
    environment its files depend on (``package.deps.DepsPlan.env``; read back by ``image.reuse``)."""
    return canonical_json({"env": env, "split": list(split), "layers": [d.label_json() for d in layers]}).decode()


def group_layer(tree: Path, group: Group, records: dict[str, bytes] | None, media_type: str,
                mtime: int) -> DepsLayer:
    """The layer of ``group``'s entries of ``tree``: from the cache when these exact entries were
    compressed before, else written (and recorded in the cache)."""
    recs = records or {}
    content = records_digest(recs.get(p) or entry_record(tree / p, p) for p in group.paths)
    key = sha256_digest(canonical_json(
        {"v": LAYER_CACHE_VERSION, "content": content, "mt": media_type, "mtime": mtime,
         "level": layer_mod.LEVEL, "chunk": layer_mod.CHUNK},
    )).split(":", 1)[1]
    index = home() / "layers" / f"{key}.json"
    found = _lookup(index, media_type)  # the usual case, without waiting for anyone
    if found is not None:
        return DepsLayer(found, group.name, group.packages, cached=True)
    # one writer per entry: a concurrent build of the same layer (this process's or another's) waits, then reuses
    with entry_lock(index.with_suffix(".lock")):
        found = _lookup(index, media_type)
        if found is not None:
            return DepsLayer(found, group.name, group.packages, cached=True)
        entries = layer_mod.entries_from_files([(p, tree / p) for p in group.paths], TASK_ROOT, root=tree)
        lay = layer_mod.write_layer(entries, blob_cache() / "sha256", media_type=media_type, mtime=mtime)
        tmp = tmp_sibling(index)
        tmp.write_text(json.dumps({"digest": lay.digest, "diff_id": lay.diff_id, "size": lay.size,
                                   "uncompressed_size": lay.uncompressed_size}))
        os.replace(tmp, index)
    return DepsLayer(lay, group.name, group.packages)


def _lookup(index: Path, media_type: str) -> Layer | None:
    return _verified_layer(index, media_type) if index.is_file() else None


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
