"""Which dependency layers of a previously pushed image a build reuses instead of building them.

A pushed image's ``dev.lambdaship.deps-layers`` label lists its dependency layers (name, packages,
digest, diff_id, sizes), the split they were made with and the environment their files depend on
(target Python and platform, installer, bytecode, pruning: ``package.deps.DepsPlan.env``). A
build that has the image's reference (``push``/``deploy``: the repository's newest image) reads
only its manifest and config, then:

- same dependency set (deps hash) and split: every dependency layer is reused, nothing is
  installed or compressed (a code-only change on a fresh runner);
- another set, same environment and threshold (a bump): the set is resolved without installing
  (the installer's dry run); each layer of one large distribution whose exact version is still in
  the set is reused, and so is each shared layer whose distributions are all still in the set at
  the same version and that no other distribution of the set would go into; only the rest are
  installed (``--no-deps``), compiled and compressed. Same files as a full install, so the same
  layers and the same image digest;
- anything else: a full install.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from lambdaship.errors import LambdashipError
from lambdaship.image.base import resolve_base
from lambdaship.image.cache import DepsLayer
from lambdaship.image.model import Held
from lambdaship.image.mutate import LABEL_DEPS_HASH, LABEL_DEPS_LAYERS
from lambdaship.package.layers import bucket_of, parse_shared

if TYPE_CHECKING:
    from lambdaship.config import FunctionConfig
    from lambdaship.package.deps import DepsPlan


@dataclass(frozen=True)
class Previous:
    """The dependency layers of a previously pushed image, as its label describes them."""

    deps_hash: str
    env: str
    split: tuple[int, int]  # (threshold bytes, most split layers)
    layers: tuple[DepsLayer, ...]  # in image order, each a remote layer of that image
    held: Held | None = None


def reuse_enabled() -> bool:
    """``LAMBDASHIP_REUSE=0``: take nothing from a previous image (rebuild, and check every layer)."""
    return os.environ.get("LAMBDASHIP_REUSE", "1").strip().lower() not in ("0", "false", "no", "off")


def previous_layers(ref: str, architecture: str) -> Previous | None:
    """The dependency layers of image ``ref``. Any problem (no such image yet, other registry
    errors, a label that does not match the manifest) means None: the build installs as usual.
    An image without dependency layers (none, or of an earlier version without the label) gives
    no layers, only what it ``held``."""
    try:
        prev = resolve_base(ref, architecture)
    except LambdashipError:
        return None
    labels = (prev.config_json.get("config") or {}).get("Labels") or {}
    source = next((lay.source for lay in prev.layers if lay.source is not None), None)
    held = Held(source, frozenset(lay.digest for lay in prev.layers)) if source is not None else None
    if LABEL_DEPS_LAYERS not in labels:
        return Previous("", "", (0, 0), (), held)
    try:
        info = json.loads(labels[LABEL_DEPS_LAYERS])
        threshold, cap = (int(x) for x in info["split"])
        by_digest = {(lay.digest, lay.diff_id): lay for lay in prev.layers}
        out = []
        for d in info["layers"]:
            lay = by_digest[(d["digest"], d["diff_id"])]
            size = d.get("uncompressed_size")
            lay = replace(lay, uncompressed_size=size if isinstance(size, int) else None)
            out.append(DepsLayer(lay, str(d["name"]), tuple(str(p) for p in d["packages"]), cached=True))
        return Previous(str(labels.get(LABEL_DEPS_HASH, "")), str(info.get("env", "")), (threshold, cap),
                        tuple(out), held)
    except (ValueError, KeyError, TypeError):
        return None


def kept_layers(fn: FunctionConfig, plan: DepsPlan, previous: Previous,
                threshold: int) -> tuple[tuple[DepsLayer, ...], tuple[str, ...]] | None:
    """For a bump: (the previous image's layers to keep, the distributions to install as
    "name==version"). Kept: each layer of one large distribution still in the set at the same
    version, and each shared layer whose distributions all are, when no other distribution of
    the set would go into it (same bucket). None when nothing can be kept (another environment
    or threshold, a set that cannot be resolved without installing)."""
    from lambdaship.package import deps as deps_mod

    if not previous.env or previous.env != plan.env or previous.split[0] != threshold:
        return None
    own = [d for d in previous.layers if parse_shared(d.name) is None and len(d.packages) == 1]
    shared = [(d, parse_shared(d.name)) for d in previous.layers if parse_shared(d.name) is not None]
    resolved = deps_mod.resolve(fn, plan)
    if resolved is None:
        return None
    pruned = set(plan.prune)
    wanted = [s for s in resolved if s.split("==", 1)[0] not in pruned]
    kept = [d for d in own if d.packages[0] in wanted]
    have = {d.packages[0] for d in kept}
    rest = [s for s in wanted if s not in have]
    for d, (k, n) in shared:  # type: ignore[misc]  # parse_shared is not None here
        if d.packages and set(d.packages) == {s for s in rest if bucket_of(s.split("==", 1)[0], n) == k}:
            kept.append(d)
            have.update(d.packages)
    if not kept:
        return None
    return tuple(kept), tuple(s for s in wanted if s not in have)


@dataclass(frozen=True)
class Reuse:
    """What a build takes from a previous image: nothing, every dependency layer (``full``), or
    the layers of some large distributions plus the distributions to install (``only``)."""

    layers: tuple[DepsLayer, ...] = ()
    full: bool = False
    only: tuple[str, ...] | None = None
    split: tuple[int, int] = (0, 0)  # the previous image's split: valid only if the build's is the same
    held: Held | None = None  # what the previous image's repository holds

    def retyped(self, media_type: str) -> tuple[DepsLayer, ...]:
        """The layers under this build's layer media type (Docker ↔ OCI: same blobs)."""
        return tuple(replace(d, layer=replace(d.layer, descriptor=replace(d.layer.descriptor, media_type=media_type)))
                     for d in self.layers)


def plan_reuse(fn: FunctionConfig, plan: DepsPlan, ref: str, threshold: int) -> Reuse:
    """What this build can take from image ``ref`` (see the module's docstring)."""
    previous = previous_layers(ref, fn.architecture)
    if previous is None:
        return Reuse()
    return replace(_reuse(fn, plan, previous, threshold), held=previous.held)


def _reuse(fn: FunctionConfig, plan: DepsPlan, previous: Previous, threshold: int) -> Reuse:
    if plan.empty or not previous.layers:
        return Reuse()
    if previous.deps_hash == plan.hash and previous.split[0] == threshold:
        return Reuse(previous.layers, full=True, split=previous.split)
    bump = kept_layers(fn, plan, previous, threshold)
    if bump is None:
        return Reuse()
    return Reuse(bump[0], only=bump[1], split=previous.split)
