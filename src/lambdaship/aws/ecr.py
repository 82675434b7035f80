"""Amazon ECR: repositories, lifecycle policy, the ECR keychain, image visibility.

Blobs and manifests travel over the OCI distribution API (``lambdaship.oci``, which never
imports this package); this module makes the control-plane calls (boto3, through
``aws.session.client``) and supplies ``EcrKeychain`` for ``lambdaship.registries``.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
from typing import TYPE_CHECKING, Any

from lambdaship.aws.session import client

if TYPE_CHECKING:
    from collections.abc import Callable

    from lambdaship.oci.auth import Credentials
    from lambdaship.oci.client import RegistryClient

_token_lock = threading.Lock()
# Keyed by the AWS configuration in force (profile, region scope, credentials in the environment)
# and the region: another profile or account never gets this one's token or registry.
_tokens: dict[tuple[Any, ...], tuple[float, tuple[str, str]]] = {}  # -> (expires, creds)
_endpoints: dict[tuple[Any, ...], str] = {}  # -> proxyEndpoint: an account's registry does not move


def _region_of(host: str) -> str | None:
    m = re.match(r"^\d{12}\.dkr\.ecr(?:-fips)?\.([a-z0-9-]+)\.amazonaws\.com", host)
    return m.group(1) if m else None


def _token_key(region: str | None) -> tuple[Any, ...]:
    from lambdaship.aws.session import resolved_region, settings_key

    return (region or resolved_region() or "", *settings_key())  # in_region(r): r's, never another's


def get_authorization_token(region: str | None = None) -> tuple[tuple[str, str], str]:
    """((user, password), proxyEndpoint) from ``GetAuthorizationToken`` (cached until expiry)."""
    key = _token_key(region)
    with _token_lock:
        cached = _tokens.get(key)
        if cached and cached[0] > time.time() + 300:
            return cached[1], _endpoints[key]
        ecr = client("ecr", region_name=region) if region else client("ecr")
        data = ecr.get_authorization_token()["authorizationData"][0]
        user, _, password = base64.b64decode(data["authorizationToken"]).decode().partition(":")
        expires = data.get("expiresAt")
        exp = expires.timestamp() if hasattr(expires, "timestamp") else time.time() + 3600
        _tokens[key] = (exp, (user, password))
        _endpoints[key] = data.get("proxyEndpoint", "")
        return (user, password), _endpoints[key]


def registry_credentials(host: str) -> tuple[str, str]:
    """Basic credentials (``AWS``, token) for the ECR registry ``host``."""
    creds, _ = get_authorization_token(_region_of(host))
    return creds


class EcrKeychain:
    """``oci`` keychain: ``AWS:<token>`` from ``GetAuthorizationToken`` for ECR hosts only
    (``<account>.dkr.ecr.<region>.amazonaws.com``); asked only when the registry wants it."""

    def resolve(self, host: str) -> Credentials | None:
        from lambdaship.oci.auth import Credentials
        from lambdaship.oci.reference import is_ecr_host

        if not is_ecr_host(host):
            return None
        user, password = registry_credentials(host)
        return Credentials(user, password)


def _registry() -> RegistryClient:
    from lambdaship.oci.client import RegistryClient

    return RegistryClient.for_registry(registry_for_account(), _KEYCHAIN)


_KEYCHAIN = EcrKeychain()


DEPLOYED_PREFIX = "deployed-"
PUSH_TAG_PREFIXES = ("git-", "build-")
PROTECT_DAYS = 36500  # "never": the deployed-image rule only matches images pushed 100 years ago


def lifecycle_policy(keep: int, *, untagged_days: int = 1) -> dict[str, Any]:
    """Keep the newest ``keep`` pushed images (tags ``git-…``, ``build-…``); never expire deployed ones.

    ECR evaluates rules by ascending priority, and "an image that matches the tagging
    requirements of a higher priority rule cannot be expired by a rule with a lower priority".
    Rule 1 therefore selects every image with a ``deployed-`` tag (the deploy step tags each
    digest a function version uses ``deployed-<version>``) and only expires it after 100 years:
    an image that is also tagged ``git-…`` stays claimed by rule 1. Untagged images (left
    behind when a tag moves) expire after ``untagged_days``; images carrying only other tags
    (``--tag v1.2``) are never selected.
    """
    if keep < 1:
        raise ValueError("keep must be at least 1")
    rules: list[dict[str, Any]] = [{
        "rulePriority": 1,
        "description": "lambdaship: images used by Lambda versions/aliases (deployed-*) are never expired",
        "selection": {"tagStatus": "tagged", "tagPrefixList": [DEPLOYED_PREFIX],
                      "countType": "sinceImagePushed", "countUnit": "days", "countNumber": PROTECT_DAYS},
        "action": {"type": "expire"},
    }, {
        "rulePriority": 2,
        "description": f"lambdaship: untagged images expire after {untagged_days} day(s)",
        "selection": {"tagStatus": "untagged", "countType": "sinceImagePushed", "countUnit": "days",
                      "countNumber": untagged_days},
        "action": {"type": "expire"},
    }]
    for i, prefix in enumerate(PUSH_TAG_PREFIXES):
        rules.append({
            "rulePriority": 3 + i,
            "description": f"lambdaship: keep the newest {keep} images tagged {prefix}*",
            "selection": {"tagStatus": "tagged", "tagPrefixList": [prefix],
                          "countType": "imageCountMoreThan", "countNumber": keep},
            "action": {"type": "expire"},
        })
    return {"rules": rules}


def _is(exc: Exception, code: str) -> bool:
    return getattr(exc, "response", {}).get("Error", {}).get("Code") == code


def ensure_repository(name: str, *, scan_on_push: bool = True, mutable_tags: bool = True,
                      encryption: str = "AES256", kms_key: str | None = None,
                      keep_images: int | None = None, on_create: Callable[[], None] | None = None) -> str:
    """The repository's URI, creating the repository when it is missing.

    ``encryption``: ``AES256`` or ``KMS`` (with ``kms_key``, else the AWS-managed key).
    ``keep_images``: install ``lifecycle_policy(keep_images)`` (only written when it differs).
    ``on_create``: called when this call created the repository.
    """
    from botocore.exceptions import ClientError

    if encryption not in ("AES256", "KMS"):
        raise ValueError("encryption must be AES256 or KMS")
    ecr = client("ecr")
    try:
        if keep_images is not None:
            # The policy's read answers RepositoryNotFound too: a redeploy makes one call, not two.
            put_lifecycle_policy(name, keep_images)
            return f"{registry_for_account()}/{name}"
        repo = ecr.describe_repositories(repositoryNames=[name])["repositories"][0]
    except ClientError as exc:
        if not _is(exc, "RepositoryNotFoundException"):
            raise
        enc: dict[str, str] = {"encryptionType": encryption}
        if encryption == "KMS" and kms_key:
            enc["kmsKey"] = kms_key
        try:
            repo = ecr.create_repository(
                repositoryName=name,
                imageTagMutability="MUTABLE" if mutable_tags else "IMMUTABLE",
                imageScanningConfiguration={"scanOnPush": scan_on_push},
                encryptionConfiguration=enc,
                tags=[{"Key": "managed-by", "Value": "lambdaship"}],
            )["repository"]
            if on_create is not None:
                on_create()
        except ClientError as exc2:
            if not _is(exc2, "RepositoryAlreadyExistsException"):
                raise
            repo = ecr.describe_repositories(repositoryNames=[name])["repositories"][0]
    if keep_images is not None:
        put_lifecycle_policy(name, keep_images)
    return repo["repositoryUri"]


def delete_empty_repository(name: str) -> bool:
    """Delete repository ``name`` unless it holds an image (ECR refuses then); True when deleted."""
    from botocore.exceptions import ClientError

    try:
        client("ecr").delete_repository(repositoryName=name)
    except ClientError:
        return False
    return True


def is_lambdaship_policy(policy: dict[str, Any]) -> bool:
    return any(str(r.get("description", "")).startswith("lambdaship:") for r in policy.get("rules", []))


def put_lifecycle_policy(repository: str, keep: int, *, force: bool = False) -> bool:
    """Install ``lifecycle_policy(keep)``; True when it was written.

    Not written when the same policy is already there, nor (unless ``force``) over a policy
    that lambdaship did not write — a team's own rules are theirs to keep.
    """
    from botocore.exceptions import ClientError

    ecr = client("ecr")
    wanted = lifecycle_policy(keep)
    try:
        current = json.loads(ecr.get_lifecycle_policy(repositoryName=repository)["lifecyclePolicyText"])
        if current == wanted or (not force and not is_lambdaship_policy(current)):
            return False
    except ClientError as exc:
        if not _is(exc, "LifecyclePolicyNotFoundException"):
            raise
    ecr.put_lifecycle_policy(repositoryName=repository, lifecyclePolicyText=json.dumps(wanted))
    return True


def registry_for_account(region: str | None = None) -> str:
    """The account's private registry host (``<account>.dkr.ecr.<region>.amazonaws.com``). Asked
    once per configuration and region: a deploy needs it for the target and again for the tag,
    a fleet for every function, and the host does not change when the token does."""
    with _token_lock:
        endpoint = _endpoints.get(_token_key(region))
    if endpoint is None:
        _, endpoint = get_authorization_token(region)
    return re.sub(r"^https?://", "", endpoint).rstrip("/")


def put_image(repository: str, manifest: bytes, media_type: str, tags: list[str] | tuple[str, ...],
              digest: str) -> None:
    """Register a pushed manifest with the ECR API under each tag (idempotent).

    Only where a registry stands in for ECR's (``oci.reference.ecr_stand_in``: the local stack,
    whose ECR API is moto, separate from its registry). ECR's registry and API are one service:
    a manifest PUT over the registry API is ECR's PutImage, so calling it again would cost a
    round trip per tag for an ImageAlreadyExistsException.
    """
    from botocore.exceptions import ClientError

    from lambdaship.oci.reference import ecr_stand_in

    if not ecr_stand_in():
        return
    ecr = client("ecr")
    for tag in list(tags) or [None]:
        kwargs: dict[str, Any] = {
            "repositoryName": repository, "imageManifest": manifest.decode(),
            "imageManifestMediaType": media_type, "imageDigest": digest,
        }
        if tag:
            kwargs["imageTag"] = tag
        try:
            ecr.put_image(**kwargs)
        except ClientError as exc:
            if not _is(exc, "ImageAlreadyExistsException"):
                raise


def image_exists(repository: str, digest: str) -> bool:
    """Whether the registry still has the manifest ``digest`` (what a rollback needs)."""
    return _registry().head_manifest(repository, digest) is not None


def tag_image(repository: str, digest: str, tag: str, known: tuple[bytes, str] | None = None) -> None:
    """Add ``tag`` to the image ``digest`` (e.g. ``deployed-<version>``) in registry and ECR API.
    ``known``: the image's (manifest, media type) when the caller has it (the deploy that pushed
    it), else the registry is asked; a manifest that is not ``digest`` is refused."""
    from lambdaship.errors import LambdashipError
    from lambdaship.oci.media import sha256_digest

    reg = _registry()
    if known is not None and sha256_digest(known[0]) != digest:
        raise LambdashipError(f"tag {tag}: the manifest given is not {digest}")
    manifest, media_type = known if known is not None else reg.get_manifest(repository, digest)[:2]
    reg.put_manifest(repository, tag, manifest, media_type)
    put_image(repository, manifest, media_type, [tag], digest)


def describe_images(repository: str) -> list[dict[str, Any]] | None:
    """Every image of ``repository`` (digest, tags, pushedAt, size, imageScanStatus), newest first;
    None when the repository does not exist. (Added by the deploy helper for ``status``.)"""
    from botocore.exceptions import ClientError

    out: list[dict[str, Any]] = []
    try:
        for page in client("ecr").get_paginator("describe_images").paginate(repositoryName=repository):
            out.extend(page.get("imageDetails", []))
    except ClientError as exc:
        if _is(exc, "RepositoryNotFoundException"):
            return None
        raise
    return sorted(out, key=lambda d: str(d.get("imagePushedAt", "")), reverse=True)
