"""Plan a deploy: read the function's current state (describe/get calls only) and list the calls.

A :class:`Plan` is a list of :class:`Step` s, each one API call (``service:Action`` + params).
Values only known while executing (the new version number, the RevisionId after an update)
are :class:`Later` placeholders. ``Plan.to_json()`` / ``render()`` mask environment values.
Nothing here mutates anything; :mod:`lambdaship.deploy.execute` runs a plan.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from lambdaship.config import FunctionConfig
from lambdaship.deploy.env import MASK, Change, Resolved, diff
from lambdaship.errors import LambdashipError

# Written in each published version's description: the image (or, for zip functions, the
# zip's sha256 — see lambdaship.zipdeploy) that version runs.
MARKER_RE = re.compile(
    r"lambdaship (?:image=(?:(?P<repo>[a-z0-9][a-z0-9._/-]*)@)?|zip=)(?P<digest>sha256:[0-9a-f]{64})"
)
HISTORY_RE = re.compile(r"lambdaship previous=(?P<versions>[0-9,]*)")
HISTORY_KEEP = 20
MANAGED_TAG = "lambdaship:function"


@dataclass(frozen=True)
class Later:
    """A value known only during execution: ``template`` formatted with the execution context."""

    template: str

    def resolve(self, ctx: dict[str, Any]) -> Any:
        if re.fullmatch(r"\{(\w+)\}", self.template):
            return ctx[self.template[1:-1]]
        return self.template.format(**ctx)

    def __str__(self) -> str:
        return f"<{self.template}>"


@dataclass
class Step:
    action: str  # "lambda:UpdateFunctionCode", "registry:PutTag", "smoke:Invoke", ...
    params: dict[str, Any]
    note: str = ""

    def display_params(self) -> dict[str, Any]:
        return _display(self.params)

    def to_json(self) -> dict[str, Any]:
        return {"action": self.action, "params": self.display_params(), "note": self.note}

    def render(self) -> str:
        shown = ", ".join(f"{k}={_short(v)}" for k, v in self.display_params().items())
        return f"{self.action}({shown})" + (f"  # {self.note}" if self.note else "")


def _display(value: Any, key: str = "") -> Any:
    if isinstance(value, Later):
        return str(value)
    if isinstance(value, dict):
        if key == "Variables":
            return {k: MASK for k in value}
        return {k: _display(v, k) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_display(v) for v in value]
    return value


def _short(value: Any) -> str:
    import json

    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return text if len(text) <= 160 else text[:157] + "..."


def resolve_params(value: Any, ctx: dict[str, Any]) -> Any:
    if isinstance(value, Later):
        return value.resolve(ctx)
    if isinstance(value, dict):
        resolved = {k: resolve_params(v, ctx) for k, v in value.items()}
        return {k: v for k, v in resolved.items() if v is not None}
    if isinstance(value, list):
        return [resolve_params(v, ctx) for v in value]
    return value


@dataclass
class Target:
    """The image to deploy. ``image`` is set when it still has to be pushed."""

    image_uri: str  # <registry>/<repository>@sha256:...
    digest: str
    repository: str
    image: Any = None  # lambdaship.image.model.Image

    @property
    def registry(self) -> str:
        return self.image_uri.split("/", 1)[0]


@dataclass
class Plan:
    function_name: str
    alias: str
    target: Target | None
    steps: list[Step] = field(default_factory=list)
    exists: bool = False
    current_digest: str | None = None
    alias_version: str | None = None
    alias_digest: str | None = None
    env_changes: list[Change] = field(default_factory=list)
    history: list[str] = field(default_factory=list)
    kind: str = "deploy"

    @property
    def up_to_date(self) -> bool:
        return not any(s.action.startswith(("lambda:", "iam:", "registry:", "smoke:")) for s in self.steps)

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "function": self.function_name,
            "alias": self.alias,
            "exists": self.exists,
            "image_uri": self.target.image_uri if self.target else None,
            "digest": self.target.digest if self.target else None,
            "current_digest": self.current_digest,
            "alias_version": self.alias_version,
            "alias_digest": self.alias_digest,
            "environment": [c.to_json() for c in self.env_changes],
            "up_to_date": self.up_to_date,
            "steps": [s.to_json() for s in self.steps],
        }

    def render(self) -> list[str]:
        lines = [f"plan for {self.function_name} (alias {self.alias}):"]
        if not self.steps:
            lines.append("  nothing to do: up to date")
        for i, s in enumerate(self.steps, 1):
            lines.append(f"  {i:>2}. {s.render()}")
        changed = [c for c in self.env_changes if c.kind != "unchanged"]
        if changed:
            from lambdaship.deploy.env import render_diff

            lines.append("  environment changes:")
            lines.extend("  " + line for line in render_diff(changed))
        return lines


# -- reading the current state -------------------------------------------------------------------
def version_marker(repository: str, digest: str, description: str = "") -> str:
    marker = f"lambdaship image={repository}@{digest}"
    if len(marker) > 256:
        marker = f"lambdaship image={digest}"
    if description:
        marker = f"{marker} {description}"
    return marker[:256]


def parse_marker(description: str | None) -> tuple[str | None, str | None]:
    m = MARKER_RE.search(description or "")
    return (m.group("repo"), m.group("digest")) if m else (None, None)


def digest_of_uri(uri: str | None) -> str | None:
    if uri and "@" in uri:
        d = uri.rsplit("@", 1)[1]
        return d if d.startswith("sha256:") else None
    return None


def parse_history(description: str | None) -> list[str]:
    m = HISTORY_RE.search(description or "")
    return [v for v in m.group("versions").split(",") if v] if m else []


def history_description(versions: list[str]) -> str:
    seen: list[str] = []
    for v in versions:
        if v and v not in seen:
            seen.append(v)
    return f"lambdaship previous={','.join(seen[:HISTORY_KEEP])}"


def version_image(
    function_name: str, version: str, config: dict[str, Any] | None = None
) -> tuple[str | None, str | None]:
    """(repository, digest) of a published version: the marker lambdaship wrote in its description,
    else the version's ``Code.ImageUri``."""
    from lambdaship.aws import lambda_

    if config is not None:
        repo, digest = parse_marker(config.get("Description"))
        if digest:
            return repo, digest
    fn = lambda_.get_function(function_name, version)
    if fn is None:
        return None, None
    repo, digest = parse_marker(fn["Configuration"].get("Description"))
    if digest:
        return repo, digest
    uri = fn.get("Code", {}).get("ImageUri")
    if not uri:
        return None, None
    path = uri.split("/", 1)[1] if "/" in uri else uri
    return path.split("@", 1)[0].split(":", 1)[0], digest_of_uri(uri)


# -- planning ------------------------------------------------------------------------------------
def desired_configuration(fn: FunctionConfig, env: Resolved) -> dict[str, Any]:
    return {
        "MemorySize": fn.memory,
        "Timeout": fn.timeout,
        "EphemeralStorage": {"Size": fn.ephemeral_storage},
        "Description": fn.description,
        "Environment": {"Variables": dict(env.values)},
    }


def _config_changes(current: dict[str, Any], desired: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, want in desired.items():
        have = current.get(key)
        if key == "Environment":
            have = {"Variables": (have or {}).get("Variables", {})}
        elif key == "EphemeralStorage":
            have = {"Size": (have or {}).get("Size", 512)}
        elif key == "Description":
            have = have or ""
        if have != want:
            out[key] = want
    return out


def _in_registry(target: Target) -> bool:
    from lambdaship.registry import RegistryClient

    return RegistryClient.for_registry(target.registry).head_manifest(target.repository, target.digest) is not None


def desired_tags(fn: FunctionConfig) -> dict[str, str]:
    return {**fn.tags, MANAGED_TAG: fn.key}


def plan_deploy(
    fn: FunctionConfig,
    target: Target,
    env: Resolved,
    *,
    create_role: bool = False,
    skip_smoke: bool = False,
    only_env: bool = False,
) -> Plan:
    """Describe the function (and its role and alias) and list the calls a deploy makes.

    ``only_env``: change nothing but the environment (``env sync``): the other configuration
    keys and tags are left as they are."""
    from lambdaship.aws import lambda_

    name = fn.function_name
    current = lambda_.get_function(name)
    plan = Plan(function_name=name, alias=fn.alias, target=target, exists=current is not None)
    steps = plan.steps

    role = execution_role(fn, current, create_role=create_role, steps=steps)

    if target.image is not None and _in_registry(target):
        target.image = None  # already pushed (same digest): nothing to upload
    if target.image is not None:
        steps.append(Step("registry:PushImage", {"Repository": target.repository, "Digest": target.digest,
                                                 "Registry": target.registry},
                          "creates the ECR repository if missing; uploads only missing blobs"))

    desired = desired_configuration(fn, env)
    arch = [fn.architecture]
    if current is None:
        params: dict[str, Any] = {
            "FunctionName": name,
            "PackageType": "Image",
            "Code": {"ImageUri": target.image_uri},
            "Role": role,
            "Architectures": arch,
            **desired,
            "Tags": desired_tags(fn),
        }
        steps.append(Step("lambda:CreateFunction", params))
        steps.append(Step("lambda:Wait", {"FunctionName": name, "Waiter": "function_active_v2"}))
        plan.env_changes = diff({}, env)
    else:
        cfg = current["Configuration"]
        if cfg.get("PackageType") != "Image":
            raise LambdashipError(
                f"{name} is a {cfg.get('PackageType')} function; Lambda cannot change a function's package type",
                "use `lambdaship migrate` to move it to an image function",
            )
        current_uri = current.get("Code", {}).get("ImageUri")
        plan.current_digest = digest_of_uri(current_uri)
        plan.env_changes = diff(cfg.get("Environment", {}).get("Variables", {}), env)
        revision = cfg.get("RevisionId")
        if current_uri != target.image_uri or (cfg.get("Architectures") or ["x86_64"]) != arch:
            steps.append(Step("lambda:UpdateFunctionCode", {
                "FunctionName": name, "ImageUri": target.image_uri, "Architectures": arch, "RevisionId": revision,
            }))
            steps.append(Step("lambda:Wait", {"FunctionName": name, "Waiter": "function_updated_v2"}))
            revision = Later("{revision}")
        if only_env:
            desired = {"Environment": desired["Environment"]}
        changes = _config_changes(cfg, desired)
        if fn.role and cfg.get("Role") != fn.role and not only_env:
            changes["Role"] = fn.role
        if changes:
            steps.append(Step("lambda:UpdateFunctionConfiguration", {"FunctionName": name, **changes,
                                                                     "RevisionId": revision}))
            steps.append(Step("lambda:Wait", {"FunctionName": name, "Waiter": "function_updated_v2"}))
        tags = current.get("Tags") or {}
        missing = {k: v for k, v in desired_tags(fn).items() if tags.get(k) != v}
        if missing and not only_env:
            steps.append(Step("lambda:TagResource", {"Resource": cfg["FunctionArn"], "Tags": missing}))

    alias = lambda_.get_alias(name, fn.alias) if current is not None else None
    if alias is not None:
        plan.alias_version = alias["FunctionVersion"]
        plan.history = parse_history(alias.get("Description"))
        if plan.alias_version != "$LATEST":
            _, plan.alias_digest = version_image(name, plan.alias_version)

    lambda_steps = [s for s in steps if s.action.startswith("lambda:")]
    if not lambda_steps and plan.alias_digest == target.digest:
        return plan  # the alias already serves this image with this configuration

    steps.append(Step("lambda:PublishVersion", {
        "FunctionName": name,
        "Description": version_marker(target.repository, target.digest, fn.description),
        "RevisionId": Later("{revision}"),
        "CodeSha256": Later("{code_sha256}"),
    }, "only if $LATEST still runs this image (else: concurrent deploy)"))
    # In the function's own repository "deployed-<version>"; in a repository shared by several
    # functions the name is part of the tag, else each function's version 1 moved the others' tag
    # and left their images unprotected from the lifecycle rule.
    own = target.repository == name.lower().replace("_", "-")
    tag = "deployed-{version}" if own else f"deployed-{name}-{{version}}"
    steps.append(Step("registry:PutTag", {"Repository": target.repository, "Digest": target.digest,
                                          "Tag": Later(tag)},
                      "protects the image from the lifecycle rule"))
    steps.extend(smoke_and_alias_steps(fn, plan, alias, skip_smoke=skip_smoke))
    return plan


def execution_role(fn: FunctionConfig, current: dict[str, Any] | None, *, create_role: bool,
                   steps: list[Step]) -> Any:
    """The role a new function gets: the configured one (checked to exist before anything is
    pushed), or one ``--create-role`` makes (an ``iam:CreateRole`` step is appended). Existing
    functions keep theirs (returns ``fn.role``, possibly None)."""
    from lambdaship.aws import iam

    name = fn.function_name
    role: Any = fn.role
    if current is None and role is not None:
        iam.check_role(role)
    if current is None and role is None:
        if not create_role:
            raise LambdashipError(
                f"no execution role configured for {name}",
                'set role = "arn:aws:iam::<account>:role/<name>" in the config, or pass --create-role',
            )
        role_name = iam.default_role_name(name)
        role = iam.role_arn(role_name)
        if role is None:
            steps.append(Step("iam:CreateRole", {"RoleName": role_name, "FunctionName": name},
                              "trust lambda.amazonaws.com; attach AWSLambdaBasicExecutionRole only"))
            role = Later("{role}")
    return role


def smoke_and_alias_steps(fn: FunctionConfig, plan: Plan, alias: dict[str, Any] | None, *,
                          skip_smoke: bool) -> list[Step]:
    """The tail every deploy plan ends with (image or zip): smoke-test the new version, then move
    the alias to it — always the last step, so nothing unverified ever serves traffic."""
    name = fn.function_name
    steps: list[Step] = []
    if fn.smoke is not None and not skip_smoke:
        smoke = {"event": fn.smoke.event} if fn.smoke.event is not None else {
            "path": fn.smoke.path, "method": fn.smoke.method}
        steps.append(Step("smoke:Invoke", {"FunctionName": name, "Qualifier": Later("{version}"), **smoke},
                          "the alias moves only if this passes"))
    history = [plan.alias_version, *plan.history] if plan.alias_version else []
    if alias is None:
        steps.append(Step("lambda:CreateAlias", {"FunctionName": name, "Name": fn.alias,
                                                 "FunctionVersion": Later("{version}"),
                                                 "Description": history_description([])}))
    else:
        steps.append(Step("lambda:UpdateAlias", {
            "FunctionName": name, "Name": fn.alias, "FunctionVersion": Later("{version}"),
            "Description": history_description(history), "RevisionId": alias.get("RevisionId"),
        }, f"was version {plan.alias_version}"))
    return steps
