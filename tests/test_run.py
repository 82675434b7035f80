"""`lambdaship run`: layers → rootfs (whiteouts, symlink safety) and serving an image."""

from __future__ import annotations

import gzip
import io
import json
import os
import tarfile
from pathlib import Path

import pytest

from lambdaship.image.model import DOCKER_LAYER_GZIP, DOCKER_MANIFEST, Image, write_layout
from lambdaship.local.images import load_image
from lambdaship.local.rootcache import unpack
from lambdaship.local.rootfs import apply_layer
from tests.images import docker_image, gz_layer, tar_layer


def test_whiteouts_and_opaque_directories(tmp_path: Path) -> None:
    root = tmp_path / "root"
    l1 = tar_layer(tmp_path, "l1", [
        ("dir", "etc"), ("file", "etc/keep", "k"), ("file", "etc/gone", "g"),
        ("dir", "data"), ("file", "data/old1", "1"), ("dir", "data/sub"), ("file", "data/sub/old2", "2"),
        ("file", "bin/tool", "#!/bin/sh\n", 0o755),
    ])
    l2 = tar_layer(tmp_path, "l2", [
        ("file", "data/new", "n"), ("file", "data/.wh..wh..opq", ""),  # opaque after a same-layer entry
        ("file", "etc/.wh.gone", ""), ("file", "etc/keep", "k2"), ("hardlink", "etc/keep-link", "etc/keep"),
        ("chr", "dev/null"),
    ])
    apply_layer(l1, root)
    apply_layer(l2, root)
    assert (root / "etc/keep").read_text() == "k2"
    assert not (root / "etc/gone").exists()
    assert sorted(p.name for p in (root / "data").iterdir()) == ["new"]
    assert (root / "etc/keep-link").read_text() == "k2"
    assert os.access(root / "bin/tool", os.X_OK)
    assert not (root / "dev/null").exists(), "device nodes are skipped"


def test_symlinks_never_lead_outside_the_root(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    root = tmp_path / "root"
    l1 = tar_layer(tmp_path, "l1", [("symlink", "escape", str(outside)), ("symlink", "up", "../../..")])
    l2 = tar_layer(tmp_path, "l2", [("file", "escape/pwned", "x"), ("file", "up/also", "y"),
                                 ("file", "../../dotdot", "z")])
    apply_layer(l1, root)
    apply_layer(l2, root)
    assert list(outside.iterdir()) == []
    assert not (tmp_path / "dotdot").exists()
    # absolute link targets are re-rooted: /<outside> inside the root
    assert (root / str(outside).lstrip("/") / "pwned").read_text() == "x"
    assert (root / "also").read_text() == "y"
    assert (root / "dotdot").read_text() == "z"


def _image(layers: list[Path], cmd: list[str], *, arch: str = "amd64", **config: object) -> Image:
    """An image of the layer files ``layers``; ``config``: more keys of its runtime config (Entrypoint)."""
    return docker_image([gz_layer(blob) for blob in layers],
                        {"config": {"Cmd": cmd, "WorkingDir": "/var/task",
                                    "Env": ["LAMBDA_TASK_ROOT=/var/task", "GREETING=from-image"], **config}},
                        arch=arch)


def test_layout_round_trip_and_unpack(tmp_path: Path) -> None:
    app = tar_layer(tmp_path, "app", [("file", "var/task/main.py", "def handler(e, c):\n    return 1\n")])
    image = _image([app], ["main.handler"])
    layout = write_layout(image, tmp_path / "layout")
    loaded = load_image(str(layout))
    assert loaded.digest == image.digest
    root = unpack(loaded, tmp_path / "rootfs")
    assert (root / "var/task/main.py").is_file()


def test_rootfs_cache_reuses_unchanged_layers(tmp_path: Path) -> None:
    """A new app layer on the same base+deps unpacks only that layer, without touching the old tree."""
    from lambdaship.local.rootcache import cached_rootfs

    base = tar_layer(tmp_path, "base", [("dir", "usr"), ("file", "usr/lib.py", "base"), ("file", "etc/conf", "v1")])
    deps = tar_layer(tmp_path, "deps", [("file", "var/task/dep.py", "dep")])
    app1 = tar_layer(tmp_path, "app1", [("file", "var/task/app.py", "one"), ("file", "etc/conf", "app1")])
    app2 = tar_layer(tmp_path, "app2", [("file", "var/task/app.py", "two")])
    one = cached_rootfs(_image([base, deps, app1], ["app.h"]))
    unpacked: list[str] = []
    two = cached_rootfs(_image([base, deps, app2], ["app.h"]), progress=unpacked.append)
    assert len(unpacked) == 1 and unpacked[0].startswith("layer 3/3")
    assert (one / "var/task/app.py").read_text() == "one" and (two / "var/task/app.py").read_text() == "two"
    assert (one / "etc/conf").read_text() == "app1" and (two / "etc/conf").read_text() == "v1"
    assert (one / "usr/lib.py").stat().st_ino == (two / "usr/lib.py").stat().st_ino  # shared, not copied
    again: list[str] = []
    assert cached_rootfs(_image([base, deps, app2], ["app.h"]), progress=again.append) == two
    assert again == []


APP_CODE = (
    "import json, os\n"
    "def handler(event, context):\n"
    "    return {'statusCode': 200, 'body': json.dumps({'greeting': os.environ.get('GREETING'),"
    " 'path': event['path']})}\n"
)


def test_run_image_without_python_fails_in_one_line(tmp_path: Path) -> None:
    """No ENTRYPOINT and no Python in the image: it cannot run on Lambda, nor here."""
    from tests.conftest import run_cli

    app = tar_layer(tmp_path, "app", [("dir", "var/task"), ("file", "var/task/main.py", APP_CODE)])
    layout = write_layout(_image([app], ["main.handler"]), tmp_path / "layout")
    once = run_cli("run", str(layout), "--request", "GET", "/once", "--json")
    assert once.returncode == 1
    # Refused before any runtime starts: one error line, and under --json the same error as JSON.
    assert once.stderr.count("error: ") == 1 and "has no ENTRYPOINT and no Python" in once.stderr
    assert "has no ENTRYPOINT and no Python" in json.loads(once.stdout)["error"]


def test_run_without_namespaces_uses_the_host_python_in_isolation_mode(tmp_path: Path) -> None:
    """Where the sandbox is unavailable (macOS, Windows): the app layers on the host Python, said so."""
    from tests.conftest import run_cli
    from tests.test_serve import Served

    app = tar_layer(tmp_path, "app", [("dir", "var/task"), ("file", "var/task/main.py", APP_CODE)])
    layout = write_layout(_image([app], ["main.handler"]), tmp_path / "layout")
    env = {"LAMBDASHIP_SANDBOX": "none"}
    once = run_cli("run", str(layout), "--request", "GET", "/once", "--json", env=env)
    assert once.returncode == 0, once.stderr
    assert json.loads(once.stdout)["body"] == {"greeting": "from-image", "path": "/once"}
    assert "no sandbox here (LAMBDASHIP_SANDBOX=none)" in once.stderr and "host Python" in once.stderr
    os.environ["LAMBDASHIP_SANDBOX"] = "none"
    try:
        served = Served(["run", str(layout), "--port", "0"], command=None)
    finally:
        del os.environ["LAMBDASHIP_SANDBOX"]
    try:
        r = served.client.get("/hello")
        assert r.status_code == 200
        assert r.json() == {"greeting": "from-image", "path": "/hello"}
        assert "host Python" in served.log_text()
    finally:
        assert served.stop() == 0


def test_run_rejects_a_directory_that_is_not_a_layout(tmp_path: Path, cli) -> None:
    proc = cli("run", str(tmp_path))
    assert proc.returncode == 1
    assert proc.stderr.startswith("error: ") and "not an OCI image layout" in proc.stderr


@pytest.mark.slow
def test_run_chalice_image_on_the_debootstrap_base_in_the_sandbox(local_stack, tmp_path: Path) -> None:
    """Build examples/chalice-app on the offline base, push it, answer GET /health in the sandbox."""
    import uuid

    from lambdaship.config import load_project
    from lambdaship.image.build import build_image
    from lambdaship.local.base import ensure_base
    from lambdaship.registries import push_image
    from tests.conftest import EXAMPLES, run_cli
    from tests.test_serve import Served

    base_ref = ensure_base(local_stack.registry.url)
    assert base_ref.split("@")[0].endswith("/lambdaship/base")
    fn = load_project(EXAMPLES / "chalice-app").function()
    fn = fn.model_copy(update={"base_image": base_ref, "python": "3.11"})
    built = build_image(fn)
    host = local_stack.registry.url.removeprefix("http://")
    pushed = push_image(built.image, f"{host}/chalice-run-{uuid.uuid4().hex[:8]}")

    once = run_cli("run", pushed.image_ref, "--get", "/health", "--json")
    assert once.returncode == 0, once.stderr
    data = json.loads(once.stdout)
    assert data["status"] == 200 and data["body"] == {"status": "ok"}
    assert "sandbox: bubblewrap" in once.stderr, "the image's own runtime runs in the sandbox, not the host's"

    served = Served(["run", pushed.image_ref, "--port", "0", "--timeout", "1"], command=None)
    try:
        assert served.client.get("/health").json() == {"status": "ok"}
        assert served.client.get("/items/demo").json()["id"] == "demo"
        slow = served.client.get("/slow", params={"seconds": "30"})
        assert slow.status_code == 504  # the sandbox is SIGKILLed
        assert served.wait_log("Task timed out after 1.00 seconds")
        assert served.client.get("/health").status_code == 200
    finally:
        assert served.stop() == 0


@pytest.mark.slow
def test_offline_base_image_is_lambda_like(local_stack) -> None:
    """`lambdaship local base` pushes a Docker v2s2 image that skopeo reads, with Lambda's layout."""
    import subprocess

    from tests.conftest import run_cli

    proc = run_cli("local", "base", "--registry", local_stack.registry.url, "--json")
    assert proc.returncode == 0, proc.stderr
    info = json.loads(proc.stdout)
    assert info["python"] == "3.11"
    ref = info["ref"]
    raw = subprocess.run(["skopeo", "inspect", "--tls-verify=false", "--raw", f"docker://{ref}"],
                         capture_output=True, text=True, check=True)
    manifest = json.loads(raw.stdout)
    assert manifest["mediaType"] == DOCKER_MANIFEST
    assert all(layer["mediaType"] == DOCKER_LAYER_GZIP for layer in manifest["layers"])
    cfg = subprocess.run(["skopeo", "inspect", "--tls-verify=false", "--config", f"docker://{ref}"],
                         capture_output=True, text=True, check=True)
    config = json.loads(cfg.stdout)["config"]
    assert config["Entrypoint"] == ["/lambda-entrypoint.sh"]
    assert config["WorkingDir"] == "/var/task"
    assert "LAMBDA_TASK_ROOT=/var/task" in config["Env"]
    again = run_cli("local", "base", "--registry", local_stack.registry.url)
    assert again.returncode == 0 and again.stdout.strip() == ref, "cached: same digest, nothing rebuilt"


@pytest.mark.slow
def test_an_arm64_image_runs_under_qemu_user_in_the_sandbox(tmp_path: Path) -> None:
    """Target architecture ≠ host: one note line, and the image's binaries run under qemu-user
    (binfmt when registered, else the qemu-*-static binary bound into the sandbox)."""
    import platform
    import subprocess
    import sys
    import zipfile

    from lambdaship.local.engine import Engine
    from lambdaship.local.specs import image_spec

    assert platform.machine() == "x86_64", "this test builds an arm64 image for an x86_64 host"
    # a statically linked aarch64 executable from PyPI (ruff's musllinux wheel)
    subprocess.run([sys.executable, "-m", "pip", "download", "-q", "ruff==0.8.0", "--platform",
                    "musllinux_1_2_aarch64", "--only-binary=:all:", "--no-deps", "-d", str(tmp_path)], check=True)
    wheel = next(tmp_path.glob("ruff-*.whl"))
    with zipfile.ZipFile(wheel) as zf:
        binary = zf.read("ruff-0.8.0.data/scripts/ruff")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tf:
        info = tarfile.TarInfo("ruff")
        info.size, info.mode = len(binary), 0o755
        tf.addfile(info, io.BytesIO(binary))
    blob = tmp_path / "layer.tar.gz"
    blob.write_bytes(gzip.compress(buf.getvalue(), compresslevel=1))
    layout = write_layout(_image([blob], ["ignored.handler"], arch="arm64", Entrypoint=["/ruff"]), tmp_path / "layout")
    spec = image_spec(str(layout))
    assert any("not this machine's architecture" in n and "qemu-aarch64" in n for n in spec.notes), spec.notes
    with Engine() as engine:
        proc = engine.run_command(spec, ["/ruff", "--version"], timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.decode().strip() == "ruff 0.8.0"


def test_run_hands_the_function_env_options_and_the_projects_environment(tmp_path: Path) -> None:
    """run --env / --env-file, and -C: the function's [environment], env_file, name and limits."""
    from tests.conftest import run_cli
    from tests.hostile.test_image_sandbox import hostile_layout

    layout = hostile_layout(tmp_path)
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"probe": "identity"}))
    dotenv = tmp_path / "extra.env"
    dotenv.write_text("FROM_FILE=file\nBOTH=file\n")
    proc = run_cli("run", str(layout), "--event", str(event), "--json", "--env", "BOTH=cli", "--env", "ONLY=cli",
                   "--env-file", str(dotenv))
    assert proc.returncode == 0, proc.stderr
    env = json.loads(proc.stdout)["result"]["env"]
    assert (env["FROM_FILE"], env["BOTH"], env["ONLY"]) == ("file", "cli", "cli")
    assert env["LAMBDA_RUNTIME_DIR"] == "/var/runtime", "the image's Env is kept"
    project = tmp_path / "project"
    project.mkdir()
    (project / "lambdaship.toml").write_text(
        'function_name = "envy"\nhandler = "main.handler"\nmemory = 256\nenv_file = ".env"\n'
        '[environment]\nSTAGE = "dev"\nBOTH = "config"\n')
    (project / "main.py").write_text("def handler(event, context):\n    return 1\n")
    (project / ".env").write_text("BOTH=dotenv\n")
    proc = run_cli("run", str(layout), "-C", str(project), "--event", str(event), "--json", "--env", "ONLY=cli")
    assert proc.returncode == 0, proc.stderr
    env = json.loads(proc.stdout)["result"]["env"]
    assert (env["STAGE"], env["BOTH"], env["ONLY"]) == ("dev", "dotenv", "cli")
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == "envy" and env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "256"
    bad = run_cli("run", str(layout), "--env", "NOEQUALS", "--get", "/")
    assert bad.returncode == 2 and "is not KEY=VALUE" in bad.stderr
