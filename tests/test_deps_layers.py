"""Issue 21.1: large dependencies get layers of their own, so a one-package bump rebuilds and pushes
only the layer that changed.

Real installs (uv, PyPI), the local registry's tiny base image, real pushes to the stack's
registry (ECR on moto). The threshold is lowered in the project's config so that humanize
(~0.8 MB with its bytecode) counts as large and six (~0.07 MB) does not.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import shutil
import tarfile
import uuid
from pathlib import Path

import pytest

from lambdaship.package.layers import SHARED, SHARED_BUCKETS, bucket_of, parse_shared, shared_name, split_tree
from tests.conftest import EXAMPLES, run_cli

HANDLER_APP = EXAMPLES / "handler-app"
SPLIT = 'layer_split_mb = 0.3'
SIX_LAYER = shared_name(bucket_of("six", SHARED_BUCKETS), SHARED_BUCKETS)  # the shared layer six goes into


# ---- the split itself: a tree on disk, no network ------------------------------------------------
def _dist(tree: Path, name: str, version: str, files: dict[str, int], record_extra: tuple[str, ...] = ()) -> None:
    info = tree / f"{name}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n\n")
    for rel, size in files.items():
        (tree / rel).parent.mkdir(parents=True, exist_ok=True)
        (tree / rel).write_bytes(b"x" * size)
    rows = [*files, *record_extra, f"{info.name}/METADATA", f"{info.name}/RECORD"]
    (info / "RECORD").write_text("".join(f"{r},,\n" for r in rows))


def _tree(tmp_path: Path) -> Path:
    tree = tmp_path / "tree"
    _dist(tree, "Big_Pkg", "1.0", {"big_pkg/__init__.py": 10, "big_pkg/data.bin": 3000})
    _dist(tree, "alpha", "2.0", {"alpha/core.py": 2500})
    _dist(tree, "six", "1.17.0", {"six.py": 100})
    (tree / "big_pkg" / "__pycache__").mkdir()
    (tree / "big_pkg" / "__pycache__" / "__init__.cpython-312.pyc").write_bytes(b"p" * 50)
    (tree / "__pycache__").mkdir()
    (tree / "__pycache__" / "six.cpython-312.pyc").write_bytes(b"p" * 40)
    (tree / "big_pkg" / "unrecorded.txt").write_bytes(b"u" * 5)  # its top-level directory's owner's
    (tree / "stray.txt").write_bytes(b"s")  # nobody's: shared
    return tree


def test_split_by_size_sorted_by_name_bytecode_with_its_package(tmp_path: Path) -> None:
    tree = _tree(tmp_path)
    groups = split_tree(tree, threshold=2000)
    six_layer = shared_name(bucket_of("six", SHARED_BUCKETS), SHARED_BUCKETS)
    stray_layer = shared_name(bucket_of("stray.txt", SHARED_BUCKETS), SHARED_BUCKETS)
    # split layers by name, then the shared layers in bucket order (only those with something in them)
    assert [g.name for g in groups] == ["alpha", "big-pkg", *sorted({six_layer, stray_layer},
                                                                     key=lambda n: parse_shared(n))]
    alpha, big = groups[:2]
    by_name = {g.name: g for g in groups}
    assert alpha.packages == ("alpha==2.0",) and big.packages == ("big-pkg==1.0",)
    assert by_name[six_layer].packages == ("six==1.17.0",)
    assert {"big_pkg/__pycache__/__init__.cpython-312.pyc", "big_pkg/unrecorded.txt",
            "Big_Pkg-1.0.dist-info/RECORD"} <= set(big.paths)
    assert {"six.py", "__pycache__/six.cpython-312.pyc"} <= set(by_name[six_layer].paths)
    assert "stray.txt" in by_name[stray_layer].paths  # nobody's: the bucket of its name
    assert big.size == 10 + 3000 + 50 + 5 + len((tree / "Big_Pkg-1.0.dist-info/METADATA").read_bytes()) + len(
        (tree / "Big_Pkg-1.0.dist-info/RECORD").read_bytes())
    everything = [p for g in groups for p in g.paths]
    assert len(everything) == len(set(everything))  # every entry in at most one layer
    # the one directory nobody claims (__pycache__/, holding six's bytecode) is implied by its contents
    assert set(everything) | {"__pycache__"} == {str(p.relative_to(tree)) for p in tree.rglob("*")}
    assert split_tree(tree, threshold=2000) == groups  # a pure function of the tree


def test_a_small_package_bump_changes_one_shared_layer(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    names = [f"small{i}" for i in range(12)]
    for name in names:
        _dist(tree, name, "1.0", {f"{name}/__init__.py": 100})
    before = {g.name: g for g in split_tree(tree, threshold=2000)}
    assert len(before) == SHARED_BUCKETS, "twelve small packages spread over every shared layer"
    shutil.rmtree(tree / "small7")
    shutil.rmtree(tree / "small7-1.0.dist-info")
    _dist(tree, "small7", "1.1", {"small7/__init__.py": 120})
    after = {g.name: g for g in split_tree(tree, threshold=2000)}
    changed = {n for n in before if before[n] != after[n]}
    assert changed == {shared_name(bucket_of("small7", SHARED_BUCKETS), SHARED_BUCKETS)}
    assert "small7==1.1" in after[changed.pop()].packages


def test_split_cap_folds_the_smallest_and_zero_means_one_layer(tmp_path: Path) -> None:
    tree = _tree(tmp_path)
    capped = split_tree(tree, threshold=2000, max_layers=1)
    assert [g.name for g in capped] == ["big-pkg", SHARED]  # the largest kept, alpha folded in
    assert capped[1].packages == ("alpha==2.0", "six==1.17.0")
    single = split_tree(tree, threshold=0)
    assert [g.name for g in single] == [SHARED]
    assert set(single[0].paths) == {p for g in capped for p in g.paths}
    assert split_tree(tmp_path / "empty-does-not-exist", threshold=2000) == []


# ---- builds --------------------------------------------------------------------------------------
def _app(tmp_path: Path, name: str, six: str = "1.16.0", extra: str = SPLIT, base: str | None = None) -> Path:
    app = tmp_path / name
    shutil.copytree(HANDLER_APP, app)
    (app / "requirements.txt").write_text(f"humanize==4.12.3\nsix=={six}\n")
    pyproject = app / "pyproject.toml"
    req = 'requirements = "requirements.txt"'
    text = pyproject.read_text().replace(req, f"{req}\n{extra}")
    if base:
        text = text.replace('function_name = "handler-demo"',
                            f'function_name = "{name}-{uuid.uuid4().hex[:6]}"\nbase_image = "{base}"')
    pyproject.write_text(text)
    return app


def _build(app: Path, home: Path, *args: str) -> dict:
    r = run_cli("build", "-C", str(app), "--json", *args,
                env={"LAMBDASHIP_HOME": str(home), "UV_CACHE_DIR": str(home / "uv")})
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def _deps(result: dict) -> list[dict]:
    return [x for x in result["layers"] if x["role"] == "deps"]


def _members(layout: Path, digest: str) -> dict[str, tarfile.TarInfo]:
    raw = gzip.decompress((layout / "blobs" / "sha256" / digest.split(":", 1)[1]).read_bytes())
    with tarfile.open(fileobj=io.BytesIO(raw)) as tf:
        return {m.name: m for m in tf.getmembers()}


@pytest.mark.slow
def test_large_distribution_has_a_layer_of_its_own(base_image_ref: str, tmp_path: Path) -> None:
    app = _app(tmp_path, "app")
    home = tmp_path / "home"
    out = tmp_path / "layout"
    result = _build(app, home, "--base-image", base_image_ref, "--out", str(out))
    assert [x["role"] for x in result["layers"]] == ["base", "base", "deps", "deps", "app"]
    big, shared = _deps(result)
    assert (big["name"], big["packages"]) == ("humanize", ["humanize==4.12.3"])
    assert (shared["name"], shared["packages"]) == (SIX_LAYER, ["six==1.16.0"])
    assert not big["cached"] and not shared["cached"] and not result["deps_layer_cached"]
    assert result["deps_split"] == {"threshold_bytes": 300_000, "max_layers": 16}
    big_m, shared_m = _members(out, big["digest"]), _members(out, shared["digest"])
    assert {"var/task/humanize/__init__.py", "var/task/humanize-4.12.3.dist-info/RECORD"} <= set(big_m)
    assert {"var/task/six.py", "var/task/six-1.16.0.dist-info/RECORD"} <= set(shared_m)
    if result["bytecode"]:  # the bytecode lives in its package's layer
        assert "var/task/humanize/__pycache__/__init__.cpython-312.pyc" in big_m
        assert "var/task/__pycache__/six.cpython-312.pyc" in shared_m
    files = lambda m: {n for n, i in m.items() if not i.isdir()}  # noqa: E731
    assert not files(big_m) & files(shared_m)
    for members in (big_m, shared_m):  # Lambda needs every parent directory in the layer
        for name in members:
            parts = name.split("/")
            assert all("/".join(parts[:i]) in members for i in range(1, len(parts))), name
    # the same files as one layer (layer_split_mb = 0): nothing lost, nothing added
    one = _app(tmp_path, "one", extra="layer_split_mb = 0")
    single = _build(one, home, "--base-image", base_image_ref, "--out", str(tmp_path / "one-layout"))
    (only,) = _deps(single)
    assert only["name"] == SHARED and only["packages"] == ["humanize==4.12.3", "six==1.16.0"]
    assert files(_members(tmp_path / "one-layout", only["digest"])) == files(big_m) | files(shared_m)
    labels = json.loads((out / "blobs/sha256" / result["config_digest"].split(":")[1]).read_bytes())["config"]["Labels"]
    described = json.loads(labels["dev.lambdaship.deps-layers"])
    assert [d["digest"] for d in described["layers"]] == [big["digest"], shared["digest"]]
    assert "dev.lambdaship.deps-layer" not in labels  # what earlier versions read: not for a split image


@pytest.mark.slow
def test_same_digests_from_other_directories_and_caches(base_image_ref: str, tmp_path: Path) -> None:
    first = _build(_app(tmp_path / "one", "app"), tmp_path / "home-one", "--base-image", base_image_ref)
    other = _app(tmp_path / "two" / "deeper", "elsewhere")
    for p in [other, *other.rglob("*")]:
        os.utime(p, (1_700_000_000, 1_700_000_000), follow_symlinks=False)
    second = _build(other, tmp_path / "home-two", "--base-image", base_image_ref)
    assert len(_deps(first)) == 2
    assert [x["digest"] for x in second["layers"]] == [x["digest"] for x in first["layers"]]
    assert second["manifest_digest"] == first["manifest_digest"]


def _push(app: Path, home: Path) -> dict:
    r = run_cli("push", "-C", str(app), "--json", env={"LAMBDASHIP_HOME": str(home), "UV_CACHE_DIR": str(home / "uv")})
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def _bump(app: Path) -> None:
    (app / "requirements.txt").write_text("humanize==4.12.3\nsix==1.17.0\n")


@pytest.mark.slow
def test_one_package_bump_rebuilds_and_pushes_only_the_shared_layer(local_stack, base_image_ref: str,
                                                                    tmp_path: Path) -> None:
    app = _app(tmp_path, "bump", base=base_image_ref)
    home = tmp_path / "runner"
    before = _build(app, home)
    first = _push(app, home)
    assert first["digest"] == before["manifest_digest"]
    _bump(app)
    after = _build(app, home)  # the same runner: the unchanged layer comes from the layer cache
    (big0, shared0), (big1, shared1) = _deps(before), _deps(after)
    assert big1["digest"] == big0["digest"] and big1["cached"]
    assert shared1["digest"] != shared0["digest"] and not shared1["cached"]
    assert shared1["packages"] == ["six==1.17.0"]
    changed = {b["role"] + ":" + b["name"] for b, a in zip(before["layers"], after["layers"], strict=True)
               if b["digest"] != a["digest"]}
    assert changed == {f"deps:{SIX_LAYER}", "app:app"}  # the app layer holds requirements.txt
    pushed = _push(app, home)
    assert pushed["digest"] == after["manifest_digest"]
    app_layer = next(x for x in after["layers"] if x["role"] == "app")
    uploaded = {b["digest"] for b in pushed["blobs"] if b["action"] == "uploaded"}
    assert uploaded == {shared1["digest"], app_layer["digest"], after["config_digest"]}
    config_size = next(b["size"] for b in pushed["blobs"] if b["digest"] == after["config_digest"])
    assert pushed["uploaded_blobs"] == 3
    assert pushed["uploaded_bytes"] == shared1["size"] + app_layer["size"] + config_size
    assert {b["digest"]: b["action"] for b in pushed["blobs"]}[big1["digest"]] == "skipped"  # not sent again


@pytest.mark.slow
def test_one_package_bump_on_a_fresh_runner_sends_only_the_changed_layer(local_stack, base_image_ref: str,
                                                                         tmp_path: Path) -> None:
    app = _app(tmp_path, "fresh", base=base_image_ref)
    _push(app, tmp_path / "runner-one")
    _bump(app)
    pushed = _push(app, tmp_path / "runner-two")  # empty caches: reproducible digests, the registry has the rest
    # the fresh runner took humanize's layer from the previous image: it installed six only
    (tree,) = (tmp_path / "runner-two" / "deps").glob("*/tree")
    assert (tree / "six.py").is_file() and not (tree / "humanize").exists()
    built = _build(app, tmp_path / "runner-two")  # a full install (no previous image given): the same image
    assert pushed["digest"] == built["manifest_digest"]
    big, shared = _deps(built)
    actions = {b["digest"]: b["action"] for b in pushed["blobs"]}
    assert actions[big["digest"]] == "skipped" and actions[shared["digest"]] == "uploaded"
    assert pushed["uploaded_blobs"] == 3  # shared deps layer, app layer, config


@pytest.mark.slow
def test_bump_installs_only_what_the_previous_image_lacks_and_gives_the_same_image(
        local_stack, base_image_ref: str, tmp_path: Path) -> None:
    app = _app(tmp_path, "partial", base=base_image_ref)
    before = _push(app, tmp_path / "runner-one")
    _bump(app)
    fresh = tmp_path / "runner-two"
    partial = _build(app, fresh, "--reuse-deps-from", before["image"])
    assert partial["deps_layers_reused"] == 1 and not partial["deps_reused"]
    (big, shared) = _deps(partial)
    assert big["name"] == "humanize" and big["cached"] and shared["packages"] == ["six==1.17.0"]
    assert not shared["cached"]
    full = _build(app, tmp_path / "runner-three")  # everything installed: the very same image
    assert full["deps_layers_reused"] == 0
    assert full["manifest_digest"] == partial["manifest_digest"]
    assert [x["digest"] for x in full["layers"]] == [x["digest"] for x in partial["layers"]]
    # humanize bumped too (its layer cannot be kept): a full install, and again the same image
    (app / "requirements.txt").write_text("humanize==4.12.2\nsix==1.17.0\n")
    both = _build(app, tmp_path / "runner-four", "--reuse-deps-from", before["image"])
    assert both["deps_layers_reused"] == 0
    assert both["manifest_digest"] == _build(app, tmp_path / "runner-five")["manifest_digest"]


@pytest.mark.slow
def test_a_bump_keeps_the_other_shared_layers_and_gives_the_same_image(local_stack, base_image_ref: str,
                                                                      tmp_path: Path) -> None:
    """six and toml are both small, in different shared layers: bumping six on a fresh runner
    installs six alone; toml's shared layer (and humanize's own) come from the previous image."""
    toml_layer = shared_name(bucket_of("toml", SHARED_BUCKETS), SHARED_BUCKETS)
    assert toml_layer != SIX_LAYER
    app = _app(tmp_path, "buckets", base=base_image_ref)
    (app / "requirements.txt").write_text("humanize==4.12.3\nsix==1.16.0\ntoml==0.10.2\n")
    before = _push(app, tmp_path / "runner-one")
    (app / "requirements.txt").write_text("humanize==4.12.3\nsix==1.17.0\ntoml==0.10.2\n")
    fresh = tmp_path / "runner-two"
    partial = _build(app, fresh, "--reuse-deps-from", before["image"])
    assert partial["deps_layers_reused"] == 2 and not partial["deps_reused"]
    by_name = {x["name"]: x for x in _deps(partial)}
    assert list(by_name) == ["humanize", *sorted({SIX_LAYER, toml_layer}, key=parse_shared)]
    assert by_name["humanize"]["cached"] and by_name[toml_layer]["cached"] and not by_name[SIX_LAYER]["cached"]
    (tree,) = (fresh / "deps").glob("*/tree")
    assert (tree / "six.py").is_file() and not (tree / "toml").exists() and not (tree / "humanize").exists()
    full = _build(app, tmp_path / "runner-three")
    assert [x["digest"] for x in full["layers"]] == [x["digest"] for x in partial["layers"]]
    assert full["manifest_digest"] == partial["manifest_digest"]


@pytest.mark.slow
def test_fresh_runner_reuses_every_deps_layer_when_the_set_is_unchanged(local_stack, base_image_ref: str,
                                                                      tmp_path: Path) -> None:
    from tests.images import registry_host, skopeo_push

    app = _app(tmp_path, "reuse")
    out = tmp_path / "layout"
    first = _build(app, tmp_path / "home", "--base-image", base_image_ref, "--out", str(out))
    target = f"{registry_host(local_stack.registry.url)}/split-{uuid.uuid4().hex[:8]}:live"
    skopeo_push(out, "latest", target, fmt="v2s2")
    with (app / "handler.py").open("a") as fh:
        fh.write("\n# code-only change\n")
    fresh = tmp_path / "fresh"
    second = _build(app, fresh, "--base-image", base_image_ref, "--reuse-deps-from", target)
    assert second["deps_reused"] and not (fresh / "deps").exists()
    assert [(x["name"], x["digest"], x["packages"]) for x in _deps(second)] == [
        (x["name"], x["digest"], x["packages"]) for x in _deps(first)]
    full = _build(app, tmp_path / "other", "--base-image", base_image_ref)
    assert full["manifest_digest"] == second["manifest_digest"]
    # another split (threshold) is another image: nothing reused
    pyproject = app / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace(SPLIT, "layer_split_mb = 0"))
    third = _build(app, fresh, "--base-image", base_image_ref, "--reuse-deps-from", target)
    assert not third["deps_reused"] and [x["name"] for x in _deps(third)] == [SHARED]


@pytest.mark.slow
def test_size_shows_the_dependency_layers(tmp_path: Path) -> None:
    app = _app(tmp_path, "size")
    r = run_cli("size", "-C", str(app), "--json", env={"LAMBDASHIP_HOME": str(tmp_path / "home")})
    assert r.returncode == 0, r.stderr
    layers = json.loads(r.stdout)["layers"]
    assert [(x["name"], x["packages"]) for x in layers] == [
        ("humanize", ["humanize==4.12.3"]), (SIX_LAYER, ["six==1.16.0"]), ("app", [])]
    assert layers[0]["size"] > 300_000 > layers[1]["size"] > 0
    text = run_cli("size", "-C", str(app), env={"LAMBDASHIP_HOME": str(tmp_path / "home")})
    assert text.returncode == 0, text.stderr
    assert "humanize==4.12.3" in text.stdout and SIX_LAYER in text.stdout


def test_a_bump_keeps_nothing_from_another_environment_or_unresolvable_requirements(tmp_path: Path) -> None:
    """No network: what decides against keeping a previous image's layers before anything runs."""
    from dataclasses import replace

    from lambdaship.config import load_project
    from lambdaship.image.cache import DepsLayer
    from lambdaship.image.model import Descriptor, Layer
    from lambdaship.image.reuse import Previous, kept_layers
    from lambdaship.package import deps

    app = _app(tmp_path, "env")
    fn = load_project(app).function()
    plan = deps.plan(fn)
    lay = DepsLayer(Layer(Descriptor("m", "sha256:" + "1" * 64, 1), "sha256:" + "2" * 64), "humanize",
                    ("humanize==4.12.3",), cached=True)
    previous = Previous("other-set", plan.env, (300_000, 16), (lay,))
    assert kept_layers(fn, plan, replace(previous, env="another-python-or-installer"), 300_000) is None
    assert kept_layers(fn, plan, replace(previous, env=""), 300_000) is None  # an image without the env
    assert kept_layers(fn, plan, previous, 1_000_000) is None  # another threshold
    assert plan.env == deps.plan(load_project(_app(tmp_path, "env-2", six="1.17.0")).function()).env
    (app / "requirements.txt").write_text("--index-url https://example.invalid/simple\nhumanize==4.12.3\n")
    assert deps.resolve(fn, deps.plan(fn)) is None  # options: only a real install can tell
    (app / "requirements.txt").write_text("humanize==4.12.3 --hash=sha256:" + "0" * 64 + "\n")
    assert deps.resolve(fn, deps.plan(fn)) is None


@pytest.mark.slow
def test_status_shows_the_deployed_images_dependency_layers(local_stack, base_image_ref: str, tmp_path: Path) -> None:
    """``status`` reads the layers of the image the alias serves from its deps-layers label."""
    app = _app(tmp_path, "status", base=base_image_ref)
    env = {"LAMBDASHIP_HOME": str(tmp_path / "runner"), "UV_CACHE_DIR": str(tmp_path / "runner" / "uv")}
    r = run_cli("deploy", "-C", str(app), "--create-role", "--skip-smoke", "--package-type", "image", "--json",
                env=env, timeout=600)
    assert r.returncode == 0, r.stderr
    st = run_cli("status", "-C", str(app), "--json")
    assert st.returncode == 0, st.stderr
    layers = {d["name"]: d["packages"] for d in json.loads(st.stdout)["deps_layers"]}
    assert layers == {"humanize": ["humanize==4.12.3"], SIX_LAYER: ["six==1.16.0"]}
    text = run_cli("status", "-C", str(app)).stdout
    assert any(line.startswith("  deps layer     humanize: humanize==4.12.3, ") for line in text.splitlines()), text
