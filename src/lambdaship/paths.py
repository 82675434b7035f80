"""Where lambdaship keeps caches and state. Library code asks here, never the local-stack launcher."""

from __future__ import annotations

import os
from pathlib import Path


def home() -> Path:
    """lambdaship's cache/state directory (``LAMBDASHIP_HOME``, else $XDG_CACHE_HOME or ~/.cache)."""
    env = os.environ.get("LAMBDASHIP_HOME")
    if env:
        return Path(env)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "lambdaship"


def cache(kind: str) -> Path:
    """A named cache under :func:`home` (``blobs``, ``deps``, ``layers``, ``pyc``, ``rootfs``, ``zip`` …)."""
    return home() / kind


def local_state_dir() -> Path:
    """Default state directory of the embedded local stack."""
    return home() / "local"


def base_cache_dir() -> Path:
    """The offline base image build cache; kept outside :func:`home` so test homes reuse it."""
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "lambdaship-base"
