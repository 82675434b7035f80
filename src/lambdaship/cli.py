"""The ``lambdaship`` command line.

Commands live one concept per module in ``lambdaship.commands``; each module has a
``register(app)`` function and is discovered here, so adding a command touches no shared file.
This module only turns errors into one line on stderr and an exit code.
"""

from __future__ import annotations

import atexit
import importlib
import logging
import os
import pkgutil
import sys
import threading

# httpx's own command line (click, rich.syntax and pygments: 50 ms of every start) is never used
# here; without its module httpx defines a stub ``main`` instead (its __init__ allows for that).
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
# httpcore imports trio when it is installed (40 ms) for async clients; this process has none.
sys.modules.setdefault("trio", None)  # type: ignore[arg-type]
# pydantic looks for plugins in every installed distribution's entry points before it builds the
# first model (the config's): 35 ms of every start in a full environment; the CLI uses none.
os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__")

import typer  # noqa: E402

import lambdaship  # noqa: E402
from lambdaship import commands as _commands  # noqa: E402
from lambdaship.commands import _examples, _help  # noqa: E402
from lambdaship.errors import LambdashipError  # noqa: E402
from lambdaship.translate import describe  # noqa: E402

app = typer.Typer(
    name="lambdaship",
    help="Ship Python AWS Lambda functions as container images, without a Docker daemon.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=True,
    rich_markup_mode="rich",
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"lambdaship {lambdaship.__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
    profile: str | None = typer.Option(
        None, "--profile", metavar="NAME", show_default=False,
        help="AWS profile (default: AWS_PROFILE, else the default profile).",
    ),
    region: str | None = typer.Option(
        None, "--region", metavar="REGION", show_default=False,
        help="AWS region (default: AWS_REGION, AWS_DEFAULT_REGION, then the profile's region).",
    ),
    verbose: bool = typer.Option(
        False, "--verbose", "-v", help="Log AWS calls with timings, retries and registry retries to stderr."
    ),
    debug: bool = typer.Option(False, "--debug", help="Like --verbose, and print tracebacks on errors."),
) -> None:
    """Ship Python AWS Lambda functions as container images, without a Docker daemon."""
    from lambdaship.aws import session

    session.configure(profile=profile, region=region, verbose=verbose or debug, debug=debug)


def _register_commands() -> None:
    for info in sorted(pkgutil.iter_modules(_commands.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{_commands.__name__}.{info.name}")
        register = getattr(module, "register", None)  # shared helpers (option groups) register nothing
        if register is not None:
            register(app)


_register_commands()
_examples.attach(app)  # one example per help screen
_help.plain_flags_and_width()  # no <bool> placeholder on flags; help not cut outside a terminal


class _LibraryNotes(logging.Handler):
    """The library's ``note:``/``warning:`` lines (logger "lambdaship"): their text on stderr, as
    printed before they were logged. Under -v the verbose handler prints them (with timings)."""

    def emit(self, record: logging.LogRecord) -> None:
        verbose = any(getattr(h, "_lambdaship", False) for h in logging.getLogger("lambdaship").handlers)
        if not verbose and (record.name == "lambdaship" or record.levelno >= logging.WARNING):
            sys.stderr.write(record.getMessage() + "\n")
            sys.stderr.flush()


if not any(isinstance(h, _LibraryNotes) for h in logging.getLogger("lambdaship").handlers):
    logging.getLogger("lambdaship").addHandler(_LibraryNotes())
    logging.getLogger("lambdaship").setLevel(logging.INFO)


def _traceback_if_debug() -> None:
    from lambdaship.aws.session import settings

    if settings.debug:
        import traceback

        traceback.print_exc()


def _fail(exc: LambdashipError, argv: list[str] | None) -> None:
    from lambdaship.commands._progress import stop_all

    stop_all()  # a build's live display ends before the error line
    _help.json_error(exc, argv)  # under --json also {"error", "hint", "exit_code"} on stdout
    typer.echo(f"error: {exc.one_line()}", err=True)
    sys.exit(exc.exit_code)


def main(argv: list[str] | None = None) -> None:
    ce = _help.click_exceptions()
    no_args_help = getattr(ce, "NoArgsIsHelpError", ())
    try:
        # Not standalone: click's usage errors reach us and get the one-line form (no rich box).
        code = app(args=argv, prog_name="lambdaship", standalone_mode=False)
    except no_args_help as exc:  # the help screen is already printed
        sys.exit(exc.exit_code)
    except ce.ClickException as exc:
        _fail(_help.usage_error(exc, argv, typer.main.get_command(app)), argv)
    except typer.Abort:  # a prompt answered with Ctrl-C / Ctrl-D
        typer.echo("error: aborted", err=True)
        sys.exit(1)
    except LambdashipError as exc:
        _traceback_if_debug()
        _fail(exc, argv)
    except KeyboardInterrupt:
        typer.echo("error: interrupted", err=True)
        sys.exit(130)
    except Exception as exc:
        translated = describe(exc)  # botocore, httpx, OS errors: one line
        if translated is None:
            raise
        _traceback_if_debug()
        _fail(translated, argv)
    else:
        # typer.Exit(n) / ctx.exit(n) come back as n when not standalone; commands return None.
        if isinstance(code, int) and not isinstance(code, bool) and code:
            sys.exit(code)


def entry() -> None:
    """The ``lambdaship`` command: :func:`main`, then the exit a normal interpreter shutdown makes
    (other threads waited for, ``atexit`` handlers run, output flushed) without the teardown of
    every module and object, which costs a fresh runner's code-only push 0.3-0.4 s of CPU after
    its last line (measured with strace: no system calls in that time)."""
    try:
        main()
        code: int = 0
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            code = exc.code or 0
        else:  # sys.exit("message"): printed, status 1, as the interpreter does
            sys.stderr.write(f"{exc.code}\n")
            code = 1
    shutdown = getattr(threading, "_shutdown", None)
    if sys.gettrace() is not None or sys.getprofile() is not None or shutdown is None:
        sys.exit(code)  # under a tracer or profiler (coverage, pyinstrument): let it write its results
    # The interpreter's own first steps of shutting down: thread-pool executors told to stop (their
    # workers wait for that, not joined blindly: `serve` hung on SIGTERM so), other threads joined.
    shutdown()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: nothing more to say
            code = code or 1
    os._exit(code)


if __name__ == "__main__":  # pragma: no cover
    entry()
