"""`lambdaship init`: detection, the written config loads, re-runs change nothing."""

from __future__ import annotations

import hashlib
import json
import tomllib
from pathlib import Path

import pytest

from lambdaship.config import load_project
from tests.conftest import cli_json, example_copy, run_cli

UV_LOCK = """\
version = 1
revision = 3
requires-python = ">=3.12"

[[package]]
name = "six"
version = "1.16.0"
source = { registry = "https://pypi.org/simple" }
sdist = { url = "https://files.pythonhosted.org/packages/71/39/171f1c67cd00715f190ba0b100d606d440a28c93c7714febeca8b79af85e/six-1.16.0.tar.gz", hash = "sha256:1e61c37477a1626458e36f7b1d82aa5c9b094fa4802892072e49de9c60c4c926", size = 34041 }
wheels = [
    { url = "https://files.pythonhosted.org/packages/d9/5a/e7c31adbe875f2abbb91bd84cf2dc52d792b5a01506781dbcf25c91daf11/six-1.16.0-py2.py3-none-any.whl", hash = "sha256:8abb2f1d86890a2dfb989f9a77cfcfd3e47c2a354b01111771326f8aa26e0254", size = 11053 },
]

[[package]]
name = "uvp"
version = "0.1.0"
source = { virtual = "." }
dependencies = [
    { name = "six" },
]

[package.metadata]
requires-dist = [{ name = "six", specifier = "==1.16.0" }]
"""  # noqa: E501


def tree_digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*")) if p.is_file()
    }


@pytest.fixture
def chalice_app(tmp_path: Path) -> Path:
    app = example_copy("chalice-app", tmp_path / "chalice-app")
    (app / "lambdaship.toml").unlink()
    return app


@pytest.fixture
def handler_app(tmp_path: Path) -> Path:
    app = example_copy("handler-app", tmp_path / "handler-app")
    text = (app / "pyproject.toml").read_text()
    (app / "pyproject.toml").write_text(text[: text.index("[tool.lambdaship]")].rstrip("\n") + "\n")
    assert "lambdaship" not in tomllib.loads((app / "pyproject.toml").read_text()).get("tool", {})
    return app


def init(path: Path, *args: str) -> dict:
    return cli_json("init", str(path), "--json", *args)


def assert_buildable(path: Path) -> None:
    """What `lambdaship build` checks first: config loads, handler file present and defines it, deps found."""
    from lambdaship.package.requirements import requirements_file
    from lambdaship.project import app_files, check_handler

    fn = load_project(path).function()
    check_handler(fn)
    assert app_files(fn)
    if fn.requirements:
        assert requirements_file(fn) is not None


def test_chalice_example(chalice_app: Path) -> None:
    proc = run_cli("init", str(chalice_app))
    assert proc.returncode == 0, proc.stderr
    assert "wrote" in proc.stdout and "next steps:" in proc.stdout and "lambdaship deploy" in proc.stdout
    fn = load_project(chalice_app).function()
    assert fn.function_name == "chalice-demo"  # Chalice(app_name=...)
    assert fn.handler == "app.app"
    assert fn.python == "3.12"
    assert fn.requirements == "requirements.txt"
    assert fn.environment == {"GREETING": "hello", "STAGE": "dev"}  # from .chalice/config.json, dev stage
    assert fn.smoke is not None and fn.smoke.path == "/health"
    assert_buildable(chalice_app)


def test_handler_example_appends_to_pyproject(handler_app: Path) -> None:
    original = (handler_app / "pyproject.toml").read_bytes()
    data = init(handler_app)
    assert data["changed"] is True
    assert data["config_file"] == str(handler_app / "pyproject.toml")
    assert not (handler_app / "lambdaship.toml").exists()
    new = (handler_app / "pyproject.toml").read_bytes()
    assert new.startswith(original)  # appended; the existing text is untouched
    fn = load_project(handler_app).function()
    assert (fn.function_name, fn.handler, fn.python, fn.requirements) == (
        "handler-app", "handler.handler", "3.12", "requirements.txt"
    )
    assert data["detected"]["python_from"] == "requires-python"
    assert_buildable(handler_app)


@pytest.mark.parametrize("fixture", ["chalice_app", "handler_app"])
def test_rerun_changes_nothing(fixture: str, request: pytest.FixtureRequest) -> None:
    app: Path = request.getfixturevalue(fixture)
    init(app)
    before = tree_digest(app)
    proc = run_cli("init", str(app))
    assert proc.returncode == 0, proc.stderr
    assert "nothing changed" in proc.stdout
    data = init(app, "--function-name", "other-name")
    assert data["changed"] is False
    assert tree_digest(app) == before


def test_force_rewrites_without_duplicating(handler_app: Path) -> None:
    init(handler_app)
    data = init(handler_app, "--force", "--function-name", "renamed")
    assert data["changed"] is True
    text = (handler_app / "pyproject.toml").read_text()
    assert text.count("[tool.lambdaship]") == 1
    assert load_project(handler_app).function().function_name == "renamed"


def test_handler_detection_and_ranking(tmp_path: Path) -> None:
    (tmp_path / "utils.py").write_text("def handler(event, context):\n    pass\n")
    (tmp_path / "lambda_function.py").write_text("import os\n\ndef lambda_handler(event, context):\n    return 1\n")
    (tmp_path / "test_x.py").write_text("def handler(event, context):\n    pass\n")
    (tmp_path / "notes.py").write_text("class X:\n    def handler(self, event, context):\n        pass\n")
    data = init(tmp_path)
    assert data["detected"]["handler"] == "lambda_function.lambda_handler"
    assert data["detected"]["other_handlers"] == ["utils.handler"]
    assert data["detected"]["requirements"] is None
    assert load_project(tmp_path).function().handler == "lambda_function.lambda_handler"
    assert "requirements" not in tomllib.loads((tmp_path / "lambdaship.toml").read_text())


def test_no_handler_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "lib.py").write_text("def helper(x):\n    return x\n")
    proc = run_cli("init", str(tmp_path))
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: no Lambda handler found") and "--handler" in proc.stderr
    assert not (tmp_path / "lambdaship.toml").exists()
    data = init(tmp_path, "--handler", "lib.helper")
    assert load_project(tmp_path).function().handler == "lib.helper" and data["changed"]


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({".python-version": "3.11.9\n"}, ("3.11", ".python-version")),
        ({".python-version": "cpython-3.13\n", "pyproject.toml": '[project]\nname="a"\nrequires-python=">=3.9"\n'},
         ("3.13", ".python-version")),
        ({"pyproject.toml": '[project]\nname="a"\nrequires-python=">=3.13"\n'}, ("3.13", "requires-python")),
        ({"pyproject.toml": '[project]\nname="a"\nrequires-python=">=3.9,<3.12"\n'}, ("3.11", "requires-python")),
        ({"pyproject.toml": '[project]\nname="a"\nrequires-python="~=3.10.2"\n'}, ("3.10", "requires-python")),
        ({"pyproject.toml": '[project]\nname="a"\nrequires-python=">=3.9"\n'}, ("3.12", "requires-python")),
        ({}, ("3.12", "default")),
    ],
)
def test_python_detection(tmp_path: Path, files: dict[str, str], expected: tuple[str, str]) -> None:
    (tmp_path / "handler.py").write_text("def handler(event, context):\n    pass\n")
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    data = init(tmp_path)
    assert (data["detected"]["python"], data["detected"]["python_from"]) == expected
    assert load_project(tmp_path).function().python == expected[0]


def test_unsupported_python_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "handler.py").write_text("def handler(event, context):\n    pass\n")
    (tmp_path / "pyproject.toml").write_text('[project]\nname="a"\nrequires-python=">=3.14"\n')
    proc = run_cli("init", str(tmp_path))
    assert proc.returncode == 2 and "--python" in proc.stderr
    assert "lambdaship" not in (tmp_path / "pyproject.toml").read_text()


def test_uv_lock_wins_and_is_exported(tmp_path: Path) -> None:
    (tmp_path / "lambda_function.py").write_text("def lambda_handler(event, context):\n    return 1\n")
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "uvp"\nversion = "0.1.0"\nrequires-python = ">=3.12"\ndependencies = ["six==1.16.0"]\n'
    )
    (tmp_path / "uv.lock").write_text(UV_LOCK)
    (tmp_path / "requirements.txt").write_text("requests\n")  # lower priority than uv.lock
    data = init(tmp_path)
    assert data["detected"]["requirements_from"] == "uv.lock"
    assert data["generated"] == [str(tmp_path / "requirements.lock.txt")]
    fn = load_project(tmp_path).function()
    assert fn.requirements == "requirements.lock.txt"
    lines = [ln for ln in (tmp_path / "requirements.lock.txt").read_text().splitlines() if ln and ln[0] not in "# "]
    assert lines == ["six==1.16.0"]
    assert (tmp_path / "requirements.txt").read_text() == "requests\n"
    assert_buildable(tmp_path)


def test_pyproject_dependencies_become_requirements(tmp_path: Path) -> None:
    (tmp_path / "handler.py").write_text("def handler(event, context):\n    pass\n")
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "My App!"\ndependencies = ["humanize==4.12.3"]\n')
    data = init(tmp_path)
    assert data["detected"]["function_name"] == "My-App"
    assert data["detected"]["requirements_from"] == "pyproject.toml [project].dependencies"
    assert (tmp_path / "requirements.txt").read_text().splitlines()[-1] == "humanize==4.12.3"
    assert load_project(tmp_path).function().requirements == "requirements.txt"


def test_chalice_secret_placeholders_are_not_copied(chalice_app: Path) -> None:
    cfg = chalice_app / ".chalice" / "config.json"
    data = json.loads(cfg.read_text())
    data["environment_variables"]["DB_PASSWORD"] = "${DB_PASSWORD}"
    data["lambda_memory_size"] = 1024
    cfg.write_text(json.dumps(data))
    out = init(chalice_app)
    assert out["detected"]["skipped_environment"] == ["DB_PASSWORD"]
    fn = load_project(chalice_app).function()
    assert "DB_PASSWORD" not in fn.environment and fn.memory == 1024
    assert "${DB_PASSWORD}" not in (chalice_app / "lambdaship.toml").read_text()


def test_config_file_choice(handler_app: Path) -> None:
    data = init(handler_app, "--config-file", "lambdaship.toml")
    assert data["config_file"] == str(handler_app / "lambdaship.toml")
    assert "lambdaship" not in (handler_app / "pyproject.toml").read_text().split("[project]")[1]
    assert load_project(handler_app).config_file == handler_app / "lambdaship.toml"


@pytest.mark.slow
@pytest.mark.parametrize("fixture", ["chalice_app", "handler_app"])
def test_lambdaship_build_accepts_the_config(
    fixture: str, request: pytest.FixtureRequest, base_image_ref: str, tmp_path: Path
) -> None:
    app: Path = request.getfixturevalue(fixture)
    init(app)
    out = tmp_path / "layout"
    proc = run_cli("build", "-C", str(app), "--base-image", base_image_ref, "--out", str(out), "--json")
    assert proc.returncode == 0, proc.stderr
    assert (out / "index.json").is_file()


def test_force_keeps_the_config_where_it_is(chalice_app: Path) -> None:
    (chalice_app / "pyproject.toml").write_text('[project]\nname = "x"\n')
    init(chalice_app, "--config-file", "lambdaship.toml")
    data = init(chalice_app, "--force")
    assert data["config_file"] == str(chalice_app / "lambdaship.toml")
    assert (chalice_app / "pyproject.toml").read_text() == '[project]\nname = "x"\n'
    data = init(chalice_app, "--force", "--config-file", "pyproject.toml")
    assert not (chalice_app / "lambdaship.toml").exists()
    assert load_project(chalice_app).config_file == chalice_app / "pyproject.toml"
