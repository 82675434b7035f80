"""`lambdaship dockerfile`: the Dockerfile parses (BuildKit's own parser), layers come in the right
order, and .dockerignore sends Docker exactly the files `lambdaship build` puts in the image."""

from __future__ import annotations

import os
import re
from pathlib import Path

import dockerfile
import pytest

from lambdaship.config import load_project
from lambdaship.project import DEFAULT_EXCLUDES, app_files
from tests.conftest import cli_json, example_copy, run_cli


@pytest.fixture
def chalice_app(tmp_path: Path) -> Path:
    return example_copy("chalice-app", tmp_path / "chalice-app")


def generate(project: Path, *args: str) -> dict:
    return cli_json("dockerfile", "-C", str(project), "--json", *args)


def _go_glob(pattern: str) -> re.Pattern[str]:
    """A .dockerignore pattern (Go filepath.Match + '**') as a regex over slash paths."""
    out = ""
    i = 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out += "(?:.*/)?"
            i += 3
        elif pattern.startswith("**", i):
            out += ".*"
            i += 2
        elif pattern[i] == "*":
            out += "[^/]*"
            i += 1
        elif pattern[i] == "?":
            out += "[^/]"
            i += 1
        else:
            out += re.escape(pattern[i])
            i += 1
    return re.compile(f"^{out}$")


def docker_context_files(context: Path, ignore_file: Path) -> set[str]:
    """The files Docker sends for ``COPY .``: the last matching pattern (on the path or a parent) wins."""
    rules = []
    for line in ignore_file.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        rules.append((negate, _go_glob(line.lstrip("!").strip("/"))))
    sent = set()
    for dirpath, _, filenames in os.walk(context):
        for f in filenames:
            rel = os.path.relpath(os.path.join(dirpath, f), context).replace(os.sep, "/")
            parts = rel.split("/")
            prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
            excluded = False
            for negate, rx in rules:
                if any(rx.match(p) for p in prefixes):
                    excluded = not negate
            if not excluded:
                sent.add(rel)
    return sent


def test_chalice_dockerfile_layers(chalice_app: Path) -> None:
    data = generate(chalice_app)
    assert [f["status"] for f in data["files"]] == ["created", "created"]
    path = chalice_app / "Dockerfile"
    cmds = dockerfile.parse_file(str(path))
    assert [c.cmd for c in cmds] == ["FROM", "COPY", "RUN", "COPY", "CMD"]
    assert cmds[0].flags == ("--platform=linux/amd64",)
    assert cmds[0].value == ("public.ecr.aws/lambda/python:3.12",)
    assert cmds[1].value == ("requirements.txt", "${LAMBDA_TASK_ROOT}/requirements.txt")
    run = cmds[2].value[0]
    assert run.startswith("pip install --no-cache-dir -r ") and '--target "${LAMBDA_TASK_ROOT}"' in run
    assert cmds[3].value == (".", "${LAMBDA_TASK_ROOT}/")
    assert cmds[4].json and cmds[4].value == ("app.app",)
    assert "docker build --platform linux/amd64 -t chalice-demo" in data["build_command"]


def test_dockerignore_matches_lambdaship_build_files(chalice_app: Path) -> None:
    config = chalice_app / "lambdaship.toml"
    config.write_text(
        'exclude = ["docs", "scratch/*.txt"]\ninclude = ["tests/fixtures/*.json"]\n' + config.read_text()
    )
    for rel, text in {
        "tests/test_app.py": "x", "tests/fixtures/event.json": "{}", ".env": "SECRET=1", "key.pem": "k",
        "chalicelib/__pycache__/store.cpython-312.pyc": "c", "docs/readme.md": "d", "scratch/a.txt": "a",
        "scratch/keep.py": "k", ".chalice/deployments/x.json": "{}", ".git/HEAD": "ref", "sub/.env": "X=1",
        "node_modules/m/index.js": "m",
    }.items():
        (chalice_app / rel).parent.mkdir(parents=True, exist_ok=True)
        (chalice_app / rel).write_text(text)
    generate(chalice_app)
    fn = load_project(chalice_app).function()
    # Docker's own two files are the one documented difference: they exist only for Docker users.
    expected = {arc for arc, _ in app_files(fn)} - {"Dockerfile", ".dockerignore"}
    assert "tests/fixtures/event.json" in expected and ".env" not in expected  # the fixture is meaningful
    sent = docker_context_files(chalice_app, chalice_app / ".dockerignore")
    assert sent == expected
    ignore = (chalice_app / ".dockerignore").read_text()
    for pattern in DEFAULT_EXCLUDES:
        assert pattern in ignore


def test_arm64_custom_base_and_nested_requirements(tmp_path: Path) -> None:
    app = tmp_path / "app"
    app.mkdir()
    (app / "main.py").write_text("def handler(event, context):\n    return 1\n")
    (app / "reqs").mkdir()
    (app / "reqs" / "base.txt").write_text("six==1.16.0\n")
    (app / "reqs" / "prod.txt").write_text("-r base.txt\nhumanize==4.12.3\n")
    (app / "lambdaship.toml").write_text(
        'function_name = "arm-fn"\nhandler = "main.handler"\npython = "3.13"\narchitecture = "arm64"\n'
        'requirements = "reqs/prod.txt"\nbase_image = "public.ecr.aws/lambda/python:3.13.2024.11.22"\n'
    )
    generate(app)
    cmds = dockerfile.parse_file(str(app / "Dockerfile"))
    assert cmds[0].flags == ("--platform=linux/arm64",)
    assert cmds[0].value == ("public.ecr.aws/lambda/python:3.13.2024.11.22",)
    copies = [c.value for c in cmds if c.cmd == "COPY"]
    assert copies[:2] == [
        ("reqs/prod.txt", "${LAMBDA_TASK_ROOT}/reqs/prod.txt"), ("reqs/base.txt", "${LAMBDA_TASK_ROOT}/reqs/base.txt")
    ]
    assert '-r "${LAMBDA_TASK_ROOT}/reqs/prod.txt"' in next(c for c in cmds if c.cmd == "RUN").value[0]
    assert cmds[-1].value == ("main.handler",)


def test_no_requirements_no_pip(tmp_path: Path) -> None:
    (tmp_path / "handler.py").write_text("def handler(event, context):\n    return 1\n")
    (tmp_path / "lambdaship.toml").write_text('function_name = "plain"\nhandler = "handler.handler"\n')
    generate(tmp_path)
    assert [c.cmd for c in dockerfile.parse_file(str(tmp_path / "Dockerfile"))] == ["FROM", "COPY", "CMD"]


def test_out_path_and_overwrite_rules(chalice_app: Path, tmp_path: Path) -> None:
    out = tmp_path / "docker" / "Dockerfile.lambda"
    data = generate(chalice_app, "--out", str(out))
    assert {f["path"] for f in data["files"]} == {str(out), str(out) + ".dockerignore"}
    assert data["context"] == str(chalice_app)
    generate(chalice_app)
    target = chalice_app / "Dockerfile"
    before = target.read_bytes()
    again = generate(chalice_app)
    assert [f["status"] for f in again["files"]] == ["unchanged", "unchanged"]
    target.write_text("FROM scratch\n")
    proc = run_cli("dockerfile", "-C", str(chalice_app))
    assert proc.returncode == 1 and "--force" in proc.stderr and len(proc.stderr.splitlines()) == 1
    assert target.read_text() == "FROM scratch\n"
    forced = generate(chalice_app, "--force")
    assert forced["files"][0]["status"] == "overwritten" and target.read_bytes() == before


def test_bad_handler_and_multi_function(tmp_path: Path) -> None:
    (tmp_path / "handler.py").write_text("def other(event, context):\n    return 1\n")
    (tmp_path / "lambdaship.toml").write_text('function_name = "f"\nhandler = "handler.handler"\n')
    proc = run_cli("dockerfile", "-C", str(tmp_path))
    assert proc.returncode != 0 and proc.stderr.startswith("error: ")
    assert not (tmp_path / "Dockerfile").exists()
    from tests.test_ci_github import make_monorepo

    api = make_monorepo(tmp_path / "mono") if (tmp_path / "mono").mkdir() is None else None
    proc = run_cli("dockerfile", "-C", str(api))
    assert proc.returncode == 2 and "--function" in proc.stderr
    data = generate(api, "--function", "users")
    assert data["function"] == "users-api"
    assert (api / "functions" / "users" / "Dockerfile").is_file()


def test_shared_paths_outside_the_context_are_refused(tmp_path):
    (tmp_path / "svc").mkdir()
    (tmp_path / "svc" / "app.py").write_text("def handler(e, c):\n    return 1\n")
    (tmp_path / "common").mkdir()
    (tmp_path / "common" / "util.py").write_text("")
    (tmp_path / "lambdaship.toml").write_text(
        'function_name = "f"\nhandler = "app.handler"\nsource = "svc"\nshared = ["common"]\n'
    )
    r = run_cli("dockerfile", "-C", str(tmp_path))
    assert r.returncode == 1
    assert r.stderr.strip().splitlines() == [
        "error: function 'f' packages shared paths outside its source directory (common), which a Docker build "
        "context cannot reach; build with 'lambdaship build', or set source = \".\" narrowed with include/exclude"
    ]
    assert not (tmp_path / "svc" / "Dockerfile").exists()


def test_build_flags_override_the_config_like_build(tmp_path: Path) -> None:
    """The shared build flags (--python, --architecture, --base-image) reach the Dockerfile as they reach
    `lambdaship build`: over the config's values."""
    (tmp_path / "handler.py").write_text("def handler(event, context):\n    return 1\n")
    (tmp_path / "lambdaship.toml").write_text('function_name = "flags"\nhandler = "handler.handler"\npython = "3.11"\n')
    out = generate(tmp_path, "--python", "3.13", "--arch", "arm64")
    cmds = dockerfile.parse_file(str(tmp_path / "Dockerfile"))
    assert cmds[0].flags == ("--platform=linux/arm64",)
    assert cmds[0].value == ("public.ecr.aws/lambda/python:3.13",)
    assert "--platform linux/arm64" in out["build_command"]
    generate(tmp_path, "--force")
    assert dockerfile.parse_file(str(tmp_path / "Dockerfile"))[0].value == ("public.ecr.aws/lambda/python:3.11",)
