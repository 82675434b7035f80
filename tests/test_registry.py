"""The registry client against the real distribution registry of the local stack."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile
import uuid
from pathlib import Path

import httpx
import pytest

from lambdaship.image.model import DOCKER_MANIFEST, OCI_CONFIG, OCI_LAYER_GZIP, OCI_MANIFEST, sha256_digest
from lambdaship.oci.auth import Credentials
from lambdaship.oci.client import RegistryClient
from lambdaship.oci.reference import Reference, base_url
from lambdaship.oci.transport import RegistryError
from lambdaship.registries import registry_client


def _digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def make_layer(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 0
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(buf.getvalue(), mtime=0)


def raw_push(registry_url: str, repo: str, tag: str, blobs: list[bytes]) -> tuple[bytes, str]:
    """Push blobs + an OCI manifest with plain httpx (independent of the client under test)."""
    config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}}).encode()
    with httpx.Client(base_url=registry_url) as http:
        for blob in [config, *blobs]:
            r = http.post(f"/v2/{repo}/blobs/uploads/")
            assert r.status_code == 202
            loc = r.headers["Location"]
            r = http.put(f"{loc}{'&' if '?' in loc else '?'}digest={_digest(blob)}", content=blob)
            assert r.status_code == 201, r.text
        manifest = json.dumps({
            "schemaVersion": 2, "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": _digest(config), "size": len(config)},
            "layers": [{"mediaType": OCI_LAYER_GZIP, "digest": _digest(b), "size": len(b)} for b in blobs],
        }).encode()
        r = http.put(f"/v2/{repo}/manifests/{tag}", content=manifest, headers={"Content-Type": OCI_MANIFEST})
        assert r.status_code == 201, r.text
    return manifest, _digest(manifest)


@pytest.mark.parametrize(
    ("text", "registry", "repository", "tag", "digest"),
    [
        ("public.ecr.aws/lambda/python:3.12", "public.ecr.aws", "lambda/python", "3.12", None),
        ("127.0.0.1:5000/base@sha256:" + "a" * 64, "127.0.0.1:5000", "base", None, "sha256:" + "a" * 64),
        ("http://127.0.0.1:5000/repo:tag", "http://127.0.0.1:5000", "repo", "tag", None),
        ("python:3.12", "docker.io", "library/python", "3.12", None),
        ("python", "docker.io", "library/python", "latest", None),
        ("ghcr.io/org/app", "ghcr.io", "org/app", "latest", None),
        ("localhost/app:v1@sha256:" + "b" * 64, "localhost", "app", "v1", "sha256:" + "b" * 64),
        ("123456789012.dkr.ecr.us-east-1.amazonaws.com/fn:abc", "123456789012.dkr.ecr.us-east-1.amazonaws.com",
         "fn", "abc", None),
    ],
)
def test_reference_parse(text: str, registry: str, repository: str, tag: str | None, digest: str | None) -> None:
    ref = Reference.parse(text)
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == (registry, repository, tag, digest)
    assert Reference.parse(str(ref)) == ref


@pytest.mark.parametrize("bad", ["", "UPPER/case:1", "repo@sha256:short", "host:5000/repo:bad tag", "a//b"])
def test_reference_parse_rejects(bad: str) -> None:
    with pytest.raises(RegistryError.__mro__[1]):
        Reference.parse(bad)


def test_base_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LAMBDASHIP_REGISTRY_URL", raising=False)
    assert base_url("127.0.0.1:5000") == "http://127.0.0.1:5000"
    assert base_url("localhost:5000") == "http://localhost:5000"
    assert base_url("ghcr.io") == "https://ghcr.io"
    assert base_url("docker.io") == "https://registry-1.docker.io"
    ecr = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
    assert base_url(ecr) == f"https://{ecr}"
    monkeypatch.setenv("LAMBDASHIP_REGISTRY_URL", "http://127.0.0.1:9999/")
    assert base_url(ecr) == "http://127.0.0.1:9999"
    assert base_url("ghcr.io") == "https://ghcr.io"  # only ECR hosts are replaced


def test_read_side(local_stack, tmp_path: Path) -> None:
    repo = f"read-{uuid.uuid4().hex[:8]}"
    layer = make_layer({"hello.txt": b"hello\n" * 1000})
    manifest, mdigest = raw_push(local_stack.registry.url, repo, "v1", [layer])
    client = RegistryClient.for_registry(local_stack.registry.url)

    data, media_type, digest = client.get_manifest(repo, "v1")
    assert (data, media_type, digest) == (manifest, OCI_MANIFEST, mdigest)
    assert client.get_manifest(repo, mdigest)[2] == mdigest
    assert client.head_manifest(repo, "v1") == mdigest
    assert client.head_manifest(repo, "nope") is None
    ldigest = _digest(layer)
    assert client.blob_exists(repo, ldigest)
    assert not client.blob_exists(repo, sha256_digest(b"missing"))
    assert client.get_blob(repo, ldigest) == layer
    with client.stream_blob(repo, ldigest, size=len(layer)) as it:
        assert b"".join(it) == layer
    out = client.download_blob(repo, ldigest, tmp_path / "blob")
    assert out.read_bytes() == layer
    with pytest.raises(RegistryError, match="not found"):
        client.get_manifest(repo, "missing-tag")
    with pytest.raises(RegistryError) as exc:
        client.get_blob(repo, sha256_digest(b"missing"))
    assert exc.value.status == 404


def test_ecr_host_maps_to_local_registry(local_stack) -> None:
    """An ECR reference reaches LAMBDASHIP_REGISTRY_URL (with ECR basic credentials from moto)."""
    repo = f"ecrmap-{uuid.uuid4().hex[:8]}"
    _, mdigest = raw_push(local_stack.registry.url, repo, "v1", [make_layer({"a": b"a"})])
    ref = Reference.parse(f"123456789012.dkr.ecr.{local_stack.region}.amazonaws.com/{repo}:v1")
    client = RegistryClient.for_registry(ref.registry)
    assert client.url == local_stack.registry.url
    assert client.head_manifest(ref.repository, ref.ref) == mdigest


def test_docker_manifest_media_type(local_stack) -> None:
    repo = f"dm-{uuid.uuid4().hex[:8]}"
    client = RegistryClient.for_registry(local_stack.registry.url)
    raw_push(local_stack.registry.url, repo, "v1", [])
    m = json.loads(client.get_manifest(repo, "v1")[0])
    m["mediaType"] = DOCKER_MANIFEST
    m["config"]["mediaType"] = "application/vnd.docker.container.image.v1+json"
    data = json.dumps(m).encode()
    assert client.put_manifest(repo, "v2", data, DOCKER_MANIFEST) == _digest(data)
    assert client.get_manifest(repo, "v2")[1] == DOCKER_MANIFEST


def _fresh_client(url: str, *, chunk: int = 64 * 1024, mono: int = 100 * 1024) -> RegistryClient:
    client = RegistryClient(url)
    client.chunk_size, client.monolithic_max = chunk, mono
    return client


def test_upload_monolithic_and_chunked(local_stack, tmp_path: Path) -> None:
    import contextlib
    import os

    repo = f"up-{uuid.uuid4().hex[:8]}"
    client = _fresh_client(local_stack.registry.url)
    small = os.urandom(50_000)
    big = os.urandom(300_000)  # 5 chunks of 64 KiB
    path = tmp_path / "big"
    path.write_bytes(big)
    seen: list[int] = []
    client.upload_blob(repo, _digest(small), len(small), small, progress=seen.append)
    assert sum(seen) == len(small)
    seen.clear()
    client.upload_blob(repo, _digest(big), len(big), path, progress=seen.append)
    assert sum(seen) == len(big) and len(seen) >= 5  # chunked: one report per PATCH
    big2 = os.urandom(200_000)
    client.upload_blob(repo, _digest(big2), len(big2), (big2[i:i + 7000] for i in range(0, len(big2), 7000)))

    @contextlib.contextmanager
    def opener():
        yield iter([big2[:1000], big2[1000:]])

    repo2 = f"up2-{uuid.uuid4().hex[:8]}"
    client.upload_blob(repo2, _digest(big2), len(big2), opener)
    for r, blob in ((repo, small), (repo, big), (repo, big2), (repo2, big2)):
        assert client.get_blob(r, _digest(blob)) == blob


def test_upload_wrong_digest_is_refused(local_stack) -> None:
    repo = f"bad-{uuid.uuid4().hex[:8]}"
    client = _fresh_client(local_stack.registry.url)
    data = b"x" * 1000
    wrong = sha256_digest(b"something else")
    with pytest.raises(RegistryError, match="does not match"):
        client.upload_blob(repo, wrong, len(data), data)
    big = b"y" * 200_000
    with pytest.raises(RegistryError, match="does not match"):
        client.upload_blob(repo, wrong, len(big), big)
    with pytest.raises(RegistryError, match="gave 200000 bytes, expected 300000"):
        client.upload_blob(repo, wrong, 300_000, big)
    assert not client.blob_exists(repo, wrong)


def test_mount_and_manifests(local_stack) -> None:
    src = f"src-{uuid.uuid4().hex[:8]}"
    dst = f"dst-{uuid.uuid4().hex[:8]}"
    layer = make_layer({"base.txt": b"base"})
    manifest, mdigest = raw_push(local_stack.registry.url, src, "v1", [layer])
    client = _fresh_client(local_stack.registry.url)
    assert not client.blob_exists(dst, _digest(layer))
    assert client.mount_blob(dst, _digest(layer), src) is True
    assert client.blob_exists(dst, _digest(layer))
    assert client.mount_blob(dst, sha256_digest(b"unknown blob"), src) is False
    config_digest = json.loads(manifest)["config"]["digest"]
    assert client.mount_blob(dst, config_digest, src)
    assert client.put_manifest(dst, "t1", manifest, OCI_MANIFEST) == mdigest
    assert client.head_manifest(dst, "t1") == mdigest
    assert "t1" in client.list_tags(dst)
    with pytest.raises(ValueError):
        client.put_manifest(dst, sha256_digest(b"other"), manifest, OCI_MANIFEST)
    client.delete_manifest(dst, mdigest)
    assert client.head_manifest(dst, mdigest) is None
    assert client.head_manifest(dst, "t1") is None


def test_manifest_naming_missing_blob_is_refused(local_stack) -> None:
    repo = f"mb-{uuid.uuid4().hex[:8]}"
    manifest, _ = raw_push(local_stack.registry.url, f"other-{uuid.uuid4().hex[:8]}", "v1", [make_layer({"z": b"z"})])
    client = _fresh_client(local_stack.registry.url)
    with pytest.raises(RegistryError, match="MANIFEST_BLOB_UNKNOWN") as exc:
        client.put_manifest(repo, "v1", manifest, OCI_MANIFEST)
    assert exc.value.status == 400
    assert client.head_manifest(repo, "v1") is None


# ---------------------------------------------------------------------------------------------
# Auth against real registries configured with htpasswd (basic) and token (bearer) auth
# ---------------------------------------------------------------------------------------------
def _bcrypt(password: str) -> str:
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt

    return crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH))


def test_basic_auth_with_ecr_credentials(local_stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A registry demanding basic auth gets AWS:<token> from GetAuthorizationToken (moto)."""
    from lambdaship.local import stack

    password = f"{stack.ACCOUNT_ID}-auth-token"  # what moto's GetAuthorizationToken hands out
    htpasswd = tmp_path / "htpasswd"
    htpasswd.write_text(f"AWS:{_bcrypt(password)}\n")
    url, proc = stack.start_registry(
        tmp_path / "reg", extra_config=f"auth:\n  htpasswd:\n    realm: test\n    path: {htpasswd}\n")
    try:
        anonymous = RegistryClient(url)
        with pytest.raises(RegistryError) as exc:
            anonymous.blob_exists("x", sha256_digest(b"x"))
        assert exc.value.status == 401 and "credentials" in exc.value.one_line()

        # Refused (e.g. expired) credentials are fetched again once.
        calls = {"n": 0}

        class Rotating:  # a keychain whose first answer has expired
            def resolve(self, host: str) -> Credentials:
                calls["n"] += 1
                return Credentials("AWS", "expired-token" if calls["n"] == 1 else password)

        rotated = RegistryClient(url, keychain=Rotating())
        assert rotated.blob_exists("x", sha256_digest(b"x")) is False and calls["n"] == 2

        monkeypatch.setenv("LAMBDASHIP_REGISTRY_URL", url)
        RegistryClient.clear_cache()
        ecr_host = f"{stack.ACCOUNT_ID}.dkr.ecr.{local_stack.region}.amazonaws.com"
        client = registry_client(ecr_host)  # the default keychain: ECR's GetAuthorizationToken
        repo = f"basic-{uuid.uuid4().hex[:8]}"
        data = b"basic auth blob" * 100
        client.upload_blob(repo, _digest(data), len(data), data)
        assert client.get_blob(repo, _digest(data)) == data
    finally:
        RegistryClient.clear_cache()
        stack.stop_registry(proc)


class _TokenServer:
    """A minimal Docker token service: issues RS256 JWTs (x5c) for the requested scopes."""

    def __init__(self, workdir: Path, users: dict[str, str]) -> None:
        import datetime
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import rsa
        from cryptography.x509.oid import NameOID

        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "lambdaship test token issuer")])
        now = datetime.datetime.now(datetime.UTC)
        self.cert = (
            x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self.key, hashes.SHA256())
        )
        self.bundle = workdir / "token-ca.pem"
        self.bundle.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))
        self.requests: list[dict] = []
        self.users = users
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                import base64
                import urllib.parse

                q = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
                auth = self.headers.get("Authorization", "")
                user = None
                if auth.startswith("Basic "):
                    u, _, p = base64.b64decode(auth[6:]).decode().partition(":")
                    if server.users.get(u) != p:
                        self.send_response(401)
                        self.end_headers()
                        return
                    user = u
                scopes = q.get("scope", [])
                server.requests.append({"user": user, "scopes": scopes, "service": q.get("service", [None])[0]})
                access = []
                for s in scopes:
                    kind, name, actions = s.split(":")
                    allowed = actions.split(",") if user else [a for a in actions.split(",") if a == "pull"]
                    access.append({"type": kind, "name": name, "actions": allowed})
                body = json.dumps({"token": server.sign(access, user or ""), "expires_in": 300}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/token"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def sign(self, access: list[dict], subject: str) -> str:
        import base64
        import time as _time

        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import padding

        def b64(data: bytes) -> str:
            return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

        der = self.cert.public_bytes(serialization.Encoding.DER)
        header = {"typ": "JWT", "alg": "RS256", "x5c": [base64.b64encode(der).decode()]}
        now = int(_time.time())
        claims = {"iss": "lambdaship-test", "sub": subject, "aud": "test-registry", "exp": now + 300,
                  "nbf": now - 10, "iat": now, "jti": uuid.uuid4().hex, "access": access}
        signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
        sig = self.key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{b64(sig)}"

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def test_bearer_token_challenge_flow(local_stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from lambdaship.local import stack

    tokens = _TokenServer(tmp_path, {"ci": "s3cret"})
    url, proc = stack.start_registry(tmp_path / "reg", extra_config=(
        "auth:\n  token:\n"
        f"    realm: {tokens.url}\n    service: test-registry\n    issuer: lambdaship-test\n"
        f"    rootcertbundle: {tokens.bundle}\n"
    ))
    try:
        import base64

        host = url.removeprefix("http://")
        docker_config = tmp_path / "docker"
        docker_config.mkdir()
        (docker_config / "config.json").write_text(json.dumps(
            {"auths": {host: {"auth": base64.b64encode(b"ci:s3cret").decode()}}}))
        monkeypatch.setenv("DOCKER_CONFIG", str(docker_config))
        RegistryClient.clear_cache()
        client = RegistryClient.for_registry(host)
        src, dst = f"src-{uuid.uuid4().hex[:6]}", f"dst-{uuid.uuid4().hex[:6]}"
        big = os.urandom(200_000)
        client.chunk_size, client.monolithic_max = 64 * 1024, 64 * 1024
        client.upload_blob(src, _digest(big), len(big), big)  # chunked: PATCHes reuse the push token
        assert client.mount_blob(dst, _digest(big), src)
        assert client.get_blob(dst, _digest(big)) == big
        scopes = [s for r in tokens.requests for s in r["scopes"]]
        assert f"repository:{src}:pull,push" in scopes
        assert f"repository:{src}:pull" in scopes  # the mount asked to read the source repository
        assert all(r["user"] == "ci" and r["service"] == "test-registry" for r in tokens.requests)
        assert all(len(s.split(":")) == 3 for s in scopes)  # the challenge's space-separated scopes split

        # Anonymous: pull-only tokens; pushing fails with one clear error.
        monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "nowhere"))
        anon = RegistryClient(host)
        assert anon.get_blob(dst, _digest(big)) == big
        with pytest.raises(RegistryError) as exc:
            anon.upload_blob(dst, _digest(b"nope"), 4, b"nope")
        assert exc.value.status == 401
    finally:
        RegistryClient.clear_cache()
        stack.stop_registry(proc)
        tokens.stop()


def test_download_cut_mid_body_resumes_with_range(local_stack, tmp_path: Path) -> None:
    from tests.faultproxy import FaultProxy

    repo = f"range-{uuid.uuid4().hex[:8]}"
    data = os.urandom(3 * 1024 * 1024)
    RegistryClient(local_stack.registry.url).upload_blob(repo, _digest(data), len(data), data)
    gets = {"n": 0}

    def rule(method: str, path: str, n: int) -> str | None:
        if method == "GET" and "/blobs/sha256:" in path:
            gets["n"] += 1
            return "cut" if gets["n"] == 1 else "pass"
        return "pass"

    with FaultProxy(local_stack.registry.url, rule=rule) as proxy:
        client = RegistryClient(proxy.url)
        out = client.download_blob(repo, _digest(data), tmp_path / "blob")
        statuses = [r.status for r in proxy.log if r.method == "GET"]
    assert out.read_bytes() == data
    assert proxy.counts["cut"] == 1 and statuses == [200, 206]  # the second GET asked for the rest only


def test_credentials_from_auth_files_and_helpers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import base64
    import stat

    from lambdaship.oci.auth import docker_config_credentials

    monkeypatch.delenv("REGISTRY_AUTH_FILE", raising=False)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "run"))
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker"))
    (tmp_path / "docker").mkdir()
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    helper = bin_dir / "docker-credential-testhelper"
    # The credential-helper protocol: server URL on stdin, JSON on stdout.
    helper.write_text('#!/bin/sh\nread server\nprintf \'{"ServerURL":"%s","Username":"u-%s","Secret":"s3"}\' '
                      '"$server" "$server"\n')
    helper.chmod(helper.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    (tmp_path / "docker" / "config.json").write_text(json.dumps({
        "auths": {"https://index.docker.io/v1/": {"auth": base64.b64encode(b"hub:pw").decode()}},
        "credHelpers": {"ghcr.io": "testhelper"},
        "credsStore": "testhelper",
    }))
    assert docker_config_credentials("docker.io") == Credentials("hub", "pw")
    assert docker_config_credentials("ghcr.io") == Credentials("u-ghcr.io", "s3")
    assert docker_config_credentials("quay.io") == Credentials("u-quay.io", "s3")  # credsStore
    (tmp_path / "run" / "containers").mkdir(parents=True)
    (tmp_path / "run" / "containers" / "auth.json").write_text(json.dumps(
        {"auths": {"quay.io": {"auth": base64.b64encode(b"podman:pw2").decode()}}}))
    assert docker_config_credentials("quay.io") == Credentials("podman", "pw2")  # skopeo/podman login wins


def test_timeouts_are_retried(local_stack, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.faultproxy import FaultProxy

    monkeypatch.setenv("LAMBDASHIP_RETRY_WAIT", "0.01")
    n_head = {"n": 0}

    def rule(method: str, path: str, n: int) -> str | None:
        if method == "HEAD":
            n_head["n"] += 1
            return "slow" if n_head["n"] == 1 else "pass"
        return "pass"

    with FaultProxy(local_stack.registry.url, rule=rule, slow_seconds=1.0) as proxy:
        client = RegistryClient(proxy.url, timeout=0.3)
        assert client.blob_exists("timeouts", sha256_digest(b"none")) is False
        assert n_head["n"] == 2  # the slow answer timed out, then the HEAD was retried
