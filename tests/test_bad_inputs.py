"""The bad-input catalogue (tests/bad_inputs/cases/*.toml), run against the real local stack.

Each case: non-zero exit, exactly one line on stderr (``error: …`` naming the problem), no
traceback, and nothing created remotely (moto's functions, roles, repositories, secrets,
parameters, buckets and the registry catalogue are compared before and after).
See tests/bad_inputs/README.md for the case format.
"""

from __future__ import annotations

import os
import re
import tomllib
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.hostile.package_index import write_sdist

CASES_DIR = Path(__file__).parent / "bad_inputs" / "cases"
CASES = sorted(CASES_DIR.glob("*.toml"))


def test_catalogue_has_at_least_30_cases() -> None:
    assert len(CASES) >= 30, [c.name for c in CASES]


@pytest.fixture(scope="module")
def images(local_stack, base_image_ref: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    from tests.images import push_declared_huge, push_index, registry_host

    reg = local_stack.registry.url
    work = tmp_path_factory.mktemp("bad-images")
    return {
        "base": base_image_ref,
        "registry": registry_host(reg),
        "index_arm64": push_index(reg, work, "lambda-base/arm-only", "3.12", ["arm64"]),
        "huge": push_declared_huge(base_image_ref, "huge"),
    }


def _fill(value: Any, subs: dict[str, str]) -> Any:
    if isinstance(value, str):
        for k, v in subs.items():
            value = value.replace("{" + k + "}", v)
        return value
    if isinstance(value, list):
        return [_fill(v, subs) for v in value]
    if isinstance(value, dict):
        return {_fill(k, subs): _fill(v, subs) for k, v in value.items()}
    return value


def _sdist(dest: Path, name: str) -> None:
    """An sdist with a C extension and no wheel (what a native package without wheels looks like)."""
    write_sdist(dest, name, {
        "setup.py": "from setuptools import setup, Extension\n"
                    f"setup(name={name!r}, version='1.0', ext_modules=[Extension({name!r}, ['{name}.c'])])\n",
        f"{name}.c": "#include <Python.h>\n"})


def remote_state(registry_url: str) -> dict[str, Any]:
    """Everything a deploy could create, in the account and in the registry."""
    from tests.test_deploy import aws

    def pages(service: str, op: str, key: str, field: str, **kw: Any) -> list[str]:
        out: list[str] = []
        for page in aws(service).get_paginator(op).paginate(**kw):
            out += [item[field] for item in page[key]]
        return sorted(out)

    catalog: list[str] = []
    url: str | None = f"{registry_url}/v2/_catalog?n=1000"
    while url:  # paginated with Link: <...>; rel="next"
        r = httpx.get(url)
        r.raise_for_status()
        catalog += r.json()["repositories"]
        nxt = r.links.get("next", {}).get("url")
        url = f"{registry_url}{nxt}" if nxt else None
    return {
        "functions": pages("lambda", "list_functions", "Functions", "FunctionName"),
        "roles": pages("iam", "list_roles", "Roles", "RoleName"),
        "repositories": pages("ecr", "describe_repositories", "repositories", "repositoryName"),
        "secrets": pages("secretsmanager", "list_secrets", "SecretList", "Name"),
        "parameters": pages("ssm", "describe_parameters", "Parameters", "Name"),
        "buckets": sorted(b["Name"] for b in aws("s3").list_buckets()["Buckets"]),
        "catalog": sorted(catalog),
    }


def _setup(proj: Path, setup: dict[str, Any]) -> None:
    from tests.test_deploy import aws

    for link, target in setup.get("symlinks", {}).items():
        (proj / link).parent.mkdir(parents=True, exist_ok=True)
        (proj / link).symlink_to(target)
    for rel, text in setup.get("latin1", {}).items():  # files that are not UTF-8
        (proj / rel).parent.mkdir(parents=True, exist_ok=True)
        (proj / rel).write_bytes(text.encode("latin-1"))
    for fifo in setup.get("fifos", []):
        os.mkfifo(proj / fifo)
    for d in setup.get("dirs", []):
        (proj / d).mkdir(parents=True)
    if "sdist" in setup:
        _sdist(proj / "dist", setup["sdist"])
    for sid, value in setup.get("secretsmanager", {}).items():
        aws("secretsmanager").create_secret(Name=sid, SecretString=value)
    for pname, value in setup.get("ssm", {}).items():
        aws("ssm").put_parameter(Name=pname, Value=value, Type="SecureString")


@pytest.mark.parametrize("case", CASES, ids=[c.stem for c in CASES])
def test_bad_input(case: Path, local_stack, images: dict[str, str], tmp_path: Path) -> None:
    spec = tomllib.loads(case.read_text())
    subs = {**images, "uid": uuid.uuid4().hex[:10]}
    spec = _fill(spec, subs)
    proj = tmp_path / "proj"
    proj.mkdir()
    for rel, text in spec.get("files", {}).items():
        (proj / rel).parent.mkdir(parents=True, exist_ok=True)
        (proj / rel).write_text(text)
    _setup(proj, spec.get("setup", {}))

    env = dict(os.environ)
    for k, v in spec.get("env", {}).items():
        if v == "":
            env.pop(k, None)
        else:
            env[k] = v.replace("{tmp}", str(tmp_path))
    for k in [k for k, v in spec.get("env", {}).items() if v == "{empty_file}"]:
        empty = tmp_path / f"empty-{k}"
        empty.write_text("")
        env[k] = str(empty)

    before = remote_state(local_stack.registry.url)
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "lambdaship.cli", *spec["args"]], cwd=proj, env=env,
                          capture_output=True, text=True, timeout=120, input=spec.get("stdin"))
    after = remote_state(local_stack.registry.url)

    why = f"{case.name}: {spec['description']}\nexit={proc.returncode}\nstdout={proc.stdout}\nstderr={proc.stderr}"
    assert proc.returncode != 0, why
    if "exit_code" in spec:
        assert proc.returncode == spec["exit_code"], why
    assert "Traceback" not in proc.stderr + proc.stdout, why
    # the one error line; a build's per-stage progress lines (CI mode, "base   0.1 s  …") may precede it
    lines = [line for line in proc.stderr.splitlines() if line.strip() and not re.match(r"[a-z]+ +\d+\.\d s  ", line)]
    assert len(lines) == 1, why
    assert lines[0].startswith("error: "), why
    assert re.search(spec["stderr"], lines[0], re.IGNORECASE), why
    if "absent" in spec:  # e.g. the content of a file that must never be echoed
        assert spec["absent"] not in proc.stdout + proc.stderr, why
    assert after == before, why

