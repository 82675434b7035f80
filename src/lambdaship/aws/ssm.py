"""SSM Parameter Store: every parameter under a path, decrypted; name = last path segment."""

from __future__ import annotations

from typing import Any

from lambdaship.aws.session import client as _client


def client() -> Any:
    return _client("ssm")


def parameters_by_path(path: str, *, recursive: bool = False) -> dict[str, str]:
    out: dict[str, str] = {}
    paginator = client().get_paginator("get_parameters_by_path")
    for page in paginator.paginate(Path=path, Recursive=recursive, WithDecryption=True):
        for p in page.get("Parameters", []):
            out[p["Name"].rstrip("/").rsplit("/", 1)[-1]] = p["Value"]
    return out
