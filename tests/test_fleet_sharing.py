"""Fleet sharing (#21.3): functions of one ``deploy --all`` with the same dependency set install it
and write its layers once, send each base blob to the registry once (the other repositories mount
it), and after a change to shared code send no base or dependency blob at all.

The end-to-end tests deploy four functions (one requirements text, a base image on a second
registry standing in for public ECR) with the real CLI on the local stack; the layer cache's lock
is tested directly with threads and with two processes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from lambdaship.deploy.fleet.run import default_workers
from lambdaship.deploy.fleet.sharing import SharedDeps
from lambdaship.local import stack
from tests import test_fleet as tf

KEYS = ("a", "b", "d", "e")  # config_text's "c" excludes the shared package: these four all use it
APP = "from common.util import greet\n\n\ndef handler(event, context):\n    return greet('{key}')\n"


def test_default_workers_scale_with_cores() -> None:
    assert [default_workers(n) for n in (1, 2, 3, 16)] == [4, 8, 8, 8]


def test_followers_wait_for_the_leaders_install_and_take_over_when_it_fails() -> None:
    shared, order, lock = SharedDeps(), [], threading.Lock()
    started = threading.Event()

    def member(key: str, fail: bool) -> None:
        try:
            with shared.turn(key, "set-1") as turn:
                with lock:
                    order.append((key, "in", turn.leads))
                started.set()
                if fail:
                    raise RuntimeError("install failed")
                turn.build_event(type("E", (), {"stage": "compress"})())
        except RuntimeError:
            pass

    first = threading.Thread(target=member, args=("a", True))
    first.start()
    started.wait(5)
    rest = [threading.Thread(target=member, args=(k, False)) for k in ("b", "c")]
    for t in rest:
        t.start()
    for t in [first, *rest]:
        t.join(10)
    assert order[0] == ("a", "in", True)
    # a failed before its install: one of b/c became the leader, the other followed it
    assert sorted(leads for _k, _in, leads in order[1:]) == [False, True]
    assert sorted(shared.sets()["set-1"]) == ["a", "b", "c"]


# -- the dependency layer cache: one writer per entry ---------------------------------------------
def _tree(root: Path) -> tuple[Path, Any]:
    from lambdaship.package.layers import Group

    tree = root / "tree"
    for i in range(200):
        path = tree / "pkg" / f"m{i}.py"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(os.urandom(16_384))  # incompressible: the write takes a while
    paths = ("pkg", *sorted(f"pkg/m{i}.py" for i in range(200)))
    return tree, Group("__shared__", ("pkg==1",), paths, 200 * 16_384)


def test_concurrent_builds_of_one_layer_write_it_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from lambdaship.image.cache import group_layer
    from lambdaship.image.model import OCI_LAYER_GZIP

    monkeypatch.setenv("LAMBDASHIP_HOME", str(tmp_path / "home"))
    tree, group = _tree(tmp_path)
    barrier = threading.Barrier(4)
    made = []

    def build() -> None:
        barrier.wait()
        made.append(group_layer(tree, group, None, OCI_LAYER_GZIP, 0))

    threads = [threading.Thread(target=build) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(made) == 4 and len({d.layer.digest for d in made}) == 1
    assert sorted(d.cached for d in made) == [False, True, True, True]


WRITER = """
import json, sys, time
from pathlib import Path
from lambdaship.image.cache import group_layer
from lambdaship.image.model import OCI_LAYER_GZIP
from lambdaship.package.layers import Group
spec = json.loads(sys.argv[1])
group = Group(spec["name"], tuple(spec["packages"]), tuple(spec["paths"]), spec["size"])
go = Path(spec["go"])
while not go.exists():
    time.sleep(0.005)
d = group_layer(Path(spec["tree"]), group, None, OCI_LAYER_GZIP, 0)
print(json.dumps({"digest": d.layer.digest, "cached": d.cached}))
"""


def test_two_processes_building_one_layer_write_it_once(tmp_path: Path) -> None:
    tree, group = _tree(tmp_path)
    go = tmp_path / "go"
    spec = json.dumps({"name": group.name, "packages": group.packages, "paths": group.paths, "size": group.size,
                       "tree": str(tree), "go": str(go)})
    env = {**os.environ, "LAMBDASHIP_HOME": str(tmp_path / "home")}
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, spec], env=env, stdout=subprocess.PIPE, text=True)
             for _ in range(2)]
    go.touch()
    out = [json.loads(p.communicate(timeout=120)[0]) for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert out[0]["digest"] == out[1]["digest"]
    assert sorted(o["cached"] for o in out) == [False, True]


# -- end to end: four functions, one dependency set, a base on another registry -------------------
@pytest.fixture(scope="module")
def upstream_base(local_stack, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The tests' tiny base image on a second registry (as public ECR is to a function's ECR),
    and that registry's access log."""
    from tests.images import push_base

    state = tmp_path_factory.mktemp("upstream")
    url, proc = stack.start_registry(state)
    try:
        yield (push_base(url, tmp_path_factory.mktemp("upstream-base"), repo="upstream/python", tag="3.12"),
               state / "registry.log")
    finally:
        stack.stop_registry(proc)


def _project(root: Path, base: str) -> tuple[Path, dict[str, str]]:
    import uuid

    tag = uuid.uuid4().hex[:8]
    names = {k: f"share-{k}-{tag}" for k in KEYS}
    root.mkdir(parents=True)
    tf.git(root, "init", "-q", "-b", "main")
    tf.git(root, "config", "user.email", "t@example.com")
    tf.git(root, "config", "user.name", "t")
    tf.write(root, "lambdaship.toml", tf.config_text(names, base_image=base, role=tf.make_role(), layout="root"))
    tf.write(root, ".gitignore", "__pycache__/\n*.pyc\n")
    for k in KEYS:
        tf.write(root, f"services/{k}/app.py", APP.format(key=k))
        tf.write(root, f"services/{k}/requirements.txt", "six==1.17.0\n")
    tf.write(root, "common/__init__.py", "")
    tf.write(root, "common/util.py", tf.UTIL)
    tf.write(root, "common/fmt.py", tf.FMT)
    tf.commit(root, "initial")
    return root, names


def _deploy(root: Path, home: Path, *args: str) -> tuple[dict[str, Any], str]:
    proc = tf.run_cli("deploy", "--all", "--workers", "4", *args, "--json", cwd=root, timeout=600,
                      env={"LAMBDASHIP_HOME": str(home)})
    data = json.loads(proc.stdout)
    assert proc.returncode == 0, (proc.stderr, [(f["key"], f["status"], f["error"]) for f in data["functions"]])
    assert tf.statuses(data) == dict.fromkeys(KEYS, "deployed"), data
    return data, proc.stderr


@pytest.fixture(scope="module")
def fleet(local_stack, upstream_base: tuple[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    base, log = upstream_base
    work = tmp_path_factory.mktemp("sharing")
    root, names = _project(work / "repo", base)
    home = work / "home"  # cold: no dependency set, layer or blob cached yet
    start = log.stat().st_size
    cold, cold_err = _deploy(root, home)
    middle = log.stat().st_size
    tf.write(root, "common/util.py", tf.UTIL + "# shared change\n")
    tf.commit(root)
    warm, warm_err = _deploy(root, home, "--changed-since", "HEAD~1")
    text = log.read_bytes().decode(errors="replace")
    return {"names": names, "cold": cold, "cold_err": cold_err, "warm": warm, "warm_err": warm_err,
            "upstream": {"cold": _manifest_requests(text[start:middle]), "warm": _manifest_requests(text[middle:])}}


def _manifest_requests(log_text: str) -> list[tuple[str, str]]:
    """(method, reference) of each request for a manifest of the upstream base in an access log."""
    import re

    return re.findall(r'"(GET|HEAD) /v2/upstream/python/manifests/([^ ?"]+)', log_text)


def _base_layers(data: dict[str, Any]) -> int:
    counts = data["transfer"]["base"]
    return (counts["sent"] + counts["mounted"] + counts["skipped"]) // len(KEYS)


@pytest.mark.slow
def test_cold_fleet_installs_and_writes_the_shared_dependency_set_once(fleet: dict[str, Any]) -> None:
    cold = fleet["cold"]
    [deps_set] = cold["deps_sets"]
    assert sorted(deps_set["functions"]) == sorted(KEYS)
    assert deps_set["installs"] == 1
    assert deps_set["layers_written"] == 1 and deps_set["layers_cached"] == len(KEYS) - 1
    builds = sorted(f["build"]["deps"] for f in cold["functions"])
    assert builds == ["cached", "cached", "cached", "installed"]
    assert len({f["deps_hash"] for f in cold["functions"]}) == 1


@pytest.mark.slow
def test_cold_fleet_sends_each_base_and_deps_blob_once(fleet: dict[str, Any]) -> None:
    cold = fleet["cold"]
    base, deps = cold["transfer"]["base"], cold["transfer"]["deps"]
    layers = _base_layers(cold)
    assert layers >= 1
    # each base layer streamed from the upstream registry once; the other three repositories mount it
    assert base["sent"] == layers and base["mounted"] == layers * (len(KEYS) - 1)
    assert deps["sent"] == 1 and deps["mounted"] == len(KEYS) - 1
    per_function = [f["push"] for f in cold["functions"]]
    assert sum(p["base"]["sent"] for p in per_function) == layers
    assert all(p["app"]["sent"] == 1 and p["config"]["sent"] == 1 for p in per_function)


@pytest.mark.slow
def test_shared_code_change_sends_no_base_or_deps_blob(fleet: dict[str, Any]) -> None:
    warm = fleet["warm"]
    [deps_set] = warm["deps_sets"]
    assert deps_set["installs"] == 0 and deps_set["layers_written"] == 0
    for f in warm["functions"]:
        assert f["reason"] == "source changed: common/util.py"
        assert f["build"]["deps"] in ("cached", "reused")  # reused: the layers of the image deployed before
        push = f["push"]
        assert push["base"]["sent"] == 0 and push["base"]["sent_bytes"] == 0
        assert push["deps"]["sent"] == 0 and push["deps"]["sent_bytes"] == 0 and push["deps"]["skipped"] == 1
        assert push["app"]["sent"] == 1
    assert warm["transfer"]["base"]["sent_bytes"] == 0 and warm["transfer"]["deps"]["sent_bytes"] == 0
    # the new images really are in each function's repository: base, deps and the new app layer
    for f in warm["functions"]:
        repo = fleet["names"][f["key"]].lower()
        assert len(tf.manifest_layers(repo, f["digest"])) == _base_layers(warm) + 2


@pytest.mark.slow
def test_a_fleet_resolves_its_base_once_per_run(fleet: dict[str, Any]) -> None:
    """Four functions name one base tag: each run asks the upstream registry for its manifest(s)
    once, not once per function, and every function is built on the same base."""
    for run in ("cold", "warm"):
        asked = fleet["upstream"][run]
        assert asked and ("GET", "3.12") in asked, asked
        assert len(asked) == len(set(asked)), asked  # each manifest asked for once in the run
    n = _base_layers(fleet["warm"])
    bases = {tuple(tf.manifest_layers(fleet["names"][f["key"]].lower(), f["digest"])[:n])
             for f in fleet["warm"]["functions"]}
    assert len(bases) == 1, bases


def test_text_summary_names_each_dependency_set_and_what_was_sent() -> None:
    from lambdaship.commands._fleet import sharing_lines
    from lambdaship.deploy.fleet.run import FleetEntry, FleetResult
    from lambdaship.deploy.fleet.sharing import BuildTally

    def push(base_sent: int, deps_mounted: int) -> dict[str, dict[str, int]]:
        zero = {"sent": 0, "sent_bytes": 0, "mounted": 0, "skipped": 0}
        return {"base": {**zero, "sent": base_sent, "sent_bytes": 300 * base_sent, "mounted": 2 - base_sent},
                "deps": {**zero, "mounted": deps_mounted, "sent": 1 - deps_mounted,
                         "sent_bytes": 12_000 * (1 - deps_mounted)},
                "app": {**zero, "sent": 1, "sent_bytes": 1_100}, "config": {**zero, "sent": 1, "sent_bytes": 2_000}}

    entries = [FleetEntry("a", "fn-a", "deployed", "r", deps_hash="f" * 64, build=BuildTally("installed", 1, 0),
                          push=push(2, 0)),
               FleetEntry("b", "fn-b", "deployed", "r", deps_hash="f" * 64, build=BuildTally("cached", 0, 1),
                          push=push(0, 1))]
    lines = sharing_lines(FleetResult(entries, None, None, False, 4))
    assert lines == [
        "dependency set ffffffffffff: 2 functions, installed once, 1 layer written, 1 from the layer cache",
        "blobs sent: base 2 (600 B), deps 1 (12.0 kB), app 2 (2.2 kB), config 2 (4.0 kB); 3 mounted, 0 already there",
    ]
