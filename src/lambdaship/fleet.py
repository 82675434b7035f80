"""Many functions in one project: what changed since a git ref, deploy those in parallel, fleet status.

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

:func:`deploy_all` runs :func:`lambdaship.deploy.pipeline.ship` for the changed functions on a
bounded thread pool (one process: the dependency cache, the layer/blob cache and the boto3 set-up
are shared). A failure is recorded for that function only; nothing is rolled back elsewhere.

:func:`status_all` reads every function's state, alias and deployed digest, plus CloudWatch
metrics over a window (:mod:`lambdaship.aws.cloudwatch`).
"""

from __future__ import annotations

import ast
import re
import subprocess
import threading
import time
import tomllib
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from lambdaship.config import PYPROJECT, FunctionConfig, Project
from lambdaship.errors import LambdashipError, UsageError

DEFAULT_WORKERS = 2
MAX_WORKERS = 16
Event = Callable[[str, str], None]  # (function key, message)


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
    from lambdaship.project import DEFAULT_EXCLUDES, _matches

    excludes = (*DEFAULT_EXCLUDES, *fn.exclude)
    includes = [p.strip().lstrip("/").removeprefix("./") for p in fn.include if p.strip()]
    parts = rel.split("/")

    def hit(patterns: Iterable[str]) -> bool:
        pats = list(patterns)
        return any(_matches("/".join(parts[: i + 1]), pats) for i in range(len(parts)))

    return hit(includes) or not hit(excludes)


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


# -- parallel deploy ------------------------------------------------------------------------------
@dataclass
class FleetEntry:
    key: str
    function_name: str
    status: str  # deployed | up_to_date | failed | skipped | would_deploy
    reason: str
    version: str | None = None
    previous_version: str | None = None
    digest: str | None = None
    error: str | None = None
    seconds: float | None = None
    image_uri: str | None = None
    created: bool = False
    steps: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key, "function": self.function_name, "status": self.status, "reason": self.reason,
            "version": self.version, "previous_version": self.previous_version, "digest": self.digest,
            "error": self.error, "seconds": None if self.seconds is None else round(self.seconds, 2),
            "image_uri": self.image_uri, "created": self.created, "steps": self.steps,
        }


@dataclass
class FleetResult:
    entries: list[FleetEntry]
    changed_since: str | None
    base: str | None
    dry_run: bool
    workers: int
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not any(e.status == "failed" for e in self.entries)

    def count(self, status: str) -> int:
        return sum(e.status == status for e in self.entries)

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok, "dry_run": self.dry_run, "changed_since": self.changed_since, "base": self.base,
            "workers": self.workers, "seconds": round(self.seconds, 2),
            "counts": {s: self.count(s) for s in ("deployed", "up_to_date", "failed", "skipped", "would_deploy")},
            "functions": [e.to_json() for e in self.entries],
        }


def one_line(exc: BaseException) -> str:
    """A failure as the one line the CLI would print for it."""
    if isinstance(exc, LambdashipError):
        return exc.one_line()
    try:
        from botocore.exceptions import BotoCoreError, ClientError
    except ImportError:  # pragma: no cover
        BotoCoreError = ClientError = ()  # type: ignore[misc,assignment]
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        return f"AWS {exc.operation_name} failed: {err.get('Code')}: {err.get('Message')}"
    if isinstance(exc, BotoCoreError):
        return f"AWS error: {exc}"
    text = " ".join(str(exc).split()) or "no message"
    return f"{type(exc).__name__}: {text}"


def check_workers(workers: int) -> int:
    if not 1 <= workers <= MAX_WORKERS:
        raise UsageError(f"--workers {workers}: must be between 1 and {MAX_WORKERS}")
    return workers


def deploy_all(
    project: Project,
    *,
    changed_since: str | None = None,
    workers: int = DEFAULT_WORKERS,
    dry_run: bool = False,
    worktree: bool = True,
    on_event: Event | None = None,
    ship: Callable[..., Any] | None = None,
    **options: Any,
) -> FleetResult:
    """Deploy the functions that changed since ``changed_since`` (all when None), ``workers`` at a
    time. ``dry_run``: decide only (no build, no AWS call). ``ship``: the deploy of one function
    (default :func:`lambdaship.deploy.pipeline.ship`); ``options`` go to it for every function
    (``create_role``, ``skip_smoke``, ``create_bucket``)."""
    check_workers(workers)
    t0 = time.monotonic()
    decisions = detect_changes(project, changed_since, worktree=worktree)
    base = None
    if changed_since is not None:
        base = merge_base(git_root(project.root), changed_since)
    entries = {
        d.key: FleetEntry(d.key, d.function_name, "skipped" if not d.changed else
                          ("would_deploy" if dry_run else "pending"), d.reason)
        for d in decisions
    }
    todo = [project.functions[d.key] for d in decisions if d.changed]
    if dry_run or not todo:
        return FleetResult(list(entries.values()), changed_since, base, dry_run, workers, time.monotonic() - t0)
    if ship is None:
        from lambdaship.deploy.pipeline import ship as ship_fn

        ship = ship_fn
    say = on_event or (lambda _k, _m: None)
    lock = threading.Lock()

    def run(fn: FunctionConfig) -> None:
        entry = entries[fn.key]
        started = time.monotonic()

        def report(step: Any, ctx: dict[str, Any]) -> None:
            with lock:
                say(fn.key, step.action)

        with lock:
            say(fn.key, f"deploying ({entry.reason})")
        try:
            result = ship(fn, reporter=report, **options)
        except BaseException as exc:  # one function's failure must not stop the others
            if isinstance(exc, KeyboardInterrupt | SystemExit):
                raise
            entry.status, entry.error = "failed", one_line(exc)
            entry.seconds = time.monotonic() - started
            with lock:
                say(fn.key, f"failed: {entry.error}")
            return
        entry.seconds = time.monotonic() - started
        entry.digest = result.digest
        entry.image_uri, entry.created, entry.steps = result.image_uri, bool(result.created), list(result.steps)
        entry.previous_version = result.previous_version
        if result.up_to_date or not result.version:
            # nothing published: the alias already served this image (at most blobs were re-checked)
            entry.status, entry.version = "up_to_date", result.alias_version
        else:
            entry.status, entry.version = "deployed", result.version
        with lock:
            say(fn.key, f"{entry.status.replace('_', ' ')}: version {entry.version} ({entry.digest})")

    with ThreadPoolExecutor(max_workers=min(workers, len(todo)), thread_name_prefix="lambdaship-fleet") as pool:
        for fut in [pool.submit(run, fn) for fn in todo]:
            fut.result()
    return FleetResult(list(entries.values()), changed_since, base, dry_run, workers, time.monotonic() - t0)


def summary_rows(result: FleetResult) -> list[tuple[str, str, str, str, str]]:
    """(function, status, version, digest, detail) per function, for the summary table."""
    rows = []
    for e in result.entries:
        version = e.version or ""
        if e.status == "deployed" and e.previous_version:
            version = f"{e.previous_version} → {e.version}"
        detail = e.error if e.status == "failed" else e.reason
        digest = (e.digest or "")[:19]
        rows.append((e.function_name, e.status.replace("_", " "), version, digest, detail or ""))
    return rows


# -- status of the fleet --------------------------------------------------------------------------
_SINCE_RE = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
MAX_WINDOW = timedelta(days=455)  # CloudWatch keeps metrics for 15 months


def parse_since(text: str) -> timedelta:
    """``90s``, ``30m``, ``1h``, ``7d``, ``2w`` → a timedelta."""
    m = _SINCE_RE.match(text or "")
    if not m:
        raise UsageError(f"--since {text!r} is not a duration", "use a number and a unit: 30m, 1h, 7d, 2w")
    delta = timedelta(**{_UNITS[m.group(2)]: int(m.group(1))})
    if delta < timedelta(minutes=1) or delta > MAX_WINDOW:
        raise UsageError(f"--since {text}: must be between 1m and 455d")
    return delta


@dataclass
class FunctionStatus:
    key: str
    function_name: str
    exists: bool
    state: str | None = None
    last_update_status: str | None = None
    last_update_reason: str | None = None
    alias: str | None = None
    alias_version: str | None = None
    digest: str | None = None
    repository: str | None = None
    last_modified: str | None = None
    metrics: dict[str, float | None] = field(default_factory=dict)
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key, "function": self.function_name, "exists": self.exists, "state": self.state,
            "last_update_status": self.last_update_status, "last_update_reason": self.last_update_reason,
            "alias": self.alias, "alias_version": self.alias_version, "digest": self.digest,
            "repository": self.repository, "last_modified": self.last_modified, "metrics": self.metrics,
            "error": self.error,
        }


@dataclass
class FleetStatus:
    functions: list[FunctionStatus]
    start: datetime
    end: datetime
    percentiles: str = "ExtendedStatistics"

    def to_json(self) -> dict[str, Any]:
        return {
            "window": {"start": self.start.isoformat(), "end": self.end.isoformat(),
                       "seconds": int((self.end - self.start).total_seconds())},
            "functions": [f.to_json() for f in self.functions],
        }


def function_status(fn: FunctionConfig) -> FunctionStatus:
    """State, last update status, alias → version, the alias's image digest, when it was deployed:
    :func:`lambdaship.deploy.status.function_status` (the single-function view), condensed."""
    from lambdaship.deploy import status as single

    info = single.function_status(fn, versions=1, images=False)
    st = FunctionStatus(fn.key, fn.function_name, exists=bool(info["exists"]), alias=fn.alias)
    if not st.exists:
        st.state = "not deployed"
        return st
    target = info.get("alias_target") or {}
    st.state = info.get("state")
    st.last_update_status = info.get("last_update_status")
    st.last_update_reason = info.get("last_update_reason") or info.get("state_reason")
    st.alias_version = target.get("version")
    st.digest = target.get("digest") if target else info.get("latest_digest")
    st.repository = target.get("repository")
    st.last_modified = target.get("deployed_at") or info.get("last_modified")
    return st


def status_all(project: Project, since: timedelta, *, workers: int = 4, now: datetime | None = None) -> FleetStatus:
    """Every function's :func:`function_status` plus its metrics over the last ``since``."""
    from lambdaship.aws import cloudwatch

    fns = list(project.functions.values())
    end, start = cloudwatch.window(since, now=now)

    def one(fn: FunctionConfig) -> FunctionStatus:
        try:
            return function_status(fn)
        except Exception as exc:
            return FunctionStatus(fn.key, fn.function_name, exists=False, state="unknown", error=one_line(exc))

    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(fns)))) as pool:
        metrics_f = pool.submit(cloudwatch.lambda_metrics, [fn.function_name for fn in fns], start, end)
        statuses = list(pool.map(one, fns))
        metrics = metrics_f.result()
    for st in statuses:
        st.metrics = metrics.get(st.function_name, {})
    return FleetStatus(statuses, start, end)


def _ts(text: str | None) -> str:
    if not text:
        return ""
    try:
        dt = datetime.fromisoformat(text.replace("+0000", "+00:00"))
    except ValueError:
        return text
    return dt.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _num(v: float | None, unit: str = "") -> str:
    if v is None:
        return "-"
    return (f"{v:.0f}" if float(v).is_integer() else f"{v:.1f}") + unit


def status_rows(report: FleetStatus) -> list[list[str]]:
    """Rows of the ``status --all`` table (header first)."""
    rows = [["function", "state", "update", "alias → version", "digest", "last modified",
             "invocations", "errors", "throttles", "p50", "p99", "max conc."]]
    for st in report.functions:
        m = st.metrics
        alias = f"{st.alias} → {st.alias_version}" if st.alias_version else (f"{st.alias} → -" if st.exists else "")
        rows.append([
            st.function_name, st.state or "", st.last_update_status or "", alias,
            (st.digest or "")[:19], _ts(st.last_modified),
            _num(m.get("invocations")), _num(m.get("errors")), _num(m.get("throttles")),
            _num(m.get("duration_p50_ms"), " ms"), _num(m.get("duration_p99_ms"), " ms"),
            _num(m.get("concurrent_executions_max")),
        ])
    return rows


# -- command-line front ends (called by commands/deploy.py and commands/status.py) ---------------
def _table(rows: list[list[str]], last_free: bool = True) -> list[str]:
    """Plain aligned columns (no wrapping: CI logs and grep stay readable); the last column is not
    padded."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    out = []
    for r in rows:
        cells = [c.ljust(w) for c, w in zip(r, widths, strict=True)]
        if last_free:
            cells[-1] = r[-1]
        out.append("  ".join(cells).rstrip())
    return out


def totals_line(result: FleetResult) -> str:
    if result.dry_run:
        return (f"{result.count('would_deploy')} would deploy, {result.count('skipped')} skipped "
                "(dry run: nothing built or deployed)")
    return (f"{result.count('deployed')} deployed, {result.count('up_to_date')} up to date, "
            f"{result.count('failed')} failed, {result.count('skipped')} skipped in {result.seconds:.1f}s")


def check_all_flags(command: str, all_: bool, *, fleet_only: dict[str, Any], single_only: dict[str, Any]) -> None:
    """Usage errors for ``--all``: ``fleet_only`` flags (e.g. ``--changed-since``) need it,
    ``single_only`` flags (e.g. ``--function``) exclude it. Values that are None/False are unset."""
    if not all_:
        given = [flag for flag, value in fleet_only.items() if value not in (None, False)]
        if given:
            raise UsageError(f"{command}: {given[0]} needs --all", f"use `lambdaship {command} --all {given[0]} …`")
        return
    given = [flag for flag, value in single_only.items() if value not in (None, False)]
    if given:
        raise UsageError(f"{command}: --all and {given[0]} exclude each other",
                         f"drop {given[0]} (per-function settings belong in the config), or run "
                         f"`lambdaship {command} --function <key>` for one function")


def run_deploy_all(
    project: Path | None,
    *,
    changed_since: str | None,
    workers: int,
    dry_run: bool,
    json_: bool,
    overrides: dict[str, Any] | None = None,
    **options: Any,
) -> int:
    """``lambdaship deploy --all``: print the summary (or JSON); the exit code (1 if any failed).
    ``overrides``: the command's config flags (``--memory`` …), applied to every function."""
    from lambdaship.commands._common import console, emit_json, err_console
    from lambdaship.config import load_project

    check_workers(workers)
    proj = load_project(project, overrides)

    def event(key: str, message: str) -> None:  # stderr, also with --json (CI logs show progress)
        err_console.print(f"[{proj.functions[key].function_name}] {message}", markup=False, highlight=False)

    result = deploy_all(proj, changed_since=changed_since, workers=workers, dry_run=dry_run, on_event=event,
                        **options)
    if json_:
        emit_json(result.to_json())
    else:
        header = ["function", "status", "version", "digest", "reason" if dry_run else "detail"]
        rows = [header, *[list(r) for r in summary_rows(result)]]
        if dry_run:
            rows = [[r[0], r[1], r[4]] for r in rows]
        for line in _table(rows):
            console.print(line, markup=False, highlight=False)
        console.print(totals_line(result), markup=False, highlight=False)
    return 0 if result.ok else 1


def run_status_all(project: Path | None, *, since: str, json_: bool) -> int:
    """``lambdaship status --all``: one table (or JSON) for every function of the project."""
    from lambdaship.commands._common import console, emit_json
    from lambdaship.config import load_project

    window = parse_since(since)
    proj = load_project(project)
    report = status_all(proj, window)
    if json_:
        emit_json(report.to_json())
    else:
        for line in _table(status_rows(report), last_free=False):
            console.print(line, markup=False, highlight=False)
        console.print(
            f"metrics: {report.start:%Y-%m-%d %H:%M}Z → {report.end:%Y-%m-%d %H:%M}Z (CloudWatch AWS/Lambda, "
            "sums over the window; p50/p99 of Duration; max. concurrent executions)",
            markup=False, highlight=False,
        )
        for st in report.functions:
            if st.error:
                console.print(f"{st.function_name}: {st.error}", markup=False, highlight=False)
    return 1 if any(st.error or "Failed" in (st.state, st.last_update_status) for st in report.functions) else 0
