"""Which files go into the image, and the handler check (no user code imported)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lambdaship.config import FunctionConfig, load_project
from lambdaship.errors import LambdashipError
from lambdaship.project import app_files, check_handler
from tests.conftest import EXAMPLES


def _fn(root: Path, **kw) -> FunctionConfig:
    return FunctionConfig(key="f", function_name="f", source=root, **kw)


def _touch(root: Path, *names: str) -> None:
    for n in names:
        p = root / n
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("x = 1\n")


def test_default_excludes(tmp_path: Path) -> None:
    _touch(
        tmp_path, "app.py", "lib/util.py", ".git/config", ".venv/lib/x.py", "lib/__pycache__/util.cpython-312.pyc",
        "tests/test_app.py", ".env", ".aws/credentials", "key.pem", ".chalice/deployments/x.json",
        ".chalice/config.json", "stale.pyc",
    )
    names = [rel for rel, _ in app_files(_fn(tmp_path))]
    assert names == [".chalice/config.json", "app.py", "lib/util.py"]


def test_user_excludes_and_includes(tmp_path: Path) -> None:
    _touch(tmp_path, "app.py", "docs/readme.md", "data/a.csv", "data/b.json", "tests/fixtures/f.json",
           "tests/test_x.py")
    fn = _fn(tmp_path, exclude=["docs", "data/*.csv"], include=["tests/fixtures/*.json"])
    names = [rel for rel, _ in app_files(fn)]
    assert names == ["app.py", "data/b.json", "tests/fixtures/f.json"]


def test_extra_excludes_leave_out_an_output_directory(tmp_path: Path) -> None:
    _touch(tmp_path, "app.py", "out/blobs/sha256/abc")
    names = [rel for rel, _ in app_files(_fn(tmp_path), extra_excludes=[tmp_path / "out"])]
    assert names == ["app.py"]


def test_examples_handlers_are_valid() -> None:
    for name in ("chalice-app", "handler-app"):
        fn = load_project(EXAMPLES / name).function()
        check_handler(fn)  # raises if wrong


@pytest.mark.parametrize(
    "code",
    [
        "def handler(event, context):\n    return {}\n",
        "async def handler(event, context):\n    return {}\n",
        "from chalice import Chalice\nhandler = Chalice(app_name='x')\n",
        "from impl import real as handler\n",
        "class handler:\n    pass\n",
        "try:\n    import fast\n    handler = fast.h\nexcept ImportError:\n    def handler(e, c):\n        pass\n",
        "handler: object = None\n",
    ],
)
def test_handler_defined(tmp_path: Path, code: str) -> None:
    (tmp_path / "app.py").write_text(code)
    check_handler(_fn(tmp_path, handler="app.handler"))


def test_handler_in_a_package(tmp_path: Path) -> None:
    _touch(tmp_path, "pkg/__init__.py")
    (tmp_path / "pkg" / "api.py").write_text("def main(e, c):\n    return 1\n")
    check_handler(_fn(tmp_path, handler="pkg.api.main"))
    (tmp_path / "pkg" / "__init__.py").write_text("def top(e, c):\n    return 1\n")
    check_handler(_fn(tmp_path, handler="pkg.top"))


def test_handler_module_missing(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text("def handler(e, c): pass\n")
    with pytest.raises(LambdashipError, match=r"module file main\.py not found") as exc:
        check_handler(_fn(tmp_path, handler="main.handler"))
    assert "\n" not in exc.value.one_line()


def test_handler_attribute_missing(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text("def other(e, c): pass\nx = 1\n# handler = 1\n")
    with pytest.raises(LambdashipError, match=r"app\.py does not define 'handler'"):
        check_handler(_fn(tmp_path, handler="app.handler"))


def test_handler_module_excluded(tmp_path: Path) -> None:
    _touch(tmp_path, "tests/handler.py")
    (tmp_path / "tests" / "handler.py").write_text("def h(e, c): pass\n")
    with pytest.raises(LambdashipError, match="excluded from the image"):
        check_handler(_fn(tmp_path, handler="tests.handler.h"))


def test_handler_syntax_error_and_no_import(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text("def handler(e, c)\n    return 1\n")
    with pytest.raises(LambdashipError, match="syntax error"):
        check_handler(_fn(tmp_path, handler="app.handler"))
    # Importing would run code; the check must not.
    marker = tmp_path / "ran"
    (tmp_path / "app.py").write_text(f"open({str(marker)!r}, 'w').close()\ndef handler(e, c): pass\n")
    check_handler(_fn(tmp_path, handler="app.handler"))
    assert not marker.exists()


def test_shared_paths_are_packaged_under_their_relative_path(tmp_path):
    """A monorepo function gets its `shared` code at /var/task/<path>, so `import common.util` works."""
    from lambdaship.config import load_project
    from lambdaship.errors import LambdashipError
    from lambdaship.project import app_files, check_handler

    (tmp_path / "services" / "a").mkdir(parents=True)
    app = "from common.util import f\n\ndef handler(e, c):\n    return f()\n"
    (tmp_path / "services" / "a" / "app.py").write_text(app)
    (tmp_path / "common").mkdir()
    (tmp_path / "common" / "__init__.py").write_text("")
    (tmp_path / "common" / "util.py").write_text("def f():\n    return 1\n")
    (tmp_path / "common" / "__pycache__").mkdir()
    (tmp_path / "common" / "__pycache__" / "util.cpython-311.pyc").write_bytes(b"x")
    (tmp_path / "schema.json").write_text("{}")
    (tmp_path / "lambdaship.toml").write_text(
        'handler = "app.handler"\n[functions.a]\nsource = "services/a"\nshared = ["common", "schema.json"]\n'
        '[functions.b]\nsource = "."\nshared = ["common"]\n'
        '[functions.c]\nsource = "services/a"\nshared = ["missing"]\n'
    )
    proj = load_project(tmp_path)
    a = proj.function("a")
    arcs = [arc for arc, _ in app_files(a)]
    assert arcs == ["app.py", "common/__init__.py", "common/util.py", "schema.json"]  # default excludes apply
    check_handler(a)
    # a shared path inside the source is not packaged twice
    b_arcs = [arc for arc, _ in app_files(proj.function("b"))]
    assert b_arcs.count("common/util.py") == 1
    with pytest.raises(LambdashipError, match="shared path 'missing' of function 'c' does not exist"):
        app_files(proj.function("c"))
