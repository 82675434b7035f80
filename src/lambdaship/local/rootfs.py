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

Every layer is hashed while it is applied (``digest`` / ``diff_id`` checked by
:func:`apply_layer`); the verified cache around it is :mod:`lambdaship.local.rootcache`.
"""

from __future__ import annotations

import hashlib
import io
import os
import posixpath
import shutil
import stat
import tarfile
import zlib
from pathlib import Path
from typing import IO, Any

from lambdaship.errors import LambdashipError

OPAQUE = ".wh..wh..opq"
WHITEOUT = ".wh."
MAX_SYMLINKS = 40


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
