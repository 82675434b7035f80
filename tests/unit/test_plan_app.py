"""The app's API/trigger steps as a ``before_alias`` extension of the one deploy plan (no server)."""

from __future__ import annotations

from lambdaship.api import swagger
from lambdaship.api.deploy import main_config
from lambdaship.api.handlers import namespaced
from lambdaship.api.model import from_json
from lambdaship.api.observe import ApiState, Observed
from lambdaship.api.observe import FunctionState as ApiFunctionState
from lambdaship.api.plan import plan_rest_api
from lambdaship.api.triggers import Code, plan_functions
from lambdaship.deploy.execute import dry_run
from lambdaship.deploy.handlers import HANDLERS
from lambdaship.deploy.plan import Extension, Options, PlanInput, plan
from lambdaship.deploy.state import FunctionState
from lambdaship.deploy.steps import Later
from lambdaship.names import Names
from tests.unit.planning import D1, D2, REGISTRY, actions, deployed, env, fn, image

REGION, ACCOUNT = "us-east-1", "123456789012"


def _app_steps(name: str = "app") -> list:
    data = {"app_name": name, "binary_types": [], "authorizers": [], "builtin_authorizers": [],
            "routes": [{"path": "/items", "method": "GET", "view_name": "items",
                        "content_types": ["application/json"]}]}
    data["swagger"] = swagger.generate(data, region=REGION, account=ACCOUNT, function_name=name, alias="live")
    obs = Observed(REGION, ACCOUNT, ApiState(), {name: ApiFunctionState(name, True)})
    return namespaced(plan_rest_api(fn(name), from_json(data), obs).steps)


def _ext(steps: list) -> Options:
    return Options(extensions=(Extension("before_alias", lambda _inp: tuple(steps)),))


def test_app_steps_run_after_publish_and_smoke_and_before_the_alias_moves() -> None:
    f = fn()
    p = plan(f, image(D2), env(), deployed(f, D1), _ext(_app_steps()))
    acts = actions(p)
    assert acts[-1] == "lambda:UpdateAlias"
    first_api = next(i for i, a in enumerate(acts) if a.startswith("api:"))
    assert acts.index("smoke:Invoke") < first_api and acts.index("lambda:PublishVersion") < first_api
    assert all(a.startswith("api:") for a in acts[first_api:-1])


def test_an_api_only_change_is_planned_when_the_function_is_up_to_date() -> None:
    f = fn()
    state = deployed(f, D1)
    assert plan(f, image(D1), env(), state).up_to_date
    p = plan(f, image(D1), env(), state, _ext(_app_steps()))
    assert not p.up_to_date
    assert actions(p) and all(a.startswith("api:") for a in actions(p))
    assert "api:apigateway:CreateRestApi" in actions(p) and "api:apigateway:CreateDeployment" in actions(p)


def test_dry_run_lists_every_api_gateway_and_permission_call() -> None:
    f = fn()
    p = plan(f, image(D1), env(), deployed(f, D1), _ext(_app_steps()))
    text = "\n".join(dry_run(p))
    for call in ("api:apigateway:CreateRestApi", "api:apigateway:CreateResource", "api:apigateway:PutMethod",
                 "api:apigateway:PutIntegration", "api:apigateway:CreateDeployment", "api:lambda:AddPermission"):
        assert call in text
    assert len(dry_run(p)) == len(p.steps)


def test_app_actions_are_namespaced_apart_from_the_main_functions_handlers() -> None:
    f = fn()
    x_state = Observed(REGION, ACCOUNT, ApiState(), {})
    model = from_json({"app_name": "app", "routes": [], "authorizers": [], "swagger": {},
                       "lambda_functions": [{"name": "worker", "handler": "app.worker"}]})
    extra = namespaced(plan_functions(f, model, x_state, code=Code(image_uri=f"{REGISTRY}/app@{D1}"),
                                      config={"Role": f.role}))
    p = plan(f, image(D2), env(), FunctionState(name="app", role_exists=True), _ext(extra))
    acts = actions(p)
    # the extra function's create/publish/alias are their own actions, not the main function's
    assert acts.count("lambda:CreateFunction") == 1 and acts.count("api:lambda:CreateFunction") == 1
    assert "api:lambda:PublishVersion" in acts and "api:lambda:CreateAlias" in acts
    assert acts[-1] == "lambda:CreateAlias"
    for s in p.steps:
        own = HANDLERS.get(s.action)
        ns = HANDLERS.get(s.action.split(":", 1)[0] + ":*")
        assert (own is None) == s.action.startswith("api:") and (own or ns) is not None


def test_extra_functions_get_the_role_the_plan_creates() -> None:
    f = fn(role=None)
    state = FunctionState(name="app", role_exists=None)
    inp = PlanInput(f, Names("app", None), image(D1), env(A="1"), state)
    cfg = main_config(f, inp)
    assert cfg["Role"] == Later("{role}") and cfg["Architectures"] == ["x86_64"]
    assert cfg["Environment"] == {"Variables": {"A": "1"}} and cfg["MemorySize"] == f.memory
    assert main_config(fn(), PlanInput(fn(), Names("app", None), image(D1), env(), state))["Role"] == fn().role


def test_calls_on_the_main_alias_itself_come_after_it_exists() -> None:
    from lambdaship.api.deploy import on_main_alias

    f = fn()
    steps = _app_steps()
    alias_permission = [s for s in steps if s.action == "api:lambda:AddPermission"]
    assert alias_permission and all(on_main_alias(f, s) for s in alias_permission)
    assert not any(on_main_alias(f, s) for s in steps if s.action.startswith("api:apigateway:"))
    exts = Options(extensions=(Extension("before_alias", lambda _i: tuple(s for s in steps if not on_main_alias(f, s))),
                               Extension("after_alias", lambda _i: tuple(alias_permission))))
    acts = actions(plan(f, image(D1), env(), FunctionState(name="app", role_exists=True), exts))
    assert acts.index("lambda:CreateAlias") < acts.index("api:lambda:AddPermission")
    assert acts.index("api:apigateway:CreateDeployment") < acts.index("lambda:CreateAlias")
