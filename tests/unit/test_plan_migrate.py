"""Migration planning from pure values, and the one executor's undo (in-memory handlers, no server)."""

from __future__ import annotations

from typing import Any

import pytest

from lambdaship.deploy.execute import StepFailed, execute
from lambdaship.deploy.state import FunctionState
from lambdaship.deploy.steps import Plan, Step
from lambdaship.migrate.core import plan_migration
from lambdaship.migrate.discover import Inventory, Permission, RestIntegration, Stage
from tests.unit.planning import actions, env, fn, image, step

OLD_ARN = "arn:aws:lambda:us-east-1:123456789012:function:legacy"
API_URI = f"arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/{OLD_ARN}/invocations"


def inventory(**kw: Any) -> Inventory:
    data: dict[str, Any] = {
        "name": "legacy", "arn": OLD_ARN, "tags": {}, "aliases": [], "url": None, "reserved_concurrency": 5,
        "configuration": {"PackageType": "Zip", "Role": "arn:aws:iam::123456789012:role/r", "Runtime": "python3.12",
                          "Handler": "app.app", "TracingConfig": {"Mode": "Active"}},
        "permissions": [Permission("apigw", "lambda:InvokeFunction", "apigateway.amazonaws.com",
                                   source_arn="arn:aws:execute-api:us-east-1:123456789012:abc/*")],
        "rest": [RestIntegration("abc", "shop", "res1", "/items", "GET", API_URI, "AWS_PROXY")],
        "stages": [Stage("rest", "abc", "api", "dep1")],
    }
    data.update(kw)
    return Inventory(**data)


def test_migration_composes_the_deploy_plan_with_its_steps_after_the_alias() -> None:
    inv, new = inventory(), fn("legacy-image", smoke={"path": "/items"})
    p = plan_migration(inv, new, image(repository="legacy-image").target, env(), FunctionState(name="legacy-image"))
    acts = actions(p)
    assert acts[:3] == ["lambda:CreateFunction", "lambda:Wait", "lambda:PutFunctionConcurrency"]
    alias = acts.index("lambda:CreateAlias")
    assert acts.index("smoke:Invoke") < alias < acts.index("apigateway:PutIntegration")
    assert acts[-3:] == ["apigateway:CreateDeployment", "migrate:Verify", "smoke:Invoke"]
    create = step(p, "lambda:CreateFunction")
    assert create.params["TracingConfig"] == {"Mode": "Active"} and "legacy" in create.note
    put = step(p, "apigateway:PutIntegration").params
    assert put["uri"].endswith("function:legacy-image:live/invocations") and put["ExpectedUri"] == API_URI
    assert p.artifacts["alias_arn"].endswith(":function:legacy-image:live")
    deleting = plan_migration(inv, new, image().target, env(), FunctionState(name="legacy-image"), delete_old=True)
    assert actions(deleting)[-1] == "lambda:DeleteFunction"


def test_a_failed_step_undoes_every_earlier_change_newest_first() -> None:
    log: list[str] = []

    def change(step: Step, p: dict[str, Any], run: Any) -> str:
        log.append(f"do {p['n']}")
        run.on_undo(lambda: log.append(f"undo {p['n']}"))
        return f"out-{p['n']}"

    def fail(step: Step, p: dict[str, Any], run: Any) -> None:
        raise RuntimeError(f"boom after {run.vars['first']}")

    p = Plan("f", "live", None, steps=(Step("t:Change", {"n": 1}, output="first"), Step("t:Change", {"n": 2}),
                                       Step("t:Fail", {}), Step("t:Change", {"n": 3})))
    with pytest.raises(StepFailed) as exc:
        execute(p, undo=True, handlers={"t:Change": change, "t:Fail": fail})
    assert log == ["do 1", "do 2", "undo 2", "undo 1"]
    assert str(exc.value.cause) == "boom after out-1" and (exc.value.index, exc.value.total) == (3, 4)
    assert [s.params["n"] for s in exc.value.outcome.undone] == [2, 1] and exc.value.undo_failures == []


def test_unless_skips_a_step_whose_variable_is_set() -> None:
    seen: list[int] = []

    def record(step: Step, p: dict[str, Any], run: Any) -> int:
        seen.append(p["n"])
        return p["n"]

    p = Plan("f", "live", None, steps=(Step("t:R", {"n": 1}, output="version"),
                                       Step("t:R", {"n": 2}, output="version", unless="version")))
    assert execute(p, handlers={"t:R": record}).ctx["version"] == 1 and seen == [1]


def test_every_repointed_api_gets_an_invoke_permission_on_the_alias_unless_already_granted() -> None:
    from lambdaship.migrate.discover import HttpIntegration
    from lambdaship.migrate.steps import permission_steps

    http = [HttpIntegration("h1", "web", "i1", f"{OLD_ARN}", ["GET /"])]
    steps = permission_steps(inventory(http=http), "legacy-image", "live")
    grants = {s.params["SourceArn"]: s.params for s in steps}
    new = "arn:aws:execute-api:us-east-1:123456789012:h1/*"
    assert set(grants) == {"arn:aws:execute-api:us-east-1:123456789012:abc/*", new}  # abc/* copied, h1 added
    assert grants[new]["Qualifier"] == "live" and grants[new]["Action"] == "lambda:InvokeFunction"
    assert grants[new]["Principal"] == "apigateway.amazonaws.com"
    assert grants[new]["StatementId"] == "lambdaship-apigw-h1"
    assert [s.note.startswith("copy of") for s in steps] == [True, False]
    none_copied = permission_steps(inventory(permissions=[]), "legacy-image", "live")
    assert [s.params["SourceArn"] for s in none_copied] == ["arn:aws:execute-api:us-east-1:123456789012:abc/*"]
