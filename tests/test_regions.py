"""``regions = [...]``: one build deployed to several regions on the local stack.

moto serves every region; the data plane runs each region's function (the region of the Invoke
request's signature) with that region's ``AWS_REGION``; the local registry stands in for every
region's ECR, the second region's repositories under ``eu-west-1/``. Each function's own code
proves where it runs: it answers with its ``AWS_REGION``.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import boto3
import httpx
from botocore.config import Config

from tests.conftest import run_cli

REGIONS = ("us-east-1", "eu-west-1")
APP = """import json, os
VERSION = "%s"
FAIL_IN = "%s"
def handler(event, context):
    region = os.environ["AWS_REGION"]
    status = 500 if region == FAIL_IN else 200
    return {"statusCode": status, "headers": {"Content-Type": "application/json"},
            "body": json.dumps({"version": VERSION, "region": region})}
"""


def aws(service: str, region: str) -> Any:
    return boto3.client(service, region_name=region, config=Config(retries={"max_attempts": 1}, read_timeout=120))


def project(root: Path, name: str, base: str, *, version: str = "one", fail_in: str = "",
            regions: tuple[str, ...] = REGIONS) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    listed = ", ".join(f'"{r}"' for r in regions)
    (root / "lambdaship.toml").write_text(
        f'function_name = "{name}"\nhandler = "app.handler"\npython = "3.11"\ntimeout = 5\n'
        f'base_image = "{base}"\npackage_type = "image"\nregions = [{listed}]\n\n[smoke]\npath = "/health"\n')
    (root / "app.py").write_text(APP % (version, fail_in))
    return root


def deploy(proj: Path, *args: str) -> Any:
    return run_cli("deploy", "-C", str(proj), "--create-role", *args, timeout=600)


def alias_version(name: str, region: str) -> str:
    return aws("lambda", region).get_alias(FunctionName=name, Name="live")["FunctionVersion"]


def invoke_alias(name: str, region: str) -> dict[str, Any]:
    event = {"path": "/", "httpMethod": "GET", "resource": "/", "requestContext": {"resourcePath": "/"}}
    resp = aws("lambda", region).invoke(FunctionName=name, Qualifier="live", Payload=json.dumps(event).encode())
    return json.loads(json.loads(resp["Payload"].read())["body"])


def local_repo(name: str, region: str) -> str:
    """Where the local registry keeps ``name`` of ``region``'s ECR."""
    return name if region == REGIONS[0] else f"{region}/{name}"


def manifest_layers(registry: str, repo: str, digest: str) -> dict[str, int]:
    r = httpx.get(f"{registry}/v2/{repo}/manifests/{digest}",
                  headers={"Accept": "application/vnd.docker.distribution.manifest.v2+json, "
                                     "application/vnd.oci.image.manifest.v1+json"})
    assert r.status_code == 200, (repo, digest, r.status_code)
    doc = r.json()
    return {d["digest"]: d["size"] for d in [doc["config"], *doc["layers"]]}


def test_two_regions_get_one_build_by_digest_and_run_their_own_code(local_stack, lambda_base, tmp_path):
    name = f"rg-{uuid.uuid4().hex[:8]}"
    registry = local_stack.registry.url
    proj = project(tmp_path / "app", name, lambda_base)

    r = deploy(proj, "--json")
    assert r.returncode == 0, r.stderr
    first = json.loads(r.stdout)
    assert first["ok"] is True and [x["region"] for x in first["regions"]] == list(REGIONS)
    digest = first["digest"]
    for x in first["regions"]:
        assert x["ok"] and x["digest"] == digest and x["alias_version"] == "1", x
        assert x["image_uri"] == f"123456789012.dkr.ecr.{x['region']}.amazonaws.com/{name}@{digest}"
        assert x["smoke"]["status"] == 200
    # Region 1 got the push, region 2 a registry-to-registry copy of every blob (it had none).
    blobs = manifest_layers(registry, local_repo(name, REGIONS[0]), digest)
    assert manifest_layers(registry, local_repo(name, REGIONS[1]), digest) == blobs
    copy = first["regions"][1]["push"]
    assert copy["copied_from"] == f"123456789012.dkr.ecr.us-east-1.amazonaws.com/{name}@{digest}"
    # the layers streamed from region 1's registry; the config (read with the manifest) uploaded
    assert (copy["uploaded_blobs"], copy["streamed_blobs"]) == (len(blobs), len(blobs) - 1)
    assert copy["uploaded_bytes"] == sum(blobs.values()) and copy["skipped_blobs"] == 0
    # Each region's alias runs the code in that region.
    for region in REGIONS:
        assert invoke_alias(name, region) == {"version": "one", "region": region}

    # A code change: region 2's copy sends only what it lacks (the app layer and the config).
    (proj / "app.py").write_text(APP % ("two", ""))
    r = deploy(proj, "--json")
    assert r.returncode == 0, r.stderr
    second = json.loads(r.stdout)
    new = second["digest"]
    assert new != digest and all(x["digest"] == new and x["alias_version"] == "2" for x in second["regions"])
    now = manifest_layers(registry, local_repo(name, REGIONS[1]), new)
    missing = {d: s for d, s in now.items() if d not in blobs}
    copy = second["regions"][1]["push"]
    assert 1 <= len(missing) < len(now)
    assert (copy["uploaded_blobs"], copy["uploaded_bytes"]) == (len(missing), sum(missing.values()))
    assert copy["skipped_blobs"] == len(now) - len(missing)
    for region in REGIONS:
        assert invoke_alias(name, region) == {"version": "two", "region": region}

    # Nothing changed: every region is up to date, nothing is copied.
    r = deploy(proj, "--json")
    assert r.returncode == 0, r.stderr
    third = json.loads(r.stdout)
    assert all(x["up_to_date"] and x["alias_version"] == "2" for x in third["regions"]), third
    assert third["regions"][1]["push"]["uploaded_bytes"] == 0


def test_a_region_whose_smoke_test_fails_keeps_its_old_version_and_the_others_deploy(
        local_stack, lambda_base, tmp_path):
    name = f"rg-{uuid.uuid4().hex[:8]}"
    proj = project(tmp_path / "app", name, lambda_base)
    r = deploy(proj)
    assert r.returncode == 0, r.stderr
    assert [alias_version(name, region) for region in REGIONS] == ["1", "1"]

    # Version two answers 500 where AWS_REGION is the second region: only there its smoke test fails.
    (proj / "app.py").write_text(APP % ("two", REGIONS[1]))
    r = deploy(proj)
    assert r.returncode == 1, (r.stdout, r.stderr)
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith(f"error: deploy of {name} failed in 1 of 2 regions (eu-west-1): "), last
    assert "smoke:Invoke" in last and "500" in last and "alias live still points at version 1" in last, last
    assert "deployed in us-east-1 (alias live → version 2)" in last, last
    assert len([line for line in r.stderr.splitlines() if line.startswith("error:")]) == 1
    # The summary has a row per region.
    rows = {line.split()[0]: line for line in r.stdout.splitlines() if line.startswith("  ")}
    assert "version 2 (alias live: 1 → 2)" in rows["us-east-1"] and "smoke test passed" in rows["us-east-1"]
    assert rows["eu-west-1"].split()[1] == "FAILED:"
    # Region 1 serves the new version, region 2 still the old one, each from its own code.
    assert [alias_version(name, region) for region in REGIONS] == ["2", "1"]
    assert invoke_alias(name, REGIONS[0]) == {"version": "two", "region": "us-east-1"}
    assert invoke_alias(name, REGIONS[1]) == {"version": "one", "region": "eu-west-1"}

    # Fixed: the deploy again leaves region 1 as it is and finishes region 2.
    (proj / "app.py").write_text(APP % ("two", ""))
    r = deploy(proj, "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    # (version 2 in eu-west-1 was published, failed its smoke test and never got the alias)
    assert [x["alias_version"] for x in out["regions"]] == ["3", "3"]
    assert [alias_version(name, region) for region in REGIONS] == ["3", "3"]
    assert invoke_alias(name, REGIONS[1]) == {"version": "two", "region": "eu-west-1"}


def test_bad_regions_are_one_line_errors(tmp_path):
    root = tmp_path / "app"
    root.mkdir()
    (root / "app.py").write_text("def handler(event, context):\n    return 1\n")
    (root / "lambdaship.toml").write_text('function_name = "x"\nhandler = "app.handler"\nregions = ["us-east-1", '
                                          '"europe"]\n')
    r = run_cli("deploy", "-C", str(root))
    assert r.returncode == 2
    assert r.stderr.strip() == (f"error: {root / 'lambdaship.toml'}: regions: 'europe' is not an AWS region name; "
                                'use names like "us-east-1", "eu-west-1"')
    (root / "lambdaship.toml").write_text('function_name = "x"\nhandler = "app.handler"\nregions = "us-east-1"\n')
    r = run_cli("deploy", "-C", str(root))
    assert r.returncode == 2 and "regions: must be a list of region names" in r.stderr
    (root / "lambdaship.toml").write_text('function_name = "x"\nhandler = "app.handler"\n')
    r = run_cli("deploy", "-C", str(root), "--regions", "us-east-1,mars")
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == ["error: --regions us-east-1,mars: 'mars' is not an AWS region name; "
                                             "use region names, e.g. --regions us-east-1,eu-west-1"]


def test_deploy_all_refuses_functions_with_regions(tmp_path):
    root = tmp_path / "mono"
    for key in ("api", "worker"):
        (root / key).mkdir(parents=True)
        (root / key / "app.py").write_text("def handler(event, context):\n    return 1\n")
    (root / "lambdaship.toml").write_text(
        'handler = "app.handler"\n\n[functions.api]\nsource = "api"\nregions = ["us-east-1", "eu-west-1"]\n\n'
        '[functions.worker]\nsource = "worker"\n')
    r = run_cli("deploy", "-C", str(root), "--all")
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        "error: deploy --all does not deploy to several regions yet (api set 'regions'); "
        "deploy those functions one at a time: lambdaship deploy -f KEY"]
    r = run_cli("deploy", "-C", str(root), "--all", "--regions", "us-east-1")
    assert r.returncode == 2 and "--all and --regions exclude each other" in r.stderr
