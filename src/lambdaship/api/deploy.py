"""Deploy what a Chalice app declares besides its handler: the REST API (targeting the alias),
authorizer and event functions on the same image, triggers, permissions; a Function URL for
other apps.

observe (read-only calls) → plan (pure: :mod:`.plan`, :mod:`.triggers`) → the deploy plan's
``before_alias`` extension (:func:`extension`), run by the one executor
(:mod:`lambdaship.deploy.execute`, handler :mod:`.handlers`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lambdaship.api import model as app_model
from lambdaship.api.handlers import namespaced
from lambdaship.api.observe import Observed, observe
from lambdaship.api.plan import ApiPlan, ApiStep, api_url, plan_rest_api
from lambdaship.api.triggers import Code, plan_function_url, plan_functions, plan_removals, plan_triggers
from lambdaship.api.websocket import WebsocketState, observe_websocket, plan_websocket, ws_url
from lambdaship.apigateway.model import AppModel
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
    region: str = "us-east-1"
    stage: str = "api"
    zip_path: Path | None = None
    model_source: str | None = None  # sandbox / cache / registry (lambdaship.api.model.Extracted)
    store_model: tuple[str, str, dict[str, Any]] | None = None  # (image_uri, fingerprint, data) to store

    def variables(self) -> dict[str, Any]:
        """The execution variables the app's steps read besides their own outputs."""
        return {"zip_bytes": self.zip_path.read_bytes() if self.zip_path else None}

    def finish(self, variables: dict[str, Any]) -> None:
        finish(self, variables)
        self.save_model()

    def save_model(self) -> None:
        """After a deploy ran (never on a dry run): store an extracted model next to the images, for
        the next runner (best effort; :mod:`lambdaship.api.modelstore`)."""
        if self.store_model is not None:
            from lambdaship.api import modelstore

            modelstore.save_remote(*self.store_model)
            self.store_model = None

    def to_json(self) -> dict[str, Any]:
        return {**self.api.to_json(), "functions": self.functions, "triggers": self.triggers,
                "function_url": self.function_url, "websocket_url": self.websocket_url,
                "model": self.model_source, "steps": [s.to_json() for s in self.steps]}

    def render(self) -> list[str]:
        if not self.steps:
            return ["app API and triggers: up to date"]
        return ["app API and triggers:"] + [f"  {i:>2}. {s.render()}" for i, s in enumerate(self.steps, 1)]


def region_and_account(registry: str | None = None) -> tuple[str, str]:
    """The caller's region and account; the account read off an ECR ``registry`` host
    (``<account>.dkr.ecr.<region>.amazonaws.com``) when one is given, else from STS."""
    import re

    from lambdaship.aws import session, sts

    region = session.region() or "us-east-1"
    m = re.fullmatch(r"(\d{12})\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com(\.cn)?", registry or "")
    if m and m.group(2) == region:
        return region, m.group(1)
    return region, sts.account_id()


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


@dataclass
class Observation:
    """What :func:`observe_app` reads before planning: the model (and where it came from) and the
    app's resources as they are. Independent of the build, so a deploy reads it while building
    (:func:`prefetch`)."""

    region: str
    account: str
    model: AppModel
    got: app_model.Extracted | None = None
    obs: Observed | None = None
    websocket: WebsocketState | None = None


def observe_state(fn: FunctionConfig, *, image_uri: str | None = None, model: AppModel | None = None,
                  chalice_stage: str = "dev") -> Observation:
    """The read-only half of :func:`observe_app`. ``image_uri``: where the function's images are
    (the model may be stored there; only its registry and repository count)."""
    region, account = region_and_account(image_uri.split("/", 1)[0] if image_uri else None)
    got = None
    if model is None:
        from lambdaship.config import is_chalice_app

        if is_chalice_app(fn.source):
            got = app_model.extract_data(fn, chalice_stage=chalice_stage, image_uri=image_uri)
            model = app_model.build(fn, got.data, region=region, account=account, chalice_stage=chalice_stage)
        else:
            model = app_model.EMPTY
    out = Observation(region, account, model, got)
    if model.is_chalice or getattr(fn, "function_url", None) is not None:
        out.obs = observe(fn, model, region=region, account=account, chalice_stage=chalice_stage)
        out.websocket = observe_websocket(fn, model)
    return out


def observe_app(fn: FunctionConfig, main_config: dict[str, Any], *, image_uri: str | None = None,
                zip_path: Path | None = None, model: AppModel | None = None,
                chalice_stage: str = "dev", observed: Observation | None = None) -> AppPlan:
    """Read-only calls (or ``observed``, read before), then :func:`plan_app`: the app's calls.
    ``image_uri`` (image deploys) or ``zip_path`` (the zip the function is deployed with): what the
    app's other functions run; ``main_config``: what they share with the main function (its
    MemorySize, Role, ...)."""
    o = observed or observe_state(fn, image_uri=image_uri, model=model, chalice_stage=chalice_stage)
    model, obs, ws, got = o.model, o.obs, o.websocket, o.got
    if obs is None or ws is None:
        return AppPlan(ApiPlan())
    code = Code(image_uri=image_uri) if image_uri else _zip_code(fn, zip_path)
    if not (code.image_uri or code.zip_sha256) and model.extra_functions():
        raise LambdashipError(f"no image or zip of {fn.function_name} to run its authorizer/event functions on",
                              "deploy again without --image pointing elsewhere, or set package_type")
    plan = plan_app(fn, model, obs, code=code, main_config=main_config, websocket=ws)
    plan.region, plan.stage, plan.zip_path = o.region, model.stage, zip_path
    if got is not None:
        plan.model_source = got.source
        if image_uri and got.source != "registry":
            plan.store_model = (image_uri, got.fingerprint, got.data)
    if ws.api_id:
        plan.websocket_url = ws_url(ws.api_id, o.region, model.stage)
    return plan


def deploy_app(fn: FunctionConfig, *, image_uri: str | None = None, zip_path: Path | None = None,
               dry_run: bool = False, model: AppModel | None = None, chalice_stage: str = "dev") -> AppPlan:
    """The app's calls alone, next to a function deployed before (its configuration read from
    Lambda), run by the deploy executor. ``lambdaship deploy`` instead composes them into the
    function's own plan (:func:`extension`)."""
    from lambdaship.aws import lambda_

    main = lambda_.get_function(fn.function_name)
    cfg = dict((main or {}).get("Configuration") or {})
    if "Environment" in cfg:
        cfg["Environment"] = {"Variables": dict(cfg["Environment"].get("Variables") or {})}
    cfg["Architectures"] = cfg.get("Architectures") or [fn.architecture]
    plan = observe_app(fn, {k: cfg[k] for k in CONFIG_KEYS if k in cfg}, image_uri=image_uri, zip_path=zip_path,
                       model=model, chalice_stage=chalice_stage)
    if dry_run:
        return plan
    if plan.steps:
        finish(plan, run_steps(fn, plan.steps, plan.variables()))
    plan.save_model()
    return plan


def run_steps(fn: FunctionConfig, steps: list[ApiStep], variables: dict[str, Any]) -> dict[str, Any]:
    """Run (unprefixed) app steps through the deploy executor; the execution variables after."""
    from lambdaship.deploy.execute import execute
    from lambdaship.deploy.steps import Plan

    p = Plan(function_name=fn.function_name, alias=fn.alias, target=None, steps=tuple(namespaced(steps)), kind="app")
    return execute(p, ctx=variables).ctx


def main_config(fn: FunctionConfig, inp: Any) -> dict[str, Any]:
    """What the extra functions share with the main one, as the deploy plan sets it
    (``inp``: the deploy planner's :class:`~lambdaship.deploy.plan.PlanInput`)."""
    from lambdaship.deploy.plan import desired_configuration
    from lambdaship.deploy.steps import Later
    from lambdaship.platform import Architecture

    cfg = {k: v for k, v in desired_configuration(fn, inp.env).items() if k in CONFIG_KEYS}
    role = fn.role or inp.state.configuration.get("Role") or inp.state.default_role_arn
    cfg["Role"] = role if role else Later("{role}")  # created by the plan's iam:CreateRole
    cfg["Architectures"] = [Architecture.parse(fn.architecture).lambda_name]
    return cfg


def prefetch(fn: FunctionConfig) -> Observation | None:
    """:func:`observe_state` for :func:`extension`, before the image exists (the deploy runs it
    while it builds): the model is looked up in the repository the image will be pushed to."""
    from lambdaship.config import is_chalice_app

    if not is_chalice_app(fn.source) and getattr(fn, "function_url", None) is None:
        return None
    store = None
    if fn.package_type != "zip":
        from lambdaship.aws import ecr
        from lambdaship.names import Names

        try:
            store = f"{ecr.registry_for_account()}/{Names(fn.function_name, fn.repository).repository}"
        except Exception:
            store = None
    return observe_state(fn, image_uri=store)


def extension(fn: FunctionConfig, inp: Any, *, image_uri: str | None, zip_path: Path | None,
              observed: Observation | None = None) -> tuple[tuple[Any, ...], AppPlan] | None:
    """The app's calls as extensions of the function's deploy plan (None for an app with nothing
    besides its handler). ``before_alias`` — after the new version is published and smoke-tested,
    before the main alias moves, so a failure leaves that alias where it was: the extra functions,
    the APIs, the triggers. ``after_alias`` — the calls on the main alias itself (its permissions,
    its Function URL), which need the alias to exist (a first deploy creates it). ``observed``:
    :func:`prefetch`'s result (read while the deploy built)."""
    from lambdaship.config import is_chalice_app
    from lambdaship.deploy.plan import Extension

    if not is_chalice_app(fn.source) and getattr(fn, "function_url", None) is None:
        return None
    app = observe_app(fn, main_config(fn, inp), image_uri=image_uri, zip_path=zip_path, observed=observed)
    on_alias = tuple(namespaced([s for s in app.steps if on_main_alias(fn, s)]))
    before = tuple(namespaced([s for s in app.steps if not on_main_alias(fn, s)]))
    return (Extension("before_alias", lambda _inp: before), Extension("after_alias", lambda _inp: on_alias)), app


extension.prefetch = prefetch  # type: ignore[attr-defined]  # lambdaship.deploy.pipeline runs it during the build


def on_main_alias(fn: FunctionConfig, step: ApiStep) -> bool:
    return step.params.get("FunctionName") == fn.function_name and step.params.get("Qualifier") == fn.alias


def finish(plan: AppPlan, variables: dict[str, Any]) -> None:
    """Fill in what only the execution knows: the new API's id and URL, the WebSocket and Function URLs."""
    if variables.get("rest_api_id"):
        plan.api.api_id = variables["rest_api_id"]
        plan.api.url = api_url(variables["rest_api_id"], plan.region, plan.stage)
    if variables.get("websocket_api_id"):
        plan.websocket_url = ws_url(variables["websocket_api_id"], plan.region, plan.stage)
    if variables.get("function_url"):
        plan.function_url = variables["function_url"]


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
