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


def client(service: str, **kwargs: Any) -> Any:
    """A boto3 client for ``service`` with lambdaship's retry configuration.

    Clients are created under a lock (boto3's session set-up is not thread-safe); the client
    itself may be shared between threads.
    """
    with _lock:
        return session().client(service, config=kwargs.pop("config", None) or _config(), **kwargs)


def region() -> str | None:
    with _lock:
        return session().region_name
