"""`lambdaship iam`: OIDC trust, least-privilege deploy policy, execution roles — as IAM JSON."""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path

import pytest

from tests.conftest import cli_json, example_copy, run_cli
from tests.test_ci_github import make_monorepo

ACCOUNT = "210987654321"
OIDC = "token.actions.githubusercontent.com"


@pytest.fixture
def mono(tmp_path: Path) -> Path:
    root = tmp_path / "mono"
    root.mkdir()
    api = make_monorepo(root)
    config = api / "lambdaship.toml"
    config.write_text(
        config.read_text()
        + 'role = "arn:aws:iam::210987654321:role/billing-runtime"\n'
        + '[[functions.billing.secrets]]\nsecretsmanager = "billing/prod"\n'
        + '[[functions.billing.secrets]]\nssm_path = "/billing/prod"\n'
        + '[[functions.orders.secrets]]\n'
        + 'secretsmanager = "arn:aws:secretsmanager:eu-west-1:210987654321:secret:x-AbCdEf"\n'
    )
    return api


@pytest.fixture
def single(tmp_path: Path) -> Path:
    return example_copy("chalice-app", tmp_path / "single")


def iam_json(project: Path, *args: str) -> dict:
    return cli_json("iam", "-C", str(project), "--json", *args)


def _statements(doc: dict) -> list[dict]:
    assert doc["Version"] == "2012-10-17"
    assert isinstance(doc["Statement"], list) and doc["Statement"]
    return doc["Statement"]


def _as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def check_documents(documents: dict[str, dict]) -> None:
    """Every statement is complete; no wildcard resource except for ecr:GetAuthorizationToken."""
    for name, doc in documents.items():
        json.loads(json.dumps(doc))
        for st in _statements(doc):
            assert st["Effect"] == "Allow", name
            assert st["Action"], name
            for action in _as_list(st["Action"]):
                assert ":" in action and "*" not in action, (name, action)
            if "trust-policy" in name:
                assert "Principal" in st and "Resource" not in st, name
                continue
            assert st["Resource"], name
            for resource in _as_list(st["Resource"]):
                if resource == "*":
                    assert _as_list(st["Action"]) == ["ecr:GetAuthorizationToken"], (name, st)
                else:
                    assert resource.startswith("arn:aws:"), (name, resource)
                    assert not resource.endswith(":*:*") and resource.split(":")[5] not in ("*", ""), resource


def test_monorepo_documents(mono: Path) -> None:
    data = iam_json(mono, "--github-repo", "acme/mono", "--region", "eu-west-1", "--account-id", ACCOUNT)
    docs = data["documents"]
    assert sorted(docs) == [
        "deploy-policy.json", "execution-policy-billing.json", "execution-policy-orders.json",
        "execution-policy-users.json", "execution-trust-policy.json", "github-trust-policy.json",
    ]
    check_documents(docs)

    (trust,) = docs["github-trust-policy.json"]["Statement"]
    assert trust["Principal"] == {"Federated": f"arn:aws:iam::{ACCOUNT}:oidc-provider/{OIDC}"}
    assert trust["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert trust["Condition"] == {"StringEquals": {
        f"{OIDC}:aud": "sts.amazonaws.com", f"{OIDC}:sub": "repo:acme/mono:ref:refs/heads/main",
    }}

    by_sid = {st["Sid"]: st for st in docs["deploy-policy.json"]["Statement"]}
    lam = by_sid["LambdaDeploy"]["Resource"]
    for name in ("orders", "users-api", "billing"):
        arn = f"arn:aws:lambda:eu-west-1:{ACCOUNT}:function:{name}"
        assert arn in lam and f"{arn}:*" in lam
    assert len(lam) == 6
    assert sorted(by_sid["EcrPushPull"]["Resource"]) == [
        f"arn:aws:ecr:eu-west-1:{ACCOUNT}:repository/{r}" for r in ("billing", "orders", "users-api")
    ]
    assert {"ecr:PutImage", "ecr:InitiateLayerUpload", "ecr:BatchGetImage"} <= set(by_sid["EcrPushPull"]["Action"])
    passrole = by_sid["PassExecutionRole"]
    assert passrole["Action"] == ["iam:PassRole"]
    assert sorted(passrole["Resource"]) == [
        f"arn:aws:iam::{ACCOUNT}:role/billing-runtime", f"arn:aws:iam::{ACCOUNT}:role/orders-lambdaship-exec",
        f"arn:aws:iam::{ACCOUNT}:role/users-api-lambdaship-exec",
    ]
    assert passrole["Condition"] == {"StringEquals": {"iam:PassedToService": "lambda.amazonaws.com"}}
    assert f"arn:aws:logs:eu-west-1:{ACCOUNT}:log-group:/aws/lambda/orders:*" in by_sid["ReadFunctionLogs"]["Resource"]
    assert sorted(by_sid["ReadSecrets"]["Resource"]) == [
        f"arn:aws:secretsmanager:eu-west-1:{ACCOUNT}:secret:billing/prod-??????",
        "arn:aws:secretsmanager:eu-west-1:210987654321:secret:x-AbCdEf",
    ]
    assert by_sid["ReadParameters"]["Resource"] == [
        f"arn:aws:ssm:eu-west-1:{ACCOUNT}:parameter/billing/prod",
        f"arn:aws:ssm:eu-west-1:{ACCOUNT}:parameter/billing/prod/*",
    ]
    assert not any(a.startswith("cloudwatch:") for st in by_sid.values() for a in st["Action"])

    (exec_trust,) = docs["execution-trust-policy.json"]["Statement"]
    assert exec_trust["Principal"] == {"Service": "lambda.amazonaws.com"} and exec_trust["Action"] == "sts:AssumeRole"
    (logs,) = docs["execution-policy-users.json"]["Statement"]
    assert logs["Resource"] == [
        f"arn:aws:logs:eu-west-1:{ACCOUNT}:log-group:/aws/lambda/users-api",
        f"arn:aws:logs:eu-west-1:{ACCOUNT}:log-group:/aws/lambda/users-api:*",
    ]
    assert data["execution_roles"]["billing"]["role_arn"] == f"arn:aws:iam::{ACCOUNT}:role/billing-runtime"
    # billing's role exists already (configured): no create-role for it, only its policy
    assert not any("create-role --role-name billing-runtime" in c for c in data["commands"])
    assert any("put-role-policy --role-name billing-runtime" in c for c in data["commands"])
    assert data["files"] == []  # --json without --out writes nothing


def test_environment_and_wildcard_branch(single: Path) -> None:
    args = ("--github-repo", "acme/app", "--region", "us-east-1", "--account-id", ACCOUNT)
    env = iam_json(single, *args, "--environment", "production")["documents"]["github-trust-policy.json"]
    assert env["Statement"][0]["Condition"]["StringEquals"][f"{OIDC}:sub"] == "repo:acme/app:environment:production"
    wild = iam_json(single, *args, "--branch", "release/*")["documents"]["github-trust-policy.json"]
    cond = wild["Statement"][0]["Condition"]
    assert cond["StringLike"] == {f"{OIDC}:sub": "repo:acme/app:ref:refs/heads/release/*"}
    assert cond["StringEquals"] == {f"{OIDC}:aud": "sts.amazonaws.com"}


def test_files_commands_and_no_overwrite(single: Path, tmp_path: Path) -> None:
    out = tmp_path / "iam"
    args = ("iam", "-C", str(single), "--github-repo", "acme/app", "--region", "eu-west-1", "--account-id", ACCOUNT,
            "--out", str(out))
    proc = run_cli(*args)
    assert proc.returncode == 0, proc.stderr
    names = sorted(p.name for p in out.iterdir())
    assert names == ["deploy-policy.json", "execution-policy-chalice-demo.json", "execution-trust-policy.json",
                     "github-trust-policy.json"]
    check_documents({n: json.loads((out / n).read_text()) for n in names})
    assert f"--assume-role-policy-document file://{out}/github-trust-policy.json" in proc.stdout
    assert f"--policy-document file://{out}/deploy-policy.json" in proc.stdout
    snapshot = {n: (out / n).read_bytes() for n in names}
    proc = run_cli(*args)
    assert proc.returncode == 0 and proc.stdout.count("unchanged") == 4
    proc = run_cli(*args[:-4], "--account-id", "111111111111", "--out", str(out))
    assert proc.returncode == 1 and "--force" in proc.stderr
    assert {n: (out / n).read_bytes() for n in names} == snapshot
    proc = run_cli(*args[:-4], "--account-id", "111111111111", "--out", str(out), "--force")
    assert proc.returncode == 0 and "111111111111" in (out / "deploy-policy.json").read_text()


def test_repo_from_git_remote_and_errors(single: Path) -> None:
    base = ("--region", "eu-west-1", "--account-id", ACCOUNT)
    proc = run_cli("iam", "-C", str(single), "--json", *base)
    assert proc.returncode == 2 and proc.stderr.startswith("error: ") and "--github-repo" in proc.stderr
    subprocess.run(["git", "init", "-q"], cwd=single, check=True)
    subprocess.run(["git", "remote", "add", "origin", "git@github.com:acme/shop-api.git"], cwd=single, check=True)
    data = iam_json(single, *base)
    assert data["github_repo"] == "acme/shop-api"
    assert data["oidc_subject"] == "repo:acme/shop-api:ref:refs/heads/main"
    for bad in (["--github-repo", "no-slash"], ["--account-id", "12"], ["--region", "moon"]):
        proc = run_cli("iam", "-C", str(single), "--json", *base, *bad)
        assert proc.returncode == 2, bad
        assert len(proc.stderr.splitlines()) == 1


def test_account_from_sts_and_roles_accepted_by_iam(local_stack, single: Path, tmp_path: Path) -> None:
    """Without --account-id the caller's account comes from STS; the documents create real roles."""
    from lambdaship.aws.session import client

    data = iam_json(single, "--github-repo", "acme/app")
    assert data["account_id"] == client("sts").get_caller_identity()["Account"]
    iam = client("iam")
    docs = data["documents"]
    suffix = uuid.uuid4().hex[:8]
    deploy_role = f"lambdaship-deploy-{suffix}"
    iam.create_role(RoleName=deploy_role, AssumeRolePolicyDocument=json.dumps(docs["github-trust-policy.json"]))
    iam.put_role_policy(RoleName=deploy_role, PolicyName="lambdaship-deploy",
                        PolicyDocument=json.dumps(docs["deploy-policy.json"]))
    exec_role = f"chalice-demo-execution-{suffix}"
    iam.create_role(RoleName=exec_role, AssumeRolePolicyDocument=json.dumps(docs["execution-trust-policy.json"]))
    iam.put_role_policy(RoleName=exec_role, PolicyName="lambdaship-logs",
                        PolicyDocument=json.dumps(docs["execution-policy-chalice-demo.json"]))
    stored = iam.get_role_policy(RoleName=deploy_role, PolicyName="lambdaship-deploy")["PolicyDocument"]
    assert stored == docs["deploy-policy.json"]
