"""Consistency of the command line: exit codes as the README says, --json errors as JSON,
did-you-mean for config keys, every problem listed, flags blamed as flags, an example on every
help screen, no <bool> placeholders, no wrapping or cut tables outside a terminal."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from lambdaship.cli import app
from tests.conftest import run_cli


def _app(d: Path, extra: str = "") -> Path:
    d.mkdir(parents=True, exist_ok=True)
    (d / "app.py").write_text("def handler(event, context):\n    return 1\n")
    (d / "lambdaship.toml").write_text(f'function_name = "fn"\nhandler = "app.handler"\n{extra}')
    return d


def _piped(*args: str) -> subprocess.CompletedProcess[str]:
    """As in CI: stdout is a pipe, no COLUMNS / TERMINAL_WIDTH."""
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES", "TERMINAL_WIDTH", "FORCE_COLOR")}
    return subprocess.run([sys.executable, "-m", "lambdaship.cli", *args], capture_output=True, text=True, env=env,
                          timeout=300)


def test_missing_requirements_file_is_a_configuration_error(tmp_path):
    d = _app(tmp_path / "a", 'requirements = "nope.txt"\n')
    r = run_cli("size", "-C", str(d))
    assert r.returncode == 2
    assert r.stderr.startswith("error: requirements file ") and len(r.stderr.strip().splitlines()) == 1


def test_json_errors_are_json_on_stdout_and_one_line_on_stderr(tmp_path):
    r = run_cli("status", "-C", str(tmp_path), "--json")
    assert r.returncode == 2
    assert json.loads(r.stdout) == {
        "error": f"no lambdaship configuration in {tmp_path}",
        "hint": "run 'lambdaship init' there, or add [tool.lambdaship] to pyproject.toml",
        "exit_code": 2,
    }
    assert r.stderr.strip().splitlines() == [
        f"error: no lambdaship configuration in {tmp_path}; run 'lambdaship init' there, or add "
        "[tool.lambdaship] to pyproject.toml"]
    plain = run_cli("status", "-C", str(tmp_path))
    assert plain.stdout == "" and plain.stderr == r.stderr


def test_unknown_key_did_you_mean_and_every_problem_listed(tmp_path):
    d = _app(tmp_path / "a", "memroy = 1024\ntimeout = 99999\narchitecure = 'arm64'\n")
    r = run_cli("size", "-C", str(d))
    assert r.returncode == 2
    (line,) = r.stderr.strip().splitlines()
    assert "memroy: unknown key (did you mean 'memory'?)" in line
    assert "architecure: unknown key (did you mean 'architecture'?)" in line
    assert "timeout: Input should be less than or equal to 900" in line
    assert "more problem" not in line


def test_a_bad_flag_value_is_blamed_on_the_flag_not_the_file(tmp_path):
    d = _app(tmp_path / "a")
    r = run_cli("size", "-C", str(d), "--memory", "5")
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == ["error: --memory 5: Input should be greater than or equal to 128"]


def _command_paths() -> list[list[str]]:
    paths = [[]] + [[c.name] for c in app.registered_commands]
    for g in app.registered_groups:
        paths.append([g.name])
        paths += [[g.name, c.name] for c in g.typer_instance.registered_commands]
    return paths


@pytest.mark.parametrize("path", _command_paths(), ids=lambda p: " ".join(p) or "lambdaship")
def test_every_help_screen_has_an_example_and_no_bool_placeholder(path):
    r = _piped(*path, "--help")
    assert r.returncode == 0, r.stderr
    assert "Examples" in r.stdout and ("$ lambdaship" in r.stdout or "$ eval" in r.stdout)
    assert "<bool>" not in r.stdout


def test_help_outside_a_terminal_keeps_sentences_whole():
    r = _piped("status", "--help")
    assert "State, last update, alias → version → digest, recent versions, ECR images and scan status." in r.stdout


def test_tables_outside_a_terminal_are_not_cut(tmp_path):
    d = _app(tmp_path / "a")
    r = _piped("size", "-C", str(d))
    assert r.returncode == 0, r.stderr
    assert re.search(r"container image .* fits \(unzipped, excluding the base image, 0\.0%\)", r.stdout), r.stdout
    assert not any(len(line) > 300 for line in r.stdout.splitlines())


def test_local_up_eval_hint_names_the_state_dir(tmp_path):
    state = tmp_path / "stack"
    r = run_cli("local", "up", "--state-dir", str(state))
    try:
        assert r.returncode == 0, r.stderr
        assert f'eval "$(lambdaship local env --state-dir {state})"' in r.stdout + r.stderr
    finally:
        run_cli("local", "down", "--state-dir", str(state))
