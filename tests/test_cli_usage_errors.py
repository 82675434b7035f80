"""Usage errors the command line parser finds (bad flag values, unknown options and commands,
missing arguments) look like every other error: one line ``error: …; <hint>``, exit 2, and
under ``--json`` a JSON object on stdout (issue #20, item 6)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import run_cli


def _project(tmp_path: Path, handler: str = "handler.handler") -> Path:
    app = tmp_path / "app"
    app.mkdir(exist_ok=True)
    (app / "handler.py").write_text("def handler(event, context):\n    return 1\n")
    (app / "lambdaship.toml").write_text(f'function_name = "usage"\nhandler = "{handler}"\npython = "3.12"\n')
    return app


@pytest.mark.parametrize(("args", "message", "command"), [
    (["deploy", "--memory", "abc"], "invalid value for --memory: ", "lambdaship deploy"),
    (["build", "--timeout", "soon"], "invalid value for --timeout: ", "lambdaship build"),
    (["size", "--html", "."], "invalid value for --html: ", "lambdaship size"),
    (["build", "--bogus"], "no such option --bogus", "lambdaship build"),
    (["status", "extra"], "got unexpected extra argument(s) (extra)", "lambdaship status"),
    (["nosuch"], "no such command 'nosuch'", "lambdaship"),
    (["run"], "missing argument 'image'", "lambdaship run"),
    (["local", "up", "--state-dir"], "option '--state-dir' requires an argument", "lambdaship local up"),
])
def test_parser_errors_are_one_line_with_a_hint_and_exit_2(args, message, command):
    r = run_cli(*args, timeout=60)
    assert r.returncode == 2, (r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith(f"error: {message}"), lines[0]
    assert lines[0].endswith(f"see '{command} --help'") or f"(see '{command} --help')" in lines[0], lines[0]
    assert "╭" not in r.stderr and "Usage:" not in r.stderr and "Traceback" not in r.stderr
    assert r.stdout == ""


def test_near_misses_get_a_did_you_mean():
    r = run_cli("delpoy", timeout=60)
    assert r.returncode == 2
    assert r.stderr.strip() == "error: no such command 'delpoy'; did you mean deploy? (see 'lambdaship --help')"
    r = run_cli("deploy", "--dryrun", timeout=60)
    assert r.returncode == 2
    assert r.stderr.strip() == ("error: no such option --dryrun; did you mean --dry-run? "
                                "(see 'lambdaship deploy --help')")


def test_a_bad_architecture_is_the_same_kind_of_line(tmp_path):
    r = run_cli("deploy", "-C", str(_project(tmp_path)), "--architecture", "sparc", timeout=60)
    assert r.returncode == 2
    assert r.stderr.strip() == "error: --architecture 'sparc' is not supported; use one of: x86_64, arm64"


@pytest.mark.parametrize("args", [
    ["deploy", "--memory", "abc", "--json"],
    ["status", "--json", "--bogus"],
    ["deploy", "--architecture", "sparc", "--json"],
    ["run", "--json"],
])
def test_under_json_a_usage_error_is_a_json_object(args):
    r = run_cli(*args, timeout=60)
    assert r.returncode == 2, r.stderr
    doc = json.loads(r.stdout)
    assert set(doc) >= {"error", "hint"} and doc["exit_code"] == 2
    assert doc["error"] and doc["hint"]
    assert r.stderr.strip() == f"error: {doc['error']}; {doc['hint']}"


def test_help_version_and_exit_codes_of_commands_are_unchanged(tmp_path):
    assert run_cli("--version", timeout=60).returncode == 0
    r = run_cli("build", "--help", timeout=60)
    assert r.returncode == 0 and "--base-image" in r.stdout
    r = run_cli("local", "status", "--state-dir", str(tmp_path / "none"), timeout=60)
    assert r.returncode == 1 and "not running" in r.stdout  # typer.Exit(1) from the command
    assert run_cli(timeout=60).returncode == 2  # no command: the help screen, exit 2 as before
