"""How the command line looks outside the commands: flag placeholders, help width when not on a
terminal, click's usage errors as our one line, and ``--json`` errors. Called from ``cli.py``."""

from __future__ import annotations

import difflib
import json
import os
import sys
from typing import Any

PIPE_WIDTH = 120  # help and tables when stdout is not a terminal (CI logs, pipes): no mid-sentence wraps


def plain_flags_and_width() -> None:
    """typer 0.29 prints ``<bool>`` after every flag in rich help; a flag takes no value, so show
    none. Outside a terminal rich would wrap at 80 columns; use PIPE_WIDTH unless the user set
    COLUMNS or TERMINAL_WIDTH. typer's rich help module (rich's markdown, 45 ms of every start)
    is imported only when a help screen is formatted."""
    from typer import core

    original = core.TyperOption.display_type_rich
    if getattr(original, "_lambdaship", False):
        return

    def display_type_rich(self: Any, ctx: Any) -> str | None:
        if self.is_flag and self.metavar is None:
            return None
        return original(self, ctx)

    display_type_rich._lambdaship = True  # type: ignore[attr-defined]
    core.TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign]
    for cls in (core.TyperCommand, core.TyperGroup):
        cls.format_help = _pipe_width_first(cls.format_help)  # type: ignore[method-assign]


def _pipe_width_first(format_help: Any) -> Any:
    def wrapped(self: Any, ctx: Any, formatter: Any) -> Any:
        from typer import rich_utils

        if rich_utils.MAX_WIDTH is None and not os.environ.get("COLUMNS") and not sys.stdout.isatty():
            rich_utils.MAX_WIDTH = PIPE_WIDTH
        return format_help(self, ctx, formatter)

    return wrapped


def click_exceptions() -> Any:
    """click's exception classes: typer 0.29 vendors click (``typer._click``), older typers use
    click itself; ``typer.BadParameter`` lives in whichever it is."""
    import typer

    return sys.modules[typer.BadParameter.__module__]


def _command_path(argv: list[str] | None, root: Any) -> str:
    """``lambdaship <command> [<sub>]`` named by ``argv`` (for errors click raises without a context)."""
    path, cmd = ["lambdaship"], root
    for token in sys.argv[1:] if argv is None else argv:
        sub = getattr(cmd, "commands", {}).get(token) if not token.startswith("-") else None
        if sub is not None:
            path.append(token)
            cmd = sub
    return " ".join(path)


def usage_error(exc: Any, argv: list[str] | None = None, root: Any = None) -> Any:
    """A click error (bad flag value, unknown option or command, extra argument) as a
    ``LambdashipError`` with its hint, so it is printed like every other error: one line on
    stderr (and JSON under ``--json``), exit 2 for usage errors, click's own code otherwise."""
    from lambdaship.errors import LambdashipError, UsageError

    ce = click_exceptions()
    ctx = getattr(exc, "ctx", None)
    where = ctx.command_path if ctx is not None else _command_path(argv, root)
    see = f"see '{where} --help'"
    if not isinstance(exc, ce.UsageError):  # e.g. FileError: not a usage error, keep click's exit code
        error = LambdashipError(_flat(exc.format_message()))
        error.exit_code = exc.exit_code
        return error
    if isinstance(exc, ce.NoSuchOption):
        names = {p.lstrip("-"): p for p in exc.possibilities or []}
        close = [names[n] for n in difflib.get_close_matches(exc.option_name.lstrip("-"), sorted(names), n=3,
                                                             cutoff=0.6)]
        return UsageError(f"no such option {exc.option_name}", _did_you_mean(close, see))
    if isinstance(exc, ce.BadParameter) and not isinstance(exc, ce.MissingParameter):
        name = exc.param_hint or (exc.param.opts[-1] if exc.param is not None and exc.param.opts else None)
        if isinstance(name, list | tuple):
            name = " / ".join(name)
        shown = str(name).strip("'\"") if name else "a value"
        text = _flat(exc.message)
        return UsageError(f"invalid value for {shown}: {text[:1].lower()}{text[1:]}", see)
    message, _, suggested = _flat(exc.format_message()).partition(". Did you mean ")
    close = [suggested.strip("'?")] if suggested else []
    if not close and message.startswith("No such command") and ctx is not None and message.count("'") >= 2:
        close = difflib.get_close_matches(message.split("'")[1], ctx.command.list_commands(ctx), n=3, cutoff=0.6)
    return UsageError(f"{message[:1].lower()}{message[1:]}", _did_you_mean(close, see))


def _did_you_mean(close: list[str], see: str) -> str:
    return f"did you mean {' or '.join(close)}? ({see})" if close else see


def _flat(text: str) -> str:
    return " ".join(str(text).split()).rstrip(".")


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
