"""The app-shape fingerprint (lambdaship.api.fingerprint): equal only when the app's import can
register the same routes, authorizers and triggers; every other change gives a new fingerprint."""

from __future__ import annotations

from pathlib import Path

import pytest

from lambdaship.api.fingerprint import source_shape

APP = '''"""An app."""
import os
from chalice import Chalice, Rate
from chalicelib.routes import bp

app = Chalice(app_name="shape")
app.register_blueprint(bp)


@app.route("/health")
def health():
    """Is it up."""
    return {"status": "ok"}


@app.schedule(Rate(5, unit=Rate.MINUTES))
def tick(event):
    return None


def helper():
    return 1


HELPER = helper()
'''

BLUEPRINT = '''from chalice import Blueprint

bp = Blueprint(__name__)


@bp.route("/items")
def items():
    return []
'''


def shape(tmp: Path, app: str = APP, blueprint: str = BLUEPRINT, extra: dict[str, str] | None = None) -> str:
    files = {"app.py": app, "chalicelib/__init__.py": "", "chalicelib/routes.py": blueprint, **(extra or {})}
    for rel, text in files.items():
        p = tmp / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return source_shape([(rel, tmp / rel) for rel in files])


@pytest.fixture
def base(tmp_path: Path) -> str:
    return shape(tmp_path / "base")


SAME = {
    "a comment and blank lines": APP.replace('app = Chalice', '# the app\n\napp = Chalice'),
    "a route's body": APP.replace('return {"status": "ok"}', 'x = os.getpid()\n    return {"status": x}'),
    "a schedule's body": APP.replace("    return None", "    print(event)\n    return {}"),
}

DIFFERENT = {
    "a route's docstring (its swagger description)": APP.replace('"""Is it up."""', '"""Is it alive."""'),
    "a route's path": APP.replace('"/health"', '"/healthz"'),
    "a new route": APP + '\n\n@app.route("/new")\ndef new():\n    return {}\n',
    "a route's methods": APP.replace('@app.route("/health")', '@app.route("/health", methods=["POST"])'),
    "a schedule's rate": APP.replace("Rate(5,", "Rate(6,"),
    "a route's default argument (evaluated at import)": APP.replace("def health():", "def health(x=os.sep):"),
    "module-level code": APP.replace("HELPER = helper()", "HELPER = helper() + 1"),
    "a function the import calls": APP.replace("    return 1", "    return 2"),
}


BODY = ('return {"status": "ok"}', 'return {"status": "changed"}')
# (what, the app with the original view body): a change of that body alone must count.
BODY_COUNTS = {
    "a view the import calls": APP + "\nhealth()\n",
    "a view referenced elsewhere": APP + "\nALIASED = health\n",
    "a view imported by another module": APP,
    "a view named in a string": APP + '\nVIEW = getattr(__import__("app"), "health")\n',
    "a view under another decorator too": APP.replace('@app.route("/health")', '@other\n@app.route("/health")')
    .replace("import os", "import os\nother = lambda f: f"),
    "a view registered on an object that is not Chalice(...)": APP.replace("app = Chalice(", "app = make_app(")
    .replace("from chalice import", "from x import make_app\nfrom chalice import"),
    "a view of a module with two views of that name": APP + '\n\n@app.route("/again")\ndef health():\n    return 1\n',
}


@pytest.mark.parametrize("what", sorted(BODY_COUNTS))
def test_a_view_body_the_import_may_run_counts(tmp_path: Path, what: str) -> None:
    app = BODY_COUNTS[what]
    extra = {"chalicelib/uses.py": "from app import health\n"} if "imported" in what else None
    assert shape(tmp_path / "a", app, extra=extra) != shape(tmp_path / "b", app.replace(*BODY), extra=extra)


def test_the_same_body_change_alone_keeps_it(tmp_path: Path, base: str) -> None:
    assert shape(tmp_path / "a", APP.replace(*BODY)) == base


@pytest.mark.parametrize("what", sorted(SAME))
def test_changes_that_cannot_change_the_model_keep_the_fingerprint(tmp_path: Path, base: str, what: str) -> None:
    assert shape(tmp_path / "x", SAME[what]) == base


@pytest.mark.parametrize("what", sorted(DIFFERENT))
def test_changes_that_may_change_the_model_change_the_fingerprint(tmp_path: Path, base: str, what: str) -> None:
    assert shape(tmp_path / "x", DIFFERENT[what]) != base


def test_a_blueprint_view_body_keeps_it_and_its_path_does_not(tmp_path: Path, base: str) -> None:
    assert shape(tmp_path / "a", blueprint=BLUEPRINT.replace("return []", "return [1, 2]")) == base
    assert shape(tmp_path / "b", blueprint=BLUEPRINT.replace('"/items"', '"/things"')) != base


def test_other_files_and_unparsable_modules_count_by_their_bytes(tmp_path: Path, base: str) -> None:
    yaml_a, yaml_b = {"routes.yaml": "a: 1\n"}, {"routes.yaml": "a: 2\n"}
    assert shape(tmp_path / "a", extra=yaml_a) != shape(tmp_path / "b", extra=yaml_b)
    broken = "def (:\n"
    assert shape(tmp_path / "c", extra={"bad.py": broken}) != shape(tmp_path / "d", extra={"bad.py": broken + "#\n"})
