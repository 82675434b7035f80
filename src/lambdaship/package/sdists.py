"""Pure-Python packages that publish only a source distribution (``docopt``, ``jsonformatter``)
become wheels for the target; packages with native code are refused, all named in one line.

When the wheel-only install fails for want of a wheel:

1. the requirements are resolved for the target without the wheel-only rule (``uv pip compile``),
   **in the build sandbox**: resolving reads an sdist's metadata, which can mean running its
   build backend (``setup.py``);
2. each pinned package is checked for a target wheel on the host (``uv pip install --dry-run
   --only-binary :all: --no-deps``, in parallel: no code runs) — every package without one is
   found, not only the first;
3. each of those sdists is downloaded from the index on the host (PEP 691 JSON, the index's
   SHA-256 checked) and built by ``uv build --wheel`` **in the build sandbox**
   (:mod:`lambdaship.package.buildbox`: bubblewrap, no host home, no inherited environment, only a
   scratch directory writable, network only to the package indexes). Only sdists from an index:
   a path, VCS or URL requirement is refused before (:mod:`lambdaship.package.reqguard`), a local
   sdist in a ``--find-links`` directory is never seen by the sandbox;
4. a wheel is kept only when it is ``py*-none-any`` and carries the name and version asked for;
   an sdist with C/C++/Cython/Rust sources (not even built) or a wheel with any other tag is
   native code, a failed build is named as such: one error naming every such package.

Without bubblewrap this is refused in one line (never run on the host). The wheels go to a
content-addressed directory in the cache; the install is retried with ``--find-links`` to it,
and its tree is verified against every wheel's RECORD like any other install.

Network, not a pre-fetch: step 1 needs the index (the resolution is uv's, and an sdist's
metadata may come only from running its backend, whose build requirements come from the index
too), so the sandbox gets the network — but only the indexes' hosts, through
:mod:`lambdaship.package.egress`, never the host's loopback services or a cloud metadata
endpoint.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

from lambdaship import bubblewrap
from lambdaship.errors import LambdashipError
from lambdaship.package import buildbox
from lambdaship.package.indexes import Indexes, indexes

if TYPE_CHECKING:
    from lambdaship.config import FunctionConfig

_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;]+)")


def _uv() -> str:
    from lambdaship.package.installer import uv_binary

    uv = uv_binary()
    if uv is None:
        raise LambdashipError("building source-only packages needs uv", "pip install uv")
    return uv


def _target(fn: FunctionConfig) -> list[str]:
    return ["--python-platform", fn.platform.uv_platform, "--python-version", fn.python]


def _box(fn: FunctionConfig, idx: Indexes) -> buildbox.BuildBox:
    return buildbox.BuildBox(buildbox.interpreter(fn.python), _uv(), network=idx.network())


_CREDENTIALS_IN_URL = re.compile(r"(?<=://)[^/@\s]+@")


def resolve(fn: FunctionConfig, req: Path, idx: Indexes) -> list[tuple[str, str]]:
    """(name, version) of every package the requirements pin for the target (in the sandbox, with
    the requirement files, their URLs' credentials removed, and the wheels they name)."""
    from lambdaship.package.requirements import local_inputs

    req = Path(os.path.abspath(req))
    with _box(fn, idx) as box:
        for path in local_inputs(req):
            if path.suffix == ".whl":
                box.add_file(path)
            else:
                box.add_text(path, _CREDENTIALS_IN_URL.sub("", path.read_text(encoding="utf-8")))
        proc = box.run([box.uv, "pip", "compile", str(req), *_target(fn), "--python", box.python, "--no-header",
                        "--no-annotate", "--quiet"], cwd=str(req.parent), timeout=600)
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


def _canon(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _download_sdist(name: str, version: str, dest: Path, idx: Indexes) -> Path | None:
    """The sdist of name==version from the first index that has it (SHA-256 checked); None when
    there is none."""
    import httpx

    canon = _canon(name)
    spelled = "[-_.]+".join(re.escape(part) for part in canon.split("-"))  # my-pkg, my_pkg, My.Pkg
    stem = re.compile(rf"^{spelled}-{re.escape(version)}\.(tar\.gz|zip)$", re.I)
    with httpx.Client(timeout=httpx.Timeout(60, connect=5), follow_redirects=True) as client:
        for index in idx.search_order():
            page = f"{index.rstrip('/')}/{canon}/"
            r = client.get(page, headers={"Accept": "application/vnd.pypi.simple.v1+json"})
            if r.status_code != 200 or "json" not in r.headers.get("content-type", ""):
                continue
            for f in r.json().get("files", []):
                if not stem.match(f["filename"]) or f.get("yanked"):
                    continue
                data = client.get(httpx.URL(page).join(f["url"])).content
                want = (f.get("hashes") or {}).get("sha256")
                if want and hashlib.sha256(data).hexdigest() != want:
                    raise LambdashipError(f"the sdist of {name}=={version} does not match the index's SHA-256",
                                          "retry; if it persists, check the index")
                out = dest / os.path.basename(f["filename"])
                out.write_bytes(data)
                return out
    return None


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


def _the_wheel(out: Path, name: str, version: str) -> Path | str:
    """The one wheel the build wrote for name==version, or why there is none."""
    from packaging.utils import InvalidWheelFilename, parse_wheel_filename
    from packaging.version import Version

    wheels = sorted(out.glob("*.whl"))
    if len(wheels) != 1:
        return f"{len(wheels)} wheels written"
    try:
        got_name, got_version, _, _ = parse_wheel_filename(wheels[0].name)
    except InvalidWheelFilename:
        return "an invalid wheel name"
    if _canon(got_name) != _canon(name) or got_version != Version(version):
        return "a wheel of another package"
    return wheels[0]


def _why(proc: subprocess.CompletedProcess[str], refused: list[str]) -> str:
    from lambdaship.package.installer import last_error_line

    why = "".join(c for c in last_error_line(proc.stderr)[:200] if c.isprintable())
    if refused:
        why += f" (the build asked for {', '.join(sorted(set(refused))[:3])}: not an index, refused)"
    return why


def _build(fn: FunctionConfig, name: str, version: str, sdist: Path, staging: Path, idx: Indexes) -> str | None:
    """Build ``sdist`` in the sandbox into ``staging``; None, or why it failed (one phrase)."""
    with _box(fn, idx) as box:
        shutil.copyfile(sdist, box.path("in") / sdist.name)
        proc = box.run([box.uv, "build", "--wheel", "--out-dir", f"{buildbox.WORK}/out", "--no-config", "--python",
                        box.python, f"{buildbox.WORK}/in/{sdist.name}"], timeout=900)
        if proc.returncode != 0:
            return _why(proc, box.egress.refused if box.egress else [])
        wheel = _the_wheel(box.path("out"), name, version)
        if isinstance(wheel, str):
            return wheel
        if not is_pure(wheel):
            return "native"
        shutil.copyfile(wheel, staging / wheel.name)
    return None


def _first_sdist_only(fn: FunctionConfig, req: Path) -> str:
    """The first package uv names as having no wheel (a resolution with ``--no-build``: no code runs)."""
    proc = subprocess.run([_uv(), "pip", "compile", str(req), *_target(fn), "--no-build", "--quiet"],
                          cwd=req.parent, capture_output=True, text=True, timeout=600)
    m = re.search(r"Wheels are required for `([^`]+)`", proc.stderr) or re.search(
        r"Because (?:only )?([A-Za-z0-9._-]+==[^\s]+) has no (?:usable )?wheels", proc.stderr)
    return m.group(1) if m else "a dependency"


def _refusal(fn: FunctionConfig, native: list[str], failed: list[str]) -> LambdashipError:
    message = f"no wheel for Python {fn.python} on {fn.platform.uv_platform}"
    if native:
        message += f" and native code to compile: {', '.join(native)}"
    if failed:
        message += f"{'; ' if native else ' and '}building from source in the sandbox failed: {'; '.join(failed)}"
    return LambdashipError(
        message,
        "pin versions that ship manylinux wheels, or vendor wheels built for the target "
        "(a directory of .whl files and '--find-links <dir>' in the requirements file)",
    )


def build_pure_wheels(fn: FunctionConfig, req: Path) -> Path | None:
    """A --find-links directory with wheels of the pure-Python sdist-only packages; None when the
    failure was not about missing wheels. Raises naming every package with native code, and when
    the sandbox cannot run here."""
    from lambdaship import paths

    if not bubblewrap.available()[0]:
        buildbox.require(f"building {_first_sdist_only(fn, req)} from its source distribution")
    idx = indexes(req)
    missing = without_wheels(fn, resolve(fn, req, idx), req)
    if not missing:
        return None
    key = hashlib.sha256(repr((sorted(missing), fn.python, fn.platform.uv_platform)).encode()).hexdigest()[:24]
    out = paths.cache("sdist-wheels") / key
    native: list[str] = []
    failed: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        staging = Path(tmp) / "wheels"
        staging.mkdir()
        for name, version in missing:
            sdist = _download_sdist(name, version, Path(tmp), idx)
            if sdist is None or has_native_sources(sdist):
                native.append(f"{name}=={version}")
                continue
            why = _build(fn, name, version, sdist, staging, idx)
            if why == "native":
                native.append(f"{name}=={version}")
            elif why is not None:
                failed.append(f"{name}=={version} ({why})")
        if native or failed:
            raise _refusal(fn, native, failed)
        out.mkdir(parents=True, exist_ok=True)
        for w in staging.glob("*.whl"):
            os.replace(w, out / w.name)
    return out
