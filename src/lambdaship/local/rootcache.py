"""The verified rootfs cache: unpacked images keyed by the chain of verified diff_ids.

Every layer is hashed while it is applied: the compressed bytes must match the manifest's
digest and the uncompressed tar the config's ``diff_id`` (a bad gzip checksum, a short
stream or a lying ``diff_id`` is a one-line error and nothing is cached). The cache is
keyed by the chain of verified diff_ids (``chains/<chain id>``), so an image can only ever
reuse a tree whose content it proved; each tree carries a marker with a digest of its
entries (names, types, modes, sizes, mtimes, link targets), checked before use, so a tree
changed after unpacking is detected and unpacked afresh.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from lambdaship.errors import LambdashipError
from lambdaship.image.model import Image, Layer
from lambdaship.local.rootfs import _remove, apply_layer
from lambdaship.paths import cache

CACHE_VERSION = "v2"
MARKER = ".lambdaship-verified"
MOUNTPOINTS = ("dev", "proc", "tmp", "var/task", "opt/lambdaship/deps")  # what the sandbox mounts on
QEMU_MOUNT = "/opt/lambdaship/qemu"


def rootfs_cache() -> Path:
    return cache("rootfs") / CACHE_VERSION


def tree_digest(root: Path) -> str:
    """A digest of every entry below ``root``: relative name, type, mode, size, mtime, link target."""
    h = hashlib.sha256()
    stack = [""]
    while stack:
        rel = stack.pop()
        with os.scandir(root / rel if rel else root) as it:
            entries = sorted(it, key=lambda e: e.name)
        for e in entries:
            st = e.stat(follow_symlinks=False)
            path = f"{rel}/{e.name}" if rel else e.name
            extra = os.readlink(e.path) if stat.S_ISLNK(st.st_mode) else ""
            h.update(f"{path}\0{st.st_mode:o}\0{st.st_size}\0{st.st_mtime_ns}\0{extra}\n".encode())
            if stat.S_ISDIR(st.st_mode):
                stack.append(path)
    return "sha256:" + h.hexdigest()


def chain_ids(image: Image) -> list[str]:
    """Chain id of every layer prefix (OCI: sha256 over parent chain id + diff_id)."""
    out: list[str] = []
    for i, layer in enumerate(image.layers):
        if not layer.diff_id.startswith("sha256:"):
            raise LambdashipError(f"the image config has no diff_id for layer {i + 1} ({layer.digest[:19]})",
                                  "rebuild the image; its config's rootfs.diff_ids must list every layer")
        ident = layer.diff_id
        out.append(ident if not out else "sha256:" + hashlib.sha256(f"{out[-1]} {ident}".encode()).hexdigest())
    return out


_checked: dict[str, tuple[float, str]] = {}  # tree dir -> (marker mtime, digest) verified in this process


def _valid(entry: Path, chain: str) -> bool:
    marker = entry / MARKER
    try:
        info = json.loads(marker.read_text())
        mtime = marker.stat().st_mtime
    except (OSError, ValueError):
        return False
    if info.get("chain") != chain:
        return False
    if _checked.get(str(entry)) == (mtime, info.get("tree")):
        return True
    if tree_digest(entry / "rootfs") != info.get("tree"):
        return False
    _checked[str(entry)] = (mtime, info["tree"])
    return True


def _finish(tree: Path) -> None:
    """Mount points the sandbox needs, as real directories (an image may lack them or link them away)."""
    for rel in MOUNTPOINTS:
        d = tree
        for part in rel.split("/"):
            d = d / part
            if d.is_symlink() or (d.exists() and not d.is_dir()):
                _remove(d)
            if not d.exists():
                os.mkdir(d, 0o755)
    qemu = tree / QEMU_MOUNT.lstrip("/")
    if qemu.is_symlink() or (qemu.exists() and not qemu.is_file()):
        _remove(qemu)
    if not qemu.exists():
        qemu.write_bytes(b"")  # a file to bind a qemu-user binary on (foreign-architecture images)


def _publish(work: Path, final: Path, chain: str) -> None:
    _finish(work / "rootfs")
    (work / MARKER).write_text(json.dumps({"chain": chain, "tree": tree_digest(work / "rootfs")}))
    if final.exists() and not _valid(final, chain):
        stale = final.with_name(f".stale-{final.name}-{os.getpid()}")
        try:
            os.rename(final, stale)
            shutil.rmtree(stale, ignore_errors=True)
        except OSError:
            pass
    try:
        os.rename(work, final)
    except OSError:
        if not _valid(final, chain):  # unless another process published the same tree first
            raise


def _snapshot(src: Path, dest: Path) -> None:
    """Copy a tree as hard links (cheap: applying later layers replaces files, never writes through)."""
    proc = subprocess.run(["cp", "-a", "-l", str(src), str(dest)], capture_output=True, text=True)
    if proc.returncode != 0:
        shutil.rmtree(dest, ignore_errors=True)
        shutil.copytree(src, dest, symlinks=True)


def _layer_blob(layer: Layer, blobs: Path) -> Path:
    if layer.path is not None and layer.path.exists():
        return layer.path
    if layer.source is None:
        raise LambdashipError(f"layer {layer.digest[:19]} has no local blob and no source to fetch it from")
    from lambdaship.registries import registry_client

    dest = blobs / layer.digest.replace(":", "-")
    if not dest.exists():
        registry_client(layer.source.registry).download_blob(layer.source.repository, layer.digest, dest,
                                                             size=layer.size)
    return dest


def _apply_verified(layer: Layer, tree: Path, blobs: Path) -> None:
    blob = _layer_blob(layer, blobs)
    try:
        apply_layer(blob, tree, digest=layer.digest, diff_id=layer.diff_id)
    except LambdashipError:
        if blob.parent == blobs:
            blob.unlink(missing_ok=True)  # a bad download is not kept
        raise


def unpack(image: Image, dest: Path, *, progress: Callable[[str], None] | None = None) -> Path:
    """Unpack (and verify) every layer of ``image`` in order into ``dest`` (created)."""
    chain_ids(image)
    dest.mkdir(parents=True, exist_ok=True)
    blobs = rootfs_cache() / "blobs"
    blobs.mkdir(parents=True, exist_ok=True)
    for i, layer in enumerate(image.layers, 1):
        if progress:
            progress(f"layer {i}/{len(image.layers)} {layer.digest[:19]} ({layer.size / 1e6:.1f} MB)")
        _apply_verified(layer, dest, blobs)
    return dest


def cached_rootfs(image: Image, *, progress: Callable[[str], None] | None = None) -> Path:
    """The unpacked, verified rootfs of ``image``, cached per chain of verified diff_ids.

    Every layer prefix (base, base + deps, …) is kept as a hard-linked snapshot, so an image
    that only changes its last (app) layer unpacks just that layer on top of a snapshot.
    A cached prefix is only reused for a layer whose blob digest → diff_id pair was verified.
    """
    chains = chain_ids(image)
    root = rootfs_cache() / "chains"
    blobs = rootfs_cache() / "blobs"
    verified = rootfs_cache() / "verified"
    for d in (root, blobs, verified):
        d.mkdir(parents=True, exist_ok=True)

    def dir_of(chain: str) -> Path:
        return root / chain.split(":", 1)[1][:40]

    def proven(layer: Layer) -> bool:  # this blob was seen to unpack to this diff_id before
        f = verified / layer.digest.replace(":", "-")
        return f.is_file() and f.read_text().strip() == layer.diff_id

    if not chains:
        raise LambdashipError("the image has no layers", "build it on a base image")
    start = 0
    for i in range(len(chains) - 1, -1, -1):
        if all(proven(layer) for layer in image.layers[: i + 1]) and _valid(dir_of(chains[i]), chains[i]):
            start = i + 1
            break
    if start == len(chains):
        return dir_of(chains[-1]) / "rootfs"
    work = Path(tempfile.mkdtemp(prefix=".unpack-", dir=root))
    try:
        tree = work / "rootfs"
        if start:
            _snapshot(dir_of(chains[start - 1]) / "rootfs", tree)
        else:
            tree.mkdir()
        for i in range(start, len(chains)):
            layer = image.layers[i]
            if progress:
                progress(f"layer {i + 1}/{len(chains)} {layer.digest[:19]} ({layer.size / 1e6:.1f} MB)")
            _apply_verified(layer, tree, blobs)
            (verified / layer.digest.replace(":", "-")).write_text(layer.diff_id + "\n")
            if i < len(chains) - 1 and not _valid(dir_of(chains[i]), chains[i]):
                snap = Path(tempfile.mkdtemp(prefix=".snap-", dir=root))
                try:
                    _snapshot(tree, snap / "rootfs")
                    _publish(snap, dir_of(chains[i]), chains[i])
                finally:
                    shutil.rmtree(snap, ignore_errors=True)
        _publish(work, dir_of(chains[-1]), chains[-1])
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return dir_of(chains[-1]) / "rootfs"

