"""``size`` checks the handler as ``build`` does: a handler module that is not there is the same
one-line error with the same exit code, before anything is installed (issue #20)."""

from __future__ import annotations

import json

from tests.conftest import run_cli
from tests.test_cli_usage_errors import _project


def test_size_with_a_missing_handler_module_fails_like_build(tmp_path):
    app = _project(tmp_path, handler="missing.handler")
    built = run_cli("build", "-C", str(app), timeout=120)
    sized = run_cli("size", "-C", str(app), timeout=120)
    assert built.returncode != 0 and sized.returncode == built.returncode, (built.stderr, sized.stderr)
    assert sized.stderr.strip().splitlines() == built.stderr.strip().splitlines()
    assert len(sized.stderr.strip().splitlines()) == 1
    assert "handler 'missing.handler': module file missing.py not found" in sized.stderr
    assert sized.stdout == ""
    as_json = run_cli("size", "-C", str(app), "--json", timeout=120)
    assert json.loads(as_json.stdout)["error"].startswith("handler 'missing.handler'")
