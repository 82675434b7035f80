"""Options and output helpers shared by the commands."""

from __future__ import annotations

import json
import sys
from typing import Any

import typer
from rich.console import Console

from lambdaship.commands._help import console_width
from lambdaship.commands.options import ProjectFlags, declarations
from lambdaship.image import events as build_events
from lambdaship.image.events import BuildEvent

# -C alone, for the commands that take no function (``ci``, ``iam``): options.ProjectFlags' declaration.
ProjectOpt = declarations(ProjectFlags)["project"][1]
JsonOpt = typer.Option(False, "--json", help="Print a JSON document instead of text.")

console = Console(stderr=False, highlight=False, soft_wrap=True, width=console_width(sys.stdout))
err_console = Console(stderr=True, highlight=False, soft_wrap=True, width=console_width(sys.stderr))


def emit_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
    sys.stdout.flush()


def render_build_event(event: BuildEvent) -> None:
    """The CLI's rendering of a build's progress (``lambdaship.image.events``): rich rows on a
    terminal, one line per stage with its duration and bytes otherwise (``commands._progress``)."""
    from lambdaship.commands._progress import renderer_for

    renderer_for(err_console, tty=interactive())(event)


build_events.set_default_sink(render_build_event)


def interactive() -> bool:
    """Progress bars and spinners only on a terminal."""
    return sys.stderr.isatty()
