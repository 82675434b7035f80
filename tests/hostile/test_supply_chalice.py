"""#16.5: a Chalice app is packaged as ``chalice deploy`` packages it.

Its requirements need not name chalice (``chalice new-project`` writes an empty file): the chalice
version installed here is added, with one note line, for build, size and serve alike (they share
the dependency plan). ``vendor/`` goes to the package root. Real uv, real builds.
"""

from __future__ import annotations

import gzip
import io
import json
import shutil
import tarfile
from importlib.metadata import version
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES, run_cli

CHALICE = version("chalice")


def _app(tmp_path: Path, requirements: str | None = "") -> Path:
    app = tmp_path / "chalice"
    shutil.copytree(EXAMPLES / "chalice-app", app)
    (app / "requirements.txt").unlink()
    if requirements is not None:
        (app / "requirements.txt").write_text(requirements)
    else:
        toml = (app / "lambdaship.toml").read_text().replace('requirements = "requirements.txt"\n', "")
        (app / "lambdaship.toml").write_text(toml)
    (app / "vendor" / "vendored").mkdir(parents=True)
    (app / "vendor" / "vendored" / "__init__.py").write_text("VALUE = 'vendored'\n")
    (app / "vendor" / "single.py").write_text("X = 1\n")
    return app


def _members(layout: Path, digest: str) -> set[str]:
    raw = gzip.decompress((layout / "blobs" / "sha256" / digest.split(":", 1)[1]).read_bytes())
    with tarfile.open(fileobj=io.BytesIO(raw)) as tf:
        return {m.name for m in tf.getmembers()}


@pytest.mark.slow
@pytest.mark.parametrize("requirements", ["", "humanize==4.12.3\n", None], ids=["empty", "other-deps", "no-file"])
def test_build_adds_chalice_and_puts_vendor_at_the_root(base_image_ref: str, tmp_path: Path,
                                                        requirements: str | None) -> None:
    app = _app(tmp_path, requirements)
    out = tmp_path / "layout"
    r = run_cli("build", "-C", str(app), "--json", "--base-image", base_image_ref, "--out", str(out),
                env={"LAMBDASHIP_HOME": str(tmp_path / "home")})
    assert r.returncode == 0, r.stderr
    notes = [ln for ln in r.stderr.splitlines() if ln.startswith("note:")]
    assert len(notes) == 1 and f"adding chalice=={CHALICE} (the version installed here)" in notes[0], r.stderr
    result = json.loads(r.stdout)
    deps_names = set().union(*(_members(out, x["digest"]) for x in result["layers"] if x["role"] == "deps"))
    assert "var/task/chalice/app.py" in deps_names
    assert any(n.startswith(f"var/task/chalice-{CHALICE}.dist-info/") for n in deps_names)
    if requirements and "humanize" in requirements:
        assert "var/task/humanize/__init__.py" in deps_names
    app_names = _members(out, next(x for x in result["layers"] if x["role"] == "app")["digest"])
    assert {"var/task/vendored/__init__.py", "var/task/single.py", "var/task/app.py"} <= app_names
    assert not any(n.startswith("var/task/vendor/") for n in app_names), sorted(app_names)


def test_requirements_naming_chalice_are_left_alone(tmp_path: Path) -> None:
    from lambdaship.config import load_project
    from lambdaship.package import deps

    app = _app(tmp_path, "chalice==1.31.0\n")
    plan = deps.plan(load_project(app).function())
    assert plan.extra == () and "chalice==1.31.0" in plan.requirements_text
    assert f"chalice=={CHALICE}" not in plan.requirements_text


def test_every_target_gets_chalice_and_a_plain_handler_does_not(tmp_path: Path) -> None:
    from lambdaship.config import load_project
    from lambdaship.package import deps

    fn = load_project(_app(tmp_path)).function()
    for target in ("lambda", "host"):  # build/size/run use the Lambda tree; the host tree is serve's fallback
        plan = deps.plan(fn, target=target)
        assert plan.extra == (f"chalice=={CHALICE}",) and not plan.empty and "chalice" in plan.named
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "main.py").write_text("def handler(event, context):\n    return 1\n")
    (plain / "lambdaship.toml").write_text('function_name = "p"\nhandler = "main.handler"\n')
    assert deps.plan(load_project(plain).function()).extra == ()


@pytest.mark.slow
def test_size_counts_chalice(tmp_path: Path) -> None:
    app = _app(tmp_path)
    r = run_cli("size", "-C", str(app), "--json", env={"LAMBDASHIP_HOME": str(tmp_path / "home")})
    assert r.returncode == 0, r.stderr
    assert f"adding chalice=={CHALICE}" in r.stderr
    rows = json.loads(r.stdout)["rows"]
    assert any(row["name"].lower() == "chalice" and row["version"] == CHALICE for row in rows)


def test_vendor_file_clashing_with_an_app_file_is_one_error(tmp_path: Path) -> None:
    from lambdaship.config import load_project
    from lambdaship.errors import LambdashipError
    from lambdaship.project import app_files

    app = _app(tmp_path)
    (app / "vendor" / "app.py").write_text("x = 1\n")
    with pytest.raises(LambdashipError, match=r"vendor/app\.py .* would replace the app's own app\.py"):
        app_files(load_project(app).function())


@pytest.mark.slow
def test_serve_adds_chalice_too(tmp_path: Path) -> None:
    """serve runs on the target dependency tree (never the host's site-packages): without the added
    chalice the app could not import; with it, /health answers 200 and the note says why."""
    from tests.test_serve import Served

    app = _app(tmp_path)
    served = Served(["-C", str(app), "--no-reload", "--workers", "1"])
    try:
        r = served.client.get("/health")
        assert r.status_code == 200 and r.json() == {"status": "ok"}, (r.status_code, r.text, served.log_text())
        assert f"adding chalice=={CHALICE}" in served.log_text()
    finally:
        assert served.stop() == 0
