"""Dependency layers: which image layer each entry of an installed dependency tree goes into.

A distribution whose files (its bytecode included) add up to more than a threshold, unpacked,
gets a layer of its own: a version bump of another package leaves that layer — its digest, its
blob in the registry, Lambda's cached chunks of it — unchanged. The other distributions share a
few layers (``SHARED_BUCKETS``), each distribution's by a hash of its name: a bump of one small
package rebuilds and re-pushes one of them, not all the small packages. Files no distribution
claims go with the bucket of their top-level name (a directory no distribution claims only when
nothing below it is in a layer: every layer has its files' parent directories anyway). Split
layers come first, sorted by name (the stable ones below the one that changes most), then the
shared layers in bucket order. At most ``max_layers`` are split off (the largest; the others fold
into the shared layers), and the split and shared layers together are at most ``max_layers + 1``,
so the image stays within Lambda's manifest limit.

Files are attributed through each ``*.dist-info/RECORD``; a ``.pyc`` goes with its source; other
entries with the distribution that owns most of their top-level directory. The split is a pure
function of the tree and the two parameters: the same tree always gives the same layers.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from lambdaship.package.dists import pyc_source, read_dists
from lambdaship.package.requirements import canonical_name

DEFAULT_THRESHOLD_MB = 10.0  # lambdaship.toml: layer_split_mb
MAX_SPLIT_LAYERS = 16
SHARED_BUCKETS = 4  # shared layers of the small distributions
SHARED = "(shared)"  # the name of the one shared layer (never a distribution's name)
_BUCKET_RE = re.compile(r"^\(shared (\d+)/(\d+)\)$")


def bucket_of(name: str, buckets: int) -> int:
    """The shared layer (0-based) a small distribution (or an unclaimed top-level name) goes
    into: a pure function of the canonical name and the number of shared layers."""
    digest = hashlib.sha256(canonical_name(name).encode()).digest()
    return int.from_bytes(digest[:8], "big") % buckets if buckets > 1 else 0


def shared_name(k: int, buckets: int) -> str:
    """The name of shared layer ``k`` of ``buckets`` (one shared layer: ``SHARED``)."""
    return SHARED if buckets <= 1 else f"({SHARED[1:-1]} {k + 1}/{buckets})"


def parse_shared(name: str) -> tuple[int, int] | None:
    """(bucket, buckets) of a shared layer's name; None for a distribution's layer."""
    if name == SHARED:
        return 0, 1
    m = _BUCKET_RE.match(name)
    return (int(m.group(1)) - 1, int(m.group(2))) if m else None


def shared_count(max_layers: int, split: int, buckets: int = SHARED_BUCKETS) -> int:
    """How many shared layers go with ``split`` split-off layers when at most ``max_layers`` may be
    split off (the split ones have the first claim on the room)."""
    return max(1, min(buckets, max_layers + 1 - split))


@dataclass(frozen=True)
class Group:
    """The entries of one dependency layer."""

    name: str  # the distribution's canonical name, or SHARED
    packages: tuple[str, ...]  # "name==version" of the distributions in it, sorted
    paths: tuple[str, ...]  # its entries (files, symlinks, directories), relative to the tree, in tree order
    size: int  # bytes of file content

    @property
    def shared(self) -> bool:
        return parse_shared(self.name) is not None

    def to_json(self) -> dict[str, object]:
        return {"name": self.name, "packages": list(self.packages), "size": self.size, "entries": len(self.paths)}


def threshold_bytes(mb: float) -> int:
    """The threshold in bytes for ``layer_split_mb`` (MB = 10^6 bytes; 0: no split)."""
    return max(0, int(mb * 1_000_000))


def _walk(tree: Path) -> Iterator[tuple[str, int, bool]]:
    """(relative path, bytes of content, is a directory) of every entry below ``tree``, each directory's entries
    sorted, before those of its subdirectories (``os.walk``'s order; symlinks are not followed)."""
    pending = [("", str(tree))]
    while pending:
        prefix, path = pending.pop()
        try:
            with os.scandir(path) as it:
                children = sorted(it, key=lambda e: e.name)
        except OSError:  # gone or unreadable meanwhile: the layer writer reports it
            continue
        subdirs = []
        for e in children:
            rel = prefix + e.name
            size = 0
            is_dir = e.is_dir(follow_symlinks=False)
            if is_dir:
                subdirs.append((rel + "/", e.path))
            elif e.is_file(follow_symlinks=False):
                with contextlib.suppress(OSError):
                    size = e.stat(follow_symlinks=False).st_size
            yield rel, size, is_dir
        pending.extend(reversed(subdirs))


def _top_owners(recorded: dict[str, int]) -> dict[str, int]:
    """Top-level name → the distribution owning most of the recorded files below it (ties: the
    first in sorted order)."""
    counts: dict[str, dict[int, int]] = {}
    for path, i in recorded.items():
        per = counts.setdefault(path.split("/", 1)[0], {})
        per[i] = per.get(i, 0) + 1
    return {top: min(per, key=lambda i: (-per[i], i)) for top, per in counts.items()}


def _attribute(tree: Path) -> tuple[list[str], list[tuple[str, int, int | None]], set[str]]:
    """The distributions' specs, every entry as (path, bytes, index of its distribution or None),
    and the paths of the directories among them."""
    dists = read_dists(tree)
    specs = [f"{canonical_name(d.name)}=={d.version}" for d in dists]
    recorded: dict[str, int] = {}
    for i, d in enumerate(dists):
        for p in d.paths:
            recorded.setdefault(p, i)
    top = _top_owners(recorded)
    out = []
    dirs: set[str] = set()
    for rel, size, is_dir in _walk(tree):
        if is_dir:
            dirs.add(rel)
        owner = recorded.get(rel)
        if owner is None and (src := pyc_source(rel)):
            owner = recorded.get(src)
        if owner is None:
            owner = top.get(rel.split("/", 1)[0])
        out.append((rel, size, owner))
    return specs, out, dirs


class SplitOverflow(ValueError):
    """More large distributions than the room ``reserved`` leaves (``split_tree(strict=True)``)."""


def split_tree(tree: Path, threshold: int, max_layers: int = MAX_SPLIT_LAYERS, *, reserved: int = 0,
               buckets: int = SHARED_BUCKETS, strict: bool = False) -> list[Group]:
    """The dependency layers of ``tree``: one per distribution above ``threshold`` bytes (at most
    ``max_layers - reserved``, the largest), sorted by name, then the shared layers (those with
    anything in them), in bucket order. ``reserved``: split layers taken from elsewhere (a
    previous image) that count against ``max_layers``; with ``strict``, a large distribution that
    would fold into a shared layer for lack of room raises :class:`SplitOverflow` instead (which
    ones get a layer is then the whole set's call). ``threshold`` or ``max_layers`` 0: one layer
    with everything. An empty tree: no layer."""
    specs, entries, dirs = _attribute(tree)
    sizes = [0] * len(specs)
    for _rel, size, owner in entries:
        if owner is not None:
            sizes[owner] += size
    big: list[int] = []
    room = max(0, max_layers - reserved)
    if threshold > 0 and room > 0:
        over = [i for i, s in enumerate(sizes) if s > threshold]
        big = sorted(over, key=lambda i: (-sizes[i], specs[i]))[:room]
        if strict and len(over) > room:
            raise SplitOverflow(f"{len(over)} large distributions, room for {room}")
    n = shared_count(max_layers, reserved + len(big), buckets) if threshold > 0 and max_layers > 0 else 1
    own: dict[int, list[str]] = {i: [] for i in big}
    rest: list[list[str]] = [[] for _ in range(n)]
    rest_size = [0] * n
    bucket = [bucket_of(spec.split("==", 1)[0], n) for spec in specs]  # each distribution's, once
    rest_specs: list[set[str]] = [set() for _ in range(n)]
    for i, spec in enumerate(specs):
        if i not in own:
            rest_specs[bucket[i]].add(spec)
    placed: set[str] = set()  # directories with something of a distribution below them
    for rel, _size, owner in entries:
        if owner is not None:
            parts = rel.split("/")
            placed.update("/".join(parts[:i]) for i in range(1, len(parts)))
    for rel, size, owner in entries:
        if owner in own:
            own[owner].append(rel)
            continue
        if owner is None and rel in dirs and rel in placed:
            continue  # implied: the layers of what is below it have it
        k = bucket[owner] if owner is not None else bucket_of(rel.split("/", 1)[0], n)
        rest[k].append(rel)
        rest_size[k] += size
    groups = [Group(specs[i].split("==", 1)[0], (specs[i],), tuple(own[i]), sizes[i])
              for i in sorted(big, key=lambda i: specs[i])]
    groups += [Group(shared_name(k, n), tuple(sorted(rest_specs[k])), tuple(rest[k]), rest_size[k])
               for k in range(n) if rest[k]]
    return groups
