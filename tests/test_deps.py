"""Dependencies for the Lambda target (real installs from PyPI with uv)."""

from __future__ import annotations

import marshal
import sys
from pathlib import Path

import pytest

from lambdaship import paths
from lambdaship.config import FunctionConfig
from lambdaship.errors import LambdashipError
from lambdaship.package import bytecode, deps, installer
from lambdaship.platform import Platform


@pytest.fixture(autouse=True)
def _own_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "home"
    monkeypatch.setenv("LAMBDASHIP_HOME", str(home))
    return home


def _fn(tmp_path: Path, requirements: str, **kw) -> FunctionConfig:
    src = tmp_path / "app"
    src.mkdir(exist_ok=True)
    (src / "requirements.txt").write_text(requirements)
    (src / "app.py").write_text("def handler(e, c):\n    return 1\n")
    kw.setdefault("base_image", "127.0.0.1:5000/lambda-base/python:3.12")
    return FunctionConfig(key="f", function_name="f", source=src, handler="app.handler", **kw)


def test_platform_tags() -> None:
    assert Platform.of("x86_64", "3.12").uv_platform == "x86_64-manylinux_2_28"
    assert Platform.of("arm64", "3.13").uv_platform == "aarch64-manylinux_2_28"
    assert Platform.of("x86_64", "3.11").uv_platform == "x86_64-manylinux2014"
    assert Platform.of("arm64", "3.9").uv_platform == "aarch64-manylinux2014"


def test_install_then_cache_hit(tmp_path: Path) -> None:
    fn = _fn(tmp_path, "humanize==4.12.3\nsix==1.17.0\n")
    first = deps.install(fn)
    assert not first.cached
    assert first.requirements == ["humanize==4.12.3", "six==1.17.0"]
    assert (first.path / "humanize" / "__init__.py").is_file()
    assert not (first.path / "bin").exists() and not (first.path / ".lock").exists()
    second = deps.install(fn)
    assert second.cached and second.hash == first.hash and second.path == first.path
    # another python version is another set
    other = deps.install(fn.model_copy(update={"python": "3.11"}))
    assert other.hash != first.hash


def test_native_wheels_are_for_the_target_not_the_host(tmp_path: Path) -> None:
    fn = _fn(tmp_path, "markupsafe==3.0.2\n")
    x86 = deps.install(fn)
    arm = deps.install(fn.model_copy(update={"architecture": "arm64"}))
    x86_so = [p.name for p in x86.path.rglob("*.so")]
    arm_so = [p.name for p in arm.path.rglob("*.so")]
    assert x86_so and all("cpython-312-x86_64-linux-gnu" in n for n in x86_so)
    assert arm_so and all("cpython-312-aarch64-linux-gnu" in n for n in arm_so)
    (wheel,) = x86.path.glob("*-3.0.2.dist-info/WHEEL")
    assert "manylinux" in wheel.read_text() and "x86_64" in wheel.read_text()


def test_sdist_only_native_package_is_a_one_line_error(tmp_path: Path) -> None:
    fn = _fn(tmp_path, "psycopg2==2.9.10\n")
    with pytest.raises(LambdashipError) as exc:
        deps.install(fn)
    line = exc.value.one_line()
    assert "psycopg2" in line and "no wheel" in line
    assert "pin versions" in line and "vendor" in line
    assert "\n" not in line


def test_bytecode_only_for_the_target_version(tmp_path: Path) -> None:
    fn = _fn(tmp_path, "humanize==4.12.3\n")
    result = deps.install(fn)
    pycs = list(result.path.rglob("*.pyc"))
    host_tag = sys.implementation.cache_tag
    if bytecode.find_interpreter("3.12"):
        assert result.bytecode
        assert pycs and all(".cpython-312." in p.name for p in pycs)
        pyc = result.path / "humanize" / "__pycache__" / "__init__.cpython-312.pyc"
        data = pyc.read_bytes()
        assert int.from_bytes(data[4:8], "little") == 0b01  # PEP 552: hash-based, unchecked
        if host_tag == "cpython-312":
            code = marshal.loads(data[16:])
            assert code.co_filename == "/var/task/humanize/__init__.py"
    else:
        assert not result.bytecode
        assert pycs == []  # never host-version bytecode for another target
    assert not [p for p in pycs if host_tag != "cpython-312" and host_tag in p.name]


def test_pyc_has_no_temp_paths(tmp_path: Path) -> None:
    fn = _fn(tmp_path, "humanize==4.12.3\n")
    result = deps.install(fn)
    for pyc in result.path.rglob("*.pyc"):
        data = pyc.read_bytes()
        assert b"/var/task/" in data
        assert str(paths.home()).encode() not in data and b".tmp-" not in data


def test_aws_base_prunes_transitive_sdk_packages_only(tmp_path: Path) -> None:
    # python-dateutil is named (kept); six only comes in through it (left out on the AWS base).
    fn = _fn(tmp_path, "python-dateutil==2.9.0.post0\n", base_image="public.ecr.aws/lambda/python:3.12")
    result = deps.install(fn)
    assert result.pruned == ("six",)
    assert result.requirements == ["python-dateutil==2.9.0.post0"]
    assert not (result.path / "six.py").exists() and (result.path / "dateutil").is_dir()
    # any other base: nothing is left out
    other = deps.install(fn.model_copy(update={"base_image": "127.0.0.1:5000/other:1"}))
    assert other.pruned == () and (other.path / "six.py").exists()


def test_host_target_installs_for_this_interpreter(tmp_path: Path) -> None:
    fn = _fn(tmp_path, "markupsafe==3.0.2\n")
    result = deps.install(fn, target="host")
    so = [p.name for p in result.path.rglob("*.so")]
    assert so and all(sys.implementation.cache_tag in n for n in so)
    assert result.hash != deps.install(fn).hash


def test_no_requirements_is_an_empty_set(tmp_path: Path) -> None:
    src = tmp_path / "app"
    src.mkdir()
    fn = FunctionConfig(key="f", function_name="f", source=src, handler="app.handler")
    result = deps.install(fn)
    assert result.requirements == [] and list(result.path.iterdir()) == []


def test_missing_requirements_file(tmp_path: Path) -> None:
    fn = _fn(tmp_path, "six\n").model_copy(update={"requirements": "nope.txt"})
    with pytest.raises(LambdashipError, match=r"requirements file .*nope\.txt not found"):
        deps.install(fn)


def test_pip_fallback_installs_for_the_target(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(installer, "uv_binary", lambda: None)
    assert installer.installer()[0] == "pip"
    fn = _fn(tmp_path, "markupsafe==3.0.2\n", architecture="arm64")
    result = deps.install(fn)
    so = [p.name for p in result.path.rglob("*.so")]
    assert so and all("cpython-312-aarch64-linux-gnu" in n for n in so)
    assert not [p for p in result.path.rglob("*.pyc") if ".cpython-312." not in p.name]  # --no-compile
    assert result.requirements == ["markupsafe==3.0.2"]


def test_bytecode_can_be_turned_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fn = _fn(tmp_path, "humanize==4.12.3\n")
    monkeypatch.setenv("LAMBDASHIP_BYTECODE", "0")
    off = deps.install(fn)
    assert not off.bytecode and not list(off.path.rglob("*.pyc"))
    monkeypatch.delenv("LAMBDASHIP_BYTECODE")
    assert deps.plan(fn).hash != off.hash or bytecode.find_interpreter("3.12") is None
