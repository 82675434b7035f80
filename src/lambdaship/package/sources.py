"""Every dependency format a project brings, turned into one pinned requirements list.

Formats: ``requirements*.txt`` (used as they are, by :mod:`lambdaship.package.requirements`),
``uv.lock`` (``uv export --frozen``: uv's own reading, no resolution, no code run), ``poetry.lock``
and ``Pipfile.lock`` (the ``main`` / ``default`` packages with their markers), ``pyproject.toml``
(PEP 621 ``[project].dependencies`` or Poetry's ``[tool.poetry.dependencies]``, resolved by the
installer). A ``Pipfile`` without its lock, or any other file named in ``requirements``, is one
error line. Packages from git, a URL or a local path in a lock file are refused by name (building
them runs their code here); the app's own workspace members are not packages (their code ships in
the app layer).

The pinned list is written to a content-addressed file in the cache, never into the project.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import subprocess
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lambdaship.errors import ConfigError, LambdashipError
from lambdaship.package.poetry import poetry_constraint, poetry_lines

if TYPE_CHECKING:
    from lambdaship.config import FunctionConfig

log = logging.getLogger("lambdaship")  # warnings: the CLI prints them (library code prints nothing)
LOCK_FILES = ("uv.lock", "poetry.lock", "Pipfile.lock")
KINDS = {"uv.lock": "uv.lock", "poetry.lock": "poetry.lock", "Pipfile.lock": "Pipfile.lock",
         "pyproject.toml": "pyproject.toml", "Pipfile": "Pipfile"}


@dataclass(frozen=True)
class Source:
    kind: str  # requirements.txt | uv.lock | poetry.lock | Pipfile.lock | pyproject.toml
    path: Path


def _kind_of(path: Path) -> str:
    name = path.name
    if name in KINDS:
        return KINDS[name]
    if name.endswith((".txt", ".in")):
        return "requirements.txt"
    raise ConfigError(
        f"requirements file {path.name} is not a format lambdaship reads",
        "use requirements*.txt, uv.lock, poetry.lock, Pipfile.lock or pyproject.toml",
    )


def _search_dirs(fn: FunctionConfig) -> list[Path]:
    """The function's source directory, then each parent up to the config file's directory."""
    src = fn.source.resolve()
    root = (fn.root or fn.source).resolve()
    out = [src]
    while src != root and root in src.parents:
        src = src.parent
        out.append(src)
    return out


def find(fn: FunctionConfig) -> Source | None:
    """The dependency source: the configured ``requirements`` file, else the first of
    requirements.txt in the source directory; uv.lock, poetry.lock, Pipfile.lock in the source
    directory or a parent up to the config file's directory; then a Pipfile (an error: not
    pinned) or a pyproject.toml with dependencies, nearest first."""
    if fn.requirements:
        path = fn.source / fn.requirements
        return Source(_kind_of(path), path)
    dirs = _search_dirs(fn)
    if (fn.source / "requirements.txt").exists():
        return Source("requirements.txt", fn.source / "requirements.txt")
    for d in dirs:  # a lock anywhere up to the config file's directory (a workspace root's) first
        for name in LOCK_FILES:
            if (d / name).is_file():
                return Source(name, d / name)
    for d in dirs:
        if (d / "Pipfile").is_file():
            raise ConfigError(
                f"{_rel(d / 'Pipfile', fn)} has no Pipfile.lock beside it; lambdaship installs pinned versions only",
                "run 'pipenv lock' and commit Pipfile.lock (or set 'requirements' to a requirements.txt)",
            )
        pyproject = d / "pyproject.toml"
        if pyproject.is_file() and _pyproject_requirements(pyproject):
            return Source("pyproject.toml", pyproject)
    return None


def _rel(path: Path, fn: FunctionConfig) -> str:
    try:
        return path.resolve().relative_to((fn.root or fn.source).resolve()).as_posix()
    except ValueError:
        return str(path)


def requirements_path(fn: FunctionConfig) -> Path | None:
    """A pinned requirements file for a non-requirements.txt source (None: requirements.txt or none).

    The hook in :func:`lambdaship.package.requirements.requirements_file`."""
    source = find(fn)
    warn_requires_python(fn, source)
    if source is None or source.kind == "requirements.txt":
        return None
    root = (fn.root or fn.source).resolve()
    path = source.path.resolve()
    if not (path == root or root in path.parents):
        raise ConfigError(f"requirements file {source.path} is outside the project ({root})",
                              "point 'requirements' at a file inside the project")
    if not path.is_file():
        raise ConfigError(f"requirements file {path} not found",
                              "fix 'requirements' (a path relative to the function's source directory)")
    lines = pinned(source, fn)
    text = f"# from {_rel(source.path, fn)} ({source.kind})\n" + "".join(f"{ln}\n" for ln in lines)
    from lambdaship import paths

    out_dir = paths.cache("requirements")
    out = out_dir / hashlib.sha256(text.encode()).hexdigest()[:32] / f"from-{source.path.name}.txt"
    with contextlib.suppress(OSError):  # reused only when it still holds exactly this text (a cache entry)
        if out.is_file() and out.read_bytes() == text.encode():
            return out
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, out)
    return out


def pinned(source: Source, fn: FunctionConfig) -> list[str]:
    """The requirement lines of ``source`` (pinned for lock files)."""
    if source.kind == "Pipfile":
        raise ConfigError(
            f"{_rel(source.path, fn)}: a Pipfile without its lock is not pinned",
            "run 'pipenv lock' and set 'requirements = \"Pipfile.lock\"'",
        )
    reader = {"uv.lock": _uv_lock, "poetry.lock": _poetry_lock, "Pipfile.lock": _pipfile_lock,
              "pyproject.toml": _pyproject}[source.kind]
    return reader(source.path, fn)


def _refuse(kind: str, path: Path, fn: FunctionConfig, names: list[str], hint: str | None = None,
            origin: str = "git, a URL or a local path") -> None:
    if names:
        raise LambdashipError(
            f"{_rel(path, fn)}: {', '.join(sorted(names))} come(s) from {origin} "
            f"({kind}); building them would run their code here",
            hint or "publish them to an index (or vendor a wheel with --find-links in a requirements.txt)",
        )


UV_LOCAL_SOURCES = ("editable", "directory", "path")
UV_LOCAL_HINT = ("make each a workspace member ([tool.uv.workspace] members: its code then ships in the app "
                 "layer), or build a wheel of it and vendor it (a directory of .whl files and '--find-links <dir>' "
                 "in a requirements.txt), or publish it to your index")


def _uv_foreign(lock: dict[str, Any], lock_dir: Path) -> tuple[list[str], list[str]]:
    """(packages from git or a URL, packages from a local directory, file or editable checkout)
    in a uv.lock: every source but the index's and the workspace's own members (``[manifest]
    members``, else the project at the lock's directory)."""
    packages = lock.get("package") or []
    members = set((lock.get("manifest") or {}).get("members") or [])
    remote, local = [], []
    for p in packages:
        source = p.get("source") or {}
        if set(source) & {"git", "url"}:
            remote.append(p["name"])
            continue
        kind = next((k for k in UV_LOCAL_SOURCES if k in source), None)
        if kind is None or p["name"] in members:
            continue
        if not members and kind != "path" and (lock_dir / str(source[kind])).resolve() == lock_dir.resolve():
            continue  # the project itself (a single-project lock has no [manifest])
        local.append(f"{p['name']} ({kind} {source[kind]})")
    return remote, local


# ---- uv.lock ---------------------------------------------------------------------------------
def _uv_lock(path: Path, fn: FunctionConfig) -> list[str]:
    from lambdaship.package.installer import uv_binary

    lock = _toml(path)
    remote, local = _uv_foreign(lock, path.parent)
    _refuse("uv.lock", path, fn, remote)
    _refuse("uv.lock", path, fn, local, UV_LOCAL_HINT, "a local directory or file, not the index")
    uv = uv_binary()
    if uv is None:
        raise LambdashipError("reading uv.lock needs uv", "pip install uv")
    cmd = [uv, "export", "--frozen", "--no-dev", "--no-hashes", "--no-header", "--no-annotate",
           "--no-emit-workspace", "--no-editable", "--format", "requirements-txt", "--quiet"]
    member = _workspace_member(path.parent, fn)
    cmd += ["--package", member] if member else ["--all-packages"]
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never", "UV_NO_CONFIG": "1"}
    proc = subprocess.run(cmd, cwd=path.parent, capture_output=True, text=True, timeout=120, env=env)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise LambdashipError(f"{_rel(path, fn)}: uv export failed: {last}",
                              "run 'uv lock' so the lock file matches pyproject.toml")
    return [ln.strip() for ln in proc.stdout.splitlines() if ln.strip() and not ln.lstrip().startswith(("#", "-"))]


def _workspace_member(lock_dir: Path, fn: FunctionConfig) -> str | None:
    """The project name of the nearest pyproject.toml from the source directory up to the lock."""
    d = fn.source.resolve()
    lock_dir = lock_dir.resolve()
    while True:
        pyproject = d / "pyproject.toml"
        if pyproject.is_file():
            name = (_toml(pyproject).get("project") or {}).get("name")
            if name:
                return str(name)
        if d == lock_dir or lock_dir not in d.parents:
            return None
        d = d.parent


def _toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path.name} is not valid TOML: {exc}", f"fix {path}") from None


# ---- poetry.lock -----------------------------------------------------------------------------
def _poetry_lock(path: Path, fn: FunctionConfig) -> list[str]:
    lock = _toml(path)
    packages = lock.get("package") or []
    foreign = [p["name"] for p in packages
               if (p.get("source") or {}).get("type") in ("git", "url", "directory", "file")]
    main = _poetry_main(packages, path.parent)
    _refuse("poetry.lock", path, fn, [n for n in foreign if n in main])
    out = []
    for p in packages:
        name = p["name"]
        if name not in main:
            continue
        marker = p.get("markers")
        if isinstance(marker, dict):
            marker = marker.get("main")
        out.append(f"{name}=={p['version']}" + (f" ; {marker}" if marker else ""))
    return sorted(out, key=str.lower)


def _poetry_main(packages: list[dict[str, Any]], project_dir: Path) -> set[str]:
    """Names in the main group: from the lock's groups/category when it has them (Poetry 2,
    Poetry < 1.5), else the closure of pyproject's main dependencies."""
    if any("groups" in p or "category" in p for p in packages):
        return {p["name"] for p in packages if "main" in (p.get("groups") or [p.get("category", "main")])}
    pyproject = project_dir / "pyproject.toml"
    data = _toml(pyproject) if pyproject.is_file() else {}
    roots = {_canon(n) for n in ((data.get("tool") or {}).get("poetry") or {}).get("dependencies", {}) if n != "python"}
    roots |= {_canon(_req_name(r)) for r in (data.get("project") or {}).get("dependencies", [])}
    by_name = {_canon(p["name"]): p for p in packages}
    seen: set[str] = set()
    todo = [r for r in roots if r in by_name]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo.extend(_canon(d) for d in (by_name[name].get("dependencies") or {}) if _canon(d) in by_name)
    return {by_name[n]["name"] for n in seen}


def _canon(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _req_name(req: str) -> str:
    m = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", req)
    return m.group(1) if m else req


# ---- Pipfile.lock ----------------------------------------------------------------------------
def _pipfile_lock(path: Path, fn: FunctionConfig) -> list[str]:
    try:
        default = json.loads(path.read_text(encoding="utf-8")).get("default") or {}
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ConfigError(f"{_rel(path, fn)} is not valid JSON: {exc}", "run 'pipenv lock' again") from None
    _refuse("Pipfile.lock", path, fn, [n for n, e in default.items() if set(e) & {"git", "path", "file", "editable"}])
    out = []
    for name, entry in sorted(default.items()):
        extras = f"[{','.join(entry['extras'])}]" if entry.get("extras") else ""
        version = entry.get("version") or ""
        marker = entry.get("markers")
        out.append(f"{name}{extras}{version}" + (f" ; {marker}" if marker else ""))
    return out


# ---- pyproject.toml --------------------------------------------------------------------------
def _pyproject_requirements(path: Path) -> list[str]:
    data = _toml(path)
    project = data.get("project") or {}
    if project.get("dependencies"):
        return [str(r) for r in project["dependencies"]]
    poetry = ((data.get("tool") or {}).get("poetry") or {}).get("dependencies") or {}
    return [line for name, spec in poetry.items() if name != "python" for line in poetry_lines(name, spec)]


def _pyproject(path: Path, fn: FunctionConfig) -> list[str]:
    from packaging.requirements import InvalidRequirement, Requirement

    lines = _pyproject_requirements(path)
    bad = []
    for line in lines:
        if line.startswith("!"):
            bad.append(line[1:])
            continue
        try:
            req = Requirement(line)
        except InvalidRequirement as exc:
            raise ConfigError(f"{_rel(path, fn)}: {line!r} is not a valid requirement: {exc}",
                                  "fix the dependency in pyproject.toml") from None
        if req.url and not (req.url.startswith("https://") and req.url.endswith(".whl")):
            bad.append(req.name)
    _refuse("pyproject.toml", path, fn, bad)
    return lines


# ---- requires-python -------------------------------------------------------------------------
def requires_python(fn: FunctionConfig, source: Source | None = None) -> tuple[str, Path] | None:
    """The project's ``requires-python`` (PEP 621, or Poetry's ``python``) and where it is."""
    dirs = [source.path.parent] if source else []
    for d in [*dirs, *_search_dirs(fn)]:
        pyproject = d / "pyproject.toml"
        if not pyproject.is_file():
            continue
        data = _toml(pyproject)
        spec = (data.get("project") or {}).get("requires-python")
        if not spec:
            poetry = ((data.get("tool") or {}).get("poetry") or {}).get("dependencies") or {}
            spec = poetry_constraint(poetry["python"]) if isinstance(poetry.get("python"), str) else None
        if spec:
            return str(spec), pyproject
    return None


_warned: set[str] = set()


def warn_requires_python(fn: FunctionConfig, source: Source | None = None) -> str | None:
    """One ``warning:`` line (once per process, logged on "lambdaship") when the target Python is
    outside ``requires-python``."""
    from packaging.specifiers import InvalidSpecifier, SpecifierSet

    found = requires_python(fn, source)
    if found is None:
        return None
    spec, where = found
    try:
        ok = SpecifierSet(spec).contains(f"{fn.python}.0", prereleases=True) or SpecifierSet(spec).contains(
            fn.python, prereleases=True)
    except InvalidSpecifier:
        return None
    if ok:
        return None
    line = (f"warning: {fn.function_name} targets Python {fn.python} but {_rel(where, fn)} requires-python is "
            f"{spec!r}; set python in the config (or --python) to a version it allows")
    if line not in _warned:
        _warned.add(line)
        log.warning("%s", line)
    return line
