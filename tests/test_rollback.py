"""``lambdaship rollback`` on the local stack."""

from __future__ import annotations

import json

import httpx

from tests.conftest import run_cli
from tests.test_deploy import (
    alias_version,
    aws,
    deploy,
    image_uri,
    make_project,
    make_role,
    push_image,
    uid,
)


def _three_deploys(reg: str, tmp_path) -> tuple[str, object, list[str]]:
    name = uid()
    digests = [push_image(reg, name, m) for m in ("r1", "r2", "r3")]
    proj = make_project(tmp_path, name, role=make_role())
    for d in digests:
        r = deploy(proj, "--image", image_uri(name, d))
        assert r.returncode == 0, r.stderr
    assert alias_version(name) == "3"
    return name, proj, digests


def test_rollback_walks_back_through_previous_versions(local_stack, tmp_path):
    registry = local_stack.registry.url
    name, proj, digests = _three_deploys(registry, tmp_path)
    r = run_cli("rollback", "-C", str(proj), "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert (out["from_version"], out["to_version"], out["digest"]) == ("3", "2", digests[1])
    assert alias_version(name) == "2"
    r = run_cli("rollback", "-C", str(proj))
    assert r.returncode == 0, r.stderr
    assert "from version 2 to 1" in r.stdout
    assert alias_version(name) == "1"
    # Nothing older than 1: a clear error, the alias stays.
    r = run_cli("rollback", "-C", str(proj))
    assert r.returncode == 1 and r.stderr.startswith("error: ") and "no version before 1" in r.stderr
    assert alias_version(name) == "1"


def test_rollback_to_version_or_digest(local_stack, tmp_path):
    registry = local_stack.registry.url
    name, proj, digests = _three_deploys(registry, tmp_path)
    r = run_cli("rollback", "-C", str(proj), "--to", "1")
    assert r.returncode == 0, r.stderr
    assert alias_version(name) == "1"
    r = run_cli("rollback", "-C", str(proj), "--to", digests[2])
    assert r.returncode == 0, r.stderr
    assert alias_version(name) == "3"
    r = run_cli("rollback", "-C", str(proj), "--to", "9")
    assert r.returncode == 2 and "no version 9" in r.stderr
    # --dry-run moves nothing.
    r = run_cli("rollback", "-C", str(proj), "--to", "2", "--dry-run")
    assert r.returncode == 0 and "would move" in r.stdout
    assert alias_version(name) == "3"


def test_rollback_refuses_when_the_image_was_deleted(local_stack, tmp_path):
    registry = local_stack.registry.url
    name, proj, digests = _three_deploys(registry, tmp_path)
    r = httpx.delete(f"{registry}/v2/{name}/manifests/{digests[1]}")
    assert r.status_code == 202
    before = aws("lambda").get_alias(FunctionName=name, Name="live")
    r = run_cli("rollback", "-C", str(proj))
    assert r.returncode == 1
    assert len(r.stderr.strip().splitlines()) == 1
    assert "version 2" in r.stderr and "no longer exists" in r.stderr
    after = aws("lambda").get_alias(FunctionName=name, Name="live")
    assert (after["FunctionVersion"], after["Description"]) == (before["FunctionVersion"], before["Description"])
    # Version 1's image is still there: naming it works.
    r = run_cli("rollback", "-C", str(proj), "--to", "1")
    assert r.returncode == 0, r.stderr
    assert alias_version(name) == "1"
