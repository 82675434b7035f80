"""Push an ``Image`` to a registry, sending only what the registry does not have.

For every blob (config and layers), in parallel (bounded):

1. ``HEAD`` it in the target repository: present → skipped;
2. a base layer (``Layer.source``) on the same registry → cross-repository mount; when the
   registry answers 202 instead (unknown blob, ECR without BLOB_MOUNTING) it is streamed from
   the source repository instead;
3. a base layer on another registry → streamed registry-to-registry, chunk by chunk, never
   written to disk, memory bounded by the chunk size;
4. a local blob (``Layer.path``, the config bytes) → uploaded (monolithic or chunked).

Only when every blob is confirmed is the manifest PUT, first under the first tag, then the
other tags, so a failed push never leaves a tag that points at missing blobs. The digest the
registry answers with is checked against ours. ECR targets are also registered with the ECR
API (``PutImage``) so ``DescribeImages`` and Lambda see them.
"""

from __future__ import annotations

import concurrent.futures as cf
import re
import threading
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from lambdaship.errors import LambdashipError
from lambdaship.image.model import Image, Layer, sha256_digest
from lambdaship.registry import REPO_RE, Reference, RegistryClient, base_url, is_ecr_host

PARALLEL = 4
TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")


@dataclass
class PushResult:
    image_ref: str  # registry/repo@sha256:...
    digest: str
    repository: str
    tags: list[str]
    uploaded_blobs: int = 0
    skipped_blobs: int = 0
    mounted_blobs: int = 0
    uploaded_bytes: int = 0
    streamed_blobs: int = 0  # of uploaded_blobs: copied registry-to-registry
    blobs: list[dict[str, Any]] = field(default_factory=list)  # per blob: digest, size, action

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["image"] = out.pop("image_ref")
        return out


@dataclass
class _Blob:
    digest: str
    size: int
    kind: str  # "config" | "layer"
    data: bytes | None = None
    layer: Layer | None = None


def _blobs(image: Image) -> list[_Blob]:
    """The config and the layers, each once, validated against the manifest."""
    mj = image.manifest_json
    cfg = image.config_descriptor
    if sha256_digest(image.config) != cfg.digest:
        raise LambdashipError("the image's config does not match the digest in its manifest", "rebuild the image")
    out = [_Blob(cfg.digest, cfg.size, "config", data=image.config)]
    seen = {cfg.digest}
    manifest_layers = [d["digest"] for d in mj.get("layers", [])]
    if manifest_layers != [layer.digest for layer in image.layers]:
        raise LambdashipError("the image's layers do not match its manifest", "rebuild the image")
    for layer in image.layers:
        if layer.digest in seen:
            continue
        seen.add(layer.digest)
        if layer.path is not None and not layer.path.is_file() and layer.source is None:
            raise LambdashipError(f"layer {layer.digest} is missing: {layer.path}", "rebuild the image")
        if layer.path is None and layer.source is None:
            raise LambdashipError(f"layer {layer.digest} has neither a local file nor a source registry",
                                  "rebuild the image")
        out.append(_Blob(layer.digest, layer.size, "layer", layer=layer))
    return out


def check_target(target: str, tags: Sequence[str] = ()) -> tuple[Reference, list[str]]:
    """Validate a push target and tags (no request): (repository reference, all tags)."""
    return _target(target, tags)


def _target(target: str, tags: Sequence[str]) -> tuple[Reference, list[str]]:
    ref = Reference.parse(target)
    if ref.digest:
        raise LambdashipError(f"push target {target!r} names a digest", "give a repository (and optionally a tag)")
    explicit = ref.tag if re.search(r":[A-Za-z0-9_][A-Za-z0-9_.-]*$", target.rsplit("/", 1)[-1]) else None
    all_tags: list[str] = []
    for t in ([explicit] if explicit else []) + list(tags):
        if not TAG_RE.match(t):
            raise LambdashipError(f"{t!r} is not a valid tag", "use up to 128 of A-Z a-z 0-9 _ . -")
        if t not in all_tags:
            all_tags.append(t)
    if not REPO_RE.match(ref.repository):
        raise LambdashipError(f"{ref.repository!r} is not a valid repository name")
    return Reference(ref.registry, ref.repository, None, None), all_tags


class _Progress:
    """rich progress on stderr (per blob + total); a no-op unless enabled."""

    def __init__(self, enabled: bool, total: int) -> None:
        self._p = None
        if not enabled:
            return
        from rich.console import Console
        from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

        self._p = Progress(
            TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
            console=Console(stderr=True), transient=False,
        )
        self._total = self._p.add_task("total", total=total)
        self._lock = threading.Lock()

    def __enter__(self) -> _Progress:
        if self._p:
            self._p.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._p:
            self._p.stop()

    def blob(self, blob: _Blob) -> Callable[[int], None]:
        if not self._p:
            return lambda n: None
        task = self._p.add_task(f"{blob.kind} {blob.digest[7:19]}", total=blob.size)

        def advance(n: int) -> None:
            assert self._p is not None
            self._p.advance(task, n)
            self._p.advance(self._total, n)

        return advance

    def done(self, blob: _Blob, action: str) -> None:
        if not self._p:
            return
        if action in ("skipped", "mounted"):
            self._p.advance(self._total, blob.size)
            self._p.console.log(f"{action:<8} {blob.kind} {blob.digest[:19]} ({blob.size:,} bytes)")


def _same_registry(a: str, b: str) -> bool:
    return base_url(a) == base_url(b)


def push_image(image: Image, target: str, tags: Sequence[str] = (), *, progress: bool = False) -> PushResult:
    """Push ``image`` to ``target`` (``registry/repository[:tag]``), tagging it with ``tags``.

    Returns a ``PushResult``; ``image_ref`` is ``registry/repository@sha256:...`` (the form to
    deploy). Raises ``LambdashipError`` (one line) when the push cannot complete; nothing is
    tagged in that case.
    """
    ref, all_tags = _target(target, tags)
    blobs = _blobs(image)
    client = RegistryClient.for_registry(ref.registry)
    repo = ref.repository
    result = PushResult(image_ref=f"{ref.registry}/{repo}@{image.digest}", digest=image.digest,
                        repository=repo, tags=all_tags)
    lock = threading.Lock()

    def one(blob: _Blob, prog: _Progress) -> None:
        action = _push_blob(client, ref.registry, repo, blob, prog)
        with lock:
            result.blobs.append({"digest": blob.digest, "size": blob.size, "kind": blob.kind, "action": action})
            if action == "skipped":
                result.skipped_blobs += 1
            elif action == "mounted":
                result.mounted_blobs += 1
            else:
                result.uploaded_blobs += 1
                result.uploaded_bytes += blob.size
                if action == "streamed":
                    result.streamed_blobs += 1
        prog.done(blob, action)

    with _Progress(progress, sum(b.size for b in blobs)) as prog, cf.ThreadPoolExecutor(PARALLEL) as pool:
        # Biggest first: the long transfers start at once, small ones fill the gaps.
        futures = [pool.submit(one, b, prog) for b in sorted(blobs, key=lambda b: -b.size)]
        try:
            for fut in cf.as_completed(futures):
                fut.result()
        except BaseException:
            for f in futures:
                f.cancel()
            raise
    result.blobs.sort(key=lambda b: [x.digest for x in blobs].index(b["digest"]))

    # Every blob is in the repository now: the manifest goes last.
    media_type = image.media_type
    for t in all_tags or [image.digest]:
        client.put_manifest(repo, t, image.manifest, media_type)
    if is_ecr_host(ref.registry):
        from lambdaship.aws import ecr

        ecr.put_image(repo, image.manifest, media_type, all_tags, image.digest)
    return result


def _push_blob(client: RegistryClient, registry: str, repo: str, blob: _Blob, prog: _Progress) -> str:
    if client.blob_exists(repo, blob.digest):
        return "skipped"
    if blob.data is not None:
        client.upload_blob(repo, blob.digest, blob.size, blob.data, progress=prog.blob(blob))
        return "uploaded"
    layer = blob.layer
    assert layer is not None
    src = layer.source
    if (src is not None and src.repository != repo and _same_registry(src.registry, registry)
            and client.mount_blob(repo, blob.digest, src.repository)):
        return "mounted"
    if layer.path is not None and layer.path.is_file():
        client.upload_blob(repo, blob.digest, blob.size, layer.path, progress=prog.blob(blob))
        return "uploaded"
    assert src is not None
    source = RegistryClient.for_registry(src.registry)
    # A callable source: re-opened (from the start) if the upload has to restart.
    client.upload_blob(repo, blob.digest, blob.size, lambda: source.stream_blob(src.repository, blob.digest),
                       progress=prog.blob(blob))
    return "streamed"
