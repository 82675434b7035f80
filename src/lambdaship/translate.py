"""The one translator from exceptions (ours, botocore's, httpx's, the OS's) to a user-facing
:class:`~lambdaship.errors.LambdashipError` (``error: <message>; <fix>``)."""

from __future__ import annotations

import contextlib

from lambdaship.aws.errors import translate_aws
from lambdaship.errors import LambdashipError


def describe(exc: BaseException) -> LambdashipError | None:
    """The user-facing error for a known exception (ours, botocore's, httpx's, the OS's); None
    for anything else (a bug: let it show its traceback)."""
    if isinstance(exc, LambdashipError):
        return exc
    if isinstance(exc, KeyboardInterrupt):
        return LambdashipError("interrupted")
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
