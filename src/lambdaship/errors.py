"""One exception type for every problem a user can fix.

The CLI prints ``error: <message>`` (and the fix, when known) on one line and exits non-zero;
no traceback reaches the user for these.
"""

from __future__ import annotations

import contextlib


class LambdashipError(Exception):
    """A problem the user can act on. ``hint`` says how to fix it."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def one_line(self) -> str:
        text = self.message.rstrip(".")
        if self.hint:
            text += f"; {self.hint}"
        return " ".join(text.split())


class ConfigError(LambdashipError):
    """Configuration is missing or invalid."""

    exit_code = 2


class UsageError(LambdashipError):
    """Command-line arguments are wrong."""

    exit_code = 2


def describe(exc: BaseException) -> LambdashipError | None:
    """The user-facing error for a known exception (ours, botocore's, httpx's, the OS's); None
    for anything else (a bug: let it show its traceback)."""
    if isinstance(exc, LambdashipError):
        return exc
    if isinstance(exc, KeyboardInterrupt):
        return LambdashipError("interrupted")
    from lambdaship.aws.errors import translate_aws

    aws = translate_aws(exc)
    if aws is not None:
        return LambdashipError(*aws)
    import sys

    httpx = sys.modules.get("httpx")  # an httpx error can only come from a loaded httpx
    if httpx is not None and isinstance(exc, httpx.HTTPError):
        where = ""
        with contextlib.suppress(RuntimeError):  # no request attached
            where = f" {exc.request.url.copy_with(query=None, fragment=None)}"  # never the query string
        hint = "check the address and your network" if isinstance(exc, httpx.TransportError) else None
        return LambdashipError(f"HTTP request{where} failed: {type(exc).__name__}: {_text(exc)}", hint)
    if isinstance(exc, OSError):
        name = f" {exc.filename}" if exc.filename else ""
        return LambdashipError(f"{exc.strerror or type(exc).__name__}:{name}".rstrip(":"),
                               "check the path and its permissions" if exc.filename else None)
    return None


def translate(exc: BaseException) -> LambdashipError:
    """Like :func:`describe`, for any exception: unknown ones become ``Type: message``."""
    known = describe(exc)
    if known is not None:
        return known
    return LambdashipError(f"{type(exc).__name__}: {_text(exc)}")


def _text(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or "no message"
