"""``lambdaship list``, ``delete`` and ``diff`` against the local stack (moto + registry)."""

from __future__ import annotations

import io
import json
import zipfile

import pytest

from tests.conftest import run_cli
from tests.test_deploy import aws, deploy, image_uri, make_project, make_role, push_image, uid


@pytest.fixture
def deployed(local_stack, tmp_path):
    """A function deployed twice by lambdaship (versions 1 and 2, alias live → 2)."""
    name = uid()
    reg = local_stack.registry.url
    d1, d2 = push_image(reg, name, "a"), push_image(reg, name, "b")
    proj = make_project(tmp_path / "app", name, role=make_role())
    for d in (d1, d2):
        r = deploy(proj, "--image", image_uri(name, d))
        assert r.returncode == 0, r.stderr
    return proj, name, d1, d2


def _unmanaged_function() -> str:
    name = uid("plain")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("app.py", "def handler(e, c):\n    return 1\n")
    aws("lambda").create_function(FunctionName=name, Runtime="python3.12", Role=make_role(), Handler="app.handler",
                                  Code={"ZipFile": buf.getvalue()}, Tags={"team": "other"})
    return name


def _function_names() -> set[str]:
    pages = aws("lambda").get_paginator("list_functions").paginate()
    return {f["FunctionName"] for p in pages for f in p["Functions"]}


def _ecr_digests(repo: str) -> set[str]:
    return {d["imageDigest"] for d in aws("ecr").describe_images(repositoryName=repo)["imageDetails"]}


# ---- list ------------------------------------------------------------------------------------
def test_list_shows_managed_functions_with_alias_version_digest(deployed):
    _, name, _, d2 = deployed
    plain = _unmanaged_function()
    r = run_cli("list", "--json")
    assert r.returncode == 0, r.stderr
    functions = {f["function"]: f for f in json.loads(r.stdout)["functions"]}
    assert plain not in functions
    assert functions[name]["aliases"] == [{"alias": "live", "version": "2", "digest": d2}]
    assert functions[name]["package_type"] == "Image"
    text = run_cli("list")
    assert text.returncode == 0
    row = next(line for line in text.stdout.splitlines() if line.startswith(name))
    assert row.split() == [name, "live", "2", d2, "Image"]
    assert text.stdout.splitlines()[0].split() == ["FUNCTION", "ALIAS", "VERSION", "DIGEST", "TYPE"]


# ---- delete ----------------------------------------------------------------------------------
def test_delete_asks_and_no_leaves_everything(deployed):
    proj, name, _, _ = deployed
    r = run_cli("delete", "-C", str(proj), input="n\n")
    assert r.returncode == 1
    assert "aliases: live" in r.stdout and "versions: 1, 2" in r.stdout
    assert r.stderr.strip().splitlines()[-1] == f"error: {name} not deleted; answer y, or pass --yes"
    assert name in _function_names()
    r = run_cli("delete", "-C", str(proj), input="")  # no terminal, no answer: nothing deleted
    assert r.returncode == 1 and name in _function_names()


def test_delete_confirmed_removes_function_keeps_images(deployed):
    proj, name, d1, d2 = deployed
    r = run_cli("delete", "-C", str(proj), input="y\n")
    assert r.returncode == 0, r.stderr
    assert f"deleted function {name}" in r.stdout
    assert name not in _function_names()
    assert {d1, d2} <= _ecr_digests(name)


def test_delete_images_and_repository_are_opt_in(deployed):
    proj, name, d1, d2 = deployed
    r = run_cli("delete", "-C", str(proj), "--images", "--yes", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert set(out["images"]) == {d1, d2} and out["delete_repository"] is False
    assert name not in _function_names()
    assert not ({d1, d2} & _ecr_digests(name))
    assert aws("ecr").describe_repositories(repositoryNames=[name])["repositories"]


def test_delete_repository(deployed):
    proj, name, _, _ = deployed
    r = run_cli("delete", "-C", str(proj), "--repository", "--yes")
    assert r.returncode == 0, r.stderr
    assert f"repository {name}" in r.stdout
    ecr = aws("ecr")
    with pytest.raises(ecr.exceptions.RepositoryNotFoundException):
        ecr.describe_repositories(repositoryNames=[name])


def test_delete_dry_run_deletes_nothing(deployed):
    proj, name, d1, d2 = deployed
    r = run_cli("delete", "-C", str(proj), "--images", "--dry-run", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["dry_run"] is True
    assert name in _function_names() and {d1, d2} <= _ecr_digests(name)


def test_delete_refuses_unmanaged_function_unless_forced(local_stack):
    plain = _unmanaged_function()
    r = run_cli("delete", plain, "--yes")
    assert r.returncode == 1
    assert r.stderr.strip().splitlines() == [
        f"error: function {plain} is not managed by lambdaship (no lambdaship:function={plain} tag); "
        "pass --force to delete it anyway"]
    assert plain in _function_names()
    r = run_cli("delete", plain, "--yes", "--force")
    assert r.returncode == 0, r.stderr
    assert plain not in _function_names()


def test_delete_missing_function_is_one_line(local_stack):
    r = run_cli("delete", "no-such-fn-xyz", "--yes")
    assert r.returncode == 1
    assert r.stderr.strip().splitlines() == [
        "error: function no-such-fn-xyz does not exist; check the name, --region and --profile"]


def test_delete_shared_repository_refused(local_stack, tmp_path):
    name = uid()
    shared = uid("shared")
    reg = local_stack.registry.url
    digest = push_image(reg, shared, "s")
    proj = make_project(tmp_path / "app", name, role=make_role())
    toml = (proj / "lambdaship.toml").read_text().replace(f'repository = "{name}"', f'repository = "{shared}"')
    (proj / "lambdaship.toml").write_text(toml)
    assert deploy(proj, "--image", image_uri(shared, digest)).returncode == 0
    r = run_cli("delete", "-C", str(proj), "--repository", "--yes")
    assert r.returncode == 1 and "is shared" in r.stderr
    assert name in _function_names()


# ---- diff ------------------------------------------------------------------------------------
def test_diff_shows_configuration_old_to_new_and_masks_environment(deployed):
    proj, _, _, _ = deployed
    r = run_cli("diff", "-C", str(proj), "--no-code", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["changed"] is False
    toml = (proj / "lambdaship.toml").read_text()
    extra = 'memory = 1024\ntimeout = 45\n\n[environment]\nAPI_TOKEN = "s3cr3t-value"\n'
    (proj / "lambdaship.toml").write_text(toml + extra)
    r = run_cli("diff", "-C", str(proj), "--no-code", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["deployed_version"] == "2" and out["changed"] is True
    changes = {c["key"]: (c["old"], c["new"]) for c in out["changes"]}
    assert changes == {"MemorySize": (512, 1024), "Timeout": (30, 45)}
    assert out["environment"] == [{"name": "API_TOKEN", "change": "added", "old": None, "new": "****"}]
    text = run_cli("diff", "-C", str(proj), "--no-code", "--exit-code")
    assert text.returncode == 1
    assert "  ~ MemorySize: 512 → 1024" in text.stdout and "  + Environment.API_TOKEN: - → ****" in text.stdout
    assert "s3cr3t" not in text.stdout + text.stderr + r.stdout


def test_diff_of_a_function_not_deployed(local_stack, tmp_path):
    proj = make_project(tmp_path / "app", uid(), role=None)
    r = run_cli("diff", "-C", str(proj), "--no-code", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["exists"] is False and out["changed"] is True
    assert {c["key"] for c in out["changes"]} >= {"MemorySize", "Timeout"}


@pytest.mark.slow
def test_diff_code_digest_after_a_code_change(local_stack, base_image_ref, tmp_path):
    from tests.test_deploy import queue_results

    name = uid()
    proj = make_project(tmp_path / "app", name, role=make_role(),
                        extra=f'base_image = "{base_image_ref}"\npackage_type = "image"')
    queue_results(local_stack.moto.url, {"statusCode": 200})
    r = deploy(proj, "--json")
    assert r.returncode == 0, r.stderr
    digest = json.loads(r.stdout)["digest"]
    r = run_cli("diff", "-C", str(proj), "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["code"] == {"old": digest, "new": digest, "changed": False}
    (proj / "app.py").write_text("def handler(event, context):\n    return {'statusCode': 201}\n")
    r = run_cli("diff", "-C", str(proj), "--json")
    code = json.loads(r.stdout)["code"]
    assert code["old"] == digest and code["new"] != digest and code["changed"] is True


def test_diff_code_digest_of_a_zip_function(local_stack, tmp_path):
    name = uid()
    proj = make_project(tmp_path / "app", name, role=make_role(), extra='package_type = "zip"')
    r = run_cli("deploy", "-C", str(proj), "--json")
    assert r.returncode == 0, r.stderr
    r = run_cli("diff", "-C", str(proj), "--json")
    assert r.returncode == 0, r.stderr
    code = json.loads(r.stdout)["code"]
    assert code["changed"] is False and code["old"].startswith("sha256:")
    assert json.loads(r.stdout)["changes"] == []
    (proj / "app.py").write_text("def handler(event, context):\n    return {'statusCode': 204}\n")
    code = json.loads(run_cli("diff", "-C", str(proj), "--json").stdout)["code"]
    assert code["changed"] is True and code["new"] != code["old"]
    (proj / "lambdaship.toml").write_text((proj / "lambdaship.toml").read_text() + 'python = "3.13"\n')
    changes = json.loads(run_cli("diff", "-C", str(proj), "--no-code", "--json").stdout)["changes"]
    assert {"key": "Runtime", "old": "python3.12", "new": "python3.13"} in changes
    r = run_cli("list", "--json")
    row = next(f for f in json.loads(r.stdout)["functions"] if f["function"] == name)
    assert row["package_type"] == "Zip" and row["aliases"][0]["digest"] == code["old"]
