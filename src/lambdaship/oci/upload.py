"""Blob uploads: monolithic ``PUT`` or chunked ``PATCH``es, resumed or restarted; mounts.

Distribution does not support the single-request ``POST ?digest=``: every upload is ``POST``
(202 + ``Location``) then either one ``PUT …&digest=`` with the body (≤ ``MONOLITHIC_MAX``) or
``PATCH``es of ``CHUNK_SIZE`` with ``Content-Range`` and a final empty ``PUT``. A failed
``PATCH`` resumes at the offset the registry reports (``GET`` on the upload URL → ``Range``);
a lost session restarts (the source is re-read). The registry verifies the digest on the
final ``PUT``. ``Uploads`` is a mixin of ``oci.client.RegistryClient``.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import httpx

from lambdaship.oci.media import sha256_digest
from lambdaship.oci.transport import (
    READ_SIZE,
    RegistryError,
    backoff,
    error_code,
    log,
    retry_after,
    retry_settings,
    translating,
)

if TYPE_CHECKING:
    from lambdaship.oci.auth import RegistryAuth

# Upload tuning: blobs up to MONOLITHIC_MAX go in one PUT; bigger ones in CHUNK_SIZE PATCHes.
MONOLITHIC_MAX = 8 * 1024 * 1024
CHUNK_SIZE = 16 * 1024 * 1024
STREAM_CHUNK_SIZE = 8 * 1024 * 1024  # registry-to-registry: smaller chunks, bounded memory

BlobInput = Path | bytes | Iterable[bytes] | Callable[[], Any]


class Uploads:
    """The upload half of ``RegistryClient`` (uses its ``request``, ``_http`` and auth)."""

    host: str
    url: str
    monolithic_max: int
    chunk_size: int
    stream_chunk_size: int
    _http: httpx.Client
    _auth: RegistryAuth

    if TYPE_CHECKING:
        def request(self, method: str, path: str, **kw: Any) -> httpx.Response: ...
        def blob_exists(self, repo: str, digest: str) -> bool: ...
        def _raise(self, response: httpx.Response, what: str) -> None: ...
        def _describe(self, method: str, path: str) -> str: ...

    @translating
    def mount_blob(self, repo: str, digest: str, from_repo: str) -> bool:
        """Cross-repository mount; True when the registry mounted it (201), False otherwise.

        A registry that cannot mount (unknown blob, ECR without BLOB_MOUNTING) answers 202 and
        opens an upload session, which is cancelled here: the caller uploads instead.
        """
        self._auth.add_scope(repo, f"repository:{from_repo}:pull")
        r = self.request("POST", f"/v2/{repo}/blobs/uploads/", ok=(201, 202),
                         params={"mount": digest, "from": from_repo})
        if r.status_code == 201:
            return True
        loc = r.headers.get("Location")
        if loc:
            with contextlib.suppress(RegistryError):
                self.request("DELETE", loc, ok=(200, 202, 204), allow=(400, 404, 405), retry=False)
        return False

    @translating
    def upload_blob(self, repo: str, digest: str, size: int, source: BlobInput, *,
                    progress: Callable[[int], None] | None = None) -> None:
        """Upload one blob (callers check ``blob_exists`` first; this does not).

        ``source``: a file, bytes, an iterable of byte chunks, or a zero-argument callable
        returning a context manager of such an iterable (re-opened when the upload restarts).
        Blobs up to ``monolithic_max`` go in one ``PUT``; larger ones in ``chunk_size``
        ``PATCH`` requests. A failed request is retried; an interrupted chunked upload resumes
        from the offset the registry reports, or restarts when the session is gone. The
        registry verifies the digest on the final ``PUT``. ``progress`` gets byte deltas
        (negative when an upload restarts).
        """
        what = self._describe("PUT", f"/v2/{repo}/blobs/{digest}")
        restarts = 0
        max_restarts = retry_settings()["attempts"]
        sent = 0

        def report(n: int) -> None:
            nonlocal sent
            sent += n
            if progress and n:
                progress(n)

        while True:
            try:
                with _open_source(source) as chunks:
                    if size <= self.monolithic_max:
                        self._upload_monolithic(repo, digest, chunks.read_all(size), report)
                    else:
                        self._upload_chunked(repo, digest, size, chunks, report)
                return
            except _RestartUpload as exc:
                if isinstance(exc, _DigestInvalid) and _local_digest(source) not in (None, digest):
                    raise RegistryError(f"the local blob {digest} does not match its digest",
                                        "the file changed after the build; rebuild the image") from None
                restarts += 1
                log.debug("upload of %s to %s restarts (%s)", digest, repo, exc)
                if progress and sent:
                    progress(-sent)
                sent = 0
                if self.blob_exists(repo, digest):
                    return
                if restarts > max_restarts:
                    raise RegistryError(f"registry {what} failed: the upload kept being interrupted ({exc})",
                                        "the registry or network is unreliable; try again later") from None
                time.sleep(min(retry_settings()["wait_initial"] * 2**restarts, 5.0))

    def _start_upload(self, repo: str) -> str:
        r = self.request("POST", f"/v2/{repo}/blobs/uploads/", ok=(202,))
        loc = r.headers.get("Location")
        if not loc:
            raise RegistryError(f"registry {self.host} opened an upload for {repo} without a Location")
        return loc

    def _upload_monolithic(self, repo: str, digest: str, data: bytes, report: Callable[[int], None]) -> None:
        if len(data) != 0 and sha256_digest(data) != digest:
            raise RegistryError(f"the local blob {digest} does not match its digest", "rebuild the image")
        loc = self._start_upload(repo)
        self._finish(repo, loc, digest, data, report, 0)

    def _finish(self, repo: str, loc: str, digest: str, data: bytes, report: Callable[[int], None],
                offset: int = 0) -> None:
        """The final PUT (with the last bytes, if any) at ``offset``; lost answers are settled with HEAD."""
        settings = retry_settings()
        for failures in range(1, settings["attempts"] + 1):
            wait = None
            try:
                r = self._http.put(_with_query(loc, "digest", digest), content=data,
                                   headers={"Content-Type": "application/octet-stream"})
            except httpx.TransportError as exc:
                failure = type(exc).__name__
            else:
                if r.status_code in (200, 201, 204):
                    theirs = r.headers.get("Docker-Content-Digest")
                    if theirs and theirs != digest:
                        raise RegistryError(f"registry {self.host} stored blob {digest} as {theirs}")
                    report(len(data))
                    return
                code, _ = error_code(r)
                if r.status_code == 400 and code == "DIGEST_INVALID" and not self.blob_exists(repo, digest):
                    raise _DigestInvalid("the registry computed a different digest")
                if r.status_code < 500 and r.status_code not in (400, 404, 416, 429):
                    self._raise(r, self._describe("PUT", f"/v2/{repo}/blobs/{digest}"))
                failure = f"HTTP {r.status_code} {code or ''}".strip()
                wait = retry_after(r) if r.status_code == 429 else None
            # Did an earlier attempt land? Otherwise continue the session if it is intact.
            if self.blob_exists(repo, digest):
                report(len(data))
                return
            backoff(failures, wait)
            status = self._upload_status(loc)
            if status is None or status[1] != offset:
                raise _RestartUpload(f"{failure} on the final PUT")
            loc = status[0]
        raise _RestartUpload("the final PUT kept failing")

    def _upload_status(self, loc: str) -> tuple[str, int] | None:
        """(location, next offset) of an upload session, or None when the registry lost it."""
        try:
            r = self.request("GET", loc, ok=(204, 200), allow=(400, 404, 416))
        except RegistryError:
            return None
        if r.status_code not in (200, 204):
            return None
        m = re.match(r"^(?:bytes=)?(\d+)-(\d+)$", r.headers.get("Range", ""))
        new_loc = r.headers.get("Location") or loc
        if not m:
            return new_loc, 0
        end = int(m.group(2))
        return new_loc, end + 1 if end > 0 else 0  # "0-0" is what registries say for nothing yet

    def _patch(self, loc: str, data: bytes, start: int, report: Callable[[int], None]) -> str:
        """PATCH ``data`` at offset ``start``; resumes after failures; returns the next Location."""
        failures = 0
        offset = start
        settings = retry_settings()
        while True:
            body = data[offset - start:]
            try:
                r = self._http.patch(loc, content=body, headers={
                    "Content-Type": "application/octet-stream",
                    "Content-Range": f"{offset}-{offset + len(body) - 1}",
                })
                if r.status_code == 202:
                    report(len(body))
                    return r.headers.get("Location") or loc
                if r.status_code not in (416, 429) and r.status_code < 500:
                    code, _ = error_code(r)
                    if r.status_code in (400, 404) and code in ("BLOB_UPLOAD_INVALID", "BLOB_UPLOAD_UNKNOWN"):
                        raise _RestartUpload(code)
                    self._raise(r, self._describe("PATCH", loc))
                wait = retry_after(r) if r.status_code == 429 else None
                failure = f"HTTP {r.status_code}"
            except httpx.TransportError as exc:
                wait, failure = None, type(exc).__name__
            failures += 1
            if failures > settings["attempts"]:
                raise _RestartUpload(f"PATCH kept failing ({failure})")
            backoff(failures, wait)
            status = self._upload_status(loc)
            if status is None:
                raise _RestartUpload(f"upload session lost after {failure}")
            loc, next_offset = status
            if next_offset >= start + len(data):
                report(start + len(data) - offset)
                return loc
            if next_offset < start:
                raise _RestartUpload("the registry lost earlier chunks")
            if next_offset > offset:
                report(next_offset - offset)
            log.debug("upload resumes at offset %d after %s", next_offset, failure)
            offset = next_offset

    def _upload_chunked(self, repo: str, digest: str, size: int, chunks: _Chunks,
                        report: Callable[[int], None]) -> None:
        # No hashing here: the registry checks the digest on the final PUT (and a streamed
        # source checks itself); a local file is hashed only if the registry disagrees.
        loc = self._start_upload(repo)
        offset = 0
        streamed = not isinstance(chunks, _FileChunks)
        chunk_size = min(self.chunk_size, self.stream_chunk_size) if streamed else self.chunk_size
        for data in chunks.chunks(chunk_size):
            loc = self._patch(loc, data, offset, report)
            offset += len(data)
        if offset != size:
            raise RegistryError(
                f"the source of blob {digest} gave {offset} bytes, expected {size}",
                "the source changed while pushing; rebuild or re-resolve the base image",
            )
        self._finish(repo, loc, digest, b"", report, offset)



class _RestartUpload(Exception):
    """The upload session is gone or unusable: start a new one (counts against the attempts)."""


class _DigestInvalid(_RestartUpload):
    """The registry computed another digest for what we sent."""


def _local_digest(source: BlobInput) -> str | None:
    """The digest of a file or bytes source (None for streams, which verify themselves)."""
    if isinstance(source, bytes | bytearray | memoryview):
        return sha256_digest(bytes(source))
    if not isinstance(source, Path):
        return None
    h = hashlib.sha256()
    with source.open("rb") as fh:
        while data := fh.read(READ_SIZE * 4):
            h.update(data)
    return "sha256:" + h.hexdigest()


def _with_query(url: str, key: str, value: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}{urllib.parse.urlencode({key: value})}"


BlobInput = Path | bytes | Iterable[bytes] | Callable[[], Any]


class _Chunks:
    """A blob source read in pieces of a given size."""

    def __init__(self, it: Iterator[bytes]) -> None:
        self._it = it

    def chunks(self, size: int) -> Iterator[bytes]:
        pieces: list[bytes] = []
        have = 0
        for piece in self._it:
            pieces.append(piece)
            have += len(piece)
            if have >= size:
                data = b"".join(pieces)
                for i in range(0, len(data) - size + 1, size):
                    yield data[i:i + size]
                rest = data[len(data) - len(data) % size:] if len(data) % size else b""
                pieces, have = ([rest] if rest else []), len(rest)
        if pieces:
            yield b"".join(pieces)

    def read_all(self, size: int) -> bytes:
        return b"".join(self.chunks(max(size, 1)))


class _FileChunks(_Chunks):
    def __init__(self, fh: IO[bytes]) -> None:
        super().__init__(iter(lambda: fh.read(READ_SIZE), b""))
        self._fh = fh

    def chunks(self, size: int) -> Iterator[bytes]:
        while data := self._fh.read(size):
            yield data


class _IterChunks(_Chunks):
    pass


PREFETCH_PIECES = 64  # pieces (network reads, <= 64 KiB each from httpx) read ahead from a streamed source


@contextlib.contextmanager
def _prefetch(it: Iterator[bytes]) -> Iterator[Iterator[bytes]]:
    """Read ``it`` in a background thread, a bounded number of pieces ahead.

    Downloading from the source registry then overlaps with uploading to the target.
    """
    import queue

    q: queue.Queue[Any] = queue.Queue(maxsize=PREFETCH_PIECES)
    stop = threading.Event()
    end = object()

    def produce() -> None:
        try:
            for piece in it:
                while not stop.is_set():
                    try:
                        q.put(piece, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            item: Any = end
        except BaseException as exc:  # handed to the consumer
            item = exc
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    thread = threading.Thread(target=produce, name="lambdaship-prefetch", daemon=True)
    thread.start()

    def consume() -> Iterator[bytes]:
        while True:
            item = q.get()
            if item is end:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    try:
        yield consume()
    finally:
        stop.set()
        thread.join(timeout=5)  # a producer stuck in a read ends when the source closes


@contextlib.contextmanager
def _open_source(source: BlobInput) -> Iterator[_Chunks]:
    if isinstance(source, bytes | bytearray | memoryview):
        yield _Chunks(iter([bytes(source)]))
    elif isinstance(source, Path):
        with source.open("rb") as fh:
            yield _FileChunks(fh)
    elif callable(source):
        with source() as it, _prefetch(iter(it)) as ahead:
            yield _IterChunks(ahead)
    else:
        with _prefetch(iter(source)) as ahead:
            yield _IterChunks(ahead)

