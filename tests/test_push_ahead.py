"""The base image's layers sent to the push target while the image builds (``lambdaship.ahead``),
against the local stack (moto's ECR, the distribution registry) and a second registry holding the
base, as public ECR holds AWS's."""

from __future__ import annotations

import json
import re
import shutil
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lambdaship.local import stack
from lambdaship.oci.client import RegistryClient
from lambdaship.oci.reference import Reference
from tests.conftest import EXAMPLES, run_cli


@pytest.fixture(scope="module")
def upstream(local_stack, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """The tests' tiny base image on a registry of its own, and the target registry's access log."""
    from tests.images import push_base

    state = tmp_path_factory.mktemp("upstream")
    url, proc = stack.start_registry(state)
    try:
        yield push_base(url, tmp_path_factory.mktemp("upstream-base"), repo="upstream/python", tag="3.12"), state
    finally:
        stack.stop_registry(proc)


def _app(tmp: Path, base: str, requirements: str | None = None) -> tuple[Path, str]:
    app = tmp / "app"
    shutil.copytree(EXAMPLES / "handler-app", app)
    name = f"ahead-{uuid.uuid4().hex[:8]}"
    pyproject = app / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace(
        'function_name = "handler-demo"', f'function_name = "{name}"\nbase_image = "{base}"'))
    if requirements is not None:
        (app / "requirements.txt").write_text(requirements)
    return app, name


def _base_layers(base: str) -> list[dict[str, Any]]:
    r = Reference.parse(base)
    manifest, _, _ = RegistryClient.for_registry(r.registry).get_manifest(r.repository, r.ref)
    return json.loads(manifest)["layers"]


def _repository_exists(name: str) -> bool:
    from botocore.exceptions import ClientError

    from lambdaship.aws.session import client

    try:
        client("ecr").describe_repositories(repositoryNames=[name])
    except ClientError:
        return False
    return True


def test_a_cold_push_copies_the_base_layers_while_the_image_builds(local_stack, upstream, tmp_path: Path) -> None:
    """A first push to a new repository: the base layers come from the other registry during the
    build (the line says so), and the pushed image holds them."""
    base, _state = upstream
    app, name = _app(tmp_path, base)
    proc = run_cli("push", "-C", str(app), env={"LAMBDASHIP_HOME": str(tmp_path / "home"), "CI": "true"})
    assert proc.returncode == 0, proc.stderr
    layers = _base_layers(base)
    for d in layers:
        assert re.search(rf"copied +layer {d['digest'][:19]} \(.* sent while the image was built\)", proc.stderr), \
            proc.stderr
    assert proc.stdout.count("sent while") == 0  # progress on stderr, the reference on stdout

    # The registry took the manifest (it refuses one naming a blob it lacks): the base layers are
    # the image's, in the repository the push created.
    ref = proc.stdout.strip().splitlines()[-1]
    assert ref.split("@")[0].endswith(f"/{name}")
    from lambdaship.oci.reference import registry_host

    client = RegistryClient.for_registry(registry_host(local_stack.registry.url))
    manifest, _, _ = client.get_manifest(name, ref.split("@")[1])
    assert [d["digest"] for d in json.loads(manifest)["layers"][:len(layers)]] == [d["digest"] for d in layers]


def test_the_base_layers_are_in_the_target_before_the_build_ends(local_stack, upstream, tmp_path: Path) -> None:
    """In the library: inside the block (where the build runs) the base layers arrive in the target
    repository, with no manifest; a push after it takes them as sent and asks nothing about them."""
    from lambdaship.ahead import base_ahead
    from lambdaship.config import load_project
    from lambdaship.image.base import resolve_base
    from lambdaship.oci.reference import registry_host
    from lambdaship.registries import push_image
    from tests.test_push import file_layer, make_image

    base, _state = upstream
    app, name = _app(tmp_path, base)
    fn = load_project(app).function()
    dest = f"{registry_host(local_stack.registry.url)}/{name}"
    client = RegistryClient.for_registry(registry_host(local_stack.registry.url))
    digests = [d["digest"] for d in _base_layers(base)]
    with base_ahead(fn, lambda: (dest, None)) as running:
        deadline = time.monotonic() + 30
        while not all(client.blob_exists(name, d) for d in digests) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert all(client.blob_exists(name, d) for d in digests)  # still inside: the build's time
        assert client.head_manifest(name, "latest") is None
        image = make_image([*resolve_base(fn.image_base, fn.architecture).layers,
                            file_layer(tmp_path, {"var/task/app.py": b"x = 1\n"})])
    where, ahead = running.result()
    assert where == dest and ahead is not None and set(ahead.done) == set(digests)
    log = Path(local_stack.state_dir, "registry.log")
    since = log.stat().st_size
    result = push_image(image, dest, ["t"], ahead=ahead)
    asked = log.read_text(errors="replace")[since:]
    for d in digests:
        assert f"/v2/{name}/blobs/{d}" not in asked  # taken as sent, not asked about again
        assert {"digest": d, "action": "streamed"}.items() <= next(
            b for b in result.blobs if b["digest"] == d).items()
    assert result.streamed_blobs == len(digests)
    assert result.uploaded_bytes == sum(lay.size for lay in image.layers) + len(image.config)
    assert client.head_manifest(name, "t") == image.digest


def test_a_failed_build_stops_the_copy_and_deletes_the_repository_it_created(local_stack, upstream,
                                                                             tmp_path: Path) -> None:
    """The block fails after the target's repository was created for the copy: the error
    propagates, and the repository (holding no image) is gone."""
    from lambdaship.ahead import base_ahead
    from lambdaship.aws import ecr
    from lambdaship.config import load_project

    base, _state = upstream
    app, name = _app(tmp_path, base)
    fn = load_project(app).function()
    created = threading.Event()

    def ensure() -> tuple[str, Any]:  # as `push` gives it: an undo only for a repository it created
        created.clear()
        uri = ecr.ensure_repository(name, keep_images=5, on_create=created.set)
        return uri, (lambda: ecr.delete_empty_repository(name)) if created.is_set() else None

    with pytest.raises(RuntimeError, match="the build failed"), base_ahead(fn, ensure):
        assert created.wait(30)
        assert _repository_exists(name)
        raise RuntimeError("the build failed")
    assert not _repository_exists(name)

    # A repository that was there before is not the copy's to delete.
    ecr.ensure_repository(name)
    with pytest.raises(RuntimeError), base_ahead(fn, ensure) as running:
        running.result()
        raise RuntimeError("the build failed")
    assert _repository_exists(name)


def test_a_push_whose_install_fails_leaves_no_repository(local_stack, upstream, tmp_path: Path) -> None:
    """End to end: a requirement that does not exist fails the build with one line, exit 1, and the
    new ECR repository the copy created is deleted again."""
    base, _state = upstream
    app, name = _app(tmp_path, base, requirements="lambdaship-no-such-package-4711==1.0\n")
    proc = run_cli("push", "-C", str(app), env={"LAMBDASHIP_HOME": str(tmp_path / "home")})
    assert proc.returncode == 1
    assert "lambdaship-no-such-package-4711" in proc.stderr and "Traceback" not in proc.stderr
    assert not _repository_exists(name)


def test_send_ahead_told_to_stop_sends_nothing(local_stack, upstream, tmp_path: Path) -> None:
    from lambdaship.image.base import resolve_base
    from lambdaship.oci.push import Stopped
    from lambdaship.oci.reference import registry_host
    from lambdaship.registries import send_ahead

    base, _state = upstream
    layers = resolve_base(base, "x86_64").layers
    name = f"ahead-stop-{uuid.uuid4().hex[:8]}"
    stop = threading.Event()
    stop.set()
    with pytest.raises(Stopped):
        send_ahead(layers, f"{registry_host(local_stack.registry.url)}/{name}", stop)
    client = RegistryClient.for_registry(registry_host(local_stack.registry.url))
    assert not any(client.blob_exists(name, lay.digest) for lay in layers)


def test_send_ahead_counts_what_passed_and_leaves_a_failed_blob_to_the_push(local_stack, upstream,
                                                                             tmp_path: Path) -> None:
    """One layer's source lacks its blob: the others are sent and reported done, that one is not
    (the push after it meets the error and reports it)."""
    from dataclasses import replace

    from lambdaship.image.base import resolve_base
    from lambdaship.image.model import Descriptor
    from lambdaship.oci.reference import registry_host
    from lambdaship.registries import send_ahead

    base, _state = upstream
    layers = list(resolve_base(base, "x86_64").layers)
    missing = replace(layers[0], descriptor=Descriptor(layers[0].descriptor.media_type, "sha256:" + "ab" * 32, 10))
    name = f"ahead-part-{uuid.uuid4().hex[:8]}"
    ahead = send_ahead([*layers, missing], f"{registry_host(local_stack.registry.url)}/{name}")
    assert set(ahead.done) == {lay.digest for lay in layers}
    client = RegistryClient.for_registry(registry_host(local_stack.registry.url))
    assert all(client.blob_exists(name, lay.digest) for lay in layers)
    assert not client.blob_exists(name, missing.digest)
