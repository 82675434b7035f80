"""lambdaship: ship Python AWS Lambda functions as container images without a Docker daemon."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("lambdaship")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"
