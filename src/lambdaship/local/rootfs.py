"""Unpack an image's layers into a root filesystem, honouring OCI/Docker whiteouts.

Layers are applied in order. ``.wh.<name>`` deletes ``<name>`` from the layers below and
``.wh..wh..opq`` empties its directory of everything the layers below put there. Paths are
resolved inside the root the way a chroot would see them (symlinks in parent directories,
absolute or relative, never lead outside ``dest``); device nodes are skipped (``run`` binds the
host's /dev). Rootfs trees are cached by manifest digest under ``home()/rootfs``.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import platform
import posixpath
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO

from lambdaship.errors import LambdashipError
from lambdaship.image.model import (
    INDEX_TYPES,
    BlobSource,
    Descriptor,
    Image,
    Layer,
    read_layout,
)
from lambdaship.local.stack import home

OPAQUE = ".wh..wh..opq"
WHITEOUT = ".wh."
MAX_SYMLINKS = 40


def rootfs_cache() -> Path:
    return home() / "rootfs"


# ---- path resolution inside the root ---------------------------------------------------------
def _resolve_parent(dest: Path, rel: str) -> str:
    """Resolve every component of ``rel`` (a path inside the root) following symlinks as a
    process chrooted at ``dest`` would; returns a clean relative path with real directories."""
    parts = [p for p in rel.split("/") if p not in ("", ".")]
    resolved: list[str] = []
    hops = 0
    while parts:
        part = parts.pop(0)
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        candidate = dest.joinpath(*resolved, part)
        if candidate.is_symlink():
            hops += 1
            if hops > MAX_SYMLINKS:
                raise LambdashipError(f"too many symlinks resolving {rel!r} in the image")
            target = os.readlink(candidate)
            if target.startswith("/"):
                resolved = []
            parts = [p for p in target.split("/") if p not in ("", ".")] + parts
            continue
        resolved.append(part)
    return "/".join(resolved)


def _inside(dest: Path, name: str, cache: dict[str, str] | None = None) -> str:
    """The real relative path for member ``name``: parents resolved, the last component kept.

    ``cache`` memoises parent resolutions; clear it whenever a symlink or directory is
    created in place of something else, or removed.
    """
    name = posixpath.normpath("/" + name).lstrip("/")
    parent, base = posixpath.split(name)
    if not parent:
        return base
    real_parent = cache.get(parent) if cache is not None else None
    if real_parent is None:
        real_parent = _resolve_parent(dest, parent)
        if cache is not None:
            cache[parent] = real_parent
    return posixpath.join(real_parent, base) if real_parent else base


def _remove(path: Path) -> None:
    if path.is_symlink() or not path.is_dir():
        path.unlink(missing_ok=True)
    else:
        shutil.rmtree(path)


# ---- layers ----------------------------------------------------------------------------------
def _open_blob(path: Path) -> IO[bytes]:
    with path.open("rb") as fh:
        magic = fh.read(4)
    if magic[:2] == b"\x1f\x8b":
        try:
            from isal import igzip

            return igzip.open(path, "rb")  # type: ignore[return-value]
        except ImportError:  # pragma: no cover
            import gzip

            return gzip.open(path, "rb")  # type: ignore[return-value]
    if magic == b"\x28\xb5\x2f\xfd":
        raise LambdashipError("zstd-compressed layers are not supported by 'lambdaship run'",
                              "use gzip layers (Lambda requires them too)")
    return path.open("rb")


def apply_layer(blob: Path, dest: Path) -> None:
    """Apply one layer (gzip or plain tar) on top of ``dest``."""
    seen: set[str] = set()
    cache: dict[str, str] = {}
    with _open_blob(blob) as stream, tarfile.open(fileobj=stream, mode="r|") as tf:
        for member in tf:
            name = posixpath.normpath("/" + member.name).lstrip("/")
            if not name or name == ".":
                continue
            parent, base = posixpath.split(name)
            if base == OPAQUE or base.startswith(WHITEOUT) or member.issym():
                cache.clear()  # the tree's shape changes: resolve parents afresh
            if base == OPAQUE:
                real = _resolve_parent(dest, parent)
                directory = dest / real if real else dest
                if directory.is_dir() and not directory.is_symlink():
                    for child in directory.iterdir():
                        rel = posixpath.join(real, child.name) if real else child.name
                        if rel not in seen:
                            _remove(child)
                continue
            if base.startswith(WHITEOUT):
                target = dest / _inside(dest, posixpath.join(parent, base[len(WHITEOUT):]))
                if target.is_symlink() or target.exists():
                    _remove(target)
                continue
            if member.ischr() or member.isblk() or member.isfifo():
                continue
            real = _inside(dest, name, cache)
            if not real:
                continue
            seen.add(real)
            target = dest / real
            if target.is_symlink() or (target.exists() and not (member.isdir() and target.is_dir())):
                if target.is_symlink() or target.is_dir():
                    cache.clear()
                _remove(target)
            m = copy.copy(member)
            m.name = real
            if member.islnk():
                link = _inside(dest, member.linkname, cache)
                if not (dest / link).exists():
                    continue
                m.linkname = link
            try:
                tf.extract(m, dest, set_attrs=True, numeric_owner=True, filter="fully_trusted")
            except (OSError, tarfile.TarError) as exc:
                raise LambdashipError(f"cannot unpack {member.name} from layer {blob.name}: {exc}") from None


def _layer_blob(layer: Layer, blobs: Path) -> Path:
    if layer.path is not None and layer.path.exists():
        return layer.path
    if layer.source is None:
        raise LambdashipError(f"layer {layer.digest} has no local blob and no source to fetch it from")
    from lambdaship.registry import RegistryClient

    dest = blobs / layer.digest.replace(":", "-")
    if not dest.exists():
        client = RegistryClient.for_registry(layer.source.registry)
        client.download_blob(layer.source.repository, layer.digest, dest)
    return dest


def unpack(image: Image, dest: Path, *, progress: Callable[[str], None] | None = None) -> Path:
    """Unpack every layer of ``image`` in order into ``dest`` (created)."""
    dest.mkdir(parents=True, exist_ok=True)
    blobs = rootfs_cache() / "blobs"
    blobs.mkdir(parents=True, exist_ok=True)
    for i, layer in enumerate(image.layers, 1):
        if progress:
            progress(f"layer {i}/{len(image.layers)} {layer.digest[:19]} ({layer.size / 1e6:.1f} MB)")
        apply_layer(_layer_blob(layer, blobs), dest)
    return dest


def chain_ids(image: Image) -> list[str]:
    """Chain id of every layer prefix (as in the OCI spec: sha256 over parent chain + diff_id)."""
    out: list[str] = []
    for layer in image.layers:
        ident = layer.diff_id or layer.digest
        out.append(ident if not out else "sha256:" + hashlib.sha256(f"{out[-1]} {ident}".encode()).hexdigest())
    return out


def _snapshot(src: Path, dest: Path) -> None:
    """Copy a tree as hard links (cheap; unpacking later layers replaces files, never writes through)."""
    proc = subprocess.run(["cp", "-a", "-l", str(src), str(dest)], capture_output=True, text=True)
    if proc.returncode != 0:
        shutil.rmtree(dest, ignore_errors=True)
        shutil.copytree(src, dest, symlinks=True)


def _publish(work: Path, final: Path) -> None:
    try:
        os.rename(work, final)
    except OSError:
        if not (final / ".lambdaship-complete").is_file():
            raise


def cached_rootfs(image: Image, *, progress: Callable[[str], None] | None = None) -> Path:
    """The unpacked rootfs of ``image``, cached per layer chain.

    Every layer prefix (base, base + deps, …) is kept as a hard-linked snapshot, so an image
    that only changes its last (app) layer unpacks just that layer on top of a snapshot.
    """
    chains = chain_ids(image)
    root = rootfs_cache() / "chains"
    root.mkdir(parents=True, exist_ok=True)
    blobs = rootfs_cache() / "blobs"
    blobs.mkdir(parents=True, exist_ok=True)

    def dir_of(chain: str) -> Path:
        return root / chain.split(":", 1)[1][:32]

    if not chains:
        empty = root / "empty"
        (empty / "rootfs").mkdir(parents=True, exist_ok=True)
        return empty / "rootfs"
    final = dir_of(chains[-1])
    if (final / ".lambdaship-complete").is_file():
        return final / "rootfs"
    start = 0
    for i in range(len(chains) - 1, -1, -1):
        if (dir_of(chains[i]) / ".lambdaship-complete").is_file():
            start = i + 1
            break
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
            apply_layer(_layer_blob(layer, blobs), tree)
            if i < len(chains) - 1 and not (dir_of(chains[i]) / ".lambdaship-complete").is_file():
                snap = Path(tempfile.mkdtemp(prefix=".snap-", dir=root))
                try:
                    _snapshot(tree, snap / "rootfs")
                    (snap / ".lambdaship-complete").write_text(chains[i] + "\n")
                    _publish(snap, dir_of(chains[i]))
                finally:
                    if snap.exists():
                        shutil.rmtree(snap, ignore_errors=True)
        (work / ".lambdaship-complete").write_text(chains[-1] + "\n")
        _publish(work, final)
    finally:
        if work.exists():
            shutil.rmtree(work, ignore_errors=True)
    return final / "rootfs"


# ---- loading images --------------------------------------------------------------------------
def _host_platform() -> tuple[str, str]:
    machine = platform.machine().lower()
    return "linux", {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)


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
            return read_layout(path)
        except (ValueError, KeyError, OSError) as exc:
            raise LambdashipError(f"cannot read the OCI layout {spec}: {exc}") from None
    from lambdaship.registry import Reference, RegistryClient

    ref = Reference.parse(spec)
    client = RegistryClient.for_registry(ref.registry)
    manifest, media_type, _digest = client.get_manifest(ref.repository, ref.ref)
    mj = json.loads(manifest)
    if media_type in INDEX_TYPES or "manifests" in mj:
        os_, arch = _host_platform()
        chosen = next((m for m in mj.get("manifests", [])
                       if (m.get("platform") or {}).get("os") == os_
                       and (m.get("platform") or {}).get("architecture") == arch), None)
        if chosen is None:
            raise LambdashipError(f"{spec} has no {os_}/{arch} image",
                                  "build the image for this machine's architecture")
        manifest, media_type, _digest = client.get_manifest(ref.repository, chosen["digest"])
        mj = json.loads(manifest)
    config = client.get_blob(ref.repository, mj["config"]["digest"])
    diff_ids = json.loads(config).get("rootfs", {}).get("diff_ids", [])
    source = BlobSource(ref.registry, ref.repository)
    layers = tuple(
        Layer(Descriptor.from_json(d), diff_ids[i] if i < len(diff_ids) else "", source=source)
        for i, d in enumerate(mj.get("layers", []))
    )
    return Image(manifest=manifest, config=config, layers=layers)


resolve_inside = _resolve_parent
