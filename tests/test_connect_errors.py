"""An unreachable registry: one line naming it and a hint, after a few quick retries that ``-v``
shows (issue #20, item 3). Timings are in ``bench/unreachable.py``, not here."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import run_cli
from tests.faultproxy import blackholed, closed_port


def _project(tmp_path: Path, base: str) -> Path:
    app = tmp_path / "app"
    app.mkdir()
    (app / "handler.py").write_text("def handler(event, context):\n    return 1\n")
    (app / "lambdaship.toml").write_text(
        f'function_name = "unreachable"\nhandler = "handler.handler"\npython = "3.12"\nbase_image = "{base}"\n')
    return app


@pytest.fixture
def blackholed_port() -> Iterator[int]:
    with blackholed() as port:
        yield port


def _retries(stderr: str) -> list[str]:
    return [ln for ln in stderr.splitlines() if "stamina.retry_scheduled" in ln]


def test_push_to_a_closed_port_is_one_line_naming_the_registry(local_stack, base_image_ref, tmp_path):
    app = _project(tmp_path, base_image_ref)
    registry = f"127.0.0.1:{closed_port()}"
    r = run_cli("push", "-C", str(app), "--to", f"{registry}/x", timeout=120)
    assert r.returncode == 1, r.stderr
    # the build's stage lines (CI output), then one error line, last
    *stages, last = r.stderr.strip().splitlines()
    assert all(re.match(r"^[a-z]+ +\d+\.\d s  ", ln) for ln in stages), r.stderr
    assert last.startswith("error: registry ") and registry in last
    assert "Connection refused" in last and "check the network and the registry address" in last
    assert "Traceback" not in r.stderr and "stamina" not in r.stderr


def test_connection_retries_are_few_and_visible_under_verbose(local_stack, base_image_ref, tmp_path):
    app = _project(tmp_path, base_image_ref)
    registry = f"127.0.0.1:{closed_port()}"
    r = run_cli("-v", "push", "-C", str(app), "--to", f"{registry}/x", timeout=120)
    assert r.returncode == 1
    retries = _retries(r.stderr)
    assert retries, r.stderr
    assert all("after ConnectError" in ln for ln in retries), retries
    numbers = {int(m.group(1)) for ln in retries if (m := re.search(r" #(\d+) in ", ln))}
    assert numbers == {1, 2}, retries  # at most 2 retries per request, whatever LAMBDASHIP_RETRY_ATTEMPTS says
    assert r.stderr.strip().splitlines()[-1].startswith("error: registry ")


def test_blackholed_registry_fails_after_the_connect_timeout(local_stack, base_image_ref, tmp_path, blackholed_port):
    app = _project(tmp_path, base_image_ref)
    registry = f"127.0.0.1:{blackholed_port}"
    env = {"LAMBDASHIP_CONNECT_TIMEOUT": "1"}
    r = run_cli("-v", "push", "-C", str(app), "--to", f"{registry}/x", env=env, timeout=120)
    assert r.returncode == 1
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("error: registry ") and registry in last and "ConnectTimeout" in last, r.stderr
    assert "check the network" in last
    retries = _retries(r.stderr)
    assert retries and all(" #1 in " in ln and "ConnectTimeout" in ln for ln in retries), retries


def test_a_certificate_that_does_not_verify_is_not_retried(tmp_path):
    """Hostile-ish input, no stack needed: a TLS server with a self-signed certificate."""
    import ssl
    import subprocess
    import threading

    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "1", "-subj", "/CN=localhost"], check=True, capture_output=True)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    port = server.getsockname()[1]
    accepted = []

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            accepted.append(conn)
            try:
                ctx.wrap_socket(conn, server_side=True).close()
            except (ssl.SSLError, OSError):
                conn.close()

    threading.Thread(target=serve, daemon=True).start()
    try:
        from lambdaship.errors import LambdashipError
        from lambdaship.oci.client import RegistryClient

        with RegistryClient(f"https://127.0.0.1:{port}") as client, pytest.raises(LambdashipError) as err:
            client.get_manifest("x", "latest")
        assert "CERTIFICATE_VERIFY_FAILED" in err.value.message
        assert "SSL_CERT_FILE" in (err.value.hint or "")
        assert len(accepted) == 1  # one handshake: no retry
    finally:
        server.close()


def test_a_base_that_fails_stops_the_dependency_install(local_stack, base_image_ref, tmp_path):
    """The base is resolved while the dependencies install: its error ends the install at once
    (no bytecode, no dependency cache entry) instead of after the install and the bytecode."""
    registry = base_image_ref.split("/", 1)[0]
    app = _project(tmp_path, f"{registry}/no-such/base:3.12")
    (app / "requirements.txt").write_text("six==1.17.0\nhumanize==4.12.3\n")
    home = tmp_path / "home"
    r = run_cli("build", "-C", str(app), env={"LAMBDASHIP_HOME": str(home)}, timeout=120)
    assert r.returncode != 0, r.stderr
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and "no-such/base" in last, r.stderr
    assert "bytecode" not in r.stderr and "Traceback" not in r.stderr, r.stderr
    entries = [p.name for p in (home / "deps").iterdir()] if (home / "deps").is_dir() else []
    assert all(n.endswith(".lock") for n in entries), entries  # nothing installed was kept
