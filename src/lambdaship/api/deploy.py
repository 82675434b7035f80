"""Deploy what a Chalice app declares besides its handler, after the function's own plan has
moved the alias: the REST API (targeting the alias), authorizer and event functions on the
same image, triggers, permissions; a Function URL for other apps.

observe (read-only calls) → plan (pure: :mod:`.plan`, :mod:`.triggers`) → execute.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lambdaship.api.model import AppModel, extract
from lambdaship.api.observe import Observed, observe
from lambdaship.api.plan import ApiPlan, ApiStep, api_url, plan_rest_api
from lambdaship.api.triggers import Code, plan_function_url, plan_functions, plan_removals, plan_triggers
from lambdaship.api.websocket import WebsocketState, observe_websocket, plan_websocket, ws_url
from lambdaship.config import FunctionConfig
from lambdaship.errors import LambdashipError

ZIP_INLINE_LIMIT = 50 * 1024 * 1024  # Lambda's limit for a zip sent with the call
CONFIG_KEYS = ("MemorySize", "Timeout", "Environment", "Role", "Architectures", "EphemeralStorage")


@dataclass
class AppPlan:
    api: ApiPlan
    steps: list[ApiStep] = field(default_factory=list)
    triggers: list[str] = field(default_factory=list)
    functions: list[str] = field(default_factory=list)
    function_url: str | None = None
    websocket_url: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {**self.api.to_json(), "functions": self.functions, "triggers": self.triggers,
                "function_url": self.function_url, "websocket_url": self.websocket_url,
                "steps": [s.to_json() for s in self.steps]}

    def render(self) -> list[str]:
        if not self.steps:
            return ["app API and triggers: up to date"]
        return ["app API and triggers:"] + [f"  {i:>2}. {s.render()}" for i, s in enumerate(self.steps, 1)]


def region_and_account() -> tuple[str, str]:
    from lambdaship.aws import session, sts

    return session.region() or "us-east-1", sts.account_id()


def plan_app(fn: FunctionConfig, model: AppModel, obs: Observed, *, code: Code,
             main_config: dict[str, Any], websocket: WebsocketState | None = None) -> AppPlan:
    """Pure: the calls for the extra functions, then the API, then the triggers, then the URL."""
    config = {k: main_config[k] for k in CONFIG_KEYS if k in main_config}
    steps = plan_functions(fn, model, obs, code=code, config=config)
    api = plan_rest_api(fn, model, obs)
    trig, shown = plan_triggers(fn, model, obs)
    url = plan_function_url(fn, obs) if not model.is_chalice else []
    state = obs.functions.get(fn.function_name)
    ws = plan_websocket(fn, model, obs, websocket) if websocket is not None else []
    out = AppPlan(api, [*steps, *api.steps, *ws, *trig, *url, *plan_removals(obs)], shown,
                  [f"{fn.function_name}-{x.suffix}" for x in model.extra_functions()])
    if state is not None and state.url_config:
        out.function_url = state.url_config.get("FunctionUrl")
    return out


def deploy_app(fn: FunctionConfig, *, image_uri: str | None = None, zip_path: Path | None = None,
               dry_run: bool = False, reporter: Any = None, model: AppModel | None = None,
               chalice_stage: str = "dev") -> AppPlan:
    """``image_uri`` (image deploys) or ``zip_path`` (the zip the function was deployed with):
    what the app's other functions run."""
    from lambdaship.api.execute import execute
    from lambdaship.aws import lambda_

    region, account = region_and_account()
    model = model if model is not None else extract(fn, region=region, account=account, chalice_stage=chalice_stage)
    if not model.is_chalice and getattr(fn, "function_url", None) is None:
        return AppPlan(ApiPlan())
    obs = observe(fn, model, region=region, account=account, chalice_stage=chalice_stage)
    main = lambda_.get_function(fn.function_name)
    cfg = dict((main or {}).get("Configuration") or {})
    if "Environment" in cfg:
        cfg["Environment"] = {"Variables": dict(cfg["Environment"].get("Variables") or {})}
    cfg["Architectures"] = cfg.get("Architectures") or [fn.architecture]
    ws = observe_websocket(fn, model)
    code = Code(image_uri=image_uri) if image_uri else _zip_code(fn, zip_path)
    if not (code.image_uri or code.zip_sha256) and model.extra_functions():
        raise LambdashipError(f"no image or zip of {fn.function_name} to run its authorizer/event functions on",
                              "deploy again without --image pointing elsewhere, or set package_type")
    plan = plan_app(fn, model, obs, code=code, main_config=cfg, websocket=ws)
    if ws.api_id:
        plan.websocket_url = ws_url(ws.api_id, region, model.stage)
    if dry_run or not plan.steps:
        return plan
    ctx = execute(plan.steps, reporter=reporter, ctx={"zip_bytes": zip_path.read_bytes() if zip_path else None})
    if ctx.get("rest_api_id"):
        plan.api.api_id = ctx["rest_api_id"]
        plan.api.url = api_url(ctx["rest_api_id"], region, model.stage)
    if ctx.get("websocket_api_id"):
        plan.websocket_url = ws_url(ctx["websocket_api_id"], region, model.stage)
    if ctx.get("function_url"):
        plan.function_url = ctx["function_url"]
    return plan


def _zip_code(fn: FunctionConfig, zip_path: Path | None) -> Code:
    import base64
    import hashlib

    if zip_path is None:
        return Code()
    if zip_path.stat().st_size > ZIP_INLINE_LIMIT:
        raise LambdashipError(f"the app's zip ({zip_path.stat().st_size} bytes) is over {ZIP_INLINE_LIMIT} bytes: its "
                              "authorizer/event functions cannot get it inline", 'set package_type = "image"')
    digest = base64.b64encode(hashlib.sha256(zip_path.read_bytes()).digest()).decode()
    return Code(zip_sha256=digest, runtime=fn.platform.lambda_runtime)


def deploy_after(fn: FunctionConfig, result: Any, *, dry_run: bool = False, reporter: Any = None) -> AppPlan | None:
    """What ``lambdaship deploy`` runs after the function's own plan (``result``: its
    DeployResult): None for an app with nothing besides its handler."""
    from lambdaship.config import is_chalice_app

    if not is_chalice_app(fn.source) and getattr(fn, "function_url", None) is None:
        return None
    zip_plan = (getattr(result.plan, "artifacts", None) or {}).get("zip")
    art = getattr(zip_plan, "artifact", None) if result.image_uri is None else None
    return deploy_app(fn, image_uri=result.image_uri, zip_path=Path(art.path) if art is not None else None,
                      dry_run=dry_run, reporter=reporter)


def summary(plan: AppPlan, *, dry_run: bool = False) -> list[str]:
    """Lines for the terminal: the plan in a dry run, else the URL, routes and triggers."""
    if dry_run:
        return plan.render()
    lines = []
    if plan.api.url:
        lines.append(f"API {plan.api.url}" + (f"  (adopted: {plan.api.adopted})" if plan.api.adopted else ""))
        lines.extend(f"  {r}" for r in plan.api.routes)
    if plan.function_url:
        lines.append(f"function URL {plan.function_url}")
    if plan.websocket_url:
        lines.append(f"WebSocket {plan.websocket_url}")
    lines.extend(f"trigger {t}" for t in plan.triggers)
    changed = len(plan.steps)
    lines.append(f"API and triggers: {changed} change(s)" if changed else "API and triggers: up to date")
    return lines
