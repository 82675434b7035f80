"""A Chalice app's API and triggers, as Chalice itself defines them: :class:`AppModel`.

:func:`extract` is the one place that imports the user's app. It runs
:mod:`lambdaship.api._extract` (Chalice's own ``SwaggerGenerator``, the **alias** ARN as the
Lambda target) inside the local engine's sandbox (no credentials, no network, the source
read-only) and reads one JSON line back; nothing of the app is imported into this process.
Non-Chalice apps get :data:`EMPTY` without running anything.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from lambdaship.config import FunctionConfig, is_chalice_app
from lambdaship.errors import LambdashipError

LOCAL_REGION = "us-east-1"
LOCAL_ACCOUNT = "123456789012"
EXTRACT_TIMEOUT = 60.0


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class RouteModel(_Frozen):
    path: str
    method: str
    view_name: str = ""
    cors: dict[str, str] | None = None  # CORSConfig.get_access_control_headers()
    api_key_required: bool = False
    authorizer: str | None = None
    scopes: tuple[str, ...] = ()
    content_types: tuple[str, ...] = ()


class AuthorizerModel(_Frozen):
    name: str
    kind: Literal["builtin", "iam", "cognito", "custom", "unknown"]
    handler: str | None = None  # builtin: "app.<function>" (the authorizer function's command)
    header: str = "Authorization"
    ttl_seconds: int | None = None
    execution_role: str | None = None
    provider_arns: tuple[str, ...] = ()
    authorizer_uri: str | None = None


class EventSourceModel(_Frozen):
    kind: str  # schedule, cw_event, s3, sns, sqs, kinesis, dynamodb
    name: str
    handler: str
    expression: str | None = None
    description: str = ""
    event_pattern: dict[str, Any] | None = None
    bucket: str | None = None
    events: tuple[str, ...] = ()
    prefix: str | None = None
    suffix: str | None = None
    topic: str | None = None
    queue: str | None = None
    queue_arn: str | None = None
    stream: str | None = None
    stream_arn: str | None = None
    batch_size: int | None = None
    starting_position: str | None = None
    maximum_batching_window_in_seconds: int | None = None
    maximum_concurrency: int | None = None


class ExtraFunction(_Frozen):
    """A function on the same image with another command: authorizers, event handlers,
    ``@app.lambda_function``. ``suffix`` is Chalice's handler name (function = ``<main>-<suffix>``)."""

    suffix: str
    handler: str
    role: Literal["authorizer", "event", "lambda_function", "websocket"]


class DomainModel(_Frozen):
    domain_name: str
    certificate_arn: str | None = None
    url_prefix: str = ""
    tls_version: str | None = None


class AppModel(_Frozen):
    app_name: str | None = None
    swagger: dict[str, Any] | None = None
    routes: tuple[RouteModel, ...] = ()
    binary_types: tuple[str, ...] = ()
    authorizers: tuple[AuthorizerModel, ...] = ()
    event_sources: tuple[EventSourceModel, ...] = ()
    lambda_functions: tuple[ExtraFunction, ...] = ()
    builtin_authorizers: tuple[ExtraFunction, ...] = ()
    websocket_handlers: tuple[dict[str, str], ...] = ()  # route key, name, handler
    domain: DomainModel | None = None
    stage: str = "api"

    @property
    def is_chalice(self) -> bool:
        return self.app_name is not None

    def extra_functions(self) -> list[ExtraFunction]:
        """Every function besides the API handler, once each, in a stable order."""
        seen: dict[str, ExtraFunction] = {}
        for f in (*self.builtin_authorizers, *self.lambda_functions,
                  *(ExtraFunction(suffix=s.name, handler=s.handler, role="event") for s in self.event_sources),
                  *(ExtraFunction(suffix=h["name"], handler=h["handler"], role="websocket")
                    for h in self.websocket_handlers)):
            seen.setdefault(f.suffix, f)
        return list(seen.values())

    def authorizer(self, name: str | None) -> AuthorizerModel | None:
        return next((a for a in self.authorizers if a.name == name), None) if name else None


EMPTY = AppModel()


def _chalice_stage_config(source: Path, stage: str) -> tuple[str, DomainModel | None]:
    """API Gateway stage name and custom domain from ``.chalice/config.json`` (JSON, never code)."""
    path = source / ".chalice" / "config.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    except (OSError, ValueError) as exc:
        raise LambdashipError(f"{path}: cannot read: {exc}", "fix the JSON") from None
    if not isinstance(data, dict):
        return "api", None
    st = (data.get("stages") or {}).get(stage) or {}
    api_stage = str(st.get("api_gateway_stage") or data.get("api_gateway_stage") or "api")
    dom = st.get("api_gateway_custom_domain") or data.get("api_gateway_custom_domain")
    domain = None
    if isinstance(dom, dict) and dom.get("domain_name"):
        domain = DomainModel(domain_name=str(dom["domain_name"]), certificate_arn=dom.get("certificate_arn"),
                             url_prefix=str(dom.get("url_prefix") or ""), tls_version=dom.get("tls_version"))
    return api_stage, domain


def run_extract(fn: FunctionConfig, argv: list[str], env: dict[str, str],
                timeout: float) -> subprocess.CompletedProcess[bytes]:
    """Run the extraction script on the app: the one call that executes app code — inside the
    sandbox of :mod:`lambdaship.local.engine` (base rootfs, the target's dependencies, the
    source read-only at /var/task, no credentials, no network)."""
    from lambdaship.local.engine import Engine
    from lambdaship.local.specs import project_spec

    script = (Path(__file__).parent / "_extract.py").read_text(encoding="utf-8")
    spec = project_spec(fn, environment=env)
    with Engine(max_workers=1) as engine:
        return engine.run_command(spec, ["python3", "-c", script, *argv], timeout=timeout)


def parse_output(stdout: bytes) -> dict[str, Any]:
    from lambdaship.api._extract import MARK

    lines = [ln for ln in stdout.decode("utf-8", "replace").splitlines() if ln.startswith(MARK)]
    if not lines:
        raise ValueError("no model line")
    data = json.loads(lines[-1][len(MARK):])
    if not isinstance(data, dict):
        raise ValueError("model is not an object")
    return data


def from_json(data: dict[str, Any], *, stage: str = "api", domain: DomainModel | None = None) -> AppModel:
    extras = [ExtraFunction(suffix=a["name"], handler=a["handler"], role="authorizer")
              for a in data.get("builtin_authorizers") or []]
    lfs = [ExtraFunction(suffix=f["name"], handler=f["handler"], role="lambda_function")
           for f in data.get("lambda_functions") or []]
    return AppModel(
        app_name=data.get("app_name"), swagger=data.get("swagger"),
        routes=tuple(RouteModel(**r) for r in data.get("routes") or []),
        binary_types=tuple(data.get("binary_types") or ()),
        authorizers=tuple(AuthorizerModel(**a) for a in data.get("authorizers") or []),
        event_sources=tuple(EventSourceModel(**e) for e in data.get("event_sources") or []),
        lambda_functions=tuple(lfs), builtin_authorizers=tuple(extras),
        websocket_handlers=tuple(data.get("websocket_handlers") or ()), domain=domain, stage=stage,
    )


def extract(fn: FunctionConfig, *, region: str = LOCAL_REGION, account: str = LOCAL_ACCOUNT,
            chalice_stage: str = "dev", timeout: float = EXTRACT_TIMEOUT) -> AppModel:
    """The app's model (swagger targets ``arn:aws:lambda:<region>:<account>:function:<name>:<alias>``)."""
    if not is_chalice_app(fn.source):
        return EMPTY
    stage, domain = _chalice_stage_config(fn.source, chalice_stage)
    env = dict(fn.environment)
    proc = run_extract(fn, [], env, timeout)
    try:
        data = parse_output(proc.stdout)
    except ValueError:
        tail = proc.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or ["no output"]
        raise LambdashipError(f"cannot read the Chalice app in {fn.source}: {tail[0][:300]}",
                              "run `python -c 'import app'` in the app directory and fix the error") from None
    if "error" in data:
        raise LambdashipError(f"{fn.source / 'app.py'}: {data['error']}", "define app = Chalice(app_name=...)")
    if data.get("routes"):
        from lambdaship.api import swagger

        data["swagger"] = swagger.generate(data, region=region, account=account, function_name=fn.function_name,
                                           alias=fn.alias)
    return from_json(data, stage=stage, domain=domain)


def extract_from_spec(engine: Any, spec: Any, *, timeout: float = EXTRACT_TIMEOUT) -> AppModel:
    """The model of the Chalice app inside an image (``run``): the extraction script in the
    image's own sandbox (``engine.run_command``), no swagger (the gateway does not need it)."""
    if not is_chalice_app(spec.task_dir):
        return EMPTY
    script = (Path(__file__).parent / "_extract.py").read_text(encoding="utf-8")
    proc = engine.run_command(spec, ["python3", "-c", script], timeout=timeout)
    try:
        data = parse_output(proc.stdout)
    except ValueError:
        tail = proc.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or ["no output"]
        raise LambdashipError(f"cannot read the Chalice app in the image: {tail[0][:300]}") from None
    if "error" in data:
        raise LambdashipError(f"the image's app.py: {data['error']}")
    return from_json(data)
