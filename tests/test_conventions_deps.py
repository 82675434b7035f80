"""Every dependency format: uv.lock (workspaces), poetry.lock, Pipfile.lock, pyproject.toml (PEP 621
and Poetry), requirements*.txt; unsupported files; requires-python warnings. Installs are real (uv
from the package index)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from lambdaship.config import load_project
from lambdaship.package import deps
from lambdaship.package.poetry import poetry_constraint
from lambdaship.package.requirements import requirements_file
from tests.conftest import run_cli

HANDLER = "def handler(event, context):\n    return 1\n"


def _app(d: Path, config: str = "", python: str = "3.11") -> Path:
    d.mkdir(parents=True, exist_ok=True)
    (d / "app.py").write_text(HANDLER)
    (d / "lambdaship.toml").write_text(f'function_name = "fn"\nhandler = "app.handler"\npython = "{python}"\n{config}')
    return d


def _lines(d: Path) -> list[str]:
    fn = load_project(d).function(None)
    path = requirements_file(fn)
    assert path is not None
    return [ln for ln in path.read_text().splitlines() if ln and not ln.startswith("#")]


def _installed(d: Path) -> list[str]:
    fn = load_project(d).function(None)
    return sorted(deps.install(fn).requirements)


def _size(d: Path, *args: str) -> tuple[int, list[str]]:
    """``lambdaship size`` of the app: its exit code and its stderr lines."""
    r = run_cli("size", "-C", str(d), *args)
    return r.returncode, r.stderr.strip().splitlines()


def test_uv_workspace_member_lock_is_exported_pinned_without_dev(tmp_path):
    root = tmp_path / "mono"
    (root / "functions" / "api").mkdir(parents=True)
    (root / "pyproject.toml").write_text(
        '[project]\nname = "mono"\nversion = "0"\nrequires-python = ">=3.11"\ndependencies = []\n'
        '[tool.uv.workspace]\nmembers = ["functions/*"]\n')
    (root / "functions" / "api" / "pyproject.toml").write_text(
        '[project]\nname = "api"\nversion = "0"\nrequires-python = ">=3.11"\ndependencies = ["six==1.17.0"]\n'
        '[dependency-groups]\ndev = ["iniconfig"]\n')
    subprocess.run(["uv", "lock", "-q"], cwd=root, check=True, timeout=300)
    (root / "functions" / "api" / "app.py").write_text(HANDLER)
    (root / "lambdaship.toml").write_text(
        '[functions.api]\nsource = "functions/api"\nhandler = "app.handler"\npython = "3.11"\n')
    assert _lines(root) == ["six==1.17.0"]
    assert _installed(root) == ["six==1.17.0"]


POETRY_LOCK = """
[[package]]
name = "six"
version = "1.17.0"
description = ""
optional = false
python-versions = "*"
groups = ["main"]
files = []

[[package]]
name = "colorama"
version = "0.4.6"
description = ""
optional = false
python-versions = "*"
groups = ["main"]
markers = "sys_platform == \\"win32\\""
files = []

[[package]]
name = "iniconfig"
version = "2.0.0"
description = ""
optional = false
python-versions = "*"
groups = ["dev"]
files = []

[metadata]
lock-version = "2.1"
python-versions = ">=3.11"
content-hash = "x"
"""


def test_poetry_lock_main_group_with_markers(tmp_path):
    d = _app(tmp_path / "app")
    (d / "pyproject.toml").write_text('[tool.poetry.dependencies]\npython = "^3.11"\nsix = "^1.16"\n')
    (d / "poetry.lock").write_text(POETRY_LOCK)
    assert _lines(d) == ['colorama==0.4.6 ; sys_platform == "win32"', "six==1.17.0"]
    assert _installed(d) == ["six==1.17.0"]  # colorama's marker is false on Lambda


def test_poetry_lock_without_groups_follows_pyproject_dependencies(tmp_path):
    d = _app(tmp_path / "app")
    (d / "pyproject.toml").write_text('[tool.poetry.dependencies]\npython = "^3.11"\nsix = "*"\n')
    lock = POETRY_LOCK.replace('groups = ["main"]\n', "").replace('groups = ["dev"]\n', "")
    (d / "poetry.lock").write_text(lock)
    assert _lines(d) == ["six==1.17.0"]


def test_pipfile_lock_default_section_only(tmp_path):
    d = _app(tmp_path / "app")
    (d / "Pipfile").write_text("[packages]\nsix = '*'\n")
    (d / "Pipfile.lock").write_text(json.dumps({
        "_meta": {}, "default": {"six": {"version": "==1.17.0", "hashes": []},
                                 "pywin32": {"version": "==306", "markers": "sys_platform == 'win32'"}},
        "develop": {"pytest": {"version": "==8.0.0"}}}))
    assert _lines(d) == ["pywin32==306 ; sys_platform == 'win32'", "six==1.17.0"]
    assert _installed(d) == ["six==1.17.0"]


def test_pipfile_without_lock_is_one_error_line(tmp_path):
    d = _app(tmp_path / "app")
    (d / "Pipfile").write_text("[packages]\nsix = '*'\n")
    assert _size(d, "--json") == (2, [
        "error: Pipfile has no Pipfile.lock beside it; lambdaship installs pinned versions only; run "
        "'pipenv lock' and commit Pipfile.lock (or set 'requirements' to a requirements.txt)"])


def test_git_packages_in_a_lock_are_refused_by_name(tmp_path):
    d = _app(tmp_path / "app")
    (d / "Pipfile.lock").write_text(json.dumps({"default": {
        "six": {"version": "==1.17.0"}, "mylib": {"git": "https://example.com/x.git", "ref": "abc"},
        "other": {"path": "../other"}}}))
    code, lines = _size(d)
    assert code == 1 and len(lines) == 1
    assert "mylib, other come(s) from git, a URL or a local path (Pipfile.lock)" in lines[0]


def test_pyproject_pep621_dependencies(tmp_path):
    d = _app(tmp_path / "app")
    (d / "pyproject.toml").write_text('[project]\nname = "x"\nversion = "0"\ndependencies = ["six>=1.16,<2"]\n')
    assert _lines(d) == ["six>=1.16,<2"]
    assert _installed(d) == ["six==1.17.0"]


def test_pyproject_poetry_dependencies(tmp_path):
    d = _app(tmp_path / "app")
    (d / "pyproject.toml").write_text(
        '[tool.poetry.dependencies]\npython = "^3.11"\nsix = "^1.16"\n'
        'attrs = { version = "~23.1", markers = "python_version >= \'3.8\'" }\n'
        'extra-only = { version = "*", optional = true }\n')
    assert _lines(d) == ["six>=1.16,<2.0", "attrs>=23.1,<23.2 ; (python_version >= '3.8')"]


def test_pyproject_without_dependencies_is_no_requirements(tmp_path):
    d = _app(tmp_path / "app")
    (d / "pyproject.toml").write_text('[tool.ruff]\nline-length = 100\n')
    assert requirements_file(load_project(d).function(None)) is None


def test_requirements_txt_wins_over_a_lock(tmp_path):
    d = _app(tmp_path / "app")
    (d / "requirements.txt").write_text("six==1.16.0\n")
    (d / "Pipfile.lock").write_text(json.dumps({"default": {"six": {"version": "==1.17.0"}}}))
    assert requirements_file(load_project(d).function(None)) == d / "requirements.txt"


def test_configured_requirements_variant_and_unsupported_file(tmp_path):
    d = _app(tmp_path / "app", 'requirements = "requirements-prod.txt"\n')
    (d / "requirements-prod.txt").write_text("six==1.17.0\n")
    assert requirements_file(load_project(d).function(None)) == d / "requirements-prod.txt"
    d2 = _app(tmp_path / "app2", 'requirements = "environment.yml"\n')
    (d2 / "environment.yml").write_text("dependencies: [six]\n")
    assert _size(d2) == (2, [
        "error: requirements file environment.yml is not a format lambdaship reads; use requirements*.txt, "
        "uv.lock, poetry.lock, Pipfile.lock or pyproject.toml"])


def test_requires_python_above_the_target_warns(tmp_path):
    d = _app(tmp_path / "app", python="3.11")
    (d / "pyproject.toml").write_text(
        '[project]\nname = "x"\nversion = "0"\nrequires-python = ">=3.12"\ndependencies = ["six==1.17.0"]\n')
    r = run_cli("size", "-C", str(d), "--json")
    assert ("warning: fn targets Python 3.11 but pyproject.toml requires-python is '>=3.12'; set python in the "
            "config (or --python) to a version it allows") in r.stderr.splitlines()
    d.joinpath("lambdaship.toml").write_text('function_name = "fn"\nhandler = "app.handler"\npython = "3.12"\n')
    r = run_cli("size", "-C", str(d), "--json")
    assert "requires-python" not in r.stderr


@pytest.mark.parametrize(("spec", "pep440"), [
    ("^1.2.3", ">=1.2.3,<2.0.0"), ("^0.2.3", ">=0.2.3,<0.3.0"), ("^0.0.3", ">=0.0.3,<0.0.4"),
    ("^1", ">=1,<2.0"), ("~1.2.3", ">=1.2.3,<1.3.0"), ("~1.2", ">=1.2,<1.3"), ("~1", ">=1,<2.0"),
    ("*", ""), ("1.2.3", "==1.2.3"), ("1.2.*", "==1.2.*"), (">=1,<3", ">=1,<3"),
])
def test_poetry_constraints_as_pep440(spec, pep440):
    assert poetry_constraint(spec) == pep440


# ---- source-only packages --------------------------------------------------------------------
@pytest.mark.parametrize("arch", ["x86_64", "arm64"])
def test_pure_python_sdist_is_built_into_a_wheel_for_the_target(tmp_path, arch):
    d = _app(tmp_path / "app", f'architecture = "{arch}"\n')
    (d / "requirements.txt").write_text("docopt==0.6.2\nsix==1.17.0\n")
    fn = load_project(d).function(None)
    result = deps.install(fn)
    assert sorted(result.requirements) == ["docopt==0.6.2", "six==1.17.0"]
    assert (result.path / "docopt.py").is_file()
    wheel_tag = next(result.path.glob("docopt-0.6.2.dist-info")).joinpath("WHEEL").read_text()
    assert "Tag: py3-none-any" in wheel_tag


def test_native_sdists_are_refused_all_named_in_one_line(tmp_path):
    d = _app(tmp_path / "app")
    (d / "requirements.txt").write_text("docopt==0.6.2\npycrypto==2.6.1\nmarkupsafe==1.1.1\nsix==1.17.0\n")
    assert _size(d, "--json") == (1, [
        "error: no wheel for Python 3.11 on x86_64-manylinux2014 and native code to compile: markupsafe==1.1.1, "
        "pycrypto==2.6.1; pin versions that ship manylinux wheels, or vendor wheels built for the target (a "
        "directory of .whl files and '--find-links <dir>' in the requirements file)"])
