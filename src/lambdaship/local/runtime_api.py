"""A Lambda Runtime API emulator driving the real ``awslambdaric`` in worker processes.

Each worker is one runtime process (``python -m awslambdaric module.handler`` on the host, or
a sandboxed ENTRYPOINT + CMD from the engine) with its own small HTTP server implementing the
Runtime API (``/2018-06-01/runtime/...``) on 127.0.0.1. The pool keeps workers warm and reuses
them; concurrent invocations go to different workers (up to ``max_workers``). An invocation
that outlives the function's timeout kills its worker (SIGKILL: in a pid namespace the runtime
is pid 1 and ignores SIGTERM) and is reported as Lambda reports it.

Every runtime process is spawned by one long-lived thread (:func:`spawn`), never by the
calling thread: the sandbox ties each runtime to the thread that spawned it (``bwrap
--die-with-parent`` is PR_SET_PDEATHSIG, which fires when that *thread* exits), and callers
such as an HTTP server's per-connection threads end long before the worker should.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from lambdaship.errors import LambdashipError
from lambdaship.local.invocation import Invocation, InvokeResult, Launch, LogSink, error_payload
from lambdaship.local.runtime_http import RuntimeServer
from lambdaship.names import LOCAL_ACCOUNT as ACCOUNT_ID

_SPAWNER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="runtime-spawner")


def spawn(argv: list[str], **popen: Any) -> subprocess.Popen[bytes]:
    """``subprocess.Popen(argv, **popen)`` on the process-wide spawner thread, which lives as long
    as the process: a runtime's parent-death signal then fires only when this process ends."""
    return _SPAWNER.submit(subprocess.Popen, argv, **popen).result()


def exit_reason(code: int) -> str:
    """How Lambda words a runtime's exit: ``exit status 1``, ``signal: killed``."""
    if code >= 0:
        return f"exit status {code}"
    try:
        return f"signal: {signal.strsignal(-code).lower()}"
    except (ValueError, AttributeError):
        return f"signal: {-code}"


class Worker:
    """One runtime process and its Runtime API endpoint."""

    _ids = itertools.count(1)

    def __init__(self, pool: RuntimeAPI) -> None:
        self.pool = pool
        self.id = next(self._ids)
        self.generation = pool.generation
        self.inbox: queue.Queue[Invocation | None] = queue.Queue()
        self.current: Invocation | None = None
        self.assigned: Invocation | None = None
        self.dead = False
        self._killed = False
        self.ready = threading.Event()  # first GET /next seen: init finished
        self.spawned = time.monotonic()
        self.init_duration_ms: float | None = None
        self._init_error: bytes | None = None
        self.server = RuntimeServer(self)
        self.port = self.server.server_address[1]
        self._server_thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.2},
                                               daemon=True, name=f"runtime-api-{self.id}")
        self._server_thread.start()
        env = pool.worker_env(f"127.0.0.1:{self.port}")
        self.launch: Launch | None = pool.launcher() if pool.launcher is not None else None
        argv = self.launch.argv if self.launch is not None else list(pool.command)
        try:
            self.proc = spawn(
                argv, cwd=pool.cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT, start_new_session=True,
            )
        except OSError as exc:
            self.server.shutdown()
            self.server.server_close()
            if self.launch is not None:
                self.launch.release()
            raise LambdashipError(f"cannot start the runtime {argv[0]!r}: {exc.strerror}") from None
        self._reader = threading.Thread(target=self._read_output, daemon=True, name=f"runtime-log-{self.id}")
        self._reader.start()

    # ---- called by the Runtime API handler threads ---------------------------------------
    def next_invocation(self) -> Invocation | None:
        if not self.ready.is_set():
            self.init_duration_ms = (time.monotonic() - self.spawned) * 1000
            self.ready.set()
        inv = self.inbox.get()
        if inv is None:
            return None
        inv.started = time.monotonic()
        inv.deadline_ms = int((time.time() + inv.timeout) * 1000)
        self.current = inv
        return inv

    def complete(self, request_id: str, body: bytes, function_error: str | None) -> bool:
        inv = self.current
        if inv is None or inv.request_id != request_id:
            return False
        duration = (time.monotonic() - inv.started) * 1000
        self.current = None
        peak = self.launch.peak_mb() if self.launch is not None else None
        return inv.resolve(InvokeResult(request_id, body, function_error, duration, max_memory_mb=peak))

    def init_error(self, body: bytes) -> None:
        self._init_error = body
        inv = self.assigned
        if inv is not None:
            inv.resolve(InvokeResult(inv.request_id, body, "Unhandled", 0.0))

    # ---- output ------------------------------------------------------------------------
    def _read_output(self) -> None:
        assert self.proc.stdout is not None
        for raw in iter(self.proc.stdout.readline, b""):
            line = raw.decode("utf-8", "replace").rstrip("\n").replace("\r", "\n")
            inv = self.assigned
            if inv is not None:
                inv.logs.append(line)
            self.pool.emit(line)
        code = self.proc.wait()
        self.dead = True
        if self.launch is not None:
            self.launch.release()
        inv = self.assigned
        if inv is not None and not inv.done.is_set():
            if self._init_error is not None:
                payload = self._init_error
                inv.resolve(InvokeResult(inv.request_id, payload, "Unhandled", 0.0))
            else:
                msg = f"RequestId: {inv.request_id} Error: Runtime exited with error: {exit_reason(code)}"
                if inv.resolve(InvokeResult(inv.request_id, error_payload(msg, "Runtime.ExitError"), "Unhandled",
                                            0.0)):
                    for line in (msg, "Runtime.ExitError"):  # as Lambda writes it to the log stream
                        inv.logs.append(line)
                        self.pool.emit(line)
        self.pool._worker_exited(self)

    # ---- lifecycle ---------------------------------------------------------------------
    def kill(self) -> None:
        self.dead = True
        if self._killed:
            return
        self._killed = True
        if self.proc.poll() is None:  # not reaped: its pid (the group's id) cannot belong to another process
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, signal.SIGKILL)
        self.inbox.put(None)
        self.server.shutdown()
        self.server.server_close()

    def join(self, timeout: float = 5.0) -> None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout)
        self._reader.join(timeout)


class RuntimeAPI:
    """A pool of warm runtime workers behind the Runtime API.

    ``command`` runs one runtime (default: ``python -m awslambdaric <handler>`` with this
    interpreter); it gets ``AWS_LAMBDA_RUNTIME_API`` and the Lambda environment variables.
    """

    def __init__(
        self,
        handler: str,
        *,
        cwd: Path | str,
        pythonpath: Sequence[Path | str] = (),
        environment: dict[str, str] | None = None,
        timeout: float = 30.0,
        memory: int = 512,
        function_name: str = "function",
        max_workers: int = 2,
        command: Sequence[str] | None = None,
        log_sink: LogSink | None = None,
        lambda_env: bool = True,
        python_version: str | None = None,
        base_env: dict[str, str] | None = None,
        task_root: str | None = None,
        launcher: Callable[[], Launch] | None = None,
        region: str | None = None,
        version: str = "$LATEST",
    ) -> None:
        if max_workers < 1:
            raise ValueError("max_workers must be >= 1")
        self.handler = handler
        self.cwd = str(cwd)
        self.pythonpath = [str(p) for p in pythonpath]
        self.environment = dict(environment or {})
        self.timeout = float(timeout)
        self.memory = memory
        self.function_name = function_name
        self.max_workers = max_workers
        if not command and launcher is None:
            from lambdaship.extras import require_local_runtime  # hook: awslambdaric is an extra

            require_local_runtime()
        self.command = list(command) if command else [sys.executable, "-m", "awslambdaric", handler]
        self.log_sink = log_sink
        self.lambda_env = lambda_env
        self.python_version = python_version or f"{sys.version_info.major}.{sys.version_info.minor}"
        self.base_env = dict(base_env) if base_env is not None else None  # e.g. an image's Env
        self.task_root = task_root or self.cwd
        self.launcher = launcher
        self.version = version
        region = region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
        self.region = region
        self.function_arn = f"arn:aws:lambda:{region}:{ACCOUNT_ID}:function:{function_name}"
        self.generation = 0
        self._workers: list[Worker] = []
        self._idle: list[Worker] = []
        self._cond = threading.Condition()
        self._closed = False
        self._emit_lock = threading.Lock()

    # ---- environment ---------------------------------------------------------------------
    def worker_env(self, api: str) -> dict[str, str]:
        passthrough = ("PATH", "HOME", "LANG", "LC_ALL", "TZ", "SSL_CERT_FILE", "SSL_CERT_DIR",
                       "REQUESTS_CA_BUNDLE", "AWS_CA_BUNDLE", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                       "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE",
                       "AWS_ENDPOINT_URL")
        if self.base_env is not None:
            env = dict(self.base_env)
        else:
            env = {k: os.environ[k] for k in passthrough if k in os.environ} if self.lambda_env else {}
        env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
        if self.lambda_env:
            stream = f"{time.strftime('%Y/%m/%d')}/[{self.version}]{uuid.uuid4().hex}"
            env.update({
                "AWS_LAMBDA_FUNCTION_NAME": self.function_name,
                "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(self.memory),
                "AWS_LAMBDA_FUNCTION_VERSION": self.version,
                "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{self.function_name}",
                "AWS_LAMBDA_LOG_STREAM_NAME": stream,
                "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
                "AWS_REGION": self.region,
                "AWS_DEFAULT_REGION": self.region,
                "AWS_EXECUTION_ENV": f"AWS_Lambda_python{self.python_version}",
                "LAMBDA_TASK_ROOT": self.task_root,
                "LAMBDA_RUNTIME_DIR": "/var/runtime",
                "_HANDLER": self.handler,
                "TZ": ":UTC",
                "PYTHONUNBUFFERED": "1",
                "PYTHONDONTWRITEBYTECODE": "1",
            })
        env.update(self.environment)
        if self.pythonpath:
            env["PYTHONPATH"] = os.pathsep.join(self.pythonpath)
        env["AWS_LAMBDA_RUNTIME_API"] = api
        return env

    def emit(self, line: str) -> None:
        if self.log_sink is not None:
            with self._emit_lock:
                self.log_sink(line)

    # ---- pool ----------------------------------------------------------------------------
    def start(self, warm: int = 1) -> RuntimeAPI:
        """Start ``warm`` workers now (their init runs in the background)."""
        with self._cond:
            for _ in range(min(warm, self.max_workers) - len(self._workers)):
                w = Worker(self)
                self._workers.append(w)
                self._idle.append(w)
        return self

    def wait_ready(self, timeout: float = 30.0) -> bool:
        """Wait until every started worker has finished init (or died)."""
        end = time.monotonic() + timeout
        for w in list(self._workers):
            while not w.ready.is_set() and not w.dead and time.monotonic() < end:
                w.ready.wait(0.05)
        return all(w.ready.is_set() for w in self._workers)

    def _acquire(self) -> Worker:
        with self._cond:
            while True:
                if self._closed:
                    raise LambdashipError("the local runtime is shutting down")
                while self._idle:
                    w = self._idle.pop()
                    if not w.dead and w.generation == self.generation:
                        return w
                    self._retire(w)
                if len(self._workers) < self.max_workers:
                    w = Worker(self)
                    self._workers.append(w)
                    return w
                self._cond.wait(1.0)

    def _release(self, w: Worker) -> None:
        with self._cond:
            w.assigned = None
            if w.dead or w.generation != self.generation or self._closed:
                self._retire(w)
                if not self._closed and not self._workers:
                    # keep one warm replacement (after a timeout, a crash or a reload)
                    try:
                        fresh = Worker(self)
                    except LambdashipError:
                        fresh = None  # the next invocation will try again and report it
                    if fresh is not None:
                        self._workers.append(fresh)
                        self._idle.append(fresh)
            else:
                self._idle.append(w)
            self._cond.notify()

    def _retire(self, w: Worker) -> None:  # with self._cond held
        if w in self._workers:
            self._workers.remove(w)
        if w in self._idle:
            self._idle.remove(w)
        w.kill()
        self._cond.notify()

    def _worker_exited(self, w: Worker) -> None:
        with self._cond:
            if w in self._idle:
                self._idle.remove(w)
            if w in self._workers and w.assigned is None:
                self._workers.remove(w)
                w.kill()
            self._cond.notify()

    def invoke(self, payload: bytes | str | Any = b"{}", *, timeout: float | None = None,
               client_context: str | None = None) -> InvokeResult:
        """Run one invocation on a warm (or new) worker and wait for its result."""
        if isinstance(payload, str):
            payload = payload.encode()
        elif not isinstance(payload, bytes | bytearray):
            payload = json.dumps(payload).encode()
        limit = self.timeout if timeout is None else timeout
        inv = Invocation(str(uuid.uuid4()), bytes(payload), limit, client_context)
        w = self._acquire()
        cold = not w.ready.is_set()
        w.assigned = inv
        self.emit(f"START RequestId: {inv.request_id} Version: {self.version}")
        queued = time.monotonic()
        w.inbox.put(inv)
        # The timeout counts from when the runtime picks the event up; a cold worker first gets
        # Lambda's 10 s init budget.
        init_budget = 10.0 if cold else 0.0
        while not inv.done.is_set():
            now = time.monotonic()
            deadline = (inv.started + limit) if inv.started else (queued + init_budget + limit)
            if now >= deadline:
                break
            inv.done.wait(deadline - now if inv.started else min(0.05, deadline - now))
        if not inv.done.is_set():
            elapsed = time.monotonic() - (inv.started or queued)
            msg = f"RequestId: {inv.request_id} Error: Task timed out after {limit:.2f} seconds"
            if inv.resolve(InvokeResult(inv.request_id, error_payload(msg, "Sandbox.Timedout"), "Unhandled",
                                        elapsed * 1000, timed_out=True)):
                self.emit(f"{time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime())}Z {inv.request_id} "
                          f"Task timed out after {limit:.2f} seconds")
            w.kill()
            w.join(2.0)
        result = inv.result
        assert result is not None
        if cold:
            result.init_duration_ms = w.init_duration_ms
        self._release(w)
        self.emit(f"END RequestId: {inv.request_id}")
        report = (f"REPORT RequestId: {inv.request_id}\tDuration: {result.duration_ms:.2f} ms\t"
                  f"Billed Duration: {max(1, int(result.duration_ms + 0.999))} ms\tMemory Size: {self.memory} MB")
        if cold and result.init_duration_ms is not None:
            report += f"\tInit Duration: {result.init_duration_ms:.2f} ms"
        self.emit(report)
        return result

    def recycle(self) -> None:
        """Replace every worker (code changed): idle ones now, busy ones when they finish."""
        with self._cond:
            self.generation += 1
            for w in list(self._idle):
                self._retire(w)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            workers = list(self._workers)
            self._workers.clear()
            self._idle.clear()
            self._cond.notify_all()
        for w in workers:
            w.kill()
        for w in workers:
            w.join()

    def __enter__(self) -> RuntimeAPI:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def workers(self) -> int:
        return len(self._workers)
