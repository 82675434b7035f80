"""Error paths moto cannot produce, with botocore's Stubber: an update in progress
(ResourceConflictException), a RevisionId that no longer matches (PreconditionFailedException),
and an update that Lambda reports Failed."""

from __future__ import annotations

import boto3
import pytest
from botocore.config import Config
from botocore.stub import Stubber

from lambdaship.aws import lambda_
from lambdaship.errors import LambdashipError


@pytest.fixture
def stubbed(monkeypatch):
    client = boto3.client("lambda", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x",
                          config=Config(retries={"max_attempts": 1}))
    monkeypatch.setattr(lambda_, "client", lambda: client)
    import stamina

    stamina.set_testing(True, attempts=3)  # no real sleeping between retries
    with Stubber(client) as stub:
        yield stub
    stamina.set_testing(False)


def _fn(status: str = "Successful", reason: str | None = None) -> dict:
    cfg = {"FunctionName": "f", "State": "Active", "LastUpdateStatus": status, "RevisionId": "r2"}
    if reason:
        cfg["LastUpdateStatusReason"] = reason
        cfg["LastUpdateStatusReasonCode"] = "ImageDeleted"
    return cfg


def test_resource_conflict_waits_and_retries(stubbed):
    params = {"FunctionName": "f", "ImageUri": "x@sha256:" + "a" * 64}
    stubbed.add_client_error("update_function_code", "ResourceConflictException",
                             "The operation cannot be performed at this time. An update is in progress", 409)
    stubbed.add_response("get_function", {"Configuration": _fn()})  # the waiter
    stubbed.add_response("get_function_configuration", _fn())
    stubbed.add_response("update_function_code", {"FunctionName": "f", "RevisionId": "r3"}, params)
    assert lambda_.update_function_code(**params)["RevisionId"] == "r3"
    stubbed.assert_no_pending_responses()


def test_revision_mismatch_is_one_clear_error(stubbed):
    stubbed.add_client_error("update_alias", "PreconditionFailedException",
                             "The RevisionId provided does not match the latest RevisionId", 412)
    with pytest.raises(lambda_.ConcurrentDeployError) as exc:
        lambda_.update_alias(FunctionName="f", Name="live", FunctionVersion="3", RevisionId="old")
    line = exc.value.one_line()
    assert "changed by another deploy" in line and "\n" not in line


def test_failed_update_reports_lambdas_reason(stubbed):
    reason = "The image manifest or layer media type for the source image is not supported."
    stubbed.add_response("get_function", {"Configuration": _fn("Failed", reason)})  # waiter stops: failure state
    stubbed.add_response("get_function_configuration", _fn("Failed", reason))
    with pytest.raises(LambdashipError) as exc:
        lambda_.wait_updated("f")
    assert reason.rstrip(".") in exc.value.one_line() and "Failed" in exc.value.one_line()
