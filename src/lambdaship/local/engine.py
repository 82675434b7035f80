"""The one local execution engine: ``serve``, ``invoke --local``, ``run`` and the local stack's
Lambda Invoke all run functions through it.

Public API (small on purpose)::

    spec = image_spec("dir/or/registry/ref", environment={...})  # a built image, verified + unpacked
    spec = project_spec(fn)                                      # base rootfs + target deps + live source
    spec = zip_spec(code_dir, "python3.12", "app.handler")       # a zip function on the base
    with Engine() as engine:
        result = engine.invoke(spec, b'{"k": 1}', timeout=None)  # -> InvokeResult
        proc = engine.run_command(spec, ["python3", "-c", "..."], timeout=10)
        engine.recycle(spec)                                     # code changed: fresh workers

:class:`FunctionSpec` is what to run, Lambda-shaped: the rootfs (verified, read-only), what
is bound read-only on top (``task_overlay`` at ``/var/task``, ``deps`` at :data:`DEPS_MOUNT`),
the image's ENTRYPOINT/Env/WorkingDir, the user's environment, memory / timeout / ephemeral
storage, version, region, architecture and the credentials handed in (none unless asked).

:class:`InvokeResult` (from ``runtime_api``) carries ``payload``, ``function_error``, ``logs``
(the invocation's own output lines), ``duration_ms``, ``init_duration_ms`` and
``max_memory_mb`` (where a memory cgroup measures it). Workers stay warm per spec (keyed by
value) and are thread-safe; ``close()`` stops them all.

Every runtime runs inside :mod:`lambdaship.local.sandbox` (bubblewrap). Where Linux
namespaces are not available the engine says so and runs the handler with the host's Python
in isolation mode (``-S``: no site-packages) on a path of only the app, the dependencies
installed for the host, and awslambdaric: a missing dependency still fails.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import os
import subprocess
import sys
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from lambdaship.errors import LambdashipError
from lambdaship.local import sandbox
from lambdaship.local.invocation import InvokeResult, LogSink
from lambdaship.local.runtime_api import RuntimeAPI
from lambdaship.paths import cache
from lambdaship.platform import Architecture

__all__ = ["DEPS_MOUNT", "Engine", "FunctionSpec", "InvokeResult"]  # + image_spec, project_spec, zip_spec (lazy)

DEPS_MOUNT = "/opt/lambdaship/deps"
TASK_ROOT = "/var/task"
RESERVED = frozenset({
    "_HANDLER", "_X_AMZN_TRACE_ID", "AWS_DEFAULT_REGION", "AWS_REGION", "AWS_EXECUTION_ENV",
    "AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_INITIALIZATION_TYPE", "AWS_LAMBDA_LOG_GROUP_NAME", "AWS_LAMBDA_LOG_STREAM_NAME",
    "AWS_LAMBDA_RUNTIME_API", "LAMBDA_TASK_ROOT", "LAMBDA_RUNTIME_DIR",
})
CREDENTIAL_KEYS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")
PYTHONS = ("/var/lang/bin/python3", "/usr/local/bin/python3", "/usr/bin/python3")
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True, eq=False)
class FunctionSpec:
    """What to run, Lambda-shaped. Compared and hashed by :meth:`key` (its value)."""

    name: str
    handler: str
    rootfs: Path  # verified, read-only root filesystem
    task_overlay: Path | None = None  # bound read-only at /var/task (serve: the live source tree)
    deps: Path | None = None  # dependency tree for the target, bound read-only at DEPS_MOUNT
    environment: Mapping[str, str] = field(default_factory=dict)  # the user's; reserved vars are the engine's
    image_env: Mapping[str, str] = field(default_factory=dict)  # the image config's Env
    entrypoint: tuple[str, ...] = ()  # the image's ENTRYPOINT (empty: python3 -m awslambdaric)
    workdir: str = TASK_ROOT
    memory_mb: int = 512
    timeout_s: float = 30.0
    ephemeral_mb: int = 512
    version: str = "$LATEST"
    region: str = "us-east-1"
    architecture: Architecture = Architecture.x86_64
    python: str = "3.11"
    credentials: Mapping[str, str] | None = None  # AWS_* handed in only when asked
    notes: tuple[str, ...] = ()  # what the caller should tell the user (one line each)
    sandboxed: bool = True  # False: no namespaces on this machine (host-Python fallback)
    host_paths: tuple[Path, ...] = ()  # the fallback's sys.path (app, host deps)
    image_digest: str | None = None  # the manifest digest, for images

    def key(self) -> tuple[Any, ...]:
        return (self.name, self.handler, str(self.rootfs), str(self.task_overlay), str(self.deps),
                tuple(sorted(self.environment.items())), tuple(sorted(self.image_env.items())), self.entrypoint,
                self.workdir, self.memory_mb, self.timeout_s, self.ephemeral_mb, self.version, self.region,
                self.architecture, self.python, tuple(sorted((self.credentials or {}).items())), self.sandboxed,
                tuple(map(str, self.host_paths)), self.image_digest)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FunctionSpec) and self.key() == other.key()

    def __hash__(self) -> int:
        return hash(self.key())

    @property
    def task_dir(self) -> Path:
        """The host directory holding the app code (for reading Chalice routes)."""
        if self.task_overlay is not None:
            return self.task_overlay
        return self.rootfs / self.workdir.lstrip("/") if self.workdir != "/" else self.rootfs / "var/task"

    @property
    def identity(self) -> str:
        """One line: which AWS identity the function has."""
        if not self.credentials or not self.credentials.get("AWS_ACCESS_KEY_ID"):
            return "the function has no AWS credentials (pass --aws-credentials to hand in yours)"
        key = self.credentials["AWS_ACCESS_KEY_ID"]
        kind = "temporary" if self.credentials.get("AWS_SESSION_TOKEN") else "long-term"
        return f"the function has your {kind} AWS credentials (access key {key[:4]}…{key[-4:]})"

    def with_(self, **changes: Any) -> FunctionSpec:
        return replace(self, **changes)


# ---- the environment -----------------------------------------------------------------------------
def function_env(spec: FunctionSpec) -> dict[str, str]:
    """What the runtime process sees, minus the per-worker reserved variables (RuntimeAPI adds them)."""
    env = {"PATH": DEFAULT_PATH, "LANG": "C.UTF-8"} if spec.sandboxed else {
        "PATH": os.environ.get("PATH", DEFAULT_PATH), "LANG": "C.UTF-8"}
    if spec.sandboxed:
        env.update({k: v for k, v in spec.image_env.items() if k not in RESERVED or k == "LAMBDA_TASK_ROOT"})
    else:  # the host's Python: none of the image's paths apply
        env.update({k: v for k, v in spec.image_env.items()
                    if k not in RESERVED and k not in ("PATH", "PYTHONPATH", "PYTHONHOME", "HOME")})
    env.update({k: v for k, v in spec.environment.items() if k not in RESERVED})
    if spec.sandboxed:
        env.setdefault("HOME", "/tmp")
    for k in CREDENTIAL_KEYS:
        env.pop(k, None)
    if spec.credentials:
        env.update({k: v for k, v in spec.credentials.items() if v})
    return env


def _python_in(rootfs: Path) -> str:
    from lambdaship.local.rootfs import resolve_inside

    for cand in PYTHONS:
        if (rootfs / resolve_inside(rootfs, cand)).is_file():
            return cand
    return "/usr/bin/python3"


def _runtime_argv(spec: FunctionSpec, emulated: bool) -> list[str]:
    """ENTRYPOINT + handler; under qemu without binfmt, the image's Python directly."""
    if spec.entrypoint and not emulated:
        return [*spec.entrypoint, spec.handler]
    return [_python_in(spec.rootfs), "-m", "awslambdaric", spec.handler]


class _BoxLaunch:
    def __init__(self, argv: list[str], memory_mb: int) -> None:
        self.cap = sandbox.MemoryCap(memory_mb)
        self.argv = self.cap.wrap(argv)

    def peak_mb(self) -> int | None:
        return self.cap.peak_mb()

    def release(self) -> None:
        self.cap.release()


def _box(spec: FunctionSpec) -> sandbox.Box:
    emulator, _ = sandbox.emulator_for(spec.architecture)
    binds: list[tuple[Path, str]] = []
    if spec.task_overlay is not None:
        binds.append((spec.task_overlay, TASK_ROOT))
    if spec.deps is not None:
        binds.append((spec.deps, DEPS_MOUNT))
    return sandbox.Box(spec.rootfs, tuple(binds), spec.ephemeral_mb, spec.memory_mb, spec.workdir or "/", emulator)


def host_runtime_dir() -> Path:
    """awslambdaric and its requirements only, as symlinks: the fallback's runtime path."""
    from lambdaship.extras import require_local_runtime  # hook: awslambdaric is an extra

    require_local_runtime()
    d = cache("host-runtime") / f"py{sys.version_info[0]}{sys.version_info[1]}"
    if (d / ".complete").is_file():
        return d
    d.mkdir(parents=True, exist_ok=True)
    for dist in ("awslambdaric", "simplejson", "snapshot-restore-py"):
        try:
            files = importlib.metadata.files(dist) or []
            located = importlib.metadata.distribution(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
        for top in {f.parts[0] for f in files if not f.parts[0].endswith((".dist-info", ".egg-info", ".."))}:
            src = Path(str(located.locate_file(top)))
            link = d / top
            if src.exists() and not link.is_symlink():
                link.symlink_to(src)
    (d / ".complete").write_text("ok\n")
    return d


# ---- the engine -----------------------------------------------------------------------------------
class Engine:
    """Warm runtime workers per spec, each inside the sandbox. Thread-safe."""

    def __init__(self, *, max_workers: int = 2, log_sink: LogSink | None = None) -> None:
        self.max_workers = max_workers
        self.log_sink = log_sink
        self._pools: dict[FunctionSpec, RuntimeAPI] = {}
        self._lock = threading.Lock()
        self._closed = False

    def pool(self, spec: FunctionSpec) -> RuntimeAPI:
        """The warm pool of ``spec`` (created on first use)."""
        with self._lock:
            if self._closed:
                raise LambdashipError("the local engine is closed")
            api = self._pools.get(spec)
            if api is None:
                api = self._pools[spec] = self._make_pool(spec)
            return api

    def _make_pool(self, spec: FunctionSpec) -> RuntimeAPI:
        common: dict[str, Any] = dict(
            environment={}, timeout=spec.timeout_s, memory=spec.memory_mb, function_name=spec.name,
            max_workers=self.max_workers, log_sink=self.log_sink, base_env=function_env(spec),
            region=spec.region, version=spec.version, python_version=spec.python)
        if not spec.sandboxed:
            paths = [*map(str, spec.host_paths), str(host_runtime_dir())]
            command = [sys.executable, "-S", "-m", "awslambdaric", spec.handler]
            return RuntimeAPI(spec.handler, cwd=spec.host_paths[0] if spec.host_paths else spec.task_dir,
                              pythonpath=paths, command=command, task_root=str(spec.task_dir), **common)
        sandbox.require()
        box = _box(spec)
        argv = sandbox.command(box, _runtime_argv(spec, box.emulator is not None))
        return RuntimeAPI(spec.handler, cwd="/", pythonpath=[DEPS_MOUNT] if spec.deps is not None else [],
                          launcher=lambda: _BoxLaunch(argv, spec.memory_mb), task_root=TASK_ROOT, **common)

    def start(self, spec: FunctionSpec, warm: int = 1) -> RuntimeAPI:
        return self.pool(spec).start(warm=warm)

    def invoke(self, spec: FunctionSpec, payload: bytes | str | Any = b"{}", *,
               timeout: float | None = None) -> InvokeResult:
        return self.pool(spec).invoke(payload, timeout=timeout)

    def recycle(self, spec: FunctionSpec) -> None:
        """The code changed: replace the spec's workers (busy ones when they finish)."""
        with self._lock:
            api = self._pools.get(spec)
        if api is not None:
            api.recycle()

    def discard(self, spec: FunctionSpec) -> None:
        with self._lock:
            api = self._pools.pop(spec, None)
        if api is not None:
            api.close()

    def run_command(self, spec: FunctionSpec, argv: list[str], *, timeout: float, input: bytes | None = None,
                    network: bool = False) -> subprocess.CompletedProcess[bytes]:
        """Run one command inside the spec's sandbox (same rootfs, binds, env, limits); without
        ``network`` in a network namespace of its own (loopback only)."""
        env = function_env(spec)
        if not spec.sandboxed:
            env["PYTHONPATH"] = os.pathsep.join(map(str, spec.host_paths))
            full = [sys.executable, "-S", *argv[1:]] if argv and argv[0].startswith("python") else list(argv)
            cap = None
        else:
            sandbox.require()
            if spec.deps is not None:
                env["PYTHONPATH"] = DEPS_MOUNT
            env.update({"LAMBDA_TASK_ROOT": TASK_ROOT, "AWS_REGION": spec.region, "AWS_DEFAULT_REGION": spec.region})
            cap = sandbox.MemoryCap(spec.memory_mb)
            full = cap.wrap(sandbox.command(replace(_box(spec), network=network), list(argv)))
        proc = subprocess.Popen(full, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, start_new_session=True,
                                cwd=str(spec.task_dir) if not spec.sandboxed else "/")
        try:
            out, err = proc.communicate(input, timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, 9)
            out, err = proc.communicate()
            raise LambdashipError(f"{argv[0]} did not finish within {timeout:g} s in the sandbox") from None
        finally:
            if cap is not None:
                cap.release()
        return subprocess.CompletedProcess(full, proc.returncode, out, err)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            pools = list(self._pools.values())
            self._pools.clear()
        for api in pools:
            api.close()

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def __getattr__(name: str) -> Any:
    """``image_spec``, ``project_spec``, ``zip_spec`` live in ``specs`` (which imports this module)."""
    if name in ("image_spec", "project_spec", "zip_spec"):
        from lambdaship.local import specs

        return getattr(specs, name)
    raise AttributeError(name)
