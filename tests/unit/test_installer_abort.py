"""installer.run under abort_when: the installer is killed as soon as the check reports an error,
and that error is raised (not a timeout, not the installer's exit)."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from lambdaship.errors import LambdashipError
from lambdaship.package import installer


def test_the_installer_is_killed_when_the_check_reports(tmp_path: Path) -> None:
    started = time.monotonic()
    failure = LambdashipError("the base image is unreachable")

    def check() -> BaseException | None:
        return failure if time.monotonic() - started > 0.3 else None

    with installer.abort_when(check), pytest.raises(LambdashipError) as exc:
        installer.run([sys.executable, "-c", "import time; print('resolving', flush=True); time.sleep(60)"],
                      cwd=tmp_path, env={}, timeout=120)
    assert exc.value is failure
    assert time.monotonic() - started < 30  # killed, not waited for (60 s)


def test_without_a_report_the_installer_runs_to_the_end(tmp_path: Path) -> None:
    lines: list[str] = []
    with installer.abort_when(lambda: None):
        script = "import time; time.sleep(0.3); print('Installed 1 package in 1ms')"
        proc = installer.run([sys.executable, "-c", script], cwd=tmp_path, env={}, on_line=lines.append)
    assert proc.returncode == 0 and lines == ["Installed 1 package in 1ms\n"]
    installer.check_abort()  # outside the context: nothing to report


def test_check_abort_raises_the_reported_error() -> None:
    failure = LambdashipError("base failed")
    with installer.abort_when(lambda: failure), pytest.raises(LambdashipError) as exc:
        installer.check_abort()
    assert exc.value is failure
