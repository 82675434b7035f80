"""``deploy --all``: :func:`lambdaship.deploy.pipeline.ship` for the changed functions on a bounded
thread pool (one process: the dependency cache, the layer/blob cache and the boto3 set-up are
shared). Functions with the same dependency set install it once (:mod:`.sharing`); each entry
says what its build made and what its push sent, by role. A failure is recorded for that function
only; nothing is rolled back elsewhere.
"""

from __future__ import annotations

import contextvars
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from lambdaship.config import FunctionConfig, Project
from lambdaship.deploy.fleet.changes import detect_changes, git_root, merge_base
from lambdaship.deploy.fleet.sharing import BuildTally, PushTally, SharedDeps, Turn, deps_set, image_roles, totals
from lambdaship.errors import UsageError
from lambdaship.platform import usable_cores
from lambdaship.translate import translate

MAX_WORKERS = 16


def default_workers(cores: int | None = None) -> int:
    """Four functions per core, at most 8 (8 on a 2-core runner). A deploy costs ~0.1 s of CPU here
    and mostly waits (registry round trips, Lambda's update and publish waits), so more workers
    than cores pay off; at 8 the run stays within the shared clients' connection pools (boto3's 10
    per client, httpx's 16 per registry). Measured in docs/design-fleet.md."""
    n = cores if cores is not None else usable_cores()
    return max(2, min(8, 4 * n))


DEFAULT_WORKERS = default_workers()
Event = Callable[[str, str], None]  # (function key, message)


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
    deps_hash: str | None = None  # the dependency set (inputs + platform); None: none
    build: BuildTally = field(default_factory=BuildTally)
    push: dict[str, dict[str, int]] | None = None  # per role (base, deps, app, config): sent, mounted, skipped
    app: dict[str, Any] | None = None  # the app's API and triggers (ship(app=...)), as deploy --json has them

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key, "function": self.function_name, "status": self.status, "reason": self.reason,
            "version": self.version, "previous_version": self.previous_version, "digest": self.digest,
            "error": self.error, "seconds": None if self.seconds is None else round(self.seconds, 2),
            "image_uri": self.image_uri, "created": self.created, "steps": self.steps,
            "deps_hash": self.deps_hash, "build": self.build.to_json(), "push": self.push,
            **({"app": self.app} if self.app is not None else {}),
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

    def deps_sets(self) -> list[dict[str, Any]]:
        """Each dependency set of the run: its functions, how often it was installed, and how many
        of its layers were written (compressed) and found in the layer cache."""
        sets: dict[str, list[FleetEntry]] = {}
        for e in self.entries:
            if e.deps_hash is not None:
                sets.setdefault(e.deps_hash, []).append(e)
        return [{"hash": h, "functions": [e.key for e in es],
                 "installs": sum(e.build.deps == "installed" for e in es),
                 "layers_written": sum(e.build.layers_written for e in es),
                 "layers_cached": sum(e.build.layers_cached for e in es)} for h, es in sets.items()]

    def transfer(self) -> dict[str, dict[str, int]]:
        """The run's pushes added up per role: blobs sent (uploaded or streamed) and their bytes,
        mounted and skipped."""
        return totals([e.push for e in self.entries if e.push is not None])

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok, "dry_run": self.dry_run, "changed_since": self.changed_since, "base": self.base,
            "workers": self.workers, "seconds": round(self.seconds, 2),
            "counts": {s: self.count(s) for s in ("deployed", "up_to_date", "failed", "skipped", "would_deploy")},
            "deps_sets": self.deps_sets(), "transfer": self.transfer(),
            "functions": [e.to_json() for e in self.entries],
        }


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
    from lambdaship.image.base import shared_bases

    one = _runner(entries, ship, on_event or (lambda _k, _m: None), threading.Lock(), options)
    with shared_bases(), ThreadPoolExecutor(max_workers=min(workers, len(todo)),
                                            thread_name_prefix="lambdaship-fleet") as pool:
        # one base resolution for the run: each worker runs in a copy of this context
        for fut in [pool.submit(contextvars.copy_context().run, one, fn) for fn in todo]:
            fut.result()
    return FleetResult(list(entries.values()), changed_since, base, dry_run, workers, time.monotonic() - t0)


def _runner(entries: dict[str, FleetEntry], ship: Callable[..., Any], say: Event, lock: threading.Lock,
            options: dict[str, Any]) -> Callable[[FunctionConfig], None]:
    """The deploy of one function: records its outcome in its entry, never raises for a failure.
    Its dependency set's turn (:class:`SharedDeps`) wraps it; its pushes share one
    :func:`lambdaship.oci.push.sharing` scope with the run's others (a blob goes to a registry
    once, the other repositories mount it); its build and push events are tallied."""
    from lambdaship.oci.push import Placed, sharing

    shared, placed = SharedDeps(), Placed()

    def run(fn: FunctionConfig) -> None:
        entry = entries[fn.key]
        deps = deps_set(fn)
        entry.deps_hash = deps.hash if deps else None

        def waiting(leader: str) -> None:
            with lock:
                say(fn.key, f"waiting for {entries[leader].function_name}: it installs the shared dependency set")

        cached = deps is not None and deps.in_cache()  # then nobody installs it: nobody waits
        with shared.turn(fn.key, None if cached else entry.deps_hash, waiting) as turn, sharing(placed):
            before = cached or (deps is not None and deps.in_cache())
            _one(fn, entry, turn, ship, say, lock, options)
            if deps is not None and not before and deps.in_cache():
                entry.build.installed()

    return run


def _one(fn: FunctionConfig, entry: FleetEntry, turn: Turn, ship: Callable[..., Any], say: Event,
         lock: threading.Lock, options: dict[str, Any]) -> None:
    started = time.monotonic()
    pushed = PushTally()

    def report(step: Any, ctx: dict[str, Any]) -> None:
        turn.past_install()  # the package is built: the plan runs
        with lock:
            say(fn.key, step.action)

    def built(event: Any) -> None:
        turn.build_event(event)
        entry.build.add(event)

    with lock:
        say(fn.key, f"deploying ({entry.reason})")
    try:
        result = ship(fn, reporter=report, progress=built, on_push_event=pushed.add, **options)
    except BaseException as exc:  # one function's failure must not stop the others
        if isinstance(exc, KeyboardInterrupt | SystemExit):
            raise
        entry.status, entry.error = "failed", translate(exc).one_line()
        entry.seconds = time.monotonic() - started
        with lock:
            say(fn.key, f"failed: {entry.error}")
        return
    turn.past_install()
    entry.seconds = time.monotonic() - started
    _record(entry, result)
    image = getattr(getattr(getattr(result, "plan", None), "target", None), "image", None)
    if image is not None and pushed.blobs:
        entry.push = pushed.by_role(image_roles(image))
    with lock:
        say(fn.key, f"{entry.status.replace('_', ' ')}: version {entry.version} ({entry.digest})")


def _record(entry: FleetEntry, result: Any) -> None:
    entry.digest = result.digest
    entry.image_uri, entry.created, entry.steps = result.image_uri, bool(result.created), list(result.steps)
    entry.previous_version = result.previous_version
    entry.app = result.app.to_json() if getattr(result, "app", None) is not None else None
    if result.up_to_date or not result.version:
        # nothing published: the alias already served this image (at most blobs were re-checked)
        entry.status, entry.version = "up_to_date", result.alias_version
    else:
        entry.status, entry.version = "deployed", result.version


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
