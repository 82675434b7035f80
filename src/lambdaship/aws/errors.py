"""AWS errors: the error code of any botocore exception, and botocore → one user-facing line."""

from __future__ import annotations

from typing import Any


def aws_error_code(exc: BaseException) -> str | None:
    """``Error.Code`` of a botocore ``ClientError`` (e.g. ``ResourceNotFoundException``), else None."""
    resp: Any = getattr(exc, "response", None)
    if isinstance(resp, dict):
        return (resp.get("Error") or {}).get("Code")
    return None


def aws_error_message(exc: BaseException) -> str | None:
    resp: Any = getattr(exc, "response", None)
    if isinstance(resp, dict):
        return (resp.get("Error") or {}).get("Message")
    return None


def translate_aws(exc: BaseException) -> tuple[str, str | None] | None:
    """(message, hint) for a botocore exception; None for anything else."""
    try:
        from botocore import exceptions as bx
    except ImportError:  # pragma: no cover
        return None
    if isinstance(exc, bx.NoCredentialsError):
        return ("no AWS credentials found",
                "configure a profile (aws configure), set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or use OIDC in CI")
    if isinstance(exc, bx.NoRegionError):
        return "no AWS region configured", "set AWS_REGION or use --region"
    if isinstance(exc, bx.EndpointConnectionError):
        return (f"cannot reach the AWS endpoint {exc.kwargs.get('endpoint_url', '')}",
                "check AWS_ENDPOINT_URL / your network (for the local stack: lambdaship local up)")
    if isinstance(exc, bx.ClientError):
        return f"AWS {exc.operation_name} failed: {aws_error_code(exc)}: {aws_error_message(exc)}", None
    if isinstance(exc, bx.BotoCoreError):
        return f"AWS error: {exc}", None
    return None


def client_error_type() -> type[Exception]:
    """botocore's ``ClientError`` (imported here so that only ``aws/`` imports botocore)."""
    from botocore.exceptions import ClientError

    return ClientError


def streaming_error_type() -> type[Exception]:
    """botocore's ``ResponseStreamingError``: an answer cut mid-body."""
    from botocore.exceptions import ResponseStreamingError

    return ResponseStreamingError
