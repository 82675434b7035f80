"""A hostile handler inside the sandbox, on lambdaship's offline base: it tries to write the
rootfs, read host files and the caller's credentials, gain privileges, leave the sandbox,
fill /tmp, outlive its timeout and exhaust memory — as root and as an ordinary user.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from lambdaship.image.model import write_layout
from lambdaship.local import sandbox
from lambdaship.local.engine import Engine, FunctionSpec
from lambdaship.local.specs import image_spec
from tests.conftest import run_cli
from tests.images import docker_image, gz_layer, tar_layer

HOSTILE = r'''
import ctypes, json, os, socket, subprocess, time

def _try(fn):
    try:
        return "ok: " + repr(fn())[:200]
    except BaseException as exc:
        return f"{type(exc).__name__}: {exc}"[:200]

def _write(path):
    with open(path, "w") as fh:
        fh.write("pwned")

def handler(event, context):
    probe = event.get("probe")
    if probe == "writes":
        paths = ["/etc/passwd", "/var/task/main.py", "/usr/bin/pwned", "/lambda-entrypoint.sh", "/opt/x",
                 "/root/x", "/proc/sys/kernel/core_pattern", "/proc/sys/kernel/modprobe", "/proc/sys/vm/drop_caches",
                 "/proc/sysrq-trigger"] + event["host_paths"]
        return {p: _try(lambda p=p: _write(p)) for p in paths}
    if probe == "reads":
        paths = event["host_paths"] + ["/proc/1/root" + p for p in event["host_paths"]]
        out = {p: _try(lambda p=p: open(p).read()) for p in paths}
        out["/proc pids"] = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
        out["/dev"] = sorted(os.listdir("/dev"))
        out["mounts"] = open("/proc/self/mountinfo").read()
        return out
    if probe == "identity":
        status = dict(line.split(":", 1) for line in open("/proc/self/status"))
        libc = ctypes.CDLL(None, use_errno=True)
        return {"uid": os.getuid(), "gid": os.getgid(), "euid": os.geteuid(),
                "cap_eff": status["CapEff"].strip(), "cap_bnd": status["CapBnd"].strip(),
                "env": dict(os.environ),
                "chroot": _try(lambda: os.chroot("/tmp")),
                "unshare_user": libc.unshare(0x10000000),  # CLONE_NEWUSER
                "setuid0": _try(lambda: os.setuid(0)),
                "mount": _try(lambda: subprocess.run(["mount", "-o", "remount,rw", "/"], capture_output=True,
                                                     text=True, check=True)),
                "hostname": socket.gethostname()}
    if probe == "tmp":
        st = os.statvfs("/tmp")
        listing = {n: os.path.getsize("/tmp/" + n) for n in os.listdir("/tmp")}
        written, error = 0, None
        try:
            with open("/tmp/fill", "wb") as fh:
                for _ in range(event["mb"] * 2):
                    fh.write(b"\0" * (1 << 20))
                    fh.flush()
                    written += 1
        except OSError as exc:
            error = exc.errno
        os.unlink("/tmp/fill")
        return {"size_mb": st.f_blocks * st.f_frsize >> 20, "wrote_mb": written, "error": error, "before": listing}
    if probe == "linger":
        subprocess.Popen(["sleep", event["marker"]])
        time.sleep(60)
    if probe == "memory":
        hog = bytearray(event["mb"] << 20)
        for i in range(0, len(hog), 4096):
            hog[i] = 1
        return {"allocated_mb": len(hog) >> 20}
    return {"probe": probe}
'''


def hostile_layout(tmp: Path, code: str = HOSTILE, handler: str = "main.handler") -> Path:
    """lambdaship's offline base + one app layer with ``code`` as /var/task/main.py."""
    from lambdaship.local.base import base_image

    base = base_image()
    app = gz_layer(tar_layer(tmp, "app", [("dir", "var"), ("dir", "var/task"), ("file", "var/task/main.py", code)]))
    cfg = base.config_json
    cfg["config"]["Cmd"] = [handler]
    return write_layout(docker_image([*base.layers, app], cfg), tmp / "layout")


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Engine, FunctionSpec]]:
    layout = hostile_layout(tmp_path_factory.mktemp("hostile"))
    spec = image_spec(str(layout), timeout_s=3.0, ephemeral_mb=8, memory_mb=128)
    with Engine(max_workers=1) as engine:
        yield engine, spec


@pytest.fixture
def canaries() -> Iterator[list[Path]]:
    """Host files in /root and /tmp the function must neither read nor change."""
    tag = uuid.uuid4().hex[:8]
    paths = [Path(tempfile.gettempdir()) / f"lambdaship-canary-{tag}", Path.home() / f".lambdaship-canary-{tag}"]
    for p in paths:
        p.write_text(f"host secret {tag}\n")
    yield paths
    for p in paths:
        p.unlink(missing_ok=True)


def call(engine: Engine, spec: FunctionSpec, event: dict) -> dict:
    result = engine.invoke(spec, json.dumps(event).encode())
    assert result.ok, result.payload
    return json.loads(result.payload)


def test_the_handler_cannot_write_the_rootfs_or_the_host(hostile, canaries: list[Path]) -> None:
    engine, spec = hostile
    before = {p: p.read_text() for p in canaries}
    tree_before = sorted(str(p) for p in spec.rootfs.rglob("*"))[:5000]
    answer = call(engine, spec, {"probe": "writes", "host_paths": [str(p) for p in canaries]})
    for path, outcome in answer.items():
        if path.startswith(tempfile.gettempdir() + "/"):
            continue  # the sandbox's own /tmp: writable there, the host's file is checked below
        assert outcome.startswith(("OSError", "PermissionError", "FileNotFoundError")), (path, outcome)
    assert "Read-only file system" in answer["/etc/passwd"] and "Read-only file system" in answer["/var/task/main.py"]
    assert {p: p.read_text() for p in canaries} == before
    assert sorted(str(p) for p in spec.rootfs.rglob("*"))[:5000] == tree_before


def test_the_handler_sees_no_host_file_process_or_device(hostile, canaries: list[Path]) -> None:
    engine, spec = hostile
    answer = call(engine, spec, {"probe": "reads", "host_paths": [str(p) for p in canaries]})
    for p in canaries:
        assert answer[str(p)].startswith("FileNotFoundError"), answer[str(p)]
        assert not answer["/proc/1/root" + str(p)].startswith("ok"), "pid 1 is the sandbox's own"
    assert max(answer["/proc pids"]) < 10, "a pid namespace of its own"
    assert set(answer["/dev"]) <= {"console", "core", "fd", "full", "mqueue", "null", "ptmx", "pts", "random",
                                   "shm", "stderr", "stdin", "stdout", "tty", "urandom", "zero"}
    assert str(Path.home()) not in answer["mounts"].replace(str(spec.rootfs), "")


def test_the_handler_is_uid_993_without_capabilities_or_a_way_out(hostile) -> None:
    engine, spec = hostile
    answer = call(engine, spec, {"probe": "identity"})
    assert (answer["uid"], answer["gid"], answer["euid"]) == (993, 993, 993)
    assert int(answer["cap_eff"], 16) == 0 and int(answer["cap_bnd"], 16) == 0
    assert answer["chroot"].startswith("PermissionError") and not answer["setuid0"].startswith("ok")
    assert answer["unshare_user"] == -1, "no nested user namespace"
    assert not answer["mount"].startswith("ok")
    assert answer["hostname"] == "localhost"


def test_the_callers_aws_credentials_never_reach_the_function(tmp_path: Path, monkeypatch) -> None:
    canary = f"canarySecret{uuid.uuid4().hex}"
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", canary)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIACANARY00000000000")
    monkeypatch.setenv("AWS_SESSION_TOKEN", canary + "token")
    monkeypatch.setenv("LAMBDASHIP_HOST_ONLY", canary)
    layout = hostile_layout(tmp_path)
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"probe": "identity"}))
    proc = run_cli("run", str(layout), "--event", str(event), "--json")
    assert proc.returncode == 0, proc.stderr
    env = json.loads(proc.stdout)["result"]["env"]
    assert canary not in proc.stdout and canary not in proc.stderr
    assert not {"AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID", "AWS_SESSION_TOKEN", "LAMBDASHIP_HOST_ONLY"} & set(env)
    assert "the function has no AWS credentials" in proc.stderr
    # reserved variables are Lambda's
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == "function" and env["_HANDLER"] == "main.handler"
    assert env["LAMBDA_TASK_ROOT"] == "/var/task" and env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "512"
    handed = run_cli("run", str(layout), "--event", str(event), "--json", "--aws-credentials")
    assert handed.returncode == 0, handed.stderr
    env = json.loads(handed.stdout)["result"]["env"]
    assert env["AWS_SECRET_ACCESS_KEY"] == canary and "LAMBDASHIP_HOST_ONLY" not in env
    assert "the function has your temporary AWS credentials (access key AKIA…0000)" in handed.stderr
    assert canary not in handed.stderr


def test_tmp_is_capped_at_the_ephemeral_storage(hostile) -> None:
    engine, spec = hostile
    answer = call(engine, spec, {"probe": "tmp", "mb": spec.ephemeral_mb})
    assert answer["size_mb"] == spec.ephemeral_mb, answer
    assert answer["error"] == 28 and answer["wrote_mb"] <= spec.ephemeral_mb, answer  # ENOSPC


def _host_processes(marker: str) -> list[str]:
    out = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if marker in line and "ps -eo" not in line]


def test_the_timeout_kills_the_whole_sandbox(hostile) -> None:
    engine, spec = hostile
    marker = str(9000 + uuid.uuid4().int % 999)
    result = engine.invoke(spec, json.dumps({"probe": "linger", "marker": marker}).encode())
    assert result.timed_out and json.loads(result.payload)["errorType"] == "Sandbox.Timedout"
    for _ in range(50):
        if not _host_processes(f"sleep {marker}"):
            break
        import time

        time.sleep(0.1)
    assert _host_processes(f"sleep {marker}") == [], "the handler's children die with the sandbox"
    assert call(engine, spec, {"probe": "again"}) == {"probe": "again"}


def test_memory_is_capped(hostile) -> None:
    engine, spec = hostile
    over = spec.memory_mb + sandbox.AS_HEADROOM_MB + 64
    result = engine.invoke(spec, json.dumps({"probe": "memory", "mb": over}).encode())
    assert not result.ok
    error = json.loads(result.payload)
    assert error["errorType"] in ("MemoryError", "Runtime.ExitError"), error
    ok = call(engine, spec, {"probe": "memory", "mb": 16})
    assert ok == {"allocated_mb": 16}


def test_as_an_ordinary_user_the_same_sandbox_holds(hostile, canaries: list[Path]) -> None:
    """The bwrap command the engine builds, run by an unprivileged user (``lsuser``)."""
    _, spec = hostile
    before = {p: p.read_text() for p in canaries}
    if subprocess.run(["id", "lsuser"], capture_output=True).returncode != 0:
        subprocess.run(["useradd", "-m", "lsuser"], check=True)
    shared = Path(tempfile.mkdtemp(prefix="lambdaship-userbox-"))
    try:
        os.chmod(shared, 0o755)
        subprocess.run(["cp", "-a", "-l", str(spec.rootfs), str(shared / "rootfs")], check=True)
        box = sandbox.Box(shared / "rootfs", (), tmp_mb=4, memory_mb=128)
        targets = [str(p) for p in canaries] + ["/etc/passwd", "/proc/sys/kernel/core_pattern"]
        probe = ("import os, json; r = {}\n"
                 "for p in " + repr(targets) + ":\n"
                 "    try: open(p, 'a').write('x'); r[p] = 'written'\n"
                 "    except OSError as e: r[p] = type(e).__name__\n"
                 "try: bytearray(1 << 30); r['1GiB'] = 'allocated'\n"
                 "except MemoryError: r['1GiB'] = 'MemoryError'\n"
                 "r['uid'] = os.getuid(); print(json.dumps(r))\n")
        argv = ["prlimit", f"--as={(128 + sandbox.AS_HEADROOM_MB) << 20}", "--",
                *sandbox.command(box, ["/usr/bin/python3", "-c", probe])]
        proc = subprocess.run(["runuser", "-u", "lsuser", "--", "env", "-i", "PATH=/usr/bin:/bin", *argv],
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        answer = json.loads(proc.stdout)
        assert answer["uid"] == 993 and answer["1GiB"] == "MemoryError"
        assert answer["/etc/passwd"] in ("OSError", "PermissionError")  # EROFS / not the owner
        assert answer["/proc/sys/kernel/core_pattern"] in ("OSError", "PermissionError")
        home_canary = [p for p in canaries if not str(p).startswith(tempfile.gettempdir() + "/")]
        # the rootfs's own /root (0700, not the host's) or nothing at all
        assert all(answer[str(p)] in ("FileNotFoundError", "PermissionError") for p in home_canary), answer
        assert {p: p.read_text() for p in canaries} == before
    finally:
        shutil.rmtree(shared, ignore_errors=True)


def test_run_command_has_no_network_and_the_same_sandbox(hostile) -> None:
    """One-off commands (e.g. importing an app to read its model) get loopback only."""
    engine, spec = hostile
    code = "import os, socket; print(os.getuid(), [n for _, n in socket.if_nameindex()])"
    proc = engine.run_command(spec, ["python3", "-c", code], timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.decode().split(" ", 1) == ["993", "['lo']\n"]
