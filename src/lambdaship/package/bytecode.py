"""Bytecode for the target Python: an interpreter of exactly that version, and compiling a tree with it
(PEP 552 unchecked-hash .pyc, ``/var/task/...`` as the recorded path, a fixed environment)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from pathlib import Path

from lambdaship import paths
from lambdaship.fsutil import tmp_sibling
from lambdaship.package import installer
from lambdaship.platform import usable_cores

NEGATIVE_TTL = 3600  # seconds before looking again for a missing interpreter
HOST_PYTHON = f"{sys.version_info[0]}.{sys.version_info[1]}"


def bytecode_enabled() -> bool:
    """``LAMBDASHIP_BYTECODE=0`` turns bytecode off (faster cold builds, slower cold starts)."""
    return os.environ.get("LAMBDASHIP_BYTECODE", "1").strip().lower() not in ("0", "false", "no", "off")


def _interpreter_version(exe: str) -> str | None:
    try:
        out = subprocess.run(
            [exe, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True, text=True, timeout=15,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


@cache
def find_interpreter(version: str) -> str | None:
    """An interpreter of exactly ``version`` (e.g. "3.12") on this machine, or None.

    Looks at ``LAMBDASHIP_PYTHON_<major>_<minor>``, the running interpreter, ``python3.X`` on
    PATH, pyenv's versions directory and ``uv python find`` (no downloads). The answer is
    remembered in ``<home>/interpreters.json`` (a found path is re-checked when it disappears; a miss after an hour).
    """
    env = os.environ.get(f"LAMBDASHIP_PYTHON_{version.replace('.', '_')}")
    if version == HOST_PYTHON and not env:
        return sys.executable
    memo_file = paths.home() / "interpreters.json"
    try:
        memo = json.loads(memo_file.read_text())
    except (OSError, ValueError):
        memo = {}
    hit = memo.get(version)
    if not env and isinstance(hit, dict):
        path = hit.get("path")
        if path and os.access(path, os.X_OK):
            return path
        if path is None and time.time() - float(hit.get("at", 0)) < NEGATIVE_TTL:
            return None
    found = _search_interpreter(version, env)
    if not env:
        memo[version] = {"path": found, "at": int(time.time())}
        with contextlib.suppress(OSError):
            memo_file.parent.mkdir(parents=True, exist_ok=True)
            tmp = tmp_sibling(memo_file)
            tmp.write_text(json.dumps(memo, sort_keys=True))
            os.replace(tmp, memo_file)
    return found


def _search_interpreter(version: str, env: str | None) -> str | None:
    def candidates() -> Iterator[str]:
        if env:
            yield env
            return
        which = shutil.which(f"python{version}")
        shim = which is not None and "/shims/" in which  # pyenv dispatcher: slow, may not be active
        if which and not shim:
            yield which
        pyenv_root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
        try:  # an unreadable PYENV_ROOT (another user's) is no pyenv
            found = sorted((pyenv_root / "versions").glob(f"{version}.*/bin/python{version}"), reverse=True)
        except OSError:
            found = []
        for p in found:
            yield str(p)
        if which and shim:
            yield which
        uv = installer.uv_binary()
        if uv:
            try:
                out = subprocess.run(
                    [uv, "python", "find", "--no-python-downloads", version],
                    capture_output=True, text=True, timeout=30,
                )
                if out.returncode == 0 and out.stdout.strip():
                    yield out.stdout.strip()
            except (OSError, subprocess.TimeoutExpired):
                pass

    for exe in candidates():
        if _interpreter_version(exe) == version:
            return exe
    return None


# Installer tooling that some packages declare as dependencies but functions do not import at
# run time: not worth compiling (60 % of the files of a Chalice app's dependencies). Test
# suites shipped inside packages (``pkg/**/tests/``, e.g. pandas/tests) are not compiled either.
NO_BYTECODE = ("pip", "setuptools", "wheel", "_distutils_hack")
COMPILE_SCRIPT = r"""
import json, py_compile, sys
for src, dfile in json.load(sys.stdin):
    try:
        py_compile.compile(src, dfile=dfile, doraise=True, optimize=0,
                           invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
    except Exception:
        pass  # a file Python cannot compile fails the same way at import; not our error to raise
"""


def compile_env() -> dict[str, str]:
    """The environment for a target interpreter that compiles: none of the user's PYTHON*
    settings (a pycache prefix, -O, …) and a fixed hash seed, so the bytes are always the same."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["PYTHONHASHSEED"] = "0"
    return env


def split_by_size(jobs: list[tuple[str, str]], n: int) -> list[list[tuple[str, str]]]:
    """``jobs`` dealt to ``n`` workers, biggest source first to the least loaded (compile time
    follows source size: pandas' frame.py alone is ~2 % of the seed app's bytes)."""
    def size(job: tuple[str, str]) -> int:
        try:
            return os.stat(job[0]).st_size
        except OSError:
            return 0

    bins: list[list[tuple[str, str]]] = [[] for _ in range(n)]
    loads = [0] * n
    for job, sz in sorted(((j, size(j)) for j in jobs), key=lambda js: -js[1]):
        k = loads.index(min(loads))
        bins[k].append(job)
        loads[k] += sz
    return [b for b in bins if b]


def compile_tree(tree: Path, interpreter: str, ddir: str = "/var/task") -> None:
    """Compile the .py files below ``tree`` with ``interpreter`` (unchecked-hash .pyc next to them).

    Skipped: top-level installer tooling (``NO_BYTECODE``) and ``tests``/``test`` directories
    inside packages. The files are split by size between one interpreter process per core, all
    running at once (each file is compiled on its own, so the result does not depend on the split).
    """
    jobs: list[tuple[str, str]] = []
    for dirpath, dirnames, filenames in os.walk(tree):
        rel = os.path.relpath(dirpath, tree)
        top = rel == "."
        dirnames[:] = sorted(
            d for d in dirnames
            if d != "__pycache__" and not (top and d in NO_BYTECODE) and not (not top and d in ("tests", "test"))
        )
        for f in sorted(filenames):
            if f.endswith(".py"):
                relf = f if top else f"{rel}/{f}"
                jobs.append((os.path.join(dirpath, f), f"{ddir}/{relf}"))
    if not jobs:
        return
    parts = split_by_size(jobs, max(1, min(usable_cores(), len(jobs) // 50 or 1)))

    def run(part: list[tuple[str, str]]) -> None:
        # Each worker's list goes in through its own thread: written one after another, the
        # second interpreter would wait on its stdin until the first had finished (serial).
        with contextlib.suppress(subprocess.TimeoutExpired):  # run() kills it on timeout
            subprocess.run([interpreter, "-c", COMPILE_SCRIPT], input=json.dumps(part), text=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=compile_env(), timeout=900)

    with ThreadPoolExecutor(max_workers=len(parts)) as pool:
        list(pool.map(run, parts))
