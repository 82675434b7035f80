"""Dependency layers: which image layer each entry of an installed dependency tree goes into.

A distribution whose files (its bytecode included) add up to more than a threshold, unpacked,
gets a layer of its own: a version bump of another package leaves that layer — its digest, its
blob in the registry, Lambda's cached chunks of it — unchanged. The other distributions, and
files no distribution claims, share one layer. Split layers come first, sorted by name (the
stable ones below the one that changes most), then the shared layer. At most ``max_layers`` are
split off (the largest; the others fold into the shared layer), so the image stays within
Lambda's manifest limit.

Files are attributed through each ``*.dist-info/RECORD``; a ``.pyc`` goes with its source; other
entries with the distribution that owns most of their top-level directory. The split is a pure
function of the tree and the two parameters: the same tree always gives the same layers.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from lambdaship.package.dists import pyc_source, read_dists
from lambdaship.package.requirements import canonical_name

DEFAULT_THRESHOLD_MB = 10.0  # lambdaship.toml: layer_split_mb
MAX_SPLIT_LAYERS = 16
SHARED = "(shared)"  # the name of the shared layer (never a distribution's name)


@dataclass(frozen=True)
class Group:
    """The entries of one dependency layer."""

    name: str  # the distribution's canonical name, or SHARED
    packages: tuple[str, ...]  # "name==version" of the distributions in it, sorted
    paths: tuple[str, ...]  # its entries (files, symlinks, directories), relative to the tree, in tree order
    size: int  # bytes of file content

    @property
    def shared(self) -> bool:
        return self.name == SHARED

    def to_json(self) -> dict[str, object]:
        return {"name": self.name, "packages": list(self.packages), "size": self.size, "entries": len(self.paths)}


def threshold_bytes(mb: float) -> int:
    """The threshold in bytes for ``layer_split_mb`` (MB = 10^6 bytes; 0: no split)."""
    return max(0, int(mb * 1_000_000))


def _walk(tree: Path) -> Iterator[tuple[str, int]]:
    """(relative path, bytes of content) of every entry below ``tree``, each directory's entries
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
            if e.is_dir(follow_symlinks=False):
                subdirs.append((rel + "/", e.path))
            elif e.is_file(follow_symlinks=False):
                with contextlib.suppress(OSError):
                    size = e.stat(follow_symlinks=False).st_size
            yield rel, size
        pending.extend(reversed(subdirs))


def _top_owners(recorded: dict[str, int]) -> dict[str, int]:
    """Top-level name → the distribution owning most of the recorded files below it (ties: the
    first in sorted order)."""
    counts: dict[str, dict[int, int]] = {}
    for path, i in recorded.items():
        per = counts.setdefault(path.split("/", 1)[0], {})
        per[i] = per.get(i, 0) + 1
    return {top: min(per, key=lambda i: (-per[i], i)) for top, per in counts.items()}


def _attribute(tree: Path) -> tuple[list[str], list[tuple[str, int, int | None]]]:
    """The distributions' specs, and every entry as (path, bytes, index of its distribution or None)."""
    dists = read_dists(tree)
    specs = [f"{canonical_name(d.name)}=={d.version}" for d in dists]
    recorded: dict[str, int] = {}
    for i, d in enumerate(dists):
        for p in d.paths:
            recorded.setdefault(p, i)
    top = _top_owners(recorded)
    out = []
    for rel, size in _walk(tree):
        owner = recorded.get(rel)
        if owner is None and (src := pyc_source(rel)):
            owner = recorded.get(src)
        if owner is None:
            owner = top.get(rel.split("/", 1)[0])
        out.append((rel, size, owner))
    return specs, out


def split_tree(tree: Path, threshold: int, max_layers: int = MAX_SPLIT_LAYERS) -> list[Group]:
    """The dependency layers of ``tree``: one per distribution above ``threshold`` bytes (at most
    ``max_layers``, the largest), sorted by name, then the shared layer (when anything is left).
    ``threshold`` or ``max_layers`` 0: one layer with everything. An empty tree: no layer."""
    specs, entries = _attribute(tree)
    sizes = [0] * len(specs)
    for _rel, size, owner in entries:
        if owner is not None:
            sizes[owner] += size
    big: list[int] = []
    if threshold > 0 and max_layers > 0:
        over = [i for i, s in enumerate(sizes) if s > threshold]
        big = sorted(over, key=lambda i: (-sizes[i], specs[i]))[:max_layers]
    own: dict[int, list[str]] = {i: [] for i in big}
    rest: list[str] = []
    rest_size = 0
    for rel, size, owner in entries:
        if owner in own:
            own[owner].append(rel)
        else:
            rest.append(rel)
            rest_size += size
    groups = [Group(specs[i].split("==", 1)[0], (specs[i],), tuple(own[i]), sizes[i])
              for i in sorted(big, key=lambda i: specs[i])]
    if rest:
        shared = tuple(sorted(specs[i] for i in range(len(specs)) if i not in own))
        groups.append(Group(SHARED, shared, tuple(rest), rest_size))
    return groups
