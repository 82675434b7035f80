"""Progress of a build (issue #20, item 3): outside a terminal one line per stage with its
duration and bytes and a summary line; on a terminal (a real pty) a rich display naming the
stages. Real builds against the local stack's registry, real installs from the package index."""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lambdaship.package import bytecode
from lambdaship.package.installer import Phases
from lambdaship.package.layers import SHARED_BUCKETS, bucket_of, shared_name
from tests.conftest import run_cli

LINE = re.compile(r"^(?P<label>[a-z]+)\s+(?P<seconds>\d+\.\d) s  (?P<what>.+)$")
SIZE = r"\d+(?:\.\d)? (?:B|kB|MB|GB)"
# humanize and six: small, and both in this shared layer (a layer is named by its bucket)
SMALL_LAYER = shared_name(bucket_of("humanize", SHARED_BUCKETS), SHARED_BUCKETS)


def _project(tmp_path: Path, base: str, requirements: str) -> Path:
    app = tmp_path / "app"
    app.mkdir()
    (app / "handler.py").write_text("import humanize\n\n\ndef handler(event, context):\n"
                                    "    return humanize.naturalsize(1)\n")
    (app / "requirements.txt").write_text(requirements)
    (app / "lambdaship.toml").write_text(
        f'function_name = "progress"\nhandler = "handler.handler"\npython = "{bytecode.HOST_PYTHON}"\n'
        f'base_image = "{base}"\n')
    return app


def _stages(stderr: str) -> list[re.Match[str]]:
    lines = [ln for ln in stderr.splitlines() if ln.strip()]
    matches = [LINE.match(ln) for ln in lines]
    assert all(matches), f"every stderr line is a stage line: {lines}"
    return matches  # type: ignore[return-value]


def test_ci_log_has_one_line_per_stage_with_duration_and_bytes(local_stack, base_image_ref, tmp_path):
    app = _project(tmp_path, base_image_ref, "humanize==4.12.3\nsix==1.17.0\n")
    env = {"LAMBDASHIP_HOME": str(tmp_path / "home")}  # a cold build: nothing installed yet
    r = run_cli("build", "-C", str(app), env=env, timeout=600)
    assert r.returncode == 0, r.stderr
    stages = _stages(r.stderr)
    labels = [m["label"] for m in stages]
    # the base image is resolved while the dependencies install: its line comes whenever it ends
    assert labels.count("base") == 1 and labels.index("base") < labels.index("compress"), labels
    assert [x for x in labels if x != "base"] == [
        "resolve", "download", "install", "bytecode", "compress", "compress", "built"], labels
    by = {m["label"]: m["what"] for m in stages}
    assert by["base"].startswith(base_image_ref)
    assert by["resolve"] == "2 packages"
    assert re.fullmatch(rf"2 packages, {SIZE}", by["install"]), by["install"]
    assert re.fullmatch(rf"{SIZE} of \.pyc \(Python {bytecode.HOST_PYTHON}\)", by["bytecode"]), by["bytecode"]
    compress = sorted(m["what"] for m in stages if m["label"] == "compress")
    assert re.fullmatch(rf"app: {SIZE} → {SIZE}", compress[0]), compress
    assert re.fullmatch(rf"deps {re.escape(SMALL_LAYER)}: {SIZE} → {SIZE}", compress[1]), compress
    assert re.fullmatch(rf"sha256:[0-9a-f]{{12}}…: 2 packages, {SIZE} → {SIZE} compressed; image {SIZE}",
                        by["built"]), by["built"]
    assert all(float(m["seconds"]) >= 0 for m in stages)
    assert "built progress: sha256:" in r.stdout  # the result itself stays on stdout

    again = run_cli("build", "-C", str(app), env=env, timeout=600)
    assert again.returncode == 0, again.stderr
    warm = {m["label"]: m["what"] for m in _stages(again.stderr)}
    assert "resolve" not in warm and "install" not in warm
    assert re.fullmatch(rf"2 packages, {SIZE} \(from the local cache\)", warm["deps"]), warm


def test_json_output_has_no_progress_lines(local_stack, base_image_ref, tmp_path):
    app = _project(tmp_path, base_image_ref, "humanize==4.12.3\n")
    r = run_cli("build", "-C", str(app), "--json", timeout=600)
    assert r.returncode == 0 and r.stderr == "", r.stderr


def _run_in_pty(args: list[str], env: dict[str, str], timeout: float = 600) -> tuple[int, str]:
    """``lambdaship ARGS`` with stdin, stdout and stderr on a pseudo-terminal; (exit code, output)."""
    leader, follower = pty.openpty()
    os.set_blocking(leader, False)
    proc = subprocess.Popen([sys.executable, "-m", "lambdaship.cli", *args], stdin=follower, stdout=follower,
                            stderr=follower, env={**os.environ, **env}, close_fds=True)
    os.close(follower)
    out = bytearray()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 0.5)
        if ready:
            try:
                chunk = os.read(leader, 65536)
            except OSError:  # EIO: the child closed the terminal
                chunk = b""
            if not chunk and proc.poll() is not None:
                break
            out += chunk
        elif proc.poll() is not None:
            break
    code = proc.wait(timeout=30)
    os.close(leader)
    return code, out.decode("utf-8", "replace")


def test_terminal_shows_the_stages_of_a_cold_build(local_stack, base_image_ref, tmp_path):
    app = _project(tmp_path, base_image_ref, "humanize==4.12.3\nsix==1.17.0\n")
    env = {"LAMBDASHIP_HOME": str(tmp_path / "home"), "COLUMNS": "120", "LINES": "40", "TERM": "xterm-256color"}
    code, raw = _run_in_pty(["build", "-C", str(app)], env)
    assert code == 0, raw
    assert "\x1b[" in raw  # rich drew on the terminal (cursor movement, colours)
    screen = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\r", "", raw)
    for label in ("base", "resolve", "download", "install", "bytecode", "compress"):
        assert re.search(rf"✓ {label}\s", screen), (label, screen)
    assert re.search(r"✓ install\s+\d+\.\d s\s+2 packages", screen), screen
    assert re.search(rf"✓ compress\s+\d+\.\d s\s+deps {re.escape(SMALL_LAYER)}: {SIZE} → {SIZE}", screen), screen
    assert "built progress: sha256:" in screen


def test_terminal_shows_the_stages_of_a_cold_deploy(local_stack, base_image_ref, tmp_path):
    """The same rows under deploy's own status line (rich nests the two live displays)."""
    app = _project(tmp_path, base_image_ref, "humanize==4.12.3\n")
    (app / "lambdaship.toml").write_text((app / "lambdaship.toml").read_text().replace(
        'function_name = "progress"', f'function_name = "progress-{os.getpid()}-{time.monotonic_ns() % 10**6}"'))
    env = {"LAMBDASHIP_HOME": str(tmp_path / "home"), "COLUMNS": "120", "LINES": "60", "TERM": "xterm-256color"}
    code, raw = _run_in_pty(["deploy", "-C", str(app), "--create-role", "--skip-smoke"], env)
    assert code == 0, raw
    screen = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\r", "", raw)
    for label in ("base", "resolve", "install", "compress"):
        assert re.search(rf"✓ {label}\s", screen), (label, screen)
    assert re.search(r"uploaded layer sha256:[0-9a-f]{12} \(", screen), screen  # the push, blob by blob
    assert "deployed progress-" in screen


def test_ci_log_of_a_deploy_is_its_stages_blobs_steps_and_a_summary(local_stack, base_image_ref, tmp_path):
    """``deploy`` outside a terminal: the build's stage lines, one line per blob pushed, each AWS
    step with its duration (waiting for Lambda included), then one summary line."""
    app = _project(tmp_path, base_image_ref, "humanize==4.12.3\n")
    name = f"progress-ci-{os.getpid()}-{time.monotonic_ns() % 10**6}"
    (app / "lambdaship.toml").write_text((app / "lambdaship.toml").read_text().replace(
        'function_name = "progress"', f'function_name = "{name}"'))
    r = run_cli("deploy", "-C", str(app), "--create-role", "--skip-smoke",
                env={"LAMBDASHIP_HOME": str(tmp_path / "home")}, timeout=600)
    assert r.returncode == 0, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    blobs = [ln for ln in lines if re.match(r"^(uploaded|mounted|present|copied|tagged) ", ln)]
    stages = [LINE.match(ln) for ln in lines if ln not in blobs]
    assert all(stages) and blobs, "\n".join(lines)  # nothing but stage lines and blob lines
    labels = [m["label"] for m in stages]  # type: ignore[index]
    assert {"resolve", "install", "compress", "built", "lambda", "wait", "iam"} <= set(labels), labels
    assert labels[-1] == "deployed", labels
    steps = {m["what"] for m in stages if m["label"] == "lambda"}  # type: ignore[index]
    assert {"CreateFunction", "PublishVersion", "CreateAlias"} <= steps, steps
    last = stages[-1]["what"]  # type: ignore[index]
    assert re.fullmatch(rf"{name} version 1; {SIZE} sent, {SIZE} already present, {SIZE} mounted", last), last


@pytest.mark.parametrize(("lines", "expected"), [
    # uv 0.13, a cold cache: each phase's end is a line of its own
    (["Using CPython 3.11.7 interpreter at: /usr/bin/python3", "Resolved 3 packages in 796ms",
      "Downloading numpy (15.8MiB)", " Downloaded numpy", "Prepared 3 packages in 597ms",
      "Installed 3 packages in 119ms", " + humanize==4.12.3"],
     [("resolve", 3, ""), ("download", 3, "numpy 15.8MiB"), ("install", 3, "")]),
    # uv, every wheel in its cache: no "Prepared" line
    (["Resolved 1 package in 309ms", "Installed 1 package in 13ms"],
     [("resolve", 1, ""), ("download", 0, "all from the installer's cache"), ("install", 1, "")]),
    # pip resolves and downloads together
    (["Collecting humanize==4.12.3", "  Downloading humanize-4.12.3-py3-none-any.whl (128 kB)",
      "Collecting six==1.17.0", "  Downloading six-1.17.0-py2.py3-none-any.whl (11 kB)",
      "Installing collected packages: six, humanize", "Successfully installed humanize-4.12.3 six-1.17.0"],
     [("resolve", 2, "downloads included (pip)"), ("install", 2, "")]),
])
def test_installer_output_becomes_stages(lines, expected):
    events: list[dict] = []
    phases = Phases(lambda **kw: events.append(kw))
    phases.begin()
    for line in lines:
        phases.feed(line + "\n")
    phases.installed(4096)
    ended = [(e["stage"], e["count"], e["detail"]) for e in events if e["phase"] == "end"]
    assert ended == expected
    assert [e["stage"] for e in events if e["phase"] == "start"] == [s for s, _, _ in expected]
    assert events[-1]["bytes"] == 4096
    if expected[0][0] == "resolve" and "pip" in expected[0][2]:
        assert events[[e["phase"] for e in events].index("end")]["bytes"] == 139_000


def test_deploy_steps_as_stage_lines():
    """What ``deploy`` can print in CI (commands/_progress.StepLines): one line per step with its
    duration, waiting for Lambda named as such, and a summary line."""
    from io import StringIO

    from rich.console import Console

    from lambdaship.commands._progress import StepLines
    from lambdaship.deploy.steps import Step

    out = StringIO()
    steps = StepLines(Console(file=out, width=200))
    steps(Step("registry:PushImage", {"Repository": "f"}))
    steps(Step("lambda:UpdateFunctionCode", {"FunctionName": "f"}))
    steps(Step("lambda:Wait", {"FunctionName": "f", "Waiter": "function_updated_v2"}))
    steps(Step("lambda:UpdateAlias", {"FunctionName": "f"}))
    steps.close("deployed", "f version 2")
    lines = [LINE.match(ln) for ln in out.getvalue().splitlines()]
    assert all(lines), out.getvalue()
    assert [(m["label"], m["what"]) for m in lines] == [  # type: ignore[index]
        ("registry", "PushImage"), ("lambda", "UpdateFunctionCode"),
        ("wait", "for Lambda (function_updated_v2 of f)"), ("lambda", "UpdateAlias"), ("deployed", "f version 2")]
