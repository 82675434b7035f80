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


_CREDENTIALS_IN_URL = re.compile(r"(?<=://)[^/@\s]+@")


def last_error_line(stderr: str) -> str:
    """The installer's error and its cause (uv: ``error:`` then ``cause:``/``Because …`` lines;
    pip: ``ERROR:``) on one line, credentials in URLs masked."""
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    picked: list[str] = []
    for ln in lines:
        ln = ln.lstrip("\u00d7\u2570\u2500\u25b6\u2502 ").strip()  # uv's tree drawing in a terminal
        if ln.startswith(("error:", "ERROR:")) and not picked:
            picked.append(ln.split(":", 1)[1].strip().rstrip(":"))
        elif picked and ln.startswith(("cause:", "Caused by:")):
            picked.append(ln.split(":", 1)[1].strip())
        elif picked and ln.startswith(("Because ", "And because ", "we can conclude")):
            picked.append(ln)
        elif picked and ln.startswith(("hint:", "help:")):
            break
    text = ": ".join(picked) if picked else (lines[-1] if lines else "no output")
    return _CREDENTIALS_IN_URL.sub("****@", text)[:600]


def install_error(stderr: str, fn: FunctionConfig, req_name: str) -> LambdashipError:
    """One error for a failed install: the missing wheel, else the installer's error and cause."""
    sdist = sdist_error(stderr, fn)
    if sdist is not None:
        return sdist
    m = re.search(r"Because ([A-Za-z0-9._-]+) was not found in the package registry", stderr) or re.search(
        r"Because there is no version of ([A-Za-z0-9._-]+)", stderr)
    hint = (f"check the name and version of {m.group(1)!r} (on PyPI or your index) and fix the requirement"
            if m else "fix the requirements (run the installer yourself to see the full output)")
    return LambdashipError(f"installing the dependencies in {req_name} failed: {last_error_line(stderr)}", hint)


def install_cmd(fn: FunctionConfig, target: str, req: Path, dest: Path) -> tuple[list[str], dict[str, str]]:
    env = dict(os.environ)
    uv = uv_binary()
    if uv:
        # --link-mode copy: files of their own, not hard links into uv's cache (a change to one
        # would change the other: a doctored tree would poison every later install, and back).
        cmd = [uv, "pip", "install", "--no-progress", "--link-mode", "copy", "--target", str(dest), "-r", str(req)]
        if target == "lambda":
            cmd += ["--only-binary", ":all:", "--python-platform", fn.platform.uv_platform,
                    "--python-version", fn.python]
        else:  # wheels only here too: building an sdist runs its code on this machine
            cmd += ["--only-binary", ":all:", "--python", sys.executable]
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
    else:
        cmd += ["--only-binary=:all:"]
    return cmd, env
