"""Glue for ``invoke --local``, ``serve`` and ``run``: a function's runtime pool, the code
watcher that reloads it, and the blocking HTTP server loop."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TextIO

from lambdaship.config import FunctionConfig, is_chalice_app
from lambdaship.errors import LambdashipError
from lambdaship.local.gateway import Gateway, Route, chalice_routes, make_server
from lambdaship.local.runtime_api import LogSink, RuntimeAPI

SKIP_DIRS = {".git", "__pycache__", ".venv", "venv", "node_modules", ".chalice", ".pytest_cache", ".mypy_cache",
             ".ruff_cache", "build", "dist", ".lambdaship"}


def host_pythonpath(fn: FunctionConfig) -> tuple[list[Path], str | None]:
    """The app directory plus its dependencies installed (cached) for this host's Python.

    Returns the path list and a note for the user (None when nothing to say).
    """
    from lambdaship.package import deps

    paths = [fn.source]
    note = None
    result = deps.install(fn, target="host")
    dep_path = Path(result.path)
    if dep_path.is_dir():
        paths.append(dep_path)
    host = f"{sys.version_info.major}.{sys.version_info.minor}"
    if host != fn.python:
        note = f"running on the host's Python {host} (the function targets Python {fn.python})"
    return paths, note


def local_environment(fn: FunctionConfig, env_file: Path | str | None = None, secrets: bool = False
                      ) -> dict[str, str]:
    """The function's environment for a local run: config ``environment`` + the env file;
    with ``secrets`` also SSM / Secrets Manager (the same merge as ``lambdaship env``)."""
    from lambdaship.deploy import env as env_mod

    if secrets:
        return dict(env_mod.resolve(fn, env_file).values)
    values = dict(fn.environment)
    path = env_mod.env_file_path(fn, env_file)
    if path is not None:
        if not path.is_file():
            what = "is not a regular file" if path.exists() else "does not exist"
            raise LambdashipError(f"env file {path} {what}", "create it or fix env_file / --env-file")
        values.update(env_mod.parse_env_file(path))
    return values


def function_runtime(fn: FunctionConfig, *, max_workers: int = 2, log_sink: LogSink | None = None,
                     timeout: float | None = None, pythonpath: list[Path] | None = None,
                     environment: dict[str, str] | None = None) -> RuntimeAPI:
    """A RuntimeAPI running ``fn``'s handler from its source directory on the host Python."""
    from lambdaship.project import check_handler

    check_handler(fn)
    if pythonpath is None:
        pythonpath, _ = host_pythonpath(fn)
    return RuntimeAPI(
        fn.resolved_handler,
        cwd=fn.source,
        pythonpath=pythonpath,
        environment=dict(fn.environment) if environment is None else environment,
        timeout=float(timeout if timeout is not None else fn.timeout),
        memory=fn.memory,
        function_name=fn.function_name,
        max_workers=max_workers,
        log_sink=log_sink,
        python_version=f"{sys.version_info.major}.{sys.version_info.minor}",
    )


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
def serve_forever(api: RuntimeAPI, gateway: Gateway, *, host: str, port: int, banner: list[str],
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
PYTHON_CANDIDATES = ("var/lang/bin/python3", "usr/local/bin/python3", "usr/bin/python3")
CHROOT_SCRIPT = (
    'R="$1"; shift; '
    'mount --rbind /dev "$R/dev" 2>/dev/null || true; '
    'mount -t proc proc "$R/proc" 2>/dev/null || true; '
    'mount -t tmpfs -o mode=1777 tmpfs "$R/tmp" 2>/dev/null || true; '
    'if [ -f /etc/resolv.conf ] && [ -f "$R/etc/resolv.conf" ]; then '
    'mount --bind /etc/resolv.conf "$R/etc/resolv.conf" 2>/dev/null || true; fi; '
    'exec chroot "$R" "$@"'
)
HOST_PASSTHROUGH = ("HOME", "LANG", "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "AWS_CA_BUNDLE",
                    "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL")


def _image_python(rootfs: Path) -> str | None:
    from lambdaship.local.rootfs import _resolve_parent

    for cand in PYTHON_CANDIDATES:
        real = _resolve_parent(rootfs, cand)
        if (rootfs / real).is_file():
            return "/" + cand
    return None


def chroot_usable(rootfs: Path) -> tuple[bool, str]:
    """Can this machine run the image's own runtime in a chroot? (False, why) if not."""
    import subprocess

    if os.geteuid() != 0:
        return False, "not running as root"
    if not (shutil_which("unshare") and shutil_which("chroot")):
        return False, "unshare/chroot are not installed"
    py = _image_python(rootfs)
    if py is None:
        return False, "the image has no Python interpreter"
    marker = rootfs.parent / ".lambdaship-chroot-ok"
    if marker.is_file():
        return True, py
    try:
        proc = subprocess.run(["unshare", "--mount", "--pid", "--fork", "--kill-child", "chroot", str(rootfs), py,
                               "-c", "import awslambdaric"], capture_output=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"cannot start the image's Python ({exc})"
    if proc.returncode != 0:
        return False, f"the image's Python cannot import awslambdaric ({proc.stderr.decode(errors='replace')[-120:]})"
    marker.write_text(py + "\n")
    return True, py


def shutil_which(name: str) -> str | None:
    import shutil

    return shutil.which(name)


def image_runtime(image_config: dict, rootfs: Path, *, max_workers: int = 2, log_sink: LogSink | None = None,
                  timeout: float = 30.0, memory: int = 512, force_host: bool = False
                  ) -> tuple[RuntimeAPI, list[Route] | None, list[str]]:
    """A RuntimeAPI for an unpacked image: its ENTRYPOINT + CMD in a chroot, or (not root / no
    runnable Python) its app and dependency layers on the host Python. Returns notes to show."""
    cfg = image_config.get("config") or {}
    entrypoint = list(cfg.get("Entrypoint") or [])
    cmd = list(cfg.get("Cmd") or [])
    env = dict(e.split("=", 1) for e in cfg.get("Env") or [] if "=" in e)
    labels = cfg.get("Labels") or {}
    workdir = cfg.get("WorkingDir") or "/"
    task_root = env.get("LAMBDA_TASK_ROOT") or (workdir if workdir != "/" else "/var/task")
    if not cmd:
        raise LambdashipError("the image has no CMD (the handler)",
                              "build it with lambdaship, or set CMD to 'module.function'")
    handler = cmd[0]
    name = labels.get("dev.lambdaship.function") or "image"
    task_dir = rootfs / task_root.lstrip("/")
    routes = routes_for(task_dir) if task_dir.is_dir() else None
    notes: list[str] = []
    usable, why = (False, "--host-python given") if force_host else chroot_usable(rootfs)
    passthrough = {k: os.environ[k] for k in HOST_PASSTHROUGH if k in os.environ}
    if usable:
        for d in ("dev", "proc", "tmp"):
            p = rootfs / d
            if not p.is_symlink():
                p.mkdir(exist_ok=True)
        inner = [*entrypoint, *cmd] if entrypoint else [why, "-m", "awslambdaric", *cmd]
        if (rootfs / "bin" / "sh").exists() or (rootfs / "bin").is_symlink():
            inner = ["/bin/sh", "-c", 'cd "$0" 2>/dev/null; exec "$@"', workdir, *inner]
        command = ["unshare", "--mount", "--pid", "--fork", "--kill-child", "/bin/sh", "-c", CHROOT_SCRIPT, "sh",
                   str(rootfs), *inner]
        base_env = {k: v for k, v in passthrough.items() if k.startswith("AWS_")}
        base_env.update(env)
        base_env.pop("PYTHONPATH", None)
        api = RuntimeAPI(handler, cwd=rootfs, environment={}, timeout=timeout, memory=memory, function_name=name,
                         max_workers=max_workers, command=command, log_sink=log_sink, base_env=base_env,
                         task_root=task_root, python_version="3")
        notes.append(f"running {' '.join(entrypoint + cmd)} in a chroot of the image (pid namespace)")
    else:
        pythonpath = [task_dir]
        for extra in ("opt/python",):
            if (rootfs / extra).is_dir():
                pythonpath.append(rootfs / extra)
        base_env = dict(passthrough)
        base_env["PATH"] = os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin")
        base_env.update({k: v for k, v in env.items()
                         if k not in ("PATH", "PYTHONPATH", "LAMBDA_TASK_ROOT", "LAMBDA_RUNTIME_DIR", "HOME")})
        api = RuntimeAPI(handler, cwd=task_dir if task_dir.is_dir() else rootfs, pythonpath=pythonpath,
                         timeout=timeout, memory=memory, function_name=name, max_workers=max_workers,
                         log_sink=log_sink, base_env=base_env)
        notes.append(f"running the image's app and dependency layers with the host Python "
                     f"{sys.version_info.major}.{sys.version_info.minor} ({why}); its OS layers are not used")
    return api, routes, notes


def cold_start(image_spec: str, path: str = "/health", *, force_host: bool = False) -> dict[str, float | str]:
    """Time a fresh runtime of an image (already unpacked/cached) to its first HTTP answer.

    Returns seconds from spawning the runtime to the answer, the runtime's own init duration
    and the mode ("chroot" or "host"). Used by the benchmarks (issue 11's cold-start figure).
    """
    from lambdaship.local.rootfs import cached_rootfs, load_image

    img = load_image(image_spec)
    rootfs = cached_rootfs(img)
    api, routes, notes = image_runtime(img.config_json, rootfs, max_workers=1, force_host=force_host)
    gateway = Gateway(api.invoke, routes=routes)
    try:
        t0 = time.perf_counter()
        resp = gateway.handle("GET", path, [("Host", "localhost")], b"")
        elapsed = time.perf_counter() - t0
    finally:
        api.close()
    if not 200 <= resp.status < 300:
        raise LambdashipError(f"cold start: GET {path} answered {resp.status}: {resp.body[:200]!r}")
    return {"seconds": elapsed, "status": resp.status,
            "mode": "chroot" if notes and "chroot" in notes[0] else "host"}
