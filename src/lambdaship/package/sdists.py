"""Pure-Python packages that publish only a source distribution (``docopt``, ``jsonformatter``)
become wheels for the target; packages with native code are refused, all named in one line.

When the wheel-only install fails for want of a wheel:

1. the requirements are resolved for the target without the wheel-only rule (``uv pip compile``);
2. each pinned package is checked for a target wheel (``uv pip install --dry-run --only-binary
   :all: --no-deps``, in parallel) — every package without one is found, not only the first;
3. each of those sdists is downloaded from the index (PEP 691 JSON, the index's SHA-256 checked)
   and built by ``uv build --wheel`` in uv's **isolated build environment** (a fresh venv with
   only the declared build requirements; nothing of this machine's site-packages). This is the
   one place a requirement's code (its build backend) runs on the build host, as SUPPLY's rule
   allows: an isolated step, for sdists from the package index only (never a path, VCS or URL
   requirement — :mod:`lambdaship.package.reqguard` refuses those before);
4. a wheel tagged ``py*-none-any`` is kept; an sdist with C/C++/Cython/Rust sources (not even
   built), a wheel with any other tag, or a failed build is native code: one error naming every
   such package.

The wheels go to a content-addressed directory in the cache; the install is retried with
``--find-links`` to it.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from lambdaship.errors import LambdashipError

if TYPE_CHECKING:
    from lambdaship.config import FunctionConfig

DEFAULT_INDEX = "https://pypi.org/simple"
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;]+)")


def _uv() -> str:
    from lambdaship.package.installer import uv_binary

    uv = uv_binary()
    if uv is None:
        raise LambdashipError("building source-only packages needs uv", "pip install uv")
    return uv


def _target(fn: FunctionConfig) -> list[str]:
    return ["--python-platform", fn.platform.uv_platform, "--python-version", fn.python]


def resolve(fn: FunctionConfig, req: Path) -> list[tuple[str, str]]:
    """(name, version) of every package the requirements pin for the target."""
    proc = subprocess.run([_uv(), "pip", "compile", str(req), *_target(fn), "--no-header", "--no-annotate",
                           "--quiet"], cwd=req.parent, capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        return []
    return [(m.group(1), m.group(2)) for ln in proc.stdout.splitlines() if (m := _PIN.match(ln.strip()))]


_INDEX_OPTS = ("-i", "--index-url", "--extra-index-url", "-f", "--find-links", "--no-index")


def index_options(req: Path) -> list[str]:
    """The requirements file's index lines (``--index-url``, ``--find-links`` …), so a package is
    looked up where the install looks for it."""
    from lambdaship.package.requirements import requirements_text

    return [ln.strip() for ln in requirements_text(req).splitlines() if ln.strip().startswith(_INDEX_OPTS)]


def _has_wheel(fn: FunctionConfig, name: str, version: str, req: Path, options: list[str]) -> bool:
    with tempfile.TemporaryDirectory() as tmp:
        probe = Path(tmp) / "probe.txt"
        probe.write_text("".join(f"{o}\n" for o in options) + f"{name}=={version}\n", encoding="utf-8")
        proc = subprocess.run([_uv(), "pip", "install", "--dry-run", "--no-deps", "--only-binary", ":all:",
                               "--target", tmp, *_target(fn), "-r", str(probe)],
                              cwd=req.parent, capture_output=True, text=True, timeout=300)
    return proc.returncode == 0


def without_wheels(fn: FunctionConfig, pins: list[tuple[str, str]], req: Path) -> list[tuple[str, str]]:
    options = index_options(req)
    with ThreadPoolExecutor(max_workers=4) as pool:
        flags = list(pool.map(lambda p: _has_wheel(fn, *p, req, options), pins))
    return [p for p, ok in zip(pins, flags, strict=True) if not ok]


def _index() -> str:
    return (os.environ.get("UV_DEFAULT_INDEX") or os.environ.get("UV_INDEX_URL") or DEFAULT_INDEX).rstrip("/")


def _download_sdist(name: str, version: str, dest: Path) -> Path | None:
    """The sdist of name==version from the index (SHA-256 checked); None when there is none."""
    import httpx

    canon = re.sub(r"[-_.]+", "-", name).lower()
    with httpx.Client(timeout=httpx.Timeout(60, connect=5), follow_redirects=True) as client:
        r = client.get(f"{_index()}/{canon}/", headers={"Accept": "application/vnd.pypi.simple.v1+json"})
        if r.status_code != 200 or "json" not in r.headers.get("content-type", ""):
            return None
        stem = re.compile(rf"^{re.escape(canon).replace('-', '[-_.]')}-{re.escape(version)}\.(tar\.gz|zip)$", re.I)
        for f in r.json().get("files", []):
            if not stem.match(f["filename"]) or f.get("yanked"):
                continue
            data = client.get(f["url"]).content
            want = (f.get("hashes") or {}).get("sha256")
            if want and hashlib.sha256(data).hexdigest() != want:
                raise LambdashipError(f"the sdist of {name}=={version} does not match the index's SHA-256",
                                      "retry; if it persists, check the index")
            out = dest / f["filename"]
            out.write_bytes(data)
            return out
    return None


def _build(sdist: Path, out: Path, fn: FunctionConfig) -> Path | None:
    """``uv build --wheel`` in an isolated build environment; the wheel, or None when it failed."""
    proc = subprocess.run([_uv(), "build", "--wheel", "--out-dir", str(out), "--quiet", "--no-config",
                           "--python", fn.python, str(sdist)], capture_output=True, text=True, timeout=900,
                          env={**os.environ, "UV_PYTHON_DOWNLOADS": os.environ.get("UV_PYTHON_DOWNLOADS", "never")})
    if proc.returncode != 0:
        proc = subprocess.run([_uv(), "build", "--wheel", "--out-dir", str(out), "--quiet", "--no-config",
                               str(sdist)], capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        return None
    stem = sdist.name.rsplit(".tar.gz", 1)[0].rsplit(".zip", 1)[0].lower().replace("-", "_")
    found = [w for w in out.glob("*.whl") if w.name.lower().replace("-", "_").startswith(stem)]
    return found[0] if found else None


_NATIVE_SOURCES = (".c", ".cc", ".cpp", ".cxx", ".pyx", ".rs", ".f", ".f90", ".go")


def has_native_sources(sdist: Path) -> bool:
    """True when the archive carries C/C++/Cython/Rust/Fortran/Go sources (read as a listing only;
    such a package is refused without running its build)."""
    import tarfile
    import zipfile

    try:
        if sdist.name.endswith(".zip"):
            with zipfile.ZipFile(sdist) as z:
                names = z.namelist()
        else:
            with tarfile.open(sdist) as t:
                names = t.getnames()
    except (OSError, tarfile.TarError, zipfile.BadZipFile):
        return True
    return any(n.lower().endswith(_NATIVE_SOURCES) or n.endswith("/Cargo.toml") for n in names)


def is_pure(wheel: Path) -> bool:
    from packaging.utils import parse_wheel_filename

    _, _, _, tags = parse_wheel_filename(wheel.name)
    return all(t.abi == "none" and t.platform == "any" and t.interpreter.startswith("py") for t in tags)


def build_pure_wheels(fn: FunctionConfig, req: Path) -> Path | None:
    """A --find-links directory with wheels of the pure-Python sdist-only packages; None when the
    failure was not about missing wheels. Raises naming every package with native code."""
    from lambdaship import paths

    missing = without_wheels(fn, resolve(fn, req), req)
    if not missing:
        return None
    key = hashlib.sha256(repr((sorted(missing), fn.python, fn.platform.uv_platform)).encode()).hexdigest()[:24]
    out = paths.cache("sdist-wheels") / key
    native: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        staging = Path(tmp) / "wheels"
        staging.mkdir()
        for name, version in missing:
            sdist = _download_sdist(name, version, Path(tmp))
            wheel = _build(sdist, staging, fn) if sdist and not has_native_sources(sdist) else None
            if wheel is None or not is_pure(wheel):
                native.append(f"{name}=={version}")
        if native:
            raise LambdashipError(
                f"no wheel for Python {fn.python} on {fn.platform.uv_platform} and native code to compile: "
                f"{', '.join(native)}",
                "pin versions that ship manylinux wheels, or vendor wheels built for the target "
                "(a directory of .whl files and '--find-links <dir>' in the requirements file)",
            )
        out.mkdir(parents=True, exist_ok=True)
        for w in staging.glob("*.whl"):
            os.replace(w, out / w.name)
    return out
