"""Amazon ECR: repositories, lifecycle policy, registry credentials, image visibility.

Blobs and manifests travel over the OCI distribution API (``lambdaship.registry``); this
module only makes the control-plane calls (boto3, through ``aws.session.client``).
"""

from __future__ import annotations

import base64
import re
import threading
import time

from lambdaship.aws.session import client

_token_lock = threading.Lock()
_tokens: dict[str, tuple[float, tuple[str, str], str]] = {}  # region -> (expires, creds, endpoint)


def _region_of(host: str) -> str | None:
    m = re.match(r"^\d{12}\.dkr\.ecr(?:-fips)?\.([a-z0-9-]+)\.amazonaws\.com", host)
    return m.group(1) if m else None


def get_authorization_token(region: str | None = None) -> tuple[tuple[str, str], str]:
    """((user, password), proxyEndpoint) from ``GetAuthorizationToken`` (cached until expiry)."""
    key = region or ""
    with _token_lock:
        cached = _tokens.get(key)
        if cached and cached[0] > time.time() + 300:
            return cached[1], cached[2]
        ecr = client("ecr", region_name=region) if region else client("ecr")
        data = ecr.get_authorization_token()["authorizationData"][0]
        user, _, password = base64.b64decode(data["authorizationToken"]).decode().partition(":")
        expires = data.get("expiresAt")
        exp = expires.timestamp() if hasattr(expires, "timestamp") else time.time() + 3600
        _tokens[key] = (exp, (user, password), data.get("proxyEndpoint", ""))
        return (user, password), data.get("proxyEndpoint", "")


def registry_credentials(host: str) -> tuple[str, str]:
    """Basic credentials (``AWS``, token) for the ECR registry ``host``."""
    creds, _ = get_authorization_token(_region_of(host))
    return creds
