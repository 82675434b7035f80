"""#19.4: requirement files never run code on the build host, read host files or weaken transport.

Each hostile line is written into a real project's requirements.txt and must be refused with one
line naming the file and line (never the line's content: a canary in it must not appear). The
lines that are allowed go through a real uv install into the deps layer.
"""

from __future__ import annotations

import base64
import hashlib
import io
import zipfile
from pathlib import Path

import pytest

from lambdaship.config import load_project
from lambdaship.errors import LambdashipError
from lambdaship.package import deps
from lambdaship.package.requirements import requirements_file
from tests.conftest import run_cli
from tests.hostile.package_index import write_sdist

CANARY = "canary-requirement-secret-9f2c"

# what the refusal says -> {case: hostile line}; each line is refused on its own, in one line
REFUSED = {
    # building these runs their setup.py / build backend here
    "editable requirement": {"editable": "-e ./pkg", "editable-long": "--editable=./pkg",
                             "editable-vcs": f"-e git+https://example.com/{CANARY}.git#egg=x"},
    "local path requirement": {"local-dir": "./pkg", "local-parent": "../outside", "local-abs": "/usr/lib/python3"},
    "file:// requirement": {"name-at-file": f"x @ file:///tmp/{CANARY}", "file-url": "file:///etc/passwd"},
    "VCS requirement": {"vcs": f"git+https://example.com/{CANARY}.git", "hg": "hg+https://example.com/repo",
                        "name-at-vcs": f"x @ git+https://example.com/{CANARY}"},
    "source archive by URL": {"sdist-url": f"https://example.com/{CANARY}-1.0.tar.gz"},
    "unsupported URL scheme": {"ftp-url": "ftp://evil.example/x-1.0-py3-none-any.whl"},
    # transports and hosts
    "plain http": {"http-wheel-url": "http://evil.example/x-1.0-py3-none-any.whl",
                   "index-short": "-ihttp://evil.example/simple",
                   "extra-index-http": "--extra-index-url http://evil.example/simple",
                   "find-links-http": "--find-links http://evil.example/wheels"},
    "plain http to evil.example": {"index-http": f"--index-url http://user:{CANARY}@evil.example/simple"},
    "must be an https:// URL": {"index-file": "--index-url file:///srv/index"},
    "TLS verification off": {"trusted-host": "--trusted-host evil.example"},
    "outside the project": {"find-links-root": "-f file:///", "find-links-abs": "--find-links /tmp",
                            "find-links-parent": "--find-links=../wheels"},
    # build options
    "build from source": {"no-binary": "--no-binary :all:"},
    "per-requirement option '--install-option'": {"install-option": "six==1.16.0 --install-option=--prefix=/tmp"},
    "per-requirement option": {"continuation": "six==1.16.0 \\\n  --install-option=--x"},
    **{f"option '{opt}' is not allowed": {case: f"{opt}{value}"} for case, opt, value in [
        ("global-option", "--global-option", "=build_ext"), ("pep517", "--use-pep517", ""),
        ("config-settings", "--config-settings", "=editable_mode=compat"), ("src", "--src", " /tmp/src")]},
    "option '--no-build-isolation'": {"no-build-isolation": "--no-build-isolation"},
    # includes that leave the project
    "is outside the project": {"include-abs": "-r /etc/passwd", "constraint-parent": "-c ../../constraints.txt"},
    "not found": {"include-missing": "-r nothere.txt"},
}
CASES = {case: (line, expected) for expected, lines in REFUSED.items() for case, line in lines.items()}


def _project(tmp_path: Path, requirements: str) -> Path:
    app = tmp_path / "proj"
    app.mkdir(exist_ok=True)
    (app / "main.py").write_text("def handler(event, context):\n    return 1\n")
    (app / "lambdaship.toml").write_text('function_name = "req"\nhandler = "main.handler"\n')
    (app / "requirements.txt").write_text(requirements)
    (app / "pkg").mkdir(exist_ok=True)
    (app / "pkg" / "setup.py").write_text(f"open({str(tmp_path / 'RAN')!r}, 'w').write('x')\n")
    return app


@pytest.mark.parametrize("case", sorted(CASES), ids=sorted(CASES))
def test_hostile_line_is_refused_in_one_line(case: str, tmp_path: Path) -> None:
    line, expected = CASES[case]
    app = _project(tmp_path, f"six==1.16.0\n{line}\n")
    with pytest.raises(LambdashipError) as info:
        requirements_file(load_project(app).function())
    text = f"{info.value} {info.value.hint or ''}"
    assert expected in text, text
    assert "requirements.txt" in text
    assert CANARY not in text and "\n" not in str(info.value)


def test_editable_requirement_runs_nothing_and_writes_nothing(base_image_ref: str, tmp_path: Path) -> None:
    """``-e ./pkg``: setup.py would run on this machine and leave pkg.egg-info in the tree."""
    app = _project(tmp_path, "-e ./pkg\n")
    before = sorted(p.relative_to(app).as_posix() for p in app.rglob("*"))
    r = run_cli("build", "-C", str(app), "--base-image", base_image_ref,
                env={"LAMBDASHIP_HOME": str(tmp_path / "home")})
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: requirements.txt:1: editable"), r.stderr
    assert "Traceback" not in r.stderr
    assert not (tmp_path / "RAN").exists(), "setup.py ran on the build host"
    assert sorted(p.relative_to(app).as_posix() for p in app.rglob("*")) == before  # no *.egg-info


def test_requirements_symlinked_out_of_the_project_is_refused_unread(tmp_path: Path) -> None:
    app = _project(tmp_path, "")
    outside = tmp_path / "outside.txt"
    outside.write_text(f"{CANARY}==1.0\n")
    (app / "requirements.txt").unlink()
    (app / "requirements.txt").symlink_to(outside)
    with pytest.raises(LambdashipError) as info:
        requirements_file(load_project(app).function())
    assert "outside the project" in str(info.value) and CANARY not in str(info.value)


def _wheel(dest: Path, name: str = "tinypkg", ver: str = "1.0") -> Path:
    """A minimal pure-Python wheel, written by hand (no build backend runs)."""
    files = {
        f"{name}/__init__.py": b"VALUE = 'from the vendored wheel'\n",
        f"{name}-{ver}.dist-info/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {ver}\n".encode(),
        f"{name}-{ver}.dist-info/WHEEL": (b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
                                          b"Tag: py3-none-any\n"),
    }
    record = []
    for arc, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{arc},sha256={digest},{len(data)}")
    record.append(f"{name}-{ver}.dist-info/RECORD,,")
    files[f"{name}-{ver}.dist-info/RECORD"] = ("\n".join(record) + "\n").encode()
    dest.mkdir(parents=True, exist_ok=True)
    path = dest / f"{name}-{ver}-py3-none-any.whl"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for arc, data in files.items():
            zf.writestr(arc, data)
    path.write_bytes(buf.getvalue())
    return path


ALLOWED = {
    "https-index": "--index-url https://pypi.org/simple\nsix==1.16.0\n",
    "find-links-dir": "--find-links ./wheels\ntinypkg==1.0\nsix==1.16.0\n",
    "local-wheel": "./wheels/tinypkg-1.0-py3-none-any.whl\nsix==1.16.0 --hash=sha256:"
                   "8abb2f1d86890a2dfb989f9a77cfcfd3e47c2a354b01111771326f8aa26e0254\n",
    "flags": "--prefer-binary\n--only-binary :all:\n--pre\nsix==1.16.0  # a comment\n",
}


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(ALLOWED), ids=sorted(ALLOWED))
def test_allowed_lines_install_with_real_uv(case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAMBDASHIP_HOME", str(tmp_path / "home"))
    app = _project(tmp_path, ALLOWED[case])
    _wheel(app / "wheels")
    result = deps.install(load_project(app).function())
    assert "six==1.16.0" in result.requirements, result.requirements
    if "tinypkg" in ALLOWED[case]:
        assert "tinypkg==1.0" in result.requirements
        assert (Path(result.path) / "tinypkg" / "__init__.py").is_file()
    assert not (tmp_path / "RAN").exists()


def _sdist(dest: Path, marker: Path, name: str = "hostilesdist") -> None:
    """An sdist whose setup.py leaves a marker when anything builds it."""
    write_sdist(dest, name, {"setup.py": f"open({str(marker)!r}, 'w').write('built')\n"
                                         f"from setuptools import setup\nsetup(name={name!r}, version='1.0')\n"})


@pytest.mark.parametrize("target", ["lambda", "host"])
def test_sdist_is_never_built_on_this_machine_for_either_target(
    target: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The host tree (serve's fallback without namespaces) installs wheels only, like the Lambda tree."""
    monkeypatch.setenv("LAMBDASHIP_HOME", str(tmp_path / "home"))
    marker = tmp_path / "BUILT"
    app = _project(tmp_path, "--no-index\n--find-links ./dist\nhostilesdist==1.0\n")
    _sdist(app / "dist", marker)
    with pytest.raises(LambdashipError) as info:
        deps.install(load_project(app).function(), target=target)  # type: ignore[arg-type]
    assert "hostilesdist" in str(info.value)
    assert not marker.exists(), "the sdist's setup.py ran on the build host"


@pytest.mark.parametrize("dependency", [f"x @ git+https://example.com/{CANARY}", "y @ file:///etc", "z @ ../outside"])
def test_pyproject_dependencies_obey_the_same_rules(dependency: str, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAMBDASHIP_HOME", str(tmp_path / "home"))
    app = tmp_path / "proj"
    app.mkdir()
    (app / "main.py").write_text("def handler(event, context):\n    return 1\n")
    (app / "pyproject.toml").write_text(
        f'[project]\nname = "x"\nversion = "1"\ndependencies = ["six==1.16.0", "{dependency}"]\n'
        '[tool.lambdaship]\nfunction_name = "p"\nhandler = "main.handler"\n')
    with pytest.raises(LambdashipError) as info:
        requirements_file(load_project(app).function())
    assert "\n" not in str(info.value) and CANARY not in str(info.value)


# ---- lock files: packages from a local directory, file or editable checkout ------------------------
def _uv_lock(*packages: tuple[str, str], members: tuple[str, ...] = ()) -> str:
    head = 'version = 1\nrequires-python = ">=3.11"\n'
    if members:
        head += f"\n[manifest]\nmembers = {list(members)!r}\n".replace("'", '"')
    body = "".join(f'\n[[package]]\nname = "{n}"\nversion = "0.1"\nsource = {src}\n' for n, src in packages)
    six = '\n[[package]]\nname = "six"\nversion = "1.17.0"\nsource = { registry = "https://pypi.org/simple" }\n'
    return head + body + six


POETRY_DEVELOP = """
[[package]]
name = "mylib"
version = "0.1"
description = ""
optional = false
python-versions = "*"
groups = ["main"]
files = []
develop = true

[package.source]
type = "directory"
url = "../mylib"
"""
ROOT = ("app", '{ virtual = "." }')
UV_LOCAL = "workspace member"  # the fix the one line names for uv.lock's local sources
LOCKED = {  # case -> (lock file, its text, the package the one line names, the fix it names)
    "uv-editable": ("uv.lock", _uv_lock(ROOT, ("helper", '{ editable = "../libs/helper" }')), "helper", UV_LOCAL),
    "uv-directory": ("uv.lock", _uv_lock(ROOT, ("plainlib", '{ directory = "../libs/plain" }')), "plainlib", UV_LOCAL),
    "uv-path-wheel": ("uv.lock", _uv_lock(ROOT, ("whl", '{ path = "wheels/whl-0.1-py3-none-any.whl" }')), "whl",
                      UV_LOCAL),
    "uv-path-sdist": ("uv.lock", _uv_lock(ROOT, ("sd", '{ path = "dist/sd-0.1.tar.gz" }')), "sd", UV_LOCAL),
    "uv-editable-not-a-member": ("uv.lock", _uv_lock(("app", '{ editable = "." }'), ("inner", '{ editable = "inner" }'),
                                                     members=("app",)), "inner", UV_LOCAL),
    "uv-git": ("uv.lock", _uv_lock(ROOT, ("gitlib", f'{{ git = "https://example.com/{CANARY}.git" }}')), "gitlib",
               "publish them to an index"),
    "pipfile-editable": ("Pipfile.lock", '{"default": {"mylib": {"editable": true, "path": "."}}}', "mylib",
                         "publish them to an index"),
    "pipfile-path": ("Pipfile.lock", '{"default": {"other": {"path": "../other"}}}', "other", "publish them"),
    "poetry-develop-directory": ("poetry.lock", POETRY_DEVELOP, "mylib", "publish them to an index"),
}


def _locked_project(tmp_path: Path, lock: str, text: str) -> Path:
    app = tmp_path / "proj"
    app.mkdir()
    (app / "main.py").write_text("def handler(event, context):\n    return 1\n")
    (app / "lambdaship.toml").write_text('function_name = "lk"\nhandler = "main.handler"\npython = "3.11"\n')
    (app / "pyproject.toml").write_text('[project]\nname = "app"\nversion = "0.1"\nrequires-python = ">=3.11"\n'
                                        'dependencies = ["six==1.17.0", "mylib"]\n')
    (app / lock).write_text(text)
    return app


@pytest.mark.parametrize("case", sorted(LOCKED), ids=sorted(LOCKED))
def test_lock_file_package_from_a_local_path_is_refused_by_name(case: str, tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAMBDASHIP_HOME", str(tmp_path / "home"))
    lock, text, name, fix = LOCKED[case]
    with pytest.raises(LambdashipError) as info:
        requirements_file(load_project(_locked_project(tmp_path, lock, text)).function())
    message = str(info.value)
    assert message.startswith(f"{lock}: {name}") and "would run their code here" in message, message
    assert fix in (info.value.hint or "")
    assert "\n" not in message and CANARY not in message + (info.value.hint or "")


def test_uv_lock_workspace_members_are_the_app_not_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The project itself and its workspace members are editable in uv.lock: their code ships in the app layer."""
    monkeypatch.setenv("LAMBDASHIP_HOME", str(tmp_path / "home"))
    lock = _uv_lock(("app", '{ editable = "." }\ndependencies = [{ name = "lib1" }, { name = "six" }]'),
                    ("lib1", '{ editable = "packages/lib1" }'), members=("app", "lib1"))
    app = _locked_project(tmp_path, "uv.lock", lock)
    (app / "pyproject.toml").write_text(
        '[project]\nname = "app"\nversion = "0.1"\nrequires-python = ">=3.11"\ndependencies = ["six==1.17.0", "lib1"]\n'
        '[tool.uv.sources]\nlib1 = { workspace = true }\n[tool.uv.workspace]\nmembers = ["packages/*"]\n')
    (app / "packages" / "lib1").mkdir(parents=True)
    (app / "packages" / "lib1" / "pyproject.toml").write_text('[project]\nname = "lib1"\nversion = "0.1"\n')
    path = requirements_file(load_project(app).function())
    assert path is not None
    assert [ln for ln in path.read_text().splitlines() if not ln.startswith("#")] == ["six==1.17.0"]
