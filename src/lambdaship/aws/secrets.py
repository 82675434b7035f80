"""Secrets Manager: a secret whose value is a JSON object of NAME = value."""

from __future__ import annotations

import json
from typing import Any

from lambdaship.aws.errors import aws_error_code
from lambdaship.aws.session import client as _client
from lambdaship.errors import LambdashipError


def client() -> Any:
    return _client("secretsmanager")


def get_secret_json(secret_id: str) -> dict[str, str]:
    """The secret's value as a dict of strings. Never puts the value in an error message."""
    from botocore.exceptions import ClientError

    try:
        resp = client().get_secret_value(SecretId=secret_id)
    except ClientError as exc:
        code = aws_error_code(exc)
        if code == "ResourceNotFoundException":
            raise LambdashipError(
                f"Secrets Manager secret {secret_id!r} does not exist",
                "create it or fix 'secrets.secretsmanager' in the config",
            ) from None
        raise
    raw = resp.get("SecretString")
    if raw is None:
        raise LambdashipError(f"secret {secret_id!r} is binary", "store a JSON object of NAME = value as a string")
    try:
        data = json.loads(raw)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise LambdashipError(
            f"secret {secret_id!r} is not a JSON object", "store the variables as a JSON object of NAME = value"
        ) from None
    return {str(k): v if isinstance(v, str) else json.dumps(v) for k, v in data.items()}
