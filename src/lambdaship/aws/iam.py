"""IAM: the function's execution role (create only on request)."""

from __future__ import annotations

import json
from typing import Any

from lambdaship.aws.errors import aws_error_code
from lambdaship.aws.session import client as _client
from lambdaship.names import Names

LOGS_POLICY_NAME = "lambdaship-logs"
LAMBDA_TRUST = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
    ],
}


def client() -> Any:
    return _client("iam")


def role_arn(name: str) -> str | None:
    """The ARN of role ``name``, or None when it does not exist."""
    from botocore.exceptions import ClientError

    try:
        return client().get_role(RoleName=name)["Role"]["Arn"]
    except ClientError as exc:
        if aws_error_code(exc) == "NoSuchEntity":
            return None
        raise


def role_exists(arn: str) -> bool | None:
    """Whether the role ARN names a role of this account; None when the caller may not ask
    (the generated CI policy grants no ``iam:GetRole``; Lambda's CreateFunction still refuses a
    missing role)."""
    from botocore.exceptions import ClientError

    try:
        client().get_role(RoleName=arn.rsplit("/", 1)[-1])
    except ClientError as exc:
        code = aws_error_code(exc)
        if code == "NoSuchEntity":
            return False
        if code in ("AccessDenied", "AccessDeniedException"):
            return None
        raise
    return True


def check_role(arn: str) -> None:
    """Raise when the configured execution role ARN names no role of this account.

    Checked before anything is created, so a typo does not leave a pushed image or a bucket
    behind. A caller without ``iam:GetRole`` (the generated CI policy does not grant it) skips
    the check; Lambda's CreateFunction still refuses a missing role.
    """
    from botocore.exceptions import ClientError

    from lambdaship.errors import LambdashipError

    name = arn.rsplit("/", 1)[-1]
    try:
        client().get_role(RoleName=name)
    except ClientError as exc:
        code = aws_error_code(exc)
        if code == "NoSuchEntity":
            raise LambdashipError(
                f"the execution role {arn} does not exist",
                "create it, fix 'role' in the config, or remove 'role' and pass --create-role",
            ) from None
        if code in ("AccessDenied", "AccessDeniedException"):
            return
        raise


def default_role_name(function_name: str) -> str:
    return Names(function_name).role


def logs_policy(function_name: str, partition: str = "aws") -> dict[str, Any]:
    """What AWSLambdaBasicExecutionRole grants, scoped to the function's own log group."""
    group = f"arn:{partition}:logs:*:*:log-group:{Names(function_name).log_group}"
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Action": "logs:CreateLogGroup", "Resource": group},
            {"Effect": "Allow", "Action": ["logs:CreateLogStream", "logs:PutLogEvents"], "Resource": f"{group}:*"},
        ],
    }


def create_execution_role(name: str, function_name: str) -> str:
    """Create a role Lambda can assume with only its own log group's permissions; return its ARN."""
    arn = client().create_role(
        RoleName=name,
        AssumeRolePolicyDocument=json.dumps(LAMBDA_TRUST),
        Description=f"Execution role for Lambda function {function_name} (created by lambdaship)",
        Tags=[{"Key": k, "Value": v} for k, v in Names(function_name).tags.items()],
    )["Role"]["Arn"]
    partition = arn.split(":", 2)[1]
    client().put_role_policy(RoleName=name, PolicyName=LOGS_POLICY_NAME,
                             PolicyDocument=json.dumps(logs_policy(function_name, partition)))
    return arn


def attached_policies(name: str) -> list[str]:
    return [p["PolicyArn"] for p in client().list_attached_role_policies(RoleName=name)["AttachedPolicies"]]
