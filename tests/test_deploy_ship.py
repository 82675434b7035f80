"""End to end: ``lambdaship deploy`` builds, pushes and deploys the project (no --image)."""

from __future__ import annotations

import json

import httpx
import pytest

from lambdaship.local.stack import ACCOUNT_ID, REGION
from tests.conftest import run_cli
from tests.test_deploy import alias_version, aws, uid

ECR_HOST = f"{ACCOUNT_ID}.dkr.ecr.{REGION}.amazonaws.com"


def _project(tmp_path, name: str, base: str, body: str = "ok"):
    code = f"def handler(event, context):\n    return {{'statusCode': 200, 'body': '{body}'}}\n"
    (tmp_path / "app.py").write_text(code)
    (tmp_path / "lambdaship.toml").write_text(
        f'function_name = "{name}"\nhandler = "app.handler"\nbase_image = "{base}"\n'
        '[environment]\nSTAGE = "test"\n[smoke]\npath = "/health"\n'
    )
    return tmp_path


@pytest.mark.slow
def test_ship_builds_pushes_and_deploys_by_digest(local_stack, lambda_base, tmp_path):
    name = uid()
    proj = _project(tmp_path, name, lambda_base)  # a base whose images run on the stack's data plane
    reg = local_stack.registry.url

    # --dry-run builds locally but pushes nothing and creates nothing.
    r = run_cli("deploy", "-C", str(proj), "--create-role", "--dry-run", "--json")
    assert r.returncode == 0, r.stderr
    plan = json.loads(r.stdout)["plan"]
    actions = [s["action"] for s in plan["steps"] if not s["action"].startswith("package:")]
    assert actions[:3] == ["iam:CreateRole", "registry:PushImage", "lambda:CreateFunction"]
    assert httpx.get(f"{reg}/v2/{name}/tags/list").status_code == 404
    assert name not in [f["FunctionName"] for f in aws("lambda").list_functions()["Functions"]]

    r = run_cli("deploy", "-C", str(proj), "--create-role", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    digest = out["digest"]
    assert out["image_uri"] == f"{ECR_HOST}/{name}@{digest}" and out["version"] == "1"
    assert out["plan"]["digest"] == plan["digest"] == digest  # the dry run planned the same image
    fn = aws("lambda").get_function(FunctionName=name)
    assert fn["Code"]["ImageUri"] == f"{ECR_HOST}/{name}@{digest}"
    assert fn["Configuration"]["Environment"]["Variables"] == {"STAGE": "test"}
    assert httpx.head(f"{reg}/v2/{name}/manifests/{digest}").status_code == 200
    assert "deployed-1" in httpx.get(f"{reg}/v2/{name}/tags/list").json()["tags"]
    assert aws("ecr").describe_repositories(repositoryNames=[name])["repositories"]
    assert alias_version(name) == "1"

    # Change the code: a new image, version 2, alias moved.
    _project(tmp_path, name, lambda_base, body="changed")
    r = run_cli("deploy", "-C", str(proj), "--json")
    assert r.returncode == 0, r.stderr
    out2 = json.loads(r.stdout)
    assert out2["digest"] != digest and out2["version"] == "2" and out2["previous_version"] == "1"
    assert aws("lambda").get_function(FunctionName=name)["Code"]["ImageUri"] == f"{ECR_HOST}/{name}@{out2['digest']}"
    assert alias_version(name) == "2"

    # Same code again: nothing to do.
    r = run_cli("deploy", "-C", str(proj), "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["up_to_date"] is True
