"""`lambdaship init` in monorepos: nested handler dirs, uv workspaces, functions/* → one
[functions.<key>] table each, paths relative to the config file; TOML written with tomlkit."""

from __future__ import annotations

import json
import subprocess
import tomllib
from pathlib import Path

from lambdaship.config import load_project
from lambdaship.package.requirements import requirements_file
from tests.conftest import run_cli

HANDLER = "def handler(event, context):\n    return 1\n"


def _functions_repo(root: Path) -> Path:
    (root / "functions" / "api").mkdir(parents=True)
    (root / "functions" / "worker").mkdir(parents=True)
    (root / "functions" / "api" / "handler.py").write_text(HANDLER)
    (root / "functions" / "worker" / "main.py").write_text("def lambda_handler(event, context):\n    return 2\n")
    (root / "functions" / "worker" / "requirements-prod.txt").write_text("six==1.17.0\n")
    (root / "functions" / "notes").mkdir()  # no handler: not a function
    (root / "functions" / "notes" / "README.md").write_text("x\n")
    (root / "requirements.txt").write_text("six==1.16.0\n")
    return root


def test_functions_dirs_become_function_tables(tmp_path):
    root = _functions_repo(tmp_path / "repo")
    r = run_cli("init", str(root), "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert sorted(out["functions"]) == ["api", "worker"]
    cfg = tomllib.loads((root / "lambdaship.toml").read_text())
    assert cfg["functions"]["api"] == {"source": "functions/api", "function_name": "api",
                                       "handler": "handler.handler", "requirements": "../../requirements.txt"}
    assert cfg["functions"]["worker"]["handler"] == "main.lambda_handler"
    assert cfg["functions"]["worker"]["requirements"] == "requirements-prod.txt"
    proj = load_project(root)
    assert sorted(proj.functions) == ["api", "worker"]
    assert proj.function("api").source == (root / "functions" / "api").resolve()
    assert requirements_file(proj.function("api")).resolve() == (root / "requirements.txt").resolve()
    again = run_cli("init", str(root))
    assert again.returncode == 0 and "already configured" in again.stdout


def test_uv_workspace_members_with_the_root_lock(tmp_path):
    root = tmp_path / "ws"
    for name in ("alpha", "beta"):
        d = root / "packages" / name
        d.mkdir(parents=True)
        (d / "app.py").write_text(HANDLER)
        (d / "pyproject.toml").write_text(
            f'[project]\nname = "{name}"\nversion = "0"\nrequires-python = ">=3.11"\n'
            f'dependencies = ["six==1.17.0"]\n')
    (root / "pyproject.toml").write_text(
        '[project]\nname = "ws"\nversion = "0"\nrequires-python = ">=3.11"\ndependencies = []\n\n'
        '# the workspace\n[tool.uv.workspace]\nmembers = ["packages/*"]   # every package\n')
    subprocess.run(["uv", "lock", "-q"], cwd=root, check=True, timeout=300)
    before = (root / "pyproject.toml").read_text()
    r = run_cli("init", str(root))
    assert r.returncode == 0, r.stderr
    assert "wrote" in r.stdout and "(2 functions)" in r.stdout
    text = (root / "pyproject.toml").read_text()
    assert text.startswith(before.rstrip("\n"))  # the user's file, comments included, untouched
    cfg = tomllib.loads(text)["tool"]["lambdaship"]
    assert {k: v["source"] for k, v in cfg["functions"].items()} == {"alpha": "packages/alpha",
                                                                      "beta": "packages/beta"}
    assert "requirements" not in cfg["functions"]["alpha"]  # the root uv.lock is read directly
    fn = load_project(root).function("alpha")
    assert requirements_file(fn).read_text().splitlines()[1:] == ["six==1.17.0"]
    # --force rewrites only the lambdaship tables (tomlkit), the rest stays byte for byte
    r = run_cli("init", str(root), "--force")
    assert r.returncode == 0, r.stderr
    assert (root / "pyproject.toml").read_text() == text


def test_no_handler_anywhere_is_still_one_error_line(tmp_path):
    root = tmp_path / "empty"
    (root / "functions" / "x").mkdir(parents=True)
    r = run_cli("init", str(root))
    assert r.returncode == 2
    assert len(r.stderr.strip().splitlines()) == 1 and r.stderr.startswith("error: no Lambda handler found")
