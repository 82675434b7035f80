"""A fresh install checked against its wheels' own RECORDs, so that uv's cache is not trusted blindly.

uv installs a wheel it has seen before from its cache (``~/.cache/uv/archive-v0/…``: the wheel,
unpacked) without hashing it again: a flipped byte there, or a doctored file, would be copied
into the dependency tree, recorded as that tree's digest, and shipped. Every wheel carries a
``*.dist-info/RECORD`` with the SHA-256 of each file it installs (written when the wheel was
built, copied by uv as it is), so after each install:

* every file a RECORD lists must exist with that digest; every file in the tree must be listed
  by a RECORD (uv's ``.lock`` excepted);
* a distribution that fails is installed again with ``--refresh-package <name>`` (uv downloads
  it from the index and replaces its cache entry; pip: ``--no-cache-dir``), into an empty tree,
  with one ``warning:`` line; a distribution that fails again (the index serves it so) is an
  error naming it.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import logging
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

from lambdaship.cacheverify import Known, stat_key
from lambdaship.errors import LambdashipError

log = logging.getLogger("lambdaship")
UNOWNED = "?"  # a file no RECORD lists, in a directory no distribution owns
IGNORED = {".lock"}  # uv's lock file in the target directory (removed by prune.clean)


def _digest(path: Path, algo: str, rel: str = "", seen: Known | None = None) -> str:
    """The file's ``algo`` digest (RECORD's urlsafe base64); a sha256 also goes to ``seen`` with
    the identity of the file it was read from (``cacheverify.tree_records`` then need not read it)."""
    h = hashlib.new(algo)
    with open(path, "rb") as f:
        st = os.fstat(f.fileno())
        while chunk := f.read(1 << 20):
            h.update(chunk)
    raw = h.digest()
    if seen is not None and algo == "sha256":
        seen[rel] = (*stat_key(st), raw)
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _matches(path: Path, hashed: str, rel: str = "", seen: Known | None = None) -> bool:
    """The file exists and, when its RECORD row has ``algo=digest``, has that digest."""
    if not path.is_file() and not path.is_symlink():
        return False
    algo, _, want = hashed.partition("=")
    return not want or (algo in hashlib.algorithms_available and _digest(path, algo, rel, seen) == want)


def _records(tree: Path) -> dict[str, tuple[str, list[tuple[str, str]]]]:
    """dist-info name -> (distribution name, [(relative path, "algo=digest" or "")])."""
    out = {}
    for record in sorted(tree.glob("*.dist-info/RECORD")):
        rows = []
        with open(record, newline="", encoding="utf-8", errors="replace") as f:
            for row in csv.reader(f):
                if row:
                    rows.append((os.path.normpath(row[0]), row[1] if len(row) > 1 else ""))
        out[record.parent.name] = (record.parent.name.removesuffix(".dist-info").rsplit("-", 1)[0], rows)
    return out


def mismatches(tree: Path, seen: Known | None = None) -> set[str]:
    """The distributions in ``tree`` whose files differ from their RECORD (``?``: a file no
    RECORD lists, outside every distribution's directories). ``seen``: gets the sha256 of each
    file read (see :func:`_digest`)."""
    bad: set[str] = set()
    listed: dict[str, str] = {}  # relative path -> distribution
    for dist, rows in _records(tree).values():
        for rel, hashed in rows:
            if rel.startswith(".."):
                continue
            listed[rel] = dist
            if not _matches(tree / rel, hashed, rel.replace(os.sep, "/"), seen):
                bad.add(dist)
    owners = {rel.split(os.sep, 1)[0]: dist for rel, dist in listed.items() if os.sep in rel}
    for dirpath, _, files in os.walk(tree):
        for name in files:
            rel = os.path.relpath(os.path.join(dirpath, name), tree)
            if rel not in listed and rel not in IGNORED:
                bad.add(owners.get(rel.split(os.sep, 1)[0], UNOWNED))
    return bad


def check(tree: Path, reinstall: Callable[[list[str]], subprocess.CompletedProcess[str]], *,
          uv: bool = True, seen: Known | None = None) -> subprocess.CompletedProcess[str] | None:
    """Verify a successful install into ``tree``; when a distribution does not match its RECORD,
    empty the tree and ``reinstall(extra_args)`` bypassing the cache for it. None when the tree
    was right, else the reinstall's result. Raises when it is still wrong after that. ``seen``:
    the digests read, for the tree's own records (see :func:`_digest`)."""
    bad = mismatches(tree, seen)
    if not bad:
        return None
    names = ", ".join(sorted(bad - {UNOWNED}) or ["files no package lists"])
    log.warning("warning: the installer's cache held a corrupt copy of %s; installed again from the index", names)
    shutil.rmtree(tree)
    tree.mkdir()
    if not uv:
        extra = ["--no-cache-dir"]
    elif UNOWNED in bad:
        extra = ["--refresh"]
    else:
        extra = [arg for name in sorted(bad) for arg in ("--refresh-package", name)]
    if seen is not None:
        seen.clear()
    proc = reinstall(extra)
    if proc.returncode == 0 and (still := mismatches(tree, seen)):
        raise LambdashipError(
            f"the installed files of {', '.join(sorted(still))} do not match the package's own RECORD, also when "
            "downloaded again", "check the package index (a mirror serving altered wheels?) and the wheels in "
            "--find-links directories")
    return proc
