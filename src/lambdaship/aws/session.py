"""One place that makes boto3 clients: boto3's standard configuration, few retries.

Profiles, ``AWS_REGION``, ``AWS_ENDPOINT_URL`` / ``AWS_ENDPOINT_URL_<SERVICE>`` all work because
boto3 reads them itself; nothing here special-cases the local stack.
"""

from __future__ import annotations

import functools
import threading
from typing import Any

_lock = threading.Lock()


@functools.cache
def _config() -> Any:
    from botocore.config import Config

    return Config(retries={"max_attempts": 3, "mode": "standard"})


def session() -> Any:
    import boto3

    return boto3.session.Session()


_clients: dict[tuple[Any, ...], Any] = {}
_ENV = ("AWS_ENDPOINT_URL", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE", "AWS_ACCESS_KEY_ID",
        "AWS_SESSION_TOKEN", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE")


def client(service: str, **kwargs: Any) -> Any:
    """A boto3 client for ``service`` with lambdaship's retry configuration.

    Clients are created under a lock (boto3's session set-up is not thread-safe); the client
    itself may be shared between threads. Without ``kwargs`` the client is reused while the
    environment that configures it (endpoint, region, profile, key id) stays the same: creating
    one loads the service model (~0.1 s, seconds on a busy machine), and the lock serialised that
    across parallel deploys.
    """
    import os

    key = None
    if not kwargs:
        env_endpoint = f"AWS_ENDPOINT_URL_{service.upper().replace('-', '_')}"
        key = (service, os.environ.get(env_endpoint), *(os.environ.get(k) for k in _ENV))
    with _lock:
        if key is not None and key in _clients:
            return _clients[key]
        made = session().client(service, config=kwargs.pop("config", None) or _config(), **kwargs)
        if key is not None:
            _clients[key] = made
        return made


def region() -> str | None:
    with _lock:
        return session().region_name
