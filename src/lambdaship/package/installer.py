"""The installer: uv (pip as fallback), its version, its command line for the target, its errors,
and running it with its output as progress (:class:`Phases`)."""

from __future__ import annotations

import contextlib
import contextvars
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

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


_ITEM = ("error:", "ERROR:", "cause:", "Caused by:", "Because ", "And because ", "hint:", "help:", "warning:")
_TREE = "\u00d7\u2570\u2500\u25b6\u2502 "  # uv's tree drawing in a terminal


def unwrapped(stderr: str) -> str:
    """The installer's output with its wrapped lines joined: uv wraps a long cause at ``COLUMNS``
    and indents the rest, which would cut a name or a sentence in two."""
    out: list[str] = []
    for raw in stderr.splitlines():
        text = raw.lstrip(_TREE).strip()
        if out and text and raw[:1].isspace() and not text.startswith(_ITEM) and raw.lstrip(" ")[:1] not in _TREE:
            out[-1] += " " + text
        else:
            out.append(raw)
    return "\n".join(out)


def last_error_line(stderr: str) -> str:
    """The installer's error and its cause (uv: ``error:`` then ``cause:``/``Because …`` lines;
    pip: ``ERROR:``) on one line, credentials in URLs masked."""
    lines = [ln.strip() for ln in unwrapped(stderr).splitlines() if ln.strip()]
    picked: list[str] = []
    for ln in lines:
        ln = ln.lstrip(_TREE).strip()
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
    stderr = unwrapped(stderr)
    m = re.search(r"Because ([A-Za-z0-9._-]+) was not found in the package registry", stderr) or re.search(
        r"Because there is no version of ([A-Za-z0-9._-]+)", stderr)
    hint = (f"check the name and version of {m.group(1)!r} (on PyPI or your index) and fix the requirement"
            if m else "fix the requirements (run the installer yourself to see the full output)")
    return LambdashipError(f"installing the dependencies in {req_name} failed: {last_error_line(stderr)}", hint)


def install_cmd(fn: FunctionConfig, target: str, req: Path, dest: Path) -> tuple[list[str], dict[str, str]]:
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}  # uv would wrap its messages at it
    uv = uv_binary()
    if uv:
        # --link-mode hardlink: a file created costs ~1 ms of kernel time here, a link ~0.2 ms (the
        # seed app's 8,112 files: 5.1 s copied, 1.6 s linked, warm cache). A tree file and uv's
        # cached copy are then one inode: lambdaship never writes a tree file in place (prune
        # replaces the RECORDs it edits), a changed tree file fails the tree check and a changed
        # cache file the RECORD check, which re-downloads it (``records.check``).
        cmd = [uv, "pip", "install", "--no-progress", "--link-mode", "hardlink", "--target", str(dest),
               "-r", str(req)]
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


# ---- running it, its output as progress ----------------------------------------------------------
_UV_PHASE = re.compile(r"^(Resolved|Prepared|Installed|Audited) (\d+) packages? in ")
_UV_DOWNLOAD = re.compile(r"^Downloading (\S+) \(([\d.]+ ?[KMG]?i?B)\)")
_PIP_COLLECT = re.compile(r"^Collecting \S")
_PIP_DOWNLOAD = re.compile(r"^\s*Downloading \S+ \(([\d.]+) (bytes|kB|MB|GB)\)")
_PIP_SIZES = {"bytes": 1, "kB": 1000, "MB": 1000**2, "GB": 1000**3}


class Phases:
    """The installer's output, line by line, as the stages ``resolve`` → ``download`` →
    ``install`` (``report(stage=…, phase="start"|"end", count=…, seconds=…, …)``, the fields of
    ``image.events.BuildEvent``). uv says when each phase ends ("Resolved 3 packages in …",
    "Prepared …", "Installed …") and names the large downloads; pip resolves and downloads
    together ("Collecting …", "Downloading … (12.3 MB)"). :meth:`installed` ends ``install`` once
    the caller has trimmed the tree and knows its size. Thread-safe (stdout and stderr readers)."""

    def __init__(self, report: Callable[..., None] | None) -> None:
        self._report = report or (lambda **_kw: None)
        self._lock = threading.Lock()
        self.current: str | None = None
        self._t0 = 0.0
        self._count = self._collected = self._pip_bytes = 0
        self._downloads: list[str] = []

    def begin(self) -> None:
        with self._lock:
            self._begin("resolve")

    def _begin(self, name: str) -> None:
        self.current, self._t0 = name, time.monotonic()
        self._report(stage=name, phase="start")

    def _end(self, name: str, count: int, detail: str = "", size: int = 0) -> None:
        if self.current != name:  # a phase whose start the output did not show: it starts now
            self._begin(name)
        self._report(stage=name, phase="end", count=count, detail=detail, bytes=size,
                     seconds=time.monotonic() - self._t0)
        self.current = None

    def feed(self, line: str) -> None:
        with self._lock:
            self._feed(line.rstrip())

    def _feed(self, line: str) -> None:
        m = _UV_PHASE.match(line)
        if m:
            word, n = m.group(1), int(m.group(2))
            if word == "Resolved":
                self._end("resolve", n)
                self._begin("download")
            elif word == "Prepared":
                self._end("download", n, ", ".join(self._downloads))
                self._begin("install")
            else:
                if self.current == "download":  # nothing to prepare: every wheel was in the cache
                    self._end("download", 0, "all from the installer's cache")
                    self._begin("install")
                self._count = n
            return
        if m := _UV_DOWNLOAD.match(line):
            self._downloads.append(f"{m.group(1)} {m.group(2)}")
        elif _PIP_COLLECT.match(line):
            self._collected += 1
        elif m := _PIP_DOWNLOAD.match(line):
            self._pip_bytes += int(float(m.group(1)) * _PIP_SIZES[m.group(2)])
        elif line.startswith("Installing collected packages:") and self.current == "resolve":
            self._end("resolve", self._collected, "downloads included (pip)", self._pip_bytes)
            self._begin("install")
        elif line.startswith("Successfully installed "):
            self._count = len(line.split()) - 2

    def installed(self, size: int) -> None:
        """End ``install``: ``size`` bytes in the (trimmed) tree."""
        with self._lock:
            if self.current not in (None, "install"):  # output not recognised: close what is open
                self._end(self.current, 0, "installer output not recognised")
            self._end("install", self._count, size=size)


# A build's other half failing (its base image unreachable, say) ends the install at once: the
# check returns that error (raised here instead of after the install and the bytecode).
_abort: contextvars.ContextVar[Callable[[], BaseException | None] | None] = contextvars.ContextVar(
    "lambdaship_install_abort", default=None)


@contextlib.contextmanager
def abort_when(check: Callable[[], BaseException | None]) -> Iterator[None]:
    """Installs in this context stop (the installer killed) once ``check()`` returns an error."""
    token = _abort.set(check)
    try:
        yield
    finally:
        _abort.reset(token)


def check_abort() -> None:
    """Raise the error :func:`abort_when`'s check reports, if any (between the install's stages)."""
    check = _abort.get()
    failed = check() if check is not None else None
    if failed is not None:
        raise failed


def run(cmd: list[str], *, cwd: Path, env: dict[str, str], on_line: Callable[[str], None] | None = None,
        timeout: float = 1800) -> subprocess.CompletedProcess[str]:
    """Run the installer; each line of its stdout and stderr goes to ``on_line`` as it arrives
    (progress), stderr is also kept (its errors). Killed after ``timeout`` seconds."""
    proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, errors="replace")
    kept: dict[str, list[str]] = {"stdout": [], "stderr": []}

    def read(name: str, stream: Any) -> None:
        for line in stream:
            kept[name].append(line)
            if on_line is not None:
                on_line(line)

    readers = [threading.Thread(target=read, args=(n, s), daemon=True)
               for n, s in (("stdout", proc.stdout), ("stderr", proc.stderr))]
    for t in readers:
        t.start()
    deadline = time.monotonic() + timeout
    abort = _abort.get()
    while True:
        try:
            proc.wait(timeout=0.1 if abort is not None else timeout)
            break
        except subprocess.TimeoutExpired:
            failed = abort() if abort is not None else None
            if failed is None and time.monotonic() < deadline:
                continue
            proc.kill()
            proc.wait()
            if failed is not None:
                raise failed from None
            raise LambdashipError(f"the installer did not finish within {timeout:.0f} s",
                                  "check the network and the package index; try again") from None
    for t in readers:
        t.join()
    return subprocess.CompletedProcess(cmd, proc.returncode, "".join(kept["stdout"]), "".join(kept["stderr"]))
