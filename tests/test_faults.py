"""Fault injection: the seeded proxy (tests/faultproxy.py) in front of the registry and of moto.

Every scenario runs a fixed list of seeds. Each run must either complete or fail with one
clear line (a LambdashipError / the CLI's single ``error:`` line, never a traceback), and the
invariants must hold whatever happened:

* registry: every tag names a manifest whose config and layers all exist (no partial tag);
* deploy: the alias only ever points at a version whose image passed the smoke test (when
  the smoke answer is a failure, the alias never reaches the new digest), and a deploy that
  reports success has the alias on the new digest.

Figures (runs, faults injected, outcomes) are printed and, with ``LAMBDASHIP_FAULT_REPORT=FILE``,
written as JSON; docs/reliability.md records them. ``LAMBDASHIP_FAULT_SEEDS`` changes the
number of seeds per scenario (default 10).
"""

from __future__ import annotations

import json
import os
import re
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from lambdaship.errors import LambdashipError
from lambdaship.oci.client import RegistryClient
from tests.faultproxy import ALL_FAULTS, FaultProxy

SEEDS = int(os.environ.get("LAMBDASHIP_FAULT_SEEDS", "10"))
REPORT: dict[str, dict[str, Any]] = {}


class AwsFaultProxy(FaultProxy):
    """The fault proxy with AWS-shaped throttling: a 429 carries the error code AWS sends
    (``ThrottlingException`` in the JSON body, ``TooManyRequestsException`` in the header), so
    boto3 sees what it would see from Lambda/ECR, not a registry-style error."""

    @staticmethod
    def _answer(conn, status: int, body: bytes, extra: list[tuple[str, str]] | None = None, *,
                head: bool = False) -> None:
        if status == 429:
            body = json.dumps({"__type": "ThrottlingException", "message": "Rate exceeded (injected)"}).encode()
            extra = [*(extra or []), ("x-amzn-ErrorType", "TooManyRequestsException")]
        elif status == 500:
            body = json.dumps({"__type": "ServiceException", "message": "injected"}).encode()
            extra = [*(extra or []), ("x-amzn-ErrorType", "ServiceException")]
        FaultProxy._answer(conn, status, body, extra, head=head)


@dataclass
class Tally:
    runs: int = 0
    completed: int = 0
    failed_cleanly: int = 0
    violations: list[str] = field(default_factory=list)
    faults: Counter[str] = field(default_factory=Counter)
    requests: int = 0
    messages: Counter[str] = field(default_factory=Counter)

    def record(self, name: str) -> None:
        REPORT[name] = {
            "runs": self.runs, "requests": self.requests, "faults_injected": sum(self.faults.values()),
            "faults": dict(self.faults), "completed": self.completed, "failed_cleanly": self.failed_cleanly,
            "violations": len(self.violations), "messages": dict(self.messages.most_common(5)),
        }
        print(f"\n{name}: {json.dumps(REPORT[name])}")
        path = os.environ.get("LAMBDASHIP_FAULT_REPORT")
        if path:
            Path(path).write_text(json.dumps(REPORT, indent=2) + "\n")

    def check(self, name: str) -> None:
        """Record the figures under ``name``; no run may have broken an invariant."""
        self.record(name)
        assert not self.violations, self.violations

    def add_proxy(self, *proxies: FaultProxy) -> None:
        for p in proxies:
            self.faults.update(p.counts)
            self.requests += len(p.log)


def _one_line(message: str) -> bool:
    return "\n" not in message and "Traceback" not in message and len(message) < 1000


def registry_problems(client: RegistryClient, repo: str) -> list[str]:
    """Every tag of ``repo``: its manifest, config and layers exist (no partial tag)."""
    problems = []
    for tag in client.list_tags(repo):
        raw, _, digest = client.get_manifest(repo, tag)
        manifest = json.loads(raw)
        for d in [manifest.get("config"), *manifest.get("layers", [])]:
            if d and not client.blob_exists(repo, d["digest"]):
                problems.append(f"{repo}:{tag} ({digest}) lacks blob {d['digest']}")
    return problems


@pytest.fixture
def fast_registry_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Few, quick registry retries so that some runs do run out of them (and must fail cleanly)."""
    monkeypatch.setenv("LAMBDASHIP_RETRY_WAIT", "0.01")
    monkeypatch.setenv("LAMBDASHIP_RETRY_ATTEMPTS", "3")


# -- registry ----------------------------------------------------------------------------------------
def test_push_through_registry_faults(local_stack, tmp_path: Path, fast_registry_retries,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Every fault kind at 45 %: pushes complete or fail in one line; never a partial tag."""
    import lambdaship.oci.upload as reg
    from lambdaship.registries import push_image
    from tests.test_push import file_layer, make_image

    monkeypatch.setattr(reg, "MONOLITHIC_MAX", 64 * 1024)  # chunked uploads (PATCH) too
    monkeypatch.setattr(reg, "CHUNK_SIZE", 48 * 1024)
    RegistryClient.clear_cache()
    deps = file_layer(tmp_path, {"var/task/lib.bin": os.urandom(120_000)})
    direct = RegistryClient(local_stack.registry.url)
    t = Tally()
    with FaultProxy(local_stack.registry.url, rate=0.45, faults=ALL_FAULTS, retry_after=0.05,
                    slow_seconds=0.05) as proxy:
        for seed in range(SEEDS):
            proxy._rng.seed(1000 + seed)
            image = make_image([deps, file_layer(tmp_path, {"var/task/app.py": f"S = {seed}\n".encode()})],
                               label=str(seed))
            repo = f"faults-push-{uuid.uuid4().hex[:8]}"
            t.runs += 1
            try:
                res = push_image(image, f"127.0.0.1:{proxy.port}/{repo}", ["t"])
            except LambdashipError as exc:
                t.failed_cleanly += _one_line(exc.one_line())
                t.messages[exc.one_line()[:200]] += 1
                if not _one_line(exc.one_line()):
                    t.violations.append(f"seed {seed}: multi-line error {exc.one_line()!r}")
            except Exception as exc:  # anything else is a traceback for the user
                t.violations.append(f"seed {seed}: {type(exc).__name__}: {exc}")
            else:
                t.completed += 1
                if res.digest != image.digest or direct.head_manifest(repo, "t") != image.digest:
                    t.violations.append(f"seed {seed}: completed but the tag does not name the image")
            t.violations += registry_problems(direct, repo)
        t.add_proxy(proxy)
    RegistryClient.clear_cache()
    t.check("registry: push (45 % of requests faulted, 3 attempts)")
    assert sum(t.faults.values()) >= SEEDS and len(t.faults) >= 6, t.faults
    assert t.completed > 0


def test_push_to_ecr_with_faults_on_moto_and_registry(local_stack, tmp_path: Path, fast_registry_retries,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """ensure_repository + push to the ECR URI, with moto and the registry both faulty."""
    from lambdaship.aws import ecr
    from lambdaship.registries import push_image
    from tests.test_push import file_layer, make_image

    direct = RegistryClient(local_stack.registry.url)
    t = Tally()
    faults = ("500", "500-after", "reset", "reset-after", "cut", "429", "slow")
    with AwsFaultProxy(local_stack.moto.url, rate=0.25, faults=faults, slow_seconds=0.05) as moto, \
            FaultProxy(local_stack.registry.url, rate=0.2, faults=ALL_FAULTS, retry_after=0.05,
                       slow_seconds=0.05) as registry:
        monkeypatch.setenv("AWS_ENDPOINT_URL", moto.url)
        monkeypatch.setenv("LAMBDASHIP_REGISTRY_URL", registry.url)
        RegistryClient.clear_cache()
        for seed in range(SEEDS):
            moto._rng.seed(2000 + seed)
            registry._rng.seed(3000 + seed)
            name = f"faults-ecr-{uuid.uuid4().hex[:8]}"
            image = make_image([file_layer(tmp_path, {"var/task/app.py": f"E = {seed}\n".encode()})],
                               label=f"e{seed}")
            t.runs += 1
            try:
                uri = ecr.ensure_repository(name, keep_images=5)
                push_image(image, uri, ["git-x"])
            except Exception as exc:
                from lambdaship.translate import describe

                err = exc if isinstance(exc, LambdashipError) else describe(exc)
                if err is None or not _one_line(err.one_line()):
                    t.violations.append(f"seed {seed}: {type(exc).__name__}: {exc}")
                else:
                    t.failed_cleanly += 1
                    t.messages[err.one_line()[:200]] += 1
            else:
                t.completed += 1
            t.violations += _pushed_problems(direct, name)
        t.add_proxy(moto, registry)
    RegistryClient.clear_cache()
    t.check("moto + registry: ensure ECR repository and push")
    assert t.completed > 0 and sum(t.faults.values()) >= SEEDS


def _pushed_problems(client: RegistryClient, repo: str) -> list[str]:
    """``registry_problems`` of ``repo`` when the run got as far as creating it."""
    try:
        client.list_tags(repo)
    except LambdashipError:
        return []
    return registry_problems(client, repo)


# -- deploy ------------------------------------------------------------------------------------------
def _run_cli_inprocess(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str, str | None]:
    """``lambdaship.cli.main`` in this process (same entry point as the command; no interpreter start-up)."""
    from lambdaship.cli import main

    crash = None
    code = 0
    try:
        main(args)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except Exception as exc:  # would be a traceback for the user
        crash = f"{type(exc).__name__}: {exc}"
        code = 1
    out, err = capsys.readouterr()
    return code, out, err, crash


STAGE_LINE = re.compile(r"^\S+ +\d+\.\d s(  |$)")


def _check_cli_outcome(t: Tally, label: str, code: int, err: str, crash: str | None) -> bool:
    """True when the run completed; records clean failures and violations."""
    if crash:
        t.violations.append(f"{label}: traceback: {crash}")
        return False
    if code == 0:
        t.completed += 1
        return True
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    # besides the one error line, only the CI log's stage lines ("lambda    0.1 s  GetFunction")
    others = [line for line in err.splitlines() if line.strip() and not line.startswith("error:")
              and not STAGE_LINE.match(line)]
    if code == 1 and len(errors) == 1 and not others and "Traceback" not in err:
        t.failed_cleanly += 1
        t.messages[errors[0][:200]] += 1
    else:
        t.violations.append(f"{label}: exit {code}, stderr {err!r}")
    return False


@pytest.mark.parametrize("smoke_passes", [True, False], ids=["smoke-passes", "smoke-fails"])
def test_deploy_through_moto_faults(local_stack, lambda_base: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                    capsys: pytest.CaptureFixture[str], smoke_passes: bool) -> None:
    """``deploy --image`` with Lambda/IAM/ECR calls faulted (500, 429, resets, cut bodies, slow).

    smoke-passes: a completed deploy has the alias on the new digest; a failed one says so in
    one line. smoke-fails: no run may complete and the alias never reaches a new digest."""
    from tests.runnable import FAILING, HEALTHY, push_app_image
    from tests.test_deploy import alias_version, image_uri, make_project, make_role, version_digest

    # Real code answers the smoke tests on the stack's data plane; the faults sit in front of it.
    reg, endpoint = local_stack.registry.url, local_stack.endpoint
    name = f"faults-deploy-{uuid.uuid4().hex[:8]}"
    d0 = push_app_image(reg, lambda_base, name, HEALTHY, "zero")
    code_of = HEALTHY if smoke_passes else FAILING
    digests = [push_app_image(reg, lambda_base, name, f"{code_of}# seed {seed}\n", f"s{seed}") for seed in range(SEEDS)]
    proj = make_project(tmp_path / "proj", name, role=make_role(), smoke='path = "/health"')
    code, _, err, crash = _run_cli_inprocess(["deploy", "-C", str(proj), "--image", image_uri(name, d0)], capsys)
    assert code == 0 and crash is None, err
    verified = {d0}
    t = Tally()
    faults = ("500", "500-after", "reset", "reset-after", "cut", "429", "slow")
    monkeypatch.setenv("LAMBDASHIP_RETRY_WAIT", "0.01")
    with AwsFaultProxy(endpoint, rate=0.2, faults=faults, slow_seconds=0.1,
                       seed=4000 + 100 * smoke_passes) as moto:
        monkeypatch.setenv("AWS_ENDPOINT_URL", moto.url)
        for seed, digest in enumerate(digests):
            moto._rng.seed(5000 + seed + 100 * smoke_passes)
            t.runs += 1
            code, _, err, crash = _run_cli_inprocess(["deploy", "-C", str(proj), "--image", image_uri(name, digest)],
                                                     capsys)
            completed = _check_cli_outcome(t, f"seed {seed}", code, err, crash)
            monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)  # inspect without faults
            live = version_digest(name, alias_version(name))
            if smoke_passes:
                verified.add(digest)
            if live not in verified:
                t.violations.append(f"seed {seed}: alias on unverified digest {live}")
            if completed and live != digest:
                t.violations.append(f"seed {seed}: reported success but the alias serves {live}")
            if not smoke_passes and completed:
                t.violations.append(f"seed {seed}: completed although the smoke test fails")
            monkeypatch.setenv("AWS_ENDPOINT_URL", moto.url)
        t.add_proxy(moto)
    t.check(f"moto: deploy --image ({'smoke passes' if smoke_passes else 'smoke fails'})")
    assert sum(t.faults.values()) >= SEEDS, t.faults
    if smoke_passes:
        assert t.completed > 0
    else:
        assert t.completed == 0 and t.failed_cleanly == t.runs


@pytest.mark.slow
def test_build_push_deploy_with_faults_everywhere(local_stack, lambda_base: str, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """The whole ``deploy`` (build → push → deploy → smoke → alias) with both proxies faulty."""
    from tests.test_deploy import alias_version, make_role, version_digest

    # The smoke tests run the built code on the stack's data plane; the faults sit in front of it.
    reg, aws_url = local_stack.registry.url, local_stack.endpoint
    direct = RegistryClient(reg)
    name = f"faults-ship-{uuid.uuid4().hex[:8]}"
    proj = tmp_path / "proj"
    proj.mkdir()
    (proj / "lambdaship.toml").write_text(
        f'function_name = "{name}"\nhandler = "app.handler"\nbase_image = "{lambda_base}"\npython = "3.11"\n'
        f'role = "{make_role()}"\n[smoke]\npath = "/health"\n')
    t = Tally()
    verified: set[str] = set()
    unverified: set[str] = set()
    seen_versions: set[str] = set()
    seeds = max(4, SEEDS // 2)
    monkeypatch.setenv("LAMBDASHIP_RETRY_WAIT", "0.01")
    monkeypatch.setenv("LAMBDASHIP_RETRY_ATTEMPTS", "4")
    faults = ("500", "500-after", "reset", "reset-after", "cut", "429", "slow")
    with AwsFaultProxy(aws_url, rate=0.15, faults=faults, slow_seconds=0.1) as moto, \
            FaultProxy(reg, rate=0.15, faults=ALL_FAULTS, retry_after=0.05, slow_seconds=0.05) as registry:
        for seed in range(seeds):
            moto._rng.seed(6000 + seed)
            registry._rng.seed(7000 + seed)
            smoke_ok = seed % 3 != 2  # every third version fails its smoke test: its code answers 500
            status = 200 if smoke_ok else 500
            (proj / "app.py").write_text(
                f"def handler(event, context):\n    return {{'statusCode': {status}, 'body': 'v{seed}'}}\n")
            monkeypatch.setenv("AWS_ENDPOINT_URL", moto.url)
            monkeypatch.setenv("LAMBDASHIP_REGISTRY_URL", registry.url)
            RegistryClient.clear_cache()
            t.runs += 1
            code, out, err, crash = _run_cli_inprocess(["deploy", "-C", str(proj), "--json"], capsys)
            completed = _check_cli_outcome(t, f"seed {seed}", code, err, crash)
            monkeypatch.setenv("AWS_ENDPOINT_URL", aws_url)
            monkeypatch.setenv("LAMBDASHIP_REGISTRY_URL", reg)
            RegistryClient.clear_cache()
            from tests.test_deploy import aws

            try:
                aws("lambda").get_function(FunctionName=name)
            except aws("lambda").exceptions.ResourceNotFoundException:
                if completed:
                    t.violations.append(f"seed {seed}: completed but no function")
                continue
            # Versions this run published: verified when its smoke answer was good, else not.
            for v in aws("lambda").list_versions_by_function(FunctionName=name)["Versions"]:
                if v["Version"] != "$LATEST" and v["Version"] not in seen_versions:
                    seen_versions.add(v["Version"])
                    (verified if smoke_ok else unverified).add(version_digest(name, v["Version"]))
            if completed:
                digest = json.loads(out)["digest"]
                if not smoke_ok:
                    t.violations.append(f"seed {seed}: completed although the smoke test fails")
                if version_digest(name, alias_version(name)) != digest:
                    t.violations.append(f"seed {seed}: reported success, alias elsewhere")
            try:
                live_version = alias_version(name)
            except aws("lambda").exceptions.ResourceNotFoundException:
                live_version = None
            if live_version is not None:
                live = version_digest(name, live_version)
                if live in unverified or live not in verified:
                    t.violations.append(f"seed {seed}: alias on unverified digest {live}")
            t.violations += _pushed_problems(direct, name)
        t.add_proxy(moto, registry)
    RegistryClient.clear_cache()
    t.check("moto + registry: full deploy (build, push, deploy, smoke; 1 in 3 smoke tests fail)")
    assert t.completed > 0 and sum(t.faults.values()) >= seeds
