"""Base image + dependency layer + app layer → a new image (a value), without a daemon.

``resolve_base`` reads only the base's manifest (choosing the target architecture's entry
of an index) and config; base layers stay remote (``Layer.source``). ``build_image`` checks the
handler and the project's symlinks, installs the dependencies for the target, writes two
deterministic layers under ``/var/task`` (deps first, app second), derives the config and a
manifest in the base's format, checks Lambda's limits and returns the ``Image``. Only
``--out``/``--tar`` need the base's blobs: they are fetched once into a content-addressed,
verified cache under ``<home>/blobs``.

Same inputs → same bytes → same manifest digest: layer entries, times, owners and modes are
normalised (``lambdaship.image.layer``), the config's ``created`` and history come from
``SOURCE_DATE_EPOCH`` (else a constant), JSON is written with sorted keys.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from lambdaship.cacheverify import blob_ok, discard
from lambdaship.config import FunctionConfig
from lambdaship.errors import LambdashipError
from lambdaship.fsutil import tmp_sibling
from lambdaship.image import layer as layer_mod
from lambdaship.image.events import BuildEvent, BuildSink, sink_for
from lambdaship.image.model import (
    CONFIG_TYPES,
    DOCKER_LAYER_GZIP,
    DOCKER_MANIFEST,
    INDEX_TYPES,
    LAYER_TYPES,
    MANIFEST_TYPES,
    MAX_MANIFEST_BYTES,
    MAX_UNCOMPRESSED_BYTES,
    OCI_LAYER_GZIP,
    OCI_MANIFEST,
    BlobSource,
    Descriptor,
    Image,
    Layer,
    blob_file,
    canonical_json,
    sha256_digest,
    write_layout,
)
from lambdaship.paths import home
from lambdaship.platform import Architecture

TASK_ROOT = "var/task"
LABEL_DEPS_HASH = "dev.lambdaship.deps-hash"
LABEL_FUNCTION = "dev.lambdaship.function"
LABEL_DEPS_LAYER = "dev.lambdaship.deps-layer"  # {"digest", "diff_id", "size", "uncompressed_size"}
LAYER_CACHE_VERSION = "1"
DIGEST_RE = re.compile(r"sha256:[0-9a-f]{64}")


@dataclass(frozen=True)
class BuildResult:
    image: Image
    layout: Path | None
    deps_hash: str
    tar: Path | None = None
    deps_layer: Layer | None = None
    app_layer: Layer | None = None
    base_ref: str = ""
    timings: dict[str, float] = field(default_factory=dict)
    deps_cached: bool = False
    deps_layer_cached: bool = False
    bytecode: bool = False
    layout_digest: str | None = None  # the OCI-format manifest written to ``layout``
    deps_reused: bool = False  # the deps layer came from a previously pushed image

    def to_json(self) -> dict[str, Any]:
        img = self.image
        cfg = img.config_descriptor
        return {
            "manifest_digest": img.digest,
            "media_type": img.media_type,
            "manifest_size": len(img.manifest),
            "config_digest": cfg.digest,
            "base": self.base_ref,
            "deps_hash": self.deps_hash,
            "layers": [
                {
                    "digest": layer.digest,
                    "diff_id": layer.diff_id,
                    "size": layer.size,
                    "uncompressed_size": layer.uncompressed_size,
                    "media_type": layer.descriptor.media_type,
                    "role": self._role(layer),
                }
                for layer in img.layers
            ],
            "layout": str(self.layout) if self.layout else None,
            "layout_digest": self.layout_digest,
            "tar": str(self.tar) if self.tar else None,
            "deps_cached": self.deps_cached,
            "deps_layer_cached": self.deps_layer_cached,
            "deps_reused": self.deps_reused,
            "bytecode": self.bytecode,
            "timings": {k: round(v, 3) for k, v in self.timings.items()},
        }

    def _role(self, layer: Layer) -> str:
        if self.deps_layer is not None and layer.digest == self.deps_layer.digest:
            return "deps"
        if self.app_layer is not None and layer.digest == self.app_layer.digest:
            return "app"
        return "base"


def blob_cache() -> Path:
    """Content-addressed blob cache: ``<home>/blobs/sha256/<hex>``."""
    return home() / "blobs"


def cached_blob(digest: str) -> Path:
    return blob_file(home(), digest)  # <home>/blobs/sha256/<hex>


# ---------------------------------------------------------------------------------------------
# Base image
# ---------------------------------------------------------------------------------------------
def _platform_str(p: dict[str, Any]) -> str:
    s = f"{p.get('os', '?')}/{p.get('architecture', '?')}"
    return s + (f"/{p['variant']}" if p.get("variant") else "")


def _choose(index: dict[str, Any], ref: str, architecture: str) -> str:
    want = Architecture.parse(architecture).oci
    entries = [m for m in index.get("manifests", []) if m.get("platform")]
    real = [m for m in entries if m["platform"].get("os") != "unknown"]  # skip attestations
    for m in real:
        p = m["platform"]
        if p.get("os") == "linux" and p.get("architecture") == want and p.get("variant") in (None, "", "v8"):
            return m["digest"]
    available = ", ".join(sorted({_platform_str(m["platform"]) for m in real})) or "none"
    raise LambdashipError(
        f"base image {ref} has no linux/{want} image (available: {available})",
        "choose another --architecture or a base image built for it",
    )


def resolve_base(ref: str, architecture: str) -> Image:
    """The base image for ``architecture`` ("x86_64"/"arm64"); its layers stay remote."""
    from lambdaship.oci.reference import Reference
    from lambdaship.registries import registry_client

    goarch = Architecture.parse(architecture).oci  # one-line error for an unknown architecture
    r = Reference.parse(ref)
    client = registry_client(r.registry)
    raw, media_type, _digest = client.get_manifest(r.repository, r.ref)
    doc = json.loads(raw)
    if media_type in INDEX_TYPES or (doc.get("manifests") and "layers" not in doc):
        chosen = _choose(doc, ref, architecture)
        raw, media_type, _digest = client.get_manifest(r.repository, chosen)
        doc = json.loads(raw)
    media_type = doc.get("mediaType") or media_type
    if media_type not in MANIFEST_TYPES or "config" not in doc:
        raise LambdashipError(
            f"base image {ref} has an unsupported manifest type {media_type!r}",
            "use a Docker v2 schema 2 or OCI image (e.g. public.ecr.aws/lambda/python:3.12)",
        )
    config = client.get_blob(r.repository, doc["config"]["digest"], doc["config"].get("size"))
    cfg = json.loads(config)
    arch = cfg.get("architecture")
    if arch and arch != goarch:
        raise LambdashipError(
            f"base image {ref} is linux/{arch}, not linux/{goarch}",
            "choose a base image for the target architecture or change --architecture",
        )
    diff_ids = cfg.get("rootfs", {}).get("diff_ids", [])
    layer_descs = doc.get("layers", [])
    if len(diff_ids) != len(layer_descs):
        raise LambdashipError(f"base image {ref}: {len(layer_descs)} layers but {len(diff_ids)} diff_ids in config")
    source = BlobSource(registry=r.registry, repository=r.repository)
    layers = tuple(
        Layer(descriptor=Descriptor.from_json(d), diff_id=diff_ids[i], source=source)
        for i, d in enumerate(layer_descs)
    )
    return Image(manifest=raw, config=config, layers=layers)


def find_reusable_deps(ref: str, deps_hash: str, architecture: str) -> Layer | None:
    """The dependency layer of a previously built image ``ref`` if it has the same deps hash.

    Reads only the manifest and config. Any problem (no such image yet, other registry errors,
    a label that does not match the manifest) means "no": the build installs as usual.
    """
    try:
        prev = resolve_base(ref, architecture)
    except LambdashipError:
        return None
    labels = (prev.config_json.get("config") or {}).get("Labels") or {}
    if labels.get(LABEL_DEPS_HASH) != deps_hash or LABEL_DEPS_LAYER not in labels:
        return None
    try:
        info = json.loads(labels[LABEL_DEPS_LAYER])
        digest, diff_id = info["digest"], info["diff_id"]
    except (ValueError, KeyError, TypeError):
        return None
    for lay in prev.layers:
        if lay.digest == digest and lay.diff_id == diff_id:
            size = info.get("uncompressed_size")
            return replace(lay, uncompressed_size=int(size) if isinstance(size, int) else None)
    return None


def fetch_base_blobs(image: Image) -> Image:
    """The image with every remote layer downloaded into the blob cache (once, verified)."""
    from lambdaship.registries import registry_client

    out = []
    for lay in image.layers:
        if lay.path is not None and lay.path.exists():
            out.append(lay)
            continue
        dest = cached_blob(lay.digest)
        if dest.exists() and not blob_ok(dest, lay.digest, lay.size):
            discard(dest, "base layer")
        if not dest.exists():
            if lay.source is None:
                raise LambdashipError(f"layer {lay.digest} has no local blob and no source")
            registry_client(lay.source.registry).download_blob(lay.source.repository, lay.digest, dest,
                                                                size=lay.size)
        out.append(replace(lay, path=dest))
    return replace(image, layers=tuple(out))


# ---------------------------------------------------------------------------------------------
# Layers
# ---------------------------------------------------------------------------------------------
_COMPILE_APP = r"""
import json, py_compile, sys
jobs = json.load(sys.stdin)
for src, cfile, dfile in jobs:
    try:
        py_compile.compile(src, cfile=cfile, dfile=dfile, doraise=True, optimize=0,
                           invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
    except py_compile.PyCompileError:
        pass
print(sys.implementation.cache_tag)
"""


def app_bytecode(files: list[tuple[str, Path]], python: str) -> tuple[list[layer_mod.Entry], bool]:
    """Unchecked-hash .pyc for the app's .py files, compiled by a ``python`` interpreter.

    Returns no entries (and False) when no interpreter of that exact version is available.
    Compiled files are cached in ``<home>/pyc`` by (content, path in the image, version), so a
    rebuild compiles only the files that changed. A cached file is named by its own sha256 and
    checked against it when reused: a changed one is discarded and compiled again, never shipped.
    """
    from lambdaship.package.bytecode import bytecode_enabled, compile_env, find_interpreter

    sources = [(rel, p) for rel, p in files if rel.endswith(".py") and not p.is_symlink() and p.is_file()]
    if not sources or not bytecode_enabled():
        return [], False
    exe = find_interpreter(python)
    if exe is None:
        return [], False
    tag = "cpython-" + python.replace(".", "")
    cache_dir = home() / "pyc"
    entries: list[layer_mod.Entry] = []
    todo = []
    for rel, p in sources:
        d, _, name = rel.rpartition("/")
        pyc_name = f"{TASK_ROOT}/" + (f"{d}/" if d else "") + f"__pycache__/{name[:-3]}.{tag}.pyc"
        dfile = f"/{TASK_ROOT}/{rel}"
        key = sha256_digest(p.read_bytes() + f"\0{dfile}\0{tag}\0unchecked-hash".encode()).split(":", 1)[1]
        data = _cached_pyc(cache_dir / key[:2], key)
        if data is not None:
            entries.append(layer_mod.Entry(pyc_name, "file", data=data))
        else:
            (cache_dir / key[:2]).mkdir(parents=True, exist_ok=True)
            tmp = tmp_sibling(cache_dir / key[:2] / key)
            todo.append((str(p), str(tmp), dfile, pyc_name, key))
    if todo and exe == sys.executable and sys.implementation.cache_tag == tag:
        # The running interpreter is the target version: compile here, no interpreter start-up
        # (measured 0.1-0.3 s of a fresh runner's code-only build on a loaded 2-core machine).
        import py_compile

        for src, cfile, dfile, _pyc_name, _key in todo:
            with contextlib.suppress(py_compile.PyCompileError):
                py_compile.compile(src, cfile=cfile, dfile=dfile, doraise=True, optimize=0,
                                   invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
    elif todo:
        proc = subprocess.run(
            [exe, "-c", _COMPILE_APP], input=json.dumps([list(j[:3]) for j in todo]),
            capture_output=True, text=True, timeout=300, env=compile_env(),
        )
        if proc.returncode != 0 or proc.stdout.strip() != tag:
            for j in todo:
                Path(j[1]).unlink(missing_ok=True)
            return [], False
    for _src, cfile, _dfile, pyc_name, key in todo:
        if os.path.exists(cfile):  # absent: a syntax error (Python reports it at import)
            entries.append(layer_mod.Entry(pyc_name, "file", data=_store_pyc(Path(cfile), key)))
    return entries, True


def _cached_pyc(bucket: Path, key: str) -> bytes | None:
    """The cached bytecode for ``key`` (``<key>.<sha256>.pyc``) whose content matches its name."""
    with contextlib.suppress(OSError):
        for cand in sorted(bucket.glob(f"{key}.*.pyc")):
            data = cand.read_bytes()
            if sha256_digest(data).split(":", 1)[1] == cand.name.split(".")[1]:
                return data
            discard(cand, "bytecode")
    return None


def _store_pyc(tmp: Path, key: str) -> bytes:
    """Move freshly compiled bytecode into the cache under its content's digest; its bytes."""
    data = tmp.read_bytes()
    os.replace(tmp, tmp.with_name(f"{key}.{sha256_digest(data).split(':', 1)[1]}.pyc"))
    return data


def _deps_layer(tree: Path, deps_hash: str, media_type: str, mtime: int) -> tuple[Layer, bool]:
    """The dependency layer, from the layer cache when this exact set was compressed before."""
    key = sha256_digest(json.dumps(
        {"v": LAYER_CACHE_VERSION, "deps": deps_hash, "mt": media_type, "mtime": mtime,
         "level": layer_mod.LEVEL, "chunk": layer_mod.CHUNK},
        sort_keys=True,
    ).encode()).split(":", 1)[1]
    index = home() / "layers" / f"{key}.json"
    if index.is_file():
        cached = _verified_layer(index, media_type)
        if cached is not None:
            return cached, True
    lay = layer_mod.write_layer(
        layer_mod.tree_entries(tree, TASK_ROOT), blob_cache() / "sha256", media_type=media_type, mtime=mtime
    )
    index.parent.mkdir(parents=True, exist_ok=True)
    tmp = tmp_sibling(index)
    tmp.write_text(json.dumps({"digest": lay.digest, "diff_id": lay.diff_id, "size": lay.size,
                               "uncompressed_size": lay.uncompressed_size}))
    os.replace(tmp, index)
    return lay, False


def _verified_layer(index: Path, media_type: str) -> Layer | None:
    """The cached deps layer of ``index`` when its blob has the recorded size, digest and diff_id;
    else the entry (index and blob) is discarded and None returned (the layer is written again)."""
    from lambdaship.cacheverify import gzip_diff_id_ok

    try:
        info = json.loads(index.read_text())
        digest, diff_id, size = str(info["digest"]), str(info["diff_id"]), int(info["size"])
        if not (DIGEST_RE.fullmatch(digest) and DIGEST_RE.fullmatch(diff_id)):
            raise ValueError("not a sha256 digest")
        path = cached_blob(digest)
        if blob_ok(path, digest, size) and gzip_diff_id_ok(path, diff_id):
            return Layer(Descriptor(media_type, digest, size), diff_id, path=path,
                         uncompressed_size=info["uncompressed_size"])
        discard(path, "dependency layer")
    except (OSError, ValueError, KeyError, TypeError, LambdashipError):
        pass
    index.unlink(missing_ok=True)
    return None


def _tar_estimate(content: int, entries: int) -> int:
    # content rounded to blocks + one header per entry (+ a PAX header now and then) + the end
    return content + entries * 1024 + 1024


# ---------------------------------------------------------------------------------------------
# Config and manifest
# ---------------------------------------------------------------------------------------------
def _created(mtime: int) -> str:
    return datetime.fromtimestamp(mtime, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def derive_config(base_config: bytes, fn: FunctionConfig, layers: list[Layer], deps_hash: str,
                  mtime: int, roles: list[str]) -> bytes:
    cfg = json.loads(base_config)
    created = _created(mtime)
    c = dict(cfg.get("config") or {})
    c["Cmd"] = [fn.resolved_handler]
    c["WorkingDir"] = f"/{TASK_ROOT}"
    labels = dict(c.get("Labels") or {})
    labels[LABEL_DEPS_HASH] = deps_hash
    labels[LABEL_FUNCTION] = fn.function_name
    labels.pop(LABEL_DEPS_LAYER, None)
    for lay, role in zip(layers, roles, strict=True):
        if role == "deps":
            labels[LABEL_DEPS_LAYER] = json.dumps(
                {"digest": lay.digest, "diff_id": lay.diff_id, "size": lay.size,
                 "uncompressed_size": lay.uncompressed_size},
                sort_keys=True, separators=(",", ":"),
            )
    c["Labels"] = labels
    env = list(c.get("Env") or [])
    if not any(e.startswith("LAMBDA_TASK_ROOT=") for e in env):
        env.append(f"LAMBDA_TASK_ROOT=/{TASK_ROOT}")
    c["Env"] = env
    cfg["config"] = c
    cfg["architecture"] = fn.platform.architecture.oci
    cfg["os"] = "linux"
    cfg["created"] = created
    rootfs = dict(cfg.get("rootfs") or {"type": "layers"})
    rootfs["type"] = "layers"
    rootfs["diff_ids"] = [*rootfs.get("diff_ids", []), *(lay.diff_id for lay in layers)]
    cfg["rootfs"] = rootfs
    history = list(cfg.get("history") or [])
    for lay, role in zip(layers, roles, strict=True):
        what = f"dependencies {deps_hash[:12]}" if role == "deps" else f"app {fn.function_name}"
        history.append({"created": created, "created_by": f"lambdaship build: {what} -> /{TASK_ROOT}",
                        "comment": lay.diff_id})
    history.append({"created": created, "created_by": f"lambdaship build: CMD [{fn.resolved_handler!r}]",
                    "empty_layer": True})
    cfg["history"] = history
    for stale in ("container", "container_config", "docker_version"):
        cfg.pop(stale, None)
    return canonical_json(cfg)


_LAYER_CONVERT = {
    OCI_MANIFEST: {DOCKER_LAYER_GZIP: OCI_LAYER_GZIP},
    DOCKER_MANIFEST: {OCI_LAYER_GZIP: DOCKER_LAYER_GZIP},
}


def convert(image: Image, media_type: str) -> Image:
    """The same image (same config and layer blobs) under a manifest of ``media_type``.

    Docker v2s2 ↔ OCI: only media types change, so diff_ids, layer digests and the config
    digest stay; the manifest digest changes.
    """
    if image.media_type == media_type:
        return image
    mapping = _LAYER_CONVERT[media_type]
    layers = []
    for lay in image.layers:
        mt = lay.descriptor.media_type
        if mt not in mapping and mt != LAYER_TYPES[media_type]:
            raise LambdashipError(f"layer {lay.digest} ({mt}) cannot be expressed in a {media_type} manifest")
        layers.append(replace(lay, descriptor=replace(lay.descriptor, media_type=mapping.get(mt, mt))))
    manifest = make_manifest(media_type, image.config, layers)
    return Image(manifest=manifest, config=image.config, layers=tuple(layers), annotations=dict(image.annotations))


def make_manifest(media_type: str, config: bytes, layers: list[Layer]) -> bytes:
    return canonical_json({
        "schemaVersion": 2,
        "mediaType": media_type,
        "config": {"mediaType": CONFIG_TYPES[media_type], "digest": sha256_digest(config), "size": len(config)},
        "layers": [lay.descriptor.to_json() for lay in layers],
    })


def check_limits(base: Image, extra_uncompressed: int, extra_layers: int, config_size: int, ref: str) -> None:
    """Lambda's limits, checked before any layer is written: manifest size and 10 GB total.

    Base layers' uncompressed sizes are unknown without downloading them: their compressed
    sizes (as the manifest declares them) are a lower bound.
    """
    base_bytes = sum(lay.uncompressed_size or lay.size for lay in base.layers)
    total = base_bytes + extra_uncompressed
    if total > MAX_UNCOMPRESSED_BYTES:
        raise LambdashipError(
            f"the image would be at least {total / 1024**3:.1f} GiB uncompressed (base {ref}: "
            f"{base_bytes / 1024**3:.1f} GiB, dependencies and app: {extra_uncompressed / 1024**3:.2f} GiB), "
            "over Lambda's 10 GiB limit",
            "use a smaller base image or fewer/lighter dependencies (see 'lambdaship size')",
        )
    fake = Layer(Descriptor(LAYER_TYPES.get(base.media_type, ""), "sha256:" + "0" * 64, 10**12), "")
    fake_cfg = b"x" * config_size
    estimate = len(make_manifest(base.media_type, fake_cfg, [*base.layers, *([fake] * extra_layers)]))
    if estimate > MAX_MANIFEST_BYTES:
        raise LambdashipError(
            f"the image manifest would be {estimate} bytes, over Lambda's {MAX_MANIFEST_BYTES}-byte limit "
            f"({len(base.layers) + extra_layers} layers)",
            "use a base image with fewer layers",
        )


# ---------------------------------------------------------------------------------------------
# Build
# ---------------------------------------------------------------------------------------------
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
    dependency hash, its dependency layer is reused as a remote layer: nothing is installed or
    compressed, and the push can skip (or mount) the blob. A fresh CI runner gets the
    unchanged-dependencies fast path without any local cache. It may be a callable (e.g. a
    future's ``result``), asked only after the local checks, so a slow lookup of the previous
    image (the ECR API) overlaps them.
    """
    if image_format not in ("base", "docker", "oci"):
        raise LambdashipError(f"unknown image format {image_format!r}", "use base, docker or oci")
    from lambdaship.package import deps as deps_mod
    from lambdaship.project import app_files, check_handler, warn_access_keys

    emit = sink_for(progress)
    timings: dict[str, float] = {}
    t0 = time.monotonic()
    mtime = layer_mod.source_date_epoch()

    # 1. Everything that can be checked locally, before any network or disk work.
    skip = [p.resolve() for p in (out, tar) if p is not None]
    files = app_files(fn, extra_excludes=skip)
    check_handler(fn, files)
    warn_access_keys(files)
    app_entries = layer_mod.entries_from_files(files, TASK_ROOT, root=fn.source)
    app_content = sum(p.lstat().st_size for _rel, p in files if p.is_file() and not p.is_symlink())

    # 2. Base (network) and dependencies (registry label, cache or installer) at the same time.
    emit(BuildEvent("resolve", f"resolving base image {fn.image_base} and dependencies"))
    plan = deps_mod.plan(fn)
    reused: Layer | None = None
    deps = None
    with ThreadPoolExecutor(max_workers=2) as pool:
        base_f = pool.submit(resolve_base, fn.image_base, fn.architecture)
        if callable(reuse_deps_from):
            reuse_deps_from = reuse_deps_from()
        if reuse_deps_from and not plan.empty:
            reused = find_reusable_deps(reuse_deps_from, plan.hash, fn.architecture)
        if reused is None:
            deps = deps_mod.install(fn)
        base = base_f.result()
    timings["base_and_deps"] = time.monotonic() - t0
    if deps is not None:
        timings.update({f"deps_{k}": v for k, v in deps.timings.items()})
    media_type = base.media_type
    layer_type = LAYER_TYPES[media_type]

    if reused is not None:
        reused = replace(reused, descriptor=replace(reused.descriptor, media_type=layer_type))
        deps_content, deps_count = reused.uncompressed_size or reused.size, 1
    else:
        assert deps is not None
        if deps.entries >= 0:
            deps_content, deps_count = deps.content_bytes, deps.entries
        else:
            deps_content, deps_count = deps_mod.tree_size(deps.path)
    has_deps = deps_count > 0
    pyc_entries, bytecode = app_bytecode(files, fn.python)
    app_extra = sum(len(e.data or b"") for e in pyc_entries)
    extra = _tar_estimate(app_content + app_extra, len(app_entries) + len(pyc_entries) + 8)
    if reused is not None:
        extra += deps_content
    elif has_deps:
        extra += _tar_estimate(deps_content, deps_count + 2)
    check_limits(base, extra, 1 + int(has_deps), len(base.config) + 1024, fn.image_base)

    # 3. Layers: deps (cached by the dependency set) and app, compressed side by side.
    t1 = time.monotonic()
    emit(BuildEvent("layers", "writing layers"))
    with ThreadPoolExecutor(max_workers=2) as pool:
        deps_f2 = None
        if has_deps and deps is not None:
            deps_f2 = pool.submit(_deps_layer, deps.path, deps.hash, layer_type, mtime)
        app_f = pool.submit(layer_mod.write_layer, [*app_entries, *pyc_entries], blob_cache() / "sha256",
                            media_type=layer_type, mtime=mtime)
        app_layer = app_f.result()
        deps_layer: Layer | None
        if reused is not None:
            deps_layer, deps_layer_cached = reused, True
        elif deps_f2 is not None:
            deps_layer, deps_layer_cached = deps_f2.result()
        else:
            deps_layer, deps_layer_cached = None, False
    timings["layers"] = time.monotonic() - t1

    ours = [deps_layer, app_layer] if deps_layer else [app_layer]
    roles = ["deps", "app"] if deps_layer else ["app"]
    config = derive_config(base.config, fn, ours, plan.hash, mtime, roles)
    layers = [*base.layers, *ours]
    manifest = make_manifest(media_type, config, layers)
    if len(manifest) > MAX_MANIFEST_BYTES:  # pragma: no cover - caught by the estimate above
        raise LambdashipError(f"the image manifest is {len(manifest)} bytes, over Lambda's limit")
    image = Image(manifest=manifest, config=config, layers=tuple(layers))
    if image_format != "base":
        image = convert(image, OCI_MANIFEST if image_format == "oci" else DOCKER_MANIFEST)

    layout = None
    layout_digest = None
    tar_path = None
    if out is not None or tar is not None:
        t2 = time.monotonic()
        emit(BuildEvent("fetch", "fetching base layers for the local copy"))
        image = fetch_base_blobs(image)
        if out is not None:
            oci = convert(image, OCI_MANIFEST)
            layout = write_layout(oci, out, ref=tag)
            layout_digest = oci.digest
        if tar is not None:
            tar_path = write_docker_archive(image, tar, f"{fn.repository_name}:{tag}")
        timings["output"] = time.monotonic() - t2
    timings["total"] = time.monotonic() - t0
    emit(BuildEvent("done", image.digest, sum(lay.size for lay in image.layers), timings["total"]))
    return BuildResult(
        image=image, layout=layout, deps_hash=plan.hash, tar=tar_path, deps_layer=deps_layer,
        app_layer=app_layer, base_ref=fn.image_base, timings=timings,
        deps_cached=deps.cached if deps is not None else True, deps_reused=reused is not None,
        deps_layer_cached=deps_layer_cached, bytecode=bytecode, layout_digest=layout_digest,
    )


def write_docker_archive(image: Image, dest: Path, repo_tag: str) -> Path:
    """A tar that ``docker load`` accepts (Docker 25+ layout: OCI layout + manifest.json).

    Every layer must have a local blob (see ``fetch_base_blobs``).
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    cfg_hex = image.config_descriptor.digest.split(":", 1)[1]
    man_hex = image.digest.split(":", 1)[1]
    docker_manifest = [{
        "Config": f"blobs/sha256/{cfg_hex}",
        "RepoTags": [repo_tag],
        "Layers": [f"blobs/sha256/{lay.digest.split(':', 1)[1]}" for lay in image.layers],
    }]
    index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": [{
        "mediaType": image.media_type, "digest": image.digest, "size": len(image.manifest),
        "annotations": {"io.containerd.image.name": repo_tag, "org.opencontainers.image.ref.name":
                        repo_tag.rsplit(":", 1)[-1]},
    }]}
    mtime = layer_mod.source_date_epoch()

    def add_bytes(tf: tarfile.TarFile, name: str, data: bytes) -> None:
        info = tarfile.TarInfo(name)
        info.size, info.mtime, info.mode = len(data), mtime, 0o644
        tf.addfile(info, io.BytesIO(data))

    def add_dir(tf: tarfile.TarFile, name: str) -> None:
        info = tarfile.TarInfo(name)
        info.type, info.mtime, info.mode = tarfile.DIRTYPE, mtime, 0o755
        tf.addfile(info)

    tmp = tmp_sibling(dest)
    try:
        with tarfile.open(tmp, "w", format=tarfile.PAX_FORMAT) as tf:
            add_dir(tf, "blobs")
            add_dir(tf, "blobs/sha256")
            seen = set()
            blobs: list[tuple[str, bytes | Path]] = [(man_hex, image.manifest), (cfg_hex, image.config)]
            for lay in image.layers:
                if lay.path is None:
                    raise LambdashipError(f"layer {lay.digest} is not available locally")
                blobs.append((lay.digest.split(":", 1)[1], lay.path))
            for hexd, content in sorted(blobs, key=lambda b: b[0]):
                if hexd in seen:
                    continue
                seen.add(hexd)
                if isinstance(content, bytes):
                    add_bytes(tf, f"blobs/sha256/{hexd}", content)
                else:
                    info = tarfile.TarInfo(f"blobs/sha256/{hexd}")
                    info.size, info.mtime, info.mode = content.stat().st_size, mtime, 0o644
                    with content.open("rb") as fh:
                        tf.addfile(info, fh)
            add_bytes(tf, "index.json", json.dumps(index, sort_keys=True).encode())
            add_bytes(tf, "manifest.json", json.dumps(docker_manifest, sort_keys=True).encode())
            add_bytes(tf, "oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return dest
