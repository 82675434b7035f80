"""Image references (``registry/repository[:tag][@digest]``), ECR hosts, registry base URLs.

``LAMBDASHIP_REGISTRY_URL`` replaces ECR hosts (``*.dkr.ecr.<region>.amazonaws.com``) in
``base_url``, so the local stack's registry stands in for ECR without any special case elsewhere.
With ``LAMBDASHIP_REGISTRY_REGION`` set too (the local stack sets it to its region), that one
registry stands in for every region's ECR, each with repositories of its own: region R's
repository ``name`` is ``R/name`` there (``name`` itself for the stack's own region), as each
region's ECR has its own repositories (``local_repository_prefix``).
"""

from __future__ import annotations

import ipaddress
import os
import re
import urllib.parse
from dataclasses import dataclass

from lambdaship.errors import LambdashipError
from lambdaship.patterns import DIGEST_RE, ECR_HOST_RE, TAG_RE
from lambdaship.patterns import OCI_REPOSITORY_RE as REPO_RE

DOCKER_HUB = "docker.io"
DOCKER_HUB_API = "https://registry-1.docker.io"
REGISTRY_URL_ENV = "LAMBDASHIP_REGISTRY_URL"
REGISTRY_REGION_ENV = "LAMBDASHIP_REGISTRY_REGION"


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
        if tag is not None and not TAG_RE.match(tag):
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


def registry_host(registry: str) -> str:
    """``host[:port]`` of a registry name or base URL (scheme and path dropped)."""
    return re.sub(r"^https?://", "", registry.strip()).split("/", 1)[0]


def is_ecr_host(registry: str) -> bool:
    return ECR_HOST_RE.match(registry_host(registry)) is not None


def ecr_stand_in() -> bool:
    """Whether a registry at ``LAMBDASHIP_REGISTRY_URL`` stands in for ECR's (the local stack):
    the ECR API is then another service, which learns of a pushed image only through PutImage."""
    return bool(os.environ.get(REGISTRY_URL_ENV, "").strip())


def is_loopback(host: str) -> bool:
    """``localhost``, ``*.localhost``, 127.0.0.0/8 or ::1 (``host`` may carry a port)."""
    if host.startswith("["):
        name = host[1:].split("]", 1)[0]
    elif host.count(":") > 1:
        name = host  # a bare IPv6 address
    else:
        name = host.rsplit(":", 1)[0]
    name = name.lower()
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
    return ("http://" if is_loopback(registry) else "https://") + registry


def local_repository_prefix(registry: str) -> str:
    """``"<region>/"`` when ``registry`` is another region's ECR host and the registry at
    ``LAMBDASHIP_REGISTRY_URL`` stands in for every region (``LAMBDASHIP_REGISTRY_REGION``: the
    region whose repositories keep their own names); ``""`` otherwise."""
    home = os.environ.get(REGISTRY_REGION_ENV, "").strip()
    if not home or not os.environ.get(REGISTRY_URL_ENV, "").strip():
        return ""
    m = ECR_HOST_RE.match(registry_host(registry))
    if m is None or m.group("region") == home:
        return ""
    return m.group("region") + "/"


def origin(url: str) -> tuple[str, str, int]:
    """(scheme, lower-case host name, port) of an absolute URL — what credentials are bound to."""
    parts = urllib.parse.urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    return scheme, (parts.hostname or "").lower(), port or (443 if scheme == "https" else 80)
