"""The deterministic zip writer and the zip-or-image decision."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest

from lambdaship.config import load_project
from lambdaship.errors import LambdashipError
from lambdaship.package import archive, zipplan
from tests.conftest import EXAMPLES

MiB = 1024 * 1024


def _tree(root: Path) -> Path:
    (root / "pkg" / "sub").mkdir(parents=True)
    (root / "pkg" / "__init__.py").write_text("X = 1\n" * 200)
    (root / "pkg" / "sub" / "data.bin").write_bytes(os.urandom(4096) + b"\0" * 10000)
    (root / "pkg" / "ünï.txt").write_text("non-ascii name\n")
    (root / "empty.txt").write_bytes(b"")
    tool = root / "pkg" / "tool.sh"
    tool.write_text("#!/bin/sh\necho hi\n")
    tool.chmod(0o750)
    return root


def _copy_with_other_mtimes(src: Path, dest: Path, mtime: int) -> Path:
    shutil.copytree(src, dest)
    for dirpath, _dirs, files in os.walk(dest):
        for f in files:
            os.utime(Path(dirpath, f), (mtime, mtime))
    return dest


def test_same_files_same_bytes_whatever_the_directory_and_mtimes(tmp_path: Path) -> None:
    a = _tree(tmp_path / "a")
    b = _copy_with_other_mtimes(a, tmp_path / "elsewhere" / "b", 1_700_000_000)
    za = archive.write_zip(tmp_path / "a.zip", archive.tree_files(a))
    zb = archive.write_zip(tmp_path / "b.zip", list(reversed(archive.tree_files(b))))
    assert za.sha256 == zb.sha256
    assert (tmp_path / "a.zip").read_bytes() == (tmp_path / "b.zip").read_bytes()
    assert za.sha256 == hashlib.sha256((tmp_path / "a.zip").read_bytes()).hexdigest()
    # a content change changes the hash
    (b / "pkg" / "__init__.py").write_text("X = 2\n")
    assert archive.write_zip(tmp_path / "c.zip", archive.tree_files(b)).sha256 != za.sha256


def test_zip_format_is_normalised_and_valid(tmp_path: Path) -> None:
    root = _tree(tmp_path / "t")
    art = archive.write_zip(tmp_path / "t.zip", archive.tree_files(root))
    with zipfile.ZipFile(art.path) as zf:
        assert zf.testzip() is None
        infos = zf.infolist()
        names = [i.filename for i in infos]
        assert names == sorted(names, key=lambda n: n.encode())
        assert "pkg/ünï.txt" in names and not any(n.endswith("/") for n in names)
        for i in infos:
            assert i.date_time == (1980, 1, 1, 0, 0, 0)
            assert i.compress_type == zipfile.ZIP_DEFLATED
            assert i.extra == b"" and i.comment == b""
            assert i.create_system == 3
            expected = 0o100755 if i.filename == "pkg/tool.sh" else 0o100644
            assert i.external_attr >> 16 == expected, i.filename
        assert zf.read("pkg/sub/data.bin") == (root / "pkg" / "sub" / "data.bin").read_bytes()
        assert zf.read("empty.txt") == b""
    assert art.entries == len(names)
    assert art.unzipped_size == sum(p.stat().st_size for _, p in archive.tree_files(root))
    assert art.size == art.path.stat().st_size
    if shutil.which("unzip"):  # a second, independent reader
        subprocess.run(["unzip", "-tq", str(art.path)], check=True, capture_output=True)


def test_copying_compressed_entries_gives_the_same_bytes_as_compressing_again(tmp_path: Path) -> None:
    deps = _tree(tmp_path / "deps")
    app = tmp_path / "app"
    app.mkdir()
    (app / "handler.py").write_text("def handler(e, c):\n    return e\n")
    (app / "empty.txt").write_text("the app's file wins\n")
    base = archive.write_zip(tmp_path / "deps.zip", archive.tree_files(deps))
    merged = archive.write_zip(tmp_path / "merged.zip", archive.tree_files(app), raw_from=base.path)
    union = dict(archive.tree_files(deps)) | dict(archive.tree_files(app))
    fresh = archive.write_zip(tmp_path / "fresh.zip", sorted(union.items()))
    assert merged.sha256 == fresh.sha256
    with zipfile.ZipFile(merged.path) as zf:
        assert zf.read("empty.txt") == b"the app's file wins\n"


def test_invalid_entry_names_are_refused(tmp_path: Path) -> None:
    f = tmp_path / "f"
    f.write_text("x")
    with pytest.raises(LambdashipError):
        archive.write_zip(tmp_path / "x.zip", [("../escape.py", f)])


def _handler_app(dest: Path) -> Path:
    shutil.copytree(EXAMPLES / "handler-app", dest)
    return dest


def test_build_zip_is_reproducible_across_directories_and_caches(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two checkouts, different mtimes, separate lambdaship caches: identical sha256."""
    a = _handler_app(tmp_path / "one" / "app")
    b = _copy_with_other_mtimes(a, tmp_path / "two" / "checkout", 1_600_000_000)
    monkeypatch.setenv("LAMBDASHIP_HOME", str(tmp_path / "home-a"))
    art_a = archive.build_zip(load_project(a).function())
    monkeypatch.setenv("LAMBDASHIP_HOME", str(tmp_path / "home-b"))
    art_b = archive.build_zip(load_project(b).function())
    assert art_a.path != art_b.path
    assert art_a.sha256 == art_b.sha256
    assert art_a.path.read_bytes() == art_b.path.read_bytes()
    with zipfile.ZipFile(art_a.path) as zf:
        names = zf.namelist()
        assert "handler.py" in names and "humanize/__init__.py" in names
        assert zf.testzip() is None
    assert art_a.code_sha256 == zipplan.code_sha256_of(art_a.path)


# ---- decide ---------------------------------------------------------------------------------------
def test_decide_direct_s3_image() -> None:
    d = zipplan.decide(10 * MiB, 40 * MiB, None, "auto")
    assert (d.package_type, d.upload) == ("zip", "direct") and "fits a direct zip upload" in d.reason
    d = zipplan.decide(zipplan.ZIP_DIRECT_LIMIT, 40 * MiB, None, "auto")
    assert (d.package_type, d.upload) == ("zip", "direct")
    d = zipplan.decide(zipplan.ZIP_DIRECT_LIMIT + 1, 200 * MiB, "bkt", "auto")
    assert (d.package_type, d.upload) == ("zip", "s3") and "s3://bkt" in d.reason
    d = zipplan.decide(zipplan.ZIP_DIRECT_LIMIT + 1, 200 * MiB, None, "auto")
    assert d.package_type == "image" and "no zip_bucket" in d.reason
    d = zipplan.decide(80 * MiB, zipplan.ZIP_UNZIPPED_LIMIT + 1, "bkt", "auto")
    assert d.package_type == "image" and "250 MiB" in d.reason
    d = zipplan.decide(None, zipplan.ZIP_UNZIPPED_LIMIT + 1, None, "auto")  # not compressed: not needed
    assert d.package_type == "image" and "over the 250 MiB zip limit" in d.reason
    assert zipplan.decide(1, 1, None, "image").package_type == "image"
    d = zipplan.decide(1, 1, None, "auto", existing="Image")
    assert d.package_type == "image" and "already exists as a container image" in d.reason


def test_decide_zip_that_cannot_work_is_an_error() -> None:
    with pytest.raises(LambdashipError, match="over the 50 MiB direct-upload limit"):
        zipplan.decide(60 * MiB, 100 * MiB, None, "zip")
    with pytest.raises(LambdashipError, match="250 MiB"):
        zipplan.decide(60 * MiB, 300 * MiB, "bkt", "zip")
    with pytest.raises(LambdashipError, match="cannot change a function's package type"):
        zipplan.decide(1, 1, None, "zip", existing="Image")


def test_plan_auto_is_the_default_and_respects_base_image_and_existing_type(tmp_path: Path) -> None:
    app = _handler_app(tmp_path / "app")
    fn = load_project(app).function()
    assert fn.package_type == "auto"  # the default
    zp = zipplan.plan(fn)
    assert zp.decision.package_type == "zip" and zp.decision.upload == "direct" and zp.artifact is not None
    with_base = load_project(app, {"base_image": "127.0.0.1:5000/lambda-base/python:3.12"}).function()
    zp = zipplan.plan(with_base)
    assert zp.decision.package_type == "image" and "base_image is set" in zp.decision.reason
    assert zp.artifact is None
    assert zipplan.plan(with_base, existing="Zip").decision.package_type == "zip"  # type is fixed once deployed
    zp = zipplan.plan(fn, existing="Image")
    assert zp.decision.package_type == "image" and zp.artifact is None
    assert zipplan.plan(load_project(app, {"package_type": "image"}).function()).decision.reason == (
        'package_type = "image" in the config')
