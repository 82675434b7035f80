"""`lambdaship serve` driven with a real HTTP client: examples/chalice-app and a plain handler."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.conftest import EXAMPLES


class Served:
    def __init__(self, args: list[str], cwd: Path | None = None, command: str | None = "serve") -> None:
        head = [command, "--port", "0"] if command else []
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "lambdaship.cli", *head, *args],
            cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ),
        )
        self.stderr: list[str] = []
        threading.Thread(target=self._drain, daemon=True).start()
        line = self.proc.stdout.readline()
        if not line.startswith("listening on "):
            self.proc.kill()
            raise AssertionError(f"serve did not start: {line!r} {''.join(self.stderr)}")
        self.url = line.split()[-1]
        self.client = httpx.Client(base_url=self.url, timeout=30)

    def _drain(self) -> None:
        for line in self.proc.stderr:
            self.stderr.append(line)

    def log_text(self) -> str:
        return "".join(self.stderr)

    def wait_log(self, needle: str, timeout: float = 10) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if needle in self.log_text():
                return True
            time.sleep(0.05)
        return False

    def stop(self) -> int:
        self.client.close()
        self.proc.terminate()
        try:
            return self.proc.wait(15)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()


@pytest.fixture(scope="module")
def chalice() -> Iterator[Served]:
    # 3 s: Lambda's default timeout; short enough for the timeout test, long enough for a loaded machine
    served = Served(["-C", str(EXAMPLES / "chalice-app"), "--timeout", "3", "--workers", "2", "--no-reload"])
    yield served
    assert served.stop() == 0
    assert "stopped" in served.log_text()


def test_health(chalice: Served) -> None:
    r = chalice.client.get("/health")
    assert r.status_code == 200
    assert r.json() == {"status": "ok"}
    assert r.headers["content-type"] == "application/json"


def test_post_json_body(chalice: Served) -> None:
    r = chalice.client.post("/items", json={"name": "widget", "tags": ["a"]})
    assert r.status_code == 200, r.text
    assert r.json()["name"] == "widget" and r.json()["tags"] == ["a"]
    bad = chalice.client.post("/items", json={"nope": 1})
    assert bad.status_code == 400 and "name" in bad.json()["Message"]


def test_path_parameter(chalice: Served) -> None:
    r = chalice.client.get("/items/demo")
    assert r.status_code == 200 and r.json()["id"] == "demo"
    missing = chalice.client.get("/items/zzz")
    assert missing.status_code == 404 and "no item zzz" in missing.json()["Message"]


def test_environment_from_config(chalice: Served) -> None:
    assert chalice.client.get("/config").json() == {"stage": "dev", "greeting": "hello"}


def test_unknown_route_is_403_as_api_gateway_answers(chalice: Served) -> None:
    r = chalice.client.get("/does/not/exist")
    assert r.status_code == 403 and r.json() == {"message": "Missing Authentication Token"}


def test_exception_in_a_chalice_view_is_chalice_500(chalice: Served) -> None:
    # Chalice catches exceptions in views itself and answers 500, as it does on AWS.
    r = chalice.client.get("/boom")
    assert r.status_code == 500 and r.json()["Code"] == "InternalServerError"
    # The traceback reaches the log through the worker's stderr pipe, possibly after the answer.
    assert chalice.wait_log("this route always fails"), chalice.log_text()


def test_timeout_is_504_and_logged(chalice: Served) -> None:
    r = chalice.client.get("/slow", params={"seconds": "20"})
    assert r.status_code == 504 and r.json() == {"message": "Endpoint request timed out"}
    assert chalice.wait_log("Task timed out after 3.00 seconds"), chalice.log_text()
    assert chalice.client.get("/health").status_code == 200  # a new worker took over


def test_rie_endpoint(chalice: Served) -> None:
    event = {"resource": "/health", "path": "/health", "httpMethod": "GET", "headers": {},
             "multiValueHeaders": {}, "queryStringParameters": None, "multiValueQueryStringParameters": None,
             "pathParameters": None, "stageVariables": None, "body": None, "isBase64Encoded": False,
             "requestContext": {"resourcePath": "/health", "httpMethod": "GET"}}
    r = chalice.client.post("/2015-03-31/functions/function/invocations", content=json.dumps(event))
    assert r.status_code == 200
    answer = r.json()
    assert answer["statusCode"] == 200 and json.loads(answer["body"]) == {"status": "ok"}


PLAIN = '''
import base64, json, os, time, uuid

WORKER = uuid.uuid4().hex  # one per runtime process (pids repeat: each runtime is pid 2 of its namespace)

def handler(event, context):
    path = event.get("path") or event.get("rawPath")
    if path == "/raise":
        raise RuntimeError("kaboom")
    if path == "/sleep":
        time.sleep(float(event["queryStringParameters"]["s"]))
    if path == "/binary":
        return {"statusCode": 200, "headers": {"Content-Type": "image/png"},
                "body": base64.b64encode(b"\\x89PNG\\x00\\xff").decode(), "isBase64Encoded": True}
    return {"statusCode": 200, "headers": {"X-Worker": WORKER},
            "multiValueHeaders": {"Set-Cookie": ["a=1", "b=2"]},
            "body": json.dumps({"event": event, "version": VERSION})}

VERSION = 1
'''


@pytest.fixture
def plain_app(tmp_path: Path) -> Path:
    (tmp_path / "lambdaship.toml").write_text('function_name = "plain"\nhandler = "main.handler"\ntimeout = 10\n')
    (tmp_path / "main.py").write_text(PLAIN)
    return tmp_path


def test_plain_handler_gets_proxy_events_and_errors_are_502(plain_app: Path) -> None:
    served = Served(["-C", str(plain_app), "--workers", "3", "--no-reload"])
    try:
        r = served.client.get("/a/b", params=[("x", "1"), ("x", "2")], headers={"X-Test": "yes"})
        assert r.status_code == 200
        assert r.headers.get_list("set-cookie") == ["a=1", "b=2"]
        event = r.json()["event"]
        assert event["resource"] == event["requestContext"]["resourcePath"] == "/{proxy+}"
        assert event["pathParameters"] == {"proxy": "a/b"}
        assert event["multiValueQueryStringParameters"] == {"x": ["1", "2"]}
        assert event["headers"]["X-Test"] == "yes"

        binary = served.client.get("/binary")
        assert binary.content == b"\x89PNG\x00\xff" and binary.headers["content-type"] == "image/png"

        boom = served.client.get("/raise")
        assert boom.status_code == 502 and boom.json() == {"message": "Internal server error"}
        assert served.wait_log("kaboom")

        with ThreadPoolExecutor(3) as pool:
            answers = list(pool.map(lambda _: served.client.get("/sleep", params={"s": "0.7"}), range(3)))
        assert all(a.status_code == 200 for a in answers)
        assert len({a.headers["x-worker"] for a in answers}) >= 2, "concurrent requests use several workers"
    finally:
        assert served.stop() == 0


def test_a_worker_started_for_one_connection_outlives_it(plain_app: Path) -> None:
    """The second worker is spawned while serving a request, on that connection's thread; the
    sandbox ties a runtime to the thread that spawned it (bwrap --die-with-parent), so that
    worker must not die when the connection closes."""
    served = Served(["-C", str(plain_app), "--workers", "2", "--no-reload"])

    def concurrent_workers() -> set[str]:
        clients = [httpx.Client(base_url=served.url, timeout=30) for _ in range(2)]
        try:
            with ThreadPoolExecutor(2) as pool:
                answers = list(pool.map(lambda c: c.get("/sleep", params={"s": "0.7"}), clients))
        finally:
            for c in clients:
                c.close()  # the connections end: so do their server threads
        assert [a.status_code for a in answers] == [200, 200], [a.text for a in answers]
        return {a.headers["x-worker"] for a in answers}

    try:
        first = concurrent_workers()
        assert len(first) == 2
        time.sleep(0.5)
        assert concurrent_workers() == first, "both workers stayed warm"
        assert "Runtime.ExitError" not in served.log_text()
    finally:
        assert served.stop() == 0


def test_http_api_v2_payload(plain_app: Path) -> None:
    served = Served(["-C", str(plain_app), "--http-api-v2", "--no-reload"])
    try:
        r = served.client.get("/v2/path", params={"q": "1"}, headers={"Cookie": "c=1"})
        event = r.json()["event"]
        assert event["version"] == "2.0" and event["rawPath"] == "/v2/path" and event["rawQueryString"] == "q=1"
        assert event["cookies"] == ["c=1"]
    finally:
        served.stop()


def test_reload_on_code_change(plain_app: Path) -> None:
    served = Served(["-C", str(plain_app)])
    try:
        assert served.client.get("/").json()["version"] == 1
        time.sleep(0.05)
        (plain_app / "main.py").write_text(PLAIN.replace("VERSION = 1", "VERSION = 2"))
        assert served.wait_log("reloading")
        end = time.monotonic() + 10
        version = 1
        while version != 2 and time.monotonic() < end:
            version = served.client.get("/").json()["version"]
        assert version == 2
    finally:
        served.stop()


def test_chunked_request_body_reaches_the_function(chalice: Served) -> None:
    def gen():
        yield b'{"name": '
        yield b'"chunked"}'

    r = chalice.client.post("/items", content=gen(), headers={"Content-Type": "application/json"})
    assert r.status_code == 200, r.text + chalice.log_text()
    assert r.json()["name"] == "chunked"


@pytest.mark.parametrize("mode", ["sandbox", "none"])
def test_invoke_local_never_sees_the_hosts_site_packages(tmp_path: Path, mode: str) -> None:
    """httpx is installed on this host (lambdaship needs it) but not declared by the app: the
    import fails as on Lambda — in the sandbox and in the no-namespace fallback alike."""
    from tests.conftest import run_cli

    (tmp_path / "lambdaship.toml").write_text('function_name = "leak"\nhandler = "main.handler"\npython = "3.11"\n')
    (tmp_path / "requirements.txt").write_text("")
    (tmp_path / "main.py").write_text("import httpx\n\ndef handler(event, context):\n    return 1\n")
    env = {"LAMBDASHIP_SANDBOX": "none"} if mode == "none" else {}
    proc = run_cli("invoke", "--local", "-C", str(tmp_path), "--json", env=env)
    assert proc.returncode == 1, proc.stderr
    error = json.loads(proc.stdout)["error"]
    assert error["errorType"] == "Runtime.ImportModuleError"
    assert "No module named 'httpx'" in error["errorMessage"]
    if mode == "none":
        assert "no sandbox here (LAMBDASHIP_SANDBOX=none)" in proc.stderr
