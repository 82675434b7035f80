"""Zip deploys on the local stack (moto): create, versions, alias, smoke test, no-op redeploy,
update, S3 upload, rollback; and ``auto`` choosing an image for real dependencies over the limits."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
import shutil
import uuid
import zipfile
from pathlib import Path

import boto3
import pytest

from lambdaship.local.stack import StackState
from tests.conftest import EXAMPLES, run_cli


def _clients() -> tuple:
    return boto3.client("lambda"), boto3.client("s3"), boto3.client("iam")


def _role(iam) -> str:
    name = f"zip-role-{uuid.uuid4().hex[:8]}"
    doc = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
                                                  "Action": "sts:AssumeRole"}]}
    return iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(doc))["Role"]["Arn"]


def _app(tmp_path: Path, name: str, package_type: str, role: str, extra: str = "") -> Path:
    app = tmp_path / name
    shutil.copytree(EXAMPLES / "handler-app", app)
    text = (app / "pyproject.toml").read_text()
    text = text.replace('function_name = "handler-demo"',
                        f'function_name = "{name}"\npackage_type = "{package_type}"\nrole = "{role}"{extra}')
    (app / "pyproject.toml").write_text(text)
    return app


def _deploy(app: Path, *args: str) -> dict:
    proc = run_cli("deploy", "--json", *args, cwd=app)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_small_app_deploys_as_zip(local_stack: StackState, tmp_path: Path) -> None:
    lam, _, iam = _clients()
    name = f"zipapp-{uuid.uuid4().hex[:8]}"
    app = _app(tmp_path, name, "zip", _role(iam))

    dry = run_cli("deploy", "--dry-run", cwd=app)
    assert dry.returncode == 0, dry.stderr
    assert "package:Choose" in dry.stdout and "fits a direct zip upload" in dry.stdout
    assert name not in [f["FunctionName"] for f in lam.list_functions()["Functions"]]  # dry run: no change

    first = _deploy(app)
    steps = first["steps"]
    assert steps[0] == "package:Choose" and "zip:Upload" in steps and "lambda:CreateFunction" in steps
    assert steps[-1] == "lambda:CreateAlias" and "smoke:Invoke" in steps
    assert first["version"] == "1" and first["alias_version"] == "1" and first["image_uri"] is None
    sha_hex = first["digest"].removeprefix("sha256:")

    cfg = lam.get_function_configuration(FunctionName=name)
    assert cfg["PackageType"] == "Zip" and cfg["Runtime"] == "python3.12" and cfg["Handler"] == "handler.handler"
    assert cfg["Architectures"] == ["x86_64"]
    assert cfg["CodeSha256"] == base64.b64encode(bytes.fromhex(sha_hex)).decode()
    version = lam.get_function_configuration(FunctionName=name, Qualifier="1")
    assert version["CodeSha256"] == cfg["CodeSha256"]
    assert f"lambdaship zip=sha256:{sha_hex}" in version["Description"]
    assert lam.get_alias(FunctionName=name, Name="live")["FunctionVersion"] == "1"

    # unchanged → nothing happens
    again = _deploy(app)
    assert again["up_to_date"] is True and again["version"] == "1"

    # a code change → UpdateFunctionCode, version 2, alias moves; rollback moves it back
    (app / "handler.py").write_text((app / "handler.py").read_text() + "\n# v2\n")
    second = _deploy(app)
    assert "lambda:UpdateFunctionCode" in second["steps"] and second["version"] == "2"
    assert second["previous_version"] == "1" and second["alias_version"] == "2"
    assert lam.get_function_configuration(FunctionName=name)["CodeSha256"] != cfg["CodeSha256"]
    back = run_cli("rollback", "--json", cwd=app)
    assert back.returncode == 0, back.stderr
    assert json.loads(back.stdout)["to_version"] == "1"
    assert lam.get_alias(FunctionName=name, Name="live")["FunctionVersion"] == "1"


def test_zip_through_s3_with_created_bucket(local_stack: StackState, tmp_path: Path) -> None:
    """The S3 path of a zip upload (used over 50 MiB), exercised on a small zip through zipplan."""
    from lambdaship.config import load_project
    from lambdaship.package import archive, zipplan

    lam, s3, iam = _clients()
    name = f"zips3-{uuid.uuid4().hex[:8]}"
    bucket = f"lambdaship-zips-{uuid.uuid4().hex[:8]}"
    app = _app(tmp_path, name, "zip", _role(iam))
    fn = load_project(app).function()
    art = archive.build_zip(fn)
    zplan = zipplan.ZipPlan(zipplan.Decision("zip", "s3", "test"), art, bucket)
    with pytest.raises(Exception, match="does not exist"):
        zipplan.check_bucket(zplan)
    code = zipplan.upload(fn, zplan, create_bucket=True)
    assert code == {"S3Bucket": bucket, "S3Key": f"lambdaship/{name}/{art.sha256}.zip"}
    body = s3.get_object(Bucket=bucket, Key=code["S3Key"])["Body"].read()
    assert hashlib.sha256(body).hexdigest() == art.sha256
    assert zipplan.upload(fn, zplan) == code  # already there: no second upload needed
    resp = lam.create_function(FunctionName=name, Role=fn.role, **zipplan.create_params(fn, code))
    zipplan.check_code_sha256(resp, art)
    with zipfile.ZipFile(io.BytesIO(body)) as zf:
        assert "handler.py" in zf.namelist()


def test_zip_over_50_mib_goes_through_s3_and_is_refused_without_a_bucket(
    local_stack: StackState, tmp_path: Path
) -> None:
    lam, s3, iam = _clients()
    name = f"zipbig-{uuid.uuid4().hex[:8]}"
    bucket = f"lambdaship-zips-{uuid.uuid4().hex[:8]}"
    app = _app(tmp_path, name, "zip", _role(iam))
    (app / "blob.bin").write_bytes(hashlib.shake_256(b"x").digest(51 * 1024 * 1024))  # incompressible

    proc = run_cli("deploy", cwd=app)
    assert proc.returncode == 1
    assert re.match(r"error: the zip package is [\d.]+ MiB zipped, over the 50 MiB direct-upload limit", proc.stderr)
    assert "--zip-bucket" in proc.stderr
    proc = run_cli("deploy", "--zip-bucket", bucket, cwd=app)
    assert proc.returncode == 1 and f"S3 bucket '{bucket}' does not exist" in proc.stderr
    assert "--create-bucket" in proc.stderr
    assert name not in [f["FunctionName"] for f in lam.list_functions()["Functions"]]  # nothing half-done
    assert bucket not in [b["Name"] for b in s3.list_buckets()["Buckets"]]

    out = _deploy(app, "--zip-bucket", bucket, "--create-bucket")
    assert out["plan"]["steps"][0]["params"]["Upload"] == "s3"
    upload = next(s for s in out["plan"]["steps"] if s["action"] == "zip:Upload")
    key = upload["params"]["Key"]
    assert key == f"lambdaship/{name}/{out['digest'].removeprefix('sha256:')}.zip"
    body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    assert len(body) > 50 * 1024 * 1024 and "sha256:" + hashlib.sha256(body).hexdigest() == out["digest"]
    cfg = lam.get_function_configuration(FunctionName=name)
    assert cfg["PackageType"] == "Zip"
    assert cfg["CodeSha256"] == base64.b64encode(hashlib.sha256(body).digest()).decode()
    assert lam.get_alias(FunctionName=name, Name="live")["FunctionVersion"] == out["version"] == "1"


@pytest.mark.slow
def test_real_dependencies_over_the_limits_make_auto_choose_an_image(
    local_stack: StackState, base_image_ref: str, tmp_path: Path
) -> None:
    lam, _, iam = _clients()
    name = f"autobig-{uuid.uuid4().hex[:8]}"
    app = _app(tmp_path, name, "auto", _role(iam), extra=f'\nbase_image = "{base_image_ref}"')
    # ≈ 360 MiB unzipped, ≈ 120 MiB zipped: over both zip limits whatever the installer prunes or compiles
    (app / "requirements.txt").write_text("numpy==2.3.4\npandas==2.3.3\nscipy==1.16.3\npyarrow==21.0.0\n")

    size = run_cli("size", "--json", cwd=app)
    assert size.returncode == 0, size.stderr
    report = json.loads(size.stdout)
    assert report["zip_size"] > 50 * 1024 * 1024
    assert report["unzipped_size"] > 250 * 1024 * 1024
    assert report["recommendation"]["package_type"] == "image"
    assert "over the 250 MiB zip limit" in report["recommendation"]["reason"]

    # as tests/test_deploy.py does: the push step expects the ECR repository to exist
    boto3.client("ecr").create_repository(repositoryName=name)
    out = _deploy(app, "--skip-smoke")
    plan_steps = out["plan"]["steps"]
    assert plan_steps[0]["action"] == "package:Choose"
    assert plan_steps[0]["params"]["PackageType"] == "Image"
    assert "unzipped is over the 250 MiB zip limit" in plan_steps[0]["note"]  # the size decided, not base_image
    assert out["image_uri"] and "@sha256:" in out["image_uri"]
    cfg = lam.get_function_configuration(FunctionName=name)
    assert cfg["PackageType"] == "Image"
