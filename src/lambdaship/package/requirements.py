"""A function's requirements: which file, its text with every ``-r``/``-c`` file it names, and the
distribution names it asks for."""

from __future__ import annotations

import logging
import os
import re
import shlex
from pathlib import Path
from typing import TYPE_CHECKING

from lambdaship.errors import ConfigError

if TYPE_CHECKING:
    from lambdaship.config import FunctionConfig

log = logging.getLogger("lambdaship")  # notes and warnings: the CLI prints them (library code prints nothing)


def canonical_name(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_name(req: str) -> str | None:
    """The canonical distribution name a requirement line or ``Requires-Dist`` value starts with."""
    m = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", req)
    return canonical_name(m.group(1)) if m else None


def requirements_file(fn: FunctionConfig) -> Path | None:
    """The function's requirements file, checked (with every file it includes) by
    :mod:`lambdaship.package.reqguard`: inside the project, nothing that runs code on this machine."""
    from lambdaship.package.reqguard import check_tree

    root = fn.root or fn.source
    if fn.requirements:  # before anything reads it, whatever its format
        given = fn.source / fn.requirements
        if not (given.resolve() == root or root in given.resolve().parents):
            raise ConfigError(
                f"requirements file {given} is outside the project ({root})",
                "point 'requirements' at a file inside the project (relative to the function's source directory)",
            )
    from lambdaship.package import sources  # hook: lock files / pyproject.toml → one pinned list

    generated = sources.requirements_path(fn)
    if generated is not None:
        from lambdaship.package.reqguard import check_generated

        label = fn.requirements or "the project's dependencies"
        check_generated(generated, label, fn.source, root)
        return generated
    if fn.requirements:
        path = (fn.source / fn.requirements).resolve()
        if path.exists() and not path.is_file():
            raise ConfigError(
                f"requirements file {path} is not a regular file",
                "point 'requirements' at a requirements.txt (relative to the function's source directory)",
            )
        if not path.is_file():
            raise ConfigError(
                f"requirements file {path} not found",
                "fix 'requirements' (a path relative to the function's source directory)",
            )
        check_tree(path, root)
        return path
    default = fn.source / "requirements.txt"
    if default.is_file() or default.is_symlink():
        check_tree(default, root)
        return default
    return None


_INCLUDE_RE = re.compile(r"^\s*(?:-r|-c|--requirement|--constraint)[\s=]+(\S+)")


def requirements_text(path: Path, seen: set[Path] | None = None) -> str:
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
                parts.append(requirements_text(inc, seen))
    return "\n".join(parts)


_LINK_OPTS = ("-f", "--find-links")


def _link_values(line: str) -> list[str]:
    """The values of ``-f``/``--find-links`` on one line (``-f X``, ``-fX``, ``--find-links=X``)."""
    try:
        tokens = shlex.split(line, comments=True)
    except ValueError:
        return []
    out = []
    for i, tok in enumerate(tokens):
        if tok in _LINK_OPTS and i + 1 < len(tokens):
            out.append(tokens[i + 1])
        elif tok.startswith("--find-links="):
            out.append(tok.split("=", 1)[1])
        elif tok.startswith("-f") and not tok.startswith("--") and len(tok) > 2:
            out.append(tok[2:].lstrip("="))
    return out


def local_inputs(path: Path, seen: set[str] | None = None) -> list[Path]:
    """The local files an installer reads for ``path``: it, every -r/-c file (recursively), each
    ``.whl`` in a ``--find-links`` directory and each local ``.whl`` requirement; at the paths the
    installer opens them (absolute, symlinks not resolved). What a build sandbox binds."""
    seen = seen if seen is not None else set()
    path = Path(os.path.abspath(path))
    if str(path) in seen or not path.is_file():
        return []
    seen.add(str(path))
    out = [path]
    for line in path.read_text(encoding="utf-8").splitlines():
        m = _INCLUDE_RE.match(line)
        if m:
            out += local_inputs(path.parent / m.group(1), seen)
            continue
        for value in _link_values(line):
            if "://" not in value or value.startswith("file:"):
                links = path.parent / value.removeprefix("file://")
                out += sorted(Path(os.path.abspath(w)) for w in links.glob("*.whl")) if links.is_dir() else []
        first = line.split("#", 1)[0].strip().split(" ", 1)[0]
        if first.endswith(".whl") and "://" not in first and (path.parent / first).is_file():
            out.append(Path(os.path.abspath(path.parent / first)))
    return out


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


def has_options(text: str) -> set[str]:
    """Non-empty when the file installs something other than named packages (URLs, paths)."""
    out = set()
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        local = line and not line.startswith("-") and not re.match(r"^[A-Za-z0-9]", line)
        if local or line.startswith(("-e", "--editable")):
            out.add(line)
    return out


_NOTED: set[tuple[str, str]] = set()


def implicit_requirements(fn: FunctionConfig, named: set[str]) -> tuple[str, ...]:
    """Requirements the app needs but does not name: a Chalice app's ``chalice``, as ``chalice
    deploy`` bundles it. The version installed on this machine (read from its metadata, never
    imported), else the latest release. Says so once per process (a ``note:`` logged on "lambdaship")."""
    from lambdaship.config import is_chalice_app

    if "chalice" in named or not is_chalice_app(fn.source):
        return ()
    try:
        from importlib.metadata import PackageNotFoundError, version

        try:
            spec, why = f"chalice=={version('chalice')}", "the version installed here"
        except PackageNotFoundError:
            spec, why = "chalice", "the latest release; pin it"
    except ImportError:  # pragma: no cover - importlib.metadata is in the standard library
        spec, why = "chalice", "the latest release; pin it"
    if (str(fn.source), spec) not in _NOTED:
        _NOTED.add((str(fn.source), spec))
        where = fn.requirements or "requirements.txt"
        log.info("note: %s does not name chalice; adding %s (%s), as 'chalice deploy' does", where, spec, why)
    return (spec,)
