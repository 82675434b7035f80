"""One request, four ways — ``serve``, ``invoke --local``, ``run <layout>``, ``run <registry ref>`` —
one answer: the same status, headers and body, because all four run the same artifact (the
base rootfs, the dependencies installed for the target, the app) in the same sandbox.

Each app is a copy of an example on the offline base (pushed to the test registry), so the
build and the project runs use the same base; a variant whose requirements lack a dependency
fails the same way everywhere (the host has that package's absence too, but the sandbox never
looks at the host's site-packages anyway).
"""

from __future__ import annotations

import json
import re
import shutil
import uuid
from pathlib import Path

import pytest

from lambdaship.apigateway.responses import response_from_result
from lambdaship.local.invocation import InvokeResult
from tests.conftest import EXAMPLES, run_cli
from tests.images import registry_host, skopeo_push
from tests.test_serve import Served

GATEWAY_ADDED = {"date", "server", "content-length", "connection", "x-amzn-requestid", "x-amz-apigw-id",
                 "x-amzn-trace-id", "keep-alive"}
pytestmark = pytest.mark.slow


def _normal(status: int, headers: list[tuple[str, str]] | dict[str, str], body: bytes | str) -> tuple:
    items = headers.items() if isinstance(headers, dict) else headers
    kept = sorted((k.lower(), v) for k, v in items if k.lower() not in GATEWAY_ADDED)
    text = body.decode() if isinstance(body, bytes) else body
    try:
        parsed = json.loads(text)
    except ValueError:
        parsed = text
    return status, kept, parsed


def _project(tmp: Path, example: str, base_ref: str, drop: str | None = None) -> Path:
    app = tmp / f"{example}-{uuid.uuid4().hex[:6]}"
    shutil.copytree(EXAMPLES / example, app, ignore=shutil.ignore_patterns("__pycache__", ".lambdaship"))
    for name in ("lambdaship.toml", "pyproject.toml"):
        cfg = app / name
        if cfg.is_file():
            text = re.sub(r'(?m)^python = "3\.12"', 'python = "3.11"', cfg.read_text())
            text = re.sub(r'(?m)^(python = "3\.11")$', rf'\1\nbase_image = "{base_ref}"', text, count=1)
            if drop:
                text = text.replace(f'dependencies = ["{drop}==4.12.3"]', "dependencies = []")
            cfg.write_text(text)
    if drop:
        req = app / "requirements.txt"
        req.write_text("".join(line for line in req.read_text().splitlines(True) if not line.startswith(drop)))
    return app


def _image(app: Path, tmp: Path, registry_url: str) -> tuple[Path, str]:
    layout = tmp / f"layout-{app.name}"
    proc = run_cli("build", "-C", str(app), "--out", str(layout))
    assert proc.returncode == 0, proc.stderr
    index = json.loads((layout / "index.json").read_text())
    tag = index["manifests"][0]["annotations"]["org.opencontainers.image.ref.name"]
    ref = f"{registry_host(registry_url)}/equiv-{app.name}:t1"
    skopeo_push(layout, tag, ref, fmt="v2s2")
    return layout, ref


def _http_four_ways(app: Path, layout: Path, ref: str, path: str) -> list[tuple]:
    answers = []
    served = Served(["-C", str(app), "--no-reload"])
    try:
        r = served.client.get(path)
        answers.append(_normal(r.status_code, dict(r.headers), r.content))
    finally:
        assert served.stop() == 0
    proc = run_cli("invoke", "--local", "-C", str(app), "--path", path, "--json")
    data = json.loads(proc.stdout)
    payload = json.dumps(data["result"] if data["ok"] else data["error"]).encode()
    resp = response_from_result(InvokeResult("x", payload, None if data["ok"] else "Unhandled"))
    answers.append(_normal(resp.status, resp.headers, resp.body))
    for image in (str(layout), ref):
        proc = run_cli("run", image, "-C", str(app), "--get", path, "--json")
        data = json.loads(proc.stdout)
        answers.append(_normal(data["status"], data["headers"], json.dumps(data["body"])))
    return answers


@pytest.fixture(scope="module")
def base_ref(local_stack) -> str:
    from lambdaship.local.base import ensure_base

    return ensure_base(local_stack.registry.url)


def test_chalice_app_answers_the_same_four_ways(local_stack, base_ref: str, tmp_path: Path) -> None:
    app = _project(tmp_path, "chalice-app", base_ref)
    layout, ref = _image(app, tmp_path, local_stack.registry.url)
    for path in ("/health", "/config", "/items/nope", "/boom"):
        answers = _http_four_ways(app, layout, ref, path)
        assert len(set(json.dumps(a, sort_keys=True) for a in answers)) == 1, (path, answers)
    assert answers[0][0] == 500  # /boom: Chalice's own 500, from chalice inside the artifact
    health = _http_four_ways(app, layout, ref, "/config")[0]
    assert health[2] == {"stage": "dev", "greeting": "hello"}, "the config's [environment] reaches all four"


def test_handler_app_answers_the_same_four_ways(local_stack, base_ref: str, tmp_path: Path) -> None:
    app = _project(tmp_path, "handler-app", base_ref)
    layout, ref = _image(app, tmp_path, local_stack.registry.url)
    event = tmp_path / "event.json"
    event.write_text(json.dumps({"bytes": 2048}))
    results = []
    served = Served(["-C", str(app), "--no-reload"])
    try:
        r = served.client.post("/2015-03-31/functions/function/invocations", content=event.read_bytes())
        results.append((r.status_code == 200, r.json()))
    finally:
        assert served.stop() == 0
    proc = run_cli("invoke", "--local", "-C", str(app), "--event", str(event), "--json")
    results.append((json.loads(proc.stdout)["ok"], json.loads(proc.stdout)["result"]))
    for image in (str(layout), ref):
        proc = run_cli("run", image, "-C", str(app), "--event", str(event), "--json")
        results.append((json.loads(proc.stdout)["ok"], json.loads(proc.stdout)["result"]))
    assert results == [(True, {"bytes": 2048, "human": "2.0 kB"})] * 4
    # through the gateway the non-proxy answer is API Gateway's 502, the same four ways
    answers = _http_four_ways(app, layout, ref, "/")
    assert len(set(json.dumps(a, sort_keys=True) for a in answers)) == 1 and answers[0][0] == 502, answers


def test_a_missing_dependency_fails_the_same_four_ways(local_stack, base_ref: str, tmp_path: Path) -> None:
    app = _project(tmp_path, "handler-app", base_ref, drop="humanize")
    layout, ref = _image(app, tmp_path, local_stack.registry.url)
    errors = []
    served = Served(["-C", str(app), "--no-reload"])
    try:
        r = served.client.post("/2015-03-31/functions/function/invocations", content=b"{}")
        assert r.headers.get("x-amz-function-error") == "Unhandled"
        errors.append(r.json())
        assert served.client.get("/").status_code == 502
    finally:
        assert served.stop() == 0
    proc = run_cli("invoke", "--local", "-C", str(app), "--json")
    assert proc.returncode == 1
    errors.append(json.loads(proc.stdout)["error"])
    for image in (str(layout), ref):
        proc = run_cli("run", image, "-C", str(app), "--event", "-", "--json", input="{}")
        assert proc.returncode == 1
        errors.append(json.loads(proc.stdout)["error"])
    for err in errors:
        assert err["errorType"] == "Runtime.ImportModuleError", err
        assert "No module named 'humanize'" in err["errorMessage"], err
    assert len({(e["errorType"], e["errorMessage"]) for e in errors}) == 1
    answers = _http_four_ways(app, layout, ref, "/")
    assert len(set(json.dumps(a, sort_keys=True) for a in answers)) == 1 and answers[0][0] == 502, answers
