"""Push an ``Image`` to a registry, sending only what the registry does not have.

For every blob (config and layers), in parallel (bounded):

1. ``HEAD`` it in the target repository: present → ``skip``;
2. a base layer (``Layer.source``) on the same registry → cross-repository ``mount``; when the
   registry answers 202 instead (unknown blob, ECR without BLOB_MOUNTING) it is streamed from
   the source repository instead;
3. a base layer on another registry → ``stream``ed registry-to-registry, chunk by chunk, never
   written to disk, memory bounded by the chunk size, bounded and verified by its descriptor;
4. a local blob (``Layer.path``, the config bytes) → ``upload``ed (monolithic or chunked).

Pushes made inside one :func:`sharing` scope (the functions of a ``deploy --all``) send a blob
to a registry once: a blob that one of them put into (or found in) a repository is ``mount``ed
from there by the others, and a push waits while another sends the same blob to the same
registry, then mounts it (:class:`Placed`). A registry that answers such a mount with 202 (it
cannot mount) is not asked again in that scope. Outside a scope every push is on its own.

Blobs can be sent ahead (:func:`send_ahead`: a build's base layers while the build still runs);
the push takes the blobs that pass confirmed as they are and does not ask about them again.

Only when every blob is confirmed is the manifest PUT, first under the first tag, then the
other tags, so a failed push never leaves a tag that points at missing blobs. The digest the
registry answers with is checked against ours. Progress goes to ``on_event`` as ``PushEvent``
values; rendering them is the caller's business (``commands/push.py``). Registering the image
with the ECR API is the caller's too (``aws.ecr.put_image``): this package knows no AWS.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextvars
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from lambdaship.errors import LambdashipError
from lambdaship.oci.auth import Keychain
from lambdaship.oci.client import RegistryClient
from lambdaship.oci.media import sha256_digest
from lambdaship.oci.reference import Reference, base_url, registry_host
from lambdaship.oci.transport import RegistryError
from lambdaship.patterns import OCI_REPOSITORY_RE as REPO_RE
from lambdaship.patterns import TAG_RE

PARALLEL = 4


class BlobSource(Protocol):
    """Where a remote layer lives (``image.model.BlobSource``)."""

    registry: str
    repository: str


class Layer(Protocol):
    """What a push needs of a layer (``image.model.Layer`` fits)."""

    path: Path | None
    source: BlobSource | None

    @property
    def digest(self) -> str: ...

    @property
    def size(self) -> int: ...


class Descriptor(Protocol):
    @property
    def digest(self) -> str: ...

    @property
    def size(self) -> int: ...


class Image(Protocol):
    """What a push needs of an image (``image.model.Image`` fits): ``oci`` imports no other
    lambdaship package."""

    manifest: bytes
    config: bytes

    @property
    def layers(self) -> Sequence[Layer]: ...

    @property
    def digest(self) -> str: ...

    @property
    def media_type(self) -> str: ...

    @property
    def manifest_json(self) -> dict[str, Any]: ...

    @property
    def config_descriptor(self) -> Descriptor: ...


class Held(Protocol):
    """Blobs a repository is known to hold (``image.model.Held``): a built image may carry them
    as ``held``; other images (``oci.copy.RemoteImage``) do not."""

    @property
    def source(self) -> BlobSource: ...

    @property
    def digests(self) -> frozenset[str]: ...


How = Literal["upload", "mount", "skip", "stream"]
ACTION: dict[str, str] = {"upload": "uploaded", "mount": "mounted", "skip": "skipped", "stream": "streamed"}


@dataclass(frozen=True)
class PushEvent:
    """One step of a push.

    ``kind``: ``"start"`` (all blobs known: ``bytes_total`` is their sum, ``digest`` the
    image's), ``"progress"`` (``bytes_done`` of ``bytes_total`` of one blob sent so far; goes
    back when an upload restarts), ``"blob"`` (a blob is in the repository: ``how`` says how,
    ``bytes_done`` is what was sent — 0 for skip and mount), ``"manifest"`` (tagged ``tag``).
    """

    kind: Literal["start", "progress", "blob", "manifest"]
    digest: str
    bytes_done: int = 0
    bytes_total: int = 0
    how: How | None = None
    role: str = ""  # "config" | "layer"
    tag: str = ""
    ahead: bool = False  # "blob": sent by :func:`send_ahead` before the push


EventSink = Callable[[PushEvent], None]


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


def _same_registry(a: str, b: str) -> bool:
    return base_url(a) == base_url(b)


def _same_name(a: str, b: str) -> bool:
    """The same registry as references name it (``_same_registry`` compares the URLs talked to)."""
    return registry_host(a).lower() == registry_host(b).lower()


class Placed:
    """One :func:`sharing` scope's view of the registries: which repository has a blob (the first
    its pushes put it into or found it in) and one lock per (registry, blob), held while the
    blob is being sent or mounted."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._where: dict[tuple[str, str], str] = {}
        self._locks: dict[tuple[str, str], threading.Lock] = {}
        self._no_mount: set[str] = set()

    def lock(self, registry: str, digest: str) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault((registry, digest), threading.Lock())

    def note(self, registry: str, digest: str, repository: str) -> None:
        with self._guard:
            self._where.setdefault((registry, digest), repository)

    def where(self, registry: str, digest: str) -> str | None:
        """A repository of ``registry`` known to hold ``digest`` (None: unknown, or the registry
        cannot mount)."""
        with self._guard:
            return None if registry in self._no_mount else self._where.get((registry, digest))

    def cannot_mount(self, registry: str) -> None:
        with self._guard:
            self._no_mount.add(registry)


_SCOPE: contextvars.ContextVar[Placed | None] = contextvars.ContextVar("lambdaship_push_scope", default=None)


@contextmanager
def sharing(placed: Placed) -> Iterator[Placed]:
    """Pushes started inside (in this thread) share ``placed``: each blob goes to a registry once."""
    token = _SCOPE.set(placed)
    try:
        yield placed
    finally:
        _SCOPE.reset(token)


class Stopped(Exception):
    """:func:`send_ahead` was told to stop (the build it ran beside failed)."""


class _Pusher:
    """One push: the target client, the result being filled in, the event sink."""

    def __init__(self, ref: Reference, result: PushResult, keychain: Keychain | None,
                 on_event: EventSink | None, stop: threading.Event | None = None) -> None:
        self.ref, self.result, self.keychain = ref, result, keychain
        self.client = RegistryClient.for_registry(ref.registry, keychain)
        self._emit = on_event or (lambda e: None)
        self._lock = threading.Lock()
        self.placed = _SCOPE.get()  # the caller's sharing scope (read in the caller's thread)
        self.presumed: frozenset[str] = frozenset()  # blobs the repository holds (its image's)
        self.trust = True  # False: presume nothing (the manifest was refused once)
        self.assumed: set[str] = set()  # blobs skipped on a presumption, not asked about
        self.stop = stop  # set: stop at the next chunk (Stopped)

    def emit(self, event: PushEvent) -> None:
        with self._lock:  # sinks need not be thread-safe
            self._emit(event)

    def one(self, blob: _Blob) -> None:
        sent = {"n": 0}

        def progress(how: How) -> Callable[[int], None]:
            def advance(n: int) -> None:
                if self.stop is not None and self.stop.is_set():
                    raise Stopped(blob.digest)
                sent["n"] += n
                self.emit(PushEvent("progress", blob.digest, sent["n"], blob.size, how, blob.kind))
            return advance

        if self.stop is not None and self.stop.is_set():
            raise Stopped(blob.digest)
        how = self._push_blob(blob, progress)
        self.record(blob, how)

    def record(self, blob: _Blob, how: How, *, ahead: bool = False) -> None:
        """``blob`` is in the repository (``how``): counted in the result, and an event."""
        r = self.result
        with self._lock:
            r.blobs.append({"digest": blob.digest, "size": blob.size, "kind": blob.kind, "action": ACTION[how]})
            if how == "skip":
                r.skipped_blobs += 1
            elif how == "mount":
                r.mounted_blobs += 1
            else:
                r.uploaded_blobs += 1
                r.uploaded_bytes += blob.size
                r.streamed_blobs += how == "stream"
        done = blob.size if how in ("upload", "stream") else 0
        self.emit(PushEvent("blob", blob.digest, done, blob.size, how, blob.kind, ahead=ahead))

    def _push_blob(self, blob: _Blob, progress: Callable[[How], Callable[[int], None]]) -> How:
        client, repo, placed = self.client, self.ref.repository, self.placed
        registry = base_url(self.ref.registry)
        src = blob.layer.source if blob.layer is not None else None
        own = src is not None and src.repository == repo and _same_name(src.registry, self.ref.registry)
        if self.trust and (own or blob.digest in self.presumed):
            # A layer of this repository's own image (a reused dependency layer, or a base layer
            # its current image has; read from its manifest moments ago): the registry holds it,
            # no HEAD needed. Were it gone since, the manifest PUT is refused and the push asks
            # again (push_image). The registry's name, not its URL: one local registry stands in
            # for every region's ECR host (other repositories).
            with self._lock:
                self.assumed.add(blob.digest)
            if placed is not None:
                placed.note(registry, blob.digest, repo)
            return "skip"
        if client.blob_exists(repo, blob.digest):
            if placed is not None:
                placed.note(registry, blob.digest, repo)
            return "skip"
        if placed is None:
            return self._send(blob, progress)
        with placed.lock(registry, blob.digest):  # another push sending it to this registry finishes first
            known = placed.where(registry, blob.digest)
            if known == repo:
                return "skip"  # sent here while we waited
            if known is not None:
                if client.mount_blob(repo, blob.digest, known):
                    placed.note(registry, blob.digest, repo)
                    return "mount"
                placed.cannot_mount(registry)
            how = self._send(blob, progress)
            placed.note(registry, blob.digest, repo)
            return how

    def _send(self, blob: _Blob, progress: Callable[[How], Callable[[int], None]]) -> How:
        client, repo = self.client, self.ref.repository
        if blob.data is not None:
            client.upload_blob(repo, blob.digest, blob.size, blob.data, progress=progress("upload"))
            return "upload"
        layer = blob.layer
        if layer is None:  # pragma: no cover - _blobs gives every blob data or a layer
            raise LambdashipError(f"blob {blob.digest} has no content")
        src = layer.source
        if (src is not None and src.repository != repo and _same_registry(src.registry, self.ref.registry)
                and client.mount_blob(repo, blob.digest, src.repository)):
            return "mount"
        if layer.path is not None and layer.path.is_file():
            client.upload_blob(repo, blob.digest, blob.size, layer.path, progress=progress("upload"))
            return "upload"
        if src is None:  # pragma: no cover - _blobs refuses such layers
            raise LambdashipError(f"layer {blob.digest} has no source", "rebuild the image")
        source = RegistryClient.for_registry(src.registry, self.keychain)
        # A callable source: re-opened (from the start) if the upload has to restart.
        client.upload_blob(repo, blob.digest, blob.size,
                           lambda: source.stream_blob(src.repository, blob.digest, size=blob.size),
                           progress=progress("stream"))
        return "stream"


@dataclass(frozen=True)
class Ahead:
    """Blobs :func:`send_ahead` put into a repository: (digest → how) and where."""

    registry: str
    repository: str
    done: dict[str, How]


def send_ahead(layers: Sequence[Layer], target: str, *, keychain: Keychain | None = None,
               stop: threading.Event | None = None) -> Ahead:
    """Put ``layers`` into ``target``'s repository without a manifest (as :func:`push_image` would:
    skip, mount, stream or upload), so that a push after it has less to do: a build's base layers,
    sent while the build still installs and compresses. Raises :class:`Stopped` soon after ``stop``
    is set. A blob that failed is left to the push (which reports its error); the others count."""
    ref, _ = check_target(target)
    pusher = _Pusher(ref, PushResult("", "", ref.repository, []), keychain, None, stop)
    mine = [_Blob(lay.digest, lay.size, "layer", layer=lay) for lay in {lay.digest: lay for lay in layers}.values()]
    try:
        _send_all(pusher, mine)
    except Stopped:
        raise
    except Exception:  # what did not pass is the push's to send and to report
        pass
    how = {action: h for h, action in ACTION.items()}
    return Ahead(ref.registry, ref.repository, {b["digest"]: how[b["action"]] for b in pusher.result.blobs})


def push_image(image: Image, target: str, tags: Sequence[str] = (), *, keychain: Keychain | None = None,
               on_event: EventSink | None = None, ahead: Ahead | None = None) -> PushResult:
    """Push ``image`` to ``target`` (``registry/repository[:tag]``), tagging it with ``tags``.

    ``keychain`` answers for the target and the base image's registry (default: docker
    config; ``lambdaship.registries.default_keychain()`` adds ECR). Returns a ``PushResult``;
    ``image_ref`` is ``registry/repository@sha256:...``. Raises ``LambdashipError`` (one line)
    when the push cannot complete; nothing is tagged in that case. ``ahead``: blobs
    :func:`send_ahead` already put into this repository (counted as it sent them, not asked about).
    """
    ref, all_tags = check_target(target, tags)
    blobs = _blobs(image)
    repo = ref.repository
    result = PushResult(image_ref=f"{ref.registry}/{repo}@{image.digest}", digest=image.digest,
                        repository=repo, tags=all_tags)
    pusher = _Pusher(ref, result, keychain, on_event)
    held: Held | None = getattr(image, "held", None)  # optional: see Held
    if held is not None and held.source.repository == repo and _same_name(held.source.registry, ref.registry):
        pusher.presumed = held.digests
    pusher.emit(PushEvent("start", image.digest, 0, sum(b.size for b in blobs)))
    done = ahead.done if ahead is not None and (ahead.registry, ahead.repository) == (ref.registry, repo) else {}
    for b in blobs:
        if b.digest in done:
            pusher.record(b, done[b.digest], ahead=True)
    _send_all(pusher, [b for b in blobs if b.digest not in done])
    order = [x.digest for x in blobs]
    result.blobs.sort(key=lambda b: order.index(b["digest"]))

    # Every blob is in the repository now: the manifest goes last.
    tags = all_tags or [image.digest]
    try:
        pusher.client.put_manifest(repo, tags[0], image.manifest, image.media_type)
    except RegistryError as exc:
        if exc.code not in ("MANIFEST_BLOB_UNKNOWN", "BLOB_UNKNOWN") or not pusher.assumed:
            raise
        # A blob presumed there is not (deleted since its image was pushed): ask about each of
        # those, send what is missing, then the manifest once more.
        again = [b for b in blobs if b.digest in pusher.assumed]
        result.blobs = [b for b in result.blobs if b["digest"] not in pusher.assumed]
        result.skipped_blobs -= len(again)
        pusher.trust = False
        try:
            _send_all(pusher, again)
        except RegistryError as gone:
            if gone.status != 404:
                raise
            raise RegistryError(f"{repo} no longer holds a layer of the image it runs ({gone})",
                                "deploy once with LAMBDASHIP_REUSE=0: every layer is rebuilt or checked",
                                status=404, code=gone.code) from None
        result.blobs.sort(key=lambda b: order.index(b["digest"]))
        pusher.client.put_manifest(repo, tags[0], image.manifest, image.media_type)
    pusher.emit(PushEvent("manifest", image.digest, len(image.manifest), len(image.manifest), tag=tags[0]))
    for t in tags[1:]:
        pusher.client.put_manifest(repo, t, image.manifest, image.media_type)
        pusher.emit(PushEvent("manifest", image.digest, len(image.manifest), len(image.manifest), tag=t))
    return result


def _send_all(pusher: _Pusher, blobs: list[_Blob]) -> None:
    with cf.ThreadPoolExecutor(PARALLEL) as pool:
        # Biggest first: the long transfers start at once, small ones fill the gaps.
        futures = [pool.submit(pusher.one, b) for b in sorted(blobs, key=lambda b: -b.size)]
        try:
            for fut in cf.as_completed(futures):
                fut.result()
        except BaseException:
            for f in futures:
                f.cancel()
            raise
