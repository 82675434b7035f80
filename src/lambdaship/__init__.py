"""lambdaship: ship Python AWS Lambda functions as container images without a Docker daemon."""

from __future__ import annotations

import functools


@functools.cache
def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("lambdaship")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0.0.0"


def __getattr__(name: str) -> str:
    """``__version__`` is read from the installed metadata when first asked for: importing
    ``importlib.metadata`` (and the email parser it brings) costs every command start 10 ms."""
    if name == "__version__":
        return _version()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
