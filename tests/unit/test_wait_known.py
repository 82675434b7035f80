"""A create/update whose own answer already says the change is done (or failed) is not polled:
no Lambda call is made; an answer still in progress is (here: no endpoint, so polling fails)."""

from __future__ import annotations

import pytest

from lambdaship.aws import lambda_
from lambdaship.aws.session import configure


@pytest.fixture
def no_lambda(monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    # Any call would go to a closed port and fail fast.
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    configure()
    yield
    configure()


def test_a_successful_answer_needs_no_poll(no_lambda) -> None:  # type: ignore[no-untyped-def]
    answer = {"FunctionName": "f", "State": "Active", "LastUpdateStatus": "Successful", "RevisionId": "r2"}
    assert lambda_.wait_updated("f", known=answer)["RevisionId"] == "r2"
    assert lambda_.wait_active("f", known={"FunctionName": "f", "State": "Active"})["State"] == "Active"


def test_a_failed_answer_is_reported_with_lambdas_reason(no_lambda) -> None:  # type: ignore[no-untyped-def]
    answer = {"FunctionName": "f", "State": "Active", "LastUpdateStatus": "Failed",
              "LastUpdateStatusReason": "image not found", "LastUpdateStatusReasonCode": "ImageAccessDenied"}
    with pytest.raises(lambda_.UpdateFailedError, match=r"image not found \(ImageAccessDenied\)"):
        lambda_.wait_updated("f", known=answer)


def test_an_answer_in_progress_is_polled(no_lambda) -> None:  # type: ignore[no-untyped-def]
    from botocore.exceptions import EndpointConnectionError

    answer = {"FunctionName": "f", "State": "Active", "LastUpdateStatus": "InProgress"}
    with pytest.raises(EndpointConnectionError):
        lambda_.wait_updated("f", timeout=2, known=answer)
    with pytest.raises(EndpointConnectionError):  # a new function still Pending
        lambda_.wait_active("f", timeout=2, known={"FunctionName": "f", "State": "Pending"})
