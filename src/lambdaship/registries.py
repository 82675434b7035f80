"""Where registry access is composed: ``oci`` (which knows no AWS) with the ECR keychain.

* ``default_keychain()`` — ECR hosts: ``GetAuthorizationToken`` (``aws.ecr.EcrKeychain``);
  others: the container tools' logins (``oci.auth.DockerConfigKeychain``); else anonymous;
* ``registry_client(registry)`` — a cached ``oci.client.RegistryClient`` with that keychain;
* ``push_image(...)`` — ``oci.push.push_image`` with that keychain, then, for ECR targets,
  ``PutImage`` so the ECR API (and moto's) knows the image;
* ``send_ahead(...)`` — ``oci.push.send_ahead`` with that keychain.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lambdaship.oci.auth import Keychain
    from lambdaship.oci.client import RegistryClient
    from lambdaship.oci.push import Ahead, EventSink, Image, Layer, PushResult


@functools.cache
def default_keychain() -> Keychain:
    from lambdaship.aws.ecr import EcrKeychain
    from lambdaship.oci.auth import DockerConfigKeychain, MultiKeychain

    return MultiKeychain(EcrKeychain(), DockerConfigKeychain())


def registry_client(registry: str) -> RegistryClient:
    from lambdaship.oci.client import RegistryClient

    return RegistryClient.for_registry(registry, default_keychain())


def push_image(image: Image, target: str, tags: Sequence[str] = (), *,
               on_event: EventSink | None = None, ahead: Ahead | None = None) -> PushResult:
    """Push ``image`` to ``target`` with the default keychain; ECR targets are registered with
    the ECR API too (``PutImage`` per tag)."""
    from lambdaship.oci import push
    from lambdaship.oci.reference import is_ecr_host

    result = push.push_image(image, target, tags, keychain=default_keychain(), on_event=on_event, ahead=ahead)
    if is_ecr_host(target):
        from lambdaship.aws import ecr

        ecr.put_image(result.repository, image.manifest, image.media_type, result.tags, image.digest)
    return result


def send_ahead(layers: Sequence[Layer], target: str, stop: threading.Event | None = None) -> Ahead:
    from lambdaship.oci import push

    return push.send_ahead(layers, target, keychain=default_keychain(), stop=stop)
