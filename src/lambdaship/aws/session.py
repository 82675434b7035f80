"""One place that makes boto3 clients: boto3's standard configuration, few retries, short timeouts.

Where the region comes from, first match wins: ``--region``, ``AWS_REGION`` (boto3 itself reads
only ``AWS_DEFAULT_REGION``, boto3 #3620), ``AWS_DEFAULT_REGION``, the profile's ``region``.
The profile: ``--profile``, else ``AWS_PROFILE`` (boto3 reads it). Endpoints
(``AWS_ENDPOINT_URL``, ``AWS_ENDPOINT_URL_<SERVICE>``, a profile's ``endpoint_url``) are boto3's
own; nothing here special-cases the local stack.

The CLI's global options reach this module through :data:`settings` (set once by
:func:`configure`), never by changing the process environment.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, fields
from typing import Any

_lock = threading.Lock()
log = logging.getLogger("lambdaship.aws")

# A dead endpoint must surface within seconds: boto3's default connect timeout is 60 s.
CONNECT_TIMEOUT = 3.0
READ_TIMEOUT = 60.0
MAX_ATTEMPTS = 3


@dataclass
class Settings:
    """The global command-line options that configure AWS access and diagnostics."""

    profile: str | None = None
    region: str | None = None
    verbose: bool = False
    debug: bool = False


settings = Settings()


def configure(**values: Any) -> Settings:
    """Set the global options (unknown names are a programming error)."""
    names = {f.name for f in fields(Settings)}
    for key, value in values.items():
        if key not in names:
            raise TypeError(f"unknown setting {key!r}")
        setattr(settings, key, value)
    with _lock:
        _clients.clear()
        _sessions.clear()
    if settings.verbose or settings.debug:
        _log_to_stderr()
    return settings


_VERBOSE_LOGGERS = {
    "lambdaship": logging.INFO,
    "stamina": logging.INFO,  # registry retries: one line per scheduled retry
    "botocore.retries": logging.DEBUG,  # "Retry needed, retrying request after delay of: …"
    "botocore.utils": logging.WARNING,
}


class _Formatter(logging.Formatter):
    """stamina's retry records carry their details as attributes: put them in the line."""

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        num = getattr(record, "stamina.retry_num", None)
        if num is not None:
            cause = str(getattr(record, "stamina.caused_by", ""))[:200]
            line += (f" #{num} in {getattr(record, 'stamina.wait_for', '?')}s (waited "
                     f"{getattr(record, 'stamina.waited_so_far', '?')}s so far) after {cause}")
        return line


def _log_to_stderr() -> None:
    """``-v``: lambdaship's, stamina's and botocore's retry logs on stderr, with elapsed time.

    botocore's full DEBUG log is never enabled: it prints request headers (session tokens).
    """
    handler = logging.StreamHandler()
    handler.setFormatter(_Formatter("%(relativeCreated)7.0fms %(name)s: %(message)s"))
    for name, level in _VERBOSE_LOGGERS.items():
        logger = logging.getLogger(name)
        if not any(getattr(h, "_lambdaship", False) for h in logger.handlers):
            handler._lambdaship = True  # type: ignore[attr-defined]
            logger.addHandler(handler)
        logger.setLevel(level)
        logger.propagate = False


def _config() -> Any:
    from botocore.config import Config

    return Config(
        retries={"max_attempts": MAX_ATTEMPTS, "mode": "standard"},
        connect_timeout=CONNECT_TIMEOUT, read_timeout=READ_TIMEOUT,
    )


# A multi-region deploy runs each region on its own thread inside ``in_region(r)``: every client
# made there (and every cached one it reuses) is that region's. Threads do not inherit it.
_region_scope: contextvars.ContextVar[str | None] = contextvars.ContextVar("lambdaship_region", default=None)


@contextlib.contextmanager
def in_region(region: str | None) -> Iterator[None]:
    """Clients made in this block (on this thread) use ``region``, whatever ``--region`` or the
    environment say; ``None`` changes nothing."""
    token = _region_scope.set(region or _region_scope.get())
    try:
        yield
    finally:
        _region_scope.reset(token)


def resolved_region() -> str | None:
    """The region from :func:`in_region`, ``--region`` or ``AWS_REGION``; None lets boto3 look further."""
    return _region_scope.get() or settings.region or os.environ.get("AWS_REGION") or None


def session() -> Any:
    """A botocore session for the profile and region in force. botocore's own (boto3's wraps it
    and imports s3transfer, 20 ms of every command start, for resources this package never uses);
    endpoints, credentials and config files are botocore's either way."""
    import botocore.session
    from botocore.exceptions import ProfileNotFound

    from lambdaship.errors import ConfigError

    try:
        made = botocore.session.Session(profile=settings.profile)
        if region := resolved_region():
            made.set_config_variable("region", region)
        made.get_scoped_config()  # a missing profile fails here, before any call
    except ProfileNotFound as exc:
        raise ConfigError(
            f"AWS profile {exc.kwargs.get('profile')!r} not found",
            "check --profile / AWS_PROFILE against ~/.aws/config (or AWS_CONFIG_FILE)",
        ) from None
    if settings.verbose or settings.debug:
        _instrument(made)
    return made


def _instrument(sess: Any) -> None:
    """Under ``-v``: one log line per HTTP call with its outcome and duration (no headers:
    they carry the session token)."""
    local = threading.local()

    def before_send(request: Any, **_: Any) -> None:
        local.started = time.monotonic()
        local.what = f"{request.method} {request.url.split('?')[0]}"

    def response_received(response_dict: Any = None, exception: Any = None, **_: Any) -> None:
        started = getattr(local, "started", None)
        elapsed = f" in {time.monotonic() - started:.2f}s" if started is not None else ""
        if exception is not None:
            outcome = f"{type(exception).__name__}: {exception}"
        else:
            outcome = str((response_dict or {}).get("status_code"))
        log.info("aws: %s → %s%s", getattr(local, "what", "?"), outcome, elapsed)

    sess.register("before-send", before_send)
    sess.register("response-received", response_received)


_clients: dict[tuple[Any, ...], Any] = {}
_sessions: dict[tuple[Any, ...], Any] = {}
_ENV = ("AWS_ENDPOINT_URL", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE", "AWS_ACCESS_KEY_ID",
        "AWS_SESSION_TOKEN", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE")


def settings_key() -> tuple[Any, ...]:
    """What configures a session: the global options, the region scope and the environment."""
    return (settings.profile, settings.region, _region_scope.get(), settings.verbose, settings.debug,
            *(os.environ.get(k) for k in _ENV))


def _shared_session() -> Any:
    """One session per configuration (call with ``_lock`` held): its loader keeps the parsed
    endpoint rules and service models and its credentials are resolved once, so the second and
    later clients cost 5-10 ms instead of the 45 ms of a client on a new session."""
    key = settings_key()
    made = _sessions.get(key)
    if made is None:
        made = _sessions[key] = session()
    return made


def client(service: str, **kwargs: Any) -> Any:
    """A botocore client for ``service`` with lambdaship's retry configuration.

    Clients are created under a lock (botocore's session set-up is not thread-safe); the client
    itself may be shared between threads. Without ``kwargs`` the client is reused while the
    environment and settings that configure it (endpoint, region, profile, key id) stay the
    same: creating one loads the service model (~0.1 s, seconds on a busy machine), and the lock
    serialised that across parallel deploys.
    """
    key = None
    if not kwargs:
        env_endpoint = f"AWS_ENDPOINT_URL_{service.upper().replace('-', '_')}"
        key = (service, os.environ.get(env_endpoint), *settings_key())
    with _lock:
        if key is not None and key in _clients:
            return _clients[key]
        made = _shared_session().create_client(service, config=kwargs.pop("config", None) or _config(), **kwargs)
        if key is not None:
            _clients[key] = made
        return made


def region() -> str | None:
    with _lock:
        return _shared_session().get_config_variable("region")
