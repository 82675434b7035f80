"""The embedded local stack: moto server (AWS control plane) + CNCF distribution (registry)
+ the data plane (``lambdaship.local.dataplane``) in front of moto.

``up`` starts the three on 127.0.0.1 with free ports, waits until they answer, enables image
functions in moto and records endpoints and PIDs in a state file. The data plane's URL is the
stack's one AWS endpoint (``AWS_ENDPOINT_URL``): it runs Lambda invocations and the local API
URLs itself and passes everything else to moto unchanged. ``down`` stops exactly the processes
recorded there (the data plane stops its function workers). Nothing in lambdaship
special-cases the local stack: it works because of ``AWS_ENDPOINT_URL`` and
``LAMBDASHIP_REGISTRY_URL``.

Regions: moto serves every region in one process (the region comes from each request's
signature); the data plane runs each region's functions (the region of the Invoke request's
signature); the one registry stands in for every region's ECR, other regions' repositories under
``<region>/`` (``LAMBDASHIP_REGISTRY_REGION`` names the stack's own region).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx

from lambdaship.errors import LambdashipError
from lambdaship.names import LOCAL_ACCOUNT
from lambdaship.paths import home  # one definition of the cache/state root

REGION = "us-east-1"
ACCOUNT_ID = LOCAL_ACCOUNT  # moto's default account
TEST_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


def default_state_dir() -> Path:
    return home() / "local"


@dataclass
class Service:
    name: str
    url: str
    pid: int
    log: str


@dataclass
class StackState:
    moto: Service
    registry: Service
    region: str
    state_dir: str
    dataplane: Service | None = None

    @property
    def endpoint(self) -> str:
        """The stack's AWS endpoint: the data plane (moto itself for a stack started without one)."""
        return self.dataplane.url if self.dataplane else self.moto.url

    def env(self) -> dict[str, str]:
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            **TEST_CREDENTIALS,
            "LAMBDASHIP_REGISTRY_URL": self.registry.url,
            # the registry stands in for every region's ECR; other regions' repositories are
            # "<region>/<name>" in it (lambdaship.oci.reference.local_repository_prefix)
            "LAMBDASHIP_REGISTRY_REGION": self.region,
        }

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> StackState:
        return cls(
            moto=Service(**data["moto"]),
            registry=Service(**data["registry"]),
            region=data["region"],
            state_dir=data["state_dir"],
            dataplane=Service(**data["dataplane"]) if data.get("dataplane") else None,
        )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _moto_command(port: int) -> list[str]:
    exe = shutil.which("moto_server")
    if exe:
        return [exe, "-H", "127.0.0.1", "-p", str(port)]
    try:
        import moto.server  # noqa: F401
    except ImportError:
        raise LambdashipError(
            "moto server is not installed",
            "install it with: pip install 'lambdaship[local]'  (or pip install 'moto[server]')",
        ) from None
    return [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]


def _registry_command() -> list[str]:
    exe = shutil.which("docker-registry") or shutil.which("registry")
    if not exe:
        raise LambdashipError(
            "the CNCF distribution registry (docker-registry) is not installed",
            "install it with: apt-get install -y docker-registry",
        )
    return [exe, "serve"]


def _registry_config(state_dir: Path, port: int) -> Path:
    cfg = state_dir / "registry.yml"
    storage = state_dir / "registry-data"
    storage.mkdir(parents=True, exist_ok=True)
    cfg.write_text(
        "version: 0.1\n"
        "log:\n  level: info\n  accesslog:\n    disabled: false\n"
        "storage:\n"
        f"  filesystem:\n    rootdirectory: {storage}\n"
        "  delete:\n    enabled: true\n"
        "  cache:\n    blobdescriptor: inmemory\n"
        "http:\n"
        f"  addr: 127.0.0.1:{port}\n"
        "  headers:\n    X-Content-Type-Options: [nosniff]\n"
    )
    return cfg


def _spawn(cmd: list[str], log: Path, env: dict[str, str] | None = None,
           drop: tuple[str, ...] = ()) -> subprocess.Popen:
    fh = log.open("ab")
    full = {k: v for k, v in {**os.environ, **(env or {})}.items() if k not in drop}
    try:
        return subprocess.Popen(
            cmd,
            stdout=fh,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env=full,
        )
    finally:
        fh.close()


def _wait_for(url: str, proc: subprocess.Popen, name: str, log: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace").strip().splitlines()[-1:] if log.exists() else []
            raise LambdashipError(
                f"{name} exited with code {proc.returncode} while starting"
                + (f": {tail[0][:200]}" if tail else ""),
                f"see {log}",
            )
        try:
            r = httpx.get(url, timeout=1.0)
            if r.status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise LambdashipError(f"{name} did not answer at {url} within {timeout:.0f}s", f"see {log}")


def start_registry(state_dir: Path, *, extra_config: str = "") -> tuple[str, subprocess.Popen]:
    """Start one more distribution registry on a free port (tests, benchmarks).

    ``extra_config``: YAML appended to the configuration (e.g. an ``auth:`` section).
    Returns (base URL, process); the caller stops it (``stop_registry``).
    """
    state_dir.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    log = state_dir / "registry.log"
    cfg = _registry_config(state_dir, port)
    if extra_config:
        cfg.write_text(cfg.read_text() + extra_config)
    proc = _spawn([*_registry_command(), str(cfg)], log)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_for(f"{url}/v2/", proc, "docker-registry", log)
    except BaseException:
        stop_registry(proc)
        raise
    return url, proc


def stop_registry(proc: subprocess.Popen) -> None:
    _stop_pid(proc.pid)
    with contextlib.suppress(subprocess.TimeoutExpired, ChildProcessError):
        proc.wait(timeout=5)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child counts as gone.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def state_path(state_dir: Path | None = None) -> Path:
    return (state_dir or default_state_dir()) / "state.json"


def read_state(state_dir: Path | None = None) -> StackState | None:
    path = state_path(state_dir)
    if not path.is_file():
        return None
    try:
        return StackState.from_json(json.loads(path.read_text()))
    except (ValueError, KeyError, TypeError):
        raise LambdashipError(
            f"the local stack state file {path} is corrupt",
            f"stop any leftover moto_server/docker-registry processes and delete {path}",
        ) from None


def up(state_dir: Path | None = None, region: str = REGION) -> StackState:
    """Start the stack (or return the running one)."""
    state_dir = (state_dir or default_state_dir()).resolve()
    existing = read_state(state_dir)
    if existing and all(_alive(svc.pid) for svc in _services(existing)) and existing.dataplane:
        return existing
    if existing:
        down(state_dir)
    moto_cmd = _moto_command(port := _free_port())
    registry_cmd = _registry_command()
    state_dir.mkdir(parents=True, exist_ok=True)

    moto_log = state_dir / "moto.log"
    moto_url = f"http://127.0.0.1:{port}"
    moto = _spawn(moto_cmd, moto_log, {"MOTO_ALLOW_NONEXISTENT_REGION": "true"})
    started = [moto]
    try:
        reg_port = _free_port()
        reg_log = state_dir / "registry.log"
        cfg = _registry_config(state_dir, reg_port)
        registry = _spawn([*registry_cmd, str(cfg)], reg_log)
        started.append(registry)
        reg_url = f"http://127.0.0.1:{reg_port}"
        _wait_for(f"{reg_url}/v2/", registry, "docker-registry", reg_log)
        _wait_for(f"{moto_url}/moto-api/", moto, "moto server", moto_log)
        r = httpx.post(f"{moto_url}/moto-api/config", json={"lambda": {"use_docker": False}}, timeout=10)
        r.raise_for_status()
        dp_url, dp = _start_dataplane(state_dir, moto_url, reg_url, region)
        started.append(dp)
    except BaseException:
        for p in reversed(started):
            _stop_pid(p.pid)
            with contextlib.suppress(subprocess.TimeoutExpired):
                p.wait(timeout=5)
        raise
    state = StackState(
        moto=Service("moto", moto_url, moto.pid, str(moto_log)),
        registry=Service("registry", reg_url, registry.pid, str(reg_log)),
        region=region,
        state_dir=str(state_dir),
        dataplane=Service("dataplane", dp_url, dp.pid, str(state_dir / "dataplane.log")),
    )
    state_path(state_dir).write_text(json.dumps(state.to_json(), indent=2))
    return state


def _start_dataplane(state_dir: Path, moto_url: str, registry_url: str, region: str
                     ) -> tuple[str, subprocess.Popen]:
    port = _free_port()
    log = state_dir / "dataplane.log"
    cmd = [sys.executable, "-m", "lambdaship.local.dataplane", "--moto", moto_url, "--state-dir", str(state_dir),
           "--port", str(port), "--region", region]
    # The stack's own credentials only: nothing of the user's AWS identity reaches the data plane.
    env = {"LAMBDASHIP_REGISTRY_URL": registry_url, "LAMBDASHIP_REGISTRY_REGION": region,
           "AWS_DEFAULT_REGION": region, "AWS_REGION": region, **TEST_CREDENTIALS}
    proc = _spawn(cmd, log, env, drop=("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"))
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_for(f"{url}/_lambdaship/dataplane", proc, "the data plane", log)
    except BaseException:
        _stop_pid(proc.pid)
        raise
    return url, proc


def _services(state: StackState) -> list[Service]:
    return [s for s in (state.dataplane, state.moto, state.registry) if s is not None]


_MARKERS = {"moto": "moto", "registry": "registry", "dataplane": "lambdaship.local.dataplane"}


def _stop_pid(pid: int, timeout: float = 5.0) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                done, _ = os.waitpid(pid, os.WNOHANG)
                if done == pid:
                    return
            except ChildProcessError:
                pass  # not our child: poll liveness instead
            if not _alive(pid):
                return
            time.sleep(0.02)


def down(state_dir: Path | None = None) -> list[int]:
    """Stop the processes recorded in the state file; return the PIDs that were stopped."""
    state = read_state(state_dir)
    if state is None:
        return []
    stopped = []
    for svc in _services(state):  # the data plane first: it stops its workers on SIGTERM
        # Only stop a PID that is still the process we started (PIDs get reused).
        if _alive(svc.pid) and re.search(re.escape(_MARKERS[svc.name]), _cmdline(svc.pid)):
            _stop_pid(svc.pid, timeout=10.0 if svc.name == "dataplane" else 5.0)
            stopped.append(svc.pid)
    state_path(state_dir).unlink(missing_ok=True)
    return stopped


def status(state_dir: Path | None = None) -> dict:
    state = read_state(state_dir)
    if state is None:
        return {"running": False}
    out: dict = {"running": True, "region": state.region, "endpoint": state.endpoint, "services": {}}
    probes = {"moto": "/moto-api/", "registry": "/v2/", "dataplane": "/_lambdaship/dataplane"}
    for svc in _services(state):
        probe = probes[svc.name]
        try:
            ok = httpx.get(svc.url + probe, timeout=2).status_code < 500
        except httpx.HTTPError:
            ok = False
        out["services"][svc.name] = {
            "url": svc.url, "pid": svc.pid, "alive": _alive(svc.pid), "answering": ok,
        }
        out["running"] = out["running"] and ok
    if state.dataplane is not None and out["services"]["dataplane"]["answering"]:
        out["endpoints"] = endpoints(state.dataplane.url, timeout=30)
    return out


def endpoints(dataplane_url: str, *, timeout: float) -> list[dict[str, Any]] | None:
    """The HTTP entry points the data plane serves (``/_lambdaship/endpoints``); None when it
    does not answer."""
    try:
        r = httpx.get(dataplane_url.rstrip("/") + "/_lambdaship/endpoints", timeout=timeout)
        return r.json() if r.status_code == 200 else None
    except (httpx.HTTPError, ValueError):
        return None


def local_lines(function: str, endpoint: str | None = None) -> list[str]:
    """One line per local HTTP entry point that calls ``function`` — when ``AWS_ENDPOINT_URL``
    (or ``endpoint``) is a lambdaship local stack on this machine; else nothing (no request
    leaves the machine). For ``deploy``'s summary."""
    from urllib.parse import urlsplit

    endpoint = (endpoint or os.environ.get("AWS_ENDPOINT_URL") or "").rstrip("/")
    if urlsplit(endpoint).hostname not in ("127.0.0.1", "localhost", "::1"):
        return []
    names = {"rest": "REST API stage", "http": "HTTP API stage", "function-url": "Function URL"}
    return [f"local {names.get(e['kind'], e['kind'])}"
            + (f" {e['stage']}" if e.get("stage") else "") + f": {e['url']}"
            for e in endpoints(endpoint, timeout=10) or []
            if isinstance(e, dict) and function in e.get("functions", [])]
