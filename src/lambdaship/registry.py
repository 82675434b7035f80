"""OCI distribution registry client (httpx): references, auth, manifests and blobs.

Every registry call in lambdaship goes through ``RegistryClient``. It speaks the OCI
distribution API (the CNCF distribution registry, ECR, Docker Hub, GHCR, ...):

* auth: anonymous; HTTP basic (ECR: ``AWS:<token>`` from ``GetAuthorizationToken``, fetched
  lazily when the registry asks for it); bearer tokens through the ``WWW-Authenticate``
  challenge flow (Docker Hub, GHCR, ECR Public), cached per repository and access level;
* retries with backoff and jitter (stamina) for 429 (honouring ``Retry-After``), 5xx,
  connection resets and timeouts; after the last attempt one ``LambdashipError`` line;
* ``LAMBDASHIP_REGISTRY_URL`` replaces ECR hosts (``*.dkr.ecr.<region>.amazonaws.com``), so
  the local stack's registry stands in for ECR without any special case elsewhere.
"""

from __future__ import annotations

import base64
import contextlib
import functools
import hashlib
import ipaddress
import json
import logging
import os
import re
import ssl
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import httpx

from lambdaship.errors import LambdashipError
from lambdaship.image.model import (
    DOCKER_MANIFEST,
    DOCKER_MANIFEST_LIST,
    OCI_INDEX,
    OCI_MANIFEST,
    sha256_digest,
)

ALL = (OCI_MANIFEST, DOCKER_MANIFEST, OCI_INDEX, DOCKER_MANIFEST_LIST)
DOCKER_HUB = "docker.io"
DOCKER_HUB_API = "https://registry-1.docker.io"
ECR_HOST_RE = re.compile(r"^(?P<account>\d{12})\.dkr\.ecr(?:-fips)?\.(?P<region>[a-z0-9-]+)\.amazonaws\.com(?:\.cn)?$")
DIGEST_RE = re.compile(r"^sha256:[0-9a-f]{64}$")
REPO_RE = re.compile(r"^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$")
REGISTRY_URL_ENV = "LAMBDASHIP_REGISTRY_URL"

# Upload tuning: blobs up to MONOLITHIC_MAX go in one PUT; bigger ones in CHUNK_SIZE PATCHes.
MONOLITHIC_MAX = 8 * 1024 * 1024
CHUNK_SIZE = 16 * 1024 * 1024
STREAM_CHUNK_SIZE = 8 * 1024 * 1024  # registry-to-registry: smaller chunks, bounded memory
READ_SIZE = 1024 * 1024


# ---------------------------------------------------------------------------------------------
# References
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Reference:
    """An image reference: ``registry/repository[:tag][@digest]``.

    ``registry`` is a host[:port] (``public.ecr.aws``, ``127.0.0.1:5000``, ``docker.io``) or,
    when the reference was written with a scheme, a base URL (``http://127.0.0.1:5000``).
    """

    registry: str
    repository: str
    tag: str | None = None
    digest: str | None = None

    @classmethod
    def parse(cls, ref: str) -> Reference:
        text = ref.strip()
        if not text:
            raise LambdashipError("empty image reference", "use registry/repository[:tag][@sha256:...]")
        scheme = ""
        m = re.match(r"^(https?)://", text)
        if m:
            scheme = m.group(0)
            text = text[m.end():]
        digest = None
        if "@" in text:
            text, digest = text.split("@", 1)
            if not DIGEST_RE.match(digest):
                raise LambdashipError(f"{ref!r} has an invalid digest", "digests look like sha256:<64 hex digits>")
        first, sep, rest = text.partition("/")
        if scheme or (sep and ("." in first or ":" in first or first == "localhost")):
            registry, path = scheme + first, rest
        else:
            registry, path = DOCKER_HUB, text
        tag = None
        last = path.rsplit("/", 1)[-1]
        if ":" in last:
            path, tag = path.rsplit(":", 1)
        if registry == DOCKER_HUB and "/" not in path:
            path = "library/" + path
        if not path or not REPO_RE.match(path):
            raise LambdashipError(
                f"{ref!r} is not a valid image reference",
                "repository names are lowercase letters, digits and . _ - separated by /",
            )
        if tag is not None and not re.match(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$", tag):
            raise LambdashipError(f"{ref!r} has an invalid tag {tag!r}", "tags are up to 128 of A-Z a-z 0-9 _ . -")
        if tag is None and digest is None:
            tag = "latest"
        return cls(registry=registry, repository=path, tag=tag, digest=digest)

    @property
    def ref(self) -> str:
        """What to ask the registry for: the digest when known, else the tag."""
        return self.digest or self.tag or "latest"

    @property
    def host(self) -> str:
        return re.sub(r"^https?://", "", self.registry)

    def with_digest(self, digest: str) -> Reference:
        return Reference(self.registry, self.repository, None, digest)

    def __str__(self) -> str:
        out = f"{self.registry}/{self.repository}"
        if self.tag:
            out += f":{self.tag}"
        if self.digest:
            out += f"@{self.digest}"
        return out


def is_ecr_host(registry: str) -> bool:
    return ECR_HOST_RE.match(re.sub(r"^https?://", "", registry).rstrip("/")) is not None


def _is_local(host: str) -> bool:
    name = host.rsplit(":", 1)[0] if not host.startswith("[") else host[1:].split("]", 1)[0]
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def base_url(registry: str) -> str:
    """The http(s) base URL to talk to for ``registry`` (override and Docker Hub applied)."""
    registry = registry.rstrip("/")
    override = os.environ.get(REGISTRY_URL_ENV, "").strip().rstrip("/")
    if override and is_ecr_host(registry):
        registry = override
    if registry.startswith(("http://", "https://")):
        return registry
    if registry == DOCKER_HUB:
        return DOCKER_HUB_API
    return ("http://" if _is_local(registry) else "https://") + registry


@functools.cache
def _no_trust_context() -> ssl.SSLContext:
    return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    """Verify TLS against the bundle the environment names (interception proxies), else certifi.

    Made once per process and shared: letting httpx build one per client costs ~0.3 s each.
    """
    for var in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        path = os.environ.get(var)
        if path and os.path.isfile(path):
            return ssl.create_default_context(cafile=path)
    try:
        import certifi

        return ssl.create_default_context(cafile=certifi.where())
    except ImportError:  # pragma: no cover
        return ssl.create_default_context()


# ---------------------------------------------------------------------------------------------
# Errors and retries
# ---------------------------------------------------------------------------------------------
class RegistryError(LambdashipError):
    """A registry answered with an error (after retries, where retrying made sense)."""

    def __init__(self, message: str, hint: str | None = None, *, status: int | None = None,
                 code: str | None = None) -> None:
        super().__init__(message, hint)
        self.status = status
        self.code = code


class _Transient(Exception):
    """A response worth retrying (429 / 5xx); carries the server's Retry-After, if any."""

    def __init__(self, response: httpx.Response) -> None:
        super().__init__(f"{response.status_code} {response.request.method} {response.request.url.path}")
        self.response = response
        self.retry_after = _retry_after(response)


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        from email.utils import parsedate_to_datetime

        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


log = logging.getLogger(__name__)
_NULL_HANDLER = logging.NullHandler()
RETRY_MAX_AFTER = 60.0  # never sleep longer than this for one Retry-After


def _retry_hook(exc: Exception) -> bool | float:
    if isinstance(exc, _Transient):
        if exc.retry_after is not None:
            return min(exc.retry_after, RETRY_MAX_AFTER)
        return True
    return isinstance(exc, httpx.TransportError | _BrokenBody)


class _BrokenBody(Exception):
    """A body that ended early or did not match its digest (retry the transfer)."""


def retry_settings() -> dict[str, Any]:
    """stamina parameters; ``LAMBDASHIP_RETRY_ATTEMPTS`` / ``LAMBDASHIP_RETRY_WAIT`` tune them."""
    attempts = int(os.environ.get("LAMBDASHIP_RETRY_ATTEMPTS", "8"))
    wait = float(os.environ.get("LAMBDASHIP_RETRY_WAIT", "0.2"))
    return {
        "attempts": attempts, "timeout": None, "wait_initial": wait, "wait_max": max(wait, 10.0),
        "wait_jitter": wait, "wait_exp_base": 2,
    }


def retrying() -> Iterator[Any]:
    import stamina

    # stamina logs each scheduled retry; without a configured logging setup Python's "last
    # resort" handler would print them to stderr. Apps that configure logging still see them.
    logging.getLogger("stamina").addHandler(_NULL_HANDLER)

    return iter(stamina.retry_context(on=_retry_hook, **retry_settings()))


def _error_code(response: httpx.Response) -> tuple[str | None, str]:
    try:
        errors = response.json().get("errors") or []
        if errors:
            e = errors[0]
            return e.get("code"), str(e.get("message") or "")
    except (ValueError, AttributeError):
        pass
    return None, response.reason_phrase


# ---------------------------------------------------------------------------------------------
# Auth
# ---------------------------------------------------------------------------------------------
Credentials = tuple[str, str]
CredentialsProvider = Callable[[], Credentials | None]


def _parse_challenge(header: str) -> tuple[str, dict[str, str]]:
    scheme, _, rest = header.strip().partition(" ")
    params = {k.lower(): v for k, v in re.findall(r'(\w+)="([^"]*)"', rest)}
    return scheme.lower(), params


def _scope_key(request: httpx.Request) -> tuple[str, str] | None:
    """(repository, "pull" | "push") for a /v2/<name>/(blobs|manifests|tags)/... request."""
    m = re.match(r"^/v2/(.+?)/(?:blobs|manifests|tags)/", request.url.path)
    if not m:
        return None
    return m.group(1), "pull" if request.method in ("GET", "HEAD") else "push"


def _auth_files() -> list[Path]:
    """Where ``docker login`` / ``skopeo login`` / ``podman login`` keep credentials, in order."""
    files = []
    if os.environ.get("REGISTRY_AUTH_FILE"):
        files.append(Path(os.environ["REGISTRY_AUTH_FILE"]))
    if os.environ.get("XDG_RUNTIME_DIR"):
        files.append(Path(os.environ["XDG_RUNTIME_DIR"]) / "containers" / "auth.json")
    files.append(Path(os.environ.get("DOCKER_CONFIG") or Path.home() / ".docker") / "config.json")
    return files


def _host_matches(key: str, host: str) -> bool:
    k = re.sub(r"^https?://", "", key).split("/", 1)[0]
    return k == host or (host == DOCKER_HUB and k in ("index.docker.io", "registry-1.docker.io"))


def _credential_helper(helper: str, host: str) -> Credentials | None:
    """``docker-credential-<helper> get`` (the Docker credential-helper protocol)."""
    import shutil
    import subprocess

    exe = shutil.which(f"docker-credential-{helper}")
    if not exe:
        return None
    server = "https://index.docker.io/v1/" if host == DOCKER_HUB else host
    try:
        proc = subprocess.run([exe, "get"], input=server, capture_output=True, text=True, timeout=30)
        data = json.loads(proc.stdout) if proc.returncode == 0 else None
    except (OSError, subprocess.TimeoutExpired, ValueError):
        return None
    if not data or not data.get("Secret"):
        return None
    return data.get("Username") or "", data["Secret"]


def docker_config_credentials(host: str) -> Credentials | None:
    """Credentials for ``host`` from the container tools' auth files.

    ``$REGISTRY_AUTH_FILE``, ``$XDG_RUNTIME_DIR/containers/auth.json`` (skopeo/podman), then
    ``$DOCKER_CONFIG/config.json`` (docker): ``credHelpers`` for the host, ``auths`` entries,
    and ``credsStore`` (credential helpers are run as ``docker-credential-<name> get``).
    """
    for path in _auth_files():
        try:
            config = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        for key, helper in (config.get("credHelpers") or {}).items():
            if _host_matches(key, host):
                creds = _credential_helper(helper, host)
                if creds:
                    return creds
        for key, entry in (config.get("auths") or {}).items():
            if _host_matches(key, host) and entry.get("auth"):
                user, _, pw = base64.b64decode(entry["auth"]).decode().partition(":")
                return user, pw
        if config.get("credsStore"):
            creds = _credential_helper(config["credsStore"], host)
            if creds:
                return creds
    return None


class _RegistryAuth(httpx.Auth):
    """Answers Basic and Bearer challenges; caches bearer tokens per (repository, access)."""

    requires_response_body = False  # never buffer streamed blob bodies; token bodies are read here

    def __init__(self, credentials: CredentialsProvider | None) -> None:
        self._provider = credentials
        self._creds: Credentials | None = None
        self._creds_loaded = False
        self._basic = False
        self._tokens: dict[Any, str] = {}
        self._bearer: dict[str, str] | None = None  # the challenge params (realm, service)
        self._lock = threading.Lock()
        self._extra_scopes: dict[str, list[str]] = {}  # repo -> extra scopes (mount: pull from)

    def credentials(self) -> Credentials | None:
        with self._lock:
            if not self._creds_loaded:
                self._creds = self._provider() if self._provider else None
                self._creds_loaded = True
            return self._creds

    def reload(self) -> None:
        with self._lock:
            self._creds_loaded = False

    def _basic_header(self) -> str | None:
        creds = self.credentials()
        if not creds:
            return None
        return "Basic " + base64.b64encode(f"{creds[0]}:{creds[1]}".encode()).decode()

    def _apply(self, request: httpx.Request) -> None:
        if "Authorization" in request.headers:
            return
        if self._basic:
            header = self._basic_header()
            if header:
                request.headers["Authorization"] = header
            return
        key = _scope_key(request)
        token = (self._tokens.get(key) or self._tokens.get(None)) if self._bearer else None
        if token is None and key and key[1] == "pull":
            token = self._tokens.get((key[0], "push"))
        if token:
            request.headers["Authorization"] = f"Bearer {token}"

    def add_scope(self, repo: str, scope: str) -> None:
        self._extra_scopes.setdefault(repo, [])
        if scope not in self._extra_scopes[repo]:
            self._extra_scopes[repo].append(scope)

    def auth_flow(self, request: httpx.Request) -> Iterator[httpx.Request]:
        self._apply(request)
        response = yield request
        reloaded = False
        for _ in range(3):  # challenge → credentials → (refused: fetch them again) → give up
            if response.status_code != 401:
                return
            scheme, params = _parse_challenge(response.headers.get("WWW-Authenticate", ""))
            if scheme == "basic":
                self._basic = True
                sent = request.headers.get("Authorization")
                auth = self._basic_header()
                if auth is not None and auth == sent:
                    if reloaded:
                        return
                    # Our credentials were refused: they may have expired (ECR tokens last 12 h).
                    self.reload()
                    reloaded = True
                    auth = self._basic_header()
                    if auth == sent:
                        return
                if not auth:
                    return
            elif scheme == "bearer":
                if reloaded:
                    return  # a fresh token was refused: not allowed
                reloaded = True
                self._bearer = params
                key = _scope_key(request)
                scopes = params.get("scope", "").split()  # space-separated when several are needed
                if key:
                    wanted = f"repository:{key[0]}:{'pull' if key[1] == 'pull' else 'pull,push'}"
                    if wanted not in scopes:
                        scopes.append(wanted)
                    scopes += self._extra_scopes.get(key[0], [])
                token = yield from self._fetch_token(params, scopes)
                if token is None:
                    return
                self._tokens[key] = token
                auth = f"Bearer {token}"
            else:
                return
            if not _replayable(request):
                # A streamed body cannot be sent twice; the caller retries with a fresh body, and
                # the cached credentials are applied up front next time.
                return
            request.headers["Authorization"] = auth
            response = yield request

    def _fetch_token(self, params: dict[str, str], scopes: list[str]) -> Iterator[httpx.Request]:
        realm = params.get("realm")
        if not realm:
            return None
        query: list[tuple[str, str]] = []
        if params.get("service"):
            query.append(("service", params["service"]))
        query += [("scope", s) for s in scopes]
        req = httpx.Request("GET", realm, params=query)
        basic = self._basic_header()
        if basic:
            req.headers["Authorization"] = basic
        resp = yield req
        resp.read()
        if resp.status_code != 200:
            return None
        try:
            data = resp.json()
        except ValueError:
            return None
        return data.get("token") or data.get("access_token")


def _replayable(request: httpx.Request) -> bool:
    stream = request.stream
    return isinstance(stream, httpx.ByteStream) or request.headers.get("Content-Length") == "0"


# ---------------------------------------------------------------------------------------------
# The client
# ---------------------------------------------------------------------------------------------
class RegistryClient:
    """A connection to one registry. Thread-safe for concurrent blob operations."""

    _cache: dict[str, RegistryClient] = {}
    _cache_lock = threading.Lock()

    def __init__(self, registry: str, *, credentials: CredentialsProvider | None = None,
                 timeout: float = 60.0) -> None:
        self.registry = registry.rstrip("/")
        self.url = base_url(self.registry)
        self.host = re.sub(r"^https?://", "", self.url).split("/", 1)[0]
        self._auth = _RegistryAuth(credentials)
        self.monolithic_max = MONOLITHIC_MAX
        self.chunk_size = CHUNK_SIZE
        self._http = httpx.Client(
            base_url=self.url,
            auth=self._auth,
            # Loading the CA bundle costs ~0.3 s: only https registries need it. A plain-http
            # (local) registry gets a context that trusts nothing, so a redirect to https fails.
            verify=_ssl_context() if self.url.startswith("https://") else _no_trust_context(),
            timeout=httpx.Timeout(timeout, connect=10.0),
            follow_redirects=True,
            headers={"User-Agent": "lambdaship"},
            limits=httpx.Limits(max_connections=16, max_keepalive_connections=8),
        )

    @classmethod
    def for_registry(cls, registry: str) -> RegistryClient:
        """A (cached) client for ``registry`` with the right credentials.

        ECR hosts: basic auth ``AWS:<token>`` from ``GetAuthorizationToken``, requested only
        if the registry asks; ``LAMBDASHIP_REGISTRY_URL`` replaces the host. Others: the
        credentials of ``docker login`` / ``skopeo login`` when present, else anonymous/bearer.
        """
        registry = registry.rstrip("/")
        key = f"{registry}|{base_url(registry)}"
        with cls._cache_lock:
            client = cls._cache.get(key)
            if client is None:
                client = cls(registry, credentials=_credentials_for(registry))
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
        code, message = _error_code(response)
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
                params: dict[str, str] | None = None, retry: bool = True) -> httpx.Response:
        """One request with retries. Statuses in ``ok`` or ``allow`` are returned, others raise."""
        what = self._describe(method, path)
        attempts = retrying() if retry else iter([contextlib.nullcontext()])
        try:
            for attempt in attempts:
                with attempt:
                    response = self._http.request(method, path, content=content, headers=headers, params=params)
                    if response.status_code in ok or response.status_code in allow:
                        return response
                    if response.status_code == 429 or response.status_code >= 500:
                        raise _Transient(response)
                    self._raise(response, what)
        except _Transient as exc:
            self._raise(exc.response, what)
        except httpx.TransportError as exc:
            raise RegistryError(
                f"registry {what} failed: {type(exc).__name__}: {exc}".rstrip(": "),
                f"cannot reach {self.url}; check the network and the registry address",
            ) from None
        raise AssertionError("unreachable")  # pragma: no cover

    # -- manifests -------------------------------------------------------------------------
    def get_manifest(self, repo: str, ref: str, accept: Sequence[str] = ALL) -> tuple[bytes, str, str]:
        """(raw bytes, media type, digest). A digest ``ref`` is verified against the bytes."""
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
            raise RegistryError(f"registry {self.host} returned a manifest for {repo}@{ref} with digest {digest}")
        media_type = r.headers.get("Content-Type", "").split(";")[0].strip()
        if not media_type or media_type in ("application/json", "application/octet-stream"):
            try:
                media_type = json.loads(data).get("mediaType") or OCI_MANIFEST
            except ValueError:
                media_type = OCI_MANIFEST
        return data, media_type, digest

    def head_manifest(self, repo: str, ref: str) -> str | None:
        """The manifest's digest, or None if the registry does not have it."""
        r = self.request("HEAD", f"/v2/{repo}/manifests/{ref}", allow=(404,), headers={"Accept": ", ".join(ALL)})
        if r.status_code == 404:
            return None
        digest = r.headers.get("Docker-Content-Digest")
        if digest:
            return digest
        return self.get_manifest(repo, ref)[2]

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

    # -- blobs (write) ---------------------------------------------------------------------
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
                code, _ = _error_code(r)
                if r.status_code == 400 and code == "DIGEST_INVALID" and not self.blob_exists(repo, digest):
                    raise _DigestInvalid("the registry computed a different digest")
                if r.status_code < 500 and r.status_code not in (400, 404, 416, 429):
                    self._raise(r, self._describe("PUT", f"/v2/{repo}/blobs/{digest}"))
                failure = f"HTTP {r.status_code} {code or ''}".strip()
                wait = _retry_after(r) if r.status_code == 429 else None
            # Did an earlier attempt land? Otherwise continue the session if it is intact.
            if self.blob_exists(repo, digest):
                report(len(data))
                return
            time.sleep(min(wait, RETRY_MAX_AFTER) if wait is not None
                       else min(settings["wait_initial"] * 2 ** (failures - 1), settings["wait_max"]))
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
                    code, _ = _error_code(r)
                    if r.status_code in (400, 404) and code in ("BLOB_UPLOAD_INVALID", "BLOB_UPLOAD_UNKNOWN"):
                        raise _RestartUpload(code)
                    self._raise(r, self._describe("PATCH", loc))
                wait = _retry_after(r) if r.status_code == 429 else None
                failure = f"HTTP {r.status_code}"
            except httpx.TransportError as exc:
                wait, failure = None, type(exc).__name__
            failures += 1
            if failures > settings["attempts"]:
                raise _RestartUpload(f"PATCH kept failing ({failure})")
            time.sleep(min(wait, RETRY_MAX_AFTER) if wait is not None
                       else min(settings["wait_initial"] * 2 ** (failures - 1), settings["wait_max"]))
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
        chunk_size = self.chunk_size if isinstance(chunks, _FileChunks) else min(self.chunk_size, STREAM_CHUNK_SIZE)
        for data in chunks.chunks(chunk_size):
            loc = self._patch(loc, data, offset, report)
            offset += len(data)
        if offset != size:
            raise RegistryError(
                f"the source of blob {digest} gave {offset} bytes, expected {size}",
                "the source changed while pushing; rebuild or re-resolve the base image",
            )
        self._finish(repo, loc, digest, b"", report, offset)

    def delete_manifest(self, repo: str, digest: str) -> None:
        self.request("DELETE", f"/v2/{repo}/manifests/{digest}", ok=(200, 202), allow=(404,))

    def list_tags(self, repo: str) -> list[str]:
        r = self.request("GET", f"/v2/{repo}/tags/list", allow=(404,))
        if r.status_code == 404:
            return []
        return list(r.json().get("tags") or [])

    # -- blobs (read) ----------------------------------------------------------------------
    def blob_exists(self, repo: str, digest: str) -> bool:
        r = self.request("HEAD", f"/v2/{repo}/blobs/{digest}", allow=(404,))
        return r.status_code == 200

    def get_blob(self, repo: str, digest: str) -> bytes:
        """A small blob (a config), verified by digest."""
        for attempt in retrying():
            with attempt:
                data = self.request("GET", f"/v2/{repo}/blobs/{digest}").content
                if sha256_digest(data) != digest:
                    raise _BrokenBody(f"blob {digest} from {self.host}/{repo} does not match its digest")
        return data

    @contextlib.contextmanager
    def stream_blob(self, repo: str, digest: str, *, start: int = 0) -> Iterator[Iterator[bytes]]:
        """The blob's bytes as an iterator; a connection lost mid-body resumes with a Range request.

        The digest is checked as the last chunk is read (``RegistryError`` if it differs).
        """
        state = {"offset": start, "response": None}
        hasher = hashlib.sha256() if start == 0 else None

        def open_at(offset: int) -> tuple[httpx.Response, int]:
            headers = {"Range": f"bytes={offset}-"} if offset else {}
            for attempt in retrying():
                with attempt:
                    req = self._http.build_request("GET", f"/v2/{repo}/blobs/{digest}", headers=headers)
                    resp = self._http.send(req, stream=True)
                    if resp.status_code in (200, 206):
                        # A server that ignores Range answers 200 with the whole blob: skip ahead.
                        return resp, offset if resp.status_code == 200 else 0
                    resp.read()
                    resp.close()
                    if resp.status_code == 429 or resp.status_code >= 500:
                        raise _Transient(resp)
                    self._raise(resp, self._describe("GET", f"/v2/{repo}/blobs/{digest}"))
            raise AssertionError("unreachable")  # pragma: no cover

        def chunks() -> Iterator[bytes]:
            failures = 0
            while True:
                skip = 0
                if state["response"] is None:
                    state["response"], skip = open_at(state["offset"])
                resp = state["response"]
                try:
                    for chunk in resp.iter_raw(READ_SIZE):
                        if skip:
                            cut = min(skip, len(chunk))
                            chunk, skip = chunk[cut:], skip - cut
                            if not chunk:
                                continue
                        state["offset"] += len(chunk)
                        if hasher is not None:
                            hasher.update(chunk)
                        yield chunk
                    resp.close()
                    state["response"] = None
                    break
                except httpx.TransportError:
                    resp.close()
                    state["response"] = None
                    failures += 1
                    if failures > retry_settings()["attempts"]:
                        raise RegistryError(
                            f"registry GET {self.host}/v2/{repo}/blobs/{digest} kept failing mid-body",
                            "check the network and try again",
                        ) from None
                    time.sleep(min(0.1 * 2**failures, 5))
            if hasher is not None and "sha256:" + hasher.hexdigest() != digest:
                raise RegistryError(f"blob {digest} from {self.host}/{repo} does not match its digest")

        try:
            yield chunks()
        finally:
            if state["response"] is not None:
                state["response"].close()

    def download_blob(self, repo: str, digest: str, dest: Path) -> Path:
        """Download to ``dest`` (atomically), verified by digest; returns ``dest``."""
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.{os.getpid()}.{threading.get_ident()}.part")
        try:
            for attempt in retrying():
                with attempt:
                    hasher = hashlib.sha256()
                    with tmp.open("wb") as fh, self.stream_blob(repo, digest) as it:
                        for chunk in it:
                            hasher.update(chunk)
                            fh.write(chunk)
                    if "sha256:" + hasher.hexdigest() != digest:
                        raise _BrokenBody(digest)
            os.replace(tmp, dest)
        except _BrokenBody:
            raise RegistryError(f"blob {digest} from {self.host}/{repo} does not match its digest") from None
        finally:
            tmp.unlink(missing_ok=True)
        return dest


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


PREFETCH_PIECES = 8  # pieces (up to READ_SIZE each) read ahead from a streamed source


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


def _credentials_for(registry: str) -> CredentialsProvider | None:
    host = re.sub(r"^https?://", "", registry).split("/", 1)[0]
    if is_ecr_host(host):
        def ecr_creds() -> Credentials | None:
            from lambdaship.aws import ecr

            return ecr.registry_credentials(host)

        return ecr_creds
    return lambda: docker_config_credentials(host)
