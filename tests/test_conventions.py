"""boto3 configuration as users bring it: AWS_REGION, profiles, --region/--profile, -v, --debug,
NO_COLOR, shell completion. Against the local stack (moto server)."""

from __future__ import annotations

import contextlib
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import boto3
import pytest

from tests.test_deploy import make_project, uid

OTHER_REGION = "eu-west-3"
_AWS_VARS = ("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_CONFIG_FILE")


def _run(
    *args: str, env: dict[str, str], cwd: Path | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """The CLI with exactly the AWS variables in ``env`` (the rest of os.environ minus _AWS_VARS)."""
    base = {k: v for k, v in os.environ.items() if k not in _AWS_VARS}
    return subprocess.run([sys.executable, "-m", "lambdaship.cli", *args], env={**base, **env}, cwd=cwd,
                          capture_output=True, text=True, timeout=timeout)


def _log_event_in(region: str, name: str, message: str) -> None:
    logs = boto3.client("logs", region_name=region)
    group = f"/aws/lambda/{name}"
    with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
        logs.create_log_group(logGroupName=group)
    logs.create_log_stream(logGroupName=group, logStreamName="s")
    logs.put_log_events(logGroupName=group, logStreamName="s",
                        logEvents=[{"timestamp": int(time.time() * 1000), "message": message}])


@pytest.fixture
def regional_project(local_stack, tmp_path):
    """A project whose function has one log event in OTHER_REGION only."""
    name = uid()
    _log_event_in(OTHER_REGION, name, f"hello from {OTHER_REGION}")
    return make_project(tmp_path / "app", name, role=None)


def test_aws_region_alone_is_honoured(local_stack, regional_project):
    env = {"AWS_ENDPOINT_URL": local_stack.moto.url, "AWS_REGION": OTHER_REGION}
    r = _run("logs", "-C", str(regional_project), env=env)
    assert r.returncode == 0, r.stderr
    assert f"hello from {OTHER_REGION}" in r.stdout
    r = _run("status", "-C", str(regional_project), "--json", env=env)
    assert "no AWS region" not in r.stderr and '"exists": false' in r.stdout


def test_aws_region_wins_over_aws_default_region(local_stack, regional_project):
    env = {"AWS_ENDPOINT_URL": local_stack.moto.url, "AWS_REGION": OTHER_REGION, "AWS_DEFAULT_REGION": "us-west-2"}
    r = _run("logs", "-C", str(regional_project), env=env)
    assert r.returncode == 0 and f"hello from {OTHER_REGION}" in r.stdout, r.stderr


def test_aws_default_region_alone_is_honoured(local_stack, regional_project):
    env = {"AWS_ENDPOINT_URL": local_stack.moto.url, "AWS_DEFAULT_REGION": OTHER_REGION}
    r = _run("logs", "-C", str(regional_project), env=env)
    assert r.returncode == 0 and f"hello from {OTHER_REGION}" in r.stdout, r.stderr


def test_region_flag_overrides_the_environment(local_stack, regional_project):
    env = {"AWS_ENDPOINT_URL": local_stack.moto.url, "AWS_REGION": "us-west-2", "AWS_DEFAULT_REGION": "us-west-2"}
    r = _run("logs", "-C", str(regional_project), env=env)
    assert r.returncode == 1 and "does not exist" in r.stderr
    r = _run("--region", OTHER_REGION, "logs", "-C", str(regional_project), env=env)
    assert r.returncode == 0 and f"hello from {OTHER_REGION}" in r.stdout, r.stderr


def test_no_region_anywhere_is_one_line_with_the_fix(local_stack, regional_project, tmp_path):
    (tmp_path / "empty-config").write_text("")
    env = {"AWS_ENDPOINT_URL": local_stack.moto.url, "AWS_CONFIG_FILE": str(tmp_path / "empty-config")}
    r = _run("logs", "-C", str(regional_project), env=env)
    assert r.returncode == 1
    assert r.stderr.strip().splitlines() == [
        "error: no AWS region configured; set AWS_REGION or use --region"]


def _profile_file(tmp_path: Path, moto_url: str) -> Path:
    cfg = tmp_path / "aws-config"
    cfg.write_text(f"[default]\nregion = us-west-2\n\n[profile team]\nregion = {OTHER_REGION}\n"
                   f"endpoint_url = {moto_url}\naws_access_key_id = testing\naws_secret_access_key = testing\n")
    return cfg


def test_profile_flag_brings_region_and_endpoint(local_stack, regional_project, tmp_path):
    env = {"AWS_CONFIG_FILE": str(_profile_file(tmp_path, local_stack.moto.url))}
    r = _run("--profile", "team", "logs", "-C", str(regional_project), env=env)
    assert r.returncode == 0 and f"hello from {OTHER_REGION}" in r.stdout, r.stderr


def test_aws_profile_variable_brings_region_and_endpoint(local_stack, regional_project, tmp_path):
    env = {"AWS_CONFIG_FILE": str(_profile_file(tmp_path, local_stack.moto.url)), "AWS_PROFILE": "team"}
    r = _run("logs", "-C", str(regional_project), env=env)
    assert r.returncode == 0 and f"hello from {OTHER_REGION}" in r.stdout, r.stderr
    r = _run("--region", "us-west-2", "logs", "-C", str(regional_project), env=env)
    assert r.returncode == 1 and "does not exist" in r.stderr


def test_unknown_profile_is_a_config_error(local_stack, regional_project, tmp_path):
    env = {"AWS_CONFIG_FILE": str(_profile_file(tmp_path, local_stack.moto.url))}
    r = _run("--profile", "nope", "logs", "-C", str(regional_project), env=env)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        "error: AWS profile 'nope' not found; check --profile / AWS_PROFILE against ~/.aws/config "
        "(or AWS_CONFIG_FILE)"]


def _dead_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def test_dead_endpoint_fails_within_seconds_and_verbose_shows_retries(local_stack, regional_project):
    env = {"AWS_ENDPOINT_URL": _dead_url(), "AWS_REGION": OTHER_REGION}
    started = time.monotonic()
    r = _run("logs", "-C", str(regional_project), env=env)
    quiet_elapsed = time.monotonic() - started
    assert r.returncode == 1 and r.stderr.startswith("error: cannot reach the AWS endpoint"), r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert quiet_elapsed < 10, quiet_elapsed  # 3 attempts, ~1.5 s of backoff, plus start-up on a busy machine
    r = _run("-v", "logs", "-C", str(regional_project), env=env)
    assert r.returncode == 1
    assert "Retry needed, retrying request after delay of" in r.stderr
    assert re.search(r"aws: POST http://127\.0\.0\.1:\d+/ → EndpointConnectionError", r.stderr), r.stderr
    assert "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith("error: cannot reach the AWS endpoint")


def test_verbose_logs_each_call_with_status_and_timing(local_stack, regional_project):
    env = {"AWS_ENDPOINT_URL": local_stack.moto.url, "AWS_REGION": OTHER_REGION}
    r = _run("--verbose", "logs", "-C", str(regional_project), env=env)
    assert r.returncode == 0, r.stderr
    assert re.search(r"aws: POST http://127\.0\.0\.1:\d+/ → 200 in \d+\.\d\ds", r.stderr), r.stderr
    assert "AKIA" not in r.stderr and "Authorization" not in r.stderr and "testing" not in r.stderr
    assert f"hello from {OTHER_REGION}" in r.stdout and "aws:" not in r.stdout


def test_debug_prints_the_traceback_then_the_one_line_error(local_stack, regional_project):
    env = {"AWS_ENDPOINT_URL": _dead_url(), "AWS_REGION": OTHER_REGION}
    r = _run("--debug", "logs", "-C", str(regional_project), env=env)
    assert r.returncode == 1
    assert "Traceback (most recent call last)" in r.stderr and "EndpointConnectionError" in r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith("error: cannot reach the AWS endpoint")


def test_no_color_removes_colour_codes():
    forced = {"FORCE_COLOR": "1", "TERM": "xterm-256color", "COLUMNS": "100"}
    coloured = _run("--help", env=forced)
    assert re.search(r"\x1b\[[0-9;]*3\dm", coloured.stdout), "help is coloured on a forced terminal"
    plain = _run("--help", env={**forced, "NO_COLOR": "1"})
    assert plain.returncode == 0 and "--profile" in re.sub(r"\x1b\[[0-9;]*m", "", plain.stdout)
    assert not re.search(r"\x1b\[[0-9;]*3\dm", plain.stdout)


def test_shell_completion_script_is_available():
    # typer detects the shell from the parent process (shellingham): run it from bash (the
    # trailing command keeps bash from exec-ing python in its place).
    r = subprocess.run(["bash", "-c", f"'{sys.executable}' -m lambdaship.cli --show-completion; exit $?"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "_LAMBDASHIP_COMPLETE" in r.stdout and "complete " in r.stdout
    r = subprocess.run([sys.executable, "-m", "lambdaship.cli"], capture_output=True, text=True,
                       env={**os.environ, "_LAMBDASHIP_COMPLETE": "complete_bash", "COMP_WORDS": "lambdaship dep",
                            "COMP_CWORD": "1"})
    assert "deploy" in r.stdout, r.stdout + r.stderr


def test_verbose_shows_registry_retries_with_their_cause(local_stack, regional_project):
    env = {"AWS_ENDPOINT_URL": local_stack.moto.url, "AWS_REGION": "us-east-1",
           "LAMBDASHIP_REGISTRY_URL": _dead_url(), "LAMBDASHIP_RETRY_ATTEMPTS": "3"}
    ref = f"123456789012.dkr.ecr.us-east-1.amazonaws.com/x@sha256:{'0' * 64}"
    quiet = _run("deploy", "-C", str(regional_project), "--image", ref, env=env)
    assert quiet.returncode == 1 and "stamina" not in quiet.stderr
    assert len(quiet.stderr.strip().splitlines()) == 1 and "cannot reach" in quiet.stderr
    r = _run("-v", "deploy", "-C", str(regional_project), "--image", ref, env=env)
    assert r.returncode == 1
    retries = [ln for ln in r.stderr.splitlines() if "stamina.retry_scheduled" in ln]
    assert len(retries) == 2, r.stderr
    assert re.search(r"#1 in \d+\.\d+s \(waited 0\.0s so far\) after ConnectError", retries[0]), retries[0]
