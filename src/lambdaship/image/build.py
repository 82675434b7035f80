"""Base image + dependency layers + app layer → a new image (a value), without a daemon.

``resolve_base`` reads only the base's manifest (choosing the target architecture's entry
of an index) and config; base layers stay remote (``Layer.source``). ``build_image`` checks the
handler and the project's symlinks, installs the dependencies for the target, writes deterministic
layers under ``/var/task`` — the dependency layers (one per large distribution, sorted by name, then
one shared by the rest: ``package.layers``), then the app — derives the config and a manifest in the
base's format, checks Lambda's limits and returns the ``Image``. Only ``--out``/``--tar`` need the
base's blobs: they are fetched once into a content-addressed, verified cache under ``<home>/blobs``.

The stages live beside this module: ``base`` (resolve the base, fetch blobs), ``cache`` (the deps
layer cache, keyed by each layer's content, and reuse of a previous image's deps layers),
``bytecode`` (the app's .pyc), ``mutate`` (config, manifest, conversion, limits), ``docker_archive``
(``--tar``), ``events`` (progress as values).

Same inputs → same bytes → same manifest digest: layer entries, times, owners and modes are
normalised (``lambdaship.image.layer``), the config's ``created`` and history come from
``SOURCE_DATE_EPOCH`` (else a constant), JSON is written with sorted keys.
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lambdaship.config import FunctionConfig
from lambdaship.errors import LambdashipError
from lambdaship.image import layer as layer_mod
from lambdaship.image.base import blob_cache, fetch_base_blobs, resolve_base
from lambdaship.image.bytecode import app_bytecode
from lambdaship.image.cache import DepsLayer, deps_label, group_layer
from lambdaship.image.docker_archive import write_docker_archive
from lambdaship.image.events import BuildEvent, BuildSink, adapter, sink_for, stage
from lambdaship.image.model import (
    DOCKER_MANIFEST,
    LAYER_TYPES,
    MAX_MANIFEST_BYTES,
    OCI_MANIFEST,
    Descriptor,
    Held,
    Image,
    Layer,
    canonical_json,
    write_layout,
)
from lambdaship.image.mutate import (
    LABEL_DEPS_LAYERS,
    TASK_ROOT,
    check_limits,
    convert,
    derive_config,
    make_manifest,
    tar_estimate,
)
from lambdaship.image.result import BuildResult
from lambdaship.image.reuse import Reuse, plan_reuse, reuse_enabled
from lambdaship.package.layers import (
    MAX_SPLIT_LAYERS,
    SHARED,
    Group,
    SplitOverflow,
    parse_shared,
    split_tree,
    threshold_bytes,
)

if TYPE_CHECKING:
    from lambdaship.package.deps import DepsPlan, DepsResult

MAX_LAYERS = 127  # layers of one image in Docker's (and overlayfs-based runtimes') storage


@dataclass(frozen=True)
class _App:
    """The app's side of a build, all local: its files, their layer entries and content bytes."""

    files: list[tuple[str, Path]]
    entries: list[layer_mod.Entry]
    content: int


@dataclass
class _Inputs:
    """The base image and the dependency set: installed and split into layer groups, or a previous
    image's dependency layers to reuse."""

    base: Image
    plan: DepsPlan
    deps: DepsResult | None
    reused: tuple[DepsLayer, ...] | None  # every dependency layer, from a previous image
    split: tuple[int, int]  # (threshold bytes, most split layers)
    groups: list[Group] = field(default_factory=list)  # the installed tree's layers, to write
    kept: tuple[DepsLayer, ...] = ()  # a bump: the unchanged layers of a previous image
    held: Held | None = None  # what the previous image's repository holds (its layers)

    @property
    def layer_type(self) -> str:
        return LAYER_TYPES[self.base.media_type]

    def deps_estimate(self) -> tuple[int, int]:
        """(uncompressed bytes, layers) of the dependency layers: the reused layers' sizes, the
        groups' tar estimate."""
        taken = [*(self.reused or ()), *self.kept]
        size = sum(d.layer.uncompressed_size or d.layer.size for d in taken)
        if self.groups:
            entries = sum(len(g.paths) for g in self.groups) + 2 * len(self.groups)
            size += tar_estimate(sum(g.size for g in self.groups), entries)
        return size, len(taken) + len(self.groups)


def _app(fn: FunctionConfig, skip: list[Path]) -> _App:
    """1. Everything that can be checked locally, before any network or disk work."""
    from lambdaship.project import app_files, check_handler, warn_access_keys

    files = app_files(fn, extra_excludes=skip)
    check_handler(fn, files)
    warn_access_keys(files)
    entries = layer_mod.entries_from_files(files, TASK_ROOT, root=fn.source)
    content = sum(p.lstat().st_size for _rel, p in files if p.is_file() and not p.is_symlink())
    return _App(files, entries, content)


def split_cap(base: Image) -> int:
    """How many dependency layers may be split off: at most ``MAX_SPLIT_LAYERS``, and as many as
    keep the image within Lambda's manifest size (and 127 layers) with the shared and app layers."""
    fake = Descriptor(LAYER_TYPES.get(base.media_type, ""), "sha256:" + "0" * 64, 10**12)
    per_layer = len(canonical_json(fake.to_json())) + 1
    two_more = len(make_manifest(base.media_type, b"x" * (len(base.config) + 8192),
                                 [*base.layers, *[Layer(fake, "")] * 2]))
    by_bytes = (MAX_MANIFEST_BYTES - two_more) // per_layer
    return max(0, min(MAX_SPLIT_LAYERS, by_bytes, MAX_LAYERS - len(base.layers) - 2))


def _base(fn: FunctionConfig, emit: BuildSink, t0: float) -> Image:
    """The ``base`` stage (its start was announced by the caller, so it is the first row)."""
    base = resolve_base(fn.image_base, fn.architecture)
    emit(BuildEvent("base", fn.image_base, sum(lay.size for lay in base.layers), time.monotonic() - t0))
    return base


def _deps_events(emit: BuildSink, inputs: _Inputs, reused_from: str | None, seconds: float) -> None:
    """The ``deps`` stage when nothing was installed: the local cache, or a previous image's layers."""
    if inputs.reused is not None:
        emit(BuildEvent("deps", f"reused from {reused_from}",
                        sum(d.layer.uncompressed_size or d.layer.size for d in inputs.reused), seconds,
                        count=len({p for d in inputs.reused for p in d.packages})))
    elif inputs.deps is not None and inputs.deps.cached and inputs.deps.requirements:
        emit(BuildEvent("deps", "from the local cache", max(0, inputs.deps.content_bytes), seconds,
                        count=len(inputs.deps.requirements)))


def _base_and_deps(fn: FunctionConfig, reuse_deps_from: str | Callable[[], str | None] | None,
                   emit: BuildSink) -> _Inputs:
    """2. Base (network) and dependencies (a previous image's layers, cache or installer) at the
    same time; then the dependency tree split into layer groups."""
    from lambdaship.package import deps as deps_mod
    from lambdaship.package import installer

    plan = deps_mod.plan(fn)
    threshold = threshold_bytes(fn.layer_split_mb)
    reuse = Reuse()
    deps = None
    t0 = time.monotonic()
    with ThreadPoolExecutor(max_workers=2) as pool:
        emit(BuildEvent("base", fn.image_base, phase="start"))
        base_f = pool.submit(contextvars.copy_context().run, _base, fn, emit, t0)  # a fleet's shared_bases
        if callable(reuse_deps_from):
            reuse_deps_from = reuse_deps_from()
        if reuse_deps_from and reuse_enabled():
            reuse = plan_reuse(fn, plan, reuse_deps_from, threshold)
        if not reuse.full:
            with installer.abort_when(lambda: base_f.exception() if base_f.done() else None):
                deps = deps_mod.install(fn, progress=adapter(emit), only=reuse.only)
        took = time.monotonic() - t0
        base = base_f.result()
    inputs = _settle(fn, _Inputs(base, plan, deps, None, (threshold, split_cap(base)), held=reuse.held), reuse, emit)
    _deps_events(emit, inputs, reuse_deps_from if isinstance(reuse_deps_from, str) else None, took)
    return inputs


def _settle(fn: FunctionConfig, inputs: _Inputs, reuse: Reuse, emit: BuildSink) -> _Inputs:
    """The previous image's layers checked against this build's split (its cap depends on the
    base): taken, or a full install after all; the installed tree split into layer groups."""
    from lambdaship.package import deps as deps_mod

    same = reuse.split == inputs.split
    if same and reuse.full:
        inputs.reused = reuse.retyped(inputs.layer_type)
        return inputs
    if same and reuse.layers:
        inputs.kept = reuse.retyped(inputs.layer_type)
    elif inputs.deps is None or reuse.layers:  # made with another cap (another base): install all
        inputs.deps = deps_mod.install(fn, progress=adapter(emit))
    tree = inputs.deps.path if inputs.deps is not None else None
    if tree is None:
        raise LambdashipError("internal: no dependency set and no reusable layer")
    groups = _partial_split(tree, inputs) if inputs.kept else None
    if groups is None:
        # the rest does not fit beside the kept layers (more large distributions than split
        # layers, a package in a kept shared layer's bucket): the whole set's call after all
        if inputs.kept:
            inputs.kept = ()
            inputs.deps = deps_mod.install(fn, progress=adapter(emit))
        groups = split_tree(inputs.deps.path, inputs.split[0], inputs.split[1])
    inputs.groups = groups
    return inputs


def _partial_split(tree: Path, inputs: _Inputs) -> list[Group] | None:
    """The layers of a bump's partial install beside the kept layers; None when they would not
    be the layers a full install gives."""
    threshold, cap = inputs.split
    reserved = sum(parse_shared(d.name) is None for d in inputs.kept)
    try:
        groups = split_tree(tree, threshold, cap, reserved=reserved, strict=True)
    except SplitOverflow:
        return None
    names = [d.name for d in inputs.kept] + [g.name for g in groups]
    counts = {shared[1] for n in names if (shared := parse_shared(n)) is not None}
    if len(set(names)) != len(names) or len(counts) > 1:
        return None
    return groups


def _check_size(fn: FunctionConfig, inputs: _Inputs, app: _App, pyc: list[layer_mod.Entry]) -> None:
    """Lambda's limits against the estimated layers."""
    deps_bytes, deps_layers = inputs.deps_estimate()
    app_extra = sum(len(e.data or b"") for e in pyc)
    extra = tar_estimate(app.content + app_extra, len(app.entries) + len(pyc) + 8) + deps_bytes
    check_limits(inputs.base, extra, 1 + deps_layers, len(inputs.base.config) + 1024, fn.image_base)


def _compressed(emit: BuildSink, name: str, make: Callable[..., Any], *args: Any, **kw: Any) -> Any:
    """``make(*args, **kw)`` (a ``Layer`` or a ``DepsLayer``) as the ``compress`` stage of layer ``name``."""
    with stage(emit, "compress", item=name) as done:
        made = make(*args, **kw)
        lay = getattr(made, "layer", made)
        done.bytes, done.bytes_in = lay.size, lay.uncompressed_size or 0
        if getattr(made, "cached", False):
            done.detail = "from the layer cache"
    return made


def _write_layers(inputs: _Inputs, app: _App, pyc: list[layer_mod.Entry],
                  mtime: int, emit: BuildSink) -> tuple[tuple[DepsLayer, ...], Layer]:
    """3. Layers: the dependency layers (each cached by its content) and the app layer, two at a time.
    Returns (dependency layers in image order, app layer)."""
    with ThreadPoolExecutor(max_workers=2) as pool:
        app_f = pool.submit(_compressed, emit, "app", layer_mod.write_layer, [*app.entries, *pyc],
                            blob_cache() / "sha256", media_type=inputs.layer_type, mtime=mtime)
        deps_fs = []
        if inputs.reused is None and inputs.deps is not None:
            deps_fs = [pool.submit(_compressed, emit, "deps" if g.name == SHARED else f"deps {g.name}", group_layer,
                                   inputs.deps.path, g, inputs.deps.records, inputs.layer_type, mtime)
                       for g in inputs.groups]
        app_layer = app_f.result()
        if inputs.reused is not None:
            return inputs.reused, app_layer
        made = [*inputs.kept, *(f.result() for f in deps_fs)]
    # image order: the split layers by name (kept ones among them), then the shared ones by bucket
    return tuple(sorted(made, key=lambda d: (parse_shared(d.name) or (-1, 0), d.name))), app_layer


def _assemble(fn: FunctionConfig, inputs: _Inputs, deps: tuple[DepsLayer, ...], app: Layer, mtime: int,
              image_format: str) -> Image:
    """4. Config and manifest over the base's layers, in the requested manifest format."""
    ours = [*(d.layer for d in deps), app]
    roles = [*(["deps"] * len(deps)), "app"]
    names = [*(d.name for d in deps), "app"]
    labels = {LABEL_DEPS_LAYERS: deps_label(inputs.split, list(deps), inputs.plan.env)} if deps else {}
    config = derive_config(inputs.base.config, fn, ours, inputs.plan.hash, mtime, roles, labels, names)
    layers = [*inputs.base.layers, *ours]
    manifest = make_manifest(inputs.base.media_type, config, layers)
    if len(manifest) > MAX_MANIFEST_BYTES:  # pragma: no cover - caught by the estimate before
        raise LambdashipError(f"the image manifest is {len(manifest)} bytes, over Lambda's limit")
    image = Image(manifest=manifest, config=config, layers=tuple(layers))
    if image_format != "base":
        image = convert(image, OCI_MANIFEST if image_format == "oci" else DOCKER_MANIFEST)
    return image


def _local_copies(fn: FunctionConfig, image: Image, out: Path | None, tar: Path | None,
                  tag: str) -> tuple[Image, Path | None, str | None, Path | None]:
    """5. ``--out`` (OCI layout) and ``--tar`` (docker load): base blobs fetched first.
    Returns (image with local blobs, layout, layout manifest digest, tar)."""
    image = fetch_base_blobs(image)
    layout = layout_digest = tar_path = None
    if out is not None:
        oci = convert(image, OCI_MANIFEST)
        layout = write_layout(oci, out, ref=tag)
        layout_digest = oci.digest
    if tar is not None:
        tar_path = write_docker_archive(image, tar, f"{fn.repository_name}:{tag}")
    return image, layout, layout_digest, tar_path


def build_image(
    fn: FunctionConfig,
    *,
    out: Path | None = None,
    progress: bool | BuildSink = False,
    tar: Path | None = None,
    tag: str = "latest",
    image_format: str = "base",
    reuse_deps_from: str | Callable[[], str | None] | None = None,
) -> BuildResult:
    """Build ``fn``'s image; with ``out`` also write an OCI layout, with ``tar`` a docker-load tar.

    ``image_format``: "base" (the base image's manifest format, the default), "docker" or "oci".
    The layout written to ``out`` always uses OCI media types (what umoci and skopeo's ``oci:``
    transport read); its config and layer blobs are the built image's, only the manifest's
    media types (and so its digest, reported as ``layout_digest``) differ for a Docker-format image.

    ``reuse_deps_from``: a reference to a previously pushed image of this function (e.g. the
    repository's current tag). When its ``dev.lambdaship.deps-hash`` label equals this build's
    dependency hash (and its layers were split the same way), its dependency layers are reused as
    remote layers: nothing is installed or compressed, and the push can skip (or mount) the blobs.
    A fresh CI runner gets the unchanged-dependencies fast path without any local cache. It may be
    a callable (e.g. a future's ``result``), asked only after the local checks, so a slow lookup of
    the previous image (the ECR API) overlaps them.

    ``progress``: a ``BuildEvent`` sink, or True for the front end's default sink.
    """
    if image_format not in ("base", "docker", "oci"):
        raise LambdashipError(f"unknown image format {image_format!r}", "use base, docker or oci")
    emit = sink_for(progress)
    timings: dict[str, float] = {}
    t0 = time.monotonic()
    mtime = layer_mod.source_date_epoch()
    app = _app(fn, [p.resolve() for p in (out, tar) if p is not None])

    inputs = _base_and_deps(fn, reuse_deps_from, emit)
    timings["base_and_deps"] = time.monotonic() - t0
    if inputs.deps is not None:
        timings.update({f"deps_{k}": v for k, v in inputs.deps.timings.items()})
    pyc_entries, bytecode = app_bytecode(app.files, fn.python)
    _check_size(fn, inputs, app, pyc_entries)

    t1 = time.monotonic()
    deps_layers, app_layer = _write_layers(inputs, app, pyc_entries, mtime, emit)
    timings["layers"] = time.monotonic() - t1
    image = replace(_assemble(fn, inputs, deps_layers, app_layer, mtime, image_format), held=inputs.held)

    layout = layout_digest = tar_path = None
    if out is not None or tar is not None:
        t2 = time.monotonic()
        with stage(emit, "fetch", "base layers for the local copy") as fetched:
            image, layout, layout_digest, tar_path = _local_copies(fn, image, out, tar, tag)
            fetched.bytes = sum(lay.size for lay in inputs.base.layers)
        timings["output"] = time.monotonic() - t2
    timings["total"] = time.monotonic() - t0
    emit(BuildEvent("done", image.digest, sum(lay.size for lay in image.layers), timings["total"]))
    return BuildResult(
        image=image, layout=layout, deps_hash=inputs.plan.hash, tar=tar_path,
        deps_layer=deps_layers[-1].layer if deps_layers else None, app_layer=app_layer, base_ref=fn.image_base,
        timings=timings, deps_cached=inputs.deps.cached if inputs.deps is not None else True,
        deps_reused=inputs.reused is not None,
        deps_layer_cached=bool(deps_layers) and all(d.cached for d in deps_layers),
        bytecode=bytecode, layout_digest=layout_digest, deps_layers=deps_layers, split=inputs.split,
        deps_layers_reused=len(inputs.kept),
    )
