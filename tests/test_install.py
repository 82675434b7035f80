"""`pip install lambdaship` works everywhere: the built wheel installs into a clean venv without the
Linux-only extras, and every required dependency has wheels for macOS and Windows."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.slow


def _pip(*args: str, python: str = sys.executable, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([python, "-m", "pip", "--disable-pip-version-check", *args], capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    r = _pip("wheel", str(REPO), "--no-deps", "-q", "-w", str(out))
    assert r.returncode == 0, r.stderr
    (built,) = out.glob("lambdaship-*.whl")
    return built


@pytest.fixture(scope="module")
def clean_venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with only the wheel and its required dependencies (no extras)."""
    root = tmp_path_factory.mktemp("venv") / "v"
    venv.EnvBuilder(with_pip=True).create(root)
    python = str(root / "bin" / "python")
    r = _pip("install", "-q", str(wheel), python=python)
    assert r.returncode == 0, r.stderr
    return root


def _in_venv(root: Path, *args: str, cwd: Path | None = None, env: dict[str, str] | None = None
             ) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    full["PATH"] = f"{root / 'bin'}{os.pathsep}{full.get('PATH', '')}"
    full.update(env or {})
    return subprocess.run([str(root / "bin" / "lambdaship"), *args], capture_output=True, text=True, env=full,
                          cwd=cwd, timeout=300)


def test_wheel_installs_into_a_clean_venv_and_runs(clean_venv: Path):
    r = _in_venv(clean_venv, "--version")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "lambdaship 0.1.0"
    r = _in_venv(clean_venv, "--help")
    assert r.returncode == 0, r.stderr
    for command in ("build", "deploy", "init", "status", "invoke"):
        assert command in r.stdout
    for command in ("build", "deploy", "status", "init", "size"):
        r = _in_venv(clean_venv, command, "--help")
        assert r.returncode == 0, (command, r.stderr)


def test_clean_venv_has_no_extras_and_came_from_our_wheel(clean_venv: Path, wheel: Path):
    python = str(clean_venv / "bin" / "python")
    r = _pip("list", "--format", "json", python=python)
    names = {p["name"].lower() for p in json.loads(r.stdout)}
    assert "lambdaship" in names
    assert not names & {"awslambdaric", "moto", "chalice", "pytest"}
    r = subprocess.run([python, "-c", "import lambdaship, sys; print(lambdaship.__file__)"], capture_output=True,
                       text=True)
    assert str(clean_venv) in r.stdout and str(REPO) not in r.stdout


def test_local_execution_without_the_extra_is_one_line_with_the_install_hint(clean_venv: Path, tmp_path: Path):
    """Without the sandbox (macOS, Windows: LAMBDASHIP_SANDBOX=none) the handler runs on this
    machine's Python, which needs awslambdaric: one line with the install command."""
    (tmp_path / "app.py").write_text("def handler(event, context):\n    return {'ok': 1}\n")
    (tmp_path / "lambdaship.toml").write_text('function_name = "fn"\nhandler = "app.handler"\n')
    r = _in_venv(clean_venv, "invoke", "--local", "-C", str(tmp_path), cwd=tmp_path,
                 env={"LAMBDASHIP_SANDBOX": "none"})
    assert r.returncode == 1, r.stdout + r.stderr
    assert r.stderr.strip().splitlines()[-1] == (
        "error: running a handler on this machine needs awslambdaric, which is not installed; "
        "pip install 'lambdaship[local]'")
    assert "Traceback" not in r.stderr


REQUIRED_PLATFORMS = ("macosx_11_0_arm64", "macosx_10_12_x86_64", "win_amd64")


@pytest.mark.parametrize("platform", REQUIRED_PLATFORMS)
def test_every_required_dependency_has_a_wheel_for(platform: str, wheel: Path, tmp_path: Path):
    r = _pip("download", "-q", str(wheel), "--platform", platform, "--only-binary", ":all:",
             "--python-version", "3.11", "-d", str(tmp_path))
    assert r.returncode == 0, r.stderr[-2000:]
    got = sorted(p.name for p in tmp_path.glob("*.whl"))
    assert any(n.startswith("uv-") for n in got) and any(n.startswith("pydantic_core-") for n in got)
    assert not any(n.startswith("awslambdaric") for n in got)
    native = [n for n in got if not n.endswith("-none-any.whl")]
    tag = "win_amd64" if platform.startswith("win") else "macosx"
    assert all(tag in n for n in native), native


def pwd_uid(user: str) -> int:
    import pwd

    return pwd.getpwnam(user).pw_uid


def _lsuser() -> str:
    import pwd

    try:
        pwd.getpwnam("lsuser")
    except KeyError:
        subprocess.run(["useradd", "-m", "lsuser"], check=True)
    return "lsuser"


@pytest.fixture
def unprivileged_dir():
    """A directory the unprivileged user can reach (pytest's own temp root is 0700 root)."""
    import shutil
    import tempfile

    d = Path(tempfile.mkdtemp(prefix="lambdaship-unpriv-"))
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def test_unprivileged_user_installs_the_wheel_and_inits_a_monorepo(wheel: Path, unprivileged_dir: Path):
    """As a normal user, with the system Python: venv, pip install, init + size of a monorepo."""
    import shutil

    user = _lsuser()
    base = unprivileged_dir
    shutil.copy(wheel, base / wheel.name)
    repo = base / "repo"
    (repo / "functions" / "api").mkdir(parents=True)
    (repo / "functions" / "api" / "handler.py").write_text("def handler(event, context):\n    return 1\n")
    (repo / "functions" / "api" / "requirements.txt").write_text("six==1.17.0\n")
    subprocess.run(["chown", "-R", user, str(base)], check=True)
    env = {"HOME": f"/home/{user}", "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
    # The machine's CA settings, as the user's own shell has them (uv verifies PyPI with them).
    env.update({k: os.environ[k] for k in ("SSL_CERT_FILE", "SSL_CERT_DIR") if k in os.environ})

    def as_user(*cmd: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["runuser", "-u", user, "--", "env", "-i", *(f"{k}={v}" for k, v in env.items()),
                               *cmd], capture_output=True, text=True, timeout=600)

    r = as_user("/usr/bin/python3", "-m", "venv", str(base / "v"))
    assert r.returncode == 0, r.stderr
    r = as_user(str(base / "v" / "bin" / "pip"), "install", "-q", str(base / wheel.name))
    assert r.returncode == 0, r.stderr
    exe = str(base / "v" / "bin" / "lambdaship")
    r = as_user(exe, "init", str(repo))
    assert r.returncode == 0, r.stderr
    assert "(1 functions)" in r.stdout
    home = base / "lshome"
    r = as_user("/usr/bin/env", f"LAMBDASHIP_HOME={home}", exe, "size", "-C", str(repo), "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["app_size"] > 0
    # The user's dependency tree: installed by uv as that user, hard-linked into the user's own uv cache.
    (six,) = home.glob("deps/*/tree/six.py")
    assert six.stat().st_uid == pwd_uid(user) and six.stat().st_nlink >= 2
