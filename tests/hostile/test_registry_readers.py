"""#19.7: property tests of the manifest / index / config readers and of the client's readers
against a server answering random bytes: nothing but ``LambdashipError`` ever comes out."""

from __future__ import annotations

import hashlib
import json
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lambdaship.errors import LambdashipError
from lambdaship.oci.client import RegistryClient
from lambdaship.oci.manifest import ImageConfig, ImageIndex, ImageManifest, read_config, read_manifest
from tests.hostile.registry_server import HostileServer, Request

DIGEST = "sha256:" + "a" * 64
MEDIA = st.sampled_from([
    "", "application/vnd.oci.image.manifest.v1+json", "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
    "application/vnd.docker.distribution.manifest.list.v2+json", "text/html",
])
scalars = st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=True) | st.text(max_size=20)
json_values = st.recursive(scalars, lambda kids: st.lists(kids, max_size=4) | st.dictionaries(
    st.text(max_size=10), kids, max_size=4), max_leaves=30)


def descriptor() -> st.SearchStrategy:
    return st.fixed_dictionaries({}, optional={
        "mediaType": MEDIA | json_values, "digest": st.just(DIGEST) | json_values,
        "size": st.integers(-5, 2**64) | json_values,
        "platform": json_values | st.fixed_dictionaries({}, optional={
            "os": st.just("linux") | json_values, "architecture": st.just("amd64") | json_values}),
    })


near_manifests = st.fixed_dictionaries({}, optional={
    "schemaVersion": st.just(2) | json_values, "mediaType": MEDIA | json_values,
    "config": descriptor() | json_values, "layers": st.lists(descriptor() | json_values, max_size=4) | json_values,
    "manifests": st.lists(descriptor() | json_values, max_size=4) | json_values,
})
near_configs = st.fixed_dictionaries({}, optional={
    "os": st.just("linux") | json_values, "architecture": st.just("arm64") | json_values,
    "rootfs": st.fixed_dictionaries({}, optional={
        "diff_ids": st.lists(st.just(DIGEST) | json_values, max_size=3) | json_values}) | json_values,
    "config": st.dictionaries(st.text(max_size=5), json_values, max_size=3) | json_values,
})


def encoded(docs: st.SearchStrategy) -> st.SearchStrategy[bytes]:
    return docs.map(lambda d: json.dumps(d, allow_nan=True).encode())


inputs = st.binary(max_size=300) | encoded(json_values) | encoded(near_manifests) | encoded(near_configs) | \
    st.binary(max_size=50).map(lambda b: b'{"schemaVersion": 2, "layers": [' + b + b"]}")


@settings(max_examples=400, deadline=None)
@given(data=inputs, media_type=MEDIA)
def test_read_manifest_raises_only_lambdaship_errors(data: bytes, media_type: str) -> None:
    try:
        out = read_manifest(data, media_type)
    except LambdashipError as exc:
        assert "\n" not in exc.one_line()
        return
    assert isinstance(out, ImageManifest | ImageIndex)
    refs = [out.config, *out.layers] if isinstance(out, ImageManifest) else list(out.manifests)
    assert all(r.digest == DIGEST and isinstance(r.size, int) and r.size >= 0 for r in refs)


@settings(max_examples=400, deadline=None)
@given(data=inputs)
def test_read_config_raises_only_lambdaship_errors(data: bytes) -> None:
    try:
        out = read_config(data)
    except LambdashipError:
        return
    assert isinstance(out, ImageConfig) and all(d == DIGEST for d in out.diff_ids)


def test_readers_accept_real_documents() -> None:
    m = read_manifest(json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": DIGEST, "size": 10},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": DIGEST, "size": 5}],
    }).encode())
    assert isinstance(m, ImageManifest) and m.config.size == 10 and [x.size for x in m.layers] == [5]
    i = read_manifest(json.dumps({"schemaVersion": 2, "manifests": [
        {"digest": DIGEST, "size": 3, "platform": {"os": "linux", "architecture": "arm64"}}]}).encode())
    assert isinstance(i, ImageIndex) and i.for_platform("linux", "arm64") is not None
    c = read_config(b'{"os":"linux","architecture":"amd64","rootfs":{"type":"layers","diff_ids":["' +
                    DIGEST.encode() + b'"]}}')
    assert c.architecture == "amd64" and c.diff_ids == (DIGEST,) and c.config == {}


# -- the client, against a server answering random things ----------------------------------------
ANSWER: dict = {}


def random_app(req: Request) -> None:
    a = ANSWER
    headers = {k: v for k, v in a["headers"].items()}
    if a["stream"]:
        req.stream(a["status"], [a["body"]], headers)
    else:
        req.send(a["status"], a["body"], headers)


header_values = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=30)
answers = st.fixed_dictionaries({
    "status": st.sampled_from([200, 201, 204, 206, 301, 307, 400, 401, 403, 404, 416, 429, 500, 503]),
    "body": inputs,
    "stream": st.booleans(),
    "headers": st.fixed_dictionaries({}, optional={
        "Content-Type": MEDIA | header_values, "Docker-Content-Digest": st.just(DIGEST) | header_values,
        "WWW-Authenticate": st.sampled_from(['Basic realm="x"', 'Bearer realm="http://127.0.0.1:1/t"',
                                             'Bearer realm="ftp://x"', "Bearer", "Negotiate"]) | header_values,
        "Retry-After": st.sampled_from(["0", "-1", "soon", "Wed, 21 Oct 2015 07:28:00 GMT"]),
        "Location": st.sampled_from(["/v2/r/blobs/x", "http://127.0.0.1:1/x", "::"]) | header_values,
        "Range": st.sampled_from(["0-10", "bytes=0-0", "x"]),
    }),
})


@pytest.fixture(scope="module")
def random_server():
    old = {k: os.environ.get(k) for k in ("LAMBDASHIP_RETRY_ATTEMPTS", "LAMBDASHIP_RETRY_WAIT")}
    os.environ.update({"LAMBDASHIP_RETRY_ATTEMPTS": "1", "LAMBDASHIP_RETRY_WAIT": "0"})
    with HostileServer(random_app) as s:
        yield s
    for k, v in old.items():
        os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(answer=answers, call=st.sampled_from(["manifest", "manifest-by-digest", "config", "tags", "head", "exists"]))
def test_client_readers_raise_only_lambdaship_errors(random_server, answer: dict, call: str) -> None:
    ANSWER.clear()
    ANSWER.update(answer)
    client = RegistryClient(random_server.host, timeout=5)
    body = answer["body"]
    try:
        if call == "manifest":
            read_manifest(*client.get_manifest("r", "latest")[:2])
        elif call == "manifest-by-digest":
            client.get_manifest("r", "sha256:" + hashlib.sha256(body).hexdigest())
        elif call == "config":
            read_config(client.get_blob("r", "sha256:" + hashlib.sha256(body).hexdigest(), len(body)))
        elif call == "tags":
            assert all(isinstance(t, str) for t in client.list_tags("r"))
        elif call == "head":
            client.head_manifest("r", "latest")
        else:
            client.blob_exists("r", DIGEST)
    except LambdashipError as exc:
        assert "\n" not in exc.one_line()
    finally:
        client.close()
