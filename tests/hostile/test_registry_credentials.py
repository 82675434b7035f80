"""#19.1: registry credentials stay with their registry (hostile servers on 127.0.0.1).

A blob GET that registry A redirects to host B, where B asks for a token from its own realm,
must not carry A's credentials — docker-config passwords, A's bearer token, the ECR token —
to B or B's realm. The realm policy itself is checked as a table.
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import pytest

from lambdaship.oci.auth import Credentials, StaticKeychain, may_carry_credentials, realm_allowed
from lambdaship.oci.client import RegistryClient
from lambdaship.oci.transport import RegistryError
from tests.hostile.registry_server import HostileServer, Request

SECRET = "A-SECRET-canary-7f3e"
A_TOKEN = "A-TOKEN-canary-91bd"
BLOB = b"layer bytes" * 10
DIGEST = "sha256:" + hashlib.sha256(BLOB).hexdigest()


@pytest.fixture(autouse=True)
def _fast(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LAMBDASHIP_RETRY_ATTEMPTS", "2")
    monkeypatch.setenv("LAMBDASHIP_RETRY_WAIT", "0.01")
    RegistryClient.clear_cache()


def other_host(token_realm: bool = True):
    """B: challenges everything with a bearer realm of its own, hands out tokens to whoever asks."""
    def app(req: Request) -> None:
        if req.path == "/token":
            req.send(200, json.dumps({"token": "B-TOKEN"}).encode(), {"Content-Type": "application/json"})
            return
        realm = f'Bearer realm="http://{req.headers["host"]}/token",service="b",scope="repository:r:pull"'
        req.send(401, b'{"errors":[{"code":"UNAUTHORIZED"}]}', {"WWW-Authenticate": realm})
    return app


def leaked(server: HostileServer, *secrets: str) -> list[str]:
    text = server.everything_sent()
    return [s for s in secrets if s in text]


def basic(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode()


def basic_registry(b: HostileServer, user: str, password: str):
    """A: Basic auth; blob GETs redirect to B (as registries redirect to a CDN)."""
    def app(req: Request) -> None:
        if req.headers.get("authorization") != "Basic " + basic(user, password):
            req.send(401, b"", {"WWW-Authenticate": 'Basic realm="a"'})
        elif "/blobs/" in req.path:
            req.send(307, b"", {"Location": f"{b.url}/cdn{req.path}"})
        else:
            req.send(404)
    return app


def test_basic_credentials_never_reach_the_redirect_target_or_its_realm() -> None:
    with HostileServer(other_host()) as b, HostileServer(basic_registry(b, "alice", SECRET)) as a:
        client = RegistryClient(a.host, keychain=StaticKeychain({a.host: Credentials("alice", SECRET)}))
        with pytest.raises(RegistryError) as exc:
            client.get_blob("r", DIGEST, len(BLOB))
        assert exc.value.status == 401 and "\n" not in exc.value.one_line()
        assert any(r.headers.get("authorization") == "Basic " + basic("alice", SECRET) for r in a.seen)
        assert any(r.path.startswith("/cdn/") for r in b.seen)  # the redirect was followed
    assert leaked(b, SECRET, basic("alice", SECRET)) == []
    assert not any(r.path == "/token" for r in b.seen)  # B's realm is not even asked


def test_bearer_token_and_docker_config_password_stay_with_their_registry(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def bearer_registry(b: HostileServer):
        def app(req: Request) -> None:
            if req.path == "/token":  # the registry's own realm: gets the password (same host)
                ok = req.headers.get("authorization") == "Basic " + basic("bob", SECRET)
                req.send(200 if ok else 401, json.dumps({"token": A_TOKEN}).encode() if ok else b"")
            elif req.headers.get("authorization") != f"Bearer {A_TOKEN}":
                realm = f'Bearer realm="{a.url}/token",service="a"'
                req.send(401, b"", {"WWW-Authenticate": realm})
            else:
                req.send(307, b"", {"Location": f"{b.url}/cdn{req.path}"})
        return app

    with HostileServer(other_host()) as b:
        a = HostileServer(lambda req: None)
        a.app = bearer_registry(b)
        with a:
            docker = tmp_path / "docker"
            docker.mkdir()
            (docker / "config.json").write_text(json.dumps({"auths": {a.host: {"auth": basic("bob", SECRET)}}}))
            monkeypatch.setenv("DOCKER_CONFIG", str(docker))
            monkeypatch.delenv("REGISTRY_AUTH_FILE", raising=False)
            monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
            with pytest.raises(RegistryError):
                RegistryClient(a.host).get_blob("r", DIGEST, len(BLOB))
            assert any(r.path == "/token" and r.headers.get("authorization") for r in a.seen)
            assert any(r.headers.get("authorization") == f"Bearer {A_TOKEN}" for r in a.seen)
    assert any(r.path.startswith("/cdn/") for r in b.seen)
    assert leaked(b, SECRET, basic("bob", SECRET), A_TOKEN) == []


def test_ecr_token_never_reaches_the_redirect_target(local_stack, monkeypatch: pytest.MonkeyPatch) -> None:
    """The ECR keychain (GetAuthorizationToken on moto) for an ECR host served by a hostile A."""
    from lambdaship.aws import ecr
    from lambdaship.local import stack
    from lambdaship.registries import registry_client

    ecr_host = f"{stack.ACCOUNT_ID}.dkr.ecr.{local_stack.region}.amazonaws.com"
    user, token = ecr.registry_credentials(ecr_host)
    with HostileServer(other_host()) as b, HostileServer(basic_registry(b, user, token)) as a:
        monkeypatch.setenv("LAMBDASHIP_REGISTRY_URL", a.url)
        with pytest.raises(RegistryError):
            registry_client(ecr_host).get_blob("r", DIGEST, len(BLOB))
        assert any(r.headers.get("authorization") == "Basic " + basic(user, token) for r in a.seen)
    assert any(r.path.startswith("/cdn/") for r in b.seen)
    assert leaked(b, token, basic(user, token)) == []
    RegistryClient.clear_cache()


def test_a_redirect_to_a_server_that_serves_the_blob_works_without_credentials() -> None:
    """The ordinary CDN case still works: B gets no Authorization and serves the blob."""
    def cdn(req: Request) -> None:
        req.send(200, BLOB)

    with HostileServer(cdn) as b, HostileServer(basic_registry(b, "alice", SECRET)) as a:
        client = RegistryClient(a.host, keychain=StaticKeychain({a.host: Credentials("alice", SECRET)}))
        assert client.get_blob("r", DIGEST, len(BLOB)) == BLOB
    assert [r.headers.get("authorization") for r in b.seen] == [None]


@pytest.mark.parametrize(("registry", "realm", "allowed"), [
    ("https://reg.example", "https://reg.example/token", True),       # same host
    ("https://reg.example", "https://auth.example/token", True),      # announced over HTTPS
    ("https://reg.example", "http://auth.example/token", False),      # clear text over a network
    ("https://reg.example", "http://reg.example/token", False),       # ... even the same host
    ("http://127.0.0.1:5000", "http://127.0.0.1:5001/token", True),   # the local stack
    ("http://localhost:5000", "http://127.0.0.1:5001/token", True),
    ("http://127.0.0.1:5000", "http://evil.example/token", False),    # plain HTTP, not loopback
    ("http://127.0.0.1:5000", "https://evil.example/token", False),   # announced over plain HTTP
    ("http://reg.example", "https://auth.example/token", False),
    ("https://reg.example", "ftp://reg.example/token", False),
    ("https://reg.example", "/token", False),
])
def test_realm_policy(registry: str, realm: str, allowed: bool) -> None:
    assert realm_allowed(registry, realm) is allowed


@pytest.mark.parametrize(("registry", "url", "allowed"), [
    ("https://reg.example", "https://reg.example/v2/r/blobs/x", True),
    ("https://reg.example", "https://reg.example:443/v2/", True),
    ("https://reg.example", "https://cdn.example/blob", False),
    ("https://reg.example", "http://reg.example/v2/", False),
    ("https://reg.example", "https://reg.example:8443/v2/", False),
    ("http://127.0.0.1:5000", "http://127.0.0.1:5000/v2/", True),
    ("http://127.0.0.1:5000", "http://127.0.0.1:5001/v2/", False),
    ("http://reg.example", "http://reg.example/v2/", False),  # never in clear text over a network
])
def test_credentials_only_for_the_registry_origin(registry: str, url: str, allowed: bool) -> None:
    assert may_carry_credentials(registry, url) is allowed


def test_credentials_repr_hides_the_password() -> None:
    assert SECRET not in repr(Credentials("alice", SECRET))
