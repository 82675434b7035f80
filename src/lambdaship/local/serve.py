"""Glue for ``invoke --local``, ``serve`` and ``run`` around the engine: the code watcher that
reloads workers, the blocking HTTP server loop, log sinks, and the cold-start probe."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Protocol, TextIO

from lambdaship.apigateway.routes import Route, chalice_routes
from lambdaship.config import is_chalice_app
from lambdaship.errors import LambdashipError
from lambdaship.local.gateway import Gateway, make_server
from lambdaship.local.invocation import LogSink


class _Closable(Protocol):
    def close(self) -> None: ...

SKIP_DIRS = {".git", "__pycache__", ".venv", "venv", "node_modules", ".chalice", ".pytest_cache", ".mypy_cache",
             ".ruff_cache", "build", "dist", ".lambdaship"}


def routes_for(app_dir: Path) -> list[Route] | None:
    return chalice_routes(app_dir) if is_chalice_app(app_dir) else None


# ---- reload ---------------------------------------------------------------------------------
def _walk(root: Path) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in SKIP_DIRS and not d.endswith(".egg-info")]
        for name in filenames:
            if not name.endswith((".pyc", ".pyo", ".swp", "~")):
                yield Path(dirpath, name)


def snapshot(roots: list[Path]) -> dict[str, float]:
    out: dict[str, float] = {}
    for root in roots:
        for p in _walk(root):
            try:
                out[str(p)] = p.stat().st_mtime_ns
            except OSError:
                continue
    return out


class Watcher(threading.Thread):
    """Polls the source tree's mtimes; calls ``on_change(changed_paths)`` when something changes."""

    def __init__(self, roots: list[Path], on_change: Callable[[list[str]], None], interval: float = 0.5) -> None:
        super().__init__(daemon=True, name="lambdaship-watch")
        self.roots = roots
        self.on_change = on_change
        self.interval = interval
        self._stop = threading.Event()
        self._state = snapshot(roots)

    def run(self) -> None:
        while not self._stop.wait(self.interval):
            new = snapshot(self.roots)
            if new != self._state:
                changed = sorted({k for k in new.keys() | self._state.keys() if new.get(k) != self._state.get(k)})
                self._state = new
                try:
                    self.on_change(changed)
                except Exception as exc:  # keep watching
                    print(f"lambdaship: reload failed: {exc}", file=sys.stderr, flush=True)

    def stop(self) -> None:
        self._stop.set()


# ---- serving --------------------------------------------------------------------------------
def serve_forever(api: _Closable, gateway: Gateway, *, host: str, port: int, banner: list[str],
                  watcher: Watcher | None = None, out: TextIO | None = None,
                  access_log: bool = True) -> None:
    """Run the HTTP gateway until SIGINT/SIGTERM, then stop the workers."""
    out = out or sys.stderr

    def log(line: str) -> None:
        out.write(line + "\n")
        out.flush()

    try:
        server = make_server(gateway, host, port, access_log=log if access_log else None)
    except OSError as exc:
        raise LambdashipError(f"cannot listen on {host}:{port}: {exc.strerror}",
                              "choose another port with --port") from None
    actual = server.server_address[1]
    # stdout, one line: scripts (and tests) read the URL from here.
    sys.stdout.write(f"listening on http://{host}:{actual}\n")
    sys.stdout.flush()
    for line in banner:
        log(line)

    def _stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    old = signal.signal(signal.SIGTERM, _stop)
    if watcher is not None:
        watcher.start()
    try:
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, old)
        if watcher is not None:
            watcher.stop()
        server.server_close()
        t0 = time.monotonic()
        api.close()
        log(f"stopped ({(time.monotonic() - t0) * 1000:.0f} ms to stop the workers)")


def stderr_sink(prefix: str = "") -> LogSink:
    def sink(line: str) -> None:
        sys.stderr.write(f"{prefix}{line}\n")
        sys.stderr.flush()

    return sink


# ---- images -----------------------------------------------------------------------------------
def cold_start(image_spec: str, path: str = "/health") -> dict[str, float | str]:
    """Time a fresh sandboxed runtime of an image (already unpacked/cached) to its first HTTP answer.

    Returns seconds from spawning the runtime to the answer and the mode ("sandbox" or
    "host"). Used by the benchmarks (the cold-start figure).
    """
    from lambdaship.local.engine import Engine
    from lambdaship.local.specs import image_spec as make_spec

    spec = make_spec(image_spec)
    engine = Engine(max_workers=1)
    gateway = Gateway(lambda payload: engine.invoke(spec, payload), routes=routes_for(spec.task_dir))
    try:
        t0 = time.perf_counter()
        resp = gateway.handle("GET", path, [("Host", "localhost")], b"")
        elapsed = time.perf_counter() - t0
    finally:
        engine.close()
    if not 200 <= resp.status < 300:
        raise LambdashipError(f"cold start: GET {path} answered {resp.status}: {resp.body[:200]!r}")
    return {"seconds": elapsed, "status": resp.status, "mode": "sandbox" if spec.sandboxed else "host"}
