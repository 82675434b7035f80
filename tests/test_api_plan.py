"""The API planner is pure: AppModel (Chalice's own swagger) + an observed state → steps.

No AWS, no sandbox: the swagger comes from Chalice's SwaggerGenerator on an exported route
table written here, the observed state is a value."""

from __future__ import annotations

from pathlib import Path

from lambdaship.api import swagger
from lambdaship.api.model import from_json
from lambdaship.api.observe import ApiState, FunctionState, MethodState, Observed, StaleFunction
from lambdaship.api.plan import plan_rest_api
from lambdaship.api.triggers import plan_removals
from lambdaship.config import FunctionConfig

REGION, ACCOUNT = "eu-west-1", "111122223333"
ALIAS = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:shop:live"
URI = f"arn:aws:apigateway:{REGION}:lambda:path/2015-03-31/functions/{ALIAS}/invocations"


def _fn() -> FunctionConfig:
    return FunctionConfig(key="shop", function_name="shop", source=Path("/nonexistent"))


def _model(routes: list[dict]) -> object:
    data = {"app_name": "shop", "routes": routes, "binary_types": ["image/png"], "authorizers": [],
            "builtin_authorizers": []}
    data["swagger"] = swagger.generate(data, region=REGION, account=ACCOUNT, function_name="shop", alias="live")
    return from_json(data)


def _route(path: str, method: str = "GET", **kw) -> dict:
    return {"path": path, "method": method, "view_name": path.strip("/").replace("/", "_") or "index",
            "content_types": ["application/json"], **kw}


def _observed(api: ApiState) -> Observed:
    policy = ({"Principal": {"Service": "apigateway.amazonaws.com"},
               "Condition": {"ArnLike": {"AWS:SourceArn": f"arn:aws:execute-api:{REGION}:{ACCOUNT}:abc/*"}}},)
    return Observed(REGION, ACCOUNT, api, {"shop": FunctionState("shop", True, policy=policy)})


def _deployed(paths: dict[str, tuple[str, dict[str, MethodState]]]) -> ApiState:
    return ApiState("abc", "tagged", "root", paths, {}, ("image/png",), ("api",), {"lambdaship:function": "shop"})


def test_a_new_api_is_created_with_every_resource_method_and_the_scoped_permission() -> None:
    plan = plan_rest_api(_fn(), _model([_route("/items/{id}"), _route("/items/{id}", "PUT")]),
                         _observed(ApiState()))
    actions = [s.action for s in plan.steps]
    assert actions[0] == "apigateway:CreateRestApi" and actions[-1] == "apigateway:CreateDeployment"
    assert [s.params["pathPart"] for s in plan.steps if s.action == "apigateway:CreateResource"] == ["items", "{id}"]
    integrations = [s.params for s in plan.steps if s.action == "apigateway:PutIntegration"]
    assert {(str(p["httpMethod"]), p["type"], p["uri"]) for p in integrations} == {
        ("GET", "AWS_PROXY", URI), ("PUT", "AWS_PROXY", URI)}
    perm = next(s for s in plan.steps if s.action == "lambda:AddPermission")
    assert perm.params["Qualifier"] == "live" and str(perm.params["SourceArn"]) == (
        f"<arn:aws:execute-api:{REGION}:{ACCOUNT}:{{rest_api_id}}/*>")


def test_an_unchanged_api_plans_nothing_and_a_removed_route_is_deleted() -> None:
    same = _deployed({"/": ("root", {}), "/items": ("r1", {"GET": MethodState(integration_type="AWS_PROXY",
                                                                               integration_uri=URI)})})
    assert plan_rest_api(_fn(), _model([_route("/items")]), _observed(same)).steps == []
    more = _deployed({**same.resources, "/old": ("r2", {"GET": MethodState(integration_type="AWS_PROXY",
                                                                            integration_uri=URI)})})
    steps = plan_rest_api(_fn(), _model([_route("/items")]), _observed(more)).steps
    assert [(s.action, s.note) for s in steps] == [("apigateway:DeleteResource", "/old: removed"),
                                                   ("apigateway:CreateDeployment",
                                                    "clients see the changes from here on")]


def test_a_changed_integration_target_is_put_again() -> None:
    old = _deployed({"/": ("root", {}), "/items": ("r1", {"GET": MethodState(
        integration_type="AWS_PROXY", integration_uri=URI.replace(":live", ":old"))})})
    steps = plan_rest_api(_fn(), _model([_route("/items")]), _observed(old)).steps
    assert [s.action for s in steps] == ["apigateway:PutIntegration", "apigateway:CreateDeployment"]


def test_functions_of_removed_handlers_lose_their_triggers_then_go() -> None:
    obs = Observed(REGION, ACCOUNT, ApiState(), {}, mappings=(
        {"UUID": "u1", "EventSourceArn": "arn:aws:sqs:q", "FunctionArn": f"arn:aws:lambda:{REGION}:{ACCOUNT}:"
                                                                         "function:shop-old:live"},),
        stale=(StaleFunction("shop-old", ("shop-old",)),))
    assert [s.action for s in plan_removals(obs)] == [
        "events:RemoveTargets", "events:DeleteRule", "lambda:DeleteEventSourceMapping", "lambda:DeleteFunction"]
