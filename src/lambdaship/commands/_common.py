"""Options and output helpers shared by the commands."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.console import Console

if TYPE_CHECKING:  # pydantic is imported only when a command loads a config
    from lambdaship.config import FunctionConfig, Project


ProjectOpt = typer.Option(
    None, "--project", "-C", help="The app's directory or config file (default: current directory).",
    show_default=False,
)
FunctionOpt = typer.Option(
    None, "--function", "-f", help="Which function of a multi-function config.", show_default=False
)
JsonOpt = typer.Option(False, "--json", help="Print a JSON document instead of text.")

# Flags that override the configuration (config keys of the same name); None = not given.
BaseImageOpt = typer.Option(
    None, "--base-image", help="Base image reference (default: public.ecr.aws/lambda/python:<python>).",
    show_default=False,
)
PythonOpt = typer.Option(None, "--python", help="Lambda Python version, e.g. 3.12.", show_default=False)
ArchitectureOpt = typer.Option(None, "--architecture", "--arch", help="x86_64 or arm64.", show_default=False)
PackageTypeOpt = typer.Option(None, "--package-type", help="image, zip or auto.", show_default=False)
MemoryOpt = typer.Option(None, "--memory", help="Memory in MB (128-10240).", show_default=False)
TimeoutOpt = typer.Option(None, "--timeout", help="Timeout in seconds (1-900).", show_default=False)

console = Console(stderr=False, highlight=False, soft_wrap=True)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)


def project_and_function(
    project: Path | None, function: str | None, overrides: dict[str, Any] | None = None
) -> tuple[Project, FunctionConfig]:
    from lambdaship.config import load_project

    proj = load_project(project, overrides)
    return proj, proj.function(function)


def emit_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
    sys.stdout.flush()


def interactive() -> bool:
    """Progress bars and spinners only on a terminal."""
    return sys.stderr.isatty()
