"""Thin wrappers over S3 (boto3 ``s3``): the bucket for zip packages over 50 MiB."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

from lambdaship.aws.errors import aws_error_code
from lambdaship.aws.session import client as _client
from lambdaship.aws.session import region


def client() -> Any:
    return _client("s3")


def _code(exc: Exception) -> str:
    return str(aws_error_code(exc) or "")


def bucket_exists(bucket: str) -> bool:
    from botocore.exceptions import ClientError

    try:
        client().head_bucket(Bucket=bucket)
        return True
    except ClientError as exc:
        if _code(exc) in ("404", "NoSuchBucket", "NotFound"):
            return False
        raise


def ensure_bucket(bucket: str) -> bool:
    """Create the bucket (private, in the session's region) unless it exists; True when created."""
    if bucket_exists(bucket):
        return False
    params: dict[str, Any] = {"Bucket": bucket}
    reg = region() or "us-east-1"
    if reg != "us-east-1":
        params["CreateBucketConfiguration"] = {"LocationConstraint": reg}
    c = client()
    c.create_bucket(**params)
    c.put_public_access_block(
        Bucket=bucket,
        PublicAccessBlockConfiguration={
            "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True, "RestrictPublicBuckets": True,
        },
    )
    return True


def object_size(bucket: str, key: str) -> int | None:
    from botocore.exceptions import ClientError

    try:
        return int(client().head_object(Bucket=bucket, Key=key)["ContentLength"])
    except ClientError as exc:
        if _code(exc) in ("404", "NoSuchKey", "NotFound"):
            return None
        raise


def put_file(bucket: str, key: str, path: Path, *, sha256_hex: str | None = None) -> bool:
    """Upload ``path`` unless an object of the same size is already at ``key`` (keys are content
    addressed); True when uploaded. S3 verifies the SHA-256 checksum when given."""
    size = path.stat().st_size
    if object_size(bucket, key) == size:
        return False
    extra: dict[str, Any] = {}
    if sha256_hex:
        extra["ChecksumSHA256"] = base64.b64encode(bytes.fromhex(sha256_hex)).decode()
    with path.open("rb") as fh:
        client().put_object(Bucket=bucket, Key=key, Body=fh, ContentLength=size, **extra)
    return True


def get_bytes(bucket: str, key: str, version: str | None = None) -> bytes:
    kw: dict[str, Any] = {"Bucket": bucket, "Key": key}
    if version:
        kw["VersionId"] = version
    return client().get_object(**kw)["Body"].read()
