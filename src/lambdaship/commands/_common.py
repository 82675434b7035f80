"""Options and output helpers shared by the commands."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from lambdaship.config import FunctionConfig, Project, load_project

ProjectOpt = typer.Option(
    None, "--project", "-C", help="The app's directory or config file (default: current directory).",
    show_default=False,
)
FunctionOpt = typer.Option(
    None, "--function", "-f", help="Which function of a multi-function config.", show_default=False
)
JsonOpt = typer.Option(False, "--json", help="Print a JSON document instead of text.")

console = Console(stderr=False, highlight=False, soft_wrap=True)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)


def project_and_function(
    project: Path | None, function: str | None, overrides: dict[str, Any] | None = None
) -> tuple[Project, FunctionConfig]:
    proj = load_project(project, overrides)
    return proj, proj.function(function)


def emit_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
    sys.stdout.flush()


def interactive() -> bool:
    """Progress bars and spinners only on a terminal."""
    return sys.stderr.isatty()
