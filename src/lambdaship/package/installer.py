"""The installer: uv (pip as fallback), its version, its command line for the target, its errors."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from lambdaship.errors import LambdashipError

if TYPE_CHECKING:
    from lambdaship.config import FunctionConfig

@cache
def uv_binary() -> str | None:
    try:
        from uv import find_uv_bin

        return find_uv_bin()
    except (ImportError, FileNotFoundError):
        return shutil.which("uv")


@cache
def _tool_version(cmd: tuple[str, ...]) -> str:
    try:
        out = subprocess.run(list(cmd), capture_output=True, text=True, timeout=30)
        return out.stdout.strip() or out.stderr.strip()
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"


@cache
def _uv_version(uv: str) -> str:
    """uv's version number ("0.13.9"). From the uv package's metadata when ``uv`` is that
    package's binary — no process start, which was a tenth of a fresh runner's code-only push —
    else from ``uv --version``; the same string either way, so the deps hash is machine-independent."""
    try:
        from importlib.metadata import version

        from uv import find_uv_bin

        if os.path.realpath(find_uv_bin()) == os.path.realpath(uv):
            return version("uv")
    except (ImportError, FileNotFoundError, ValueError):
        pass
    out = _tool_version((uv, "--version"))
    m = re.search(r"\d+(?:\.\d+)+", out)
    return m.group(0) if m else out


def installer() -> tuple[str, str]:
    """(name, version string) of the installer that will be used."""
    uv = uv_binary()
    if uv:
        return "uv", _uv_version(uv)
    return "pip", _tool_version((sys.executable, "-m", "pip", "--version")).split(" from ")[0]


def sdist_error(stderr: str, fn: FunctionConfig) -> LambdashipError | None:
    m = re.search(r"Wheels are required for `([^`]+)`", stderr) or re.search(
        r"Because (?:only )?([A-Za-z0-9._-]+)(?:[=<>!~][^\s]*)? has no (?:usable )?wheels", stderr
    ) or re.search(r"(?:No matching distribution found for|Could not find a version that satisfies the "
                   r"requirement) ([A-Za-z0-9._-]+)", stderr)
    if not m:
        return None
    pkg = m.group(1)
    tag = fn.platform.uv_platform
    return LambdashipError(
        f"dependency {pkg!r} has no wheel for Python {fn.python} on {tag} (only a source "
        "distribution, or none at all)",
        f"pin a version of {pkg} that ships {tag} wheels, use a binary variant (e.g. '{pkg}-binary' if it "
        "exists), or vendor a built wheel: put it in a directory and add '--find-links <dir>' to the "
        "requirements file",
    )


def last_error_line(stderr: str) -> str:
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    for ln in lines:
        if ln.startswith(("cause:", "error:", "ERROR:")):
            return ln.split(":", 1)[1].strip()[:300]
    return (lines[-1] if lines else "no output")[:300]


def install_cmd(fn: FunctionConfig, target: str, req: Path, dest: Path) -> tuple[list[str], dict[str, str]]:
    env = dict(os.environ)
    uv = uv_binary()
    if uv:
        cmd = [uv, "pip", "install", "--no-progress", "--target", str(dest), "-r", str(req)]
        if target == "lambda":
            cmd += ["--only-binary", ":all:", "--python-platform", fn.platform.uv_platform,
                    "--python-version", fn.python]
        else:
            cmd += ["--python", sys.executable]
        return cmd, env
    # pip: PyPI (or the user's PIP_INDEX_URL) only, never the machine's extra find-links.
    env["PIP_CONFIG_FILE"] = os.devnull
    env.pop("PIP_FIND_LINKS", None)
    cmd = [sys.executable, "-m", "pip", "install", "--no-compile", "--disable-pip-version-check",
           "--target", str(dest), "-r", str(req)]
    if target == "lambda":
        cmd += ["--only-binary=:all:", "--python-version", fn.python, "--implementation", "cp"]
        for plat in fn.platform.wheel_platforms:
            cmd += ["--platform", plat]
    return cmd, env
