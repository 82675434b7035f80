"""Compatibility shim for callers still being moved (deploy/, local/): use ``lambdaship.oci``
and ``lambdaship.registries`` instead. Removed once no module imports it."""

from __future__ import annotations

from lambdaship.oci import client as _client
from lambdaship.oci.auth import Credentials, docker_config_credentials
from lambdaship.oci.reference import REPO_RE, Reference, base_url, is_ecr_host
from lambdaship.oci.transport import RegistryError

__all__ = ["REPO_RE", "Credentials", "Reference", "RegistryClient", "RegistryError", "base_url",
           "docker_config_credentials", "is_ecr_host"]


class RegistryClient(_client.RegistryClient):
    """``for_registry`` with the default keychain (ECR included), as before the move."""

    @classmethod
    def for_registry(cls, registry: str, keychain=None) -> _client.RegistryClient:  # type: ignore[override]
        from lambdaship.registries import registry_client

        if keychain is None:
            return registry_client(registry)
        return _client.RegistryClient.for_registry(registry, keychain)
