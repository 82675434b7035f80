"""Parallel deploys: of one function, and of several functions sharing one ECR repository.

Real processes (``lambdaship deploy``) started at once against the local stack. Afterwards:
no lost update (the alias serves a version whose recorded image is one that was deployed, and
every published version's image is one of them and still in the registry), a loser fails with
one line, and the registry is intact (every tag's manifest, config and layers exist and hash to
their digests). Figures are printed (and written with ``LAMBDASHIP_FAULT_REPORT``, see
test_faults.py) for docs/reliability.md.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.test_deploy import alias_version, aws, make_role, uid, version_digest

N = 4
ACCEPT = "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json"
REPORT: dict[str, dict[str, int]] = {}


def _record(name: str, **figures: int) -> None:
    REPORT[name] = figures
    print(f"\n{name}: {json.dumps(figures)}")
    path = os.environ.get("LAMBDASHIP_FAULT_REPORT")
    if path:
        old = json.loads(Path(path).read_text()) if Path(path).is_file() else {}
        Path(path).write_text(json.dumps({**old, **REPORT}, indent=2) + "\n")


def _project(root: Path, name: str, base: str, role: str, marker: str, repository: str | None = None) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    code = f"def handler(event, context):\n    return {{'statusCode': 200, 'body': '{marker}'}}\n"
    (root / "app.py").write_text(code)
    repo = f'repository = "{repository}"\n' if repository else ""
    (root / "lambdaship.toml").write_text(
        f'function_name = "{name}"\nhandler = "app.handler"\nbase_image = "{base}"\nrole = "{role}"\n{repo}')
    return root


def _deploy_all(projects: list[Path]) -> list[tuple[int, str, str]]:
    procs = [subprocess.Popen([sys.executable, "-m", "lambdaship.cli", "deploy", "-C", str(p), "--skip-smoke",
                               "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env=dict(os.environ)) for p in projects]
    out = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=300)
        out.append((p.returncode, stdout, stderr))
    return out


def _clean_failure(code: int, stderr: str) -> bool:
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    others = [line for line in stderr.splitlines() if line.strip() and not line.startswith(("error:", "→ "))]
    return code == 1 and len(errors) == 1 and not others and "Traceback" not in stderr


def registry_intact(registry_url: str, repo: str) -> tuple[int, list[str]]:
    """(tags checked, problems): every tag's manifest, config and layers exist and verify."""
    problems: list[str] = []
    tags = httpx.get(f"{registry_url}/v2/{repo}/tags/list").json().get("tags") or []
    seen: set[str] = set()
    for tag in tags:
        r = httpx.get(f"{registry_url}/v2/{repo}/manifests/{tag}", headers={"Accept": ACCEPT})
        if r.status_code != 200:
            problems.append(f"{tag}: manifest {r.status_code}")
            continue
        if "sha256:" + hashlib.sha256(r.content).hexdigest() != r.headers["Docker-Content-Digest"]:
            problems.append(f"{tag}: manifest does not hash to its digest")
        m = r.json()
        for d in [m["config"], *m["layers"]]:
            if d["digest"] in seen:
                continue
            seen.add(d["digest"])
            blob = httpx.get(f"{registry_url}/v2/{repo}/blobs/{d['digest']}", follow_redirects=True)
            if blob.status_code != 200:
                problems.append(f"{tag}: blob {d['digest']} {blob.status_code}")
            elif "sha256:" + hashlib.sha256(blob.content).hexdigest() != d["digest"] or len(blob.content) != d["size"]:
                problems.append(f"{tag}: blob {d['digest']} corrupt")
    return len(tags), problems


@pytest.mark.slow
def test_parallel_deploys_of_one_function(local_stack, base_image_ref: str, tmp_path: Path) -> None:
    """N deploys of the same function with N different builds, twice: no lost update."""
    name = uid("conc")
    role = make_role()
    reg = local_stack.registry.url
    succeeded = failed = 0
    deployed: set[str] = set()
    ok_digests: set[str] = set()
    for rnd in range(2):
        projects = [_project(tmp_path / f"r{rnd}-p{i}", name, base_image_ref, role, f"r{rnd}-{i}")
                    for i in range(N)]
        results = _deploy_all(projects)
        for code, stdout, stderr in results:
            if code == 0:
                succeeded += 1
                ok_digests.add(json.loads(stdout)["digest"])
            else:
                failed += 1
                assert _clean_failure(code, stderr), stderr
        assert any(code == 0 for code, _, _ in results)
        deployed |= ok_digests
        # Digests a loser pushed but could not deploy are legitimate images too (same builds).
        for p in projects:
            r = subprocess.run([sys.executable, "-m", "lambdaship.cli", "build", "-C", str(p), "--json"],
                               capture_output=True, text=True, env=dict(os.environ), timeout=120)
            assert r.returncode == 0, r.stderr
            deployed.add(json.loads(r.stdout)["manifest_digest"])
        live = version_digest(name, alias_version(name))
        assert live in ok_digests, (live, ok_digests)  # the alias serves what a successful deploy reported
    versions = [v["Version"] for v in aws("lambda").list_versions_by_function(FunctionName=name)["Versions"]
                if v["Version"] != "$LATEST"]
    digests = [version_digest(name, v) for v in versions]
    assert set(digests) <= deployed, (digests, deployed)
    assert len(digests) == len(set(digests)), digests  # no version published twice for one image
    for d in digests:
        assert httpx.head(f"{reg}/v2/{name}/manifests/{d}").status_code == 200
    tags, problems = registry_intact(reg, name)
    assert not problems, problems
    _record("concurrency: same function", deploys=2 * N, succeeded=succeeded, failed_cleanly=failed,
            versions=len(versions), tags_verified=tags, violations=len(problems))


@pytest.mark.slow
def test_parallel_deploys_sharing_one_repository(local_stack, base_image_ref: str, tmp_path: Path) -> None:
    """N functions, one ECR repository, deployed at once: each ends on its own image."""
    repo = uid("shared")
    role = make_role()
    names = [uid(f"share{i}") for i in range(N)]
    projects = [_project(tmp_path / n, n, base_image_ref, role, n, repository=repo) for n in names]
    results = _deploy_all(projects)
    succeeded = sum(code == 0 for code, _, _ in results)
    for code, _, stderr in results:
        assert code == 0, stderr  # different functions do not conflict
    for n, (_, stdout, _) in zip(names, results, strict=True):
        digest = json.loads(stdout)["digest"]
        assert version_digest(n, alias_version(n)) == digest
        uri = aws("lambda").get_function(FunctionName=n)["Code"]["ImageUri"]
        assert uri.endswith(f"/{repo}@{digest}")
    assert len(aws("ecr").describe_repositories(repositoryNames=[repo])["repositories"]) == 1
    tags, problems = registry_intact(local_stack.registry.url, repo)
    assert tags >= N and not problems, problems
    # Each function's image keeps its own lifecycle-protecting tag (not one "deployed-1" for all).
    listed = httpx.get(f"{local_stack.registry.url}/v2/{repo}/tags/list").json()["tags"]
    for n, (_, stdout, _) in zip(names, results, strict=True):
        manifest = httpx.head(f"{local_stack.registry.url}/v2/{repo}/manifests/deployed-{n}-1",
                              headers={"Accept": ACCEPT})
        assert manifest.headers.get("Docker-Content-Digest") == json.loads(stdout)["digest"], (n, listed)
    _record("concurrency: functions sharing a repository", deploys=N, succeeded=succeeded,
            failed_cleanly=N - succeeded, tags_verified=tags, violations=len(problems))


def test_two_builds_of_one_dependency_set_on_one_runner_install_it_once(base_image_ref: str, tmp_path: Path) -> None:
    """Two ``lambdaship build`` processes at once, one cache (LAMBDASHIP_HOME): the second waits
    for the first's install (a lock per cache entry), then takes the entry; same image from both."""
    from tests.test_build import HANDLER_APP, _copy_app

    home = tmp_path / "home"
    env = {**os.environ, "LAMBDASHIP_HOME": str(home), "UV_CACHE_DIR": str(home / "uv")}
    apps = [_copy_app(HANDLER_APP, tmp_path / f"app{i}", 1_600_000_000) for i in range(2)]
    procs = [subprocess.Popen([sys.executable, "-m", "lambdaship.cli", "build", "-C", str(app), "--json",
                               "--base-image", base_image_ref], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env=env) for app in apps]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err for _, err in outs]
    results = [json.loads(out) for out, _ in outs]
    assert sorted(r["deps_cached"] for r in results) == [False, True], "one installed, the other waited and reused"
    assert results[0]["manifest_digest"] == results[1]["manifest_digest"]
    assert len([d for d in (home / "deps").iterdir() if d.is_dir()]) == 1
