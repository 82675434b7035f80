"""HTTP for registries: the httpx client, TLS, retries, and reads that are bounded and verified.

* TLS: one ``ssl.SSLContext`` per process from ``SSL_CERT_FILE`` / ``REQUESTS_CA_BUNDLE`` /
  ``CURL_CA_BUNDLE``, else certifi; a plain-HTTP (local) registry gets a context that trusts
  nothing, so a redirect to https fails rather than being trusted blindly.
* Retries with backoff and jitter (stamina) for 429 (honouring ``Retry-After``), 5xx,
  connection resets and timeouts; after the last attempt one ``RegistryError`` line.
* A registry that cannot be reached fails within seconds: connecting times out after
  ``CONNECT_TIMEOUT`` (``LAMBDASHIP_CONNECT_TIMEOUT``), a refused or unresolvable connection
  (``ConnectError``) is retried at most ``CONNECT_RETRIES`` times after short waits, a connect
  timeout once. Each retry is a stamina log record: shown under ``-v``, silent otherwise.
* Reads are bounded, fail-closed: every answer body is capped in the transport (``MANIFEST_MAX``
  unless the request's ``lambdaship_cap`` extension says otherwise, e.g. ``TOKEN_MAX``;
  ``ERROR_MAX`` for errors, 401s and redirects, whose bodies httpx reads itself) except blob
  downloads (``lambdaship_stream``), which ``BlobVerifier`` bounds by the descriptor's size
  and hashes as they stream. Over the bound, reading stops at once with one line.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import ssl
import time
from collections.abc import Iterator
from typing import Any, TypeVar

import httpx

from lambdaship.errors import LambdashipError

log = logging.getLogger("lambdaship.oci")
F = TypeVar("F")
_NULL_HANDLER = logging.NullHandler()
RETRY_MAX_AFTER = 60.0  # never sleep longer than this for one Retry-After
READ_SIZE = 1024 * 1024
MANIFEST_MAX = 4 * 1024 * 1024  # manifests, indexes and image configs (containerd uses 4 MiB too)
TOKEN_MAX = 1024 * 1024  # a bearer-token answer
ERROR_MAX = 64 * 1024  # the body of an error, a 401 or a redirect
CONNECT_TIMEOUT = 3.0  # seconds to open a connection (httpx's default is 5, ours was 10)
CONNECT_RETRIES = 2  # retries of a refused / unresolvable connection (ConnectError)
CONNECT_TIMEOUT_RETRIES = 1  # retries of a connection attempt that timed out (each costs CONNECT_TIMEOUT)


class RegistryError(LambdashipError):
    """A registry answered with an error (after retries, where retrying made sense)."""

    def __init__(self, message: str, hint: str | None = None, *, status: int | None = None,
                 code: str | None = None) -> None:
        super().__init__(message, hint)
        self.status = status
        self.code = code


class Transient(Exception):
    """A response worth retrying (429 / 5xx); carries the server's Retry-After, if any."""

    def __init__(self, response: httpx.Response) -> None:
        super().__init__(f"{response.status_code} {response.request.method} {response.request.url.path}")
        self.response = response
        self.retry_after = retry_after(response)


class BrokenBody(Exception):
    """A body that ended early (retry the transfer)."""


HTTP_FAILURES = (httpx.HTTPError, httpx.InvalidURL, httpx.StreamError, UnicodeError)


def failure(exc: BaseException, what: str, url: str) -> RegistryError:
    """One line for an HTTP-level failure that retrying did not (or cannot) cure."""
    if isinstance(exc, httpx.TooManyRedirects):
        return RegistryError(f"registry {what} failed: too many redirects",
                             "the registry or a proxy in between is misconfigured or hostile")
    detail = " ".join(str(exc).split())[:200]
    hint = f"cannot reach {url}; check the network and the registry address"
    if _certificate_error(exc):
        hint = (f"the TLS certificate of {url} does not verify; behind an intercepting proxy, point "
                "SSL_CERT_FILE at its CA bundle")
    return RegistryError(f"registry {what} failed: {type(exc).__name__}: {detail}".rstrip(": "), hint)


def translating(method: F) -> F:
    """Public client methods raise ``RegistryError`` for any httpx failure, never httpx's own."""
    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except HTTP_FAILURES as exc:
            raise failure(exc, f"{method.__name__.replace('_', ' ')} on {self.host}", self.url) from None
    return wrapper  # type: ignore[return-value]


def retry_after(response: httpx.Response) -> float | None:
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


def _retry_hook() -> Any:
    """The ``on`` hook of one retry context: 429 (its Retry-After) and 5xx, broken bodies and
    transport errors are retried; connection failures only a few times, after short waits,
    so an unreachable registry surfaces in seconds rather than after the full backoff."""
    failures = {"connect": 0, "timeout": 0}

    def hook(exc: Exception) -> bool | float:
        if isinstance(exc, Transient):
            if exc.retry_after is not None:
                return min(exc.retry_after, RETRY_MAX_AFTER)
            return True
        if isinstance(exc, httpx.ConnectError) and _certificate_error(exc):
            return False  # a certificate that does not verify will not verify on the next try
        if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
            kind, limit = (("connect", CONNECT_RETRIES) if isinstance(exc, httpx.ConnectError)
                           else ("timeout", CONNECT_TIMEOUT_RETRIES))
            failures[kind] += 1
            if failures[kind] > limit:
                return False
            return float(min(retry_settings()["wait_initial"] * 2 ** (failures[kind] - 1), 1.0))
        return isinstance(exc, httpx.TransportError | BrokenBody)

    return hook


def _certificate_error(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    for _ in range(8):  # httpx -> httpcore -> ssl
        if seen is None:
            return False
        if isinstance(seen, ssl.SSLCertVerificationError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def connect_timeout() -> float:
    """``CONNECT_TIMEOUT``, or ``LAMBDASHIP_CONNECT_TIMEOUT`` seconds (slow links)."""
    try:
        return max(0.1, float(os.environ.get("LAMBDASHIP_CONNECT_TIMEOUT", CONNECT_TIMEOUT)))
    except ValueError:
        return CONNECT_TIMEOUT


def retry_settings() -> dict[str, Any]:
    """stamina parameters; ``LAMBDASHIP_RETRY_ATTEMPTS`` / ``LAMBDASHIP_RETRY_WAIT`` tune them."""
    attempts = int(os.environ.get("LAMBDASHIP_RETRY_ATTEMPTS", "8"))
    wait = float(os.environ.get("LAMBDASHIP_RETRY_WAIT", "0.2"))
    return {
        "attempts": attempts, "timeout": None, "wait_initial": wait, "wait_max": max(wait, 10.0),
        "wait_jitter": wait, "wait_exp_base": 2,
    }


def backoff(failures: int, wait: float | None = None) -> None:
    """Sleep before retry number ``failures`` (or the server's ``Retry-After``, capped)."""
    settings = retry_settings()
    time.sleep(min(wait, RETRY_MAX_AFTER) if wait is not None
               else min(settings["wait_initial"] * 2 ** (failures - 1), settings["wait_max"]))


def retrying() -> Iterator[Any]:
    import stamina

    # stamina logs each scheduled retry; without a configured logging setup Python's "last
    # resort" handler would print them to stderr. Apps that configure logging still see them.
    logging.getLogger("stamina").addHandler(_NULL_HANDLER)

    return iter(stamina.retry_context(on=_retry_hook(), **retry_settings()))


def error_code(response: httpx.Response) -> tuple[str | None, str]:
    """(first OCI error code, its message) of an error answer (already read, capped)."""
    try:
        errors = response.json().get("errors") or []
        if errors:
            e = errors[0]
            return e.get("code"), str(e.get("message") or "")[:300]
    except (ValueError, AttributeError, UnicodeDecodeError, httpx.ResponseNotRead):
        pass
    return None, response.reason_phrase


@functools.cache
def no_trust_context() -> ssl.SSLContext:
    return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)


@functools.cache
def ssl_context() -> ssl.SSLContext:
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


class _CappedStream(httpx.SyncByteStream):
    def __init__(self, inner: Any, limit: int, what: str, host: str) -> None:
        self._inner, self._limit, self._what, self._host = inner, limit, what, host

    def __iter__(self) -> Iterator[bytes]:
        n = 0
        for chunk in self._inner:
            n += len(chunk)
            if n > self._limit:
                raise too_large(self._what, self._host, self._limit)
            yield chunk

    def close(self) -> None:
        self._inner.close()


class _CappedTransport(httpx.BaseTransport):
    """Caps every answer body: errors, 401s and redirects at ``ERROR_MAX`` (httpx reads those
    itself), others at the request's ``lambdaship_cap`` extension (default ``MANIFEST_MAX``).
    Blob downloads (``lambdaship_stream``) are bounded by their descriptor instead."""

    def __init__(self, inner: httpx.HTTPTransport) -> None:
        self._inner = inner

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self._inner.handle_request(request)
        if response.status_code >= 300:
            cap = ERROR_MAX
        elif request.extensions.get("lambdaship_stream"):
            return response  # a blob: bounded by its descriptor (BlobVerifier)
        else:
            cap = int(request.extensions.get("lambdaship_cap", MANIFEST_MAX))
        host = request.url.netloc.decode("ascii", "replace")
        what = f"the {response.status_code} answer to {request.method} {request.url.path}"
        declared = response.headers.get("Content-Length", "")
        if request.method != "HEAD" and declared.isdigit() and int(declared) > cap:
            response.close()
            raise too_large(what, host, cap)
        response.stream = _CappedStream(response.stream, cap, what, host)
        return response

    def close(self) -> None:
        self._inner.close()


def http_client(url: str, auth: httpx.Auth, timeout: float) -> httpx.Client:
    """The httpx client for one registry base URL."""
    transport = httpx.HTTPTransport(
        # Loading the CA bundle costs ~0.3 s: only https registries need it.
        verify=ssl_context() if url.startswith("https://") else no_trust_context(),
        limits=httpx.Limits(max_connections=16, max_keepalive_connections=8),
    )
    return httpx.Client(
        base_url=url,
        auth=auth,
        transport=_CappedTransport(transport),
        verify=ssl_context() if url.startswith("https://") else no_trust_context(),  # for env proxies
        timeout=httpx.Timeout(timeout, connect=connect_timeout()),
        follow_redirects=True,
        # identity: the byte bounds below count what arrives, not what a gzip bomb expands to.
        headers={"User-Agent": "lambdaship", "Accept-Encoding": "identity"},
    )


def too_large(what: str, host: str, limit: int) -> RegistryError:
    return RegistryError(f"registry {host} sent more than {limit:,} bytes for {what}; refused",
                         "the registry or a proxy in between is broken or hostile; check the image reference")


class BlobVerifier:
    """Checks a blob while it streams: never more than ``size`` bytes, sha256 = ``digest``."""

    def __init__(self, digest: str, size: int, where: str, offset: int = 0, *, exact: bool = True) -> None:
        self.digest, self.size, self.where, self.exact = digest, size, where, exact
        self.received = offset
        self._hash = hashlib.sha256() if offset == 0 else None

    def feed(self, chunk: bytes) -> None:
        self.received += len(chunk)
        if self.received > self.size:
            raise RegistryError(
                f"blob {self.digest} from {self.where} is larger than "
                f"{'its declared' if self.exact else 'the limit of'} {self.size:,} bytes; refused",
                "the registry or a proxy in between is broken or hostile",
            )
        if self._hash is not None:
            self._hash.update(chunk)

    def finish(self) -> None:
        if self.exact and self.received < self.size:
            raise RegistryError(
                f"blob {self.digest} from {self.where} ended after {self.received:,} of {self.size:,} bytes",
                "the registry or a proxy in between truncated it; try again",
            )
        if self._hash is not None and "sha256:" + self._hash.hexdigest() != self.digest:
            raise digest_mismatch(self.digest, self.where)


def digest_mismatch(digest: str, where: str) -> RegistryError:
    return RegistryError(f"blob {digest} from {where} does not match its digest",
                         "the registry or a proxy in between is broken or hostile; nothing was kept")
