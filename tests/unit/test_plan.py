"""The deploy planner as a pure function: FunctionState values in, a Plan out (no server)."""

from __future__ import annotations

import copy
import re
import socket

import pytest

from lambdaship.deploy.plan import Options, plan
from lambdaship.deploy.state import FunctionState
from lambdaship.deploy.steps import Later, resolve_params
from lambdaship.errors import LambdashipError
from tests.unit.planning import D1, D2, ROLE, actions, deployed, env, fn, image, step, zip_package


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Planning must not talk to anything: any connection attempt fails the test."""
    def refuse(*_a: object, **_k: object) -> None:
        raise AssertionError("the planner opened a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)


def test_create_plan_creates_waits_publishes_smokes_then_creates_the_alias() -> None:
    f = fn()
    p = plan(f, image(), env(TOKEN="secret"), FunctionState(name="app", role_exists=True))
    assert actions(p) == ["lambda:CreateFunction", "lambda:Wait", "lambda:PublishVersion",
                          "lambda:UpdateFunctionCode", "lambda:Wait", "lambda:PublishVersion", "registry:PutTag",
                          "smoke:Invoke", "lambda:CreateAlias"]
    create = step(p, "lambda:CreateFunction").params
    assert create["PackageType"] == "Image" and create["Code"] == {"ImageUri": p.target.image_uri}
    assert create["Role"] == ROLE and create["Architectures"] == ["x86_64"]
    assert create["Tags"] == {"lambdaship:function": "app"}
    assert [c.kind for c in p.env_changes] == ["added"] and not p.exists
    # the republish path is planned (and shown), not hidden in a handler
    retry = [s for s in p.steps if s.unless == "version"]
    assert [s.action for s in retry] == ["lambda:UpdateFunctionCode", "lambda:Wait", "lambda:PublishVersion"]
    assert "secret" not in str(p.to_json()) and "secret" not in "\n".join(p.render())


def test_update_code_only() -> None:
    f = fn()
    p = plan(f, image(D2), env(), deployed(f, D1))
    assert actions(p)[:2] == ["lambda:UpdateFunctionCode", "lambda:Wait"]
    assert "lambda:UpdateFunctionConfiguration" not in actions(p) and "lambda:TagResource" not in actions(p)
    code = step(p, "lambda:UpdateFunctionCode").params
    assert code["ImageUri"].endswith(D2) and code["RevisionId"] == "rev-1"
    assert p.current_digest == D1 and p.alias_digest == D1 and p.alias_version == "3"


def test_config_change_only_updates_configuration_with_the_read_revision() -> None:
    f = fn()
    p = plan(f.model_copy(update={"memory": 1024}), image(D1), env(), deployed(f, D1))
    assert actions(p)[:2] == ["lambda:UpdateFunctionConfiguration", "lambda:Wait"]
    cfg = step(p, "lambda:UpdateFunctionConfiguration").params
    assert cfg == {"FunctionName": "app", "MemorySize": 1024, "RevisionId": "rev-1"}


def test_code_and_config_change_reads_the_revision_of_the_code_update() -> None:
    f = fn()
    p = plan(f, image(D2), env(A="1"), deployed(f, D1))
    cfg = step(p, "lambda:UpdateFunctionConfiguration")
    assert cfg.params["RevisionId"] == Later("{revision}") and cfg.output == "revision"
    assert resolve_params(cfg.params, {"revision": "r2"})["RevisionId"] == "r2"
    assert [c.kind for c in p.env_changes] == ["added"]


def test_nothing_changed_is_up_to_date() -> None:
    f = fn()
    p = plan(f, image(D1), env(), deployed(f, D1))
    assert p.steps == () and p.up_to_date


def test_tag_holds_the_function_name_not_the_config_key() -> None:
    f = fn(key="billing")
    p = plan(f, image(D1), env(), deployed(f, D1, tags={"lambdaship:function": "billing"}))
    assert step(p, "lambda:TagResource").params["Tags"] == {"lambdaship:function": "app"}


def test_unpushed_image_is_pushed_before_the_function_changes() -> None:
    f = fn()
    p = plan(f, image(D2, pushed=False), env(), deployed(f, D1))
    assert actions(p)[0] == "registry:PushImage" and step(p, "registry:PushImage").output == "push"
    assert actions(plan(f, image(D2, pushed=True), env(), deployed(f, D1)))[0] != "registry:PushImage"


def test_zip_strategy_uploads_then_creates_a_zip_function() -> None:
    f = fn()
    p = plan(f, zip_package(), env(), FunctionState(name="app", role_exists=True))
    assert actions(p)[:4] == ["package:Choose", "zip:Upload", "lambda:CreateFunction", "lambda:Wait"]
    create = step(p, "lambda:CreateFunction").params
    assert create["PackageType"] == "Zip" and create["Code"] == {"ZipFile": Later("{zip_file}")}
    assert (create["Runtime"], create["Handler"]) == ("python3.12", "app.handler")
    assert actions(p)[-3:] == ["zip:PublishVersion", "smoke:Invoke", "lambda:CreateAlias"]
    assert p.target.digest == "sha256:" + "ab" * 32


def test_zip_over_an_image_function_and_image_over_a_zip_function_are_refused() -> None:
    f = fn()
    with pytest.raises(LambdashipError, match="cannot change a function's package type"):
        plan(f, zip_package(), env(), deployed(f))
    with pytest.raises(LambdashipError, match="is a Zip function") as exc:
        plan(f, image(), env(), deployed(f, package_type="Zip", CodeSha256="x"))
    assert "lambdaship migrate" in (exc.value.hint or "")


def test_unchanged_zip_is_up_to_date_and_a_changed_one_uploads() -> None:
    f = fn()
    pkg = zip_package()
    state = deployed(f, pkg.digest, package_type="Zip", CodeSha256=pkg.artifact.code_sha256, Runtime="python3.12",
                     Handler="app.handler")
    assert plan(f, pkg, env(), state).up_to_date
    changed = plan(f, zip_package("cd" * 32), env(), state)
    assert actions(changed)[1:4] == ["zip:Upload", "lambda:UpdateFunctionCode", "lambda:Wait"]


def test_s3_zip_needs_an_existing_bucket_or_create_bucket() -> None:
    f = fn()
    pkg = zip_package(upload="s3", bucket="b")
    with pytest.raises(LambdashipError, match="does not exist"):
        plan(f, pkg, env(), FunctionState(name="app", role_exists=True, bucket_exists=False))
    p = plan(f, pkg, env(), FunctionState(name="app", role_exists=True, bucket_exists=True))
    assert step(p, "lambda:CreateFunction").params["Code"] == {"S3Bucket": "b", "S3Key": pkg.s3_key}


def test_role_creation_and_role_checks() -> None:
    f = fn(role=None)
    with pytest.raises(LambdashipError, match="no execution role"):
        plan(f, image(), env(), FunctionState(name="app"))
    p = plan(f, image(), env(), FunctionState(name="app"), Options(create_role=True))
    assert actions(p)[0] == "iam:CreateRole" and step(p, "iam:CreateRole").output == "role"
    assert step(p, "iam:CreateRole").params["RoleName"] == "app-lambdaship-exec"
    assert step(p, "lambda:CreateFunction").params["Role"] == Later("{role}")
    existing = "arn:aws:iam::123456789012:role/app-lambdaship-exec"
    p = plan(f, image(), env(), FunctionState(name="app", default_role_arn=existing), Options(create_role=True))
    assert "iam:CreateRole" not in actions(p) and step(p, "lambda:CreateFunction").params["Role"] == existing
    with pytest.raises(LambdashipError, match="does not exist"):
        plan(fn(), image(), env(), FunctionState(name="app", role_exists=False))


def test_alias_moves_last_and_records_the_history() -> None:
    f = fn()
    p = plan(f, image(D2), env(), deployed(f, D1, version="3", history=("2", "1")))
    assert actions(p)[-1] == "lambda:UpdateAlias"
    alias = p.steps[-1]
    assert alias.params["RevisionId"] == "a-rev" and alias.output == "alias_version"
    assert resolve_params(alias.params, {"version": "4"})["Description"] == "lambdaship previous=3,2,1"
    assert actions(p).index("smoke:Invoke") == len(p.steps) - 2
    assert "smoke:Invoke" not in actions(plan(f, image(D2), env(), deployed(f, D1), Options(skip_smoke=True)))


def test_env_sync_changes_only_the_environment() -> None:
    f = fn()
    p = plan(f.model_copy(update={"memory": 2048}), image(D1), env(A="2"), deployed(f, D1, variables={"A": "1"}),
             Options(only_env=True))
    cfg = step(p, "lambda:UpdateFunctionConfiguration").params
    assert set(cfg) == {"FunctionName", "Environment", "RevisionId"}
    assert [c.kind for c in p.env_changes] == ["changed"]


def test_planning_changes_none_of_its_inputs() -> None:
    f = fn()
    state, pkg, e = deployed(f, D1), image(D2, pushed=False), env(A="1")
    before = copy.deepcopy((state, pkg.target.image_uri, e))
    plan(f, pkg, e, state)
    plan(f, pkg, e, state)
    assert (state, pkg.target.image_uri, e) == before and pkg.target.image is not None


def test_dry_run_prints_every_call_with_its_output() -> None:
    f = fn()
    p = plan(f, image(D2), env(), deployed(f, D1))
    lines = p.render()
    assert len([line for line in lines if re.match(r"^\s+\d+\. ", line)]) == len(p.steps)
    assert any("lambda:PublishVersion(" in line and "-> version" in line for line in lines)
    assert any("[only if version is not set yet]" in line for line in lines)
