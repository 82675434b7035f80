"""IAM for lambdaship: the GitHub OIDC deploy role and each function's execution role.

Documents (plain JSON, ready for ``aws iam create-role --assume-role-policy-document file://…``
and ``aws iam put-role-policy --policy-document file://…``):

- ``github-trust-policy.json``: only GitHub's OIDC provider, audience ``sts.amazonaws.com``,
  subject ``repo:OWNER/REPO:ref:refs/heads/BRANCH`` (or ``…:environment:NAME``), StringEquals.
- ``deploy-policy.json``: what ``lambdaship deploy`` calls, scoped to the project's functions
  (``function:NAME`` and ``function:NAME:*`` for versions and the alias), their ECR repositories,
  their execution roles (PassRole only to Lambda), their log groups and their secret sources.
  The one ``"Resource": "*"`` is ``ecr:GetAuthorizationToken``, which has no resource.
  ``cloudwatch:GetMetricData`` (used by ``status --all``) is deliberately absent: it only
  accepts ``*`` and the deploy does not need it.
- ``execution-trust-policy.json`` + ``execution-policy-<key>.json``: the function's own role,
  trusted by ``lambda.amazonaws.com``, allowed to write to its log group only.
"""

from __future__ import annotations

import json
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lambdaship.config import FunctionConfig, Project
from lambdaship.errors import LambdashipError, UsageError
from lambdaship.patterns import ACCOUNT_RE, REGION_RE

OIDC_HOST = "token.actions.githubusercontent.com"
AUDIENCE = "sts.amazonaws.com"
VERSION = "2012-10-17"
_REPO_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}$")
_ECR_HOST_RE = re.compile(r"^(\d{12})\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?/([^:@]+)")

ECR_PUSH_PULL = [
    "ecr:BatchCheckLayerAvailability",
    "ecr:BatchGetImage",
    "ecr:CompleteLayerUpload",
    "ecr:CreateRepository",
    "ecr:DescribeImages",
    "ecr:DescribeRepositories",
    "ecr:GetDownloadUrlForLayer",
    "ecr:GetLifecyclePolicy",
    "ecr:GetRepositoryPolicy",
    "ecr:InitiateLayerUpload",
    "ecr:ListTagsForResource",
    "ecr:PutImage",
    "ecr:PutLifecyclePolicy",
    "ecr:SetRepositoryPolicy",
    "ecr:TagResource",
    "ecr:UploadLayerPart",
]
ECR_PULL = ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]
LAMBDA_DEPLOY = [
    "lambda:CreateAlias",
    "lambda:CreateFunction",
    "lambda:GetAlias",
    "lambda:GetFunction",
    "lambda:GetFunctionConfiguration",
    "lambda:InvokeFunction",
    "lambda:ListAliases",
    "lambda:ListTags",
    "lambda:ListVersionsByFunction",
    "lambda:PublishVersion",
    "lambda:TagResource",
    "lambda:UpdateAlias",
    "lambda:UpdateFunctionCode",
    "lambda:UpdateFunctionConfiguration",
]
LOGS_READ = ["logs:DescribeLogStreams", "logs:FilterLogEvents", "logs:GetLogEvents"]
LOGS_WRITE = ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"]


def partition_for(region: str) -> str:
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


@dataclass(frozen=True)
class Target:
    account: str
    region: str
    partition: str

    def arn(self, service: str, resource: str, *, region: bool = True, account: bool = True) -> str:
        return (
            f"arn:{self.partition}:{service}:{self.region if region else ''}:{self.account if account else ''}:"
            f"{resource}"
        )


def execution_role_name(fn: FunctionConfig) -> str:
    if fn.role:
        return fn.role.split(":role/", 1)[1].rsplit("/", 1)[-1]
    from lambdaship.aws.iam import default_role_name  # the name `deploy --create-role` uses

    return default_role_name(fn.function_name)


def execution_role_arn(fn: FunctionConfig, t: Target) -> str:
    return fn.role or t.arn("iam", f"role/{execution_role_name(fn)}", region=False)


def _log_group(fn: FunctionConfig, t: Target) -> list[str]:
    base = t.arn("logs", f"log-group:/aws/lambda/{fn.function_name}")
    return [base, f"{base}:*"]


def github_trust_policy(t: Target, repo: str, branch: str = "main", environment: str | None = None) -> dict[str, Any]:
    subject = f"repo:{repo}:environment:{environment}" if environment else f"repo:{repo}:ref:refs/heads/{branch}"
    sub_op = "StringLike" if "*" in subject else "StringEquals"
    condition: dict[str, dict[str, str]] = {"StringEquals": {f"{OIDC_HOST}:aud": AUDIENCE}}
    condition.setdefault(sub_op, {})[f"{OIDC_HOST}:sub"] = subject
    return {
        "Version": VERSION,
        "Statement": [{
            "Sid": "GitHubActionsOIDC",
            "Effect": "Allow",
            "Principal": {"Federated": t.arn("iam", f"oidc-provider/{OIDC_HOST}", region=False)},
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": condition,
        }],
    }


def _secret_arn(secret_id: str, t: Target) -> str:
    if secret_id.startswith("arn:"):
        return secret_id
    # A secret's ARN ends in "-" + 6 random characters.
    return t.arn("secretsmanager", f"secret:{secret_id}-??????")


def _ssm_arns(path: str, t: Target) -> list[str]:
    path = "/" + path.strip("/")
    return [t.arn("ssm", f"parameter{path}"), t.arn("ssm", f"parameter{path}/*")]


def _base_image_repo(fn: FunctionConfig, t: Target) -> str | None:
    """The ECR repository ARN of a private ECR base image in this account, if any."""
    m = _ECR_HOST_RE.match(fn.image_base)
    if not m:
        return None
    account, region, repo = m.groups()
    return Target(account, region, t.partition).arn("ecr", f"repository/{repo}")


def deploy_policy(project: Project, t: Target) -> dict[str, Any]:
    fns = list(project.functions.values())
    repos = sorted({t.arn("ecr", f"repository/{fn.repository_name}") for fn in fns})
    base_repos = sorted({r for fn in fns if (r := _base_image_repo(fn, t)) and r not in repos})
    functions: list[str] = []
    for fn in fns:
        arn = t.arn("lambda", f"function:{fn.function_name}")
        functions += [arn, f"{arn}:*"]
    statements: list[dict[str, Any]] = [
        {
            "Sid": "EcrLogin",
            "Effect": "Allow",
            "Action": ["ecr:GetAuthorizationToken"],
            "Resource": "*",  # the only action here without resource-level permissions
        },
        {"Sid": "EcrPushPull", "Effect": "Allow", "Action": ECR_PUSH_PULL, "Resource": repos},
    ]
    if base_repos:
        statements.append({"Sid": "EcrPullBaseImage", "Effect": "Allow", "Action": ECR_PULL, "Resource": base_repos})
    statements += [
        {"Sid": "LambdaDeploy", "Effect": "Allow", "Action": LAMBDA_DEPLOY, "Resource": functions},
        {
            "Sid": "PassExecutionRole",
            "Effect": "Allow",
            "Action": ["iam:PassRole"],
            "Resource": sorted({execution_role_arn(fn, t) for fn in fns}),
            "Condition": {"StringEquals": {"iam:PassedToService": "lambda.amazonaws.com"}},
        },
        {
            "Sid": "ReadFunctionLogs",
            "Effect": "Allow",
            "Action": LOGS_READ,
            "Resource": sorted({a for fn in fns for a in _log_group(fn, t)}),
        },
    ]
    secrets = sorted({_secret_arn(s.secretsmanager, t) for fn in fns for s in fn.secrets if s.secretsmanager})
    params = sorted({a for fn in fns for s in fn.secrets if s.ssm_path for a in _ssm_arns(s.ssm_path, t)})
    if secrets:
        statements.append({
            "Sid": "ReadSecrets",
            "Effect": "Allow",
            "Action": ["secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue"],
            "Resource": secrets,
        })
    if params:
        statements.append({
            "Sid": "ReadParameters",
            "Effect": "Allow",
            "Action": ["ssm:GetParameter", "ssm:GetParameters", "ssm:GetParametersByPath"],
            "Resource": params,
        })
    return {"Version": VERSION, "Statement": statements}


def execution_trust_policy() -> dict[str, Any]:
    return {
        "Version": VERSION,
        "Statement": [{
            "Sid": "LambdaService",
            "Effect": "Allow",
            "Principal": {"Service": "lambda.amazonaws.com"},
            "Action": "sts:AssumeRole",
        }],
    }


def execution_policy(fn: FunctionConfig, t: Target) -> dict[str, Any]:
    return {
        "Version": VERSION,
        "Statement": [{
            "Sid": "WriteOwnLogs",
            "Effect": "Allow",
            "Action": LOGS_WRITE,
            "Resource": _log_group(fn, t),
        }],
    }


def github_repo_from_git(root: Path) -> str | None:
    try:
        proc = subprocess.run(
            ["git", "config", "--get", "remote.origin.url"], cwd=root, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    m = re.search(r"github\.com[:/]+([^/\s]+/[^/\s]+?)(?:\.git)?/?$", proc.stdout.strip())
    return m.group(1) if m else None


@dataclass
class IamDocs:
    target: Target
    github_repo: str
    subject: str
    deploy_role_name: str
    documents: dict[str, dict[str, Any]] = field(default_factory=dict)  # file name -> policy
    commands: list[str] = field(default_factory=list)
    execution_roles: dict[str, dict[str, str]] = field(default_factory=dict)  # key -> name, arn, policy file

    def files(self, out_dir: Path) -> dict[Path, str]:
        return {out_dir / name: json.dumps(doc, indent=2) + "\n" for name, doc in self.documents.items()}


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9+=,.@_-]+", "-", text).strip("-") or "app"


def generate(
    project: Project,
    *,
    github_repo: str | None,
    branch: str = "main",
    environment: str | None = None,
    account_id: str | None = None,
    region: str | None = None,
    out_dir: Path,
    deploy_role_name: str | None = None,
) -> IamDocs:
    fns = list(project.functions.values())
    repo, region = _check_inputs(project, github_repo, branch, environment, region)
    account = account_id or _account_from_roles(fns) or _account_from_sts()
    if not ACCOUNT_RE.match(account):
        raise UsageError(f"--account-id {account!r} is not a 12-digit AWS account id")
    t = Target(account, region, partition_for(region))
    role_name = deploy_role_name or f"lambdaship-deploy-{_slug(project.root.name)}"[:64]
    trust = github_trust_policy(t, repo, branch, environment)
    cond = trust["Statement"][0]["Condition"]
    subject = cond.get("StringLike", cond["StringEquals"])[f"{OIDC_HOST}:sub"]
    docs = IamDocs(t, repo, subject, role_name)
    docs.documents["github-trust-policy.json"] = trust
    docs.documents["deploy-policy.json"] = deploy_policy(project, t)
    docs.documents["execution-trust-policy.json"] = execution_trust_policy()
    _add_commands(docs, fns, role_name, out_dir)
    return docs


def _check_inputs(project: Project, github_repo: str | None, branch: str, environment: str | None,
                  region: str | None) -> tuple[str, str]:
    """The GitHub repository and the region, every input checked (one usage error line each)."""
    repo = github_repo or github_repo_from_git(project.root)
    if repo is None:
        raise UsageError(
            "cannot tell which GitHub repository deploys (no github.com remote 'origin')",
            "pass --github-repo OWNER/REPO",
        )
    if not _REPO_RE.match(repo):
        raise UsageError(f"--github-repo {repo!r} is not OWNER/REPO")
    if not re.match(r"^[A-Za-z0-9._/*-]+$", branch) or ".." in branch:
        raise UsageError(f"--branch {branch!r} is not a branch name")
    if environment is not None and not re.match(r"^[A-Za-z0-9_.-]{1,255}$", environment):
        raise UsageError(f"--environment {environment!r} is not a GitHub environment name")
    region = region or _default_region()
    if not region:
        raise UsageError("no AWS region", "pass --region or set AWS_REGION")
    if not REGION_RE.match(region):
        raise UsageError(f"--region {region!r} is not an AWS region", "e.g. eu-west-1")
    return repo, region


def _add_commands(docs: IamDocs, fns: list[FunctionConfig], role_name: str, d: Path) -> None:
    """The AWS CLI commands that create the roles from the written documents, and each execution role."""
    t = docs.target
    docs.commands += [
        "# once per account: GitHub's OIDC identity provider (skip if it exists)",
        f"aws iam create-open-id-connect-provider --url https://{OIDC_HOST} --client-id-list {AUDIENCE}",
        "# the role GitHub Actions assumes to deploy",
        f"aws iam create-role --role-name {role_name} --assume-role-policy-document file://{d}/github-trust-policy.json",
        f"aws iam put-role-policy --role-name {role_name} --policy-name lambdaship-deploy "
        f"--policy-document file://{d}/deploy-policy.json",
    ]
    for fn in fns:
        name = f"execution-policy-{_slug(fn.key)}.json"
        docs.documents[name] = execution_policy(fn, t)
        role = execution_role_name(fn)
        docs.execution_roles[fn.key] = {"role_name": role, "role_arn": execution_role_arn(fn, t), "policy_file": name}
        docs.commands.append(f"# execution role of {fn.function_name}")
        if not fn.role:
            docs.commands.append(
                f"aws iam create-role --role-name {role} --assume-role-policy-document "
                f"file://{d}/execution-trust-policy.json"
            )
        docs.commands.append(
            f"aws iam put-role-policy --role-name {role} --policy-name lambdaship-logs --policy-document file://{d}/{name}"
        )


def _default_region() -> str | None:
    from lambdaship.aws.session import region

    return region()


def _account_from_roles(fns: list[FunctionConfig]) -> str | None:
    for fn in fns:
        if fn.role:
            return fn.role.split(":")[4]
    return None


def _account_from_sts() -> str:
    from lambdaship.aws.sts import account_id

    try:
        return account_id()
    except Exception as exc:  # no credentials, no network: ask for the flag
        raise LambdashipError(
            f"cannot find the AWS account id ({type(exc).__name__})", "pass --account-id or configure AWS credentials"
        ) from None
