"""``push_image`` and ``lambdaship push`` against the real registry (and moto for ECR)."""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from lambdaship.errors import LambdashipError
from lambdaship.image.layer import Entry, write_layer
from lambdaship.image.model import BlobSource, Descriptor, Image, Layer, write_layout
from lambdaship.local import stack
from lambdaship.oci.client import RegistryClient
from lambdaship.oci.reference import Reference
from lambdaship.registries import push_image
from tests.conftest import run_cli
from tests.faultproxy import FaultProxy
from tests.images import docker_image, push_base, registry_host


def uid(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def make_image(layers: list[Layer], *, label: str = "x") -> Image:
    """A Docker v2s2 image of ``layers`` (what the builder produces for the AWS base)."""
    return docker_image(layers, {"config": {"Cmd": ["app.handler"], "Labels": {"test": label},
                                            "WorkingDir": "/var/task"}})


def file_layer(tmp: Path, files: dict[str, bytes]) -> Layer:
    return write_layer([Entry(name, "file", data=data) for name, data in files.items()], tmp / "blobs")


def remote_layers(registry_url: str, ref: str) -> list[Layer]:
    """The layers of an image in a registry, as builder-style remote layers (no local file)."""
    r = Reference.parse(ref)
    client = RegistryClient.for_registry(r.registry)
    manifest, _, _ = client.get_manifest(r.repository, r.ref)
    mj = json.loads(manifest)
    config = json.loads(client.get_blob(r.repository, mj["config"]["digest"]))
    return [
        Layer(Descriptor.from_json(d), diff_id, source=BlobSource(registry_url, r.repository))
        for d, diff_id in zip(mj["layers"], config["rootfs"]["diff_ids"], strict=True)
    ]


@pytest.fixture
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAMBDASHIP_RETRY_WAIT", "0.01")


@pytest.fixture
def small_chunks(local_stack, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Make the registry client chunk above 64 KiB so small test blobs exercise PATCH/resume."""
    import lambdaship.oci.upload as reg

    monkeypatch.setattr(reg, "MONOLITHIC_MAX", 64 * 1024)
    monkeypatch.setattr(reg, "CHUNK_SIZE", 48 * 1024)
    RegistryClient.clear_cache()
    yield
    RegistryClient.clear_cache()


def target(local_stack, repo: str) -> str:
    return f"{registry_host(local_stack.registry.url)}/{repo}"


def test_first_push_uploads_everything_then_nothing(local_stack, tmp_path: Path) -> None:
    deps = file_layer(tmp_path, {"var/task/dep.py": b"x = 1\n" * 5000})
    app = file_layer(tmp_path, {"var/task/app.py": b"def handler(e, c):\n    return 1\n"})
    image = make_image([deps, app])
    repo = uid("first")
    first = push_image(image, target(local_stack, repo), ["v1"])
    assert (first.uploaded_blobs, first.skipped_blobs, first.mounted_blobs) == (3, 0, 0)
    assert first.uploaded_bytes == len(image.config) + deps.size + app.size
    assert first.image_ref == f"{registry_host(local_stack.registry.url)}/{repo}@{image.digest}"
    client = RegistryClient.for_registry(local_stack.registry.url)
    assert client.head_manifest(repo, "v1") == image.digest == first.digest

    again = push_image(image, target(local_stack, repo), ["v1", "v2"])
    assert (again.uploaded_blobs, again.skipped_blobs, again.uploaded_bytes) == (0, 3, 0)
    assert client.head_manifest(repo, "v2") == image.digest


def test_code_only_change_uploads_only_app_layer_and_config(local_stack, tmp_path: Path) -> None:
    deps = file_layer(tmp_path, {"var/task/numpy/__init__.py": os.urandom(200_000)})
    app1 = file_layer(tmp_path, {"var/task/app.py": b"VERSION = 1\n"})
    app2 = file_layer(tmp_path, {"var/task/app.py": b"VERSION = 2\n"})
    repo = uid("codechange")
    push_image(make_image([deps, app1]), target(local_stack, repo), ["one"])
    img2 = make_image([deps, app2])
    second = push_image(img2, target(local_stack, repo), ["two"])
    uploaded = {b["digest"] for b in second.blobs if b["action"] == "uploaded"}
    assert uploaded == {app2.digest, img2.config_descriptor.digest}
    assert second.skipped_blobs == 1 and second.uploaded_bytes == app2.size + len(img2.config)


def test_layers_of_the_target_repositorys_own_image_are_not_asked_for(local_stack, tmp_path: Path) -> None:
    """A reused layer read from the target repository's own image (a fresh runner's dependency
    layers) is known to be there: no HEAD for it; the registry accepts the manifest. Pushed to
    another repository, the same layer is checked (and mounted) as before."""
    deps = file_layer(tmp_path, {"var/task/dep.py": os.urandom(50_000)})
    app1 = file_layer(tmp_path, {"var/task/app.py": b"VERSION = 1\n"})
    app2 = file_layer(tmp_path, {"var/task/app.py": b"VERSION = 2\n"})
    repo = uid("own")
    with FaultProxy(local_stack.registry.url, rate=0.0) as proxy:
        url, host = f"http://127.0.0.1:{proxy.port}", f"127.0.0.1:{proxy.port}"
        push_image(make_image([deps, app1]), f"{host}/{repo}", ["one"])
        reused = remote_layers(url, f"{host}/{repo}:one")[0]
        assert reused.digest == deps.digest and reused.source is not None
        img2 = make_image([reused, app2])
        before = len(proxy.log)
        second = push_image(img2, f"{host}/{repo}", ["two"])
        asked = [r for r in proxy.log[before:] if deps.digest in r.path]
        other = push_image(img2, f"{host}/{uid('other')}", ["two"])
    assert asked == []  # neither HEAD nor upload for the repository's own layer
    actions = {b["digest"]: b["action"] for b in second.blobs}
    assert actions[deps.digest] == "skipped"
    assert actions[app2.digest] == "uploaded" and second.uploaded_bytes == app2.size + len(img2.config)
    client = RegistryClient.for_registry(local_stack.registry.url)
    assert client.head_manifest(repo, "two") == img2.digest  # the registry checked the layer is there
    assert {b["digest"]: b["action"] for b in other.blobs}[deps.digest] == "mounted"


def test_blobs_presumed_in_the_repository_are_asked_for_when_the_manifest_is_refused(
        local_stack, tmp_path: Path) -> None:
    """The build read the repository's current image: its base layers are presumed there and not
    asked about. One of them was deleted since: the registry refuses the manifest, the push asks
    about each presumed blob, streams the missing one from the base's registry and tags the image.
    Presumed for another repository, nothing is skipped."""
    from dataclasses import replace

    from lambdaship.image.model import Held

    url2, proc = stack.start_registry(tmp_path / "upstream")
    try:
        base_ref = push_base(url2, tmp_path, repo="upstream/python", tag="3.12")
        base = remote_layers(url2, base_ref)
        repo = uid("presumed")
        first = push_image(make_image([*base, file_layer(tmp_path, {"var/task/app.py": b"v = 1\n"})]),
                           target(local_stack, repo), ["one"])
        assert first.streamed_blobs == len(base) == 2
        gone = base[0].digest
        assert httpx.delete(f"{local_stack.registry.url}/v2/{repo}/blobs/{gone}").status_code == 202
        client = RegistryClient.for_registry(local_stack.registry.url)
        assert not client.blob_exists(repo, gone)
        held = Held(BlobSource(registry_host(local_stack.registry.url), repo), frozenset(lay.digest for lay in base))
        image = replace(make_image([*base, file_layer(tmp_path, {"var/task/app.py": b"v = 2\n"})]), held=held)
        res = push_image(image, target(local_stack, repo), ["two"])
        other = push_image(image, target(local_stack, uid("elsewhere")), ["two"])
    finally:
        stack.stop_registry(proc)
    actions = {b["digest"]: b["action"] for b in res.blobs}
    assert actions[gone] == "streamed" and actions[base[1].digest] == "skipped", actions
    assert len(res.blobs) == len(image.layers) + 1  # each blob once, the config included
    assert client.head_manifest(repo, "two") == image.digest and client.blob_exists(repo, gone)
    assert {b["digest"]: b["action"] for b in other.blobs}[base[1].digest] == "streamed"  # asked, then sent


def test_a_reused_layer_gone_from_the_repository_is_one_line_naming_the_fix(local_stack, tmp_path: Path) -> None:
    """A dependency layer reused from the repository's own image exists nowhere else: when it was
    deleted from the registry, the push fails in one line naming LAMBDASHIP_REUSE=0, untagged."""
    deps = file_layer(tmp_path, {"var/task/dep.py": os.urandom(5000)})
    repo = uid("gone")
    push_image(make_image([deps, file_layer(tmp_path, {"var/task/app.py": b"v = 1\n"})]),
               target(local_stack, repo), ["one"])
    reused = remote_layers(local_stack.registry.url, f"{target(local_stack, repo)}:one")[0]
    assert httpx.delete(f"{local_stack.registry.url}/v2/{repo}/blobs/{deps.digest}").status_code == 202
    with pytest.raises(LambdashipError) as err:
        push_image(make_image([reused, file_layer(tmp_path, {"var/task/app.py": b"v = 2\n"})]),
                   target(local_stack, repo), ["two"])
    line = err.value.one_line()
    assert "\n" not in line and f"{repo} no longer holds a layer" in line and "LAMBDASHIP_REUSE=0" in line
    assert RegistryClient.for_registry(local_stack.registry.url).head_manifest(repo, "two") is None


def test_base_layers_are_mounted_on_the_same_registry(local_stack, tmp_path: Path) -> None:
    base_repo = uid("base")
    base_ref = push_base(local_stack.registry.url, tmp_path, repo=base_repo, tag="3.12")
    base = remote_layers(local_stack.registry.url, base_ref)
    app = file_layer(tmp_path, {"var/task/app.py": b"print('hi')\n"})
    image = make_image([*base, app])
    repo = uid("mounted")
    res = push_image(image, target(local_stack, repo), ["m"])
    assert res.mounted_blobs == len(base) == 2
    assert res.uploaded_blobs == 2 and res.streamed_blobs == 0  # app layer + config
    client = RegistryClient.for_registry(local_stack.registry.url)
    for layer in base:
        assert client.blob_exists(repo, layer.digest)


def test_base_layers_stream_from_another_registry(local_stack, tmp_path: Path, small_chunks) -> None:
    url2, proc = stack.start_registry(tmp_path / "registry2")
    try:
        big = [Entry("opt/big.bin", "file", data=os.urandom(300_000))]  # incompressible: chunked upload
        base_ref = push_base(url2, tmp_path, repo="upstream/python", tag="3.12", layers=[big])
        base = remote_layers(url2, base_ref)
        assert base[0].size > 64 * 1024
        app = file_layer(tmp_path, {"var/task/app.py": b"x = 2\n"})
        image = make_image([*base, app])
        repo = uid("streamed")
        res = push_image(image, target(local_stack, repo), ["s"])
        assert res.streamed_blobs == 1 and res.mounted_blobs == 0 and res.uploaded_blobs == 3
        client = RegistryClient.for_registry(local_stack.registry.url)
        assert client.head_manifest(repo, "s") == image.digest
        src = RegistryClient.for_registry(url2)
        assert client.get_blob(repo, base[0].digest) == src.get_blob("upstream/python", base[0].digest)
        assert not list((tmp_path / "blobs").glob(base[0].digest.split(":")[1]))  # never written locally
    finally:
        stack.stop_registry(proc)


def test_failed_push_leaves_no_tag(local_stack, tmp_path: Path, fast_retries) -> None:
    good = file_layer(tmp_path, {"var/task/a.py": b"a = 1\n"})
    # A base layer whose source repository does not hold it: the push fails mid-way.
    ghost = Layer(Descriptor(good.descriptor.media_type, "sha256:" + "0" * 64, 1234), "sha256:" + "1" * 64,
                  source=BlobSource(local_stack.registry.url, uid("nowhere")))
    repo = uid("interrupted")
    with pytest.raises(LambdashipError):
        push_image(make_image([good, ghost]), target(local_stack, repo), ["broken"])
    client = RegistryClient.for_registry(local_stack.registry.url)
    assert client.head_manifest(repo, "broken") is None
    assert client.list_tags(repo) == []


def test_corrupt_local_layer_is_refused_and_not_tagged(local_stack, tmp_path: Path) -> None:
    layer = file_layer(tmp_path, {"var/task/a.py": b"a = 1\n" * 100})
    data = bytearray(layer.path.read_bytes())
    data[-10] ^= 0xFF
    layer.path.write_bytes(bytes(data))
    repo = uid("corrupt")
    with pytest.raises(LambdashipError, match="does not match"):
        push_image(make_image([layer]), target(local_stack, repo), ["bad"])
    assert RegistryClient.for_registry(local_stack.registry.url).list_tags(repo) == []


def test_interrupted_before_manifest_through_proxy_leaves_no_tag(local_stack, tmp_path: Path, fast_retries,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Every blob PUT fails (the registry goes away mid-push): after the retries, no tag."""
    monkeypatch.setenv("LAMBDASHIP_RETRY_ATTEMPTS", "3")
    layer = file_layer(tmp_path, {"var/task/a.py": os.urandom(1000)})

    def rule(method: str, path: str, n: int) -> str | None:
        return "reset" if method in ("PUT", "PATCH") and "/blobs/uploads/" in path else "pass"

    repo = uid("cut")
    with FaultProxy(local_stack.registry.url, rule=rule) as proxy:
        with pytest.raises(LambdashipError) as exc:
            push_image(make_image([layer]), f"127.0.0.1:{proxy.port}/{repo}", ["t"])
        assert not any("/manifests/" in r.path and r.method == "PUT" for r in proxy.log)
    assert "\n" not in exc.value.one_line()
    client = RegistryClient.for_registry(local_stack.registry.url)
    assert client.head_manifest(repo, "t") is None and client.list_tags(repo) == []


def test_push_survives_faults_over_many_seeds(local_stack, tmp_path: Path, fast_retries, small_chunks) -> None:
    """~20 % of requests answered 500, reset or cut mid-body; 20 seeded runs all complete."""
    deps = file_layer(tmp_path, {"var/task/lib.bin": os.urandom(150_000)})  # chunked (3 PATCHes)
    faults: dict[str, int] = {}
    requests = 0
    with FaultProxy(local_stack.registry.url, rate=0.2, seed=0) as proxy:
        host = f"127.0.0.1:{proxy.port}"
        for seed in range(20):
            proxy._rng.seed(seed)
            app = file_layer(tmp_path, {"var/task/app.py": f"SEED = {seed}\n".encode()})
            image = make_image([deps, app], label=str(seed))
            repo = uid(f"faults{seed}")
            res = push_image(image, f"{host}/{repo}", ["t"])
            assert res.digest == image.digest
            direct = RegistryClient(local_stack.registry.url)
            assert direct.head_manifest(repo, "t") == image.digest
            for layer in image.layers:
                assert direct.blob_exists(repo, layer.digest)
        faults = dict(proxy.counts)
        requests = len(proxy.log)
    injected = sum(faults.values())
    assert injected >= 0.1 * requests and len(faults) >= 4, (faults, requests)


def test_retry_after_is_honoured(local_stack, tmp_path: Path, fast_retries) -> None:
    layer = file_layer(tmp_path, {"var/task/a.py": b"a"})
    seen = {"n": 0}

    def rule(method: str, path: str, n: int) -> str | None:
        if method == "HEAD" and "/blobs/" in path and seen["n"] < 1:
            seen["n"] += 1
            return "429"
        return "pass"

    repo = uid("ratelimited")
    with FaultProxy(local_stack.registry.url, rule=rule, retry_after=1.0) as proxy:
        push_image(make_image([layer]), f"127.0.0.1:{proxy.port}/{repo}", ["t"])
        limited = next(r for r in proxy.log if r.fault == "429")
        retry = next(r for r in proxy.log if r.time > limited.time and r.path == limited.path)
    assert retry.time - limited.time >= 0.95


def test_invalid_target_or_tag_fails_before_any_request(local_stack, tmp_path: Path) -> None:
    layer = file_layer(tmp_path, {"a": b"a"})
    with pytest.raises(LambdashipError, match="not a valid tag"):
        push_image(make_image([layer]), target(local_stack, uid("x")), ["bad tag"])
    with pytest.raises(LambdashipError, match="names a digest"):
        push_image(make_image([layer]), target(local_stack, "x") + "@sha256:" + "a" * 64)


# ---------------------------------------------------------------------------------------------
# ECR (moto control plane + the local registry)
# ---------------------------------------------------------------------------------------------
def test_ecr_push_registers_image_and_image_exists(local_stack, tmp_path: Path) -> None:
    from lambdaship.aws import ecr
    from lambdaship.aws.session import client

    name = uid("ecrfn")
    uri = ecr.ensure_repository(name, keep_images=10)
    assert uri == f"{stack.ACCOUNT_ID}.dkr.ecr.{local_stack.region}.amazonaws.com/{name}"
    assert ecr.ensure_repository(name) == uri  # idempotent
    ecr.registry_for_account()  # the account's registry host: asked once per configuration
    asked: list[str] = []

    def count(model, **_):  # type: ignore[no-untyped-def]
        asked.append(model.name)

    client("ecr").meta.events.register("provide-client-params.ecr", count)
    try:
        assert ecr.ensure_repository(name, keep_images=10) == uri  # a redeploy's: the policy read only
    finally:
        client("ecr").meta.events.unregister("provide-client-params.ecr", count)
    assert asked == ["GetLifecyclePolicy"], asked
    layer = file_layer(tmp_path, {"var/task/app.py": b"ecr = True\n"})
    image = make_image([layer])
    res = push_image(image, uri, ["git-abc123"])
    assert res.image_ref == f"{uri}@{image.digest}"
    images = client("ecr").describe_images(repositoryName=name)["imageDetails"]
    assert [(i["imageDigest"], i.get("imageTags")) for i in images] == [(image.digest, ["git-abc123"])]
    assert ecr.image_exists(name, image.digest)
    assert not ecr.image_exists(name, "sha256:" + "e" * 64)
    ecr.tag_image(name, image.digest, "deployed-3")
    tags = client("ecr").describe_images(repositoryName=name)["imageDetails"][0]["imageTags"]
    assert sorted(tags) == ["deployed-3", "git-abc123"]
    repo = client("ecr").describe_repositories(repositoryNames=[name])["repositories"][0]
    assert repo["imageScanningConfiguration"]["scanOnPush"] is True
    policy = json.loads(client("ecr").get_lifecycle_policy(repositoryName=name)["lifecyclePolicyText"])
    assert policy == ecr.lifecycle_policy(10)


def test_put_image_is_only_for_a_registry_standing_in_for_ecr(local_stack, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """ECR's own registry and API are one service (a registry manifest PUT is PutImage), so the
    ECR API is told of an image only where another registry stands in for ECR's."""
    from lambdaship.aws import ecr
    from lambdaship.aws.session import client

    name = uid("putimage")
    ecr.ensure_repository(name)
    image = make_image([file_layer(tmp_path, {"var/task/app.py": b"put = 1\n"})])
    asked: list[str] = []

    def count(model, **_):  # type: ignore[no-untyped-def]
        asked.append(model.name)

    client("ecr").meta.events.register("provide-client-params.ecr", count)
    try:
        with monkeypatch.context() as m:
            m.delenv("LAMBDASHIP_REGISTRY_URL")  # the registry is ECR's own
            ecr.put_image(name, image.manifest, image.media_type, ["ecr-itself"], image.digest)
        assert asked == []
        ecr.put_image(name, image.manifest, image.media_type, ["stand-in"], image.digest)
    finally:
        client("ecr").meta.events.unregister("provide-client-params.ecr", count)
    assert asked == ["PutImage"]
    tags = client("ecr").describe_images(repositoryName=name)["imageDetails"][0]["imageTags"]
    assert tags == ["stand-in"]


def test_ensure_repository_options(local_stack) -> None:
    from lambdaship.aws import ecr
    from lambdaship.aws.session import client

    name = uid("immutable")
    ecr.ensure_repository(name, scan_on_push=False, mutable_tags=False, encryption="KMS")
    repo = client("ecr").describe_repositories(repositoryNames=[name])["repositories"][0]
    assert repo["imageTagMutability"] == "IMMUTABLE"
    assert repo["imageScanningConfiguration"]["scanOnPush"] is False
    assert repo["encryptionConfiguration"]["encryptionType"] == "KMS"


def _simulate_lifecycle(policy: dict, images: list[dict]) -> set[str]:
    """ECR's documented evaluation: rules by priority; an image whose tags match a higher-priority
    rule's selection cannot be expired by a lower one; counts are newest-first per rule."""
    now = time.time()
    expired: set[str] = set()
    claimed: set[str] = set()

    def selects(rule: dict, img: dict) -> bool:
        sel = rule["selection"]
        if sel["tagStatus"] == "untagged":
            return not img["tags"]
        if sel["tagStatus"] == "any":
            return True
        return bool(img["tags"]) and all(any(t.startswith(p) for t in img["tags"]) for p in sel["tagPrefixList"])

    for rule in sorted(policy["rules"], key=lambda r: r["rulePriority"]):
        sel = rule["selection"]
        matching = sorted((i for i in images if selects(rule, i)), key=lambda i: -i["pushed"])
        if sel["countType"] == "imageCountMoreThan":
            candidates = matching[sel["countNumber"]:]
        else:
            candidates = [i for i in matching if now - i["pushed"] > sel["countNumber"] * 86400]
        for img in candidates:
            if img["id"] not in claimed:
                expired.add(img["id"])
        claimed |= {i["id"] for i in matching}
    return expired


def test_lifecycle_policy_never_expires_deployed_images(local_stack) -> None:
    from lambdaship.aws import ecr
    from lambdaship.aws.session import client

    policy = ecr.lifecycle_policy(3)
    rules = sorted(policy["rules"], key=lambda r: r["rulePriority"])
    assert rules[0]["selection"]["tagPrefixList"] == ["deployed-"]
    assert all("deployed-" not in json.dumps(r["selection"]) for r in rules[1:])
    assert not any(r["selection"]["tagStatus"] == "any" for r in rules)
    day = 86400
    now = time.time()
    images = [{"id": f"git{i}", "tags": [f"git-{i:04x}"], "pushed": now - (20 - i) * day} for i in range(20)]
    images[2]["tags"].append("deployed-1")  # old image still used by version 1
    images[5]["tags"] = ["deployed-2"]
    images.append({"id": "untagged-old", "tags": [], "pushed": now - 5 * day})
    images.append({"id": "release", "tags": ["v1.0"], "pushed": now - 400 * day})
    expired = _simulate_lifecycle(policy, images)
    assert "git2" not in expired and "git5" not in expired  # deployed
    assert {"git17", "git18", "git19"}.isdisjoint(expired)  # newest 3 kept
    assert "git10" in expired and "untagged-old" in expired and "release" not in expired
    # The JSON is accepted by the ECR API (moto) and reads back unchanged.
    name = uid("lifecycle")
    client("ecr").create_repository(repositoryName=name)
    assert ecr.put_lifecycle_policy(name, 3) is True
    assert ecr.put_lifecycle_policy(name, 3) is False  # unchanged: not rewritten


# ---------------------------------------------------------------------------------------------
# The command
# ---------------------------------------------------------------------------------------------
def test_cli_push_layout_json_and_git_tag(local_stack, tmp_path: Path) -> None:
    layer = file_layer(tmp_path, {"var/task/app.py": b"cli = 1\n"})
    image = make_image([layer])
    layout = write_layout(image, tmp_path / "layout")
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "app.py").write_text("def handler(e, c):\n    return 1\n")
    name = uid("clifn")
    (proj / "lambdaship.toml").write_text(f'function_name = "{name}"\nhandler = "app.handler"\n')
    git = ["git", "-C", str(proj), "-c", "user.email=t@example.com", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "init"], check=True)
    sha = subprocess.run([*git, "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True,
                         check=True).stdout.strip()
    proc = run_cli("push", "-C", str(proj), "--layout", str(layout), "--tag", "extra", "--json")
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out["digest"] == image.digest
    assert out["image"] == f"{stack.ACCOUNT_ID}.dkr.ecr.{local_stack.region}.amazonaws.com/{name}@{image.digest}"
    assert out["tags"] == [f"git-{sha}", "extra"]
    assert (out["uploaded_blobs"], out["skipped_blobs"], out["mounted_blobs"]) == (2, 0, 0)
    assert out["uploaded_bytes"] == layer.size + len(image.config)
    client = RegistryClient.for_registry(local_stack.registry.url)
    assert client.head_manifest(name, f"git-{sha}") == image.digest

    again = run_cli("push", "-C", str(proj), "--layout", str(layout))
    assert again.returncode == 0, again.stderr
    assert f"{name}@{image.digest}" in again.stdout
    assert "0 uploaded" in again.stdout


def test_cli_push_to_any_registry_and_errors(local_stack, tmp_path: Path) -> None:
    layer = file_layer(tmp_path, {"var/task/app.py": b"any = 1\n"})
    image = make_image([layer])
    layout = write_layout(image, tmp_path / "layout")
    repo = uid("anyreg")
    dest = f"{registry_host(local_stack.registry.url)}/{repo}"
    proc = run_cli("push", "--layout", str(layout), "--to", dest, "--tag", "v1", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines()[-1] == f"{dest}@{image.digest}"
    bad = run_cli("push", "--layout", str(tmp_path / "missing"), "--to", dest, cwd=tmp_path)
    assert bad.returncode == 2 and bad.stderr.startswith("error: ") and "Traceback" not in bad.stderr
    for args in (["--to", "Upper/Case"], ["--to", f"{dest}@sha256:{'a' * 64}"], ["--repository", "Bad_Name"]):
        usage = run_cli("push", "--layout", str(layout), *args, cwd=tmp_path)
        assert usage.returncode == 2 and len(usage.stderr.strip().splitlines()) == 1, usage.stderr
    down = run_cli("push", "--layout", str(layout), "--to", "127.0.0.1:9/x", cwd=tmp_path,
                   env={"LAMBDASHIP_RETRY_ATTEMPTS": "2", "LAMBDASHIP_RETRY_WAIT": "0.01"})
    assert down.returncode == 1 and len(down.stderr.strip().splitlines()) == 1, down.stderr
    assert "cannot reach" in down.stderr


@pytest.mark.parametrize(("fault", "expect"), [("500", "resumes"), ("reset", "resumes"), ("500-after", "restarts"),
                                               ("cut-request", "restarts")])
def test_interrupted_chunk_resumes_or_restarts(local_stack, tmp_path: Path, fast_retries, small_chunks,
                                              caplog: pytest.LogCaptureFixture, fault: str, expect: str) -> None:
    """A PATCH that failed before reaching the registry resumes at the offset the registry reports
    (GET on the upload URL → Range); one whose answer was lost (the session moved on) restarts."""
    import logging

    caplog.set_level(logging.DEBUG, logger="lambdaship.oci")
    big = file_layer(tmp_path, {"big.bin": os.urandom(200_000)})
    patches = {"n": 0}

    def rule(method: str, path: str, n: int) -> str | None:
        if method == "PATCH":
            patches["n"] += 1
            if patches["n"] == 2:
                return fault
        return "pass"

    repo = uid("resume")
    with FaultProxy(local_stack.registry.url, rule=rule) as proxy:
        res = push_image(make_image([big]), f"127.0.0.1:{proxy.port}/{repo}", ["t"])
        assert proxy.counts[fault] == 1
    assert res.uploaded_blobs == 2
    messages = [r.getMessage() for r in caplog.records if r.name == "lambdaship.oci"]
    assert any(expect in m for m in messages), messages
    if expect == "resumes":
        assert any("resumes at offset 49152" in m for m in messages)
        assert not any("restarts" in m for m in messages)
    assert RegistryClient(local_stack.registry.url).get_blob(repo, big.digest) == big.path.read_bytes()


def test_streaming_between_registries_survives_faults_on_both_sides(local_stack, tmp_path: Path, fast_retries,
                                                                    small_chunks, monkeypatch) -> None:
    """Source registry cuts blob downloads mid-body (resumed with Range), target drops uploads."""
    import lambdaship.oci.upload as reg

    monkeypatch.setattr(reg, "CHUNK_SIZE", 160 * 1024)  # 3 PATCHes per upload
    url2, proc = stack.start_registry(tmp_path / "registry2")
    try:
        big = [Entry("opt/big.bin", "file", data=os.urandom(400_000))]
        base_ref = push_base(url2, tmp_path, repo="upstream/python", tag="3.12", layers=[big])
        with FaultProxy(url2, rate=0.3, seed=1, faults=("cut", "500", "reset", "slow"), slow_seconds=0.05) as src, \
                FaultProxy(local_stack.registry.url, rate=0.2, seed=2) as dst:
            base = remote_layers(src.url, base_ref.replace(registry_host(url2), f"127.0.0.1:{src.port}"))
            for seed in range(5):
                src._rng.seed(seed)
                dst._rng.seed(seed)
                app = file_layer(tmp_path, {"var/task/app.py": f"S = {seed}\n".encode()})
                image = make_image([*base, app], label=str(seed))
                repo = uid(f"s2s{seed}")
                res = push_image(image, f"127.0.0.1:{dst.port}/{repo}", ["t"])
                assert res.streamed_blobs == 1
                direct = RegistryClient(local_stack.registry.url)
                assert direct.head_manifest(repo, "t") == image.digest
                assert direct.get_blob(repo, base[0].digest) == RegistryClient(url2).get_blob(
                    "upstream/python", base[0].digest)
            assert src.counts["cut"] >= 1 and sum(dst.counts.values()) >= 1, (src.counts, dst.counts)
    finally:
        stack.stop_registry(proc)


def test_lifecycle_policy_of_the_user_is_kept(local_stack) -> None:
    from lambdaship.aws import ecr
    from lambdaship.aws.session import client

    name = uid("ownpolicy")
    client("ecr").create_repository(repositoryName=name)
    own = {"rules": [{"rulePriority": 1, "description": "team rule", "selection": {
        "tagStatus": "untagged", "countType": "imageCountMoreThan", "countNumber": 5}, "action": {"type": "expire"}}]}
    client("ecr").put_lifecycle_policy(repositoryName=name, lifecyclePolicyText=json.dumps(own))
    assert ecr.put_lifecycle_policy(name, 3) is False
    assert json.loads(client("ecr").get_lifecycle_policy(repositoryName=name)["lifecyclePolicyText"]) == own
    assert ecr.put_lifecycle_policy(name, 3, force=True) is True
    ecr.ensure_repository(name, keep_images=7)  # an older lambdaship policy is updated
    got = json.loads(client("ecr").get_lifecycle_policy(repositoryName=name)["lifecyclePolicyText"])
    assert got == ecr.lifecycle_policy(7)


@pytest.mark.slow
def test_cli_push_builds_mounts_base_and_reuses_deps_on_a_fresh_runner(local_stack, base_image_ref: str,
                                                                       tmp_path: Path) -> None:
    import shutil

    from tests.conftest import EXAMPLES

    app = tmp_path / "app"
    shutil.copytree(EXAMPLES / "handler-app", app)
    name = uid("built")
    pyproject = app / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace(
        'function_name = "handler-demo"', f'function_name = "{name}"\nbase_image = "{base_image_ref}"'))
    first = run_cli("push", "-C", str(app), "--json")
    assert first.returncode == 0, first.stderr
    one = json.loads(first.stdout)
    assert one["mounted_blobs"] == 2  # the base image's layers, same registry
    assert one["uploaded_blobs"] == 3  # deps layer, app layer, config
    assert one["tags"][0].startswith("build-")  # not a git repository

    with (app / "handler.py").open("a") as fh:
        fh.write("\n# a one-line change\n")
    fresh = run_cli("push", "-C", str(app), "--json", env={"LAMBDASHIP_HOME": str(tmp_path / "fresh-runner")})
    assert fresh.returncode == 0, fresh.stderr
    two = json.loads(fresh.stdout)
    uploaded = [b["kind"] for b in two["blobs"] if b["action"] == "uploaded"]
    assert sorted(uploaded) == ["config", "layer"] and two["skipped_blobs"] == 3, two
    assert two["digest"] != one["digest"]


def test_parallel_pushes_to_one_repository(local_stack, tmp_path: Path) -> None:
    """Several pushes at once into one repository, sharing a dependency layer: all land intact."""
    import concurrent.futures as cf

    deps = file_layer(tmp_path, {"var/task/shared.bin": os.urandom(300_000)})
    images = [make_image([deps, file_layer(tmp_path, {"var/task/app.py": f"N = {i}\n".encode()})], label=str(i))
              for i in range(6)]
    repo = uid("parallel")
    dest = target(local_stack, repo)
    with cf.ThreadPoolExecutor(6) as pool:
        results = list(pool.map(lambda ix: push_image(ix[1], dest, [f"t{ix[0]}"]), enumerate(images)))
    client = RegistryClient(local_stack.registry.url)
    for i, (image, res) in enumerate(zip(images, results, strict=True)):
        assert res.digest == image.digest
        assert client.head_manifest(repo, f"t{i}") == image.digest
    assert client.get_blob(repo, deps.digest) == deps.path.read_bytes()
    assert sorted(client.list_tags(repo)) == sorted(f"t{i}" for i in range(6))


def test_fault_proxy_in_front_of_moto_and_registry(local_stack, tmp_path: Path, fast_retries,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The same proxy works in front of moto: ECR calls that get a 500 or a reset are retried by
    boto3 (standard mode), registry calls by the registry client; the ECR push completes."""
    from lambdaship.aws import ecr
    from lambdaship.aws.session import client

    seen: dict[str, int] = {}

    def moto_rule(method: str, path: str, n: int) -> str | None:
        if method == "POST":
            seen["post"] = seen.get("post", 0) + 1
            if seen["post"] in (1, 4):
                return "500" if seen["post"] == 1 else "reset"
        return "pass"

    with FaultProxy(local_stack.moto.url, rule=moto_rule) as moto, \
            FaultProxy(local_stack.registry.url, rate=0.2, seed=7) as reg:
        monkeypatch.setenv("AWS_ENDPOINT_URL", moto.url)
        monkeypatch.setenv("LAMBDASHIP_REGISTRY_URL", reg.url)
        RegistryClient.clear_cache()
        try:
            name = uid("proxied")
            uri = ecr.ensure_repository(name, keep_images=5)
            image = make_image([file_layer(tmp_path, {"var/task/app.py": b"proxied = 1\n"})])
            res = push_image(image, uri, ["git-proxied"])
            assert res.digest == image.digest
            assert moto.counts["500"] == 1 and moto.counts["reset"] == 1
        finally:
            RegistryClient.clear_cache()
    details = client("ecr").describe_images(repositoryName=name)["imageDetails"]
    assert [d["imageDigest"] for d in details] == [image.digest]


def test_cli_push_repository_options(local_stack, tmp_path: Path) -> None:
    from lambdaship.aws.session import client

    layout = write_layout(make_image([file_layer(tmp_path, {"a.py": b"a"})]), tmp_path / "layout")
    name = uid("opts")
    proc = run_cli("push", "--layout", str(layout), "--repository", name, "--no-scan-on-push", "--immutable-tags",
                   "--kms-key", "alias/lambdaship-test", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    repo = client("ecr").describe_repositories(repositoryNames=[name])["repositories"][0]
    assert repo["imageScanningConfiguration"]["scanOnPush"] is False
    assert repo["imageTagMutability"] == "IMMUTABLE"
    assert repo["encryptionConfiguration"]["encryptionType"] == "KMS"
    bad = run_cli("push", "--layout", str(layout), "--repository", name, "--tag", "no good", cwd=tmp_path)
    assert bad.returncode == 2 and "not a valid tag" in bad.stderr


# -- progress events and their rendering (#15: the library emits, commands/ renders; #20: bytes) --
def test_cli_push_lines_count_sent_bytes_apart_from_present(local_stack, tmp_path: Path) -> None:
    """Without a terminal: one line per blob; the summary's 'sent' excludes blobs already there."""
    from lambdaship.commands._push_progress import size_text

    base = file_layer(tmp_path, {"opt/base.bin": os.urandom(300_000)})
    dest = f"{registry_host(local_stack.registry.url)}/{uid('lines')}"
    first = make_image([base])
    proc = run_cli("push", "--layout", str(write_layout(first, tmp_path / "l1")), "--to", dest, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    sent = base.size + len(first.config)
    assert f"2 uploaded ({size_text(sent)} sent), 0 mounted, 0 already present (0 B not sent)" in proc.stdout
    assert f"uploaded layer {base.digest[:19]} ({size_text(base.size)} sent in" in proc.stderr
    assert "uploaded config" in proc.stderr and "tagged" in proc.stderr

    app = file_layer(tmp_path, {"var/task/app.py": b"x = 2\n"})
    second = make_image([base, app], label="2")
    proc = run_cli("push", "--layout", str(write_layout(second, tmp_path / "l2")), "--to", dest, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    sent = app.size + len(second.config)
    assert (f"2 uploaded ({size_text(sent)} sent), 0 mounted, 1 already present "
            f"({size_text(base.size)} not sent)") in proc.stdout
    assert f"present  layer {base.digest[:19]} ({size_text(base.size)}, not sent)" in proc.stderr
    quiet = run_cli("push", "--layout", str(tmp_path / "l2"), "--to", dest, "--json", cwd=tmp_path)
    assert quiet.returncode == 0 and quiet.stderr == "", quiet.stderr  # --json: no progress lines


def test_push_events_mounted_bytes_are_not_sent(local_stack, tmp_path: Path) -> None:
    import io

    from rich.console import Console

    from lambdaship.commands._push_progress import PushRenderer
    from lambdaship.oci.push import PushEvent

    base_ref = push_base(local_stack.registry.url, tmp_path, repo=uid("evbase"), tag="3.12")
    base = remote_layers(local_stack.registry.url, base_ref)
    app = file_layer(tmp_path, {"var/task/app.py": b"y = 1\n"})
    image = make_image([*base, app])
    events: list[PushEvent] = []
    out = io.StringIO()
    renderer = PushRenderer(Console(file=out, width=200), tty=False)

    def sink(e: PushEvent) -> None:
        events.append(e)
        renderer(e)

    with renderer:
        res = push_image(image, f"{registry_host(local_stack.registry.url)}/{uid('evapp')}", ["t"], on_event=sink)
    assert res.mounted_blobs == len(base)
    assert renderer.mounted_bytes == sum(x.size for x in base)
    assert renderer.sent_bytes == app.size + len(image.config) == res.uploaded_bytes
    assert renderer.skipped_bytes == 0
    assert events[0].kind == "start" and events[0].bytes_total == sum(x.size for x in image.layers) + len(image.config)
    assert [e.kind for e in events][-1] == "manifest" and events[-1].tag == "t"
    done = {e.digest: e for e in events if e.kind == "blob"}
    assert {d: e.how for d, e in done.items()} == {**{x.digest: "mount" for x in base}, app.digest: "upload",
                                                   image.config_descriptor.digest: "upload"}
    last = {e.digest: e.bytes_done for e in events if e.kind == "progress"}
    assert last == {app.digest: app.size, image.config_descriptor.digest: len(image.config)}
    assert out.getvalue().count("mounted  layer") == len(base)


def test_cli_push_on_a_terminal_draws_progress(local_stack, tmp_path: Path) -> None:
    """On a terminal (a pty as stderr): rich bars, and present blobs logged as not sent."""
    import pty
    import select
    import sys

    layer = file_layer(tmp_path, {"opt/t.bin": os.urandom(200_000)})
    layout = write_layout(make_image([layer]), tmp_path / "layout")
    dest = f"{registry_host(local_stack.registry.url)}/{uid('tty')}"

    def run() -> tuple[int, str, str]:
        master, slave = pty.openpty()
        proc = subprocess.Popen([sys.executable, "-m", "lambdaship.cli", "push", "--layout", str(layout),
                                 "--to", dest], stdout=subprocess.PIPE, stderr=slave, cwd=tmp_path,
                                env={**os.environ, "COLUMNS": "160", "TERM": "xterm"})
        os.close(slave)
        screen = b""
        while True:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    data = os.read(master, 65536)
                except OSError:
                    data = b""
                if not data:
                    break
                screen += data
            elif proc.poll() is not None:
                break
        os.close(master)
        return proc.wait(timeout=60), proc.stdout.read().decode(), screen.decode(errors="replace")

    code, stdout, screen = run()
    assert code == 0, screen
    assert "to send" in screen and f"layer {layer.digest[7:19]}" in screen
    code, stdout, screen = run()
    assert code == 0 and "0 uploaded (0 B sent)" in stdout, screen
    assert f"present  layer {layer.digest[:19]}" in screen and "not sent" in screen
