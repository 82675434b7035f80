"""#19.3: build-side caches are verified when reused; a corrupt entry is rebuilt, never shipped.

Real builds (real uv, the local registry's tiny base image) into a private LAMBDASHIP_HOME; the
cache entries are then damaged on disk and the next build must give the same image as a build on
a clean machine (same manifest digest) and say, in one warning line, what it discarded.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import marshal
import shutil
import tarfile
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES, run_cli

pytestmark = pytest.mark.slow

HANDLER_APP = EXAMPLES / "handler-app"


def _build(app: Path, home: Path, *args: str, uv_cache: Path | None = None) -> tuple[dict, str]:
    env = {"LAMBDASHIP_HOME": str(home)} | ({"UV_CACHE_DIR": str(uv_cache)} if uv_cache else {})
    r = run_cli("build", "-C", str(app), "--json", *args, env=env)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout), r.stderr


def _app(tmp_path: Path, name: str = "app") -> Path:
    app = tmp_path / name
    shutil.copytree(HANDLER_APP, app)
    return app


def _flip(path: Path, offset: int | None = None) -> None:
    data = bytearray(path.read_bytes())
    i = len(data) // 2 if offset is None else offset
    data[i] ^= 0x01
    path.write_bytes(bytes(data))


def _layer(result: dict, role: str) -> dict:
    return next(x for x in result["layers"] if x["role"] == role)


def _sha(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def test_flipped_byte_in_cached_deps_layer_is_rebuilt(base_image_ref: str, tmp_path: Path) -> None:
    app = _app(tmp_path)
    home = tmp_path / "home"
    clean, _ = _build(app, home, "--base-image", base_image_ref)
    deps = _layer(clean, "deps")
    blob = home / "blobs" / "sha256" / deps["digest"].split(":", 1)[1]
    _flip(blob)
    again, err = _build(app, home, "--base-image", base_image_ref, "--out", str(tmp_path / "layout"))
    assert not again["deps_layer_cached"]  # the corrupt entry was not reused
    assert again["manifest_digest"] == clean["manifest_digest"]
    assert "warning: cached dependency layer failed verification" in err, err
    # what was written to the layout (and is now in the cache) is the real blob
    shipped = (tmp_path / "layout" / "blobs" / "sha256" / deps["digest"].split(":", 1)[1]).read_bytes()
    assert _sha(shipped) == deps["digest"]
    assert _sha(blob.read_bytes()) == deps["digest"]
    third, err = _build(app, home, "--base-image", base_image_ref)
    assert third["deps_layer_cached"] and "warning" not in err  # repaired, reused again
    fresh, _ = _build(app, tmp_path / "fresh-home", "--base-image", base_image_ref)
    assert fresh["manifest_digest"] == clean["manifest_digest"]


def test_layer_index_that_lies_about_the_diff_id_is_rebuilt(base_image_ref: str, tmp_path: Path) -> None:
    app = _app(tmp_path)
    home = tmp_path / "home"
    clean, _ = _build(app, home, "--base-image", base_image_ref)
    (index,) = (home / "layers").glob("*.json")
    info = json.loads(index.read_text())
    info["diff_id"] = "sha256:" + "0" * 64
    index.write_text(json.dumps(info))
    again, _ = _build(app, home, "--base-image", base_image_ref)
    assert not again["deps_layer_cached"] and again["manifest_digest"] == clean["manifest_digest"]
    info["digest"] = "sha256:../../../../etc/passwd"  # a path trick in the index: never followed
    index.write_text(json.dumps(info))
    again, _ = _build(app, home, "--base-image", base_image_ref)
    assert again["manifest_digest"] == clean["manifest_digest"]
    assert Path("/etc/passwd").is_file()


def test_changed_file_in_cached_deps_tree_is_reinstalled(base_image_ref: str, tmp_path: Path) -> None:
    """A file of a cached tree changed in place. Trees are hard links into uv's cache, so the
    change reaches uv's copy too: the tree check discards the tree, the reinstall links the
    doctored cached file, the RECORD check catches it and has uv download it again. The image is
    the clean one and a later install from that cache is clean (its own uv cache here: the
    suite's shared one stays out)."""
    app = _app(tmp_path)
    home, uv_cache = tmp_path / "home", tmp_path / "uv-cache"

    def build(home: Path, *args: str) -> tuple[dict, str]:
        return _build(app, home, "--base-image", base_image_ref, *args, uv_cache=uv_cache)

    clean, _ = build(home)
    (entry,) = (p for p in (home / "deps").iterdir() if p.is_dir() and not p.name.startswith("."))  # not <key>.lock
    target = entry / "tree" / "humanize" / "__init__.py"
    linked = [p for p in uv_cache.rglob("__init__.py") if p.stat().st_ino == target.stat().st_ino]
    assert linked, "the tree is not linked into uv's cache (the install copied it)"
    with target.open("a") as fh:  # in place: through the link
        fh.write("\nraise SystemExit('doctored dependency')\n")
    assert b"doctored dependency" in linked[0].read_bytes()
    shutil.rmtree(home / "layers")  # so the tree, not the layer cache, would be used
    again, err = build(home, "--out", str(tmp_path / "layout"))
    assert not again["deps_cached"], "the doctored tree was reused"
    assert "warning: cached dependency tree failed verification" in err, err
    assert again["manifest_digest"] == clean["manifest_digest"]
    deps = _layer(again, "deps")
    raw = gzip.decompress((tmp_path / "layout" / "blobs" / "sha256" / deps["digest"].split(":", 1)[1]).read_bytes())
    assert b"doctored dependency" not in raw
    # A later install from the same uv cache (another project, a new home) gets the clean file.
    build(tmp_path / "home2")
    (tree2,) = (tmp_path / "home2" / "deps").glob("*/tree")
    later = (tree2 / "humanize" / "__init__.py").read_bytes()
    assert b"doctored dependency" not in later, "uv's cache is still doctored"


def _pyc_from_layer(layout: Path, digest: str, name: str) -> bytes:
    raw = gzip.decompress((layout / "blobs" / "sha256" / digest.split(":", 1)[1]).read_bytes())
    with tarfile.open(fileobj=io.BytesIO(raw)) as tf:
        member = next(m for m in tf.getmembers() if m.name.startswith("var/task/__pycache__/")
                      and m.name.split("/")[-1].startswith(name + "."))
        return tf.extractfile(member).read()  # type: ignore[union-attr]


@pytest.mark.parametrize("python", ["3.11", "3.12"])  # compiled in this process / by another interpreter
def test_doctored_cached_pyc_is_never_shipped(base_image_ref: str, tmp_path: Path, python: str) -> None:
    app = tmp_path / "app"
    app.mkdir()
    (app / "main.py").write_text("def handler(event, context):\n    return 'from the source'\n")
    (app / "lambdaship.toml").write_text(f'function_name = "pyc"\nhandler = "main.handler"\npython = "{python}"\n')
    home = tmp_path / "home"
    clean, _ = _build(app, home, "--base-image", base_image_ref)
    assert clean["bytecode"], "no interpreter for the target: the test would prove nothing"
    cached = [p for p in (home / "pyc").rglob("*.pyc")]
    assert len(cached) == 1
    # Doctor it: same header (flags + source hash), the code of another source.
    evil = compile("def handler(event, context):\n    return 'doctored'\n", "/var/task/main.py", "exec")
    data = cached[0].read_bytes()
    cached[0].write_bytes(data[:16] + marshal.dumps(evil))
    layout = tmp_path / "layout"
    again, err = _build(app, home, "--base-image", base_image_ref, "--out", str(layout))
    assert "warning: cached bytecode failed verification" in err, err
    assert _layer(again, "app")["digest"] == _layer(clean, "app")["digest"]
    assert again["manifest_digest"] == clean["manifest_digest"]
    pyc = _pyc_from_layer(layout, _layer(again, "app")["digest"], "main")
    if python == "3.11":  # this interpreter can load it: the shipped bytecode runs the source
        namespace: dict = {}
        exec(marshal.loads(pyc[16:]), namespace)  # our own build output
        assert namespace["handler"]({}, None) == "from the source"
    assert b"doctored" not in pyc
    fresh, _ = _build(app, tmp_path / "fresh-home", "--base-image", base_image_ref)
    assert fresh["manifest_digest"] == clean["manifest_digest"]


def test_flipped_byte_in_cached_base_blob_is_downloaded_again(base_image_ref: str, tmp_path: Path) -> None:
    app = _app(tmp_path)
    home = tmp_path / "home"
    clean, _ = _build(app, home, "--base-image", base_image_ref, "--out", str(tmp_path / "l1"))
    base = _layer(clean, "base")
    blob = home / "blobs" / "sha256" / base["digest"].split(":", 1)[1]
    _flip(blob)
    again, err = _build(app, home, "--base-image", base_image_ref, "--out", str(tmp_path / "l2"))
    assert "warning: cached base layer failed verification" in err, err
    assert again["layout_digest"] == clean["layout_digest"]
    shipped = (tmp_path / "l2" / "blobs" / "sha256" / base["digest"].split(":", 1)[1]).read_bytes()
    assert _sha(shipped) == base["digest"]


def test_corrupt_blob_left_in_an_out_layout_is_replaced(base_image_ref: str, tmp_path: Path) -> None:
    app = _app(tmp_path)
    home = tmp_path / "home"
    layout = tmp_path / "layout"
    clean, _ = _build(app, home, "--base-image", base_image_ref, "--out", str(layout))
    app_blob = layout / "blobs" / "sha256" / _layer(clean, "app")["digest"].split(":", 1)[1]
    app_blob.unlink()
    app_blob.write_bytes(b"not the layer")  # its own inode: the cache's blob is not touched
    again, _ = _build(app, home, "--base-image", base_image_ref, "--out", str(layout))
    assert again["layout_digest"] == clean["layout_digest"]
    assert _sha(app_blob.read_bytes()) == _layer(clean, "app")["digest"]


def test_corrupt_cached_deps_zip_is_rebuilt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from lambdaship.config import load_project
    from lambdaship.package import archive

    monkeypatch.setenv("LAMBDASHIP_HOME", str(tmp_path / "home"))
    app = _app(tmp_path)
    fn = load_project(app).function()
    first = archive.build_zip(fn, out=tmp_path / "one.zip")
    (cached,) = archive.cache_dir().glob("deps-*.zip")
    _flip(cached, offset=60)  # inside the first member's data
    second = archive.build_zip(fn, out=tmp_path / "two.zip")
    assert second.sha256 == first.sha256
    assert hashlib.sha256((tmp_path / "two.zip").read_bytes()).hexdigest() == first.sha256


def test_doctored_generated_requirements_file_is_rewritten(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The pinned list made from pyproject.toml / a lock file is cached; a changed copy is not reused."""
    from lambdaship.config import load_project
    from lambdaship.package.requirements import requirements_file

    monkeypatch.setenv("LAMBDASHIP_HOME", str(tmp_path / "home"))
    app = tmp_path / "app"
    app.mkdir()
    (app / "main.py").write_text("def handler(event, context):\n    return 1\n")
    (app / "pyproject.toml").write_text(
        '[project]\nname = "x"\nversion = "1"\ndependencies = ["six==1.16.0"]\n'
        '[tool.lambdaship]\nfunction_name = "gen"\nhandler = "main.handler"\n')
    fn = load_project(app).function()
    first = requirements_file(fn)
    assert first is not None and "six==1.16.0" in first.read_text()
    original = first.read_text()
    first.write_text(original + "-e ./pkg\n")  # a doctored cache entry
    again = requirements_file(fn)
    assert again is not None and again.read_text() == original


def test_flipped_byte_in_uv_cache_is_not_shipped(tmp_path: Path) -> None:
    """uv installs a wheel it has seen from its cache (unpacked) without hashing it again; the
    installed tree is checked against the wheel's RECORD, so a flipped byte there is installed
    again from the index (uv's entry replaced), never shipped."""
    app = tmp_path / "app"
    app.mkdir()
    (app / "main.py").write_text("def handler(event, context):\n    return 1\n")
    (app / "lambdaship.toml").write_text('function_name = "uvc"\nhandler = "main.handler"\npython = "3.11"\n')
    (app / "requirements.txt").write_text("six==1.17.0\n")
    uv_cache = tmp_path / "uv-cache"  # this test's own: the machine's uv cache is never touched

    def size(home: str) -> tuple[Path, str]:
        r = run_cli("size", "-C", str(app), "--json",
                    env={"LAMBDASHIP_HOME": str(tmp_path / home), "UV_CACHE_DIR": str(uv_cache)})
        assert r.returncode == 0, r.stderr
        (tree,) = (tmp_path / home / "deps").glob("*/tree")
        return tree / "six.py", r.stderr

    clean_tree, _ = size("h1")
    clean = clean_tree.read_bytes()  # before the flip: h1's tree is a hard link to the cached file
    (cached,) = uv_cache.glob("archive-v0/*/six.py")
    _flip(cached)
    shipped, err = size("h2")  # a deps cache miss: uv takes six from its cache
    assert shipped.read_bytes() == clean
    assert "warning: the installer's cache held a corrupt copy of six; installed again from the index" in err, err
    again, err = size("h3")
    assert again.read_bytes() == clean and "warning" not in err  # uv's entry was replaced
    # The flip also reached h1's cached tree through the link: its next use discards it.
    first, err = size("h1")
    assert first.read_bytes() == clean
    assert "warning: cached dependency tree failed verification" in err, err
