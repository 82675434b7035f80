"""aws.session: clients of one configuration share one botocore session (parsed models and
endpoint rules, credentials resolved once); a region scope, ``--region`` or a changed
environment gets a session of its own, so sharing never hands a client the wrong region."""

from __future__ import annotations

import pytest

from lambdaship.aws import session
from lambdaship.errors import ConfigError


@pytest.fixture(autouse=True)
def _clean(monkeypatch: pytest.MonkeyPatch, tmp_path):
    for k in ("AWS_PROFILE", "AWS_REGION", "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAUNITTEST")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "unit-test-secret")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    saved = (session.settings.profile, session.settings.region)
    session.configure(profile=None, region=None)
    yield
    session.configure(profile=saved[0], region=saved[1])


def test_clients_of_one_configuration_share_one_session() -> None:
    lam, ecr = session.client("lambda"), session.client("ecr")
    assert lam.meta.region_name == ecr.meta.region_name == "us-east-1"
    assert len(session._sessions) == 1
    assert session.client("lambda") is lam  # and the client itself is reused


def test_a_region_scope_gets_its_own_session_and_region() -> None:
    home = session.client("lambda")
    with session.in_region("eu-west-1"):
        away = session.client("lambda")
        assert away.meta.region_name == "eu-west-1"
        assert session.region() == "eu-west-1"
    assert away is not home
    assert len(session._sessions) == 2
    assert session.client("lambda") is home and home.meta.region_name == "us-east-1"


def test_configure_drops_the_shared_sessions() -> None:
    session.client("sts")
    session.configure(region="ap-southeast-2")
    assert session._sessions == {}
    assert session.client("sts").meta.region_name == "ap-southeast-2"


def test_a_changed_environment_is_a_new_configuration(monkeypatch: pytest.MonkeyPatch) -> None:
    first = session.client("lambda")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    second = session.client("lambda")
    assert second is not first and second.meta.endpoint_url == "http://127.0.0.1:9"


def test_a_missing_profile_is_one_error_before_any_call() -> None:
    session.configure(profile="no-such-profile")
    with pytest.raises(ConfigError, match="'no-such-profile' not found"):
        session.client("lambda")
