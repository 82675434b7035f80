"""One exception type for every problem a user can fix.

The CLI prints ``error: <message>`` (and the fix, when known) on one line and exits non-zero;
no traceback reaches the user for these. :mod:`lambdaship.translate` turns other libraries'
exceptions (botocore, httpx, the OS) into these.
"""

from __future__ import annotations


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
