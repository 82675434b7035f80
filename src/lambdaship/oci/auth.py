"""Registry credentials: keychains, and the Basic/Bearer challenge flow bound to one host.

A ``Keychain`` answers ``resolve(host) -> Credentials | None``. Here: ``DockerConfigKeychain``
(the container tools' auth files and credential helpers), ``StaticKeychain``, ``Anonymous``,
and ``MultiKeychain`` (the first that answers). The ECR keychain (``GetAuthorizationToken``)
lives in ``lambdaship.aws.ecr``; ``lambdaship.registries`` composes the default.

Credentials never leave their registry (threat model in docs/design-push.md):

* Basic credentials and bearer tokens are attached only to requests for the client's own
  origin (scheme, host, port), and never over plain HTTP to a non-loopback host;
* a 401 that comes from another origin (a blob GET redirected to a CDN or elsewhere) is not
  answered: its realm gets nothing;
* a bearer realm gets the credentials only if ``realm_allowed``: the registry's own host, or
  announced by the registry over HTTPS, or loopback announced by a loopback registry — never
  plain HTTP to a non-loopback host. Other realms are asked for an anonymous token.
"""

from __future__ import annotations

import base64
import json
import os
import re
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import httpx

from lambdaship.oci.reference import DOCKER_HUB, is_loopback, origin
from lambdaship.oci.transport import TOKEN_MAX, log


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str = field(repr=False)

    def basic_header(self) -> str:
        return "Basic " + base64.b64encode(f"{self.username}:{self.password}".encode()).decode()


@runtime_checkable
class Keychain(Protocol):
    def resolve(self, host: str) -> Credentials | None:
        """Credentials for the registry ``host`` (``host[:port]``), or None (anonymous)."""
        ...


class Anonymous:
    def resolve(self, host: str) -> Credentials | None:
        return None


class StaticKeychain:
    """Fixed credentials per host (tests, ``--registry-login`` style callers)."""

    def __init__(self, entries: dict[str, Credentials]) -> None:
        self._entries = dict(entries)

    def resolve(self, host: str) -> Credentials | None:
        return self._entries.get(host)


class MultiKeychain:
    """The first keychain that has credentials for the host wins."""

    def __init__(self, *keychains: Keychain) -> None:
        self.keychains: Sequence[Keychain] = keychains

    def resolve(self, host: str) -> Credentials | None:
        for k in self.keychains:
            creds = k.resolve(host)
            if creds is not None:
                return creds
        return None


class DockerConfigKeychain:
    def resolve(self, host: str) -> Credentials | None:
        return docker_config_credentials(host)


def default_keychain() -> Keychain:
    """What ``oci`` uses when the caller passes none: the container tools' logins, else anonymous."""
    return DockerConfigKeychain()


# -- docker / skopeo / podman auth files -----------------------------------------------------------
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

    if not re.match(r"^[A-Za-z0-9_.-]+$", helper):
        return None
    exe = shutil.which(f"docker-credential-{helper}")
    if not exe:
        return None
    server = "https://index.docker.io/v1/" if host == DOCKER_HUB else host
    try:
        proc = subprocess.run([exe, "get"], input=server, capture_output=True, text=True, timeout=30)
        data = json.loads(proc.stdout) if proc.returncode == 0 else None
    except (OSError, subprocess.TimeoutExpired, ValueError):
        return None
    if not isinstance(data, dict) or not data.get("Secret"):
        return None
    return Credentials(str(data.get("Username") or ""), str(data["Secret"]))


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
        if not isinstance(config, dict):
            continue
        for key, helper in (config.get("credHelpers") or {}).items():
            if _host_matches(key, host):
                creds = _credential_helper(str(helper), host)
                if creds:
                    return creds
        for key, entry in (config.get("auths") or {}).items():
            if _host_matches(key, host) and isinstance(entry, dict) and entry.get("auth"):
                try:
                    user, _, pw = base64.b64decode(entry["auth"]).decode().partition(":")
                except (ValueError, UnicodeDecodeError):
                    continue
                return Credentials(user, pw)
        if config.get("credsStore"):
            creds = _credential_helper(str(config["credsStore"]), host)
            if creds:
                return creds
    return None


# -- where credentials may go ------------------------------------------------------------------------
def may_carry_credentials(registry_url: str, url: str) -> bool:
    """Whether a request to ``url`` may carry the credentials of the registry at ``registry_url``:
    same origin, and not plain HTTP unless loopback."""
    scheme, host, _ = o = origin(url)
    return o == origin(registry_url) and (scheme == "https" or is_loopback(host))


def realm_allowed(registry_url: str, realm: str) -> bool:
    """Whether the registry at ``registry_url`` may have its credentials sent to the token ``realm``."""
    r_scheme, r_host, _ = origin(realm)
    g_scheme, g_host, _ = origin(registry_url)
    if r_scheme not in ("http", "https") or not r_host:
        return False
    if r_scheme == "http" and not is_loopback(r_host):
        return False  # never in clear text over a network
    if r_host == g_host:
        return True
    if g_scheme == "https":
        return True  # announced by the registry over an authenticated channel
    return is_loopback(g_host) and is_loopback(r_host)  # the local stack


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


def _replayable(request: httpx.Request) -> bool:
    stream = request.stream
    return isinstance(stream, httpx.ByteStream) or request.headers.get("Content-Length") == "0"


class RegistryAuth(httpx.Auth):
    """Answers Basic and Bearer challenges of one registry; caches bearer tokens per
    (repository, access). ``host`` is what the keychain is asked about (an ECR host name even
    when ``LAMBDASHIP_REGISTRY_URL`` sends the requests elsewhere); ``url`` is where requests go."""

    requires_response_body = False  # never buffer streamed blob bodies; token bodies are read here

    def __init__(self, keychain: Keychain, host: str, url: str) -> None:
        self._keychain = keychain
        self.host = host
        self.url = url
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
                self._creds = self._keychain.resolve(self.host)
                self._creds_loaded = True
            return self._creds

    def reload(self) -> None:
        with self._lock:
            self._creds_loaded = False

    def _basic_header(self) -> str | None:
        creds = self.credentials()
        return creds.basic_header() if creds else None

    def _apply(self, request: httpx.Request) -> None:
        if "Authorization" in request.headers or not may_carry_credentials(self.url, str(request.url)):
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
            if not may_carry_credentials(self.url, str(response.request.url)):
                # Redirected to another host (or a plain-HTTP network host) that asks for
                # credentials: ours are not for it, and its realm gets nothing.
                log.debug("401 from %s after a redirect: not answered", response.request.url.host)
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
                token = yield from self._fetch_token(params, self._scopes(params, key))
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

    def _scopes(self, params: dict[str, str], key: tuple[str, str] | None) -> list[str]:
        scopes = params.get("scope", "").split()  # space-separated when several are needed
        if key:
            wanted = f"repository:{key[0]}:{'pull' if key[1] == 'pull' else 'pull,push'}"
            if wanted not in scopes:
                scopes.append(wanted)
            scopes += self._extra_scopes.get(key[0], [])
        return scopes

    def _fetch_token(self, params: dict[str, str], scopes: list[str]) -> Iterator[httpx.Request]:
        realm = params.get("realm")
        if not realm or origin(realm)[0] not in ("http", "https"):
            return None
        query: list[tuple[str, str]] = []
        if params.get("service"):
            query.append(("service", params["service"]))
        query += [("scope", s) for s in scopes]
        # The transport caps this answer at TOKEN_MAX (see transport._CappedTransport).
        req = httpx.Request("GET", realm, params=query, extensions={"lambdaship_cap": TOKEN_MAX})
        if realm_allowed(self.url, realm):
            basic = self._basic_header()
            if basic:
                req.headers["Authorization"] = basic
        else:
            log.debug("token realm %s not trusted with the credentials of %s: anonymous", realm, self.host)
        resp = yield req
        resp.read()
        if resp.status_code != 200:
            return None
        try:
            data = json.loads(resp.content)
        except (ValueError, UnicodeDecodeError):
            return None
        token = (data.get("token") or data.get("access_token")) if isinstance(data, dict) else None
        return token if isinstance(token, str) and token else None
