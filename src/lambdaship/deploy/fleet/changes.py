"""Change detection for ``deploy --all --changed-since REF``: which functions changed, and why.

Change detection (:func:`detect_changes`) compares the working tree with the merge base of
``REF`` and ``HEAD`` (``git diff --name-only --no-renames <merge-base>`` plus untracked,
non-ignored files): what a deploy builds is the working tree, so uncommitted edits count too
(in CI the tree is clean and this is exactly ``REF...HEAD``). A function changed when one of
these is touched, each giving a reason:

- its config: the parsed :class:`~lambdaship.config.FunctionConfig` at the merge base
  (``git show <base>:<config file>``) differs from the current one → ``config changed: memory``;
- its requirements file (or a ``-r``/``-c`` file it includes) → ``dependency set changed: …``;
- a file under its ``source`` that goes into the image (its include/exclude rules apply) →
  ``source changed: services/a/app.py``;
- one of its ``shared`` paths → ``shared code changed: …``;
- a local module its code imports from outside its source directory, resolved statically with
  ``ast`` against the project root, transitively → ``shared code changed: common/util.py``.
"""

from __future__ import annotations

import ast
import subprocess
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from lambdaship.config import PYPROJECT, FunctionConfig, Project
from lambdaship.errors import LambdashipError, UsageError


# -- git ------------------------------------------------------------------------------------------
def _git(root: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    try:
        proc = subprocess.run(
            ["git", "-c", "core.quotepath=off", "-C", str(root), *args],
            capture_output=True, text=True, timeout=120,
        )
    except FileNotFoundError:
        raise LambdashipError("git is not installed", "--changed-since needs git on the PATH") from None
    if check and proc.returncode != 0:
        raise LambdashipError(f"git {' '.join(args)} failed: {proc.stderr.strip().splitlines()[-1:]}")
    return proc


def git_root(path: Path) -> Path:
    proc = _git(path, "rev-parse", "--show-toplevel", check=False)
    if proc.returncode != 0:
        raise UsageError(f"{path} is not inside a git repository", "--changed-since compares git commits")
    return Path(proc.stdout.strip()).resolve()


def merge_base(repo: Path, ref: str) -> str:
    """The commit ``REF...HEAD`` diffs from; a usage error when ``ref`` is unknown."""
    if ref.startswith("-"):
        raise UsageError(f"--changed-since {ref!r} is not a git ref")
    proc = _git(repo, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", check=False)
    if proc.returncode != 0:
        raise UsageError(
            f"--changed-since {ref}: no such commit in {repo}",
            "fetch the history (actions/checkout with fetch-depth: 0) or omit --changed-since to deploy all",
        )
    commit = proc.stdout.strip()
    proc = _git(repo, "merge-base", commit, "HEAD", check=False)
    if proc.returncode != 0:
        raise UsageError(
            f"--changed-since {ref}: no common history with HEAD",
            "omit --changed-since to deploy all",
        )
    return proc.stdout.strip()


def changed_files(repo: Path, base: str, *, worktree: bool = True) -> set[str]:
    """Paths (relative to the repository root, '/'-separated) changed since commit ``base``.

    ``worktree``: compare the working tree (staged, unstaged and untracked files included) rather
    than ``HEAD``.
    """
    args = ["diff", "--name-only", "--no-renames", "-z", base]
    if not worktree:
        args.append("HEAD")
    out = set(filter(None, _git(repo, *args).stdout.split("\0")))
    if worktree:
        out |= set(filter(None, _git(repo, "ls-files", "--others", "--exclude-standard", "-z").stdout.split("\0")))
    return out


# -- decisions ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Decision:
    key: str
    function_name: str
    changed: bool
    reasons: tuple[str, ...] = ()

    @property
    def reason(self) -> str:
        return "; ".join(self.reasons) if self.reasons else "unchanged"

    def to_json(self) -> dict[str, Any]:
        return {"key": self.key, "function": self.function_name, "changed": self.changed,
                "reason": self.reason, "reasons": list(self.reasons)}


def _rel(path: Path, root: Path) -> str | None:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return None


def in_image(fn: FunctionConfig, rel: str) -> bool:
    """Would a file at ``rel`` (relative to ``fn.source``) go into the image? The rules of
    :func:`lambdaship.project.app_files`, applied to a path that may no longer exist."""
    from lambdaship.project import DEFAULT_EXCLUDES, matches_within

    excludes = (*DEFAULT_EXCLUDES, *fn.exclude)
    includes = tuple(p.strip().lstrip("/").removeprefix("./") for p in fn.include if p.strip())
    return matches_within(rel, includes) or not matches_within(rel, excludes)


def _requirement_paths(fn: FunctionConfig) -> list[Path]:
    from lambdaship.scaffold.dockerfile import requirement_files

    req = (fn.source / fn.requirements).resolve() if fn.requirements else fn.source / "requirements.txt"
    return requirement_files(req) if req.is_file() else [req.resolve()]


def _env_file(fn: FunctionConfig) -> Path | None:
    from lambdaship.deploy.env import env_file_path

    return env_file_path(fn, None)


def _config_tables(text: str, name: str) -> tuple[dict[str, Any], dict[str, Any] | None]:
    data = tomllib.loads(text)
    if name == PYPROJECT:
        data = data.get("tool", {}).get("lambdaship", {})
        if not isinstance(data, dict):
            data = {}
    table = dict(data)
    functions = table.pop("functions", None)
    return table, functions if isinstance(functions, dict) else None


def config_at(project: Project, repo: Path, commit: str) -> dict[str, FunctionConfig | str] | None:
    """Every function's config as it was at ``commit`` (a string when it did not validate), or
    None when the config file did not exist there."""
    if project.config_file is None:
        return None
    rel = _rel(project.config_file.resolve(), repo)
    if rel is None:
        return None
    proc = _git(repo, "show", f"{commit}:{rel}", check=False)
    if proc.returncode != 0:
        return None
    try:
        table, functions = _config_tables(proc.stdout, project.config_file.name)
    except tomllib.TOMLDecodeError:
        return {key: "config was not valid TOML" for key in project.functions}
    subs = functions if functions is not None else {
        str(table.get("function_name") or project.root.name): {}
    }
    out: dict[str, FunctionConfig | str] = {}
    for key, sub in subs.items():
        if not isinstance(sub, dict):
            out[key] = "config was not a table"
            continue
        data = {**table, **sub}
        data.setdefault("function_name", key)
        data["source"] = (project.root / Path(data.get("source", "."))).resolve()
        data["root"] = project.root.resolve()
        data["key"] = key
        try:
            out[key] = FunctionConfig.model_validate(data)
        except ValidationError as exc:
            out[key] = f"config was invalid ({exc.errors()[0]['msg']})"
    return out


def config_changes(old: FunctionConfig, new: FunctionConfig) -> list[str]:
    """Names of the settings that differ (``key`` aside)."""
    a, b = old.model_dump(), new.model_dump()
    return [k for k in b if k != "key" and a.get(k) != b.get(k)]


# -- static imports -------------------------------------------------------------------------------
def _imported(tree: ast.AST, file: Path) -> list[tuple[str, Path | None]]:
    """``(dotted module, anchor)``: anchor None for absolute imports, else the directory a relative
    import starts from."""
    out: list[tuple[str, Path | None]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.extend((a.name, None) for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            anchor = None
            if node.level:
                anchor = file.parent
                for _ in range(node.level - 1):
                    anchor = anchor.parent
            base = node.module or ""
            if base:
                out.append((base, anchor))
            for a in node.names:
                if a.name != "*":
                    out.append((f"{base}.{a.name}" if base else a.name, anchor))
    return out


def _candidates(root: Path, dotted: str) -> list[Path]:
    """Files importing ``dotted`` from ``root`` may execute: each package's ``__init__.py`` and the
    module itself (as ``.py`` or a package)."""
    parts = [p for p in dotted.split(".") if p]
    out: list[Path] = []
    for i in range(1, len(parts)):
        out.append(root.joinpath(*parts[:i], "__init__.py"))
    if parts:
        out.append(root.joinpath(*parts[:-1], f"{parts[-1]}.py"))
        out.append(root.joinpath(*parts, "__init__.py"))
    return out


def local_imports(fn: FunctionConfig, project_root: Path) -> dict[Path, str]:
    """Files outside ``fn.source`` that the function's code imports (transitively), resolved as
    Lambda would if they were on the path after the task root: a top-level name the source
    directory provides is the source's. Maps the (possibly deleted) file to the module name."""
    from lambdaship.project import app_files

    source = fn.source.resolve()
    root = project_root.resolve()
    found: dict[Path, str] = {}
    queue: list[Path] = [p.resolve() for rel, p in app_files(fn) if rel.endswith(".py") and p.is_file()]
    seen: set[Path] = set(queue)

    def provided_by_source(top: str) -> bool:
        return (source / f"{top}.py").exists() or (source / top).is_dir()

    while queue:
        file = queue.pop()
        try:
            tree = ast.parse(file.read_bytes(), filename=str(file))
        except (SyntaxError, OSError, ValueError):
            continue
        for dotted, anchor in _imported(tree, file):
            if anchor is None:
                top = dotted.split(".", 1)[0]
                if source != root and provided_by_source(top):
                    continue
                base = root
            else:
                base = anchor
            for cand in _candidates(base, dotted):
                cand = cand.resolve() if cand.exists() else cand
                if _rel(cand, source) is not None or _rel(cand, root) is None:
                    continue
                found.setdefault(cand, dotted if anchor is None else f"relative {dotted}")
                if cand.is_file() and cand not in seen:
                    seen.add(cand)
                    queue.append(cand)
    return found


# -- change detection -----------------------------------------------------------------------------
def decide(
    fn: FunctionConfig,
    project: Project,
    repo: Path,
    changed: set[str],
    old: FunctionConfig | str | None,
    *,
    config_existed: bool = True,
) -> Decision:
    """One function's decision given the changed paths (relative to ``repo``) and its old config."""
    reasons: list[str] = []
    if not config_existed:
        return Decision(fn.key, fn.function_name, True, ("new: no config at the compared commit",))
    if old is None:
        return Decision(fn.key, fn.function_name, True, ("new function (not in the config at the compared commit)",))
    if isinstance(old, str):
        reasons.append(f"config changed: {old} at the compared commit")
    else:
        diff = config_changes(old, fn)
        if diff:
            reasons.append(f"config changed: {', '.join(diff)}")
    paths = {(repo / p): p for p in sorted(changed)}
    req_paths = {p.resolve() if p.exists() else p for p in _requirement_paths(fn)}
    deps = [paths[p] for p in paths if p in req_paths]
    if deps:
        reasons.append(f"dependency set changed: {', '.join(deps)}")
    env_path = _env_file(fn)
    if env_path is not None and env_path in paths:
        reasons.append(f"environment file changed: {paths[env_path]}")
    source = fn.source.resolve()
    src = []
    for p, shown in paths.items():
        rel = _rel(p, source)
        if rel is not None and p not in req_paths and p != env_path and in_image(fn, rel):
            src.append(shown)
    if src:
        reasons.append(f"source changed: {_few(src)}")
    shared: list[str] = []
    for entry in fn.shared:
        target = (project.root / entry).resolve()
        shared += [shown for p, shown in paths.items() if p == target or _rel(p, target) is not None]
    imports = local_imports(fn, project.root) if any(_rel(p, source) is None for p in paths) else {}
    shared += [shown for p, shown in paths.items() if p in imports and shown not in shared]
    if shared:
        reasons.append(f"shared code changed: {_few(shared)}")
    return Decision(fn.key, fn.function_name, bool(reasons), tuple(reasons))


def _few(items: list[str], n: int = 3) -> str:
    items = sorted(dict.fromkeys(items))
    more = f" (+{len(items) - n} more)" if len(items) > n else ""
    return ", ".join(items[:n]) + more


def detect_changes(project: Project, ref: str | None, *, worktree: bool = True) -> list[Decision]:
    """A decision for every function of ``project`` (in config order). ``ref`` None: all changed."""
    fns = list(project.functions.values())
    if ref is None:
        return [Decision(fn.key, fn.function_name, True, ("no --changed-since: deploying every function",))
                for fn in fns]
    repo = git_root(project.root)
    base = merge_base(repo, ref)
    changed = changed_files(repo, base, worktree=worktree)
    olds = config_at(project, repo, base)
    return [
        decide(fn, project, repo, changed, None if olds is None else olds.get(fn.key), config_existed=olds is not None)
        for fn in fns
    ]
