"""Deploy, rollback and migrate on the local stack, proven by the functions' own code.

The data plane runs every smoke test and every request: image functions run the exact
digest a version was deployed with, from the local registry, on the offline Lambda-like base
(debootstrap; built once and cached under ``paths.base_cache_dir()``), inside the sandbox.
A broken version is caught because its code fails — it raises at import, answers 500, or
times out — never because a test queued a canned answer.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import httpx
from botocore.config import Config

from lambdaship.local.stack import ACCOUNT_ID, REGION
from tests.conftest import run_cli
from tests.test_dataplane import zip_of

GOOD = """import json
def handler(event, context):
    return {"statusCode": 200, "headers": {"Content-Type": "application/json"},
            "body": json.dumps({"answer": "%s", "path": event.get("path")})}
"""
BROKEN = {
    "raises-at-import": ("raise RuntimeError('broken at import')\n" + GOOD % "never", "broken at import"),
    "returns-500": ("def handler(event, context):\n    return {'statusCode': 500, 'body': 'down'}\n", "500"),
    "times-out": ("import time\ndef handler(event, context):\n    time.sleep(30)\n",
                  "Task timed out after 2.00 seconds"),
}


def aws(service: str) -> Any:
    return boto3.client(service, config=Config(retries={"max_attempts": 1}, read_timeout=120))


def project(root: Path, name: str, source: str, base: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "lambdaship.toml").write_text(
        f'function_name = "{name}"\nhandler = "app.handler"\npython = "3.11"\ntimeout = 2\n'
        f'base_image = "{base}"\npackage_type = "image"\n\n[smoke]\npath = "/health"\n')
    (root / "app.py").write_text(source)
    return root


def alias_version(name: str) -> str:
    return aws("lambda").get_alias(FunctionName=name, Name="live")["FunctionVersion"]


def deploy(proj: Path, *args: str) -> Any:
    return run_cli("deploy", "-C", str(proj), "--create-role", *args, timeout=600)


def test_broken_versions_never_get_the_alias_and_rollback_serves_the_previous_code(
        local_stack, lambda_base, tmp_path):
    name = f"dp-deploy-{uuid.uuid4().hex[:8]}"
    proj = project(tmp_path / "app", name, GOOD % "one", lambda_base)
    r = deploy(proj)
    assert r.returncode == 0, r.stderr
    assert "smoke test passed: GET /health → 200" in r.stdout and alias_version(name) == "1"
    for kind, (source, evidence) in BROKEN.items():
        (proj / "app.py").write_text(source)
        r = deploy(proj)
        assert r.returncode == 1, (kind, r.stdout, r.stderr)
        last = r.stderr.strip().splitlines()[-1]
        assert last.startswith("error: deploy of") and evidence in last, (kind, last)
        assert "still points at version 1" in last, (kind, last)
        assert alias_version(name) == "1", kind
    (proj / "app.py").write_text(GOOD % "two")
    r = deploy(proj, "--json")
    assert r.returncode == 0, r.stderr
    good = json.loads(r.stdout)["version"]
    assert alias_version(name) == good == "5"
    inv = run_cli("invoke", "-C", str(proj), "--path", "/health", "--json")
    assert inv.returncode == 0 and json.loads(json.loads(inv.stdout)["result"]["body"])["answer"] == "two"
    r = run_cli("rollback", "-C", str(proj))
    assert r.returncode == 0, r.stderr
    assert alias_version(name) == "1"
    inv = run_cli("invoke", "-C", str(proj), "--path", "/health", "--json")
    assert inv.returncode == 0, inv.stderr
    assert json.loads(json.loads(inv.stdout)["result"]["body"]) == {"answer": "one", "path": "/health"}
    # Each version ran its own image: version 4's digest times out, version 5's answers "two".
    r4 = aws("lambda").invoke(FunctionName=name, Qualifier="4", Payload=b"{}")
    assert r4["FunctionError"] == "Unhandled" and b"Task timed out" in r4["Payload"].read()
    r5 = aws("lambda").invoke(FunctionName=name, Qualifier="5", Payload=json.dumps({"path": "/x"}).encode())
    assert json.loads(json.loads(r5["Payload"].read())["body"]) == {"answer": "two", "path": "/x"}


# -- migration under load ----------------------------------------------------------------------------
@dataclass
class Traffic:
    """A client thread: GET ``url`` at most ``rate`` times per second until stopped (bounded)."""

    url: str
    rate: float = 20.0
    limit: int = 4000
    max_seconds: float = 300.0
    answers: list[tuple[float, int, str]] = field(default_factory=list)  # (t, status, answer or error)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        end = time.monotonic() + self.max_seconds
        with httpx.Client(timeout=30) as c:
            while not self.stop.is_set() and len(self.answers) < self.limit and time.monotonic() < end:
                t = time.monotonic()
                try:
                    r = c.get(self.url)
                    answer = r.json().get("from", "?") if r.status_code == 200 else r.text[:200]
                    self.answers.append((t, r.status_code, answer))
                except (httpx.HTTPError, ValueError) as exc:
                    self.answers.append((t, 0, f"{type(exc).__name__}: {exc}"))
                self.stop.wait(max(0.0, 1.0 / self.rate - (time.monotonic() - t)))


class OldWorld:
    """A zip function behind a REST API with one AWS_PROXY integration per route (Chalice's shape)."""

    def __init__(self) -> None:
        sfx = uuid.uuid4().hex[:8]
        self.name = f"legacy-{sfx}"
        lam, gw = aws("lambda"), aws("apigateway")
        role = aws("iam").create_role(RoleName=f"legacy-role-{sfx}", AssumeRolePolicyDocument=json.dumps({
            "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                    "Principal": {"Service": "lambda.amazonaws.com"}}]}))["Role"]["Arn"]
        source = ("import json\ndef handler(event, context):\n    return {'statusCode': 200, 'body': json.dumps("
                  "{'from': 'zip', 'resource': event['resource']})}\n")
        arn = lam.create_function(FunctionName=self.name, Runtime="python3.11", Role=role, Handler="app.handler",
                                  Code={"ZipFile": zip_of(source)}, Timeout=10)["FunctionArn"]
        self.api = gw.create_rest_api(name=f"legacy-api-{sfx}")["id"]
        root = next(r["id"] for r in gw.get_resources(restApiId=self.api)["items"] if r["path"] == "/")
        items = gw.create_resource(restApiId=self.api, parentId=root, pathPart="items")["id"]
        item = gw.create_resource(restApiId=self.api, parentId=items, pathPart="{item_id}")["id"]
        health = gw.create_resource(restApiId=self.api, parentId=root, pathPart="health")["id"]
        uri = f"arn:aws:apigateway:{REGION}:lambda:path/2015-03-31/functions/{arn}/invocations"
        for rid in (item, health):
            gw.put_method(restApiId=self.api, resourceId=rid, httpMethod="GET", authorizationType="NONE")
            gw.put_integration(restApiId=self.api, resourceId=rid, httpMethod="GET", type="AWS_PROXY",
                               integrationHttpMethod="POST", uri=uri)
        gw.create_deployment(restApiId=self.api, stageName="api")
        lam.add_permission(FunctionName=self.name, StatementId="apigw", Action="lambda:InvokeFunction",
                           Principal="apigateway.amazonaws.com",
                           SourceArn=f"arn:aws:execute-api:{REGION}:{ACCOUNT_ID}:{self.api}/*")
        self.url = f"{boto3.client('lambda').meta.endpoint_url}/restapis/{self.api}/api/_user_request_/items/7"


def migrate_under_load(tmp_path: Path, base: str, *extra: str) -> dict[str, Any]:
    world = OldWorld()
    app = project(tmp_path / "image-app", f"{world.name}-img", GOOD.replace('"answer": "%s"', '"from": "image"'),
                  base)
    (app / "lambdaship.toml").write_text((app / "lambdaship.toml").read_text().replace("timeout = 2", "timeout = 10"))
    first = httpx.get(world.url, timeout=60)  # warm the old function before the clock starts
    assert first.status_code == 200 and first.json()["from"] == "zip", first.text
    traffic = Traffic(world.url)
    thread = threading.Thread(target=traffic.run, daemon=True)
    thread.start()
    time.sleep(2.0)
    t_start = time.monotonic()
    r = run_cli("migrate", "-C", str(app), "--from", world.name, "--to", f"{world.name}-img", *extra, timeout=600)
    t_end = time.monotonic()
    time.sleep(2.0)
    traffic.stop.set()
    thread.join(30)
    assert r.returncode == 0, r.stdout + r.stderr
    answers = traffic.answers
    failed = [a for a in answers if a[1] != 200]
    first_image = next((t for t, s, a in answers if a == "image"), None)
    last_zip = max((t for t, s, a in answers if a == "zip"), default=None)
    return {"world": world, "answers": answers, "failed": failed, "requests": len(answers),
            "migrate_seconds": t_end - t_start, "before": sum(1 for t, *_ in answers if t < t_start),
            "after": sum(1 for t, *_ in answers if t > t_end),
            "switch_after_start": None if first_image is None else first_image - t_start,
            "last_zip_after_start": None if last_zip is None else last_zip - t_start,
            "stdout": r.stdout}


def _check_switch(run: dict[str, Any]) -> None:
    answers = run["answers"]
    assert run["failed"] == [], run["failed"][:5]
    assert run["before"] >= 10 and run["after"] >= 10, (run["before"], run["after"])
    assert answers[0][2] == "zip" and answers[-1][2] == "image"
    assert run["switch_after_start"] is not None and run["last_zip_after_start"] is not None
    # once the image answered, the zip function never answered again (one route, re-pointed once)
    assert run["last_zip_after_start"] < run["switch_after_start"]
    print(f"\nmigrate under load: {run['requests']} requests, 0 failed; migrate took {run['migrate_seconds']:.1f} s; "
          f"first image answer {run['switch_after_start']:.2f} s after migrate started "
          f"(last zip answer at {run['last_zip_after_start']:.2f} s)")


def test_migrate_under_load_switches_from_zip_to_image_without_a_failed_request(local_stack, lambda_base, tmp_path):
    run = migrate_under_load(tmp_path, lambda_base)
    _check_switch(run)
    names = [f["FunctionName"] for f in aws("lambda").list_functions()["Functions"]]
    assert run["world"].name in names  # the old function stays (no --delete-old)


def test_migrate_with_delete_old_under_load(local_stack, lambda_base, tmp_path):
    run = migrate_under_load(tmp_path, lambda_base, "--delete-old")
    _check_switch(run)
    names = [f["FunctionName"] for f in aws("lambda").list_functions()["Functions"]]
    assert run["world"].name not in names
