"""``lambdaship init``: write the configuration for what ``scaffold.detect`` found in an app directory.

The config goes to ``lambdaship.toml``, or — when the directory has a pyproject.toml — into a
``[tool.lambdaship]`` table appended to it (the rest of the file is left byte for byte).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lambdaship.config import CONFIG_FILE, PYPROJECT, find_config
from lambdaship.errors import LambdashipError, UsageError
from lambdaship.platform import DEFAULT_ARCHITECTURE, Architecture
from lambdaship.scaffold.detect import Detected, detect, export_requirements, read_pyproject


# ---- rendering ---------------------------------------------------------------------------------
def _q(value: str) -> str:
    """A TOML basic string."""
    return json.dumps(value, ensure_ascii=False)


def render_table(d: Detected, *, prefix: str = "") -> str:
    """The configuration as TOML; ``prefix`` is ``"tool.lambdaship"`` inside pyproject.toml."""
    head = f"[{prefix}]\n" if prefix else ""
    sub = f"{prefix}." if prefix else ""
    lines = [head.rstrip("\n")] if head else []
    lines += [
        "# lambdaship configuration, written by `lambdaship init`.",
        f"# Detected: {'a Chalice app' if d.kind == 'chalice' else 'a handler module'}; "
        f"Python from {d.python_from}; dependencies from {d.requirements_from}.",
    ]
    lines += [
        f"function_name = {_q(d.function_name)}",
        f"handler = {_q(d.handler)}",
        f"python = {_q(d.python)}",
        f"architecture = {_q(DEFAULT_ARCHITECTURE.value):<17}# or "
        + " or ".join(_q(a.value) for a in Architecture if a is not DEFAULT_ARCHITECTURE),
        f"memory = {d.memory or 512}",
        f"timeout = {d.timeout or 30}",
        'alias = "live"',
    ]
    if d.requirements:
        lines.append(f"requirements = {_q(d.requirements)}")
    lines += [
        '# role = "arn:aws:iam::123456789012:role/NAME-lambdaship-exec"   # see `lambdaship iam`',
        "# exclude = []                   # extra paths to leave out of the image",
    ]
    if d.environment:
        lines += ["", f"[{sub}environment]"]
        lines += [f"{k} = {_q(v)}" for k, v in sorted(d.environment.items())]
    else:
        lines += ["", f"# [{sub}environment]", '# STAGE = "dev"']
    if d.skipped_environment:
        lines.append(
            "# Not copied (placeholders for secrets): "
            + ", ".join(d.skipped_environment)
            + " — keep them in Secrets Manager or SSM:"
        )
    lines += [
        "",
        f"# [[{sub}secrets]]",
        '# secretsmanager = "my-app/prod"    # a JSON object of NAME = value',
        "",
    ]
    if d.smoke_path:
        lines += ["# Checked on the new version before the alias moves.", f"[{sub}smoke]", f"path = {_q(d.smoke_path)}"]
    else:
        lines += [
            "# Checked on the new version before the alias moves:",
            f"# [{sub}smoke]",
            "# event = {}                     # or: path = \"/health\" for an HTTP app",
        ]
    return "\n".join(lines) + "\n"


@dataclass
class InitResult:
    config_file: Path
    changed: bool
    detected: Detected | None
    reason: str
    generated: list[Path] = field(default_factory=list)
    functions: dict[str, Detected] = field(default_factory=dict)  # a monorepo: one per [functions.<key>]

    def as_dict(self) -> dict[str, Any]:
        return {
            **({"functions": {k: d.as_dict() for k, d in self.functions.items()}} if self.functions else {}),
            "config_file": str(self.config_file),
            "changed": self.changed,
            "reason": self.reason,
            "generated": [str(p) for p in self.generated],
            "detected": self.detected.as_dict() if self.detected else None,
            "next_steps": next_steps() if self.changed else [],
        }


def next_steps() -> list[str]:
    return [
        "lambdaship build            # build the image locally, no Docker needed",
        "lambdaship deploy           # push, update the function by digest, smoke-test, move the alias",
        "lambdaship ci github        # a GitHub Actions workflow that deploys on push (OIDC, no keys)",
        "lambdaship iam --github-repo OWNER/REPO   # the IAM roles and policies that workflow needs",
    ]


def _strip_tool_table(text: str) -> str | None:
    """``text`` without its ``[tool.lambdaship]`` tables (tomlkit: the rest keeps its formatting),
    or None when the file does not parse."""
    import tomlkit
    from tomlkit.exceptions import TOMLKitError

    try:
        doc = tomlkit.parse(text)
    except TOMLKitError:
        return None
    tool = doc.get("tool")
    if tool is not None and "lambdaship" in tool:
        del tool["lambdaship"]
        if not tool:
            del doc["tool"]
    return tomlkit.dumps(doc).rstrip("\n") + "\n"


def run_init(
    directory: Path,
    *,
    force: bool = False,
    function_name: str | None = None,
    handler: str | None = None,
    python: str | None = None,
    config_file: str | None = None,
) -> InitResult:
    directory = directory.resolve()
    if not directory.is_dir():
        raise UsageError(f"{directory}: no such directory", "pass the app's directory")
    existing = find_config(directory)
    if existing is not None and not force:
        return InitResult(existing, False, None, "already configured; use --force to rewrite")
    if config_file not in (None, CONFIG_FILE, PYPROJECT):
        raise UsageError(f"--config-file must be {CONFIG_FILE} or {PYPROJECT}, not {config_file!r}")
    pyproject = directory / PYPROJECT
    # --force rewrites the config where it is; a new one goes into pyproject.toml when there is one
    default_name = existing.name if existing is not None else (PYPROJECT if pyproject.is_file() else CONFIG_FILE)
    target_name = config_file or default_name
    try:
        detected = detect(directory, function_name=function_name, handler=handler, python=python)
    except UsageError:
        monorepo = None if handler or function_name else _monorepo(
            directory, python, existing=existing, target_name=target_name, force=force)
        if monorepo is None:
            raise
        return monorepo
    generated = _write_requirements(directory, detected, force)
    if target_name == CONFIG_FILE:
        target = directory / CONFIG_FILE
        if existing is not None and existing != target:
            # --force with the config in pyproject: do not leave two configs behind
            _remove_pyproject_table(existing)
        _write(target, render_table(detected))
    else:
        target = _write_pyproject(directory, detected, existing, force)
        if target != directory / PYPROJECT:
            return InitResult(target, False, None, "already configured")
    return InitResult(target, True, detected, "written", generated)


def _monorepo(directory: Path, python: str | None, **kwargs: Any) -> InitResult | None:
    """No handler at the top: one [functions.<key>] table per function directory (None: none)."""
    from lambdaship.scaffold.monorepo import function_dirs, write_monorepo

    found = function_dirs(directory, python=python)
    return write_monorepo(directory, found, **kwargs) if found else None


def _write_requirements(directory: Path, detected: Detected, force: bool) -> list[Path]:
    """The requirements file exported from uv.lock / pyproject (when that is where they come from)."""
    exported = export_requirements(directory, detected, read_pyproject(directory))
    generated: list[Path] = []
    if exported is not None and detected.requirements:
        req_path = directory / detected.requirements
        if req_path.exists() and req_path.read_text(encoding="utf-8", errors="replace") != exported and not force:
            raise LambdashipError(
                f"{req_path} exists and differs from the dependencies in {detected.requirements_from}",
                "nothing was written; use --force to overwrite it",
            )
        if not req_path.exists() or req_path.read_text(encoding="utf-8", errors="replace") != exported:
            _write(req_path, exported)
            generated.append(req_path)
    return generated


def _write_pyproject(directory: Path, detected: Detected, existing: Path | None, force: bool) -> Path:
    """The config as a ``[tool.lambdaship]`` table appended to pyproject.toml (an old one replaced);
    the file written, or the lambdaship.toml that is already there (nothing written)."""
    pyproject = directory / PYPROJECT
    if not pyproject.is_file():
        raise UsageError(f"{pyproject} does not exist", f"leave out --config-file to write {CONFIG_FILE}")
    if (directory / CONFIG_FILE).is_file():
        if not force:  # pragma: no cover - find_config returned it above
            return directory / CONFIG_FILE
        (directory / CONFIG_FILE).unlink()
    text = pyproject.read_text(encoding="utf-8")
    if existing == pyproject:
        stripped = _strip_tool_table(text)
        if stripped is None:
            raise LambdashipError(
                f"{pyproject}: cannot remove the existing lambdaship settings safely",
                "delete the [tool.lambdaship] tables by hand, then run lambdaship init again",
            )
        text = stripped
    sep = "" if text.endswith("\n\n") or not text else ("\n" if text.endswith("\n") else "\n\n")
    _write(pyproject, text + sep + render_table(detected, prefix="tool.lambdaship"))
    return pyproject


def _remove_pyproject_table(path: Path) -> None:
    stripped = _strip_tool_table(path.read_text(encoding="utf-8"))
    if stripped is None:
        raise LambdashipError(
            f"{path}: cannot remove the existing lambdaship settings safely",
            "delete the [tool.lambdaship] tables by hand, then run lambdaship init again",
        )
    _write(path, stripped)


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".lambdaship-tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
