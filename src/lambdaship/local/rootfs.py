"""Unpack an image's layers into a root filesystem, safely, and keep it in a verified cache.

Extraction treats every layer as hostile:

* every name is resolved inside the root the way a chroot would see it (``..`` stops at the
  root, absolute names and symlinked parent directories are re-rooted), so nothing is ever
  written, chmod'ed or linked outside it; files are created ``O_EXCL | O_NOFOLLOW`` after the
  old entry is removed, so a symlink planted in an earlier layer is replaced, never followed;
* hard links may only point at regular files inside the root and never change them (no
  chmod/utime through a link);
* device nodes, FIFOs and other special entries are dropped, setuid/setgid bits removed,
  ownership never applied (everything belongs to the user who unpacks);
* whiteouts (``.wh.<name>``) and opaque directories (``.wh..wh..opq``) as in the OCI spec.

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
import io
import json
import os
import posixpath
import shutil
import stat
import subprocess
import tarfile
import tempfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from lambdaship.errors import LambdashipError
from lambdaship.image.model import Image, Layer
from lambdaship.paths import cache

OPAQUE = ".wh..wh..opq"
WHITEOUT = ".wh."
MAX_SYMLINKS = 40
CACHE_VERSION = "v2"
MARKER = ".lambdaship-verified"
MOUNTPOINTS = ("dev", "proc", "tmp", "var/task", "opt/lambdaship/deps")  # what the sandbox mounts on


def rootfs_cache() -> Path:
    return cache("rootfs") / CACHE_VERSION


# ---- path resolution inside the root ---------------------------------------------------------
def resolve_inside(dest: Path, rel: str) -> str:
    """Resolve every component of ``rel`` following symlinks as a process chrooted at ``dest``
    would; returns a clean relative path (which may not exist)."""
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


def _inside(dest: Path, name: str, memo: dict[str, str]) -> str:
    """The real relative path for member ``name``: parents resolved, the last component kept."""
    name = posixpath.normpath("/" + name).lstrip("/")
    parent, base = posixpath.split(name)
    if not parent:
        return base
    real_parent = memo.get(parent)
    if real_parent is None:
        real_parent = memo[parent] = resolve_inside(dest, parent)
    return posixpath.join(real_parent, base) if real_parent else base


def _remove(path: Path) -> None:
    if path.is_symlink() or not path.is_dir():
        path.unlink(missing_ok=True)
    else:
        shutil.rmtree(path)  # never follows symlinks


def _makedirs(dest: Path, rel: str) -> None:
    d = dest
    for part in [p for p in rel.split("/") if p]:
        d = d / part
        if d.is_symlink() or (d.exists() and not d.is_dir()):
            raise LambdashipError(f"layer entry below {rel!r}: {part!r} is not a directory")
        if not d.exists():
            os.mkdir(d, 0o755)


# ---- reading a layer, hashed ------------------------------------------------------------------
class _Hashing(io.RawIOBase):
    """A read-only stream that hashes what passes through."""

    def __init__(self, raw: IO[bytes]) -> None:
        super().__init__()
        self.raw, self.hash, self.size = raw, hashlib.sha256(), 0

    def readinto(self, b: Any) -> int:
        data = self.raw.read(len(b))
        n = len(data)
        b[:n] = data
        self.hash.update(data)
        self.size += n
        return n

    def readable(self) -> bool:
        return True

    def digest(self) -> str:
        return "sha256:" + self.hash.hexdigest()


def _decompress(raw: _Hashing, magic: bytes) -> IO[bytes]:
    if magic[:2] == b"\x1f\x8b":
        try:
            from isal import igzip

            return igzip.IGzipFile(fileobj=raw, mode="rb")  # type: ignore[arg-type, return-value]
        except ImportError:  # pragma: no cover
            import gzip

            return gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[arg-type]
    if magic == b"\x28\xb5\x2f\xfd":
        raise LambdashipError("zstd-compressed layers are not supported locally",
                              "use gzip layers (Lambda requires them too)")
    return io.BufferedReader(raw, 1 << 16)  # type: ignore[arg-type]


def apply_layer(blob: Path, dest: Path, *, digest: str | None = None, diff_id: str | None = None) -> str:
    """Apply one layer (gzip or plain tar) on top of ``dest``; returns its diff_id.

    With ``digest`` / ``diff_id`` the compressed / uncompressed bytes must hash to them.
    """
    dest.mkdir(parents=True, exist_ok=True)
    short = (digest or blob.name)[:19]
    with blob.open("rb") as fh:
        magic = fh.read(4)
        fh.seek(0)
        raw = _Hashing(fh)
        tar_stream = _Hashing(_decompress(raw, magic))
        try:
            with tarfile.open(fileobj=tar_stream, mode="r|") as tf:  # type: ignore[call-overload]
                applier = _Applier(dest)
                for member in tf:
                    applier.apply(tf, member)
            while tar_stream.read(1 << 20):
                pass  # the end-of-archive padding counts; reading to EOF also checks the gzip CRC
            while raw.read(1 << 20):
                pass
        except (OSError, EOFError, zlib.error, tarfile.TarError) as exc:
            raise LambdashipError(f"layer {short} is corrupt: {str(exc) or type(exc).__name__}",
                                  "rebuild or re-push the image") from None
    if digest is not None and raw.digest() != digest:
        raise LambdashipError(f"layer {short}: content hashes to {raw.digest()[:19]}, not its digest",
                              "the blob is corrupt or was tampered with; rebuild or re-push the image")
    got = tar_stream.digest()
    if diff_id is not None and got != diff_id:
        raise LambdashipError(f"layer {short}: uncompressed content is {got[:19]}, but the image config "
                              f"claims diff_id {diff_id[:19]}", "the image config lies about its layers; rebuild it")
    return got


class _Applier:
    def __init__(self, dest: Path) -> None:
        self.dest = dest
        self.seen: set[str] = set()
        self.memo: dict[str, str] = {}

    def apply(self, tf: tarfile.TarFile, member: tarfile.TarInfo) -> None:
        dest = self.dest
        name = posixpath.normpath("/" + member.name).lstrip("/")
        if not name or name == ".":
            return
        parent, base = posixpath.split(name)
        if base == OPAQUE or base.startswith(WHITEOUT) or member.issym() or member.isdir():
            self.memo.clear()  # the tree's shape changes: resolve parents afresh
        if base == OPAQUE:
            real = resolve_inside(dest, parent)
            directory = dest / real if real else dest
            if directory.is_dir() and not directory.is_symlink():
                for child in directory.iterdir():
                    if (posixpath.join(real, child.name) if real else child.name) not in self.seen:
                        _remove(child)
            return
        if base.startswith(WHITEOUT):
            target = dest / _inside(dest, posixpath.join(parent, base[len(WHITEOUT):]), self.memo)
            if target != dest and (target.is_symlink() or target.exists()):
                _remove(target)
            return
        if not (member.isreg() or member.isdir() or member.issym() or member.islnk()):
            return  # device nodes, FIFOs, anything else: dropped
        real = _inside(dest, name, self.memo)
        if not real:
            return
        self.seen.add(real)
        real_parent = posixpath.dirname(real)
        if real_parent:
            _makedirs(dest, real_parent)
        target = dest / real
        if target.is_symlink() or (target.exists() and not (member.isdir() and target.is_dir())):
            _remove(target)
            self.memo.clear()
        mode = (member.mode & 0o1777) | 0o400  # no setuid/setgid; the owner (the sandbox user) may read
        if member.isdir():
            if not target.exists():
                os.mkdir(target, 0o700)
            os.chmod(target, mode | 0o700)
        elif member.isreg():
            self._file(tf, member, target, mode)
        elif member.issym():
            os.symlink(member.linkname, target)
        else:
            self._hardlink(member, target)

    def _file(self, tf: tarfile.TarFile, member: tarfile.TarInfo, target: Path, mode: int) -> None:
        src = tf.extractfile(member)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        with os.fdopen(fd, "wb") as out:
            if src is not None:
                shutil.copyfileobj(src, out, 1 << 20)
            os.fchmod(out.fileno(), mode)
            os.utime(out.fileno(), (member.mtime, member.mtime))

    def _hardlink(self, member: tarfile.TarInfo, target: Path) -> None:
        src = self.dest / _inside(self.dest, member.linkname, self.memo)
        try:
            st = src.lstat()
        except OSError:
            return  # a link to nothing: dropped
        if stat.S_ISLNK(st.st_mode):
            os.symlink(os.readlink(src), target)
        elif stat.S_ISREG(st.st_mode):
            os.link(src, target, follow_symlinks=False)


# ---- the verified cache -------------------------------------------------------------------------
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


from lambdaship.local.images import load_image  # noqa: E402,F401  (re-exported: rootfs.load_image)
