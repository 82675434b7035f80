"""The handler of the app's steps in the one deploy executor (:mod:`lambdaship.deploy.execute`).

The app's steps enter the deploy plan namespaced ``api:`` (``api:apigateway:PutIntegration``,
``api:lambda:CreateFunction``), so they never meet the main function's or migrate's handlers of
the same AWS action; the executor sends every ``api:`` step here. Each is one AWS call by its
name (through ``lambdaship.aws``); a step's ``output`` variable takes the result field
``OUTPUTS[action]`` (an id, a version, an ARN), which later steps read as ``Later`` values.
"""

from __future__ import annotations

from typing import Any

from lambdaship.deploy.steps import Step

PREFIX = "api:"


def namespaced(steps: list[Step]) -> list[Step]:
    """The app's steps as the deploy plan carries them."""
    from dataclasses import replace

    return [replace(s, action=PREFIX + s.action) for s in steps]


def _wait(p: dict[str, Any]) -> dict[str, Any]:
    from lambdaship.aws import lambda_

    if p["Waiter"] == "function_active_v2":
        return dict(lambda_.wait_active(p["FunctionName"]))
    return dict(lambda_.wait_updated(p["FunctionName"]))


def _create_api(p: dict[str, Any], variables: dict[str, Any]) -> dict[str, Any]:
    from lambdaship.aws import apigw

    out = apigw.call("CreateRestApi", **p)
    root = out.get("rootResourceId") or next(
        r["id"] for r in apigw.list_resources(out["id"]) if r.get("path") == "/")
    variables["root_resource_id"] = root
    return out


def call(action: str, params: dict[str, Any], variables: dict[str, Any]) -> dict[str, Any]:
    from lambdaship.aws import apigw, events

    service, op = action.split(":", 1)
    if action == "lambda:Wait":
        return _wait(params)
    if action == "apigateway:CreateRestApi":
        return _create_api(params, variables)
    if service == "apigateway":
        return apigw.call(op, **params)
    return events.call(service, op, **params)


def run_step(step: Step, params: dict[str, Any], run: Any) -> Any:
    """``(step, params, run) -> output``, the executor's handler signature."""
    from lambdaship.api.plan import OUTPUTS

    action = step.action.removeprefix(PREFIX)
    result = call(action, params, run.vars)
    return result.get(OUTPUTS.get(action, "id")) if step.output else result


def _register() -> None:
    from lambdaship.deploy.handlers import register

    register(PREFIX + "*", run_step)


_register()
