"""Where lambdaship keeps caches and state. Library code asks here, never the local-stack launcher."""

from __future__ import annotations

import os
from pathlib import Path


def _user_cache(name: str, override: str) -> Path:
    """``$<override>``, else ``$XDG_CACHE_HOME/<name>`` or ``~/.cache/<name>``."""
    env = os.environ.get(override)
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / name


def home() -> Path:
    """lambdaship's cache/state directory (``LAMBDASHIP_HOME``, else $XDG_CACHE_HOME or ~/.cache)."""
    return _user_cache("lambdaship", "LAMBDASHIP_HOME")


def cache(kind: str) -> Path:
    """A named cache under :func:`home` (``blobs``, ``deps``, ``layers``, ``pyc``, ``rootfs``, ``zip`` …)."""
    return home() / kind


def local_state_dir() -> Path:
    """Default state directory of the embedded local stack."""
    return home() / "local"


def base_cache_dir() -> Path:
    """The offline base image build cache (``LAMBDASHIP_BASE_CACHE``); kept outside :func:`home` so
    test homes reuse it."""
    return _user_cache("lambdaship-base", "LAMBDASHIP_BASE_CACHE")
