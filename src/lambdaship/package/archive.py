"""Deterministic zip packages for Lambda (``package_type = "zip"``).

The same files always give the same bytes:

- entries sorted by name (bytewise on the UTF-8 name), files only (no directory entries;
  Lambda creates parent directories when it extracts);
- every timestamp is 1980-01-01 00:00:00 (the zip epoch, DOS date 0x0021, time 0);
- "made by" Unix, external attributes ``0o100644`` or ``0o100755`` (executable by anyone);
- raw deflate at zlib level 9 for every entry; no extra fields, no comments, no data
  descriptors, no zip64 (a Lambda zip never needs it: 250 MiB unzipped is the ceiling);
- symlinks are followed (their content is stored).

The dependency part is compressed once per dependency hash and cached
(``<LAMBDASHIP_HOME>/zip/deps-<hash>.zip``); a build copies those compressed entries verbatim
and only compresses the app's own files. The same cached zip is what ``lambdaship size``
measures, so the size report's zipped figures are exactly what a deploy uploads.

Bytes are identical for identical inputs with the same zlib (Python's bundled/system zlib);
a different zlib build may compress differently, which changes the hash but nothing else
(Lambda checks ``CodeSha256`` against the bytes it received, which we compute ourselves).
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import struct
import tempfile
import zlib
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from lambdaship import cacheverify, paths
from lambdaship.errors import LambdashipError
from lambdaship.fsutil import tmp_sibling

if TYPE_CHECKING:
    from lambdaship.config import FunctionConfig

LEVEL = 9
FORMAT_VERSION = "1"  # bump when the bytes written for the same input change
DOS_DATE = (0 << 9) | (1 << 5) | 1  # 1980-01-01
DOS_TIME = 0
MADE_BY = (3 << 8) | 20  # Unix, spec 2.0
NEEDED = 20
LOCAL_HEADER = struct.Struct("<IHHHHHIIIHH")  # 30 bytes
CENTRAL_HEADER = struct.Struct("<IHHHHHHIIIHHHHHII")  # 46 bytes
END_RECORD = struct.Struct("<IHHHHIIH")  # 22 bytes
LOCAL_SIG, CENTRAL_SIG, END_SIG = 0x04034B50, 0x02014B50, 0x06054B50
FLAG_UTF8 = 0x800
READ_SIZE = 1 << 20
MAX_ENTRIES = 0xFFFF - 1
MAX_OFFSET = 0xFFFFFFFF - 1


def entry_overhead(name: str) -> int:
    """Bytes a zip adds for one entry besides its compressed data (local + central header)."""
    n = len(name.encode("utf-8"))
    return LOCAL_HEADER.size + n + CENTRAL_HEADER.size + n


END_OVERHEAD = END_RECORD.size


@dataclass(frozen=True)
class ZipArtifact:
    """A built zip. ``sha256`` is hex; ``code_sha256`` is what Lambda reports (base64)."""

    path: Path
    sha256: str
    size: int
    unzipped_size: int
    entries: int = 0
    deps_hash: str = ""

    @property
    def code_sha256(self) -> str:
        return base64.b64encode(bytes.fromhex(self.sha256)).decode()

    def to_json(self) -> dict:
        return {
            "path": str(self.path), "sha256": self.sha256, "code_sha256": self.code_sha256,
            "size": self.size, "unzipped_size": self.unzipped_size, "entries": self.entries,
            "deps_hash": self.deps_hash,
        }


@dataclass(frozen=True)
class _Raw:
    """An already-compressed entry inside an existing zip of ours."""

    zip_path: Path
    data_offset: int
    crc: int
    compressed_size: int
    size: int
    mode: int


def _mode(st: os.stat_result) -> int:
    return 0o100755 if st.st_mode & 0o111 else 0o100644


def _norm(name: str) -> str:
    name = name.replace(os.sep, "/").strip("/")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if not parts or any(p == ".." for p in parts):
        raise LambdashipError(f"invalid path {name!r} for a zip entry", "paths must stay inside the package")
    return "/".join(parts)


def tree_files(root: Path) -> list[tuple[str, Path]]:
    """Every regular file under ``root`` (symlinks followed), as (arcname, path), sorted."""
    out: list[tuple[str, Path]] = []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        dirnames.sort()
        for name in filenames:
            p = Path(dirpath, name)
            if p.is_file():
                out.append((p.relative_to(root).as_posix(), p))
    out.sort(key=lambda e: e[0].encode("utf-8"))
    return out


@dataclass(frozen=True)
class _Compressed:
    crc: int
    size: int
    compressed_size: int
    chunks: list[bytes]
    mode: int


def _compress(path: Path) -> _Compressed:
    """Raw deflate (zlib level 9) of one file; zlib releases the GIL, so threads run in parallel."""
    mode = _mode(path.stat())
    comp = zlib.compressobj(LEVEL, zlib.DEFLATED, -15)
    crc = size = 0
    chunks: list[bytes] = []
    with path.open("rb") as src:
        while chunk := src.read(READ_SIZE):
            crc = zlib.crc32(chunk, crc)
            size += len(chunk)
            if out := comp.compress(chunk):
                chunks.append(out)
    chunks.append(comp.flush())
    return _Compressed(crc, size, sum(len(c) for c in chunks), chunks, mode)


def _workers() -> int:
    return max(1, min(4, os.cpu_count() or 1))


class _Writer:
    """Writes our zip dialect to a seekable file; see the module docstring."""

    def __init__(self, fh: BinaryIO) -> None:
        self.fh = fh
        self.central: list[bytes] = []
        self.unzipped = 0

    def _header(self, name: bytes, crc: int, csize: int, size: int) -> bytes:
        flags = 0 if name.isascii() else FLAG_UTF8
        return LOCAL_HEADER.pack(
            LOCAL_SIG, NEEDED, flags, zlib.DEFLATED, DOS_TIME, DOS_DATE, crc, csize, size, len(name), 0
        ) + name

    def _record(self, name: bytes, offset: int, crc: int, csize: int, size: int, mode: int) -> None:
        if offset > MAX_OFFSET or csize > MAX_OFFSET or size > MAX_OFFSET:
            raise LambdashipError("the zip package would exceed 4 GiB", "use package_type = \"image\"")
        flags = 0 if name.isascii() else FLAG_UTF8
        self.central.append(CENTRAL_HEADER.pack(
            CENTRAL_SIG, MADE_BY, NEEDED, flags, zlib.DEFLATED, DOS_TIME, DOS_DATE, crc, csize, size,
            len(name), 0, 0, 0, 0, (mode & 0xFFFF) << 16, offset,
        ) + name)
        self.unzipped += size

    def add_compressed(self, arcname: str, c: _Compressed) -> None:
        name = arcname.encode("utf-8")
        offset = self.fh.tell()
        self.fh.write(self._header(name, c.crc, c.compressed_size, c.size))
        for chunk in c.chunks:
            self.fh.write(chunk)
        self._record(name, offset, c.crc, c.compressed_size, c.size, c.mode)

    def add_raw(self, arcname: str, raw: _Raw, src: BinaryIO) -> None:
        name = arcname.encode("utf-8")
        offset = self.fh.tell()
        self.fh.write(self._header(name, raw.crc, raw.compressed_size, raw.size))
        src.seek(raw.data_offset)
        left = raw.compressed_size
        while left:
            chunk = src.read(min(READ_SIZE, left))
            if not chunk:
                raise LambdashipError(f"{raw.zip_path} is truncated", "delete it; it is rebuilt on the next run")
            self.fh.write(chunk)
            left -= len(chunk)
        self._record(name, offset, raw.crc, raw.compressed_size, raw.size, raw.mode)

    def finish(self) -> None:
        if len(self.central) > MAX_ENTRIES:
            raise LambdashipError(
                f"the zip package would have {len(self.central)} files (a zip without zip64 holds 65,534)",
                "use package_type = \"image\"",
            )
        start = self.fh.tell()
        for rec in self.central:
            self.fh.write(rec)
        cd_size = self.fh.tell() - start
        n = len(self.central)
        self.fh.write(END_RECORD.pack(END_SIG, 0, 0, n, n, cd_size, start, 0))


def read_entries(zip_path: Path) -> dict[str, _Raw]:
    """The entries of a zip written by this module (central directory + local headers)."""
    import zipfile

    out: dict[str, _Raw] = {}
    with zipfile.ZipFile(zip_path) as zf, zip_path.open("rb") as fh:
        for info in zf.infolist():
            fh.seek(info.header_offset)
            head = fh.read(LOCAL_HEADER.size)
            fields = LOCAL_HEADER.unpack(head)
            data_offset = info.header_offset + LOCAL_HEADER.size + fields[9] + fields[10]
            out[info.filename] = _Raw(
                zip_path, data_offset, info.CRC, info.compress_size, info.file_size, info.external_attr >> 16
            )
    return out


def _finish_file(tmp: Path, dest: Path, entries: int, unzipped: int, deps_hash: str = "") -> ZipArtifact:
    h = hashlib.sha256()
    with tmp.open("rb") as fh:
        while chunk := fh.read(READ_SIZE):
            h.update(chunk)
    dest.parent.mkdir(parents=True, exist_ok=True)
    os.replace(tmp, dest)
    return ZipArtifact(dest, h.hexdigest(), dest.stat().st_size, unzipped, entries, deps_hash)


def write_zip(out: Path, files: Iterable[tuple[str, Path]], raw_from: Path | None = None) -> ZipArtifact:
    """Write a deterministic zip of ``files`` (arcname, path) to ``out``.

    ``raw_from``: a zip written by this module whose entries are copied without recompressing;
    a file in ``files`` with the same name replaces that entry.
    """
    chosen: dict[str, Path | _Raw] = {}
    if raw_from is not None:
        chosen.update(read_entries(raw_from))
    for arcname, path in files:
        chosen[_norm(arcname)] = path
    names = sorted(chosen, key=lambda n: n.encode("utf-8"))
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=".zip-", dir=out.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "w+b") as fh:
            src = raw_from.open("rb") if raw_from is not None else None
            fresh = [n for n in names if not isinstance(chosen[n], _Raw)]
            window = 2 * _workers()  # files compressed ahead of the writer (bounds memory)
            pool = ThreadPoolExecutor(_workers(), thread_name_prefix="zip")
            futures: dict[str, Future[_Compressed]] = {}
            submitted = done = 0
            try:
                writer = _Writer(fh)
                for name in names:
                    item = chosen[name]
                    if isinstance(item, _Raw):
                        assert src is not None
                        writer.add_raw(name, item, src)
                        continue
                    while submitted < len(fresh) and submitted < done + window:
                        path = chosen[fresh[submitted]]
                        assert isinstance(path, Path)
                        futures[fresh[submitted]] = pool.submit(_compress, path)
                        submitted += 1
                    writer.add_compressed(name, futures.pop(name).result())
                    done += 1
                writer.finish()
            finally:
                for f in futures.values():
                    f.cancel()
                pool.shutdown(wait=True)
                if src is not None:
                    src.close()
        return _finish_file(tmp, out, len(names), writer.unzipped)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def cache_dir() -> Path:
    return paths.cache("zip")


def deps_zip(deps_dir: Path, deps_hash: str) -> ZipArtifact:
    """The installed dependencies as a deterministic zip, cached by dependency hash."""
    dest = cache_dir() / f"deps-{FORMAT_VERSION}-{deps_hash}.zip"
    sidecar = dest.with_name(dest.name + ".sha256")  # the zip's digest, written with it
    if dest.is_file():
        h = hashlib.sha256()
        with dest.open("rb") as fh:
            while chunk := fh.read(READ_SIZE):
                h.update(chunk)
        try:
            recorded = sidecar.read_text().strip()
        except OSError:
            recorded = ""
        if recorded == h.hexdigest():
            entries = read_entries(dest)
            return ZipArtifact(dest, h.hexdigest(), dest.stat().st_size, sum(e.size for e in entries.values()),
                               len(entries), deps_hash)
        cacheverify.discard(dest, "dependency zip", quiet=not sidecar.exists())
    art = write_zip(dest, tree_files(deps_dir))
    tmp = tmp_sibling(sidecar)
    tmp.write_text(art.sha256 + "\n")
    os.replace(tmp, sidecar)
    return ZipArtifact(art.path, art.sha256, art.size, art.unzipped_size, art.entries, deps_hash)


def build_zip(fn: FunctionConfig, *, out: Path | None = None) -> ZipArtifact:
    """Dependencies (installed for Lambda, via the shared deps cache) + the app's files, as one zip.

    The app's files win over a dependency file with the same path (as the code layer does in an
    image). Without ``out`` the zip is stored by content: ``<LAMBDASHIP_HOME>/zip/<sha256>.zip``.
    """
    from lambdaship import project
    from lambdaship.package import deps

    installed = deps.install(fn, target="lambda")
    base = deps_zip(Path(installed.path), installed.hash)
    app = project.app_files(fn)
    project.warn_access_keys(app)
    tmp_out = cache_dir() / "tmp" / f"{fn.function_name}.zip"
    art = write_zip(tmp_out, app, raw_from=base.path)
    dest = out if out is not None else cache_dir() / f"{art.sha256}.zip"
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(art.path, dest)
    return ZipArtifact(dest.resolve(), art.sha256, art.size, art.unzipped_size, art.entries, installed.hash)
