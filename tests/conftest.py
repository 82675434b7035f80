"""Shared fixtures: the real local stack (moto server + distribution registry), started once."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from lambdaship.local import stack

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"


@pytest.fixture(scope="session", autouse=True)
def _isolated_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Caches and state of lambdaship go to a per-session directory, never ~/.cache."""
    home = tmp_path_factory.mktemp("lambdaship-home")
    old = os.environ.get("LAMBDASHIP_HOME")
    os.environ["LAMBDASHIP_HOME"] = str(home)
    yield home
    if old is None:
        os.environ.pop("LAMBDASHIP_HOME", None)
    else:
        os.environ["LAMBDASHIP_HOME"] = old


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[stack.StackState]:
    """moto server + docker-registry on free ports; the environment points boto3 at them."""
    state_dir = tmp_path_factory.mktemp("stack")
    state = stack.up(state_dir)
    saved = {k: os.environ.get(k) for k in state.env()}
    os.environ.update(state.env())
    try:
        yield state
    finally:
        stack.down(state_dir)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def run_cli(
    *args: str, cwd: Path | str | None = None, env: dict[str, str] | None = None, timeout: float = 300,
    input: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``lambdaship`` as a user would: a real process, its stdout/stderr captured."""
    return subprocess.run(
        [sys.executable, "-m", "lambdaship.cli", *args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        input=input,
    )


def cli_json(*args: str, cwd: Path | str | None = None) -> dict:
    """``lambdaship ARGS`` (``--json`` among them), which must succeed: its JSON output."""
    proc = run_cli(*args, cwd=cwd)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def example_copy(name: str, dest: Path) -> Path:
    """A copy of ``examples/NAME`` at ``dest``, for a test to change (never the example itself)."""
    shutil.copytree(EXAMPLES / name, dest)
    return dest


@pytest.fixture
def cli():
    return run_cli


@pytest.fixture(scope="session")
def base_image_ref(local_stack: stack.StackState, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A tiny Lambda-like base image in the local registry (Docker v2s2, gzip layers, amd64).

    Config: Entrypoint ["/lambda-entrypoint.sh"], Env with LAMBDA_TASK_ROOT=/var/task,
    WorkingDir /var/task. Returns ``127.0.0.1:PORT/lambda-base/python:3.12``.
    """
    from tests.images import push_base

    return push_base(local_stack.registry.url, tmp_path_factory.mktemp("base-image"))


@pytest.fixture(scope="session")
def lambda_base(local_stack: stack.StackState) -> str:
    """The offline Lambda-like base (debootstrap: Python 3.11 + awslambdaric) in the stack's
    registry: images on it really run on the stack's data plane. Built once, cached under
    ``paths.base_cache_dir()``; returns ``127.0.0.1:PORT/lambdaship/base@sha256:…``."""
    from lambdaship.local.base import ensure_base

    return ensure_base(local_stack.registry.url)
