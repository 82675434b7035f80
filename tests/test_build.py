"""``lambdaship build`` end to end: real local registry, real installs, skopeo and umoci as judges."""

from __future__ import annotations

import gzip
import io
import json
import os
import re
import shutil
import subprocess
import tarfile
import time
import uuid
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES, run_cli
from tests.images import BASE_ENV, push_base, push_declared_huge, push_index, push_many_layers

pytestmark = pytest.mark.slow

HANDLER_APP = EXAMPLES / "handler-app"


def _copy_app(src: Path, dest: Path, mtime: int) -> Path:
    shutil.copytree(src, dest)
    for p in [dest, *dest.rglob("*")]:
        os.utime(p, (mtime, mtime), follow_symlinks=False)
    return dest


def _build(app: Path, *args: str, env: dict[str, str] | None = None) -> dict:
    r = run_cli("build", "-C", str(app), "--json", *args, env=env)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def _error(app: Path, *args: str) -> str:
    r = run_cli("build", "-C", str(app), *args)
    assert r.returncode == 1, (r.stdout, r.stderr)
    # the one error line; per-stage progress lines ("base   0.1 s  …", CI mode) may precede it
    lines = [ln for ln in r.stderr.strip().splitlines() if not re.match(r"[a-z]+ +\d+\.\d s  ", ln)]
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    return lines[0]


def _blob(layout: Path, digest: str) -> bytes:
    return (layout / "blobs" / "sha256" / digest.split(":", 1)[1]).read_bytes()


def _layer_members(layout: Path, digest: str) -> list[tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(_blob(layout, digest)))) as tf:
        return tf.getmembers()


def test_same_inputs_same_digest_in_other_directories_times_and_caches(
    base_image_ref: str, tmp_path: Path
) -> None:
    a = _copy_app(HANDLER_APP, tmp_path / "one" / "app", 1_600_000_000)
    first = _build(a, "--base-image", base_image_ref)
    time.sleep(1.1)
    b = _copy_app(HANDLER_APP, tmp_path / "two" / "elsewhere", 1_700_000_000)
    # a fresh machine: empty dependency, layer and blob caches
    second = _build(b, "--base-image", base_image_ref, env={"LAMBDASHIP_HOME": str(tmp_path / "fresh-home")})
    assert second["manifest_digest"] == first["manifest_digest"]
    assert second["config_digest"] == first["config_digest"]
    assert [x["digest"] for x in second["layers"]] == [x["digest"] for x in first["layers"]]
    assert not second["deps_cached"]


def test_warm_rebuild_uses_the_caches(base_image_ref: str, tmp_path: Path) -> None:
    app = _copy_app(HANDLER_APP, tmp_path / "app", 1_600_000_000)
    home = {"LAMBDASHIP_HOME": str(tmp_path / "home")}
    cold = _build(app, "--base-image", base_image_ref, "--out", str(tmp_path / "l1"), env=home)
    base_blob = tmp_path / "home" / "blobs" / "sha256" / cold["layers"][0]["digest"].split(":")[1]
    first = base_blob.stat()
    warm = _build(app, "--base-image", base_image_ref, "--out", str(tmp_path / "l2"), env=home)
    assert not cold["deps_cached"] and not cold["deps_layer_cached"]
    assert warm["deps_cached"] and warm["deps_layer_cached"]
    assert warm["manifest_digest"] == cold["manifest_digest"]
    # base blobs are downloaded once into the cache, then reused (same file, not rewritten)
    again = base_blob.stat()
    assert (again.st_ino, again.st_mtime_ns) == (first.st_ino, first.st_mtime_ns)


def test_code_only_change_keeps_the_deps_layer(base_image_ref: str, tmp_path: Path) -> None:
    app = _copy_app(HANDLER_APP, tmp_path / "app", 1_600_000_000)
    before = _build(app, "--base-image", base_image_ref)
    with (app / "handler.py").open("a") as fh:
        fh.write("\n# a one-line change\n")
    after = _build(app, "--base-image", base_image_ref)
    roles = [x["role"] for x in before["layers"]]
    assert roles == ["base", "base", "deps", "app"]
    changed = [b["role"] for b, a in zip(before["layers"], after["layers"], strict=True) if b["digest"] != a["digest"]]
    assert changed == ["app"]
    assert before["deps_hash"] == after["deps_hash"]
    assert before["config_digest"] != after["config_digest"]
    assert before["manifest_digest"] != after["manifest_digest"]


def test_layout_is_accepted_by_skopeo_and_umoci(base_image_ref: str, tmp_path: Path) -> None:
    app = _copy_app(HANDLER_APP, tmp_path / "app", 1_600_000_000)
    out = tmp_path / "layout"
    result = _build(app, "--base-image", base_image_ref, "--out", str(out))
    for ref in (f"oci:{out}", f"oci:{out}:latest"):
        r = subprocess.run(["skopeo", "inspect", ref], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        info = json.loads(r.stdout)
        assert info["Digest"] == result["layout_digest"]
        assert info["Layers"] == [x["digest"] for x in result["layers"]]
    bundle = tmp_path / "bundle"
    r = subprocess.run(["umoci", "unpack", "--rootless", "--image", f"{out}:latest", str(bundle)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    rootfs = bundle / "rootfs"
    assert (rootfs / "lambda-entrypoint.sh").is_file()  # from the base
    assert (rootfs / "var/task/handler.py").read_text() == (HANDLER_APP / "handler.py").read_text()
    assert (rootfs / "var/task/humanize/__init__.py").is_file()
    # the layout's config and layer blobs are the built image's
    assert result["config_digest"] in {f"sha256:{p.name}" for p in (out / "blobs/sha256").iterdir()}


def test_every_file_has_its_parent_directories_in_its_layer(base_image_ref: str, tmp_path: Path) -> None:
    app = _copy_app(HANDLER_APP, tmp_path / "app", 1_600_000_000)
    (app / "pkg" / "deep" / "er").mkdir(parents=True)
    (app / "pkg" / "deep" / "er" / "mod.py").write_text("x = 1\n")
    out = tmp_path / "layout"
    result = _build(app, "--base-image", base_image_ref, "--out", str(out))
    ours = [x for x in result["layers"] if x["role"] != "base"]
    assert len(ours) == 2
    for layer in ours:
        members = _layer_members(out, layer["digest"])
        names = {m.name for m in members}
        assert "var/task/pkg/deep/er/mod.py" in names or layer["role"] == "deps"
        for m in members:
            parts = m.name.split("/")
            for i in range(1, len(parts)):
                parent = "/".join(parts[:i])
                assert parent in names, f"{m.name}: parent {parent} missing in the {layer['role']} layer"
            assert (m.uid, m.gid) == (0, 0)


def test_image_config(base_image_ref: str, tmp_path: Path) -> None:
    app = _copy_app(HANDLER_APP, tmp_path / "app", 1_600_000_000)
    out = tmp_path / "layout"
    result = _build(app, "--base-image", base_image_ref, "--out", str(out))
    manifest = json.loads(_blob(out, result["manifest_digest"])) if (
        out / "blobs/sha256" / result["manifest_digest"].split(":")[1]).exists() else None
    cfg = json.loads(_blob(out, result["config_digest"]))
    c = cfg["config"]
    assert c["Cmd"] == ["handler.handler"]
    assert c["WorkingDir"] == "/var/task"
    assert c["Entrypoint"] == ["/lambda-entrypoint.sh"]
    assert c["Env"] == BASE_ENV  # the base's environment, unchanged (function env is set on Lambda)
    assert c["Labels"]["dev.lambdaship.deps-hash"] == result["deps_hash"]
    assert c["Labels"]["dev.lambdaship.function"] == "handler-demo"
    assert (cfg["architecture"], cfg["os"]) == ("amd64", "linux")
    assert cfg["rootfs"]["diff_ids"] == [x["diff_id"] for x in result["layers"]]
    assert len([h for h in cfg["history"] if not h.get("empty_layer")]) == len(result["layers"])
    assert result["media_type"] == "application/vnd.docker.distribution.manifest.v2+json"
    assert manifest is None or manifest["mediaType"] == result["media_type"]
    assert all(x["media_type"] == "application/vnd.docker.image.rootfs.diff.tar.gzip" for x in result["layers"])
    assert result["manifest_size"] < 25_400


def test_chalice_app_needs_no_wrapper(base_image_ref: str, tmp_path: Path) -> None:
    app = _copy_app(EXAMPLES / "chalice-app", tmp_path / "chalice", 1_600_000_000)
    (app / ".chalice" / "deployments").mkdir()
    (app / ".chalice" / "deployments" / "old.json").write_text("{}")
    out = tmp_path / "layout"
    result = _build(app, "--base-image", base_image_ref, "--out", str(out))
    cfg = json.loads(_blob(out, result["config_digest"]))
    assert cfg["config"]["Cmd"] == ["app.app"]
    app_layer = next(x for x in result["layers"] if x["role"] == "app")
    names = {m.name for m in _layer_members(out, app_layer["digest"])}
    assert "var/task/app.py" in names and "var/task/chalicelib/store.py" in names
    assert not any("deployments" in n for n in names)
    deps_layer = next(x for x in result["layers"] if x["role"] == "deps" and "chalice==1.34.0" in x["packages"])
    assert "var/task/chalice/app.py" in {m.name for m in _layer_members(out, deps_layer["digest"])}


def test_docker_archive_tar(base_image_ref: str, tmp_path: Path) -> None:
    app = _copy_app(HANDLER_APP, tmp_path / "app", 1_600_000_000)
    tar = tmp_path / "image.tar"
    result = _build(app, "--base-image", base_image_ref, "--tar", str(tar))
    r = subprocess.run(["skopeo", "inspect", f"docker-archive:{tar}"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["Layers"] == [x["diff_id"] for x in result["layers"]]
    with tarfile.open(tar) as tf:
        manifest = json.load(tf.extractfile("manifest.json"))
    assert manifest[0]["Config"] == "blobs/sha256/" + result["config_digest"].split(":")[1]


def test_multi_arch_index_base(local_stack, tmp_path: Path) -> None:
    repo = f"idx-{uuid.uuid4().hex[:8]}"
    ref = push_index(local_stack.registry.url, tmp_path, repo, "3.12", ["amd64", "arm64"])
    app = _copy_app(HANDLER_APP, tmp_path / "app", 1_600_000_000)
    out = tmp_path / "layout"
    result = _build(app, "--base-image", ref, "--architecture", "arm64", "--out", str(out))
    cfg = json.loads(_blob(out, result["config_digest"]))
    assert cfg["architecture"] == "arm64"
    base_layer = result["layers"][0]["digest"]
    arch_file = next(m for m in _layer_members(out, base_layer) if m.name == "etc/arch")
    assert arch_file.size == len(b"arm64\n")
    # no image for the target: one line naming what is there
    only_arm = push_index(local_stack.registry.url, tmp_path, f"{repo}-arm", "3.12", ["arm64"])
    line = _error(app, "--base-image", only_arm, "--architecture", "x86_64")
    assert "linux/amd64" in line and "available: linux/arm64" in line


def test_oci_base_gives_an_oci_image(local_stack, tmp_path: Path) -> None:
    ref = push_base(local_stack.registry.url, tmp_path, f"oci-{uuid.uuid4().hex[:8]}", "3.12", fmt="oci")
    app = _copy_app(HANDLER_APP, tmp_path / "app", 1_600_000_000)
    result = _build(app, "--base-image", ref)
    assert result["media_type"] == "application/vnd.oci.image.manifest.v1+json"
    assert {x["media_type"] for x in result["layers"]} == {"application/vnd.oci.image.layer.v1.tar+gzip"}


# ---- bad inputs: one line, nothing written ----------------------------------------------------
def _bad_app(tmp_path: Path) -> Path:
    return _copy_app(HANDLER_APP, tmp_path / "app", 1_600_000_000)


def _refused(app: Path, base: str) -> str:
    """The one error line of a build of ``app`` on ``base`` with ``--out``, which writes nothing there."""
    out = app.parent / "out"
    line = _error(app, "--base-image", base, "--out", str(out))
    assert not out.exists()
    return line


def test_missing_handler_module(base_image_ref: str, tmp_path: Path) -> None:
    app = _bad_app(tmp_path)
    (app / "handler.py").rename(app / "main.py")
    assert "module file handler.py not found" in _refused(app, base_image_ref)


def test_missing_handler_attribute(base_image_ref: str, tmp_path: Path) -> None:
    app = _bad_app(tmp_path)
    (app / "handler.py").write_text("def main(event, context):\n    return {}\n")
    assert "handler.py does not define 'handler'" in _error(app, "--base-image", base_image_ref)


def test_sdist_only_native_dependency(base_image_ref: str, tmp_path: Path) -> None:
    app = _bad_app(tmp_path)
    (app / "requirements.txt").write_text("humanize==4.12.3\npsycopg2==2.9.10\n")
    line = _refused(app, base_image_ref)
    assert "psycopg2" in line and "no wheel" in line and "vendor" in line


def test_symlink_escaping_the_project(base_image_ref: str, tmp_path: Path) -> None:
    app = _bad_app(tmp_path)
    (tmp_path / "outside.txt").write_text("secret")
    (app / "config.txt").symlink_to(tmp_path / "outside.txt")
    line = _error(app, "--base-image", base_image_ref)
    assert "symlink config.txt" in line and "points outside the project" in line
    (app / "config.txt").unlink()
    (app / "data").symlink_to("../")
    assert "symlink data" in _error(app, "--base-image", base_image_ref)


def test_symlink_inside_the_project_is_kept(base_image_ref: str, tmp_path: Path) -> None:
    app = _bad_app(tmp_path)
    (app / "alias.py").symlink_to("handler.py")
    out = tmp_path / "out"
    result = _build(app, "--base-image", base_image_ref, "--out", str(out))
    app_layer = next(x for x in result["layers"] if x["role"] == "app")
    link = next(m for m in _layer_members(out, app_layer["digest"]) if m.name == "var/task/alias.py")
    assert link.issym() and link.linkname == "handler.py"


def test_declared_size_over_10_gb(base_image_ref: str, tmp_path: Path) -> None:
    huge = push_declared_huge(base_image_ref, f"huge-{uuid.uuid4().hex[:8]}")
    assert "over Lambda's 10 GiB limit" in _refused(_bad_app(tmp_path), huge)


def test_manifest_over_lambda_limit(local_stack, tmp_path: Path) -> None:
    ref = push_many_layers(local_stack.registry.url, f"many-{uuid.uuid4().hex[:8]}", "3.12", 200)
    app = _bad_app(tmp_path)
    line = _error(app, "--base-image", ref)
    assert "25400-byte limit" in line


def test_bad_architecture_flag(base_image_ref: str, tmp_path: Path) -> None:
    r = run_cli("build", "-C", str(_bad_app(tmp_path)), "--base-image", base_image_ref, "--architecture", "ppc")
    assert r.returncode == 2 and r.stderr == "error: --architecture 'ppc' is not supported; use one of: x86_64, arm64\n"


def test_fresh_runner_reuses_the_pushed_deps_layer(base_image_ref: str, local_stack, tmp_path: Path) -> None:
    from tests.images import registry_host, skopeo_push

    app = _copy_app(HANDLER_APP, tmp_path / "app", 1_600_000_000)
    out = tmp_path / "layout"
    first = _build(app, "--base-image", base_image_ref, "--out", str(out))
    target = f"{registry_host(local_stack.registry.url)}/fn-{uuid.uuid4().hex[:8]}:live"
    skopeo_push(out, "latest", target, fmt="v2s2")
    with (app / "handler.py").open("a") as fh:
        fh.write("\n# code-only change\n")
    fresh = tmp_path / "fresh-home"
    second = _build(app, "--base-image", base_image_ref, "--reuse-deps-from", target,
                    env={"LAMBDASHIP_HOME": str(fresh)})
    assert second["deps_reused"]
    assert not (fresh / "deps").exists()  # nothing installed
    deps = [x for x in second["layers"] if x["role"] == "deps"]
    assert deps and deps[0]["digest"] == next(x["digest"] for x in first["layers"] if x["role"] == "deps")
    # the same image as a full build of the changed code
    full = _build(app, "--base-image", base_image_ref, env={"LAMBDASHIP_HOME": str(tmp_path / "other-home")})
    assert full["manifest_digest"] == second["manifest_digest"]
    # LAMBDASHIP_REUSE=0: nothing is taken from that image, the same image is built from scratch
    off = tmp_path / "reuse-off-home"
    rebuilt = _build(app, "--base-image", base_image_ref, "--reuse-deps-from", target,
                     env={"LAMBDASHIP_HOME": str(off), "LAMBDASHIP_REUSE": "0"})
    assert not rebuilt["deps_reused"] and (off / "deps").exists()
    assert rebuilt["manifest_digest"] == second["manifest_digest"]
    # another dependency set: the label does not match, so it installs
    (app / "requirements.txt").write_text("humanize==4.12.3\nsix==1.17.0\n")
    third = _build(app, "--base-image", base_image_ref, "--reuse-deps-from", target,
                   env={"LAMBDASHIP_HOME": str(fresh)})
    assert not third["deps_reused"] and (fresh / "deps").exists()
    # a reference that does not exist yet (first deploy) is not an error
    fourth = _build(app, "--base-image", base_image_ref, "--reuse-deps-from", target + "-missing")
    assert not fourth["deps_reused"]


def test_format_conversion_keeps_config_and_layers(base_image_ref: str, tmp_path: Path) -> None:
    app = _copy_app(HANDLER_APP, tmp_path / "app", 1_600_000_000)
    docker = _build(app, "--base-image", base_image_ref)
    oci = _build(app, "--base-image", base_image_ref, "--format", "oci")
    assert oci["media_type"] == "application/vnd.oci.image.manifest.v1+json"
    assert oci["config_digest"] == docker["config_digest"]
    assert [x["digest"] for x in oci["layers"]] == [x["digest"] for x in docker["layers"]]
    assert oci["manifest_digest"] != docker["manifest_digest"]


def test_base_on_an_ecr_host_behind_basic_auth(local_stack, tmp_path: Path) -> None:
    """ECR host name → LAMBDASHIP_REGISTRY_URL, credentials from GetAuthorizationToken (moto)."""
    import warnings

    from lambdaship.local import stack
    from tests.images import registry_host, skopeo_push, write_base_layout

    password = f"{stack.ACCOUNT_ID}-auth-token"  # what moto's GetAuthorizationToken hands out
    htpasswd = tmp_path / "htpasswd"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt  # Python 3.11/3.12: bcrypt for the registry's htpasswd file
    htpasswd.write_text(f"AWS:{crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH))}\n")
    url, proc = stack.start_registry(
        tmp_path / "reg", extra_config=f"auth:\n  htpasswd:\n    realm: test\n    path: {htpasswd}\n")
    try:
        write_base_layout(tmp_path / "base", tag="3.12")
        skopeo_push(tmp_path / "base", "3.12", f"{registry_host(url)}/lambda/python:3.12", creds=f"AWS:{password}")
        ecr_base = f"{stack.ACCOUNT_ID}.dkr.ecr.{local_stack.region}.amazonaws.com/lambda/python:3.12"
        app = _copy_app(HANDLER_APP, tmp_path / "app", 1_600_000_000)
        result = _build(app, "--base-image", ecr_base, env={"LAMBDASHIP_REGISTRY_URL": url})
        assert [x["role"] for x in result["layers"]] == ["base", "base", "deps", "app"]
        assert result["base"] == ecr_base
    finally:
        stack.stop_registry(proc)


def test_app_without_dependencies_has_no_deps_layer(base_image_ref: str, tmp_path: Path) -> None:
    app = _copy_app(HANDLER_APP, tmp_path / "app", 1_600_000_000)
    (app / "requirements.txt").unlink()
    (app / "pyproject.toml").write_text(
        '[tool.lambdaship]\nfunction_name = "no-deps"\nhandler = "handler.handler"\npython = "3.12"\n')
    (app / "handler.py").write_text("def handler(event, context):\n    return {'ok': True}\n")
    out = tmp_path / "layout"
    result = _build(app, "--base-image", base_image_ref, "--out", str(out))
    assert [x["role"] for x in result["layers"]] == ["base", "base", "app"]
    labels = json.loads(_blob(out, result["config_digest"]))["config"]["Labels"]
    assert "dev.lambdaship.deps-layer" not in labels and labels["dev.lambdaship.function"] == "no-deps"


def test_docker_manifest_list_base_like_the_aws_images(local_stack, tmp_path: Path) -> None:
    repo = f"dlist-{uuid.uuid4().hex[:8]}"
    ref = push_index(local_stack.registry.url, tmp_path, repo, "3.12", ["amd64", "arm64"], fmt="v2s2")
    app = _copy_app(HANDLER_APP, tmp_path / "app", 1_600_000_000)
    hashes = set()
    for arch, goarch in (("x86_64", "amd64"), ("arm64", "arm64")):
        out = tmp_path / f"layout-{arch}"
        result = _build(app, "--base-image", ref, "--architecture", arch, "--out", str(out))
        assert result["media_type"] == "application/vnd.docker.distribution.manifest.v2+json"  # never a list
        assert json.loads(_blob(out, result["config_digest"]))["architecture"] == goarch
        hashes.add(result["deps_hash"])  # installed for that platform (wheel tags: see test_deps)
    assert len(hashes) == 2


def test_app_bytecode_only_for_the_target_version(base_image_ref: str, tmp_path: Path) -> None:
    from lambdaship.package.bytecode import find_interpreter

    app = _copy_app(HANDLER_APP, tmp_path / "app", 1_600_000_000)
    out = tmp_path / "layout"
    result = _build(app, "--base-image", base_image_ref, "--out", str(out))
    app_layer = next(x for x in result["layers"] if x["role"] == "app")
    raw = gzip.decompress(_blob(out, app_layer["digest"]))
    with tarfile.open(fileobj=io.BytesIO(raw)) as tf:
        pycs = {m.name: tf.extractfile(m).read() for m in tf.getmembers() if m.name.endswith(".pyc")}
    if find_interpreter("3.12"):
        assert result["bytecode"]
        data = pycs["var/task/__pycache__/handler.cpython-312.pyc"]
        assert int.from_bytes(data[4:8], "little") == 0b01  # unchecked hash: valid whatever the mtimes
        assert b"/var/task/handler.py" in data and str(app).encode() not in data
    else:
        assert not result["bytecode"] and pycs == {}


def test_progress_is_a_stream_of_events(base_image_ref: str, tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    """build_image reports progress as BuildEvents to the caller's sink and prints nothing itself."""
    from lambdaship.config import load_project
    from lambdaship.image.build import build_image

    app = _copy_app(HANDLER_APP, tmp_path / "app", 1_600_000_000)
    fn = load_project(app, {"base_image": base_image_ref}).function()
    events: list = []
    result = build_image(fn, progress=events.append, out=tmp_path / "layout")
    from collections import Counter

    from lambdaship.image.events import STAGES

    assert {e.stage for e in events} <= set(STAGES)
    ended = [e.stage for e in events if e.phase == "end"]
    assert ended[-1] == "done" and ended.count("done") == 1, ended
    assert {"base", "compress", "fetch"} <= set(ended), ended  # --out fetches the base's blobs
    started = Counter((e.stage, e.item) for e in events if e.phase == "start")
    assert started <= Counter((e.stage, e.item) for e in events if e.phase == "end"), events  # each start ends
    done = events[-1]
    assert done.detail == result.image.digest
    assert done.bytes == sum(lay.size for lay in result.image.layers) and done.seconds > 0
    assert capfd.readouterr() == ("", "")
