"""Many functions: change detection since a git ref, parallel deploy with a per-function summary.

Fast tests build a three-function project in a temporary git repository and check the
decisions (and their reasons); the slow ones deploy it on the local stack with the real CLI.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from lambdaship.config import load_project
from lambdaship.deploy.fleet import changes as fleet
from lambdaship.deploy.fleet.run import deploy_all
from lambdaship.deploy.fleet.status import parse_since
from lambdaship.errors import UsageError
from tests.conftest import run_cli

# -- a three-function project in a git repository -------------------------------------------------
APP_A = "from common.util import greet\n\n\ndef handler(event, context):\n    return greet('a')\n"
APP_B = "import common.util\n\n\ndef handler(event, context):\n    return common.util.greet('b')\n"
APP_C = "import json\n\n\ndef handler(event, context):\n    return json.dumps({'c': 1})\n"
UTIL = "from common.fmt import upper\n\n\ndef greet(who):\n    return upper('hello ' + who)\n"
FMT = "def upper(s):\n    return s.upper()\n"


def git(root: Path, *args: str) -> str:
    proc = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, check=True)
    return proc.stdout.strip()


def write(root: Path, rel: str, text: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def commit(root: Path, message: str = "change") -> str:
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", message)
    return git(root, "rev-parse", "HEAD")


ROOT_EXCLUDES = ["services", "schemas", "*.md", "requirements*.txt", "lambdaship.toml", ".gitignore"]


def config_text(names: dict[str, str], *, base_image: str | None = None, role: str | None = None,
                extra: dict[str, str] | None = None, top: str = "", layout: str = "dirs") -> str:
    """``dirs``: each function's source is services/<key>, the shared package is outside it.
    ``root``: every source is the project root, narrowed with include/exclude, so the shared
    package ships inside the images of the functions that use it (a and b; c excludes it)."""
    lines = ['python = "3.12"']
    if layout == "dirs":
        lines.append('exclude = ["requirements*.txt", "*.md"]')
    if base_image:
        lines.append(f'base_image = "{base_image}"')
    if role:
        lines.append(f'role = "{role}"')
    lines.append(top)
    for key, name in names.items():
        lines += ["", f"[functions.{key}]", f'function_name = "{name}"']
        if layout == "dirs":
            lines += [f'source = "services/{key}"', 'handler = "app.handler"']
        else:
            excludes = ROOT_EXCLUDES + (["common"] if key == "c" else [])
            lines += ['source = "."', f'handler = "services.{key}.app.handler"',
                      f'requirements = "services/{key}/requirements.txt"', f'include = ["services/{key}/*.py"]',
                      f"exclude = {json.dumps(excludes)}"]
        lines.append((extra or {}).get(key, ""))
    return "\n".join(lines) + "\n"


def make_project(root: Path, names: dict[str, str] | None = None, **kw: Any) -> Path:
    """A git repository with three functions (a and b import the shared package ``common``)."""
    names = names or {"a": "fn-a", "b": "fn-b", "c": "fn-c"}
    root.mkdir(parents=True, exist_ok=True)
    git(root, "init", "-q", "-b", "main")
    git(root, "config", "user.email", "t@example.com")
    git(root, "config", "user.name", "t")
    write(root, "lambdaship.toml", config_text(names, **kw))
    write(root, ".gitignore", "__pycache__/\n*.pyc\n")
    write(root, "services/a/app.py", APP_A)
    write(root, "services/b/app.py", APP_B)
    write(root, "services/c/app.py", APP_C)
    for key in names:
        write(root, f"services/{key}/requirements.txt", "six==1.17.0\n")
        write(root, f"services/{key}/README.md", f"function {key}\n")
    write(root, "common/__init__.py", "")
    write(root, "common/util.py", UTIL)
    write(root, "common/fmt.py", FMT)
    write(root, "schemas/event.json", "{}\n")
    commit(root, "initial")
    return root


def decisions(root: Path, ref: str = "HEAD~1", **kw: Any) -> dict[str, fleet.Decision]:
    return {d.key: d for d in fleet.detect_changes(load_project(root), ref, **kw)}


def changed(ds: dict[str, fleet.Decision]) -> set[str]:
    return {k for k, d in ds.items() if d.changed}


def changed_reasons(root: Path, ref: str = "HEAD~1") -> dict[str, str]:
    """The functions that changed since ``ref``, each with its reason."""
    return {k: d.reason for k, d in decisions(root, ref).items() if d.changed}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return make_project(tmp_path / "repo")


# -- change detection -----------------------------------------------------------------------------
def test_code_change_marks_only_that_function(project: Path) -> None:
    write(project, "services/c/app.py", APP_C + "# v2\n")
    commit(project)
    assert changed_reasons(project) == {"c": "source changed: services/c/app.py"}
    ds = decisions(project)
    assert ds["a"].reason == "unchanged" and ds["b"].reason == "unchanged"


def test_shared_module_marks_the_functions_that_import_it(project: Path) -> None:
    write(project, "common/util.py", UTIL + "# v2\n")
    commit(project)
    assert changed_reasons(project) == dict.fromkeys("ab", "shared code changed: common/util.py")


def test_shared_module_imported_transitively(project: Path) -> None:
    write(project, "common/fmt.py", FMT + "# v2\n")
    commit(project)
    ds = decisions(project)
    assert changed(ds) == {"a", "b"}
    assert ds["a"].reason == "shared code changed: common/fmt.py"


def test_module_in_the_source_dir_shadows_the_project_root(project: Path) -> None:
    # c gets its own 'common' package: the root one is not what c imports any more.
    write(project, "services/c/common/__init__.py", "")
    write(project, "services/c/common/util.py", "def greet(w):\n    return w\n")
    write(project, "services/c/app.py", "from common.util import greet\n\n\ndef handler(e, c):\n    return greet(1)\n")
    commit(project)
    write(project, "common/util.py", UTIL + "# v3\n")
    commit(project)
    assert changed(decisions(project)) == {"a", "b"}


def test_pinned_dependency_change_marks_only_that_function(project: Path) -> None:
    write(project, "services/a/requirements.txt", "six==1.16.0\n")
    commit(project)
    assert changed_reasons(project) == {"a": "dependency set changed: services/a/requirements.txt"}


def test_config_change_of_one_function_and_of_the_defaults(project: Path) -> None:
    text = (project / "lambdaship.toml").read_text()
    write(project, "lambdaship.toml", text.replace('function_name = "fn-c"', 'function_name = "fn-c"\nmemory = 1024'))
    commit(project)
    assert changed_reasons(project) == {"c": "config changed: memory"}
    # a top-level default applies to every function
    text = (project / "lambdaship.toml").read_text()
    write(project, "lambdaship.toml", text.replace('python = "3.12"', 'python = "3.12"\ntimeout = 60'))
    commit(project)
    assert changed_reasons(project) == dict.fromkeys("abc", "config changed: timeout")


def test_comment_only_config_edit_changes_nothing(project: Path) -> None:
    write(project, "lambdaship.toml", "# reformatted\n" + (project / "lambdaship.toml").read_text())
    commit(project)
    assert changed(decisions(project)) == set()


def test_excluded_files_do_not_count(project: Path) -> None:
    write(project, "services/a/README.md", "docs only\n")  # user exclude *.md
    write(project, "services/b/tests/test_app.py", "def test(): pass\n")  # default exclude 'tests'
    write(project, "docs/notes.txt", "unrelated\n")
    commit(project)
    ds = decisions(project)
    assert changed(ds) == set(), {k: d.reason for k, d in ds.items()}


def test_include_wins_over_exclude(tmp_path: Path) -> None:
    root = make_project(tmp_path / "repo", extra={"a": 'include = ["README.md"]'})
    write(root, "services/a/README.md", "shipped with a\n")
    write(root, "services/b/README.md", "not shipped with b\n")
    commit(root)
    assert changed_reasons(root) == {"a": "source changed: services/a/README.md"}


def test_in_image_agrees_with_the_builders_file_list(tmp_path: Path) -> None:
    """The rule applied to changed (maybe deleted) paths is the builder's rule for existing files."""
    from lambdaship.project import app_files

    root = make_project(tmp_path / "repo", layout="root")
    for rel in ("services/a/tests/test_x.py", "services/a/.env", "services/a/data/x.json", "common/__pycache__/u.pyc",
                "services/b/app.py", "notes.md", "common/sub/deep.py", "services/a/sub/mod.py"):
        write(root, rel, "x\n")
    fn = load_project(root).functions["a"]
    shipped = {rel for rel, _ in app_files(fn)}
    every = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() and ".git/" not in p.as_posix()}
    assert {"services/a/app.py", "common/util.py", "common/sub/deep.py", "services/a/sub/mod.py"} <= shipped
    assert {rel for rel in every if fleet.in_image(fn, rel)} == shipped


def test_shared_paths_from_the_config(tmp_path: Path) -> None:
    root = make_project(tmp_path / "repo", extra={"c": 'shared = ["schemas"]'})
    write(root, "schemas/event.json", '{"v": 2}\n')
    commit(root)
    assert changed_reasons(root) == {"c": "shared code changed: schemas/event.json"}


def test_tracked_env_file_counts(tmp_path: Path) -> None:
    root = make_project(tmp_path / "repo", extra={"b": 'env_file = "../../config/b.env"'})
    write(root, "config/b.env", "LEVEL=debug\n")
    commit(root)
    assert changed_reasons(root) == {"b": "environment file changed: config/b.env"}


def test_uncommitted_and_untracked_changes_count(project: Path) -> None:
    write(project, "services/a/app.py", APP_A + "# local edit\n")
    write(project, "services/b/extra.py", "X = 1\n")  # untracked
    ds = decisions(project, "HEAD")
    assert changed(ds) == {"a", "b"}
    assert ds["b"].reason == "source changed: services/b/extra.py"
    assert changed(decisions(project, "HEAD", worktree=False)) == set()


def test_deleted_file_counts(project: Path) -> None:
    write(project, "services/b/old.py", "X = 1\n")
    commit(project)
    (project / "services/b/old.py").unlink()
    commit(project)
    assert decisions(project)["b"].reason == "source changed: services/b/old.py"


def test_new_function_and_several_reasons(project: Path) -> None:
    text = (project / "lambdaship.toml").read_text()
    text += '\n[functions.d]\nfunction_name = "fn-d"\nsource = "services/d"\nhandler = "app.handler"\n'
    write(project, "lambdaship.toml", text.replace('name = "fn-a"', 'name = "fn-a"\nmemory = 256'))
    write(project, "services/d/app.py", APP_C)
    write(project, "services/a/app.py", APP_A + "# v2\n")
    write(project, "services/a/requirements.txt", "six==1.16.0\n")
    commit(project)
    ds = decisions(project)
    assert changed(ds) == {"a", "d"}
    assert ds["d"].reason == "new function (not in the config at the compared commit)"
    assert ds["a"].reasons == ("config changed: memory", "dependency set changed: services/a/requirements.txt",
                               "source changed: services/a/app.py")


def test_changed_since_uses_the_merge_base(project: Path) -> None:
    """``REF...HEAD``: what happened on another branch after the fork does not count."""
    git(project, "checkout", "-q", "-b", "other")
    write(project, "services/b/app.py", APP_B + "# other branch\n")
    commit(project)
    git(project, "checkout", "-q", "main")
    write(project, "services/c/app.py", APP_C + "# main\n")
    commit(project)
    assert changed(decisions(project, "other")) == {"c"}


def test_unknown_ref_is_a_usage_error(project: Path) -> None:
    with pytest.raises(UsageError, match="no such commit"):
        fleet.detect_changes(load_project(project), "no-such-branch")
    with pytest.raises(UsageError, match="not a git ref"):
        fleet.detect_changes(load_project(project), "--output=x")


def test_not_a_git_repository(tmp_path: Path) -> None:
    root = make_project(tmp_path / "repo")
    import shutil

    shutil.rmtree(root / ".git")
    with pytest.raises(UsageError, match="not inside a git repository"):
        fleet.detect_changes(load_project(root), "HEAD")


def test_without_ref_every_function_is_deployed(project: Path) -> None:
    ds = fleet.detect_changes(load_project(project), None)
    assert [d.changed for d in ds] == [True, True, True]


def test_dry_run_lists_what_would_deploy_and_why(project: Path) -> None:
    write(project, "common/util.py", UTIL + "# v2\n")
    commit(project)
    no_aws = {"AWS_ENDPOINT_URL": "http://127.0.0.1:9"}  # a dry run decides locally: any AWS call would fail
    proc = run_cli("deploy", "--all", "--changed-since", "HEAD~1", "--dry-run", "--json", cwd=project, env=no_aws)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    by = {f["key"]: f for f in data["functions"]}
    assert {k: f["status"] for k, f in by.items()} == {"a": "would_deploy", "b": "would_deploy", "c": "skipped"}
    assert by["a"]["reason"] == "shared code changed: common/util.py"
    assert by["c"]["reason"] == "unchanged"
    text = run_cli("deploy", "--all", "--changed-since", "HEAD~1", "--dry-run", cwd=project, env=no_aws)
    assert text.returncode == 0, text.stderr
    assert "fn-a" in text.stdout and "would deploy" in text.stdout and "shared code changed" in text.stdout
    assert "fn-c" in text.stdout and "skipped" in text.stdout


def test_cli_usage_errors(project: Path) -> None:
    proc = run_cli("deploy", "--all", "--changed-since", "nope", "--dry-run", cwd=project)
    assert proc.returncode == 2 and proc.stderr.startswith("error: --changed-since nope: no such commit"), proc.stderr
    proc = run_cli("deploy", "--all", "--workers", "0", "--dry-run", cwd=project)
    assert proc.returncode == 2 and "--workers" in proc.stderr
    proc = run_cli("deploy", "--changed-since", "HEAD", cwd=project, env={"AWS_ENDPOINT_URL": "http://127.0.0.1:9"})
    assert proc.returncode == 2 and "--all" in proc.stderr
    proc = run_cli("deploy", "--all", "--function", "a", cwd=project, env={"AWS_ENDPOINT_URL": "http://127.0.0.1:9"})
    assert proc.returncode == 2 and "--function" in proc.stderr


# -- orchestration (the deploy of one function injected: no AWS) -----------------------------------
class _Result:
    def __init__(self, name: str) -> None:
        self.digest, self.version, self.previous_version = f"sha256:{name}", "2", "1"
        self.up_to_date, self.alias_version = False, "2"
        self.image_uri, self.created, self.steps = f"r/{name}@{self.digest}", False, ["lambda:UpdateAlias"]


def test_workers_bound_the_parallelism_and_failures_stay_local(tmp_path: Path) -> None:
    names = {k: f"fn-{k}" for k in "abcde"}
    root = tmp_path / "repo"
    make_project(root, names={"a": "fn-a", "b": "fn-b", "c": "fn-c"})
    text = config_text(names)
    write(root, "lambdaship.toml", text)
    for k in "de":
        write(root, f"services/{k}/app.py", APP_C)
    running, peak, lock = 0, 0, threading.Lock()

    def ship(fn, **kw):  # type: ignore[no-untyped-def]
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        try:
            time.sleep(0.2)
            if fn.key == "b":
                raise RuntimeError("boom\nsecond line")
            return _Result(fn.key)
        finally:
            with lock:
                running -= 1

    result = deploy_all(load_project(root), workers=2, ship=ship)
    assert peak == 2
    by = {e.key: e for e in result.entries}
    assert by["b"].status == "failed" and by["b"].error == "RuntimeError: boom second line"
    assert {k for k, e in by.items() if e.status == "deployed"} == {"a", "c", "d", "e"}
    assert not result.ok and result.count("deployed") == 4


def test_period_and_window() -> None:
    from datetime import UTC, datetime, timedelta

    from lambdaship.aws import cloudwatch

    assert cloudwatch.period_for(timedelta(hours=1)) == 3600
    assert cloudwatch.period_for(timedelta(seconds=61)) == 120
    assert cloudwatch.period_for(timedelta(days=20)) % 300 == 0
    assert cloudwatch.period_for(timedelta(days=100)) % 3600 == 0
    end, start = cloudwatch.window(timedelta(minutes=30), now=datetime(2026, 1, 1, 12, 0, 30, tzinfo=UTC))
    assert end == datetime(2026, 1, 1, 12, 1, tzinfo=UTC) and start == datetime(2026, 1, 1, 11, 31, tzinfo=UTC)
    assert parse_since("90m") == timedelta(minutes=90)
    for bad in ("1", "h", "0m", "-1h", "500d"):
        with pytest.raises(UsageError):
            parse_since(bad)


def test_percentiles_from_extended_statistics() -> None:
    """The shape GetMetricStatistics returns on AWS for ExtendedStatistics (moto returns none)."""
    from lambdaship.aws import cloudwatch

    dps = [{"Timestamp": "2026-01-01T00:00:00Z", "Unit": "Milliseconds",
            "ExtendedStatistics": {"p50": 12.5, "p99": 240.0}}]
    assert cloudwatch.parse_percentiles(dps) == {"duration_p50_ms": 12.5, "duration_p99_ms": 240.0}
    assert cloudwatch.parse_percentiles([{"Unit": "Milliseconds"}]) == {"duration_p50_ms": None,
                                                                         "duration_p99_ms": None}


# -- end to end on the local stack ------------------------------------------------------------------
def _aws(service: str) -> Any:
    import boto3
    from botocore.config import Config

    return boto3.client(service, config=Config(retries={"max_attempts": 1}))


def make_role() -> str:
    import uuid

    return _aws("iam").create_role(
        RoleName=f"fleet-{uuid.uuid4().hex[:10]}",
        AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [{
            "Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}),
    )["Role"]["Arn"]


def unique_names(prefix: str) -> dict[str, str]:
    import uuid

    tag = uuid.uuid4().hex[:8]
    return {k: f"{prefix}-{k}-{tag}" for k in "abc"}


def deploy_json(root: Path, *args: str) -> tuple[int, dict[str, Any], str]:
    proc = run_cli("deploy", "--all", *args, "--json", cwd=root, timeout=600)
    try:
        data = json.loads(proc.stdout)
    except ValueError:
        raise AssertionError(f"no JSON (exit {proc.returncode}): {proc.stdout}\n{proc.stderr}") from None
    return proc.returncode, data, proc.stderr


def statuses(data: dict[str, Any]) -> dict[str, str]:
    return {f["key"]: f["status"] for f in data["functions"]}


def alias_version(name: str) -> str:
    return _aws("lambda").get_alias(FunctionName=name, Name="live")["FunctionVersion"]


def deployed_digest(name: str) -> str:
    from lambdaship.deploy.markers import parse_marker

    cfg = _aws("lambda").get_function_configuration(FunctionName=name, Qualifier="live")
    return parse_marker(cfg.get("Description"))[1]


def manifest_layers(repo: str, digest: str) -> list[str]:
    import os

    accept = "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json"
    r = httpx.get(f"{os.environ['LAMBDASHIP_REGISTRY_URL']}/v2/{repo}/manifests/{digest}", headers={"Accept": accept})
    assert r.status_code == 200, r.text
    return [layer["digest"] for layer in r.json()["layers"]]


@pytest.fixture(scope="module")
def deployed(local_stack, base_image_ref: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    names = unique_names("fleet")
    root = make_project(tmp_path_factory.mktemp("fleet") / "repo", names=names, base_image=base_image_ref,
                        role=make_role(), layout="root")
    code, data, err = deploy_json(root, "--workers", "3")
    assert code == 0, (err, [(f["key"], f["status"], f["error"]) for f in data["functions"]])
    assert statuses(data) == {"a": "deployed", "b": "deployed", "c": "deployed"}, data
    return {"root": root, "names": names, "first": data}


@pytest.mark.slow
def test_e2e_first_deploy_summary(deployed: dict[str, Any]) -> None:
    names = deployed["names"]
    for f in deployed["first"]["functions"]:
        assert f["version"] == "1" and f["digest"] == deployed_digest(names[f["key"]])
        assert f["reason"] == "no --changed-since: deploying every function"
    assert {alias_version(n) for n in names.values()} == {"1"}


@pytest.mark.slow
def test_e2e_code_change_deploys_only_that_function(deployed: dict[str, Any]) -> None:
    root, names = deployed["root"], deployed["names"]
    before = {k: (alias_version(n), deployed_digest(n)) for k, n in names.items()}
    write(root, "services/c/app.py", (root / "services/c/app.py").read_text() + "# e2e code change\n")
    commit(root)
    code, data, err = deploy_json(root, "--changed-since", "HEAD~1")
    assert code == 0, (err, [(f["key"], f["status"], f["error"]) for f in data["functions"]])
    assert statuses(data) == {"a": "skipped", "b": "skipped", "c": "deployed"}
    after = {k: (alias_version(n), deployed_digest(n)) for k, n in names.items()}
    assert after["a"] == before["a"] and after["b"] == before["b"]
    assert int(after["c"][0]) == int(before["c"][0]) + 1 and after["c"][1] != before["c"][1]


@pytest.mark.slow
def test_e2e_shared_module_deploys_its_importers(deployed: dict[str, Any]) -> None:
    root, names = deployed["root"], deployed["names"]
    before = {k: alias_version(n) for k, n in names.items()}
    write(root, "common/util.py", (root / "common/util.py").read_text() + "# e2e shared change\n")
    commit(root)
    code, data, err = deploy_json(root, "--changed-since", "HEAD~1")
    assert code == 0, (err, [(f["key"], f["status"], f["error"]) for f in data["functions"]])
    assert statuses(data) == {"a": "deployed", "b": "deployed", "c": "skipped"}
    by = {f["key"]: f for f in data["functions"]}
    assert by["a"]["reason"] == by["b"]["reason"] == "source changed: common/util.py"
    after = {k: alias_version(n) for k, n in names.items()}
    assert after["c"] == before["c"]
    assert {k for k in names if after[k] != before[k]} == {"a", "b"}


@pytest.mark.slow
def test_e2e_pinned_dependency_rebuilds_only_its_dependency_layer(deployed: dict[str, Any]) -> None:
    root, names = deployed["root"], deployed["names"]
    digests = {k: deployed_digest(n) for k, n in names.items()}
    repo_a = names["a"].lower()
    layers_before = manifest_layers(repo_a, digests["a"])
    write(root, "services/a/requirements.txt", "six==1.16.0\n")
    commit(root)
    code, data, err = deploy_json(root, "--changed-since", "HEAD~1")
    assert code == 0, (err, [(f["key"], f["status"], f["error"]) for f in data["functions"]])
    assert statuses(data) == {"a": "deployed", "b": "skipped", "c": "skipped"}
    assert data["functions"][0]["reason"] == "dependency set changed: services/a/requirements.txt"
    new = deployed_digest(names["a"])
    assert new != digests["a"]
    layers_after = manifest_layers(repo_a, new)
    assert len(layers_after) == len(layers_before)
    # base layers and the app layer are byte-identical; only the dependency layer (second to last) differs
    assert layers_after[:-2] == layers_before[:-2]
    assert layers_after[-1] == layers_before[-1]
    assert layers_after[-2] != layers_before[-2]
    assert {k: deployed_digest(names[k]) for k in "bc"} == {k: digests[k] for k in "bc"}


@pytest.mark.slow
def test_e2e_failing_function_leaves_the_others_deployed(local_stack, base_image_ref: str, tmp_path: Path) -> None:
    names = unique_names("fleetfail")
    root = make_project(tmp_path / "repo", names=names, base_image=base_image_ref, role=make_role(), layout="root")
    text = (root / "lambdaship.toml").read_text()
    write(root, "lambdaship.toml", text.replace('"services.b.app.handler"', '"services.b.missing.handler"'))
    proc = run_cli("deploy", "--all", cwd=root, timeout=600)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    out = proc.stdout
    row = {k: next(line for line in out.splitlines() if names[k] in line) for k in names}
    assert "deployed" in row["a"] and "deployed" in row["c"]
    assert "failed" in row["b"] and "missing.py not found" in row["b"]
    assert "2 deployed, 0 up to date, 1 failed, 0 skipped" in out
    assert alias_version(names["a"]) == "1" and alias_version(names["c"]) == "1"
    lam = _aws("lambda")
    with pytest.raises(lam.exceptions.ResourceNotFoundException):
        lam.get_function(FunctionName=names["b"])
    # the JSON form says the same, per function
    code, data, _ = deploy_json(root)
    assert code == 1
    assert statuses(data) == {"a": "up_to_date", "b": "failed", "c": "up_to_date"}
    assert data["ok"] is False and "services.b.missing.handler" in data["functions"][1]["error"]
