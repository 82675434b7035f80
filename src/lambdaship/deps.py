"""Dependencies installed for the Lambda target (not the host), cached by their inputs.

- Installer: uv (``uv pip install --only-binary :all: --python-platform … --python-version …
  --target DIR``), pip as fallback (``--platform … --only-binary=:all: --no-compile``).
  Platform by runtime: python3.12+ runs on Amazon Linux 2023 → ``manylinux_2_28``; 3.11 and
  older on Amazon Linux 2 → ``manylinux2014``; arm64 uses aarch64 wheels.
- Requirements: the function's ``requirements`` file (relative to ``source``), else
  ``requirements.txt`` in ``source`` when present, else no dependencies.
- Cache: ``<home>/deps/<hash>``, hash of (requirements text incl. ``-r``/``-c`` files, python
  version, platform, installer and version, pruning). An unchanged set is never installed
  twice. Unpinned requirements are resolved once per cache entry — pin them.
- Bytecode: compiled for the *target* Python only when an interpreter of exactly that version
  is found (never host-version .pyc for another target), in PEP 552 unchecked-hash mode with
  ``/var/task/...`` as the recorded path, so it stays valid whatever the file times are and
  identical across machines (``LAMBDASHIP_BYTECODE=0`` turns it off). Installer tooling (pip, setuptools, wheel) and
  packages' bundled test suites are not compiled.
- Test suites: ``tests``/``test`` sub-packages inside a package (``pandas/tests``,
  ``numpy/_core/tests``; never a top-level package) are left out of Lambda trees — a fifth of
  a numpy + pandas install — unless a non-test module of the package imports them
  (``from .tests``, ``import pkg.tests``…), which keeps them. ``LAMBDASHIP_KEEP_TESTS=1`` keeps all.
- Cleanup: ``bin/`` (console scripts with host shebangs) and installer lock files are removed
  and the RECORD files adjusted, so the tree does not depend on the host.
- AWS base images ship boto3, botocore, s3transfer, jmespath, python-dateutil, urllib3 and six.
  When the base image is an AWS public Lambda Python base (``public.ecr.aws/lambda/python``)
  and such a package came in only as a transitive dependency (it is not named in the
  requirements), it is left out of the image; naming it in the requirements keeps it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Literal

from lambdaship.config import FunctionConfig
from lambdaship.errors import LambdashipError
from lambdaship.fsutil import tmp_sibling
from lambdaship.local.stack import home

MARKER = "info.json"  # next to the tree/ directory of a cache entry
CACHE_VERSION = "3"
AWS_BASE_PACKAGES = ("boto3", "botocore", "s3transfer", "jmespath", "python-dateutil", "urllib3", "six")
AWS_BASE_PREFIX = "public.ecr.aws/lambda/python"
NEGATIVE_TTL = 3600  # seconds before looking again for a missing interpreter
HOST_PYTHON = f"{sys.version_info[0]}.{sys.version_info[1]}"


@dataclass(frozen=True)
class DepsResult:
    path: Path  # cached directory holding the installed packages (may be empty)
    hash: str  # hex digest of the inputs
    requirements: list[str]  # installed distributions, "name==version", sorted
    cached: bool = False  # True when the cache already held this set
    pruned: tuple[str, ...] = ()  # packages left out because the base image ships them
    bytecode: bool = False  # .pyc compiled for the target version
    timings: dict[str, float] = field(default_factory=dict, compare=False)  # install, bytecode (seconds)
    content_bytes: int = -1  # bytes of file content in the tree (-1: unknown)
    entries: int = -1  # files, directories and symlinks in the tree (-1: unknown)


def canonical_name(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def platform_tag(python: str, architecture: str) -> str:
    """uv's --python-platform for a Lambda runtime."""
    arch = "aarch64" if architecture == "arm64" else "x86_64"
    minor = int(python.split(".")[1])
    return f"{arch}-manylinux_2_28" if minor >= 12 else f"{arch}-manylinux2014"


def pip_platforms(python: str, architecture: str) -> list[str]:
    arch = "aarch64" if architecture == "arm64" else "x86_64"
    top = 28 if int(python.split(".")[1]) >= 12 else 17
    tags = [f"manylinux_2_{m}_{arch}" for m in range(top, 16, -1)] + [f"manylinux2014_{arch}"]
    if arch == "x86_64":
        tags += [f"manylinux2010_{arch}", f"manylinux1_{arch}"]
    return tags


def requirements_file(fn: FunctionConfig) -> Path | None:
    if fn.requirements:
        path = (fn.source / fn.requirements).resolve()
        if path.exists() and not path.is_file():
            raise LambdashipError(
                f"requirements file {path} is not a regular file",
                "point 'requirements' at a requirements.txt (relative to the function's source directory)",
            )
        if not path.is_file():
            raise LambdashipError(
                f"requirements file {path} not found",
                "fix 'requirements' (a path relative to the function's source directory)",
            )
        return path
    default = fn.source / "requirements.txt"
    return default if default.is_file() else None


_INCLUDE_RE = re.compile(r"^\s*(?:-r|-c|--requirement|--constraint)[\s=]+(\S+)")


def _requirements_text(path: Path, seen: set[Path] | None = None) -> str:
    """The file's text followed by the text of every -r/-c file it names (recursively)."""
    seen = seen or set()
    path = path.resolve()
    if path in seen:
        return ""
    seen.add(path)
    text = path.read_text(encoding="utf-8")
    parts = [f"# {path.name}\n{text}"]
    for line in text.splitlines():
        m = _INCLUDE_RE.match(line)
        if m:
            inc = (path.parent / m.group(1)).resolve()
            if inc.is_file():
                parts.append(_requirements_text(inc, seen))
    return "\n".join(parts)


def named_requirements(text: str) -> set[str]:
    names = set()
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        m = re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)", line)
        if m:
            names.add(canonical_name(m.group(1)))
    return names


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


def _interpreter_version(exe: str) -> str | None:
    try:
        out = subprocess.run(
            [exe, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True, text=True, timeout=15,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def bytecode_enabled() -> bool:
    """``LAMBDASHIP_BYTECODE=0`` turns bytecode off (faster cold builds, slower cold starts)."""
    return os.environ.get("LAMBDASHIP_BYTECODE", "1").strip().lower() not in ("0", "false", "no", "off")


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
    memo_file = home() / "interpreters.json"
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
        for p in sorted((pyenv_root / "versions").glob(f"{version}.*/bin/python{version}"), reverse=True):
            yield str(p)
        if which and shim:
            yield which
        uv = uv_binary()
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


def _base_is_aws(fn: FunctionConfig) -> bool:
    ref = fn.image_base
    return ref.startswith(AWS_BASE_PREFIX + ":") or ref.startswith(AWS_BASE_PREFIX + "@")


def _cache_key(fn: FunctionConfig, target: str, req_text: str, prune: tuple[str, ...], pyc: str | None) -> str:
    name, version = installer()
    payload = {
        "v": CACHE_VERSION,
        "requirements": req_text,
        "python": fn.python if target == "lambda" else HOST_PYTHON,
        "platform": platform_tag(fn.python, fn.architecture) if target == "lambda" else f"host:{sys.executable}",
        "installer": f"{name} {version}",
        "prune": list(prune),
        "bytecode": pyc is not None,
    }
    if target == "lambda" and prune_tests_enabled():
        payload["prune_tests"] = True
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def _sdist_error(stderr: str, fn: FunctionConfig) -> LambdashipError | None:
    m = re.search(r"Wheels are required for `([^`]+)`", stderr) or re.search(
        r"Because (?:only )?([A-Za-z0-9._-]+)(?:[=<>!~][^\s]*)? has no (?:usable )?wheels", stderr
    ) or re.search(r"(?:No matching distribution found for|Could not find a version that satisfies the "
                   r"requirement) ([A-Za-z0-9._-]+)", stderr)
    if not m:
        return None
    pkg = m.group(1)
    tag = platform_tag(fn.python, fn.architecture)
    return LambdashipError(
        f"dependency {pkg!r} has no wheel for Python {fn.python} on {tag} (only a source "
        "distribution, or none at all)",
        f"pin a version of {pkg} that ships {tag} wheels, use a binary variant (e.g. '{pkg}-binary' if it "
        "exists), or vendor a built wheel: put it in a directory and add '--find-links <dir>' to the "
        "requirements file",
    )


def _last_error_line(stderr: str) -> str:
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    for ln in lines:
        if ln.startswith(("cause:", "error:", "ERROR:")):
            return ln.split(":", 1)[1].strip()[:300]
    return (lines[-1] if lines else "no output")[:300]


def _install_cmd(fn: FunctionConfig, target: str, req: Path, dest: Path) -> tuple[list[str], dict[str, str]]:
    env = dict(os.environ)
    uv = uv_binary()
    if uv:
        cmd = [uv, "pip", "install", "--no-progress", "--target", str(dest), "-r", str(req)]
        if target == "lambda":
            cmd += ["--only-binary", ":all:", "--python-platform", platform_tag(fn.python, fn.architecture),
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
        for plat in pip_platforms(fn.python, fn.architecture):
            cmd += ["--platform", plat]
    return cmd, env


def _record_name(dist_info: Path) -> str:
    meta = dist_info / "METADATA"
    name = version = ""
    if meta.is_file():
        for line in meta.read_text(encoding="utf-8", errors="replace").splitlines():
            if line.startswith("Name:"):
                name = line.split(":", 1)[1].strip()
            elif line.startswith("Version:"):
                version = line.split(":", 1)[1].strip()
            elif not line.strip():
                break
    if not name:
        name, _, version = dist_info.name.removesuffix(".dist-info").partition("-")
    return f"{canonical_name(name)}=={version}"


def _installed(tree: Path) -> dict[str, Path]:
    return {_record_name(d): d for d in sorted(tree.glob("*.dist-info"))}


def _remove_dist(tree: Path, dist_info: Path) -> None:
    record = dist_info / "RECORD"
    if record.is_file():
        for line in record.read_text(encoding="utf-8", errors="replace").splitlines():
            rel = line.rsplit(",", 2)[0] if line.count(",") >= 2 else line.split(",")[0]
            if not rel:
                continue
            p = (tree / rel).resolve()
            if p.is_relative_to(tree.resolve()) and (p.is_file() or p.is_symlink()):
                p.unlink()
    shutil.rmtree(dist_info, ignore_errors=True)
    # Remove directories the distribution left empty.
    for dirpath, _dirs, _files in sorted(os.walk(tree, topdown=False), key=lambda t: -len(t[0])):
        d = Path(dirpath)
        if d != tree and not any(d.iterdir()):
            d.rmdir()


def _clean(tree: Path) -> None:
    """Remove what depends on the host: console scripts, installer locks; fix RECORDs."""
    for name in (".lock", "bin"):
        p = tree / name
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        elif p.exists() or p.is_symlink():
            p.unlink()
    for record in tree.glob("*.dist-info/RECORD"):
        lines = record.read_text(encoding="utf-8").splitlines(keepends=True)
        kept = [ln for ln in lines if not ln.startswith(("bin/", "../../bin/", "../bin/"))]
        if len(kept) != len(lines):
            record.write_text("".join(kept), encoding="utf-8")
    for pyc_dir in tree.rglob("__pycache__"):
        shutil.rmtree(pyc_dir, ignore_errors=True)


TEST_DIRS = ("tests", "test")


def prune_tests_enabled() -> bool:
    return os.environ.get("LAMBDASHIP_KEEP_TESTS", "").lower() not in ("1", "true", "yes")


_TEST_IMPORT_LINE = re.compile(r"^[^\n#]*\b(?:import|from)\b[^\n]*\btests?\b[^\n]*$", re.M)


def _imports_of(package: Path) -> str:
    """The import lines that name a ``test``/``tests`` module, from every non-test module of a
    top-level package (one regex pass per file: the per-suite patterns then scan a few lines, not
    the 50 MB of numpy + pandas sources — 0.4 s of a cold build before)."""
    parts = []
    for dirpath, dirnames, filenames in os.walk(package):
        dirnames[:] = [d for d in dirnames if d not in TEST_DIRS]
        for f in filenames:
            if f.endswith(".py"):
                with contextlib.suppress(OSError):
                    text = Path(dirpath, f).read_text(encoding="utf-8", errors="replace")
                    if "test" in text:
                        parts.extend(_TEST_IMPORT_LINE.findall(text))
    return "\n".join(parts)


def _prune_tests(tree: Path) -> list[str]:
    """Remove packages' bundled test suites (``<pkg>/**/tests/`` with an ``__init__.py`` parent);
    keep one when a non-test module of the package mentions importing it. Returns what was removed
    (paths relative to ``tree``) and drops those files from the RECORDs."""
    removed: list[str] = []
    for top in sorted(tree.iterdir()):
        if not top.is_dir() or top.is_symlink() or not (top / "__init__.py").is_file():
            continue
        found = []
        for dirpath, dirnames, _files in os.walk(top):
            for d in sorted(dirnames):
                if d in TEST_DIRS and (Path(dirpath) / "__init__.py").is_file():
                    found.append(Path(dirpath) / d)
            dirnames[:] = [d for d in dirnames if d not in TEST_DIRS]
        if not found:
            continue
        text = _imports_of(top)
        for d in found:
            dotted = ".".join(d.relative_to(tree).parts)
            parent = ".".join(d.parent.relative_to(tree).parts)
            pattern = (rf"(?:import|from)\s+(?:{re.escape(dotted)}\b|{re.escape(parent)}\s+import\s+{d.name}\b"
                       rf"|\.+{d.name}\b|\.+\s+import\s+{d.name}\b)")
            if re.search(pattern, text):
                continue
            shutil.rmtree(d)
            removed.append(d.relative_to(tree).as_posix() + "/")
    if removed:
        prefixes = tuple(removed)
        for record in tree.glob("*.dist-info/RECORD"):
            lines = record.read_text(encoding="utf-8").splitlines(keepends=True)
            kept = [ln for ln in lines if not ln.startswith(prefixes)]
            if len(kept) != len(lines):
                record.write_text("".join(kept), encoding="utf-8")
    return removed


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


def compile_tree(tree: Path, interpreter: str, ddir: str = "/var/task") -> None:
    """Compile the .py files below ``tree`` with ``interpreter`` (unchecked-hash .pyc next to them).

    Skipped: top-level installer tooling (``NO_BYTECODE``) and ``tests``/``test`` directories
    inside packages. The files are split between one interpreter process per core (each file
    is compiled on its own, so the result does not depend on the split).
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
    n = max(1, min(2, os.cpu_count() or 1, len(jobs) // 50 or 1))
    procs = []
    for k in range(n):
        proc = subprocess.Popen(
            [interpreter, "-c", COMPILE_SCRIPT], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, env=compile_env(), text=True,
        )
        procs.append((proc, json.dumps(jobs[k::n])))
    for proc, payload in procs:
        try:
            proc.communicate(payload, timeout=900)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass(frozen=True)
class DepsPlan:
    """What would be installed, known without installing: the inputs and their hash."""

    hash: str
    requirements_file: Path | None
    requirements_text: str
    named: frozenset[str]
    prune: tuple[str, ...]
    interpreter: str | None  # for bytecode

    @property
    def empty(self) -> bool:
        return self.requirements_file is None or not (self.named or _has_options(self.requirements_text))


def plan(fn: FunctionConfig, *, target: Literal["lambda", "host"] = "lambda") -> DepsPlan:
    """The dependency set's hash (the cache key, and the ``dev.lambdaship.deps-hash`` label)."""
    req = requirements_file(fn)
    req_text = _requirements_text(req) if req else ""
    named = named_requirements(req_text)
    prune: tuple[str, ...] = ()
    if target == "lambda" and _base_is_aws(fn):
        prune = tuple(p for p in AWS_BASE_PACKAGES if p not in named)
    pyc = find_interpreter(fn.python) if target == "lambda" and bytecode_enabled() else None
    key = _cache_key(fn, target, req_text, prune, pyc)
    return DepsPlan(key, req, req_text, frozenset(named), prune, pyc)


def install(fn: FunctionConfig, *, target: Literal["lambda", "host"] = "lambda") -> DepsResult:
    """Install the function's dependencies (or take them from the cache)."""
    p = plan(fn, target=target)
    req, req_text, named, prune, pyc, key = (
        p.requirements_file, p.requirements_text, set(p.named), p.prune, p.interpreter, p.hash
    )
    root = home() / "deps"
    entry = root / key
    info_file = entry / MARKER
    if info_file.is_file():
        info = json.loads(info_file.read_text())
        return DepsResult(entry / "tree", key, info["requirements"], cached=True,
                          pruned=tuple(info.get("pruned", [])), bytecode=bool(info.get("bytecode")),
                          content_bytes=int(info.get("content_bytes", -1)), entries=int(info.get("entries", -1)))
    root.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=root))
    try:
        tree = tmp / "tree"
        tree.mkdir()
        if req is not None and named | _has_options(req_text):
            cmd, env = _install_cmd(fn, target, req, tree)
            t0 = time.monotonic()
            proc = subprocess.run(cmd, cwd=req.parent, env=env, capture_output=True, text=True, timeout=1800)
            timings["install"] = time.monotonic() - t0
            if proc.returncode != 0:
                raise _sdist_error(proc.stderr, fn) or LambdashipError(
                    f"installing the dependencies in {req.name} failed: {_last_error_line(proc.stderr)}",
                    "fix the requirements (run the installer yourself to see the full output)",
                )
        _clean(tree)
        pruned = []
        for spec, dist_info in _installed(tree).items():
            if spec.split("==")[0] in prune:
                _remove_dist(tree, dist_info)
                pruned.append(spec.split("==")[0])
        pruned_tests = _prune_tests(tree) if target == "lambda" and prune_tests_enabled() else []
        if pyc:
            t0 = time.monotonic()
            compile_tree(tree, pyc)
            timings["bytecode"] = time.monotonic() - t0
        requirements = sorted(_installed(tree))
        content_bytes, entries = tree_size(tree)
        (tmp / MARKER).write_text(json.dumps(
            {"requirements": requirements, "pruned": pruned, "pruned_tests": pruned_tests,
             "bytecode": bool(pyc), "python": fn.python,
             "target": target, "content_bytes": content_bytes, "entries": entries},
            sort_keys=True,
        ))
        try:
            os.rename(tmp, entry)
        except OSError:
            if not info_file.is_file():  # unless another process finished first (theirs is as good)
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return DepsResult(entry / "tree", key, requirements, cached=False, pruned=tuple(pruned), bytecode=bool(pyc),
                      timings=timings, content_bytes=content_bytes, entries=entries)


def tree_size(root: Path) -> tuple[int, int]:
    """(bytes of file content, number of entries) below ``root``."""
    total = count = 0
    for dirpath, dirnames, filenames in os.walk(root):
        count += len(dirnames) + len(filenames)
        for f in filenames:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(dirpath, f)).st_size
    return total, count


def _has_options(text: str) -> set[str]:
    """Non-empty when the file installs something other than named packages (URLs, paths)."""
    out = set()
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        local = line and not line.startswith("-") and not re.match(r"^[A-Za-z0-9]", line)
        if local or line.startswith(("-e", "--editable")):
            out.add(line)
    return out
