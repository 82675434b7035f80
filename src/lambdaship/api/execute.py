"""Run the app's API/trigger steps: each step is one AWS call by its name (through
``lambdaship.aws``); results named by ``ApiStep.output`` feed later steps' ``Later`` values.

Until the deploy's single executor takes these steps (its handler table is the extension
point), this small interpreter runs them, in order, after the function's own plan.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lambdaship.api.plan import OUTPUTS, ApiStep
from lambdaship.deploy.steps import resolve_params
from lambdaship.errors import LambdashipError

Reporter = Callable[[Any, dict[str, Any]], None]


def _wait(p: dict[str, Any]) -> dict[str, Any]:
    from lambdaship.aws import lambda_

    if p["Waiter"] == "function_active_v2":
        return dict(lambda_.wait_active(p["FunctionName"]))
    return dict(lambda_.wait_updated(p["FunctionName"]))


def _create_api(p: dict[str, Any], ctx: dict[str, Any]) -> dict[str, Any]:
    from lambdaship.aws import apigw

    out = apigw.call("CreateRestApi", **p)
    root = out.get("rootResourceId") or next(
        r["id"] for r in apigw.list_resources(out["id"]) if r.get("path") == "/")
    ctx["root_resource_id"] = root
    return out


def call(step: ApiStep, params: dict[str, Any], ctx: dict[str, Any]) -> dict[str, Any]:
    from lambdaship.aws import apigw, events

    service, op = step.action.split(":", 1)
    if step.action == "lambda:Wait":
        return _wait(params)
    if step.action == "apigateway:CreateRestApi":
        return _create_api(params, ctx)
    if service == "apigateway":
        return apigw.call(op, **params)
    return events.call(service, op, **params)


def execute(steps: list[ApiStep], *, reporter: Reporter | None = None,
            ctx: dict[str, Any] | None = None) -> dict[str, Any]:
    ctx = ctx if ctx is not None else {}
    for step in steps:
        if reporter is not None:
            reporter(step, ctx)
        params = resolve_params(step.params, ctx)
        try:
            result = call(step, params, ctx)
        except LambdashipError:
            raise
        except Exception as exc:
            err = getattr(exc, "response", {}).get("Error", {})
            detail = f"{err.get('Code')}: {err.get('Message')}" if err else str(exc)
            raise LambdashipError(
                f"API deploy failed at {step.action} ({step.note or 'no note'}): {detail}",
                "clients still get the stage's previous deployment; fix the cause and deploy again") from exc
        if step.output:
            ctx[step.output] = result.get(OUTPUTS.get(step.action, "id"))
    return ctx
