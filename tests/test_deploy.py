"""``lambdaship deploy`` on the local stack (moto server + distribution registry).

Images are pushed straight to the registry with httpx (a tiny manifest per test), under the
ECR host name that LAMBDASHIP_REGISTRY_URL maps to the local registry, and deployed with
``--image``; the full build → push → deploy path is in test_deploy_ship.py.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from botocore.config import Config

from lambdaship.local.stack import ACCOUNT_ID, REGION
from tests.conftest import run_cli

ECR_HOST = f"{ACCOUNT_ID}.dkr.ecr.{REGION}.amazonaws.com"


# -- helpers (imported by the other deploy/rollback/env/status tests) ------------------------------
def aws(service: str) -> Any:
    return boto3.client(service, config=Config(retries={"max_attempts": 1}))


def uid(prefix: str = "fn") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def push_image(registry_url: str, repo: str, marker: str) -> str:
    """Push a tiny single-layer image; return its manifest digest (unique per ``marker``)."""
    import hashlib

    from tests.runnable import put_manifest, upload_blob

    layer = marker.encode()
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {"Cmd": ["app.handler"]},
                         "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(layer).hexdigest()]}}
                        ).encode()
    manifest = json.dumps({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": upload_blob(registry_url, repo, config), "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": upload_blob(registry_url, repo, layer), "size": len(layer)}],
    }).encode()
    return put_manifest(registry_url, repo, marker, manifest, "application/vnd.oci.image.manifest.v1+json")


def image_uri(repo: str, digest: str) -> str:
    return f"{ECR_HOST}/{repo}@{digest}"


def make_role(name: str | None = None) -> str:
    return aws("iam").create_role(
        RoleName=name or uid("role"),
        AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}),
    )["Role"]["Arn"]


def make_project(tmp: Path, name: str, *, role: str | None, extra: str = "", smoke: str = "") -> Path:
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "app.py").write_text("def handler(event, context):\n    return {'statusCode': 200}\n")
    lines = [f'function_name = "{name}"', 'handler = "app.handler"', f'repository = "{name}"']
    if role:
        lines.append(f'role = "{role}"')
    text = "\n".join(lines) + "\n" + extra + "\n"
    if smoke:
        text += "\n[smoke]\n" + smoke + "\n"
    (tmp / "lambdaship.toml").write_text(text)
    return tmp


def queue_results(moto_url: str, *results: Any) -> None:
    """Queue canned invoke answers in moto's simple Lambda backend (consumed in order)."""
    r = httpx.post(f"{moto_url}/moto-api/static/lambda-simple/response",
                   json={"results": [r if isinstance(r, str) else json.dumps(r) for r in results],
                         "region": REGION})
    assert r.status_code == 201


def deploy(proj: Path, *args: str) -> Any:
    return run_cli("deploy", "-C", str(proj), *args)


def alias_version(name: str, alias: str = "live") -> str:
    return aws("lambda").get_alias(FunctionName=name, Name=alias)["FunctionVersion"]


def version_digest(name: str, version: str) -> str:
    """The digest lambdaship recorded on a version (moto shares Code between versions; see design)."""
    desc = aws("lambda").get_function(FunctionName=name, Qualifier=version)["Configuration"]["Description"]
    return desc.split("@", 1)[1].split()[0]


@pytest.fixture
def registry(local_stack) -> str:
    return local_stack.registry.url


# -- tests ------------------------------------------------------------------------------------------
def test_first_deploy_creates_function_by_digest_and_alias(local_stack, registry, tmp_path):
    name = uid()
    digest = push_image(registry, name, "v1")
    proj = make_project(tmp_path, name, role=make_role(), extra='memory = 256\ntimeout = 12\n[environment]\nA = "1"\n')
    r = deploy(proj, "--image", image_uri(name, digest))
    assert r.returncode == 0, r.stderr
    fn = aws("lambda").get_function(FunctionName=name)
    cfg = fn["Configuration"]
    assert fn["Code"]["ImageUri"] == image_uri(name, digest)
    assert cfg["PackageType"] == "Image" and cfg["MemorySize"] == 256 and cfg["Timeout"] == 12
    assert cfg["Environment"]["Variables"] == {"A": "1"}
    assert alias_version(name) == "1"
    assert version_digest(name, "1") == digest
    tags = httpx.get(f"{registry}/v2/{name}/tags/list").json()["tags"]
    assert "deployed-1" in tags
    assert "alias live: 1" in r.stdout


def test_code_only_redeploy_publishes_new_version_and_moves_alias(local_stack, registry, tmp_path):
    name = uid()
    d1, d2 = push_image(registry, name, "one"), push_image(registry, name, "two")
    proj = make_project(tmp_path, name, role=make_role())
    assert deploy(proj, "--image", image_uri(name, d1)).returncode == 0
    r = deploy(proj, "--image", image_uri(name, d2), "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["version"] == "2" and out["previous_version"] == "1" and out["alias_version"] == "2"
    assert "lambda:UpdateFunctionCode" in out["steps"]
    assert "lambda:UpdateFunctionConfiguration" not in out["steps"]  # code-only
    assert aws("lambda").get_function(FunctionName=name, Qualifier="live")["Code"]["ImageUri"] == image_uri(name, d2)
    assert alias_version(name) == "2" and version_digest(name, "2") == d2
    # Deploying the same image again changes nothing.
    r = deploy(proj, "--image", image_uri(name, d2), "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["up_to_date"] is True
    assert len(aws("lambda").list_versions_by_function(FunctionName=name)["Versions"]) == 3  # $LATEST, 1, 2


def test_failing_smoke_test_leaves_alias_and_exits_nonzero(local_stack, registry, lambda_base, tmp_path):
    from tests.runnable import push_app_image  # images whose code runs on the stack's data plane

    name = uid()
    answer = "def handler(e, c):\n    return {{'statusCode': {}, 'body': '{}'}}\n"
    d1 = push_app_image(registry, lambda_base, name, answer.format(200, "ok"), "good")
    d2 = push_app_image(registry, lambda_base, name, answer.format(503, "down"), "bad")
    proj = make_project(tmp_path, name, role=make_role(), smoke='path = "/health"')
    r = deploy(proj, "--image", image_uri(name, d1))
    assert r.returncode == 0, r.stderr
    assert "smoke test passed: GET /health → 200" in r.stdout
    r = deploy(proj, "--image", image_uri(name, d2))
    assert r.returncode == 1
    lines = r.stderr.strip().splitlines()
    assert lines[-1].startswith("error: deploy of") and "503" in lines[-1] and "still points at version 1" in lines[-1]
    assert alias_version(name) == "1"
    # An event smoke test that raises fails the same way.
    proj2 = make_project(tmp_path / "ev", name, role=None, smoke="event = { ping = 1 }")
    d3 = push_app_image(registry, lambda_base, name, "def handler(e, c):\n    raise RuntimeError('boom')\n", "three")
    r = deploy(proj2, "--image", image_uri(name, d3))
    assert r.returncode == 1 and "boom" in r.stderr
    assert alias_version(name) == "1"


def test_missing_role_is_one_line_error_before_anything_is_created(local_stack, registry, tmp_path):
    name = uid()
    digest = push_image(registry, name, "x")
    proj = make_project(tmp_path, name, role=None)
    r = deploy(proj, "--image", image_uri(name, digest))
    assert r.returncode == 1
    assert r.stderr.count("\n") == 1 and "no execution role" in r.stderr and "--create-role" in r.stderr
    names = [f["FunctionName"] for f in aws("lambda").list_functions()["Functions"]]
    assert name not in names


def test_create_role_makes_a_logging_only_role(local_stack, registry, tmp_path):
    name = uid()
    digest = push_image(registry, name, "x")
    proj = make_project(tmp_path, name, role=None)
    r = deploy(proj, "--image", image_uri(name, digest), "--create-role")
    assert r.returncode == 0, r.stderr
    role_arn = aws("lambda").get_function(FunctionName=name)["Configuration"]["Role"]
    role_name = role_arn.rsplit("/", 1)[1]
    iam = aws("iam")
    trust = iam.get_role(RoleName=role_name)["Role"]["AssumeRolePolicyDocument"]
    trust = json.loads(trust) if isinstance(trust, str) else trust
    assert trust["Statement"][0]["Principal"] == {"Service": "lambda.amazonaws.com"}
    assert iam.list_attached_role_policies(RoleName=role_name)["AttachedPolicies"] == []
    assert iam.list_role_policies(RoleName=role_name)["PolicyNames"] == ["lambdaship-logs"]
    doc = iam.get_role_policy(RoleName=role_name, PolicyName="lambdaship-logs")["PolicyDocument"]
    doc = json.loads(doc) if isinstance(doc, str) else doc
    actions = sorted(
        a for s in doc["Statement"] for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
    )
    assert actions == ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"]
    assert all(f"/aws/lambda/{name}" in s["Resource"] for s in doc["Statement"])


def _snapshot(name: str, registry: str) -> dict:
    lam = aws("lambda")
    fns = sorted(f["FunctionName"] for f in lam.list_functions()["Functions"])
    snap: dict[str, Any] = {
        "functions": fns,
        "roles": sorted(r["RoleName"] for r in aws("iam").list_roles()["Roles"]),
        "repos": sorted(r["repositoryName"] for r in aws("ecr").describe_repositories()["repositories"]),
    }
    if name in fns:
        snap["versions"] = [(v["Version"], v["Description"]) for v in
                            lam.list_versions_by_function(FunctionName=name)["Versions"]]
        snap["aliases"] = [(a["Name"], a["FunctionVersion"], a["Description"]) for a in
                           lam.list_aliases(FunctionName=name)["Aliases"]]
        fn = lam.get_function(FunctionName=name)
        snap["code"] = fn["Code"]["ImageUri"]
        snap["config"] = {k: fn["Configuration"].get(k) for k in ("MemorySize", "Timeout", "Environment", "Role")}
    snap["tags"] = httpx.get(f"{registry}/v2/{name}/tags/list").json().get("tags")
    return snap


def test_dry_run_makes_no_mutating_call(local_stack, registry, tmp_path):
    name = uid()
    d1, d2 = push_image(registry, name, "one"), push_image(registry, name, "two")
    # A function that does not exist yet, with --create-role: nothing may be created.
    proj = make_project(tmp_path, name, role=None, extra='[environment]\nTOKEN = "s3cr3t-dry-value"\n')
    before = _snapshot(name, registry)
    r = deploy(proj, "--image", image_uri(name, d1), "--dry-run", "--create-role")
    assert r.returncode == 0, r.stderr
    assert "CreateFunction" in r.stdout and "CreateRole" in r.stdout and "s3cr3t-dry-value" not in r.stdout + r.stderr
    assert _snapshot(name, registry) == before
    # An existing function: an update plan, still nothing changed.
    assert deploy(proj, "--image", image_uri(name, d1), "--create-role").returncode == 0
    (tmp_path / "lambdaship.toml").write_text((tmp_path / "lambdaship.toml").read_text().replace("dry-value", "v2"))
    before = _snapshot(name, registry)
    r = deploy(proj, "--image", image_uri(name, d2), "--dry-run", "--json")
    assert r.returncode == 0, r.stderr
    plan = json.loads(r.stdout)["plan"]
    actions = [s["action"] for s in plan["steps"]]
    assert actions[:2] == ["lambda:UpdateFunctionCode", "lambda:Wait"]
    assert "lambda:UpdateFunctionConfiguration" in actions and actions[-1] == "lambda:UpdateAlias"
    assert "s3cr3t" not in r.stdout
    assert {"name": "TOKEN", "change": "changed", "source": "config", "value": "****"} in plan["environment"]
    assert _snapshot(name, registry) == before


def test_concurrent_deploys_end_consistent(local_stack, registry, tmp_path):
    import subprocess
    import sys

    name = uid()
    d0, da, db = (push_image(registry, name, m) for m in ("zero", "a", "b"))
    proj = make_project(tmp_path, name, role=make_role())
    assert deploy(proj, "--image", image_uri(name, d0)).returncode == 0
    procs = [subprocess.Popen([sys.executable, "-m", "lambdaship.cli", "deploy", "-C", str(proj), "--image",
                               image_uri(name, d)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=dict(os.environ)) for d in (da, db)]
    results = [(p.wait(timeout=120), p.stderr.read()) for p in procs]
    for code, err in results:
        assert code in (0, 1), err
        if code == 1:  # the loser says so in one line
            assert err.strip().splitlines()[-1].startswith("error: deploy of") and "another deploy" in err
    assert any(code == 0 for code, _ in results)
    live = alias_version(name)
    assert version_digest(name, live) in (da, db)
    # Every version's recorded digest is one that was deployed, and the versions are distinct images.
    digests = [version_digest(name, v["Version"]) for v in
               aws("lambda").list_versions_by_function(FunctionName=name)["Versions"] if v["Version"] != "$LATEST"]
    assert set(digests) <= {d0, da, db} and len(digests) == len(set(digests))
    # $LATEST runs one of the two images, and a later deploy converges.
    latest = aws("lambda").get_function(FunctionName=name)["Code"]["ImageUri"]
    assert latest in (image_uri(name, da), image_uri(name, db))
    assert deploy(proj, "--image", latest).returncode == 0
    assert version_digest(name, alias_version(name)) == latest.rsplit("@", 1)[1]



def test_planning_reads_the_function_once(local_stack, registry, lambda_base, tmp_path, monkeypatch):
    """A built redeploy's planning (the previous image for the dependency layers, the observed
    state) asks Lambda for the function's $LATEST once, on any thread, before it changes anything."""
    from lambdaship.aws import lambda_
    from lambdaship.config import load_project
    from lambdaship.deploy.pipeline import prepare

    name = uid()
    proj = make_project(tmp_path, name, role=make_role(),
                        extra=f'base_image = "{lambda_base}"\npython = "3.11"\npackage_type = "image"')
    assert deploy(proj, "--skip-smoke").returncode == 0
    (proj / "app.py").write_text("def handler(event, context):\n    return {'statusCode': 201}\n")
    monkeypatch.setenv("LAMBDASHIP_HOME", str(tmp_path / "fresh-runner"))
    asked: list[str | None] = []

    def count(params, **_):  # type: ignore[no-untyped-def]
        if params.get("FunctionName") == name:
            asked.append(params.get("Qualifier"))

    lambda_.client().meta.events.register("provide-client-params.lambda.GetFunction", count)
    try:
        plan = prepare(load_project(proj).function(), skip_smoke=True)
    finally:
        lambda_.client().meta.events.unregister("provide-client-params.lambda.GetFunction", count)
    assert asked.count(None) == 1, asked  # $LATEST once (was once per reader: 2, 3 with the zip choice)
    assert "lambda:UpdateFunctionCode" in [s["action"] for s in plan.to_json()["steps"]]


def _registry_requests(log: Path, since: int, repo: str) -> list[tuple[str, str, str]]:
    """(method, "blobs" | "manifests", reference) of the registry's access log lines for ``repo``."""
    import re

    text = log.read_bytes()[since:].decode(errors="replace")
    pattern = r'"(GET|HEAD|PUT|POST|PATCH) /v2/' + re.escape(repo) + r'/(blobs|manifests)/([^ ?"]+)'
    return re.findall(pattern, text)


@pytest.mark.slow
def test_a_code_only_redeploy_asks_only_what_it_needs(local_stack, lambda_base, tmp_path, monkeypatch):
    """A fresh runner's code-only redeploy does not ask again what an answer already said:
    - no poll after UpdateFunctionCode (its answer says Successful), no read of $LATEST before
      publishing (PublishVersion names the code this run wrote: a changed $LATEST is refused),
      none of the new version after it (its answer shows that code, with this deploy's marker);
    - the account's registry host once per configuration, no DescribeRepositories (the lifecycle
      policy's read says the repository is there);
    - the registry is asked only about the blobs the running image does not have (its base layers
      are known to be in the repository), and the deployed tag reuses the pushed manifest."""
    from lambdaship.aws.session import client
    from lambdaship.config import load_project
    from lambdaship.deploy.pipeline import ship

    name = uid()
    proj = make_project(tmp_path, name, role=make_role(),
                        extra=f'base_image = "{lambda_base}"\npython = "3.11"\npackage_type = "image"')
    assert deploy(proj, "--skip-smoke").returncode == 0
    previous = aws("lambda").get_function(FunctionName=name)["Code"]["ImageUri"].split("@")[1]
    old = httpx.get(f"{local_stack.registry.url}/v2/{name}/manifests/{previous}",
                    headers={"Accept": "application/vnd.oci.image.manifest.v1+json, "
                                       "application/vnd.docker.distribution.manifest.v2+json"}).json()
    old_blobs = {d["digest"] for d in [old["config"], *old["layers"]]}
    (proj / "app.py").write_text("def handler(event, context):\n    return {'statusCode': 202}\n")
    monkeypatch.setenv("LAMBDASHIP_HOME", str(tmp_path / "fresh-runner"))
    log = Path(local_stack.registry.log)
    since = log.stat().st_size
    asked: list[tuple[str, str | None]] = []

    def count(model, params, **_):  # type: ignore[no-untyped-def]
        asked.append((model.name, params.get("Qualifier")))

    clients = [client("lambda"), client("ecr")]
    for c in clients:
        c.meta.events.register("provide-client-params", count)
    try:
        result = ship(load_project(proj).function(), skip_smoke=True)
    finally:
        for c in clients:
            c.meta.events.unregister("provide-client-params", count)
    ops = [op for op, _ in asked]
    assert result.version == "2" and aws("lambda").get_alias(FunctionName=name, Name="live")["FunctionVersion"] == "2"
    assert "GetFunctionConfiguration" not in ops, ops
    assert asked.count(("GetFunction", None)) == 1, asked  # the planning's read of $LATEST only
    assert ("GetFunction", "2") not in asked, asked
    assert ops.count("GetAuthorizationToken") <= 1 and "DescribeRepositories" not in ops, ops
    seen = _registry_requests(log, since, name)
    new = httpx.get(f"{local_stack.registry.url}/v2/{name}/manifests/{result.digest}",
                    headers={"Accept": old.get("mediaType", "application/vnd.oci.image.manifest.v1+json")}).json()
    new_blobs = {d["digest"] for d in [new["config"], *new["layers"]]} - old_blobs
    assert len(new_blobs) == 2, new_blobs  # the app layer and the config
    assert {ref for m, kind, ref in seen if m == "HEAD" and kind == "blobs"} == new_blobs, seen
    assert [ref for m, kind, ref in seen if m == "GET" and kind == "manifests"] == [previous], seen


def test_a_publish_after_another_deploys_code_change_is_refused(local_stack, registry, tmp_path):
    """Another deploy's UpdateFunctionCode lands between this deploy's wait and its publish.
    Lambda refuses that publish (its CodeSha256 no longer matches $LATEST); so does the local
    stack's data plane (moto alone would publish the other's code under this deploy's marker).
    The deploy fails in one line, no version is made, the alias stays where it was."""
    from lambdaship.aws import lambda_
    from lambdaship.config import load_project
    from lambdaship.deploy.pipeline import ship
    from lambdaship.errors import LambdashipError

    name = uid()
    d0, da, db = (push_image(registry, name, m) for m in ("zero", "a", "b"))
    proj = make_project(tmp_path, name, role=make_role())
    assert deploy(proj, "--image", image_uri(name, d0)).returncode == 0
    raced: list[str] = []

    def other_deploy(**_: Any) -> None:  # another deploy's UpdateFunctionCode lands just before ours publishes
        if not raced:
            raced.append(db)
            aws("lambda").update_function_code(FunctionName=name, ImageUri=image_uri(name, db))

    events = lambda_.client().meta.events
    events.register("before-call.lambda.PublishVersion", other_deploy)
    try:
        with pytest.raises(LambdashipError, match=r"another deploy.*is not what this deploy read or wrote"):
            ship(load_project(proj).function(), image=image_uri(name, da), skip_smoke=True)
    finally:
        events.unregister("before-call.lambda.PublishVersion", other_deploy)
    assert raced == [db]
    assert version_digest(name, alias_version(name)) == d0
    versions = [v["Version"] for v in aws("lambda").list_versions_by_function(FunctionName=name)["Versions"]
                if v["Version"] != "$LATEST"]
    assert versions == ["1"], versions
