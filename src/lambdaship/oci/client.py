"""``RegistryClient``: one registry over the OCI distribution API — manifests, blobs, tags.

Speaks to the CNCF distribution registry, ECR, Docker Hub, GHCR, ... Uploads (monolithic,
chunked, resumed, mounted) are in ``oci.upload``; credentials come from a ``Keychain``
(``oci.auth``); retries and read bounds from ``oci.transport``. Every read is bounded: manifests,
configs and tag lists by ``MANIFEST_MAX``, blobs by their descriptor's size, verified by sha256
as they stream.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import threading
import time
import urllib.parse
from collections.abc import Iterator, Sequence
from pathlib import Path

import httpx

from lambdaship.oci import upload
from lambdaship.oci.auth import Keychain, RegistryAuth, default_keychain
from lambdaship.oci.media import DOCKER_MANIFEST, DOCKER_MANIFEST_LIST, OCI_INDEX, OCI_MANIFEST, sha256_digest
from lambdaship.oci.reference import base_url, local_repository_prefix, registry_host
from lambdaship.oci.transport import (
    HTTP_FAILURES,
    MANIFEST_MAX,
    BlobVerifier,
    RegistryError,
    Transient,
    error_code,
    failure,
    http_client,
    retry_settings,
    retrying,
    translating,
)

ALL = (OCI_MANIFEST, DOCKER_MANIFEST, OCI_INDEX, DOCKER_MANIFEST_LIST)


class RegistryClient(upload.Uploads):
    """A connection to one registry. Thread-safe for concurrent blob operations."""

    _cache: dict[tuple[str, str, int], RegistryClient] = {}
    _cache_lock = threading.Lock()

    def __init__(self, registry: str, *, keychain: Keychain | None = None, timeout: float = 60.0) -> None:
        self.registry = registry.rstrip("/")
        self.url = base_url(self.registry)
        self.host = registry_host(self.url)
        self._auth = RegistryAuth(keychain or default_keychain(), registry_host(self.registry), self.url)
        self.monolithic_max = upload.MONOLITHIC_MAX
        self.chunk_size = upload.CHUNK_SIZE
        self.stream_chunk_size = upload.STREAM_CHUNK_SIZE
        self._http = http_client(self.url, self._auth, timeout)
        # Another region's repositories in the local stand-in registry (see oci.reference).
        self._prefix = local_repository_prefix(self.registry)

    def _local(self, path: str, params: dict[str, str] | None = None) -> tuple[str, dict[str, str] | None]:
        """A relative ``/v2/<repo>/…`` path (and a mount's ``from``) in this region's namespace;
        upload locations the registry sent (absolute or not) are used as they are."""
        if (not self._prefix or not path.startswith("/v2/") or path.startswith("/v2/_catalog")
                or re.match(r"^/v2/.+/blobs/uploads/[^/?]+", path)):
            return path, params
        if params and "from" in params:
            params = {**params, "from": self._prefix + params["from"]}
        return "/v2/" + self._prefix + path[4:], params

    @classmethod
    def for_registry(cls, registry: str, keychain: Keychain | None = None) -> RegistryClient:
        """A (cached) client for ``registry`` asking ``keychain`` (default: docker config) for
        credentials, only when the registry asks. ``lambdaship.registries.registry_client`` passes
        the default keychain with ECR in it."""
        registry = registry.rstrip("/")
        keychain = keychain or default_keychain()
        key = (registry, base_url(registry), id(keychain))
        with cls._cache_lock:
            client = cls._cache.get(key)
            if client is None:
                client = cls(registry, keychain=keychain)
                cls._cache[key] = client
            return client

    @classmethod
    def clear_cache(cls) -> None:
        with cls._cache_lock:
            for c in cls._cache.values():
                c.close()
            cls._cache.clear()

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- plumbing --------------------------------------------------------------------------
    def _describe(self, method: str, path: str) -> str:
        return f"{method} {self.host}{urllib.parse.urlsplit(path).path}"

    def _raise(self, response: httpx.Response, what: str) -> None:
        code, message = error_code(response)
        status = response.status_code
        hint = None
        if status in (401, 403):
            hint = (
                "check your registry credentials (for ECR: AWS credentials with ecr:* permissions; "
                "for others: docker login or skopeo login)"
            )
        elif status == 429 or status >= 500:
            hint = "the registry is unavailable or rate-limiting; try again later"
        detail = f"{code}: {message}" if code else message
        raise RegistryError(f"registry {what} failed: HTTP {status} {detail}".rstrip(), hint, status=status,
                            code=code)

    def request(self, method: str, path: str, *, ok: Sequence[int] = (200,), allow: Sequence[int] = (),
                content: bytes | None = None, headers: dict[str, str] | None = None,
                params: dict[str, str] | None = None, retry: bool = True,
                limit: int = MANIFEST_MAX) -> httpx.Response:
        """One request with retries; the answer is read, at most ``limit`` bytes. Statuses in
        ``ok`` or ``allow`` are returned, others raise ``RegistryError``."""
        what = self._describe(method, path)
        path, params = self._local(path, params)
        attempts = retrying() if retry else iter([contextlib.nullcontext()])
        try:
            for attempt in attempts:
                with attempt:
                    response = self._http.request(method, path, content=content, headers=headers, params=params,
                                                  extensions={"lambdaship_cap": limit})
                    if response.status_code in ok or response.status_code in allow:
                        return response
                    if response.status_code == 429 or response.status_code >= 500:
                        raise Transient(response)
                    self._raise(response, what)
        except Transient as exc:
            self._raise(exc.response, what)
        except HTTP_FAILURES as exc:
            raise failure(exc, what, self.url) from None
        raise AssertionError("unreachable")  # pragma: no cover

    # -- manifests -------------------------------------------------------------------------
    @translating
    def get_manifest(self, repo: str, ref: str, accept: Sequence[str] = ALL) -> tuple[bytes, str, str]:
        """(raw bytes, media type, digest); at most ``MANIFEST_MAX`` bytes. A digest ``ref`` is
        verified against the bytes."""
        try:
            r = self.request("GET", f"/v2/{repo}/manifests/{ref}", headers={"Accept": ", ".join(accept)})
        except RegistryError as exc:
            if exc.status == 404:
                raise RegistryError(
                    f"image {self.registry}/{repo}{'@' if ref.startswith('sha256:') else ':'}{ref} not found",
                    "check the repository, tag or digest", status=404, code=exc.code,
                ) from None
            raise
        data = r.content
        digest = sha256_digest(data)
        if ref.startswith("sha256:") and digest != ref:
            raise RegistryError(f"registry {self.host} returned a manifest for {repo}@{ref} with digest {digest}",
                                "the registry or a proxy in between is broken or hostile")
        media_type = r.headers.get("Content-Type", "").split(";")[0].strip()
        if not media_type or media_type in ("application/json", "application/octet-stream"):
            try:
                doc = json.loads(data)
                media_type = (doc.get("mediaType") if isinstance(doc, dict) else None) or OCI_MANIFEST
            except (ValueError, UnicodeDecodeError):
                media_type = OCI_MANIFEST
        return data, str(media_type), digest

    @translating
    def head_manifest(self, repo: str, ref: str) -> str | None:
        """The manifest's digest, or None if the registry does not have it."""
        r = self.request("HEAD", f"/v2/{repo}/manifests/{ref}", allow=(404,), headers={"Accept": ", ".join(ALL)})
        if r.status_code == 404:
            return None
        digest = r.headers.get("Docker-Content-Digest")
        if digest:
            return digest
        return self.get_manifest(repo, ref)[2]

    @translating
    def put_manifest(self, repo: str, ref: str, data: bytes, media_type: str) -> str:
        """PUT a manifest under a tag or its digest; returns the digest, checked against ours."""
        ours = sha256_digest(data)
        if ref.startswith("sha256:") and ref != ours:
            raise ValueError(f"manifest digest {ours} does not match reference {ref}")
        r = self.request("PUT", f"/v2/{repo}/manifests/{ref}", ok=(200, 201, 202), content=data,
                         headers={"Content-Type": media_type})
        theirs = r.headers.get("Docker-Content-Digest")
        if theirs and theirs != ours:
            raise RegistryError(
                f"registry {self.host} stored the manifest of {repo} as {theirs}, expected {ours}",
                "the registry rewrote the manifest; push to an OCI-compliant registry",
            )
        return ours

    @translating
    def delete_manifest(self, repo: str, digest: str) -> None:
        self.request("DELETE", f"/v2/{repo}/manifests/{digest}", ok=(200, 202), allow=(404,))

    @translating
    def list_tags(self, repo: str) -> list[str]:
        r = self.request("GET", f"/v2/{repo}/tags/list", allow=(404,))
        if r.status_code == 404:
            return []
        try:
            tags = r.json().get("tags") or []
        except (ValueError, AttributeError, UnicodeDecodeError):
            raise RegistryError(f"registry {self.host} answered tags/list of {repo} with something else") from None
        return [t for t in tags if isinstance(t, str)]

    # -- blobs (read) ----------------------------------------------------------------------
    @translating
    def blob_exists(self, repo: str, digest: str) -> bool:
        r = self.request("HEAD", f"/v2/{repo}/blobs/{digest}", allow=(404,))
        return r.status_code == 200

    def _declared_size(self, repo: str, digest: str) -> int:
        r = self.request("HEAD", f"/v2/{repo}/blobs/{digest}")
        declared = r.headers.get("Content-Length", "")
        if not declared.isdigit():
            raise RegistryError(f"registry {self.host} declares no size for blob {digest} of {repo}; refused",
                                "the registry is not OCI-compliant")
        return int(declared)

    @translating
    def get_blob(self, repo: str, digest: str, size: object = None, *, cap: int = MANIFEST_MAX) -> bytes:
        """A small blob (a config) in memory: exactly ``size`` bytes when the descriptor's size is
        given (an untrusted value: checked here), never more than ``cap``; verified by digest."""
        if size is not None and (not isinstance(size, int) or isinstance(size, bool) or size < 0):
            raise RegistryError(f"the descriptor of blob {digest} in {self.host}/{repo} has an invalid size "
                                f"{str(size)[:40]!r}", "the image's manifest is broken; rebuild or re-push it")
        if size is not None and size > cap:
            raise RegistryError(f"blob {digest} of {self.host}/{repo} declares {size:,} bytes, more than the "
                                f"{cap:,} allowed for an image config; refused", "check the image reference")
        with self.stream_blob(repo, digest, size=cap if size is None else size, exact=size is not None) as it:
            return b"".join(it)

    def _open_blob(self, repo: str, digest: str, offset: int, size: int) -> tuple[httpx.Response, int]:
        """A streamed GET of the blob from ``offset``: (response, bytes to skip at its start)."""
        path = f"/v2/{repo}/blobs/{digest}"
        headers = {"Range": f"bytes={offset}-"} if offset else {}
        try:
            return self._open_blob_once(repo, digest, offset, size, headers)
        except Transient as exc:
            self._raise(exc.response, self._describe("GET", path))
        raise AssertionError("unreachable")  # pragma: no cover

    def _open_blob_once(self, repo: str, digest: str, offset: int, size: int,
                        headers: dict[str, str]) -> tuple[httpx.Response, int]:
        path = f"/v2/{repo}/blobs/{digest}"
        for attempt in retrying():
            with attempt:
                req = self._http.build_request("GET", self._local(path)[0], headers=headers,
                                               extensions={"lambdaship_stream": True})
                resp = self._http.send(req, stream=True)
                if resp.status_code in (200, 206):
                    declared = resp.headers.get("Content-Length", "")
                    rest = size if resp.status_code == 200 else size - offset
                    if declared.isdigit() and int(declared) > rest:
                        resp.close()
                        raise RegistryError(
                            f"blob {digest} from {self.host}/{repo} is larger than its declared {size:,} bytes "
                            f"(the registry announced {int(declared):,}); refused",
                            "the registry or a proxy in between is broken or hostile")
                    # A server that ignores Range answers 200 with the whole blob: skip ahead.
                    return resp, offset if resp.status_code == 200 else 0
                resp.read()
                resp.close()
                if resp.status_code == 429 or resp.status_code >= 500:
                    raise Transient(resp)
                self._raise(resp, self._describe("GET", path))
        raise AssertionError("unreachable")  # pragma: no cover

    @contextlib.contextmanager
    def stream_blob(self, repo: str, digest: str, *, size: int, start: int = 0,
                    exact: bool = True) -> Iterator[Iterator[bytes]]:
        """The blob's bytes as an iterator, bounded by ``size`` (the descriptor's) and hashed as
        they arrive: more bytes than ``size``, fewer (``exact``), or another digest raise
        ``RegistryError`` at once. A connection lost mid-body resumes with a Range request."""
        verifier = BlobVerifier(digest, size, f"{self.host}/{repo}", start, exact=exact)
        state: dict[str, httpx.Response | None] = {"response": None}

        def chunks() -> Iterator[bytes]:
            failures = 0
            while True:
                skip = 0
                if state["response"] is None:
                    try:
                        state["response"], skip = self._open_blob(repo, digest, verifier.received, size)
                    except HTTP_FAILURES as exc:
                        raise failure(exc, self._describe("GET", f"/v2/{repo}/blobs/{digest}"), self.url) from None
                resp = state["response"]
                try:
                    # Network-sized pieces: a cut mid-body loses nothing already received.
                    for chunk in resp.iter_raw():
                        if skip:
                            cut = min(skip, len(chunk))
                            chunk, skip = chunk[cut:], skip - cut
                            if not chunk:
                                continue
                        verifier.feed(chunk)
                        yield chunk
                    resp.close()
                    state["response"] = None
                    break
                except HTTP_FAILURES as exc:
                    resp.close()
                    state["response"] = None
                    if not isinstance(exc, httpx.TransportError):
                        raise failure(exc, self._describe("GET", f"/v2/{repo}/blobs/{digest}"), self.url) from None
                    failures += 1
                    if failures > retry_settings()["attempts"]:
                        raise RegistryError(
                            f"registry GET {self.host}/v2/{repo}/blobs/{digest} kept failing mid-body",
                            "check the network and try again",
                        ) from None
                    time.sleep(min(0.1 * 2**failures, 5))
            verifier.finish()

        try:
            yield chunks()
        finally:
            if state["response"] is not None:
                state["response"].close()

    @translating
    def download_blob(self, repo: str, digest: str, dest: Path, *, size: int | None = None) -> Path:
        """Download to ``dest`` (atomically), bounded by ``size`` (the descriptor's) and verified;
        returns ``dest``. Without ``size``, the length the registry declares on ``HEAD`` bounds it."""
        if size is None:
            size = self._declared_size(repo, digest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.{os.getpid()}.{threading.get_ident()}.part")
        try:
            with tmp.open("wb") as fh, self.stream_blob(repo, digest, size=size) as it:
                for chunk in it:
                    fh.write(chunk)
            os.replace(tmp, dest)
        finally:
            tmp.unlink(missing_ok=True)
        return dest
