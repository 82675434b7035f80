"""Option groups shared by the commands (the model: ko's ``pkg/commands/options``).

A group is a dataclass whose fields are flags, declared once here. A command asks for a group
by a parameter annotated with the group's class; :func:`with_options` replaces that parameter
by the group's flags (same names, same help, same order everywhere) and hands the command one
value. ``ProjectFlags.load(build)`` is the one function that applies the flags to the config.

- :class:`ProjectFlags`: ``-C/--project``, ``-f/--function`` (which config, which function).
- :class:`BuildFlags`: what the package is built for and how it runs (``--base-image``,
  ``--python``, ``--architecture``, ``--package-type``, ``--memory``, ``--timeout``); each one
  overrides the config key of the same name.
- :class:`RuntimeFlags`: ``--memory`` and ``--timeout`` alone, for commands that run an image
  already built (``run``); the same declarations as in :class:`BuildFlags`.
- :class:`ListenFlags`: where a local gateway listens and how many workers it keeps (``serve``, ``run``).
- :class:`LocalEnvFlags`: the environment a local run gets (``serve``, ``run``, ``invoke --local``).
"""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import typer

from lambdaship.errors import UsageError
from lambdaship.platform import AWS_BASE_REPOSITORY, DEFAULT_ARCHITECTURE, Architecture

if TYPE_CHECKING:  # pydantic is imported only when a command loads a config
    from lambdaship.config import FunctionConfig, Project

F = TypeVar("F", bound=Callable[..., Any])


def parse_architecture(value: str | Architecture) -> Architecture:
    """``--architecture``: one of the Lambda architectures, else a one-line usage error (exit 2)."""
    if isinstance(value, Architecture):
        return value
    try:
        return Architecture(str(value).strip())
    except ValueError:
        raise UsageError(
            f"--architecture {value!r} is not supported", f"use one of: {', '.join(a.value for a in Architecture)}"
        ) from None


ARCHITECTURE_METAVAR = "[" + "|".join(a.value for a in Architecture) + "]"


def _given(flags: Any) -> dict[str, Any]:
    """The flags given (not ``None``) as config overrides (``load_project``'s ``overrides``)."""
    return {k: v for k, v in asdict(flags).items() if v is not None}


def flag(option: Any) -> Any:
    """A group's field declared by its typer option: the option's default is the field's default."""
    return field(default=option.default, metadata={"option": option})


def declarations(group: type) -> dict[str, tuple[Any, Any]]:
    """``{field: (annotation, typer option)}`` of an option group, in field order."""
    hints = typing.get_type_hints(group)
    return {f.name: (hints[f.name], f.metadata["option"]) for f in fields(group)}


def _memory() -> Any:
    return flag(typer.Option(None, "--memory", help="Memory in MB (128-10240).", show_default=False))


def _timeout() -> Any:
    return flag(typer.Option(None, "--timeout", help="Timeout in seconds (1-900).", show_default=False))


@dataclass(frozen=True)
class BuildFlags:
    """Flags that change what is built or how it runs; ``None`` = not given (the config decides)."""

    base_image: str | None = flag(typer.Option(
        None, "--base-image", show_default=False,
        help=f"Base image reference (default: {AWS_BASE_REPOSITORY}:<python>)."))
    python: str | None = flag(typer.Option(None, "--python", help="Lambda Python version, e.g. 3.12.",
                                           show_default=False))
    architecture: Architecture | None = flag(typer.Option(
        None, "--architecture", "--arch", parser=parse_architecture, metavar=ARCHITECTURE_METAVAR,
        help=f"Lambda architecture (default: {DEFAULT_ARCHITECTURE.value}).", show_default=False))
    package_type: str | None = flag(typer.Option(None, "--package-type", help="image, zip or auto.",
                                                 show_default=False))
    memory: int | None = _memory()
    timeout: int | None = _timeout()

    overrides = _given


@dataclass(frozen=True)
class RuntimeFlags:
    """How the function runs: memory and timeout (``None`` = not given)."""

    memory: int | None = _memory()
    timeout: int | None = _timeout()

    overrides = _given


@dataclass(frozen=True)
class ProjectFlags:
    """Which configuration and which of its functions."""

    project: Path | None = flag(typer.Option(
        None, "--project", "-C", help="The app's directory or config file (default: current directory).",
        show_default=False))
    function: str | None = flag(typer.Option(
        None, "--function", "-f", help="Which function of a multi-function config.", show_default=False))

    def load_project(self, build: BuildFlags | RuntimeFlags | None = None) -> Project:
        from lambdaship.config import load_project

        return load_project(self.project, build.overrides() if build else None)

    def load(self, build: BuildFlags | RuntimeFlags | None = None) -> tuple[Project, FunctionConfig]:
        """The project and the chosen function, with the build flags applied over the config."""
        proj = self.load_project(build)
        return proj, proj.function(self.function)


@dataclass(frozen=True)
class ListenFlags:
    """A local gateway: address, port, warm workers and the event shape it sends."""

    port: int = flag(typer.Option(9000, "--port", "-p", help="Port to listen on (0 = any free port)."))
    host: str = flag(typer.Option("127.0.0.1", "--host", help="Address to listen on."))
    workers: int = flag(typer.Option(2, "--workers", "-w", min=1, max=64, help="Most runtime processes kept warm."))
    http_api_v2: bool = flag(typer.Option(False, "--http-api-v2",
                                          help="Send HTTP API payload v2 events instead of REST API v1."))


@dataclass(frozen=True)
class LocalEnvFlags:
    """What a local run gets besides the config's environment: a .env file, secrets, ``--env``, credentials."""

    env_file: Path | None = flag(typer.Option(
        None, "--env-file", help="A .env file whose values are added (default: 'env_file').", show_default=False))
    secrets: bool = flag(typer.Option(
        False, "--secrets", help="Also read the configured SSM / Secrets Manager values."))
    env: list[str] | None = flag(typer.Option(
        None, "--env", metavar="KEY=VALUE", help="Set a variable for the function (repeatable).", show_default=False))
    aws_credentials: bool = flag(typer.Option(
        False, "--aws-credentials", help="Hand your AWS credentials (profile/role: temporary ones) to the function."))

    def extra(self) -> dict[str, str]:
        """``--env KEY=VALUE`` values; one-line usage error for anything else."""
        out: dict[str, str] = {}
        for pair in self.env or []:
            key, sep, value = pair.partition("=")
            if not sep or not key:
                raise UsageError(f"--env {pair!r} is not KEY=VALUE", "e.g. --env STAGE=dev")
            out[key] = value
        return out


GROUPS: tuple[type, ...] = (ProjectFlags, BuildFlags, RuntimeFlags, ListenFlags, LocalEnvFlags)


def with_options(func: F) -> F:
    """Expand every parameter annotated with a group class into the group's flags (see module doc)."""
    hints = typing.get_type_hints(func, localns={g.__name__: g for g in GROUPS})
    sig = inspect.signature(func)
    params: list[inspect.Parameter] = []
    groups: dict[str, type] = {}
    for p in sig.parameters.values():
        annotation = hints.get(p.name, p.annotation)
        if annotation in GROUPS:
            groups[p.name] = annotation
            for name, (ann, option) in declarations(annotation).items():
                params.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=option, annotation=ann))
        else:
            params.append(p.replace(kind=inspect.Parameter.KEYWORD_ONLY, annotation=annotation))
    names = [p.name for p in params]
    if len(names) != len(set(names)):
        raise TypeError(f"{func.__name__}: a flag of an option group clashes with a parameter")

    @functools.wraps(func)
    def wrapper(**kwargs: Any) -> Any:
        for pname, group in groups.items():
            kwargs[pname] = group(**{f.name: kwargs.pop(f.name) for f in fields(group)})
        return func(**kwargs)

    wrapper.__signature__ = sig.replace(parameters=params, return_annotation=hints.get("return", None))  # type: ignore[attr-defined]
    wrapper.__annotations__ = {p.name: p.annotation for p in params}
    del wrapper.__wrapped__  # typer reads the signature above, not the wrapped function's
    return wrapper  # type: ignore[return-value]
