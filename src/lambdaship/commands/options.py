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
"""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
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


@dataclass(frozen=True)
class BuildFlags:
    """Flags that change what is built or how it runs; ``None`` = not given (the config decides)."""

    base_image: str | None = None
    python: str | None = None
    architecture: Architecture | None = None
    package_type: str | None = None
    memory: int | None = None
    timeout: int | None = None

    def overrides(self) -> dict[str, Any]:
        """The given flags as config overrides (``load_project``'s ``overrides``)."""
        return {k: v for k, v in asdict(self).items() if v is not None}

    @staticmethod
    def declarations() -> dict[str, tuple[Any, Any]]:
        return {
            "base_image": (str | None, typer.Option(
                None, "--base-image", show_default=False,
                help=f"Base image reference (default: {AWS_BASE_REPOSITORY}:<python>).")),
            "python": (str | None, typer.Option(None, "--python", help="Lambda Python version, e.g. 3.12.",
                                                show_default=False)),
            "architecture": (Architecture | None, typer.Option(
                None, "--architecture", "--arch", parser=parse_architecture, metavar=ARCHITECTURE_METAVAR,
                help=f"Lambda architecture (default: {DEFAULT_ARCHITECTURE.value}).", show_default=False)),
            "package_type": (str | None, typer.Option(None, "--package-type", help="image, zip or auto.",
                                                      show_default=False)),
            **RuntimeFlags.declarations(),
        }


@dataclass(frozen=True)
class RuntimeFlags:
    """How the function runs: memory and timeout (``None`` = not given)."""

    memory: int | None = None
    timeout: int | None = None

    def overrides(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}

    @staticmethod
    def declarations() -> dict[str, tuple[Any, Any]]:
        return {
            "memory": (int | None, typer.Option(None, "--memory", help="Memory in MB (128-10240).",
                                                show_default=False)),
            "timeout": (int | None, typer.Option(None, "--timeout", help="Timeout in seconds (1-900).",
                                                 show_default=False)),
        }


@dataclass(frozen=True)
class ProjectFlags:
    """Which configuration and which of its functions."""

    project: Path | None = None
    function: str | None = None

    @staticmethod
    def declarations() -> dict[str, tuple[Any, Any]]:
        return {
            "project": (Path | None, typer.Option(
                None, "--project", "-C", help="The app's directory or config file (default: current directory).",
                show_default=False)),
            "function": (str | None, typer.Option(
                None, "--function", "-f", help="Which function of a multi-function config.", show_default=False)),
        }

    def load_project(self, build: BuildFlags | RuntimeFlags | None = None) -> Project:
        from lambdaship.config import load_project

        return load_project(self.project, build.overrides() if build else None)

    def load(self, build: BuildFlags | RuntimeFlags | None = None) -> tuple[Project, FunctionConfig]:
        """The project and the chosen function, with the build flags applied over the config."""
        proj = self.load_project(build)
        return proj, proj.function(self.function)


GROUPS: tuple[type, ...] = (ProjectFlags, BuildFlags, RuntimeFlags)


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
            for name, (ann, option) in annotation.declarations().items():
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
