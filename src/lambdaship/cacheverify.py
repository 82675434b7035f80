"""Build caches are verified when reused: a corrupt entry is discarded and rebuilt, never shipped.

Every build-side cache entry is content-addressed (its name or its index records the sha256 of
what it holds) and checked against that digest before it is used:

- ``<home>/blobs/sha256/<hex>`` (layer and base blobs): sha256 of the file equals its name.
- ``<home>/layers/<key>.json`` (deps layer index: the digest of the layer's entries → digest, diff_id,
  size): the blob's size and sha256, and the sha256 of its gunzipped content equals the diff_id.
- ``<home>/deps/<hash>/tree`` (installed deps): :func:`tree_digest` equals ``info.json``'s.
- ``<home>/pyc/<xx>/<key>.<sha256>.pyc`` (app bytecode by source, path, version): sha256 of the
  file equals the digest in its name.
- ``<home>/zip/deps-…-<hash>.zip`` (deps zip): sha256 equals its ``.sha256`` sidecar.

What this does not cover: someone who can rewrite an entry *and* its index consistently (the
cache lives in the user's home; such a writer can change the user's code as well).
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import os
import shutil
import stat
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path

READ_SIZE = 1024 * 1024


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file's content."""
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def blob_ok(path: Path, digest: str, size: int | None = None) -> bool:
    """Is ``path`` a regular file of ``size`` bytes whose sha256 is ``digest`` ("sha256:<hex>" or hex)?"""
    want = digest.split(":", 1)[-1]
    try:
        st = path.lstat()
        if not stat.S_ISREG(st.st_mode) or (size is not None and st.st_size != size):
            return False
        return file_sha256(path) == want
    except OSError:
        return False


def gzip_diff_id_ok(path: Path, diff_id: str) -> bool:
    """Does the gzip file ``path`` decompress to content whose sha256 is ``diff_id``?"""
    h = hashlib.sha256()
    try:
        opener = _gzip_open()
        with opener(path) as fh:
            while chunk := fh.read(READ_SIZE):
                h.update(chunk)
    except (OSError, EOFError, ValueError):
        return False
    return "sha256:" + h.hexdigest() == diff_id


def _gzip_open():  # isal's igzip when present (3-4x faster), else the standard library
    try:
        from isal import igzip

        return igzip.open
    except ImportError:  # pragma: no cover - isal is a dependency
        return gzip.open


def tree_digest(root: Path) -> str:
    """One sha256 over a directory tree: every entry's relative path, kind, executable bit and
    content (a symlink's target), in sorted order. Times and owners are not part of it."""
    return records_digest(record for _rel, record in tree_records(root))


def records_digest(records: Iterable[bytes]) -> str:
    """The sha256 (hex) of entry records, in the order given (:func:`tree_digest` of the records of
    :func:`tree_records`; a part of a tree, e.g. one layer's files, is hashed the same way)."""
    h = hashlib.sha256()
    for record in records:
        h.update(record)
    return h.hexdigest()


# Content digests a caller has just computed (the RECORD check after an install): relative path
# -> (st_dev, st_ino, st_size, st_mtime_ns, raw sha256) of the file as it was read.
Known = dict[str, tuple[int, int, int, int, bytes]]


def tree_records(root: Path, known: Known | None = None) -> Iterator[tuple[str, bytes]]:
    """``(relative path, record)`` for every entry below ``root``, in :func:`tree_digest`'s order;
    the record holds the path, the kind, the executable bit and the content's sha256. A file in
    ``known`` that is still the same file (device, inode, size and mtime) is not read again."""
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        rel_dir = os.path.relpath(dirpath, root)
        for name in sorted(dirnames + filenames):
            rel = name if rel_dir == "." else f"{rel_dir}/{name}"
            yield rel, entry_record(Path(dirpath, name), rel, known)


def stat_key(st: os.stat_result) -> tuple[int, int, int, int]:
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns


def entry_record(full: Path, rel: str, known: Known | None = None) -> bytes:
    """One entry's record (see :func:`tree_records`)."""
    st = os.lstat(full)
    if stat.S_ISLNK(st.st_mode):
        return b"L\0" + rel.encode() + b"\0" + os.readlink(full).encode() + b"\0"
    if stat.S_ISDIR(st.st_mode):
        return b"D\0" + rel.encode() + b"\0"
    if stat.S_ISREG(st.st_mode):
        x = b"x" if st.st_mode & 0o111 else b"-"
        seen = known.get(rel) if known else None
        digest = seen[4] if seen is not None and seen[:4] == stat_key(st) else bytes.fromhex(file_sha256(full))
        return b"F\0" + rel.encode() + b"\0" + x + digest
    return b"?\0" + rel.encode() + b"\0"


def discard(path: Path, what: str, *, quiet: bool = False) -> None:
    """Remove a corrupt cache entry (file or directory) and say so on one line (unless ``quiet``)."""
    if not quiet:
        sys.stderr.write(f"warning: cached {what} failed verification ({path.name}): discarded, rebuilding\n")
        sys.stderr.flush()
    if path.is_dir() and not path.is_symlink():
        # Move it aside first, so no reader sees a half-deleted entry under the real name.
        aside = path.with_name(f".corrupt-{path.name}-{os.getpid()}")
        with contextlib.suppress(OSError):
            os.rename(path, aside)
            path = aside
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):
            path.unlink()
