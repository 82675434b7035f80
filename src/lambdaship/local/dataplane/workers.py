"""Warm workers per (function, version), behind one small interface over the execution engine.

:class:`CodeSpec` is everything that decides what runs (code, runtime, handler, environment,
memory, timeout); its ``fingerprint`` changes when any of it changes, and the worker set of a
(function, version) is recycled then. The work itself is done by a :class:`Backend`: the
local execution engine (``lambdaship.local.engine``) — the one way lambdaship runs a
function locally.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from lambdaship.errors import LambdashipError


@dataclass(frozen=True)
class CodeSpec:
    function_name: str
    version: str  # "$LATEST" or a published version number
    kind: str  # "image" | "zip"
    timeout: float
    memory: int
    ephemeral: int = 512
    environment: tuple[tuple[str, str], ...] = ()
    image_ref: str | None = None  # image functions: registry reference pinned by digest
    image_command: tuple[str, ...] = ()  # ImageConfig overrides (Command / EntryPoint / WorkingDirectory)
    image_entrypoint: tuple[str, ...] = ()
    image_workdir: str | None = None
    code_dir: str | None = None  # zip functions: the unpacked code
    runtime: str | None = None
    handler: str | None = None
    architecture: str = "x86_64"
    code_sha256: str = ""
    region: str = "us-east-1"
    account: str = "123456789012"

    @property
    def key(self) -> tuple[str, str, str]:
        """One warm worker set per (region, function, version): the same name in two regions is two functions."""
        return (self.region, self.function_name, self.version)

    @property
    def fingerprint(self) -> str:
        data = asdict(self)
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]


@dataclass
class Outcome:
    """One invocation's result, whatever ran it."""

    request_id: str
    payload: bytes
    function_error: str | None = None
    duration_ms: float = 0.0
    init_duration_ms: float | None = None
    max_memory_mb: int | None = None
    timed_out: bool = False
    logs: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.function_error is None


def cannot_start(spec: CodeSpec, exc: Exception) -> Outcome:
    """What Lambda answers when a function's runtime cannot start (an image without a runnable
    entrypoint, a package that cannot be unpacked): a function error, ``Runtime.InvalidEntrypoint``."""
    import uuid

    request_id = str(uuid.uuid4())
    what = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    kind = "image" if spec.kind == "image" else "package"
    message = f"RequestId: {request_id} Error: the function's {kind} cannot be started locally: {what}"
    payload = json.dumps({"errorMessage": message, "errorType": "Runtime.InvalidEntrypoint"}).encode()
    return Outcome(request_id, payload, "Unhandled", logs=[message])


class Backend(Protocol):
    def start(self, spec: CodeSpec) -> Any: ...
    def invoke(self, handle: Any, payload: bytes, timeout: float) -> Outcome: ...
    def stop(self, handle: Any) -> None: ...
    def close(self) -> None: ...


class Workers:
    """One warm handle per (function, version); a changed fingerprint replaces it.

    Every start and invocation runs on this object's own bounded pool of threads, never on the
    caller's (the HTTP server's threads end with their connection); the runtime processes
    themselves come from the engine's one spawner thread (``runtime_api.spawn``).

    A worker set idle for ``idle_seconds`` (``LAMBDASHIP_DATAPLANE_IDLE_SECONDS``, default 600)
    is stopped, as Lambda reclaims idle execution environments; the next request starts a new one.
    """

    def __init__(self, backend: Backend, threads: int = 32, idle_seconds: float | None = None) -> None:
        import os

        self.backend = backend
        self._threads = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="dataplane-worker")
        self._handles: dict[tuple[str, str, str], tuple[str, Any]] = {}
        self._lock = threading.Lock()
        self._starting: dict[tuple[str, str, str], threading.Lock] = {}
        self._used: dict[tuple[str, str, str], float] = {}
        self._busy: dict[tuple[str, str, str], int] = {}
        self.recycled = 0
        self.reaped = 0
        self.idle_seconds = idle_seconds if idle_seconds is not None else float(
            os.environ.get("LAMBDASHIP_DATAPLANE_IDLE_SECONDS") or 600)
        self._stop = threading.Event()
        threading.Thread(target=self._reaper, daemon=True, name="dataplane-reaper").start()

    def _reaper(self) -> None:
        while not self._stop.wait(min(30.0, max(0.5, self.idle_seconds / 4))):
            self.reap()

    def reap(self) -> int:
        """Stop the worker sets idle for longer than ``idle_seconds``; how many were stopped."""
        now = time.monotonic()
        with self._lock:
            idle = [k for k in self._handles if not self._busy.get(k)
                    and now - self._used.get(k, now) > self.idle_seconds]
            handles = [self._handles.pop(k)[1] for k in idle]
            self.reaped += len(handles)  # counted with the removal: stats() never shows one without the other
        for h in handles:
            self.backend.stop(h)
        return len(handles)

    def _handle(self, spec: CodeSpec) -> Any:
        fp = spec.fingerprint
        with self._lock:
            cur = self._handles.get(spec.key)
            if cur is not None and cur[0] == fp:
                return cur[1]
            gate = self._starting.setdefault(spec.key, threading.Lock())
        with gate:  # one start per key at a time; others wait for it and reuse it
            with self._lock:
                cur = self._handles.get(spec.key)
                if cur is not None and cur[0] == fp:
                    return cur[1]
            handle = self.backend.start(spec)
            with self._lock:
                old = self._handles.get(spec.key)
                self._handles[spec.key] = (fp, handle)
            if old is not None:
                self.recycled += 1
                threading.Thread(target=self.backend.stop, args=(old[1],), daemon=True).start()
            return handle

    def invoke(self, spec: CodeSpec, payload: bytes) -> Outcome:
        return self._threads.submit(self._invoke, spec, payload).result()

    def _invoke(self, spec: CodeSpec, payload: bytes) -> Outcome:
        with self._lock:
            self._busy[spec.key] = self._busy.get(spec.key, 0) + 1
        try:
            try:
                handle = self._handle(spec)
            except Exception as exc:  # the code cannot be prepared: the runtime cannot start, as on Lambda
                return cannot_start(spec, exc)
            try:
                return self.backend.invoke(handle, payload, spec.timeout)
            except LambdashipError as exc:  # e.g. the sandbox cannot spawn the runtime
                return cannot_start(spec, exc)
        finally:
            with self._lock:
                self._busy[spec.key] -= 1
                self._used[spec.key] = time.monotonic()

    def drop_function(self, function_name: str) -> None:
        """Stop the workers of a deleted function."""
        with self._lock:
            gone = [k for k in self._handles if k[1] == function_name]
            handles = [self._handles.pop(k)[1] for k in gone]
        for h in handles:
            self.backend.stop(h)

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {"warm": sorted(f"{n}:{v}" for _, n, v in self._handles), "recycled": self.recycled,
                    "reaped": self.reaped}

    def close(self) -> None:
        self._stop.set()
        with self._lock:
            handles = [h for _, h in self._handles.values()]
            self._handles.clear()
        for h in handles:
            self.backend.stop(h)
        self.backend.close()
        self._threads.shutdown(wait=False, cancel_futures=True)
