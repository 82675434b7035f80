"""``lambdaship init`` in a monorepo: one ``[functions.<key>]`` table per function directory.

Used when the directory itself has no handler. Function directories, in order: the members of a
uv workspace (``[tool.uv.workspace] members``, minus ``exclude``), then every subdirectory of
``functions/``, ``lambdas/``, ``services/``, ``handlers/`` — each one kept when
:func:`lambdaship.scaffold.detect.detect` finds a Chalice app or a handler in it. Paths in the
written tables (``source``, ``requirements``) are relative to the config file / the function's
source as :mod:`lambdaship.config` reads them. The file is written with tomlkit.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lambdaship.errors import UsageError
from lambdaship.scaffold.detect import Detected, detect, read_pyproject, sanitize_name

if TYPE_CHECKING:
    from lambdaship.scaffold.init import InitResult

FUNCTION_PARENTS = ("functions", "lambdas", "services", "handlers")
_SKIP = {"__pycache__", "node_modules", "tests", "test", "build", "dist", "venv"}
LOCKS = ("uv.lock", "poetry.lock", "Pipfile.lock")


def _candidates(directory: Path) -> list[Path]:
    out: list[Path] = []
    workspace = ((read_pyproject(directory).get("tool") or {}).get("uv") or {}).get("workspace") or {}
    excluded = {p.resolve() for pattern in workspace.get("exclude", []) for p in directory.glob(pattern)}
    for pattern in workspace.get("members", []):
        out += [d for d in sorted(directory.glob(pattern)) if d.is_dir() and d.resolve() not in excluded]
    for parent in FUNCTION_PARENTS:
        if (directory / parent).is_dir():
            out += [d for d in sorted((directory / parent).iterdir())
                    if d.is_dir() and not d.name.startswith((".", "_")) and d.name not in _SKIP]
    seen: set[Path] = set()
    return [d for d in out if not (d.resolve() in seen or seen.add(d.resolve()))]


def function_dirs(directory: Path, *, python: str | None = None) -> dict[str, tuple[Path, Detected]]:
    """{key: (directory, what detect found)} for every function directory with a handler."""
    found: dict[str, tuple[Path, Detected]] = {}
    for d in _candidates(directory):
        try:
            detected = detect(d, python=python)
        except UsageError:
            continue
        key = sanitize_name(d.name)
        if key in found:
            key = sanitize_name(d.relative_to(directory).as_posix().replace("/", "-"))
        found[key] = (d, detected)
    return found


def _requirements(root: Path, src: Path) -> str | None:
    """The function's own requirements*.txt, else the root's requirements.txt (relative to the
    source, as the config reads it); None when a lock or pyproject.toml is found by the builder."""
    own = sorted(p.name for p in src.glob("requirements*.txt"))
    if "requirements.txt" in own:
        return None  # the default
    if own:
        return own[0]
    if any((d / lock).is_file() for d in (src, root) for lock in LOCKS):
        return None
    if (src / "pyproject.toml").is_file() and (read_pyproject(src).get("project") or {}).get("dependencies"):
        return None
    if (root / "requirements.txt").is_file():
        return Path(os.path.relpath(root / "requirements.txt", src)).as_posix()
    return None


def _function_table(root: Path, src: Path, d: Detected, shared_python: str | None) -> Any:
    import tomlkit

    t = tomlkit.table()
    t.add("source", src.relative_to(root).as_posix())
    t.add("function_name", d.function_name)
    t.add("handler", d.handler)
    if d.python != shared_python:
        t.add("python", d.python)
    if d.memory:
        t.add("memory", d.memory)
    if d.timeout:
        t.add("timeout", d.timeout)
    req = _requirements(root, src)
    if req:
        t.add("requirements", req)
    if d.environment:
        env = tomlkit.table()
        for k, v in sorted(d.environment.items()):
            env.add(k, v)
        t.add("environment", env)
    if d.smoke_path:
        smoke = tomlkit.table()
        smoke.add("path", d.smoke_path)
        t.add("smoke", smoke)
    return t


def render(root: Path, found: dict[str, tuple[Path, Detected]], doc: Any) -> Any:
    """Fill ``doc`` (a tomlkit document or table) with the shared defaults and ``functions``."""
    import tomlkit

    pythons = {d.python for _, d in found.values()}
    shared_python = next(iter(pythons)) if len(pythons) == 1 else None
    doc.add(tomlkit.comment(f"lambdaship configuration, written by `lambdaship init`: {len(found)} function(s)."))
    doc.add(tomlkit.comment("Top-level keys are defaults for every [functions.<key>] table; paths are relative"))
    doc.add(tomlkit.comment("to this file (source) and to each function's source (requirements)."))
    if shared_python:
        doc.add("python", shared_python)
    doc.add("alias", "live")
    functions = tomlkit.table(is_super_table=True)
    for key, (src, d) in found.items():
        functions.add(key, _function_table(root, src, d, shared_python))
    doc.add("functions", functions)
    return doc


def write_monorepo(directory: Path, found: dict[str, tuple[Path, Detected]], *, existing: Path | None,
                   target_name: str, force: bool) -> InitResult:
    import tomlkit

    from lambdaship.config import CONFIG_FILE, PYPROJECT
    from lambdaship.scaffold.init import InitResult, _remove_pyproject_table, _strip_tool_table, _write

    if target_name == CONFIG_FILE:
        target = directory / CONFIG_FILE
        if existing is not None and existing != target:
            _remove_pyproject_table(existing)
        _write(target, tomlkit.dumps(render(directory, found, tomlkit.document())))
    else:
        target = directory / PYPROJECT
        if (directory / CONFIG_FILE).is_file() and force:
            (directory / CONFIG_FILE).unlink()
        text = _strip_tool_table(target.read_text(encoding="utf-8"))
        if text is None:
            raise UsageError(f"{target}: not valid TOML", "fix it, then run lambdaship init again")
        doc = tomlkit.parse(text)
        tool = doc.get("tool")
        if tool is None:
            doc.add("tool", tomlkit.table(is_super_table=True))
            tool = doc["tool"]
        tool.add("lambdaship", render(directory, found, tomlkit.table()))
        _write(target, tomlkit.dumps(doc))
    return InitResult(target, True, None, "written", functions={k: d for k, (_, d) in found.items()})
