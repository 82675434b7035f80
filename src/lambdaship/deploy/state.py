"""Observe: every remote fact a plan depends on, read once into a frozen :class:`FunctionState`.

This is the only module of the planner that reads AWS (or the registry). The planner
(:mod:`lambdaship.deploy.plan`) is a pure function of the state; a test builds a state by hand.
The ``dict`` fields hold the API's own answers (``GetFunction``, ``GetAlias``) and are read-only
by convention: the planner copies what it puts into a step.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from lambdaship.config import FunctionConfig
from lambdaship.deploy.markers import digest_of_uri, parse_marker, repository_of_uri, zip_digest_of
from lambdaship.deploy.steps import Target
from lambdaship.names import Names


@dataclass(frozen=True)
class VersionRef:
    """What a published version runs: the image (repository, digest) or the zip (digest)."""

    version: str
    repository: str | None = None
    digest: str | None = None
    zip_digest: str | None = None
    last_modified: str | None = None
    code_sha256: str | None = None  # the version's CodeSha256 (a zip's content; extra functions share it)

    def runs_same_code(self, other: VersionRef) -> bool:
        """Both run the same image digest, or the same zip content."""
        if self.digest and other.digest:
            return self.digest == other.digest
        return bool(self.code_sha256) and self.code_sha256 == other.code_sha256


@dataclass(frozen=True)
class FunctionState:
    name: str
    function: dict[str, Any] | None = None  # GetFunction of $LATEST (Configuration, Code, Tags)
    alias: dict[str, Any] | None = None  # GetAlias
    alias_ref: VersionRef | None = None  # what the alias's version runs
    role_exists: bool | None = None  # the configured role (None: not checked / not allowed to check)
    default_role_arn: str | None = None  # the role --create-role would create, when it already exists
    image_pushed: bool = False  # the registry already has the target's digest
    bucket_exists: bool | None = None  # the zip's S3 bucket (S3 uploads only)
    versions: tuple[VersionRef, ...] = ()  # published versions (read for rollback)
    missing_images: frozenset[tuple[str, str]] = field(default_factory=frozenset)  # (repository, digest)
    # The app's extra functions on the same code (authorizers, event handlers; read for rollback)
    extras: tuple[FunctionState, ...] = ()

    @property
    def exists(self) -> bool:
        return self.function is not None

    @property
    def configuration(self) -> dict[str, Any]:
        return (self.function or {}).get("Configuration", {})

    @property
    def alias_version(self) -> str | None:
        return self.alias["FunctionVersion"] if self.alias else None

    def version(self, number: str) -> VersionRef | None:
        return next((v for v in self.versions if v.version == number), None)


def version_ref(function_name: str, version: str, config: dict[str, Any] | None = None) -> VersionRef:
    """What version ``version`` runs: the marker lambdaship wrote in its description, else the
    version's ``Code.ImageUri`` (one GetFunction)."""
    from lambdaship.aws import lambda_

    description = (config or {}).get("Description")
    repo, digest = parse_marker(description)
    if digest:
        return VersionRef(version, repo, digest, zip_digest_of(description), (config or {}).get("LastModified"),
                          (config or {}).get("CodeSha256"))
    fn = lambda_.get_function(function_name, version)
    if fn is None:
        return VersionRef(version)
    cfg = fn["Configuration"]
    repo, digest = parse_marker(cfg.get("Description"))
    if digest:
        return VersionRef(version, repo, digest, zip_digest_of(cfg.get("Description")), cfg.get("LastModified"),
                          cfg.get("CodeSha256"))
    uri = fn.get("Code", {}).get("ImageUri")
    if not uri:
        return VersionRef(version, last_modified=cfg.get("LastModified"), code_sha256=cfg.get("CodeSha256"))
    return VersionRef(version, repository_of_uri(uri), digest_of_uri(uri), None, cfg.get("LastModified"),
                      cfg.get("CodeSha256"))


def version_image(function_name: str, version: str, config: dict[str, Any] | None = None
                  ) -> tuple[str | None, str | None]:
    ref = version_ref(function_name, version, config)
    return ref.repository, ref.digest


def _role_exists(arn: str) -> bool | None:
    from lambdaship.aws import iam

    return iam.role_exists(arn)


def observe(fn: FunctionConfig, names: Names | None = None, *, target: Target | None = None,
            create_role: bool = False, bucket: str | None = None) -> FunctionState:
    """Read the function, its alias and what the alias serves, the execution role (for a new
    function), whether the registry already has ``target`` and whether ``bucket`` exists."""
    from lambdaship.aws import iam, lambda_

    names = names or Names(fn.function_name, fn.repository)
    current = lambda_.get_function(names.function)
    state = FunctionState(name=names.function, function=current)
    if current is None:
        if fn.role is not None:
            state = replace(state, role_exists=_role_exists(fn.role))
        elif create_role:
            state = replace(state, default_role_arn=iam.role_arn(names.role))
    else:
        alias = lambda_.get_alias(names.function, fn.alias)
        ref = None
        if alias is not None and alias["FunctionVersion"] != "$LATEST":
            ref = version_ref(names.function, alias["FunctionVersion"], None)
        state = replace(state, alias=alias, alias_ref=ref)
    if target is not None and target.image is not None:
        state = replace(state, image_pushed=_in_registry(target))
    if bucket is not None:
        from lambdaship.aws import s3

        state = replace(state, bucket_exists=s3.bucket_exists(bucket))
    return state


def _in_registry(target: Target) -> bool:
    from lambdaship.registries import registry_client

    return registry_client(target.registry).head_manifest(target.repository, target.digest) is not None


def observe_rollback(fn: FunctionConfig, to: str | None = None) -> FunctionState:
    """The alias, every published version and what it runs, and whether the image of the version
    a rollback would move to still exists (a version whose image was deleted cannot run)."""
    from lambdaship.aws import ecr, lambda_
    from lambdaship.deploy.plan import rollback_target

    name = fn.function_name
    alias = lambda_.get_alias(name, fn.alias)
    current = lambda_.get_function(name) if alias is None else None
    versions = tuple(version_ref(name, v["Version"], v) for v in lambda_.list_versions(name))
    state = FunctionState(name=name, function=current, alias=alias, versions=versions)
    if alias is None:
        return state
    chosen = state.version(rollback_target(fn, state, to))
    if chosen is not None and chosen.repository and chosen.digest and not ecr.image_exists(
            chosen.repository, chosen.digest):
        state = replace(state, missing_images=frozenset({(chosen.repository, chosen.digest)}))
    return replace(state, extras=_extras(fn))


def _extras(fn: FunctionConfig) -> tuple[FunctionState, ...]:
    """The app's extra functions (``<name>-<suffix>``, tagged with the main function's name): their
    alias and published versions."""
    from lambdaship.aws import lambda_
    from lambdaship.names import MANAGED_TAG

    name, out = fn.function_name, []
    for other in sorted(n for n in lambda_.list_function_names() if n.startswith(f"{name}-")):
        current = lambda_.get_function(other)
        if current is None or (current.get("Tags") or {}).get(MANAGED_TAG) != name:
            continue
        versions = tuple(version_ref(other, v["Version"], v) for v in lambda_.list_versions(other))
        out.append(FunctionState(name=other, function=current, alias=lambda_.get_alias(other, fn.alias),
                                 versions=versions))
    return tuple(out)
