"""How the command line looks outside the commands: flag placeholders, help width when not on a
terminal, and ``--json`` errors. Called from ``cli.py``."""

from __future__ import annotations

import json
import os
import sys
from typing import Any

PIPE_WIDTH = 120  # help and tables when stdout is not a terminal (CI logs, pipes): no mid-sentence wraps


def plain_flags_and_width() -> None:
    """typer 0.29 prints ``<bool>`` after every flag in rich help; a flag takes no value, so show
    none. Outside a terminal rich would wrap at 80 columns; use PIPE_WIDTH unless the user set
    COLUMNS or TERMINAL_WIDTH."""
    from typer import core, rich_utils

    original = core.TyperOption.display_type_rich
    if not getattr(original, "_lambdaship", False):
        def display_type_rich(self: Any, ctx: Any) -> str | None:
            if self.is_flag and self.metavar is None:
                return None
            return original(self, ctx)

        display_type_rich._lambdaship = True  # type: ignore[attr-defined]
        core.TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign]
    if rich_utils.MAX_WIDTH is None and not os.environ.get("COLUMNS") and not sys.stdout.isatty():
        rich_utils.MAX_WIDTH = PIPE_WIDTH


def json_error(exc: Any, argv: list[str] | None) -> None:
    """Under ``--json``: the error as one JSON object on stdout (the one-line error stays on stderr)."""
    args = sys.argv[1:] if argv is None else argv
    if "--json" not in args:
        return
    doc = {"error": " ".join(exc.message.rstrip(".").split()), "hint": exc.hint, "exit_code": exc.exit_code}
    sys.stdout.write(json.dumps(doc) + "\n")
    sys.stdout.flush()


def console_width(stream: Any) -> int | None:
    """Width for a rich Console on ``stream``: its own on a terminal or with COLUMNS set, else
    wide enough that tables are not cut in CI logs and pipes (rich would use 80)."""
    if os.environ.get("COLUMNS") or (hasattr(stream, "isatty") and stream.isatty()):
        return None
    return 200
