"""STS: who the current credentials belong to."""

from __future__ import annotations

from lambdaship.aws.session import client


def account_id() -> str:
    """The 12-digit account of the caller (``sts:GetCallerIdentity`` needs no permission)."""
    return str(client("sts").get_caller_identity()["Account"])
