"""Building :class:`~lambdaship.local.engine.FunctionSpec` values: from a built image, from a
project (base rootfs + the target's dependency tree + the live source), or from a zip function.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lambdaship import bubblewrap
from lambdaship.config import FunctionConfig
from lambdaship.errors import LambdashipError
from lambdaship.local import sandbox
from lambdaship.local.engine import FunctionSpec
from lambdaship.platform import Architecture

AWS_PUBLIC_BASE = "public.ecr.aws/"


def _image_env(cfg: dict[str, Any]) -> dict[str, str]:
    return dict(e.split("=", 1) for e in cfg.get("Env") or [] if "=" in e)


def image_spec(image_ref_or_layout: str, **overrides: Any) -> FunctionSpec:
    """A built image (OCI layout or registry reference): its layers unpacked (verified, cached),
    its config's ENTRYPOINT / CMD / Env / WorkingDir; ``overrides`` set any FunctionSpec field."""
    from lambdaship.local.images import load_image
    from lambdaship.local.rootcache import cached_rootfs

    img = load_image(image_ref_or_layout)
    progress = overrides.pop("progress", None)
    rootfs = cached_rootfs(img, progress=progress)
    return spec_from_config(img.config_json, rootfs, image_digest=img.digest, **overrides)


def spec_from_config(config: dict[str, Any], rootfs: Path, **overrides: Any) -> FunctionSpec:
    cfg = config.get("config") or {}
    cmd = list(cfg.get("Cmd") or [])
    if not cmd:
        raise LambdashipError("the image has no CMD (the handler)",
                              "build it with lambdaship, or set CMD to 'module.function'")
    labels = cfg.get("Labels") or {}
    arch = Architecture.parse(config.get("architecture") or "amd64")
    notes = list(overrides.pop("notes", ()))
    emulator_note = sandbox.emulator_for(arch)[1] if bubblewrap.available()[0] else None
    if emulator_note:
        notes.append(emulator_note)
    values: dict[str, Any] = dict(
        name=labels.get("dev.lambdaship.function") or "function", handler=cmd[0], rootfs=rootfs,
        image_env=_image_env(cfg), entrypoint=tuple(cfg.get("Entrypoint") or ()),
        workdir=cfg.get("WorkingDir") or "/var/task", architecture=arch,
        python=labels.get("dev.lambdaship.python") or "3",
    )
    values.update(overrides)
    values["notes"] = tuple(notes)
    if bubblewrap.available()[0]:
        _check_runnable(rootfs, values["entrypoint"])
    else:
        why = bubblewrap.available()[1]
        values.update(sandboxed=False, host_paths=(rootfs / "var/task",))
        values["notes"] += (f"no sandbox here ({why}): running the image's app layers with the host Python "
                            f"{sys.version_info[0]}.{sys.version_info[1]} in isolation mode; its OS is not used",)
    return FunctionSpec(**values)


def _check_runnable(rootfs: Path, entrypoint: tuple[str, ...]) -> None:
    from lambdaship.local.engine import PYTHONS
    from lambdaship.local.rootfs import resolve_inside

    def present(path: str) -> bool:
        return (rootfs / resolve_inside(rootfs, path)).is_file()

    if entrypoint:
        if not present(entrypoint[0]):
            raise LambdashipError(f"the image's ENTRYPOINT {entrypoint[0]} does not exist in the image",
                                  "build it on a Lambda base image (e.g. 'lambdaship local base')")
    elif not any(present(p) for p in PYTHONS):
        raise LambdashipError("the image has no ENTRYPOINT and no Python to run the handler with",
                              "build it on a Lambda base image (e.g. 'lambdaship local base')")


def base_rootfs(fn: FunctionConfig | None = None) -> tuple[Path, dict[str, Any], str]:
    """(rootfs, image config, python) of the base a project runs on locally.

    The configured ``base_image`` when it is not an AWS public image (e.g. a registry copy of
    lambdaship's offline base); otherwise lambdaship's offline Lambda-like base (built once).
    """
    from lambdaship.local import base
    from lambdaship.local.images import load_image
    from lambdaship.local.rootcache import cached_rootfs

    ref = fn.base_image if fn is not None else None
    if ref and not ref.startswith(AWS_PUBLIC_BASE):
        img = load_image(ref)
        cfg = img.config_json
        python = ((cfg.get("config") or {}).get("Labels") or {}).get("dev.lambdaship.python") or fn.python
    else:
        img = base.base_image()
        python = base.PYTHON
    return cached_rootfs(img), img.config_json, python


def _deps_tree(fn: FunctionConfig) -> Path:
    from lambdaship.package import deps

    result = deps.install(fn, target="lambda")
    return Path(result.path)


def local_environment(fn: FunctionConfig, env_file: Path | str | None = None, secrets: bool = False,
                      extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """``chalice_stage``'s variables < config ``environment`` < ``env_file`` / ``--env-file`` <
    (``secrets``: SSM, Secrets Manager) < ``extra`` (``--env``): the same merge and checks as
    ``lambdaship env``."""
    from lambdaship.deploy import env as env_mod

    if secrets:
        values = dict(env_mod.resolve(fn, env_file).values)
    else:
        values = {**env_mod.chalice_env(fn), **fn.environment}
        path = env_mod.env_file_path(fn, env_file)
        if path is not None:
            if not path.is_file():
                what = "is not a regular file" if path.exists() else "does not exist"
                raise LambdashipError(f"env file {path} {what}", "create it or fix env_file / --env-file")
            values.update(env_mod.parse_env_file(path))
    values.update(extra or {})
    return values


def project_spec(fn: FunctionConfig, *, environment: Mapping[str, str] | None = None,
                 credentials: Mapping[str, str] | None = None, timeout: float | None = None,
                 region: str | None = None) -> FunctionSpec:
    """``serve`` / ``invoke --local``: the base rootfs, the dependency tree built for the target
    (the one ``build`` layers into the image) and the live source tree at /var/task."""
    from lambdaship.project import check_handler

    check_handler(fn)
    common: dict[str, Any] = dict(
        name=fn.function_name, handler=fn.resolved_handler, memory_mb=fn.memory,
        timeout_s=float(timeout if timeout is not None else fn.timeout), ephemeral_mb=fn.ephemeral_storage,
        environment=dict(fn.environment if environment is None else environment), credentials=credentials,
        region=region or _region())
    notes: list[str] = []
    ok, why = bubblewrap.available()
    if not ok:
        from lambdaship.package import deps as host_deps

        tree = Path(host_deps.install(fn, target="host").path)
        notes.append(f"no sandbox here ({why}): running on the host Python "
                     f"{sys.version_info[0]}.{sys.version_info[1]} with only the declared requirements")
        return FunctionSpec(rootfs=fn.source, task_overlay=fn.source, sandboxed=False,
                            host_paths=(fn.source, tree), python=f"{sys.version_info[0]}.{sys.version_info[1]}",
                            notes=tuple(notes), **common)
    rootfs, config, base_python = base_rootfs(fn)
    arch = Architecture.parse(config.get("architecture") or "amd64")
    target = fn
    if base_python != fn.python:
        notes.append(f"the function targets Python {fn.python}; the local base has Python {base_python}: "
                     f"dependencies installed for {base_python}")
        target = target.model_copy(update={"python": base_python})
    if arch.value != fn.architecture:
        notes.append(f"the function targets {fn.architecture}; the local base is {arch.value}: "
                     f"dependencies installed for {arch.value}")
        target = target.model_copy(update={"architecture": arch.value})
    cfg = config.get("config") or {}
    return FunctionSpec(rootfs=rootfs, task_overlay=fn.source, deps=_deps_tree(target), image_env=_image_env(cfg),
                        entrypoint=tuple(cfg.get("Entrypoint") or ()), architecture=arch, python=base_python,
                        notes=tuple(notes), **common)


def zip_spec(code_dir: Path, runtime: str, handler: str, **kw: Any) -> FunctionSpec:
    """A zip function (``code_dir`` = the unzipped package) on the offline base for ``runtime``."""
    from lambdaship.local import base
    from lambdaship.local.rootcache import cached_rootfs

    python = runtime.removeprefix("python")
    img = base.base_image()
    notes = list(kw.pop("notes", ()))
    if python != base.PYTHON:
        notes.append(f"runtime {runtime}: the local base has Python {base.PYTHON}")
    cfg = img.config_json.get("config") or {}
    values: dict[str, Any] = dict(name="function", handler=handler, rootfs=cached_rootfs(img),
                                  task_overlay=Path(code_dir), image_env=_image_env(cfg),
                                  entrypoint=tuple(cfg.get("Entrypoint") or ()), python=base.PYTHON,
                                  architecture=Architecture.parse(img.config_json.get("architecture") or "amd64"))
    values.update(kw)
    values["notes"] = tuple(notes)
    return FunctionSpec(**values)


def _region() -> str:
    import os

    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"


def caller_credentials() -> dict[str, str]:
    """The caller's current AWS credentials (profile / role: temporary ones), for --aws-credentials."""
    from lambdaship.aws.session import session

    creds = session().get_credentials()
    if creds is None:
        raise LambdashipError("--aws-credentials: no AWS credentials found",
                              "configure a profile (--profile / AWS_PROFILE) or set AWS_ACCESS_KEY_ID")
    frozen = creds.get_frozen_credentials()
    out = {"AWS_ACCESS_KEY_ID": frozen.access_key, "AWS_SECRET_ACCESS_KEY": frozen.secret_key}
    if frozen.token:
        out["AWS_SESSION_TOKEN"] = frozen.token
    return out
