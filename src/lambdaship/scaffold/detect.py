"""What ``lambdaship init`` detects in an app directory, statically (``ast`` and ``tomllib``; the app's
code is never imported):

- a Chalice app: ``app.py`` with ``app = Chalice(...)`` → handler ``app.app``;
- otherwise a module with a top-level ``def handler(event, context)`` or ``lambda_handler``;
- dependencies: ``uv.lock`` > ``requirements.txt`` > ``[project].dependencies`` in pyproject.toml;
- Python: ``.python-version`` > ``requires-python`` > the default (``lambdaship.platform.DEFAULT_PYTHON``).
"""

from __future__ import annotations

import ast
import json
import operator
import re
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from lambdaship.config import PYPROJECT, RESERVED_ENV
from lambdaship.errors import ConfigError, LambdashipError, UsageError
from lambdaship.patterns import ENV_KEY_RE, FUNCTION_NAME_RE
from lambdaship.platform import DEFAULT_PYTHON, SUPPORTED_PYTHONS

HANDLER_NAMES = ("handler", "lambda_handler")


# Preferred files when several define a handler, in order.
PREFERRED_MODULES = ("lambda_function", "handler", "app", "main", "function")
SKIP_FILES = {"setup.py", "conftest.py", "noxfile.py", "fabfile.py", "manage.py"}
SMOKE_PATHS = ("/health", "/healthz", "/ping", "/status", "/")


@dataclass
class Detected:
    kind: str  # "chalice" | "handler"
    function_name: str
    handler: str
    python: str
    python_from: str
    requirements: str | None
    requirements_from: str
    other_handlers: list[str] = field(default_factory=list)
    environment: dict[str, str] = field(default_factory=dict)
    skipped_environment: list[str] = field(default_factory=list)
    memory: int | None = None
    timeout: int | None = None
    smoke_path: str | None = None

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["environment"] = sorted(self.environment)  # names only: values may be sensitive
        return data


def _parse(path: Path) -> ast.Module | None:
    try:
        return ast.parse(path.read_text(encoding="utf-8", errors="replace"), filename=str(path))
    except (SyntaxError, ValueError, OSError):
        return None


def _chalice_app(tree: ast.Module) -> tuple[bool, str | None]:
    """(``app = Chalice(...)`` at top level, its app_name if a literal)."""
    for node in tree.body:
        if not (isinstance(node, ast.Assign) and isinstance(node.value, ast.Call)):
            continue
        if not any(isinstance(t, ast.Name) and t.id == "app" for t in node.targets):
            continue
        func = node.value.func
        name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None
        if name != "Chalice":
            continue
        app_name = None
        for kw in node.value.keywords:
            if kw.arg == "app_name" and isinstance(kw.value, ast.Constant) and isinstance(kw.value.value, str):
                app_name = kw.value.value
        if app_name is None and node.value.args:
            first = node.value.args[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                app_name = first.value
        return True, app_name
    return False, None


def _chalice_routes(tree: ast.Module) -> set[str]:
    """GET routes without path parameters (candidates for the smoke test)."""
    routes: set[str] = set()
    for node in tree.body:
        if not isinstance(node, ast.FunctionDef):
            continue
        for dec in node.decorator_list:
            if not (isinstance(dec, ast.Call) and isinstance(dec.func, ast.Attribute) and dec.func.attr == "route"):
                continue
            if not (dec.args and isinstance(dec.args[0], ast.Constant) and isinstance(dec.args[0].value, str)):
                continue
            methods = ["GET"]
            for kw in dec.keywords:
                if kw.arg == "methods" and isinstance(kw.value, ast.List | ast.Tuple):
                    methods = [e.value for e in kw.value.elts if isinstance(e, ast.Constant)]
            path = dec.args[0].value
            if "GET" in methods and "{" not in path:
                routes.add(path)
    return routes


def _handler_functions(tree: ast.Module) -> list[str]:
    found = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name in HANDLER_NAMES:
            args = node.args
            if len(args.posonlyargs) + len(args.args) == 2 or args.vararg is not None:
                found.append(node.name)
    return found


def find_handlers(directory: Path) -> list[str]:
    """Every ``module.function`` handler candidate in the directory's own .py files, best first."""
    candidates: list[tuple[int, str, str]] = []
    for path in sorted(directory.glob("*.py")):
        if path.name in SKIP_FILES or path.name.startswith("test_") or path.stem.endswith("_test"):
            continue
        if not path.stem.isidentifier():
            continue
        tree = _parse(path)
        if tree is None:
            continue
        for fn in _handler_functions(tree):
            rank = PREFERRED_MODULES.index(path.stem) if path.stem in PREFERRED_MODULES else len(PREFERRED_MODULES)
            candidates.append((rank * 2 + HANDLER_NAMES.index(fn), path.stem, f"{path.stem}.{fn}"))
    candidates.sort()
    return [c[2] for c in candidates]


def read_pyproject(directory: Path) -> dict[str, Any]:
    path = directory / PYPROJECT
    if not path.is_file():
        return {}
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, OSError) as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}", "fix the file, then run lambdaship init again") from None


_OPS = {
    ">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt,
    "==": operator.eq, "!=": operator.ne,
}


def _version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", text)[:3])


def python_satisfies(spec: str, minor: str) -> bool:
    """Whether some 3.<minor>.<patch> satisfies a PEP 440 ``requires-python`` specifier."""
    clauses = [c.strip() for c in spec.split(",") if c.strip()]
    major_minor = _version_tuple(minor)
    for patch in range(0, 60):
        version = (*major_minor, patch)
        if all(_clause_ok(c, version) for c in clauses):
            return True
    return False


def _clause_ok(clause: str, version: tuple[int, ...]) -> bool:
    m = re.match(r"^(~=|===|==|!=|>=|<=|>|<)\s*([0-9][0-9.]*)(\.\*)?$", clause)
    if not m:
        return True  # unknown syntax: do not rule the version out
    op, raw, wildcard = m.groups()
    want = _version_tuple(raw)
    if wildcard:  # ==3.12.* / !=3.11.*
        match = version[: len(want)] == want
        return match if op == "==" else not match
    if op == "~=":
        prefix = want[:-1]
        return version >= want + (0,) * (3 - len(want)) and version[: len(prefix)] == prefix
    if op == "===":
        op = "=="
    padded = want + (0,) * (3 - len(want))
    if op in ("==", "!=") and len(want) < 3:
        # "==3.12" means 3.12.0 in PEP 440
        return _OPS[op](version, padded)
    return _OPS[op](version, padded)


def detect_python(directory: Path, pyproject: dict[str, Any]) -> tuple[str, str]:
    pv = directory / ".python-version"
    if pv.is_file():
        for line in pv.read_text(encoding="utf-8", errors="replace").splitlines():
            line = line.split("#", 1)[0].strip()
            m = re.search(r"(3\.\d+)", line)
            if m:
                if m.group(1) not in SUPPORTED_PYTHONS:
                    raise ConfigError(
                        f"{pv}: Python {m.group(1)} is not a Lambda Python runtime",
                        f"use one of {', '.join(SUPPORTED_PYTHONS)}, or pass --python",
                    )
                return m.group(1), ".python-version"
    spec = pyproject.get("project", {}).get("requires-python")
    if isinstance(spec, str) and spec.strip():
        ok = [v for v in SUPPORTED_PYTHONS if python_satisfies(spec, v)]
        if not ok:
            raise ConfigError(
                f"{directory / PYPROJECT}: requires-python {spec!r} allows no Lambda Python runtime",
                f"Lambda runs {', '.join(SUPPORTED_PYTHONS)}; pass --python",
            )
        return (DEFAULT_PYTHON if DEFAULT_PYTHON in ok else ok[-1]), "requires-python"
    return DEFAULT_PYTHON, "default"


UV_LOCK_EXPORT = "requirements.lock.txt"
PYPROJECT_EXPORT = "requirements.txt"


def detect_requirements(directory: Path, pyproject: dict[str, Any]) -> tuple[str | None, str]:
    """(requirements file the config names, where the dependencies come from).

    The builder installs from a requirements file, so a uv.lock is exported to
    ``requirements.lock.txt`` and pyproject dependencies are written to ``requirements.txt``
    (see ``export_requirements``).
    """
    if (directory / "uv.lock").is_file():
        return UV_LOCK_EXPORT, "uv.lock"
    if (directory / "requirements.txt").is_file():
        return "requirements.txt", "requirements.txt"
    deps = pyproject.get("project", {}).get("dependencies")
    if isinstance(deps, list) and deps:
        return PYPROJECT_EXPORT, "pyproject.toml [project].dependencies"
    return None, "none found"


def export_requirements(directory: Path, detected: Detected, pyproject: dict[str, Any]) -> str | None:
    """Text of the requirements file to create, or None when the config names an existing file."""
    if detected.requirements_from == "uv.lock":
        import subprocess

        from uv import find_uv_bin

        cmd = [find_uv_bin(), "export", "--frozen", "--no-dev", "--no-emit-project", "--no-hashes", "--no-header",
               "--quiet"]
        proc = subprocess.run(cmd, cwd=directory, capture_output=True, text=True)
        if proc.returncode != 0:
            raise LambdashipError(
                f"uv export of {directory / 'uv.lock'} failed: {(proc.stderr.strip().splitlines() or [''])[-1]}",
                "run 'uv lock' to bring the lock file up to date, then run lambdaship init again",
            )
        return (
            "# Exported from uv.lock by `lambdaship init`; after changing uv.lock run:\n"
            f"#   uv export --frozen --no-dev --no-emit-project --no-hashes -o {UV_LOCK_EXPORT}\n"
            + proc.stdout
        )
    if detected.requirements_from.startswith("pyproject.toml"):
        deps = pyproject.get("project", {}).get("dependencies", [])
        return (
            "# From [project].dependencies in pyproject.toml, written by `lambdaship init`.\n"
            "# Pin exact versions (name==1.2.3) for reproducible images.\n"
            + "".join(f"{d}\n" for d in deps)
        )
    return None


def sanitize_name(name: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9_-]+", "-", name).strip("-_")[:64]
    return cleaned or "function"


def _chalice_config(directory: Path) -> tuple[dict[str, str], list[str], int | None, int | None]:
    """Environment, skipped placeholder names, memory and timeout from .chalice/config.json (dev stage)."""
    path = directory / ".chalice" / "config.json"
    if not path.is_file():
        return {}, [], None, None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, OSError):
        return {}, [], None, None
    if not isinstance(data, dict):
        return {}, [], None, None
    stage = data.get("stages", {}).get("dev", {}) if isinstance(data.get("stages"), dict) else {}
    env: dict[str, str] = {}
    skipped: list[str] = []
    for source in (data, stage if isinstance(stage, dict) else {}):
        for k, v in (source.get("environment_variables") or {}).items():
            if not isinstance(v, str | int | float | bool):
                continue
            text = str(v)
            if not ENV_KEY_RE.match(k) or k in RESERVED_ENV:
                continue
            if "${" in text:  # a placeholder for a secret: belongs in Secrets Manager/SSM
                skipped.append(k)
                env.pop(k, None)
                continue
            env[k] = text
    memory = timeout = None
    for source in (data, stage if isinstance(stage, dict) else {}):
        if isinstance(source.get("lambda_memory_size"), int):
            memory = source["lambda_memory_size"]
        if isinstance(source.get("lambda_timeout"), int):
            timeout = source["lambda_timeout"]
    return env, sorted(set(skipped)), memory, timeout


def detect(
    directory: Path,
    *,
    function_name: str | None = None,
    handler: str | None = None,
    python: str | None = None,
) -> Detected:
    pyproject = read_pyproject(directory)
    app_py = directory / "app.py"
    tree = _parse(app_py) if app_py.is_file() else None
    is_chalice, app_name = _chalice_app(tree) if tree is not None else (False, None)
    env: dict[str, str] = {}
    skipped: list[str] = []
    memory = timeout = None
    smoke = None
    others: list[str] = []
    if is_chalice:
        kind = "chalice"
        detected_handler = "app.app"
        env, skipped, memory, timeout = _chalice_config(directory)
        routes = _chalice_routes(tree) if tree is not None else set()
        smoke = next((p for p in SMOKE_PATHS if p in routes), None)
    else:
        kind = "handler"
        candidates = find_handlers(directory)
        if handler is None and not candidates:
            raise UsageError(
                f"no Lambda handler found in {directory}: no Chalice app in app.py and no top-level "
                f"'def handler(event, context)' or 'def lambda_handler(event, context)' in its .py files",
                "pass --handler module.function",
            )
        detected_handler = candidates[0] if candidates else ""
        others = candidates[1:]
    if handler is not None:
        detected_handler = handler
    name = function_name or app_name or pyproject.get("project", {}).get("name") or directory.name
    name = name if function_name else sanitize_name(str(name))
    if not FUNCTION_NAME_RE.match(name):
        raise UsageError(
            f"{name!r} is not a valid Lambda function name", "use 1-64 letters, digits, '-' or '_' (--function-name)"
        )
    if python is not None:
        py, py_from = python.removeprefix("python"), "--python"
        if py not in SUPPORTED_PYTHONS:
            raise UsageError(f"{python!r} is not a Lambda Python runtime", f"use one of {', '.join(SUPPORTED_PYTHONS)}")
    else:
        py, py_from = detect_python(directory, pyproject)
    req, req_from = detect_requirements(directory, pyproject)
    return Detected(
        kind=kind, function_name=name, handler=detected_handler, python=py, python_from=py_from,
        requirements=req, requirements_from=req_from, other_handlers=others, environment=env,
        skipped_environment=skipped, memory=memory, timeout=timeout, smoke_path=smoke,
    )
