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
import os
import posixpath
import shutil
import stat
import tarfile
import zlib
from pathlib import Path
from typing import IO

from lambdaship.errors import LambdashipError

OPAQUE = ".wh..wh..opq"
WHITEOUT = ".wh."
MAX_SYMLINKS = 40
CHUNK = 1 << 20  # decompressed bytes per read from the layer


# ---- path resolution inside the root ---------------------------------------------------------
def resolve_inside(dest: Path | str, rel: str) -> str:
    """Resolve every component of ``rel`` following symlinks as a process chrooted at ``dest``
    would; returns a clean relative path (which may not exist)."""
    return _Resolver(os.fspath(dest)).resolve(rel)


def _components(path: str) -> list[str]:
    """The components of ``path`` in reverse order (popped from the end), without ``""`` and ``.``."""
    parts = [p for p in path.split("/") if p and p != "."]
    parts.reverse()
    return parts


class _Resolver:
    """Resolution inside ``root`` with what one unpack has learned about the tree's shape.

    ``dirs`` holds relative paths known to be real directories all the way down (every prefix is a
    directory, none a symlink): a name whose parent is in ``dirs`` resolves to itself without a
    system call. ``links`` holds known symlinks and their targets. Both are exact as long as every
    change of the tree's shape goes through :meth:`created_link` and :meth:`forget` (the applier's
    only ways to add a symlink or remove an entry); creating files or directories never changes how
    an existing name resolves."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.dirs: set[str] = {""}
        self.links: dict[str, str] = {}

    def path(self, rel: str) -> str:
        return f"{self.root}/{rel}" if rel else self.root

    def resolve(self, rel: str) -> str:
        parts = _components(rel)
        resolved = ""
        hops = 0
        dirs, links = self.dirs, self.links
        while parts:
            part = parts.pop()
            if part == "..":
                resolved = resolved.rpartition("/")[0]
                continue
            candidate = f"{resolved}/{part}" if resolved else part
            if candidate in dirs:
                resolved = candidate
                continue
            target = links.get(candidate)
            if target is None:
                try:
                    st = os.lstat(self.path(candidate))
                except (FileNotFoundError, NotADirectoryError):
                    st = None
                if st is not None:
                    if stat.S_ISLNK(st.st_mode):
                        target = links[candidate] = os.readlink(self.path(candidate))
                    elif stat.S_ISDIR(st.st_mode):
                        dirs.add(candidate)  # its parent is resolved, so it is a real directory
            if target is not None:
                hops += 1
                if hops > MAX_SYMLINKS:
                    raise LambdashipError(f"too many symlinks resolving {rel!r} in the image")
                if target.startswith("/"):
                    resolved = ""
                parts.extend(_components(target))
                continue
            resolved = candidate
        return resolved

    def inside(self, name: str) -> str:
        """The real relative path for member ``name``: parents resolved, the last component kept."""
        name = posixpath.normpath("/" + name).lstrip("/")
        parent, base = posixpath.split(name)
        if not parent:
            return base
        real_parent = parent if parent in self.dirs else self.resolve(parent)
        return f"{real_parent}/{base}" if real_parent else base

    def makedirs(self, rel: str) -> None:
        """Every component of the resolved ``rel`` a real directory (created 0755 if missing)."""
        dirs = self.dirs
        if rel in dirs:
            return
        d = ""
        for part in rel.split("/"):
            d = f"{d}/{part}" if d else part
            if d in dirs:
                continue
            try:
                os.mkdir(self.path(d), 0o755)
            except FileExistsError:
                if not stat.S_ISDIR(os.lstat(self.path(d)).st_mode):
                    raise LambdashipError(f"layer entry below {rel!r}: {part!r} is not a directory") from None
            dirs.add(d)

    def created_link(self, rel: str, target: str) -> None:
        self.links[rel] = target

    def forget(self, rel: str, was_dir: bool) -> None:
        """``rel`` was removed (with everything below it when ``was_dir``)."""
        self.dirs.discard(rel)
        self.links.pop(rel, None)
        if was_dir:
            prefix = rel + "/"
            self.dirs = {d for d in self.dirs if not d.startswith(prefix)}
            self.links = {k: v for k, v in self.links.items() if not k.startswith(prefix)}


def _remove(path: Path | str) -> bool:
    """Remove ``path`` (a directory with everything in it, never following symlinks); returns
    whether it was a directory."""
    try:
        st = os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return False
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(path)  # never follows symlinks
        return True
    os.unlink(path)
    return False


# ---- reading a layer, hashed ------------------------------------------------------------------
class _Hashing:
    """A read-only stream that hashes what passes through."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw, self.hash, self.size = raw, hashlib.sha256(), 0

    def read(self, n: int = -1) -> bytes:
        data = self.raw.read(n)
        self.hash.update(data)
        self.size += len(data)
        return data

    def readinto(self, b: memoryview | bytearray) -> int:
        data = self.read(len(b))
        n = len(data)
        b[:n] = data
        return n

    def readable(self) -> bool:
        return True

    def digest(self) -> str:
        return "sha256:" + self.hash.hexdigest()


class _Tar:
    """The uncompressed tar stream for :class:`tarfile.TarFile` (non-stream mode): ``read`` served
    from big decompressed chunks, ``tell``, and ``seek`` forward only (skipped bytes are read and
    hashed, so the whole stream is always hashed in order)."""

    def __init__(self, src: IO[bytes]) -> None:
        self.src = src
        self.hash = hashlib.sha256()
        self.buf = b""
        self.off = 0  # read position in buf
        self.base = 0  # stream offset of buf[0]

    def read(self, n: int = -1) -> bytes:
        buf, off = self.buf, self.off
        if 0 <= n <= len(buf) - off:
            self.off = off + n
            return buf[off:off + n]
        pieces = [buf[off:]]
        have = len(buf) - off
        self.base += len(buf)
        self.buf, self.off = b"", 0
        while n < 0 or have < n:
            data = self.src.read(CHUNK if n < 0 else max(CHUNK, n - have))
            if not data:
                break
            self.hash.update(data)
            if n >= 0 and have + len(data) > n:
                keep = n - have
                pieces.append(data[:keep])
                self.buf, self.off = data, keep
                have = n
                break
            pieces.append(data)
            self.base += len(data)
            have += len(data)
        return b"".join(pieces)

    def tell(self) -> int:
        return self.base + self.off

    def seek(self, pos: int, whence: int = 0) -> int:
        if whence != 0 or pos < self.tell():
            raise tarfile.ReadError("the layer asks to seek backwards")
        while self.tell() < pos:
            if not self.read(min(pos - self.tell(), CHUNK)):
                break
        return self.tell()

    def drain(self) -> None:
        while self.read(CHUNK):
            pass

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
    return raw  # type: ignore[return-value]


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
        tar_stream = _Tar(_decompress(raw, magic))
        try:
            with tarfile.TarFile(fileobj=tar_stream, mode="r") as tf:  # type: ignore[arg-type]
                applier = _Applier(dest, tar_stream)
                for member in tf:
                    applier.apply(tf, member)
            tar_stream.drain()  # the end-of-archive padding counts; reading to EOF also checks the gzip CRC
            while raw.read(CHUNK):
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


_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


class _Applier:
    def __init__(self, dest: Path, stream: _Tar) -> None:
        self.fs = _Resolver(os.fspath(dest))
        self.stream = stream
        self.seen: set[str] = set()

    def _clear(self, rel: str) -> None:
        """Remove whatever is at ``rel`` (an entry is replaced, never written through)."""
        self.fs.forget(rel, _remove(self.fs.path(rel)))

    def apply(self, tf: tarfile.TarFile, member: tarfile.TarInfo) -> None:
        fs = self.fs
        name = posixpath.normpath("/" + member.name).lstrip("/")
        if not name or name == ".":
            return
        parent, base = posixpath.split(name)
        if base.startswith(WHITEOUT):
            if base == OPAQUE:
                self._opaque(parent)
            else:
                real = fs.inside(posixpath.join(parent, base[len(WHITEOUT):]))
                if real:
                    self._clear(real)
            return
        kind = member.type
        if kind in tarfile.REGULAR_TYPES:
            kind = tarfile.REGTYPE
        elif kind not in (tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE):
            return  # device nodes, FIFOs, anything else: dropped
        real_parent = parent if parent in fs.dirs else fs.resolve(parent)
        real = f"{real_parent}/{base}" if real_parent else base
        self.seen.add(real)
        if real_parent:
            fs.makedirs(real_parent)
        target = fs.path(real)
        mode = (member.mode & 0o1777) | 0o400  # no setuid/setgid; the owner (the sandbox user) may read
        if kind == tarfile.REGTYPE:
            self._file(tf, member, real, target, mode)
        elif kind == tarfile.DIRTYPE:
            try:
                os.mkdir(target, 0o700)
            except FileExistsError:
                if not stat.S_ISDIR(os.lstat(target).st_mode):
                    self._clear(real)
                    os.mkdir(target, 0o700)
            fs.dirs.add(real)
            os.chmod(target, mode | 0o700)
        elif kind == tarfile.SYMTYPE:
            try:
                os.symlink(member.linkname, target)
            except FileExistsError:
                self._clear(real)
                os.symlink(member.linkname, target)
            fs.created_link(real, member.linkname)
        else:
            self._clear(real)
            self._hardlink(member, real, target)

    def _opaque(self, parent: str) -> None:
        real = self.fs.resolve(parent)
        directory = self.fs.path(real)
        try:
            if not stat.S_ISDIR(os.lstat(directory).st_mode):
                return
        except (FileNotFoundError, NotADirectoryError):
            return
        with os.scandir(directory) as it:
            children = [e.name for e in it]
        for child in children:
            rel = f"{real}/{child}" if real else child
            if rel not in self.seen:
                self._clear(rel)

    def _file(self, tf: tarfile.TarFile, member: tarfile.TarInfo, real: str, target: str, mode: int) -> None:
        try:
            fd = os.open(target, _CREATE, 0o600)
        except FileExistsError:
            self._clear(real)
            fd = os.open(target, _CREATE, 0o600)
        try:
            if member.sparse is not None:  # pragma: no cover - GNU sparse files: tarfile fills the holes
                src = tf.extractfile(member)
                assert src is not None
                while data := src.read(CHUNK):
                    _write(fd, data)
            elif member.size:
                stream = self.stream
                if stream.tell() != member.offset_data:
                    stream.seek(member.offset_data)
                left = member.size
                while left:
                    data = stream.read(min(left, CHUNK))
                    if not data:
                        raise tarfile.ReadError("unexpected end of data")
                    _write(fd, data)
                    left -= len(data)
            os.fchmod(fd, mode)
            os.utime(fd, (member.mtime, member.mtime))
        finally:
            os.close(fd)

    def _hardlink(self, member: tarfile.TarInfo, real: str, target: str) -> None:
        fs = self.fs
        src = fs.path(fs.inside(member.linkname))
        try:
            st = os.lstat(src)
        except OSError:
            return  # a link to nothing: dropped
        if stat.S_ISLNK(st.st_mode):
            link = os.readlink(src)
            os.symlink(link, target)
            fs.created_link(real, link)
        elif stat.S_ISREG(st.st_mode):
            os.link(src, target, follow_symlinks=False)


def _write(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
